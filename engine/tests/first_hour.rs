//! What a new user meets in the first hour: pipes, logs, default names,
//! `spec check` on a sample, error advice in ferry's terms, the local
//! PostgreSQL script and the README's links. Each test failed before the fix
//! it guards.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::{Scratch, ferry, repo, text};

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Runs ferry with stdout a pipe whose reader is gone before ferry writes.
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(repo())
        .env("FERRY_LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_closed_pipe_ends_ferry_quietly() {
    for args in [
        &["spec", "check", "sql/lineitem"][..],
        &["tasks"][..],
        &["spec", "check", "sql/lineitem", "--json"][..],
    ] {
        let (code, stderr) = with_closed_stdout(args);
        assert_eq!(code, 0, "ferry {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "ferry {args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_have_one_target_key_and_text_logs_no_colour() {
    let s = Scratch::new("logs").await;
    std::fs::write(s.path("a.csv"), "id\n1\n").unwrap();
    let table = s.table("a");
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "-v", "load", "--input", "a.csv", "--table", &table, "--force",
            ])
            .current_dir(s.dir.path())
            .env("DATABASE_URL", common::database_url())
            .env("FERRY_LOG_FORMAT", format)
            .env_remove("FERRY_WORK_DIR")
            .output()
            .unwrap()
    };
    let o = run("json");
    assert_eq!(code(&o), 0, "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let started = stderr
        .lines()
        .find(|l| l.contains("load started"))
        .unwrap_or_else(|| panic!("no 'load started' line in {stderr}"));
    assert_eq!(started.matches("\"target\":").count(), 1, "{started}");
    let v: serde_json::Value = serde_json::from_str(started).unwrap();
    assert_eq!(v["table"], table.as_str(), "{started}");
    let o = run("text");
    assert_eq!(code(&o), 0, "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("load started"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a log file: {stderr:?}"
    );
}

#[test]
fn convert_back_never_names_the_original_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let original = "id,v\n1,a\n2,b\n";
    std::fs::write(dir.path().join("x.csv"), original).unwrap();
    let run = |args: &[&str]| ferry(args, dir.path());
    let o = run(&["convert", "x.csv", "--to", "parquet"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(dir.path().join("x.parquet").is_file());
    let o = run(&["convert", "x.parquet", "--to", "csv"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("x.from-parquet.csv"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("x.csv")).unwrap(),
        original
    );
    // The validate step finds what the convert step wrote.
    let o = run(&["convert", "x.parquet", "--to", "csv", "--step", "validate"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("validation: valid"), "{}", text(&o));
    // ferry's own earlier output keeps its name and needs --force.
    let o = run(&["convert", "x.csv", "--to", "parquet"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("x.parquet exists"), "{}", text(&o));
}

/// A spec folder whose sample is `sample`, with one declared column.
fn sample_spec(dir: &std::path::Path, declared: &str, sample: &[u8], sql: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("dataset.toml"),
        format!(
            "[source]\nformat = \"csv\"\nsample = \"sample.csv\"\n{declared}[target]\ntable = \"t\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("transform.sql"), sql).unwrap();
    std::fs::write(dir.join("sample.csv"), sample).unwrap();
}

#[test]
fn spec_check_reads_the_sample_as_a_load_would() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("ds");
    let check = || ferry(&["spec", "check", spec.to_str().unwrap()], tmp.path());
    let amount = "[[source.columns]]\nname = \"amount\"\ntype = \"numeric(12,2)\"\n";
    sample_spec(
        &spec,
        amount,
        b"id,amount\n1,\"1,234.56\"\n",
        "SELECT * FROM source",
    );
    let o = check();
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(
        text(&o).contains("sample.csv:2: column 2 (\"amount\"): not a number: \"1,234.56\""),
        "{}",
        text(&o)
    );
    sample_spec(
        &spec,
        "",
        b"id,note\n1,ok\n2,caf\xe9\n",
        "SELECT * FROM source",
    );
    let o = check();
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(
        text(&o).contains("sample.csv:3: invalid UTF-8"),
        "{}",
        text(&o)
    );
    // A value too large for a [target.types] override fails too.
    std::fs::write(
        spec.join("dataset.toml"),
        "[source]\nformat = \"csv\"\nsample = \"sample.csv\"\n[target]\ntable = \"t\"\n[target.types]\nid = \"smallint\"\n",
    )
    .unwrap();
    std::fs::write(spec.join("sample.csv"), "id\n1\n70000\n").unwrap();
    let o = check();
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("transformed row 2"), "{}", text(&o));
    sample_spec(
        &spec,
        amount,
        b"id,amount\n1,12.50\n2,3\n",
        "SELECT * FROM source",
    );
    let o = check();
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("its sample's 2 rows decode, transform and fit"),
        "{}",
        text(&o)
    );
}

#[test]
fn datafusion_advice_is_given_in_ferry_terms() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("ds");
    sample_spec(
        &spec,
        "",
        b"id,customerId\n1,2\n",
        "SELECT customerId FROM source",
    );
    let o = ferry(&["spec", "check", spec.to_str().unwrap()], tmp.path());
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    assert!(!t.contains("datafusion.sql_parser"), "{t}");
    assert!(
        t.contains("write source.\"customerId\" with its double quotes in transform.sql"),
        "{t}"
    );
}

#[test]
fn spec_init_shows_the_snake_case_names() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("people.csv"),
        "Customer ID,orderDate\n1,2024-01-02\n",
    )
    .unwrap();
    let o = ferry(
        &[
            "spec",
            "init",
            "people.csv",
            "--name",
            "people",
            "--dir",
            "sql",
        ],
        tmp.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let toml = std::fs::read_to_string(tmp.path().join("sql/people/dataset.toml")).unwrap();
    assert!(
        toml.contains("\"Customer ID\" -> customer_id, \"orderDate\" -> order_date"),
        "{toml}"
    );
}

#[test]
fn pg_script_stop_keeps_the_data_and_destroy_deletes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let pg = |args: &[&str]| {
        Command::new(repo().join("scripts/pg.sh"))
            .args(args)
            .env("FERRY_PG_PORT", "54391")
            .env("FERRY_PG_DIR", &dir)
            .output()
            .unwrap()
    };
    let url = "postgres://postgres@127.0.0.1:54391/postgres?sslmode=disable";
    let psql = |sql: &str| {
        Command::new("psql")
            .args([
                url,
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap()
    };
    let o = pg(&["start"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = psql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)");
    assert!(o.status.success(), "{}", text(&o));
    let o = pg(&["stop"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.join("PG_VERSION").is_file(), "stop deleted the cluster");
    let o = pg(&["start"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = psql("SELECT x FROM kept");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "42",
        "{}",
        text(&o)
    );
    let o = pg(&["destroy"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!dir.exists(), "destroy left the cluster");
    assert!(text(&o).contains("deleted"), "{}", text(&o));
}

#[test]
fn the_readme_and_docs_link_only_to_files_in_the_repository() {
    let root = repo();
    let mut broken = Vec::new();
    for doc in [
        "README.md",
        "RELIABILITY.md",
        "sql/README.md",
        "docs/DESIGN.md",
        "benchmarks/README.md",
        "cdk/README.md",
    ] {
        let path = root.join(doc);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{doc}: {e}"));
        // Markdown links and link definitions: ](target) and `[x]: target`.
        let mut targets = Vec::new();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].to_string());
            }
        }
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix('[')
                && let Some((_, target)) = rest.split_once("]: ")
            {
                targets.push(target.trim().to_string());
            }
        }
        // Backquoted relative paths in square brackets: [`../x`].
        for (i, _) in text.match_indices("[`") {
            let rest = &text[i + 2..];
            if let Some(end) = rest.find('`') {
                let t = &rest[..end];
                if t.starts_with("../") || t.starts_with("./") {
                    targets.push(t.to_string());
                }
            }
        }
        for t in targets {
            let t = t.split('#').next().unwrap_or("").trim();
            if t.is_empty() || t.contains("://") || t.starts_with("mailto:") {
                continue;
            }
            let resolved = path.parent().unwrap().join(t);
            let inside = std::path::absolute(&resolved)
                .map(|p| {
                    let mut clean = std::path::PathBuf::new();
                    for c in p.components() {
                        match c {
                            std::path::Component::ParentDir => {
                                clean.pop();
                            }
                            other => clean.push(other),
                        }
                    }
                    clean.starts_with(&root) && clean.exists()
                })
                .unwrap_or(false);
            if !inside {
                broken.push(format!("{doc}: {t}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links that leave the repository or lead nowhere: {broken:#?}"
    );
}

#[test]
fn converting_a_drifting_ndjson_file_fails_instead_of_validating_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 1..=12_000u32 {
        let amount = if i > 11_000 {
            "1.5".to_string()
        } else {
            i.to_string()
        };
        lines.push_str(&format!("{{\"id\":{i},\"amount\":{amount}}}\n"));
    }
    std::fs::write(dir.path().join("ev.ndjson"), lines).unwrap();
    let o = ferry(&["convert", "ev.ndjson", "--to", "parquet"], dir.path());
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(!text(&o).contains("validation: valid"), "{}", text(&o));
    assert!(
        text(&o).contains("ev.ndjson:11001: column 1 (\"amount\"): not an integer: \"1.5\""),
        "{}",
        text(&o)
    );
    assert!(
        !dir.path().join("ev.parquet").exists(),
        "a failed conversion left its output"
    );
}
