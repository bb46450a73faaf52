//! Decoding inputs into Arrow record batches: ferry's CSV reader, and
//! DataFusion's readers for NDJSON, Parquet and Arrow IPC.

pub mod blocking;
pub mod compression;
pub mod copy;
pub mod csv;
pub mod error;
pub mod parse;
pub mod reject;

pub use compression::Compression;
pub use error::DecodeError;
pub use reject::{REJECTS_FILE, RejectSink, RejectedRow};
