//! Step Functions task tokens: a `.waitForTaskToken` task reports back with
//! heartbeats while it works, then `SendTaskSuccess` with its output or
//! `SendTaskFailure` with an error name the state machine's Retry/Catch can
//! match (`ferry.Transient` is the only one worth retrying).
//!
//! The token is a credential for the execution: it is never logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::aws::{AwsError, sdk_config};

/// A task token and the client to answer it with.
#[derive(Clone)]
pub struct TaskToken {
    client: aws_sdk_sfn::Client,
    token: String,
}

impl std::fmt::Debug for TaskToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskToken(<redacted>)")
    }
}

/// Heartbeats sent in the background until dropped.
pub struct Heartbeat {
    handle: tokio::task::JoinHandle<()>,
    sent: Arc<AtomicU64>,
    gone: tokio::sync::watch::Receiver<Option<String>>,
}

impl Heartbeat {
    /// Heartbeats sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Resolves, with Step Functions' reason, once the token is no longer
    /// valid: the state timed out (`TaskTimedOut`), or its execution was
    /// stopped or has moved on (`InvalidToken`, `TaskDoesNotExist`). Nobody
    /// is waiting for the step's answer any more, so it should stop at once
    /// rather than keep running (and billing, and writing). Pending forever
    /// while the token is good.
    pub async fn gone(&self) -> String {
        let mut rx = self.gone.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }
}

/// What a failed heartbeat means.
enum Beat {
    /// Sent.
    Sent,
    /// The token is no longer valid; the reason.
    Gone(String),
    /// Could not be sent this time (network, throttling): try again.
    Failed(AwsError),
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Step Functions' limits: error names up to 256 characters, causes up to 32 768.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_string()
}

impl TaskToken {
    /// A token answered through the shared SDK configuration.
    pub async fn new(token: String) -> Self {
        Self {
            client: aws_sdk_sfn::Client::new(sdk_config().await),
            token,
        }
    }

    /// Sends one heartbeat.
    async fn beat(&self) -> Beat {
        match self
            .client
            .send_task_heartbeat()
            .task_token(&self.token)
            .send()
            .await
        {
            Ok(_) => Beat::Sent,
            Err(e) => match e.as_service_error() {
                Some(s) if s.is_task_timed_out() => {
                    Beat::Gone("TaskTimedOut: the state timed out".into())
                }
                Some(s) if s.is_invalid_token() || s.is_task_does_not_exist() => {
                    Beat::Gone(format!(
                        "{}: the execution was stopped or has moved on",
                        s.meta().code().unwrap_or("InvalidToken")
                    ))
                }
                _ => Beat::Failed(AwsError::from_sdk("StepFunctions", "SendTaskHeartbeat", e)),
            },
        }
    }

    /// Sends a heartbeat now (so a stale token shows up before the work
    /// starts) and then every `every` until the returned guard is dropped. A
    /// heartbeat that could not be sent is logged and retried at the next
    /// tick: the state machine's `HeartbeatSeconds` decides when silence
    /// means death. A token Step Functions no longer accepts ends the
    /// heartbeats and resolves [`Heartbeat::gone`].
    pub async fn heartbeat(&self, every: Duration) -> Heartbeat {
        let sent = Arc::new(AtomicU64::new(0));
        let (tell, gone) = tokio::sync::watch::channel(None);
        // Whether to keep beating.
        let note =
            |beat: Beat, counter: &AtomicU64, tell: &tokio::sync::watch::Sender<_>| match beat {
                Beat::Sent => {
                    counter.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Beat::Failed(e) => {
                    tracing::warn!(error = %e, "task heartbeat failed");
                    true
                }
                Beat::Gone(reason) => {
                    tracing::error!(%reason, "the task token is no longer valid");
                    let _ = tell.send(Some(reason));
                    false
                }
            };
        let go_on = note(self.beat().await, &sent, &tell);
        let me = self.clone();
        let counter = sent.clone();
        let handle = tokio::spawn(async move {
            if !go_on {
                return;
            }
            loop {
                tokio::time::sleep(every).await;
                if !note(me.beat().await, &counter, &tell) {
                    return;
                }
            }
        });
        Heartbeat { handle, sent, gone }
    }

    /// Reports success with the step's output (JSON).
    pub async fn succeed(&self, output: &serde_json::Value) -> Result<(), AwsError> {
        self.client
            .send_task_success()
            .task_token(&self.token)
            .output(output.to_string())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("StepFunctions", "SendTaskSuccess", e))?;
        Ok(())
    }

    /// Reports failure: `error` is matched by Retry/Catch, `cause` is for people.
    pub async fn fail(&self, error: &str, cause: &str) -> Result<(), AwsError> {
        self.client
            .send_task_failure()
            .task_token(&self.token)
            .error(clip(error, 256))
            .cause(clip(cause, 32_768))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("StepFunctions", "SendTaskFailure", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clips_on_char_boundaries() {
        assert_eq!(super::clip("abc", 5), "abc");
        assert_eq!(super::clip("ééé", 3), "é");
    }
}
