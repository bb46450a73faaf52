//! Decoding inputs into Arrow record batches: ferry's readers for delimited
//! text and NDJSON, DataFusion's for Parquet and Arrow IPC, arrow-avro's for
//! Avro.

pub mod blocking;
pub mod compression;
pub mod copy;
pub mod csv;
pub mod encoding;
pub mod error;
pub mod fit;
pub mod json;
pub mod lines;
pub mod parse;
pub mod reject;

pub use compression::Compression;
pub use encoding::Encoding;
pub use error::DecodeError;
pub use reject::{REJECTS_FILE, RejectSink, RejectedRow};
