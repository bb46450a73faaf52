//! The Converter: a file in, another format out, proved by reading it back.
//!
//! Two steps, as two container tasks run them: [`convert`] decodes the input,
//! applies the dataset's transform, brings each batch to the form the output
//! format can hold ([`canonical`]), writes it (in parallel, in order) and
//! records a digest of what it wrote; [`validate`] reads the output back with
//! that format's own reader, digests it the same way and compares schema, row
//! count, null counts and digests — naming the first differing row, column and
//! values when they differ.

pub mod canonical;
pub mod digest;
pub mod parts;
mod validate;
pub mod writers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use ferry_connectors::pg::QualifiedName;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use self::canonical::{Family, canonical_schema, canonicalize, lossy_notes};
use self::digest::{Digest, DigestSummary};
use self::writers::{Chunk, OutputFormat, output_bytes};
use crate::error::FerryError;
use crate::ordered;
use crate::progress::Progress;
use crate::source::{Input, PartRange, register_part};
use crate::spec::DatasetSpec;
use crate::transform;

pub use self::validate::validate;

/// Rows per parallel task.
const SLICE_ROWS: usize = 8192;

/// What to convert.
#[derive(Debug, Clone)]
pub struct ConvertRequest {
    /// The dataset (its source options and transform); ad hoc without `--dataset`.
    pub spec: DatasetSpec,
    /// The input, as a local file.
    pub input: Input,
    /// Where the output goes (a folder for `sql`/`pgcopy`).
    pub output: PathBuf,
    /// The output format and its options.
    pub format: OutputFormat,
    /// The table named in `sql`/`pgcopy` outputs.
    pub table: QualifiedName,
    /// Show a progress bar.
    pub progress: bool,
    /// Digest the rows as they are written, for the validate step. Off when
    /// nobody will validate: the digest runs on the writer's (serial) thread
    /// and costs about 7 % of a CSV → Parquet conversion.
    pub digest: bool,
    /// One part of a split input (`[source] split_size`): the output is
    /// then one file of a multi-file dataset. `None`: the whole input.
    pub part: Option<PartRange>,
    /// Where the step reports (`convert.json`, `validation.json`, rejects)
    /// go; `None`: beside the output, as `<output>.<report>`. A part's go
    /// to its folder in the job folder, so the dataset folder holds only
    /// the format's files.
    pub reports: Option<PathBuf>,
}

impl ConvertRequest {
    /// Where report `suffix` (`convert.json`, …) of this request goes.
    pub fn report(&self, suffix: &str) -> PathBuf {
        match &self.reports {
            Some(dir) => dir.join(suffix),
            None => report_path(&self.output, suffix),
        }
    }
}

/// What the conversion step did; saved as `<output>.convert.json` for the
/// validation step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConvertReport {
    /// The input as given.
    pub input: String,
    /// The file (or folder) written.
    pub output: PathBuf,
    /// Output format name.
    pub format: String,
    /// Rows written.
    pub rows: u64,
    /// Rows the transform produced, counted as they left it (before
    /// conversion and digest); validation compares the rows read back with
    /// it as well as with the digest. `None` in reports of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_rows: Option<u64>,
    /// Input size.
    pub input_bytes: u64,
    /// Output size.
    pub output_bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Columns whose type the format could not hold as is, and what they became.
    pub lossy: Vec<String>,
    /// Digest of the rows written, as written.
    pub digest: DigestSummary,
    /// Input rows set aside under the dataset's error policy.
    #[serde(default)]
    pub rejected: u64,
    /// The reject file, when rows were rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<PathBuf>,
    /// The written schema, as an Arrow IPC schema message in hex.
    pub schema_ipc: String,
}

/// The first difference validation found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Difference {
    /// 1-based row.
    pub row: u64,
    /// Column name.
    pub column: String,
    /// The value converted from the input.
    pub source: String,
    /// The value read back from the output.
    pub written: String,
}

/// What the validation step found; saved as `<output>.validation.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationReport {
    /// `valid` or `invalid`.
    pub verdict: String,
    /// The output validated.
    pub output: PathBuf,
    /// Rows expected and found.
    pub rows: (u64, u64),
    /// Everything that differs (empty when valid).
    pub problems: Vec<String>,
    /// The first differing value, when the rows could be compared.
    pub first_difference: Option<Difference>,
    /// Columns whose type the format changed (documented lossy mappings).
    pub lossy: Vec<String>,
    /// Seconds spent.
    pub seconds: f64,
    /// Digest of the source rows (as converted).
    pub source: DigestSummary,
    /// Digest of the rows read back.
    pub written: DigestSummary,
}

impl ValidationReport {
    /// Whether the output matched.
    pub fn is_valid(&self) -> bool {
        self.verdict == "valid"
    }
}

/// The one naming rule for outputs, part 1: the input's file name without
/// folders or extensions (`s3://b/in/orders.csv.gz` → `orders`; `output`
/// when nothing is left). Part 2 is [`OutputFormat::file_name`].
pub fn input_stem(uri: &str) -> String {
    let name = uri.rsplit(['/', '\\']).next().unwrap_or(uri);
    let name = name.split('.').next().unwrap_or(name);
    if name.is_empty() {
        "output".to_string()
    } else {
        name.to_string()
    }
}

/// The table sql/pgcopy outputs name when nothing else does: `public.<stem>`
/// with `-`, `.` and spaces as `_`.
pub fn default_table(stem: &str) -> QualifiedName {
    QualifiedName::new("public", stem.replace(['-', '.', ' '], "_"))
}

/// `<output>.<suffix>`: where a step's report goes.
pub fn report_path(output: &Path, suffix: &str) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{suffix}"));
    output.with_file_name(name)
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), FerryError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| FerryError::Internal(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| FerryError::io(format!("writing {}", path.display()), e))
}

fn schema_to_hex(schema: &Schema) -> Result<String, FerryError> {
    let mut buf = Vec::new();
    let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, schema)
        .map_err(|e| FerryError::Internal(e.to_string()))?;
    w.finish()
        .map_err(|e| FerryError::Internal(e.to_string()))?;
    drop(w);
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn schema_from_hex(hex: &str) -> Result<SchemaRef, FerryError> {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let bytes = bytes
        .ok_or_else(|| FerryError::Usage("the conversion report's schema is corrupt".into()))?;
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| {
            FerryError::Usage(format!("the conversion report's schema is corrupt: {e}"))
        })?;
    Ok(reader.schema())
}

/// The input decoded, transformed and brought to the output's canonical form.
struct Canonical {
    stream: SendableRecordBatchStream,
    source_schema: SchemaRef,
    canonical: SchemaRef,
    family: Family,
    source: crate::source::Source,
    sql_path: String,
}

/// Opens the input; bad rows the dataset allows go to `rejects`.
async fn open_canonical(req: &ConvertRequest, rejects: PathBuf) -> Result<Canonical, FerryError> {
    let ctx = transform::new_session();
    let source = register_part(&ctx, &req.spec, &req.input, Some(rejects), req.part).await?;
    let df = transform::plan(&ctx, &req.spec).await?;
    let source_schema = Arc::new(df.schema().as_arrow().clone());
    let family = req.format.family();
    let canonical = canonical_schema(&source_schema, family);
    let sql_path = req.spec.transform_path.display().to_string();
    let stream = transform::execute_ordered(df)
        .await
        .map_err(|e| FerryError::from_datafusion(e, &sql_path))?;
    Ok(Canonical {
        stream,
        source_schema,
        canonical,
        family,
        source,
        sql_path,
    })
}

/// A canonical batch, its encoded chunk, and what the digest reads: the
/// source's own columns where the format holds them without change (so a
/// fault in the conversion to canonical form cannot pass unseen), the
/// canonical ones elsewhere.
type Converted = Result<(RecordBatch, Option<Chunk>, RecordBatch), FerryError>;

/// The batch the digest reads (see [`Converted`]).
fn digest_input(source: &RecordBatch, canonical: &RecordBatch, exact: &[bool]) -> RecordBatch {
    let columns: Vec<_> = canonical
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| match (exact.get(i), source.columns().get(i)) {
            (Some(true), Some(s)) if s.data_type() == c.data_type() && s.len() == c.len() => {
                s.clone()
            }
            _ => c.clone(),
        })
        .collect();
    RecordBatch::try_new(canonical.schema(), columns).unwrap_or_else(|_| canonical.clone())
}

/// Canonical batches, sliced and converted in parallel, in order.
/// `produced` counts the transform's rows as they come out of it, before
/// any conversion: validation checks the rows read back against this count
/// too, so a stage that lost rows (and the digest of what it kept) cannot
/// agree with itself unseen.
fn canonical_batches(
    mut c: Canonical,
    encoder: Option<Arc<dyn writers::ChunkEncoder>>,
    produced: Arc<AtomicU64>,
) -> ordered::Results<Converted> {
    let (tx, rx) = ordered::channel(ordered::depth());
    // Columns the format holds as they are: same type, and no value change
    // listed (NDJSON's NaN → null keeps the type).
    let changed: Vec<String> = canonical::lossy_notes(&c.source_schema, &c.canonical, c.family)
        .iter()
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect();
    let exact: Arc<Vec<bool>> = Arc::new(
        c.source_schema
            .fields()
            .iter()
            .zip(c.canonical.fields())
            .map(|(a, b)| a.data_type() == b.data_type() && !changed.contains(a.name()))
            .collect(),
    );
    tokio::spawn(async move {
        let mut first_row = 0u64;
        while let Some(batch) = c.stream.next().await {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tx.put(Err(FerryError::from_datafusion(e, &c.sql_path)))
                        .await;
                    return;
                }
            };
            produced.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            for offset in (0..batch.num_rows()).step_by(SLICE_ROWS) {
                let slice = batch.slice(offset, SLICE_ROWS.min(batch.num_rows() - offset));
                let (canonical, family, encoder) = (c.canonical.clone(), c.family, encoder.clone());
                let exact = exact.clone();
                let row = first_row;
                first_row += slice.num_rows() as u64;
                let submitted = tx
                    .spawn(move || {
                        canonicalize(&slice, &canonical, family).and_then(|b| {
                            let chunk = match &encoder {
                                Some(e) => Some(e.encode(b.clone(), row)?),
                                None => None,
                            };
                            let digested = digest_input(&slice, &b, &exact);
                            Ok((b, chunk, digested))
                        })
                    })
                    .await;
                if !submitted {
                    return;
                }
            }
        }
    });
    rx
}

/// Step 1: convert the input to the output format and record its digest.
pub async fn convert(req: &ConvertRequest) -> Result<ConvertReport, FerryError> {
    let started = Instant::now();
    if std::path::absolute(&req.output).ok() == std::path::absolute(&req.input.path).ok() {
        return Err(FerryError::Usage(format!(
            "the output {} is the input itself",
            req.output.display()
        )));
    }
    let rejects = req.report("rejects.jsonl");
    let _ = std::fs::remove_file(&rejects); // from an earlier attempt
    let c = open_canonical(req, rejects).await?;
    let canonical = c.canonical.clone();
    let lossy = lossy_notes(&c.source_schema, &canonical, c.family);
    let input_bytes = c.source.size;
    let source = c.source.clone();
    let parent = req.output.parent().filter(|p| !p.as_os_str().is_empty());
    for dir in parent.into_iter().chain(req.reports.as_deref()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| FerryError::io(format!("creating {}", dir.display()), e))?;
    }
    let output = writers::open(&req.format, &req.output, canonical.clone(), &req.table)?;
    let rows = Arc::new(AtomicU64::new(0));
    let counters = c.source.counters.clone();
    let mut progress = Progress::start(
        req.progress,
        input_bytes,
        Arc::new(move || counters.bytes.load(Ordering::Relaxed)),
        rows.clone(),
    );
    // The sink and the digest run on their own thread, in order.
    let (sink_tx, mut sink_rx) = mpsc::channel::<(RecordBatch, Chunk, RecordBatch)>(4);
    let names: Vec<String> = canonical
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut sink = output.sink;
    let want_digest = req.digest;
    let writer = std::thread::Builder::new()
        .name("ferry-convert-sink".into())
        .spawn(
            move || -> Result<(DigestSummary, Vec<PathBuf>), FerryError> {
                let mut digest = Digest::new(&names);
                let mut rows = 0u64;
                while let Some((batch, chunk, digested)) = sink_rx.blocking_recv() {
                    if want_digest {
                        digest.push(digested)?;
                    }
                    rows += batch.num_rows() as u64;
                    sink.write(chunk, batch.num_rows() as u64)?;
                }
                let files = sink.finish()?;
                let mut summary = digest.summary()?;
                if !want_digest {
                    // Rows only: validate refuses an output without digests.
                    summary.rows = rows;
                    summary.columns.clear();
                }
                Ok((summary, files))
            },
        )
        .map_err(|e| FerryError::io("starting the writer", e))?;
    let produced = Arc::new(AtomicU64::new(0));
    let mut queue = canonical_batches(c, Some(output.encoder), produced.clone());
    let mut failure = None;
    while let Some(item) = queue.next().await {
        let item =
            item.unwrap_or_else(|_| Err(FerryError::Internal("a conversion task stopped".into())));
        match item {
            Ok((batch, Some(chunk), digested)) => {
                rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                if sink_tx.send((batch, chunk, digested)).await.is_err() {
                    break; // the writer failed: its error is collected below
                }
            }
            Ok((_, None, _)) => {}
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(queue);
    drop(sink_tx);
    progress.finish();
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| FerryError::Internal(e.to_string()))?
        .map_err(|_| FerryError::Internal("the writer panicked".into()))?;
    if let Some(e) = failure {
        // The sink finished a complete file on a partial stream: remove it.
        if let Ok((_, files)) = &written {
            for f in files {
                let _ = std::fs::remove_file(f);
            }
            if req.output.is_dir() {
                let _ = std::fs::remove_dir_all(&req.output);
            }
        }
        return Err(source.explain(e, &req.input));
    }
    let (digest, files) = written?;
    let report = ConvertReport {
        input: req.input.display.clone(),
        output: req.output.clone(),
        format: req.format.name().to_string(),
        rows: digest.rows,
        source_rows: Some(produced.load(Ordering::Relaxed)),
        input_bytes,
        output_bytes: output_bytes(&files),
        seconds: started.elapsed().as_secs_f64(),
        files,
        lossy,
        digest,
        rejected: source.rejected(),
        rejects: source.reject_file(),
        schema_ipc: schema_to_hex(&canonical)?,
    };
    write_json(&req.report("convert.json"), &report)?;
    Ok(report)
}

#[cfg(test)]
mod digest_input_tests {
    use super::*;
    use arrow::array::{ArrayRef, Int32Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    /// A conversion fault in a column the format holds as is (here, a value
    /// changed without a type change) reaches the digest as the source's
    /// value, so validation against the read-back catches it; changed
    /// columns are digested as converted.
    #[test]
    fn exact_columns_are_digested_from_the_source() {
        let source = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Int32, true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef,
                Arc::new(Int32Array::from(vec![7, 8, 9])),
            ],
        )
        .unwrap();
        let faulty = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Int64, true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 4])) as ArrayRef,
                Arc::new(Int64Array::from(vec![7, 8, 9])),
            ],
        )
        .unwrap();
        let d = digest_input(&source, &faulty, &[true, false]);
        assert_eq!(d.column(0), source.column(0));
        assert_eq!(d.column(1), faulty.column(1));
        let mut from_source = Digest::new(&["a".into(), "b".into()]);
        from_source.update(&d).unwrap();
        let mut read_back = Digest::new(&["a".into(), "b".into()]);
        read_back.update(&faulty).unwrap();
        assert_ne!(
            from_source.summary().unwrap().columns[0],
            read_back.summary().unwrap().columns[0]
        );
    }
}
