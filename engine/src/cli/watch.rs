//! `ferry watch`: jobs as objects arrive in a folder, an S3 prefix or an SQS
//! queue of S3 events.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ferry_engine::error::FerryError;
use ferry_engine::load::ArtifactSource;
use ferry_engine::workflow::watch::{WatchOptions, WatchSource, watch};

use super::job_args::JobArgs;

pub const WATCH_HELP: &str = "\
Examples:
  ferry watch data/incoming                     # file-system notifications; existing files too
  ferry watch data/backlog --once --concurrency 4   # what is there now, then exit
  ferry watch s3://in-bucket/incoming/ --poll 10
  ferry watch https://sqs.eu-west-1.amazonaws.com/123456789012/ferry-events --concurrency 4

An SQS message is deleted only after its job ended (succeeded, failed for good, or was
a duplicate); after a transient failure it becomes visible again and is retried.";

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
    /// Run the jobs of what is there now (a folder's files, one S3 listing, the SQS
    /// queue until a receive is empty), then exit: a backlog, with no idle wait.
    #[arg(long, conflicts_with = "idle_exit")]
    once: bool,
    #[command(flatten)]
    job: JobArgs,
}

/// `ferry watch`.
pub async fn run(args: WatchArgs, interactive: bool) -> Result<(), FerryError> {
    let source = WatchSource::parse(&args.source)?;
    let rt = Arc::new(
        args.job
            .runtime(interactive, ArtifactSource::Pgcopy, true, true)
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
            once: args.once,
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
