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
}

impl Heartbeat {
    /// Heartbeats sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
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
    pub async fn beat(&self) -> Result<(), AwsError> {
        self.client
            .send_task_heartbeat()
            .task_token(&self.token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("StepFunctions", "SendTaskHeartbeat", e))?;
        Ok(())
    }

    /// Sends a heartbeat now (so a stale token shows up before the work
    /// starts) and then every `every` until the returned guard is dropped. A
    /// failed heartbeat is logged and retried at the next tick: the state
    /// machine's `HeartbeatSeconds` decides when silence means death.
    pub async fn heartbeat(&self, every: Duration) -> Heartbeat {
        let sent = Arc::new(AtomicU64::new(0));
        let note = |r: Result<(), AwsError>, counter: &AtomicU64| match r {
            Ok(()) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "task heartbeat failed"),
        };
        note(self.beat().await, &sent);
        let me = self.clone();
        let counter = sent.clone();
        let handle = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                note(me.beat().await, &counter);
            }
        });
        Heartbeat { handle, sent }
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
