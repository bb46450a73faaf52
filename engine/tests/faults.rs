//! Fault injection with figures: PostgreSQL backends terminated and the
//! `ferry` process SIGKILLed at random points of real loads, and working
//! storage that fills up. Each test states the promise it checks, counts the
//! trials, and prints one `FAULTS …` line with its figures (the README's test
//! command keeps them small; `scripts/fault-runs` runs more trials on more
//! rows with the release binary and keeps the lines in RELIABILITY.md's
//! results).
//!
//! Knobs: `FERRY_FAULT_TRIALS` (default 20), `FERRY_FAULT_ROWS` (default
//! 100 000), `FERRY_FAULT_SEED` (default: the clock; printed), `FERRY_BIN`
//! (default: this build's `ferry`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, database_url, text};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ferry_bin() -> PathBuf {
    std::env::var_os("FERRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ferry")))
}

fn ferry_cmd(args: &[&str], cwd: &Path) -> Command {
    let mut c = Command::new(ferry_bin());
    c.args(args)
        .current_dir(cwd)
        .env("DATABASE_URL", database_url())
        .env("FERRY_LOG_FORMAT", "text")
        .env_remove("FERRY_WORK_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// xorshift64*: reproducible delays from a printed seed.
struct Rng(u64);

impl Rng {
    fn new() -> (Rng, u64) {
        let seed = knob(
            "FERRY_FAULT_SEED",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
        )
        .max(1);
        (Rng(seed), seed)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Trials and rows per trial (`FERRY_FAULT_TRIALS`, `FERRY_FAULT_ROWS`).
fn sizes() -> (u64, u64) {
    (
        knob("FERRY_FAULT_TRIALS", 20),
        knob("FERRY_FAULT_ROWS", 100_000),
    )
}

/// `rows` CSV rows with ids 1..=rows and four more columns of several types.
fn write_input(path: &Path, rows: u64) {
    let mut out = String::with_capacity(rows as usize * 60);
    out.push_str("id,qty,price,day,note\n");
    for i in 1..=rows {
        out.push_str(&format!(
            "{i},{},{}.{:02},2026-{:02}-{:02},note {i} with some text\n",
            i % 50,
            i * 3,
            i % 100,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    std::fs::write(path, out).unwrap();
}

const DDL: &str = "(id bigint PRIMARY KEY, qty bigint, price numeric(12,2), day date, note text)";

/// What a target holds: rows that were there before (negative ids), loaded
/// rows, and distinct loaded ids.
async fn state(s: &Scratch, table: &str) -> (i64, i64, i64) {
    let row =
        s.db.query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE id < 0), count(*) FILTER (WHERE id > 0),
                        count(DISTINCT id) FILTER (WHERE id > 0) FROM {table}"
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Creates `table` with three rows of its own (negative ids), which a
/// failed load must leave and only `replace` may remove.
async fn prepare_target(s: &Scratch, table: &str) {
    s.db.batch_execute(&format!(
        "CREATE TABLE {table} {DDL}; INSERT INTO {table} VALUES (-1, 1, 1, '2026-01-01', 'before'), (-2, 2, 2, '2026-01-02', 'before'), (-3, 3, 3, '2026-01-03', 'before')"
    ))
    .await
    .unwrap();
}

async fn ledger_entries(s: &Scratch, table: &str) -> i64 {
    s.scalar(&format!(
        "SELECT count(*) FROM ferry.loads WHERE target = '{table}'"
    ))
    .await
}

fn wait(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

/// The figures of one fault run.
#[derive(Default, Debug)]
struct Figures {
    trials: u64,
    /// The fault hit a running job (the process failed or was killed).
    interrupted: u64,
    /// Interrupted after the commit: the rows were there, the rerun skipped.
    committed_before_fault: u64,
    /// A target with some but not all rows of the input.
    partial: u64,
    /// Rows of the input missing after the rerun.
    lost_rows: i64,
    /// Rows loaded twice after the rerun.
    duplicated_rows: i64,
    /// Reruns that did not succeed.
    failed_reruns: u64,
    /// Unexpected exit codes, as (trial, code).
    odd_exits: Vec<(u64, i32)>,
}

fn report(name: &str, seed: u64, rows: u64, f: &Figures) {
    println!(
        "FAULTS {name}: trials={} interrupted={} committed_before_fault={} partial={} lost_rows={} duplicated_rows={} failed_reruns={} rows_per_trial={rows} seed={seed}",
        f.trials,
        f.interrupted,
        f.committed_before_fault,
        f.partial,
        f.lost_rows,
        f.duplicated_rows,
        f.failed_reruns
    );
}

fn assert_clean(name: &str, f: &Figures) {
    assert!(
        f.partial == 0
            && f.lost_rows == 0
            && f.duplicated_rows == 0
            && f.failed_reruns == 0
            && f.odd_exits.is_empty(),
        "{name}: {f:?}"
    );
    assert!(
        f.interrupted * 4 >= f.trials,
        "{name}: only {} of {} trials were interrupted: the faults came too early or too late to prove anything ({f:?})",
        f.interrupted,
        f.trials
    );
}

/// PostgreSQL backends terminated at a random point of a load (COPY,
/// publish, commit): the target is as it was or has every row, and a rerun
/// loads every row exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn backends_terminated_at_random_points_leave_no_partial_load() {
    let s = Scratch::new("pgkill").await;
    let (trials, rows) = sizes();
    let (mut rng, seed) = Rng::new();
    write_input(&s.path("in.csv"), rows);
    let load = |table: &str, mode: &str, streams: &str, app: &str| {
        let mut args = vec![
            "load",
            "-q",
            "-i",
            "in.csv",
            "-t",
            table,
            "--mode",
            mode,
            "--streams",
            streams,
            "--artifacts",
            "none",
        ];
        if mode == "upsert" {
            args.extend(["--key", "id"]);
        }
        let mut c = ferry_cmd(&args, s.dir.path());
        c.env("PGAPPNAME", app);
        c
    };
    let started = Instant::now();
    let o = wait(
        load(&s.table("calibration"), "append", "1", "calibration")
            .spawn()
            .unwrap(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let full = started.elapsed();

    let mut f = Figures::default();
    for trial in 0..trials {
        let mode = ["append", "replace", "upsert"][trial as usize % 3];
        let streams = ["1", "2"][trial as usize / 3 % 2];
        let table = s.table(&format!("t{trial}"));
        prepare_target(&s, &table).await;
        let app = format!("ferry-fault-{}-{trial}", std::process::id());
        let child = load(&table, mode, streams, &app).spawn().unwrap();
        tokio::time::sleep(full.mul_f64(1.2 * rng.unit())).await;
        s.db.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 || ' %'",
            &[&app],
        )
        .await
        .unwrap();
        let o = wait(child);
        f.trials += 1;
        let code = o.status.code().unwrap_or(-1);
        let (before, loaded, _) = state(&s, &table).await;
        let kept = if mode == "replace" { 0 } else { 3 };
        match code {
            0 => {}
            5 => {
                f.interrupted += 1;
                if loaded == rows as i64 {
                    f.committed_before_fault += 1;
                } else if loaded != 0 || before != 3 {
                    f.partial += 1;
                }
            }
            other => f.odd_exits.push((trial, other)),
        }
        if code != 0 {
            let o = wait(load(&table, mode, streams, "rerun").spawn().unwrap());
            if !o.status.success() {
                f.failed_reruns += 1;
                eprintln!("trial {trial} rerun: {}", text(&o));
            }
        }
        let (before, loaded, distinct) = state(&s, &table).await;
        if before != kept {
            f.partial += 1;
        }
        f.lost_rows += rows as i64 - distinct;
        f.duplicated_rows += loaded - distinct;
        if ledger_entries(&s, &table).await != 1 {
            f.duplicated_rows += 1;
        }
    }
    report("postgres-backend-terminated", seed, rows, &f);
    assert_clean("postgres-backend-terminated", &f);
}

/// The ferry process SIGKILLed at a random point of a job (`ferry run`:
/// create-job, staging, transform, COPY, publish, upload, notify): a rerun
/// of the same input — after the killed worker's lease ran out — finishes
/// the job with every row loaded exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_is_taken_over_and_every_row_loads_once() {
    let s = Scratch::new("sigkill").await;
    let (trials, rows) = sizes();
    let (mut rng, seed) = Rng::new();
    write_input(&s.path("input.csv"), rows);
    let lease = Duration::from_secs(1);
    let setup = |trial: u64, mode: &str| -> PathBuf {
        let dir = s.path(&format!("t{trial}"));
        std::fs::create_dir_all(dir.join("in")).unwrap();
        std::fs::hard_link(s.path("input.csv"), dir.join("in/a.csv")).unwrap();
        let keys = if mode == "upsert" {
            "keys = [\"id\"]\n"
        } else {
            ""
        };
        let spec = dir.join("specs/orders");
        std::fs::create_dir_all(&spec).unwrap();
        std::fs::write(
            spec.join("dataset.toml"),
            format!(
                "[source]\nformat = \"csv\"\nheader = true\n[routing]\nkeys = [\"in/*.csv\"]\nworkflow = \"loader\"\n[target]\ntable = \"{}\"\nmode = \"{mode}\"\n{keys}",
                s.table(&format!("t{trial}"))
            ),
        )
        .unwrap();
        std::fs::write(spec.join("transform.sql"), "SELECT * FROM source").unwrap();
        dir
    };
    let run = |dir: &Path| {
        let mut c = ferry_cmd(&common::RUN_IN_A, dir);
        c.arg("-q");
        c.env("FERRY_JOB_LEASE", "1s");
        c
    };
    let calibration = setup(trials, "append");
    let started = Instant::now();
    let o = wait(run(&calibration).spawn().unwrap());
    assert!(o.status.success(), "{}", text(&o));
    let full = started.elapsed();

    let mut f = Figures::default();
    for trial in 0..trials {
        let mode = ["append", "replace", "upsert"][trial as usize % 3];
        let dir = setup(trial, mode);
        let table = s.table(&format!("t{trial}"));
        prepare_target(&s, &table).await;
        let mut child = run(&dir).spawn().unwrap();
        tokio::time::sleep(full.mul_f64(1.2 * rng.unit())).await;
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap(); // SIGKILL
        }
        let o = wait(child);
        f.trials += 1;
        if killed {
            f.interrupted += 1;
            let (before, loaded, _) = state(&s, &table).await;
            if loaded == rows as i64 {
                f.committed_before_fault += 1;
            } else if loaded != 0 || before != 3 {
                f.partial += 1;
            }
            tokio::time::sleep(lease + Duration::from_millis(200)).await;
        } else if !o.status.success() {
            f.odd_exits.push((trial, o.status.code().unwrap_or(-1)));
        }
        let o = wait(run(&dir).spawn().unwrap());
        if !o.status.success() {
            f.failed_reruns += 1;
            eprintln!("trial {trial} rerun: {}", text(&o));
        }
        let (before, loaded, distinct) = state(&s, &table).await;
        if before != if mode == "replace" { 0 } else { 3 } {
            f.partial += 1;
        }
        f.lost_rows += rows as i64 - distinct;
        f.duplicated_rows += loaded - distinct;
        if ledger_entries(&s, &table).await != 1 {
            f.duplicated_rows += 1;
        }
        let jobs = wait(
            ferry_cmd(&["jobs", "list", "--work-dir", "work"], &dir)
                .spawn()
                .unwrap(),
        );
        let succeeded = text(&jobs)
            .lines()
            .filter(|l| l.contains("succeeded"))
            .count();
        if succeeded != 1 {
            f.failed_reruns += 1;
            eprintln!("trial {trial}: jobs {}", text(&jobs));
        }
    }
    report("ferry-sigkill", seed, rows, &f);
    assert_clean("ferry-sigkill", &f);
}

/// Working storage that fills up (a 1 MiB tmpfs, mounted in a private mount
/// namespace with `unshare`): the load fails with the disk's own error and
/// the path, as a retryable fault, and nothing is loaded.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_working_storage_fails_clearly_and_loads_nothing() {
    let s = Scratch::new("diskfull").await;
    write_input(&s.path("in.csv"), 50_000); // ~3 MB: the artifacts cannot fit
    let work = s.path("work");
    std::fs::create_dir_all(&work).unwrap();
    let table = s.table("full");
    let bin = ferry_bin();
    let o = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@""#)
        .arg(&work)
        .arg(&bin)
        .args(["load", "-q", "-i", "in.csv", "-t", &table, "--work-dir"])
        .arg(&work)
        .current_dir(s.dir.path())
        .env("DATABASE_URL", database_url())
        .env("FERRY_LOG_FORMAT", "text")
        .output()
        .unwrap_or_else(|e| panic!("this test needs unshare (util-linux): {e}"));
    let out = text(&o);
    assert!(
        !out.contains("mount:") && !out.contains("unshare:"),
        "this test needs unshare with user namespaces to mount a small tmpfs: {out}"
    );
    assert_eq!(o.status.code(), Some(5), "{out}");
    assert!(out.contains("No space left on device"), "{out}");
    assert!(
        out.contains(&work.display().to_string()),
        "names the path: {out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    let exists: bool = s
        .scalar(&format!("SELECT to_regclass('{table}') IS NOT NULL"))
        .await;
    assert!(
        !exists,
        "a load that could not write its artifacts created the target"
    );
    assert_eq!(ledger_entries(&s, &table).await, 0);
    println!("FAULTS working-storage-full: trials=1 failed_clearly=1 rows_loaded=0");
}
