//! The bad-input corpus: files people really receive — ragged, mis-quoted,
//! mis-encoded, truncated, out of range, mismatched with their table — each
//! loaded by the real `ferry` binary into a real PostgreSQL, each with its
//! expected outcome stated exactly: the rows loaded, the rows rejected (line
//! and column), or the error (exit code and the words that must name the
//! file, line, column and value). Every case also checks that nothing
//! panicked and that a failed load left the target as it was.
//!
//! The inputs are generated here, so the corpus documents itself and cannot
//! drift from a binary fixture nobody can read.

mod common;

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::{Scratch, ferry, text};

/// What a case must do.
enum Expect {
    /// Exit code and the words the message must contain.
    Fails(i32, Vec<String>),
    /// Loaded this many rows; optionally a query over the target (`{t}`)
    /// and its one-value answer.
    Loads(i64, Option<(&'static str, &'static str)>),
    /// Loaded this many rows and rejected exactly these (line, column).
    Rejects(i64, Vec<(u64, Option<usize>)>),
}

struct Case {
    name: &'static str,
    /// File name, extension included (it picks the format and codec).
    file: String,
    bytes: Vec<u8>,
    /// `[source]` and `[errors]` of the spec; `[target]` is added.
    source: String,
    /// Extra `[target]` keys.
    target: &'static str,
    /// SQL run before the load (`{t}` is the target).
    setup: Option<&'static str>,
    expect: Expect,
}

fn csv_source(columns: &[(&str, &str)]) -> String {
    let mut s = String::from("[source]\nformat = \"csv\"\nheader = true\n");
    for (name, ty) in columns {
        s.push_str(&format!(
            "[[source.columns]]\nname = \"{name}\"\ntype = \"{ty}\"\n"
        ));
    }
    s
}

fn case(name: &'static str, file: &str, bytes: &[u8], source: String, expect: Expect) -> Case {
    Case {
        name,
        file: file.to_string(),
        bytes: bytes.to_vec(),
        source,
        target: "",
        setup: None,
        expect,
    }
}

/// A spreadsheet cell, for [`xlsx`].
#[derive(Clone, Copy)]
enum Cell<'a> {
    Num(f64),
    Str(&'a str),
    Bool(bool),
    /// An Excel date serial (days since 1899-12-30), formatted as a date.
    Date(f64),
    Err(&'a str),
    Empty,
}

/// A minimal `.xlsx` (the parts Excel writes and calamine reads) with these
/// sheets, so the corpus's spreadsheets are generated here like its other files.
fn xlsx(sheets: &[(&str, Vec<Vec<Cell>>)]) -> Vec<u8> {
    use std::io::Write as _;
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut put = |name: &str, body: String| {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    };
    let mut overrides = String::new();
    let mut entries = String::new();
    let mut rels = String::new();
    for (i, (name, rows)) in sheets.iter().enumerate() {
        let n = i + 1;
        overrides.push_str(&format!("<Override PartName=\"/xl/worksheets/sheet{n}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"));
        entries.push_str(&format!(
            "<sheet name=\"{}\" sheetId=\"{n}\" r:id=\"rId{n}\"/>",
            esc(name)
        ));
        rels.push_str(&format!("<Relationship Id=\"rId{n}\" Type=\"{REL}/worksheet\" Target=\"worksheets/sheet{n}.xml\"/>"));
        let mut data = String::new();
        for (r, row) in rows.iter().enumerate() {
            data.push_str(&format!("<row r=\"{}\">", r + 1));
            for (c, cell) in row.iter().enumerate() {
                let at = format!("{}{}", (b'A' + c as u8) as char, r + 1);
                data.push_str(&match cell {
                    Cell::Num(v) => format!("<c r=\"{at}\"><v>{v}</v></c>"),
                    Cell::Str(v) => format!("<c r=\"{at}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{}</t></is></c>", esc(v)),
                    Cell::Bool(v) => format!("<c r=\"{at}\" t=\"b\"><v>{}</v></c>", u8::from(*v)),
                    Cell::Date(v) => format!("<c r=\"{at}\" s=\"1\"><v>{v}</v></c>"),
                    Cell::Err(v) => format!("<c r=\"{at}\" t=\"e\"><v>{}</v></c>", esc(v)),
                    Cell::Empty => String::new(),
                });
            }
            data.push_str("</row>");
        }
        put(
            &format!("xl/worksheets/sheet{n}.xml"),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"{MAIN}\"><sheetData>{data}</sheetData></worksheet>"
            ),
        );
    }
    put(
        "[Content_Types].xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>{overrides}</Types>"
        ),
    );
    put(
        "_rels/.rels",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
        ),
    );
    put(
        "xl/workbook.xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"{MAIN}\" xmlns:r=\"{REL}\"><sheets>{entries}</sheets></workbook>"
        ),
    );
    put(
        "xl/_rels/workbook.xml.rels",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"{PKG}\">{rels}<Relationship Id=\"rIdS\" Type=\"{REL}/styles\" Target=\"styles.xml\"/></Relationships>"
        ),
    );
    put(
        "xl/styles.xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><styleSheet xmlns=\"{MAIN}\"><fonts count=\"1\"><font/></fonts><fills count=\"1\"><fill/></fills><borders count=\"1\"><border/></borders><cellStyleXfs count=\"1\"><xf/></cellStyleXfs><cellXfs count=\"2\"><xf numFmtId=\"0\"/><xf numFmtId=\"14\" applyNumberFormat=\"1\"/></cellXfs></styleSheet>"
        ),
    );
    zip.finish().unwrap().into_inner()
}

/// A query built at run time, for an [`Expect::Loads`] check.
fn leak(sql: String) -> &'static str {
    Box::leak(sql.into_boxed_str())
}

fn fails(code: i32, needles: &[&str]) -> Expect {
    Expect::Fails(code, needles.iter().map(|s| s.to_string()).collect())
}

/// One column of a declared type, its value on line 2.
fn typed(name: &'static str, ty: &str, value: &str, needles: &[&str]) -> Case {
    let file = format!("{name}.csv");
    let mut all = vec![format!("{file}:2"), "column 1 (\"v\")".to_string()];
    all.push(format!("{value:?}"));
    all.extend(needles.iter().map(|s| s.to_string()));
    Case {
        name,
        file,
        bytes: format!("v\n{value}\n").into_bytes(),
        source: csv_source(&[("v", ty)]),
        target: "",
        setup: None,
        expect: Expect::Fails(3, all),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let ids: Vec<i64> = (0..2000).collect();
    let s: Vec<String> = ids.iter().map(|i| format!("value {i}")).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(s)),
        ],
    )
    .unwrap()
}

fn parquet() -> Vec<u8> {
    let b = batch();
    let mut out = Vec::new();
    let props = datafusion::parquet::file::properties::WriterProperties::builder()
        .set_compression(datafusion::parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, b.schema(), Some(props))
        .unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    out
}

fn arrow_ipc() -> Vec<u8> {
    let b = batch();
    let mut out = Vec::new();
    let mut w = arrow::ipc::writer::FileWriter::try_new(&mut out, &b.schema()).unwrap();
    w.write(&b).unwrap();
    w.finish().unwrap();
    drop(w);
    out
}

/// One Float64 column `x` and one Int64 column `n`, as a typed file would
/// carry them.
fn numbers() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("n", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow::array::Float64Array::from(vec![1.0, 2.0, 2.5])),
            Arc::new(Int64Array::from(vec![1, 70_000, 3])),
        ],
    )
    .unwrap()
}

fn parquet_of(b: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w =
        datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, b.schema(), None).unwrap();
    w.write(b).unwrap();
    w.close().unwrap();
    out
}

fn arrow_of(b: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = arrow::ipc::writer::FileWriter::try_new(&mut out, &b.schema()).unwrap();
    w.write(b).unwrap();
    w.finish().unwrap();
    drop(w);
    out
}

fn avro_of(b: &RecordBatch) -> Vec<u8> {
    let mut w = arrow_avro::writer::WriterBuilder::new(b.schema().as_ref().clone())
        .build::<_, arrow_avro::writer::format::AvroOcfFormat>(Vec::new())
        .unwrap();
    w.write(b).unwrap();
    w.finish().unwrap();
    w.into_inner()
}

/// The new user's file: 12,000 NDJSON lines whose `amount` is an integer
/// for 11,000 lines and `1.5` after, and whose `coupon` first appears on
/// line 11,501 (`drift`), or only the new field (`!drift`).
fn drifting_json(drift: bool) -> Vec<u8> {
    let mut out = String::new();
    for i in 1..=12_000u32 {
        let amount = if drift && i > 11_000 {
            "1.5".to_string()
        } else {
            i.to_string()
        };
        out.push_str(&format!("{{\"id\":{i},\"amount\":{amount}"));
        if i >= 11_501 {
            out.push_str(&format!(",\"coupon\":\"C{i}\""));
        }
        out.push_str("}\n");
    }
    out.into_bytes()
}

/// `text` in UTF-16LE, after a byte-order mark when `bom`.
fn utf16(bom: bool, text: &str) -> Vec<u8> {
    let mut out = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
    out.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
    out
}

/// Flips the bytes of `range` (the file keeps its size and magic).
fn corrupt(mut bytes: Vec<u8>, range: std::ops::Range<usize>) -> Vec<u8> {
    for b in &mut bytes[range] {
        *b ^= 0x5a;
    }
    bytes
}

fn cases() -> Vec<Case> {
    let two = || csv_source(&[("id", "bigint"), ("s", "text")]);
    let plain = || "[source]\nformat = \"csv\"\nheader = true\n".to_string();
    let json = || {
        "[source]\nformat = \"ndjson\"\n[[source.columns]]\nname = \"id\"\ntype = \"bigint\"\n"
            .to_string()
    };
    let pq = parquet();
    let ipc = arrow_ipc();
    let ndjson = || "[source]\nformat = \"ndjson\"\n".to_string();
    let encoded = |label: &str| {
        two().replacen(
            "header = true\n",
            &format!("header = true\nencoding = \"{label}\"\n"),
            1,
        )
    };
    let declared = |format: &str, name: &str, ty: &str| {
        format!(
            "[source]\nformat = \"{format}\"\n[[source.columns]]\nname = \"{name}\"\ntype = \"{ty}\"\n"
        )
    };
    let mut big = b"id,s\n1,".to_vec();
    big.extend(std::iter::repeat_n(b'x', 10_000_000));
    big.push(b'\n');
    let mut v = vec![
        // No silent loss: a value that does not fit its inferred or declared
        // type, and a field past the inference window, fail (or are bad
        // rows), in every reader.
        case(
            "json_drift_past_window",
            "json_drift_past_window.ndjson",
            &drifting_json(true),
            ndjson(),
            fails(
                3,
                &[
                    "json_drift_past_window.ndjson:11001",
                    "(\"amount\")",
                    "not an integer: \"1.5\"",
                    "infer_rows",
                ],
            ),
        ),
        // A field first seen past the window is never dropped: the load
        // runs again with the whole file inferred, and the field meets the
        // table under on_new_columns (added by default, refused here).
        case(
            "json_field_past_window",
            "json_field_past_window.ndjson",
            &drifting_json(false),
            ndjson(),
            Expect::Loads(
                12_000,
                Some((
                    "SELECT count(coupon) || '/' || min(coupon) FROM {t}",
                    "500/C11501",
                )),
            ),
        ),
        Case {
            setup: Some("CREATE TABLE {t} (id bigint, amount bigint)"),
            target: "on_new_columns = \"fail\"\n",
            ..case(
                "json_field_past_window_refused",
                "json_field_past_window_refused.ndjson",
                &drifting_json(false),
                ndjson(),
                fails(4, &["has no column(s) [\"coupon\"]", "on_new_columns"]),
            )
        },
        case(
            "json_drift_gzip",
            "json_drift_gzip.ndjson.gz",
            &gzip(&drifting_json(true)),
            ndjson(),
            fails(3, &["json_drift_gzip.ndjson.gz:11001", "\"1.5\""]),
        ),
        case(
            "json_drift_whole_file",
            "json_drift_whole_file.ndjson",
            &drifting_json(true),
            format!("{}infer_rows = 0\n", ndjson()),
            Expect::Loads(
                12_000,
                Some((
                    "SELECT sum(amount)::text || '/' || count(coupon) || '/' || (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'amount') FROM {t}",
                    "60507000.0/500/numeric(38,1)",
                )),
            ),
        ),
        case(
            "json_declared_bigint_fraction",
            "json_declared_bigint_fraction.ndjson",
            b"{\"id\":1}\n{\"id\":2.5}\n",
            json(),
            fails(
                3,
                &[
                    "json_declared_bigint_fraction.ndjson:2",
                    "(\"id\")",
                    "\"2.5\"",
                ],
            ),
        ),
        case(
            "json_nested_fraction",
            "json_nested_fraction.ndjson",
            b"{\"xs\":[1,2]}\n{\"xs\":[3,4.5]}\n",
            format!("{}infer_rows = 1\n", ndjson()),
            fails(3, &["json_nested_fraction.ndjson:2", "xs.item", "\"4.5\""]),
        ),
        case(
            "json_fraction_rejected",
            "json_fraction_rejected.ndjson",
            b"{\"id\":1}\n{\"id\":2.5}\n\n{\"id\":3}\n",
            format!("{}[errors]\nmax_bad_rows = 1\n", json()),
            Expect::Rejects(2, vec![(2, Some(1))]),
        ),
        case(
            "csv_decimal_places_past_window",
            "csv_decimal_places_past_window.csv",
            b"v\n1.5\n2.25\n3.125\n",
            format!("{}infer_rows = 2\n", plain()),
            fails(
                3,
                &[
                    "csv_decimal_places_past_window.csv:4",
                    "more decimal places than numeric(38,2) holds",
                    "\"3.125\"",
                    "infer_rows",
                ],
            ),
        ),
        case(
            "parquet_declared_bigint_fraction",
            "parquet_declared_bigint_fraction.parquet",
            &parquet_of(&numbers()),
            declared("parquet", "x", "bigint"),
            fails(
                3,
                &[
                    "parquet_declared_bigint_fraction.parquet: row 3",
                    "(\"x\")",
                    "\"2.5\"",
                ],
            ),
        ),
        case(
            "arrow_declared_smallint_overflow",
            "arrow_declared_smallint_overflow.arrow",
            &arrow_of(&numbers()),
            declared("arrow", "n", "smallint"),
            fails(
                3,
                &[
                    "arrow_declared_smallint_overflow.arrow: row 2",
                    "(\"n\")",
                    "\"70000\"",
                ],
            ),
        ),
        case(
            "avro_declared_real_rounds",
            "avro_declared_real_rounds.avro",
            &avro_of(
                &RecordBatch::try_new(
                    Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)])),
                    vec![Arc::new(arrow::array::Float64Array::from(vec![0.5, 0.1]))],
                )
                .unwrap(),
            ),
            declared("avro", "x", "real"),
            fails(
                3,
                &[
                    "avro_declared_real_rounds.avro: row 2",
                    "(\"x\")",
                    "\"0.1\"",
                ],
            ),
        ),
        case(
            "parquet_declared_widening_fits",
            "parquet_declared_widening_fits.parquet",
            &parquet_of(&numbers()),
            declared("parquet", "n", "numeric(10,0)"),
            Expect::Loads(3, Some(("SELECT sum(n)::text FROM {t}", "70004"))),
        ),
        // Structure of delimited text.
        case(
            "ragged_long",
            "ragged_long.csv",
            b"id,s\n1,a\n2,b,extra\n",
            two(),
            fails(
                3,
                &[
                    "ragged_long.csv:3",
                    "expected 2 fields, found 3",
                    "2,b,extra",
                ],
            ),
        ),
        case(
            "ragged_short",
            "ragged_short.csv",
            b"id,s\n1,a\n2\n3,c\n",
            two(),
            fails(3, &["ragged_short.csv:3", "expected 2 fields, found 1"]),
        ),
        case(
            "quote_open_at_eof",
            "quote_open_at_eof.csv",
            b"id,s\n1,a\n2,\"b\n3,c\n",
            two(),
            fails(3, &["quote_open_at_eof.csv:3", "never closed"]),
        ),
        case(
            "quote_stray_mid_file",
            "quote_stray_mid_file.csv",
            b"id,s\n1,a\n2,\"b\n3,c\n4,\"d\n5,e\n",
            two(),
            fails(
                3,
                &[
                    "quote_stray_mid_file.csv",
                    "line 3",
                    "runs to line 5",
                    "stray quote",
                ],
            ),
        ),
        case(
            "invalid_utf8",
            "invalid_utf8.csv",
            b"id,s\n1,ok\n2,\xff\xfe\n",
            two(),
            fails(
                3,
                &[
                    "invalid_utf8.csv:3",
                    "invalid UTF-8 at byte offset 12 (bytes ff)",
                ],
            ),
        ),
        case(
            "latin1",
            "latin1.csv",
            b"id,s\n1,caf\xe9\n",
            two(),
            fails(3, &["latin1.csv:2", "invalid UTF-8", "e9", "encoding = \"windows-1252\""]),
        ),
        // Declared encodings: decoded to UTF-8 as read; a BOM decides the
        // UTF-16 byte order; a sequence the encoding does not allow is a bad
        // row on its line.
        case(
            "latin1_declared",
            "latin1_declared.csv",
            b"id,s\n1,caf\xe9\n2,\x80 5\n",
            encoded("latin1"),
            Expect::Loads(
                2,
                Some(("SELECT string_agg(s, ',' ORDER BY id) FROM {t}", "café,€ 5")),
            ),
        ),
        case(
            "utf16_bom",
            "utf16_bom.csv",
            &utf16(true, "id,s\r\n1,é\r\n2,😀\r\n"),
            encoded("utf-16"),
            Expect::Loads(
                2,
                Some(("SELECT string_agg(s, ',' ORDER BY id) FROM {t}", "é,😀")),
            ),
        ),
        case(
            "utf16_unpaired_surrogate",
            "utf16_unpaired_surrogate.csv",
            &[utf16(false, "id,s\n1,a\n2,"), vec![0x00, 0xD8], utf16(false, "b\n")].concat(),
            encoded("utf-16le"),
            fails(3, &["utf16_unpaired_surrogate.csv:3", "not valid UTF-16LE"]),
        ),
        case(
            "utf16_unpaired_surrogate_rejected",
            "utf16_unpaired_surrogate_rejected.csv",
            &[utf16(false, "id,s\n1,a\n2,"), vec![0x00, 0xD8], utf16(false, "b\n3,c\n")].concat(),
            format!("{}[errors]\nmax_bad_rows = 1\n", encoded("utf-16le")),
            Expect::Rejects(2, vec![(3, None)]),
        ),
        // Local number and boolean forms, in a Windows-1252 export.
        Case {
            name: "german_export",
            file: "german_export.csv".into(),
            bytes: b"id;Betrag;aktiv;Datum;Notiz\n1;1.234,50;ja;31.12.2024;Gr\xfc\xdfe\n2;-0,25;nein;01.02.2024;\n3;7;ja;29.02.2024;x\n".to_vec(),
            source: "[source]\nformat = \"csv\"\ndelimiter = \";\"\nencoding = \"windows-1252\"\ndecimal_separator = \",\"\nthousands_separator = \".\"\ntrue_values = [\"ja\"]\nfalse_values = [\"nein\"]\n[[source.columns]]\nname = \"Datum\"\ntype = \"date\"\nformat = \"%d.%m.%Y\"\n".into(),
            target: "",
            setup: None,
            expect: Expect::Loads(
                3,
                Some((
                    "SELECT string_agg(concat_ws('|', betrag, aktiv, datum, notiz, pg_typeof(betrag)), ',' ORDER BY id) FROM {t}",
                    "1234.50|t|2024-12-31|Grüße|numeric,-0.25|f|2024-02-01|numeric,7.00|t|2024-02-29|x|numeric",
                )),
            ),
        },
        case(
            "decimal_comma_refuses_a_point",
            "decimal_comma_refuses_a_point.csv",
            b"id;v\n1;2,5\n2;1.5\n",
            "[source]\nformat = \"csv\"\ndelimiter = \";\"\ndecimal_separator = \",\"\n[[source.columns]]\nname = \"v\"\ntype = \"numeric(10,2)\"\n".into(),
            fails(3, &["decimal_comma_refuses_a_point.csv:3", "\"1.5\"", "not a number"]),
        ),
        case(
            "latin1_ndjson",
            "latin1_ndjson.ndjson",
            b"{\"id\":1,\"s\":\"caf\xe9\"}\n",
            format!("{}encoding = \"windows-1252\"\n", ndjson()),
            Expect::Loads(1, Some(("SELECT s FROM {t}", "café"))),
        ),
        case(
            "nul_byte",
            "nul_byte.csv",
            b"id,s\n1,a\x00b\n",
            two(),
            fails(3, &["row 1", "column \"s\"", "NUL byte", "a\\0b"]),
        ),
        case(
            "bom_crlf",
            "bom_crlf.csv",
            b"\xEF\xBB\xBFid,s\r\n1,a\r\n2,b\r\n",
            plain(),
            Expect::Loads(
                2,
                Some((
                    "SELECT string_agg(id || s, ',' ORDER BY id) FROM {t}",
                    "1a,2b",
                )),
            ),
        ),
        case(
            "mixed_line_endings",
            "mixed_line_endings.csv",
            b"id,s\n1,a\r\n2,b\n3,c\r\n",
            plain(),
            Expect::Loads(
                3,
                Some((
                    "SELECT string_agg(s, '' ORDER BY id) FROM {t} WHERE s NOT LIKE '%' || chr(13)",
                    "abc",
                )),
            ),
        ),
        case(
            "header_only",
            "header_only.csv",
            b"id,s\n",
            two(),
            Expect::Loads(
                0,
                Some((
                    "SELECT count(*)::text FROM information_schema.columns WHERE format('%I.%I', table_schema, table_name) = '{t}'",
                    "2",
                )),
            ),
        ),
        case(
            "empty_inferred",
            "empty_inferred.csv",
            b"",
            "[source]\nformat = \"csv\"\n".into(),
            fails(
                3,
                &["empty_inferred.csv", "is empty", "declare the columns"],
            ),
        ),
        case(
            "empty_declared",
            "empty_declared.csv",
            b"",
            csv_source(&[("id", "bigint")]).replace("header = true", "header = false"),
            Expect::Loads(0, None),
        ),
        case(
            "blank_lines_only",
            "blank_lines_only.csv",
            b"\n\r\n\n",
            "[source]\nformat = \"csv\"\n".into(),
            fails(3, &["blank_lines_only.csv", "is empty"]),
        ),
        case(
            "field_of_10_mb",
            "field_of_10_mb.csv",
            &big,
            two(),
            Expect::Loads(1, Some(("SELECT length(s)::text FROM {t}", "10000000"))),
        ),
        // Values out of range or malformed for their declared type.
        typed(
            "smallint_range",
            "smallint",
            "70000",
            &["out of range for smallint"],
        ),
        typed(
            "integer_range",
            "integer",
            "3000000000",
            &["out of range for integer"],
        ),
        typed(
            "bigint_range",
            "bigint",
            "99999999999999999999",
            &["out of range for bigint"],
        ),
        typed(
            "numeric_overflow",
            "numeric(5,2)",
            "12345.6",
            &["numeric field overflow"],
        ),
        typed("real_range", "real", "1e39", &["out of range for real"]),
        typed("integer_garbage", "integer", "12abc", &["not an integer"]),
        typed(
            "double_garbage",
            "double precision",
            "1.2.3",
            &["not a number"],
        ),
        typed("bool_garbage", "boolean", "maybe", &["not a boolean"]),
        typed("uuid_garbage", "uuid", "1234", &["not a UUID"]),
        typed("date_feb_30", "date", "2026-02-30", &["not a date"]),
        typed("date_month_13", "date", "2026-13-01", &["not a date"]),
        typed("date_word", "date", "yesterday", &["not a date"]),
        typed(
            "timestamp_hour_25",
            "timestamp",
            "2026-01-01 25:00:00",
            &["not a timestamp"],
        ),
        typed(
            "timestamp_with_zone_into_plain",
            "timestamp",
            "2026-01-01 10:00:00+02:00",
            &["has a time zone offset", "timestamptz"],
        ),
        typed(
            "timestamptz_offset_25h",
            "timestamptz",
            "2026-01-01 10:00:00+25:00",
            &["not a timestamp"],
        ),
        typed(
            "timestamptz_unknown_zone",
            "timestamptz",
            "2026-01-01 10:00:00 Mars/Olympus",
            &["not a timestamp"],
        ),
        typed("interval_garbage", "interval", "soon", &["not an interval"]),
        // JSON lines.
        case(
            "json_broken_line",
            "json_broken_line.ndjson",
            b"{\"id\":1}\n{\"id\":2,\n{\"id\":3}\n",
            json(),
            fails(3, &["json_broken_line.ndjson:2", "not valid JSON"]),
        ),
        case(
            "json_truncated_last_line",
            "json_truncated_last_line.ndjson",
            b"{\"id\":1}\n{\"id\":2",
            json(),
            fails(3, &["json_truncated_last_line.ndjson:2", "EOF"]),
        ),
        case(
            "json_not_an_object",
            "json_not_an_object.ndjson",
            b"{\"id\":1}\n[1,2]\n",
            json(),
            fails(
                3,
                &["json_not_an_object.ndjson:2", "not a JSON object", "[1,2]"],
            ),
        ),
        case(
            "json_wrong_type",
            "json_wrong_type.ndjson",
            b"{\"id\":1}\n{\"id\":\"x\"}\n",
            json(),
            fails(3, &["json_wrong_type.ndjson:2", "(\"id\")", "\"x\""]),
        ),
        // Compressed inputs.
        case(
            "gzip_truncated",
            "gzip_truncated.csv.gz",
            &gzip(b"id,s\n1,a\n2,b\n")[..20],
            plain(),
            fails(3, &["gzip_truncated.csv.gz", "corrupt or truncated gzip"]),
        ),
        case(
            "gzip_not_gzip",
            "gzip_not_gzip.csv.gz",
            b"id,s\n1,a\n",
            two(),
            fails(3, &["gzip_not_gzip.csv.gz", "corrupt or truncated gzip"]),
        ),
        case(
            "zstd_truncated",
            "zstd_truncated.csv.zst",
            &zstd::encode_all(&b"id,s\n1,a\n2,b\n"[..], 3).unwrap()[..12],
            two(),
            fails(3, &["zstd_truncated.csv.zst", "corrupt or truncated zstd"]),
        ),
        // Columnar files.
        case(
            "parquet_truncated",
            "parquet_truncated.parquet",
            &pq[..pq.len() / 2],
            String::new(),
            fails(3, &["parquet_truncated.parquet", "Invalid Parquet file"]),
        ),
        case(
            "parquet_corrupt_pages",
            "parquet_corrupt_pages.parquet",
            &corrupt(pq.clone(), 100..400),
            String::new(),
            fails(
                3,
                &[
                    "parquet_corrupt_pages.parquet",
                    "corrupt or truncated parquet",
                ],
            ),
        ),
        case(
            "parquet_corrupt_footer",
            "parquet_corrupt_footer.parquet",
            &corrupt(pq.clone(), pq.len() - 200..pq.len() - 8),
            String::new(),
            fails(3, &["parquet_corrupt_footer.parquet", "Parquet"]),
        ),
        case(
            "parquet_wrong_magic",
            "parquet_wrong_magic.parquet",
            b"id,s\n1,a\n",
            String::new(),
            fails(3, &["parquet_wrong_magic.parquet", "Invalid Parquet file"]),
        ),
        case(
            "arrow_truncated",
            "arrow_truncated.arrow",
            &ipc[..ipc.len() / 2],
            String::new(),
            fails(3, &["arrow_truncated.arrow", "Arrow file"]),
        ),
        case(
            "arrow_corrupt",
            "arrow_corrupt.arrow",
            &corrupt(ipc.clone(), 200..600),
            String::new(),
            fails(3, &["arrow_corrupt.arrow", "corrupt or truncated arrow"]),
        ),
        case(
            "arrow_wrong_magic",
            "arrow_wrong_magic.arrow",
            b"id,s\n1,a\n",
            String::new(),
            fails(3, &["arrow_wrong_magic.arrow", "Arrow"]),
        ),
        Case {
            target: "column_names = \"as-is\"",
            ..case(
                "hostile_column_names",
                "hostile_column_names.csv",
                "\"we\"\"ird\",two words,ünïcødé,\"semi;colon --\"\n1,2,3,4\n".as_bytes(),
                plain(),
                Expect::Loads(
                    1,
                    Some((
                        "SELECT string_agg(column_name, '|' ORDER BY ordinal_position) FROM information_schema.columns WHERE format('%I.%I', table_schema, table_name) = '{t}'",
                        "we\"ird|two words|ünïcødé|semi;colon --",
                    )),
                ),
            )
        },
        // Table column names in snake_case by default, refused when two
        // names become one, and a hint for a table made with names as written.
        case(
            "snake_case_names",
            "snake_case_names.csv",
            "Customer ID,orderDate,Amount (USD),\"we\"\"ird\"\n1,2,3,4\n".as_bytes(),
            plain(),
            Expect::Loads(
                1,
                Some((
                    "SELECT string_agg(column_name, '|' ORDER BY ordinal_position) FROM information_schema.columns WHERE format('%I.%I', table_schema, table_name) = '{t}'",
                    "customer_id|order_date|amount_usd|we_ird",
                )),
            ),
        ),
        case(
            "snake_case_collision",
            "snake_case_collision.csv",
            b"a b,a_b\n1,2\n",
            plain(),
            fails(2, &["\"a b\" and \"a_b\" both become \"a_b\"", "as-is"]),
        ),
        Case {
            setup: Some("CREATE TABLE {t} (\"Customer ID\" bigint)"),
            ..case(
                "names_as_written_in_table",
                "names_as_written_in_table.csv",
                b"Customer ID\n1\n",
                plain(),
                // customer_id (snake_case) finds "Customer ID": names match
                // whatever their case, spaces and underscores.
                Expect::Loads(
                    1,
                    Some(("SELECT string_agg(\"Customer ID\"::text, ',') FROM {t}", "1")),
                ),
            )
        },
        // Error policy: bad rows set aside, up to the limit.
        case(
            "rejects_within_limit",
            "rejects_within_limit.csv",
            b"id,s\n1,a\nx2,b\n3\n4,d\n5,\xe9\n6,f\n",
            format!("{}[errors]\nmax_bad_rows = 3\n", two()),
            Expect::Rejects(3, vec![(3, Some(1)), (4, None), (6, None)]),
        ),
        case(
            "rejects_quoted_multiline",
            "rejects_quoted_multiline.csv",
            b"id,s\n1,\"a\nb\"\nx,\"c\nd\"\n3,e\n",
            format!("{}[errors]\nmax_bad_rows = 5\n", two()),
            Expect::Rejects(2, vec![(4, Some(1))]),
        ),
        case(
            "rejects_in_gzip",
            "rejects_in_gzip.csv.gz",
            &gzip(b"id,s\n1,a\n2,b,c\n3,c\n"),
            format!("{}[errors]\nmax_bad_rows = 1\n", two()),
            Expect::Rejects(2, vec![(3, None)]),
        ),
        case(
            "rejects_over_limit",
            "rejects_over_limit.csv",
            b"id,s\n1,a\nx2,b\n3\n4x,d\n",
            format!("{}[errors]\nmax_bad_rows = 2\n", two()),
            fails(
                3,
                &[
                    "rejects_over_limit.csv",
                    "3 bad rows, more than max_bad_rows = 2",
                    "rejects_over_limit.csv:3: column 1 (\"id\")",
                    "rejects.jsonl",
                ],
            ),
        ),
    ];
    // Drifting files: names that differ from the dataset's, a header with
    // spaces, CRLF and no final newline, a target column the input lacks.
    v.push(case(
        "rename_columns",
        "rename_columns.csv",
        b"Order Date,Amount\n2024-01-02,5\n",
        format!(
            "{}[source.rename]\n\"Order Date\" = \"ordered_on\"\n",
            plain()
        ),
        Expect::Loads(
            1,
            Some((
                "SELECT ordered_on::text || '/' || amount FROM {t}",
                "2024-01-02/5",
            )),
        ),
    ));
    v.push(case(
        "rename_unknown_column",
        "rename_unknown_column.csv",
        b"a,b\n1,2\n",
        format!("{}[source.rename]\nc = \"d\"\n", plain()),
        fails(2, &["[source.rename]", "[\"c\"]", "[\"a\", \"b\"]"]),
    ));
    v.push(case(
        "header_spaces_crlf_no_final_newline",
        "header_spaces_crlf_no_final_newline.csv",
        b"id , Full Name  \r\n1,a b\r\n2,c",
        plain(),
        Expect::Loads(
            2,
            Some((
                "SELECT string_agg(full_name, ',' ORDER BY id) FROM {t}",
                "a b,c",
            )),
        ),
    ));
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id bigint, s text, extra integer DEFAULT 7, note text)"),
        ..case(
            "missing_columns_default_or_null",
            "missing_columns_default_or_null.csv",
            b"id,s\n1,a\n",
            plain(),
            Expect::Loads(
                1,
                Some((
                    "SELECT concat_ws('|', id, s, extra, coalesce(note, 'null')) FROM {t}",
                    "1|a|7|null",
                )),
            ),
        )
    });
    v.push(Case {
        setup: Some(
            "CREATE TABLE {t} (id bigint, s text, extra integer DEFAULT 7); INSERT INTO {t} VALUES (9, 'kept', 1)",
        ),
        target: "on_missing_columns = \"fail\"\n",
        ..case(
            "missing_columns_fail",
            "missing_columns_fail.csv",
            b"id,s\n1,a\n",
            plain(),
            fails(4, &["[\"extra\"]", "on_missing_columns = \"fail\""]),
        )
    });
    // Against an existing table.
    v.push(Case {
        setup: Some(
            "CREATE TABLE {t} (id integer, s date); INSERT INTO {t} VALUES (7, '2026-01-01')",
        ),
        ..case(
            "target_type_mismatch",
            "target_type_mismatch.csv",
            b"id,s\n1,abc\n",
            plain(),
            fails(4, &["column \"s\"", "Utf8", "date"]),
        )
    });
    // Schema drift against an existing table: columns added, ignored or
    // refused; types widened or refused; columns matched by name or position.
    const TYPE_OF: &str = "(SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = ";
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id integer, s text); INSERT INTO {t} VALUES (7, 'x')"),
        ..case(
            "new_column_added",
            "new_column_added.csv",
            b"id,s,t\n1,a,abc\n",
            plain(),
            Expect::Loads(
                2,
                Some((
                    leak(format!("SELECT {TYPE_OF}'t') || ' ' || string_agg(id || ':' || coalesce(t, 'null'), ',' ORDER BY id) FROM {{t}}")),
                    "text 1:abc,7:null",
                )),
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id integer, s text); INSERT INTO {t} VALUES (7, 'x')"),
        target: "on_new_columns = \"fail\"\n",
        ..case(
            "new_column_fail",
            "new_column_fail.csv",
            b"id,t\n1,abc\n",
            plain(),
            fails(
                4,
                &[
                    "has no column(s) [\"t\"]",
                    "on_new_columns = \"fail\"",
                    "rename them in transform.sql",
                ],
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id integer, s text); INSERT INTO {t} VALUES (7, 'x')"),
        target: "on_new_columns = \"ignore\"\n",
        ..case(
            "new_column_ignored",
            "new_column_ignored.csv",
            b"id,debug,s\n1,zzz,a\n",
            plain(),
            Expect::Loads(
                2,
                Some((
                    "SELECT (SELECT count(*) FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'debug') || ' ' || string_agg(id || ':' || s, ',' ORDER BY id) FROM {t}",
                    "0 1:a,7:x",
                )),
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id bigint, s text); INSERT INTO {t} VALUES (7, 'x')"),
        ..case(
            "new_column_then_bad_row_changes_nothing",
            "new_column_then_bad_row_changes_nothing.csv",
            b"id,s,t\n1,a,abc\nzz,b,def\n",
            csv_source(&[("id", "bigint"), ("s", "text"), ("t", "text")]),
            fails(
                3,
                &["new_column_then_bad_row_changes_nothing.csv:3", "\"zz\""],
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id integer, n integer); INSERT INTO {t} VALUES (7, 5)"),
        target: "on_type_change = \"widen\"\n",
        ..case(
            "type_widened_integer_to_bigint",
            "type_widened_integer_to_bigint.csv",
            b"id,n\n1,3000000000\n",
            plain(),
            Expect::Loads(
                2,
                Some((
                    leak(format!("SELECT {TYPE_OF}'n') || ' ' || string_agg(id || ':' || n, ',' ORDER BY id) FROM {{t}}")),
                    "bigint 1:3000000000,7:5",
                )),
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id integer, n integer); INSERT INTO {t} VALUES (7, 5)"),
        ..case(
            "type_change_fails_by_default",
            "type_change_fails_by_default.csv",
            b"id,n\n1,1.5\n",
            plain(),
            fails(
                4,
                &[
                    "column \"n\"",
                    "integer",
                    "numeric(38,1)",
                    "on_type_change = \"widen\"",
                    "numeric",
                ],
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id integer, n integer); INSERT INTO {t} VALUES (7, 5)"),
        target: "on_type_change = \"widen\"\n",
        ..case(
            "type_widened_then_bad_row_changes_nothing",
            "type_widened_then_bad_row_changes_nothing.csv",
            b"id,n\n1,1.5\nzz,2\n",
            csv_source(&[("id", "bigint"), ("n", "double precision")]),
            fails(
                3,
                &["type_widened_then_bad_row_changes_nothing.csv:3", "\"zz\""],
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (id integer, n integer); INSERT INTO {t} VALUES (7, 5)"),
        target: "on_type_change = \"widen\"\n[target.types]\nn = \"text\"\n",
        ..case(
            "type_widened_to_declared_text",
            "type_widened_to_declared_text.csv",
            b"id,n\n1,n/a\n",
            plain(),
            Expect::Loads(
                2,
                Some((
                    leak(format!("SELECT {TYPE_OF}'n') || ' ' || string_agg(id || ':' || n, ',' ORDER BY id) FROM {{t}}")),
                    "text 1:n/a,7:5",
                )),
            ),
        )
    });
    v.push(Case {
        setup: Some(
            "CREATE TABLE {t} (id bigint, full_name text, note text DEFAULT 'd'); INSERT INTO {t} VALUES (7, 'x', 'n')",
        ),
        target: "column_names = \"as-is\"\n",
        ..case(
            "columns_by_name_any_order_or_case",
            "columns_by_name_any_order_or_case.csv",
            b"Full Name,ID\na b,1\n",
            plain(),
            Expect::Loads(
                2,
                Some((
                    "SELECT string_agg(id || ':' || full_name || ':' || note, ',' ORDER BY id) FROM {t}",
                    "1:a b:d,7:x:n",
                )),
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (code text, amount bigint)"),
        ..case(
            "columns_by_position_without_header",
            "columns_by_position_without_header.csv",
            b"a,10\nb,20\n",
            "[source]\nformat = \"csv\"\nheader = false\n".to_string(),
            Expect::Loads(
                2,
                Some((
                    "SELECT string_agg(code || '=' || amount, ',' ORDER BY code) FROM {t}",
                    "a=10,b=20",
                )),
            ),
        )
    });
    v.push(Case {
        setup: Some("CREATE TABLE {t} (\"Order Date\" text, order_date text)"),
        target: "column_names = \"as-is\"\n",
        ..case(
            "column_name_matches_two_columns",
            "column_name_matches_two_columns.csv",
            b"ORDER DATE\n2026-01-01\n",
            plain(),
            fails(4, &["\"ORDER DATE\"", "matches several table columns"]),
        )
    });
    v.push(Case {
        target: "mode = \"upsert\"\nkeys = [\"id\"]\n",
        setup: Some(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, s text); INSERT INTO {t} VALUES (7, 'x')",
        ),
        ..case(
            "upsert_duplicate_keys",
            "upsert_duplicate_keys.csv",
            b"id,s\n1,a\n2,b\n1,c\n",
            two(),
            fails(
                4,
                &[
                    "same key more than once",
                    "key (id) = 1 occurs 2 times, at rows 1, 3",
                    "duplicate_keys = \"last\"",
                    "DISTINCT ON",
                ],
            ),
        )
    });
    // Nested records flattened into columns (the default keeps them jsonb).
    let ndjson = || "[source]\nformat = \"ndjson\"\nflatten = true\n".to_string();
    v.push(case(
        "json_flatten",
        "json_flatten.ndjson",
        b"{\"id\": 1, \"customer\": {\"name\": \"a\", \"address\": {\"city\": \"x\"}}, \"tags\": [1, 2]}\n{\"id\": 2, \"customer\": {\"name\": \"b\", \"address\": {\"city\": null, \"zip\": \"9\"}}}\n",
        ndjson(),
        Expect::Loads(
            2,
            Some((
                "SELECT string_agg(concat_ws('|', id, customer_name, coalesce(customer_address_city, '-'), coalesce(customer_address_zip, '-'), coalesce(tags::text, '-'), pg_typeof(tags)), ',' ORDER BY id) FROM {t}",
                "1|a|x|-|{1,2}|bigint[],2|b|-|9|-|bigint[]",
            )),
        ),
    ));
    v.push(Case {
        target: "column_names = \"as-is\"\n",
        ..case(
            "json_flatten_separator",
            "json_flatten_separator.ndjson",
            b"{\"a\": {\"b\": 1}}\n",
            format!("{}flatten_separator = \".\"\n", ndjson()),
            Expect::Loads(1, Some(("SELECT \"a.b\"::text FROM {t}", "1"))),
        )
    });
    v.push(case(
        "json_flatten_collision",
        "json_flatten_collision.ndjson",
        b"{\"a_b\": 1, \"a\": {\"b\": 2}}\n",
        ndjson(),
        fails(
            2,
            &[
                "flatten makes two columns named \"a_b\"",
                "flatten_separator",
            ],
        ),
    ));
    v.push(case(
        "parquet_flatten",
        "parquet_flatten.parquet",
        &parquet_of(&{
            use arrow::array::{ArrayRef, StructArray};
            let inner: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
            let point = StructArray::from(vec![(
                Arc::new(Field::new("label", DataType::Utf8, true)),
                inner,
            )]);
            RecordBatch::try_from_iter(vec![
                ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
                ("point", Arc::new(point) as ArrayRef),
            ])
            .unwrap()
        }),
        "[source]\nflatten = true\n".to_string(),
        Expect::Loads(
            2,
            Some((
                "SELECT string_agg(id || point_label, ',' ORDER BY id) FROM {t}",
                "1x,2y",
            )),
        ),
    ));
    // Spreadsheets: the sheet's own cell types kept, a sheet by name, an
    // error cell refused where it is.
    use Cell::*;
    let orders = vec![
        vec![
            Str("id"),
            Str("code"),
            Str("amount"),
            Str("paid"),
            Str("ordered on"),
        ],
        vec![Num(1.0), Str("00123"), Num(12.5), Bool(true), Date(45292.0)],
        vec![Num(2.0), Str("A-7"), Num(3.0), Bool(false), Date(45293.0)],
        vec![Num(3.0), Empty, Num(0.1), Bool(true), Empty],
    ];
    v.push(case(
        "xlsx_cell_types",
        "xlsx_cell_types.xlsx",
        &xlsx(&[("Orders", orders.clone())]),
        "[source]\n".to_string(),
        Expect::Loads(
            3,
            Some((
                "SELECT string_agg(concat_ws('|', id, coalesce(code, '-'), amount, paid, coalesce(ordered_on::text, '-')), ',' ORDER BY id) || ' ' || (SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attnum > 0) FROM {t}",
                "1|00123|12.5|t|2024-01-01,2|A-7|3.0|f|2024-01-02,3|-|0.1|t|- bigint,text,numeric(38,1),boolean,date",
            )),
        ),
    ));
    v.push(case(
        "xlsx_named_sheet",
        "xlsx_named_sheet.xlsx",
        &xlsx(&[
            ("Notes", vec![vec![Str("not this")]]),
            ("Orders", orders.clone()),
        ]),
        "[source]\nsheet = \"Orders\"\n".to_string(),
        Expect::Loads(
            3,
            Some((
                "SELECT string_agg(code, ',' ORDER BY id) FROM {t}",
                "00123,A-7",
            )),
        ),
    ));
    v.push(case(
        "xlsx_missing_sheet",
        "xlsx_missing_sheet.xlsx",
        &xlsx(&[("Orders", orders.clone())]),
        "[source]\nsheet = \"Sales\"\n".to_string(),
        fails(2, &["has no sheet \"Sales\"", "[\"Orders\"]"]),
    ));
    v.push(case(
        "xlsx_error_cell",
        "xlsx_error_cell.xlsx",
        &xlsx(&[(
            "Orders",
            vec![
                vec![Str("id"), Str("amount")],
                vec![Num(1.0), Num(2.0)],
                vec![Num(2.0), Err("#DIV/0!")],
            ],
        )]),
        "[source]\n".to_string(),
        fails(
            3,
            &["xlsx_error_cell.xlsx:3: column B (\"amount\")", "#DIV/0!"],
        ),
    ));
    v.push(case(
        "xlsx_not_a_spreadsheet",
        "xlsx_not_a_spreadsheet.xlsx",
        b"id,amount\n1,2\n",
        "[source]\n".to_string(),
        fails(3, &["xlsx_not_a_spreadsheet.xlsx", "not a spreadsheet"]),
    ));
    // Lineage: where each row came from, in the row.
    const LINEAGE: &str = "lineage = [\"loaded_at\", \"source\", \"line\", \"job_id\"]\n";
    const LINEAGE_CHECK: &str = "SELECT string_agg(id || ':' || _ferry_line, ',' ORDER BY id) || ' ' || bool_and(_ferry_source LIKE '%' || {file}) || ' ' || count(DISTINCT _ferry_job_id) || ' ' || bool_and(_ferry_loaded_at BETWEEN now() - interval '1 hour' AND now()) FROM {t}";
    v.push(Case {
        target: LINEAGE,
        ..case(
            "lineage_columns",
            "lineage_columns.csv",
            b"id,s\n1,a\n2,\"two\nlines\"\n3,c\n",
            plain(),
            Expect::Loads(
                3,
                Some((
                    leak(LINEAGE_CHECK.replace("{file}", "'lineage_columns.csv'")),
                    "1:1,2:2,3:3 true 1 true",
                )),
            ),
        )
    });
    v.push(Case {
        target: "lineage = [\"line\"]\non_new_columns = \"fail\"\n",
        setup: Some("CREATE TABLE {t} (id bigint, s text); INSERT INTO {t} VALUES (7, 'x')"),
        ..case(
            "lineage_added_to_an_existing_table",
            "lineage_added_to_an_existing_table.parquet",
            &parquet_of(
                &RecordBatch::try_from_iter(vec![
                    ("id", Arc::new(Int64Array::from(vec![10, 20])) as arrow::array::ArrayRef),
                    ("s", Arc::new(StringArray::from(vec!["p", "q"])) as arrow::array::ArrayRef),
                ])
                .unwrap(),
            ),
            "[source]\n".to_string(),
            Expect::Loads(
                3,
                Some((
                    "SELECT string_agg(id || ':' || coalesce(_ferry_line::text, '-'), ',' ORDER BY id) FROM {t}",
                    "7:-,10:1,20:2",
                )),
            ),
        )
    });
    v.push(Case {
        target: LINEAGE,
        ..case(
            "lineage_line_with_rejects",
            "lineage_line_with_rejects.csv",
            b"id,s\n1,a\n",
            format!("{}[errors]\nmax_bad_rows = 5\n", two()),
            fails(2, &["target.lineage", "max_bad_rows"]),
        )
    });
    // Keys that repeat: delete-insert, and one row kept per key.
    v.push(Case {
        target: "mode = \"delete-insert\"\nkeys = [\"id\"]\n",
        setup: Some(
            "CREATE TABLE {t} (id bigint, s text); INSERT INTO {t} VALUES (1, 'old'), (1, 'older'), (2, 'kept')",
        ),
        ..case(
            "delete_insert_replaces_the_keys_rows",
            "delete_insert_replaces_the_keys_rows.csv",
            b"id,s\n1,new\n3,added\n",
            two(),
            Expect::Loads(
                3,
                Some((
                    "SELECT string_agg(id || ':' || s, ',' ORDER BY id) FROM {t}",
                    "1:new,2:kept,3:added",
                )),
            ),
        )
    });
    v.push(Case {
        target: "mode = \"delete-insert\"\nkeys = [\"id\"]\n",
        setup: Some("CREATE TABLE {t} (id bigint, s text); INSERT INTO {t} VALUES (1, 'old')"),
        ..case(
            "delete_insert_duplicate_keys",
            "delete_insert_duplicate_keys.csv",
            b"id,s\n1,a\n2,b\n1,c\n",
            two(),
            fails(
                4,
                &[
                    "key (id) = 1 occurs 2 times, at rows 1, 3",
                    "duplicate_keys",
                ],
            ),
        )
    });
    v.push(Case {
        target: "mode = \"delete-insert\"\nkeys = [\"id\"]\nlineage = [\"line\"]\n",
        setup: Some("CREATE TABLE {t} (id bigint, s text); INSERT INTO {t} VALUES (1, 'old')"),
        ..case(
            "duplicate_keys_named_by_input_record",
            "duplicate_keys_named_by_input_record.csv",
            b"id,s\n1,\"a\nb\"\n2,b\n1,c\n",
            two(),
            fails(
                4,
                &["key (id) = 1 occurs 2 times, at records 1, 3 of the input"],
            ),
        )
    });
    v.push(Case {
        target: "mode = \"upsert\"\nkeys = [\"id\"]\nduplicate_keys = \"last\"\n",
        setup: Some(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, s text); INSERT INTO {t} VALUES (1, 'old'), (7, 'x')",
        ),
        ..case(
            "upsert_duplicate_keys_last",
            "upsert_duplicate_keys_last.csv",
            b"id,s\n1,a\n2,b\n1,c\n2,d\n",
            two(),
            Expect::Loads(
                3,
                Some((
                    "SELECT string_agg(id || ':' || s, ',' ORDER BY id) FROM {t}",
                    "1:c,2:d,7:x",
                )),
            ),
        )
    });
    v.push(Case {
        target: "mode = \"delete-insert\"\nkeys = [\"id\"]\nduplicate_keys = \"first\"\n",
        setup: Some("CREATE TABLE {t} (id bigint, s text); INSERT INTO {t} VALUES (1, 'old')"),
        ..case(
            "delete_insert_duplicate_keys_first",
            "delete_insert_duplicate_keys_first.csv",
            b"id,s\n1,a\n2,b\n1,c\n",
            two(),
            Expect::Loads(
                2,
                Some((
                    "SELECT string_agg(id || ':' || s, ',' ORDER BY id) FROM {t}",
                    "1:a,2:b",
                )),
            ),
        )
    });
    v
}

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Cases whose `ferry` panicked (each is a failed test too).
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs one case and says what went wrong, if anything.
async fn run_case(c: &Case) -> Result<(), String> {
    let s = Scratch::new("corpus").await;
    let table = s.table(c.name);
    if let Some(sql) = c.setup {
        s.db.batch_execute(&sql.replace("{t}", &table))
            .await
            .map_err(|e| format!("setup: {e}"))?;
    }
    let before: Option<i64> = match c.setup {
        Some(_) => Some(s.scalar(&format!("SELECT count(*) FROM {table}")).await),
        None => None,
    };
    let shape = |table: &str| {
        format!(
            "SELECT coalesce(string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum), '')
               FROM pg_attribute WHERE attrelid = to_regclass('{table}') AND attnum > 0 AND NOT attisdropped"
        )
    };
    // The ledger as ferry creates it (serialised the same way), so that
    // its entries for this target can be counted before the first load.
    s.db.batch_execute(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock(hashtext('ferry.loads')); {}; COMMIT;",
        ferry_connectors::pg::statements::LEDGER_DDL
    ))
    .await
    .map_err(|e| format!("ledger: {e}"))?;
    let ledger = format!("SELECT count(*) FROM ferry.loads WHERE target = '{table}'");
    let columns_before: String = s.scalar(&shape(&table)).await;
    let ledger_before: i64 = s.scalar(&ledger).await;
    let input = s.path(&c.file);
    std::fs::write(&input, &c.bytes).map_err(|e| e.to_string())?;
    let spec = s.spec(
        &format!("spec_{}", c.name),
        &format!("{}\n[target]\ntable = \"{table}\"\n{}", c.source, c.target),
        "SELECT * FROM source",
    );
    let o = ferry(
        &[
            "load",
            "--json",
            "--dataset",
            spec.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--artifacts",
            "none",
        ],
        s.dir.path(),
    );
    let out = text(&o);
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(p);
    if out.contains("panicked") {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(format!("panicked\n{out}"));
    }
    let exists: bool = s
        .scalar(&format!("SELECT to_regclass('{table}') IS NOT NULL"))
        .await;
    match &c.expect {
        Expect::Fails(want, needles) => {
            if code(&o) != *want {
                problem(format!("exit {} (want {want})", code(&o)));
            }
            for n in needles {
                if !out.contains(n.as_str()) {
                    problem(format!("no {n:?} in the message"));
                }
            }
            match before {
                None if exists => problem("a failed load created the target".into()),
                Some(rows) => {
                    let after: i64 = s.scalar(&format!("SELECT count(*) FROM {table}")).await;
                    if after != rows {
                        problem(format!("the target went from {rows} to {after} rows"));
                    }
                }
                None => {}
            }
            let columns_after: String = s.scalar(&shape(&table)).await;
            if columns_after != columns_before {
                problem(format!(
                    "the target's columns went from ({columns_before}) to ({columns_after})"
                ));
            }
            let ledger_after: i64 = s.scalar(&ledger).await;
            if ledger_after != ledger_before {
                problem(format!(
                    "the ledger went from {ledger_before} to {ledger_after} entries"
                ));
            }
        }
        Expect::Loads(rows, check) => {
            if code(&o) != 0 || !exists {
                return Err(format!("exit {}, target exists: {exists}\n{out}", code(&o)));
            }
            let n: i64 = s.scalar(&format!("SELECT count(*) FROM {table}")).await;
            if n != *rows {
                problem(format!("{n} rows (want {rows})"));
            }
            if let Some((sql, want)) = check {
                let got: String = s.scalar(&sql.replace("{t}", &table)).await;
                if got != *want {
                    problem(format!("{sql} gave {got:?} (want {want:?})"));
                }
            }
        }
        Expect::Rejects(rows, rejected) => {
            if code(&o) != 0 {
                return Err(format!("exit {}\n{out}", code(&o)));
            }
            let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let n: i64 = s.scalar(&format!("SELECT count(*) FROM {table}")).await;
            if n != *rows {
                problem(format!("{n} rows (want {rows})"));
            }
            if report["rejected"] != rejected.len() {
                problem(format!("report says {} rejected", report["rejected"]));
            }
            let file = report["rejects"].as_str().unwrap_or_default();
            let got: Vec<(u64, Option<usize>)> = std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                    (
                        v["line"].as_u64().unwrap_or(0),
                        v["column"].as_u64().map(|c| c as usize),
                    )
                })
                .collect();
            if got != *rejected {
                problem(format!("rejected {got:?} (want {rejected:?}) in {file:?}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{out}", problems.join("; ")))
    }
}

/// One test per case, named `<outcome>::<case>` (e.g.
/// `fails::json_drift_past_window`), so `cargo test --test corpus -- NAME`
/// runs one and a failure names its case. The `CORPUS` line counts the kinds
/// of outcome, as RELIABILITY.md reports them.
fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let cases = cases();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let mut names = std::collections::BTreeSet::new();
    let mut kinds = [0usize; 3]; // fails clearly, loads, rejects
    let trials: Vec<_> = cases
        .into_iter()
        .map(|c| {
            assert!(names.insert(c.name), "two cases are named {}", c.name);
            let kind = match c.expect {
                Expect::Fails(..) => 0,
                Expect::Loads(..) => 1,
                Expect::Rejects(..) => 2,
            };
            kinds[kind] += 1;
            let name = format!("{}::{}", ["fails", "loads", "rejects"][kind], c.name);
            libtest_mimic::Trial::test(name, move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(run_case(&c)).map_err(Into::into)
            })
        })
        .collect();
    let total = trials.len();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.num_filtered_out == 0 {
        println!(
            "CORPUS cases={total} fail_clearly={} load={} reject_rows={} broken={} panics={}",
            kinds[0],
            kinds[1],
            kinds[2],
            conclusion.num_failed,
            PANICS.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    conclusion.exit_code()
}
