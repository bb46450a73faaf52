//! Arrow IPC: the file format (Feather v2, `--to arrow`) and the stream
//! format (`--to arrows`).

use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ferry_connectors::pg::QualifiedName;

use super::file::{OutFile, PassThrough, RecordSink, RecordWriter, io, temp_path};
use super::{ChunkSink, FormatWriter, Options, Output, OutputFormat};
use crate::error::FerryError;

/// Arrow IPC body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcCodec {
    /// Uncompressed bodies.
    None,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// `--to arrow` and `--to arrows`.
pub(super) struct Arrow;

impl FormatWriter for Arrow {
    fn names(&self) -> &'static [&'static str] {
        &["arrow", "arrows"]
    }

    fn options(&self, name: &str, o: &Options<'_>) -> Result<OutputFormat, FerryError> {
        let c = match o.codec.as_deref() {
            None | Some("none") => IpcCodec::None,
            Some("lz4") => IpcCodec::Lz4,
            Some("zstd") => IpcCodec::Zstd,
            _ => return Err(o.bad("none, lz4 or zstd")),
        };
        Ok(if name == "arrow" {
            OutputFormat::ArrowFile(c)
        } else {
            OutputFormat::ArrowStream(c)
        })
    }

    fn open(
        &self,
        format: &OutputFormat,
        path: &Path,
        schema: SchemaRef,
        _table: &QualifiedName,
    ) -> Result<Output, FerryError> {
        let (OutputFormat::ArrowFile(c) | OutputFormat::ArrowStream(c)) = format else {
            return Err(FerryError::Internal(format!(
                "the Arrow writer got {}",
                format.name()
            )));
        };
        let tmp = temp_path(path);
        let file = BufWriter::with_capacity(1 << 20, OutFile::create(&tmp).map_err(io(&tmp))?);
        let options = arrow::ipc::writer::IpcWriteOptions::default()
            .try_with_compression(match c {
                IpcCodec::None => None,
                IpcCodec::Lz4 => Some(arrow::ipc::CompressionType::LZ4_FRAME),
                IpcCodec::Zstd => Some(arrow::ipc::CompressionType::ZSTD),
            })
            .map_err(|e| FerryError::Usage(format!("Arrow IPC compression: {e}")))?;
        let ipc = |e: arrow::error::ArrowError| FerryError::Internal(format!("Arrow IPC: {e}"));
        let sink: Box<dyn ChunkSink> = if matches!(format, OutputFormat::ArrowFile(_)) {
            let w = arrow::ipc::writer::FileWriter::try_new_with_options(file, &schema, options)
                .map_err(ipc)?;
            Box::new(RecordSink {
                path: path.to_path_buf(),
                tmp,
                writer: Some(w),
            })
        } else {
            let w = arrow::ipc::writer::StreamWriter::try_new_with_options(file, &schema, options)
                .map_err(ipc)?;
            Box::new(RecordSink {
                path: path.to_path_buf(),
                tmp,
                writer: Some(w),
            })
        };
        Ok(Output {
            encoder: Arc::new(PassThrough),
            sink,
        })
    }
}

impl RecordWriter for arrow::ipc::writer::FileWriter<BufWriter<OutFile>> {
    fn put(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.write(batch).map_err(|e| e.to_string())
    }
    fn done(mut self) -> Result<BufWriter<OutFile>, String> {
        self.finish().map_err(|e| e.to_string())?;
        self.into_inner().map_err(|e| e.to_string())
    }
}

impl RecordWriter for arrow::ipc::writer::StreamWriter<BufWriter<OutFile>> {
    fn put(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.write(batch).map_err(|e| e.to_string())
    }
    fn done(mut self) -> Result<BufWriter<OutFile>, String> {
        self.finish().map_err(|e| e.to_string())?;
        self.into_inner().map_err(|e| e.to_string())
    }
}
