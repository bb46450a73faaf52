# Regenerate with: cd sql && python3 trips/make_sample.py  (needs pyarrow)
# Generates sql/trips/sample.parquet (committed): a taxi-trip-like table exercising
# Parquet types: int64, int8, bool, float64, decimal128, dictionary strings,
# timestamps (µs, naive), a list<float64> and nulls.
import datetime as dt, random, decimal
import pyarrow as pa, pyarrow.parquet as pq
r = random.Random(11)
n = 500
base = dt.datetime(2024, 3, 1)
pick = [base + dt.timedelta(seconds=r.randrange(31 * 86400)) for _ in range(n)]
drop = [p + dt.timedelta(seconds=r.randrange(60, 5400)) for p in pick]
table = pa.table({
    "trip_id": pa.array(range(1, n + 1), pa.int64()),
    "vendor": pa.array([r.choice(["CMT", "VTS", "DDS"]) for _ in range(n)]).dictionary_encode(),
    "pickup_at": pa.array(pick, pa.timestamp("us")),
    "dropoff_at": pa.array(drop, pa.timestamp("us")),
    "passengers": pa.array([r.choice([1, 1, 1, 2, 3, 5, None]) for _ in range(n)], pa.int8()),
    "distance_km": pa.array([round(r.uniform(-0.5, 30), 3) for _ in range(n)], pa.float64()),
    "fare": pa.array([decimal.Decimal(r.randrange(250, 12000)) / 100 for _ in range(n)], pa.decimal128(10, 2)),
    "store_and_forward": pa.array([r.random() < 0.05 for _ in range(n)], pa.bool_()),
    "gps_speeds": pa.array([[round(r.uniform(0, 90), 1) for _ in range(r.randrange(0, 4))] for _ in range(n)], pa.list_(pa.float64())),
})
pq.write_table(table, "trips/sample.parquet", compression="zstd")
print(table.schema)
