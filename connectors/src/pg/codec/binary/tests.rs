//! Tests of `binary.rs`, in a file of their own to keep that file readable.

//! Golden bytes per type (checked against PostgreSQL's `*_recv` formats)
//! and property tests decoding with `postgres-protocol`, an independent
//! implementation of the same formats.

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::*;
use postgres_protocol::types as pgt;
use proptest::prelude::*;

use super::*;
use crate::pg::codec::ColumnCodec;
use crate::pg::codec::types::PgType;

/// Encodes one column and returns each row's payload (None for NULL).
fn payloads(array: ArrayRef, pg: PgType) -> Vec<Option<Vec<u8>>> {
    let codec = ColumnCodec::plan("c", array.data_type(), &pg).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "c",
        array.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema, vec![array]).unwrap();
    let mut out = Vec::new();
    BinaryEncoder::new(Arc::new(vec![codec]))
        .encode(&batch, &mut out)
        .unwrap();
    let mut rows = Vec::new();
    let mut p = 0;
    while p < out.len() {
        assert_eq!(&out[p..p + 2], &1i16.to_be_bytes(), "field count");
        let len = i32::from_be_bytes(out[p + 2..p + 6].try_into().unwrap());
        p += 6;
        if len < 0 {
            rows.push(None);
        } else {
            rows.push(Some(out[p..p + len as usize].to_vec()));
            p += len as usize;
        }
    }
    rows
}

fn hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    Some(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect(),
    )
}

#[test]
fn golden_bytes_per_type() {
    type Case = (ArrayRef, PgType, Vec<Option<Vec<u8>>>);
    let cases: Vec<Case> = vec![
        (
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            PgType::Bool,
            vec![hex("01"), hex("00"), None],
        ),
        (
            Arc::new(Int16Array::from(vec![-2])),
            PgType::Int2,
            vec![hex("fffe")],
        ),
        (
            Arc::new(Int64Array::from(vec![1])),
            PgType::Int4,
            vec![hex("00000001")],
        ),
        (
            Arc::new(Int8Array::from(vec![-1])),
            PgType::Int8,
            vec![hex("ffffffffffffffff")],
        ),
        (
            Arc::new(Float32Array::from(vec![-0.0, f32::NAN, f32::INFINITY])),
            PgType::Float4,
            vec![hex("80000000"), hex("7fc00000"), hex("7f800000")],
        ),
        (
            Arc::new(Float64Array::from(vec![1.5, f64::NEG_INFINITY])),
            PgType::Float8,
            vec![hex("3ff8000000000000"), hex("fff0000000000000")],
        ),
        // 12345.678: ndigits 3, weight 1, sign +, dscale 3, digits 1 2345 6780
        (
            Arc::new(
                Decimal128Array::from(vec![12_345_678])
                    .with_precision_and_scale(10, 3)
                    .unwrap(),
            ),
            PgType::Numeric(None),
            vec![hex("0003 0001 0000 0003 0001 0929 1a7c")],
        ),
        // an Int64 into numeric: -10000 = ndigits 1, weight 1, sign -, dscale 0, digit 1
        (
            Arc::new(Int64Array::from(vec![-10_000])),
            PgType::Numeric(None),
            vec![hex("0001 0001 4000 0000 0001")],
        ),
        (
            Arc::new(Float64Array::from(vec![f64::NAN])),
            PgType::Numeric(None),
            vec![hex("0000 0000 c000 0000")],
        ),
        (
            Arc::new(StringArray::from(vec!["é", ""])),
            PgType::Text,
            vec![hex("c3a9"), hex("")],
        ),
        (
            Arc::new(BinaryArray::from(vec![&[0u8, 255][..]])),
            PgType::Bytea,
            vec![hex("00ff")],
        ),
        (
            Arc::new(Date32Array::from(vec![10_957, 10_956, i32::MAX, i32::MIN])),
            PgType::Date,
            vec![
                hex("00000000"),
                hex("ffffffff"),
                hex("7fffffff"),
                hex("80000000"),
            ],
        ),
        (
            Arc::new(Time64MicrosecondArray::from(vec![1])),
            PgType::Time,
            vec![hex("0000000000000001")],
        ),
        (
            Arc::new(TimestampMicrosecondArray::from(vec![946_684_800_000_001])),
            PgType::Timestamp,
            vec![hex("0000000000000001")],
        ),
        (
            Arc::new(TimestampSecondArray::from(vec![946_684_799]).with_timezone("+05:00")),
            PgType::Timestamptz,
            vec![hex("fffffffffff0bdc0")],
        ),
        (
            Arc::new(TimestampNanosecondArray::from(vec![i64::MAX])),
            PgType::Timestamp,
            vec![hex("7fffffffffffffff")],
        ),
        (
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                IntervalMonthDayNano::new(1, 2, 3_000),
            ])),
            PgType::Interval,
            vec![hex("0000000000000003 00000002 00000001")],
        ),
        (
            Arc::new(DurationSecondArray::from(vec![-1])),
            PgType::Interval,
            vec![hex("fffffffffff0bdc0 00000000 00000000")],
        ),
        (
            Arc::new(FixedSizeBinaryArray::try_from_iter(vec![[0xabu8; 16]].into_iter()).unwrap()),
            PgType::Uuid,
            vec![hex(&"ab".repeat(16))],
        ),
        (
            Arc::new(StringArray::from(vec![
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            ])),
            PgType::Uuid,
            vec![hex("a0eebc999c0b4ef8bb6d6bb9bd380a11")],
        ),
        (
            Arc::new(StringArray::from(vec!["{}"])),
            PgType::Json,
            vec![hex("7b7d")],
        ),
        (
            Arc::new(StringArray::from(vec!["{}"])),
            PgType::Jsonb,
            vec![hex("01 7b7d")],
        ),
        (
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                Some(vec![Some(1), None]),
                Some(vec![]),
                None,
            ])),
            PgType::Array(Box::new(PgType::Int4)),
            vec![
                // ndim 1, has null, oid 23, length 2, lower bound 1, elements
                hex("00000001 00000001 00000017 00000002 00000001 00000004 00000001 ffffffff"),
                hex("00000000 00000000 00000017"),
                None,
            ],
        ),
    ];
    for (array, pg, expected) in cases {
        let dt = array.data_type().clone();
        assert_eq!(payloads(array, pg.clone()), expected, "{dt} -> {pg}");
    }
}

#[test]
fn struct_to_jsonb_has_the_version_byte() {
    let s = StructArray::from(vec![(
        Arc::new(Field::new("a", DataType::Int32, true)),
        Arc::new(Int32Array::from(vec![7])) as ArrayRef,
    )]);
    assert_eq!(
        payloads(Arc::new(s), PgType::Jsonb),
        vec![Some(b"\x01{\"a\":7}".to_vec())]
    );
}

#[test]
fn out_of_range_values_name_the_row() {
    let codec = ColumnCodec::plan("d", &DataType::Date32, &PgType::Date).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(Date32Array::from(vec![0, -3_000_000]))],
    )
    .unwrap();
    let mut out = Vec::new();
    let e = BinaryEncoder::new(Arc::new(vec![codec]))
        .encode(&batch, &mut out)
        .unwrap_err();
    assert_eq!((e.column.as_str(), e.row), ("d", 1));
    assert!(e.reason.contains("out of PostgreSQL's range"), "{e}");
    assert!(out.is_empty(), "nothing is appended on error");
    let codec = ColumnCodec::plan(
        "n",
        &DataType::Decimal128(10, 2),
        &PgType::Numeric(Some((4, 2))),
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "n",
        DataType::Decimal128(10, 2),
        true,
    )]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(
            Decimal128Array::from(vec![9_999, 10_000])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        )],
    )
    .unwrap();
    let e = BinaryEncoder::new(Arc::new(vec![codec]))
        .encode(&batch, &mut out)
        .unwrap_err();
    assert_eq!(e.row, 1);
    assert!(e.reason.contains("numeric field overflow"), "{e}");
    let codec = ColumnCodec::plan("t", &DataType::Utf8, &PgType::Text).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec!["ok", "nul\0byte"]))],
    )
    .unwrap();
    let e = BinaryEncoder::new(Arc::new(vec![codec]))
        .encode(&batch, &mut out)
        .unwrap_err();
    assert_eq!(e.row, 1);
    assert!(e.reason.contains("NUL"), "{e}");
}

proptest! {
    #[test]
    fn integers_and_floats_round_trip(v in any::<i64>(), f in any::<f64>(), g in any::<f32>()) {
        let p = payloads(Arc::new(Int64Array::from(vec![v])), PgType::Int8);
        prop_assert_eq!(pgt::int8_from_sql(p[0].as_deref().unwrap()).unwrap(), v);
        let p = payloads(Arc::new(Float64Array::from(vec![f])), PgType::Float8);
        prop_assert_eq!(pgt::float8_from_sql(p[0].as_deref().unwrap()).unwrap().to_bits(), f.to_bits());
        let p = payloads(Arc::new(Float32Array::from(vec![g])), PgType::Float4);
        prop_assert_eq!(pgt::float4_from_sql(p[0].as_deref().unwrap()).unwrap().to_bits(), g.to_bits());
    }

    #[test]
    fn text_and_bytes_round_trip(s in "[^\u{0}]{0,64}", b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let p = payloads(Arc::new(StringArray::from(vec![s.clone()])), PgType::Text);
        prop_assert_eq!(pgt::text_from_sql(p[0].as_deref().unwrap()).unwrap(), s.as_str());
        let p = payloads(Arc::new(BinaryArray::from(vec![b.as_slice()])), PgType::Bytea);
        prop_assert_eq!(pgt::bytea_from_sql(p[0].as_deref().unwrap()), b.as_slice());
    }

    #[test]
    fn temporal_values_round_trip(
        us in -210_000_000_000_000_000i64..9_000_000_000_000_000_000,
        days in -2_440_000i32..2_000_000_000,
    ) {
        let p = payloads(Arc::new(TimestampMicrosecondArray::from(vec![us])), PgType::Timestamp);
        prop_assert_eq!(pgt::timestamp_from_sql(p[0].as_deref().unwrap()).unwrap(), us - 946_684_800_000_000);
        let p = payloads(Arc::new(Date32Array::from(vec![days])), PgType::Date);
        prop_assert_eq!(pgt::date_from_sql(p[0].as_deref().unwrap()).unwrap(), days - 10_957);
    }

    #[test]
    fn arrays_round_trip(rows in proptest::collection::vec(proptest::option::of(proptest::collection::vec(proptest::option::of(any::<i32>()), 0..6)), 1..8)) {
        let array = ListArray::from_iter_primitive::<Int32Type, _, _>(rows.clone());
        let p = payloads(Arc::new(array), PgType::Array(Box::new(PgType::Int4)));
        for (row, payload) in rows.iter().zip(p) {
            match (row, payload) {
                (None, None) => {}
                (Some(elems), Some(bytes)) => {
                    let a = pgt::array_from_sql(&bytes).unwrap();
                    prop_assert_eq!(a.element_type(), 23);
                    prop_assert_eq!(a.has_nulls(), elems.iter().any(Option::is_none));
                    use fallible_iterator::FallibleIterator;
                    let got: Vec<Option<i32>> = a.values().map(|v| Ok(v.map(|b| pgt::int4_from_sql(b).unwrap()))).collect().unwrap();
                    prop_assert_eq!(&got, elems);
                }
                (r, p) => prop_assert!(false, "row {:?} encoded as {:?}", r, p),
            }
        }
    }
}
