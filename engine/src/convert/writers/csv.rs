//! CSV and TSV, in PostgreSQL's text forms.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use ferry_connectors::pg::QualifiedName;
use ferry_connectors::pg::codec::ColumnCodec;
use ferry_connectors::pg::codec::text::{Style, TextColumn, render_column};

use super::file::ByteSink;
use super::postgres::natural_codecs;
use super::{Chunk, ChunkEncoder, ChunkSink, FormatWriter, Options, Output, OutputFormat};
use crate::error::FerryError;

/// Compression of text outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCompression {
    /// Uncompressed.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

/// CSV/TSV writing options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOptions {
    /// Field delimiter.
    pub delimiter: u8,
    /// Quote character.
    pub quote: u8,
    /// Write a header line.
    pub header: bool,
    /// How NULL is written (unquoted); other values equal to it are quoted.
    pub null: String,
    /// Output compression.
    pub compression: TextCompression,
}

/// `--to csv` and `--to tsv`.
pub(super) struct Csv;

impl FormatWriter for Csv {
    fn names(&self) -> &'static [&'static str] {
        &["csv", "tsv"]
    }

    fn options(&self, name: &str, o: &Options<'_>) -> Result<OutputFormat, FerryError> {
        let args = o.args;
        let tsv = name == "tsv";
        let delimiter = match &args.delimiter {
            Some(d) => match d.as_str() {
                "\\t" | "tab" => b'\t',
                d if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                d => {
                    return Err(FerryError::Usage(format!(
                        "delimiter {d:?}: one ASCII character"
                    )));
                }
            },
            None if tsv => b'\t',
            None => b',',
        };
        let text = TextOptions {
            delimiter,
            quote: b'"',
            header: args.header.unwrap_or(true),
            null: args.null.clone().unwrap_or_default(),
            compression: text_codec(o)?,
        };
        Ok(if tsv {
            OutputFormat::Tsv(text)
        } else {
            OutputFormat::Csv(text)
        })
    }

    fn open(
        &self,
        format: &OutputFormat,
        path: &Path,
        schema: SchemaRef,
        _table: &QualifiedName,
    ) -> Result<Output, FerryError> {
        let (OutputFormat::Csv(o) | OutputFormat::Tsv(o)) = format else {
            return Err(FerryError::Internal(format!(
                "the CSV writer got {}",
                format.name()
            )));
        };
        let encoder = CsvEncoder {
            codecs: natural_codecs(&schema)?,
            options: o.clone(),
        };
        let mut sink = ByteSink::create(path, o.compression)?;
        if o.header {
            let header = encoder.header();
            sink.write(Chunk::Bytes(header), 0)?;
        }
        Ok(Output {
            encoder: Arc::new(encoder),
            sink: Box::new(sink),
        })
    }
}

/// The compression of a text output (CSV, TSV, NDJSON).
pub(super) fn text_codec(o: &Options<'_>) -> Result<TextCompression, FerryError> {
    match o.codec.as_deref() {
        None | Some("none") => Ok(TextCompression::None),
        Some("gzip") | Some("gz") => Ok(TextCompression::Gzip),
        Some("zstd") | Some("zst") => Ok(TextCompression::Zstd),
        _ => Err(o.bad("none, gzip or zstd")),
    }
}

/// CSV/TSV in PostgreSQL's text forms (what `COPY … TO … (FORMAT csv)` writes),
/// so the output loads with PostgreSQL's own `\copy` too.
struct CsvEncoder {
    codecs: Vec<ColumnCodec>,
    options: TextOptions,
}

impl CsvEncoder {
    /// Writes one field, quoted when PostgreSQL's CSV reader needs it to be.
    fn push_field(&self, out: &mut Vec<u8>, v: &[u8]) {
        let o = &self.options;
        let needs_quotes = v.is_empty()
            || v == o.null.as_bytes()
            || v == b"\\."
            || v.iter()
                .any(|&b| b == o.delimiter || b == o.quote || b == b'\n' || b == b'\r');
        if !needs_quotes {
            return out.extend_from_slice(v);
        }
        out.push(o.quote);
        for &b in v {
            if b == o.quote {
                out.push(o.quote);
            }
            out.push(b);
        }
        out.push(o.quote);
    }

    /// The header line: the column names, quoted as fields are.
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, c) in self.codecs.iter().enumerate() {
            if k > 0 {
                out.push(self.options.delimiter);
            }
            self.push_field(&mut out, c.name.as_bytes());
        }
        out.push(b'\n');
        out
    }
}

impl ChunkEncoder for CsvEncoder {
    fn encode(&self, batch: RecordBatch, first_row: u64) -> Result<Chunk, FerryError> {
        let at = |e: ferry_connectors::pg::EncodeError| FerryError::Encode {
            row: first_row + e.row as u64 + 1,
            source: e,
        };
        let mut cols = Vec::with_capacity(self.codecs.len());
        for (codec, array) in self.codecs.iter().zip(batch.columns()) {
            let normalized = codec.normalize(array).map_err(at)?;
            let mut col = TextColumn::default();
            render_column(codec, &normalized, Style::Raw, &mut col).map_err(at)?;
            cols.push((col, array.logical_nulls()));
        }
        let mut out = Vec::with_capacity(
            cols.iter().map(|c| c.0.data.len()).sum::<usize>()
                + batch.num_rows() * (cols.len() + 1),
        );
        for r in 0..batch.num_rows() {
            for (k, (col, nulls)) in cols.iter().enumerate() {
                if k > 0 {
                    out.push(self.options.delimiter);
                }
                if nulls.as_ref().is_some_and(|n| n.is_null(r)) {
                    out.extend_from_slice(self.options.null.as_bytes());
                } else {
                    self.push_field(&mut out, col.get(r));
                }
            }
            out.push(b'\n');
        }
        Ok(Chunk::Bytes(out))
    }
}
