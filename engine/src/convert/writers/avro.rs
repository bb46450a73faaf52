//! Avro object container files (arrow-avro).

use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ferry_connectors::pg::QualifiedName;

use super::file::{OutFile, PassThrough, RecordSink, RecordWriter, io, temp_path};
use super::{FormatWriter, Options, Output, OutputFormat};
use crate::error::FerryError;

/// Avro block compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvroCodec {
    /// Uncompressed blocks (Avro's `null` codec).
    Null,
    /// Deflate.
    Deflate,
    /// Snappy.
    Snappy,
    /// Zstandard.
    Zstd,
}

/// `--to avro`.
pub(super) struct Avro;

impl FormatWriter for Avro {
    fn names(&self) -> &'static [&'static str] {
        &["avro"]
    }

    fn options(&self, _name: &str, o: &Options<'_>) -> Result<OutputFormat, FerryError> {
        Ok(OutputFormat::Avro(match o.codec.as_deref() {
            None | Some("null") | Some("none") => AvroCodec::Null,
            Some("deflate") => AvroCodec::Deflate,
            Some("snappy") => AvroCodec::Snappy,
            Some("zstd") => AvroCodec::Zstd,
            _ => return Err(o.bad("null, deflate, snappy or zstd")),
        }))
    }

    fn open(
        &self,
        format: &OutputFormat,
        path: &Path,
        schema: SchemaRef,
        _table: &QualifiedName,
    ) -> Result<Output, FerryError> {
        let OutputFormat::Avro(c) = format else {
            return Err(FerryError::Internal(format!(
                "the Avro writer got {}",
                format.name()
            )));
        };
        let tmp = temp_path(path);
        let file = BufWriter::with_capacity(1 << 20, OutFile::create(&tmp).map_err(io(&tmp))?);
        let codec = match c {
            AvroCodec::Null => None,
            AvroCodec::Deflate => Some(arrow_avro::compression::CompressionCodec::Deflate),
            AvroCodec::Snappy => Some(arrow_avro::compression::CompressionCodec::Snappy),
            AvroCodec::Zstd => Some(arrow_avro::compression::CompressionCodec::ZStandard),
        };
        let w = arrow_avro::writer::WriterBuilder::new(schema.as_ref().clone())
            .with_compression(codec)
            .build::<_, arrow_avro::writer::format::AvroOcfFormat>(file)
            .map_err(|e| FerryError::Usage(format!("Avro cannot hold this schema: {e}")))?;
        Ok(Output {
            encoder: Arc::new(PassThrough),
            sink: Box::new(RecordSink {
                path: path.to_path_buf(),
                tmp,
                writer: Some(w),
            }),
        })
    }
}

impl RecordWriter for arrow_avro::writer::AvroWriter<BufWriter<OutFile>> {
    fn put(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.write(batch).map_err(|e| e.to_string())
    }
    fn done(mut self) -> Result<BufWriter<OutFile>, String> {
        self.finish().map_err(|e| e.to_string())?;
        Ok(self.into_inner())
    }
}
