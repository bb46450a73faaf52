//! The job commands of the `ferry` binary: `run`, `task`, `watch`, `jobs`.
//! (Part of the binary, not the library: argument parsing and printing only;
//! the work is `ferry_engine::workflow`.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use ferry_connectors::jobs::{self, Job, JobStatus};
use ferry_connectors::pg::PgConfig;
use ferry_connectors::pg::artifacts::ArtifactKinds;
use ferry_connectors::sfn::TaskToken;
use ferry_engine::error::FerryError;
use ferry_engine::load::ArtifactSource;
use ferry_engine::workflow::event::Trigger;
use ferry_engine::workflow::route::Routes;
use ferry_engine::workflow::watch::{WatchOptions, WatchSource, watch};
use ferry_engine::workflow::{Runtime, Settings, Step, steps};
use ferry_engine::workflow::{answer, gc};
use serde_json::{Value, json};

/// Where jobs, events, specs and outputs are: shared by run, task and watch.
#[derive(Args, Clone)]
pub struct JobArgs {
    /// Dataset specs, routed by their [routing] keys: a folder of <dataset>/ folders, or
    /// s3://bucket/prefix holding <dataset>/dataset.toml and transform.sql (fetched by
    /// create-job; each job keeps a copy of its spec, which its later steps read).
    #[arg(
        long,
        env = "FERRY_SPECS",
        default_value = "sql",
        value_name = "DIR|S3-URI"
    )]
    specs: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Job events: file://PATH (JSON lines), sns://TOPIC-ARN or eventbridge://BUS
    /// [default: <work-dir>/events.jsonl].
    #[arg(long, env = "FERRY_NOTIFY", value_name = "URL")]
    notify: Option<String>,
    /// Where file.zip and manifest.json go: s3://bucket/prefix or a folder
    /// [default: <work-dir>/../output].
    #[arg(long, env = "FERRY_OUTPUT", value_name = "URI")]
    output: Option<String>,
    /// PostgreSQL URL (Loader datasets).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
    /// Parallel COPY connections [default: by load mode].
    #[arg(long, value_name = "N")]
    streams: Option<usize>,
    /// Load even if the ledger says the input is already loaded.
    #[arg(long)]
    force: bool,
    /// Artifact part size.
    #[arg(long, default_value = "256MiB", value_name = "SIZE")]
    part_size: bytesize::ByteSize,
    /// How long a running job may go without its worker renewing it before another
    /// worker takes it over (a killed worker never finishes its job); renewed every
    /// quarter of this while a step runs.
    #[arg(
        long,
        env = "FERRY_JOB_LEASE",
        default_value = "15m",
        value_name = "DURATION"
    )]
    job_lease: humantime::Duration,
    #[command(flatten)]
    retention: Retention,
}

/// How long working storage keeps what is not removed at once.
#[derive(Args, Clone)]
pub struct Retention {
    /// How long a failed job's folder (and a `ferry load` / `ferry convert`
    /// folder) stays in working storage before it is removed; a succeeded
    /// job's folder goes when the job ends. Swept when run, watch, load and
    /// convert start; `ferry jobs gc` sweeps by hand.
    #[arg(
        long,
        env = "FERRY_WORK_RETENTION",
        default_value = "7d",
        value_name = "DURATION"
    )]
    work_retention: humantime::Duration,
}

impl Retention {
    /// Sweeps `work` (see [`gc::sweep`]); a sweep that fails is logged, not
    /// fatal: the command's own work matters more than the cleanup.
    pub async fn sweep(&self, work: &std::path::Path, store: Option<&dyn jobs::JobStore>) {
        match gc::sweep(work, store, self.work_retention.into(), chrono::Utc::now()).await {
            Ok(r) if !r.removed.is_empty() => tracing::info!(
                folders = r.removed.len(),
                bytes = r.bytes,
                "removed job folders older than the working-storage retention"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not sweep working storage"),
        }
    }

    /// [`Retention::sweep`] for the commands without a job store of their
    /// own (load, convert): the local job store in `work`, if there is one,
    /// says which folders belong to running jobs.
    pub async fn sweep_local(&self, work: &std::path::Path) {
        let store = if work.join("jobs.db").is_file() {
            jobs::open(None, work).await.ok()
        } else {
            None
        };
        self.sweep(work, store.as_deref()).await;
    }
}

impl JobArgs {
    /// `route`: whether this command routes inputs (create-job, run, watch). The
    /// other steps read the spec pinned in their job's folder, so specs in S3 are
    /// not fetched for them (and their task roles need no access to the specs).
    async fn runtime(
        &self,
        progress: bool,
        from: ArtifactSource,
        route: bool,
    ) -> Result<Runtime, FerryError> {
        let work_dir = self.store.work_dir()?;
        let store = self.store.open().await?;
        let notifier = ferry_connectors::notify::open(self.notify.as_deref(), &work_dir).await?;
        let (routes, fetched) = Routes::open(&self.specs, route, &work_dir).await?;
        let pg = match &self.database_url {
            Some(url) => Some(PgConfig::from_url_or_env(Some(url))?),
            None => PgConfig::from_url_or_env(None).ok(),
        };
        if let Some(pg) = &pg {
            // Leave a local server's COPY backend a core (see worker_threads).
            let threads = ferry_engine::load::worker_threads(pg, self.streams.unwrap_or(1));
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build_global();
        }
        let output = self.output.clone().unwrap_or_else(|| {
            work_dir
                .parent()
                .map_or_else(|| work_dir.join("output"), |p| p.join("output"))
                .display()
                .to_string()
        });
        Ok(Runtime {
            settings: Settings {
                work_dir,
                output,
                streams: self.streams,
                artifacts: ArtifactKinds {
                    sql: true,
                    pgcopy: true,
                },
                part_bytes: self.part_size.as_u64(),
                force: self.force,
                progress,
                from,
                lease: self.job_lease.into(),
            },
            store,
            notifier,
            routes,
            pg,
            fetched_specs: fetched,
        })
    }
}

/// `ferry run`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["input", "event"])))]
pub struct RunArgs {
    /// The input: a path, file:///path or s3://bucket/key (routed by the specs' globs).
    #[arg(short, long, value_name = "URI")]
    input: Option<String>,
    /// An S3 Object Created event as EventBridge delivers it: a file, inline JSON, or - for stdin.
    #[arg(long, value_name = "FILE|JSON|-")]
    event: Option<String>,
    #[command(flatten)]
    job: JobArgs,
    /// Print the job as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// `ferry task`.
#[derive(Args)]
pub struct TaskArgs {
    /// The step to run.
    step: Step,
    /// The job's id: the step reads everything else from the job record.
    /// This is what the state machines pass (ECS caps a task's overrides at
    /// 8 KiB, too little for a job with a long S3 key and a long error).
    #[arg(long, value_name = "ID", conflicts_with = "job")]
    job_id: Option<String>,
    /// The job as JSON with "job_id" (a previous task's output), or @FILE;
    /// the same as --job-id with the id inside. create-job takes the event
    /// instead: --event, or the S3 event as --job.
    #[arg(long, value_name = "JSON|@FILE")]
    job: Option<String>,
    /// notify: the name of the error a state machine's Catch caught (e.g.
    /// States.HeartbeatTimeout); the job ends failed. The failed step's own
    /// recorded error, with its message, is preferred when there is one.
    #[arg(long, value_name = "ERROR")]
    caught: Option<String>,
    /// create-job: the S3 Object Created event (JSON, @FILE, or - for stdin).
    #[arg(long, value_name = "JSON|@FILE|-")]
    event: Option<String>,
    /// create-job: an input URI instead of an event.
    #[arg(short, long, value_name = "URI")]
    input: Option<String>,
    /// A Step Functions task token (.waitForTaskToken): heartbeats while the
    /// step runs, then SendTaskSuccess with the output or SendTaskFailure.
    #[arg(
        long,
        env = "FERRY_TASK_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    task_token: Option<String>,
    /// Seconds between heartbeats (keep it under the state's HeartbeatSeconds).
    #[arg(long, env = "FERRY_HEARTBEAT_SECONDS", default_value_t = 30)]
    heartbeat_seconds: u64,
    /// sql-processor: load the .pgcopy files (binary COPY) or replay the .sql files
    /// (a dataset's [target] load_from wins); transform writes the .pgcopy parts only when needed.
    #[arg(long, env = "FERRY_LOAD_FROM", default_value = "pgcopy", value_parser = ["pgcopy", "sql"])]
    from: String,
    #[command(flatten)]
    args: JobArgs,
}

/// The container-task contract, read off the CLI's own definitions: the
/// step names and their help, which flag and variable carries each setting,
/// and the error names a state machine's Retry/Catch sees. `cdk/` builds the
/// state machines from the checked-in copy (`containers/ferry-tasks.json`),
/// and a test keeps that copy equal to this, so neither side can drift.
/// `root` is the whole CLI (its global flags apply to `task` too).
pub fn task_contract(root: &clap::Command) -> Value {
    let task = root
        .find_subcommand("task")
        .expect("the CLI has a task subcommand");
    let mut steps = serde_json::Map::new();
    for step in Step::TASKS {
        let (flag, placeholder) = if step == Step::CreateJob {
            ("--event", "<EventBridge S3 Object Created event, JSON>")
        } else {
            ("--job-id", "<job id>")
        };
        steps.insert(
            step.name().to_string(),
            json!({
                "summary": step.summary(),
                "command": ["task", step.name(), flag, placeholder],
                "outputs": steps::output_fields(step),
            }),
        );
    }
    let mut environment = serde_json::Map::new();
    for arg in root.get_arguments().chain(task.get_arguments()) {
        if let Some(env) = arg.get_env() {
            environment.insert(
                env.to_string_lossy().into_owned(),
                json!({
                    "flag": format!("--{}", arg.get_long().unwrap_or_default()),
                    "help": arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
                }),
            );
        }
    }
    json!({
        "schema": "ferry.tasks.v2",
        "entrypoint": "ferry",
        "workflows": {
            "loader": Step::LOADER,
            "converter": Step::CONVERTER,
        },
        "steps": steps,
        "environment": environment,
        "job_store": {
            "partition_key": ferry_connectors::jobs::dynamodb::PARTITION_KEY,
            "status_index": {
                "name": ferry_connectors::jobs::dynamodb::STATUS_INDEX,
                "partition_key": ferry_connectors::jobs::dynamodb::STATUS_KEY,
                "sort_key": ferry_connectors::jobs::dynamodb::CREATED_KEY,
            },
        },
        // The notify that ends a job a Catch caught: the job id and the
        // caught error's name (its cause may be 32 KiB: it stays in the state).
        "notify_failure": {
            "command": ["task", Step::Notify.name(), "--job-id", "<job id>", "--caught", "<error name>"],
        },
        "database_environment": ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE", "PGSSLROOTCERT"],
        "errors": {
            "retryable": ["ferry.Transient"],
            "not_retryable": ["ferry.Input", "ferry.Config", "ferry.Target", "ferry.Invalid", "ferry.Internal"],
        },
    })
}

/// [`task_contract`] as the pretty JSON that is checked in.
pub fn task_contract_json(root: &clap::Command) -> String {
    serde_json::to_string_pretty(&task_contract(root)).expect("JSON values serialise")
}

/// `ferry watch`.
#[derive(Args)]
pub struct WatchArgs {
    /// A folder, s3://bucket/prefix, or an SQS queue URL receiving EventBridge S3 events.
    source: String,
    /// Jobs at once.
    #[arg(long, default_value_t = 2, value_name = "N")]
    concurrency: usize,
    /// Exit after this many seconds with nothing running and nothing new.
    #[arg(long, value_name = "SECONDS")]
    idle_exit: Option<f64>,
    /// Seconds between S3 listings (and the SQS long-poll wait).
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    poll: f64,
    #[command(flatten)]
    job: JobArgs,
}

/// `ferry jobs`.
#[derive(Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs with this status: pending, running, succeeded, failed.
        #[arg(long)]
        status: Option<JobStatus>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove job folders from working storage: succeeded jobs' (normally
    /// removed by their notify step), and failed jobs' and `ferry load` /
    /// `ferry convert` folders older than --older-than. Folders of pending or
    /// running jobs are never touched.
    Gc {
        /// Keep failed jobs' and job-less folders younger than this (e.g. 7d, 12h, 0s).
        #[arg(long, default_value = "7d", value_name = "DURATION")]
        older_than: humantime::Duration,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one job with its steps.
    Show {
        /// The job id.
        id: String,
        /// Print the job record as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where the job store (and working storage) is.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Job store: sqlite://PATH or dynamodb://TABLE [default: sqlite://<work-dir>/jobs.db].
    #[arg(long, env = "FERRY_JOB_STORE", value_name = "URL")]
    job_store: Option<String>,
    /// Working storage (the EFS mount in AWS; the default job store is in it).
    #[arg(
        long,
        env = "FERRY_WORK_DIR",
        default_value = ".ferry/work",
        value_name = "DIR"
    )]
    work_dir: PathBuf,
}

impl StoreArgs {
    fn work_dir(&self) -> Result<PathBuf, FerryError> {
        std::path::absolute(&self.work_dir).map_err(|e| {
            FerryError::io(format!("working directory {}", self.work_dir.display()), e)
        })
    }

    async fn open(&self) -> Result<Arc<dyn jobs::JobStore>, FerryError> {
        Ok(jobs::open(self.job_store.as_deref(), &self.work_dir()?).await?)
    }
}

fn read_arg(text: &str) -> Result<String, FerryError> {
    if text == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| FerryError::io("reading stdin", e))?;
        return Ok(s);
    }
    let trimmed = text.trim_start();
    let path = match text.strip_prefix('@') {
        Some(p) => Some(p),
        // Inline JSON, or a file name.
        None if !trimmed.starts_with('{') && std::path::Path::new(text).is_file() => Some(text),
        None => None,
    };
    match path {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| FerryError::io(format!("reading {p}"), e))
        }
        None => Ok(text.to_string()),
    }
}

fn print_job_line(job: &Job) {
    outln!(
        "{}  {:<9}  {:<9}  {:<12}  {:>10}  {}",
        job.job_id,
        job.status.as_str(),
        job.workflow
            .map(|w| w.to_string())
            .unwrap_or_else(|| "-".into()),
        job.dataset.as_deref().unwrap_or("-"),
        job.rows
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into()),
        job.input.uri
    );
}

fn print_job(job: &Job) {
    outln!("job       {}", job.job_id);
    outln!("status    {}", job.status.as_str());
    outln!("input     {}", job.input.uri);
    outln!(
        "dataset   {}",
        job.dataset.as_deref().unwrap_or("- (not routed)")
    );
    outln!(
        "workflow  {}",
        job.workflow
            .map(|w| w.to_string())
            .unwrap_or_else(|| "-".into())
    );
    outln!("created   {}", job.created_at);
    outln!("updated   {}", job.updated_at);
    outln!("attempts  {}", job.attempts);
    outln!("folder    {}", job.dir);
    if let Some(r) = job.rows {
        outln!("rows      {r}");
    }
    if let Some(e) = &job.error {
        outln!("error     {} in {}: {}", e.name, e.step, e.message);
    }
    outln!("steps:");
    for s in &job.steps {
        let figures = [
            s.rows.map(|r| format!("{r} rows")),
            s.bytes.map(|b| format!("{b} bytes")),
            s.seconds.map(|t| format!("{t:.2} s")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let state = match (&s.error, &s.finished_at) {
            (Some(e), _) => format!("FAILED {}: {}", e.name, e.message),
            (None, Some(_)) => "ok".into(),
            (None, None) => "running".into(),
        };
        outln!("  #{} {:<24} {state}  {figures}", s.attempt, s.step);
        for (k, v) in &s.outputs {
            outln!(
                "      {k}: {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            );
        }
    }
}

/// `ferry run`.
pub async fn run(args: RunArgs, interactive: bool) -> Result<(), FerryError> {
    let rt = args
        .job
        .runtime(interactive, ArtifactSource::Pgcopy, true)
        .await?;
    args.job
        .retention
        .sweep(&rt.settings.work_dir, Some(rt.store.as_ref()))
        .await;
    let trigger = match (&args.input, &args.event) {
        (Some(uri), _) => Trigger::from_uri(uri).await?,
        (None, Some(e)) => Trigger::from_event(&read_arg(e)?)?.with_identity().await?,
        (None, None) => return Err(FerryError::Usage("give --input or --event".into())),
    };
    let admission = rt.run(&trigger).await?;
    let job = &admission.job;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(job).unwrap_or_default());
    } else if !admission.run {
        outln!(
            "job {} for {} is already {}: nothing to do",
            job.job_id,
            job.input.uri,
            job.status.as_str()
        );
    } else {
        print_job(job);
    }
    Ok(())
}

fn job_id_of(text: &str) -> Result<String, FerryError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| FerryError::Usage(format!("--job is not JSON: {e}")))?;
    v.get("job_id")
        .or_else(|| v.pointer("/job/job_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            FerryError::Usage("--job has no \"job_id\" (pass a previous task's output)".into())
        })
}

/// The exit code of a task whose token Step Functions no longer accepts:
/// the external service's verdict (as for exit 5, a service failed), not a
/// fault of the input or the configuration.
const TOKEN_GONE_EXIT: i32 = 5;

/// `ferry task`.
pub async fn task(args: TaskArgs) -> Result<(), FerryError> {
    let token = match args.task_token.clone().filter(|t| !t.is_empty()) {
        Some(t) => Some(TaskToken::new(t).await),
        None => None,
    };
    let heartbeat = match &token {
        Some(t) => Some(
            t.heartbeat(Duration::from_secs(args.heartbeat_seconds.max(1)))
                .await,
        ),
        None => None,
    };
    let result = match &heartbeat {
        // A token that is no longer valid (the state timed out, the
        // execution was stopped) ends the step at once: nobody waits for its
        // answer, and a task left running bills and may still write. Exiting
        // is what a kill would do, which a load survives: its open
        // transaction rolls back and the job's lease lets a later worker take
        // the job over.
        Some(h) => tokio::select! {
            biased;
            reason = h.gone() => {
                eprintln!(
                    "ferry: error: task {}: the Step Functions task token is no longer valid ({reason}); stopping now, an open transaction rolls back",
                    args.step.name()
                );
                std::process::exit(TOKEN_GONE_EXIT);
            }
            r = task_inner(&args) => r,
        },
        None => task_inner(&args).await,
    };
    let beats = heartbeat.as_ref().map_or(0, |h| h.sent());
    drop(heartbeat);
    if let Some(t) = &token {
        tracing::info!(
            step = args.step.name(),
            heartbeats = beats,
            "answering the task token"
        );
        let answered = match &result {
            Ok(out) => t.succeed(out).await,
            Err(e) => {
                t.fail(e.error_name(), &answer::failure_cause(args.step.name(), e))
                    .await
            }
        };
        if let Err(e) = answered {
            tracing::error!(error = %e, "could not answer the task token");
            if result.is_ok() {
                return Err(e.into());
            }
        }
    }
    let out = result?;
    outln!("{}", serde_json::to_string(&out).unwrap_or_default());
    Ok(())
}

async fn task_inner(args: &TaskArgs) -> Result<Value, FerryError> {
    let from = if args.from == "sql" {
        ArtifactSource::Sql
    } else {
        ArtifactSource::Pgcopy
    };
    let rt = args
        .args
        .runtime(false, from, args.step == Step::CreateJob)
        .await?;
    let step = args.step;
    if step == Step::CreateJob {
        let trigger = match (&args.input, &args.event, &args.job) {
            (Some(uri), _, _) => Trigger::from_uri(uri).await?,
            (None, Some(e), _) | (None, None, Some(e)) => {
                let text = read_arg(e)?;
                // Step Functions passes its input; the event may sit under "event".
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match v.get("event") {
                    Some(inner) => Trigger::from_event(&inner.to_string())?,
                    None => Trigger::from_event(&text)?,
                }
                .with_identity()
                .await?
            }
            (None, None, None) => {
                return Err(FerryError::Usage(
                    "create-job needs --event or --input".into(),
                ));
            }
        };
        let admission = rt.create_job(&trigger).await?;
        return Ok(Runtime::task_output(&admission.job, step, Some(&admission)));
    }
    let text = args.job.as_deref().map(read_arg).transpose()?;
    let job_id = match (&args.job_id, &text) {
        (Some(id), _) => id.clone(),
        (None, Some(text)) => job_id_of(text)?,
        (None, None) => {
            return Err(FerryError::Usage(format!(
                "{step} needs --job-id (or --job with a previous task's output)"
            )));
        }
    };
    let job = match step {
        Step::Notify => {
            let current = rt
                .store
                .get(&job_id)
                .await?
                .ok_or_else(|| FerryError::Usage(format!("no job {job_id}")))?;
            let error = answer::caught_error(args.caught.as_deref(), text.as_deref(), &current);
            rt.notify(&job_id, error).await?
        }
        _ => rt.run_step(&job_id, step).await?,
    };
    Ok(Runtime::task_output(&job, step, None))
}

/// `ferry watch`.
pub async fn watch_cmd(args: WatchArgs, interactive: bool) -> Result<(), FerryError> {
    let source = WatchSource::parse(&args.source)?;
    let rt = Arc::new(
        args.job
            .runtime(interactive, ArtifactSource::Pgcopy, true)
            .await?,
    );
    args.job
        .retention
        .sweep(&rt.settings.work_dir, Some(rt.store.as_ref()))
        .await;
    let summary = watch(
        rt,
        source,
        WatchOptions {
            concurrency: args.concurrency,
            idle_exit: args.idle_exit.map(Duration::from_secs_f64),
            poll: Duration::from_secs_f64(args.poll.max(0.1)),
        },
    )
    .await?;
    outln!(
        "watch: {} succeeded, {} failed, {} duplicate events",
        summary.succeeded,
        summary.failed,
        summary.duplicates
    );
    Ok(())
}

/// `ferry jobs`.
pub async fn jobs_cmd(cmd: JobsCommand) -> Result<(), FerryError> {
    match cmd {
        JobsCommand::List {
            status,
            limit,
            json,
            store,
        } => {
            let list = store.open().await?.list(status, limit).await?;
            if json {
                for j in &list {
                    outln!("{}", serde_json::to_string(j).unwrap_or_default());
                }
            } else {
                outln!(
                    "{:<36}  {:<9}  {:<9}  {:<12}  {:>10}  input",
                    "job",
                    "status",
                    "workflow",
                    "dataset",
                    "rows"
                );
                for j in &list {
                    print_job_line(j);
                }
            }
            Ok(())
        }
        JobsCommand::Gc {
            older_than,
            json,
            store,
        } => {
            let work = store.work_dir()?;
            let jobs = store.open().await?;
            let now = chrono::Utc::now();
            let mut report = gc::sweep(&work, Some(jobs.as_ref()), older_than.into(), now).await?;
            let unfinished = gc::unfinished(jobs.as_ref(), now).await?;
            unfinished.log();
            let oldest = unfinished.summary();
            report.unfinished = Some(unfinished);
            if json {
                outln!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                outln!(
                    "removed {} job folders ({}) from {}; kept {} of pending or running jobs and {} younger than {older_than}{}",
                    report.removed.len(),
                    bytesize::ByteSize::b(report.bytes),
                    work.display(),
                    report.active,
                    report.young,
                    oldest.unwrap_or_default()
                );
            }
            Ok(())
        }
        JobsCommand::Show { id, json, store } => {
            let s = store.open().await?;
            let job = s
                .get(&id)
                .await?
                .ok_or_else(|| FerryError::Usage(format!("no job {id} in {}", s.describe())))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
            } else {
                print_job(&job);
            }
            Ok(())
        }
    }
}
