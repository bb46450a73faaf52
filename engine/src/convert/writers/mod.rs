//! One writer per output format, each in its own file behind one trait
//! ([`FormatWriter`], in the manner of DataFusion's `FileFormat` and its
//! factory): the names `--to` takes, how `[convert]` options parse, and how
//! the writer opens. [`WRITERS`] is the registry that `--to`, its help and
//! [`OutputFormat::from_spec`] read, so a format cannot be half-listed.
//! Adding a format: a file here, a line in [`WRITERS`], and a variant of
//! [`OutputFormat`] for its typed options.
//!
//! Each writer has two halves: an encoder that turns a (canonical) batch
//! into a chunk, run in parallel on the rayon pool, and a sink that writes
//! chunks in order. Formats whose files are stateful (Parquet, Arrow IPC,
//! Avro) pass batches through and do their work in the sink — Parquet
//! encodes a row group's columns on all cores there.
//!
//! Files are written under a temporary name and renamed on success, so a
//! failed conversion never leaves a partial output behind.

mod arrow;
mod avro;
mod csv;
mod file;
mod lanes;
mod ndjson;
mod parquet;
mod postgres;
mod spill;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::arrow::array::RecordBatch;
use ::arrow::datatypes::SchemaRef;
use ferry_connectors::pg::QualifiedName;
use ferry_connectors::pg::codec::copy::Encoded;

pub use self::arrow::IpcCodec;
pub use self::avro::AvroCodec;
pub use self::csv::{TextCompression, TextOptions};
pub use self::file::temp_path;
pub use self::parquet::{Dictionary, ParquetCodec, ParquetOptions, Statistics};
pub use self::postgres::pg_columns;
use super::canonical::Family;
use crate::error::FerryError;
use crate::spec::ConvertSpec;

/// An output format: its names, its options, its writer.
pub trait FormatWriter: Sync {
    /// The names `--to` (and `[convert] to`) take for it.
    fn names(&self) -> &'static [&'static str];
    /// The typed options for `name` (one of [`FormatWriter::names`]) from
    /// `[convert]` or `ferry convert`'s flags.
    fn options(&self, name: &str, args: &Options<'_>) -> Result<OutputFormat, FerryError>;
    /// Opens the writer for `format` (one of this writer's) at `path` (a
    /// folder for the PostgreSQL artifacts).
    fn open(
        &self,
        format: &OutputFormat,
        path: &Path,
        schema: SchemaRef,
        table: &QualifiedName,
    ) -> Result<Output, FerryError>;
}

/// Every output format, in the order help lists them.
pub static WRITERS: [&dyn FormatWriter; 6] = [
    &csv::Csv,
    &ndjson::Ndjson,
    &parquet::Parquet,
    &arrow::Arrow,
    &avro::Avro,
    &postgres::Postgres,
];

/// Every name `--to` takes, in the registry's order.
pub fn names() -> Vec<&'static str> {
    WRITERS
        .iter()
        .flat_map(|w| w.names().iter().copied())
        .collect()
}

/// `[convert]` options as a writer parses them: the spec, and its
/// compression lower-cased.
pub struct Options<'a> {
    /// The spec (or flags).
    pub args: &'a ConvertSpec,
    /// `compression`, lower-cased.
    pub codec: Option<String>,
}

impl Options<'_> {
    /// The error for a compression that does not apply; `what` lists those that do.
    pub fn bad(&self, what: &str) -> FerryError {
        FerryError::Usage(format!(
            "compression {:?} does not apply to {}: use {what}",
            self.codec.as_deref().unwrap_or(""),
            self.args.to
        ))
    }
}

/// A format ferry writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// Comma-separated text.
    Csv(TextOptions),
    /// Tab-separated text.
    Tsv(TextOptions),
    /// Newline-delimited JSON.
    Ndjson(TextCompression),
    /// Apache Parquet.
    Parquet(ParquetOptions),
    /// Arrow IPC file (Feather v2).
    ArrowFile(IpcCodec),
    /// Arrow IPC stream.
    ArrowStream(IpcCodec),
    /// Avro object container file.
    Avro(AvroCodec),
    /// `.sql` files with COPY text blocks (a folder, with `load.sql`).
    Sql,
    /// `.pgcopy` binary COPY files (a folder).
    Pgcopy,
}

impl OutputFormat {
    /// The writer that handles this format.
    pub fn writer(&self) -> &'static dyn FormatWriter {
        match self {
            OutputFormat::Csv(_) | OutputFormat::Tsv(_) => &csv::Csv,
            OutputFormat::Ndjson(_) => &ndjson::Ndjson,
            OutputFormat::Parquet(_) => &parquet::Parquet,
            OutputFormat::ArrowFile(_) | OutputFormat::ArrowStream(_) => &arrow::Arrow,
            OutputFormat::Avro(_) => &avro::Avro,
            OutputFormat::Sql | OutputFormat::Pgcopy => &postgres::Postgres,
        }
    }

    /// What the format can hold (see [`super::canonical`]).
    pub fn family(&self) -> Family {
        match self {
            OutputFormat::Csv(_) | OutputFormat::Tsv(_) => Family::Text,
            OutputFormat::Ndjson(_) => Family::Json,
            OutputFormat::Parquet(_) => Family::Parquet,
            OutputFormat::ArrowFile(_) => Family::IpcFile,
            OutputFormat::ArrowStream(_) => Family::Ipc,
            OutputFormat::Avro(_) => Family::Avro,
            OutputFormat::Sql | OutputFormat::Pgcopy => Family::Postgres,
        }
    }

    /// The format's name as `--to` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            OutputFormat::Csv(_) => "csv",
            OutputFormat::Tsv(_) => "tsv",
            OutputFormat::Ndjson(_) => "ndjson",
            OutputFormat::Parquet(_) => "parquet",
            OutputFormat::ArrowFile(_) => "arrow",
            OutputFormat::ArrowStream(_) => "arrows",
            OutputFormat::Avro(_) => "avro",
            OutputFormat::Sql => "sql",
            OutputFormat::Pgcopy => "pgcopy",
        }
    }

    /// The output's name for an input of stem `stem` (see
    /// [`super::input_stem`]): `<stem>.<extension>`, or `<stem>-<format>` for
    /// the folder outputs.
    pub fn file_name(&self, stem: &str) -> String {
        match self.extension() {
            Some(ext) => format!("{stem}.{ext}"),
            None => format!("{stem}-{}", self.name()),
        }
    }

    /// The file extension of an output (with compression), or `None` for the
    /// folder outputs.
    pub fn extension(&self) -> Option<String> {
        let text = |base: &str, c: TextCompression| match c {
            TextCompression::None => base.to_string(),
            TextCompression::Gzip => format!("{base}.gz"),
            TextCompression::Zstd => format!("{base}.zst"),
        };
        Some(match self {
            OutputFormat::Csv(o) => text("csv", o.compression),
            OutputFormat::Tsv(o) => text("tsv", o.compression),
            OutputFormat::Ndjson(c) => text("ndjson", *c),
            OutputFormat::Parquet(_) => "parquet".into(),
            OutputFormat::ArrowFile(_) => "arrow".into(),
            OutputFormat::ArrowStream(_) => "arrows".into(),
            OutputFormat::Avro(_) => "avro".into(),
            OutputFormat::Sql | OutputFormat::Pgcopy => return None,
        })
    }
}

/// What the parallel half produces.
pub enum Chunk {
    /// Encoded bytes for a byte sink.
    Bytes(Vec<u8>),
    /// The batch itself, for stateful sinks.
    Batch(RecordBatch),
    /// COPY encodings for the PostgreSQL artifacts.
    Copy(Encoded),
}

/// The parallel half.
pub trait ChunkEncoder: Send + Sync {
    /// Encodes one canonical batch whose first row is `first_row` (0-based).
    fn encode(&self, batch: RecordBatch, first_row: u64) -> Result<Chunk, FerryError>;
}

/// The ordered half.
pub trait ChunkSink: Send {
    /// Writes the next chunk.
    fn write(&mut self, chunk: Chunk, rows: u64) -> Result<(), FerryError>;
    /// Completes the output and returns the files written.
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>, FerryError>;
}

/// Both halves for an output.
pub struct Output {
    /// Runs in parallel.
    pub encoder: Arc<dyn ChunkEncoder>,
    /// Runs in order.
    pub sink: Box<dyn ChunkSink>,
}

/// Opens the writer for `format` at `path` (a folder for `sql`/`pgcopy`).
pub fn open(
    format: &OutputFormat,
    path: &Path,
    schema: SchemaRef,
    table: &QualifiedName,
) -> Result<Output, FerryError> {
    format.writer().open(format, path, schema, table)
}

/// Size of an output (a file, or the files in a folder).
pub fn output_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

impl OutputFormat {
    /// The format a `[convert]` section (or `ferry convert`'s flags) asks for.
    pub fn from_spec(args: &ConvertSpec) -> Result<OutputFormat, FerryError> {
        let options = Options {
            args,
            codec: args.compression.as_deref().map(str::to_ascii_lowercase),
        };
        let name = args.to.as_str();
        match WRITERS.iter().find(|w| w.names().contains(&name)) {
            Some(w) => w.options(name, &options),
            None => Err(FerryError::Usage(format!(
                "{name:?} is not an output format ({})",
                names().join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registered name parses into a format that names itself so and
    /// is handled by the writer that registered it.
    #[test]
    fn every_registered_name_round_trips() {
        for writer in WRITERS {
            for &name in writer.names() {
                let spec = ConvertSpec {
                    to: name.to_string(),
                    ..ConvertSpec::default()
                };
                let format = OutputFormat::from_spec(&spec).unwrap();
                assert_eq!(format.name(), name);
                assert!(std::ptr::eq(format.writer().names(), writer.names()));
            }
        }
        let err = OutputFormat::from_spec(&ConvertSpec {
            to: "xlsx".into(),
            ..ConvertSpec::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("avro") && err.contains("pgcopy"), "{err}");
    }
}
