//! One behavioural suite for every job store: SQLite (a temp file) and
//! DynamoDB (the local AWS emulator `scripts/test` starts; the real SDK).

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use ferry_connectors::aws::emulator_config;
use ferry_connectors::jobs::dynamodb::DynamoJobStore;
use ferry_connectors::jobs::sqlite::SqliteJobStore;
use ferry_connectors::jobs::{
    self, Created, JobError, JobInput, JobStatus, JobStore, JobStoreError, Workflow, claim, finish,
    idempotency_key, new_job, step_finished, step_started, touch,
};

/// A lease no step of this test outlives.
const LEASE: Duration = Duration::from_secs(60);

fn input(key: &str, etag: &str) -> JobInput {
    JobInput {
        uri: format!("s3://in/{key}"),
        size: Some(10),
        etag: Some(format!("\"{etag}\"")),
        version: Some("null".into()),
    }
}

fn job(key: &str, etag: &str) -> jobs::Job {
    let i = input(key, etag);
    let k = idempotency_key(&i, None);
    new_job(
        i,
        k,
        Some("orders".into()),
        Some(Workflow::Loader),
        "/work/x".into(),
        uuid::Uuid::now_v7().to_string(),
    )
}

/// Creates each `(key, creators)` object's job from `creators` concurrent
/// tasks, all objects at once, and asserts one job (one `New`) per object;
/// returns each object's job id.
async fn create_racing(store: &Arc<dyn JobStore>, objects: &[(&str, usize)]) -> Vec<String> {
    let mut handles = Vec::new();
    for (key, creators) in objects {
        for _ in 0..*creators {
            let s = store.clone();
            let j = job(key, "e1");
            handles.push((
                key.to_string(),
                tokio::spawn(async move { s.create(&j).await.unwrap() }),
            ));
        }
    }
    let mut seen: std::collections::BTreeMap<String, (usize, std::collections::BTreeSet<String>)> =
        Default::default();
    for (key, h) in handles {
        let c = h.await.unwrap();
        let (new, ids) = seen.entry(key).or_default();
        ids.insert(c.job().job_id.clone());
        *new += usize::from(matches!(c, Created::New(_)));
    }
    objects
        .iter()
        .map(|(key, _)| {
            let (new, ids) = &seen[*key];
            assert_eq!(
                (*new, ids.len()),
                (1, 1),
                "one job per object version: {key}"
            );
            ids.first().unwrap().clone()
        })
        .collect()
}

/// Many creation races at once (after [`suite`], whose listings count its
/// own jobs): a store whose writes are not atomic between requests lets two
/// creators of one object both win now and then. The emulator did, in 2 of
/// 200 three-way races, until `scripts/moto_server.py` serialized its
/// DynamoDB operations.
async fn races(store: Arc<dyn JobStore>) {
    let keys: Vec<String> = (0..80).map(|i| format!("race-{i}.csv")).collect();
    let objects: Vec<(&str, usize)> = keys.iter().map(|k| (k.as_str(), 3)).collect();
    create_racing(&store, &objects).await;
}

async fn suite(store: Arc<dyn JobStore>) {
    // Create once: the same object (same ETag) gives the same job, even
    // from 12 concurrent creators.
    let first = job("a.csv", "e1");
    assert_eq!(first.idempotency_key, "s3://in/a.csv#etag=e1");
    let id = create_racing(&store, &[("a.csv", 12)]).await.remove(0);
    assert!(matches!(store.create(&first).await.unwrap(), Created::Existing(j) if j.job_id == id));
    // A new version of the object is a new job.
    let other = store.create(&job("a.csv", "e2")).await.unwrap();
    assert!(matches!(other, Created::New(_)));

    // Claim: of 8 concurrent workers exactly one wins.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        let id = id.clone();
        handles.push(tokio::spawn(
            async move { claim(s.as_ref(), &id, LEASE).await },
        ));
    }
    let mut won = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(j) => {
                won += 1;
                assert_eq!((j.status, j.attempts), (JobStatus::Running, 1));
            }
            Err(JobStoreError::Refused { status, .. }) => assert_eq!(status, "running"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);

    // The lease: a renewed job stays with its worker; one whose worker stopped
    // renewing it goes to the next claim — to exactly one of 8.
    let short = Duration::from_secs(1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    touch(store.as_ref(), &id).await.unwrap();
    assert!(matches!(
        claim(store.as_ref(), &id, short).await,
        Err(JobStoreError::Refused {
            status: "running",
            ..
        })
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        let id = id.clone();
        handles.push(tokio::spawn(
            async move { claim(s.as_ref(), &id, short).await },
        ));
    }
    let mut took_over = Vec::new();
    for h in handles {
        if let Ok(j) = h.await.unwrap() {
            took_over.push(j.attempts);
        }
    }
    assert_eq!(
        took_over,
        vec![2],
        "exactly one worker takes a stale job over"
    );

    // Steps are recorded with their figures.
    step_started(store.as_ref(), &id, "s3-efs-downloader")
        .await
        .unwrap();
    let mut rec = store.get(&id).await.unwrap().unwrap().steps[0].clone();
    rec.finished_at = Some(jobs::now());
    rec.seconds = Some(0.25);
    rec.bytes = Some(10);
    rec.outputs
        .insert("path".into(), serde_json::json!("/work/x/input/a.csv"));
    step_finished(store.as_ref(), &id, &rec).await.unwrap();
    step_started(store.as_ref(), &id, "transform")
        .await
        .unwrap();
    let j = store.get(&id).await.unwrap().unwrap();
    assert_eq!(j.steps.len(), 2);
    assert_eq!(j.step("s3-efs-downloader").unwrap().bytes, Some(10));
    assert!(j.step("transform").unwrap().finished_at.is_none());

    // Fail, then a new event re-runs it (attempt 3); success is final.
    let err = JobError {
        step: "transform".into(),
        name: "ferry.Input".into(),
        retryable: false,
        message: "a.csv:3: column 2: not a number: \"x\"".into(),
    };
    let failed = finish(store.as_ref(), &id, Some(err.clone()), None)
        .await
        .unwrap();
    assert_eq!(
        (failed.status, failed.error.as_ref()),
        (JobStatus::Failed, Some(&err))
    );
    assert_eq!(
        store.list(Some(JobStatus::Failed), 10).await.unwrap().len(),
        1
    );
    let again = claim(store.as_ref(), &id, LEASE).await.unwrap();
    assert_eq!((again.attempts, again.error.is_none()), (3, true));
    step_started(store.as_ref(), &id, "transform")
        .await
        .unwrap();
    let done = finish(store.as_ref(), &id, None, Some(3)).await.unwrap();
    assert_eq!((done.status, done.rows), (JobStatus::Succeeded, Some(3)));
    assert_eq!(done.steps.iter().filter(|s| s.attempt == 3).count(), 1);
    // Finishing twice the same way is a no-op; claiming a succeeded job is refused.
    finish(store.as_ref(), &id, None, None).await.unwrap();
    assert!(matches!(
        claim(store.as_ref(), &id, LEASE).await,
        Err(JobStoreError::Refused {
            status: "succeeded",
            ..
        })
    ));
    assert!(step_started(store.as_ref(), &id, "x").await.is_err());

    // Listing: by status, newest first.
    let all = store.list(None, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].created_at >= all[1].created_at);
    let pending = store.list(Some(JobStatus::Pending), 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].job_id, other.job().job_id);
    assert_eq!(
        store.list(Some(JobStatus::Succeeded), 10).await.unwrap()[0].job_id,
        id
    );
    assert_eq!(store.list(None, 1).await.unwrap().len(), 1);
    assert!(
        store
            .get("0190f3c2-7b1e-7c3a-9f00-000000000000")
            .await
            .unwrap()
            .is_none()
    );

    // A writer that read before another write cannot overwrite it.
    let mut stale = store.get(&id).await.unwrap().unwrap();
    finish(store.as_ref(), &id, None, None).await.unwrap();
    stale.version += 1;
    stale.rows = Some(999);
    assert!(!store.replace(&stale).await.unwrap());
    assert_eq!(store.get(&id).await.unwrap().unwrap().rows, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteJobStore::open(&tmp.path().join("jobs.db")).unwrap());
    suite(store.clone()).await;
    races(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store() {
    let endpoint = common::endpoint();
    let config = emulator_config(&endpoint).await;
    let table = format!("ferry-jobs-test-{}", uuid::Uuid::now_v7().simple());
    let store = DynamoJobStore::with_config(&config, &table);
    store.create_table().await.unwrap();
    store.create_table().await.unwrap(); // exists: fine
    let store = Arc::new(store);
    suite(store.clone()).await;
    races(store).await;
}

/// DynamoDB throttling (ProvisionedThroughputExceededException on this
/// table's writes): the SDK's retries absorb two in a row; a throttle that
/// lasts is reported as a retryable error, so the job fails as transient.
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_throttling_is_retried_then_reported_as_retryable() {
    let endpoint = common::endpoint();
    let config = emulator_config(&endpoint).await;
    let table = format!("ferry-jobs-throttle-{}", uuid::Uuid::now_v7().simple());
    let store = DynamoJobStore::with_config(&config, &table);
    store.create_table().await.unwrap();
    let throttle = |count: u32| {
        format!(
            r#"[{{"target":"DynamoDB_20120810.TransactWriteItems","body":"{table}","status":400,"code":"ProvisionedThroughputExceededException","count":{count}}}]"#
        )
    };
    common::faults(&endpoint, &throttle(2)).await;
    let created = store.create(&job("throttled.csv", "e1")).await;
    let hits = common::faults(&endpoint, "").await[0]["hits"].as_u64();
    assert!(matches!(created, Ok(Created::New(_))), "{created:?}");
    assert_eq!(hits, Some(2), "two throttled writes, then the third passed");

    common::faults(&endpoint, &throttle(1000)).await;
    let refused = store.create(&job("throttled.csv", "e2")).await;
    let hits = common::faults(&endpoint, "").await[0]["hits"]
        .as_u64()
        .unwrap_or(0);
    common::faults(&endpoint, "[]").await;
    let e = refused.expect_err("a lasting throttle fails");
    assert!(e.retryable(), "{e}");
    assert!(
        e.to_string().contains("ProvisionedThroughputExceeded"),
        "{e}"
    );
    assert!(hits >= 3, "retried before giving up ({hits} attempts)");
}

/// Two processes on one SQLite file: each tries its updates on the copy it
/// last wrote, and a copy the other process made stale costs a re-read,
/// never a lost write or a refusal decided on old data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_of_a_job_is_never_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("jobs.db");
    let a = SqliteJobStore::open(&path).unwrap();
    let b = SqliteJobStore::open(&path).unwrap();
    let j = job("stale.csv", "e1");
    let id = j.job_id.clone();
    a.create(&j).await.unwrap();
    // A remembers the job pending; B claims it. A's step must see it running.
    assert_eq!(a.hint(&id).unwrap().status, JobStatus::Pending);
    claim(&b, &id, LEASE).await.unwrap();
    let started = step_started(&a, &id, "transform").await.unwrap();
    assert_eq!(started.status, JobStatus::Running);
    // B records a step A has not seen; A's next write keeps it.
    step_started(&b, &id, "download").await.unwrap();
    step_started(&a, &id, "upload").await.unwrap();
    let stored = b.get(&id).await.unwrap().unwrap();
    let steps: Vec<&str> = stored.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, ["transform", "download", "upload"]);
    assert_eq!(a.hint(&id).unwrap(), stored, "A remembers what it wrote");
}
