//! Jobs and their workflows: the steps of the reference architecture
//! ([`Step`]), one implementation each (a module of [`steps`]), run either
//! all in one process (`ferry run`, `ferry watch`) or one per container task
//! (`ferry task <step>`, as the Step Functions state machines invoke them).
//! The two differ only in how steps are scheduled ([`Runtime::run`] against
//! [`Runtime::run_step`] per task), never in what a step does.
//!
//! Every step reads the job from the job store, works in the job's folder,
//! records its figures and typed outputs (or its error) in the job, and logs
//! one summary line. The job store, not the process, is the state: any step
//! can run in another container, later.

pub mod answer;
pub mod event;
pub mod gc;
pub mod parts;
pub mod route;
pub mod step;
pub mod steps;
pub mod watch;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferry_connectors::jobs::{self, Job, JobError, JobStore, JobStoreError, Origin, StepRecord};
use ferry_connectors::notify::Notifier;
use ferry_connectors::pg::PgConfig;
use ferry_connectors::pg::artifacts::ArtifactKinds;
use ferry_connectors::work::{JobDir, SpecPin};
use serde_json::{Value, json};

use self::event::Trigger;
use self::route::Routes;
pub use self::step::Step;
use self::steps::Outcome;
use crate::error::FerryError;
use crate::load::ArtifactSource;
use crate::spec::DatasetSpec;

/// How steps run, beyond what the dataset spec says.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Working storage root (EFS mount in AWS).
    pub work_dir: PathBuf,
    /// Where `file.zip` and `manifest.json` go: `s3://bucket/prefix` or a folder.
    pub output: String,
    /// COPY streams (`None`: by load mode).
    pub streams: Option<usize>,
    /// Artifacts the Loader writes.
    pub artifacts: ArtifactKinds,
    /// Artifact part size.
    pub part_bytes: u64,
    /// Load even if the ledger has the input.
    pub force: bool,
    /// Progress bars.
    pub progress: bool,
    /// What sql-processor loads.
    pub from: ArtifactSource,
    /// How long a running job's worker may go without renewing the job
    /// before another worker may take it over (see [`jobs::is_stale`]);
    /// workers renew it every quarter of this while a step runs.
    pub lease: std::time::Duration,
    /// The end of this process's life, when it has one it cannot extend (a
    /// Lambda invocation's timeout): the jobs it claims record it as their
    /// lease's end ([`jobs::Job::lease_until`]), so the ECS path may take
    /// over a job the invocation could not finish as soon as it is gone.
    pub deadline: Option<std::time::SystemTime>,
    /// Whether a job that fails transiently (`ferry.Transient`) is notified
    /// at once. `ferry lambda` leaves such a job to its state machine, which
    /// tries again and then hands the object to the ECS path (whose steps
    /// retry, and which notifies the outcome): one job, one event.
    pub notify_transient: bool,
    /// Where convert writes (`ferry convert --output`, or beside the input);
    /// `None`: the job's output folder, which upload archives.
    pub convert_output: Option<PathBuf>,
    /// How a one-process run starts the parts of a split input as separate
    /// processes; `None` (a one-off `ferry load`): such a run does not split.
    pub parts: Option<parts::PartCommand>,
    /// Whether the transform step leaves a split input's parts to its
    /// orchestrator (a Distributed Map running `ferry task transform
    /// --part K`) and outputs their list; otherwise it runs them itself
    /// through [`Settings::parts`].
    pub defer_parts: bool,
}

impl Settings {
    /// The defaults `ferry run` starts from, in `work_dir`: every artifact
    /// in 256 MiB parts, streams by load mode, the ledger respected, a
    /// 15-minute lease, outputs beside the working storage.
    pub fn new(work_dir: PathBuf) -> Settings {
        let output = work_dir
            .parent()
            .map_or_else(|| work_dir.join("output"), |p| p.join("output"))
            .display()
            .to_string();
        Settings {
            work_dir,
            output,
            streams: None,
            artifacts: ArtifactKinds {
                sql: true,
                pgcopy: true,
            },
            part_bytes: 256 << 20,
            force: false,
            progress: false,
            from: ArtifactSource::Pgcopy,
            lease: std::time::Duration::from_secs(15 * 60),
            deadline: None,
            notify_transient: true,
            convert_output: None,
            parts: None,
            defer_parts: false,
        }
    }
}

/// Everything steps need: settings, the job store, the notifier, the
/// dataset specs and PostgreSQL.
pub struct Runtime {
    /// How steps run (working storage, output, streams, artifacts, lease).
    pub settings: Settings,
    /// The job store: the state every step reads and records into.
    pub store: Arc<dyn JobStore>,
    /// Job events.
    pub notifier: Arc<dyn Notifier>,
    /// Dataset specs and routing.
    pub routes: Routes,
    /// PostgreSQL (Loader only).
    pub pg: Option<PgConfig>,
    /// Specs fetched from S3 for routing, removed when the runtime ends (each
    /// job keeps its own copy).
    pub fetched_specs: Option<tempfile::TempDir>,
}

/// What create-job decided.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The job (new, re-run or existing).
    pub job: Job,
    /// Whether the workflow should run now (false for duplicates).
    pub run: bool,
    /// The job existed already (a re-delivered event, or a re-run).
    pub duplicate: bool,
}

/// Stops renewing a job's lease when dropped.
struct LeaseRenewal(tokio::task::JoinHandle<()>);

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A step's error as the job records it.
pub fn job_error(step: Step, e: &FerryError) -> JobError {
    JobError {
        step: step.name().to_string(),
        name: e.error_name().to_string(),
        retryable: e.retryable(),
        message: e.to_string(),
    }
}

impl Runtime {
    /// The runtime of a one-off command (`ferry load`, `ferry convert`):
    /// `spec`, built by the command, is its only spec; its job goes into
    /// `store` and its event into `<work-dir>/events.jsonl`, as `ferry run`'s
    /// do by default.
    pub async fn one_off(
        settings: Settings,
        store: Arc<dyn JobStore>,
        spec: DatasetSpec,
        pg: Option<PgConfig>,
    ) -> Result<Runtime, FerryError> {
        let notifier = ferry_connectors::notify::open(None, &settings.work_dir).await?;
        Ok(Runtime {
            settings,
            store,
            notifier,
            routes: Routes::one(spec),
            pg,
            fetched_specs: None,
        })
    }

    /// The job's dataset spec: the copy create-job pinned in its folder, or
    /// (a job created before specs were pinned) the specs folder's current one.
    pub(crate) fn spec(&self, job: &Job) -> Result<Cow<'_, DatasetSpec>, FerryError> {
        let name = job.dataset.as_deref().ok_or_else(|| {
            FerryError::Route(format!("job {} was not routed to a dataset", job.job_id))
        })?;
        // A one-off job runs in the process that built its spec: that spec
        // names the user's own files in its messages (the pinned copy is the
        // record of what ran). A spec built from flags for an S3 object is
        // completed from the staged object, which the command could not read.
        if job.origin.is_some()
            && let Some(spec) = self.routes.get(name)
        {
            return match steps::output::<steps::download::Output>(job, Step::Download) {
                Some(staged) if spec.dir.is_none() => {
                    let mut spec = spec.clone();
                    let input = crate::source::Input {
                        path: PathBuf::from(staged.input_path),
                        display: job.input.uri.clone(),
                    };
                    crate::sniff::complete_source(&mut spec.source, &input)?;
                    Ok(Cow::Owned(spec))
                }
                _ => Ok(Cow::Borrowed(spec)),
            };
        }
        // A routed job's spec is pinned in `<work>/specs/<hash>`; a one-off
        // job's (and one created before those pins) in its run folder.
        let shared = steps::output::<steps::create_job::Output>(job, Step::CreateJob)
            .and_then(|c| SpecPin::existing(&self.settings.work_dir, &c.spec).ok());
        let pinned = match shared {
            Some(pin) => pin.root().to_path_buf(),
            None => self.job_dir(job)?.spec(),
        };
        if pinned.join("dataset.toml").is_file() {
            return Ok(Cow::Owned(DatasetSpec::load(&pinned)?));
        }
        self.routes.get(name).map(Cow::Borrowed).ok_or_else(|| {
            FerryError::Usage(format!(
                "job {} is for dataset {name:?}, which the specs ({}) do not have",
                job.job_id,
                self.routes.names().join(", ")
            ))
        })
    }

    pub(crate) fn pg(&self) -> Result<&PgConfig, FerryError> {
        self.pg.as_ref().ok_or_else(|| {
            FerryError::Usage(
                "the Loader needs PostgreSQL: set DATABASE_URL or --database-url".into(),
            )
        })
    }

    pub(crate) fn job_dir(&self, job: &Job) -> Result<JobDir, FerryError> {
        Ok(JobDir::existing(&self.settings.work_dir, &job.dir)?)
    }

    pub(crate) async fn get(&self, job_id: &str) -> Result<Job, FerryError> {
        self.store
            .get(job_id)
            .await?
            .ok_or_else(|| FerryError::Jobs(JobStoreError::NotFound(job_id.to_string())))
    }

    /// Writes a step record (finished: its figures and outputs, or its
    /// error) and logs the step's summary line.
    pub(crate) async fn record(
        &self,
        job_id: &str,
        step: Step,
        started_at: &str,
        started: Instant,
        outcome: Result<Outcome, JobError>,
    ) -> Result<Job, FerryError> {
        let seconds = started.elapsed().as_secs_f64();
        let (result, error) = match outcome {
            Ok(result) => (result, None),
            Err(e) => (Outcome::default(), Some(e)),
        };
        let record = StepRecord {
            step: step.name().to_string(),
            attempt: 0, // set by step_finished from the stored job

            started_at: started_at.to_string(),
            finished_at: Some(jobs::now()),
            seconds: Some(seconds),
            rows: result.rows,
            bytes: result.bytes,
            error,
            outputs: result.outputs,
        };
        let job = jobs::step_finished(self.store.as_ref(), job_id, &record).await?;
        match &record.error {
            None => tracing::info!(
                job_id,
                step = step.name(),
                rows = record.rows.unwrap_or(0),
                bytes = record.bytes.unwrap_or(0),
                seconds,
                "step finished"
            ),
            Some(e) => tracing::error!(
                job_id,
                step = step.name(),
                rows = record.rows.unwrap_or(0),
                bytes = record.bytes.unwrap_or(0),
                seconds,
                error = %e.message,
                error_name = %e.name,
                "step failed"
            ),
        }
        Ok(job)
    }

    /// Runs one step of a running job (not create-job or notify, which have
    /// their own entry points), recording its start, figures and outcome.
    pub async fn run_step(&self, job_id: &str, step: Step) -> Result<Job, FerryError> {
        let job = jobs::step_started(self.store.as_ref(), job_id, step.name()).await?;
        let started = Instant::now();
        let started_at = job
            .step(step.name())
            .map(|s| s.started_at.clone())
            .unwrap_or_else(jobs::now);
        let _lease = self.renew_lease(job_id);
        match self.dispatch(&job, step).await {
            Ok(result) => {
                ferry_connectors::fault::after_step(step.name()).await;
                self.record(job_id, step, &started_at, started, Ok(result))
                    .await
            }
            Err(e) => {
                // The step's error is the one to report, even when recording
                // it fails too (a full disk holding the job store fails both).
                let err = job_error(step, &e);
                if let Err(r) = self
                    .record(job_id, step, &started_at, started, Err(err))
                    .await
                {
                    tracing::error!(job_id, step = step.name(), error = %r, "could not record the step's failure");
                }
                Err(e)
            }
        }
    }

    /// Renews the job's lease every quarter of it until the returned guard
    /// is dropped (the step ended). A failed renewal is logged, not fatal:
    /// the step's own writes renew the lease too.
    fn renew_lease(&self, job_id: &str) -> LeaseRenewal {
        let store = self.store.clone();
        let job_id = job_id.to_string();
        let every = (self.settings.lease / 4).max(std::time::Duration::from_millis(100));
        LeaseRenewal(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = jobs::touch(store.as_ref(), &job_id).await {
                    tracing::warn!(job_id, error = %e, "could not renew the job's lease");
                }
            }
        }))
    }

    async fn dispatch(&self, job: &Job, step: Step) -> Result<Outcome, FerryError> {
        let workflow = job.workflow.unwrap_or_default();
        if !step.belongs_to(workflow) {
            return Err(FerryError::Usage(format!(
                "step {step} is not part of the {workflow} workflow (job {})",
                job.job_id
            )));
        }
        match step {
            Step::Download => self.download(job).await,
            Step::Transform => self.transform(job).await,
            Step::SqlProcessor => self.sql_processor(job).await,
            Step::TransformAndLoad => self.transform_and_load(job).await,
            Step::Convert => self.convert(job).await,
            Step::Validate => self.validate(job).await,
            Step::Upload => self.upload(job).await,
            Step::CreateJob | Step::Notify => Err(FerryError::Usage(format!(
                "{step} is not run as a step of an existing job (it has its own entry point)"
            ))),
        }
    }

    /// Runs a whole workflow in this process: create-job, then every step
    /// (the Loader's transform and sql-processor fused), then notify — with
    /// the failure recorded and notified when a step fails.
    pub async fn run(&self, trigger: &Trigger) -> Result<Admission, FerryError> {
        let admission = self.create_job(trigger).await?;
        if !admission.run {
            return Ok(admission);
        }
        let steps = Step::in_process(admission.job.workflow.unwrap_or_default());
        let job = self.run_steps(&admission.job.job_id, steps).await?;
        Ok(Admission {
            job,
            run: true,
            duplicate: admission.duplicate,
        })
    }

    /// Runs a one-off command's job in this process (`ferry load`, `ferry
    /// convert`): create-job with the command's spec, `steps` (the
    /// workflow's, less what the command leaves out: the upload of a load,
    /// the validation of `--no-validate`), then notify. The same steps as
    /// every job; only the choice of them differs.
    pub async fn run_one_off(
        &self,
        trigger: &Trigger,
        origin: Origin,
        steps: &[Step],
    ) -> Result<Job, FerryError> {
        let spec = self.routes.sole().ok_or_else(|| {
            FerryError::Internal(
                "a one-off run needs a runtime of one spec (Runtime::one_off)".into(),
            )
        })?;
        let admission = self.create_one_off(trigger, spec, origin).await?;
        self.run_steps(&admission.job.job_id, steps).await
    }

    /// Runs `steps` of a created job in order, then notify; when a step
    /// fails, its failure is recorded and notified, and returned.
    async fn run_steps(&self, job_id: &str, steps: &[Step]) -> Result<Job, FerryError> {
        for &step in steps {
            if let Err(e) = self.run_step(job_id, step).await {
                if e.retryable() && !self.settings.notify_transient {
                    // Failed, so the next attempt may re-run it at once; no event: the
                    // outcome of that attempt is the job's.
                    let error = Some(job_error(step, &e));
                    if let Err(f) = jobs::finish(self.store.as_ref(), job_id, error, None).await {
                        tracing::error!(job_id = %job_id, error = %f, "could not record the failure");
                    }
                    tracing::warn!(job_id = %job_id, error = %e, "transient failure, not notified: the job is tried again");
                } else if let Err(n) = self.notify(job_id, Some(job_error(step, &e))).await {
                    tracing::error!(job_id = %job_id, error = %n, "could not send the failure event");
                }
                return Err(e);
            }
        }
        self.notify(job_id, None).await
    }

    /// The task output a state machine passes on: the job's identity and
    /// state, and what the step did.
    pub fn task_output(job: &Job, step: Step, admission: Option<&Admission>) -> Value {
        let record = job.step(step.name());
        json!({
            "job_id": job.job_id,
            "dataset": job.dataset,
            "workflow": job.workflow,
            "status": job.status,
            "attempt": job.attempts,
            "input": job.input.uri,
            "dir": job.dir,
            "run": admission.map(|a| a.run),
            "duplicate": admission.map(|a| a.duplicate),
            "step": step,
            "rows": record.and_then(|r| r.rows),
            "bytes": record.and_then(|r| r.bytes),
            "seconds": record.and_then(|r| r.seconds),
            "outputs": record.map(|r| r.outputs.clone()).unwrap_or_default(),
        })
    }
}

/// Regular files under `dir`, recursively, sorted; none if it does not exist.
pub(crate) fn files_under(dir: &Path) -> Result<Vec<PathBuf>, FerryError> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let read = std::fs::read_dir(&d)
            .map_err(|e| FerryError::io(format!("listing {}", d.display()), e))?;
        for entry in read {
            let entry = entry.map_err(|e| FerryError::io(format!("listing {}", d.display()), e))?;
            let ft = entry
                .file_type()
                .map_err(|e| FerryError::io(format!("listing {}", d.display()), e))?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
