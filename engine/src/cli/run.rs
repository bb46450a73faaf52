//! `ferry run`: a whole job for one input, every step in this process.

use clap::Args;
use ferry_engine::error::FerryError;
use ferry_engine::load::ArtifactSource;
use ferry_engine::workflow::event::Trigger;

use super::job_args::{JobArgs, read_arg};
use super::jobs::print_job;

pub const RUN_HELP: &str = "\
Examples:
  ferry run --input data/in/orders/2026-11.csv          # routed by sql/*/dataset.toml [routing] keys
  ferry run --input s3://in-bucket/orders/2026-11.csv --output s3://out-bucket/ferry
  ferry run --event event.json                           # an EventBridge S3 Object Created event
  aws s3api ... | ferry run --event -

A job is created once per object version (bucket/key + version id, or + ETag);
running it again for the same object does nothing. Steps:
  Loader     create-job, s3-efs-downloader, transform+sql-processor (fused), efs-s3-uploader, notify
  Converter  create-job, s3-efs-downloader, convert, validate, efs-s3-uploader, notify
The job folder is <work-dir>/<job-id>/<ddmmyyyyhhmmss>/; file.zip and manifest.json
go to <output>/<dataset>/<job-id>/<ddmmyyyyhhmmss>/; one event per job goes to --notify.";

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

/// `ferry run`.
pub async fn run(args: RunArgs, interactive: bool) -> Result<(), FerryError> {
    let rt = args
        .job
        .runtime(interactive, ArtifactSource::Pgcopy, true, true)
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
