//! Jobs: one record per input object, created once however often its event
//! is delivered, moved through its states by whichever worker claims it, with
//! a record per step.
//!
//! Two stores implement [`JobStore`]: SQLite (the default, a file under the
//! working directory) and DynamoDB (the jobs table of the AWS deployment).
//! A store only knows two writes — create-if-absent on the idempotency key,
//! and replace-if-version-unchanged — and every state transition is built on
//! them here, once, so both stores behave the same and one test suite proves
//! it for both.

pub mod dynamodb;
pub mod sqlite;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The workflow a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workflow {
    /// Transform and load into PostgreSQL.
    #[default]
    Loader,
    /// Convert to another format and validate by reconversion.
    Converter,
}

impl std::fmt::Display for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Workflow::Loader => "loader",
            Workflow::Converter => "converter",
        })
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Created, not yet claimed by a worker.
    Pending,
    /// A worker claimed it; its steps are running.
    Running,
    /// Every step finished.
    Succeeded,
    /// A step failed (see [`Job::error`]); a new event for the same object
    /// may run it again.
    Failed,
    /// It succeeded, then `ferry jobs undo` removed the rows it loaded. The
    /// input loads again through a new job (`ferry load`, or a new version
    /// of the object); a re-delivered event of this one does nothing.
    Undone,
}

impl JobStatus {
    /// The lowercase name used in stores and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Undone => "undone",
        }
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(JobStatus::Pending),
            "running" => Ok(JobStatus::Running),
            "succeeded" => Ok(JobStatus::Succeeded),
            "failed" => Ok(JobStatus::Failed),
            "undone" => Ok(JobStatus::Undone),
            other => Err(format!(
                "unknown status {other:?} (pending, running, succeeded, failed)"
            )),
        }
    }
}

/// Why a job failed, in the form Step Functions' Retry/Catch and people both
/// need: which step, an error name that says whether a retry can help, and
/// the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    /// The step that failed.
    pub step: String,
    /// `ferry.Transient` (retrying may help) or `ferry.Input`, `ferry.Config`,
    /// `ferry.Target`, `ferry.Internal`, `ferry.Invalid` (it will not).
    pub name: String,
    /// Whether retrying may help.
    pub retryable: bool,
    /// What went wrong, naming file, line, column and value where known.
    pub message: String,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name as in the architecture (`s3-efs-downloader`, `transform`, …).
    pub step: String,
    /// Attempt of the job this record belongs to (1 for the first run).
    pub attempt: u32,
    /// RFC 3339 start time.
    pub started_at: String,
    /// RFC 3339 end time, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Wall-clock seconds, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Rows the step handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Bytes the step read or wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The failure, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// What it produced (paths, URIs, counts) for the next step and for people.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_json::Value>,
}

/// The input object a job was created for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInput {
    /// `s3://bucket/key` or a local path.
    pub uri: String,
    /// Size the event or listing reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// ETag the event reported (the downloader checks the object still has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Version id, in versioned buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Which command ran a one-off job (see [`Job::origin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `ferry load`.
    Load,
    /// `ferry convert`.
    Convert,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Load => "load",
            Origin::Convert => "convert",
        })
    }
}

/// One job: an input object and everything done with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// UUIDv7: sorts by creation time.
    pub job_id: String,
    /// Unique per object version: bucket/key + version id, or + ETag when
    /// the bucket is not versioned (see [`idempotency_key`]).
    pub idempotency_key: String,
    /// The input object.
    pub input: JobInput,
    /// The dataset it was routed to (`None` when routing failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The workflow (`None` when routing failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Workflow>,
    /// The command that ran the job by hand (`ferry load`, `ferry convert`);
    /// `None` for a job an object's event (or `ferry run`/`watch`) started.
    /// A one-off job's folder is what its user asked for (the artifacts, the
    /// output's reports), so it is kept for the retention period instead of
    /// removed when the job succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Where it is.
    pub status: JobStatus,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339: when the running worker's lease ends whatever it renews,
    /// set by a worker with a hard deadline (a Lambda invocation ends at its
    /// timeout, killed mid-step). Another worker may take the job over from
    /// then on, whatever its own lease setting: the ECS path takes over a
    /// job its Lambda could not finish without waiting out a 15-minute lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<String>,
    /// Its folder on working storage: `<work>/<job_id>/<ddmmyyyyhhmmss>`.
    pub dir: String,
    /// Runs started (a failed job re-run by a new event counts again).
    pub attempts: u32,
    /// Steps of every attempt, in order.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// Rows of the workflow's main step (loaded or converted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Optimistic-concurrency version: every write increments it, and a
    /// write whose expected version is stale is refused.
    pub version: u64,
}

impl Job {
    /// The latest record of `step` in the current attempt.
    pub fn step(&self, step: &str) -> Option<&StepRecord> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.step == step && s.attempt == self.attempts)
    }
}

/// The idempotency key for an object: one job per object version. Versioned
/// buckets give a version id; otherwise the ETag names the content (S3's
/// `"null"` version is ignored). Local files use their path, size and
/// modification time.
pub fn idempotency_key(input: &JobInput, mtime_ns: Option<i128>) -> String {
    let version = input
        .version
        .as_deref()
        .filter(|v| !v.is_empty() && *v != "null");
    match (version, input.etag.as_deref(), mtime_ns) {
        (Some(v), _, _) => format!("{}#version={v}", input.uri),
        (None, Some(e), _) => format!("{}#etag={}", input.uri, e.trim_matches('"')),
        (None, None, Some(t)) => {
            format!("{}#size={}&mtime={t}", input.uri, input.size.unwrap_or(0))
        }
        (None, None, None) => input.uri.clone(),
    }
}

/// The name the ledger (`ferry.loads`) records an input under: an S3
/// object by its version, else its ETag (an overwritten key is a new
/// input); a local file by its absolute path. One function, so an object
/// loads once whether `ferry load`, `ferry run` or the state machines load
/// it.
pub fn ledger_identity(input: &JobInput) -> String {
    if input.uri.starts_with("s3://") {
        idempotency_key(input, None)
    } else {
        input.uri.clone()
    }
}

/// Now, as RFC 3339 with milliseconds (sorts as text).
pub fn now() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// A job-store failure.
#[derive(Debug, thiserror::Error)]
pub enum JobStoreError {
    /// SQLite failed.
    #[error("job store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The error.
        #[source]
        source: rusqlite::Error,
    },
    /// DynamoDB failed.
    #[error("job store: {0}")]
    Aws(#[from] crate::aws::AwsError),
    /// A stored record does not parse.
    #[error("job store: job {job_id} is unreadable: {detail}")]
    Corrupt {
        /// The job.
        job_id: String,
        /// Why.
        detail: String,
    },
    /// The store URL is wrong.
    #[error("job store {url:?}: {detail}")]
    Config {
        /// As given.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// No such job.
    #[error("no job {0}")]
    NotFound(String),
    /// The transition is not allowed from the job's current state.
    #[error("job {job_id} is {status}: {detail}")]
    Refused {
        /// The job.
        job_id: String,
        /// Its status.
        status: &'static str,
        /// Why the transition was refused.
        detail: String,
    },
    /// Other writers kept changing the job.
    #[error("job {0}: too many concurrent updates")]
    Contended(String),
}

impl JobStoreError {
    /// Whether trying again may help.
    pub fn retryable(&self) -> bool {
        match self {
            JobStoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            JobStoreError::Aws(e) => e.retryable,
            JobStoreError::Contended(_) => true,
            _ => false,
        }
    }
}

/// The outcome of [`JobStore::create`].
#[derive(Debug, Clone)]
pub enum Created {
    /// The job is new.
    New(Job),
    /// A job with the same idempotency key exists; here it is.
    Existing(Job),
}

impl Created {
    /// The job, new or existing.
    pub fn job(&self) -> &Job {
        match self {
            Created::New(j) | Created::Existing(j) => j,
        }
    }
}

/// Where jobs are kept. Implementations need only these atomic primitives;
/// the state machine on top lives in this module.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync {
    /// Stores `job` unless a job with the same idempotency key exists
    /// (atomically: of two concurrent creates, exactly one is `New`).
    async fn create(&self, job: &Job) -> Result<Created, JobStoreError>;
    /// Reads a job (strongly consistent).
    async fn get(&self, job_id: &str) -> Result<Option<Job>, JobStoreError>;
    /// Replaces the stored job with `job` if its stored version is still
    /// `job.version - 1`; returns `false` (and writes nothing) otherwise.
    async fn replace(&self, job: &Job) -> Result<bool, JobStoreError>;
    /// Jobs, newest first, optionally with one status.
    async fn list(
        &self,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>, JobStoreError>;
    /// Where the store is, for messages (no secrets).
    fn describe(&self) -> String;
    /// The job as this process last read or wrote it, if the store keeps
    /// that: [`update`] tries its change on it first and reads the store
    /// only when the conditional write says someone else wrote since. Never
    /// trusted beyond that write, so a stale copy costs a retry, not a lost
    /// update.
    fn hint(&self, _job_id: &str) -> Option<Job> {
        None
    }
}

/// Opens a store by URL: `sqlite://path` (or a plain path) or
/// `dynamodb://table`; `None` means the default SQLite file
/// `<work_dir>/jobs.db`.
pub async fn open(url: Option<&str>, work_dir: &Path) -> Result<Arc<dyn JobStore>, JobStoreError> {
    match url {
        None | Some("") => Ok(Arc::new(sqlite::SqliteJobStore::open(
            &work_dir.join("jobs.db"),
        )?)),
        Some(u) => {
            if let Some(table) = u.strip_prefix("dynamodb://") {
                if table.is_empty() || table.contains('/') {
                    return Err(JobStoreError::Config {
                        url: u.to_string(),
                        detail: "expected dynamodb://<table-name>".into(),
                    });
                }
                return Ok(Arc::new(dynamodb::DynamoJobStore::new(table).await));
            }
            let path = u.strip_prefix("sqlite://").unwrap_or(u);
            if path.contains("://") {
                return Err(JobStoreError::Config {
                    url: u.to_string(),
                    detail: "use sqlite://<path> or dynamodb://<table>".into(),
                });
            }
            Ok(Arc::new(sqlite::SqliteJobStore::open(Path::new(path))?))
        }
    }
}

/// A new pending job record.
pub fn new_job(
    input: JobInput,
    idempotency_key: String,
    dataset: Option<String>,
    workflow: Option<Workflow>,
    dir: String,
    job_id: String,
) -> Job {
    let t = now();
    Job {
        job_id,
        idempotency_key,
        input,
        dataset,
        workflow,
        origin: None,
        status: JobStatus::Pending,
        created_at: t.clone(),
        updated_at: t,
        lease_until: None,
        dir,
        attempts: 0,
        steps: Vec::new(),
        error: None,
        rows: None,
        version: 1,
    }
}

/// Applies `change` to the stored job and writes it back, re-reading and
/// re-applying when another writer got there first. `change` may refuse.
pub async fn update<F>(
    store: &dyn JobStore,
    job_id: &str,
    mut change: F,
) -> Result<Job, JobStoreError>
where
    F: FnMut(&mut Job) -> Result<(), JobStoreError> + Send,
{
    for attempt in 0..16u32 {
        // First on the copy this process last wrote (a small job makes
        // about a dozen updates, each otherwise a read of the whole record
        // first); the write is conditional on its version either way.
        let (mut job, hinted) = match store.hint(job_id).filter(|_| attempt == 0) {
            Some(job) => (job, true),
            None => (
                store
                    .get(job_id)
                    .await?
                    .ok_or_else(|| JobStoreError::NotFound(job_id.to_string()))?,
                false,
            ),
        };
        match change(&mut job) {
            Ok(()) => {}
            // A refusal is decided on the stored job, never on the copy.
            Err(_) if hinted => continue,
            Err(e) => return Err(e),
        }
        job.version += 1;
        job.updated_at = now();
        if store.replace(&job).await? {
            return Ok(job);
        }
        if !hinted {
            tokio::time::sleep(std::time::Duration::from_millis(5 << attempt.min(6))).await;
        }
    }
    Err(JobStoreError::Contended(job_id.to_string()))
}

fn refused(job: &Job, detail: &str) -> JobStoreError {
    JobStoreError::Refused {
        job_id: job.job_id.clone(),
        status: job.status.as_str(),
        detail: detail.to_string(),
    }
}

/// Whether a running job's worker has stopped writing to it for longer than
/// `lease`: it was killed (SIGKILL, a lost container, a reboot) and will never
/// finish the job. Workers refresh `updated_at` while a step runs
/// ([`touch`]), so a live worker's job is never stale. A job whose worker
/// had a hard deadline ([`Job::lease_until`]) is stale once that has passed.
pub fn is_stale(job: &Job, lease: std::time::Duration) -> bool {
    job.status == JobStatus::Running && lease_ran_out(job, lease)
}

/// Whether a succeeded job's event may never have been sent: its worker
/// recorded the success, then stopped (killed, its host gone) before the
/// notify step of that attempt was recorded done, and has not touched the
/// record for a lease. A duplicate delivery of its input sends the event
/// then, so a crash in that moment delays the event instead of losing it
/// (at least once: a consumer tells repeats apart by `job_id`).
pub fn event_unsent(job: &Job, lease: std::time::Duration) -> bool {
    job.status == JobStatus::Succeeded
        && job
            .step("notify")
            .is_none_or(|s| s.finished_at.is_none() || s.error.is_some())
        && lease_ran_out(job, lease)
}

/// Whether the job's worker is past its lease: past its deadline when it
/// recorded one, else idle (no write to the record) for longer than `lease`.
fn lease_ran_out(job: &Job, lease: std::time::Duration) -> bool {
    let now = chrono::Utc::now();
    if let Some(until) = job
        .lease_until
        .as_deref()
        .and_then(|u| chrono::DateTime::parse_from_rfc3339(u).ok())
    {
        return now > until;
    }
    chrono::DateTime::parse_from_rfc3339(&job.updated_at).is_ok_and(|t| {
        let idle = now.signed_duration_since(t);
        idle.to_std().is_ok_and(|idle| idle > lease)
    })
}

/// `at` as the job store writes times (RFC 3339, milliseconds, UTC).
pub fn rfc3339(at: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Records that `ferry jobs undo` removed a succeeded job's rows: the job
/// becomes `undone`, with an `undo` step saying what went.
pub async fn mark_undone(
    store: &dyn JobStore,
    job_id: &str,
    outputs: BTreeMap<String, serde_json::Value>,
    rows: u64,
) -> Result<Job, JobStoreError> {
    let at = now();
    update(store, job_id, |job| {
        match job.status {
            JobStatus::Succeeded => {}
            _ => return Err(refused(job, "only a succeeded job can become undone")),
        }
        job.status = JobStatus::Undone;
        job.steps.push(StepRecord {
            step: "undo".into(),
            attempt: job.attempts,
            started_at: at.clone(),
            finished_at: Some(at.clone()),
            seconds: Some(0.0),
            rows: Some(rows),
            bytes: None,
            error: None,
            outputs: outputs.clone(),
        });
        Ok(())
    })
    .await
}

/// Claims a job for this worker: `pending` (or `failed`, for a re-run, or
/// `running` with a lease that ran out: see [`is_stale`]) → `running`, as one
/// conditional write, so of two workers exactly one wins. A live running or
/// a succeeded job is refused.
pub async fn claim(
    store: &dyn JobStore,
    job_id: &str,
    lease: std::time::Duration,
) -> Result<Job, JobStoreError> {
    claim_until(store, job_id, lease, None).await
}

/// [`claim`] by a worker that cannot outlive `until` (a Lambda invocation's
/// deadline): the job records it as [`Job::lease_until`]. `None` clears a
/// previous worker's deadline.
pub async fn claim_until(
    store: &dyn JobStore,
    job_id: &str,
    lease: std::time::Duration,
    until: Option<std::time::SystemTime>,
) -> Result<Job, JobStoreError> {
    let until = until.map(rfc3339);
    update(store, job_id, |job| match job.status {
        JobStatus::Pending | JobStatus::Failed => {
            job.status = JobStatus::Running;
            job.attempts += 1;
            job.error = None;
            job.lease_until = until.clone();
            Ok(())
        }
        JobStatus::Running if is_stale(job, lease) => {
            job.attempts += 1;
            job.error = None;
            job.lease_until = until.clone();
            Ok(())
        }
        JobStatus::Running => Err(refused(job, "another worker is running it")),
        JobStatus::Succeeded => Err(refused(job, "it already succeeded")),
        JobStatus::Undone => Err(refused(job, "it succeeded and was undone")),
    })
    .await
}

/// Renews a running job's lease (its `updated_at`), which the worker does
/// while a step runs.
pub async fn touch(store: &dyn JobStore, job_id: &str) -> Result<Job, JobStoreError> {
    update(store, job_id, |job| {
        if job.status != JobStatus::Running {
            return Err(refused(job, "only a running job has a lease"));
        }
        Ok(())
    })
    .await
}

/// Records that `step` started (the job must be running).
pub async fn step_started(
    store: &dyn JobStore,
    job_id: &str,
    step: &str,
) -> Result<Job, JobStoreError> {
    update(store, job_id, |job| {
        if job.status != JobStatus::Running {
            return Err(refused(job, &format!("step {step} needs a running job")));
        }
        let record = StepRecord {
            step: step.to_string(),
            attempt: job.attempts,
            started_at: now(),
            finished_at: None,
            seconds: None,
            rows: None,
            bytes: None,
            error: None,
            outputs: BTreeMap::new(),
        };
        // A retried step (Step Functions Retry) replaces its unfinished record.
        if let Some(last) = job.steps.last()
            && last.step == step
            && last.attempt == job.attempts
        {
            job.steps.pop();
        }
        job.steps.push(record);
        Ok(())
    })
    .await
}

/// Records how `step` ended: its figures, outputs or error. The record
/// belongs to the job's current attempt (its `attempt` is set here, from the
/// same read the write is conditional on).
pub async fn step_finished(
    store: &dyn JobStore,
    job_id: &str,
    finished: &StepRecord,
) -> Result<Job, JobStoreError> {
    update(store, job_id, |job| {
        let record = StepRecord {
            attempt: job.attempts,
            ..finished.clone()
        };
        match job
            .steps
            .iter_mut()
            .rev()
            .find(|s| s.step == record.step && s.attempt == record.attempt)
        {
            Some(s) => *s = record,
            None => job.steps.push(record),
        }
        Ok(())
    })
    .await
}

/// Ends a running job: `succeeded`, or `failed` with its error. Ending a job
/// that already ended the same way is a no-op (a re-delivered final task).
pub async fn finish(
    store: &dyn JobStore,
    job_id: &str,
    error: Option<JobError>,
    rows: Option<u64>,
) -> Result<Job, JobStoreError> {
    update(store, job_id, |job| {
        let to = if error.is_some() {
            JobStatus::Failed
        } else {
            JobStatus::Succeeded
        };
        match job.status {
            JobStatus::Running => {}
            s if s == to => {}
            JobStatus::Pending if error.is_some() => {}
            _ => return Err(refused(job, &format!("it cannot become {}", to.as_str()))),
        }
        job.status = to;
        job.error = error.clone();
        if rows.is_some() {
            job.rows = rows;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_identity_names_objects_by_version_then_etag_and_files_by_path() {
        let input = |uri: &str, etag: Option<&str>, version: Option<&str>| JobInput {
            uri: uri.into(),
            size: Some(3),
            etag: etag.map(Into::into),
            version: version.map(Into::into),
        };
        assert_eq!(
            ledger_identity(&input("s3://b/k.csv", Some("\"e1\""), Some("v1"))),
            "s3://b/k.csv#version=v1"
        );
        assert_eq!(
            ledger_identity(&input("s3://b/k.csv", Some("\"e1\""), Some("null"))),
            "s3://b/k.csv#etag=e1"
        );
        assert_eq!(
            ledger_identity(&input("s3://b/k.csv", None, None)),
            "s3://b/k.csv"
        );
        assert_eq!(
            ledger_identity(&input("/data/k.csv", Some("x"), None)),
            "/data/k.csv"
        );
    }
}
