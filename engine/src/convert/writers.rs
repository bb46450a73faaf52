//! One writer per output format. Each has two halves: an encoder that turns
//! a (canonical) batch into a chunk, run in parallel on the rayon pool, and a
//! sink that writes chunks in order. Formats whose files are stateful
//! (Parquet, Arrow IPC, Avro) pass batches through and do their work in the
//! sink — Parquet encodes a row group's columns on all cores there.
//!
//! Files are written under a temporary name and renamed on success, so a
//! failed conversion never leaves a partial output behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use datafusion::parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::writer::SerializedFileWriter;
use datafusion::parquet::schema::types::ColumnPath;
use ferry_connectors::pg::artifacts::{ArtifactKinds, ArtifactSpec, ArtifactWriter};
use ferry_connectors::pg::catalog::{NewColumn, create_table_sql};
use ferry_connectors::pg::codec::ColumnCodec;
use ferry_connectors::pg::copy::{Encoded, encode_batch};
use ferry_connectors::pg::text::{Style, TextColumn, render_column};
use ferry_connectors::pg::{BinaryEncoder, LoadMode, PgType, QualifiedName};
use rayon::prelude::*;

use super::canonical::Family;
use crate::error::FerryError;
use crate::spec::ConvertSpec;

/// Compression of text outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCompression {
    /// Plain.
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
    /// None.
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
    /// Compression.
    pub codec: ParquetCodec,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Dictionary encoding.
    pub dictionary: Dictionary,
    /// Statistics.
    pub statistics: Statistics,
}

/// Arrow IPC body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcCodec {
    /// None.
    None,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// Avro block compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvroCodec {
    /// None.
    Null,
    /// Deflate.
    Deflate,
    /// Snappy.
    Snappy,
    /// Zstandard.
    Zstd,
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

fn io(path: &Path) -> impl Fn(std::io::Error) -> FerryError + '_ {
    move |e| FerryError::io(format!("writing {}", path.display()), e)
}

/// The temporary name an output is written under.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".ferry-tmp");
    path.with_file_name(name)
}

/// An output file that hands its pages to the disk as it grows (every
/// [`WRITEBACK_BYTES`]), so the fsync that makes it durable at the end waits
/// for the last few megabytes instead of the whole file: that fsync took
/// 68 ms of an SF 1 CSV → Parquet run (214 MB), time in which nothing else
/// was left to do.
struct OutFile {
    file: File,
    written: u64,
    handed: u64,
}

/// How much an [`OutFile`] writes between writeback requests.
const WRITEBACK_BYTES: u64 = 8 << 20;

impl OutFile {
    fn create(path: &Path) -> std::io::Result<OutFile> {
        Ok(OutFile {
            file: File::create(path)?,
            written: 0,
            handed: 0,
        })
    }

    /// Starts writeback of what was written since the last call, without
    /// waiting for it. Advisory: the final fsync reports any I/O error.
    fn hand_over(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor and range; the call only schedules
            // writeback of this file's dirty pages.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.handed as libc::off64_t,
                    (self.written - self.handed) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.handed = self.written;
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.handed >= WRITEBACK_BYTES {
            self.hand_over();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Makes a finished temporary file durable and gives it its final name.
fn seal(file: OutFile, tmp: &Path, path: PathBuf) -> Result<Vec<PathBuf>, FerryError> {
    file.file.sync_all().map_err(io(tmp))?;
    commit(tmp, &path)?;
    Ok(vec![path])
}

fn commit(tmp: &Path, path: &Path) -> Result<(), FerryError> {
    std::fs::rename(tmp, path).map_err(|e| {
        FerryError::io(
            format!("renaming {} to {}", tmp.display(), path.display()),
            e,
        )
    })
}

struct PassThrough;
impl ChunkEncoder for PassThrough {
    fn encode(&self, batch: RecordBatch, _first_row: u64) -> Result<Chunk, FerryError> {
        Ok(Chunk::Batch(batch))
    }
}

/// CSV/TSV in PostgreSQL's text forms (what `COPY … TO … (FORMAT csv)` writes),
/// so the output loads with PostgreSQL's own `\copy` too.
struct CsvEncoder {
    codecs: Vec<ColumnCodec>,
    options: TextOptions,
}

impl CsvEncoder {
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

/// The compressor over an output file.
enum Compressor {
    Plain(BufWriter<OutFile>),
    Gzip(flate2::write::GzEncoder<BufWriter<OutFile>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<OutFile>>),
}

impl Compressor {
    fn out(&mut self) -> &mut dyn Write {
        match self {
            Compressor::Plain(w) => w,
            Compressor::Gzip(w) => w,
            Compressor::Zstd(w) => w,
        }
    }

    /// Writes the compressor's trailer (errors included: a failed finish is a
    /// failed output, never a silently truncated one) and returns the file.
    fn finish(self) -> std::io::Result<OutFile> {
        let buffered = match self {
            Compressor::Plain(w) => w,
            Compressor::Gzip(w) => w.finish()?,
            Compressor::Zstd(w) => w.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

/// A file of bytes, optionally compressed.
struct ByteSink {
    path: PathBuf,
    tmp: PathBuf,
    out: Compressor,
}

impl ByteSink {
    fn create(path: &Path, compression: TextCompression) -> Result<ByteSink, FerryError> {
        let tmp = temp_path(path);
        let file = BufWriter::with_capacity(1 << 20, OutFile::create(&tmp).map_err(io(&tmp))?);
        let out = match compression {
            TextCompression::None => Compressor::Plain(file),
            TextCompression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            )),
            TextCompression::Zstd => {
                Compressor::Zstd(zstd::stream::write::Encoder::new(file, 3).map_err(io(&tmp))?)
            }
        };
        Ok(ByteSink {
            path: path.to_path_buf(),
            tmp,
            out,
        })
    }
}

impl ChunkSink for ByteSink {
    fn write(&mut self, chunk: Chunk, _rows: u64) -> Result<(), FerryError> {
        match chunk {
            Chunk::Bytes(b) => self.out.out().write_all(&b).map_err(io(&self.tmp)),
            _ => Err(FerryError::Internal("a byte sink got a batch".into())),
        }
    }
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>, FerryError> {
        let file = self.out.finish().map_err(io(&self.tmp))?;
        seal(file, &self.tmp, self.path)
    }
}

/// Parquet with a row group's columns encoded in parallel.
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
    columns: Option<Vec<ArrowColumnWriter>>,
    row_groups: usize,
    rows_in_group: usize,
    row_group_rows: usize,
}

/// The file writer, once its properties are known.
struct OpenParquet {
    writer: SerializedFileWriter<BufWriter<OutFile>>,
    factory: ArrowRowGroupWriterFactory,
}

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
        let factory = ArrowRowGroupWriterFactory::new(&writer, self.schema.clone());
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
            self.columns = Some(
                open.factory
                    .create_column_writers(self.row_groups)
                    .map_err(pq)?,
            );
        }
        let mut leaves = Vec::new();
        for (field, array) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, array).map_err(pq)?);
        }
        let writers = self.columns.as_mut().unwrap_or_else(|| unreachable!());
        writers
            .par_iter_mut()
            .zip(leaves.into_par_iter())
            .try_for_each(|(w, leaf)| w.write(&leaf))
            .map_err(pq)?;
        self.rows_in_group += batch.num_rows();
        if self.rows_in_group >= self.row_group_rows {
            self.close_group()?;
        }
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), FerryError> {
        if let (Some(writers), Some(open)) = (self.columns.take(), self.open.as_mut()) {
            let chunks = writers
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

/// Arrow IPC (file or stream) and Avro: stateful writers over one file.
struct RecordSink<W> {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<W>,
}

/// The operations the stateful record writers share.
trait RecordWriter: Send {
    fn put(&mut self, batch: &RecordBatch) -> Result<(), String>;
    fn done(self) -> Result<BufWriter<OutFile>, String>;
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

impl RecordWriter for arrow_avro::writer::AvroWriter<BufWriter<OutFile>> {
    fn put(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.write(batch).map_err(|e| e.to_string())
    }
    fn done(mut self) -> Result<BufWriter<OutFile>, String> {
        self.finish().map_err(|e| e.to_string())?;
        Ok(self.into_inner())
    }
}

impl<W: RecordWriter> ChunkSink for RecordSink<W> {
    fn write(&mut self, chunk: Chunk, _rows: u64) -> Result<(), FerryError> {
        let (Chunk::Batch(batch), Some(w)) = (chunk, self.writer.as_mut()) else {
            return Err(FerryError::Internal("a record sink got bytes".into()));
        };
        w.put(&batch)
            .map_err(|e| FerryError::Internal(format!("writing {}: {e}", self.path.display())))
    }
    fn finish(mut self: Box<Self>) -> Result<Vec<PathBuf>, FerryError> {
        let w = self
            .writer
            .take()
            .ok_or_else(|| FerryError::Internal("finished twice".into()))?;
        let file = w
            .done()
            .map_err(|e| FerryError::Internal(format!("writing {}: {e}", self.path.display())))?;
        let file = file.into_inner().map_err(|e| {
            FerryError::io(format!("writing {}", self.tmp.display()), e.into_error())
        })?;
        seal(file, &self.tmp, self.path)
    }
}

/// Binary COPY and/or COPY text for the PostgreSQL artifacts, no database.
struct CopyEncoder {
    encoder: BinaryEncoder,
    binary: bool,
    text: bool,
}

impl ChunkEncoder for CopyEncoder {
    fn encode(&self, batch: RecordBatch, first_row: u64) -> Result<Chunk, FerryError> {
        encode_batch(&self.encoder, &batch, first_row, self.binary, self.text)
            .map(Chunk::Copy)
            .map_err(|e| FerryError::Encode {
                row: first_row + e.row as u64 + 1,
                source: e,
            })
    }
}

struct ArtifactSink {
    dir: PathBuf,
    tmp: PathBuf,
    writer: Option<ArtifactWriter>,
}

impl ChunkSink for ArtifactSink {
    fn write(&mut self, chunk: Chunk, _rows: u64) -> Result<(), FerryError> {
        let (Chunk::Copy(e), Some(w)) = (chunk, self.writer.as_mut()) else {
            return Err(FerryError::Internal("the artifact sink got a batch".into()));
        };
        w.write_batch(&e.binary, &e.text, e.rows)
            .map_err(FerryError::from)
    }
    fn finish(mut self: Box<Self>) -> Result<Vec<PathBuf>, FerryError> {
        let w = self
            .writer
            .take()
            .ok_or_else(|| FerryError::Internal("finished twice".into()))?;
        let files = w.finish(None)?;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(io(&self.dir))?;
        }
        commit(&self.tmp, &self.dir)?;
        Ok(files
            .into_iter()
            .filter_map(|f| f.path.file_name().map(|n| self.dir.join(n)))
            .collect())
    }
}

/// The PostgreSQL type of each canonical column (the converter has no database).
pub fn pg_columns(schema: &SchemaRef) -> Result<Vec<(String, PgType)>, FerryError> {
    schema
        .fields()
        .iter()
        .map(|f| {
            PgType::for_field(f)
                .map(|t| (f.name().clone(), t))
                .ok_or_else(|| {
                    FerryError::Usage(format!(
                        "column {:?} ({}) has no PostgreSQL type",
                        f.name(),
                        f.data_type()
                    ))
                })
        })
        .collect()
}

/// Opens the writer for `format` at `path` (a folder for `sql`/`pgcopy`).
pub fn open(
    format: &OutputFormat,
    path: &Path,
    schema: SchemaRef,
    table: &QualifiedName,
) -> Result<Output, FerryError> {
    let pass: Arc<dyn ChunkEncoder> = Arc::new(PassThrough);
    let natural_codecs = |schema: &SchemaRef| -> Result<Vec<ColumnCodec>, FerryError> {
        pg_columns(schema)?
            .into_iter()
            .zip(schema.fields())
            .map(|((name, pg), f)| {
                ColumnCodec::plan(&name, f.data_type(), &pg)
                    .map_err(|e| FerryError::Usage(e.to_string()))
            })
            .collect()
    };
    Ok(match format {
        OutputFormat::Csv(o) | OutputFormat::Tsv(o) => {
            let encoder = CsvEncoder {
                codecs: natural_codecs(&schema)?,
                options: o.clone(),
            };
            let mut sink = ByteSink::create(path, o.compression)?;
            if o.header {
                let header = encoder.header();
                sink.write(Chunk::Bytes(header), 0)?;
            }
            Output {
                encoder: Arc::new(encoder),
                sink: Box::new(sink),
            }
        }
        OutputFormat::Ndjson(c) => Output {
            encoder: Arc::new(JsonEncoder),
            sink: Box::new(ByteSink::create(path, *c)?),
        },
        OutputFormat::Parquet(o) => Output {
            encoder: pass,
            sink: Box::new(ParquetSink::create(path, schema, o)?),
        },
        OutputFormat::ArrowFile(c) | OutputFormat::ArrowStream(c) => {
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
                let w =
                    arrow::ipc::writer::FileWriter::try_new_with_options(file, &schema, options)
                        .map_err(ipc)?;
                Box::new(RecordSink {
                    path: path.to_path_buf(),
                    tmp,
                    writer: Some(w),
                })
            } else {
                let w =
                    arrow::ipc::writer::StreamWriter::try_new_with_options(file, &schema, options)
                        .map_err(ipc)?;
                Box::new(RecordSink {
                    path: path.to_path_buf(),
                    tmp,
                    writer: Some(w),
                })
            };
            Output {
                encoder: pass,
                sink,
            }
        }
        OutputFormat::Avro(c) => {
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
            Output {
                encoder: pass,
                sink: Box::new(RecordSink {
                    path: path.to_path_buf(),
                    tmp,
                    writer: Some(w),
                }),
            }
        }
        OutputFormat::Sql | OutputFormat::Pgcopy => {
            let sql = *format == OutputFormat::Sql;
            let columns = pg_columns(&schema)?;
            let codecs = natural_codecs(&schema)?;
            let new_columns: Vec<NewColumn> = columns
                .iter()
                .zip(schema.fields())
                .map(|((name, pg), f)| NewColumn {
                    name: name.clone(),
                    pg: pg.clone(),
                    not_null: !f.is_nullable(),
                })
                .collect();
            let tmp = temp_path(path);
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
            }
            let spec = ArtifactSpec {
                dir: tmp.clone(),
                stem: table.name.clone(),
                kinds: ArtifactKinds { sql, pgcopy: !sql },
                part_bytes: 256 << 20,
                target: table.clone(),
                target_ddl: create_table_sql(table, &new_columns, &[], true, false),
                columns: columns.iter().map(|(n, _)| n.clone()).collect(),
                mode: LoadMode::Append,
                keys: Vec::new(),
            };
            Output {
                encoder: Arc::new(CopyEncoder {
                    encoder: BinaryEncoder::new(Arc::new(codecs)),
                    binary: !sql,
                    text: sql,
                }),
                sink: Box::new(ArtifactSink {
                    dir: path.to_path_buf(),
                    tmp,
                    writer: Some(ArtifactWriter::new(spec)?),
                }),
            }
        }
    })
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
        let codec = args.compression.as_deref().map(str::to_ascii_lowercase);
        let bad = |what: &str| {
            FerryError::Usage(format!(
                "compression {:?} does not apply to {}: use {what}",
                codec.as_deref().unwrap_or(""),
                args.to
            ))
        };
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
        let text_codec = || -> Result<TextCompression, FerryError> {
            match codec.as_deref() {
                None | Some("none") => Ok(TextCompression::None),
                Some("gzip") | Some("gz") => Ok(TextCompression::Gzip),
                Some("zstd") | Some("zst") => Ok(TextCompression::Zstd),
                _ => Err(bad("none, gzip or zstd")),
            }
        };
        let text = |delimiter: u8| -> Result<TextOptions, FerryError> {
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
                None => delimiter,
            };
            Ok(TextOptions {
                delimiter,
                quote: b'"',
                header: args.header.unwrap_or(true),
                null: args.null.clone().unwrap_or_default(),
                compression: text_codec()?,
            })
        };
        Ok(match args.to.as_str() {
            "csv" => OutputFormat::Csv(text(b',')?),
            "tsv" => OutputFormat::Tsv(text(b'\t')?),
            "ndjson" => OutputFormat::Ndjson(text_codec()?),
            "parquet" => {
                let c = codec.clone().unwrap_or_else(|| "snappy".into());
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
                    return Err(bad("snappy, zstd[:level], gzip[:level], lz4 or none"));
                };
                OutputFormat::Parquet(ParquetOptions {
                    codec: parquet_codec,
                    row_group_rows: args.row_group_rows.unwrap_or(1_048_576).max(1),
                    dictionary: match args.dictionary {
                        None => Dictionary::Auto,
                        Some(true) => Dictionary::Always,
                        Some(false) => Dictionary::Never,
                    },
                    statistics: match args.statistics.as_deref() {
                        None | Some("page") => Statistics::Page,
                        Some("none") => Statistics::None,
                        Some("chunk") => Statistics::Chunk,
                        Some(other) => {
                            return Err(FerryError::Usage(format!(
                                "statistics {other:?}: use none, chunk or page"
                            )));
                        }
                    },
                })
            }
            "arrow" | "arrows" => {
                let c = match codec.as_deref() {
                    None | Some("none") => IpcCodec::None,
                    Some("lz4") => IpcCodec::Lz4,
                    Some("zstd") => IpcCodec::Zstd,
                    _ => return Err(bad("none, lz4 or zstd")),
                };
                if args.to == "arrow" {
                    OutputFormat::ArrowFile(c)
                } else {
                    OutputFormat::ArrowStream(c)
                }
            }
            "avro" => OutputFormat::Avro(match codec.as_deref() {
                None | Some("null") | Some("none") => AvroCodec::Null,
                Some("deflate") => AvroCodec::Deflate,
                Some("snappy") => AvroCodec::Snappy,
                Some("zstd") => AvroCodec::Zstd,
                _ => return Err(bad("null, deflate, snappy or zstd")),
            }),
            "sql" | "pgcopy" => {
                if codec.is_some() {
                    return Err(bad("nothing (the artifacts are not compressed)"));
                }
                if args.to == "sql" {
                    OutputFormat::Sql
                } else {
                    OutputFormat::Pgcopy
                }
            }
            other => {
                return Err(FerryError::Usage(format!(
                    "{other:?} is not an output format (csv, tsv, ndjson, parquet, arrow, arrows, avro, sql, pgcopy)"
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_hand_their_pages_over_as_they_grow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut f = OutFile::create(&path).unwrap();
        let piece = vec![7u8; 1 << 20];
        for _ in 0..20 {
            f.write_all(&piece).unwrap();
        }
        // Two full 8 MiB stretches were handed over; the last 4 MiB wait for the fsync.
        assert_eq!(f.handed, 16 << 20);
        assert_eq!(f.written, 20 << 20);
        seal(f, &path, dir.path().join("final.bin")).unwrap();
        let back = std::fs::read(dir.path().join("final.bin")).unwrap();
        assert_eq!(back.len(), 20 << 20);
        assert!(back.iter().all(|&b| b == 7));
    }
}
