//! Typed Arrow columns from tokenized records: one pass per column, parsing
//! straight into value buffers (no per-value allocation), nulls decided by the
//! dialect (unquoted null markers only).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanBufferBuilder, FixedSizeBinaryArray, PrimitiveArray, RecordBatch,
    StringArray,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::*;

use super::super::error::{DecodeError, show_value};
use super::super::parse::{
    DecimalError, TimestampError, parse_bool, parse_bytea, parse_date, parse_decimal,
    parse_decimal_exact, parse_f32, parse_f64, parse_i64, parse_interval, parse_time,
    parse_timestamp,
};
use super::super::reject::RejectedRow;
use super::dialect::{CsvDialect, Locale};
use super::tokenize::Tokens;

/// Which file columns to decode and as what.
#[derive(Debug, Clone)]
pub struct Projection {
    /// Output fields (their types decide the parsing).
    pub fields: Vec<FieldRef>,
    /// File column index of each output field.
    pub indices: Vec<usize>,
    /// Optional chrono format per output field (dates, timestamps).
    pub formats: Vec<Option<String>>,
    /// Per output field: its type was inferred, so a value that does not
    /// fit it exactly fails rather than being rounded as a declared type's
    /// would be (PostgreSQL's input rules).
    pub exact: Vec<bool>,
    /// Fields every record must have.
    pub expected_fields: usize,
    /// All file column names (for messages).
    pub file_names: Vec<String>,
}

/// Where a chunk sits in its file, to turn offsets into line numbers.
#[derive(Debug, Clone, Copy)]
pub struct ChunkPos<'a> {
    /// File name for messages.
    pub file: &'a str,
    /// The chunk's bytes.
    pub chunk: &'a [u8],
    /// 1-based line number of the chunk's first byte.
    pub first_line: u64,
    /// Byte offset of the chunk in the decompressed input.
    pub offset: u64,
}

impl ChunkPos<'_> {
    /// Line number of a byte offset within the chunk.
    pub fn line_at(&self, offset: usize) -> u64 {
        self.first_line
            + memchr::memchr_iter(b'\n', &self.chunk[..offset.min(self.chunk.len())]).count() as u64
    }
}

/// A value that failed to parse: (record, reason, hint).
pub(crate) type Failure = (usize, String, String);

/// What to do with a bad record: fail the chunk with the first one, or set
/// them aside (the dataset allows bad rows) and build the batch from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadRow {
    /// The first bad record is the chunk's error.
    Fail,
    /// Bad records are returned as rejects and left out of the batch.
    Reject,
}

/// After this many single-row retries in one chunk, the remaining rows are
/// checked value by value: a file with many bad rows costs one slow pass per
/// chunk instead of one rebuild per bad row.
const RETRIES_BEFORE_SCAN: usize = 8;

impl ChunkPos<'_> {
    pub(crate) fn reject(&self, records: &Tokens<'_>, rec: usize, reason: String) -> RejectedRow {
        let start = records.record_offset(rec);
        RejectedRow {
            file: self.file.to_string(),
            line: self.line_at(start),
            offset: self.offset + start as u64,
            column: None,
            name: None,
            value: None,
            reason,
            raw: String::from_utf8_lossy(records.record_text(rec)).into_owned(),
        }
    }
}

/// The error for a record with the wrong number of fields.
fn field_count_error(
    records: &Tokens<'_>,
    rec: usize,
    projection: &Projection,
    pos: ChunkPos<'_>,
) -> DecodeError {
    let found = records.field_count(rec);
    let start = records.record_offset(rec);
    let end = pos.chunk[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(pos.chunk.len(), |p| start + p)
        .min(start + 160);
    let hint = if found == projection.expected_fields + 1 {
        "; if every line ends with the delimiter, set trailing_delimiter = true"
    } else if found == 1 && projection.expected_fields > 1 {
        "; is the delimiter right?"
    } else {
        "; check quoting, or the delimiter"
    };
    DecodeError::FieldCount {
        file: pos.file.to_string(),
        line: pos.line_at(start),
        expected: projection.expected_fields,
        found,
        preview: show_value(&pos.chunk[start..end]),
        hint: hint.to_string(),
    }
}

/// Builds every projected column from the rows `row_of(0..rows)` name.
/// On failure: the output column index and the failure.
fn build_columns(
    records: &Tokens<'_>,
    rows: usize,
    row_of: impl Fn(usize) -> usize + Copy,
    dialect: &CsvDialect,
    projection: &Projection,
) -> Result<Vec<ArrayRef>, (usize, Failure)> {
    let mut columns = Vec::with_capacity(projection.fields.len());
    for (k, field) in projection.fields.iter().enumerate() {
        let c = projection.indices[k];
        let get = |r: usize| records.get(row_of(r), c);
        let column = build_column(
            field,
            projection.formats[k].as_deref(),
            rows,
            get,
            dialect,
            projection.exact[k],
        )
        .map_err(|f| (k, f))?;
        columns.push(column);
    }
    Ok(columns)
}

/// Builds one batch from `records[skip..]`, leaving out the records in
/// `excluded` (sorted; already rejected by the caller). With
/// [`OnBadRow::Reject`], bad records come back as rejects in input order.
#[allow(clippy::too_many_arguments)]
pub fn build_batch(
    records: &Tokens<'_>,
    skip: usize,
    dialect: &CsvDialect,
    projection: &Projection,
    schema: SchemaRef,
    pos: ChunkPos<'_>,
    on_bad: OnBadRow,
    excluded: &[usize],
) -> Result<(RecordBatch, Vec<RejectedRow>), DecodeError> {
    let finish = |columns: Vec<ArrayRef>, rows: usize| {
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(|e| {
            DecodeError::Layout {
                file: pos.file.to_string(),
                detail: format!("internal: {e}"),
            }
        })
    };
    let value_error = |rec: usize, k: usize, (reason, hint): (String, String)| {
        let c = projection.indices[k];
        DecodeError::Value {
            file: pos.file.to_string(),
            line: pos.line_at(records.record_offset(rec)),
            column: c + 1,
            name: projection.file_names[c].clone(),
            value: show_value(records.get(rec, c).0),
            reason,
            hint,
        }
    };
    let value_reject = |rec: usize, k: usize, reason: String| {
        let c = projection.indices[k];
        let mut row = pos.reject(records, rec, reason);
        row.column = Some(c + 1);
        row.name = Some(projection.file_names[c].clone());
        row.value = Some(RejectedRow::value_text(records.get(rec, c).0));
        row
    };
    let start = skip.min(records.len());
    let clean = excluded.is_empty()
        && (start..records.len()).all(|r| records.field_count(r) == projection.expected_fields);
    if clean {
        // The fast path: every record, no indirection.
        let rows = records.len() - start;
        match build_columns(records, rows, |r| start + r, dialect, projection) {
            Ok(columns) => return Ok((finish(columns, rows)?, Vec::new())),
            Err((k, (r, reason, hint))) if on_bad == OnBadRow::Fail => {
                return Err(value_error(start + r, k, (reason, hint)));
            }
            Err(_) => {}
        }
    }
    let mut rejects = Vec::new();
    let mut kept = Vec::with_capacity(records.len() - start);
    for r in start..records.len() {
        if excluded.binary_search(&r).is_ok() {
            continue;
        }
        if records.field_count(r) != projection.expected_fields {
            let e = field_count_error(records, r, projection, pos);
            if on_bad == OnBadRow::Fail {
                return Err(e);
            }
            let reason = format!(
                "expected {} fields, found {}",
                projection.expected_fields,
                records.field_count(r)
            );
            rejects.push(pos.reject(records, r, reason));
        } else {
            kept.push(r);
        }
    }
    let mut retries = 0;
    loop {
        match build_columns(records, kept.len(), |r| kept[r], dialect, projection) {
            Ok(columns) => {
                let batch = finish(columns, kept.len())?;
                rejects.sort_by_key(|r| r.offset);
                return Ok((batch, rejects));
            }
            Err((k, (r, reason, hint))) => {
                if on_bad == OnBadRow::Fail {
                    return Err(value_error(kept[r], k, (reason, hint)));
                }
                rejects.push(value_reject(kept[r], k, reason));
                kept.remove(r);
                retries += 1;
            }
        }
        if retries == RETRIES_BEFORE_SCAN {
            // Check what is left value by value, once.
            kept.retain(|&rec| {
                for (k, field) in projection.fields.iter().enumerate() {
                    let c = projection.indices[k];
                    let one = |_: usize| records.get(rec, c);
                    if let Err((_, reason, _)) = build_column(
                        field,
                        projection.formats[k].as_deref(),
                        1,
                        one,
                        dialect,
                        projection.exact[k],
                    ) {
                        rejects.push(value_reject(rec, k, reason));
                        return false;
                    }
                }
                true
            });
        }
    }
}

/// A column's validity, built only once a NULL shows up: most columns have
/// none, and a bit per value would cost about as much as parsing it.
struct Validity {
    rows: usize,
    bits: Option<BooleanBufferBuilder>,
}

impl Validity {
    fn new(rows: usize) -> Self {
        Validity { rows, bits: None }
    }

    #[inline]
    fn valid(&mut self) {
        if let Some(bits) = &mut self.bits {
            bits.append(true);
        }
    }

    /// Row `r` is NULL; every row before it has been recorded.
    #[inline]
    fn null(&mut self, r: usize) {
        let rows = self.rows;
        self.bits
            .get_or_insert_with(|| {
                let mut bits = BooleanBufferBuilder::new(rows);
                bits.append_n(r, true);
                bits
            })
            .append(false);
    }

    fn finish(self) -> Option<NullBuffer> {
        self.bits.map(|mut bits| NullBuffer::new(bits.finish()))
    }
}

/// Parses a primitive column; `parse` returns the value or a reason.
fn primitive<'a, T: ArrowPrimitiveType>(
    rows: usize,
    get: impl Fn(usize) -> (&'a [u8], bool),
    dialect: &CsvDialect,
    parse: impl Fn(&[u8]) -> Result<T::Native, (String, String)>,
) -> Result<PrimitiveArray<T>, Failure> {
    let mut values = Vec::with_capacity(rows);
    let mut valid = Validity::new(rows);
    for r in 0..rows {
        let (bytes, quoted) = get(r);
        if !quoted && dialect.is_null(bytes) {
            values.push(T::Native::default());
            valid.null(r);
            continue;
        }
        let v = parse(bytes).map_err(|(reason, hint)| (r, reason, hint))?;
        values.push(v);
        valid.valid();
    }
    Ok(PrimitiveArray::new(
        ScalarBuffer::from(values),
        valid.finish(),
    ))
}

/// Offsets, value bytes and nulls of a variable-length column.
type VarColumn = (OffsetBuffer<i32>, Vec<u8>, Option<NullBuffer>);

/// Builds offsets, value bytes and nulls for a variable-length column;
/// `push` appends one value's bytes.
fn varlen<'a>(
    rows: usize,
    get: impl Fn(usize) -> (&'a [u8], bool),
    dialect: &CsvDialect,
    mut push: impl FnMut(&[u8], &mut Vec<u8>) -> Result<(), (String, String)>,
) -> Result<VarColumn, Failure> {
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    // The field bytes bound what most columns store: one allocation, not a
    // doubling series of copies.
    let mut data = Vec::with_capacity((0..rows).map(|r| get(r).0.len()).sum());
    let mut valid = Validity::new(rows);
    for r in 0..rows {
        let (bytes, quoted) = get(r);
        if !quoted && dialect.is_null(bytes) {
            valid.null(r);
        } else {
            push(bytes, &mut data).map_err(|(reason, hint)| (r, reason, hint))?;
            valid.valid();
        }
        let end = i32::try_from(data.len()).map_err(|_| {
            (
                r,
                "more than 2 GiB of values in one batch".to_string(),
                String::new(),
            )
        })?;
        offsets.push(end);
    }
    // Offsets start at 0 and never decrease: valid by construction.
    Ok((
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        data,
        valid.finish(),
    ))
}

fn bad(reason: &str, hint: &str) -> (String, String) {
    (reason.to_string(), hint.to_string())
}

/// Builds one typed column from text fields (`get(row)` gives the bytes and
/// whether they were quoted). Callers guarantee the bytes are UTF-8: the
/// `Utf8` arm relies on it.
pub(crate) fn build_column<'a>(
    field: &Field,
    format: Option<&str>,
    rows: usize,
    get: impl Fn(usize) -> (&'a [u8], bool) + Copy,
    d: &CsvDialect,
    exact: bool,
) -> Result<ArrayRef, Failure> {
    let result = if d.locale.rewrites_numbers() && is_number(field.data_type()) {
        // `1.234,5` → `1234.5`, then read as any number is.
        let plain = PlainNumbers::read(rows, get, d);
        let dialect = CsvDialect {
            locale: Locale::default(),
            ..d.clone()
        };
        build_typed(field, format, rows, |r| plain.get(r), &dialect, exact)
    } else {
        build_typed(field, format, rows, get, d, exact)
    };
    if exact {
        // The type is ferry's guess from the first rows, not the user's
        // choice: say so, and how to choose.
        return result.map_err(|(r, reason, _)| (r, reason, INFERRED_HINT.to_string()));
    }
    result
}

/// Whether a column of this type is read as a number (and so follows
/// `decimal_separator` and `thousands_separator`).
fn is_number(t: &DataType) -> bool {
    t.is_integer()
        || t.is_floating()
        || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// A column's fields with their numbers rewritten in PostgreSQL's form
/// (NULL markers kept as they are).
struct PlainNumbers {
    bytes: Vec<u8>,
    /// (start, end, quoted) of each row's field in `bytes`.
    spans: Vec<(usize, usize, bool)>,
}

impl PlainNumbers {
    fn read<'a>(rows: usize, get: impl Fn(usize) -> (&'a [u8], bool), d: &CsvDialect) -> Self {
        let mut bytes = Vec::new();
        let mut spans = Vec::with_capacity(rows);
        for r in 0..rows {
            let (field, quoted) = get(r);
            let start = bytes.len();
            if !quoted && d.is_null(field) {
                bytes.extend_from_slice(field);
            } else {
                d.locale.plain_number(field, &mut bytes);
            }
            spans.push((start, bytes.len(), quoted));
        }
        PlainNumbers { bytes, spans }
    }

    fn get(&self, r: usize) -> (&[u8], bool) {
        let (start, end, quoted) = self.spans[r];
        (&self.bytes[start..end], quoted)
    }
}

/// The hint for a value that does not fit a type ferry inferred.
pub const INFERRED_HINT: &str = "; the column's type was inferred from the first rows (infer_rows): declare its type in the spec ([[source.columns]] type = \"…\") or raise infer_rows (0 samples every row)";

/// Whether a float parsed from `text` is the number the text wrote, where the
/// text is an integer: one past 2^53 would silently become its neighbour.
fn integer_text_is_exact(text: &[u8], v: f64) -> bool {
    let t = text.trim_ascii();
    let digits = t.strip_prefix(b"-").or(t.strip_prefix(b"+")).unwrap_or(t);
    if digits.len() <= 15 || !digits.iter().all(u8::is_ascii_digit) {
        return true;
    }
    parse_i64(t).is_some_and(|i| v == i as f64 && v.abs() < 9.3e18 && v as i64 == i)
}

fn build_typed<'a>(
    field: &Field,
    format: Option<&str>,
    rows: usize,
    get: impl Fn(usize) -> (&'a [u8], bool) + Copy,
    d: &CsvDialect,
    exact: bool,
) -> Result<ArrayRef, Failure> {
    let declare = "; declare the column as text in the spec and convert it in transform.sql, or fix the value";
    let int_hint = "; declare a wider type (bigint, numeric(p,s)) or text in the spec";
    Ok(match field.data_type() {
        DataType::Utf8 => {
            let (offsets, data, nulls) = varlen(rows, get, d, |bytes, data| {
                data.extend_from_slice(bytes);
                Ok(())
            })?;
            // SAFETY: the reader validated the whole chunk as UTF-8 before
            // tokenizing; fields are cut at ASCII bytes and unescaping only
            // removes ASCII quote/escape bytes, so each value is valid UTF-8.
            Arc::new(unsafe { StringArray::new_unchecked(offsets, Buffer::from_vec(data), nulls) })
        }
        DataType::Boolean => {
            let mut values = BooleanBufferBuilder::new(rows);
            let mut valid = Validity::new(rows);
            for r in 0..rows {
                let (bytes, quoted) = get(r);
                if !quoted && d.is_null(bytes) {
                    values.append(false);
                    valid.null(r);
                    continue;
                }
                let v = d
                    .locale
                    .boolean(bytes)
                    .or_else(|| parse_bool(bytes))
                    .ok_or_else(|| {
                        (
                            r,
                            "not a boolean (true/false, t/f, yes/no, on/off, 1/0, or the spec's true_values/false_values)".to_string(),
                            declare.to_string(),
                        )
                    })?;
                values.append(v);
                valid.valid();
            }
            Arc::new(arrow::array::BooleanArray::new(
                values.finish(),
                valid.finish(),
            ))
        }
        DataType::Int16 => Arc::new(primitive::<Int16Type>(rows, get, d, |b| {
            let v = parse_i64(b).ok_or_else(|| bad("not an integer", declare))?;
            i16::try_from(v).map_err(|_| bad("out of range for smallint", int_hint))
        })?),
        DataType::Int32 => Arc::new(primitive::<Int32Type>(rows, get, d, |b| {
            let v = parse_i64(b).ok_or_else(|| bad("not an integer", declare))?;
            i32::try_from(v).map_err(|_| bad("out of range for integer", int_hint))
        })?),
        DataType::Int64 => Arc::new(primitive::<Int64Type>(rows, get, d, |b| {
            parse_i64(b).ok_or_else(|| {
                if b.trim_ascii()
                    .iter()
                    .all(|c| c.is_ascii_digit() || *c == b'-' || *c == b'+')
                    && !b.trim_ascii().is_empty()
                {
                    bad(
                        "out of range for bigint",
                        "; declare it numeric(38,0) or text in the spec",
                    )
                } else {
                    bad("not an integer", declare)
                }
            })
        })?),
        DataType::Float32 => Arc::new(primitive::<Float32Type>(rows, get, d, |b| {
            parse_f32(b).ok_or_else(|| bad("not a real number (or out of range for real)", declare))
        })?),
        DataType::Float64 => Arc::new(primitive::<Float64Type>(rows, get, d, |b| {
            let v = parse_f64(b).ok_or_else(|| {
                bad(
                    "not a number (or out of range for double precision)",
                    declare,
                )
            })?;
            if exact && !integer_text_is_exact(b, v) {
                return Err(bad(
                    "has more digits than double precision holds exactly",
                    declare,
                ));
            }
            Ok(v)
        })?),
        DataType::Decimal128(p, s) => {
            let (p, s) = (*p, *s);
            let parse = if exact {
                parse_decimal_exact
            } else {
                parse_decimal
            };
            let a = primitive::<Decimal128Type>(rows, get, d, |b| {
                parse(b, p, s).map_err(|e| match e {
                    DecimalError::Syntax => bad("not a number", declare),
                    DecimalError::Inexact => (
                        format!("has more decimal places than numeric({p},{s}) holds"),
                        declare.to_string(),
                    ),
                    DecimalError::Overflow => (
                        format!(
                            "numeric field overflow: numeric({p},{s}) holds values below 10^{}",
                            p as i16 - s as i16
                        ),
                        "; declare a larger precision in the spec".to_string(),
                    ),
                })
            })?;
            Arc::new(
                a.with_precision_and_scale(p, s)
                    .map_err(|e| (0, e.to_string(), String::new()))?,
            )
        }
        DataType::Decimal256(p, s) => {
            let (p, s) = (*p, *s);
            let a = primitive::<Decimal256Type>(rows, get, d, |b| {
                let text = std::str::from_utf8(b.trim_ascii())
                    .map_err(|_| bad("not a number", declare))?;
                arrow::compute::kernels::cast_utils::parse_decimal::<Decimal256Type>(text, p, s)
                    .map_err(|e| (format!("not a numeric({p},{s}): {e}"), declare.to_string()))
            })?;
            Arc::new(
                a.with_precision_and_scale(p, s)
                    .map_err(|e| (0, e.to_string(), String::new()))?,
            )
        }
        DataType::Date32 => Arc::new(primitive::<Date32Type>(rows, get, d, |b| match format {
            Some(f) => chrono_date(b, f),
            None => parse_date(b).ok_or_else(|| {
                bad(
                    "not a date (expected YYYY-MM-DD)",
                    "; set format = \"…\" (strftime) on the column in the spec",
                )
            }),
        })?),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let zoned = tz.is_some();
            let a = primitive::<TimestampMicrosecondType>(rows, get, d, |b| match format {
                Some(f) => chrono_timestamp(b, f, zoned),
                None => parse_timestamp(b, zoned).map_err(|e| match e {
                    TimestampError::Syntax => bad(
                        "not a timestamp (expected YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])",
                        "; set format = \"…\" (strftime) on the column in the spec",
                    ),
                    TimestampError::UnexpectedZone => bad(
                        "has a time zone offset, but the column is timestamp without time zone",
                        "; declare it timestamptz in the spec",
                    ),
                }),
            })?;
            Arc::new(a.with_timezone_opt(tz.clone()))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            Arc::new(primitive::<Time64MicrosecondType>(rows, get, d, |b| {
                parse_time(b)
                    .ok_or_else(|| bad("not a time of day (expected HH:MM:SS[.ffffff])", declare))
            })?)
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            Arc::new(primitive::<IntervalMonthDayNanoType>(rows, get, d, |b| {
                parse_interval(b).ok_or_else(|| {
                    bad(
                        "not an interval (e.g. '1 day 02:00:00' or 'P1DT2H')",
                        declare,
                    )
                })
            })?)
        }
        DataType::Binary => {
            let (offsets, data, nulls) = varlen(rows, get, d, |bytes, data| {
                parse_bytea(bytes, data)
                    .ok_or_else(|| bad("not bytea (expected \\x followed by hex digits)", declare))
            })?;
            Arc::new(BinaryArray::new(offsets, Buffer::from_vec(data), nulls))
        }
        DataType::FixedSizeBinary(16) => {
            let mut data = Vec::with_capacity(rows * 16);
            let mut valid = Validity::new(rows);
            for r in 0..rows {
                let (bytes, quoted) = get(r);
                if !quoted && d.is_null(bytes) {
                    data.extend_from_slice(&[0; 16]);
                    valid.null(r);
                    continue;
                }
                let u = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(ferry_connectors::pg::codec::values::parse_uuid)
                    .ok_or_else(|| {
                        (
                            r,
                            "not a UUID (expected 8-4-4-4-12 hex digits)".to_string(),
                            declare.to_string(),
                        )
                    })?;
                data.extend_from_slice(&u);
                valid.valid();
            }
            Arc::new(
                FixedSizeBinaryArray::try_new(16, Buffer::from_vec(data), valid.finish())
                    .map_err(|e| (0, e.to_string(), String::new()))?,
            )
        }
        other => {
            return Err((
                0,
                format!("ferry cannot read {other} from delimited text"),
                "; declare the column as text and convert it in transform.sql".to_string(),
            ));
        }
    })
}

fn chrono_date(b: &[u8], format: &str) -> Result<i32, (String, String)> {
    let s = std::str::from_utf8(b.trim_ascii()).map_err(|_| bad("not a date", ""))?;
    let date = chrono::NaiveDate::parse_from_str(s, format).map_err(|e| {
        (
            format!("does not match the date format {format:?}: {e}"),
            String::new(),
        )
    })?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((date - epoch).num_days()).map_err(|_| bad("date out of range", ""))
}

fn chrono_timestamp(b: &[u8], format: &str, zoned: bool) -> Result<i64, (String, String)> {
    let s = std::str::from_utf8(b.trim_ascii()).map_err(|_| bad("not a timestamp", ""))?;
    let mismatch = |e: chrono::ParseError| {
        (
            format!("does not match the timestamp format {format:?}: {e}"),
            String::new(),
        )
    };
    if zoned && let Ok(t) = chrono::DateTime::parse_from_str(s, format) {
        return Ok(t.timestamp_micros());
    }
    let t = chrono::NaiveDateTime::parse_from_str(s, format).map_err(mismatch)?;
    Ok(t.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use arrow::array::Array;

    use super::super::tokenize::{Records, tokenize};
    use super::*;

    /// Builds `text` (no header) as the given columns.
    fn build(text: &str, types: &[DataType]) -> RecordBatch {
        let fields: Vec<FieldRef> = types
            .iter()
            .enumerate()
            .map(|(i, t)| Arc::new(Field::new(format!("c{i}"), t.clone(), true)))
            .collect();
        let projection = Projection {
            fields: fields.clone(),
            indices: (0..fields.len()).collect(),
            formats: vec![None; fields.len()],
            exact: vec![false; fields.len()],
            expected_fields: fields.len(),
            file_names: fields.iter().map(|f| f.name().clone()).collect(),
        };
        let d = CsvDialect::default();
        let mut records = Records::default();
        let tokens = tokenize(text.as_bytes(), &d, &mut records).unwrap();
        let pos = ChunkPos {
            file: "t.csv",
            chunk: text.as_bytes(),
            first_line: 1,
            offset: 0,
        };
        let schema = Arc::new(Schema::new(fields));
        build_batch(
            &tokens,
            0,
            &d,
            &projection,
            schema,
            pos,
            OnBadRow::Fail,
            &[],
        )
        .unwrap()
        .0
    }

    #[test]
    fn nulls_land_on_their_rows_wherever_the_first_one_is() {
        let types = [
            DataType::Int64,
            DataType::Utf8,
            DataType::Boolean,
            DataType::FixedSizeBinary(16),
        ];
        let uuid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        // Row k is NULL in every column where bit k of the pattern is set.
        for pattern in [0u8, 0b0001, 0b0100, 0b1000, 0b1010, 0b1111] {
            let text: String = (0..4)
                .map(|k| {
                    if pattern & (1 << k) != 0 {
                        ",,,\n".to_string()
                    } else {
                        format!("{k},\"\",t,{uuid}\n")
                    }
                })
                .collect();
            let batch = build(&text, &types);
            for column in batch.columns() {
                let nulls: Vec<bool> = (0..4).map(|k| column.is_null(k)).collect();
                let want: Vec<bool> = (0..4).map(|k| pattern & (1 << k) != 0).collect();
                assert_eq!(nulls, want, "{pattern:04b} {:?}", column.data_type());
                assert_eq!(column.null_count(), pattern.count_ones() as usize);
                // No NULL: no validity buffer at all.
                assert_eq!(column.nulls().is_none(), pattern == 0);
            }
            // A quoted empty string is a value, not NULL.
            let text_col = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            if pattern & 1 == 0 {
                assert_eq!(text_col.value(0), "");
            }
        }
    }
}
