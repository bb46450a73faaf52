//! The receipt's hashes agree with PostgreSQL's, type by type: for values of
//! every type ferry loads, the hash ferry computes from a value's binary
//! form (what it sends) equals the hash the server computes from the value
//! it stored, with the SQL the receipt runs.

use ferry_connectors::pg::receipt::digest::{hash_value, seed};
use ferry_connectors::pg::receipt::{Check, ValueHash};

async fn db() -> tokio_postgres::Client {
    let url = std::env::var("FERRY_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("these tests need PostgreSQL: run scripts/test, or set FERRY_TEST_DATABASE_URL");
    ferry_connectors::pg::PgConfig::from_url_or_env(Some(&url))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Type, send function, values (SQL literals), and how the column hashes.
fn cases() -> Vec<(&'static str, &'static str, Vec<&'static str>, ValueHash)> {
    let numeric = ValueHash::Numeric {
        round: None,
        signed: true,
    };
    vec![
        (
            "boolean",
            "boolsend",
            vec!["true", "false"],
            ValueHash::Bool,
        ),
        (
            "smallint",
            "int2send",
            vec!["0", "-1", "32767", "-32768"],
            ValueHash::Int,
        ),
        (
            "integer",
            "int4send",
            vec!["0", "7", "-2147483648", "2147483647"],
            ValueHash::Int,
        ),
        (
            "bigint",
            "int8send",
            vec![
                "0",
                "-1",
                "4294967296",
                "-9223372036854775808",
                "9223372036854775807",
            ],
            ValueHash::Int,
        ),
        (
            "real",
            "float4send",
            vec!["0", "-0", "1.5", "0.1", "'NaN'", "'Infinity'"],
            ValueHash::Float,
        ),
        (
            "double precision",
            "float8send",
            vec!["0", "-0", "0.1", "-1e300", "'NaN'", "'-Infinity'"],
            ValueHash::Float,
        ),
        (
            "numeric",
            "numeric_send",
            vec![
                "0",
                "0.00",
                "1.5",
                "-1.5",
                "1.50",
                "123456789.000000001",
                "-0.0001",
                "1e30",
                "'NaN'",
            ],
            numeric.clone(),
        ),
        (
            "numeric(15,2)",
            "numeric_send",
            vec!["1.23", "-99.90", "0"],
            numeric,
        ),
        (
            "text",
            "textsend",
            vec![
                "''",
                "'a'",
                "'hello, world'",
                "'é漢字'",
                "repeat('x', 1000)",
            ],
            ValueHash::Text,
        ),
        (
            "varchar(20)",
            "varcharsend",
            vec!["''", "'abc'"],
            ValueHash::Text,
        ),
        (
            "character(5)",
            "bpcharsend",
            vec!["'ab'", "'abcde'", "''"],
            ValueHash::Padded,
        ),
        (
            "bytea",
            "byteasend",
            vec![
                "'\\x'::bytea",
                "'\\x00ff10'::bytea",
                "'\\xdeadbeefdeadbeefdeadbeef01'::bytea",
                "(SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), ''), 'hex') FROM generate_series(0, 255) i)",
            ],
            ValueHash::Bytea,
        ),
        (
            "date",
            "date_send",
            vec![
                "'2000-01-01'",
                "'1970-01-01'",
                "'2024-02-29'",
                "'4713-01-01 BC'",
                "'infinity'",
                "'-infinity'",
            ],
            ValueHash::Date,
        ),
        (
            "date",
            "date_send",
            vec![
                "'2000-01-01'",
                "'1970-01-01'",
                "'2024-02-29'",
                "'4714-11-24 BC'",
                "'294276-12-31'",
                "'294277-01-01'",
                "'5874897-12-31'",
                "'infinity'",
                "'-infinity'",
            ],
            ValueHash::DateAsTimestamp,
        ),
        (
            "time",
            "time_send",
            vec!["'00:00'", "'23:59:59.999999'"],
            ValueHash::Time,
        ),
        (
            "timestamp",
            "timestamp_send",
            vec!["'2000-01-01'", "'1969-12-31 23:59:59.5'", "'infinity'"],
            ValueHash::Timestamp,
        ),
        (
            "timestamptz",
            "timestamptz_send",
            vec![
                "'2000-01-01 00:00+00'",
                "'2024-06-01 12:00+02'",
                "'-infinity'",
            ],
            ValueHash::Timestamptz,
        ),
        (
            "interval",
            "interval_send",
            vec![
                "'0'",
                "'1 mon 2 days 03:04:05.6'",
                "'-1 year'",
                "'100 days'",
            ],
            ValueHash::Interval,
        ),
        (
            "uuid",
            "uuid_send",
            vec![
                "'00000000-0000-0000-0000-000000000000'",
                "'0189f7a2-1234-7abc-8def-0123456789ab'",
            ],
            ValueHash::Uuid,
        ),
        (
            "json",
            "json_send",
            vec!["'{\"b\": 1,  \"a\": [1, 2]}'"],
            ValueHash::Text,
        ),
        (
            "jsonb",
            "jsonb_send",
            vec![
                "'{\"b\":1,\"a\":[1,2.50,{\"y\":null}],\"aa\":\"é\\n\"}'",
                "'[]'",
                "'-0.0'",
            ],
            ValueHash::Jsonb,
        ),
        (
            "text[]",
            "array_send",
            vec!["ARRAY['a', NULL, 'ccc']", "'{}'::text[]"],
            ValueHash::Array(Box::new(ValueHash::Text)),
        ),
        (
            "integer[]",
            "array_send",
            vec!["ARRAY[1, -2, NULL]"],
            ValueHash::Array(Box::new(ValueHash::Int)),
        ),
        (
            "numeric[]",
            "array_send",
            vec!["ARRAY[1.5, -1.5, 0]"],
            ValueHash::Array(Box::new(ValueHash::Numeric {
                round: None,
                signed: false,
            })),
        ),
        (
            "date[]",
            "array_send",
            vec!["ARRAY['2020-01-01'::date]"],
            ValueHash::Array(Box::new(ValueHash::Date)),
        ),
        (
            "character(3)[]",
            "array_send",
            vec!["ARRAY['a'::character(3)]"],
            ValueHash::Array(Box::new(ValueHash::Trimmed)),
        ),
        (
            "bytea[]",
            "array_send",
            vec!["ARRAY['\\x0102'::bytea]"],
            ValueHash::Array(Box::new(ValueHash::Text)),
        ),
        (
            "timestamptz[]",
            "array_send",
            vec!["ARRAY['2020-01-01 00:00+00'::timestamptz]"],
            ValueHash::Array(Box::new(ValueHash::Timestamptz)),
        ),
        (
            "interval[]",
            "array_send",
            vec!["ARRAY['1 day'::interval]"],
            ValueHash::Array(Box::new(ValueHash::Interval)),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_hashes_alike_in_ferry_and_in_postgresql() {
    let db = db().await;
    let mut failures = Vec::new();
    for (ty, send, values, hash) in cases() {
        for k in [0usize, 6] {
            let check = Check {
                name: "c".into(),
                pg: ty.into(),
                hash: Some(hash.clone()),
                except: None,
                unchecked: None,
                not_null: false,
            };
            let expr = check.sql(k).unwrap();
            for v in values.iter().chain(&["NULL"]) {
                let sql =
                    format!("SELECT {send}(c), ({expr})::int8 FROM (SELECT ({v})::{ty} AS c) t");
                let row = db
                    .query_one(&sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
                let bytes: Option<Vec<u8>> = row.get(0);
                let server: Option<i64> = row.get(1);
                let client = bytes.and_then(|b| hash_value(&hash, &b, seed(k)).map(|h| h as i64));
                if client != server {
                    failures.push(format!(
                        "{ty} {v} (column {k}): ferry {client:?}, server {server:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
