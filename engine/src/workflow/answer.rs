//! What a step task says to Step Functions, and what a failure notice
//! makes of what Step Functions caught: the two ends of a
//! `.waitForTaskToken` step that are not the step's own work.

use ferry_connectors::jobs::{Job, JobError};
use serde_json::{Value, json};

use crate::error::FerryError;

/// The failure a Catch passed on, by `--caught NAME` or, in a `--job`
/// JSON, as `{"error": {"Error": …, "Cause": …}}`.
pub fn caught_error(caught: Option<&str>, text: Option<&str>, job: &Job) -> Option<JobError> {
    let from_json = text
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| v.get("error").filter(|e| !e.is_null()).cloned());
    if caught.is_none() && from_json.is_none() {
        return None;
    }
    // The failed step recorded its own error; prefer it (it has the step name).
    if let Some(e) = job
        .steps
        .iter()
        .rev()
        .filter(|s| s.attempt == job.attempts)
        .find_map(|s| s.error.clone())
    {
        return Some(e);
    }
    let name = caught
        .or_else(|| from_json.as_ref()?.get("Error")?.as_str())
        .unwrap_or("ferry.Internal")
        .to_string();
    let message = from_json
        .as_ref()
        .and_then(|e| e.get("Cause")?.as_str().map(str::to_string))
        .unwrap_or_else(|| caught_message(&name));
    Some(JobError {
        step: job
            .steps
            .iter()
            .rev()
            .find(|s| s.attempt == job.attempts && s.finished_at.is_none())
            .map_or_else(|| "unknown".into(), |s| s.step.clone()),
        retryable: name == "ferry.Transient",
        name,
        message,
    })
}

/// What a state machine's own error names mean, for the job record and event.
fn caught_message(name: &str) -> String {
    match name {
        // The names the stack's step states fail with after stopping the task (cdk/lib/ferry-stack.ts).
        "ferry.TaskLost" | "States.HeartbeatTimeout" => "the step's task stopped sending heartbeats (a lost host, a hung or killed process); the state machine stopped it".into(),
        "ferry.StepTimedOut" | "States.Timeout" => "the step ran past its state's timeout; the state machine stopped its task".into(),
        "States.TaskFailed" => "the step's task failed without an answer (it could not start, or exited without reporting)".into(),
        // The stack's reaper, after an execution was stopped by hand or timed out as a whole.
        "ferry.ExecutionStopped" => "the job's execution was stopped (by hand, by a parent, or its timeout) while this step ran; its task was stopped".into(),
        other if other.starts_with("ECS.") => format!("ECS could not run the step's task ({other})"),
        other => format!("the state machine caught {other}"),
    }
}

/// The cause sent with SendTaskFailure: JSON that stays whole within Step
/// Functions' 32,768-character limit (a long message is cut, and says where
/// the whole one is).
pub fn failure_cause(step: &str, e: &FerryError) -> String {
    failure_cause_within(step, e, 32_768)
}

/// [`failure_cause`] within `limit` bytes: a Lambda function's error reaches
/// Step Functions as its cause inside another JSON text, where every quote
/// of this one is escaped, so it must leave room for that.
pub fn failure_cause_within(step: &str, e: &FerryError, limit: usize) -> String {
    let full = e.to_string();
    let mut room = full.len();
    loop {
        let mut message = full.clone();
        if room < full.len() {
            let mut cut = room;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(&format!(
                "… ({} more bytes: the whole message is in the job record)",
                full.len() - cut
            ));
        }
        let cause =
            json!({"step": step, "message": message, "retryable": e.retryable()}).to_string();
        if cause.len() <= limit || room == 0 {
            return cause;
        }
        // JSON escapes make the text longer than the message: cut by the overflow and try again.
        room = room
            .min(full.len())
            .saturating_sub(cause.len() - limit + 128);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FerryError;

    #[test]
    fn a_failure_cause_is_whole_json_within_step_functions_limit() {
        let long = FerryError::Usage(format!(
            "no field named x; valid fields are {}",
            "a\"b, ".repeat(20_000)
        ));
        let cause = failure_cause("transform", &long);
        assert!(cause.len() <= 32_768, "{}", cause.len());
        let v: Value = serde_json::from_str(&cause).expect("JSON");
        let message = v["message"].as_str().unwrap();
        assert!(message.ends_with("more bytes: the whole message is in the job record)"));
        assert_eq!(v["step"], "transform");
        let short = failure_cause("transform", &FerryError::Usage("bad".into()));
        assert_eq!(
            serde_json::from_str::<Value>(&short).unwrap()["message"],
            "bad"
        );
    }

    #[test]
    fn a_caught_name_becomes_the_jobs_error_unless_the_step_recorded_one() {
        let job: Job = serde_json::from_value(json!({
            "job_id": "j", "idempotency_key": "k", "status": "running", "attempts": 1, "dir": "d", "version": 1,
            "input": {"uri": "s3://b/k"}, "created_at": "t", "updated_at": "t",
            "steps": [{"step": "transform", "attempt": 1, "started_at": "t"}],
        }))
        .expect("a job record");
        let e = caught_error(Some("ferry.TaskLost"), None, &job).expect("an error");
        assert_eq!(
            (e.name.as_str(), e.step.as_str()),
            ("ferry.TaskLost", "transform")
        );
        assert!(
            e.message.contains("stopped sending heartbeats"),
            "{}",
            e.message
        );
        assert!(
            caught_error(None, None, &job).is_none(),
            "no catch: the job succeeded"
        );
        let mut failed = job.clone();
        failed.steps[0].error = Some(JobError {
            step: "transform".into(),
            name: "ferry.Input".into(),
            retryable: false,
            message: "x.csv:3: bad".into(),
        });
        let e = caught_error(Some("States.TaskFailed"), None, &failed).expect("an error");
        assert_eq!(e.message, "x.csv:3: bad");
        let e = caught_error(Some("ferry.ExecutionStopped"), None, &job).expect("an error");
        assert!(e.message.contains("execution was stopped"), "{}", e.message);
    }
}
