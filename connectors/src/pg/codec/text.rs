//! COPY text rendering: the values of a column as PostgreSQL reads them back,
//! either raw (for text payloads in binary COPY and array elements) or escaped
//! for the COPY text format of the `.sql` artifacts (`\N`, `\\`, `\t`, `\n`, `\r`).
//!
//! Floats use their shortest round-trip form and timestamps are written in UTC,
//! so a `.sql` file loads exactly the values the binary stream loads.

use arrow::array::{Array, ArrayRef, AsArray, GenericListArray, OffsetSizeTrait};
use arrow::datatypes::DataType;
use arrow_json_encoder::{EncoderOptions, make_encoder};

use super::time::{push_interval, push_pg_date, push_time, push_timestamp};
use super::types::PgType;
use super::values::{
    Column, check_no_nul, check_numeric, date_at, interval_at, nulls_of, numeric_at, parse_uuid,
    push_uuid, time_at, timestamp_at,
};
use super::{ColumnCodec, EncodeError, Kind};

mod arrow_json_encoder {
    pub use arrow::json::writer::{EncoderOptions, make_encoder};
}

/// How rendered values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The value's text exactly; NULL renders as nothing (callers track nulls).
    Raw,
    /// Escaped for COPY text format; NULL renders as `\N`.
    Copy,
}

/// Rendered text of one column for one batch: `data[ends[i-1]..ends[i]]` is row `i`.
#[derive(Debug, Default)]
pub struct TextColumn {
    /// Concatenated rendered values.
    pub data: Vec<u8>,
    /// End offset of each row's value in `data`.
    pub ends: Vec<usize>,
}

impl TextColumn {
    /// Empties the column, keeping its allocations for the next batch.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
    /// The rendered value of row `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// Appends `bytes` escaped for COPY text format.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = match b {
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn needs_escape(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|&b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
}

/// Appends an `f64` in shortest round-trip form, with PostgreSQL's spellings of
/// the special values.
pub fn push_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let mut b = ryu::Buffer::new();
        out.extend_from_slice(b.format_finite(v).as_bytes());
    } else {
        push_special(out, v.is_nan(), v > 0.0);
    }
}

/// Appends an `f32` in its own shortest round-trip form.
pub fn push_f32(out: &mut Vec<u8>, v: f32) {
    if v.is_finite() {
        let mut b = ryu::Buffer::new();
        out.extend_from_slice(b.format_finite(v).as_bytes());
    } else {
        push_special(out, v.is_nan(), v > 0.0);
    }
}

fn push_special(out: &mut Vec<u8>, nan: bool, positive: bool) {
    out.extend_from_slice(match (nan, positive) {
        (true, _) => b"NaN".as_slice(),
        (false, true) => b"Infinity",
        (false, false) => b"-Infinity",
    });
}

/// Renders every value of a normalised column (see [`ColumnCodec::normalize`]).
pub fn render_column(
    codec: &ColumnCodec,
    array: &ArrayRef,
    style: Style,
    col: &mut TextColumn,
) -> Result<(), EncodeError> {
    let n = array.len();
    let nulls = nulls_of(array.as_ref());
    let is_null = |i: usize| nulls.as_ref().is_some_and(|b| b.is_null(i));
    let out = &mut col.data;
    let ends = &mut col.ends;
    ends.reserve(n);
    // Writes row `i`: NULL marker or the value from `f`.
    macro_rules! rows {
        (|$i:ident, $o:ident| $body:expr) => {
            for $i in 0..n {
                if is_null($i) {
                    if style == Style::Copy {
                        out.extend_from_slice(b"\\N");
                    }
                } else {
                    let $o: &mut Vec<u8> = &mut *out;
                    $body;
                }
                ends.push(out.len());
            }
        };
    }
    let err = |i: usize, reason: String| codec.error(array.as_ref(), i, reason);
    let mut ibuf = itoa::Buffer::new();
    match Column::new(codec, array) {
        Column::Null(_) => rows!(|_i, _o| {}),
        Column::Bool(a) => rows!(|i, o| o.push(if a.value(i) { b't' } else { b'f' })),
        Column::I16(v) => rows!(|i, o| o.extend_from_slice(ibuf.format(v[i]).as_bytes())),
        Column::I32(v) => rows!(|i, o| o.extend_from_slice(ibuf.format(v[i]).as_bytes())),
        Column::I64(v) => rows!(|i, o| o.extend_from_slice(ibuf.format(v[i]).as_bytes())),
        Column::F32(v) => rows!(|i, o| push_f32(o, v[i])),
        Column::F64(v) => rows!(|i, o| push_f64(o, v[i])),
        Column::Numeric(src, typmod) => rows!(|i, o| {
            let v = numeric_at(&src, i);
            check_numeric(&v, typmod).map_err(|r| err(i, r))?;
            v.write_text(o)
        }),
        Column::Str(s) => {
            check_no_nul(codec, array, s)?;
            rows!(|i, o| {
                let v = s.get(i).as_bytes();
                if style == Style::Copy && needs_escape(v) {
                    push_escaped(o, v)
                } else {
                    o.extend_from_slice(v)
                }
            })
        }
        Column::Bytes(b) => rows!(|i, o| push_bytea(o, b.get(i), style)),
        Column::Uuid(a) => rows!(|i, o| push_uuid(o, a.value(i))),
        Column::UuidText(s) => rows!(|i, o| {
            let u = parse_uuid(s.get(i))
                .ok_or_else(|| err(i, "not a UUID (expected 8-4-4-4-12 hex digits)".into()))?;
            push_uuid(o, &u)
        }),
        Column::Date(d) => rows!(|i, o| push_pg_date(o, date_at(d, i).map_err(|r| err(i, r))?)),
        Column::Timestamp(t) => {
            let zoned = codec.pg == PgType::Timestamptz;
            rows!(|i, o| push_timestamp(o, timestamp_at(&t, i).map_err(|r| err(i, r))?, zoned))
        }
        Column::Time(t) => rows!(|i, o| push_time(o, time_at(t, i).map_err(|r| err(i, r))?)),
        Column::Interval(a) => rows!(|i, o| {
            let (m, d, us) = interval_at(a, i).map_err(|r| err(i, r))?;
            push_interval(o, m, d, us)
        }),
        Column::Other(a) => {
            // Composite renderings: produce raw text, then escape it if needed.
            let mut raw = TextColumn::default();
            render_composite(codec, array, a, &mut raw)?;
            for i in 0..n {
                if is_null(i) {
                    if style == Style::Copy {
                        out.extend_from_slice(b"\\N");
                    }
                } else if style == Style::Copy {
                    push_escaped(out, raw.get(i));
                } else {
                    out.extend_from_slice(raw.get(i));
                }
                ends.push(out.len());
            }
        }
    }
    Ok(())
}

fn push_bytea(out: &mut Vec<u8>, bytes: &[u8], style: Style) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if style == Style::Copy {
        out.push(b'\\');
    }
    out.extend_from_slice(b"\\x");
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// Raw text of `Render`, `Json` and `Array` columns (nulls render empty).
fn render_composite(
    codec: &ColumnCodec,
    array: &ArrayRef,
    a: &dyn Array,
    out: &mut TextColumn,
) -> Result<(), EncodeError> {
    let n = a.len();
    match &codec.kind {
        Kind::Render => {
            // Render through the source type's natural PostgreSQL type.
            let natural = PgType::for_data_type(&codec.source).unwrap_or(PgType::Text);
            let inner = ColumnCodec::plan(&codec.name, &codec.source, &natural)
                .map_err(|e| codec.error(a, 0, e.to_string()))?;
            let normalized = inner.normalize(array)?;
            render_column(&inner, &normalized, Style::Raw, out)
        }
        Kind::Json { .. } => {
            let field = std::sync::Arc::new(arrow::datatypes::Field::new(
                &codec.name,
                a.data_type().clone(),
                true,
            ));
            let options = EncoderOptions::default();
            let mut enc = make_encoder(&field, a, &options)
                .map_err(|e| codec.error(a, 0, format!("cannot render as JSON: {e}")))?;
            for i in 0..n {
                if !enc.is_null(i) {
                    enc.encode(i, &mut out.data);
                }
                out.ends.push(out.data.len());
            }
            Ok(())
        }
        Kind::Array(elem) => render_array(codec, elem, a, out),
        _ => unreachable!("only composite kinds reach here"),
    }
}

/// Array literal text: `{1,NULL,"a b","with \"quote\""}`.
fn render_array(
    codec: &ColumnCodec,
    elem: &ColumnCodec,
    a: &dyn Array,
    out: &mut TextColumn,
) -> Result<(), EncodeError> {
    let (values, offsets) = list_parts(a);
    let values = elem
        .normalize(&values)
        .map_err(|e| rebase_to_list(e, codec, a, &offsets))?;
    let mut elems = TextColumn::default();
    render_column(elem, &values, Style::Raw, &mut elems)
        .map_err(|e| rebase_to_list(e, codec, a, &offsets))?;
    let elem_nulls = nulls_of(values.as_ref());
    for row in 0..a.len() {
        if a.is_valid(row) {
            out.data.push(b'{');
            for (k, e) in (offsets[row]..offsets[row + 1]).enumerate() {
                if k > 0 {
                    out.data.push(b',');
                }
                if elem_nulls.as_ref().is_some_and(|b| b.is_null(e)) {
                    out.data.extend_from_slice(b"NULL");
                } else {
                    push_array_element(&mut out.data, elems.get(e));
                }
            }
            out.data.push(b'}');
        }
        out.ends.push(out.data.len());
    }
    Ok(())
}

fn push_array_element(out: &mut Vec<u8>, v: &[u8]) {
    let quote = v.is_empty()
        || v.eq_ignore_ascii_case(b"NULL")
        || v.iter()
            .any(|&b| matches!(b, b'{' | b'}' | b',' | b'"' | b'\\') || b.is_ascii_whitespace());
    if !quote {
        return out.extend_from_slice(v);
    }
    out.push(b'"');
    for &b in v {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The child values and per-row element offsets of any list layout.
pub fn list_parts(a: &dyn Array) -> (ArrayRef, Vec<usize>) {
    fn offsets_of<O: OffsetSizeTrait>(l: &GenericListArray<O>) -> (ArrayRef, Vec<usize>) {
        let offsets = l.value_offsets();
        let base = offsets[0].as_usize();
        let end = offsets.last().map_or(base, |o| o.as_usize());
        let values = l.values().slice(base, end - base);
        (
            values,
            offsets.iter().map(|o| o.as_usize() - base).collect(),
        )
    }
    match a.data_type() {
        DataType::List(_) => offsets_of(a.as_list::<i32>()),
        DataType::LargeList(_) => offsets_of(a.as_list::<i64>()),
        DataType::FixedSizeList(_, size) => {
            let l = a.as_fixed_size_list();
            let size = *size as usize;
            let values = l.values().slice(l.offset() * size, l.len() * size);
            let offsets = (0..=l.len()).map(|i| i * size).collect();
            (values, offsets)
        }
        _ => unreachable!("planned as list"),
    }
}

/// Turns an element-level error into one naming the list row.
pub fn rebase_to_list(
    mut e: EncodeError,
    codec: &ColumnCodec,
    a: &dyn Array,
    offsets: &[usize],
) -> EncodeError {
    let row = offsets.partition_point(|&o| o <= e.row).saturating_sub(1);
    e.column = codec.name.clone();
    e.reason = format!("array element {}: {}", e.row - offsets[row] + 1, e.reason);
    e.row = row;
    e.value = super::display_value(a, row);
    e
}
