//! ferry's connections to the outside world.
//!
//! This crate knows PostgreSQL (binary COPY encoder, `.sql` writer, loader),
//! object stores and working storage, the job stores (SQLite, DynamoDB),
//! notifications (JSONL, SNS, EventBridge), SQS and Step Functions task
//! tokens. It depends on Arrow but never on DataFusion: the engine decides
//! *what* to do, this crate decides *how* it reaches each system.

#![warn(missing_docs)]

pub mod aws;
pub mod fault;
pub mod jobs;
pub mod notify;
pub mod pg;
pub mod queue;
pub mod secrets;
pub mod sfn;
pub mod store;
pub mod work;
pub mod writeback;
