//! Parquet, with a row group's columns encoded on all cores, each column in
//! its own lane ([`super::lanes`]).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use datafusion::parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::writer::SerializedFileWriter;
use datafusion::parquet::schema::types::ColumnPath;
use ferry_connectors::pg::QualifiedName;
use rayon::prelude::*;

use super::file::{OutFile, PassThrough, io, seal, temp_path};
use super::lanes::Lanes;
use super::spill::{HEAP_PAGES_PER_ROW_GROUP, SpillPagesFactory};
use super::{Chunk, ChunkSink, FormatWriter, Options, Output, OutputFormat};
use crate::error::FerryError;

/// Parquet page compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetCodec {
    /// Snappy (the default).
    Snappy,
    /// Zstandard at a level (1–22).
    Zstd(i32),
    /// gzip at a level (0–9).
    Gzip(u32),
    /// LZ4 (raw).
    Lz4,
    /// Uncompressed pages.
    None,
}

/// Which columns get Parquet dictionary encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dictionary {
    /// Chosen per column from the first rows: only columns whose values
    /// repeat. Interning every value of a mostly-unique column (keys, prices,
    /// free text) costs a hash-table insert per value, only for the writer to
    /// give the dictionary up once it outgrows its page.
    Auto,
    /// Every column.
    Always,
    /// No column.
    Never,
}

/// Which Parquet statistics to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    /// None.
    None,
    /// Per column chunk.
    Chunk,
    /// Per page (and chunk).
    Page,
}

/// Parquet writing options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Page compression.
    pub codec: ParquetCodec,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Dictionary encoding.
    pub dictionary: Dictionary,
    /// How fine-grained the min/max statistics readers prune with are.
    pub statistics: Statistics,
}

/// `--to parquet`.
pub(super) struct Parquet;

impl FormatWriter for Parquet {
    fn names(&self) -> &'static [&'static str] {
        &["parquet"]
    }

    fn options(&self, _name: &str, o: &Options<'_>) -> Result<OutputFormat, FerryError> {
        let level = |c: &str, name: &str| -> Result<Option<i64>, FerryError> {
            match c.strip_prefix(name) {
                Some("") => Ok(None),
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|l| l.parse().ok())
                    .map(Some)
                    .ok_or_else(|| {
                        FerryError::Usage(format!("compression {c}: expected {name}:<level>"))
                    }),
                None => Ok(None),
            }
        };

        let c = o.codec.clone().unwrap_or_else(|| "snappy".into());
        let parquet_codec = if c == "snappy" {
            ParquetCodec::Snappy
        } else if c.starts_with("zstd") {
            ParquetCodec::Zstd(level(&c, "zstd")?.unwrap_or(3) as i32)
        } else if c.starts_with("gzip") {
            ParquetCodec::Gzip(level(&c, "gzip")?.unwrap_or(6) as u32)
        } else if c == "lz4" {
            ParquetCodec::Lz4
        } else if c == "none" || c == "uncompressed" {
            ParquetCodec::None
        } else {
            return Err(o.bad("snappy, zstd[:level], gzip[:level], lz4 or none"));
        };
        Ok(OutputFormat::Parquet(ParquetOptions {
            codec: parquet_codec,
            row_group_rows: o.args.row_group_rows.unwrap_or(1_048_576).max(1),
            dictionary: match o.args.dictionary {
                None => Dictionary::Auto,
                Some(true) => Dictionary::Always,
                Some(false) => Dictionary::Never,
            },
            statistics: match o.args.statistics.as_deref() {
                None | Some("page") => Statistics::Page,
                Some("none") => Statistics::None,
                Some("chunk") => Statistics::Chunk,
                Some(other) => {
                    return Err(FerryError::Usage(format!(
                        "statistics {other:?}: use none, chunk or page"
                    )));
                }
            },
        }))
    }

    fn open(
        &self,
        format: &OutputFormat,
        path: &Path,
        schema: SchemaRef,
        _table: &QualifiedName,
    ) -> Result<Output, FerryError> {
        let OutputFormat::Parquet(o) = format else {
            return Err(FerryError::Internal(format!(
                "the Parquet writer got {}",
                format.name()
            )));
        };
        Ok(Output {
            encoder: Arc::new(PassThrough),
            sink: Box::new(ParquetSink::create(path, schema, o)?),
        })
    }
}

/// Parquet with a row group's columns encoded in parallel, their finished
/// pages on the heap up to a budget and on local disk past it until the row
/// group closes ([`super::spill`]).
///
/// The file is opened at the first write, or after the first
/// [`DICTIONARY_SAMPLE_ROWS`] rows when dictionary encoding is chosen per
/// column, because the writer's properties are fixed for the whole file.
struct ParquetSink {
    path: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    options: ParquetOptions,
    open: Option<OpenParquet>,
    /// Rows held back until the dictionary choice is made.
    sample: Vec<RecordBatch>,
    sample_rows: usize,
    /// The open row group's column writers, one lane each.
    columns: Option<ColumnLanes>,
    row_groups: usize,
    rows_in_group: usize,
    row_group_rows: usize,
}

/// The file writer, once its properties are known.
struct OpenParquet {
    writer: SerializedFileWriter<BufWriter<OutFile>>,
    factory: ArrowRowGroupWriterFactory,
}

/// A row group's column writers, each fed its leaves in order.
type ColumnLanes = Lanes<ArrowColumnWriter, ArrowLeafColumn, ParquetError>;

/// Rows looked at before choosing which columns get a dictionary.
const DICTIONARY_SAMPLE_ROWS: usize = 65_536;

/// A column gets a dictionary when its sample holds at most one distinct
/// value per this many rows: dates, flags, codes and small quantities do,
/// keys, prices and free text do not.
const DICTIONARY_REPEATS: usize = 8;

fn pq(e: datafusion::parquet::errors::ParquetError) -> FerryError {
    FerryError::Internal(format!("Parquet: {e}"))
}

/// Whether the values of `column` in `sample` repeat enough for a dictionary.
/// Distinct values are counted by hash (a collision only errs towards a
/// dictionary), stopping as soon as the limit is passed.
fn repeats_enough(sample: &[RecordBatch], column: usize) -> Result<bool, FerryError> {
    use datafusion::common::hash_utils::{RandomState, create_hashes};
    let rows: usize = sample.iter().map(RecordBatch::num_rows).sum();
    let limit = rows / DICTIONARY_REPEATS;
    let state = RandomState::default();
    let mut seen = std::collections::HashSet::with_capacity(limit.min(1 << 14) + 1);
    let mut hashes = Vec::new();
    for batch in sample {
        hashes.clear();
        hashes.resize(batch.num_rows(), 0);
        create_hashes([batch.column(column)], &state, &mut hashes)
            .map_err(|e| FerryError::Internal(format!("hashing a sample: {e}")))?;
        for h in &hashes {
            if seen.insert(*h) && seen.len() > limit {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

impl ParquetSink {
    fn create(
        path: &Path,
        schema: SchemaRef,
        o: &ParquetOptions,
    ) -> Result<ParquetSink, FerryError> {
        let tmp = temp_path(path);
        // Fail on an unwritable destination now, not after the sample.
        File::create(&tmp).map_err(io(&tmp))?;
        Ok(ParquetSink {
            path: path.to_path_buf(),
            tmp,
            schema,
            options: o.clone(),
            open: None,
            sample: Vec::new(),
            sample_rows: 0,
            columns: None,
            row_groups: 0,
            rows_in_group: 0,
            row_group_rows: o.row_group_rows.max(1),
        })
    }

    /// Chooses the properties (from the sample) and opens the file.
    fn open(&mut self) -> Result<(), FerryError> {
        let o = &self.options;
        let codec = match o.codec {
            ParquetCodec::Snappy => PqCompression::SNAPPY,
            ParquetCodec::Zstd(l) => PqCompression::ZSTD(
                ZstdLevel::try_new(l).map_err(|e| FerryError::Usage(format!("zstd level: {e}")))?,
            ),
            ParquetCodec::Gzip(l) => PqCompression::GZIP(
                GzipLevel::try_new(l).map_err(|e| FerryError::Usage(format!("gzip level: {e}")))?,
            ),
            ParquetCodec::Lz4 => PqCompression::LZ4_RAW,
            ParquetCodec::None => PqCompression::UNCOMPRESSED,
        };
        let mut builder = WriterProperties::builder()
            .set_compression(codec)
            .set_dictionary_enabled(o.dictionary != Dictionary::Never)
            .set_statistics_enabled(match o.statistics {
                Statistics::None => EnabledStatistics::None,
                Statistics::Chunk => EnabledStatistics::Chunk,
                Statistics::Page => EnabledStatistics::Page,
            })
            .set_created_by(format!("ferry {}", env!("CARGO_PKG_VERSION")));
        if o.dictionary == Dictionary::Auto && self.sample_rows > 0 {
            for (i, field) in self.schema.fields().iter().enumerate() {
                // Nested columns keep the default: their leaves are many.
                if !field.data_type().is_nested() && !repeats_enough(&self.sample, i)? {
                    builder = builder.set_column_dictionary_enabled(
                        ColumnPath::from(field.name().as_str()),
                        false,
                    );
                }
            }
        }
        let mut props = builder.build();
        // Readers restore the exact Arrow types from this (as ArrowWriter does).
        add_encoded_arrow_schema_to_metadata(&self.schema, &mut props);
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&self.schema)
            .map_err(|e| FerryError::Usage(format!("Parquet cannot hold this schema: {e}")))?;
        let file =
            BufWriter::with_capacity(1 << 20, OutFile::create(&self.tmp).map_err(io(&self.tmp))?);
        let writer =
            SerializedFileWriter::new(file, parquet_schema.root_schema_ptr(), Arc::new(props))
                .map_err(pq)?;
        // Finished pages past the heap budget wait on local disk until their
        // row group is spliced into the file (`spill.rs`).
        let factory = ArrowRowGroupWriterFactory::new(&writer, self.schema.clone())
            .with_page_store_factory(Arc::new(SpillPagesFactory::new(
                std::env::temp_dir(),
                HEAP_PAGES_PER_ROW_GROUP,
            )));
        self.open = Some(OpenParquet { writer, factory });
        for batch in std::mem::take(&mut self.sample) {
            self.write_split(&batch)?;
        }
        self.sample_rows = 0;
        Ok(())
    }

    /// Writes a batch, split at row-group boundaries.
    fn write_split(&mut self, batch: &RecordBatch) -> Result<(), FerryError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let room = self.row_group_rows - self.rows_in_group;
            let n = room.min(batch.num_rows() - offset);
            self.write_rows(&batch.slice(offset, n))?;
            offset += n;
        }
        Ok(())
    }

    fn write_rows(&mut self, batch: &RecordBatch) -> Result<(), FerryError> {
        let open = self.open.as_mut().unwrap_or_else(|| unreachable!());
        if self.columns.is_none() {
            let writers = open
                .factory
                .create_column_writers(self.row_groups)
                .map_err(pq)?;
            self.columns = Some(Lanes::new(writers, |w, leaf| w.write(&leaf)));
        }
        let mut leaves = Vec::new();
        for (field, array) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, array).map_err(pq)?);
        }
        let lanes = self.columns.as_mut().unwrap_or_else(|| unreachable!());
        lanes.submit(leaves).map_err(pq)?;
        self.rows_in_group += batch.num_rows();
        if self.rows_in_group >= self.row_group_rows {
            self.close_group()?;
        }
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), FerryError> {
        if let (Some(lanes), Some(open)) = (self.columns.take(), self.open.as_mut()) {
            let chunks = lanes
                .finish()
                .map_err(pq)?
                .into_par_iter()
                .map(|w| w.close())
                .collect::<Result<Vec<_>, _>>()
                .map_err(pq)?;
            let mut group = open.writer.next_row_group().map_err(pq)?;
            for chunk in chunks {
                chunk.append_to_row_group(&mut group).map_err(pq)?;
            }
            group.close().map_err(pq)?;
            self.row_groups += 1;
        }
        self.rows_in_group = 0;
        Ok(())
    }
}

impl ChunkSink for ParquetSink {
    fn write(&mut self, chunk: Chunk, _rows: u64) -> Result<(), FerryError> {
        let Chunk::Batch(batch) = chunk else {
            return Err(FerryError::Internal("the Parquet sink got bytes".into()));
        };
        if self.open.is_some() {
            return self.write_split(&batch);
        }
        self.sample_rows += batch.num_rows();
        self.sample.push(batch);
        if self.options.dictionary != Dictionary::Auto || self.sample_rows >= DICTIONARY_SAMPLE_ROWS
        {
            self.open()?;
        }
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<Vec<PathBuf>, FerryError> {
        if self.open.is_none() {
            self.open()?;
        }
        self.close_group()?;
        let open = self.open.take().unwrap_or_else(|| unreachable!());
        // into_inner writes the footer.
        let file = open.writer.into_inner().map_err(pq)?;
        let file = file.into_inner().map_err(|e| {
            FerryError::io(format!("writing {}", self.tmp.display()), e.into_error())
        })?;
        seal(file, &self.tmp, self.path)
    }
}
