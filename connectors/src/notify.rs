//! Job events: one documented schema ([`JobEvent`]), sent when a job ends to
//! a JSONL file (the default), an SNS topic or an EventBridge bus.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, sdk_config};
use crate::jobs::{Job, JobError, JobStatus, Workflow};

/// The schema name and version every event carries.
pub const EVENT_SCHEMA: &str = "ferry.job.v1";

/// One step's figures in an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFigures {
    /// Step name.
    pub step: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Rows handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Bytes read or written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// What a job-ended event says. Stable: fields are added, never renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Always [`EVENT_SCHEMA`].
    pub schema: String,
    /// RFC 3339 time the event was made.
    pub time: String,
    /// The job the event is about (consumers look it up with `ferry jobs show`).
    pub job_id: String,
    /// Dataset (absent when routing failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Workflow (absent when routing failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Workflow>,
    /// The input object (`s3://bucket/key` or a path).
    pub input: String,
    /// `succeeded` or `failed`.
    pub status: JobStatus,
    /// Rows loaded or converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Input bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Seconds from the first step's start to the last step's end.
    pub seconds: f64,
    /// Each step of the last attempt, in order.
    pub steps: Vec<StepFigures>,
    /// Outputs of every step (`zip`, `manifest`, `output`, …).
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// What the load changed in the target's columns (added, widened,
    /// ignored; see `ferry_connectors::pg::SchemaChange`), always present so
    /// that a consumer can audit drift without knowing the step outputs.
    #[serde(default)]
    pub schema_changes: Vec<serde_json::Value>,
    /// The load's receipt (`ferry_connectors::pg::receipt::Receipt`): what
    /// PostgreSQL stored, proven equal to what was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
}

impl JobEvent {
    /// The event for a job as it stands.
    pub fn for_job(job: &Job) -> JobEvent {
        let steps: Vec<_> = job
            .steps
            .iter()
            .filter(|s| s.attempt == job.attempts)
            .collect();
        let mut outputs = BTreeMap::new();
        for s in &steps {
            for (k, v) in &s.outputs {
                outputs.insert(k.clone(), v.clone());
            }
        }
        let seconds = match (steps.first(), steps.last()) {
            (Some(a), Some(b)) => {
                let start = chrono::DateTime::parse_from_rfc3339(&a.started_at).ok();
                let end = b
                    .finished_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                match (start, end) {
                    (Some(s), Some(e)) => (e - s).num_milliseconds().max(0) as f64 / 1000.0,
                    _ => 0.0,
                }
            }
            _ => 0.0,
        };
        JobEvent {
            schema: EVENT_SCHEMA.to_string(),
            time: crate::jobs::now(),
            job_id: job.job_id.clone(),
            dataset: job.dataset.clone(),
            workflow: job.workflow,
            input: job.input.uri.clone(),
            status: job.status,
            rows: job.rows,
            bytes: job.input.size,
            seconds,
            steps: steps
                .iter()
                .map(|s| StepFigures {
                    step: s.step.clone(),
                    seconds: s.seconds.unwrap_or(0.0),
                    rows: s.rows,
                    bytes: s.bytes,
                })
                .collect(),
            schema_changes: match outputs.get("schema_changes") {
                Some(serde_json::Value::Array(changes)) => changes.clone(),
                _ => Vec::new(),
            },
            receipt: outputs.get("receipt").cloned(),
            outputs,
            error: job.error.clone(),
        }
    }

    /// `Ferry Job Succeeded` / `Ferry Job Failed`: the EventBridge detail type
    /// and the SNS subject.
    pub fn title(&self) -> &'static str {
        match self.status {
            JobStatus::Failed => "Ferry Job Failed",
            _ => "Ferry Job Succeeded",
        }
    }
}

/// A notification that could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Writing the JSONL file failed.
    #[error("writing job events to {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SNS or EventBridge failed.
    #[error("sending the job event: {0}")]
    Aws(#[from] AwsError),
    /// The URL is wrong.
    #[error("notifications {url:?}: {detail}")]
    Config {
        /// As given.
        url: String,
        /// What is wrong.
        detail: String,
    },
}

impl NotifyError {
    /// Whether trying again may help.
    pub fn retryable(&self) -> bool {
        matches!(self, NotifyError::Aws(e) if e.retryable)
    }
}

/// Where job events go.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one event.
    async fn send(&self, event: &JobEvent) -> Result<(), NotifyError>;
    /// Where, for messages.
    fn describe(&self) -> String;
}

/// Opens a notifier by URL: `file://path` or a plain path (JSONL),
/// `sns://<topic ARN>`, `eventbridge://<bus name or ARN>`; `None` means
/// `<work_dir>/events.jsonl`.
pub async fn open(url: Option<&str>, work_dir: &Path) -> Result<Arc<dyn Notifier>, NotifyError> {
    let url = match url {
        None | Some("") => return Ok(Arc::new(JsonlNotifier::new(work_dir.join("events.jsonl")))),
        Some(u) => u,
    };
    if let Some(arn) = url.strip_prefix("sns://") {
        if !arn.starts_with("arn:") {
            return Err(NotifyError::Config {
                url: url.into(),
                detail: "expected sns://arn:aws:sns:<region>:<account>:<topic>".into(),
            });
        }
        return Ok(Arc::new(SnsNotifier::with_config(sdk_config().await, arn)));
    }
    if let Some(bus) = url.strip_prefix("eventbridge://") {
        if bus.is_empty() {
            return Err(NotifyError::Config {
                url: url.into(),
                detail: "expected eventbridge://<bus name>".into(),
            });
        }
        return Ok(Arc::new(EventBridgeNotifier::with_config(
            sdk_config().await,
            bus,
        )));
    }
    let path = match url.strip_prefix("file://") {
        Some(p) => PathBuf::from(p),
        None if url.contains("://") => {
            return Err(NotifyError::Config {
                url: url.into(),
                detail: "use file://<path>, sns://<topic ARN> or eventbridge://<bus>".into(),
            });
        }
        None => PathBuf::from(url),
    };
    Ok(Arc::new(JsonlNotifier::new(path)))
}

/// One JSON object per line, appended (and flushed to disk) per event.
pub struct JsonlNotifier {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl JsonlNotifier {
    /// Events go to `path` (its folder is created when needed).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for JsonlNotifier {
    async fn send(&self, event: &JobEvent) -> Result<(), NotifyError> {
        let _guard = self.lock.lock().await;
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        let path = self.path.clone();
        // The sync waits on the disk: off the async workers, which would
        // otherwise stall every other job meanwhile.
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            // One write of one line: concurrent appenders never interleave.
            f.write_all(&line)?;
            f.sync_data()
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        written.map_err(|source| NotifyError::File {
            path: self.path.display().to_string(),
            source,
        })
    }

    fn describe(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

/// An SNS topic; the message is the event's JSON, with `status`, `dataset`
/// and `workflow` as message attributes for subscription filter policies.
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    /// Publishes to `topic_arn` with a given SDK configuration.
    pub fn with_config(config: &aws_config::SdkConfig, topic_arn: &str) -> Self {
        Self {
            client: aws_sdk_sns::Client::new(config),
            topic_arn: topic_arn.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for SnsNotifier {
    async fn send(&self, event: &JobEvent) -> Result<(), NotifyError> {
        use aws_sdk_sns::types::MessageAttributeValue;
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| NotifyError::Config {
                    url: self.describe(),
                    detail: e.to_string(),
                })
        };
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(event.title())
            .message(serde_json::to_string(event).unwrap_or_default())
            .message_attributes("status", attr(event.status.as_str())?);
        if let Some(d) = &event.dataset {
            req = req.message_attributes("dataset", attr(d)?);
        }
        if let Some(w) = event.workflow {
            req = req.message_attributes("workflow", attr(&w.to_string())?);
        }
        req.send()
            .await
            .map_err(|e| AwsError::from_sdk("SNS", "Publish", e))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("sns://{}", self.topic_arn)
    }
}

/// An EventBridge bus; source `ferry`, detail type [`JobEvent::title`],
/// detail the event's JSON.
pub struct EventBridgeNotifier {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeNotifier {
    /// Puts events on `bus` with a given SDK configuration.
    pub fn with_config(config: &aws_config::SdkConfig, bus: &str) -> Self {
        Self {
            client: aws_sdk_eventbridge::Client::new(config),
            bus: bus.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for EventBridgeNotifier {
    async fn send(&self, event: &JobEvent) -> Result<(), NotifyError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source("ferry")
            .detail_type(event.title())
            .detail(serde_json::to_string(event).unwrap_or_default())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("EventBridge", "PutEvents", e))?;
        if out.failed_entry_count > 0 {
            let detail = out
                .entries
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.error_message)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(AwsError {
                service: "EventBridge",
                operation: "PutEvents",
                detail: format!("the event was not accepted: {detail}"),
                retryable: true,
            }
            .into());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("eventbridge://{}", self.bus)
    }
}
