//! Working storage that does not grow without end.
//!
//! A job's folder (`<work>/<job-id>/<ddmmyyyyhhmmss>/`) holds the staged
//! input and the artifacts: gigabytes for a large file. A succeeded job's
//! folder is removed by its notify step (its artifacts are in the uploaded
//! zip by then); a failed job's folder is kept for inspection and a re-run,
//! for the retention period, and then removed here. A one-off job's folder
//! (`ferry load`, `ferry convert`: the artifacts and reports its user asked
//! for) is kept for the retention period whether it succeeded or not, and
//! so are folders no job record names (left by ferry before one-off runs
//! were jobs), judged by their run stamp. A folder whose job is pending or running is never touched,
//! whatever its age: on shared storage (EFS) another worker may be in it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use ferry_connectors::jobs::{JobStatus, JobStore};

use crate::error::FerryError;

/// What a sweep did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    /// Job folders removed.
    pub removed: Vec<PathBuf>,
    /// Bytes they held.
    pub bytes: u64,
    /// Folders kept because their job is pending or running.
    pub active: usize,
    /// Folders kept because they are younger than the retention.
    pub young: usize,
    /// Jobs not finished yet (pending or running), when a job store was
    /// asked ([`unfinished`]): `ferry jobs gc` reports them so that a job
    /// stuck for hours raises an alarm (the stack's `OldestRunningJob`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<Unfinished>,
}

/// The jobs not finished yet, and how long the oldest has been at it.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unfinished {
    /// Pending and running jobs.
    pub jobs: usize,
    /// Seconds since the oldest of them was created (0 when there is none,
    /// so a metric taken from it always has a value).
    pub oldest_seconds: u64,
    /// Its id.
    pub oldest_job: Option<String>,
}

impl Unfinished {
    /// The line the stack's OldestRunningJob metric is read from (a metric
    /// filter on the sweep task's logs): written on every sweep, 0 when
    /// nothing is running, so the metric always has a value.
    pub fn log(&self) {
        tracing::info!(
            unfinished_jobs = self.jobs,
            oldest_unfinished_seconds = self.oldest_seconds,
            oldest_unfinished_job = self.oldest_job.as_deref().unwrap_or(""),
            "unfinished jobs"
        );
    }

    /// `; 2 jobs not finished, the oldest (<id>) for 3h 4m`, or nothing.
    pub fn summary(&self) -> Option<String> {
        self.oldest_job.as_ref().map(|id| {
            format!(
                "; {} jobs not finished, the oldest ({id}) for {}",
                self.jobs,
                humantime::format_duration(Duration::from_secs(self.oldest_seconds))
            )
        })
    }
}

/// Counts the pending and running jobs and finds the oldest. Workflows end
/// every job (a step that runs too long is stopped and its job failed), so an
/// old unfinished job means something outside them broke: an execution
/// stopped by hand, a notify that never ran, a worker killed between steps.
pub async fn unfinished(
    store: &dyn JobStore,
    now: DateTime<Utc>,
) -> Result<Unfinished, FerryError> {
    let mut report = Unfinished::default();
    for status in [JobStatus::Pending, JobStatus::Running] {
        for job in store.list(Some(status), 100_000).await? {
            report.jobs += 1;
            let created = DateTime::parse_from_rfc3339(&job.created_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(now);
            let age = (now - created).num_seconds().max(0) as u64;
            if report.oldest_job.is_none() || age > report.oldest_seconds {
                report.oldest_seconds = age;
                report.oldest_job = Some(job.job_id.clone());
            }
        }
    }
    Ok(report)
}

/// Why a folder goes or stays.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Remove,
    Active,
    Young,
}

/// Removes the job folders under `work` that are done with: succeeded
/// jobs' at once, failed and one-off jobs' (`ferry load`, `ferry convert`)
/// and job-less ones once `older_than` has passed since the job last
/// changed (or since the folder's newest run stamp). Entries that are not job folders
/// (the SQLite job store, `events.jsonl`) are left alone.
pub async fn sweep(
    work: &Path,
    store: Option<&dyn JobStore>,
    older_than: Duration,
    now: DateTime<Utc>,
) -> Result<GcReport, FerryError> {
    let mut report = GcReport::default();
    let entries = match std::fs::read_dir(work) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(FerryError::io(format!("listing {}", work.display()), e)),
    };
    let cutoff = now - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    for entry in entries {
        let entry = entry.map_err(|e| FerryError::io(format!("listing {}", work.display()), e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || uuid::Uuid::parse_str(&name).is_err() {
            continue;
        }
        let path = entry.path();
        let job = match store {
            Some(s) => s.get(&name).await?,
            None => None,
        };
        let verdict = match job {
            Some(j) => match j.status {
                JobStatus::Pending | JobStatus::Running => Verdict::Active,
                JobStatus::Succeeded if j.origin.is_none() => Verdict::Remove,
                JobStatus::Succeeded | JobStatus::Failed | JobStatus::Undone => {
                    let changed = DateTime::parse_from_rfc3339(&j.updated_at)
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or(now);
                    if changed <= cutoff {
                        Verdict::Remove
                    } else {
                        Verdict::Young
                    }
                }
            },
            None => match newest_stamp(&path) {
                Some(t) if t <= cutoff => Verdict::Remove,
                Some(_) => Verdict::Young,
                // No run folder: judge by the folder's own modification time.
                None => {
                    let modified = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .map(DateTime::<Utc>::from)
                        .unwrap_or(now);
                    if modified <= cutoff {
                        Verdict::Remove
                    } else {
                        Verdict::Young
                    }
                }
            },
        };
        match verdict {
            Verdict::Active => report.active += 1,
            Verdict::Young => report.young += 1,
            Verdict::Remove => {
                let bytes = size_of(&path);
                remove(&path)?;
                tracing::info!(folder = %path.display(), bytes, "removed a job folder");
                report.bytes += bytes;
                report.removed.push(path);
            }
        }
    }
    report.removed.sort();
    Ok(report)
}

/// Removes a job's whole folder (every attempt's run folder); a folder that
/// is already gone is not an error (a retried notify removes it again).
pub fn remove(path: &Path) -> Result<(), FerryError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FerryError::io(format!("removing {}", path.display()), e)),
    }
}

/// The newest `ddmmyyyyhhmmss` run folder in a job folder, as a time.
fn newest_stamp(job: &Path) -> Option<DateTime<Utc>> {
    std::fs::read_dir(job)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            NaiveDateTime::parse_from_str(name.to_str()?, "%d%m%Y%H%M%S").ok()
        })
        .max()
        .map(|t| t.and_utc())
}

/// Bytes under a folder (for the report; unreadable entries count zero).
fn size_of(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => total += entry.metadata().map_or(0, |m| m.len()),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connectors::jobs::{self, JobInput};

    #[tokio::test]
    async fn unfinished_counts_pending_and_running_jobs_and_ages_the_oldest() {
        let work = tempfile::tempdir().unwrap();
        let store = jobs::open(None, work.path()).await.unwrap();
        let now = Utc::now();
        assert_eq!(
            unfinished(store.as_ref(), now).await.unwrap(),
            Unfinished::default()
        );
        let job = |n: u32, hours_ago: i64, status: JobStatus| {
            let mut j = jobs::new_job(
                JobInput {
                    uri: format!("/in/{n}.csv"),
                    size: None,
                    etag: None,
                    version: None,
                },
                format!("key-{n}"),
                None,
                None,
                String::new(),
                format!("job-{n}"),
            );
            j.created_at = (now - chrono::Duration::hours(hours_ago)).to_rfc3339();
            j.status = status;
            j
        };
        for j in [
            job(1, 1, JobStatus::Running),
            job(2, 30, JobStatus::Pending),
            job(3, 90, JobStatus::Failed),
            job(4, 99, JobStatus::Succeeded),
        ] {
            store.create(&j).await.unwrap();
        }
        let u = unfinished(store.as_ref(), now).await.unwrap();
        assert_eq!((u.jobs, u.oldest_job.as_deref()), (2, Some("job-2")));
        assert!(
            (30 * 3600..30 * 3600 + 5).contains(&u.oldest_seconds),
            "{u:?}"
        );
    }

    #[tokio::test]
    async fn job_less_folders_go_by_their_run_stamp_and_other_entries_stay() {
        let work = tempfile::tempdir().unwrap();
        let old = work
            .path()
            .join(uuid::Uuid::now_v7().to_string())
            .join("01012020000000");
        let new = work
            .path()
            .join(uuid::Uuid::now_v7().to_string())
            .join(chrono::Utc::now().format("%d%m%Y%H%M%S").to_string());
        for d in [&old, &new] {
            std::fs::create_dir_all(d.join("artifacts")).unwrap();
            std::fs::write(d.join("artifacts/part-0001.pgcopy"), vec![0u8; 1000]).unwrap();
        }
        std::fs::write(work.path().join("jobs.db"), b"x").unwrap();
        std::fs::create_dir(work.path().join("not-a-job")).unwrap();
        let report = sweep(
            work.path(),
            None,
            Duration::from_secs(7 * 86_400),
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(report.removed, vec![old.parent().unwrap().to_path_buf()]);
        assert_eq!((report.bytes, report.young, report.active), (1000, 1, 0));
        assert!(new.exists() && work.path().join("jobs.db").exists());
        assert!(work.path().join("not-a-job").exists());
    }
}
