//! `ferry lambda`: the fast path for small objects. Each AWS Lambda
//! invocation runs one object's whole workflow in this process, exactly as
//! `ferry run --event` does (create-job, the steps, notify: the same job
//! record, ledger, artifacts and events), through the official Rust runtime
//! (`lambda_runtime`). The runtime (job store, specs, PostgreSQL pool) is
//! built once per sandbox and reused by every invocation it serves.
//!
//! An invocation that cannot finish (Lambda's timeout or memory) is killed
//! by Lambda; the state machine then hands the object to the ECS path, whose
//! create-job may take the job over at once: the job records this
//! invocation's deadline as its lease's end (`Job::lease_until`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;
use ferry_engine::error::FerryError;
use ferry_engine::load::ArtifactSource;
use ferry_engine::workflow::event::Trigger;
use ferry_engine::workflow::route::Routes;
use ferry_engine::workflow::{Runtime, Step, answer};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::sync::Mutex;

use super::job_args::JobArgs;

pub const LAMBDA_HELP: &str = "\
Run as an AWS Lambda function (the image's command `lambda`, or a zip's bootstrap):
each invocation's payload is an S3 Object Created event as EventBridge delivers it
(the Orchestrator state machine passes its input), and the invocation runs that
object's whole job, as `ferry run --event` would. The result is the job's summary
(job_id, status, run, rows, outputs); a failed job fails the invocation with its
error name (ferry.Input, ferry.Target, …) as errorType, for the state machine. A job
that failed transiently (ferry.Transient) is left failed but not notified: the state
machine tries again, then hands the object to the ECS path, which notifies the outcome.

Configured like `ferry task` (FERRY_JOB_STORE, FERRY_WORK_DIR, FERRY_SPECS,
FERRY_OUTPUT, FERRY_NOTIFY, DATABASE_URL or PG*). The Lambda runtime sets
AWS_LAMBDA_RUNTIME_API and the function's name, version and memory; locally,
`cargo lambda watch --only-lambda-apis` serves the same API:
  AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:9000/.rt/ferry AWS_LAMBDA_FUNCTION_NAME=ferry \\
  AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=2048 ferry lambda";

/// Room left in a function error's message for the escapes Step Functions
/// adds when it wraps the error into an execution's cause (32,768 at most).
const CAUSE_BYTES: usize = 16_000;

/// A deadline before 2001 is not an epoch time: `cargo lambda watch` sends
/// its own timeout (in milliseconds) in the deadline header.
const PLAUSIBLE_DEADLINE_MS: u64 = 978_307_200_000;

/// `ferry lambda`.
#[derive(Args)]
pub struct LambdaArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The function's timeout (the stack sets it to the function's own): the
    /// latest an invocation can still be alive, and so the end of the lease
    /// of the job it claims. The runtime's deadline wins when it is earlier.
    #[arg(
        long,
        env = "FERRY_LAMBDA_TIMEOUT_SECONDS",
        default_value_t = 900,
        value_name = "SECONDS"
    )]
    timeout_seconds: u64,
}

/// `ferry lambda`: serves invocations until Lambda ends the sandbox.
pub async fn run(args: LambdaArgs) -> Result<(), FerryError> {
    let mut runtime = args
        .job
        .runtime(false, ArtifactSource::Pgcopy, true, true)
        .await?;
    let specs = args.job.specs().to_path_buf();
    // Specs fetched from S3 go to the sandbox's own /tmp, not to working storage, where a
    // sandbox Lambda ends without notice would leave them.
    refresh_specs(&mut runtime, &specs).await?;
    // A transient failure is the state machine's to retry (and then to hand to ECS), which
    // notifies the job's outcome once.
    runtime.settings.notify_transient = false;
    let timeout = Duration::from_secs(args.timeout_seconds);
    // One invocation at a time per sandbox (Lambda's model); the lock only
    // lets each invocation set its own deadline.
    let runtime = Arc::new(Mutex::new(runtime));
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let runtime = runtime.clone();
        let specs = specs.clone();
        async move {
            let mut rt = runtime.lock().await;
            invoke(&mut rt, &specs, timeout, event).await
        }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(|e| FerryError::Usage(format!("the Lambda runtime API: {e}")))
}

/// One invocation: one object's whole job.
async fn invoke(
    rt: &mut Runtime,
    specs: &Path,
    timeout: Duration,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let received = SystemTime::now();
    rt.settings.deadline = Some(deadline(event.context.deadline, received, timeout));
    let request = event.context.request_id.clone();
    let key = event.payload["detail"]["object"]["key"]
        .as_str()
        .unwrap_or("");
    tracing::info!(request_id = %request, key, "lambda invocation started");
    let outcome = async {
        // A sandbox lives for hours: each job routes by the specs as they are now, as
        // create-job on ECS does (a dataset added or changed is seen at once).
        refresh_specs(rt, specs).await?;
        let trigger = Trigger::from_event(&event.payload.to_string())?
            .with_identity()
            .await?;
        rt.run(&trigger).await
    }
    .await;
    match outcome {
        Ok(admission) => {
            let job = &admission.job;
            tracing::info!(request_id = %request, job_id = %job.job_id, status = job.status.as_str(), run = admission.run, "lambda invocation done");
            Ok(Runtime::task_output(job, Step::Notify, Some(&admission)))
        }
        Err(e) => {
            tracing::error!(request_id = %request, error = %e, error_name = e.error_name(), "lambda invocation failed");
            Err(Diagnostic {
                error_type: e.error_name().to_string(),
                error_message: answer::failure_cause_within("lambda", &e, CAUSE_BYTES),
            })
        }
    }
}

/// Reads the dataset specs again (from S3 into this sandbox's temporary
/// folder, which replaces the previous copy).
async fn refresh_specs(rt: &mut Runtime, specs: &Path) -> Result<(), FerryError> {
    let (routes, fetched) = Routes::open(specs, true, &std::env::temp_dir()).await?;
    rt.routes = routes;
    rt.fetched_specs = fetched;
    Ok(())
}

/// When this invocation can no longer be alive: the runtime's deadline, or
/// the function's timeout from when the invocation arrived if that is
/// earlier (or the runtime's deadline is not a time).
fn deadline(runtime_ms: u64, received: SystemTime, timeout: Duration) -> SystemTime {
    let by_timeout = received + timeout;
    if runtime_ms < PLAUSIBLE_DEADLINE_MS {
        return by_timeout;
    }
    by_timeout.min(SystemTime::UNIX_EPOCH + Duration::from_millis(runtime_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_earlier_of_the_runtime_s_and_the_timeout() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ms = |s: SystemTime| {
            s.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        let five = Duration::from_secs(5);
        // AWS: the header is the deadline, in epoch milliseconds.
        assert_eq!(
            deadline(ms(t + Duration::from_secs(3)), t, five),
            t + Duration::from_secs(3)
        );
        assert_eq!(deadline(ms(t + Duration::from_secs(60)), t, five), t + five);
        // cargo lambda watch: a relative number, not a time.
        assert_eq!(deadline(600_000, t, five), t + five);
    }
}
