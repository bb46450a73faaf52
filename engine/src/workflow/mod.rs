//! Jobs and their workflows: the steps of the reference architecture, one
//! implementation each, run either all in one process (`ferry run`,
//! `ferry watch`) or one per container task (`ferry task <step>`, as the
//! Step Functions state machines invoke them).
//!
//! | workflow | steps |
//! |---|---|
//! | Loader | create-job → s3-efs-downloader → transform → sql-processor → efs-s3-uploader → notify |
//! | Converter | create-job → s3-efs-downloader → convert → validate → efs-s3-uploader → notify |
//!
//! In one process the Loader's transform and sql-processor run fused
//! (`transform+sql-processor`: rows stream into COPY while the artifacts are
//! written), which saves writing and re-reading the `.pgcopy` files.
//!
//! Every step reads the job from the job store, works in the job's folder,
//! records its figures and outputs (or its error) in the job, and logs one
//! summary line. The job store, not the process, is the state: any step can
//! run in another container, later.

pub mod answer;
pub mod event;
pub mod gc;
pub mod route;
pub mod watch;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferry_connectors::jobs::{
    self, Created, Job, JobError, JobStatus, JobStore, JobStoreError, StepRecord, Workflow,
};
use ferry_connectors::notify::{JobEvent, Notifier};
use ferry_connectors::pg::artifacts::ArtifactKinds;
use ferry_connectors::pg::{PgConfig, QualifiedName};
use ferry_connectors::store::{self, Expect, Location};
use ferry_connectors::work::{JobDir, Manifest, ZipEntry, archive};
use serde_json::{Value, json};

use self::event::Trigger;
use self::route::Routes;
use crate::convert::writers::OutputFormat;
use crate::convert::{ConvertRequest, convert, report_path, validate};
use crate::decode::REJECTS_FILE;
use crate::error::FerryError;
use crate::load::{
    ArtifactSource, JobContext, LoadOptions, LoadReport, TRANSFORM_REPORT, TransformReport, load,
    load_artifacts, run_stamp, transform_artifacts,
};
use crate::source::Input;
use crate::spec::DatasetSpec;

/// Parse the event, route it, create (or find) the job and claim it.
pub const CREATE_JOB: &str = "create-job";
/// Copy the input object into the job folder.
pub const DOWNLOAD: &str = "s3-efs-downloader";
/// Decode, transform and encode into `.sql` / `.pgcopy` artifacts.
pub const TRANSFORM: &str = "transform";
/// Load the artifacts into PostgreSQL.
pub const SQL_PROCESSOR: &str = "sql-processor";
/// `transform` and `sql-processor` fused, in one process.
pub const TRANSFORM_AND_LOAD: &str = "transform+sql-processor";
/// Write the output format.
pub const CONVERT: &str = "convert";
/// Read the output back and compare.
pub const VALIDATE: &str = "validate";
/// Zip the artifacts with a manifest and upload them.
pub const UPLOAD: &str = "efs-s3-uploader";
/// End the job and send its event.
pub const NOTIFY: &str = "notify";

/// The Loader's steps as container tasks run them.
pub const LOADER_STEPS: [&str; 6] = [
    CREATE_JOB,
    DOWNLOAD,
    TRANSFORM,
    SQL_PROCESSOR,
    UPLOAD,
    NOTIFY,
];
/// The Converter's steps as container tasks run them.
pub const CONVERTER_STEPS: [&str; 6] = [CREATE_JOB, DOWNLOAD, CONVERT, VALIDATE, UPLOAD, NOTIFY];

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
}

/// Everything steps need: settings, the job store, the notifier, the
/// dataset specs and PostgreSQL.
pub struct Runtime {
    /// Settings.
    pub settings: Settings,
    /// Jobs.
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

/// What one step produced.
#[derive(Debug, Clone, Default)]
struct StepResult {
    rows: Option<u64>,
    bytes: Option<u64>,
    outputs: BTreeMap<String, Value>,
}

impl StepResult {
    fn output(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.outputs.insert(key.to_string(), value.into());
        self
    }

    /// Records the rows the error policy set aside (job record, task output
    /// and the notification all read the step's outputs).
    fn rejects(self, rejected: u64, file: Option<&Path>) -> Self {
        match file.filter(|_| rejected > 0) {
            Some(f) => self
                .output("rejected_rows", rejected)
                .output("rejects", f.display().to_string()),
            None => self,
        }
    }
}

/// A step's error as the job records it.
pub fn job_error(step: &str, e: &FerryError) -> JobError {
    JobError {
        step: step.to_string(),
        name: e.error_name().to_string(),
        retryable: e.retryable(),
        message: e.to_string(),
    }
}

/// The string outputs of the latest record of `step`.
fn output_of(job: &Job, step: &str, key: &str) -> Option<String> {
    job.steps
        .iter()
        .rev()
        .find(|s| s.step == step && s.outputs.contains_key(key))
        .and_then(|s| s.outputs.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The input name without folders or extensions: names outputs.
fn stem_of(uri: &str) -> String {
    let name = uri.rsplit(['/', '\\']).next().unwrap_or(uri);
    let stem = name.split('.').next().unwrap_or(name);
    // Bounded: the output's file name must fit any file system.
    let clean: String = stem
        .chars()
        .take(64)
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "output".into()
    } else {
        clean
    }
}

impl Runtime {
    /// The job's dataset spec: the copy create-job pinned in its folder, or
    /// (a job created before specs were pinned) the specs folder's current one.
    fn spec(&self, job: &Job) -> Result<Cow<'_, DatasetSpec>, FerryError> {
        let name = job.dataset.as_deref().ok_or_else(|| {
            FerryError::Route(format!("job {} was not routed to a dataset", job.job_id))
        })?;
        let pinned = self.job_dir(job)?.spec();
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

    fn pg(&self) -> Result<&PgConfig, FerryError> {
        self.pg.as_ref().ok_or_else(|| {
            FerryError::Usage(
                "the Loader needs PostgreSQL: set DATABASE_URL or --database-url".into(),
            )
        })
    }

    fn job_dir(&self, job: &Job) -> Result<JobDir, FerryError> {
        Ok(JobDir::existing(&self.settings.work_dir, &job.dir)?)
    }

    async fn get(&self, job_id: &str) -> Result<Job, FerryError> {
        self.store
            .get(job_id)
            .await?
            .ok_or_else(|| FerryError::Jobs(JobStoreError::NotFound(job_id.to_string())))
    }

    /// create-job: routes the object, creates its job once, and claims it
    /// (`pending`/`failed` → `running`, conditional, so one worker wins). A
    /// re-run of a failed job gets a fresh run folder. An object no dataset
    /// routes becomes a failed job with its event sent, and an error.
    pub async fn create_job(&self, trigger: &Trigger) -> Result<Admission, FerryError> {
        let started = Instant::now();
        let started_at = jobs::now();
        let routed = self.routes.route(&trigger.key);
        let (dataset, workflow) = match &routed {
            Ok(spec) => (Some(spec.name.clone()), Some(spec.routing.workflow)),
            Err(_) => (None, None),
        };
        let job_id = uuid::Uuid::now_v7().to_string();
        let dir = JobDir::new(&self.settings.work_dir, &job_id, &run_stamp())?;
        let candidate = jobs::new_job(
            trigger.input.clone(),
            trigger.idempotency_key(),
            dataset,
            workflow,
            dir.root().display().to_string(),
            job_id,
        );
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
        let claimed = match jobs::claim(self.store.as_ref(), &job.job_id, lease).await {
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
            let path = fresh.root().display().to_string();
            jobs::update(self.store.as_ref(), &claimed.job_id, |j| {
                j.dir = path.clone();
                Ok(())
            })
            .await?;
            rerun_dir = Some(fresh);
        }
        // The job's spec from now on: a copy in its run folder.
        let run_dir = match &rerun_dir {
            Some(d) => d.clone(),
            None => JobDir::existing(&self.settings.work_dir, &claimed.dir)?,
        };
        let (pinned, spec_hash) = Self::pin_spec(spec, &run_dir)?;
        let result = StepResult::default()
            .output("spec", pinned.display().to_string())
            .output("spec_hash", spec_hash)
            .output("dataset", claimed.dataset.clone().unwrap_or_default())
            .output(
                "workflow",
                claimed.workflow.map(|w| w.to_string()).unwrap_or_default(),
            );
        let job = self
            .record(
                &claimed.job_id,
                CREATE_JOB,
                &started_at,
                started,
                Ok(()),
                result,
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
        let err = job_error(CREATE_JOB, &e);
        self.record(
            &job.job_id,
            CREATE_JOB,
            started_at,
            started,
            Err(&err),
            StepResult::default(),
        )
        .await?;
        tracing::error!(job_id = %job.job_id, input = %trigger.input.uri, error = %e, "unroutable input");
        self.notify(&job.job_id, Some(err)).await?;
        Err(e)
    }

    /// Copies the spec a job was routed with into its run folder (see
    /// [`JobDir::spec`]): `dataset.toml`, `transform.sql` and the
    /// `source.sample` it names, nothing else a spec folder may hold. Returns
    /// the copy's folder and a hash of the files, which the job record keeps.
    fn pin_spec(spec: &DatasetSpec, run: &JobDir) -> Result<(PathBuf, String), FerryError> {
        let from = spec.dir.as_deref().ok_or_else(|| {
            FerryError::Internal(format!("dataset {} has no spec folder to pin", spec.name))
        })?;
        let to = run.spec();
        std::fs::create_dir_all(&to)
            .map_err(|e| FerryError::io(format!("creating {}", to.display()), e))?;
        let mut hash = xxhash_rust::xxh3::Xxh3::new();
        let sample = spec.source.sample.as_deref().filter(|s| {
            let p = Path::new(s);
            p.is_relative()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        });
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
            hash.update(name.as_bytes());
            hash.update(&bytes);
            let path = to.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| FerryError::io(format!("creating {}", parent.display()), e))?;
            }
            std::fs::write(&path, &bytes)
                .map_err(|e| FerryError::io(format!("writing {}", path.display()), e))?;
        }
        Ok((to, format!("{:032x}", hash.digest128())))
    }

    /// Writes a step record (finished) and logs the step's summary line.
    async fn record(
        &self,
        job_id: &str,
        step: &str,
        started_at: &str,
        started: Instant,
        outcome: Result<(), &JobError>,
        result: StepResult,
    ) -> Result<Job, FerryError> {
        let seconds = started.elapsed().as_secs_f64();
        let record = StepRecord {
            step: step.to_string(),
            attempt: 0, // set by step_finished from the stored job

            started_at: started_at.to_string(),
            finished_at: Some(jobs::now()),
            seconds: Some(seconds),
            rows: result.rows,
            bytes: result.bytes,
            error: outcome.err().cloned(),
            outputs: result.outputs,
        };
        let job = jobs::step_finished(self.store.as_ref(), job_id, &record).await?;
        match &record.error {
            None => tracing::info!(
                job_id,
                step,
                rows = record.rows.unwrap_or(0),
                bytes = record.bytes.unwrap_or(0),
                seconds,
                "step finished"
            ),
            Some(e) => tracing::error!(
                job_id,
                step,
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
    pub async fn run_step(&self, job_id: &str, step: &str) -> Result<Job, FerryError> {
        let job = jobs::step_started(self.store.as_ref(), job_id, step).await?;
        let started = Instant::now();
        let started_at = job
            .step(step)
            .map(|s| s.started_at.clone())
            .unwrap_or_else(jobs::now);
        let _lease = self.renew_lease(job_id);
        match self.dispatch(&job, step).await {
            Ok(result) => {
                self.record(job_id, step, &started_at, started, Ok(()), result)
                    .await
            }
            Err(e) => {
                let err = job_error(step, &e);
                self.record(
                    job_id,
                    step,
                    &started_at,
                    started,
                    Err(&err),
                    StepResult::default(),
                )
                .await?;
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

    async fn dispatch(&self, job: &Job, step: &str) -> Result<StepResult, FerryError> {
        let workflow = job.workflow.unwrap_or_default();
        let allowed = match workflow {
            Workflow::Loader => matches!(
                step,
                DOWNLOAD | TRANSFORM | SQL_PROCESSOR | TRANSFORM_AND_LOAD | UPLOAD
            ),
            Workflow::Converter => matches!(step, DOWNLOAD | CONVERT | VALIDATE | UPLOAD),
        };
        if !allowed {
            return Err(FerryError::Usage(format!(
                "step {step} is not part of the {workflow} workflow (job {})",
                job.job_id
            )));
        }
        match step {
            DOWNLOAD => self.download(job).await,
            TRANSFORM => self.transform(job).await,
            SQL_PROCESSOR => self.sql_processor(job).await,
            TRANSFORM_AND_LOAD => self.transform_and_load(job).await,
            CONVERT => self.convert(job).await,
            VALIDATE => self.validate(job).await,
            UPLOAD => self.upload(job).await,
            other => Err(FerryError::Usage(format!("unknown step {other}"))),
        }
    }

    async fn download(&self, job: &Job) -> Result<StepResult, FerryError> {
        let dir = self.job_dir(job)?;
        let location = Location::parse(&job.input.uri)?;
        let expect = Expect {
            version: job.input.version.clone(),
            etag: job.input.etag.clone(),
            size: job.input.size,
        };
        let staged = store::stage(&location, &dir.input(), &expect).await?;
        if matches!(location, Location::S3 { .. }) && !dir.contains(&staged.path) {
            return Err(FerryError::Internal(format!(
                "{} was staged outside the job folder",
                staged.path.display()
            )));
        }
        Ok(StepResult {
            rows: None,
            bytes: Some(staged.size),
            outputs: BTreeMap::new(),
        }
        .output("input_path", staged.path.display().to_string()))
    }

    fn staged_input(&self, job: &Job) -> Result<String, FerryError> {
        output_of(job, DOWNLOAD, "input_path").ok_or_else(|| {
            FerryError::Usage(format!(
                "job {}: the input is not staged yet (run {DOWNLOAD} first)",
                job.job_id
            ))
        })
    }

    fn load_options(&self, job: &Job) -> Result<LoadOptions, FerryError> {
        // The ledger names S3 objects by version/ETag, local files by path.
        let identity = if job.input.uri.starts_with("s3://") {
            job.idempotency_key.clone()
        } else {
            job.input.uri.clone()
        };
        Ok(LoadOptions {
            streams: self.settings.streams,
            force: self.settings.force,
            work_dir: self.settings.work_dir.clone(),
            artifacts: self.settings.artifacts,
            part_bytes: self.settings.part_bytes,
            table: None,
            mode: None,
            keys: None,
            progress: self.settings.progress,
            job: Some(JobContext {
                job_id: job.job_id.clone(),
                dir: self.job_dir(job)?,
                identity,
                display: job.input.uri.clone(),
            }),
        })
    }

    /// What sql-processor loads for this dataset: its spec's `load_from`, else the setting.
    fn load_from(&self, spec: &DatasetSpec) -> ArtifactSource {
        spec.target
            .as_ref()
            .and_then(|t| t.load_from)
            .unwrap_or(self.settings.from)
    }

    async fn transform(&self, job: &Job) -> Result<StepResult, FerryError> {
        let spec = self.spec(job)?;
        let input = self.staged_input(job)?;
        let mut opts = self.load_options(job)?;
        if !opts.artifacts.pgcopy && self.load_from(&spec) == ArtifactSource::Pgcopy {
            opts.artifacts.pgcopy = true;
        }
        let r = transform_artifacts(&spec, &input, self.pg()?, &opts).await?;
        Ok(StepResult {
            rows: Some(r.rows),
            bytes: Some(r.artifacts.iter().map(|a| a.bytes).sum()),
            outputs: BTreeMap::new(),
        }
        .output("artifacts", r.artifacts.len())
        .output("target", r.target)
        .rejects(r.rejected, r.rejects.as_deref()))
    }

    fn loaded(r: &LoadReport) -> StepResult {
        let mut out = StepResult {
            rows: Some(r.rows),
            bytes: Some(r.input_bytes),
            outputs: BTreeMap::new(),
        }
        .output("target", r.target.clone())
        .output("load", r.status)
        .rejects(r.rejected, r.rejects.as_deref());
        if let Some(p) = &r.previous_job {
            out = out.output("previous_load", p.clone());
        }
        out
    }

    async fn sql_processor(&self, job: &Job) -> Result<StepResult, FerryError> {
        let dir = self.job_dir(job)?;
        let spec = self.spec(job)?;
        let from = self.load_from(&spec);
        let r = load_artifacts(
            dir.root(),
            self.pg()?,
            from,
            self.settings.streams,
            self.settings.force,
        )
        .await?;
        Ok(Self::loaded(&r).output("from", from.as_str()))
    }

    async fn transform_and_load(&self, job: &Job) -> Result<StepResult, FerryError> {
        let spec = self.spec(job)?;
        let input = self.staged_input(job)?;
        let r = load(&spec, &input, self.pg()?, &self.load_options(job)?).await?;
        Ok(Self::loaded(&r))
    }

    fn convert_request(&self, job: &Job) -> Result<(ConvertRequest, bool), FerryError> {
        let spec = self.spec(job)?;
        let cspec = spec.convert.clone().ok_or_else(|| {
            FerryError::Usage(format!(
                "{}: a converter dataset needs a [convert] section",
                spec.toml_path().display()
            ))
        })?;
        let format = OutputFormat::from_spec(&cspec)?;
        let dir = self.job_dir(job)?;
        let stem = stem_of(&job.input.uri);
        let name = match format.extension() {
            Some(ext) => format!("{stem}.{ext}"),
            None => format!("{stem}-{}", format.name()),
        };
        let table = spec
            .target_table()
            .unwrap_or_else(|| QualifiedName::new("public", stem.replace('-', "_")));
        let req = ConvertRequest {
            spec: spec.into_owned(),
            input: Input {
                path: PathBuf::from(self.staged_input(job)?),
                display: job.input.uri.clone(),
            },
            output: dir.output().join(name),
            format,
            table,
            progress: self.settings.progress,
            digest: cspec.validate.unwrap_or(true),
        };
        Ok((req, cspec.validate.unwrap_or(true)))
    }

    async fn convert(&self, job: &Job) -> Result<StepResult, FerryError> {
        let (req, _) = self.convert_request(job)?;
        std::fs::create_dir_all(self.job_dir(job)?.output())
            .map_err(|e| FerryError::io("creating the output folder", e))?;
        let r = convert(&req).await?;
        Ok(StepResult {
            rows: Some(r.rows),
            bytes: Some(r.output_bytes),
            outputs: BTreeMap::new(),
        }
        .output("output", r.output.display().to_string())
        .output("format", r.format)
        .rejects(r.rejected, r.rejects.as_deref()))
    }

    async fn validate(&self, job: &Job) -> Result<StepResult, FerryError> {
        let (req, wanted) = self.convert_request(job)?;
        if !wanted {
            return Ok(
                StepResult::default().output("validation", "skipped ([convert] validate = false)")
            );
        }
        let v = validate(&req).await?;
        if !v.is_valid() {
            let mut msg = v.problems.join("; ");
            if let Some(d) = &v.first_difference {
                msg.push_str(&format!(
                    "; first difference: row {}, column {:?}: input {}, output {}",
                    d.row, d.column, d.source, d.written
                ));
            }
            return Err(FerryError::Invalid(format!(
                "{msg} (report: {})",
                report_path(&req.output, "validation.json").display()
            )));
        }
        Ok(StepResult {
            rows: Some(v.rows.1),
            bytes: None,
            outputs: BTreeMap::new(),
        }
        .output("validation", "valid"))
    }

    /// efs-s3-uploader: `manifest.json` + `file.zip` of the artifacts (or the
    /// converted output and its reports), uploaded to
    /// `<output>/<dataset>/<job_id>/<stamp>/`.
    async fn upload(&self, job: &Job) -> Result<StepResult, FerryError> {
        let dir = self.job_dir(job)?;
        let workflow = job.workflow.unwrap_or_default();
        let transform: Option<TransformReport> = std::fs::read(dir.file(TRANSFORM_REPORT))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut entries = Vec::new();
        for folder in [dir.artifacts(), dir.output()] {
            for path in files_under(&folder)? {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let kind = if name == "load.sql" {
                    "driver"
                } else if name.ends_with(".sql") && folder == dir.artifacts() {
                    "sql"
                } else if name.ends_with(".pgcopy") && folder == dir.artifacts() {
                    "pgcopy"
                } else if name.ends_with(".json") && folder == dir.output() {
                    "report"
                } else if name.ends_with(".rejects.jsonl") && folder == dir.output() {
                    "rejects"
                } else {
                    "output"
                };
                let rows = transform
                    .as_ref()
                    .and_then(|t| t.artifacts.iter().find(|a| a.path == path).map(|a| a.rows));
                entries.push(ZipEntry {
                    path,
                    kind: kind.into(),
                    rows,
                });
            }
        }
        for (name, kind) in [(TRANSFORM_REPORT, "report"), (REJECTS_FILE, "rejects")] {
            if dir.file(name).is_file() {
                entries.push(ZipEntry {
                    path: dir.file(name),
                    kind: kind.into(),
                    rows: None,
                });
            }
        }
        let main = match workflow {
            Workflow::Loader => [TRANSFORM_AND_LOAD, SQL_PROCESSOR],
            Workflow::Converter => [CONVERT, CONVERT],
        };
        let rows = job
            .steps
            .iter()
            .rev()
            .find(|s| s.attempt == job.attempts && main.contains(&s.step.as_str()))
            .and_then(|s| s.rows)
            .unwrap_or(0);
        let manifest = Manifest {
            job_id: job.job_id.clone(),
            dataset: job.dataset.clone().unwrap_or_default(),
            workflow: workflow.to_string(),
            input: job.input.uri.clone(),
            rows,
            created_at: jobs::now(),
            files: Vec::new(),
        };
        // A run whose load was already committed (a re-run after a crash)
        // wrote nothing into its folder: it may not exist yet.
        std::fs::create_dir_all(dir.root())
            .map_err(|e| FerryError::io(format!("creating {}", dir.root().display()), e))?;
        let archive_dir = dir.clone();
        let (manifest, zip_bytes) =
            tokio::task::spawn_blocking(move || archive(&archive_dir, manifest, &entries))
                .await
                .map_err(|e| FerryError::Internal(e.to_string()))??;
        let stamp = dir
            .root()
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let base = format!(
            "{}/{}/{}/{stamp}",
            self.settings.output.trim_end_matches('/'),
            manifest.dataset,
            job.job_id
        );
        let zip = store::upload(&dir.zip(), &format!("{base}/file.zip")).await?;
        let man =
            store::upload(&dir.file("manifest.json"), &format!("{base}/manifest.json")).await?;
        Ok(StepResult {
            rows: Some(rows),
            bytes: Some(zip_bytes),
            outputs: BTreeMap::new(),
        }
        .output("zip", zip.uri)
        .output("manifest", man.uri)
        .output("files", manifest.files.len()))
    }

    /// notify: ends the job (`succeeded`, or `failed` with `error`) and sends
    /// its event. Ending is idempotent, so a retried notify sends again
    /// without changing the job.
    pub async fn notify(&self, job_id: &str, error: Option<JobError>) -> Result<Job, FerryError> {
        let started = Instant::now();
        let started_at = jobs::now();
        let current = self.get(job_id).await?;
        let main = [TRANSFORM_AND_LOAD, SQL_PROCESSOR, CONVERT];
        let rows = current
            .steps
            .iter()
            .rev()
            .find(|s| {
                s.attempt == current.attempts
                    && main.contains(&s.step.as_str())
                    && s.error.is_none()
            })
            .and_then(|s| s.rows);
        let job = jobs::finish(self.store.as_ref(), job_id, error.clone(), rows).await?;
        let event = JobEvent::for_job(&job);
        let sent = self.notifier.send(&event).await;
        let result = StepResult::default().output("notified", self.notifier.describe());
        match sent {
            Ok(()) => {
                let job = self
                    .record(job_id, NOTIFY, &started_at, started, Ok(()), result)
                    .await?;
                if job.status == JobStatus::Succeeded {
                    // Done with: the artifacts are in the uploaded zip. (A failed job's
                    // folder stays for the retention period; see gc.)
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
                let err = job_error(NOTIFY, &e);
                self.record(
                    job_id,
                    NOTIFY,
                    &started_at,
                    started,
                    Err(&err),
                    StepResult::default(),
                )
                .await?;
                Err(e)
            }
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
        let job_id = admission.job.job_id.clone();
        let steps: &[&str] = match admission.job.workflow.unwrap_or_default() {
            Workflow::Loader => &[DOWNLOAD, TRANSFORM_AND_LOAD, UPLOAD],
            Workflow::Converter => &[DOWNLOAD, CONVERT, VALIDATE, UPLOAD],
        };
        for step in steps {
            if let Err(e) = self.run_step(&job_id, step).await {
                if let Err(n) = self.notify(&job_id, Some(job_error(step, &e))).await {
                    tracing::error!(job_id = %job_id, error = %n, "could not send the failure event");
                }
                return Err(e);
            }
        }
        let job = self.notify(&job_id, None).await?;
        Ok(Admission {
            job,
            run: true,
            duplicate: admission.duplicate,
        })
    }

    /// The task output a state machine passes on: the job's identity and
    /// state, and what the step did.
    pub fn task_output(job: &Job, step: &str, admission: Option<&Admission>) -> Value {
        let record = job.step(step);
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
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, FerryError> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn stems() {
        assert_eq!(
            super::stem_of("s3://b/in/orders 2026.csv.gz"),
            "orders_2026"
        );
        assert_eq!(super::stem_of("/x/.csv"), "output");
    }
}
