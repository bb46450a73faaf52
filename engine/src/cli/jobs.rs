//! `ferry jobs list|show|gc`: the job store and working storage, by hand.

use clap::Subcommand;
use ferry_connectors::jobs::{Job, JobStatus};
use ferry_connectors::pg::PgConfig;
use ferry_connectors::pg::receipt::Receipt;
use ferry_connectors::pg::undo::{UndoError, undo_load};
use ferry_engine::error::FerryError;
use ferry_engine::workflow::gc;

use super::job_args::StoreArgs;

/// `ferry jobs`.
#[derive(Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs with this status: pending, running, succeeded, failed, undone.
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
    /// Remove exactly the rows a load job added — found by the `_ferry_job_id` lineage
    /// column (`[target] lineage = ["job_id"]`) — in one transaction, and mark the job and
    /// its ledger entry undone, so the input can be loaded again.
    #[command(
        after_help = "Refused, changing nothing, for a replace or delete-insert load, an upsert that\nupdated rows, a table without _ferry_job_id, or rows of the job another load has\nchanged since.\n\nExample:\n  ferry jobs undo 01a219b7-f0c7-73f7-985c-a03e8c103f8f --database-url \"$DATABASE_URL\""
    )]
    Undo {
        /// The job id.
        id: String,
        /// PostgreSQL URL of the database the job loaded into.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
        database_url: Option<String>,
        /// Print what was removed as JSON.
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
        JobsCommand::Undo {
            id,
            database_url,
            json,
            store,
        } => {
            let s = store.open().await?;
            let job = s
                .get(&id)
                .await?
                .ok_or_else(|| FerryError::Usage(format!("no job {id} in {}", s.describe())))?;
            if job.status != JobStatus::Succeeded {
                return Err(FerryError::Usage(format!(
                    "cannot undo job {id}: it is {}, and only a succeeded load can be undone",
                    job.status.as_str()
                )));
            }
            let pg = PgConfig::from_url_or_env(database_url.as_deref())?;
            let undone = undo_load(&pg, &id).await.map_err(|e| match e {
                UndoError::Pg(e) => FerryError::Pg(e),
                refused => FerryError::Usage(refused.to_string()),
            })?;
            let outputs = [
                ("target".to_string(), serde_json::json!(undone.target)),
                ("rows_removed".to_string(), serde_json::json!(undone.rows)),
            ]
            .into();
            ferry_connectors::jobs::mark_undone(s.as_ref(), &id, outputs, undone.rows)
                .await
                .map_err(|e| {
                    FerryError::Internal(format!(
                        "the job's {} rows were removed from {} and its ledger entry marked undone, but recording it in {} failed: {e}",
                        undone.rows,
                        undone.target,
                        s.describe()
                    ))
                })?;
            if json {
                outln!("{}", serde_json::to_string(&undone).unwrap_or_default());
            } else {
                outln!(
                    "undone: removed the {} row(s) job {id} loaded into {}; {} can be loaded again",
                    undone.rows,
                    undone.target,
                    undone.input
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

/// The load's receipt, for a person: what was proven and each column's
/// digest (the figures `ferry verify` recomputes).
fn print_receipt(job: &Job) {
    let Some(receipt) = job
        .steps
        .iter()
        .rev()
        .find_map(|s| s.outputs.get("receipt"))
        .and_then(|v| serde_json::from_value::<Receipt>(v.clone()).ok())
    else {
        return;
    };
    outln!("receipt   {}", receipt.summary());
    outln!(
        "          input {} ({}); method {}",
        receipt.input,
        receipt.checksum,
        receipt.method
    );
    if let Some(d) = &receipt.digest {
        outln!("          row digest {d}");
    }
    for c in &receipt.columns {
        let how = match (&c.check.except, &c.check.unchecked) {
            (_, Some(why)) => format!("  not compared: {why}"),
            (Some(e), None) => format!("  after {e}"),
            (None, None) => String::new(),
        };
        outln!(
            "          {:<24} {:<18} nulls {:<8} digest {}{how}",
            c.check.name,
            c.check.pg,
            c.nulls,
            c.digest
        );
    }
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
            if k == "receipt" {
                outln!("      receipt: below");
                continue;
            }
            outln!(
                "      {k}: {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            );
        }
    }
    print_receipt(job);
}
