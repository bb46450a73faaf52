//! The job store of the AWS deployment: one DynamoDB table.
//!
//! | item | `pk` | attributes |
//! |---|---|---|
//! | job | `job#<job_id>` | `job_id`, `status`, `created_at`, `version` (N), `doc` (the job as JSON) |
//! | idempotency key | `key#<xxh3-128 of the key>` | `job_id`, `idempotency_key` |
//!
//! A job and its key item are written in one transaction, each conditional
//! on not existing, so a re-delivered event can never create a second job.
//! Updates are conditional on `version`. The global secondary index
//! `by-status` (`status`, `created_at`) serves `ferry jobs list --status`;
//! the CDK stack creates the table with exactly this shape
//! ([`DynamoJobStore::create_table`] creates it for emulators and tests).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TransactWriteItem,
};

use super::{Created, Job, JobStatus, JobStore, JobStoreError};
use crate::aws::{AwsError, sdk_config};

/// The status index's name.
pub const STATUS_INDEX: &str = "by-status";
/// The table's partition key (a string: `job#<id>` or `key#<xxh3>`).
pub const PARTITION_KEY: &str = "pk";
/// The status index's partition key.
pub const STATUS_KEY: &str = "status";
/// The status index's sort key (RFC 3339 text, so it sorts by time).
pub const CREATED_KEY: &str = "created_at";

/// Jobs in a DynamoDB table.
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn job_pk(job_id: &str) -> String {
    format!("job#{job_id}")
}

fn key_pk(key: &str) -> String {
    format!(
        "key#{:032x}",
        twox_hash::xxhash3_128::Hasher::oneshot(key.as_bytes())
    )
}

fn job_item(job: &Job) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_string(), s(job_pk(&job.job_id))),
        ("job_id".to_string(), s(&job.job_id)),
        (STATUS_KEY.to_string(), s(job.status.as_str())),
        (CREATED_KEY.to_string(), s(&job.created_at)),
        (
            "version".to_string(),
            AttributeValue::N(job.version.to_string()),
        ),
        (
            "doc".to_string(),
            s(serde_json::to_string(job).unwrap_or_default()),
        ),
    ])
}

fn parse_item(item: &HashMap<String, AttributeValue>) -> Result<Job, JobStoreError> {
    let id = item
        .get("job_id")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let doc =
        item.get("doc")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| JobStoreError::Corrupt {
                job_id: id.clone(),
                detail: "the item has no doc attribute".into(),
            })?;
    serde_json::from_str(doc).map_err(|e| JobStoreError::Corrupt {
        job_id: id,
        detail: e.to_string(),
    })
}

fn invalid(what: &str, e: impl std::fmt::Display) -> JobStoreError {
    JobStoreError::Config {
        url: String::new(),
        detail: format!("building the {what} request: {e}"),
    }
}

impl DynamoJobStore {
    /// A store on `table`, with the shared SDK configuration.
    pub async fn new(table: &str) -> Self {
        Self::with_config(sdk_config().await, table)
    }

    /// A store on `table` with a given SDK configuration.
    pub fn with_config(config: &aws_config::SdkConfig, table: &str) -> Self {
        Self {
            client: Client::new(config),
            table: table.to_string(),
        }
    }

    /// Creates the table with the layout above (on-demand capacity), unless
    /// it exists. For emulators, tests and laptops; in AWS the CDK stack owns it.
    pub async fn create_table(&self) -> Result<(), JobStoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| invalid("CreateTable", e))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| invalid("CreateTable", e))
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(STATUS_INDEX)
            .key_schema(key(STATUS_KEY, KeyType::Hash)?)
            .key_schema(key(CREATED_KEY, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| invalid("CreateTable", e))?;
        let result = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr(PARTITION_KEY)?)
            .attribute_definitions(attr(STATUS_KEY)?)
            .attribute_definitions(attr(CREATED_KEY)?)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .global_secondary_indexes(index)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(AwsError::from_sdk("DynamoDB", "CreateTable", e).into()),
        }
    }

    async fn get_item(
        &self,
        pk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, JobStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DynamoDB", "GetItem", e))?;
        Ok(out.item)
    }
}

#[async_trait::async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job) -> Result<Created, JobStoreError> {
        let key_item = HashMap::from([
            (PARTITION_KEY.to_string(), s(key_pk(&job.idempotency_key))),
            ("job_id".to_string(), s(&job.job_id)),
            ("idempotency_key".to_string(), s(&job.idempotency_key)),
        ]);
        let put = |item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| invalid("TransactWriteItems", e))
        };
        for attempt in 0..6u32 {
            let result = self
                .client
                .transact_write_items()
                .transact_items(put(key_item.clone())?)
                .transact_items(put(job_item(job))?)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Created::New(job.clone())),
                Err(e) => e,
            };
            let canceled = err
                .as_service_error()
                .is_some_and(|s| s.is_transaction_canceled_exception());
            if !canceled {
                return Err(AwsError::from_sdk("DynamoDB", "TransactWriteItems", err).into());
            }
            // Canceled: the key exists (a duplicate) or a concurrent
            // transaction conflicted (try again).
            if let Some(item) = self.get_item(&key_pk(&job.idempotency_key)).await?
                && let Some(id) = item.get("job_id").and_then(|v| v.as_s().ok())
                && let Some(existing) = self.get(id).await?
            {
                return Ok(Created::Existing(existing));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
        }
        Err(JobStoreError::Contended(job.job_id.clone()))
    }

    async fn get(&self, job_id: &str) -> Result<Option<Job>, JobStoreError> {
        self.get_item(&job_pk(job_id))
            .await?
            .map(|item| parse_item(&item))
            .transpose()
    }

    async fn replace(&self, job: &Job) -> Result<bool, JobStoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(job)))
            .condition_expression("attribute_exists(#pk) AND version = :expected")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(
                ":expected",
                AttributeValue::N((job.version - 1).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::from_sdk("DynamoDB", "PutItem", e).into()),
        }
    }

    async fn list(
        &self,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>, JobStoreError> {
        let mut jobs = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let (items, next) = match status {
                Some(st) => {
                    let out = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .index_name(STATUS_INDEX)
                        .key_condition_expression("#s = :s")
                        .expression_attribute_names("#s", STATUS_KEY)
                        .expression_attribute_values(":s", s(st.as_str()))
                        .scan_index_forward(false)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk("DynamoDB", "Query", e))?;
                    (out.items.unwrap_or_default(), out.last_evaluated_key)
                }
                None => {
                    let out = self
                        .client
                        .scan()
                        .table_name(&self.table)
                        .filter_expression("begins_with(#pk, :p)")
                        .expression_attribute_names("#pk", PARTITION_KEY)
                        .expression_attribute_values(":p", s("job#"))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk("DynamoDB", "Scan", e))?;
                    (out.items.unwrap_or_default(), out.last_evaluated_key)
                }
            };
            for item in &items {
                jobs.push(parse_item(item)?);
            }
            // The index is ordered; a scan is not, so it reads every page.
            if next.is_none() || (status.is_some() && jobs.len() >= limit) {
                break;
            }
            start = next;
        }
        jobs.sort_by(|a, b| {
            (b.created_at.as_str(), b.job_id.as_str())
                .cmp(&(a.created_at.as_str(), a.job_id.as_str()))
        });
        jobs.truncate(limit);
        Ok(jobs)
    }

    fn describe(&self) -> String {
        format!("dynamodb://{}", self.table)
    }
}
