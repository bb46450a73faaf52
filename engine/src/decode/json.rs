//! NDJSON: ferry's own reader around arrow-json's tape decoder.
//!
//! arrow-json alone loses data without a word: a JSON number decoded into an
//! integer column is truncated (`1.5` → `1`), and an object field the schema
//! does not have is skipped. ferry needs every value kept or refused, with the
//! line that holds it, so this reader
//!
//! - decodes numeric columns as their JSON text (`coerce_primitive`) and
//!   parses that text with the same strict parsers as delimited text
//!   ([`build_column`]): a value that does not fit fails, naming line, field
//!   and value, or goes to the reject file under the dataset's error policy;
//! - runs arrow-json in strict mode, so a field beyond the inference window
//!   fails the read, naming the field and the line where it first appears;
//! - reads line by line with a bound on a line's length ([`Lines`]), so a
//!   decompression bomb ends in an error, not an OOM kill.
//!
//! Type inference reads the first `infer_rows` lines; plain decimals infer
//! `numeric` as in delimited text, exponent notation `double precision`.

use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::reader::{ReaderBuilder, infer_json_schema_from_iterator};

use super::blocking::{BlockingPartition, OpenFn};
use super::compression::Compression;
use super::csv::ReadCounters;
use super::csv::infer::Inference;
use super::csv::reader::CountingReader;
use super::encoding::Encoding;
use super::error::{DecodeError, show_value};
use super::fit::{conform, is_number};
use super::lines::{LineError, Lines};
use super::reject::{RejectSink, RejectedRow};

/// Records per batch.
const BATCH_ROWS: usize = 8192;
/// A batch is cut once its lines hold this many bytes.
const BATCH_BYTES: usize = 4 << 20;
/// Inference stops sampling once its lines hold this many bytes.
const WINDOW_BYTES: usize = 64 << 20;

/// An NDJSON file as a table.
#[derive(Debug)]
pub struct JsonSource {
    /// The local file.
    pub path: PathBuf,
    /// Name used in messages (the original URI).
    pub display: String,
    /// Resolved codec.
    pub compression: Compression,
    /// Text encoding (decoded to UTF-8 as read, unless UTF-8).
    pub encoding: Encoding,
    /// Every column, with its final type.
    pub schema: SchemaRef,
    /// Per column: the type was inferred, so values must fit it exactly.
    pub exact: Vec<bool>,
    /// The longest line accepted, in bytes.
    pub max_record: usize,
    /// Lines inference sampled (for the hint when a new field turns up).
    pub sampled: usize,
    /// Progress counters.
    pub counters: Arc<ReadCounters>,
    /// Where bad rows go when the dataset allows some.
    pub rejects: Option<Arc<RejectSink>>,
}

/// What inference found in the first lines.
#[derive(Debug, Clone)]
pub struct JsonInference {
    /// Every field seen, typed.
    pub schema: Schema,
    /// Non-blank lines sampled.
    pub sampled: usize,
}

/// Opens the input's lines (decompressed, counting the stored bytes read).
fn open_lines(
    path: &std::path::Path,
    display: &str,
    compression: Compression,
    encoding: Encoding,
    max_record: usize,
    counters: Option<Arc<ReadCounters>>,
) -> Result<Lines<BufReader<Box<dyn Read + Send>>>, DecodeError> {
    let file = std::fs::File::open(path)
        .map_err(|e| DecodeError::io(display.to_string(), "cannot open", e))?;
    let counted: Box<dyn Read + Send> = match counters {
        Some(counters) => Box::new(CountingReader::new(file, counters)),
        None => Box::new(file),
    };
    let reader = encoding.wrap(
        compression
            .reader(counted)
            .map_err(|e| DecodeError::io(display.to_string(), "cannot start decompressing", e))?,
    );
    Ok(Lines::new(
        BufReader::with_capacity(1 << 20, reader),
        max_record,
    ))
}

/// The error for a line past `max_record_size`, or an I/O failure.
pub fn line_error(display: &str, e: LineError) -> DecodeError {
    match e {
        LineError::TooLong { line, max } => DecodeError::Layout {
            file: display.to_string(),
            detail: format!(
                "line {line}: a single record is longer than {} (max_record_size); raise max_record_size in [source] or --max-record-size if the record is real (an unterminated quote, or the wrong line ending?)",
                bytesize::ByteSize::b(max as u64).display().iec()
            ),
        },
        LineError::Io(e) => DecodeError::io(
            display.to_string(),
            "cannot read (truncated or corrupt compressed data?)",
            e,
        ),
    }
}

/// Strips a UTF-8 byte order mark from the first line.
fn strip_bom(line: u64, text: &[u8]) -> &[u8] {
    if line == 1 {
        text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text)
    } else {
        text
    }
}

/// Infers the schema from the first `max_lines` non-blank lines.
pub fn infer_json(
    path: &std::path::Path,
    display: &str,
    compression: Compression,
    encoding: Encoding,
    max_lines: usize,
    max_record: usize,
) -> Result<JsonInference, DecodeError> {
    let mut lines = open_lines(path, display, compression, encoding, max_record, None)?;
    let mut window = Vec::new();
    let mut starts = Vec::new();
    let mut line = Vec::new();
    while starts.len() < max_lines && window.len() < WINDOW_BYTES {
        let Some(n) = lines
            .next_into(&mut line)
            .map_err(|e| line_error(display, e))?
        else {
            break;
        };
        let text = strip_bom(n, &line);
        if text.trim_ascii().is_empty() {
            continue;
        }
        starts.push((n, window.len()));
        window.extend_from_slice(text);
        window.push(b'\n');
    }
    // Parse each sampled line once, stopping at the first bad one with its
    // line number (arrow-json's inference would not say where).
    let mut bad: Option<DecodeError> = None;
    let values = starts.iter().enumerate().map_while(|(i, &(n, at))| {
        let end = starts.get(i + 1).map_or(window.len(), |s| s.1) - 1;
        let text = &window[at..end];
        match parse_line(text) {
            Ok(v) => Some(Ok(v)),
            Err(problem) => {
                bad = Some(bad_line(display, n, text, problem));
                None
            }
        }
    });
    let inferred = infer_json_schema_from_iterator(values);
    if let Some(e) = bad {
        return Err(e);
    }
    let inferred = inferred.map_err(|e| DecodeError::Reader {
        file: display.to_string(),
        location: String::new(),
        detail: format!(
            "cannot infer a schema from the first {} lines: {}",
            starts.len(),
            e.to_string().trim_start_matches("Json error: ")
        ),
    })?;
    let schema = refine_numbers(
        Schema::new(
            inferred
                .fields()
                .iter()
                .map(|f| Arc::new(text_for_null(f)))
                .collect::<Vec<_>>(),
        ),
        &window,
        starts.len(),
    );
    Ok(JsonInference {
        schema,
        sampled: starts.len(),
    })
}

/// A field that held only nulls in the sample is text, so the values that
/// come later are kept as written (arrow-json would infer `Null` and refuse
/// them).
fn text_for_null(f: &Field) -> Field {
    let dt = match f.data_type() {
        DataType::Null => DataType::Utf8,
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(|f| text_for_null(f)).collect()),
        DataType::List(inner) => DataType::List(Arc::new(text_for_null(inner))),
        other => other.clone(),
    };
    f.clone().with_data_type(dt).with_nullable(true)
}

/// Top-level numeric columns typed from their text as delimited text is:
/// integers `bigint`, plain decimals `numeric(38, s)`, exponent notation
/// `double precision`, integers beyond `bigint` text.
fn refine_numbers(schema: Schema, window: &[u8], rows: usize) -> Schema {
    let numeric: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| {
            matches!(
                schema.field(i).data_type(),
                DataType::Int64 | DataType::Float64
            )
        })
        .collect();
    if numeric.is_empty() || rows == 0 {
        return schema;
    }
    let wire = wire_schema(&schema);
    let Ok(batch) = decode(&wire, window, rows) else {
        return schema;
    };
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for i in numeric {
        let text = batch.column(i).as_string::<i32>();
        let mut inference = Inference::new(1);
        for v in text.iter().flatten() {
            inference.observe_value(0, v.as_bytes());
        }
        let guess = inference.finish().remove(0).data_type;
        let dt = match guess {
            DataType::Int64 | DataType::Float64 | DataType::Decimal128(..) => guess,
            _ => DataType::Utf8,
        };
        fields[i] = fields[i].clone().with_data_type(dt);
    }
    Schema::new(fields)
}

/// The type arrow-json decodes into: numbers as their text, at any depth.
fn wire_type(dt: &DataType) -> DataType {
    match dt {
        // Numbers as written: arrow-json would truncate them into integers.
        t if is_number(t) => DataType::Utf8,
        DataType::Struct(fs) => DataType::Struct(wire_fields(fs)),
        DataType::List(f) => DataType::List(Arc::new(wire_field(f))),
        DataType::LargeList(f) => DataType::LargeList(Arc::new(wire_field(f))),
        DataType::Map(f, ordered) => DataType::Map(Arc::new(wire_field(f)), *ordered),
        other => other.clone(),
    }
}

fn wire_field(f: &Field) -> Field {
    f.clone().with_data_type(wire_type(f.data_type()))
}

fn wire_fields(fs: &Fields) -> Fields {
    fs.iter().map(|f| wire_field(f)).collect()
}

/// The schema arrow-json decodes with.
fn wire_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(wire_fields(schema.fields())))
}

/// Decodes exactly `rows` records from `bytes` (one per line), strictly:
/// numbers as text, unknown fields refused.
fn decode(wire: &SchemaRef, bytes: &[u8], rows: usize) -> Result<RecordBatch, ArrowError> {
    let mut decoder = ReaderBuilder::new(wire.clone())
        .with_batch_size(rows + 1)
        .with_coerce_primitive(true)
        .with_strict_mode(true)
        .build_decoder()?;
    let consumed = decoder.decode(bytes)?;
    if consumed != bytes.len() || decoder.has_partial_record() || decoder.len() != rows {
        return Err(ArrowError::JsonError(
            "each line must hold exactly one JSON object".into(),
        ));
    }
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(wire.clone())))
}

/// One line as a JSON object, or what is wrong with it (the same words
/// whether inference or reading finds it).
fn parse_line(text: &[u8]) -> Result<serde_json::Value, String> {
    match serde_json::from_slice::<serde_json::Value>(text) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("not a JSON object (each line must be one {…} record)".to_string()),
        Err(e) => Err(format!(
            "not valid JSON: {e} (ferry reads NDJSON: one complete JSON object per line)"
        )),
    }
}

fn bad_line(display: &str, line: u64, text: &[u8], detail: String) -> DecodeError {
    DecodeError::Reader {
        file: display.to_string(),
        location: format!(":{line}"),
        detail: format!(
            "{detail}; the line starts: {}",
            show_value(&text[..text.len().min(120)])
        ),
    }
}

/// The field path in an arrow-json strict-mode error, when the error is a
/// field the schema lacks ("whilst decoding field 'a': column 'b' missing
/// from schema" → `a.b`).
fn unknown_field(message: &str) -> Option<String> {
    let mut path = Vec::new();
    let mut rest = message.trim_start_matches("Json error: ");
    while let Some(tail) = rest.strip_prefix("whilst decoding field '") {
        let end = tail.find("': ")?;
        path.push(&tail[..end]);
        rest = &tail[end + 3..];
    }
    let name = rest
        .strip_prefix("column '")?
        .strip_suffix("' missing from schema")?;
    path.push(name);
    Some(path.join("."))
}

/// One sampled line of a batch: its number, byte offset in the input and
/// where its text sits in the batch buffer.
#[derive(Debug, Clone, Copy)]
struct LineAt {
    line: u64,
    offset: u64,
    start: usize,
    end: usize,
}

struct Batches {
    source: Arc<JsonSource>,
    lines: Lines<BufReader<Box<dyn Read + Send>>>,
    wire: SchemaRef,
    line: Vec<u8>,
    buf: Vec<u8>,
    at: Vec<LineAt>,
    offset: u64,
    eof: bool,
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.eof {
                return None;
            }
            if let Err(e) = self.fill() {
                self.eof = true;
                return Some(Err(e));
            }
            if self.at.is_empty() {
                return None;
            }
            match self.batch() {
                Ok(Some(b)) => return Some(Ok(b)),
                Ok(None) => continue,
                Err(e) => {
                    self.eof = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Batches {
    /// Reads the next batch's lines.
    fn fill(&mut self) -> Result<(), DecodeError> {
        self.buf.clear();
        self.at.clear();
        while self.at.len() < BATCH_ROWS && self.buf.len() < BATCH_BYTES {
            let Some(n) = self
                .lines
                .next_into(&mut self.line)
                .map_err(|e| line_error(&self.source.display, e))?
            else {
                self.eof = true;
                break;
            };
            let offset = self.offset;
            self.offset += self.line.len() as u64 + 1;
            let text = strip_bom(n, &self.line);
            if text.trim_ascii().is_empty() {
                continue;
            }
            let start = self.buf.len();
            self.buf.extend_from_slice(text);
            self.at.push(LineAt {
                line: n,
                offset,
                start,
                end: self.buf.len(),
            });
            self.buf.push(b'\n');
        }
        Ok(())
    }

    fn text(&self, at: &LineAt) -> &[u8] {
        &self.buf[at.start..at.end]
    }

    /// Decodes and conforms the lines read; `None` when every one of them
    /// went to the reject file.
    fn batch(&mut self) -> Result<Option<RecordBatch>, DecodeError> {
        let source = self.source.clone();
        let mut at = std::mem::take(&mut self.at);
        // A new field stops the read, but only after the lines before it
        // have been checked: the first problem in the file is the one told.
        let mut stop = None;
        let mut wire = match decode(&self.wire, &self.buf, at.len()) {
            Ok(b) => b,
            Err(_) => {
                (at, stop) = self.keep_good_lines(&at)?;
                if at.is_empty() {
                    return stop.map_or(Ok(None), Err);
                }
                let mut good = Vec::new();
                for a in &at {
                    good.extend_from_slice(self.text(a));
                    good.push(b'\n');
                }
                decode(&self.wire, &good, at.len()).map_err(|e| {
                    bad_line(&source.display, at[0].line, b"", format!("internal: {e}"))
                })?
            }
        };
        source
            .counters
            .rows
            .fetch_add(at.len() as u64, Ordering::Relaxed);
        loop {
            let mut columns = Vec::with_capacity(source.schema.fields().len());
            let mut misfit = None;
            for (k, field) in source.schema.fields().iter().enumerate() {
                match conform(wire.column(k), field, source.exact[k]) {
                    Ok(c) => columns.push(c),
                    Err(m) => {
                        misfit = Some((k, m));
                        break;
                    }
                }
            }
            let Some((k, m)) = misfit else {
                if let Some(e) = stop {
                    return Err(e);
                }
                let options =
                    arrow::array::RecordBatchOptions::new().with_row_count(Some(wire.num_rows()));
                let batch =
                    RecordBatch::try_new_with_options(source.schema.clone(), columns, &options)
                        .map_err(|e| DecodeError::Layout {
                            file: source.display.clone(),
                            detail: format!("internal: {e}"),
                        })?;
                return Ok((batch.num_rows() > 0).then_some(batch));
            };
            let a = at[m.row];
            let Some(sink) = &source.rejects else {
                return Err(DecodeError::Value {
                    file: source.display.clone(),
                    line: a.line,
                    column: k + 1,
                    name: m.path,
                    value: m.value,
                    reason: m.reason,
                    hint: m.hint,
                });
            };
            let row = RejectedRow {
                file: source.display.clone(),
                line: a.line,
                offset: a.offset,
                column: Some(k + 1),
                name: Some(m.path),
                value: Some(m.value),
                reason: m.reason,
                raw: String::from_utf8_lossy(self.text(&a)).into_owned(),
            };
            sink.record(&source.display, &[row])?;
            let keep: arrow::array::BooleanArray =
                (0..wire.num_rows()).map(|r| Some(r != m.row)).collect();
            wire = arrow::compute::filter_record_batch(&wire, &keep).map_err(|e| {
                DecodeError::Layout {
                    file: source.display.clone(),
                    detail: format!("internal: {e}"),
                }
            })?;
            at.remove(m.row);
        }
    }

    /// Decodes the lines one by one to find the bad ones: the first is the
    /// error, or (with a reject file) each goes there. A field the schema
    /// lacks always fails: it is not a bad row but a schema the sample
    /// missed, so the lines before it come back with that error to raise.
    fn keep_good_lines(
        &self,
        at: &[LineAt],
    ) -> Result<(Vec<LineAt>, Option<DecodeError>), DecodeError> {
        let source = &self.source;
        let mut good = Vec::with_capacity(at.len());
        for a in at {
            let text = self.text(a);
            let mut one = text.to_vec();
            one.push(b'\n');
            let Err(e) = decode(&self.wire, &one, 1) else {
                good.push(*a);
                continue;
            };
            let detail = match parse_line(text) {
                Err(problem) => problem,
                Ok(_) => {
                    let message = e.to_string();
                    if let Some(field) = unknown_field(&message) {
                        let stop = DecodeError::NewField {
                            file: source.display.clone(),
                            line: a.line,
                            field,
                            sampled: source.sampled,
                        };
                        return Ok((good, Some(stop)));
                    }
                    message.trim_start_matches("Json error: ").to_string()
                }
            };
            let error = bad_line(&source.display, a.line, text, detail.clone());
            let Some(sink) = &source.rejects else {
                return Err(error);
            };
            let row = RejectedRow {
                file: source.display.clone(),
                line: a.line,
                offset: a.offset,
                column: None,
                name: None,
                value: None,
                reason: detail,
                raw: String::from_utf8_lossy(text).into_owned(),
            };
            sink.record(&source.display, &[row])?;
        }
        Ok((good, None))
    }
}

impl JsonSource {
    /// The batches of the whole file, in order.
    pub fn batches(
        self: &Arc<Self>,
    ) -> Result<impl Iterator<Item = Result<RecordBatch, DecodeError>> + Send + use<>, DecodeError>
    {
        let lines = open_lines(
            &self.path,
            &self.display,
            self.compression,
            self.encoding,
            self.max_record,
            Some(self.counters.clone()),
        )?;
        Ok(Batches {
            source: self.clone(),
            lines,
            wire: wire_schema(&self.schema),
            line: Vec::new(),
            buf: Vec::with_capacity(BATCH_BYTES + (64 << 10)),
            at: Vec::with_capacity(BATCH_ROWS),
            offset: 0,
            eof: false,
        })
    }

    /// The file as a table that reads it afresh on each scan.
    pub fn partition(self: Arc<Self>) -> BlockingPartition {
        let schema = self.schema.clone();
        let open: OpenFn =
            Arc::new(move || Ok(Box::new(self.batches()?) as Box<dyn Iterator<Item = _> + Send>));
        BlockingPartition::new(schema, open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_paths_are_read_from_arrow_json_errors() {
        assert_eq!(
            unknown_field("Json error: column 'coupon' missing from schema").as_deref(),
            Some("coupon")
        );
        assert_eq!(
            unknown_field("Json error: whilst decoding field 'c': column 'b' missing from schema")
                .as_deref(),
            Some("c.b")
        );
        assert_eq!(unknown_field("Json error: expected string got 1"), None);
    }

    #[test]
    fn numbers_in_lists_are_parsed_strictly() {
        let item = Arc::new(Field::new("item", DataType::Int64, true));
        let schema = Schema::new(vec![Field::new("xs", DataType::List(item), true)]);
        let wire = wire_schema(&schema);
        let good = decode(&wire, b"{\"xs\":[1,2]}\n{\"xs\":null}\n", 2).unwrap();
        let target = Arc::new(schema.field(0).clone());
        let out = conform(good.column(0), &target, true).unwrap();
        assert_eq!(out.len(), 2);
        let bad = decode(&wire, b"{\"xs\":[1]}\n{\"xs\":[2,1.5]}\n", 2).unwrap();
        let m = conform(bad.column(0), &target, true).unwrap_err();
        assert_eq!(
            (m.row, m.path.as_str(), m.value.as_str()),
            (1, "xs.item", "\"1.5\"")
        );
    }
}
