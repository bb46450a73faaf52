//! The `ferry` binary end to end against a real PostgreSQL: the shipped
//! datasets, sniffed loads, bad inputs (named precisely, nothing loaded,
//! exit codes scripts can trust), spec errors, and the ledger.

use crate::common;

use common::{Scratch, ferry, repo, text};

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread")]
async fn help_teaches_by_example() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["load", "--help"],
        vec!["spec", "check", "--help"],
        vec!["spec", "init", "--help"],
    ] {
        let o = ferry(&args, dir.path());
        assert_eq!(code(&o), 0, "{}", text(&o));
        assert!(text(&o).contains("Example"), "{args:?}: {}", text(&o));
    }
    let o = ferry(&["--help"], dir.path());
    assert!(text(&o).contains("Exit codes"), "{}", text(&o));
    let o = ferry(&["load"], dir.path());
    assert_eq!(code(&o), 2, "missing --input is a usage error");
    // Every input format is in the help of the flags that take one (avro was once missing).
    for (args, flag) in [
        (vec!["load", "--help"], "--format"),
        (vec!["convert", "--help"], "--input-format"),
    ] {
        let help = String::from_utf8_lossy(&ferry(&args, dir.path()).stdout)
            .replace(char::is_whitespace, " ");
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("{args:?}: no {flag}"));
        let squeezed = help[at..].split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            squeezed.contains("csv, tsv, ndjson, parquet, arrow, avro"),
            "{args:?}: {}",
            &squeezed[..200.min(squeezed.len())]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_datasets_check_and_load() {
    let s = Scratch::new("shipped").await;
    let root = repo();
    for (name, sample, table) in [
        ("lineitem", "sample.tbl", "lineitem"),
        ("events", "sample.ndjson", "events"),
        ("trips", "sample.parquet", "trips"),
    ] {
        let spec = root.join("sql").join(name);
        let o = ferry(&["spec", "check", spec.to_str().unwrap()], s.dir.path());
        assert_eq!(code(&o), 0, "{name}: {}", text(&o));
        assert!(
            text(&o).contains("CREATE TABLE IF NOT EXISTS"),
            "{}",
            text(&o)
        );
        let target = s.table(table);
        let input = spec.join(sample);
        let o = ferry(
            &[
                "load",
                "--dataset",
                spec.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--table",
                &target,
            ],
            s.dir.path(),
        );
        assert_eq!(code(&o), 0, "{name}: {}", text(&o));
        assert!(text(&o).contains("loaded"), "{}", text(&o));
    }
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {}", s.table("lineitem")))
            .await,
        200
    );
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {}", s.table("events")))
            .await,
        200
    );
    // trips drops negative distances in its transform.
    let kept: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("trips")))
        .await;
    assert!(kept > 400 && kept < 500, "{kept}");
    let sum: String = s
        .scalar(&format!(
            "SELECT sum(l_extendedprice)::text FROM {}",
            s.table("lineitem")
        ))
        .await;
    assert!(
        sum.ends_with(|c: char| c.is_ascii_digit()) && sum.contains('.'),
        "{sum}"
    );
    let ty: String = s
        .scalar(&format!("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{}'::regclass AND attname = 'event_id'", s.table("events")))
        .await;
    assert_eq!(ty, "uuid");
    let user: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM {} WHERE actor ? 'name' AND user_id = (actor->>'id')::bigint",
            s.table("events")
        ))
        .await;
    assert_eq!(user, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sniffed_load_twice_loads_once_and_force_reloads() {
    let s = Scratch::new("sniffed").await;
    let input = s.path("people.csv");
    std::fs::write(
        &input,
        "id;name;born;score\n1;Ann;1990-01-02;1.5\n2;\"Bob; Jr\";;2\n3;;2000-02-29;NA\n",
    )
    .unwrap();
    let table = s.table("people");
    let args = [
        "load",
        "--input",
        input.to_str().unwrap(),
        "--table",
        &table,
        "--null",
        "",
        "--null",
        "NA",
    ];
    let o = ferry(&args, s.dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("loaded 3 rows"), "{}", text(&o));
    let o = ferry(&args, s.dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("skipped"), "{}", text(&o));
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {table}"))
            .await,
        3
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = ferry(&forced, s.dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {table}"))
            .await,
        6
    );
    let nulls: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM {table} WHERE score IS NULL OR born IS NULL"
        ))
        .await;
    assert_eq!(nulls, 4);
    let ty: String = s
        .scalar(&format!("SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attnum > 0"))
        .await;
    // A plain decimal infers an exact numeric, scaled to the most places seen.
    assert_eq!(ty, "bigint,text,date,numeric(38,1)");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_named_and_nothing_is_loaded() {
    let s = Scratch::new("badinput").await;
    let cases: Vec<(&str, &[u8], &str, Vec<&str>)> = vec![
        (
            "value.csv",
            b"id,amount\n1,2.5\n2,3\n3,abc\n4,5\n",
            "bigint|numeric(10,2)",
            vec![
                "value.csv:4",
                "column 2",
                "\"amount\"",
                "\"abc\"",
                "not a number",
            ],
        ),
        (
            "range.csv",
            b"id,amount\n1,2\n70000,3\n",
            "smallint|numeric(10,2)",
            vec![
                "range.csv:3",
                "\"id\"",
                "\"70000\"",
                "out of range for smallint",
            ],
        ),
        (
            "ragged.csv",
            b"id,amount\n1,2\n2,3,4\n",
            "bigint|numeric(10,2)",
            vec!["ragged.csv:3", "expected 2 fields, found 3"],
        ),
        (
            "quote.csv",
            b"id,amount\n1,2\n\"2,3\n4,5\n",
            "bigint|numeric(10,2)",
            vec!["quote.csv:3", "never closed"],
        ),
        (
            "utf8.csv",
            b"id,amount\n1,2\n2,\xff\xfe\n",
            "bigint|numeric(10,2)",
            vec!["utf8.csv:3", "invalid UTF-8", "ff"],
        ),
        (
            "overflow.csv",
            b"id,amount\n1,123456789.5\n",
            "bigint|numeric(10,2)",
            vec!["overflow.csv:2", "numeric field overflow"],
        ),
    ];
    for (file, body, types, needles) in cases {
        let input = s.path(file);
        std::fs::write(&input, body).unwrap();
        let types: Vec<&str> = types.split('|').collect();
        let spec = s.spec(
            &format!("spec_{file}"),
            &format!(
                "[source]\nformat = \"csv\"\n[[source.columns]]\nname = \"id\"\ntype = \"{}\"\n[[source.columns]]\nname = \"amount\"\ntype = \"{}\"\n[target]\ntable = \"{}\"\n",
                types[0],
                types.get(1).copied().unwrap_or("text"),
                s.table(&file.replace('.', "_"))
            ),
            "SELECT * FROM source",
        );
        let o = ferry(
            &[
                "load",
                "--dataset",
                spec.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--streams",
                "2",
            ],
            s.dir.path(),
        );
        assert_eq!(code(&o), 3, "{file}: {}", text(&o));
        for n in needles {
            assert!(
                text(&o).contains(n),
                "{file}: expected {n:?} in:\n{}",
                text(&o)
            );
        }
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
        let exists: bool = s
            .scalar(&format!(
                "SELECT to_regclass('{}') IS NOT NULL",
                s.table(&file.replace('.', "_"))
            ))
            .await;
        assert!(!exists, "{file}: the target was created by a failed load");
    }
    let loads: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM ferry.loads WHERE target LIKE '{}.%'",
            s.schema
        ))
        .await;
    assert_eq!(loads, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_errors_exit_2_and_point_at_the_spec() {
    let s = Scratch::new("specerr").await;
    let input = s.path("x.csv");
    std::fs::write(&input, "a\n1\n").unwrap();
    let bad_toml = s.spec(
        "typo",
        "[source]\nformat = \"csv\"\ndelimter = \";\"\n[target]\ntable = \"t\"\n",
        "SELECT * FROM source",
    );
    let bad_sql = s.spec(
        "badsql",
        "[source]\nformat = \"csv\"\n[target]\ntable = \"t\"\n",
        "SELECT a,\n       nope\nFROM source",
    );
    for (spec, needle) in [
        (&bad_toml, "dataset.toml:3:1"),
        (&bad_sql, "transform.sql:2:8"),
    ] {
        let o = ferry(
            &[
                "load",
                "--dataset",
                spec.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
            ],
            s.dir.path(),
        );
        assert_eq!(code(&o), 2, "{}", text(&o));
        assert!(
            text(&o).contains(needle),
            "expected {needle:?} in {}",
            text(&o)
        );
    }
    let o = ferry(&["spec", "check", bad_toml.to_str().unwrap()], s.dir.path());
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("unknown field `delimter`"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spec_init_writes_a_spec_that_checks_and_loads() {
    let s = Scratch::new("init").await;
    let input = s.path("orders.csv");
    let out = std::process::Command::new("python3")
        .arg(repo().join("scripts/gen_sample.py"))
        .args(["orders", "--rows", "2000"])
        .output()
        .unwrap();
    std::fs::write(&input, out.stdout).unwrap();
    let specs = s.path("sql");
    let o = ferry(
        &[
            "spec",
            "init",
            input.to_str().unwrap(),
            "--name",
            "orders",
            "--dir",
            specs.to_str().unwrap(),
            "--table",
            &s.table("orders"),
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let toml = std::fs::read_to_string(specs.join("orders/dataset.toml")).unwrap();
    assert!(
        toml.contains("header = true") && toml.contains("type = \"timestamptz\""),
        "{toml}"
    );
    let o = ferry(
        &["spec", "check", specs.join("orders").to_str().unwrap()],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = ferry(
        &[
            "load",
            "-d",
            specs.join("orders").to_str().unwrap(),
            "-i",
            input.to_str().unwrap(),
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {}", s.table("orders")))
            .await,
        2000
    );
    // Refuses to overwrite without --force.
    let o = ferry(
        &[
            "spec",
            "init",
            input.to_str().unwrap(),
            "--name",
            "orders",
            "--dir",
            specs.to_str().unwrap(),
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 2, "{}", text(&o));
}

/// A continental spreadsheet export (Windows-1252, `;`, `1.234,50`): `ferry
/// load` without a spec refuses it with the key to set; `spec init` writes
/// the encoding and the number separators down, says so, and the spec loads
/// it exactly.
#[tokio::test(flavor = "multi_thread")]
async fn spec_init_recognizes_a_windows_1252_export_with_decimal_commas() {
    let s = Scratch::new("initde").await;
    let input = s.path("kunden.csv");
    std::fs::write(
        &input,
        b"Kunde;Betrag;Stadt\r\nM\xfcller;1.234,50;K\xf6ln\r\nS\xe9bastien;-0,25;Z\xfcrich\r\n",
    )
    .unwrap();
    let table = s.table("kunden");
    let o = ferry(
        &[
            "load",
            "kunden.csv",
            "--table",
            &table,
            "--work-dir",
            "work",
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(
        text(&o).contains("encoding = \"windows-1252\""),
        "{}",
        text(&o)
    );
    let o = ferry(
        &[
            "spec",
            "init",
            "kunden.csv",
            "--name",
            "kunden",
            "--dir",
            "sql",
            "--table",
            &table,
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("not UTF-8"), "{}", text(&o));
    let toml = std::fs::read_to_string(s.path("sql/kunden/dataset.toml")).unwrap();
    for key in [
        "encoding = \"windows-1252\"",
        "decimal_separator = \",\"",
        "thousands_separator = \".\"",
        "type = \"numeric(38,2)\"",
    ] {
        assert!(toml.contains(key), "{key} in {toml}");
    }
    let o = ferry(
        &[
            "load",
            "-d",
            "sql/kunden",
            "kunden.csv",
            "--work-dir",
            "work",
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let rows: String = s
        .scalar(&format!(
            "SELECT string_agg(concat_ws('|', kunde, betrag, stadt), ',' ORDER BY betrag) FROM {table}"
        ))
        .await;
    assert_eq!(rows, "Sébastien|-0.25|Zürich,Müller|1234.50|Köln");
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_inputs_bom_crlf_and_split_artifacts() {
    use std::io::Write;
    let s = Scratch::new("compressed").await;
    // A BOM, CRLF line endings, a quoted CRLF inside a field, and a comment-free header.
    let mut csv = String::from("\u{feff}id,name,note\r\n");
    for i in 0..30_000 {
        csv.push_str(&format!(
            "{i},\"name {i}\",\"line one\r\nline two, with comma\"\r\n"
        ));
    }
    let plain = s.path("people.csv");
    std::fs::write(&plain, &csv).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(csv.as_bytes()).unwrap();
    std::fs::write(s.path("people.csv.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        s.path("people.csv.zst"),
        zstd::encode_all(csv.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(csv.as_bytes()).unwrap();
    std::fs::write(s.path("people.csv.bz2"), bz.finish().unwrap()).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(csv.as_bytes()).unwrap();
    std::fs::write(s.path("people.csv.xz"), xz.finish().unwrap()).unwrap();

    for file in [
        "people.csv",
        "people.csv.gz",
        "people.csv.zst",
        "people.csv.bz2",
        "people.csv.xz",
    ] {
        let table = s.table(&file.replace('.', "_"));
        let input = s.path(file);
        let o = ferry(
            &[
                "load",
                "-i",
                input.to_str().unwrap(),
                "-t",
                &table,
                "--part-size",
                "32KiB",
                "--json",
            ],
            s.dir.path(),
        );
        assert_eq!(code(&o), 0, "{file}: {}", text(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["rows"], 30_000, "{file}");
        // The first column is named id, not "\u{feff}id"; the quoted CRLF survives.
        let (n, notes): (i64, i64) = {
            let r = s.db
                .query_one(&format!("SELECT count(id), count(*) FILTER (WHERE note = E'line one\\r\\nline two, with comma') FROM {table}"), &[])
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        assert_eq!((n, notes), (30_000, 30_000), "{file}");
        // Small parts: several .sql and .pgcopy files, replayed into a copy of the table.
        let parts = report["artifacts"].as_array().unwrap();
        let sql_parts = parts.iter().filter(|a| a["kind"] == "sql").count();
        let copy_parts = parts.iter().filter(|a| a["kind"] == "pgcopy").count();
        assert!(
            sql_parts > 2 && copy_parts > 2,
            "{file}: {sql_parts} sql, {copy_parts} pgcopy parts"
        );
        let rows_in_parts: u64 = parts
            .iter()
            .filter(|a| a["kind"] == "sql")
            .map(|a| a["rows"].as_u64().unwrap())
            .sum();
        assert_eq!(rows_in_parts, 30_000);
        if file == "people.csv" {
            let job_dir = std::path::PathBuf::from(report["job_dir"].as_str().unwrap());
            s.db.batch_execute(&format!(
                "ALTER TABLE {table} RENAME TO people_binary; DELETE FROM ferry.loads WHERE job_id = '{}'",
                report["job_id"].as_str().unwrap()
            ))
            .await
            .unwrap();
            let out = common::psql_file(&job_dir.join("artifacts/load.sql"));
            assert!(out.status.success(), "{}", text(&out));
            assert!(s.diff(&s.table("people_binary"), &table).await.is_empty());
        }
    }
    // A truncated compressed file is an input error, not a panic or a partial load.
    let gz = std::fs::read(s.path("people.csv.gz")).unwrap();
    std::fs::write(s.path("cut.csv.gz"), &gz[..gz.len() / 2]).unwrap();
    let o = ferry(
        &[
            "load",
            "-i",
            s.path("cut.csv.gz").to_str().unwrap(),
            "-t",
            &s.table("cut"),
            "--header",
        ],
        s.dir.path(),
    );
    assert!(matches!(code(&o), 3 | 5), "{}", text(&o));
    assert!(text(&o).contains("cut.csv.gz"), "{}", text(&o));
    let exists: bool = s
        .scalar(&format!(
            "SELECT to_regclass('{}') IS NOT NULL",
            s.table("cut")
        ))
        .await;
    assert!(!exists);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_identifiers_are_quoted_and_pg_variables_work() {
    let s = Scratch::new("idents").await;
    let input = s.path("odd.csv");
    std::fs::write(
        &input,
        "\"na\"\"me\",sp ace,ünï,\"x); DROP TABLE t; --\"\n1,a,b,c\n",
    )
    .unwrap();
    let table = format!("\"{}\".\"we\"\"ird tab.le\"", s.schema);
    // Connect through libpq-style variables instead of a URL.
    let url = url::Url::parse(&common::database_url()).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["load", "-i", input.to_str().unwrap(), "-t", &table])
        .args(["--column-names", "as-is"])
        .current_dir(s.dir.path())
        .env_remove("DATABASE_URL")
        .env("PGHOST", url.host_str().unwrap())
        .env("PGPORT", url.port().unwrap().to_string())
        .env("PGUSER", url.username())
        .env("PGDATABASE", url.path().trim_start_matches('/'))
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let cols: String = s
        .scalar(&format!(
            "SELECT string_agg(attname, '|' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '{}'::regclass AND attnum > 0",
            table.replace('\'', "''")
        ))
        .await;
    assert_eq!(cols, "na\"me|sp ace|ünï|x); DROP TABLE t; --");
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {table}"))
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_ndjson_names_the_line() {
    let s = Scratch::new("badjson").await;
    let spec = s.spec(
        "ev",
        &format!("[source]\nformat = \"ndjson\"\n[[source.columns]]\nname = \"ts\"\ntype = \"timestamptz\"\n[target]\ntable = \"{}\"\n", s.table("ev")),
        "SELECT * FROM source",
    );
    for (file, body, needles) in [
        (
            "typed.ndjson",
            "{\"id\": 1, \"ts\": \"2024-01-01T00:00:00Z\"}\n{\"id\": 2, \"ts\": \"yesterday\"}\n",
            vec!["typed.ndjson:2", "'ts'", "yesterday"],
        ),
        (
            "broken.ndjson",
            "{\"id\": 1, \"ts\": null}\n\n{\"id\": 2,\n",
            vec!["broken.ndjson:3", "not valid JSON"],
        ),
    ] {
        let input = s.path(file);
        std::fs::write(&input, body).unwrap();
        let o = ferry(
            &[
                "load",
                "-d",
                spec.to_str().unwrap(),
                "-i",
                input.to_str().unwrap(),
            ],
            s.dir.path(),
        );
        assert_eq!(code(&o), 3, "{file}: {}", text(&o));
        for n in needles {
            assert!(
                text(&o).contains(n),
                "{file}: expected {n:?} in {}",
                text(&o)
            );
        }
    }
    let exists: bool = s
        .scalar(&format!(
            "SELECT to_regclass('{}') IS NOT NULL",
            s.table("ev")
        ))
        .await;
    assert!(!exists);
}

#[tokio::test(flavor = "multi_thread")]
async fn convert_validates_and_exits_6_on_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    let out = std::process::Command::new("python3")
        .arg(repo().join("scripts/gen_sample.py"))
        .args(["orders", "--rows", "3000"])
        .output()
        .unwrap();
    std::fs::write(&input, out.stdout).unwrap();
    let run = |args: &[&str]| ferry(args, dir.path());
    let o = run(&[
        "convert",
        "-i",
        "orders.csv",
        "--to",
        "parquet",
        "--compression",
        "zstd:3",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("converted 3000 rows") && text(&o).contains("validation: valid"),
        "{}",
        text(&o)
    );
    assert!(dir.path().join("orders.parquet").is_file());
    assert!(dir.path().join("orders.parquet.validation.json").is_file());
    // The output exists: refuse to overwrite without --force.
    let o = run(&["convert", "-i", "orders.csv", "--to", "parquet"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    // Round trip through another format and back, then tamper with a CSV and validate only.
    let o = run(&[
        "convert",
        "-i",
        "orders.parquet",
        "--to",
        "csv",
        "-o",
        "back.csv",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let back = std::fs::read_to_string(dir.path().join("back.csv")).unwrap();
    std::fs::write(
        dir.path().join("back.csv"),
        back.replacen(",paid,", ",PAID,", 1),
    )
    .unwrap();
    let o = run(&[
        "convert",
        "-i",
        "orders.parquet",
        "--to",
        "csv",
        "-o",
        "back.csv",
        "--step",
        "validate",
    ]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains("INVALID")
            && text(&o).contains("column \"status\"")
            && text(&o).contains("\"PAID\""),
        "{}",
        text(&o)
    );
    // Converted without validation, there is no digest to validate against.
    let o = run(&[
        "convert",
        "-i",
        "orders.csv",
        "--to",
        "arrow",
        "--no-validate",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = run(&[
        "convert",
        "-i",
        "orders.csv",
        "--to",
        "arrow",
        "--step",
        "validate",
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("without a digest"), "{}", text(&o));
    // To a loadable script without a database, then load it with psql.
    let s = Scratch::new("convsql").await;
    let table = s.table("orders");
    let o = run(&[
        "convert",
        "-i",
        "orders.csv",
        "--to",
        "sql",
        "-o",
        "orders-sql",
        "--table",
        &table,
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = common::psql_file(&dir.path().join("orders-sql/load.sql"));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {table}"))
            .await,
        3000
    );
    // Help documents formats and options.
    let o = run(&["convert", "--help"]);
    for needle in [
        "parquet",
        "avro",
        "pgcopy",
        "--compression",
        "zstd[:level]",
        "row-group-rows",
        "exits 6",
    ] {
        assert!(text(&o).contains(needle), "--help lacks {needle}");
    }
}

/// The CDK app builds its state machines from containers/ferry-tasks.json:
/// the checked-in file must be exactly what this CLI prints.
#[test]
fn the_task_contract_file_matches_the_cli() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("tasks")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let file = common::repo().join("containers/ferry-tasks.json");
    let checked_in: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        printed,
        checked_in,
        "{} is stale: run `ferry tasks > containers/ferry-tasks.json`",
        file.display()
    );
    // Every step the workflows name has a command, and the variables the
    // state machines set are ones the CLI reads.
    for wf in ["loader", "converter"] {
        for step in printed["workflows"][wf].as_array().unwrap() {
            let s = step.as_str().unwrap();
            assert_eq!(printed["steps"][s]["command"][1], s, "{wf}: {s}");
        }
    }
    for var in [
        "FERRY_WORK_DIR",
        "FERRY_JOB_STORE",
        "FERRY_NOTIFY",
        "FERRY_OUTPUT",
        "FERRY_SPECS",
        "FERRY_LOG_FORMAT",
        "FERRY_TASK_TOKEN",
        "FERRY_HEARTBEAT_SECONDS",
    ] {
        assert!(printed["environment"].get(var).is_some(), "{var}");
    }
}

/// A database password never reaches logs (text or JSON, verbose), job
/// records, events or artifacts — neither when the job succeeds nor when the
/// server cannot be reached (the error then names the server, not the URL).
#[tokio::test(flavor = "multi_thread")]
async fn the_database_password_never_reaches_logs_records_or_events() {
    let s = Scratch::new("secret").await;
    const PASSWORD: &str = "p4ss-SECRET-7f3a";
    routed_orders(&s);
    std::fs::write(s.path("in/a.csv"), "id,note\n1,one\n2,two\n").unwrap();
    // The test server trusts loopback, so any password is accepted: ferry must still hide it.
    let with_password =
        common::database_url().replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    assert!(with_password.contains(PASSWORD), "{with_password}");
    let unreachable = with_password.replacen(
        &format!("127.0.0.1:{}", url_port(&with_password)),
        "127.0.0.1:1",
        1,
    );
    let mut outputs = Vec::new();
    for (url, format, input, expect) in [
        (&with_password, "json", "in/a.csv", 0),
        (&with_password, "text", "in/a.csv", 0), // a duplicate: nothing to do
        (&unreachable, "json", "in/b.csv", 5),
    ] {
        if input == "in/b.csv" {
            std::fs::write(s.path(input), "id,note\n3,three\n").unwrap();
        }
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "run",
                "-vv",
                "--input",
                input,
                "--specs",
                "specs",
                "--work-dir",
                "work",
            ])
            .current_dir(s.dir.path())
            .env("DATABASE_URL", url)
            .env("FERRY_LOG_FORMAT", format)
            .env_remove("FERRY_WORK_DIR")
            .output()
            .unwrap();
        assert_eq!(code(&o), expect, "{}", text(&o));
        outputs.push(text(&o));
    }
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {}", s.table("orders")))
            .await,
        2
    );
    for (i, out) in outputs.iter().enumerate() {
        assert!(
            !out.contains(PASSWORD),
            "run {i} printed the password:\n{out}"
        );
    }
    assert!(
        outputs[2].contains("127.0.0.1"),
        "the error names the server: {}",
        outputs[2]
    );
    // Every file the jobs wrote: job store, events, job folders, artifacts.
    let mut files = 0;
    let mut stack = vec![s.path("work"), s.path("output")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes
                        .windows(PASSWORD.len())
                        .any(|w| w == PASSWORD.as_bytes()),
                    "{} holds the password",
                    p.display()
                );
            }
        }
    }
    assert!(
        files >= 4,
        "only {files} files written: the check would prove nothing"
    );
}

/// The port of a postgres:// URL.
fn url_port(url: &str) -> String {
    let after_host = url.split_once("127.0.0.1:").expect("a loopback URL").1;
    after_host
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

/// A storm of the same event: 50 `ferry run` processes for one input at
/// once, sharing the job store (SQLite, across processes) and the database.
/// One job, one load, one event; the other 49 say there is nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_runs_of_one_input_load_it_once() {
    let s = Scratch::new("storm").await;
    routed_orders(&s);
    std::fs::write(s.path("in/a.csv"), "id,note\n1,one\n2,two\n3,three\n").unwrap();
    let children: Vec<_> = (0..50)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
                .args(common::RUN_IN_A)
                .arg("-q")
                .current_dir(s.dir.path())
                .env("DATABASE_URL", common::database_url())
                .env_remove("FERRY_WORK_DIR")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert_eq!(code(o), 0, "{}", text(o));
    }
    let loaded = outputs
        .iter()
        .filter(|o| text(o).contains("load: loaded"))
        .count();
    let idle = outputs
        .iter()
        .filter(|o| text(o).contains("nothing to do"))
        .count();
    assert_eq!((loaded, idle), (1, 49));
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {}", s.table("orders")))
            .await,
        3
    );
    let input = s.path("in/a.csv").display().to_string();
    assert_eq!(
        s.scalar::<i64>(&format!(
            "SELECT count(*) FROM ferry.loads WHERE input = '{}'",
            input.replace('\'', "''")
        ))
        .await,
        1
    );
    let events = std::fs::read_to_string(s.path("work/events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1, "{events}");
    let jobs = ferry(&["jobs", "list", "--work-dir", "work"], s.dir.path());
    assert_eq!(
        text(&jobs)
            .lines()
            .filter(|l| l.contains("succeeded"))
            .count(),
        1,
        "{}",
        text(&jobs)
    );
}

/// `specs/orders`: CSV files under `in/` go to the Loader, into the scratch
/// schema's `orders` table; `in/` exists.
fn routed_orders(s: &Scratch) {
    s.spec(
        "specs/orders",
        &format!(
            "[source]\nformat = \"csv\"\nheader = true\n[routing]\nkeys = [\"in/*.csv\"]\nworkflow = \"loader\"\n[target]\ntable = \"{}\"\n",
            s.table("orders")
        ),
        "SELECT * FROM source",
    );
    std::fs::create_dir_all(s.path("in")).unwrap();
}

/// The error policy through a job: a routed input with a bad row under
/// `max_bad_rows` loads the rest, and the count and the reject file reach the
/// job record, the notification and the output bundle's job folder.
#[tokio::test(flavor = "multi_thread")]
async fn rejected_rows_are_counted_in_the_job_record_and_the_event() {
    let s = Scratch::new("rejects").await;
    routed_orders(&s);
    let toml = s.path("specs/orders/dataset.toml");
    let mut spec = std::fs::read_to_string(&toml).unwrap();
    spec.push_str("[errors]\nmax_bad_rows = 2\n");
    std::fs::write(&toml, spec).unwrap();
    std::fs::write(s.path("in/a.csv"), "id,note\n1,one\n2\n3,three\n").unwrap();
    let o = ferry(&common::RUN_IN_A, s.dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {}", s.table("orders")))
            .await,
        2
    );
    let events = std::fs::read_to_string(s.path("work/events.jsonl")).unwrap();
    let event: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(event["status"], "succeeded", "{event}");
    assert_eq!(event["outputs"]["rejected_rows"], 1, "{event}");
    let rejects = event["outputs"]["rejects"].as_str().unwrap().to_string();
    // The succeeded job's folder is gone (working storage does not grow with every job):
    // the reject file travels in the uploaded bundle.
    assert!(
        !std::path::Path::new(&rejects).exists(),
        "{rejects} outlived its succeeded job"
    );
    let bundle = walk(&s.path("output"))
        .into_iter()
        .find(|p| p.ends_with("file.zip"))
        .expect("an uploaded file.zip");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&bundle).unwrap()).unwrap();
    let name = zip
        .file_names()
        .find(|n| n.ends_with("rejects.jsonl"))
        .expect("rejects.jsonl in the bundle")
        .to_string();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name(&name).unwrap(), &mut text).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["line"], 3, "{line}");
    assert_eq!(line["raw"], "2", "{line}");
    assert_eq!(line["reason"], "expected 2 fields, found 1", "{line}");
    let job_id = event["job_id"].as_str().unwrap();
    let job = ferry(
        &["jobs", "show", job_id, "--json", "--work-dir", "work"],
        s.dir.path(),
    );
    let job: serde_json::Value = serde_json::from_slice(&job.stdout).unwrap();
    let step = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["outputs"].get("rejected_rows").is_some())
        .unwrap_or_else(|| panic!("no step records the rejects: {job}"));
    assert_eq!(step["outputs"]["rejected_rows"], 1);
    assert_eq!(step["outputs"]["rejects"], rejects.as_str());
}

/// `ferry convert --max-bad-rows`: the bad row goes to `<output>.rejects.jsonl`,
/// the rest converts and validates; one more bad row than allowed fails and
/// leaves no output.
#[tokio::test(flavor = "multi_thread")]
async fn convert_sets_bad_rows_aside_and_validates_the_rest() {
    let s = Scratch::new("convrejects").await;
    std::fs::write(s.path("in.csv"), "id,note\n1,one\n2\n3,three\n4,four,4\n").unwrap();
    let convert = |max: &str, out: &str| {
        ferry(
            &[
                "convert",
                "--input",
                "in.csv",
                "--to",
                "parquet",
                "--output",
                out,
                "--max-bad-rows",
                max,
                "--json",
            ],
            s.dir.path(),
        )
    };
    let o = convert("2", "ok.parquet");
    assert_eq!(code(&o), 0, "{}", text(&o));
    let reports: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&o.stdout)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(reports[0]["rows"], 2, "{}", text(&o));
    assert_eq!(reports[0]["rejected"], 2);
    assert_eq!(reports[1]["verdict"], "valid");
    let lines: Vec<u64> = std::fs::read_to_string(s.path("ok.parquet.rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["line"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(lines, vec![3, 5]);
    let o = convert("1", "over.parquet");
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(text(&o).contains("max_bad_rows = 1"), "{}", text(&o));
    assert!(!s.path("over.parquet").exists());
}

/// Every file under a folder.
/// `ferry jobs gc --older-than OLDER --json` over `<dir>/work`, its report.
fn jobs_gc(dir: &std::path::Path, older: &str) -> serde_json::Value {
    let o = ferry(
        &[
            "jobs",
            "gc",
            "--older-than",
            older,
            "--work-dir",
            "work",
            "--json",
        ],
        dir,
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Working storage does not grow with every job: a succeeded job's folder
/// goes when the job ends; a failed job's stays for the retention period
/// (for a look and a re-run) and then `ferry jobs gc` (or the sweep when
/// run, watch, load or convert start) removes it; a running job's folder is
/// never touched, whatever its age.
#[tokio::test(flavor = "multi_thread")]
async fn job_folders_go_when_done_with_and_running_jobs_keep_theirs() {
    let s = Scratch::new("gcwork").await;
    routed_orders(&s);
    // Job folders; `specs/` holds the pinned specs jobs share.
    let job_folders = || -> Vec<String> {
        std::fs::read_dir(s.path("work"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir() && e.file_name() != "specs")
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    std::fs::write(s.path("in/a.csv"), "id,note\n1,one\n").unwrap();
    let o = ferry(&common::RUN_IN_A, s.dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(
        job_folders(),
        Vec::<String>::new(),
        "the succeeded job's folder is removed"
    );

    // A failed job keeps its folder (the retention is 7 days by default): PostgreSQL refuses a
    // row after the artifacts are written.
    s.db.batch_execute(&format!(
        "ALTER TABLE {} ADD CHECK (id > 0)",
        s.table("orders")
    ))
    .await
    .unwrap();
    std::fs::write(s.path("in/b.csv"), "id,note\n-1,one\n").unwrap();
    let run_b = [
        "run",
        "--input",
        "in/b.csv",
        "--specs",
        "specs",
        "--work-dir",
        "work",
    ];
    let o = ferry(&run_b, s.dir.path());
    assert_ne!(code(&o), 0, "{}", text(&o));
    let failed = job_folders();
    assert_eq!(failed.len(), 1, "the failed job's folder stays: {failed:?}");

    // A claimed (running) job, as a step task leaves it between steps.
    std::fs::write(s.path("in/c.csv"), "id,note\n3,three\n").unwrap();
    let o = ferry(
        &[
            "task",
            "create-job",
            "--input",
            "in/c.csv",
            "--specs",
            "specs",
            "--work-dir",
            "work",
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let running: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Its steps have written into its folder (a local input is read in place, so put a part
    // there as the transform step would).
    let dir = std::path::PathBuf::from(running["dir"].as_str().unwrap());
    std::fs::create_dir_all(dir.join("artifacts")).unwrap();
    std::fs::write(dir.join("artifacts/part-00001.pgcopy"), b"PGCOPY").unwrap();
    let running = running["job_id"].as_str().unwrap().to_string();
    assert_eq!(job_folders().len(), 2);

    // Within the retention, gc keeps the failed job's folder.
    let gc = |older: &str| jobs_gc(s.dir.path(), older);
    let kept = gc("7d");
    assert_eq!(
        (
            kept["removed"].as_array().unwrap().len(),
            kept["young"].as_u64(),
            kept["active"].as_u64()
        ),
        (0, Some(1), Some(1)),
        "{kept}"
    );
    // It also reports the unfinished jobs (the stack alarms on the oldest one's age).
    assert_eq!(kept["unfinished"]["jobs"].as_u64(), Some(1), "{kept}");
    assert_eq!(
        kept["unfinished"]["oldest_job"].as_str(),
        Some(running.as_str()),
        "{kept}"
    );
    assert!(
        kept["unfinished"]["oldest_seconds"].as_u64().unwrap() < 600,
        "{kept}"
    );
    // Past it, the failed job's folder goes; the running job's stays.
    let swept = gc("0s");
    assert_eq!(swept["removed"].as_array().unwrap().len(), 1, "{swept}");
    assert!(
        swept["removed"][0].as_str().unwrap().ends_with(&failed[0]),
        "{swept}"
    );
    assert!(swept["bytes"].as_u64().unwrap() > 0, "{swept}");
    assert_eq!(
        job_folders(),
        vec![running],
        "only the running job's folder is left"
    );
    assert!(
        s.path("work/specs").read_dir().unwrap().count() >= 1,
        "the sweep leaves the pinned specs alone"
    );
}

/// `ferry load` and `ferry convert` run as jobs of the local job store, through
/// the same steps as `ferry run`: `ferry jobs` lists them with their steps, the
/// job pins the spec as it ran (flags over the spec), every invocation is a job
/// of its own while the ledger decides what loads, a failure is a failed job
/// with its error, and a one-off job's folder is kept for the retention period
/// (the artifacts are what its user asked for) instead of removed at success.
#[tokio::test(flavor = "multi_thread")]
async fn one_off_loads_and_conversions_are_jobs() {
    let s = Scratch::new("oneoff").await;
    std::fs::write(s.path("orders.csv"), "id,amount\n1,1.5\n2,2.5\n").unwrap();
    let table = s.table("orders");
    let load = [
        "load",
        "orders.csv",
        "--table",
        &table,
        "--mode",
        "replace",
        "--work-dir",
        "work",
    ];
    let o = ferry(&load, s.dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("loaded 2 rows"), "{}", text(&o));
    // Append this time: the ledger has the input, whatever the mode.
    let o = ferry(
        &[
            "load",
            "orders.csv",
            "--table",
            &table,
            "--work-dir",
            "work",
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("skipped"), "{}", text(&o));
    // Text where the table has bigint: PostgreSQL's side refuses it (exit 4).
    std::fs::write(s.path("bad.csv"), "id,amount\n1,1.5\nx,2\n").unwrap();
    let o = ferry(
        &["load", "bad.csv", "--table", &table, "--work-dir", "work"],
        s.dir.path(),
    );
    assert_eq!(code(&o), 4, "{}", text(&o));
    let o = ferry(
        &[
            "convert",
            "orders.csv",
            "--to",
            "parquet",
            "--work-dir",
            "work",
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("validation: valid"), "{}", text(&o));

    let o = ferry(
        &["jobs", "list", "--json", "--work-dir", "work"],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let jobs: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(&str, &str, &str, Option<u64>)> = jobs
        .iter()
        .rev()
        .map(|j| {
            (
                j["origin"].as_str().unwrap_or("-"),
                j["workflow"].as_str().unwrap(),
                j["status"].as_str().unwrap(),
                j["rows"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("load", "loader", "succeeded", Some(2)),
            ("load", "loader", "succeeded", Some(0)),
            ("load", "loader", "failed", None),
            ("convert", "converter", "succeeded", Some(2)),
        ]
    );
    let steps = |j: &serde_json::Value| -> Vec<String> {
        j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap().to_string())
            .collect()
    };
    let (first, skipped, failed, converted) = (&jobs[3], &jobs[2], &jobs[1], &jobs[0]);
    assert_eq!(
        steps(first),
        [
            "create-job",
            "s3-efs-downloader",
            "transform+sql-processor",
            "notify"
        ]
    );
    assert_eq!(
        skipped["steps"][2]["outputs"]["load"].as_str(),
        Some("skipped")
    );
    assert_eq!(
        failed["error"]["step"].as_str(),
        Some("transform+sql-processor")
    );
    assert_eq!(failed["error"]["name"].as_str(), Some("ferry.Target"));
    assert_eq!(
        steps(converted),
        [
            "create-job",
            "s3-efs-downloader",
            "convert",
            "validate",
            "notify"
        ]
    );

    // The pinned spec is the one that ran: sniffed, with the flags' table and mode.
    let pinned = std::path::Path::new(first["dir"].as_str().unwrap()).join("spec");
    let spec = ferry_engine::spec::DatasetSpec::load(&pinned).unwrap();
    let target = spec.target.unwrap();
    assert_eq!(
        (target.table.as_str(), target.mode.to_string()),
        (table.as_str(), "replace".to_string())
    );
    assert_eq!(spec.source.header, Some(true));
    // Its report and artifacts stay in its folder, as the load printed them.
    let dir = std::path::Path::new(first["dir"].as_str().unwrap());
    assert!(dir.join("load.json").is_file() && dir.join("artifacts/load.sql").is_file());

    // Kept for the retention period, then swept like a failed job's.
    let gc = |older: &str| jobs_gc(s.dir.path(), older);
    let kept = gc("7d");
    assert_eq!(kept["young"].as_u64(), Some(4), "{kept}");
    let swept = gc("0s");
    assert_eq!(swept["removed"].as_array().unwrap().len(), 4, "{swept}");
}

/// A file that grew a column loads in every mode and layout: the column is
/// added in the load's own transaction, the rows land where the mode puts
/// them, the load report says so, the `.sql` artifacts replay the same
/// change, and `spec check --database-url` shows the DDL beforehand without
/// running it.
#[tokio::test(flavor = "multi_thread")]
async fn drifted_files_change_the_table_in_their_load_in_every_mode() {
    let s = Scratch::new("drift").await;
    std::fs::write(s.path("v1.csv"), "id,v\n1,a\n2,b\n").unwrap();
    std::fs::write(s.path("v2.csv"), "id,v,w\n2,bb,x\n3,c,y\n").unwrap();
    let load = |table: &str, file: &str, mode: &str, streams: &str| -> serde_json::Value {
        let input = s.path(file);
        let mut args = vec![
            "load",
            "-i",
            input.to_str().unwrap(),
            "-t",
            table,
            "--mode",
            mode,
            "--streams",
            streams,
            "--json",
        ];
        if mode == "upsert" {
            args.extend(["--key", "id"]);
        }
        let o = ferry(&args, s.dir.path());
        assert_eq!(code(&o), 0, "{mode} x{streams} {file}: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let added = serde_json::json!([{"change": "add_column", "column": "w", "type": "text"}]);
    for (mode, streams, want) in [
        ("append", "1", "1:a:-,2:b:-,2:bb:x,3:c:y"),
        ("append", "2", "1:a:-,2:b:-,2:bb:x,3:c:y"),
        ("upsert", "1", "1:a:-,2:bb:x,3:c:y"),
        ("upsert", "2", "1:a:-,2:bb:x,3:c:y"),
        ("replace", "1", "2:bb:x,3:c:y"),
        ("replace", "2", "2:bb:x,3:c:y"),
    ] {
        let table = s.table(&format!("{mode}_{streams}"));
        if mode == "upsert" {
            s.db.batch_execute(&format!(
                "CREATE TABLE {table} (id bigint PRIMARY KEY, v text)"
            ))
            .await
            .unwrap();
        }
        let first = load(&table, "v1.csv", mode, streams);
        assert_eq!(first["schema_changes"], serde_json::json!([]));
        let second = load(&table, "v2.csv", mode, streams);
        assert_eq!(second["schema_changes"], added, "{mode} x{streams}");
        let got: String = s
            .scalar(&format!(
                "SELECT string_agg(concat_ws(':', id, v, coalesce(w, '-')), ',' ORDER BY id, v) FROM {table}"
            ))
            .await;
        assert_eq!(got, want, "{mode} x{streams}");
        let ledger: String = s
            .scalar(&format!(
                "SELECT schema_changes::text FROM ferry.loads WHERE job_id = '{}'",
                second["job_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ledger).unwrap(),
            added
        );
        if (mode, streams) == ("append", "1") {
            // load.sql of the drifted load, replayed into the table as it was
            // before it, makes the same table.
            let job_dir = std::path::PathBuf::from(second["job_dir"].as_str().unwrap());
            let driver = std::fs::read_to_string(job_dir.join("artifacts/load.sql")).unwrap();
            assert!(
                driver.contains(&format!(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS \"w\" text",
                    ferry_connectors::pg::QualifiedName::parse(&table)
                        .unwrap()
                        .quoted()
                )),
                "{driver}"
            );
            s.db.batch_execute(&format!(
                "ALTER TABLE {table} RENAME TO loaded; CREATE TABLE {table} AS SELECT id, v FROM {s}.loaded WHERE w IS NULL; DELETE FROM ferry.loads WHERE job_id = '{}'",
                second["job_id"].as_str().unwrap(),
                s = s.schema
            ))
            .await
            .unwrap();
            let out = common::psql_file(&job_dir.join("artifacts/load.sql"));
            assert!(out.status.success(), "{}", text(&out));
            assert!(s.diff(&s.table("loaded"), &table).await.is_empty());
        }
    }

    // Without a spec, the flags decide: --on-new-columns ignore leaves w out.
    let table = s.table("flagged");
    s.db.batch_execute(&format!("CREATE TABLE {table} (id bigint, v text)"))
        .await
        .unwrap();
    let o = ferry(
        &[
            "load",
            s.path("v2.csv").to_str().unwrap(),
            "-t",
            &table,
            "--on-new-columns",
            "ignore",
            "--json",
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["schema_changes"],
        serde_json::json!([{"change": "ignore_column", "column": "w", "type": "text"}])
    );
    let got: String = s
        .scalar(&format!(
            "SELECT string_agg(t::text, ',' ORDER BY id) FROM {table} t"
        ))
        .await;
    assert_eq!(got, "(2,bb),(3,c)");

    // spec check --database-url: the DDL a load would run, nothing run.
    let table = s.table("checked");
    s.db.batch_execute(&format!("CREATE TABLE {table} (id bigint, v text)"))
        .await
        .unwrap();
    let spec = s.spec(
        "checked",
        &format!(
            "[source]\nformat = \"csv\"\nsample = \"{}\"\n[target]\ntable = \"{table}\"\n",
            s.path("v2.csv").display()
        ),
        "SELECT * FROM source",
    );
    let url = common::database_url();
    let o = ferry(
        &[
            "spec",
            "check",
            spec.to_str().unwrap(),
            "--database-url",
            &url,
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("drifted; a load would run"), "{out}");
    assert!(
        out.contains("ADD COLUMN IF NOT EXISTS \"w\" text;"),
        "{out}"
    );
    assert!(
        !out.contains(&url),
        "the URL (and its password) is printed: {out}"
    );
    let columns: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attnum > 0"
        ))
        .await;
    assert_eq!(columns, 2, "spec check changed the table");
    // Under on_new_columns = "fail" the check fails as the load would.
    let toml = spec.join("dataset.toml");
    let text_before = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text_before}on_new_columns = \"fail\"\n")).unwrap();
    let o = ferry(
        &[
            "spec",
            "check",
            spec.to_str().unwrap(),
            "--database-url",
            &url,
            "--json",
        ],
        s.dir.path(),
    );
    assert_eq!(code(&o), 4, "{}", text(&o));
    assert!(
        text(&o).contains("has no column(s) [\"w\"]"),
        "{}",
        text(&o)
    );
}

/// `delete-insert` and `duplicate_keys` through `ferry load`: a table
/// created by the first load, several streams, a repeated key kept last (with
/// the count in the report, and `load.sql` replaying the same choice), and
/// first/last refused with several streams, whose order is not the input's.
#[tokio::test(flavor = "multi_thread")]
async fn keys_that_repeat_load_as_the_spec_says() {
    let s = Scratch::new("dupkeys").await;
    let table = s.table("di");
    std::fs::write(s.path("a.csv"), "id,v\n1,a\n2,b\n").unwrap();
    std::fs::write(s.path("b.csv"), "id,v\n2,bb\n3,c\n").unwrap();
    std::fs::write(s.path("c.csv"), "id,v\n1,x\n4,z\n1,y\n").unwrap();
    let load = |file: &str, extra: &[&str]| {
        let input = s.path(file);
        let mut args = vec![
            "load",
            input.to_str().unwrap(),
            "-t",
            &table,
            "--mode",
            "delete-insert",
            "--key",
            "id",
            "--json",
        ];
        args.extend_from_slice(extra);
        ferry(&args, s.dir.path())
    };
    let rows = || async {
        s.scalar::<String>(&format!(
            "SELECT string_agg(id || ':' || v, ',' ORDER BY id, v) FROM {table}"
        ))
        .await
    };
    assert_eq!(code(&load("a.csv", &[])), 0);
    let o = load("b.csv", &["--streams", "2"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(rows().await, "1:a,2:bb,3:c");
    // A repeated key: refused by default, naming its rows; first/last need one stream.
    let o = load("c.csv", &[]);
    assert_eq!(code(&o), 4, "{}", text(&o));
    assert!(
        text(&o).contains("key (id) = 1 occurs 2 times, at rows 1, 3"),
        "{}",
        text(&o)
    );
    let o = load("c.csv", &["--duplicate-keys", "last", "--streams", "2"]);
    assert_eq!(code(&o), 4, "{}", text(&o));
    assert!(text(&o).contains("--streams 1"), "{}", text(&o));
    assert_eq!(
        rows().await,
        "1:a,2:bb,3:c",
        "a refused load changed the table"
    );
    let o = load("c.csv", &["--duplicate-keys", "last"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(rows().await, "1:y,2:bb,3:c,4:z");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["duplicate_rows"], 1, "{report}");
    // load.sql makes the same choice from the same rows.
    let job_dir = std::path::PathBuf::from(report["job_dir"].as_str().unwrap());
    s.db.batch_execute(&format!(
        "ALTER TABLE {table} RENAME TO loaded; CREATE TABLE {table} AS SELECT * FROM {}.loaded WHERE id IN (2, 3) UNION ALL SELECT 1, 'a'; DELETE FROM ferry.loads WHERE job_id = '{}'",
        s.schema,
        report["job_id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    let out = common::psql_file(&job_dir.join("artifacts/load.sql"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(s.diff(&s.table("loaded"), &table).await.is_empty());
}

/// `[target] lineage` and `ferry jobs undo`: every row says where it came
/// from; undo removes exactly one job's rows and lets its input load again,
/// and refuses, changing nothing, where it could not be exact.
#[tokio::test(flavor = "multi_thread")]
async fn lineage_names_each_rows_load_and_undo_removes_exactly_one() {
    let s = Scratch::new("undo").await;
    let table = s.table("t");
    let spec = s.spec(
        "lineaged",
        &format!(
            "[source]\nformat = \"csv\"\n[target]\ntable = \"{table}\"\nlineage = [\"loaded_at\", \"source\", \"line\", \"job_id\"]\n"
        ),
        "SELECT * FROM source",
    );
    std::fs::write(s.path("a.csv"), "id,v\n1,a\n2,b\n").unwrap();
    std::fs::write(s.path("b.csv"), "id,v\n3,c\n").unwrap();
    let load = |file: &str, extra: &[&str]| -> serde_json::Value {
        let input = s.path(file);
        let mut args = vec!["load", input.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let o = ferry(&args, s.dir.path());
        assert_eq!(code(&o), 0, "{file}: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let with_spec = ["--dataset", spec.to_str().unwrap()];
    let a = load("a.csv", &with_spec);
    let b = load("b.csv", &with_spec);
    let (a_id, b_id) = (a["job_id"].as_str().unwrap(), b["job_id"].as_str().unwrap());
    let lineage: String = s
        .scalar(&format!(
            "SELECT string_agg(concat_ws('|', id, _ferry_line, _ferry_job_id = '{a_id}', _ferry_source LIKE '%/' || CASE WHEN id < 3 THEN 'a' ELSE 'b' END || '.csv', _ferry_loaded_at IS NOT NULL), ',' ORDER BY id) FROM {table}"
        ))
        .await;
    assert_eq!(lineage, "1|1|t|t|t,2|2|t|t|t,3|1|f|t|t");
    let third: String = s
        .scalar(&format!("SELECT _ferry_job_id FROM {table} WHERE id = 3"))
        .await;
    assert_eq!(third, b_id);
    let undo = |id: &str| ferry(&["jobs", "undo", id, "--json"], s.dir.path());
    let o = undo(a_id);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let undone: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(undone["rows"], 2, "{undone}");
    let ids = || async {
        s.scalar::<String>(&format!(
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM {table}"
        ))
        .await
    };
    assert_eq!(ids().await, "3");
    let ledger: bool = s
        .scalar(&format!(
            "SELECT undone_at IS NOT NULL FROM ferry.loads WHERE job_id = '{a_id}'"
        ))
        .await;
    assert!(ledger);
    let shown = ferry(&["jobs", "show", a_id, "--json"], s.dir.path());
    let job: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(job["status"], "undone", "{job}");
    let step = job["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (step["step"].clone(), step["rows"].clone()),
        ("undo".into(), 2.into())
    );
    // Twice is refused; the input loads again (the ledger let it go).
    let o = undo(a_id);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("it is undone"), "{}", text(&o));
    let again = load("a.csv", &with_spec);
    assert_eq!(again["status"], "loaded", "{again}");
    assert_eq!(ids().await, "1,2,3");

    // Refused, changing nothing: a table without the lineage column...
    let plain = s.table("plain");
    let p = load("a.csv", &["-t", &plain]);
    let o = undo(p["job_id"].as_str().unwrap());
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("has no _ferry_job_id column"),
        "{}",
        text(&o)
    );
    // ...an upsert that updated rows, and a job whose rows another changed.
    let keyed = s.table("keyed");
    s.db.batch_execute(&format!(
        "CREATE TABLE {keyed} (id bigint PRIMARY KEY, v text)"
    ))
    .await
    .unwrap();
    let upsert_spec = s.spec(
        "keyed",
        &format!(
            "[source]\nformat = \"csv\"\n[target]\ntable = \"{keyed}\"\nmode = \"upsert\"\nkeys = [\"id\"]\nlineage = [\"job_id\"]\n"
        ),
        "SELECT * FROM source",
    );
    std::fs::write(s.path("b2.csv"), "id,v\n2,bb\n").unwrap();
    let first = load("a.csv", &["--dataset", upsert_spec.to_str().unwrap()]);
    let second = load("b2.csv", &["--dataset", upsert_spec.to_str().unwrap()]);
    let o = undo(second["job_id"].as_str().unwrap());
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("updated 1 existing row"), "{}", text(&o));
    let o = undo(first["job_id"].as_str().unwrap());
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("1 still carry"), "{}", text(&o));
    let kept: String = s
        .scalar(&format!(
            "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM {keyed}"
        ))
        .await;
    assert_eq!(kept, "1:a,2:bb");
}
