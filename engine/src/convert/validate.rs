//! Step 2 of the Converter: the output read back with its format's own
//! reader, digested as the conversion digested what it wrote, and compared:
//! schema, row count, null counts and digests, and on a mismatch the first
//! row, column and values that differ (found by converting the input again).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use ferry_connectors::pg::codec::display_value;
use futures::StreamExt;

use super::canonical::{comparable, comparable_type};
use super::digest::{Digest, ParquetFile};
use super::writers::{OutputFormat, TextCompression};
use super::{
    Canonical, ConvertReport, ConvertRequest, Difference, ValidationReport, canonical_batches,
    open_canonical, schema_from_hex, write_json,
};
use crate::decode::csv::{CsvDialect, CsvSource, CsvTable};
use crate::decode::json::JsonSource;
use crate::decode::{Compression, DecodeError, copy};
use crate::error::FerryError;
use crate::source::{Input, avro_table, df_err, path_str};
use crate::transform;

/// Reads the output back with its format's reader.
async fn read_back(
    req: &ConvertRequest,
    schema: &SchemaRef,
    files: &[PathBuf],
) -> Result<SendableRecordBatchStream, FerryError> {
    let display = req.output.display().to_string();
    let input = Input {
        path: req.output.clone(),
        display: display.clone(),
    };
    let ctx = SessionContext::new_with_config(transform::new_session().copied_config());
    match &req.format {
        OutputFormat::Csv(o) | OutputFormat::Tsv(o) => {
            let compression = Compression::from_path(&req.output);
            let source = Arc::new(CsvSource {
                path: req.output.clone(),
                display,
                compression,
                encoding: crate::decode::Encoding::UTF8,
                dialect: CsvDialect {
                    delimiter: o.delimiter,
                    quote: Some(o.quote),
                    escape: None,
                    comment: None,
                    header: o.header,
                    nulls: vec![o.null.clone().into_bytes()],
                    trailing_delimiter: false,
                    locale: Default::default(),
                },
                schema: schema.clone(),
                formats: vec![None; schema.fields().len()],
                exact: vec![false; schema.fields().len()],
                chunk_bytes: crate::source::CSV_CHUNK_BYTES,
                max_record: req.spec.source.max_record(),
                counters: Arc::default(),
                rejects: None,
                range: None,
            });
            ctx.register_table("out", Arc::new(CsvTable::new(source)))
                .map_err(df_err(&input))?;
        }
        OutputFormat::Ndjson(c) => {
            let compression = match c {
                TextCompression::None => Compression::None,
                TextCompression::Gzip => Compression::Gzip,
                TextCompression::Zstd => Compression::Zstd,
            };
            let source = Arc::new(JsonSource {
                path: req.output.clone(),
                display: input.display.clone(),
                compression,
                encoding: crate::decode::Encoding::UTF8,
                schema: schema.clone(),
                exact: vec![false; schema.fields().len()],
                max_record: req.spec.source.max_record(),
                sampled: 0,
                counters: Arc::default(),
                rejects: None,
            });
            let table = source.partition().table().map_err(df_err(&input))?;
            ctx.register_table("out", Arc::new(table))
                .map_err(df_err(&input))?;
        }
        OutputFormat::Parquet(_) => {
            ctx.register_parquet(
                "out",
                path_str(&input)?.as_str(),
                ParquetReadOptions::default().file_extension(""),
            )
            .await
            .map_err(df_err(&input))?;
        }
        OutputFormat::ArrowFile(_) | OutputFormat::ArrowStream(_) => {
            let options = ArrowReadOptions {
                file_extension: "",
                ..Default::default()
            };
            ctx.register_arrow("out", path_str(&input)?.as_str(), options)
                .await
                .map_err(df_err(&input))?;
        }
        OutputFormat::Avro(_) => {
            let table = avro_table(&input)?.table().map_err(df_err(&input))?;
            ctx.register_table("out", Arc::new(table))
                .map_err(df_err(&input))?;
        }
        OutputFormat::Sql | OutputFormat::Pgcopy => {
            let sql = req.format == OutputFormat::Sql;
            let ext = if sql { "sql" } else { "pgcopy" };
            let mut parts: Vec<PathBuf> = files
                .iter()
                .filter(|f| {
                    f.extension().is_some_and(|e| e == ext)
                        && f.file_name().is_some_and(|n| n != "load.sql")
                })
                .cloned()
                .collect();
            parts.sort();
            let (schema, open_schema) = (schema.clone(), schema.clone());
            let open: crate::decode::blocking::OpenFn = Arc::new(move || {
                let mut batches = Vec::new();
                for p in &parts {
                    let shown = p.display().to_string();
                    batches.extend(if sql {
                        copy::read_sql(p, &shown, &open_schema)?
                    } else {
                        copy::read_pgcopy(p, &shown, &open_schema)?
                    });
                }
                Ok(Box::new(batches.into_iter().map(Ok))
                    as Box<
                        dyn Iterator<Item = Result<RecordBatch, DecodeError>> + Send,
                    >)
            });
            let table = crate::decode::blocking::BlockingPartition::new(schema, open)
                .table()
                .map_err(df_err(&input))?;
            ctx.register_table("out", Arc::new(table))
                .map_err(df_err(&input))?;
        }
    }
    let df = ctx.table("out").await.map_err(df_err(&input))?;
    transform::execute_ordered(df).await.map_err(df_err(&input))
}

/// How the schema read back differs from the one written, column by column
/// (nothing when they hold the same values).
fn schema_problems(written: &Schema, read: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    if comparable_schema(read) == comparable_schema(written) {
        return problems;
    }
    for (a, b) in written.fields().iter().zip(read.fields()) {
        if a.name() != b.name() || comparable_type(a.data_type()) != comparable_type(b.data_type())
        {
            problems.push(format!(
                "schema: column {:?} ({}) reads back as {:?} ({})",
                a.name(),
                a.data_type(),
                b.name(),
                b.data_type()
            ));
        }
    }
    if written.fields().len() != read.fields().len() {
        problems.push(format!(
            "schema: {} columns written, {} read back",
            written.fields().len(),
            read.fields().len()
        ));
    }
    problems
}

fn comparable_schema(schema: &Schema) -> Vec<(String, arrow::datatypes::DataType)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), comparable_type(f.data_type())))
        .collect()
}

/// Step 2: read the output back and compare it with what was written.
pub async fn validate(req: &ConvertRequest) -> Result<ValidationReport, FerryError> {
    let started = Instant::now();
    let report_file = req.report("convert.json");
    let converted: ConvertReport =
        serde_json::from_slice(&std::fs::read(&report_file).map_err(|e| {
            FerryError::io(
                format!(
                    "reading {} (run the convert step first)",
                    report_file.display()
                ),
                e,
            )
        })?)
        .map_err(|e| FerryError::Usage(format!("{}: {e}", report_file.display())))?;
    if converted.digest.columns.is_empty() && converted.digest.rows > 0 {
        return Err(FerryError::Usage(format!(
            "{} was converted without a digest (validation was off); convert it again with validation on",
            req.output.display()
        )));
    }
    let schema = schema_from_hex(&converted.schema_ipc)?;
    let mut problems = Vec::new();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut digest = Digest::new(&names);
    let mut first_difference = None;
    if let OutputFormat::Parquet(_) = req.format {
        // Column by column on every core; the digest is the same.
        match ParquetFile::open(&req.output) {
            Err(e) => problems.push(format!("the output cannot be read back: {e}")),
            Ok(file) => {
                let mismatched = schema_problems(&schema, &file.schema());
                if !mismatched.is_empty() {
                    problems.extend(mismatched);
                } else {
                    let (back, result) = tokio::task::spawn_blocking(move || {
                        let result = digest.update_parquet(&file);
                        (digest, result)
                    })
                    .await
                    .map_err(|e| FerryError::Internal(e.to_string()))?;
                    digest = back;
                    if let Err(e) = result {
                        problems.push(format!("reading the output back failed: {e}"));
                    }
                }
            }
        }
    } else {
        match read_back(req, &schema, &converted.files).await {
            Err(e) => problems.push(format!("the output cannot be read back: {e}")),
            Ok(mut stream) => {
                let mismatched = schema_problems(&schema, &stream.schema());
                if !mismatched.is_empty() {
                    problems.extend(mismatched);
                } else {
                    while let Some(batch) = stream.next().await {
                        match batch {
                            Ok(b) => digest.push(b)?,
                            Err(e) => {
                                problems.push(format!(
                                    "reading the output back failed: {}",
                                    FerryError::from_datafusion(e, "")
                                ));
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    let written = digest.summary()?;
    let source = converted.digest.clone();
    if problems.is_empty() {
        if written.rows != source.rows {
            problems.push(format!(
                "row count: {} written, {} read back",
                source.rows, written.rows
            ));
        }
        if let Some(produced) = converted.source_rows
            && produced != written.rows
        {
            problems.push(format!(
                "row count: the transform produced {produced} rows, {} read back",
                written.rows
            ));
        }
        for (a, b) in source.columns.iter().zip(&written.columns) {
            if a.nulls != b.nulls {
                problems.push(format!(
                    "column {:?}: {} NULLs written, {} read back",
                    a.name, a.nulls, b.nulls
                ));
            }
            if a.digest != b.digest {
                problems.push(format!("column {:?}: content digest differs", a.name));
            }
        }
        if !problems.is_empty() {
            first_difference = find_difference(req, &schema, &converted.files).await?;
        }
    }
    let report = ValidationReport {
        verdict: if problems.is_empty() {
            "valid"
        } else {
            "invalid"
        }
        .to_string(),
        output: req.output.clone(),
        rows: (source.rows, written.rows),
        problems,
        first_difference,
        lossy: converted.lossy.clone(),
        seconds: started.elapsed().as_secs_f64(),
        source,
        written,
    };
    write_json(&req.report("validation.json"), &report)?;
    Ok(report)
}

/// Walks the converted input and the output in step and returns the first
/// value that differs (the slow path, only after a digest mismatch).
async fn find_difference(
    req: &ConvertRequest,
    schema: &SchemaRef,
    files: &[PathBuf],
) -> Result<Option<Difference>, FerryError> {
    // The input's bad rows were recorded by the conversion: a scratch file
    // takes them this time.
    let scratch = req.report("rejects.recheck.jsonl");
    let c = open_canonical(req, scratch.clone()).await?;
    let found = first_difference(req, schema, files, c).await;
    let _ = std::fs::remove_file(&scratch);
    found
}

async fn first_difference(
    req: &ConvertRequest,
    schema: &SchemaRef,
    files: &[PathBuf],
    c: Canonical,
) -> Result<Option<Difference>, FerryError> {
    let mut left = canonical_batches(c, None, Arc::new(AtomicU64::new(0)));
    let mut right = read_back(req, schema, files).await?;
    let mut converters: Vec<Option<RowConverter>> =
        (0..schema.fields().len()).map(|_| None).collect();
    let (mut lb, mut lo): (Option<RecordBatch>, usize) = (None, 0);
    let (mut rb, mut ro): (Option<RecordBatch>, usize) = (None, 0);
    let mut row = 0u64;
    loop {
        if lb.as_ref().is_none_or(|b| lo == b.num_rows()) {
            lb = match left.next().await {
                Some(p) => Some(
                    p.map_err(|_| FerryError::Internal("conversion task stopped".into()))??
                        .0,
                ),
                None => None,
            };
            lo = 0;
        }
        if rb.as_ref().is_none_or(|b| ro == b.num_rows()) {
            rb = match right.next().await {
                Some(b) => Some(b.map_err(|e| FerryError::from_datafusion(e, ""))?),
                None => None,
            };
            ro = 0;
        }
        let (l, r) = match (&lb, &rb) {
            (None, None) => return Ok(None),
            (Some(l), None) => {
                return Ok(Some(Difference {
                    row: row + 1,
                    column: String::new(),
                    source: format!("a row ({} more)", l.num_rows() - lo),
                    written: "end of the output".into(),
                }));
            }
            (None, Some(_)) => {
                return Ok(Some(Difference {
                    row: row + 1,
                    column: String::new(),
                    source: "end of the input".into(),
                    written: "an extra row".into(),
                }));
            }
            (Some(l), Some(r)) => (l, r),
        };
        if l.num_rows() == 0 || r.num_rows() == 0 {
            if l.num_rows() == 0 {
                lo = 0;
                lb = None;
            }
            if r.num_rows() == 0 {
                ro = 0;
                rb = None;
            }
            continue;
        }
        let n = (l.num_rows() - lo).min(r.num_rows() - ro);
        for (k, conv) in converters.iter_mut().enumerate() {
            let a: ArrayRef = comparable(&l.column(k).slice(lo, n))?;
            let b: ArrayRef = comparable(&r.column(k).slice(ro, n))?;
            let conv = match conv {
                Some(c) => c,
                slot => slot.insert(
                    RowConverter::new(vec![SortField::new(a.data_type().clone())])
                        .map_err(|e| FerryError::Internal(e.to_string()))?,
                ),
            };
            let ra = conv
                .convert_columns(std::slice::from_ref(&a))
                .map_err(|e| FerryError::Internal(e.to_string()))?;
            let rb_rows = conv
                .convert_columns(std::slice::from_ref(&b))
                .map_err(|e| FerryError::Internal(e.to_string()))?;
            if let Some(i) = (0..n).find(|&i| ra.row(i) != rb_rows.row(i)) {
                return Ok(Some(Difference {
                    row: row + i as u64 + 1,
                    column: schema.field(k).name().clone(),
                    source: display_value(a.as_ref(), i),
                    written: display_value(b.as_ref(), i),
                }));
            }
        }
        row += n as u64;
        lo += n;
        ro += n;
    }
}
