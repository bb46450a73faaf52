//! `ferry load --input s3://…` against a local S3 (the moto server that
//! `scripts/test` starts): the object is streamed into the job folder, the
//! ledger identifies it by bucket/key/ETag, and keys cannot escape the folder.

use crate::common;

use std::io::{Read, Write};
use std::process::Command;

use common::{Scratch, database_url, text};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

fn endpoint() -> String {
    std::env::var("FERRY_TEST_AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| panic!("this test needs the local S3 emulator: run scripts/test (it starts one), or set FERRY_TEST_AWS_ENDPOINT_URL"))
}

/// One plain HTTP request to the emulator; the reply's body.
fn emulator(method: &str, path: &str, body: &str) -> String {
    let url = url::Url::parse(&endpoint()).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut conn = std::net::TcpStream::connect(&host).unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Creates a bucket with a plain S3 `PUT /bucket` (object_store has no such call).
fn make_bucket(bucket: &str) {
    emulator("PUT", &format!("/{bucket}"), "");
}

/// Makes the emulator fail the next `count` GETs of `path` with 503 SlowDown
/// (S3's throttling answer); returns nothing, see [`fault_hits`].
fn throttle_gets(path: &str, count: u32) {
    emulator(
        "POST",
        "/_ferry/faults",
        &format!(
            r#"[{{"method":"GET","path":"{path}","status":503,"code":"SlowDown","count":{count}}}]"#
        ),
    );
}

/// How many requests the injected faults failed.
fn fault_hits() -> u64 {
    let faults: serde_json::Value =
        serde_json::from_str(&emulator("GET", "/_ferry/faults", "")).unwrap();
    faults
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["hits"].as_u64().unwrap())
        .sum()
}

fn store(bucket: &str) -> impl ObjectStore {
    AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(endpoint())
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .unwrap()
}

/// `ferry …` against the test database and the local S3.
fn ferry_s3_cmd(args: &[&str], cwd: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.args(args)
        .current_dir(cwd)
        .env("DATABASE_URL", database_url())
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("FERRY_LOG_FORMAT", "text");
    c
}

fn ferry_s3(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    ferry_s3_cmd(args, cwd).output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn loads_from_s3_once_and_keeps_keys_inside_the_job_folder() {
    let s = Scratch::new("s3").await;
    let bucket = format!("ferry-test-{}", std::process::id());
    make_bucket(&bucket);
    let body = "id,city\n1,Oslo\n2,Zürich\n3,\"São Paulo\"\n";
    let st = store(&bucket);
    st.put(&ObjectPath::from("in/2024/cities.csv"), body.into())
        .await
        .unwrap();

    let table = s.table("cities");
    let uri = format!("s3://{bucket}/in/2024/cities.csv");
    let o = ferry_s3(&["load", "-i", &uri, "-t", &table, "--json"], s.dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["rows"], 3);
    let job_dir = std::path::PathBuf::from(report["job_dir"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(job_dir.join("input/cities.csv")).unwrap(),
        body
    );
    assert_eq!(
        s.scalar::<String>(&format!(
            "SELECT string_agg(city, ',' ORDER BY id) FROM {table}"
        ))
        .await,
        "Oslo,Zürich,São Paulo"
    );
    let identity: String = s
        .scalar(&format!(
            "SELECT input FROM ferry.loads WHERE target = '{table}'"
        ))
        .await;
    assert!(identity.starts_with(&format!("{uri}#etag=")), "{identity}");

    // The same object again: loaded once.
    let o = ferry_s3(&["load", "-i", &uri, "-t", &table], s.dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("skipped"), "{}", text(&o));
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {table}"))
            .await,
        3
    );

    // A key with `..` segments is refused before anything is written.
    let evil = format!("s3://{bucket}/in/../../../escape/evil.csv");
    let o = ferry_s3(
        &[
            "load",
            "-i",
            &evil,
            "-t",
            &s.table("evil"),
            "--work-dir",
            "w",
        ],
        s.dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(".."), "{}", text(&o));
    assert!(!s.dir.path().join("escape").exists() && !s.dir.path().join("w/escape").exists());

    // A missing object is a clear, non-transient error.
    let o = ferry_s3(
        &[
            "load",
            "-i",
            &format!("s3://{bucket}/nope.csv"),
            "-t",
            &s.table("nope"),
        ],
        s.dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nope.csv"), "{}", text(&o));
}

/// Throttling and server errors from S3: retried with backoff until they
/// pass, then reported as a retryable failure naming the object, with nothing
/// loaded.
#[tokio::test(flavor = "multi_thread")]
async fn throttled_s3_reads_are_retried_then_fail_clearly() {
    let s = Scratch::new("s3throttle").await;
    let bucket = format!("ferry-throttle-{}", std::process::id());
    make_bucket(&bucket);
    store(&bucket)
        .put(
            &ObjectPath::from("in/t.csv"),
            "id,v\n1,a\n2,b\n3,c\n".into(),
        )
        .await
        .unwrap();
    let uri = format!("s3://{bucket}/in/t.csv");
    let path = format!("/{bucket}/in/t.csv");

    throttle_gets(&path, 3);
    let o = ferry_s3(
        &["load", "-i", &uri, "-t", &s.table("passes")],
        s.dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        fault_hits(),
        3,
        "three throttled GETs, then the fourth passed"
    );
    assert_eq!(
        s.scalar::<i64>(&format!("SELECT count(*) FROM {}", s.table("passes")))
            .await,
        3
    );

    throttle_gets(&path, 100);
    let o = ferry_s3_cmd(&["load", "-i", &uri, "-t", &s.table("fails")], s.dir.path())
        .env("FERRY_S3_RETRIES", "2")
        .output()
        .unwrap();
    emulator("DELETE", "/_ferry/faults", "");
    assert_eq!(o.status.code(), Some(5), "retryable: {}", text(&o));
    for needle in [uri.as_str(), "SlowDown", "after 2 retries"] {
        assert!(text(&o).contains(needle), "no {needle:?} in {}", text(&o));
    }
    let exists: bool = s
        .scalar(&format!(
            "SELECT to_regclass('{}') IS NOT NULL",
            s.table("fails")
        ))
        .await;
    assert!(!exists, "a failed download created the target");
}
