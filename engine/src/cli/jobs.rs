//! `ferry jobs list|show|gc`: the job store and working storage, by hand.

use clap::Subcommand;
use ferry_connectors::jobs::{Job, JobStatus};
use ferry_engine::error::FerryError;
use ferry_engine::workflow::gc;

use super::job_args::StoreArgs;

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

/// `ferry jobs`.
pub async fn run(cmd: JobsCommand) -> Result<(), FerryError> {
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

/// A job with its steps and their outputs, for a person.
pub fn print_job(job: &Job) {
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
    if let Some(origin) = job.origin {
        outln!("origin    ferry {origin} (one-off: its folder is kept for the retention period)");
    }
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
