//! The properties ferry's fuzz targets check, in the library so that the
//! `cargo fuzz` targets (`fuzz/`) and the regression test that replays their
//! kept inputs (`engine/tests/fuzz_regressions.rs`) run one implementation.
//!
//! Each function takes arbitrary bytes and panics only when a property is
//! broken: an error for bad input is an answer, a panic is a bug.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ferry_connectors::pg::codec::copy::encode_text;
use ferry_connectors::pg::{BinaryEncoder, PGCOPY_HEADER, PGCOPY_TRAILER};

use crate::decode::copy::{read_pgcopy, read_sql};
use crate::decode::csv::CsvDialect;
use crate::decode::csv::build::{ChunkPos, OnBadRow, Projection, build_batch};
use crate::decode::csv::tokenize::{Records, tokenize};

/// A property over arbitrary bytes: returns, or panics naming what broke.
pub type Property = fn(&[u8]);

/// The fuzz targets, by name (each has a folder of kept inputs under
/// `fuzz/regressions/`).
pub const TARGETS: [(&str, Property); 4] = [
    ("csv_to_binary_copy", csv_to_binary_copy),
    ("text_copy_round_trip", text_copy_round_trip),
    ("spec_parser", spec_parser),
    ("event_parser", event_parser),
];

fn schema() -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, true);
    Arc::new(Schema::new(vec![
        f("id", DataType::Int64),
        f("name", DataType::Utf8),
        f("amount", DataType::Decimal128(12, 2)),
        f("day", DataType::Date32),
        f(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        f("ratio", DataType::Float64),
        f("ok", DataType::Boolean),
    ]))
}

fn encoder(schema: &SchemaRef) -> BinaryEncoder {
    BinaryEncoder::for_schema(schema).unwrap_or_else(|e| panic!("{e}"))
}

fn scratch() -> tempfile::NamedTempFile {
    tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("a temporary file: {e}"))
}

fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(schema, batches).unwrap_or_else(|e| panic!("{e}"))
}

/// CSV bytes (the first byte picks the dialect) through the tokenizer and
/// the typed column builder, with bad rows failing and with bad rows set
/// aside; then the batch through the binary COPY encoder and ferry's own
/// PGCOPY reader. Properties: no panic; the reject mode accounts for every
/// record (kept + rejected) and agrees with the failing mode on clean input;
/// every rejected row points inside the input; the batch encodes (or is
/// refused by name for what PostgreSQL cannot hold: NUL in text, dates
/// beyond its calendar) and its binary COPY reads back as exactly the batch.
pub fn csv_to_binary_copy(data: &[u8]) {
    let Some((&opts, body)) = data.split_first() else {
        return;
    };
    let d = CsvDialect {
        delimiter: [b',', b'|', b'\t', b';'][usize::from(opts & 3)],
        quote: (opts & 4 == 0).then_some(b'"'),
        header: opts & 8 != 0,
        trailing_delimiter: opts & 16 != 0,
        ..CsvDialect::default()
    };
    let schema = schema();
    let mut records = Records::default();
    let records = match tokenize(body, &d, &mut records) {
        Ok(records) => records,
        Err(u) => {
            let e = u.to_error("fuzz.csv", body, 1).to_string();
            assert!(e.contains("fuzz.csv"), "{e}");
            return;
        }
    };
    let n = schema.fields().len();
    let projection = Projection {
        fields: schema.fields().iter().cloned().collect(),
        indices: (0..n).collect(),
        formats: vec![None; n],
        exact: vec![false; n],
        expected_fields: n,
        file_names: schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let pos = ChunkPos {
        file: "fuzz.csv",
        chunk: body,
        first_line: 1,
        offset: 0,
    };
    let skip = usize::from(d.header).min(records.len());
    // The builder's text columns rely on UTF-8 chunks (the reader checks).
    if std::str::from_utf8(body).is_err() {
        return;
    }
    let build = |mode| {
        build_batch(
            &records,
            skip,
            &d,
            &projection,
            schema.clone(),
            pos,
            mode,
            &[],
        )
    };
    let strict = build(OnBadRow::Fail);
    let (batch, rejected) =
        build(OnBadRow::Reject).unwrap_or_else(|e| panic!("reject mode failed: {e}"));
    assert_eq!(
        batch.num_rows() + rejected.len(),
        records.len() - skip,
        "every record is kept or rejected"
    );
    for r in &rejected {
        assert!(r.offset < body.len() as u64 && r.line >= 1, "{r:?}");
    }
    match strict {
        Ok((strict, none)) => {
            assert!(
                none.is_empty() && rejected.is_empty(),
                "clean input, no rejects"
            );
            assert_eq!(strict, batch, "both modes build the same batch");
        }
        Err(e) => assert!(!rejected.is_empty(), "failed ({e}) but rejected nothing"),
    }
    let mut bin = PGCOPY_HEADER.to_vec();
    match encoder(&schema).encode(&batch, &mut bin) {
        Ok(()) => {}
        // Values Arrow holds and PostgreSQL cannot — text with NUL, dates
        // and timestamps beyond its calendar — are refused by name.
        Err(e) if e.reason.contains("NUL byte") => return,
        Err(e) if e.reason.contains("out of PostgreSQL's range") => {
            assert!(!e.value.contains("Cast error"), "the value is shown: {e}");
            return;
        }
        Err(e) => panic!("a decoded batch must encode: {e}"),
    }
    bin.extend_from_slice(&PGCOPY_TRAILER);
    let file = scratch();
    std::fs::write(file.path(), &bin).unwrap_or_else(|e| panic!("{e}"));
    let back = read_pgcopy(file.path(), "fuzz.pgcopy", &schema)
        .unwrap_or_else(|e| panic!("our own PGCOPY must read back: {e}"));
    assert_eq!(concat(&schema, &back), batch, "binary COPY round trip");
}

/// Arbitrary text, numbers and flags as a batch, through the COPY text
/// writer (what `.sql` artifacts hold) and ferry's reader of it. Property:
/// what the writer accepts reads back as exactly the batch (every escape
/// undone, NULL kept apart from `\N` typed as text).
pub fn text_copy_round_trip(data: &[u8]) {
    use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
    let text = String::from_utf8_lossy(data);
    let names: Vec<Option<&str>> = text
        .split('\u{1}')
        .map(|s| (s != "NULL").then_some(s))
        .collect();
    let rows = names.len();
    let word = |i: usize| {
        let mut b = [0u8; 8];
        for (k, v) in b.iter_mut().enumerate() {
            *v = data
                .get((i * 8 + k) % data.len().max(1))
                .copied()
                .unwrap_or(0);
        }
        u64::from_le_bytes(b)
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("b", DataType::Boolean, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from_iter(
                (0..rows).map(|i| (word(i) % 7 != 0).then_some(word(i) as i64)),
            )),
            Arc::new(Float64Array::from_iter((0..rows).map(|i| {
                (word(i + 1) % 5 != 0).then_some(f64::from_bits(word(i + 2)))
            }))),
            Arc::new(BooleanArray::from_iter(
                (0..rows).map(|i| (word(i) % 3 != 0).then_some(word(i) % 2 == 0)),
            )),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut out = b"COPY t (name, n, x, b) FROM stdin;\n".to_vec();
    if encode_text(&encoder(&schema), &batch, &mut out).is_err() {
        return; // e.g. a NUL byte, which PostgreSQL text cannot hold
    }
    out.extend_from_slice(b"\\.\n");
    let file = scratch();
    std::fs::write(file.path(), &out).unwrap_or_else(|e| panic!("{e}"));
    let back = read_sql(file.path(), "fuzz.sql", &schema)
        .unwrap_or_else(|e| panic!("our own COPY text must read back: {e}"));
    let back = concat(&schema, &back);
    // NaN payloads are not kept by any text form: compare floats by bits
    // only where they are not NaN.
    assert_eq!(back.num_rows(), batch.num_rows());
    for c in [0, 1, 3] {
        assert_eq!(back.column(c), batch.column(c), "column {c}");
    }
    let (a, b) = (
        back.column(2).as_any().downcast_ref::<Float64Array>(),
        batch.column(2).as_any().downcast_ref::<Float64Array>(),
    );
    if let (Some(a), Some(b)) = (a, b) {
        for i in 0..rows {
            let same = match (a.is_null(i), b.is_null(i)) {
                (true, true) => true,
                (false, false) => {
                    let (x, y) = (a.value(i), b.value(i));
                    (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
                }
                _ => false,
            };
            assert!(same, "row {i}: {:?} vs {:?}", a.value(i), b.value(i));
        }
    }
}

/// Arbitrary text as a dataset's `dataset.toml`. Property: a spec loads or
/// is refused with a message naming the file, never a panic.
pub fn spec_parser(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spec = dir.path().join("fuzzed");
    std::fs::create_dir_all(&spec).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(spec.join("dataset.toml"), data).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(spec.join("transform.sql"), "SELECT * FROM source")
        .unwrap_or_else(|e| panic!("{e}"));
    match crate::spec::DatasetSpec::load(&spec) {
        Ok(s) => {
            let _ = s.dialect();
            let _ = s.target_table();
        }
        Err(e) => assert!(e.to_string().contains("dataset.toml"), "{e}"),
    }
}

/// Arbitrary text as an S3/EventBridge/SQS event. Property: an event is
/// understood or refused, never a panic; an understood one names its object
/// as `s3://bucket/key` and has an idempotency key.
pub fn event_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = crate::workflow::event::Trigger::from_event(&text) {
        assert!(t.input.uri.starts_with("s3://"), "{}", t.input.uri);
        assert!(!t.idempotency_key().is_empty());
    }
}
