//! The wide table: one column per family of the type mapping, with NULLs
//! (about one value in ten), Unicode and long text, exact decimals, zoned
//! timestamps, intervals, lists, structs and JSON — every encoder path that
//! TPC-H's integers, decimals, dates and short strings never reach.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder,
    ListBuilder, RecordBatch, StringBuilder, StructArray, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{
    DataType, Field, Fields, IntervalMonthDayNano, IntervalUnit, Schema, SchemaRef, TimeUnit,
};

/// Rows per batch.
const BATCH: usize = 64 * 1024;

/// SplitMix64: a fixed, portable sequence (the same file on every machine).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn attrs_fields() -> Fields {
    Fields::from(vec![
        Field::new("rank", DataType::Int32, true),
        Field::new("label", DataType::Utf8, true),
    ])
}

/// The schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("flag", DataType::Boolean, true),
        Field::new("small", DataType::Int16, true),
        Field::new("medium", DataType::Int32, true),
        Field::new("big", DataType::Int64, true),
        Field::new("ratio", DataType::Float32, true),
        Field::new("measure", DataType::Float64, true),
        Field::new("amount", DataType::Decimal128(18, 4), true),
        Field::new("name", DataType::Utf8, true),
        Field::new("body", DataType::Utf8, true),
        Field::new("raw", DataType::Binary, true),
        Field::new("day", DataType::Date32, true),
        Field::new("at", DataType::Time64(TimeUnit::Microsecond), true),
        Field::new(
            "local_ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new(
            "zoned_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+02:00".into())),
            true,
        ),
        Field::new("span", DataType::Interval(IntervalUnit::MonthDayNano), true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new(
            "scores",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            true,
        ),
        Field::new("attrs", DataType::Struct(attrs_fields()), true),
        Field::new("doc", DataType::Utf8, true),
    ]))
}

const WORDS: [&str; 12] = [
    "ferry",
    "Fähre",
    "渡し船",
    "паром",
    "traghetto",
    "🚢",
    "quay",
    "harbour",
    "Øresund",
    "naïve",
    "café",
    "línea",
];

/// `rows` rows in batches of 64 Ki.
pub fn batches(rows: usize) -> Vec<RecordBatch> {
    let schema = schema();
    (0..rows)
        .step_by(BATCH)
        .map(|start| batch(&schema, start, BATCH.min(rows - start)))
        .collect()
}

fn batch(schema: &SchemaRef, start: usize, n: usize) -> RecordBatch {
    let mut id = Int64Builder::with_capacity(n);
    let mut flag = BooleanBuilder::with_capacity(n);
    let mut small = Int16Builder::with_capacity(n);
    let mut medium = Int32Builder::with_capacity(n);
    let mut big = Int64Builder::with_capacity(n);
    let mut ratio = Float32Builder::with_capacity(n);
    let mut measure = Float64Builder::with_capacity(n);
    let mut amount = Decimal128Builder::with_capacity(n);
    let mut name = StringBuilder::new();
    let mut body = StringBuilder::new();
    let mut raw = BinaryBuilder::new();
    let mut day = Date32Builder::with_capacity(n);
    let mut at = Time64MicrosecondBuilder::with_capacity(n);
    let mut local_ts = TimestampMicrosecondBuilder::with_capacity(n);
    let mut zoned_ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("+02:00");
    let mut span = IntervalMonthDayNanoBuilder::with_capacity(n);
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut scores = ListBuilder::new(Int32Builder::new());
    let mut rank = Int32Builder::with_capacity(n);
    let mut label = StringBuilder::new();
    let mut doc = StringBuilder::new();
    for i in start..start + n {
        let r = mix(i as u64);
        let null = |k: u64| (r >> (k * 3)).is_multiple_of(10);
        let word = |k: u64| WORDS[((r >> (k * 4)) % WORDS.len() as u64) as usize];
        id.append_value(i as i64);
        flag.append_option((!null(1)).then_some(r & 1 == 1));
        small.append_option((!null(2)).then_some((r >> 8) as i16));
        medium.append_option((!null(3)).then_some((r >> 16) as i32));
        big.append_option((!null(4)).then_some(r as i64));
        let f = match r % 97 {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => -0.0,
            _ => ((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e6,
        };
        ratio.append_option((!null(5)).then_some(f as f32));
        measure.append_option((!null(6)).then_some(f));
        amount.append_option((!null(7)).then_some((r as i64 % 10_000_000_000_000) as i128));
        if null(8) {
            name.append_null();
        } else {
            name.append_value(format!("{} {} #{i}", word(1), word(2)));
        }
        if null(9) {
            body.append_null();
        } else {
            // Mostly short, sometimes a few kilobytes, with escapes COPY must handle.
            let len = if r.is_multiple_of(50) {
                400
            } else {
                (r % 12) as usize + 1
            };
            let mut s = String::new();
            for k in 0..len {
                s.push_str(word(k as u64 % 16));
                s.push(if k % 7 == 6 { '\t' } else { ' ' });
            }
            if r.is_multiple_of(13) {
                s.push_str("line\nbreak \\ backslash");
            }
            body.append_value(s);
        }
        if null(10) {
            raw.append_null();
        } else {
            raw.append_value(r.to_le_bytes());
        }
        day.append_option((!null(11)).then_some((r % 40_000) as i32 - 10_000));
        at.append_option((!null(12)).then_some((r % 86_400_000_000) as i64));
        let micros = (r % 4_000_000_000_000_000) as i64 - 1_000_000_000_000_000;
        local_ts.append_option((!null(13)).then_some(micros));
        zoned_ts.append_option((!null(14)).then_some(micros / 3));
        span.append_option((!null(15)).then(|| {
            IntervalMonthDayNano::new(
                (r % 30) as i32,
                (r % 400) as i32 - 200,
                (r % 86_400_000_000) as i64 * 1000,
            )
        }));
        if null(16) {
            tags.append_null();
        } else {
            for k in 0..(r % 4) {
                tags.values().append_value(word(k));
            }
            tags.append(true);
        }
        if null(17) {
            scores.append_null();
        } else {
            for k in 0..(r % 6) {
                if k == 3 {
                    scores.values().append_null();
                } else {
                    scores.values().append_value((r >> k) as i32 % 1000);
                }
            }
            scores.append(true);
        }
        rank.append_option((!null(18)).then_some((r % 100) as i32));
        label.append_option((!null(19)).then(|| word(3).to_string()));
        if null(20) {
            doc.append_null();
        } else {
            doc.append_value(format!(
                "{{\"id\": {i}, \"name\": \"{}\", \"score\": {}, \"tags\": [\"{}\", \"{}\"]}}",
                word(5),
                r % 1000,
                word(6),
                word(7)
            ));
        }
    }
    let attrs = StructArray::new(
        attrs_fields(),
        vec![
            Arc::new(rank.finish()) as ArrayRef,
            Arc::new(label.finish()),
        ],
        None,
    );
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(flag.finish()),
        Arc::new(small.finish()),
        Arc::new(medium.finish()),
        Arc::new(big.finish()),
        Arc::new(ratio.finish()),
        Arc::new(measure.finish()),
        Arc::new(
            amount
                .finish()
                .with_precision_and_scale(18, 4)
                .unwrap_or_else(|_| unreachable!()),
        ),
        Arc::new(name.finish()),
        Arc::new(body.finish()),
        Arc::new(raw.finish()),
        Arc::new(day.finish()),
        Arc::new(at.finish()),
        Arc::new(local_ts.finish()),
        Arc::new(zoned_ts.finish()),
        Arc::new(span.finish()),
        Arc::new(tags.finish()),
        Arc::new(scores.finish()),
        Arc::new(attrs),
        Arc::new(doc.finish()),
    ];
    RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|e| panic!("wide batch: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_and_typed() {
        let a = super::batches(70_000);
        let b = super::batches(70_000);
        assert_eq!(a, b);
        assert_eq!(a.iter().map(|b| b.num_rows()).sum::<usize>(), 70_000);
        assert_eq!(a[0].num_columns(), super::schema().fields().len());
        assert!(a[0].column(8).null_count() > 0);
    }
}
