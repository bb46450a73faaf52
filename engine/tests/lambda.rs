//! The Lambda fast path, `ferry lambda`, served by a real Lambda runtime API
//! emulator (`cargo lambda watch --only-lambda-apis`, from PyPI; scripts/aws.sh
//! installs it beside moto), against real PostgreSQL and the AWS emulator:
//! one invocation runs a small object's whole job; concurrent invocations for
//! one object load it once; an invocation killed at its timeout leaves a job
//! the ECS steps take over at once and finish with the same artifacts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, Scratch};
use crate::workflow::{Aws, aws, ferry_cmd, orders_spec, text, unique, unzip};

/// `cargo-lambda`, as scripts/test installs it (into the emulator's virtualenv).
fn cargo_lambda() -> String {
    std::env::var("FERRY_TEST_CARGO_LAMBDA").unwrap_or_else(|_| {
        panic!("these tests need cargo-lambda's runtime API emulator: run scripts/test (scripts/aws.sh installs it), or set FERRY_TEST_CARGO_LAMBDA")
    })
}

/// A child process killed when dropped, with everything it started (a test
/// that fails leaves nothing).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // `cargo lambda watch` starts `cargo run --bin ferry` children of its
        // own, each in a process group of its own; killing only the watcher
        // orphaned them, and they went on building DataFusion in debug and
        // holding the build lock after the tests had ended (CI's quickstart
        // waited on it). So the whole tree goes: stopped first, so that
        // nothing in it forks while it is collected, then killed.
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let mut tree = vec![pid];
            let mut stopped = 0;
            while stopped < tree.len() {
                for &p in &tree[stopped..] {
                    // SAFETY: kill(2) takes plain integers and touches no memory.
                    unsafe { libc::kill(p, libc::SIGSTOP) };
                }
                stopped = tree.len();
                for child in descendants(pid) {
                    if !tree.contains(&child) {
                        tree.push(child);
                    }
                }
            }
            for &p in &tree {
                // SAFETY: as above.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every process below `root`, from the parent pids in `/proc/<pid>/stat`.
fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let stat = stat_after_name(pid).unwrap_or_default();
        if let Some(ppid) = stat.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.split_off(1)
}

/// `/proc/<pid>/stat` after the process name ("state ppid …"); the name,
/// "(comm)", may hold spaces and parentheses. `None` once the process is gone.
fn stat_after_name(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.trim_start().to_string())
}

/// A dropped [`Proc`] ends its whole tree, a grandchild in a session and
/// process group of its own (as `cargo lambda watch` starts `cargo run`)
/// included.
#[test]
fn a_dropped_proc_leaves_no_descendant_behind() {
    let child = Command::new("sh")
        .args(["-c", "setsid sleep 300 & sleep 300"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let started = Instant::now();
    let mut below = descendants(pid);
    while below.len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "{below:?}");
        std::thread::sleep(Duration::from_millis(20));
        below = descendants(pid);
    }
    drop(Proc(child));
    // Killed, and reaped by whoever adopted them (a zombie counts as gone).
    let alive = |p: &i32| stat_after_name(*p).is_some_and(|r| !r.starts_with('Z'));
    let started = Instant::now();
    while below.iter().any(alive) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running after the drop: {:?}",
            below.iter().filter(|p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cargo lambda watch --only-lambda-apis` on `port`: the runtime API the
/// functions poll and the Invoke API the test calls. Its timeout also ends
/// idle polls for invocations (which the Rust runtime takes for a broken
/// API), so it is longer than any test; [`invoke_within`] keeps the function's.
fn emulator(port: u16, sandboxes: usize, logs: &Path) -> Proc {
    let log = std::fs::File::create(logs.join("cargo-lambda.log")).unwrap();
    let child = Command::new(cargo_lambda())
        .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
        .args(["-P", &port.to_string()])
        .args(["--timeout", "3600"])
        // Invocations at once (it serves one at a time by default).
        .args(["--concurrency", &sandboxes.to_string()])
        .args([
            "--manifest-path",
            common::repo().join("Cargo.toml").to_str().unwrap(),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting cargo lambda watch");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not listen on {port}: {}",
            std::fs::read_to_string(logs.join("cargo-lambda.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Proc(child)
}

/// One sandbox of the function: `ferry lambda` with the variables Lambda
/// sets, polling the emulator for invocations; its logs go to `log`.
fn function(port: u16, cwd: &Path, env: &[(&str, &str)], log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = ferry_cmd(&["lambda"], cwd, env);
    if env.iter().any(|(k, _)| *k == "FERRY_DATABASE_SECRET") {
        cmd.env_remove("DATABASE_URL");
    }
    let child = cmd
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt/ferry"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "ferry")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting ferry lambda");
    Proc(child)
}

/// Lambda's Invoke API (RequestResponse): the HTTP status and the payload;
/// `None` when the function did not answer within `timeout` (Lambda's
/// Sandbox.Timedout).
fn invoke_within(port: u16, payload: &Value, timeout: Duration) -> Option<(u16, String)> {
    let body = payload.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "POST /2015-03-31/functions/ferry/invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        );
        return None;
    }
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Some((
        status,
        if chunked {
            unchunk(rest)
        } else {
            rest.to_string()
        },
    ))
}

/// [`invoke_within`] for an invocation that must answer.
fn invoke(port: u16, payload: &Value) -> (u16, String) {
    invoke_within(port, payload, Duration::from_secs(120)).expect("the function answers")
}

fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// An S3 Object Created event, as EventBridge delivers it (the payload the
/// Orchestrator passes to the function).
fn event(bucket: &str, key: &str, size: usize) -> Value {
    json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
           "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}}})
}

/// The job record of `input` (an s3:// URI).
fn job_of(input: &str, cwd: &Path, env: &[(&str, &str)]) -> Value {
    let out = ferry_cmd(&["jobs", "list", "--json"], cwd, env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|j| j["input"]["uri"] == input || j["input"] == input)
        .and_then(|j| j["job_id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no job for {input}: {}", text(&out)));
    let out = ferry_cmd(&["jobs", "show", &id, "--json"], cwd, env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The entries of a job's `file.zip` in the output bucket, by name.
async fn zipped(
    aws: &Aws,
    bucket: &str,
    job_id: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let key = aws
        .keys(bucket)
        .await
        .into_iter()
        .find(|k| k.contains(job_id) && k.ends_with("file.zip"))
        .unwrap_or_else(|| panic!("no file.zip of job {job_id} in {bucket}"));
    let (_, names, mut z) = unzip(&aws.get(bucket, &key).await);
    names
        .into_iter()
        .map(|n| {
            let mut bytes = Vec::new();
            z.by_name(&n).unwrap().read_to_end(&mut bytes).unwrap();
            (n, bytes)
        })
        .collect()
}

const ORDERS: &str = "id,amount,note\n1,1.50,first\n2,,second\n3,3,\"third, quoted\"\n";

/// What each test starts from: a scratch schema with the orders dataset routed
/// from `lambda/**/orders-*.csv`, and an input and an output bucket.
struct World {
    s: Scratch,
    aws: Aws,
    input: String,
    output: String,
    specs: String,
    out_uri: String,
}

impl World {
    async fn new(name: &str) -> World {
        let s = Scratch::new(name).await;
        let specs = orders_spec(&s, "lambda/**/orders-*.csv");
        let aws = aws().await;
        let (input, output) = (unique("lambda-in"), unique("lambda-out"));
        aws.bucket(&input, false).await;
        aws.bucket(&output, false).await;
        let out_uri = format!("s3://{output}/ferry");
        let specs = specs.to_str().unwrap().to_string();
        World {
            s,
            aws,
            input,
            output,
            specs,
            out_uri,
        }
    }

    /// The job settings every process of the test shares (the function,
    /// `ferry task`, `ferry jobs`).
    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("FERRY_SPECS", self.specs.as_str()),
            ("FERRY_WORK_DIR", "work"),
            ("FERRY_OUTPUT", self.out_uri.as_str()),
        ]
    }

    /// Rows in the orders table.
    async fn orders(&self) -> i64 {
        self.s
            .scalar(&format!("SELECT count(*) FROM {}", self.s.table("orders")))
            .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_invocation_runs_a_small_object_s_whole_job_and_concurrent_duplicates_load_it_once() {
    let w = World::new("lambda_once").await;
    let (s, aws, input, output) = (&w.s, &w.aws, &w.input, &w.output);
    let key = "lambda/a/orders-1.csv";
    aws.put(input, key, ORDERS.as_bytes()).await;
    let env = w.env();
    // The database as the stack gives it to the function: a Secrets Manager
    // secret in RDS's layout, no URL and no PG* variables.
    let url = url::Url::parse(&common::database_url()).unwrap();
    let secret = json!({"engine": "postgres", "host": url.host_str(), "port": url.port().unwrap_or(5432),
                        "username": url.username(), "password": "unused-by-trust-auth",
                        "dbname": url.path().trim_start_matches('/')});
    let secret_arn = aws_sdk_secretsmanager::Client::new(&aws.config)
        .create_secret()
        .name(unique("ferry-db"))
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let mut fn_env = env.to_vec();
    fn_env.extend([
        ("FERRY_DATABASE_SECRET", secret_arn.as_str()),
        ("PGSSLMODE", "disable"),
    ]);
    let port = free_port();
    let _emulator = emulator(port, 2, s.dir.path());
    // Two sandboxes, so the two invocations below run at the same time.
    let _fns: Vec<Proc> = (0..2)
        .map(|i| {
            function(
                port,
                s.dir.path(),
                &fn_env,
                &s.path(&format!("function-{i}.log")),
            )
        })
        .collect();
    let e = event(input, key, ORDERS.len());
    let both: Vec<(u16, String)> = (0..2)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || invoke(port, &e))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let logs = || {
        (0..2)
            .map(|i| std::fs::read_to_string(s.path(&format!("function-{i}.log"))).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let results: Vec<Value> = both
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}\n{}", logs());
            serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}\n{}", logs()))
        })
        .collect();
    let ran: Vec<&Value> = results.iter().filter(|r| r["run"] == true).collect();
    assert_eq!(
        ran.len(),
        1,
        "exactly one invocation runs the job: {results:?}"
    );
    assert_eq!(ran[0]["status"], "succeeded", "{results:?}\n{}", logs());
    let job_id = ran[0]["job_id"].as_str().unwrap().to_string();
    assert!(
        results.iter().all(|r| r["job_id"] == job_id.as_str()),
        "{results:?}"
    );
    let rows = w.orders().await;
    assert_eq!(rows, 3, "loaded once");
    let ledger: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM ferry.loads WHERE job_id = '{job_id}'"
        ))
        .await;
    assert_eq!(ledger, 1);
    // The job went through every step of the Loader, in this one invocation.
    let job = job_of(&format!("s3://{input}/{key}"), s.dir.path(), &env);
    let steps: Vec<&str> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "create-job",
            "s3-efs-downloader",
            "transform+sql-processor",
            "efs-s3-uploader",
            "notify"
        ],
        "{job}"
    );
    assert!(job["lease_until"].is_string(), "{job}");
    let zip = zipped(aws, output, &job_id).await;
    assert!(
        zip.keys().any(|n| n.ends_with(".pgcopy")) && zip.contains_key("artifacts/load.sql"),
        "{:?}",
        zip.keys()
    );
    // A third delivery, after the job ended: nothing runs.
    let (status, body) = invoke(port, &e);
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &again["run"]), (200, &json!(false)), "{body}");
    let rows = w.orders().await;
    assert_eq!(rows, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lambda_killed_at_its_timeout_hands_its_job_to_the_ecs_steps_with_the_same_artifacts() {
    let w = World::new("lambda_timeout").await;
    let (s, aws, input, output) = (&w.s, &w.aws, &w.input, &w.output);
    let timeout = Duration::from_secs(4);
    let mut env = w.env();
    env.push(("FERRY_LAMBDA_TIMEOUT_SECONDS", "4"));
    let port = free_port();
    let _emulator = emulator(port, 1, s.dir.path());
    let sandbox = |n: usize| function(port, s.dir.path(), &env, &s.path(&format!("fn-{n}.log")));
    let mut sandbox_1 = sandbox(1);

    // 1. Objects through the function: the first creates the table (so the
    //    two compared below find it there alike), the second's artifacts are
    //    the Lambda path's.
    let (key_0, key_1, key_2) = (
        "lambda/0/orders-0.csv",
        "lambda/a/orders-1.csv",
        "lambda/b/orders-2.csv",
    );
    let mut by_lambda = Value::Null;
    for key in [key_0, key_1] {
        aws.put(input, key, ORDERS.as_bytes()).await;
        let (status, body) = invoke(port, &event(input, key, ORDERS.len()));
        assert_eq!(status, 200, "{body}");
        by_lambda = serde_json::from_str(&body).unwrap();
        assert_eq!(by_lambda["status"], "succeeded", "{body}");
    }

    // 2. The same bytes as another object, while another session holds the
    //    table: the invocation waits past its timeout, and Lambda kills the
    //    sandbox (here: the test, once the invocation outlived its timeout).
    let locker = common::client().await;
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            s.table("orders")
        ))
        .await
        .unwrap();
    aws.put(input, key_2, ORDERS.as_bytes()).await;
    let e = event(input, key_2, ORDERS.len());
    let invoked = std::time::SystemTime::now();
    let started = Instant::now();
    let answer = invoke_within(port, &e, timeout);
    let waited = started.elapsed();
    assert!(
        answer.is_none(),
        "the invocation answered after {waited:?} while the table was held: {answer:?}"
    );
    let _ = sandbox_1.0.kill();
    let _ = sandbox_1.0.wait();
    let uri = format!("s3://{input}/{key_2}");
    let job = job_of(&uri, s.dir.path(), &env);
    assert_eq!(job["status"], "running", "{job}");
    // The job's lease ends with the invocation, not 15 minutes after its
    // last renewal: the ECS path need not wait.
    let until = chrono::DateTime::parse_from_rfc3339(job["lease_until"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {job}"));
    let latest = chrono::DateTime::<chrono::Utc>::from(invoked + timeout + Duration::from_secs(1));
    assert!(
        until <= latest,
        "lease until {until}, invoked + timeout {latest}"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();
    while chrono::Utc::now() <= until {
        std::thread::sleep(Duration::from_millis(50));
    }

    // 3. The ECS path, one task per step, takes the job over at once.
    let e_text = e.to_string();
    let out = ferry_cmd(
        &["task", "create-job", "--event", &e_text],
        s.dir.path(),
        &env,
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&created["run"], &created["attempt"], &created["status"]),
        (&json!(true), &json!(2), &json!("running")),
        "{created}"
    );
    let job_id = created["job_id"].as_str().unwrap().to_string();
    for step in [
        "s3-efs-downloader",
        "transform",
        "sql-processor",
        "efs-s3-uploader",
        "notify",
    ] {
        let out = ferry_cmd(&["task", step, "--job-id", &job_id], s.dir.path(), &env)
            .output()
            .unwrap();
        assert!(out.status.success(), "{step}: {}", text(&out));
    }
    let job = job_of(&uri, s.dir.path(), &env);
    assert_eq!(job["status"], "succeeded", "{job}");
    let rows = w.orders().await;
    assert_eq!(
        rows, 9,
        "each object once: the killed invocation's load rolled back"
    );
    let ledger: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM ferry.loads WHERE job_id = '{job_id}'"
        ))
        .await;
    assert_eq!(ledger, 1);

    // 4. The same bytes made the same artifacts, whichever path ran them.
    let lambda_zip = zipped(aws, output, by_lambda["job_id"].as_str().unwrap()).await;
    let ecs_zip = zipped(aws, output, &job_id).await;
    assert_eq!(
        lambda_zip.keys().collect::<Vec<_>>(),
        ecs_zip.keys().collect::<Vec<_>>()
    );
    let data: Vec<&String> = lambda_zip
        .keys()
        .filter(|n| n.starts_with("artifacts/") && n.as_str() != "artifacts/load.sql")
        .collect();
    assert!(data.len() >= 2, "{:?}", lambda_zip.keys());
    for name in data {
        let (a, b) = (
            String::from_utf8_lossy(&lambda_zip[name]),
            String::from_utf8_lossy(&ecs_zip[name]),
        );
        let first = a.lines().zip(b.lines()).find(|(x, y)| x != y);
        assert!(
            lambda_zip[name] == ecs_zip[name],
            "{name} differs between the Lambda and the ECS path, first at {first:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_failure_in_lambda_is_not_notified_and_a_new_attempt_finishes_the_job() {
    let w = World::new("lambda_transient").await;
    let (s, aws, input) = (&w.s, &w.aws, &w.input);
    let env = w.env();
    // The database is down (nothing listens there) while the function runs the job.
    let mut down = env.to_vec();
    down.extend([
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres"),
        ("PGCONNECT_TIMEOUT", "2"),
    ]);
    let port = free_port();
    let _emulator = emulator(port, 1, s.dir.path());
    let _sandbox = function(port, s.dir.path(), &down, &s.path("fn.log"));
    let key = "lambda/a/orders-1.csv";
    aws.put(input, key, ORDERS.as_bytes()).await;
    let e = event(input, key, ORDERS.len());
    let (status, body) = invoke(port, &e);
    let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status} {body}"));
    assert_eq!(error["errorType"], "ferry.Transient", "{body}");
    let uri = format!("s3://{input}/{key}");
    let job = job_of(&uri, s.dir.path(), &env);
    assert_eq!(
        (&job["status"], &job["error"]["name"]),
        (&json!("failed"), &json!("ferry.Transient")),
        "{job}"
    );
    // No event yet: the state machine tries again (then hands the object to ECS).
    let events = || std::fs::read_to_string(s.path("work/events.jsonl")).unwrap_or_default();
    assert_eq!(events(), "", "a transient failure was notified");
    // The next attempt (here the ECS path's create-job and steps) finishes it, with one event.
    let out = ferry_cmd(&["run", "--event", &e.to_string()], s.dir.path(), &env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let job = job_of(&uri, s.dir.path(), &env);
    assert_eq!(
        (&job["status"], &job["attempts"]),
        (&json!("succeeded"), &json!(2)),
        "{job}"
    );
    let sent: Vec<Value> = events()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["status"], "succeeded");
    let rows = w.orders().await;
    assert_eq!(rows, 3);
}
