//! The type matrix: every PostgreSQL type of the mapping with its edge values
//! and NULLs, loaded through binary COPY and through the `.sql` artifact with
//! psql; both must equal the expected values exactly. For CSV input, the load
//! must also equal PostgreSQL's own `\copy … (FORMAT csv)` of the same file.

use crate::common;

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::*;
use common::{Scratch, psql_cmd, psql_file, text};
use ferry_connectors::pg::artifacts::ArtifactKinds;
use ferry_engine::load::{LoadOptions, load};
use ferry_engine::spec::DatasetSpec;

/// One column: its Arrow array, and the expected value of each row as a SQL
/// literal (cast to the column's type by the INSERT).
struct Col {
    name: &'static str,
    array: ArrayRef,
    expected: [&'static str; 6],
    field_meta: Option<(&'static str, &'static str)>,
}

fn col(name: &'static str, array: ArrayRef, expected: [&'static str; 6]) -> Col {
    Col {
        name,
        array,
        expected,
        field_meta: None,
    }
}

fn list<T: ArrowPrimitiveType>(
    item: DataType,
    rows: Vec<Option<Vec<Option<T::Native>>>>,
) -> ArrayRef {
    let mut b = ListBuilder::new(PrimitiveBuilder::<T>::new().with_data_type(item.clone()))
        .with_field(Arc::new(Field::new("item", item, true)));
    for r in rows {
        match r {
            None => b.append(false),
            Some(vals) => {
                for v in vals {
                    b.values().append_option(v);
                }
                b.append(true);
            }
        }
    }
    Arc::new(b.finish())
}

fn columns() -> Vec<Col> {
    // The last microsecond Arrow can hold (i64::MAX itself means infinity):
    // 294247-01-10 04:00:54.775806, well inside PostgreSQL's range.
    let ts_max = i64::MAX - 1;
    let ts_min = -211_813_488_000_000_000i64 + 946_684_800_000_000;
    let date_min = -2_451_545 + 10_957;
    let date_max = 2_145_031_948 + 10_957;
    let mut struct_builder = StructBuilder::from_fields(
        vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ],
        6,
    );
    for (a, b, valid) in [
        (Some(1), Some("x"), true),
        (None, Some("q\"uote\\ \u{1F600}"), true),
        (Some(-5), None, true),
        (None, None, false),
        (Some(i32::MAX), Some(""), true),
        (Some(0), Some("tab\tnl\n"), true),
    ] {
        struct_builder
            .field_builder::<Int32Builder>(0)
            .unwrap()
            .append_option(a);
        struct_builder
            .field_builder::<StringBuilder>(1)
            .unwrap()
            .append_option(b);
        struct_builder.append(valid);
    }
    let text_list = {
        let mut b = ListBuilder::new(StringBuilder::new());
        for r in [
            Some(vec![
                Some("a b"),
                Some(""),
                Some("NULL"),
                Some("x\"y"),
                Some("c,d"),
                Some("{}"),
                Some("back\\slash"),
                Some("tab\there"),
            ]),
            Some(vec![]),
            None,
            Some(vec![Some("ü ✓")]),
            Some(vec![None, Some("null")]),
            Some(vec![Some("plain")]),
        ] {
            match r {
                None => b.append(false),
                Some(v) => {
                    for s in v {
                        b.values().append_option(s);
                    }
                    b.append(true)
                }
            }
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let dict: DictionaryArray<Int32Type> = vec![
        Some("red"),
        Some("green"),
        None,
        Some("red"),
        Some(""),
        Some("blue"),
    ]
    .into_iter()
    .collect();
    let uuid = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
        vec![
            Some([0u8; 16]),
            Some([0xff; 16]),
            None,
            Some([
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11,
            ]),
            Some([1; 16]),
            Some([0x12; 16]),
        ]
        .into_iter(),
        16,
    )
    .unwrap();
    let d256 = Decimal256Array::from(vec![
        Some(i256::from_string(&"9".repeat(76)).unwrap()),
        Some(i256::from_string(&format!("-{}", "9".repeat(76))).unwrap()),
        Some(i256::ZERO),
        None,
        Some(i256::from_i128(1)),
        Some(i256::from_string("12345678901234567890123456789012345678901234567890").unwrap()),
    ])
    .with_precision_and_scale(76, 20)
    .unwrap();
    let nines76 = "9".repeat(76);
    let n76 = Box::leak(format!("{}.{}", &nines76[..56], &nines76[56..]).into_boxed_str())
        as &'static str;
    let n76neg = Box::leak(format!("-{n76}").into_boxed_str()) as &'static str;

    vec![
        col(
            "b",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
                Some(false),
                Some(true),
            ])),
            ["true", "false", "NULL", "true", "false", "true"],
        ),
        col(
            "i2",
            Arc::new(Int16Array::from(vec![
                Some(i16::MIN),
                Some(i16::MAX),
                Some(0),
                None,
                Some(-1),
                Some(1),
            ])),
            ["-32768", "32767", "0", "NULL", "-1", "1"],
        ),
        col(
            "i1",
            Arc::new(Int8Array::from(vec![
                Some(i8::MIN),
                Some(i8::MAX),
                Some(0),
                None,
                Some(-1),
                Some(1),
            ])),
            ["-128", "127", "0", "NULL", "-1", "1"],
        ),
        col(
            "u1",
            Arc::new(UInt8Array::from(vec![
                Some(u8::MAX),
                Some(0),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
            ["255", "0", "NULL", "1", "2", "3"],
        ),
        col(
            "i4",
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                Some(i32::MAX),
                Some(0),
                None,
                Some(-1),
                Some(1),
            ])),
            ["-2147483648", "2147483647", "0", "NULL", "-1", "1"],
        ),
        col(
            "u2",
            Arc::new(UInt16Array::from(vec![
                Some(u16::MAX),
                Some(0),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
            ["65535", "0", "NULL", "1", "2", "3"],
        ),
        col(
            "i8",
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(i64::MAX),
                Some(0),
                None,
                Some(-1),
                Some(1),
            ])),
            [
                "-9223372036854775808",
                "9223372036854775807",
                "0",
                "NULL",
                "-1",
                "1",
            ],
        ),
        col(
            "u4",
            Arc::new(UInt32Array::from(vec![
                Some(u32::MAX),
                Some(0),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
            ["4294967295", "0", "NULL", "1", "2", "3"],
        ),
        col(
            "u8",
            Arc::new(UInt64Array::from(vec![
                Some(u64::MAX),
                Some(0),
                None,
                Some(1),
                Some(2),
                Some(3),
            ])),
            ["18446744073709551615", "0", "NULL", "1", "2", "3"],
        ),
        col(
            "i8num",
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(i64::MAX),
                Some(0),
                None,
                Some(-1),
                Some(10),
            ])),
            [
                "-9223372036854775808",
                "9223372036854775807",
                "0",
                "NULL",
                "-1",
                "10",
            ],
        ),
        col(
            "f4",
            Arc::new(Float32Array::from(vec![
                Some(f32::NAN),
                Some(f32::INFINITY),
                Some(f32::NEG_INFINITY),
                Some(-0.0),
                Some(1e-45),
                Some(3.402_823_5e38),
            ])),
            [
                "'NaN'",
                "'Infinity'",
                "'-Infinity'",
                "'-0'",
                "'1e-45'",
                "'3.4028235e38'",
            ],
        ),
        col(
            "f8",
            Arc::new(Float64Array::from(vec![
                Some(f64::NAN),
                Some(f64::INFINITY),
                Some(f64::NEG_INFINITY),
                Some(-0.0),
                Some(5e-324),
                Some(0.1),
            ])),
            [
                "'NaN'",
                "'Infinity'",
                "'-Infinity'",
                "'-0'",
                "'5e-324'",
                "'0.1'",
            ],
        ),
        col(
            "f2",
            Arc::new(Float16Array::from(vec![
                Some(half::f16::from_f32(1.5)),
                Some(half::f16::from_f32(-0.0)),
                None,
                Some(half::f16::MAX),
                Some(half::f16::from_f32(0.1)),
                Some(half::f16::INFINITY),
            ])),
            [
                "'1.5'",
                "'-0'",
                "NULL",
                "'65504'",
                "'0.099975586'",
                "'Infinity'",
            ],
        ),
        col(
            "d",
            Arc::new(
                Decimal128Array::from(vec![
                    Some("9".repeat(38).parse::<i128>().unwrap()),
                    Some(-"9".repeat(38).parse::<i128>().unwrap()),
                    Some(0),
                    None,
                    Some(1),
                    Some(-15_000_000_000),
                ])
                .with_precision_and_scale(38, 10)
                .unwrap(),
            ),
            [
                "'9999999999999999999999999999.9999999999'",
                "'-9999999999999999999999999999.9999999999'",
                "'0.0000000000'",
                "NULL",
                "'0.0000000001'",
                "'-1.5000000000'",
            ],
        ),
        col(
            "dneg",
            Arc::new(
                Decimal128Array::from(vec![
                    Some(12_345),
                    Some(-1),
                    Some(0),
                    None,
                    Some(99_999),
                    Some(7),
                ])
                .with_precision_and_scale(5, -3)
                .unwrap(),
            ),
            ["12345000", "-1000", "0", "NULL", "99999000", "7000"],
        ),
        col(
            "d256",
            Arc::new(d256),
            [
                n76,
                n76neg,
                "'0.00000000000000000000'",
                "NULL",
                "'0.00000000000000000001'",
                "'123456789012345678901234567890.12345678901234567890'",
            ],
        ),
        col(
            "t",
            Arc::new(StringArray::from(vec![
                Some(""),
                Some("ünïcødé ✓ 𝄞 漢字 🙂"),
                Some("tab\there\nnewline\r\\backslash \"q\" 'a'"),
                Some("NULL"),
                Some(" \\N "),
                None,
            ])),
            [
                "''",
                "'ünïcødé ✓ 𝄞 漢字 🙂'",
                "E'tab\\there\\nnewline\\r\\\\backslash \"q\" \\'a\\''",
                "'NULL'",
                "' \\N '",
                "NULL",
            ],
        ),
        col(
            "lt",
            Arc::new(LargeStringArray::from(vec![
                Some("large"),
                None,
                Some(""),
                Some("\u{10FFFF}"),
                Some("é"),
                Some("z"),
            ])),
            ["'large'", "NULL", "''", "U&'\\+10FFFF'", "'é'", "'z'"],
        ),
        col(
            "tv",
            Arc::new(StringViewArray::from(vec![
                Some("a string longer than twelve bytes, stored out of line"),
                Some("short"),
                None,
                Some(""),
                Some("\\"),
                Some("ok"),
            ])),
            [
                "'a string longer than twelve bytes, stored out of line'",
                "'short'",
                "NULL",
                "''",
                "E'\\\\'",
                "'ok'",
            ],
        ),
        col(
            "by",
            Arc::new(BinaryArray::from(vec![
                Some(&b""[..]),
                Some(&[0u8, 0xff][..]),
                Some(&b"\\x5c"[..]),
                None,
                Some(&all_bytes[..]),
                Some(&b"\n\t"[..]),
            ])),
            [
                "'\\x'",
                "'\\x00ff'",
                "'\\x5c783563'",
                "NULL",
                Box::leak(
                    format!(
                        "'\\x{}'",
                        all_bytes
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>()
                    )
                    .into_boxed_str(),
                ),
                "'\\x0a09'",
            ],
        ),
        col(
            "dt",
            Arc::new(Date32Array::from(vec![
                Some(0),
                Some(10_956),
                Some(date_min),
                Some(date_max),
                Some(i32::MAX),
                Some(i32::MIN),
            ])),
            [
                "'1970-01-01'",
                "'1999-12-31'",
                "'4714-11-24 BC'",
                "'5874897-12-31'",
                "'infinity'",
                "'-infinity'",
            ],
        ),
        col(
            "d64",
            Arc::new(Date64Array::from(vec![
                Some(0),
                Some(-86_400_000),
                None,
                Some(951_782_400_000),
                Some(86_400_000),
                Some(-62_135_596_800_000),
            ])),
            [
                "'1970-01-01'",
                "'1969-12-31'",
                "NULL",
                "'2000-02-29'",
                "'1970-01-02'",
                "'0001-01-01'",
            ],
        ),
        col(
            "tm",
            Arc::new(Time64MicrosecondArray::from(vec![
                Some(0),
                Some(86_399_999_999),
                Some(86_400_000_000),
                None,
                Some(1),
                Some(43_200_000_000),
            ])),
            [
                "'00:00:00'",
                "'23:59:59.999999'",
                "'24:00:00'",
                "NULL",
                "'00:00:00.000001'",
                "'12:00:00'",
            ],
        ),
        col(
            "tm32",
            Arc::new(Time32MillisecondArray::from(vec![
                Some(0),
                Some(86_399_999),
                None,
                Some(1),
                Some(500),
                Some(3_600_000),
            ])),
            [
                "'00:00:00'",
                "'23:59:59.999'",
                "NULL",
                "'00:00:00.001'",
                "'00:00:00.5'",
                "'01:00:00'",
            ],
        ),
        col(
            "ts_s",
            Arc::new(TimestampSecondArray::from(vec![
                Some(0),
                Some(-1),
                Some(946_684_800),
                None,
                Some(-62_135_596_800),
                Some(4_102_444_800),
            ])),
            [
                "'1970-01-01 00:00:00'",
                "'1969-12-31 23:59:59'",
                "'2000-01-01 00:00:00'",
                "NULL",
                "'0001-01-01 00:00:00'",
                "'2100-01-01 00:00:00'",
            ],
        ),
        col(
            "ts_ms",
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1),
                Some(-1),
                Some(951_782_400_123),
                None,
                Some(0),
                Some(i64::MAX),
            ])),
            [
                "'1970-01-01 00:00:00.001'",
                "'1969-12-31 23:59:59.999'",
                "'2000-02-29 00:00:00.123'",
                "NULL",
                "'1970-01-01'",
                "'infinity'",
            ],
        ),
        col(
            "ts_us",
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(ts_max),
                Some(ts_min),
                Some(i64::MAX),
                Some(i64::MIN),
                Some(-1),
                None,
            ])),
            [
                "'294247-01-10 04:00:54.775806'",
                "'4714-11-24 00:00:00 BC'",
                "'infinity'",
                "'-infinity'",
                "'1969-12-31 23:59:59.999999'",
                "NULL",
            ],
        ),
        col(
            "ts_ns",
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(1),
                Some(-1),
                Some(1_500),
                None,
                Some(999),
                Some(1_000_000_000),
            ])),
            [
                "'1970-01-01 00:00:00'",
                "'1969-12-31 23:59:59.999999'",
                "'1970-01-01 00:00:00.000001'",
                "NULL",
                "'1970-01-01 00:00:00'",
                "'1970-01-01 00:00:01'",
            ],
        ),
        col(
            "tstz",
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(0),
                    Some(-1),
                    Some(1_700_000_000_123_456),
                    None,
                    Some(i64::MAX),
                    Some(946_684_800_000_000),
                ])
                .with_timezone("+02:00"),
            ),
            [
                "'1970-01-01 00:00:00+00'",
                "'1969-12-31 23:59:59.999999+00'",
                "'2023-11-14 22:13:20.123456+00'",
                "NULL",
                "'infinity'",
                "'2000-01-01 00:00:00+00'",
            ],
        ),
        col(
            "iv",
            Arc::new(IntervalMonthDayNanoArray::from(vec![
                Some(IntervalMonthDayNano::new(1, 2, 3_000_000_000)),
                Some(IntervalMonthDayNano::new(-14, -3, -1_500)),
                Some(IntervalMonthDayNano::new(0, 0, 0)),
                None,
                Some(IntervalMonthDayNano::new(
                    i32::MAX,
                    i32::MIN,
                    86_400_000_000_000,
                )),
                Some(IntervalMonthDayNano::new(0, 0, -1)),
            ])),
            [
                "'1 mon 2 days 00:00:03'",
                "'-14 mons -3 days -00:00:00.000002'",
                "'0'",
                "NULL",
                "'2147483647 mons -2147483648 days 24:00:00'",
                "'-00:00:00.000001'",
            ],
        ),
        col(
            "dur",
            Arc::new(DurationMillisecondArray::from(vec![
                Some(1_500),
                Some(-1),
                Some(0),
                None,
                Some(86_400_000 * 400),
                Some(3_600_000),
            ])),
            [
                "'00:00:01.5'",
                "'-00:00:00.001'",
                "'0'",
                "NULL",
                "'9600:00:00'",
                "'01:00:00'",
            ],
        ),
        Col {
            name: "u",
            array: Arc::new(uuid),
            expected: [
                "'00000000-0000-0000-0000-000000000000'",
                "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
                "NULL",
                "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
                "'01010101-0101-0101-0101-010101010101'",
                "'12121212-1212-1212-1212-121212121212'",
            ],
            field_meta: Some(("ARROW:extension:name", "arrow.uuid")),
        },
        Col {
            name: "j",
            array: Arc::new(StringArray::from(vec![
                Some("{\"a\": [1, 2.5, null],  \"b\": \"x\"}"),
                Some("[]"),
                Some("\"str\\n\""),
                None,
                Some("1e400"),
                Some("{\"k\":\"\\u00e9\"}"),
            ])),
            expected: [
                "'{\"a\": [1, 2.5, null],  \"b\": \"x\"}'",
                "'[]'",
                "'\"str\\n\"'",
                "NULL",
                "'1e400'",
                "'{\"k\":\"\\u00e9\"}'",
            ],
            field_meta: Some(("ferry.pg_type", "json")),
        },
        Col {
            name: "jbs",
            array: Arc::new(StringArray::from(vec![
                Some("{\"b\": 1, \"a\": [true, null]}"),
                Some("null"),
                None,
                Some("\"ü\""),
                Some("{}"),
                Some("[1.50, -0]"),
            ])),
            expected: [
                "'{\"a\": [true, null], \"b\": 1}'",
                "'null'",
                "NULL",
                "'\"ü\"'",
                "'{}'",
                "'[1.50, -0]'",
            ],
            field_meta: Some(("ARROW:extension:name", "arrow.json")),
        },
        col(
            "jb",
            Arc::new(struct_builder.finish()),
            [
                "'{\"a\":1,\"b\":\"x\"}'",
                "'{\"b\":\"q\\\"uote\\\\ 😀\"}'",
                "'{\"a\":-5}'",
                "NULL",
                "'{\"a\":2147483647,\"b\":\"\"}'",
                "'{\"a\":0,\"b\":\"tab\\tnl\\n\"}'",
            ],
        ),
        col(
            "ai",
            list::<Int32Type>(
                DataType::Int32,
                vec![
                    Some(vec![Some(1), None, Some(3)]),
                    Some(vec![]),
                    None,
                    Some(vec![Some(i32::MIN), Some(i32::MAX)]),
                    Some(vec![Some(0)]),
                    Some(vec![None]),
                ],
            ),
            [
                "'{1,NULL,3}'",
                "'{}'",
                "NULL",
                "'{-2147483648,2147483647}'",
                "'{0}'",
                "'{NULL}'",
            ],
        ),
        col(
            "at",
            text_list,
            [
                "E'{\"a b\",\"\",\"NULL\",\"x\\\\\"y\",\"c,d\",\"{}\",\"back\\\\\\\\slash\",\"tab\\there\"}'",
                "'{}'",
                "NULL",
                "'{\"ü ✓\"}'",
                "'{NULL,null}'",
                "'{plain}'",
            ],
        ),
        col(
            "af",
            list::<Float64Type>(
                DataType::Float64,
                vec![
                    Some(vec![Some(f64::NAN), Some(-0.0), Some(f64::INFINITY)]),
                    Some(vec![Some(0.1)]),
                    None,
                    Some(vec![None]),
                    Some(vec![]),
                    Some(vec![Some(1e300)]),
                ],
            ),
            [
                "'{NaN,-0,Infinity}'",
                "'{0.1}'",
                "NULL",
                "'{NULL}'",
                "'{}'",
                "'{1e+300}'",
            ],
        ),
        col(
            "ad",
            list::<Date32Type>(
                DataType::Date32,
                vec![
                    Some(vec![Some(0), Some(i32::MAX)]),
                    None,
                    Some(vec![]),
                    Some(vec![Some(date_min)]),
                    Some(vec![None, Some(1)]),
                    Some(vec![Some(10_957)]),
                ],
            ),
            [
                "'{1970-01-01,infinity}'",
                "NULL",
                "'{}'",
                "'{\"4714-11-24 BC\"}'",
                "'{NULL,1970-01-02}'",
                "'{2000-01-01}'",
            ],
        ),
        col(
            "ats",
            list::<TimestampMicrosecondType>(
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                vec![
                    Some(vec![Some(0), None]),
                    None,
                    Some(vec![]),
                    Some(vec![Some(1_500_000)]),
                    Some(vec![Some(i64::MIN)]),
                    Some(vec![Some(-1)]),
                ],
            ),
            [
                "'{\"1970-01-01 00:00:00+00\",NULL}'",
                "NULL",
                "'{}'",
                "'{\"1970-01-01 00:00:01.5+00\"}'",
                "'{-infinity}'",
                "'{\"1969-12-31 23:59:59.999999+00\"}'",
            ],
        ),
        col(
            "dict",
            Arc::new(dict),
            ["'red'", "'green'", "NULL", "'red'", "''", "'blue'"],
        ),
        col(
            "nul",
            Arc::new(NullArray::new(6)),
            ["NULL", "NULL", "NULL", "NULL", "NULL", "NULL"],
        ),
        col(
            "vc",
            Arc::new(StringArray::from(vec![
                Some("abc"),
                Some(""),
                None,
                Some("ünï"),
                Some("1234567890"),
                Some("x"),
            ])),
            ["'abc'", "''", "NULL", "'ünï'", "'1234567890'", "'x'"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_loads_identically_through_binary_copy_and_sql() {
    let s = Scratch::new("matrix").await;
    let cols = columns();
    let fields: Vec<Field> = cols
        .iter()
        .map(|c| {
            let f = Field::new(c.name, c.array.data_type().clone(), true);
            match c.field_meta {
                Some((k, v)) => f.with_metadata([(k.to_string(), v.to_string())].into()),
                None => f,
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        cols.iter().map(|c| c.array.clone()).collect(),
    )
    .unwrap();
    let input = s.path("matrix.arrow");
    let mut w =
        arrow::ipc::writer::FileWriter::try_new(std::fs::File::create(&input).unwrap(), &schema)
            .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();

    let spec_dir = s.spec(
        "matrix",
        &format!(
            "[source]\nformat = \"arrow\"\n[target]\ntable = \"{}\"\n[target.types]\ni8num = \"numeric\"\nvc = \"varchar(10)\"\n",
            s.table("matrix")
        ),
        "SELECT * FROM source",
    );
    let spec = DatasetSpec::load(&spec_dir).unwrap();
    let work = s.path("work");
    let options = LoadOptions {
        streams: Some(2),
        force: false,
        work_dir: work.clone(),
        artifacts: ArtifactKinds {
            sql: true,
            pgcopy: true,
        },
        part_bytes: 1 << 20,
        table: None,
        mode: None,
        keys: None,
        progress: false,
        job: None,
        sync_artifacts: true,
        part: None,
    };
    let report = load(
        &spec,
        input.to_str().unwrap(),
        &common::pg_config(),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(report.rows, 6);

    // The column types follow the mapping (and the target.types overrides).
    let types: Vec<(String, String)> =
        s.db.query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = $1::text::regclass AND attnum > 0 ORDER BY attnum",
            &[&s.table("matrix")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expect_types = [
        ("b", "boolean"),
        ("i2", "smallint"),
        ("i1", "smallint"),
        ("u1", "smallint"),
        ("i4", "integer"),
        ("u2", "integer"),
        ("i8", "bigint"),
        ("u4", "bigint"),
        ("u8", "numeric(20,0)"),
        ("i8num", "numeric"),
        ("f4", "real"),
        ("f8", "double precision"),
        ("f2", "real"),
        ("d", "numeric(38,10)"),
        ("dneg", "numeric(5,-3)"),
        ("d256", "numeric(76,20)"),
        ("t", "text"),
        ("lt", "text"),
        ("tv", "text"),
        ("by", "bytea"),
        ("dt", "date"),
        ("d64", "date"),
        ("tm", "time without time zone"),
        ("tm32", "time without time zone"),
        ("ts_s", "timestamp without time zone"),
        ("ts_ms", "timestamp without time zone"),
        ("ts_us", "timestamp without time zone"),
        ("ts_ns", "timestamp without time zone"),
        ("tstz", "timestamp with time zone"),
        ("iv", "interval"),
        ("dur", "interval"),
        ("u", "uuid"),
        ("j", "json"),
        ("jbs", "jsonb"),
        ("jb", "jsonb"),
        ("ai", "integer[]"),
        ("at", "text[]"),
        ("af", "double precision[]"),
        ("ad", "date[]"),
        ("ats", "timestamp with time zone[]"),
        ("dict", "text"),
        ("nul", "text"),
        ("vc", "character varying(10)"),
    ];
    assert_eq!(types.len(), expect_types.len());
    for ((n, t), (en, et)) in types.iter().zip(expect_types) {
        assert_eq!((n.as_str(), t.as_str()), (en, et));
    }

    // Expected values, as literals, in a table with the same DDL. json has no
    // equality operator, so rows are compared by their text form.
    let expected = s.table("expected");
    s.db.batch_execute(&format!(
        "CREATE TABLE {expected} (LIKE {})",
        s.table("matrix")
    ))
    .await
    .unwrap();
    for row in 0..6 {
        let values: Vec<&str> = cols.iter().map(|c| c.expected[row]).collect();
        let sql = format!("INSERT INTO {expected} VALUES ({})", values.join(", "));
        s.db.batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", ferry_connectors::pg::error::describe(&e)));
    }
    let diff = s.diff(&expected, &s.table("matrix")).await;
    assert!(
        diff.is_empty(),
        "binary COPY differs from the expected values:\n{}",
        diff.join("\n")
    );

    // Replay the .sql artifact with psql into the same name, then compare.
    let artifacts = report.job_dir.join("artifacts");
    s.db.batch_execute(&format!(
        "ALTER TABLE {} RENAME TO matrix_binary; DELETE FROM ferry.loads WHERE job_id = '{}'",
        s.table("matrix"),
        report.job_id
    ))
    .await
    .unwrap();
    let out = psql_file(&artifacts.join("load.sql"));
    assert!(
        out.status.success(),
        "psql -f load.sql failed:\n{}",
        text(&out)
    );
    let diff = s.diff(&expected, &s.table("matrix")).await;
    assert!(
        diff.is_empty(),
        "the .sql artifact differs from the expected values:\n{}",
        diff.join("\n")
    );
    // And the .pgcopy artifact is a valid binary COPY file of the same rows.
    let pgcopy = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pgcopy"))
        .unwrap();
    s.db.batch_execute(&format!(
        "CREATE TABLE {} (LIKE {expected})",
        s.table("from_pgcopy")
    ))
    .await
    .unwrap();
    let out = psql_cmd(&format!(
        "\\copy {} FROM '{}' WITH (FORMAT binary)",
        s.table("from_pgcopy"),
        pgcopy.display()
    ));
    assert!(out.status.success(), "{}", text(&out));
    let diff = s.diff(&expected, &s.table("from_pgcopy")).await;
    assert!(
        diff.is_empty(),
        "the .pgcopy artifact differs:\n{}",
        diff.join("\n")
    );
}

/// CSV edge values: ferry (binary COPY) = the .sql replay = PostgreSQL's own
/// `\copy … (FORMAT csv)` of the same file into the same DDL.
#[tokio::test(flavor = "multi_thread")]
async fn csv_loads_exactly_like_postgres_copy_csv() {
    let s = Scratch::new("csvmatrix").await;
    let columns = [
        ("b", "boolean"),
        ("i2", "smallint"),
        ("i4", "integer"),
        ("i8", "bigint"),
        ("f4", "real"),
        ("f8", "double precision"),
        ("n", "numeric(20,4)"),
        ("t", "text"),
        ("vc", "varchar(8)"),
        ("by", "bytea"),
        ("d", "date"),
        ("tm", "time"),
        ("ts", "timestamp"),
        ("tz", "timestamptz"),
        ("iv", "interval"),
        ("u", "uuid"),
        ("j", "json"),
        ("jb", "jsonb"),
        ("c", "char(3)"),
    ];
    let header: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let rows = [
        r#"true,-32768,-2147483648,-9223372036854775808,NaN,-Infinity,-1234567890123456.1235,"",a,\x00ff,1999-12-31,00:00:00,2000-01-01 00:00:00,2024-01-01 10:00:00+02,1 year 2 mons 3 days 04:05:06.5,A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11,"{""a"": 1}","{""b"": [1, 2], ""a"": null}",ab"#,
        r#"f,32767,2147483647,9223372036854775807,3.4028235e38,1.7976931348623157e308,0.00005,"quoted, with ""quotes"" and
a newline",ünï ✓,\x,0001-01-01 BC,23:59:59.999999,1970-01-01 00:00:00.000001,1970-01-01 00:00:00Z,-1 days,00000000-0000-0000-0000-000000000000,[],null,"x""y""#,
        r#",,,,,,,,,,,,,,,,,,"#,
        r#"yes, 7 ,+8,-9,-0,5e-324,1.5e3,back\slash,"",\x5c,infinity,24:00:00,-infinity,infinity,P1DT2H,{a0eebc999c0b4ef8bb6d6bb9bd380a11},"""s""","{}","""""#,
        r#"off,0,0,0,1e-45,0.1,-0.00005,	tab	,"NULL",\x0a,2024-02-29,12:30,2024-02-29 12:30:00,2024-02-29 23:59:59.999999-11:30,@ 2 hours ago,ffffffff-ffff-ffff-ffff-ffffffffffff,"[1,""\u00e9""]",[1.50],"""#,
    ];
    let csv = format!("{}\n{}\n", header.join(","), rows.join("\n"));
    let input = s.path("edge.csv");
    std::fs::write(&input, &csv).unwrap();
    let cols_toml: String = columns
        .iter()
        .map(|(n, t)| format!("[[source.columns]]\nname = \"{n}\"\ntype = \"{t}\"\n"))
        .collect();
    let spec_dir = s.spec(
        "edge",
        &format!(
            // character(3) pads "ab": a change the receipt refuses unless
            // the spec wants it.
            "[source]\nformat = \"csv\"\n{cols_toml}[target]\ntable = \"{}\"\n[target.verify_except]\nc = \"padding\"\n",
            s.table("ferry_csv")
        ),
        "SELECT * FROM source",
    );
    let spec = DatasetSpec::load(&spec_dir).unwrap();
    let options = LoadOptions {
        streams: Some(1),
        force: false,
        work_dir: s.path("work"),
        artifacts: ArtifactKinds {
            sql: true,
            pgcopy: false,
        },
        part_bytes: 1 << 20,
        table: None,
        mode: None,
        keys: None,
        progress: false,
        job: None,
        sync_artifacts: true,
        part: None,
    };
    let report = load(
        &spec,
        input.to_str().unwrap(),
        &common::pg_config(),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(report.rows, rows.len() as u64);

    let ddl: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
    let pg_csv = s.table("pg_csv");
    s.db.batch_execute(&format!("CREATE TABLE {pg_csv} ({})", ddl.join(", ")))
        .await
        .unwrap();
    let out = psql_cmd(&format!(
        "\\copy {pg_csv} FROM '{}' WITH (FORMAT csv, HEADER true)",
        input.display()
    ));
    assert!(
        out.status.success(),
        "PostgreSQL's own \\copy failed:\n{}",
        text(&out)
    );
    let diff = s.diff(&pg_csv, &s.table("ferry_csv")).await;
    assert!(
        diff.is_empty(),
        "ferry's CSV load differs from \\copy csv:\n{}",
        diff.join("\n")
    );
    // A quoted empty string stays an empty string; an unquoted empty field is NULL.
    let (empty, null): (i64, i64) = {
        let r = s.db.query_one(&format!("SELECT count(*) FILTER (WHERE t = ''), count(*) FILTER (WHERE t IS NULL) FROM {}", s.table("ferry_csv")), &[]).await.unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((empty, null), (1, 1));

    s.db.batch_execute(&format!(
        "ALTER TABLE {} RENAME TO ferry_csv_binary; DELETE FROM ferry.loads WHERE job_id = '{}'",
        s.table("ferry_csv"),
        report.job_id
    ))
    .await
    .unwrap();
    let out = psql_file(&report.job_dir.join("artifacts/load.sql"));
    assert!(out.status.success(), "{}", text(&out));
    let diff = s.diff(&pg_csv, &s.table("ferry_csv")).await;
    assert!(
        diff.is_empty(),
        "the .sql replay differs from \\copy csv:\n{}",
        diff.join("\n")
    );
}
