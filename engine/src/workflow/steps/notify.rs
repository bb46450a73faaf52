//! notify: ends the job (`succeeded`, or `failed` with its error) and sends
//! its event; a succeeded job's folder goes (its artifacts are in the zip).

use std::time::Instant;

use ferry_connectors::jobs::{self, Job, JobError, JobStatus};
use ferry_connectors::notify::JobEvent;
use serde::{Deserialize, Serialize};

use super::{Outcome, job_rows};
use crate::error::FerryError;
use crate::workflow::{Runtime, Step, gc, job_error};

/// What notify records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// Where the event went (topic, bus or file).
    pub notified: String,
}

impl Runtime {
    /// notify: ends the job (`succeeded`, or `failed` with `error`) and sends
    /// its event. Ending is idempotent, so a retried notify sends again
    /// without changing the job.
    pub async fn notify(&self, job_id: &str, error: Option<JobError>) -> Result<Job, FerryError> {
        let started = Instant::now();
        let started_at = jobs::now();
        let current = self.get(job_id).await?;
        let rows = job_rows(&current);
        let job = jobs::finish(self.store.as_ref(), job_id, error.clone(), rows).await?;
        ferry_connectors::fault::point(ferry_connectors::fault::FINISHED).await;
        let event = JobEvent::for_job(&job);
        let sent = self.notifier.send(&event).await;
        let output = Output {
            notified: self.notifier.describe(),
        };
        match sent {
            Ok(()) => {
                let outcome = Outcome::new(None, None, &output)?;
                let job = self
                    .record(job_id, Step::Notify, &started_at, started, Ok(outcome))
                    .await?;
                if job.status == JobStatus::Succeeded && job.origin.is_none() {
                    // Done with: the artifacts are in the uploaded zip. (A failed job's
                    // folder, and a one-off job's, stay for the retention period; see gc.)
                    let folder = self.settings.work_dir.join(&job.job_id);
                    if let Err(e) = gc::remove(&folder) {
                        tracing::warn!(job_id, error = %e, "could not remove the succeeded job's folder; `ferry jobs gc` will");
                    }
                }
                tracing::info!(
                    job_id,
                    status = job.status.as_str(),
                    rows = job.rows.unwrap_or(0),
                    "job {}",
                    job.status.as_str()
                );
                Ok(job)
            }
            Err(e) => {
                let e = FerryError::from(e);
                let err = job_error(Step::Notify, &e);
                self.record(job_id, Step::Notify, &started_at, started, Err(err))
                    .await?;
                Err(e)
            }
        }
    }
}
