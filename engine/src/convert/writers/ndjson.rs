//! NDJSON: one JSON object per line (arrow's line-delimited writer).

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ferry_connectors::pg::QualifiedName;

use super::csv::text_codec;
use super::file::ByteSink;
use super::{Chunk, ChunkEncoder, FormatWriter, Options, Output, OutputFormat};
use crate::error::FerryError;

/// `--to ndjson`.
pub(super) struct Ndjson;

impl FormatWriter for Ndjson {
    fn names(&self) -> &'static [&'static str] {
        &["ndjson"]
    }

    fn options(&self, _name: &str, o: &Options<'_>) -> Result<OutputFormat, FerryError> {
        Ok(OutputFormat::Ndjson(text_codec(o)?))
    }

    fn open(
        &self,
        format: &OutputFormat,
        path: &Path,
        _schema: SchemaRef,
        _table: &QualifiedName,
    ) -> Result<Output, FerryError> {
        let OutputFormat::Ndjson(c) = format else {
            return Err(FerryError::Internal(format!(
                "the NDJSON writer got {}",
                format.name()
            )));
        };
        Ok(Output {
            encoder: Arc::new(JsonEncoder),
            sink: Box::new(ByteSink::create(path, *c)?),
        })
    }
}

/// Each slice as JSON lines, in parallel.
struct JsonEncoder;
impl ChunkEncoder for JsonEncoder {
    fn encode(&self, batch: RecordBatch, _first_row: u64) -> Result<Chunk, FerryError> {
        let mut out = Vec::new();
        let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
        w.write(&batch)
            .map_err(|e| FerryError::Internal(format!("writing JSON: {e}")))?;
        w.finish()
            .map_err(|e| FerryError::Internal(format!("writing JSON: {e}")))?;
        Ok(Chunk::Bytes(out))
    }
}
