//! Reading ferry's PostgreSQL artifacts back into Arrow, for validating a
//! conversion to `.pgcopy` or `.sql`: the binary COPY format decoded field by
//! field, and COPY text decoded with the same value parsers as CSV. Both need
//! the schema the rows were written with (COPY carries no types).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, ListArray, RecordBatch, RecordBatchOptions};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, SchemaRef, TimeUnit};
use ferry_connectors::pg::PGCOPY_HEADER;
use ferry_connectors::pg::codec::time::PG_EPOCH_DAYS;

use super::csv::build::build_column;
use super::csv::dialect::CsvDialect;
use super::error::{DecodeError, show_value};

const BATCH_ROWS: usize = 8192;

/// Field values of one column for one batch: bytes back to back, with a
/// NULL flag per row. `None` bytes are NULL.
#[derive(Default)]
struct Fields {
    data: Vec<u8>,
    ends: Vec<usize>,
    nulls: Vec<bool>,
}

impl Fields {
    fn push(&mut self, v: Option<&[u8]>) {
        if let Some(v) = v {
            self.data.extend_from_slice(v);
        }
        self.ends.push(self.data.len());
        self.nulls.push(v.is_none());
    }
    fn get(&self, i: usize) -> Option<&[u8]> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (!self.nulls[i]).then(|| &self.data[start..self.ends[i]])
    }
    fn len(&self) -> usize {
        self.ends.len()
    }
}

fn bad(file: &str, row: u64, column: &Field, detail: impl std::fmt::Display) -> DecodeError {
    DecodeError::Reader {
        file: file.to_string(),
        location: format!(" (row {row})"),
        detail: format!("column {:?}: {detail}", column.name()),
    }
}

// ---------------------------------------------------------------- text

/// Reads the rows of one `.sql` part (`COPY … FROM stdin;` … `\.`).
pub fn read_sql(
    path: &Path,
    display: &str,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, DecodeError> {
    let file = std::fs::File::open(path).map_err(|e| DecodeError::io(display, "cannot open", e))?;
    let mut lines = BufReader::new(file).split(b'\n');
    let io = |e| DecodeError::io(display, "cannot read", e);
    // Skip to the COPY statement.
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        match lines.next() {
            None => {
                return Err(DecodeError::Layout {
                    file: display.into(),
                    detail: "no COPY … FROM stdin; statement".into(),
                });
            }
            Some(l) => {
                let l = l.map_err(io)?;
                if l.starts_with(b"COPY ") && l.ends_with(b"FROM stdin;") {
                    break;
                }
            }
        }
    }
    let n = schema.fields().len();
    let mut batches = Vec::new();
    let mut cols: Vec<Fields> = (0..n).map(|_| Fields::default()).collect();
    let mut first_line = line_no + 1;
    let mut ended = false;
    for l in lines {
        line_no += 1;
        let l = l.map_err(io)?;
        if l == b"\\." {
            ended = true;
            break;
        }
        let fields: Vec<&[u8]> = l.split(|&b| b == b'\t').collect();
        if fields.len() != n {
            return Err(DecodeError::FieldCount {
                file: display.into(),
                line: line_no,
                expected: n,
                found: fields.len(),
                preview: show_value(&l[..l.len().min(120)]),
                hint: String::new(),
            });
        }
        for (c, f) in cols.iter_mut().zip(fields) {
            if f == b"\\N" {
                c.push(None);
            } else {
                // Escapes can spell any byte: check the value, not just the line.
                let v = unescape(f);
                if let Err(e) = std::str::from_utf8(&v) {
                    return Err(DecodeError::Utf8 {
                        file: display.into(),
                        line: line_no,
                        offset: e.valid_up_to() as u64,
                        bytes: v[e.valid_up_to()..]
                            .iter()
                            .take(4)
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    });
                }
                c.push(Some(&v));
            }
        }
        if cols[0].len() == BATCH_ROWS {
            batches.push(take_batch(
                &mut cols,
                schema,
                display,
                first_line,
                text_column,
            )?);
            first_line = line_no + 1;
        }
    }
    if !ended {
        return Err(DecodeError::Layout {
            file: display.into(),
            detail: "the COPY data does not end with \\. (truncated file?)".into(),
        });
    }
    if cols.first().is_some_and(|c| c.len() > 0) {
        batches.push(take_batch(
            &mut cols,
            schema,
            display,
            first_line,
            text_column,
        )?);
    }
    Ok(batches)
}

/// Undoes COPY text escaping.
fn unescape(f: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        if f[i] != b'\\' || i + 1 == f.len() {
            out.push(f[i]);
            i += 1;
            continue;
        }
        let c = f[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                for _ in 0..2 {
                    if i < f.len() && (b'0'..=b'7').contains(&f[i]) {
                        v = v * 8 + (f[i] - b'0') as u32;
                        i += 1;
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

/// Splits a PostgreSQL array literal `{a,"b c",NULL}` into its elements.
fn array_elements(text: &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    let inner = text.strip_prefix(b"{")?.strip_suffix(b"}")?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Some(out);
    }
    let mut i = 0;
    loop {
        if inner.get(i) == Some(&b'"') {
            let mut v = Vec::new();
            i += 1;
            loop {
                match inner.get(i)? {
                    b'\\' => {
                        v.push(*inner.get(i + 1)?);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b => {
                        v.push(*b);
                        i += 1;
                    }
                }
            }
            out.push(Some(v));
        } else {
            let end = inner[i..]
                .iter()
                .position(|&b| b == b',')
                .map_or(inner.len(), |p| i + p);
            let v = &inner[i..end];
            out.push((!v.eq_ignore_ascii_case(b"NULL")).then(|| v.to_vec()));
            i = end;
        }
        match inner.get(i) {
            None => return Some(out),
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

/// Builds a column from text fields with the CSV value parsers.
fn text_column(
    field: &Field,
    col: &Fields,
    display: &str,
    first_line: u64,
) -> Result<ArrayRef, DecodeError> {
    // NULL is marked by an unquoted "\N"; every real value counts as quoted.
    let dialect = CsvDialect {
        nulls: vec![b"\\N".to_vec()],
        ..CsvDialect::default()
    };
    let get = |i: usize| match col.get(i) {
        None => (&b"\\N"[..], false),
        Some(v) => (v, true),
    };
    if let DataType::List(item) = field.data_type() {
        return list_column(
            field,
            item,
            col,
            display,
            first_line,
            array_elements,
            text_column,
        );
    }
    build_column(field, None, col.len(), get, &dialect, false).map_err(|(r, reason, _)| {
        bad(
            display,
            first_line + r as u64,
            field,
            format!("{reason}: {}", show_value(col.get(r).unwrap_or_default())),
        )
    })
}

/// Builds one column of a batch from its collected fields.
type ColumnFn = fn(&Field, &Fields, &str, u64) -> Result<ArrayRef, DecodeError>;
/// Splits an array value into its elements (NULL elements are `None`).
type SplitFn = fn(&[u8]) -> Option<Vec<Option<Vec<u8>>>>;

/// Builds a batch from the collected fields with `column` and empties them.
fn take_batch(
    cols: &mut [Fields],
    schema: &SchemaRef,
    display: &str,
    first: u64,
    column: ColumnFn,
) -> Result<RecordBatch, DecodeError> {
    let rows = cols.first().map_or(0, Fields::len);
    let arrays = schema
        .fields()
        .iter()
        .zip(cols.iter())
        .map(|(f, c)| column(f, c, display, first))
        .collect::<Result<Vec<_>, _>>()?;
    for c in cols.iter_mut() {
        *c = Fields::default();
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| DecodeError::Layout {
        file: display.into(),
        detail: e.to_string(),
    })
}

/// A list column: each value split into elements by `split`, the elements
/// built by `column`.
fn list_column(
    field: &Field,
    item: &FieldRef,
    col: &Fields,
    display: &str,
    first: u64,
    split: SplitFn,
    column: ColumnFn,
) -> Result<ArrayRef, DecodeError> {
    let mut elems = Fields::default();
    let mut offsets = vec![0i32];
    for i in 0..col.len() {
        if let Some(v) = col.get(i) {
            let parts = split(v)
                .ok_or_else(|| bad(display, first + i as u64, field, "not a valid array"))?;
            for p in &parts {
                elems.push(p.as_deref());
            }
        }
        offsets.push(elems.len() as i32);
    }
    let values = column(item, &elems, display, first)?;
    let nulls = NullBuffer::from(
        (0..col.len())
            .map(|i| col.get(i).is_some())
            .collect::<Vec<_>>(),
    );
    let list = ListArray::try_new(
        item.clone(),
        OffsetBuffer::new(offsets.into()),
        values,
        Some(nulls),
    )
    .map_err(|e| bad(display, first, field, e))?;
    Ok(Arc::new(list))
}

// ---------------------------------------------------------------- binary

/// Reads one `.pgcopy` file (binary COPY).
pub fn read_pgcopy(
    path: &Path,
    display: &str,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, DecodeError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| DecodeError::io(display, "cannot read", e))?;
    let layout = |detail: String| DecodeError::Layout {
        file: display.into(),
        detail,
    };
    if !bytes.starts_with(&PGCOPY_HEADER[..11]) {
        return Err(layout(
            "not a binary COPY file (bad PGCOPY signature)".into(),
        ));
    }
    let mut p = 11 + 4;
    let ext = u32::from_be_bytes(
        bytes
            .get(p..p + 4)
            .ok_or_else(|| layout("truncated header".into()))?
            .try_into()
            .unwrap_or_default(),
    );
    p += 4 + ext as usize;
    let n = schema.fields().len();
    let mut batches = Vec::new();
    let mut cols: Vec<Fields> = (0..n).map(|_| Fields::default()).collect();
    let mut row = 0u64;
    let mut first_row = 1u64;
    loop {
        let count = i16::from_be_bytes(
            bytes
                .get(p..p + 2)
                .ok_or_else(|| layout(format!("truncated at tuple {}", row + 1)))?
                .try_into()
                .unwrap_or_default(),
        );
        p += 2;
        if count == -1 {
            break;
        }
        row += 1;
        if count as usize != n {
            return Err(layout(format!(
                "tuple {row} has {count} fields, expected {n}"
            )));
        }
        for c in cols.iter_mut() {
            let len = i32::from_be_bytes(
                bytes
                    .get(p..p + 4)
                    .ok_or_else(|| layout(format!("truncated in tuple {row}")))?
                    .try_into()
                    .unwrap_or_default(),
            );
            p += 4;
            if len < 0 {
                c.push(None);
            } else {
                let v = bytes
                    .get(p..p + len as usize)
                    .ok_or_else(|| layout(format!("truncated in tuple {row}")))?;
                c.push(Some(v));
                p += len as usize;
            }
        }
        if cols[0].len() == BATCH_ROWS {
            batches.push(take_batch(
                &mut cols,
                schema,
                display,
                first_row,
                binary_column,
            )?);
            first_row = row + 1;
        }
    }
    if p != bytes.len() {
        return Err(layout(format!(
            "{} bytes after the trailer",
            bytes.len() - p
        )));
    }
    if cols.first().is_some_and(|c| c.len() > 0) {
        batches.push(take_batch(
            &mut cols,
            schema,
            display,
            first_row,
            binary_column,
        )?);
    }
    Ok(batches)
}

fn be<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
    v.try_into().ok()
}

/// The text form of a binary numeric (for the decimal parser).
fn numeric_text(v: &[u8]) -> Option<String> {
    let w = |i: usize| -> Option<u16> { Some(u16::from_be_bytes(be(v.get(2 * i..2 * i + 2)?)?)) };
    let (ndigits, weight, sign, dscale) = (w(0)? as i64, w(1)? as i16 as i64, w(2)?, w(3)? as i64);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    // digits × 10000^(weight - i): write the integer and fraction parts.
    let mut int_part = String::new();
    let mut frac_part = String::new();
    for i in 0..ndigits {
        let d = w(4 + i as usize)?;
        if i <= weight {
            int_part.push_str(&format!("{d:04}"));
        } else {
            frac_part.push_str(&format!("{d:04}"));
        }
    }
    for _ in ndigits..=weight {
        int_part.push_str("0000");
    }
    if weight < -1 {
        frac_part.insert_str(0, &"0000".repeat((-1 - weight) as usize));
    }
    while frac_part.len() < dscale as usize {
        frac_part.push('0');
    }
    frac_part.truncate(dscale as usize);
    let int_part = int_part.trim_start_matches('0');
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    s.push_str(if int_part.is_empty() { "0" } else { int_part });
    if !frac_part.is_empty() {
        s.push('.');
        s.push_str(&frac_part);
    }
    Some(s)
}

/// Converts binary payloads to the text forms the CSV parsers read, then
/// builds the column with them: one set of value parsers for every reader.
fn binary_to_text(field: &Field, v: &[u8]) -> Option<Vec<u8>> {
    use ferry_connectors::pg::codec::time::{
        PgTimestamp, date_from_unix_days, push_interval, push_pg_date, push_time, push_timestamp,
    };
    let mut out = Vec::new();
    match field.data_type() {
        DataType::Boolean => out.push(if *v.first()? != 0 { b't' } else { b'f' }),
        DataType::Int16 => out.extend_from_slice(i16::from_be_bytes(be(v)?).to_string().as_bytes()),
        DataType::Int32 => out.extend_from_slice(i32::from_be_bytes(be(v)?).to_string().as_bytes()),
        DataType::Int64 => out.extend_from_slice(i64::from_be_bytes(be(v)?).to_string().as_bytes()),
        DataType::Float32 => {
            ferry_connectors::pg::codec::text::push_f32(&mut out, f32::from_be_bytes(be(v)?))
        }
        DataType::Float64 => {
            ferry_connectors::pg::codec::text::push_f64(&mut out, f64::from_be_bytes(be(v)?))
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => {
            out.extend_from_slice(numeric_text(v)?.as_bytes())
        }
        DataType::Utf8 => {
            let jsonb = field
                .metadata()
                .get(ferry_connectors::pg::codec::types::EXTENSION_NAME)
                .is_some_and(|e| e == "arrow.json");
            let text = if jsonb { v.strip_prefix(&[1u8])? } else { v };
            std::str::from_utf8(text).ok()?;
            out.extend_from_slice(text);
        }
        DataType::Binary => {
            out.extend_from_slice(b"\\x");
            for b in v {
                out.extend_from_slice(format!("{b:02x}").as_bytes());
            }
        }
        DataType::FixedSizeBinary(16) => {
            ferry_connectors::pg::codec::values::push_uuid(&mut out, v.get(..16)?)
        }
        DataType::Date32 => {
            let d = i32::from_be_bytes(be(v)?);
            let date = match d {
                i32::MAX | i32::MIN => date_from_unix_days(d)?,
                d => date_from_unix_days((d as i64 + PG_EPOCH_DAYS) as i32)?,
            };
            push_pg_date(&mut out, date);
        }
        DataType::Time64(TimeUnit::Microsecond) => push_time(&mut out, i64::from_be_bytes(be(v)?)),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let t = match i64::from_be_bytes(be(v)?) {
                i64::MAX => PgTimestamp::Infinity,
                i64::MIN => PgTimestamp::NegInfinity,
                m => PgTimestamp::Micros(m),
            };
            push_timestamp(&mut out, t, tz.is_some());
        }
        DataType::Interval(_) => {
            let micros = i64::from_be_bytes(be(v.get(..8)?)?);
            let days = i32::from_be_bytes(be(v.get(8..12)?)?);
            let months = i32::from_be_bytes(be(v.get(12..16)?)?);
            push_interval(&mut out, months, days, micros);
        }
        _ => return None,
    }
    Some(out)
}

/// Splits a binary array value into its elements' payloads.
fn binary_array_elements(v: &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    let i32_at = |p: usize| -> Option<i32> { Some(i32::from_be_bytes(be(v.get(p..p + 4)?)?)) };
    let ndim = i32_at(0)?;
    if ndim == 0 {
        return Some(Vec::new());
    }
    if ndim != 1 {
        return None;
    }
    let count = i32_at(12)? as usize;
    let mut p = 20;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = i32_at(p)?;
        p += 4;
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(v.get(p..p + len as usize)?.to_vec()));
            p += len as usize;
        }
    }
    (p == v.len()).then_some(out)
}

fn binary_column(
    field: &Field,
    col: &Fields,
    display: &str,
    first_row: u64,
) -> Result<ArrayRef, DecodeError> {
    let mut text = Fields::default();
    if let DataType::List(item) = field.data_type() {
        return list_column(
            field,
            item,
            col,
            display,
            first_row,
            binary_array_elements,
            binary_column,
        );
    }
    for i in 0..col.len() {
        match col.get(i) {
            None => text.push(None),
            Some(v) => {
                let t = binary_to_text(field, v).ok_or_else(|| {
                    bad(
                        display,
                        first_row + i as u64,
                        field,
                        format!(
                            "malformed {} payload of {} bytes",
                            field.data_type(),
                            v.len()
                        ),
                    )
                })?;
                text.push(Some(&t));
            }
        }
    }
    text_column(field, &text, display, first_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals() {
        let e = array_elements(br#"{1,NULL,"a b","x\"y","",null}"#).unwrap();
        let e: Vec<Option<&[u8]>> = e.iter().map(|v| v.as_deref()).collect();
        assert_eq!(
            e,
            vec![
                Some(&b"1"[..]),
                None,
                Some(b"a b"),
                Some(b"x\"y"),
                Some(b""),
                None
            ]
        );
        assert_eq!(array_elements(b"{}").unwrap().len(), 0);
        assert!(array_elements(b"{\"open").is_none());
    }

    #[test]
    fn numeric_text_from_binary() {
        let words = |w: &[u16]| -> Vec<u8> { w.iter().flat_map(|x| x.to_be_bytes()).collect() };
        assert_eq!(
            numeric_text(&words(&[3, 1, 0, 3, 1, 2345, 6780])).unwrap(),
            "12345.678"
        );
        assert_eq!(
            numeric_text(&words(&[1, 0xffff, 0x4000, 4, 1])).unwrap(),
            "-0.0001"
        );
        assert_eq!(numeric_text(&words(&[1, 1, 0, 0, 100])).unwrap(), "1000000");
        assert_eq!(numeric_text(&words(&[0, 0, 0, 2])).unwrap(), "0.00");
        assert_eq!(unescape(b"a\\tb\\\\c\\n\\101"), b"a\tb\\c\nA");
    }
}
