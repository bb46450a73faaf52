//! One input in parts (`[source] split_size`), against real PostgreSQL: the
//! parts of a split file load exactly what the whole file loads (same rows,
//! same receipt digest, artifacts equal modulo part names), as one job with
//! one ledger entry; a part that died is run again without duplicates;
//! nothing reaches the table before every part is done.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Scratch, ferry, text};
use serde_json::Value;

/// ~150 KB of orders whose notes hold quoted line feeds, commas, doubled
/// quotes and NULLs, so a cut in the wrong place would show.
fn orders_csv() -> String {
    let mut csv = String::from("id,amount,note\n");
    for i in 0..4000u32 {
        let note = match i % 7 {
            0 => format!("\"line one\nline two, {i}\""),
            1 => format!("\"said \"\"hi\"\" {i}\""),
            2 => String::new(),
            3 => format!("plain {i}"),
            4 => format!("\"\r\nstarts with a break {i}\""),
            _ => format!("note number {i} with some padding to make the file longer"),
        };
        csv.push_str(&format!("{i},{}.{:02},{note}\n", i * 3, i % 100));
    }
    csv
}

/// A specs folder `dir` with one Loader dataset into `table`.
fn specs(s: &Scratch, dir: &str, table: &str, split: Option<&str>) -> PathBuf {
    let specs = s.path(dir);
    std::fs::create_dir_all(&specs).unwrap();
    let split = split.map_or(String::new(), |size| format!("split_size = \"{size}\""));
    // The orders dataset of the workflow tests, routed from `in/`.
    let toml = crate::workflow::ORDERS_SPEC
        .replace("orders/*.csv", "in/*.csv")
        .replace("SCHEMA.orders", &s.table(table))
        .replace("header = true\n", &format!("header = true\n{split}\n"));
    s.spec(&format!("{dir}/orders"), &toml, "SELECT * FROM source");
    specs
}

fn run(s: &Scratch, specs: &Path, work: &str) -> Value {
    run_input(s, specs, work, "in/orders.csv")
}

fn run_input(s: &Scratch, specs: &Path, work: &str, input: &str) -> Value {
    let out = run_raw(s, specs, work, input, &["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// `ferry run --input <input>` with `specs` and the job folders in `work`, as it ended.
fn run_raw(
    s: &Scratch,
    specs: &Path,
    work: &str,
    input: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "run",
        "--input",
        input,
        "--specs",
        specs.to_str().unwrap(),
        "--work-dir",
        work,
    ];
    args.extend_from_slice(extra);
    ferry(&args, s.dir.path())
}

/// `ferry task <args>` with the specs in `specs` and the job folders in
/// `work/`; its output line.
fn task(s: &Scratch, specs: &Path, args: &[&str]) -> Value {
    let out = task_out(s, specs, "work", args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// `ferry task <args>` with the job folders in `work`, as it ended.
fn task_out(s: &Scratch, specs: &Path, work: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["task"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--specs", specs.to_str().unwrap(), "--work-dir", work]);
    ferry(&all, s.dir.path())
}

/// Every `file.zip` under `dir`, opened.
fn zips(dir: &Path) -> Vec<zip::ZipArchive<std::fs::File>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "file.zip") {
                found.push(zip::ZipArchive::new(std::fs::File::open(&p).unwrap()).unwrap());
            }
        }
    }
    found
}

/// Entry names of every `file.zip` under `dir`.
fn zip_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = zips(dir)
        .iter()
        .flat_map(|z| z.file_names().map(str::to_string).collect::<Vec<_>>())
        .collect();
    names.sort();
    names
}

/// The rows of every `.sql` artifact under `dir` (in its `file.zip`s) whose
/// name starts with `artifacts/<stem>`, as COPY text lines, sorted: what
/// the artifacts hold, whatever files they were cut into.
fn sql_rows(dir: &Path, stem: &str) -> Vec<String> {
    use std::io::Read;
    let mut rows = Vec::new();
    for mut zip in zips(dir) {
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).unwrap();
            let name = entry.name().to_string();
            if !name.starts_with(&format!("artifacts/{stem}")) || !name.ends_with(".sql") {
                continue;
            }
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            let mut copying = false;
            for line in text.lines() {
                match (copying, line) {
                    (false, l) if l.starts_with("COPY ") => copying = true,
                    (true, "\\.") => copying = false,
                    (true, l) => rows.push(l.to_string()),
                    _ => {}
                }
            }
        }
    }
    rows.sort();
    rows
}

/// Whether the scratch schema has `table` (a failed split job must not
/// have created it).
async fn table_exists(s: &Scratch, table: &str) -> bool {
    s.scalar(&format!(
        "SELECT to_regclass('{}') IS NOT NULL",
        s.table(table)
    ))
    .await
}

async fn ledger(s: &Scratch, table: &str) -> Vec<(i64, Option<String>)> {
    s.db.query(
        "SELECT rows, receipt->>'digest' FROM ferry.loads WHERE target = $1 ORDER BY loaded_at",
        &[&s.table(table)],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test]
async fn a_split_file_loads_what_the_whole_file_loads_as_one_job() {
    let s = Scratch::new("split_run").await;
    std::fs::create_dir_all(s.path("in")).unwrap();
    std::fs::write(s.path("in/orders.csv"), orders_csv()).unwrap();
    let whole = specs(&s, "whole", "whole", None);
    let parted = specs(&s, "parted", "parted", Some("32KiB"));

    let w = run(&s, &whole, "work-whole");
    let p = run(&s, &parted, "work-parted");
    assert_eq!(w["status"], "succeeded", "{w}");
    assert_eq!(p["status"], "succeeded", "{p}");

    // Same rows, value for value.
    let diff = s.diff(&s.table("whole"), &s.table("parted")).await;
    assert!(diff.is_empty(), "{diff:?}");
    let rows: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("parted")))
        .await;
    assert_eq!(rows, 4000);

    // One ledger entry each, with the same receipt digest.
    let (lw, lp) = (ledger(&s, "whole").await, ledger(&s, "parted").await);
    assert_eq!(lw.len(), 1);
    assert_eq!(lp, lw, "one entry, same rows, same digest");
    assert!(lp[0].1.is_some(), "the default load proves every value");

    // The artifacts: the same files modulo part names, and one driver.
    let names = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|n| n.ends_with(".sql") || n.ends_with(".pgcopy"))
            .collect()
    };
    // (both runs archive into the output folder beside their work dirs)
    let all = names(zip_entries(&s.path("output")));
    assert!(
        all.iter().any(|n| n.ends_with("whole-00001.sql")),
        "{all:?}"
    );
    let part_count = all
        .iter()
        .filter(|n| n.contains("parted.part") && n.ends_with("-00001.pgcopy"))
        .count();
    assert!(part_count >= 4, "a 150 KB file in 32 KiB parts: {all:?}");
    assert_eq!(
        all.iter().filter(|n| n.ends_with("load.sql")).count(),
        2,
        "one driver per job: {all:?}"
    );
    // And they hold the same rows, value for value, cut differently.
    let (w_rows, p_rows) = (
        sql_rows(&s.path("output"), "whole"),
        sql_rows(&s.path("output"), "parted"),
    );
    assert_eq!(w_rows.len(), 4000);
    assert!(w_rows == p_rows, "the .sql artifacts hold the same rows");

    // The same file again: the ledger has it, nothing loads twice.
    let again = run(&s, &parted, "work-parted");
    assert_eq!(again["status"], "succeeded", "{again}");
    let rows: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("parted")))
        .await;
    assert_eq!(rows, 4000);
    assert_eq!(ledger(&s, "parted").await.len(), 1);
}

/// The Loader's tasks one by one, as the state machine runs them: a part
/// that died (its files half written, no `transform.json`) stops
/// sql-processor before any row; run again, with another part run twice
/// (a Map item retried after it had finished), the load is the file's,
/// once; the `load.sql` driver of all parts replays to the same rows.
#[tokio::test]
async fn a_part_that_died_is_run_again_without_duplicates() {
    let s = Scratch::new("split_tasks").await;
    std::fs::create_dir_all(s.path("in")).unwrap();
    std::fs::write(s.path("in/orders.csv"), orders_csv()).unwrap();
    let whole = specs(&s, "whole", "whole", None);
    run(&s, &whole, "work-whole");
    let parted = specs(&s, "parted", "parted", Some("32KiB"));
    let task = |args: &[&str]| task(&s, &parted, args);
    let job = task(&["create-job", "--input", "in/orders.csv"]);
    let id = job["job_id"].as_str().unwrap().to_string();
    task(&["s3-efs-downloader", "--job-id", &id]);
    let t = task(&["transform", "--job-id", &id, "--defer-parts"]);
    let parts: Vec<u64> = t["outputs"]["parts"]
        .as_array()
        .unwrap_or_else(|| panic!("transform did not split: {t}"))
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(parts.len() >= 4, "{t}");
    let mut rows = 0;
    for k in &parts {
        let out = task(&["transform", "--job-id", &id, "--part", &k.to_string()]);
        assert_eq!(out["part"].as_u64(), Some(*k));
        rows += out["rows"].as_u64().unwrap();
    }
    assert_eq!(rows, 4000, "the parts hold every record once");

    // Part 1 dies: its files half written, its transform.json not yet.
    let dir = s.path("work").join(job["dir"].as_str().unwrap());
    let artifacts = dir.join("artifacts");
    for e in std::fs::read_dir(&artifacts).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains(".part0001-") {
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        }
    }
    std::fs::remove_file(dir.join("parts/0001/transform.json")).unwrap();
    let out = ferry(
        &[
            "task",
            "sql-processor",
            "--job-id",
            &id,
            "--specs",
            parted.to_str().unwrap(),
            "--work-dir",
            "work",
        ],
        s.dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("part 1 of"), "{}", text(&out));
    assert!(
        !table_exists(&s, "parted").await,
        "nothing reached PostgreSQL"
    );

    // Retried: part 1 again, and part 2 a second time.
    task(&["transform", "--job-id", &id, "--part", "1"]);
    task(&["transform", "--job-id", &id, "--part", "2"]);
    let loaded = task(&["sql-processor", "--job-id", &id]);
    assert_eq!(loaded["rows"].as_u64(), Some(4000), "{loaded}");
    let diff = s.diff(&s.table("whole"), &s.table("parted")).await;
    assert!(diff.is_empty(), "{diff:?}");
    assert_eq!(ledger(&s, "parted").await, ledger(&s, "whole").await);

    // Re-delivered: sql-processor again loads nothing.
    let again = task(&["sql-processor", "--job-id", &id]);
    assert_eq!(again["outputs"]["load"], "skipped", "{again}");

    // The driver of all parts, replayed by psql into an emptied table.
    s.db.batch_execute(&format!(
        "TRUNCATE {}; DELETE FROM ferry.loads WHERE target = '{}'",
        s.table("parted"),
        s.table("parted")
    ))
    .await
    .unwrap();
    let out = common::psql_file(&artifacts.join("load.sql"));
    assert!(out.status.success(), "{}", text(&out));
    let diff = s.diff(&s.table("whole"), &s.table("parted")).await;
    assert!(diff.is_empty(), "{diff:?}");
    let entries: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM ferry.loads WHERE target = '{}'",
            s.table("parted")
        ))
        .await;
    assert_eq!(entries, 1);
}

/// Without `--defer-parts` (no Distributed Map to run them), the transform
/// task runs the parts itself, each a child process, and sql-processor
/// loads them as one load.
#[tokio::test]
async fn a_transform_task_runs_the_parts_itself_unless_told_to_defer() {
    let s = Scratch::new("split_self").await;
    std::fs::create_dir_all(s.path("in")).unwrap();
    std::fs::write(s.path("in/orders.csv"), orders_csv()).unwrap();
    let parted = specs(&s, "parted", "parted", Some("32KiB"));
    let task = |args: &[&str]| task(&s, &parted, args);
    let job = task(&["create-job", "--input", "in/orders.csv"]);
    let id = job["job_id"].as_str().unwrap().to_string();
    task(&["s3-efs-downloader", "--job-id", &id]);
    let t = task(&["transform", "--job-id", &id]);
    assert!(t["outputs"].get("parts").is_none(), "{t}");
    assert_eq!(t["rows"].as_u64(), Some(4000), "{t}");
    let dir = s.path("work").join(job["dir"].as_str().unwrap());
    assert!(dir.join("split.json").is_file());
    let loaded = task(&["sql-processor", "--job-id", &id]);
    assert_eq!(loaded["rows"].as_u64(), Some(4000), "{loaded}");
    let rows: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("parted")))
        .await;
    assert_eq!(rows, 4000);
    assert_eq!(ledger(&s, "parted").await.len(), 1);
}

/// A bad value deep in the file fails its part with the file's own line
/// number (counted across the parts before it), the job fails as a bad
/// input (exit 3), and nothing is loaded.
#[tokio::test]
async fn a_bad_value_in_a_part_names_the_files_line_and_loads_nothing() {
    let s = Scratch::new("split_bad").await;
    std::fs::create_dir_all(s.path("in")).unwrap();
    let csv = orders_csv();
    let at = csv.find("\n3500,").unwrap() + 1;
    let line = csv[..at].matches('\n').count() + 1;
    let bad = format!(
        "{}3500,lots,{}",
        &csv[..at],
        &csv[at + "3500,10500.00,".len()..]
    );
    std::fs::write(s.path("in/orders.csv"), bad).unwrap();
    let parted = specs(&s, "parted", "parted", Some("32KiB"));
    let out = run_raw(&s, &parted, "work", "in/orders.csv", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("orders.csv:{line}: column 2")) && text(&out).contains("lots"),
        "line {line}: {}",
        text(&out)
    );
    assert!(
        !table_exists(&s, "parted").await,
        "nothing reached PostgreSQL"
    );

    // Under an error policy that allows them, bad rows in two parts are set
    // aside into the job's one reject file (archived), and the rest loads.
    let csv = std::fs::read_to_string(s.path("in/orders.csv")).unwrap();
    let at = csv.find("\n100,").unwrap() + 1;
    let early = csv[..at].matches('\n').count() + 1;
    let worse = format!(
        "{}100,many,{}",
        &csv[..at],
        &csv[at + "100,300.00,".len()..]
    );
    std::fs::write(s.path("in/orders.csv"), worse).unwrap();
    let tolerant = specs(&s, "tolerant", "tolerant", Some("32KiB"));
    let toml = tolerant.join("orders/dataset.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[errors]\nmax_bad_rows = 10\n")).unwrap();
    let r = run_input(&s, &tolerant, "work-tolerant", "in/orders.csv");
    assert_eq!(r["status"], "succeeded", "{r}");
    let rows: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("tolerant")))
        .await;
    assert_eq!(rows, 3998);
    let mut rejects = Vec::new();
    for mut zip in zips(&s.path("output")) {
        if let Ok(mut f) = zip.by_name("rejects.jsonl") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut f, &mut text).unwrap();
            rejects.extend(text.lines().map(str::to_string));
        }
    }
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert!(
        rejects[0].contains(&format!("\"line\":{early}"))
            && rejects[1].contains(&format!("\"line\":{line}")),
        "in the file's order, with its lines: {rejects:?}"
    );
}

/// The orders as Parquet, 500 rows to a row group (8 row groups); the
/// amount is text, so its declared `numeric(10,2)` is a checked cast, and
/// `bad_row` (0-based), if any, holds one that does not fit.
fn orders_parquet(bad_row: Option<usize>) -> Vec<u8> {
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let ids: Vec<i64> = (0..4000).collect();
    let amounts: Vec<String> = (0..4000usize)
        .map(|i| match bad_row {
            Some(b) if b == i => "lots".to_string(),
            _ => format!("{}.{:02}", i * 3, i % 100),
        })
        .collect();
    let notes: Vec<Option<String>> = (0..4000)
        .map(|i| match i % 5 {
            0 => None,
            1 => Some(format!("line one\nline two, {i}")),
            _ => Some(format!("note number {i} with some padding")),
        })
        .collect();
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from(ids)) as arrow::array::ArrayRef,
        ),
        ("amount", Arc::new(StringArray::from(amounts)) as _),
        ("note", Arc::new(StringArray::from(notes)) as _),
    ])
    .unwrap();
    let props = datafusion::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(500))
        .build();
    let mut out = Vec::new();
    let mut w =
        datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// A specs folder `dir` with the orders as a Parquet Loader dataset into
/// `table`, its types declared (`typed`: read by the checked-cast path) or
/// the file's own (read in parallel, each part's row groups shared out).
fn parquet_specs(s: &Scratch, dir: &str, table: &str, split: Option<&str>, typed: bool) -> PathBuf {
    let specs = s.path(dir);
    std::fs::create_dir_all(&specs).unwrap();
    let split = split.map_or(String::new(), |size| format!("split_size = \"{size}\"\n"));
    let mut toml = crate::workflow::ORDERS_SPEC
        .replace("orders/*.csv", "in/*.parquet")
        .replace("SCHEMA.orders", &s.table(table))
        .replace(
            "format = \"csv\"\nheader = true\n",
            &format!("format = \"parquet\"\n{split}"),
        );
    if !typed {
        let start = toml.find("[[source.columns]]").unwrap();
        let end = toml.find("[routing]").unwrap();
        toml.replace_range(start..end, "");
    }
    s.spec(&format!("{dir}/orders"), &toml, "SELECT * FROM source");
    specs
}

/// A Parquet input splits by row groups: each part reads its own row groups
/// (typed as DataFusion types the whole file), and the job loads what the
/// whole file loads: same rows, one ledger entry with the same digest;
/// a value that does not fit its declared type names the file's row, not
/// the part's, and nothing is loaded.
#[tokio::test]
async fn a_split_parquet_file_loads_by_row_groups_what_the_whole_file_loads() {
    let s = Scratch::new("split_parquet").await;
    std::fs::create_dir_all(s.path("in")).unwrap();
    std::fs::write(s.path("in/orders.parquet"), orders_parquet(None)).unwrap();
    for typed in [true, false] {
        // Typed: a row group a part (each row group is a few KiB); the
        // file's own types: two row groups a part, read by more than
        // one thread where there are cores.
        let (whole, parted, split, want) = if typed {
            ("whole", "parted", "1KiB", 8..=8)
        } else {
            ("whole_raw", "parted_raw", "40KiB", 2..=4)
        };
        let w_specs = parquet_specs(&s, &format!("{whole}-specs"), whole, None, typed);
        let p_specs = parquet_specs(&s, &format!("{parted}-specs"), parted, Some(split), typed);
        let w = run_input(&s, &w_specs, &format!("work-{whole}"), "in/orders.parquet");
        let p = run_input(&s, &p_specs, &format!("work-{parted}"), "in/orders.parquet");
        assert_eq!(w["status"], "succeeded", "{w}");
        assert_eq!(p["status"], "succeeded", "{p}");
        let diff = s.diff(&s.table(whole), &s.table(parted)).await;
        assert!(diff.is_empty(), "typed {typed}: {diff:?}");
        let rows: i64 = s
            .scalar(&format!("SELECT count(*) FROM {}", s.table(parted)))
            .await;
        assert_eq!(rows, 4000, "typed {typed}");
        let (lw, lp) = (ledger(&s, whole).await, ledger(&s, parted).await);
        assert_eq!(lw.len(), 1);
        assert_eq!(lp, lw, "typed {typed}: one entry, same rows, same digest");
        let parts = zip_entries(&s.path("output"))
            .into_iter()
            .filter(|n| n.contains(&format!("{parted}.part")) && n.ends_with(".pgcopy"))
            .count();
        assert!(want.contains(&parts), "typed {typed}: {parts} parts");
    }

    // Row 3701 of the file is in the eighth row group.
    std::fs::write(s.path("in/bad.parquet"), orders_parquet(Some(3700))).unwrap();
    let specs = parquet_specs(&s, "bad-specs", "bad", Some("1KiB"), true);
    let out = run_raw(&s, &specs, "work-bad", "in/bad.parquet", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("bad.parquet: row 3701: column 2 (\"amount\")")
            && text(&out).contains("lots"),
        "{}",
        text(&out)
    );
    assert!(!table_exists(&s, "bad").await, "nothing reached PostgreSQL");
}

/// A Converter dataset (CSV → Parquet) in specs folder `dir`.
fn converter_specs(s: &Scratch, dir: &str, split: Option<&str>) -> PathBuf {
    let specs = s.path(dir);
    std::fs::create_dir_all(&specs).unwrap();
    let split = split.map_or(String::new(), |size| format!("split_size = \"{size}\"\n"));
    let toml = format!(
        "[source]\nformat = \"csv\"\nheader = true\n{split}[routing]\nkeys = [\"in/*.csv\"]\nworkflow = \"converter\"\n[convert]\nto = \"parquet\"\n"
    );
    s.spec(&format!("{dir}/orders"), &toml, "SELECT * FROM source");
    specs
}

/// The rows two Parquet outputs (a file, or a folder of part files) do not
/// share, counted both ways, and the rows of the second.
async fn parquet_difference(a: &Path, b: &Path) -> (i64, i64, i64) {
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    let ctx = SessionContext::new();
    for (name, path) in [("a", a), ("b", b)] {
        ctx.register_parquet(name, path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
    }
    let count = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .value(0)
        }
    };
    (
        count("SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM b)").await,
        count("SELECT count(*) FROM (SELECT * FROM b EXCEPT ALL SELECT * FROM a)").await,
        count("SELECT count(*) FROM b").await,
    )
}

/// The Converter splits too: each part writes one file of a Parquet
/// dataset folder (`orders.parquet/part-KKKK.parquet`), and validate reads
/// every part back against its own digest and gives one verdict. The
/// dataset holds the whole file's rows; a part that died stops validate
/// (naming it) until it is run again; a part file swapped for another is
/// found; `ferry run` runs the parts itself and archives the dataset.
#[tokio::test]
async fn a_split_conversion_writes_a_parquet_dataset_validated_as_one() {
    let s = Scratch::new("split_convert").await;
    std::fs::create_dir_all(s.path("in")).unwrap();
    std::fs::write(s.path("in/orders.csv"), orders_csv()).unwrap();

    // The whole file, task by task (its job folder stays).
    let whole = converter_specs(&s, "whole", None);
    let w = |args: &[&str]| {
        let out = task_out(&s, &whole, "work-whole", args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let wjob = w(&["create-job", "--input", "in/orders.csv"]);
    let wid = wjob["job_id"].as_str().unwrap().to_string();
    w(&["s3-efs-downloader", "--job-id", &wid]);
    w(&["convert", "--job-id", &wid]);
    w(&["validate", "--job-id", &wid]);
    let whole_file = s
        .path("work-whole")
        .join(wjob["dir"].as_str().unwrap())
        .join("output/orders.parquet");
    assert!(whole_file.is_file());

    // In parts, as the state machine runs them.
    let parted = converter_specs(&s, "parted", Some("32KiB"));
    let task = |args: &[&str]| task(&s, &parted, args);
    let job = task(&["create-job", "--input", "in/orders.csv"]);
    let id = job["job_id"].as_str().unwrap().to_string();
    task(&["s3-efs-downloader", "--job-id", &id]);
    let c = task(&["convert", "--job-id", &id, "--defer-parts"]);
    let parts: Vec<String> = c["outputs"]["parts"]
        .as_array()
        .unwrap_or_else(|| panic!("convert did not split: {c}"))
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(parts.len() >= 4, "{c}");
    for k in &parts {
        task(&["convert", "--job-id", &id, "--part", k]);
    }
    let dir = s.path("work").join(job["dir"].as_str().unwrap());
    let folder = dir.join("output/orders.parquet");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let want: Vec<String> = (0..parts.len())
        .map(|k| format!("part-{k:04}.parquet"))
        .collect();
    assert_eq!(files, want, "the dataset folder holds only its part files");
    assert_eq!(
        parquet_difference(&whole_file, &folder).await,
        (0, 0, 4000),
        "the dataset holds the file's rows, each once"
    );

    // Part 1 dies: its file half written, its convert.json not yet.
    let part1 = folder.join("part-0001.parquet");
    let bytes = std::fs::read(&part1).unwrap();
    std::fs::write(&part1, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(dir.join("parts/0001/convert.json")).unwrap();
    let out = task_out(&s, &parted, "work", &["validate", "--job-id", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("part 1 of"), "{}", text(&out));

    // Run again: one verdict for the dataset, reports beside it.
    task(&["convert", "--job-id", &id, "--part", "1"]);
    let v = task(&["validate", "--job-id", &id]);
    assert_eq!(v["outputs"]["validation"], "valid", "{v}");
    assert_eq!(v["rows"].as_u64(), Some(4000), "{v}");
    let report: Value = serde_json::from_slice(
        &std::fs::read(dir.join("output/orders.parquet.validation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["verdict"], "valid", "{report}");
    let merged: Value = serde_json::from_slice(
        &std::fs::read(dir.join("output/orders.parquet.convert.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(merged["rows"].as_u64(), Some(4000), "{merged}");

    // A part file swapped for another is not the dataset that was written.
    std::fs::copy(folder.join("part-0002.parquet"), &part1).unwrap();
    let out = task_out(&s, &parted, "work", &["validate", "--job-id", &id]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("part-0001.parquet"), "{}", text(&out));

    // ferry run: the parts as child processes, the dataset archived.
    let r = run(&s, &parted, "work-run");
    assert_eq!(r["status"], "succeeded", "{r}");
    let entries = zip_entries(&s.path("output"));
    for k in 0..parts.len() {
        let name = format!("output/orders.parquet/part-{k:04}.parquet");
        assert!(
            entries.iter().any(|e| e.ends_with(&name)),
            "{name}: {entries:?}"
        );
    }
    assert!(
        entries
            .iter()
            .any(|e| e.ends_with("orders.parquet.validation.json")),
        "{entries:?}"
    );

    // Under an error policy, a short record deep in the file is set aside
    // into the dataset's one reject file beside the folder, archived.
    let csv = orders_csv();
    // (record 3503's note is plain text: its line is the whole record)
    let at = csv.find("\n3503,").unwrap() + 1;
    let end = at + csv[at..].find('\n').unwrap();
    let short = format!("{}3503{}", &csv[..at], &csv[end..]);
    std::fs::write(s.path("in/orders.csv"), short).unwrap();
    let tolerant = converter_specs(&s, "tolerant", Some("32KiB"));
    let toml = tolerant.join("orders/dataset.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}[errors]\nmax_bad_rows = 5\n")).unwrap();
    std::fs::remove_dir_all(s.path("output")).unwrap();
    let r = run(&s, &tolerant, "work-tolerant");
    assert_eq!(r["status"], "succeeded", "{r}");
    let mut rejects = Vec::new();
    for mut zip in zips(&s.path("output")) {
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
        for name in names
            .iter()
            .filter(|n| n.ends_with("orders.parquet.rejects.jsonl"))
        {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
            rejects.extend(text.lines().map(str::to_string));
        }
    }
    assert_eq!(rejects.len(), 1, "{rejects:?}");
}

/// A Parquet input to the Converter splits by row groups as the Loader's
/// does: each part converts its own row groups into one file of the
/// dataset, which holds the file's rows, each once, and is validated as
/// one against the parts' digests.
#[tokio::test]
async fn a_split_parquet_input_converts_by_row_groups() {
    let s = Scratch::new("split_pq_convert").await;
    std::fs::create_dir_all(s.path("in")).unwrap();
    std::fs::write(s.path("in/orders.parquet"), orders_parquet(None)).unwrap();
    let specs = |dir: &str, split: &str| {
        let specs = s.path(dir);
        std::fs::create_dir_all(&specs).unwrap();
        let toml = format!(
            "[source]\nformat = \"parquet\"\n{split}[routing]\nkeys = [\"in/*.parquet\"]\nworkflow = \"converter\"\n[convert]\nto = \"parquet\"\n"
        );
        s.spec(&format!("{dir}/orders"), &toml, "SELECT * FROM source");
        specs
    };
    // Each job task by task, as the state machine runs it; the parts'
    // list is what the Map would get.
    let job = |specs: &Path, work: &str| -> (PathBuf, usize) {
        let out = |args: &[&str]| {
            let o = task_out(&s, specs, work, args);
            assert!(o.status.success(), "{args:?}: {}", text(&o));
            serde_json::from_slice::<Value>(&o.stdout).unwrap()
        };
        let job = out(&["create-job", "--input", "in/orders.parquet"]);
        let id = job["job_id"].as_str().unwrap().to_string();
        out(&["s3-efs-downloader", "--job-id", &id]);
        let c = out(&["convert", "--job-id", &id, "--defer-parts"]);
        let parts: Vec<String> = c["outputs"]["parts"]
            .as_array()
            .map(|p| p.iter().map(Value::to_string).collect())
            .unwrap_or_default();
        for k in &parts {
            out(&["convert", "--job-id", &id, "--part", k]);
        }
        let v = out(&["validate", "--job-id", &id]);
        assert_eq!(v["outputs"]["validation"], "valid", "{v}");
        assert_eq!(v["rows"].as_u64(), Some(4000), "{v}");
        let output = s
            .path(work)
            .join(job["dir"].as_str().unwrap())
            .join("output/orders.parquet");
        (output, parts.len())
    };
    let (whole, none) = job(&specs("whole", ""), "work-whole");
    assert_eq!(none, 0, "no split_size, no parts");
    assert!(whole.is_file());
    // 500 rows, a few KiB, a row group: one row group a part.
    let (folder, parts) = job(&specs("parted", "split_size = \"1KiB\"\n"), "work-parted");
    assert_eq!(parts, 8, "one part per row group");
    assert!(folder.join("part-0007.parquet").is_file());
    assert_eq!(
        parquet_difference(&whole, &folder).await,
        (0, 0, 4000),
        "the dataset holds the file's rows, each once"
    );
}
