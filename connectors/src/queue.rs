//! An SQS queue of S3 "Object Created" events (delivered by an EventBridge
//! rule): received with long polling, deleted only once the job they started
//! has finished, so a worker that dies mid-job leaves the message to be
//! delivered again.

use std::time::Duration;

use crate::aws::{AwsError, sdk_config};

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    /// The body (an EventBridge event as JSON).
    pub body: String,
    /// Needed to delete it or change its visibility.
    pub receipt: String,
    /// SQS's id, for logs.
    pub id: String,
    /// How many times SQS has delivered it.
    pub receive_count: u32,
}

/// A queue.
#[derive(Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// The queue at `url` (`https://sqs.<region>.amazonaws.com/<account>/<name>`
    /// or an emulator's URL).
    pub async fn new(url: &str) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(sdk_config().await),
            url: url.to_string(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits up to `wait` for up to `max` messages; each stays invisible to
    /// other receivers for `visibility`.
    pub async fn receive(
        &self,
        max: i32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Message>, AwsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .visibility_timeout(visibility.as_secs().min(43_200) as i32)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SQS", "ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Some(Message {
                    body: m.body?,
                    receipt: m.receipt_handle?,
                    id: m.message_id.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect())
    }

    /// Deletes a handled message.
    pub async fn delete(&self, m: &Message) -> Result<(), AwsError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&m.receipt)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SQS", "DeleteMessage", e))?;
        Ok(())
    }

    /// Makes a message visible again after `after` (to retry a transient failure).
    pub async fn release(&self, m: &Message, after: Duration) -> Result<(), AwsError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&m.receipt)
            .visibility_timeout(after.as_secs().min(43_200) as i32)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SQS", "ChangeMessageVisibility", e))?;
        Ok(())
    }
}
