//! Arrow → PostgreSQL binary COPY (`PGCOPY`), column by column.
//!
//! For each batch the encoder first learns every field's size (fixed types
//! from their width, strings from their offsets, composite values from a
//! per-column render), then sizes the output once and lets each column write
//! its fields straight into their final positions. No value allocates; the
//! only per-batch buffers are the size/position vectors and composite renders.

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::buffer::NullBuffer;

use super::numeric::UnscaledWriter;
use super::text::{Style, TextColumn, list_parts, rebase_to_list, render_column};
use super::types::PgType;
use super::values::{
    Bins, Column, Numbers, Strs, check_no_nul, check_numeric, date_at, interval_at, nulls_of,
    numeric_at, parse_uuid, time_at, timestamp_at,
};
use super::{Codecs, ColumnCodec, EncodeError, Kind, PlanError};

/// The 19-byte header every binary COPY stream and `.pgcopy` file starts with:
/// signature, flags (no OIDs), header extension length.
pub const PGCOPY_HEADER: [u8; 19] = *b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer: a field count of -1.
pub const PGCOPY_TRAILER: [u8; 2] = (-1i16).to_be_bytes();

const NULL_LEN: [u8; 4] = (-1i32).to_be_bytes();
/// The `jsonb` binary format version.
const JSONB_VERSION: u8 = 1;

/// Encodes record batches into binary COPY tuples for a fixed list of target
/// columns. Cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct BinaryEncoder {
    codecs: Codecs,
}

/// One column's fields for one batch, ready to be written.
enum Payload<'a> {
    /// Every field is NULL.
    Null,
    /// Fixed-width big-endian values, `width` bytes per row.
    Fixed {
        width: usize,
        bytes: Vec<u8>,
        nulls: Option<NullBuffer>,
    },
    /// Variable-length values borrowed from an Arrow buffer.
    Var {
        data: &'a [u8],
        offsets: Offsets<'a>,
        prefix: Option<u8>,
        nulls: Option<NullBuffer>,
    },
    /// Variable-length values rendered for this batch.
    Owned {
        data: Vec<u8>,
        ends: Vec<usize>,
        prefix: Option<u8>,
        nulls: Option<NullBuffer>,
    },
}

enum Offsets<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
}

impl Offsets<'_> {
    #[inline]
    fn range(&self, i: usize) -> (usize, usize) {
        match self {
            Offsets::I32(o) => (o[i] as usize, o[i + 1] as usize),
            Offsets::I64(o) => (o[i] as usize, o[i + 1] as usize),
        }
    }
}

impl Payload<'_> {
    fn nulls(&self) -> Option<&NullBuffer> {
        match self {
            Payload::Null => None,
            Payload::Fixed { nulls, .. }
            | Payload::Var { nulls, .. }
            | Payload::Owned { nulls, .. } => nulls.as_ref(),
        }
    }

    #[inline]
    fn is_null(&self, i: usize) -> bool {
        matches!(self, Payload::Null) || self.nulls().is_some_and(|n| n.is_null(i))
    }

    /// The payload bytes of row `i` (without the prefix byte), if not null.
    #[inline]
    fn bytes(&self, i: usize) -> &[u8] {
        match self {
            Payload::Null => &[],
            Payload::Fixed { width, bytes, .. } => &bytes[i * width..(i + 1) * width],
            Payload::Var { data, offsets, .. } => {
                let (s, e) = offsets.range(i);
                &data[s..e]
            }
            Payload::Owned { data, ends, .. } => {
                let s = if i == 0 { 0 } else { ends[i - 1] };
                &data[s..ends[i]]
            }
        }
    }

    fn prefix(&self) -> Option<u8> {
        match self {
            Payload::Var { prefix, .. } | Payload::Owned { prefix, .. } => *prefix,
            _ => None,
        }
    }

    /// Adds each row's field size (length word included) to `sizes`.
    fn add_sizes(&self, sizes: &mut [usize]) {
        match self {
            Payload::Null => sizes.iter_mut().for_each(|s| *s += 4),
            Payload::Fixed {
                width, nulls: None, ..
            } => sizes.iter_mut().for_each(|s| *s += 4 + width),
            // Plain strings and bytes, the common variable-length case,
            // without the per-row dispatch of the general arm.
            Payload::Var {
                offsets: Offsets::I32(o),
                prefix,
                nulls,
                ..
            } => {
                let extra = 4 + prefix.is_some() as usize;
                for (i, (s, w)) in sizes.iter_mut().zip(o.windows(2)).enumerate() {
                    *s += if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                        4
                    } else {
                        extra + (w[1] - w[0]) as usize
                    };
                }
            }
            _ => {
                let extra = 4 + self.prefix().is_some() as usize;
                for (i, s) in sizes.iter_mut().enumerate() {
                    *s += if self.is_null(i) {
                        4
                    } else {
                        extra + self.bytes(i).len()
                    };
                }
            }
        }
    }

    /// Writes each row's field at `pos[row]` and advances it.
    fn write(&self, buf: &mut [u8], pos: &mut [usize]) {
        match self {
            Payload::Fixed {
                width: 1,
                bytes,
                nulls,
            } => write_fixed::<1>(buf, pos, bytes, nulls),
            Payload::Fixed {
                width: 2,
                bytes,
                nulls,
            } => write_fixed::<2>(buf, pos, bytes, nulls),
            Payload::Fixed {
                width: 4,
                bytes,
                nulls,
            } => write_fixed::<4>(buf, pos, bytes, nulls),
            Payload::Fixed {
                width: 8,
                bytes,
                nulls,
            } => write_fixed::<8>(buf, pos, bytes, nulls),
            Payload::Fixed {
                width: 16,
                bytes,
                nulls,
            } => write_fixed::<16>(buf, pos, bytes, nulls),
            Payload::Var {
                data,
                offsets: Offsets::I32(o),
                prefix,
                nulls,
            } => {
                let extra = prefix.is_some() as usize;
                for (i, (p, w)) in pos.iter_mut().zip(o.windows(2)).enumerate() {
                    if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                        buf[*p..*p + 4].copy_from_slice(&NULL_LEN);
                        *p += 4;
                        continue;
                    }
                    let (s, e) = (w[0] as usize, w[1] as usize);
                    let mut at = *p;
                    buf[at..at + 4].copy_from_slice(&((e - s + extra) as i32).to_be_bytes());
                    at += 4;
                    if let Some(b) = prefix {
                        buf[at] = *b;
                        at += 1;
                    }
                    buf[at..at + e - s].copy_from_slice(&data[s..e]);
                    *p = at + e - s;
                }
            }
            _ => {
                let prefix = self.prefix();
                for (i, p) in pos.iter_mut().enumerate() {
                    if self.is_null(i) {
                        buf[*p..*p + 4].copy_from_slice(&NULL_LEN);
                        *p += 4;
                        continue;
                    }
                    let v = self.bytes(i);
                    let len = v.len() + prefix.is_some() as usize;
                    buf[*p..*p + 4].copy_from_slice(&(len as i32).to_be_bytes());
                    *p += 4;
                    if let Some(b) = prefix {
                        buf[*p] = b;
                        *p += 1;
                    }
                    buf[*p..*p + v.len()].copy_from_slice(v);
                    *p += v.len();
                }
            }
        }
    }

    /// Appends row `i`'s field (length word included) to `out`.
    fn push_field(&self, i: usize, out: &mut Vec<u8>) {
        if self.is_null(i) {
            return out.extend_from_slice(&NULL_LEN);
        }
        let v = self.bytes(i);
        let prefix = self.prefix();
        let len = v.len() + prefix.is_some() as usize;
        out.extend_from_slice(&(len as i32).to_be_bytes());
        out.extend(prefix);
        out.extend_from_slice(v);
    }
}

fn write_fixed<const W: usize>(
    buf: &mut [u8],
    pos: &mut [usize],
    bytes: &[u8],
    nulls: &Option<NullBuffer>,
) {
    let len = (W as i32).to_be_bytes();
    for (i, (p, v)) in pos.iter_mut().zip(bytes.chunks_exact(W)).enumerate() {
        if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            buf[*p..*p + 4].copy_from_slice(&NULL_LEN);
            *p += 4;
        } else {
            buf[*p..*p + 4].copy_from_slice(&len);
            buf[*p + 4..*p + 4 + W].copy_from_slice(v);
            *p += 4 + W;
        }
    }
}

/// Collects big-endian bytes of `n` values produced by `f`; `f` is not called
/// for null rows (their slots stay zero).
fn fixed<const W: usize>(
    n: usize,
    nulls: Option<NullBuffer>,
    mut f: impl FnMut(usize) -> Result<[u8; W], EncodeError>,
) -> Result<Payload<'static>, EncodeError> {
    let mut bytes = vec![0u8; n * W];
    for (i, slot) in bytes.chunks_exact_mut(W).enumerate() {
        if nulls.as_ref().is_none_or(|b| b.is_valid(i)) {
            slot.copy_from_slice(&f(i)?);
        }
    }
    Ok(Payload::Fixed {
        width: W,
        bytes,
        nulls,
    })
}

/// Fixed-width values straight from a slice of numbers, no per-row closure.
fn fixed_from<T: Copy, const W: usize>(
    values: &[T],
    nulls: Option<NullBuffer>,
    be: impl Fn(T) -> [u8; W],
) -> Payload<'static> {
    let mut bytes = Vec::with_capacity(values.len() * W);
    for &v in values {
        bytes.extend_from_slice(&be(v));
    }
    Payload::Fixed {
        width: W,
        bytes,
        nulls,
    }
}

fn owned(
    n: usize,
    nulls: Option<NullBuffer>,
    prefix: Option<u8>,
    mut f: impl FnMut(usize, &mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<Payload<'static>, EncodeError> {
    let mut data = Vec::new();
    let mut ends = Vec::with_capacity(n);
    for i in 0..n {
        if nulls.as_ref().is_none_or(|b| b.is_valid(i)) {
            f(i, &mut data)?;
        }
        ends.push(data.len());
    }
    Ok(Payload::Owned {
        data,
        ends,
        prefix,
        nulls,
    })
}

fn strings<'a>(
    s: Strs<'a>,
    n: usize,
    nulls: Option<NullBuffer>,
    prefix: Option<u8>,
) -> Payload<'a> {
    match s {
        Strs::Small(a) => Payload::Var {
            data: a.values().as_slice(),
            offsets: Offsets::I32(a.value_offsets()),
            prefix,
            nulls,
        },
        Strs::Large(a) => Payload::Var {
            data: a.values().as_slice(),
            offsets: Offsets::I64(a.value_offsets()),
            prefix,
            nulls,
        },
        Strs::View(_) => {
            let mut data = Vec::new();
            let mut ends = Vec::with_capacity(n);
            for i in 0..n {
                if nulls.as_ref().is_none_or(|b| b.is_valid(i)) {
                    data.extend_from_slice(s.get(i).as_bytes());
                }
                ends.push(data.len());
            }
            Payload::Owned {
                data,
                ends,
                prefix,
                nulls,
            }
        }
    }
}

/// A numeric source's unscaled integers, viewed once per batch so the fast
/// path reads a slice instead of dispatching on the array type per value.
enum Unscaled<'a> {
    I32(&'a [i32]),
    I64(&'a [i64]),
    I128(&'a [i128]),
}

impl Unscaled<'_> {
    #[inline]
    fn get(&self, i: usize) -> i128 {
        match self {
            Unscaled::I32(v) => v[i] as i128,
            Unscaled::I64(v) => v[i] as i128,
            Unscaled::I128(v) => v[i],
        }
    }
}

/// The integer fast path for a numeric column, when its source is a decimal
/// or a 32/64-bit integer and the target's typmod needs no rounding.
fn unscaled<'a>(
    src: &Numbers<'a>,
    typmod: Option<(u32, i32)>,
) -> Option<(UnscaledWriter, Unscaled<'a>)> {
    use arrow::array::AsArray;
    use arrow::datatypes::{
        DataType, Decimal32Type, Decimal64Type, Decimal128Type, Int32Type, Int64Type,
    };
    let (a, scale) = match src {
        Numbers::Dec(a, s) => (*a, *s),
        Numbers::I64(a) => (*a, 0),
        _ => return None,
    };
    let values = match a.data_type() {
        DataType::Decimal32(..) => Unscaled::I32(a.as_primitive::<Decimal32Type>().values()),
        DataType::Decimal64(..) => Unscaled::I64(a.as_primitive::<Decimal64Type>().values()),
        DataType::Decimal128(..) => Unscaled::I128(a.as_primitive::<Decimal128Type>().values()),
        DataType::Int32 => Unscaled::I32(a.as_primitive::<Int32Type>().values()),
        DataType::Int64 => Unscaled::I64(a.as_primitive::<Int64Type>().values()),
        _ => return None,
    };
    Some((UnscaledWriter::new(scale, typmod)?, values))
}

/// Prepares one normalised column for writing.
fn prepare<'a>(codec: &ColumnCodec, array: &'a ArrayRef) -> Result<Payload<'a>, EncodeError> {
    let n = array.len();
    let nulls = nulls_of(array.as_ref());
    let err = |i: usize, reason: String| codec.error(array.as_ref(), i, reason);
    Ok(match Column::new(codec, array) {
        Column::Null(_) => Payload::Null,
        Column::Bool(a) => fixed::<1>(n, nulls, |i| Ok([a.value(i) as u8]))?,
        Column::I16(v) => fixed_from(v, nulls, i16::to_be_bytes),
        Column::I32(v) => fixed_from(v, nulls, i32::to_be_bytes),
        Column::I64(v) => fixed_from(v, nulls, i64::to_be_bytes),
        Column::F32(v) => fixed_from(v, nulls, f32::to_be_bytes),
        Column::F64(v) => fixed_from(v, nulls, f64::to_be_bytes),
        Column::Numeric(src, typmod) => {
            let fast = unscaled(&src, typmod);
            owned(n, nulls, None, |i, out| {
                if let Some((w, values)) = &fast
                    && w.write(values.get(i), out)
                {
                    return Ok(());
                }
                let v = numeric_at(&src, i);
                check_numeric(&v, typmod).map_err(|r| err(i, r))?;
                v.write_binary(out);
                Ok(())
            })?
        }
        Column::Str(s) => {
            check_no_nul(codec, array, s)?;
            let prefix = (codec.kind == Kind::JsonbStr).then_some(JSONB_VERSION);
            strings(s, n, nulls, prefix)
        }
        Column::Bytes(b) => match b {
            Bins::Small(a) => Payload::Var {
                data: a.values().as_slice(),
                offsets: Offsets::I32(a.value_offsets()),
                prefix: None,
                nulls,
            },
            Bins::Large(a) => Payload::Var {
                data: a.values().as_slice(),
                offsets: Offsets::I64(a.value_offsets()),
                prefix: None,
                nulls,
            },
            Bins::Str(s) => strings(s, n, nulls, None),
            other => owned(n, nulls, None, |i, out| {
                out.extend_from_slice(other.get(i));
                Ok(())
            })?,
        },
        Column::Uuid(a) => fixed::<16>(n, nulls, |i| Ok(a.value(i).try_into().unwrap_or([0; 16])))?,
        Column::UuidText(s) => fixed::<16>(n, nulls, |i| {
            parse_uuid(s.get(i))
                .ok_or_else(|| err(i, "not a UUID (expected 8-4-4-4-12 hex digits)".into()))
        })?,
        Column::Date(d) => fixed::<4>(n, nulls, |i| {
            Ok(date_at(d, i)
                .map_err(|r| err(i, r))?
                .to_binary()
                .to_be_bytes())
        })?,
        Column::Timestamp(t) => fixed::<8>(n, nulls, |i| {
            Ok(timestamp_at(&t, i)
                .map_err(|r| err(i, r))?
                .to_binary()
                .to_be_bytes())
        })?,
        Column::Time(t) => fixed::<8>(n, nulls, |i| {
            Ok(time_at(t, i).map_err(|r| err(i, r))?.to_be_bytes())
        })?,
        Column::Interval(a) => fixed::<16>(n, nulls, |i| {
            let (months, days, micros) = interval_at(a, i).map_err(|r| err(i, r))?;
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&micros.to_be_bytes());
            b[8..12].copy_from_slice(&days.to_be_bytes());
            b[12..].copy_from_slice(&months.to_be_bytes());
            Ok(b)
        })?,
        Column::Other(a) => match &codec.kind {
            Kind::Array(elem) => encode_arrays(codec, elem, a, nulls)?,
            kind => {
                let mut text = TextColumn::default();
                render_column(codec, array, Style::Raw, &mut text)?;
                let prefix = matches!(kind, Kind::Json { jsonb: true }).then_some(JSONB_VERSION);
                Payload::Owned {
                    data: text.data,
                    ends: text.ends,
                    prefix,
                    nulls,
                }
            }
        },
    })
}

/// Binary arrays: ndim, has-null flag, element OID, (length, lower bound), elements.
fn encode_arrays(
    codec: &ColumnCodec,
    elem: &ColumnCodec,
    a: &dyn Array,
    nulls: Option<NullBuffer>,
) -> Result<Payload<'static>, EncodeError> {
    let (values, offsets) = list_parts(a);
    let values = elem
        .normalize(&values)
        .map_err(|e| rebase_to_list(e, codec, a, &offsets))?;
    let elems = prepare(elem, &values).map_err(|e| rebase_to_list(e, codec, a, &offsets))?;
    let oid = elem.pg.oid().unwrap_or(0);
    owned(a.len(), nulls, None, |row, out| {
        let range = offsets[row]..offsets[row + 1];
        let count = range.len();
        let has_null = range.clone().any(|e| elems.is_null(e));
        out.extend_from_slice(&((count > 0) as i32).to_be_bytes());
        out.extend_from_slice(&(has_null as i32).to_be_bytes());
        out.extend_from_slice(&oid.to_be_bytes());
        if count > 0 {
            out.extend_from_slice(&(count as i32).to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
        }
        for e in range {
            elems.push_field(e, out);
        }
        Ok(())
    })
}

impl BinaryEncoder {
    /// An encoder for these column plans, in target column order.
    pub fn new(codecs: Codecs) -> Self {
        Self { codecs }
    }

    /// An encoder for `schema` with each column's default PostgreSQL type
    /// (the type mapping): what a table ferry creates from it would have.
    pub fn for_schema(schema: &arrow::datatypes::Schema) -> Result<Self, PlanError> {
        let codecs = schema
            .fields()
            .iter()
            .map(|f| {
                let pg = PgType::for_field(f).ok_or_else(|| PlanError {
                    column: f.name().clone(),
                    source_type: f.data_type().to_string(),
                    target: "any PostgreSQL type".into(),
                    hint: "; cast it in transform.sql".into(),
                })?;
                ColumnCodec::plan(f.name(), f.data_type(), &pg)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(std::sync::Arc::new(codecs)))
    }

    /// The column plans.
    pub fn codecs(&self) -> &Codecs {
        &self.codecs
    }

    /// Appends one tuple per row of `batch` to `out`. Columns are matched to
    /// plans by position. On error nothing is appended.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let n = batch.num_rows();
        let arrays = self
            .codecs
            .iter()
            .zip(batch.columns())
            .map(|(c, a)| c.normalize(a))
            .collect::<Result<Vec<_>, _>>()?;
        let payloads = self
            .codecs
            .iter()
            .zip(&arrays)
            .map(|(c, a)| prepare(c, a))
            .collect::<Result<Vec<_>, _>>()?;

        // Row sizes, then start positions.
        let mut pos = vec![2usize; n];
        for p in &payloads {
            p.add_sizes(&mut pos);
        }
        let base = out.len();
        let mut at = 0;
        for p in pos.iter_mut() {
            let size = *p;
            *p = at;
            at += size;
        }
        out.resize(base + at, 0);
        let buf = &mut out[base..];
        let ncols = (self.codecs.len() as i16).to_be_bytes();
        for p in pos.iter_mut() {
            buf[*p..*p + 2].copy_from_slice(&ncols);
            *p += 2;
        }
        for p in &payloads {
            p.write(buf, &mut pos);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
