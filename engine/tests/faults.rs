//! Fault injection with figures: PostgreSQL backends terminated and the
//! `ferry` process SIGKILLed at each named point of real loads (COPY, the
//! publish, the ledger entry, just after `COMMIT`: `ferry_connectors::fault`),
//! and working storage that fills up. Each test states the promise it
//! checks, counts the trials per point, asserts what each point must leave,
//! and prints one `FAULTS …` line per point (the README's test command keeps
//! them small; `scripts/fault-runs` runs more trials on more rows with the
//! release binary and commits its log beside RELIABILITY.md's figures).
//!
//! The targets of `append` and `replace` have no key, so a row loaded twice
//! stays twice and is counted; `upsert` needs its key.
//!
//! Knobs: `FERRY_FAULT_ROUNDS` (default 1: each point × mode × stream count
//! once), `FERRY_FAULT_ROWS` (default 100 000), `FERRY_BIN` (default: this
//! build's `ferry`).

use crate::common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Scratch, database_url, text};
use ferry_connectors::fault;

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
        .env_remove("FERRY_FAULT_POINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Trials over `points` (every point × mode × stream count, times
/// `FERRY_FAULT_ROUNDS`) and rows per trial (`FERRY_FAULT_ROWS`).
fn sizes(points: &[&str]) -> (u64, u64) {
    (
        knob("FERRY_FAULT_ROUNDS", 1) * points.len() as u64 * 6,
        knob("FERRY_FAULT_ROWS", 100_000),
    )
}

/// Trial `n`'s fault point, mode and stream count: the points vary
/// fastest, so each run of `6 × points` trials covers every combination.
fn combination<'a>(n: u64, points: &[&'a str]) -> (&'a str, &'static str, &'static str) {
    let (n, p) = (n as usize, points.len());
    (
        points[n % p],
        ["append", "replace", "upsert"][n / p % 3],
        ["1", "2"][n / (3 * p) % 2],
    )
}

/// The points of a whole job (`ferry run`): the load's, and the end of each
/// step before the job store records it.
const JOB_POINTS: [&str; 8] = [
    "after s3-efs-downloader",
    fault::COPY,
    fault::PUBLISH,
    fault::LEDGER,
    fault::COMMITTED,
    "after transform+sql-processor",
    "after efs-s3-uploader",
    fault::FINISHED,
];

/// Whether the load has committed when ferry reaches `point`.
fn committed_at(point: &str) -> bool {
    matches!(
        point,
        fault::COMMITTED
            | fault::COMMIT_PREPARED
            | "after transform+sql-processor"
            | "after efs-s3-uploader"
            | fault::FINISHED
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

/// The target's columns; only `upsert` gets a key (it needs one), so that
/// elsewhere a row loaded twice is counted, not refused.
fn ddl(mode: &str) -> &'static str {
    if mode == "upsert" {
        "(id bigint PRIMARY KEY, qty bigint, price numeric(12,2), day date, note text)"
    } else {
        "(id bigint, qty bigint, price numeric(12,2), day date, note text)"
    }
}

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
async fn prepare_target(s: &Scratch, table: &str, mode: &str) {
    s.db.batch_execute(&format!(
        "CREATE TABLE {table} {}; INSERT INTO {table} VALUES (-1, 1, 1, '2026-01-01', 'before'), (-2, 2, 2, '2026-01-02', 'before'), (-3, 3, 3, '2026-01-03', 'before')",
        ddl(mode)
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

/// Locks on `table` held by prepared transactions (whose locks show no
/// process): none may be left. Per table, because the tests beside this
/// one prepare their own.
async fn prepared_transactions(s: &Scratch, table: &str) -> i64 {
    s.scalar(&format!(
        "SELECT count(*) FROM pg_locks WHERE pid IS NULL AND locktype = 'relation' AND relation = to_regclass('{table}')"
    ))
    .await
}

/// Terminates every backend of the ferry process started with
/// `PGAPPNAME=app` (ferry appends the job to the name).
async fn terminate_backends(s: &Scratch, app: &str) {
    s.db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 || ' %'",
        &[&app],
    )
    .await
    .unwrap();
}

fn wait(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

/// A `ferry` process armed to pause at one fault point.
struct Armed {
    child: Child,
    reached: mpsc::Receiver<()>,
    stderr: std::thread::JoinHandle<String>,
}

impl Armed {
    fn spawn(mut cmd: Command, point: &str) -> Armed {
        cmd.env("FERRY_FAULT_POINT", point)
            .env("FERRY_FAULT_PAUSE_MS", "1000")
            .stdout(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, reached) = mpsc::channel();
        let marker = format!("ferry: fault point {point} reached");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if line == marker {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Armed {
            child,
            reached,
            stderr,
        }
    }

    /// Whether ferry reported the point (false: it ended first).
    fn reached(&self) -> bool {
        tokio::task::block_in_place(|| self.reached.recv_timeout(Duration::from_secs(300)).is_ok())
    }

    fn finish(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        (status, self.stderr.join().unwrap())
    }
}

/// The figures of one fault point.
#[derive(Default, Debug)]
struct Figures {
    trials: u64,
    /// ferry reported the point (the fault landed there).
    reached: u64,
    /// The fault failed the job (exit 5, or killed).
    interrupted: u64,
    /// The rows were committed when the fault struck.
    committed_before_fault: u64,
    /// A target with some but not all rows of the input, or without the
    /// rows it had before (other than by `replace`).
    partial: u64,
    /// Rows of the input missing after the rerun.
    lost_rows: i64,
    /// Rows loaded twice after the rerun (the targets have no key, so a
    /// second copy stays), plus ledger entries other than one.
    duplicated_rows: i64,
    /// Reruns that did not succeed.
    failed_reruns: u64,
    /// Locks on the target that prepared transactions still hold after the
    /// trial.
    prepared_left: i64,
    /// Jobs (`ferry run`) whose success event was not sent exactly once.
    events_wrong: u64,
    /// Unexpected exit codes, as (trial, code).
    odd_exits: Vec<(u64, i32)>,
}

fn report(name: &str, point: &str, rows: u64, f: &Figures) {
    println!(
        "FAULTS {name}/{point}: trials={} reached={} interrupted={} committed_before_fault={} partial={} lost_rows={} duplicated_rows={} failed_reruns={} prepared_left={} events_wrong={} rows_per_trial={rows}",
        f.trials,
        f.reached,
        f.interrupted,
        f.committed_before_fault,
        f.partial,
        f.lost_rows,
        f.duplicated_rows,
        f.failed_reruns,
        f.prepared_left,
        f.events_wrong
    );
}

/// What every point must show: reached in every trial, nothing partial,
/// lost or doubled; before `COMMIT` every trial failed with the target as
/// it was, after it every trial's rows were there.
fn assert_point(name: &str, point: &str, f: &Figures) {
    let what = format!("{name}/{point}: {f:?}");
    assert!(f.trials > 0, "{what}");
    assert_eq!(f.reached, f.trials, "the fault did not land: {what}");
    assert!(
        f.partial == 0
            && f.lost_rows == 0
            && f.duplicated_rows == 0
            && f.failed_reruns == 0
            && f.prepared_left == 0
            && f.events_wrong == 0
            && f.odd_exits.is_empty(),
        "{what}"
    );
    if committed_at(point) {
        assert_eq!(f.committed_before_fault, f.trials, "{what}");
    } else {
        assert_eq!(f.interrupted, f.trials, "{what}");
        assert_eq!(f.committed_before_fault, 0, "{what}");
    }
}

/// Checks one trial's target after the rerun into `f`.
async fn settle(s: &Scratch, table: &str, mode: &str, rows: u64, f: &mut Figures) {
    let (before, loaded, distinct) = state(s, table).await;
    if before != if mode == "replace" { 0 } else { 3 } {
        f.partial += 1;
    }
    f.lost_rows += rows as i64 - distinct;
    f.duplicated_rows += loaded - distinct;
    if ledger_entries(s, table).await != 1 {
        f.duplicated_rows += 1;
    }
    f.prepared_left += prepared_transactions(s, table).await;
}

/// Prepared transactions ferry left in this database, as (decided to
/// commit, in all). A two-phase load's stream transactions are named
/// `ferry:<control xid>:…` and belong to that transaction's fate: the ones
/// whose control transaction committed hold rows that are loaded, only not
/// visible until the next ferry load commits them.
async fn ferry_prepared(s: &Scratch, table: &str) -> (i64, i64) {
    // A prepared transaction's locks keep the virtual transaction id it
    // had: its table lock and its transaction-id lock share it.
    let row = s
        .db
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_xact_status(split_part(p.gid, ':', 2)::xid8) = 'committed'), count(*)
               FROM pg_prepared_xacts p
              WHERE p.gid ~ '^ferry:[0-9]+:[0-9]+:'
                AND EXISTS (SELECT 1 FROM pg_locks r JOIN pg_locks x
                              ON x.virtualtransaction = r.virtualtransaction AND x.locktype = 'transactionid' AND x.pid IS NULL
                             WHERE r.pid IS NULL AND r.locktype = 'relation' AND r.relation = to_regclass($1)
                               AND x.transactionid = p.transaction)",
            &[&table],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Counts what the fault left, right after it: committed (visible, or in
/// stream transactions whose commit is decided), or untouched.
async fn after_fault(s: &Scratch, table: &str, rows: u64, f: &mut Figures) {
    let (before, loaded, _) = state(s, table).await;
    let (decided, _) = ferry_prepared(s, table).await;
    if loaded == rows as i64 || (decided > 0 && before == 3) {
        f.committed_before_fault += 1;
    } else if loaded != 0 || before != 3 {
        f.partial += 1;
    }
}

/// PostgreSQL backends terminated at each point of a load (mid-COPY, after
/// the publish, after the ledger entry, after `COMMIT`): before the commit
/// the load fails retryably with the target as it was, after it the rows
/// are there; either way a rerun leaves every row exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn backends_terminated_at_each_point_leave_no_partial_load() {
    let s = Scratch::new("pgkill").await;
    let (trials, rows) = sizes(&fault::POINTS);
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
    let mut figures: Vec<Figures> = fault::POINTS.iter().map(|_| Figures::default()).collect();
    for trial in 0..trials {
        let (point, mode, streams) = combination(trial, &fault::POINTS);
        let f = &mut figures[trial as usize % fault::POINTS.len()];
        let table = s.table(&format!("t{trial}"));
        prepare_target(&s, &table, mode).await;
        let app = format!("ferry-fault-{}-{trial}", std::process::id());
        let armed = Armed::spawn(load(&table, mode, streams, &app), point);
        f.trials += 1;
        if armed.reached() {
            f.reached += 1;
            terminate_backends(&s, &app).await;
        }
        let (status, err) = armed.finish();
        let code = status.code().unwrap_or(-1);
        match code {
            0 => {}
            5 => f.interrupted += 1,
            other => {
                eprintln!("trial {trial} ({point}, {mode}, {streams}): {err}");
                f.odd_exits.push((trial, other))
            }
        }
        after_fault(&s, &table, rows, f).await;
        if code != 0 {
            let o = wait(load(&table, mode, streams, "rerun").spawn().unwrap());
            if !o.status.success() {
                f.failed_reruns += 1;
                eprintln!("trial {trial} rerun: {}", text(&o));
            }
        }
        settle(&s, &table, mode, rows, f).await;
    }
    for (point, f) in fault::POINTS.iter().zip(&figures) {
        report("postgres-backend-terminated", point, rows, f);
    }
    for (point, f) in fault::POINTS.iter().zip(&figures) {
        assert_point("postgres-backend-terminated", point, f);
    }
}

/// The ferry process SIGKILLed at each point of a job (`ferry run` with a
/// SQLite job store): the load's points, and the end of each step before
/// the job store records it. After the killed worker's lease ran out, a
/// rerun of the same input finishes the job — or, killed after `COMMIT`,
/// finds the load in the ledger — with every row loaded exactly once and
/// one succeeded job.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_is_taken_over_and_every_row_loads_once() {
    let s = Scratch::new("sigkill").await;
    let (trials, rows) = sizes(&JOB_POINTS);
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
    let run = |dir: &Path, streams: &str| {
        let mut c = ferry_cmd(&common::RUN_IN_A, dir);
        c.args(["-q", "--streams", streams]);
        c.env("FERRY_JOB_LEASE", "1s");
        c
    };
    let mut figures: Vec<Figures> = JOB_POINTS.iter().map(|_| Figures::default()).collect();
    for trial in 0..trials {
        let (point, mode, streams) = combination(trial, &JOB_POINTS);
        let f = &mut figures[trial as usize % JOB_POINTS.len()];
        let dir = setup(trial, mode);
        let table = s.table(&format!("t{trial}"));
        prepare_target(&s, &table, mode).await;
        let mut armed = Armed::spawn(run(&dir, streams), point);
        f.trials += 1;
        if armed.reached() {
            f.reached += 1;
            armed.child.kill().unwrap(); // SIGKILL
            f.interrupted += 1;
        }
        let (status, err) = armed.finish();
        if !status.success() && status.code().is_some() {
            eprintln!("trial {trial} ({point}, {mode}, {streams}): {err}");
            f.odd_exits.push((trial, status.code().unwrap_or(-1)));
        }
        after_fault(&s, &table, rows, f).await;
        tokio::time::sleep(lease + Duration::from_millis(200)).await;
        let o = wait(run(&dir, streams).spawn().unwrap());
        if !o.status.success() {
            f.failed_reruns += 1;
            eprintln!("trial {trial} rerun: {}", text(&o));
        }
        settle(&s, &table, mode, rows, f).await;
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
        // One success event: never lost (a job killed after recording its
        // success sends it on the next delivery), here never doubled.
        let events = std::fs::read_to_string(dir.join("work/events.jsonl")).unwrap_or_default();
        let sent = events
            .lines()
            .filter(|l| l.contains("\"succeeded\""))
            .count();
        if sent != 1 {
            f.events_wrong += 1;
            eprintln!("trial {trial} ({point}): {sent} success events: {events}");
        }
    }
    for (point, f) in JOB_POINTS.iter().zip(&figures) {
        report("ferry-sigkill", point, rows, f);
    }
    for (point, f) in JOB_POINTS.iter().zip(&figures) {
        // A killed process cannot report its exit: every trial counts as
        // interrupted, and after COMMIT the rows must be there as well.
        assert_point("ferry-sigkill", point, f);
    }
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

/// Parallel `append` by two-phase commit (2 streams into an existing table
/// without a key), struck at each of its points — mid-COPY, after the
/// publish, after the ledger entry, with every stream prepared, after the
/// control `COMMIT`, between the streams' `COMMIT PREPARED`s — by
/// terminating its PostgreSQL backends and by SIGKILLing ferry. Before the
/// control commit the load fails and nothing is loaded; after it every row
/// is loaded (visible, or prepared with its commit decided). A SIGKILL
/// between `PREPARE` and the last `COMMIT PREPARED` leaves prepared
/// transactions; the rerun (or any other ferry load in the database, such
/// as a test running beside this one, so their count right after the kill
/// is reported, not asserted) decides them by the control transaction's
/// fate, and then every row is there exactly once with no prepared
/// transaction left holding locks.
#[tokio::test(flavor = "multi_thread")]
async fn two_phase_append_struck_between_prepare_and_commit_loads_once() {
    let s = Scratch::new("twophase").await;
    let points = fault::TWO_PHASE_POINTS;
    let rounds = knob("FERRY_FAULT_ROUNDS", 1);
    let rows = knob("FERRY_FAULT_ROWS", 100_000);
    write_input(&s.path("in.csv"), rows);
    let load = |table: &str, app: &str| {
        let mut c = ferry_cmd(
            &[
                "load",
                "-q",
                "-i",
                "in.csv",
                "-t",
                table,
                "--mode",
                "append",
                "--streams",
                "2",
                "--artifacts",
                "none",
            ],
            s.dir.path(),
        );
        c.env("PGAPPNAME", app);
        c
    };
    for kind in ["postgres-backend-terminated", "ferry-sigkill"] {
        let mut figures: Vec<Figures> = points.iter().map(|_| Figures::default()).collect();
        // Trials that left prepared transactions behind them.
        let mut left_prepared = vec![0u64; points.len()];
        for trial in 0..rounds * points.len() as u64 {
            let k = trial as usize % points.len();
            let (point, f) = (points[k], &mut figures[k]);
            let table = s.table(&format!("{}{trial}", &kind[..5]));
            prepare_target(&s, &table, "append").await;
            let app = format!("ferry-2pc-{}-{trial}", std::process::id());
            let mut armed = Armed::spawn(load(&table, &app), point);
            f.trials += 1;
            if armed.reached() {
                f.reached += 1;
                if kind == "ferry-sigkill" {
                    armed.child.kill().unwrap();
                } else {
                    terminate_backends(&s, &app).await;
                }
            }
            let (status, err) = armed.finish();
            match status.code() {
                Some(0) => {}
                Some(5) | None => f.interrupted += 1,
                Some(other) => {
                    eprintln!("trial {trial} ({kind}, {point}): {err}");
                    f.odd_exits.push((trial, other));
                }
            }
            if ferry_prepared(&s, &table).await.1 > 0 {
                left_prepared[k] += 1;
            }
            after_fault(&s, &table, rows, f).await;
            if !status.success() {
                let o = wait(load(&table, "rerun").spawn().unwrap());
                if !o.status.success() {
                    f.failed_reruns += 1;
                    eprintln!("trial {trial} rerun: {}", text(&o));
                }
            }
            settle(&s, &table, "append", rows, f).await;
        }
        for ((point, f), left) in points.iter().zip(&figures).zip(&left_prepared) {
            report(kind, point, rows, f);
            println!("FAULTS {kind}/{point}: left_prepared_after_fault={left}");
        }
        for (point, f) in points.iter().zip(&figures) {
            assert_point(kind, point, f);
        }
    }
}
