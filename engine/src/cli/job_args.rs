//! The settings every job command shares (run, task, watch, jobs): where
//! specs, jobs, events, outputs and working storage are, and how long
//! working storage keeps what it holds.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use ferry_connectors::jobs;
use ferry_connectors::pg::PgConfig;
use ferry_engine::error::FerryError;
use ferry_engine::load::ArtifactSource;
use ferry_engine::workflow::gc;
use ferry_engine::workflow::parts::PartCommand;
use ferry_engine::workflow::route::Routes;
use ferry_engine::workflow::{Runtime, Settings};

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
    /// An AWS Secrets Manager secret (name or ARN) holding the database's host, port,
    /// username, password and dbname as RDS writes them, read once at start: for the
    /// Lambda function, whose environment no runtime fills from a secret (ECS tasks get
    /// PG* variables instead). Each field neither the URL nor a PG* variable gives comes from it.
    #[arg(long, env = "FERRY_DATABASE_SECRET", value_name = "SECRET")]
    database_secret: Option<String>,
    /// Parallel COPY connections [default: by load mode].
    #[arg(long, value_name = "N")]
    streams: Option<usize>,
    /// PostgreSQL connections this process opens at once, over all its jobs and COPY
    /// streams; a job that needs one more waits for it (a burst queues instead of
    /// exhausting the server's slots). Clean connections are kept for the next job.
    #[arg(
        long,
        env = "FERRY_MAX_CONNECTIONS",
        default_value_t = 10,
        value_name = "N"
    )]
    max_connections: usize,
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
    pub retention: Retention,
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
}

impl JobArgs {
    /// Where the dataset specs are (a folder or an S3 prefix).
    pub fn specs(&self) -> &std::path::Path {
        &self.specs
    }

    /// `route`: whether this command routes inputs (create-job, run, watch). The
    /// other steps read the spec pinned in their job's folder, so specs in S3 are
    /// not fetched for them (and their task roles need no access to the specs).
    /// `loads`: whether it may load into PostgreSQL (a routing command: if a
    /// dataset is a Loader); a local server's COPY backends then get cores of
    /// their own, while a Converter's steps keep every core.
    pub async fn runtime(
        &self,
        progress: bool,
        from: ArtifactSource,
        route: bool,
        loads: bool,
    ) -> Result<Runtime, FerryError> {
        let work_dir = self.store.work_dir()?;
        let store = self.store.open().await?;
        let notifier = ferry_connectors::notify::open(self.notify.as_deref(), &work_dir).await?;
        let (routes, fetched) = Routes::open(&self.specs, route, &work_dir).await?;
        let secret = match &self.database_secret {
            Some(id) => Some(
                ferry_connectors::secrets::database_secret(id)
                    .await
                    .map_err(FerryError::from)?,
            ),
            None => None,
        };
        let pg = match (&self.database_url, &secret) {
            (None, None) => PgConfig::from_url_or_env(None).ok(),
            (url, secret) => Some(PgConfig::from_sources(url.as_deref(), secret.as_ref())?),
        }
        .map(|pg| pg.with_pool(self.max_connections));
        // Routes from S3 are fetched only where inputs are routed; without
        // them (`Routes::none`) the step alone says whether it loads.
        let loads = loads && (routes.any_loader() || routes.names().is_empty());
        if let Some(pg) = pg.as_ref().filter(|_| loads) {
            crate::tuning::size_worker_pool(pg, self.streams.unwrap_or(1));
        }
        let mut settings = Settings::new(work_dir);
        if let Some(output) = &self.output {
            settings.output = output.clone();
        }
        settings.streams = self.streams;
        settings.part_bytes = self.part_size.as_u64();
        settings.force = self.force;
        settings.progress = progress;
        settings.from = from;
        settings.lease = self.job_lease.into();
        settings.parts = self.part_command(&settings.work_dir);
        Ok(Runtime {
            settings,
            store,
            notifier,
            routes,
            pg,
            fetched_specs: fetched,
        })
    }
}

/// Where the job store (and working storage) is.
impl JobArgs {
    /// How this run starts the parts of a split input: this binary as
    /// `ferry task transform|convert`, with the settings that find the same specs,
    /// job store, working storage and database (the URL in the
    /// environment, not in argv, where `ps` would show its password).
    fn part_command(&self, work_dir: &std::path::Path) -> Option<PartCommand> {
        let program = std::env::current_exe().ok()?;
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        let mut flag = |name: &str, value: std::ffi::OsString| {
            args.push(name.into());
            args.push(value);
        };
        flag("--specs", self.specs.clone().into_os_string());
        flag("--work-dir", work_dir.as_os_str().to_owned());
        if let Some(store) = &self.store.job_store {
            flag("--job-store", store.into());
        }
        if let Some(secret) = &self.database_secret {
            flag("--database-secret", secret.into());
        }
        flag("--max-connections", self.max_connections.to_string().into());
        flag("--part-size", self.part_size.as_u64().to_string().into());
        flag(
            "--job-lease",
            humantime::format_duration(self.job_lease.into())
                .to_string()
                .into(),
        );
        let env = self
            .database_url
            .iter()
            .map(|url| ("DATABASE_URL".to_string(), url.clone()))
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some(PartCommand {
            program,
            args,
            env,
            parallel: (cores / 4).max(1),
        })
    }
}

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
    pub fn work_dir(&self) -> Result<PathBuf, FerryError> {
        std::path::absolute(&self.work_dir).map_err(|e| {
            FerryError::io(format!("working directory {}", self.work_dir.display()), e)
        })
    }

    pub async fn open(&self) -> Result<Arc<dyn jobs::JobStore>, FerryError> {
        Ok(jobs::open(self.job_store.as_deref(), &self.work_dir()?).await?)
    }
}

/// A `--job`/`--event` argument: inline JSON, `@FILE`, a file name, or `-` for stdin.
pub fn read_arg(text: &str) -> Result<String, FerryError> {
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
