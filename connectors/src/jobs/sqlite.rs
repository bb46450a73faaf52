//! The default job store: one SQLite file (WAL mode, so `ferry jobs list`
//! reads while a worker writes; a busy timeout, so several local workers can
//! share it). Each job is a JSON document beside the columns the conditions
//! and the status listing need.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::{Created, Job, JobStatus, JobStore, JobStoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    job_id          TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    version         INTEGER NOT NULL,
    doc             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
";

/// Jobs in a SQLite file.
pub struct SqliteJobStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// Jobs as this process last read or wrote them ([`JobStore::hint`]).
    recent: Arc<Mutex<HashMap<String, Job>>>,
}

/// Jobs [`SqliteJobStore`] remembers at most: far more than run at once.
const RECENT: usize = 256;

/// Remembers `job` as stored (dropping all when full: the next update of
/// each reads the store once).
fn remember(recent: &Mutex<HashMap<String, Job>>, job: Job) {
    let mut recent = recent.lock().unwrap_or_else(|p| p.into_inner());
    if recent.len() >= RECENT && !recent.contains_key(&job.job_id) {
        recent.clear();
    }
    recent.insert(job.job_id.clone(), job);
}

/// How long a statement waits for another worker's lock before it fails.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl SqliteJobStore {
    /// Opens (creating if needed) the database and its schema.
    pub fn open(path: &Path) -> Result<Self, JobStoreError> {
        let err = |source| JobStoreError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| JobStoreError::Config {
                url: path.display().to_string(),
                detail: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // Switching to WAL (and recovering a WAL another process left) takes
        // a lock SQLite does not wait for with the busy timeout: many workers
        // opening one new store at once got "database is locked" at once.
        // Those steps are retried here until the same timeout.
        let started = std::time::Instant::now();
        loop {
            let setup = conn
                .pragma_update(None, "journal_mode", "WAL")
                .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
                .and_then(|()| conn.execute_batch(SCHEMA));
            match setup {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(err(e)),
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            recent: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, JobStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, JobStoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| JobStoreError::Config {
            url: String::new(),
            detail: format!("the job-store thread stopped: {e}"),
        })?
    }

    fn sql_err(&self) -> impl Fn(rusqlite::Error) -> JobStoreError + Send + Clone + 'static {
        let path = self.path.display().to_string();
        move |source| JobStoreError::Sqlite {
            path: path.clone(),
            source,
        }
    }
}

fn parse(job_id: &str, doc: &str) -> Result<Job, JobStoreError> {
    serde_json::from_str(doc).map_err(|e| JobStoreError::Corrupt {
        job_id: job_id.to_string(),
        detail: e.to_string(),
    })
}

fn to_doc(job: &Job) -> String {
    // A Job is plain data: serialising it cannot fail.
    serde_json::to_string(job).unwrap_or_default()
}

#[async_trait::async_trait]
impl JobStore for SqliteJobStore {
    async fn create(&self, job: &Job) -> Result<Created, JobStoreError> {
        let job = job.clone();
        let err = self.sql_err();
        let recent = self.recent.clone();
        self.with(move |c| {
            let inserted = c
                .prepare_cached(
                    "INSERT INTO jobs (job_id, idempotency_key, status, created_at, version, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (idempotency_key) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        job.job_id,
                        job.idempotency_key,
                        job.status.as_str(),
                        job.created_at,
                        job.version as i64,
                        to_doc(&job)
                    ])
                })
                .map_err(&err)?;
            if inserted == 1 {
                remember(&recent, job.clone());
                return Ok(Created::New(job));
            }
            let (id, doc): (String, String) = c
                .prepare_cached("SELECT job_id, doc FROM jobs WHERE idempotency_key = ?1")
                .and_then(|mut s| {
                    s.query_row(params![job.idempotency_key], |r| Ok((r.get(0)?, r.get(1)?)))
                })
                .map_err(&err)?;
            let existing = parse(&id, &doc)?;
            remember(&recent, existing.clone());
            Ok(Created::Existing(existing))
        })
        .await
    }

    async fn get(&self, job_id: &str) -> Result<Option<Job>, JobStoreError> {
        let id = job_id.to_string();
        let err = self.sql_err();
        let recent = self.recent.clone();
        self.with(move |c| {
            let doc: Option<String> = c
                .prepare_cached("SELECT doc FROM jobs WHERE job_id = ?1")
                .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
                .map_err(&err)?;
            let job = doc.map(|d| parse(&id, &d)).transpose()?;
            if let Some(j) = &job {
                remember(&recent, j.clone());
            }
            Ok(job)
        })
        .await
    }

    async fn replace(&self, job: &Job) -> Result<bool, JobStoreError> {
        let job = job.clone();
        let err = self.sql_err();
        let recent = self.recent.clone();
        self.with(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE jobs SET status = ?1, version = ?2, doc = ?3
                      WHERE job_id = ?4 AND version = ?5",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        job.status.as_str(),
                        job.version as i64,
                        to_doc(&job),
                        job.job_id,
                        job.version as i64 - 1
                    ])
                })
                .map_err(&err)?;
            if n == 1 {
                // The written copy itself, not another clone of it.
                remember(&recent, job);
            }
            Ok(n == 1)
        })
        .await
    }

    async fn list(
        &self,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>, JobStoreError> {
        let err = self.sql_err();
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT job_id, doc FROM jobs WHERE ?1 IS NULL OR status = ?1
                      ORDER BY created_at DESC, job_id DESC LIMIT ?2",
                )
                .map_err(&err)?;
            let rows = stmt
                .query_map(params![status.map(JobStatus::as_str), limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(&err)?;
            let mut jobs = Vec::new();
            for row in rows {
                let (id, doc) = row.map_err(&err)?;
                jobs.push(parse(&id, &doc)?);
            }
            Ok(jobs)
        })
        .await
    }

    fn hint(&self, job_id: &str) -> Option<Job> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(job_id)
            .cloned()
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}
