//! The streaming, parallel CSV reader behind the `source` table.
//!
//! One thread reads (and decompresses) the input in blocks and cuts them at
//! record boundaries with the quote-aware [`Splitter`]; each chunk is then
//! validated, tokenized and parsed on the rayon pool. Chunks come back in input
//! order through a bounded queue of pending results, so memory is bounded by
//! `queue depth × chunk size` whatever the file size, and the output order
//! (and so every artifact) is deterministic.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

use super::super::compression::Compression;
use super::super::encoding::Encoding;
use super::super::error::DecodeError;
use super::super::json::line_error;
use super::super::lines::{LineError, reserve_record};
use super::super::reject::{RejectSink, RejectedRow};
use super::build::{ChunkPos, OnBadRow, Projection, build_batch};
use super::dialect::CsvDialect;
use super::tokenize::{Records, Splitter, tokenize};
use crate::ordered;

/// Bytes read from the input (compressed, as stored) and rows decoded, for
/// progress bars and summaries.
#[derive(Debug, Default)]
pub struct ReadCounters {
    /// Input bytes consumed so far.
    pub bytes: AtomicU64,
    /// Rows decoded so far.
    pub rows: AtomicU64,
}

/// A delimited text file as a table: where it is, how it is written, and the
/// schema of all its columns.
#[derive(Debug)]
pub struct CsvSource {
    /// The local file.
    pub path: PathBuf,
    /// Name used in messages (the original URI).
    pub display: String,
    /// Resolved codec.
    pub compression: Compression,
    /// Text encoding (decoded to UTF-8 as read, unless UTF-8).
    pub encoding: Encoding,
    /// Delimiter, quote, escape, header and NULL markers.
    pub dialect: CsvDialect,
    /// Every column of the file, in order.
    pub schema: SchemaRef,
    /// Optional chrono format per column.
    pub formats: Vec<Option<String>>,
    /// Per column: the type was inferred, so values must fit it exactly.
    pub exact: Vec<bool>,
    /// Target chunk size in bytes.
    pub chunk_bytes: usize,
    /// Records longer than this are refused rather than buffered without
    /// end (`[source] max_record_size`).
    pub max_record: usize,
    /// Progress counters.
    pub counters: Arc<ReadCounters>,
    /// Where bad rows go when the dataset allows some (`None`: the first bad
    /// row fails the read).
    pub rejects: Option<Arc<RejectSink>>,
    /// Just these bytes of a plain file (one part of a split input, see
    /// [`record_ranges`](super::record_ranges)); `None`: the whole file.
    pub range: Option<super::ByteRange>,
}

/// The smallest chunk the reader cuts (but for the input's last).
const MIN_CHUNK_BYTES: usize = 256 << 10;

/// How many bytes the reader aims to put in its next chunk.
///
/// Chunks start small and double up to `max`, so the first rows reach the
/// writer (or PostgreSQL) after a small chunk's parse rather than a full
/// one's; and when the bytes left are known (a plain file), the last chunks
/// shrink so that every core still has one to parse at the end. Both ends of
/// the pipeline otherwise idle for about a full chunk's work, which is a
/// fixed cost per file that small files feel most.
fn chunk_size(max: usize, cut_so_far: u32, remaining: Option<u64>, threads: usize) -> usize {
    let min = MIN_CHUNK_BYTES.min(max);
    let growing = min.saturating_mul(1usize << cut_so_far.min(20)).min(max);
    let tail = remaining.map_or(max, |r| {
        usize::try_from(r / (2 * threads as u64)).unwrap_or(max)
    });
    growing.min(tail).max(min)
}

/// Counts the bytes read through it (the stored, compressed bytes).
pub(crate) struct CountingReader<R> {
    inner: R,
    counters: Arc<ReadCounters>,
}

impl<R> CountingReader<R> {
    /// Counts what `inner` yields into `counters.bytes`.
    pub(crate) fn new(inner: R, counters: Arc<ReadCounters>) -> Self {
        CountingReader { inner, counters }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Parsed = Result<(RecordBatch, Vec<RejectedRow>), DecodeError>;

thread_local! {
    static RECORDS: RefCell<Records> = RefCell::new(Records::default());
}

impl CsvSource {
    /// Streams the projected columns (`None`: all) as record batches.
    pub fn stream(self: &Arc<Self>, indices: Vec<usize>) -> SendableRecordBatchStream {
        let schema = Arc::new(Schema::new(
            indices
                .iter()
                .map(|&i| self.schema.field(i).clone())
                .collect::<Vec<_>>(),
        ));
        let projection = Arc::new(Projection {
            fields: schema.fields().iter().cloned().collect(),
            formats: indices.iter().map(|&i| self.formats[i].clone()).collect(),
            exact: indices.iter().map(|&i| self.exact[i]).collect(),
            indices,
            expected_fields: self.schema.fields().len(),
            file_names: self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        });
        let (tx, rx) = ordered::channel::<Parsed>(ordered::depth());
        let source = self.clone();
        let out_schema = schema.clone();
        std::thread::Builder::new()
            .name("ferry-csv-reader".into())
            .spawn(move || source.read_loop(projection, out_schema, tx))
            .expect("spawning a thread");
        let source = self.clone();
        let stream = futures::stream::unfold(rx, move |mut rx| {
            let source = source.clone();
            async move {
                let result = rx
                    .next()
                    .await?
                    .unwrap_or_else(|_| {
                        Err(DecodeError::Layout {
                            file: source.display.clone(),
                            detail: "internal: a parse task stopped without a result".into(),
                        })
                    })
                    .and_then(|(batch, rejected)| {
                        // In input order: the reject file is deterministic.
                        if let Some(sink) = &source.rejects {
                            sink.record(&source.display, &rejected)?;
                        }
                        Ok(batch)
                    });
                Some((
                    result.map_err(|e| DataFusionError::External(Box::new(e))),
                    rx,
                ))
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }

    fn read_loop(
        self: Arc<Self>,
        projection: Arc<Projection>,
        schema: SchemaRef,
        tx: ordered::Submit<Parsed>,
    ) {
        let fail = |tx: &ordered::Submit<Parsed>, e: DecodeError| {
            tx.blocking_put(Err(e));
        };
        let io = |what: &str, source: std::io::Error| {
            DecodeError::io(self.display.clone(), what.to_string(), source)
        };
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) => return fail(&tx, io("cannot open", e)),
        };
        // A range starts on a record boundary past the header and the
        // byte-order mark, and numbers its lines as the file does.
        let range = self.range.unwrap_or(super::ByteRange {
            start: 0,
            end: u64::MAX,
            line: 1,
        });
        if range.start > 0
            && let Err(e) = file.seek(std::io::SeekFrom::Start(range.start))
        {
            return fail(&tx, io("cannot seek to its part", e));
        }
        let file = file.take(range.len());
        // A plain file is read as the `File` itself, which reads into the
        // chunk's spare capacity as it is: behind a wrapper that has only
        // `read`, `read_to_end` zeroes every byte first (a memset of the whole
        // input). Its bytes are counted here instead.
        let plain = matches!(self.compression, Compression::None | Compression::Auto)
            && self.encoding.is_utf8();
        let mut reader: Box<dyn Read + Send> = if plain {
            Box::new(file)
        } else {
            let counting = CountingReader {
                inner: file,
                counters: self.counters.clone(),
            };
            match self.compression.reader(counting) {
                Ok(r) => self.encoding.wrap(r),
                Err(e) => return fail(&tx, io("cannot start decompressing", e)),
            }
        };
        let cap = self.chunk_bytes + self.chunk_bytes / 4;
        let mut buf: Vec<u8> = Vec::with_capacity(cap);
        // Known for plain files: the last chunks are made small too.
        let total = match self.compression {
            Compression::None => std::fs::metadata(&self.path)
                .ok()
                .map(|m| m.len().min(range.end)),
            _ => None,
        };
        let threads = rayon::current_num_threads().max(1);
        let mut chunks = 0u32;
        let mut splitter = Splitter::new(&self.dialect);
        let mut scanned = 0;
        let mut line = range.line;
        let mut offset = range.start;
        let mut first = range.start == 0;
        let mut skip_header = self.dialect.header && range.start == 0;
        loop {
            let size = chunk_size(
                self.chunk_bytes,
                chunks,
                total.map(|t| t.saturating_sub(offset)),
                threads,
            );
            let want = size.saturating_sub(buf.len()).max(64 * 1024) as u64;
            let need = buf.len() + want as usize;
            reserve_record(&mut buf, need, self.max_record, want as usize);
            let n = match reader.by_ref().take(want).read_to_end(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    return fail(
                        &tx,
                        io("cannot read (truncated or corrupt compressed data?)", e),
                    );
                }
            };
            if plain {
                self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            let eof = (n as u64) < want;
            if first {
                first = false;
                if buf.starts_with(b"\xEF\xBB\xBF") {
                    buf.drain(..3);
                    offset = 3;
                }
            }
            let cut = if eof {
                Some(buf.len())
            } else {
                let c = splitter.scan(&buf, scanned);
                scanned = buf.len();
                c
            };
            match cut {
                None => {
                    if buf.len() > self.max_record {
                        return fail(
                            &tx,
                            line_error(
                                &self.display,
                                LineError::TooLong {
                                    line,
                                    max: self.max_record,
                                },
                            ),
                        );
                    }
                }
                Some(c) => {
                    let mut next = Vec::with_capacity(cap.max(buf.len() - c));
                    next.extend_from_slice(&buf[c..]);
                    buf.truncate(c);
                    let chunk = std::mem::replace(&mut buf, next);
                    chunks += 1;
                    scanned = buf.len();
                    let chunk_line = line;
                    let chunk_offset = offset;
                    line += memchr::memchr_iter(b'\n', &chunk).count() as u64;
                    offset += chunk.len() as u64;
                    if !chunk.is_empty() {
                        let skip = std::mem::take(&mut skip_header) as usize;
                        let source = self.clone();
                        let projection = projection.clone();
                        let schema = schema.clone();
                        let submitted = tx.blocking_spawn(move || {
                            source.parse_chunk(
                                &chunk,
                                chunk_line,
                                chunk_offset,
                                skip,
                                &projection,
                                schema,
                            )
                        });
                        if !submitted {
                            return; // the consumer is gone
                        }
                    }
                }
            }
            if eof {
                return;
            }
        }
    }

    fn parse_chunk(
        &self,
        chunk: &[u8],
        first_line: u64,
        offset: u64,
        skip: usize,
        projection: &Projection,
        schema: SchemaRef,
    ) -> Parsed {
        let pos = ChunkPos {
            file: &self.display,
            chunk,
            first_line,
            offset,
        };
        let on_bad = if self.rejects.is_some() {
            OnBadRow::Reject
        } else {
            OnBadRow::Fail
        };
        let utf8 = std::str::from_utf8(chunk);
        if let (Err(e), OnBadRow::Fail) = (&utf8, on_bad) {
            let at = e.valid_up_to();
            let bad = &chunk[at..(at + e.error_len().unwrap_or(1)).min(chunk.len())];
            return Err(if self.encoding.is_utf8() {
                DecodeError::Utf8 {
                    file: self.display.clone(),
                    line: pos.line_at(at),
                    offset: offset + at as u64,
                    bytes: hex(bad),
                }
            } else {
                DecodeError::Malformed {
                    file: self.display.clone(),
                    line: pos.line_at(at),
                    encoding: self.encoding.name(),
                }
            });
        }
        RECORDS.with(|cell| {
            let mut records = cell.borrow_mut();
            let records = tokenize(chunk, &self.dialect, &mut records)
                .map_err(|u| u.to_error(&self.display, chunk, first_line))?;
            let skip = skip.min(records.len());
            // Records that are not UTF-8 are rejected whole (the text columns
            // rely on every kept record being valid UTF-8).
            let mut excluded = Vec::new();
            let mut rejected = Vec::new();
            if utf8.is_err() {
                for rec in skip..records.len() {
                    let raw = records.record_text(rec);
                    if let Err(e) = std::str::from_utf8(raw) {
                        let at = e.valid_up_to();
                        let bad = &raw[at..(at + e.error_len().unwrap_or(1)).min(raw.len())];
                        let reason = if self.encoding.is_utf8() {
                            format!(
                                "invalid UTF-8 at byte offset {} (bytes {})",
                                offset + (records.record_offset(rec) + at) as u64,
                                hex(bad)
                            )
                        } else {
                            format!("a byte sequence that is not valid {}", self.encoding)
                        };
                        rejected.push(pos.reject(&records, rec, reason));
                        excluded.push(rec);
                    }
                }
            }
            let (batch, more) = build_batch(
                &records,
                skip,
                &self.dialect,
                projection,
                schema,
                pos,
                on_bad,
                &excluded,
            )?;
            if !more.is_empty() {
                rejected.extend(more);
                rejected.sort_by_key(|r| r.offset);
            }
            self.counters
                .rows
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            Ok((batch, rejected))
        })
    }
}

/// Bytes as space-separated hex, for messages about invalid encodings.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CSV file as a DataFusion table, decoding only the columns a query uses.
#[derive(Debug)]
pub struct CsvTable {
    source: Arc<CsvSource>,
}

impl CsvTable {
    /// Wraps a source.
    pub fn new(source: Arc<CsvSource>) -> Self {
        CsvTable { source }
    }
}

#[derive(Debug)]
struct CsvPartition {
    source: Arc<CsvSource>,
    indices: Vec<usize>,
    schema: SchemaRef,
}

impl PartitionStream for CsvPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        self.source.stream(self.indices.clone())
    }
}

#[async_trait]
impl TableProvider for CsvTable {
    fn schema(&self) -> SchemaRef {
        self.source.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let indices = projection
            .cloned()
            .unwrap_or_else(|| (0..self.source.schema.fields().len()).collect());
        let schema = Arc::new(self.source.schema.project(&indices)?);
        let partition = Arc::new(CsvPartition {
            source: self.source.clone(),
            indices,
            schema: schema.clone(),
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            vec![partition],
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Field};
    use futures::StreamExt;

    #[test]
    fn chunks_grow_from_small_and_shrink_at_the_end() {
        const MB: usize = 1 << 20;
        let sizes: Vec<usize> = (0..6).map(|k| chunk_size(4 * MB, k, None, 2)).collect();
        assert_eq!(
            sizes,
            [MB / 4, MB / 2, MB, 2 * MB, 4 * MB, 4 * MB],
            "doubling from 256 KiB to the maximum"
        );
        // Near the end of a known file: a quarter of what is left (2 threads).
        assert_eq!(chunk_size(4 * MB, 10, Some(8 * MB as u64), 2), 2 * MB);
        assert_eq!(chunk_size(4 * MB, 10, Some(100 * MB as u64), 2), 4 * MB);
        // Never below the minimum, nor above a small maximum.
        assert_eq!(chunk_size(4 * MB, 10, Some(1000), 2), MB / 4);
        assert_eq!(chunk_size(1000, 0, None, 2), 1000);
        assert_eq!(chunk_size(1000, 30, Some(u64::MAX), 64), 1000);
    }

    /// Every (id, s) row the source streams, in order.
    async fn rows_of(source: &Arc<CsvSource>) -> Vec<(i64, String)> {
        let mut stream = source.stream(vec![0, 1]);
        let mut out = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.unwrap();
            let ids = batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int64Type>();
            let s = batch.column(1).as_string::<i32>();
            for i in 0..batch.num_rows() {
                out.push((ids.value(i), s.value(i).to_string()));
            }
        }
        out
    }

    /// A source over `path` with the tests' (id bigint, s text) columns.
    fn id_s_source(
        path: PathBuf,
        compression: Compression,
        dialect: CsvDialect,
        chunk_bytes: usize,
        rejects: Option<Arc<RejectSink>>,
    ) -> Arc<CsvSource> {
        Arc::new(CsvSource {
            display: path.file_name().unwrap().to_string_lossy().into_owned(),
            path,
            compression,
            encoding: Encoding::UTF8,
            dialect,
            schema: Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("s", DataType::Utf8, true),
            ])),
            formats: vec![None, None],
            max_record: 1 << 20,
            exact: vec![false, false],
            chunk_bytes,
            counters: Arc::default(),
            rejects,
            range: None,
        })
    }

    /// Reads `text` with tiny chunks, so records and quoted line breaks
    /// straddle every read and every chunk boundary.
    async fn read_all(text: &str, dialect: CsvDialect) -> Vec<(i64, String)> {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("in.csv");
        std::fs::write(&path, text).unwrap();
        let source = id_s_source(path, Compression::None, dialect, 1000, None);
        let out = rows_of(&source).await;
        assert_eq!(
            source.counters.rows.load(Ordering::Relaxed),
            out.len() as u64
        );
        // Progress counts every byte of the file.
        assert_eq!(
            source.counters.bytes.load(Ordering::Relaxed),
            text.len() as u64
        );
        out
    }

    #[tokio::test]
    async fn progress_counts_the_compressed_bytes_of_a_compressed_file() {
        use std::io::Write;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("in.csv.gz");
        let mut text = String::from("id,s\n");
        for i in 0..5_000 {
            text.push_str(&format!("{i},row {i}\n"));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        std::fs::write(&path, &gz).unwrap();
        let source = id_s_source(path, Compression::Gzip, CsvDialect::default(), 4096, None);
        assert_eq!(rows_of(&source).await.len(), 5_000);
        assert_eq!(
            source.counters.bytes.load(Ordering::Relaxed),
            gz.len() as u64
        );
    }

    #[tokio::test]
    async fn records_straddling_reads_and_chunks_arrive_whole_and_in_order() {
        let big = "x\ny,\"z".repeat(40_000); // ~240 KB with quotes and line breaks
        let mut text = String::from("id,s\n");
        let mut expected = Vec::new();
        for i in 0..2_000i64 {
            let s = if i % 500 == 7 {
                big.clone()
            } else {
                format!("row {i}\r\nsecond line")
            };
            text.push_str(&format!("{i},\"{}\"\r\n", s.replace('"', "\"\"")));
            expected.push((i, s));
        }
        assert_eq!(read_all(&text, CsvDialect::default()).await, expected);
    }

    #[tokio::test]
    async fn allowed_bad_rows_go_to_the_reject_file_in_order_and_the_rest_load() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("in.csv");
        let mut bytes = b"id,s\n".to_vec();
        let mut expected_rows = Vec::new();
        let mut expected_rejects = Vec::new(); // (line, offset, column, raw)
        for i in 0..600i64 {
            let line = i as u64 + 2;
            let offset = bytes.len() as u64;
            let raw: Vec<u8> = if i % 7 == 3 {
                expected_rejects.push((line, offset, Some(1), format!("x{i},r{i}")));
                format!("x{i},r{i}").into_bytes()
            } else if i % 50 == 11 {
                expected_rejects.push((line, offset, None, format!("{i}")));
                format!("{i}").into_bytes()
            } else if i == 77 {
                let raw = b"77,caf\xe9".to_vec();
                expected_rejects.push((line, offset, None, "77,caf\u{fffd}".to_string()));
                raw
            } else {
                expected_rows.push((i, format!("r{i}")));
                format!("{i},r{i}").into_bytes()
            };
            bytes.extend_from_slice(&raw);
            bytes.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
        }
        std::fs::write(&path, &bytes).unwrap();
        let rejects = tmp.path().join("rejects.jsonl");
        let sink = Arc::new(RejectSink::new(rejects.clone(), 1000));
        // Many chunks, several with over 8 bad rows.
        let source = id_s_source(
            path,
            Compression::None,
            CsvDialect::default(),
            1000,
            Some(sink.clone()),
        );
        let rows = rows_of(&source).await;
        assert_eq!(rows, expected_rows);
        let found: Vec<RejectedRow> = std::fs::read_to_string(&rejects)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<_> = found
            .iter()
            .map(|r| (r.line, r.offset, r.column, r.raw.clone()))
            .collect();
        assert_eq!(got, expected_rejects);
        assert_eq!(sink.count(), expected_rejects.len() as u64);
        let first = &found[0];
        assert_eq!(first.name.as_deref(), Some("id"));
        assert_eq!(first.value.as_deref(), Some("x3"));
        assert!(first.reason.contains("not an integer"), "{first:?}");
        let short = found.iter().find(|r| r.line == 13).unwrap(); // i = 11
        assert!(
            short.reason.contains("expected 2 fields, found 1"),
            "{short:?}"
        );
        let utf8 = found.iter().find(|r| r.line == 79).unwrap();
        assert!(utf8.reason.contains("invalid UTF-8") && utf8.reason.contains("e9"));
    }
}
