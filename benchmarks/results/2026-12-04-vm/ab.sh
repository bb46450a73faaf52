#!/bin/bash
# A/B of two ferry binaries on the same data, alternating: convert CSV->Parquet without and with
# validation (the default), and the default load (append, all artifacts) into a fresh table.
set -u
OLD=$1; NEW=$2; RUNS=${3:-3}
D=/var/tmp/ferry-bench-data; SPEC=/work/main/benchmarks/specs/lineitem
W=/tmp/abwork; rm -rf $W; mkdir -p $W
URL="$FERRY_TEST_DATABASE_URL"
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>$W/err || { echo "FAILED: $*"; cat $W/err | tail -3; }; echo "$(date +%s.%N) - $s" | bc; }
for r in $(seq $RUNS); do
  for which in old new; do
    B=$OLD; [ $which = new ] && B=$NEW
    c=$(t $B convert --dataset $SPEC --input $D/lineitem-sf1.csv --to parquet --output $W/$which.parquet --force -q --work-dir $W/work --no-validate --compression snappy)
    v=$(t $B convert --dataset $SPEC --input $D/lineitem-sf1.csv --to parquet --output $W/$which.parquet --force -q --work-dir $W/work --compression snappy)
    psql "$URL" -qXc "DROP TABLE IF EXISTS public.lineitem; DELETE FROM ferry.loads WHERE target LIKE '%lineitem%'" >/dev/null 2>&1
    l=$(t $B load --dataset $SPEC --input $D/lineitem-sf1.csv --database-url "$URL" --mode append --streams 1 --artifacts all --force -q --work-dir $W/work)
    rm -rf $W/work
    echo "$which run$r convert_no_validate=$c convert_validated=$v load_artifacts=$l"
  done
done
