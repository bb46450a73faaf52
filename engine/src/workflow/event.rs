//! What starts a job: an S3 "Object Created" event (as EventBridge delivers
//! it, verbatim, or as S3 sends it straight to SQS/SNS), or an input named
//! on the command line or found by `ferry watch`.

use std::path::Path;

use ferry_connectors::jobs::{JobInput, idempotency_key};
use ferry_connectors::store::{self, Location};
use serde_json::Value;

use crate::error::FerryError;

/// An object to run a job for.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The object (`uri`, and size/ETag/version when known).
    pub input: JobInput,
    /// What routing matches: the S3 key, or the local path.
    pub key: String,
    /// A local file's modification time (part of its idempotency key).
    pub mtime_ns: Option<i128>,
}

impl Trigger {
    /// The job's idempotency key (see [`idempotency_key`]).
    pub fn idempotency_key(&self) -> String {
        idempotency_key(&self.input, self.mtime_ns)
    }

    /// Parses an event: EventBridge's `Object Created` (`detail.bucket.name`,
    /// `detail.object.key`…), an S3 notification (`Records[0].s3…`, keys
    /// URL-encoded), or either wrapped in an SNS envelope (`Message`).
    pub fn from_event(text: &str) -> Result<Trigger, FerryError> {
        let bad = |why: &str| {
            FerryError::Usage(format!(
                "not an S3 Object Created event ({why}); expected EventBridge's {{\"detail-type\": \"Object Created\", \"source\": \"aws.s3\", \"detail\": {{\"bucket\": …, \"object\": …}}}}"
            ))
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
        if let Some(Value::String(inner)) = v.get("Message")
            && v.get("Type").and_then(Value::as_str) == Some("Notification")
        {
            return Trigger::from_event(inner);
        }
        if let Some(detail) = v.get("detail") {
            let kind = v.get("detail-type").and_then(Value::as_str).unwrap_or("");
            if kind != "Object Created" {
                return Err(bad(&format!("detail-type is {kind:?}")));
            }
            let bucket = detail
                .pointer("/bucket/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no detail.bucket.name"))?;
            let object = detail
                .get("object")
                .ok_or_else(|| bad("no detail.object"))?;
            let key = object
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no detail.object.key"))?;
            return Ok(s3_trigger(
                bucket,
                key,
                object.get("size").and_then(Value::as_u64),
                // AWS sends "etag"; some emulators "eTag".
                object
                    .get("etag")
                    .or_else(|| object.get("eTag"))
                    .and_then(Value::as_str),
                object.get("version-id").and_then(Value::as_str),
            ));
        }
        if let Some(record) = v.pointer("/Records/0") {
            let name = record
                .get("eventName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !name.starts_with("ObjectCreated") {
                return Err(bad(&format!("eventName is {name:?}")));
            }
            let s3 = record.get("s3").ok_or_else(|| bad("no Records[0].s3"))?;
            let bucket = s3
                .pointer("/bucket/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no s3.bucket.name"))?;
            let raw = s3
                .pointer("/object/key")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no s3.object.key"))?;
            // S3 notifications URL-encode keys, with '+' for spaces.
            let key = url::form_urlencoded::parse(format!("k={raw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| raw.to_string());
            let object = s3.get("object").unwrap_or(&Value::Null);
            return Ok(s3_trigger(
                bucket,
                &key,
                object.get("size").and_then(Value::as_u64),
                object.get("eTag").and_then(Value::as_str),
                object.get("versionId").and_then(Value::as_str),
            ));
        }
        Err(bad("neither detail nor Records"))
    }

    /// An input named by URI: a local file (its size and modification time
    /// are read) or an S3 object (its metadata is read with a HEAD request,
    /// so the job gets the same idempotency key its event would give).
    pub async fn from_uri(uri: &str) -> Result<Trigger, FerryError> {
        match Location::parse(uri)? {
            Location::Local(path) => Trigger::from_path(&path),
            Location::S3 { bucket, key, .. } => {
                let meta = store::head(&bucket, &key).await?;
                Ok(s3_trigger(
                    &bucket,
                    &key,
                    Some(meta.size),
                    meta.etag.as_deref(),
                    meta.version.as_deref(),
                ))
            }
        }
    }

    /// The trigger with the object's identity filled in: an S3 event that
    /// names neither an ETag nor a version (a backfill built from a listing,
    /// a hand-written event) is completed with a HEAD request, so the job
    /// gets the same idempotency key the object's own event would give.
    pub async fn with_identity(self) -> Result<Trigger, FerryError> {
        if self.input.etag.is_some()
            || self.input.version.is_some()
            || !self.input.uri.starts_with("s3://")
        {
            return Ok(self);
        }
        Trigger::from_uri(&self.input.uri).await
    }

    /// An object found by listing a prefix.
    pub fn from_listed(bucket: &str, o: &store::Listed) -> Trigger {
        s3_trigger(
            bucket,
            &o.key,
            Some(o.size),
            o.etag.as_deref(),
            o.version.as_deref(),
        )
    }

    /// A local file.
    pub fn from_path(path: &Path) -> Result<Trigger, FerryError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| FerryError::Usage(format!("{}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(FerryError::Usage(format!("{}: not a file", path.display())));
        }
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128);
        Ok(Trigger {
            input: JobInput {
                uri: abs.display().to_string(),
                size: Some(meta.len()),
                etag: None,
                version: None,
            },
            key: path.display().to_string(),
            mtime_ns,
        })
    }
}

fn s3_trigger(
    bucket: &str,
    key: &str,
    size: Option<u64>,
    etag: Option<&str>,
    version: Option<&str>,
) -> Trigger {
    Trigger {
        input: JobInput {
            uri: format!("s3://{bucket}/{key}"),
            size,
            etag: etag.map(|e| e.trim_matches('"').to_string()),
            version: version
                .filter(|v| !v.is_empty() && *v != "null")
                .map(str::to_string),
        },
        key: key.to_string(),
        mtime_ns: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_eventbridge_and_s3_notifications() {
        let eb = r#"{"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3","account":"123","time":"2026-11-26T00:00:00Z","region":"us-east-1","resources":["arn:aws:s3:::in"],"detail":{"version":"0","bucket":{"name":"in"},"object":{"key":"data/orders 1.csv","size":42,"etag":"abc","version-id":"null","sequencer":"0A"},"request-id":"r","requester":"me","reason":"PutObject"}}"#;
        let t = Trigger::from_event(eb).unwrap();
        assert_eq!(t.input.uri, "s3://in/data/orders 1.csv");
        assert_eq!(
            (
                t.input.size,
                t.input.etag.as_deref(),
                t.input.version.as_deref()
            ),
            (Some(42), Some("abc"), None)
        );
        assert_eq!(t.idempotency_key(), "s3://in/data/orders 1.csv#etag=abc");
        let versioned = eb.replace(r#""version-id":"null""#, r#""version-id":"v7""#);
        assert_eq!(
            Trigger::from_event(&versioned).unwrap().idempotency_key(),
            "s3://in/data/orders 1.csv#version=v7"
        );

        let s3 = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"in"},"object":{"key":"data/orders+1%2B%C3%A9.csv","size":42,"eTag":"abc"}}}]}"#;
        let t = Trigger::from_event(s3).unwrap();
        assert_eq!(t.key, "data/orders 1+é.csv");
        let sns = serde_json::json!({"Type": "Notification", "Message": eb}).to_string();
        assert_eq!(Trigger::from_event(&sns).unwrap().key, "data/orders 1.csv");

        for bad in [
            "nope",
            r#"{"detail-type":"Object Deleted","detail":{}}"#,
            r#"{"detail-type":"Object Created","detail":{"bucket":{}}}"#,
            r#"{"Records":[{"eventName":"ObjectRemoved:Delete"}]}"#,
        ] {
            let e = Trigger::from_event(bad).unwrap_err().to_string();
            assert!(e.contains("not an S3 Object Created event"), "{e}");
        }
    }
}
