//! create-job: routes the object, creates its job once, claims it, and pins
//! the spec it was routed with into the job's run folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ferry_connectors::jobs::{self, Created, Job, JobStatus, JobStoreError, Origin, Workflow};
use ferry_connectors::work::{JobDir, SpecPin};
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::error::FerryError;
use crate::load::run_stamp;
use crate::spec::DatasetSpec;
use crate::workflow::event::Trigger;
use crate::workflow::{Admission, Runtime, Step, job_error};

/// What create-job records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// The folder holding the spec the job runs with: its pin
    /// (`<work>/specs/<hash>`), or a one-off job's `spec/` in its run folder.
    pub spec: String,
    /// A hash of the pinned files: which spec version the job ran.
    pub spec_hash: String,
    /// The dataset the input was routed to.
    pub dataset: String,
    /// Its workflow (`loader` or `converter`).
    pub workflow: Workflow,
}

impl Runtime {
    /// create-job: routes the object, creates its job once, and claims it
    /// (`pending`/`failed` → `running`, conditional, so one worker wins). A
    /// re-run of a failed job gets a fresh run folder. An object no dataset
    /// routes becomes a failed job with its event sent, and an error.
    pub async fn create_job(&self, trigger: &Trigger) -> Result<Admission, FerryError> {
        self.admit(trigger, self.routes.route(&trigger.key), None)
            .await
    }

    /// create-job for a one-off command (`ferry load`, `ferry convert`): the
    /// spec is the one the command built (the runtime's only one, see
    /// [`Routes::one`](crate::workflow::route::Routes::one)) and names the
    /// workflow, and every invocation is a job of its own (the ledger, not
    /// the job store, says whether the input is loaded already).
    pub async fn create_one_off(
        &self,
        trigger: &Trigger,
        spec: &DatasetSpec,
        origin: Origin,
    ) -> Result<Admission, FerryError> {
        self.admit(trigger, Ok(spec), Some(origin)).await
    }

    async fn admit(
        &self,
        trigger: &Trigger,
        routed: Result<&DatasetSpec, FerryError>,
        origin: Option<Origin>,
    ) -> Result<Admission, FerryError> {
        let started = Instant::now();
        let started_at = jobs::now();
        let dataset = routed.as_ref().ok().map(|s| s.name.clone());
        let workflow = routed.as_ref().ok().map(|s| s.routing.workflow);
        let job_id = uuid::Uuid::now_v7().to_string();
        let dir = JobDir::new(&self.settings.work_dir, &job_id, &run_stamp())?;
        let key = match origin {
            None => trigger.idempotency_key(),
            Some(o) => format!("{}#{o}={job_id}", trigger.idempotency_key()),
        };
        let mut candidate = jobs::new_job(
            trigger.input.clone(),
            key,
            dataset,
            workflow,
            dir.root().display().to_string(),
            job_id,
        );
        candidate.origin = origin;
        let created = self.store.create(&candidate).await?;
        let duplicate = matches!(created, Created::Existing(_));
        let job = created.job().clone();
        let spec = match routed {
            Ok(spec) => spec,
            Err(e) => {
                return self
                    .unroutable(job, duplicate, e, &started_at, started, trigger)
                    .await;
            }
        };
        let lease = self.settings.lease;
        match job.status {
            JobStatus::Pending | JobStatus::Failed => {}
            JobStatus::Running if jobs::is_stale(&job, lease) => {
                tracing::warn!(job_id = %job.job_id, input = %job.input.uri, since = %job.updated_at, "the job's worker stopped renewing its lease; taking the job over");
            }
            JobStatus::Succeeded if jobs::event_unsent(&job, lease) => {
                tracing::warn!(job_id = %job.job_id, input = %job.input.uri, since = %job.updated_at, "the job succeeded but its worker stopped before sending its event; sending it now");
                let job = self.notify(&job.job_id, None).await?;
                return Ok(Admission {
                    job,
                    run: false,
                    duplicate,
                });
            }
            status => {
                tracing::info!(job_id = %job.job_id, input = %job.input.uri, status = status.as_str(), "duplicate event: the job exists; nothing to do");
                return Ok(Admission {
                    job,
                    run: false,
                    duplicate,
                });
            }
        }
        // A re-run (or a take-over) starts in a fresh run folder.
        let rerun = job.status != JobStatus::Pending;
        let claimed = match jobs::claim_until(
            self.store.as_ref(),
            &job.job_id,
            lease,
            self.settings.deadline,
        )
        .await
        {
            Ok(j) => j,
            Err(JobStoreError::Refused { .. }) => {
                // Another worker claimed it between our read and our write.
                let job = self.get(&job.job_id).await?;
                return Ok(Admission {
                    job,
                    run: false,
                    duplicate: true,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut rerun_dir = None;
        if rerun {
            let fresh = JobDir::new(&self.settings.work_dir, &claimed.job_id, &run_stamp())?;
            std::fs::create_dir_all(fresh.root())
                .map_err(|e| FerryError::io(format!("creating {}", fresh.root().display()), e))?;
            let path = fresh.root().display().to_string();
            jobs::update(self.store.as_ref(), &claimed.job_id, |j| {
                j.dir = path.clone();
                Ok(())
            })
            .await?;
            rerun_dir = Some(fresh);
        }
        // The job's spec from now on: a routed spec's pin, or a one-off
        // job's effective spec in its run folder.
        let (pinned, spec_hash) = match origin {
            None => pin_spec(spec, &self.settings.work_dir)?,
            Some(_) => {
                let run_dir = match &rerun_dir {
                    Some(d) => d.clone(),
                    None => JobDir::existing(&self.settings.work_dir, &claimed.dir)?,
                };
                pin_effective(spec, &run_dir)?
            }
        };
        let output = Output {
            spec: pinned.display().to_string(),
            spec_hash,
            dataset: claimed.dataset.clone().unwrap_or_default(),
            workflow: claimed.workflow.unwrap_or_default(),
        };
        let job = self
            .record(
                &claimed.job_id,
                Step::CreateJob,
                &started_at,
                started,
                Ok(Outcome::new(None, None, &output)?),
            )
            .await?;
        tracing::info!(job_id = %job.job_id, input = %job.input.uri, dataset = job.dataset.as_deref().unwrap_or(""), workflow = %job.workflow.unwrap_or_default(), attempt = job.attempts, "job created");
        Ok(Admission {
            job,
            run: true,
            duplicate,
        })
    }

    /// An object no dataset routes: a failed job with its event sent (once:
    /// a re-delivered event finds the job and does nothing), and the error.
    async fn unroutable(
        &self,
        job: Job,
        duplicate: bool,
        e: FerryError,
        started_at: &str,
        started: Instant,
        trigger: &Trigger,
    ) -> Result<Admission, FerryError> {
        if duplicate {
            return Ok(Admission {
                job,
                run: false,
                duplicate,
            });
        }
        let err = job_error(Step::CreateJob, &e);
        self.record(
            &job.job_id,
            Step::CreateJob,
            started_at,
            started,
            Err(err.clone()),
        )
        .await?;
        tracing::error!(job_id = %job.job_id, input = %trigger.input.uri, error = %e, "unroutable input");
        self.notify(&job.job_id, Some(err)).await?;
        Err(e)
    }
}

/// Writes a one-off job's spec, as it runs, into its run folder: the
/// command's flags may have built it or changed a spec folder's, so a copy
/// of the files would not say what ran. Returns the folder and a hash.
fn pin_effective(spec: &DatasetSpec, run: &JobDir) -> Result<(PathBuf, String), FerryError> {
    let to = run.spec();
    std::fs::create_dir_all(&to)
        .map_err(|e| FerryError::io(format!("creating {}", to.display()), e))?;
    let mut hash = twox_hash::xxhash3_128::Hasher::new();
    for (name, text) in [
        ("dataset.toml", spec.to_toml()?),
        ("transform.sql", spec.transform_sql.clone()),
    ] {
        hash.write(name.as_bytes());
        hash.write(text.as_bytes());
        let path = to.join(name);
        std::fs::write(&path, text)
            .map_err(|e| FerryError::io(format!("writing {}", path.display()), e))?;
    }
    Ok((to, format!("{:032x}", hash.finish_128())))
}

/// Pins the spec a job was routed with (see [`SpecPin`]): `dataset.toml`,
/// `transform.sql` and the `source.sample` it names, nothing else a spec
/// folder may hold, in `<work>/specs/<hash>/`, shared by every job routed to
/// the same files. Returns the pin's folder and the hash, which the job
/// record keeps.
fn pin_spec(spec: &DatasetSpec, work: &Path) -> Result<(PathBuf, String), FerryError> {
    let from = spec.dir.as_deref().ok_or_else(|| {
        FerryError::Internal(format!("dataset {} has no spec folder to pin", spec.name))
    })?;
    let mut hash = twox_hash::xxhash3_128::Hasher::new();
    let sample = spec.source.sample.as_deref().filter(|s| {
        let p = Path::new(s);
        p.is_relative()
            && p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
    });
    let mut files = Vec::new();
    for name in ["dataset.toml", "transform.sql"].into_iter().chain(sample) {
        let bytes = match std::fs::read(from.join(name)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "transform.sql" => {
                continue;
            }
            Err(e) => {
                return Err(FerryError::io(
                    format!("reading {}", from.join(name).display()),
                    e,
                ));
            }
        };
        hash.write(name.as_bytes());
        hash.write(&bytes);
        files.push((name, bytes));
    }
    let hash = format!("{:032x}", hash.finish_128());
    let pin = SpecPin::new(work, &hash)?;
    pin.write(&files)
        .map_err(|e| FerryError::io(format!("pinning the spec in {}", pin.root().display()), e))?;
    Ok((pin.root().to_path_buf(), hash))
}
