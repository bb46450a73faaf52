//! Opening an input as the table `source` of a DataFusion session: ferry's
//! CSV reader for delimited text, DataFusion's readers for NDJSON, Parquet and
//! Arrow IPC. Declared column types win over inferred ones for every format.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::decode::blocking::{BlockingPartition, OpenFn};
use crate::decode::csv::infer::{Guess, Inference};
use crate::decode::csv::tokenize::{Records, Splitter, tokenize};
use crate::decode::csv::{CsvDialect, CsvSource, CsvTable, ReadCounters};
use crate::decode::fit::DeclaredTypes;
use crate::decode::json::{self, JsonSource};
use crate::decode::lines::{LineError, Lines, reserve_record};
use crate::decode::{Compression, DecodeError, RejectSink};
use crate::error::FerryError;
use crate::format::Format;
use crate::spec::types::parse_source_type;
use crate::spec::{ColumnSpec, DatasetSpec, SourceSpec};

/// A local input file and the name to show for it.
#[derive(Debug, Clone)]
pub struct Input {
    /// Where the bytes are.
    pub path: PathBuf,
    /// What the user called it (a path or URI).
    pub display: String,
}

/// What was registered as `source`.
#[derive(Debug, Clone)]
pub struct Source {
    /// The input's format.
    pub format: Format,
    /// The schema of `source` (after declared types).
    pub schema: SchemaRef,
    /// Read progress (bytes for delimited text; rows for every format via the caller).
    pub counters: Arc<ReadCounters>,
    /// Input size in bytes.
    pub size: u64,
    /// The reject file, when the dataset allows bad rows.
    pub rejects: Option<Arc<RejectSink>>,
}

impl Source {
    /// Rows set aside in the reject file so far.
    pub fn rejected(&self) -> u64 {
        self.rejects.as_ref().map_or(0, |r| r.count())
    }

    /// The reject file, when a row was rejected.
    pub fn reject_file(&self) -> Option<PathBuf> {
        self.rejects
            .as_ref()
            .filter(|r| r.count() > 0)
            .map(|r| r.path().to_path_buf())
    }
}

impl Source {
    /// Turns a columnar reader's failure inside the transform into a bad
    /// input naming the file, rather than a failing transform.
    pub fn explain(&self, e: FerryError, input: &Input) -> FerryError {
        match (&e, self.format) {
            // A columnar file that fails while being read is a bad input, not
            // a failing transform.
            (
                FerryError::Transform { detail, .. },
                Format::Parquet | Format::Arrow | Format::Avro,
            ) if is_reader_failure(detail) => FerryError::Decode(DecodeError::Reader {
                file: input.display.clone(),
                location: String::new(),
                detail: format!(
                    "corrupt or truncated {} data: {}",
                    self.format,
                    reader_detail(detail)
                ),
            }),
            _ => e,
        }
    }
}

/// Whether a failure inside the plan came from a columnar reader (Parquet,
/// Arrow IPC, Avro decoding) rather than from the transform's own SQL: only
/// the readers' own error kinds count, so a SQL error that happens to say
/// "invalid" stays the transform's.
fn is_reader_failure(detail: &str) -> bool {
    [
        "Parquet error",
        "Parquet argument error",
        "Parser error",
        "Io error",
        "Ipc error",
        "Avro",
    ]
    .iter()
    .any(|needle| detail.contains(needle))
}

/// Default records sampled for inference.
pub const DEFAULT_INFER_ROWS: usize = 10_000;
/// Largest chunk the CSV reader cuts. 2 MiB rather than 4: a small input
/// touches less fresh memory and a large one runs no slower, in less memory
/// (`benchmarks/results/tuning.md`).
pub const CSV_CHUNK_BYTES: usize = 2 << 20;

/// The input's format: the spec's, else the extension's, else its first bytes.
pub fn resolve_format(spec: &SourceSpec, input: &Input) -> Result<Format, FerryError> {
    if let Some(f) = spec.format {
        return Ok(f);
    }
    if let Some(f) =
        Format::from_path(Path::new(&input.display)).or_else(|| Format::from_path(&input.path))
    {
        return Ok(f);
    }
    let mut head = [0u8; 8];
    let n = std::fs::File::open(&input.path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?;
    let head = &head[..n];
    Ok(if head.starts_with(b"PAR1") {
        Format::Parquet
    } else if head.starts_with(b"ARROW1") || head.starts_with(&[0xff, 0xff, 0xff, 0xff]) {
        Format::Arrow
    } else if head.starts_with(b"Obj\x01") {
        Format::Avro
    } else if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Format::Ndjson
    } else {
        Format::Csv
    })
}

/// Registers the input as the table `source`. `rejects` is where the
/// dataset's bad rows go when its error policy allows some (`None`: the first
/// bad row fails the read whatever the policy, as when checking a spec).
pub async fn register_source(
    ctx: &SessionContext,
    spec: &DatasetSpec,
    input: &Input,
    rejects: Option<PathBuf>,
) -> Result<Source, FerryError> {
    let size = std::fs::metadata(&input.path)
        .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?
        .len();
    let format = resolve_format(&spec.source, input)?;
    let counters = Arc::new(ReadCounters::default());
    let rejects = rejects
        .filter(|_| spec.errors.max_bad_rows > 0)
        .map(|path| Arc::new(RejectSink::new(path, spec.errors.max_bad_rows)));
    let schema = match format {
        Format::Csv | Format::Tsv => {
            let mut dialect = spec.dialect();
            if format == Format::Tsv {
                dialect.delimiter = b'\t';
            }
            let compression = spec.source.compression.resolve(&input.path);
            let CsvSchema {
                schema,
                formats,
                exact,
            } = resolve_csv_schema(input, compression, &dialect, &spec.source)?;
            let max_record = spec.source.max_record();
            let source = Arc::new(CsvSource {
                path: input.path.clone(),
                display: input.display.clone(),
                compression,
                dialect,
                schema: schema.clone(),
                formats,
                exact,
                chunk_bytes: CSV_CHUNK_BYTES,
                max_record,
                counters: counters.clone(),
                rejects: rejects.clone(),
            });
            ctx.register_table("source", Arc::new(CsvTable::new(source)))
                .map_err(|e| FerryError::Internal(e.to_string()))?;
            schema
        }
        Format::Ndjson => register_json(ctx, spec, input, counters.clone(), rejects.clone())?,
        Format::Parquet | Format::Arrow | Format::Avro => {
            register_columnar(ctx, spec, input, format).await?
        }
    };
    Ok(Source {
        format,
        schema,
        counters,
        size,
        rejects,
    })
}

/// A DataFusion reader error, as a decode error of this input.
pub fn df_err(input: &Input) -> impl Fn(datafusion::common::DataFusionError) -> FerryError + '_ {
    move |e| {
        FerryError::Decode(DecodeError::Reader {
            file: input.display.clone(),
            location: String::new(),
            detail: reader_detail(&e.strip_backtrace()),
        })
    }
}

/// A reader's message without what misleads a person: DataFusion's "this is a
/// bug, please file an issue" tail (a corrupt file is not DataFusion's bug) and
/// prefixes repeated by each layer ("Parquet error: Parquet error: …").
fn reader_detail(message: &str) -> String {
    let mut text = message
        .split("\nThis issue was likely caused by a bug")
        .next()
        .unwrap_or(message)
        .trim()
        .to_string();
    for prefix in ["Internal error: ", "Arrow error: ", "External error: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.to_string();
        }
    }
    for twice in [
        "Parquet error: Parquet error: ",
        "Parser error: Parser error: ",
    ] {
        let once = &twice[..twice.len() / 2];
        while text.contains(twice) {
            text = text.replace(twice, once);
        }
    }
    text
}

/// DataFusion's name for a compression codec.
pub fn compression_type(c: Compression) -> FileCompressionType {
    match c {
        Compression::Gzip => FileCompressionType::GZIP,
        Compression::Zstd => FileCompressionType::ZSTD,
        Compression::Bzip2 => FileCompressionType::BZIP2,
        Compression::Xz => FileCompressionType::XZ,
        Compression::Auto | Compression::None => FileCompressionType::UNCOMPRESSED,
    }
}

/// The absolute path as the UTF-8 string DataFusion wants.
pub fn path_str(input: &Input) -> Result<String, FerryError> {
    let abs = std::path::absolute(&input.path)
        .map_err(|e| FerryError::io(format!("resolving {}", input.display), e))?;
    abs.to_str()
        .map(str::to_string)
        .ok_or_else(|| FerryError::Usage(format!("{}: the path is not valid UTF-8", input.display)))
}

/// Applies declared types to an inferred schema (adding declared columns the
/// sample did not show).
fn apply_declared(
    inferred: &Schema,
    columns: &[ColumnSpec],
    file: &Path,
) -> Result<Schema, FerryError> {
    let mut fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for c in columns {
        let Some(ty) = &c.ty else { continue };
        let st = parse_source_type(ty).map_err(|m| crate::spec::SpecError {
            location: format!("{} (column {})", file.display(), c.name),
            message: m,
        })?;
        match fields.iter_mut().find(|f| f.name() == &c.name) {
            Some(f) => *f = st.field(&c.name, true),
            None => fields.push(st.field(&c.name, true)),
        }
    }
    Ok(Schema::new(fields))
}

/// Registers an NDJSON input through ferry's strict reader
/// ([`crate::decode::json`]), with the inferred schema and declared types.
fn register_json(
    ctx: &SessionContext,
    spec: &DatasetSpec,
    input: &Input,
    counters: Arc<ReadCounters>,
    rejects: Option<Arc<RejectSink>>,
) -> Result<SchemaRef, FerryError> {
    let compression = spec.source.compression.resolve(&input.path);
    let max_record = spec.source.max_record();
    let inferred = json::infer_json(
        &input.path,
        &input.display,
        compression,
        spec.source.infer_limit(),
        max_record,
    )?;
    let schema = Arc::new(apply_declared(
        &inferred.schema,
        &spec.source.columns,
        &spec.toml_path(),
    )?);
    let exact = schema
        .fields()
        .iter()
        .map(|f| {
            !spec
                .source
                .columns
                .iter()
                .any(|c| &c.name == f.name() && c.ty.is_some())
        })
        .collect();
    let source = Arc::new(JsonSource {
        path: input.path.clone(),
        display: input.display.clone(),
        compression,
        schema: schema.clone(),
        exact,
        max_record,
        sampled: inferred.sampled,
        counters,
        rejects,
    });
    let table = source.partition().table().map_err(df_err(input))?;
    ctx.register_table("source", Arc::new(table))
        .map_err(|e| FerryError::Internal(e.to_string()))?;
    Ok(schema)
}

async fn register_columnar(
    ctx: &SessionContext,
    spec: &DatasetSpec,
    input: &Input,
    format: Format,
) -> Result<SchemaRef, FerryError> {
    let path = path_str(input)?;
    let declared = spec.source.columns.iter().any(|c| c.ty.is_some());
    // With declared types the file is read by a context of its own with one
    // partition, in file order, so a value that does not fit is named by
    // its row; without, DataFusion reads it in parallel as `source`.
    let own;
    let (raw_ctx, raw) = if declared {
        own = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_target_partitions(1),
        );
        (&own, "raw")
    } else {
        (ctx, "source")
    };
    match format {
        Format::Parquet => raw_ctx
            .register_parquet(
                raw,
                path.as_str(),
                ParquetReadOptions::default().file_extension(""),
            )
            .await
            .map_err(df_err(input))?,
        Format::Avro => {
            let table = avro_table(input)?.table().map_err(df_err(input))?;
            raw_ctx
                .register_table(raw, Arc::new(table))
                .map_err(df_err(input))?;
        }
        _ => {
            let options = ArrowReadOptions {
                file_extension: "",
                ..Default::default()
            };
            raw_ctx
                .register_arrow(raw, path.as_str(), options)
                .await
                .map_err(df_err(input))?
        }
    }
    let table = raw_ctx.table(raw).await.map_err(df_err(input))?;
    if raw == "source" {
        return Ok(Arc::new(table.schema().as_arrow().clone()));
    }
    // Declared types win: each declared column is cast, and a value the
    // cast would change fails the read, naming its row (decode::fit).
    let inferred = table.schema().as_arrow().clone();
    let declared = apply_declared(&inferred, &spec.source.columns, &spec.toml_path())?;
    if let Some(missing) = declared
        .fields()
        .iter()
        .find(|f| inferred.field_with_name(f.name()).is_err())
    {
        return Err(FerryError::Decode(DecodeError::Layout {
            file: input.display.clone(),
            detail: format!(
                "declared column {:?} is not in the file (it has {:?})",
                missing.name(),
                inferred
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
            ),
        }));
    }
    let schema = Arc::new(declared);
    let partition = DeclaredTypes::new(schema.clone(), table, input.display.clone());
    let table = StreamingTable::try_new(schema.clone(), vec![Arc::new(partition)])
        .map_err(df_err(input))?;
    ctx.register_table("source", Arc::new(table))
        .map_err(df_err(input))?;
    Ok(schema)
}

/// An Avro object container file as a blocking source (arrow-avro's reader).
pub fn avro_table(input: &Input) -> Result<BlockingPartition, FerryError> {
    let path = input.path.clone();
    let display = input.display.clone();
    let open_reader =
        move || -> Result<arrow_avro::reader::Reader<BufReader<std::fs::File>>, DecodeError> {
            let file = std::fs::File::open(&path)
                .map_err(|e| DecodeError::io(display.clone(), "cannot open", e))?;
            arrow_avro::reader::ReaderBuilder::new()
                .with_batch_size(8192)
                .build(BufReader::with_capacity(1 << 20, file))
                .map_err(|e| DecodeError::Reader {
                    file: display.clone(),
                    location: String::new(),
                    detail: format!("not a readable Avro file: {e}"),
                })
        };
    let schema = open_reader().map_err(FerryError::Decode)?.schema();
    let display = input.display.clone();
    let open: OpenFn = Arc::new(move || {
        let display = display.clone();
        let reader = open_reader()?;
        Ok(Box::new(reader.map(move |b| {
            b.map_err(|e| DecodeError::Reader {
                file: display.clone(),
                location: String::new(),
                detail: e.to_string(),
            })
        })) as Box<dyn Iterator<Item = _> + Send>)
    });
    Ok(BlockingPartition::new(schema, open))
}

/// What reading the head of a delimited file found.
#[derive(Debug, Clone)]
pub struct CsvHead {
    /// The header's names, if the dialect has one.
    pub header: Option<Vec<String>>,
    /// Fields per record (from the header or the first record).
    pub fields: usize,
    /// Type evidence from the sampled records.
    pub guesses: Vec<Guess>,
    /// Records sampled (excluding the header).
    pub sampled: usize,
}

/// Reads up to `max_records` records from the start of a delimited file
/// (decompressing, stripping a BOM) and infers column types from them. A
/// record longer than `max_record` bytes fails, as it would when read.
pub fn read_csv_head(
    input: &Input,
    compression: Compression,
    dialect: &CsvDialect,
    max_records: usize,
    max_record: usize,
) -> Result<CsvHead, FerryError> {
    let io = |what: &str, e: std::io::Error| {
        FerryError::Decode(DecodeError::io(input.display.clone(), what.to_string(), e))
    };
    let file = std::fs::File::open(&input.path).map_err(|e| io("cannot open", e))?;
    let mut reader = BufReader::with_capacity(
        1 << 20,
        compression
            .reader(file)
            .map_err(|e| io("cannot decompress", e))?,
    );
    let mut buf = Vec::new();
    let mut splitter = Splitter::new(dialect);
    // Bytes of `buf` the splitter has already seen (it keeps quote state).
    let mut scanned = 0;
    let mut records = Records::default();
    let mut header: Option<Vec<String>> = None;
    let mut inference: Option<Inference> = None;
    let mut sampled = 0usize;
    let mut fields = 0usize;
    let mut first = true;
    let mut line = 1u64;
    loop {
        let want: usize = 1 << 20;
        let need = buf.len() + want;
        reserve_record(&mut buf, need, max_record, want);
        let n = reader
            .by_ref()
            .take(want as u64)
            .read_to_end(&mut buf)
            .map_err(|e| io("cannot read", e))?;
        let eof = n < want;
        if first {
            first = false;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                buf.drain(..3);
            }
        }
        let cut = if eof {
            Some(buf.len())
        } else {
            let c = splitter.scan(&buf, scanned);
            scanned = buf.len();
            c
        };
        let Some(cut) = cut else {
            if buf.len() > max_record {
                return Err(FerryError::Decode(json::line_error(
                    &input.display,
                    LineError::TooLong {
                        line,
                        max: max_record,
                    },
                )));
            }
            continue;
        };
        let chunk = &buf[..cut];
        // Not checked for UTF-8 here: the reader does that, record by
        // record, and fails or rejects under the dataset's error policy.
        let records = tokenize(chunk, dialect, &mut records)
            .map_err(|u| FerryError::Decode(u.to_error(&input.display, chunk, line)))?;
        let mut skip = 0;
        if inference.is_none() && !records.is_empty() {
            fields = records.field_count(0);
            if dialect.header {
                header = Some(
                    (0..fields)
                        .map(|c| String::from_utf8_lossy(records.get(0, c).0).to_string())
                        .collect(),
                );
                skip = 1;
            }
            inference = Some(Inference::new(fields));
        }
        if let Some(inf) = inference.as_mut() {
            let take = (records.len() - skip).min(max_records - sampled);
            inf.observe(&records, skip..skip + take, dialect);
            sampled += take;
        }
        line += memchr::memchr_iter(b'\n', chunk).count() as u64;
        buf.drain(..cut);
        splitter = Splitter::new(dialect);
        scanned = 0;
        if eof || sampled >= max_records {
            break;
        }
    }
    let guesses = inference.map(|i| i.finish()).unwrap_or_default();
    Ok(CsvHead {
        header,
        fields,
        guesses,
        sampled,
    })
}

/// How to read each column of a delimited file.
#[derive(Debug, Clone)]
pub struct CsvSchema {
    /// Every column, named and typed.
    pub schema: SchemaRef,
    /// The spec's chrono format per column.
    pub formats: Vec<Option<String>>,
    /// Per column: the type was inferred (not declared), so a later value
    /// must fit it exactly.
    pub exact: Vec<bool>,
}

/// The schema of a delimited file: names from the header or the spec,
/// declared types first, inferred types for the rest.
pub fn resolve_csv_schema(
    input: &Input,
    compression: Compression,
    dialect: &CsvDialect,
    spec: &SourceSpec,
) -> Result<CsvSchema, FerryError> {
    let all_declared = !spec.columns.is_empty() && spec.columns.iter().all(|c| c.ty.is_some());
    let max = spec.infer_limit();
    // With every type declared and no header, only the field count is needed.
    let head = read_csv_head(
        input,
        compression,
        dialect,
        if all_declared { 1 } else { max },
        spec.max_record(),
    )?;
    let layout = |detail: String| {
        FerryError::Decode(DecodeError::Layout {
            file: input.display.clone(),
            detail,
        })
    };
    let names: Vec<String> = match (&head.header, spec.columns.is_empty()) {
        (Some(h), _) => {
            let mut names = Vec::with_capacity(h.len());
            for (i, n) in h.iter().enumerate() {
                let n = if n.trim().is_empty() {
                    format!("column_{}", i + 1)
                } else {
                    n.clone()
                };
                if names.contains(&n) {
                    return Err(layout(format!(
                        "the header names column {n:?} twice; rename one (or set header = false and declare the columns)"
                    )));
                }
                names.push(n);
            }
            for c in &spec.columns {
                if !names.contains(&c.name) {
                    return Err(layout(format!(
                        "declared column {:?} is not in the header {names:?}",
                        c.name
                    )));
                }
            }
            names
        }
        (None, true) if head.fields == 0 => {
            return Err(layout(
                "is empty: no header and no rows to take columns from; declare the columns in the spec ([[source.columns]]) to load an empty file as 0 rows".into(),
            ));
        }
        (None, true) => (1..=head.fields).map(|i| format!("column_{i}")).collect(),
        (None, false) => {
            if head.fields != 0 && spec.columns.len() != head.fields {
                return Err(layout(format!(
                    "the spec declares {} columns but records have {} fields{}",
                    spec.columns.len(),
                    head.fields,
                    if head.fields == spec.columns.len() + 1 && !dialect.trailing_delimiter {
                        " (every line ends with the delimiter? set trailing_delimiter = true)"
                    } else {
                        ""
                    }
                )));
            }
            spec.columns.iter().map(|c| c.name.clone()).collect()
        }
    };
    let mut fields = Vec::with_capacity(names.len());
    let mut formats = Vec::with_capacity(names.len());
    let mut exact = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let decl = spec.columns.iter().find(|c| &c.name == name);
        let field = match decl.and_then(|c| c.ty.as_ref()) {
            Some(ty) => parse_source_type(ty)
                .map_err(|m| crate::spec::SpecError {
                    location: format!("column {name:?}"),
                    message: m,
                })?
                .field(name, true),
            None => match head.guesses.get(i) {
                Some(g) if g.uuid => parse_source_type("uuid")
                    .map_err(FerryError::Usage)?
                    .field(name, true),
                Some(g) => Field::new(name, g.data_type.clone(), true),
                None => Field::new(name, arrow::datatypes::DataType::Utf8, true),
            },
        };
        fields.push(field);
        formats.push(decl.and_then(|c| c.format.clone()));
        exact.push(decl.and_then(|c| c.ty.as_ref()).is_none());
    }
    Ok(CsvSchema {
        schema: Arc::new(Schema::new(fields)),
        formats,
        exact,
    })
}

/// The longest line [`first_lines`] returns.
const SAMPLE_LINE_BYTES: usize = 1 << 20;

/// Reads the first `n` lines of a text file (decompressed), for sniffing and
/// samples. It stops before a line longer than 1 MiB: a sample needs no more,
/// and an endless line (a decompression bomb) is the reader's to refuse,
/// under `max_record_size`, not the sniffer's to buffer.
pub fn first_lines(
    input: &Input,
    compression: Compression,
    n: usize,
) -> Result<Vec<String>, FerryError> {
    let file = std::fs::File::open(&input.path)
        .map_err(|e| FerryError::io(format!("opening {}", input.display), e))?;
    let reader = BufReader::new(
        compression
            .reader(file)
            .map_err(|e| FerryError::io("decompressing", e))?,
    );
    let mut lines = Lines::new(reader, SAMPLE_LINE_BYTES);
    let mut line = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        match lines.next_into(&mut line) {
            Ok(Some(_)) => out.push(String::from_utf8_lossy(&line).into_owned()),
            Ok(None) | Err(LineError::TooLong { .. }) => break,
            Err(e) => return Err(FerryError::Decode(json::line_error(&input.display, e))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_inference_survives_records_longer_than_a_read() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big.csv");
        // A 3 MiB quoted field full of line breaks, then ordinary records.
        let mut text = String::from("\"");
        text.push_str(&"a\n".repeat(3 << 19));
        text.push_str("\",1\nx,2\ny,3\n");
        std::fs::write(&path, text).unwrap();
        let input = Input {
            path,
            display: "big.csv".into(),
        };
        let dialect = CsvDialect {
            header: false,
            ..CsvDialect::default()
        };
        let head = read_csv_head(&input, Compression::None, &dialect, 100, 8 << 20).unwrap();
        assert_eq!((head.fields, head.sampled), (2, 3));
        assert_eq!(head.guesses[1].data_type, arrow::datatypes::DataType::Int64);
    }
}
