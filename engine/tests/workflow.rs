//! Jobs and workflows end to end, against real PostgreSQL and the local AWS
//! emulator (moto, started by `scripts/test`) through the real AWS SDK:
//! S3 → EventBridge → SQS → `ferry watch` → PostgreSQL / Parquet → DynamoDB
//! job records → zip + manifest in the output bucket → SNS → SQS; the split
//! container steps with `ferry task`; Step Functions task tokens; and object
//! keys that try to leave the job folder.

use crate::common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use aws_config::SdkConfig;
use common::{Scratch, database_url};
use ferry_connectors::aws::emulator_config;
use ferry_connectors::jobs::dynamodb::DynamoJobStore;
use ferry_connectors::jobs::{Job, JobStatus, JobStore};
use ferry_connectors::notify::JobEvent;
use ferry_connectors::work::Manifest;
use serde_json::{Value, json};

pub(crate) fn endpoint() -> String {
    std::env::var("FERRY_TEST_AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("these tests need the local AWS emulator: run scripts/test (it starts one), or set FERRY_TEST_AWS_ENDPOINT_URL")
    })
}

pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Runs `ferry` with the emulator's endpoint and test credentials.
fn ferry_aws(args: &[&str], cwd: &Path, extra_env: &[(&str, &str)]) -> Output {
    ferry_cmd(args, cwd, extra_env)
        .output()
        .expect("running ferry")
}

/// `ferry` with the test database, the emulator's endpoint and test
/// credentials, JSON logs, and none of the caller's job settings.
pub(crate) fn ferry_cmd(args: &[&str], cwd: &Path, extra_env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args)
        .current_dir(cwd)
        .env("DATABASE_URL", database_url())
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("FERRY_LOG_FORMAT", "json")
        .env_remove("FERRY_WORK_DIR")
        .env_remove("FERRY_JOB_STORE")
        .env_remove("FERRY_NOTIFY")
        .env_remove("FERRY_TASK_TOKEN");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) struct Aws {
    pub(crate) config: SdkConfig,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
}

pub(crate) async fn aws() -> Aws {
    let config = emulator_config(&endpoint()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&config);
    Aws { config, s3, sqs }
}

impl Aws {
    pub(crate) async fn bucket(&self, name: &str, eventbridge: bool) {
        self.s3.create_bucket().bucket(name).send().await.unwrap();
        if eventbridge {
            self.s3
                .put_bucket_notification_configuration()
                .bucket(name)
                .notification_configuration(
                    aws_sdk_s3::types::NotificationConfiguration::builder()
                        .event_bridge_configuration(
                            aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                        )
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    }

    pub(crate) async fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
    }

    async fn queue(&self, name: &str) -> (String, String) {
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        (url, arn)
    }

    /// Receives (and deletes) messages until `want` arrived or 10 s passed.
    async fn drain(&self, url: &str, want: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..10 {
            let r = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for m in r.messages.unwrap_or_default() {
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
                out.push(m.body.unwrap());
            }
            if out.len() >= want {
                break;
            }
        }
        out
    }

    async fn send(&self, url: &str, body: &str) {
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    pub(crate) async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e:?}"))
            .body
            .collect()
            .await
            .unwrap()
            .to_vec()
    }

    pub(crate) async fn keys(&self, bucket: &str) -> Vec<String> {
        self.s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .unwrap()
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| o.key)
            .collect()
    }
}

pub(crate) fn unzip(
    bytes: &[u8],
) -> (
    Manifest,
    Vec<String>,
    zip::ZipArchive<std::io::Cursor<Vec<u8>>>,
) {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = z.file_names().map(str::to_string).collect();
    let mut s = String::new();
    z.by_name("manifest.json")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    (serde_json::from_str(&s).unwrap(), names, z)
}

pub(crate) const ORDERS_SPEC: &str = r#"
[source]
format = "csv"
header = true
[[source.columns]]
name = "id"
type = "bigint"
[[source.columns]]
name = "amount"
type = "numeric(10,2)"
[[source.columns]]
name = "note"
type = "text"
[routing]
keys = ["orders/*.csv"]
workflow = "loader"
[target]
table = "SCHEMA.orders"
"#;

/// A specs folder with the orders Loader dataset, routed by `glob`, loading
/// into the scratch schema.
pub(crate) fn orders_spec(s: &Scratch, glob: &str) -> std::path::PathBuf {
    let specs = s.path("specs");
    std::fs::create_dir_all(&specs).unwrap();
    s.spec(
        "specs/orders",
        &ORDERS_SPEC
            .replace("SCHEMA", &s.schema)
            .replace("orders/*.csv", glob),
        "SELECT * FROM source",
    );
    specs
}

const CONVERT_SPEC: &str = r#"
[source]
format = "csv"
header = true
[routing]
keys = ["convert/*.csv"]
workflow = "converter"
[convert]
to = "parquet"
compression = "zstd"
"#;

/// The whole event-driven path, Loader and Converter, with duplicate
/// deliveries, a multipart upload's double event, a bad file and an
/// unroutable key, in one `ferry watch` session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_events_through_eventbridge_and_sqs_drive_both_workflows() {
    let s = Scratch::new("wf_e2e").await;
    let a = aws().await;
    let (input, output) = (unique("in"), unique("out"));
    a.bucket(&input, true).await;
    a.bucket(&output, false).await;
    let (events_url, events_arn) = a.queue(&unique("events")).await;
    let eb = aws_sdk_eventbridge::Client::new(&a.config);
    let rule = unique("rule");
    eb.put_rule()
        .name(&rule)
        .event_pattern(
            json!({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [input]}}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(&events_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let sns = aws_sdk_sns::Client::new(&a.config);
    let topic = sns
        .create_topic()
        .name(unique("jobs"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let (notes_url, notes_arn) = a.queue(&unique("notes")).await;
    let sub = sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&notes_arn)
        .return_subscription_arn(true)
        .send()
        .await
        .unwrap()
        .subscription_arn
        .unwrap();
    sns.set_subscription_attributes()
        .subscription_arn(&sub)
        .attribute_name("RawMessageDelivery")
        .attribute_value("true")
        .send()
        .await
        .unwrap();
    let table = unique("jobs");
    let store = DynamoJobStore::with_config(&a.config, &table);
    store.create_table().await.unwrap();

    let specs = s.path("specs");
    std::fs::create_dir_all(&specs).unwrap();
    s.spec(
        "specs/orders",
        &ORDERS_SPEC.replace("SCHEMA", &s.schema),
        "SELECT * FROM source",
    );
    s.spec(
        "specs/orders_pq",
        CONVERT_SPEC,
        "SELECT *, amount * 2 AS doubled FROM source",
    );

    // a.csv: its one event delivered three times.
    let a_body: &[u8] = b"id,amount,note\n1,1.50,one\n2,2.25,two\n3,3.00,\"three, with comma\"\n";
    a.put(&input, "orders/a.csv", a_body).await;
    let first = a.drain(&events_url, 1).await;
    assert_eq!(
        first.len(),
        1,
        "the PutObject event reaches SQS through the EventBridge rule"
    );
    for _ in 0..3 {
        a.send(&events_url, &first[0]).await;
    }
    // b.csv by multipart upload: the emulator emits two events.
    let mp =
        a.s3.create_multipart_upload()
            .bucket(&input)
            .key("orders/b.csv")
            .send()
            .await
            .unwrap();
    let part =
        a.s3.upload_part()
            .bucket(&input)
            .key("orders/b.csv")
            .upload_id(mp.upload_id().unwrap())
            .part_number(1)
            .body(
                b"id,amount,note\n4,4.00,four\n5,5.50,five\n"
                    .to_vec()
                    .into(),
            )
            .send()
            .await
            .unwrap();
    a.s3.complete_multipart_upload()
        .bucket(&input)
        .key("orders/b.csv")
        .upload_id(mp.upload_id().unwrap())
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag.unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A bad file, a file for the Converter, and one no dataset routes.
    a.put(
        &input,
        "orders/bad.csv",
        b"id,amount,note\n6,6.00,six\n7,abc,seven\n",
    )
    .await;
    a.put(
        &input,
        "convert/c.csv",
        b"id,amount,city\n1,1.5,Oslo\n2,,Bergen\n3,3.25,\n4,4,Troms\xc3\xb8\n",
    )
    .await;
    a.put(&input, "elsewhere/x.csv", b"x\n1\n").await;

    let work = s.path("work");
    let out = ferry_aws(
        &[
            "watch",
            &events_url,
            "--idle-exit",
            "4",
            "--poll",
            "1",
            "--concurrency",
            "2",
            "--specs",
            specs.to_str().unwrap(),
            "--job-store",
            &format!("dynamodb://{table}"),
            "--notify",
            &format!("sns://{topic}"),
            "--output",
            &format!("s3://{output}/ferry"),
            "--work-dir",
            work.to_str().unwrap(),
        ],
        s.dir.path(),
        &[],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("watch: 3 succeeded, 2 failed, 3 duplicate events"),
        "{log}"
    );

    // PostgreSQL: a and b once each; nothing of bad.csv.
    let rows: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("orders")))
        .await;
    assert_eq!(rows, 5, "{log}");
    let loads: i64 = s
        .scalar(&format!(
            "SELECT count(*) FROM ferry.loads WHERE target = '{}'",
            s.table("orders")
        ))
        .await;
    assert_eq!(loads, 2);

    // DynamoDB: five jobs with their steps and figures.
    let jobs = store.list(None, 100).await.unwrap();
    assert_eq!(jobs.len(), 5, "{jobs:#?}");
    // No staging table of these jobs is left (`ferry.stage_<the id's last 12
    // alphanumerics>`; other tests' loads may have theirs in flight).
    for job in &jobs {
        let id: String = job
            .job_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let stage = format!("stage_{}", &id[id.len() - 12..]).to_ascii_lowercase();
        let left: i64 = s
            .scalar(&format!("SELECT count(*) FROM pg_tables WHERE schemaname = 'ferry' AND tablename = '{stage}'"))
            .await;
        assert_eq!(left, 0, "{stage} was left behind");
    }
    let by_key = |k: &str| -> Job {
        jobs.iter()
            .find(|j| j.input.uri.ends_with(k))
            .unwrap_or_else(|| panic!("no job for {k}"))
            .clone()
    };
    let ja = by_key("orders/a.csv");
    assert_eq!(
        (ja.status, ja.rows, ja.attempts),
        (JobStatus::Succeeded, Some(3), 1)
    );
    let names: Vec<&str> = ja.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        names,
        [
            "create-job",
            "s3-efs-downloader",
            "transform+sql-processor",
            "efs-s3-uploader",
            "notify"
        ]
    );
    for st in &ja.steps {
        assert!(
            st.seconds.is_some() && st.finished_at.is_some() && st.error.is_none(),
            "{st:?}"
        );
    }
    assert_eq!(
        ja.step("s3-efs-downloader").unwrap().bytes,
        Some(a_body.len() as u64)
    );
    assert!(ja.dir.starts_with(work.to_str().unwrap()) && ja.dir.contains(&ja.job_id));
    assert_eq!(
        by_key("orders/b.csv").rows,
        Some(2),
        "{:#?}\n{log}",
        by_key("orders/b.csv")
    );
    let bad = by_key("orders/bad.csv");
    assert_eq!(bad.status, JobStatus::Failed);
    let err = bad.error.clone().unwrap();
    assert_eq!(
        (err.step.as_str(), err.name.as_str(), err.retryable),
        ("transform+sql-processor", "ferry.Input", false)
    );
    assert!(
        err.message.contains("bad.csv")
            && err.message.contains("abc")
            && err.message.contains(":3"),
        "{err:?}"
    );
    assert_eq!(by_key("convert/c.csv").status, JobStatus::Succeeded);
    let x = by_key("elsewhere/x.csv");
    assert_eq!((x.status, x.dataset.as_deref()), (JobStatus::Failed, None));
    assert!(
        x.error
            .unwrap()
            .message
            .contains("no dataset routes \"elsewhere/x.csv\"")
    );

    // Output bucket: file.zip + manifest.json per succeeded job.
    let keys = a.keys(&output).await;
    assert_eq!(keys.len(), 6, "{keys:?}");
    let stamp = Path::new(&ja.dir)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let base = format!("ferry/orders/{}/{stamp}", ja.job_id);
    let (manifest, names, mut zip) = unzip(&a.get(&output, &format!("{base}/file.zip")).await);
    let uploaded: Manifest =
        serde_json::from_slice(&a.get(&output, &format!("{base}/manifest.json")).await).unwrap();
    assert_eq!(manifest, uploaded);
    assert_eq!(
        (
            manifest.rows,
            manifest.dataset.as_str(),
            manifest.workflow.as_str()
        ),
        (3, "orders", "loader")
    );
    let pgcopy = manifest
        .files
        .iter()
        .find(|f| f.kind == ferry_connectors::work::FileKind::Pgcopy)
        .unwrap();
    assert_eq!(pgcopy.rows, Some(3));
    let mut bytes = Vec::new();
    zip.by_name(&pgcopy.name)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes.len() as u64, pgcopy.bytes);
    assert_eq!(
        pgcopy.checksum,
        format!(
            "xxh3-128:{:032x}",
            twox_hash::xxhash3_128::Hasher::oneshot(&bytes)
        )
    );
    assert!(names.iter().any(|n| n == "artifacts/load.sql"), "{names:?}");
    // The receipt travels in the zip, as the job record has it.
    let recorded = ja
        .steps
        .iter()
        .find_map(|s| s.outputs.get("receipt"))
        .expect("the load step records its receipt")
        .clone();
    let mut receipt = String::new();
    zip.by_name("receipt.json")
        .unwrap()
        .read_to_string(&mut receipt)
        .unwrap();
    let zipped: serde_json::Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!(zipped, recorded);
    assert!(
        manifest
            .files
            .iter()
            .any(|f| f.name == "receipt.json" && f.kind == ferry_connectors::work::FileKind::Report),
        "{:?}",
        manifest.files
    );
    let jc = by_key("convert/c.csv");
    let cstamp = Path::new(&jc.dir)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let (cm, cnames, _) = unzip(
        &a.get(
            &output,
            &format!("ferry/orders_pq/{}/{cstamp}/file.zip", jc.job_id),
        )
        .await,
    );
    assert_eq!((cm.rows, cm.workflow.as_str()), (4, "converter"));
    assert!(
        cnames.contains(&"output/c.parquet".to_string()),
        "{cnames:?}"
    );
    assert!(
        cnames
            .iter()
            .any(|n| n.ends_with("c.parquet.validation.json")),
        "{cnames:?}"
    );
    assert_eq!(
        jc.steps.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(),
        [
            "create-job",
            "s3-efs-downloader",
            "convert",
            "validate",
            "efs-s3-uploader",
            "notify"
        ]
    );

    // SNS → SQS: one event per job.
    let notes = a.drain(&notes_url, 5).await;
    assert_eq!(notes.len(), 5, "{notes:?}");
    let events: Vec<JobEvent> = notes
        .iter()
        .map(|n| serde_json::from_str(n).unwrap_or_else(|e| panic!("{e}: {n}")))
        .collect();
    let ok: Vec<&JobEvent> = events
        .iter()
        .filter(|e| e.status == JobStatus::Succeeded)
        .collect();
    assert_eq!(ok.len(), 3);
    let ea = events.iter().find(|e| e.job_id == ja.job_id).unwrap();
    assert_eq!(
        (ea.rows, ea.bytes, ea.dataset.as_deref()),
        (Some(3), Some(a_body.len() as u64), Some("orders"))
    );
    assert_eq!(ea.steps.len(), 4);
    assert!(
        ea.outputs["zip"]
            .as_str()
            .unwrap()
            .starts_with(&format!("s3://{output}/ferry/orders/"))
    );
    let eb_bad = events.iter().find(|e| e.job_id == bad.job_id).unwrap();
    assert_eq!(eb_bad.error.as_ref().unwrap().name, "ferry.Input");

    // Every event message was settled.
    assert!(a.drain(&events_url, 1).await.is_empty());

    // `ferry jobs` reads the same table.
    let listed = ferry_aws(
        &[
            "jobs",
            "list",
            "--status",
            "failed",
            "--job-store",
            &format!("dynamodb://{table}"),
        ],
        s.dir.path(),
        &[],
    );
    let l = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && l.lines().count() == 3 && l.contains("orders/bad.csv"),
        "{}",
        text(&listed)
    );
    let shown = ferry_aws(
        &[
            "jobs",
            "show",
            &ja.job_id,
            "--job-store",
            &format!("dynamodb://{table}"),
        ],
        s.dir.path(),
        &[],
    );
    let sh = String::from_utf8_lossy(&shown.stdout);
    assert!(
        sh.contains("succeeded") && sh.contains("transform+sql-processor") && sh.contains("3 rows"),
        "{}",
        text(&shown)
    );
}

/// The split Loader as containers run it: one `ferry task` per step, the
/// job passed from each output to the next input; sql-processor loads the
/// .pgcopy files in one job and replays the .sql files in another.
#[tokio::test]
async fn split_tasks_run_the_loader_step_by_step() {
    let s = Scratch::new("wf_tasks").await;
    let specs = orders_spec(&s, "**/orders-*.csv");
    std::fs::write(
        s.path("orders-1.csv"),
        "id,amount,note\n1,1.50,\"a\nb\"\n2,,tab\there\n3,3,\\N\n",
    )
    .unwrap();
    // The second file drifted: a new column, added by the load it arrives
    // in (replayed from the .sql files, whose DDL must add it too).
    std::fs::write(s.path("orders-2.csv"), "id,amount,note,email\n4,4,x,e@x\n").unwrap();
    let env = [
        ("FERRY_SPECS", specs.to_str().unwrap()),
        ("FERRY_WORK_DIR", "work"),
    ];
    for (file, from) in [("orders-1.csv", "pgcopy"), ("orders-2.csv", "sql")] {
        let out = ferry_aws(&["task", "create-job", "--input", file], s.dir.path(), &env);
        assert!(out.status.success(), "{}", text(&out));
        let mut job = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let v: Value = serde_json::from_str(&job).unwrap();
        assert_eq!(
            (
                v["run"].as_bool(),
                v["status"].as_str(),
                v["workflow"].as_str()
            ),
            (Some(true), Some("running"), Some("loader"))
        );
        for step in [
            "s3-efs-downloader",
            "transform",
            "sql-processor",
            "efs-s3-uploader",
            "notify",
        ] {
            let out = ferry_aws(
                &["task", step, "--job", &job, "--from", from],
                s.dir.path(),
                &env,
            );
            assert!(out.status.success(), "{step}: {}", text(&out));
            job = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let v: Value = serde_json::from_str(&job).unwrap();
            assert_eq!(v["step"].as_str(), Some(step));
            // Each step ends with one JSON summary line naming the job.
            let summary = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| l["message"] == "step finished" && l["step"] == step)
                .unwrap_or_else(|| panic!("no summary line for {step}: {}", text(&out)));
            assert_eq!(summary["job_id"], v["job_id"]);
            for k in ["rows", "bytes", "seconds"] {
                assert!(summary.get(k).is_some(), "{summary}");
            }
        }
        let v: Value = serde_json::from_str(&job).unwrap();
        assert_eq!(v["status"].as_str(), Some("succeeded"), "{job}");
        let shown = ferry_aws(
            &["jobs", "show", v["job_id"].as_str().unwrap(), "--json"],
            s.dir.path(),
            &env,
        );
        let record: Value = serde_json::from_slice(&shown.stdout).unwrap();
        let recorded: Vec<Value> = record["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|st| st["outputs"].get("schema_changes").cloned())
            .collect();
        let ledger: Option<String> =
            s.db.query_one(
                "SELECT schema_changes::text FROM ferry.loads WHERE job_id = $1",
                &[&v["job_id"].as_str().unwrap()],
            )
            .await
            .unwrap()
            .get(0);
        if file == "orders-2.csv" {
            let added =
                serde_json::json!([{"change": "add_column", "column": "email", "type": "text"}]);
            assert_eq!(recorded, vec![added.clone()], "{record}");
            assert_eq!(
                serde_json::from_str::<Value>(&ledger.unwrap()).unwrap(),
                added
            );
        } else {
            assert!(recorded.is_empty(), "{record}");
            assert_eq!(ledger, None);
        }
        // The same input again: a duplicate, nothing runs.
        let again = ferry_aws(&["task", "create-job", "--input", file], s.dir.path(), &env);
        let v2: Value = serde_json::from_slice(&again.stdout).unwrap();
        assert_eq!(
            (
                v2["run"].as_bool(),
                v2["duplicate"].as_bool(),
                v2["job_id"].clone()
            ),
            (Some(false), Some(true), v["job_id"].clone())
        );
    }
    let expected = s.path("expected.csv");
    std::fs::write(
        &expected,
        "id,amount,note,email\n1,1.50,\"a\nb\",\n2,,tab\there,\n3,3,\\N,\n4,4,x,e@x\n",
    )
    .unwrap();
    s.db.batch_execute(&format!(
        "CREATE TABLE {}.expected (LIKE {} )",
        s.schema,
        s.table("orders")
    ))
    .await
    .unwrap();
    let copy = common::psql_cmd(&format!(
        "\\copy {}.expected FROM '{}' (FORMAT csv, HEADER)",
        s.schema,
        expected.display()
    ));
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert_eq!(
        s.diff(&format!("{}.expected", s.schema), &s.table("orders"))
            .await,
        Vec::<String>::new()
    );
    let events = std::fs::read_to_string(s.path("work/events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 2);
    let changes: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["schema_changes"].clone())
        .collect();
    assert_eq!(
        changes,
        vec![
            serde_json::json!([]),
            serde_json::json!([{"change": "add_column", "column": "email", "type": "text"}])
        ]
    );
    // A step out of order is refused with a clear message.
    let list = ferry_aws(&["jobs", "list", "--json"], s.dir.path(), &env);
    let first: Value = serde_json::from_str(
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let wrong = ferry_aws(
        &["task", "convert", "--job", &first.to_string()],
        s.dir.path(),
        &env,
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));

    // A table that changes a value as it stores it: the sql-processor task
    // refuses the receipt the transform task recorded (exit 6, nothing
    // published), naming the column, the row and both values.
    s.db.batch_execute(&format!(
        "CREATE FUNCTION {schema}.nudge() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id = 6 THEN NEW.amount := NEW.amount + 1; END IF; RETURN NEW; END $$;
         CREATE TRIGGER nudge BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {schema}.nudge()",
        schema = s.schema,
        t = s.table("orders")
    ))
    .await
    .unwrap();
    std::fs::write(
        s.path("orders-3.csv"),
        "id,amount,note,email\n5,5,y,\n6,6,z,\n7,7,w,\n",
    )
    .unwrap();
    let out = ferry_aws(
        &["task", "create-job", "--input", "orders-3.csv"],
        s.dir.path(),
        &env,
    );
    let mut job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    for step in ["s3-efs-downloader", "transform"] {
        let out = ferry_aws(&["task", step, "--job", &job], s.dir.path(), &env);
        assert!(out.status.success(), "{step}: {}", text(&out));
        job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    let out = ferry_aws(
        &["task", "sql-processor", "--job", &job],
        s.dir.path(),
        &env,
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out)
            .contains("first at row 2 of the rows loaded: ferry sent 6.00, PostgreSQL stored 7.00"),
        "{}",
        text(&out)
    );
    let held: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("orders")))
        .await;
    assert_eq!(held, 4, "a refused receipt published rows");
}

/// Specs in S3 (`FERRY_SPECS=s3://bucket/prefix`): create-job fetches them,
/// routes, and pins the job's spec in its folder; the later steps need no
/// specs at all (their FERRY_SPECS points nowhere) and read that copy, so a
/// spec changed mid-job does not change the job: here the change is
/// `[target] load_from = "sql"`, which only jobs created after it follow.
#[tokio::test]
async fn specs_from_s3_are_pinned_per_job() {
    let s = Scratch::new("wf_pinned").await;
    let a = aws().await;
    let bucket = unique("ferry-specs");
    a.bucket(&bucket, false).await;
    let toml = ORDERS_SPEC
        .replace("SCHEMA", &s.schema)
        .replace("orders/*.csv", "**/orders-*.csv")
        .replace(
            "header = true\n",
            "header = true\nsample = \"sample.csv\"\n",
        );
    a.put(&bucket, "sql/orders/dataset.toml", toml.as_bytes())
        .await;
    a.put(&bucket, "sql/orders/transform.sql", b"SELECT * FROM source")
        .await;
    a.put(
        &bucket,
        "sql/orders/sample.csv",
        b"id,amount,note\n9,9.99,z\n",
    )
    .await;
    // Beside the spec but not part of it, or not in a dataset folder: not pinned.
    a.put(&bucket, "sql/orders/notes.txt", b"notes").await;
    a.put(&bucket, "sql/README.md", b"notes").await;
    std::fs::write(s.path("orders-1.csv"), "id,amount,note\n1,1.50,a\n").unwrap();
    std::fs::write(s.path("orders-2.csv"), "id,amount,note\n2,2.50,b\n").unwrap();
    let specs = format!("s3://{bucket}/sql");
    let routing = [("FERRY_SPECS", specs.as_str()), ("FERRY_WORK_DIR", "work")];
    // The steps after create-job: specs that do not exist, to show they are not read.
    let steps = [
        ("FERRY_SPECS", "s3://no-such-bucket-anywhere/sql"),
        ("FERRY_WORK_DIR", "work"),
    ];
    let create = |file: &str| {
        let out = ferry_aws(
            &["task", "create-job", "--input", file],
            s.dir.path(),
            &routing,
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let run = |job: String, upto: &[&str]| {
        let mut job = job;
        for step in upto {
            let out = ferry_aws(&["task", step, "--job", &job], s.dir.path(), &steps);
            assert!(out.status.success(), "{step}: {}", text(&out));
            job = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        serde_json::from_str::<Value>(&job).unwrap()
    };
    let first = create("orders-1.csv");
    let v: Value = serde_json::from_str(&first).unwrap();
    let pinned = std::path::PathBuf::from(
        v["outputs"]["spec"]
            .as_str()
            .unwrap_or_else(|| panic!("{first}")),
    );
    assert!(
        pinned.starts_with(s.path("work").join("specs"))
            && v["outputs"]["spec_hash"].as_str() == pinned.file_name().and_then(|n| n.to_str()),
        "{first}"
    );
    assert_eq!(
        std::fs::read_to_string(pinned.join("dataset.toml")).unwrap(),
        toml
    );
    assert!(
        pinned.join("sample.csv").is_file(),
        "the spec's sample is pinned with it"
    );
    assert!(
        !pinned.join("notes.txt").exists(),
        "only the spec's own files are pinned"
    );
    assert_eq!(
        v["outputs"]["spec_hash"].as_str().map(str::len),
        Some(32),
        "{first}"
    );
    // No fetched specs are left behind in the working directory.
    let leftovers: Vec<_> = std::fs::read_dir(s.path("work"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".specs"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let half_pins: Vec<_> = std::fs::read_dir(s.path("work").join("specs"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".pin-"))
        .collect();
    assert!(half_pins.is_empty(), "{half_pins:?}");
    // Mid-job, the spec changes: sql-processor is to replay the .sql files.
    let changed = toml.replace("[target]\n", "[target]\nload_from = \"sql\"\n");
    a.put(&bucket, "sql/orders/dataset.toml", changed.as_bytes())
        .await;
    let done = run(first, &["s3-efs-downloader", "transform", "sql-processor"]);
    assert_eq!(
        done["outputs"]["from"].as_str(),
        Some("pgcopy"),
        "the job kept its spec: {done}"
    );
    // A job created after the change follows it.
    let second = create("orders-2.csv");
    let done = run(second, &["s3-efs-downloader", "transform", "sql-processor"]);
    assert_eq!(done["outputs"]["from"].as_str(), Some("sql"), "{done}");
    let n: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("orders")))
        .await;
    assert_eq!(n, 2);
    // A dataset folder name that could leave the fetch folder is refused.
    a.put(&bucket, "bad/../x/dataset.toml", toml.as_bytes())
        .await;
    let bad_specs = format!("s3://{bucket}/bad");
    let out = ferry_aws(
        &["task", "create-job", "--input", "orders-1.csv"],
        s.dir.path(),
        &[
            ("FERRY_SPECS", bad_specs.as_str()),
            ("FERRY_WORK_DIR", "work"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// `ferry task` answers Step Functions task tokens: success with its output,
/// failure with an error name that says whether a retry can help, and
/// heartbeats while it works.
#[tokio::test]
async fn task_tokens_report_success_failure_and_heartbeats() {
    let s = Scratch::new("wf_token").await;
    let a = aws().await;
    let sfn = aws_sdk_sfn::Client::new(&a.config);
    // Execution of state machines is off in the emulator by default.
    let cfg = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"stepfunctions": {"execute_state_machine": true}}"#,
        ])
        .arg(format!("{}/moto-api/config", endpoint()))
        .output()
        .unwrap();
    assert!(cfg.status.success());
    let (tokens_url, _) = a.queue(&unique("tokens")).await;
    let definition = json!({
        "StartAt": "Step",
        "States": {"Step": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": tokens_url, "MessageBody": {"token.$": "$$.Task.Token", "job.$": "$"}},
            "HeartbeatSeconds": 60,
            "End": true
        }}
    });
    let sm = sfn
        .create_state_machine()
        .name(unique("sm"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/ferry")
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    let start = |name: String| {
        let sfn = sfn.clone();
        let sm = sm.clone();
        async move {
            sfn.start_execution()
                .state_machine_arn(sm)
                .name(name)
                .input("{}")
                .send()
                .await
                .unwrap()
                .execution_arn
        }
    };
    let token_of = |bodies: Vec<String>| -> String {
        let v: Value = serde_json::from_str(&bodies[0]).unwrap();
        v["token"].as_str().unwrap().to_string()
    };
    let finished = |arn: String| {
        let sfn = sfn.clone();
        async move {
            for _ in 0..50 {
                let d = sfn
                    .describe_execution()
                    .execution_arn(&arn)
                    .send()
                    .await
                    .unwrap();
                if d.status != aws_sdk_sfn::types::ExecutionStatus::Running {
                    return d;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("execution {arn} did not finish");
        }
    };
    let specs = orders_spec(&s, "**/*.csv");
    std::fs::write(s.path("t.csv"), "id,amount,note\n1,1,x\n").unwrap();
    let env = [
        ("FERRY_SPECS", specs.to_str().unwrap()),
        ("FERRY_WORK_DIR", "work"),
    ];

    // Success: the task's output becomes the execution's output.
    let ok = start(unique("ok")).await;
    let token = token_of(a.drain(&tokens_url, 1).await);
    let out = ferry_aws(
        &[
            "task",
            "create-job",
            "--input",
            "t.csv",
            "--heartbeat-seconds",
            "1",
        ],
        s.dir.path(),
        &[env[0], env[1], ("FERRY_TASK_TOKEN", &token)],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("heartbeat failed"), "{stderr}");
    let answer = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "answering the task token")
        .unwrap();
    assert!(answer["heartbeats"].as_u64().unwrap() >= 1, "{answer}");
    assert!(
        !stderr.contains(&token) && !String::from_utf8_lossy(&out.stdout).contains(&token),
        "the token is a secret"
    );
    let d = finished(ok).await;
    assert_eq!(d.status, aws_sdk_sfn::types::ExecutionStatus::Succeeded);
    let output: Value = serde_json::from_str(d.output.as_deref().unwrap()).unwrap();
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(output, printed);
    assert_eq!(output["run"], json!(true));

    // Failure that a retry cannot fix: a job that does not exist.
    let bad = start(unique("bad")).await;
    let token = token_of(a.drain(&tokens_url, 1).await);
    let out = ferry_aws(
        &[
            "task",
            "s3-efs-downloader",
            "--job",
            r#"{"job_id": "01a219b7-f0c7-73f7-985c-000000000000"}"#,
            "--task-token",
            &token,
        ],
        s.dir.path(),
        &env,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let d = finished(bad).await;
    assert_eq!(
        (d.status, d.error.as_deref()),
        (
            aws_sdk_sfn::types::ExecutionStatus::Failed,
            Some("ferry.Config")
        )
    );

    // Failure worth retrying: the job store is unreachable.
    let flaky = start(unique("flaky")).await;
    let token = token_of(a.drain(&tokens_url, 1).await);
    let out = ferry_aws(
        &[
            "task",
            "create-job",
            "--input",
            "t.csv",
            "--task-token",
            &token,
            "--job-store",
            "dynamodb://jobs",
        ],
        s.dir.path(),
        &[
            env[0],
            env[1],
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let d = finished(flaky).await;
    assert_eq!(
        (d.status, d.error.as_deref()),
        (
            aws_sdk_sfn::types::ExecutionStatus::Failed,
            Some("ferry.Transient")
        )
    );

    // A token nobody waits for any more: its state timed out for want of a
    // heartbeat (an execution that was stopped is the same to the task). The step stops at once and
    // does not do its work, instead of running on, billing and writing.
    let mut short = definition.clone();
    short["States"]["Step"]["HeartbeatSeconds"] = json!(1);
    let short_sm = sfn
        .create_state_machine()
        .name(unique("sm-timeout"))
        .definition(short.to_string())
        .role_arn("arn:aws:iam::123456789012:role/ferry")
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    let timed_out = sfn
        .start_execution()
        .state_machine_arn(short_sm)
        .name(unique("late"))
        .input("{}")
        .send()
        .await
        .unwrap()
        .execution_arn;
    let token = token_of(a.drain(&tokens_url, 1).await);
    let d = finished(timed_out).await;
    // AWS names it States.HeartbeatTimeout; the emulator, States.Timeout.
    assert_eq!(d.status, aws_sdk_sfn::types::ExecutionStatus::Failed);
    assert!(
        matches!(
            d.error.as_deref(),
            Some("States.HeartbeatTimeout" | "States.Timeout")
        ),
        "{:?}",
        d.error
    );
    std::fs::write(s.path("late.csv"), "id,amount,note\n1,1,x\n").unwrap();
    let started = std::time::Instant::now();
    let out = ferry_aws(
        &["task", "create-job", "--input", "late.csv"],
        s.dir.path(),
        &[env[0], env[1], ("FERRY_TASK_TOKEN", &token)],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("task token is no longer valid"),
        "{}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "the step ran: {}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(20));
    let jobs = ferry_aws(&["jobs", "list", "--json"], s.dir.path(), &[env[1]]);
    assert!(
        String::from_utf8_lossy(&jobs.stdout).contains("t.csv"),
        "{}",
        text(&jobs)
    );
    assert!(
        !String::from_utf8_lossy(&jobs.stdout).contains("late.csv"),
        "a job was created for the stopped execution: {}",
        text(&jobs)
    );
}

/// Object keys that try to leave the job folder are refused (`..`, NUL) or
/// shortened (a very long name), and nothing is written outside it.
#[tokio::test]
async fn object_keys_cannot_escape_the_job_folder() {
    let s = Scratch::new("wf_keys").await;
    let a = aws().await;
    let bucket = unique("keys");
    a.bucket(&bucket, false).await;
    let specs = s.path("specs");
    std::fs::create_dir_all(&specs).unwrap();
    s.spec(
        "specs/any",
        "[source]\nformat = \"csv\"\nheader = true\n[routing]\nkeys = [\"**/*.csv\"]\nworkflow = \"converter\"\n[convert]\nto = \"ndjson\"\n",
        "SELECT * FROM source",
    );
    let event = |key: &str| {
        json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3",
               "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 4, "etag": "e"}}})
        .to_string()
    };
    let env = [
        ("FERRY_SPECS", specs.to_str().unwrap()),
        ("FERRY_WORK_DIR", "deep/work"),
    ];
    std::fs::create_dir_all(s.path("deep/work")).unwrap();
    for key in [
        "in/../../../../escaped.csv",
        "in/a\u{0}b.csv",
        "/etc/passwd.csv",
    ] {
        std::fs::write(s.path("event.json"), event(key)).unwrap();
        let out = ferry_aws(&["run", "--event", "event.json"], s.dir.path(), &env);
        eprintln!("{key:?}: {}", text(&out));
        assert_eq!(out.status.code(), Some(2), "{key:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("s3-efs-downloader") || stderr.contains("ferry failed"),
            "{stderr}"
        );
    }
    for escaped in [
        s.path("escaped.csv"),
        s.path("deep/escaped.csv"),
        "/escaped.csv".into(),
        s.path("deep/work/escaped.csv"),
    ] {
        assert!(!escaped.exists(), "{}", escaped.display());
    }
    let listed = ferry_aws(
        &["jobs", "list", "--status", "failed", "--json"],
        s.dir.path(),
        &env,
    );
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        3,
        "{}",
        text(&listed)
    );

    // An object overwritten after its event is refused (its ETag changed).
    a.put(&bucket, "in/stale.csv", b"a,b\n1,2\n").await;
    std::fs::write(s.path("event.json"), event("in/stale.csv")).unwrap();
    let out = ferry_aws(&["run", "--event", "event.json"], s.dir.path(), &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("changed after the event"),
        "{}",
        text(&out)
    );

    // A 400-byte name is shortened, stays distinct, and lands in the job folder.
    let long = format!("in/{}.csv", "é".repeat(200));
    a.put(&bucket, &long, b"a,b\n1,2\n").await;
    let out = ferry_aws(
        &["run", "--input", &format!("s3://{bucket}/{long}"), "--json"],
        s.dir.path(),
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let job: Job = serde_json::from_slice(&out.stdout).unwrap();
    let staged = job.step("s3-efs-downloader").unwrap().outputs["input_path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        staged.starts_with(&format!("{}/input/", job.dir)),
        "{staged}"
    );
    assert!(
        Path::new(&staged).file_name().unwrap().len() < 200,
        "{staged}"
    );
}

/// `ferry watch` on a folder (files already there, one renamed in, one
/// written in place) and on an S3 prefix; watching again runs nothing.
#[tokio::test]
async fn watch_reacts_to_a_folder_and_to_an_s3_prefix() {
    let s = Scratch::new("wf_watch").await;
    let specs = orders_spec(&s, "**/*.csv");
    let incoming = s.path("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::write(incoming.join("a.csv"), "id,amount,note\n1,1,a\n").unwrap();
    let env = [
        ("FERRY_SPECS", specs.to_str().unwrap()),
        ("FERRY_WORK_DIR", "work"),
    ];
    let spawn = |source: &str| {
        ferry_cmd(
            &["watch", source, "--idle-exit", "2", "--poll", "0.5"],
            s.dir.path(),
            &env,
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    let child = spawn("incoming");
    tokio::time::sleep(Duration::from_millis(700)).await;
    std::fs::write(incoming.join(".b.csv.partial"), "id,amount,note\n2,2,b\n").unwrap();
    std::fs::rename(incoming.join(".b.csv.partial"), incoming.join("b.csv")).unwrap();
    std::fs::write(incoming.join("c.csv"), "id,amount,note\n3,3,c\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("watch: 3 succeeded, 0 failed"),
        "{}",
        text(&out)
    );
    let rows: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("orders")))
        .await;
    assert_eq!(rows, 3);
    let again = spawn("incoming").wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("watch: 0 succeeded, 0 failed, 3 duplicate events"),
        "{}",
        text(&again)
    );

    let a = aws().await;
    let bucket = unique("watch");
    a.bucket(&bucket, false).await;
    a.put(&bucket, "drop/d.csv", b"id,amount,note\n4,4,d\n")
        .await;
    a.put(&bucket, "drop/e.csv", b"id,amount,note\n5,5,e\n")
        .await;
    a.put(&bucket, "other/f.csv", b"id,amount,note\n6,6,f\n")
        .await;
    let out = spawn(&format!("s3://{bucket}/drop/"))
        .wait_with_output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("watch: 2 succeeded, 0 failed, 0 duplicate"),
        "{}",
        text(&out)
    );
    let rows: i64 = s
        .scalar(&format!("SELECT count(*) FROM {}", s.table("orders")))
        .await;
    assert_eq!(rows, 5);
}

/// A burst: 1,000 files, 16 jobs at once, against a server with 20
/// connection slots for ferry's role (a role's CONNECTION LIMIT refuses a
/// connection past it as a full server does: `too_many_connections`), 14 of
/// which another client holds for the first seconds. ferry's cap (10) keeps
/// it under the slots, its connects wait for the held ones, and every file
/// loads exactly once with no job failed.
#[tokio::test]
async fn a_burst_of_files_waits_for_connection_slots_and_loads_each_once() {
    let s = Scratch::new("wf_burst").await;
    let role = unique("burst").replace('-', "_");
    s.db.batch_execute(&format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 20"))
        .await
        .unwrap();
    s.db.batch_execute(&format!("CREATE DATABASE {role} OWNER {role}"))
        .await
        .unwrap();
    // The test server's URL as that role, in its own database.
    let base = database_url();
    let (base, query) = base.split_once('?').unwrap_or((&base, ""));
    let (_, host_db) = base.split_once('@').expect("the test URL has user@host");
    let (host, _) = host_db
        .rsplit_once('/')
        .expect("the test URL names a database");
    let url = format!("postgres://{role}@{host}/{role}?{query}");
    let cfg = ferry_connectors::pg::PgConfig::from_url_or_env(Some(&url)).unwrap();
    let mut held = Vec::new();
    for _ in 0..14 {
        held.push(cfg.connect().await.unwrap());
    }
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(held);
    });

    let specs = s.path("specs");
    s.spec(
        "specs/burst",
        "[source]\nformat = \"csv\"\nheader = true\n[routing]\nkeys = [\"**/*.csv\"]\n[target]\ntable = \"public.burst\"\n",
        "SELECT * FROM source",
    );
    let incoming = s.path("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    for k in 0..1000 {
        let mut csv = String::from("id,v\n");
        for i in 0..10 {
            csv.push_str(&format!("{},file {k}\n", k * 10 + i));
        }
        std::fs::write(incoming.join(format!("f{k:04}.csv")), csv).unwrap();
    }
    let args: Vec<String> = [
        "watch",
        "incoming",
        "--once",
        "--concurrency",
        "16",
        "--max-connections",
        "10",
        "--database-url",
        &url,
        "--specs",
        specs.to_str().unwrap(),
        "--work-dir",
        "work",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let dir = s.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ferry_cmd(&args, &dir, &[]).output().unwrap()
    })
    .await
    .unwrap();
    release.await.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("watch: 1000 succeeded, 0 failed, 0 duplicate events"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no connection slot free; waiting"),
        "the held slots were never waited for: {}",
        text(&out)
    );
    let db = cfg.connect().await.unwrap();
    let counts = db
        .query_one(
            "SELECT (SELECT count(*) FROM public.burst), (SELECT count(DISTINCT id) FROM public.burst), (SELECT count(*) FROM ferry.loads)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            counts.get::<_, i64>(0),
            counts.get::<_, i64>(1),
            counts.get::<_, i64>(2)
        ),
        (10_000, 10_000, 1000)
    );
    drop(db);
    s.db.batch_execute(&format!("DROP DATABASE {role} WITH (FORCE)"))
        .await
        .unwrap();
    s.db.batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
}

/// The split Loader meets an NDJSON field first seen past the inference
/// window: the transform task infers the whole file and encodes again (the
/// first attempt's artifacts cleared), so sql-processor adds the column and
/// loads every row; the job record says so.
#[tokio::test]
async fn a_field_past_the_inference_window_becomes_a_column_in_split_tasks() {
    let s = Scratch::new("wf_late_field").await;
    let specs = s.path("specs");
    s.spec(
        "specs/events",
        &format!(
            "[source]\nformat = \"ndjson\"\ninfer_rows = 2\n[routing]\nkeys = [\"**/events-*.ndjson\"]\n[target]\ntable = \"{}\"\n",
            s.table("events")
        ),
        "SELECT * FROM source",
    );
    std::fs::write(
        s.path("events-1.ndjson"),
        "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3, \"coupon\": \"C3\"}\n",
    )
    .unwrap();
    let env = [
        ("FERRY_SPECS", specs.to_str().unwrap()),
        ("FERRY_WORK_DIR", "work"),
    ];
    let out = ferry_aws(
        &["task", "create-job", "--input", "events-1.ndjson"],
        s.dir.path(),
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    for step in ["s3-efs-downloader", "transform", "sql-processor"] {
        let out = ferry_aws(&["task", step, "--job", &job], s.dir.path(), &env);
        assert!(out.status.success(), "{step}: {}", text(&out));
        job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    let got: String = s
        .scalar(&format!(
            "SELECT string_agg(id || ':' || coalesce(coupon, '-'), ',' ORDER BY id) FROM {}",
            s.table("events")
        ))
        .await;
    assert_eq!(got, "1:-,2:-,3:C3");
    let v: Value = serde_json::from_str(&job).unwrap();
    assert_eq!(v["rows"], 3, "{job}");
}
