//! Micro-benchmarks of the hot kernels, without a database: CSV decode, the
//! binary COPY encoder per type family, the COPY text writer, and the
//! validation digest. A regression in any of them shows here first.
//!
//! `cargo bench -p ferry-benchmarks` (release); the test command runs each
//! once in debug (`cargo test --benches`) so they cannot rot.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry_benchmarks::{lineitem_csv_rows, wide};
use ferry_connectors::pg::BinaryEncoder;
use ferry_connectors::pg::codec::copy::encode_batch;
use ferry_engine::convert::digest::Digest;
use ferry_engine::decode::csv::CsvDialect;
use ferry_engine::decode::csv::build::{ChunkPos, OnBadRow, Projection, build_batch};
use ferry_engine::decode::csv::tokenize::{Records, tokenize};

const ROWS: usize = 16 * 1024;

fn lineitem_schema() -> Arc<Schema> {
    let f = |n: &str, t: DataType| Arc::new(Field::new(n, t, true));
    let dec = DataType::Decimal128(15, 2);
    Arc::new(Schema::new(vec![
        f("l_orderkey", DataType::Int64),
        f("l_partkey", DataType::Int64),
        f("l_suppkey", DataType::Int64),
        f("l_linenumber", DataType::Int32),
        f("l_quantity", dec.clone()),
        f("l_extendedprice", dec.clone()),
        f("l_discount", dec.clone()),
        f("l_tax", dec),
        f("l_returnflag", DataType::Utf8),
        f("l_linestatus", DataType::Utf8),
        f("l_shipdate", DataType::Date32),
        f("l_commitdate", DataType::Date32),
        f("l_receiptdate", DataType::Date32),
        f("l_shipinstruct", DataType::Utf8),
        f("l_shipmode", DataType::Utf8),
        f("l_comment", DataType::Utf8),
    ]))
}

fn dialect() -> CsvDialect {
    CsvDialect {
        delimiter: b'|',
        ..CsvDialect::default()
    }
}

fn decode(csv: &[u8], schema: &Arc<Schema>) -> RecordBatch {
    let d = dialect();
    let mut records = Records::default();
    let records = tokenize(csv, &d, &mut records).unwrap_or_else(|_| panic!("unterminated quote"));
    let projection = Projection {
        fields: schema.fields().iter().cloned().collect(),
        indices: (0..schema.fields().len()).collect(),
        formats: vec![None; schema.fields().len()],
        exact: vec![false; schema.fields().len()],
        expected_fields: schema.fields().len(),
        file_names: schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let pos = ChunkPos {
        file: "lineitem.csv",
        chunk: csv,
        first_line: 1,
        offset: 0,
    };
    build_batch(
        &records,
        0,
        &d,
        &projection,
        schema.clone(),
        pos,
        OnBadRow::Fail,
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .0
}

fn encoder(batch: &RecordBatch) -> BinaryEncoder {
    BinaryEncoder::for_schema(&batch.schema()).unwrap_or_else(|e| panic!("{e}"))
}

/// The wide table's columns grouped by type family.
fn families() -> Vec<(&'static str, RecordBatch)> {
    let batch = wide::batches(ROWS).remove(0);
    let pick = |names: &[&str]| {
        let idx: Vec<usize> = names
            .iter()
            .map(|n| batch.schema().index_of(n).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        batch.project(&idx).unwrap_or_else(|e| panic!("{e}"))
    };
    vec![
        ("integers", pick(&["id", "small", "medium", "big", "flag"])),
        ("floats", pick(&["ratio", "measure"])),
        ("numeric", pick(&["amount"])),
        ("text", pick(&["name", "body"])),
        ("bytea", pick(&["raw"])),
        (
            "datetime",
            pick(&["day", "at", "local_ts", "zoned_ts", "span"]),
        ),
        ("arrays", pick(&["tags", "scores"])),
        ("jsonb", pick(&["attrs"])),
    ]
}

fn kernels(c: &mut Criterion) {
    let schema = lineitem_schema();
    let csv = lineitem_csv_rows(ROWS);
    let lineitem = decode(&csv, &schema);

    let mut g = c.benchmark_group("csv_decode");
    g.throughput(Throughput::Bytes(csv.len() as u64));
    g.bench_function("lineitem", |b| b.iter(|| decode(&csv, &schema)));
    g.finish();

    let mut g = c.benchmark_group("binary_copy_encode");
    let mut cases = vec![("lineitem", lineitem.clone())];
    cases.extend(families());
    for (name, batch) in &cases {
        let enc = encoder(batch);
        g.throughput(Throughput::Elements(batch.num_rows() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(1 << 20);
                enc.encode(batch, &mut out)
                    .unwrap_or_else(|e| panic!("{e}"));
                out
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("text_copy_write");
    for (name, batch) in &cases {
        let enc = encoder(batch);
        g.throughput(Throughput::Elements(batch.num_rows() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| encode_batch(&enc, batch, 0, false, true).unwrap_or_else(|e| panic!("{e}")))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("validation_digest");
    g.throughput(Throughput::Elements(lineitem.num_rows() as u64));
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    g.bench_function("lineitem", |b| {
        b.iter(|| {
            let mut d = Digest::new(&names);
            d.update(&lineitem).unwrap_or_else(|e| panic!("{e}"));
            d.summary().unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
