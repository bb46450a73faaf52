//! `ferry task <step>`: one step of a job, as a container task of the Step
//! Functions state machines (task tokens, heartbeats, error names).

use std::time::Duration;

use clap::Args;
use ferry_connectors::sfn::TaskToken;
use ferry_engine::error::FerryError;
use ferry_engine::load::ArtifactSource;
use ferry_engine::workflow::event::Trigger;
use ferry_engine::workflow::{Runtime, Step, answer};
use serde_json::Value;

use super::job_args::{JobArgs, read_arg};

pub const TASK_HELP: &str = "\
Examples (what the state machines run, each step in its own container):
  ferry task create-job --event @event.json
  ferry task s3-efs-downloader --job-id 0190…
  ferry task transform --job-id 0190…
  ferry task transform --job-id 0190… --part 3                 (one part of a split input)
  ferry task sql-processor --job-id 0190… [--from sql]
  ferry task convert --job-id 0190…
  ferry task validate --job-id 0190…
  ferry task efs-s3-uploader --job-id 0190…
  ferry task notify --job-id 0190…                              (the job succeeded)
  ferry task notify --job-id 0190… --caught States.HeartbeatTimeout   (a Catch caught this)

Only the job id travels: each step reads the job from the job store (ECS caps a task's
overrides at 8 KiB). --job '<a previous output, JSON>' or --job @job.json works too.
Each prints its output as one JSON object (job_id, status, run, rows, bytes, outputs)
for the next state. With a task token (--task-token or FERRY_TASK_TOKEN) it sends
heartbeats while working, then SendTaskSuccess with that output, or SendTaskFailure
with an error name for Retry/Catch:
  ferry.Transient   retrying may help (network, throttling, database restart)
  ferry.Input       bad input data        ferry.Config    bad spec, flags or routing
  ferry.Target      PostgreSQL refused    ferry.Invalid   validation by reconversion failed
  ferry.Internal    a bug";

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
    /// transform, convert: just part K of a split input ([source] split_size),
    /// as each item of a Distributed Map runs it. Plain transform (convert)
    /// cuts the input and runs the parts as child processes (with
    /// --defer-parts: outputs them, "parts": [0, 1, …]); sql-processor then
    /// loads them all as one load (validate reads every Parquet part back).
    #[arg(long, value_name = "K")]
    part: Option<usize>,
    /// transform, convert: leave a split input's parts to the orchestrator (a Step
    /// Functions Distributed Map over the output's "parts") instead of running
    /// them here as child processes.
    #[arg(long, env = "FERRY_DEFER_PARTS")]
    defer_parts: bool,
    #[command(flatten)]
    args: JobArgs,
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
pub async fn run(args: TaskArgs) -> Result<(), FerryError> {
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
    let mut rt = args
        .args
        .runtime(
            false,
            from,
            args.step == Step::CreateJob,
            // Only sql-processor runs COPY (a transform task, a part,
            // convert and validate keep every core).
            args.step == Step::SqlProcessor,
        )
        .await?;
    rt.settings.defer_parts = args.defer_parts;
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
    if let Some(k) = args.part {
        let out = match step {
            Step::Transform => rt.transform_part(&job_id, k).await?,
            Step::Convert => rt.convert_part(&job_id, k).await?,
            _ => {
                return Err(FerryError::Usage(format!(
                    "--part is for transform and convert, not {step}"
                )));
            }
        };
        return serde_json::to_value(out).map_err(|e| FerryError::Internal(e.to_string()));
    }
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
