//! Typed, zero-copy views of normalised Arrow columns, yielding each value in
//! PostgreSQL's terms (days since 2000, microseconds, base-10 digits…).
//!
//! The binary encoder and the text renderer both read values through
//! [`Column`], so a value's meaning is decided in exactly one place.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryViewArray, BooleanArray, FixedSizeBinaryArray,
    GenericBinaryArray, GenericStringArray, PrimitiveArray, StringViewArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::*;

use super::numeric::{Decimal, NumericValue};
use super::time::{MICROS_PER_DAY, PgDate, PgTimestamp, date_from_unix_days, timestamp_from_unix};
use super::types::PgType;
use super::{ColumnCodec, EncodeError, Kind};

/// A string column of any Arrow string layout.
#[derive(Clone, Copy)]
pub enum Strs<'a> {
    /// `Utf8`
    Small(&'a GenericStringArray<i32>),
    /// `LargeUtf8`
    Large(&'a GenericStringArray<i64>),
    /// `Utf8View`
    View(&'a StringViewArray),
}

impl<'a> Strs<'a> {
    fn of(array: &'a dyn Array) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Utf8 => Strs::Small(array.as_string::<i32>()),
            DataType::LargeUtf8 => Strs::Large(array.as_string::<i64>()),
            DataType::Utf8View => Strs::View(array.as_string_view()),
            _ => return None,
        })
    }
    /// The string at `i` (unspecified for a null slot).
    #[inline]
    pub fn get(&self, i: usize) -> &'a str {
        match self {
            Strs::Small(a) => a.value(i),
            Strs::Large(a) => a.value(i),
            Strs::View(a) => a.value(i),
        }
    }
}

/// A byte-string column of any Arrow binary layout.
#[derive(Clone, Copy)]
pub enum Bins<'a> {
    /// `Binary`
    Small(&'a GenericBinaryArray<i32>),
    /// `LargeBinary`
    Large(&'a GenericBinaryArray<i64>),
    /// `BinaryView`
    View(&'a BinaryViewArray),
    /// `FixedSizeBinary(n)`
    Fixed(&'a FixedSizeBinaryArray),
    /// Strings, as their UTF-8 bytes.
    Str(Strs<'a>),
}

impl<'a> Bins<'a> {
    fn of(array: &'a dyn Array) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Binary => Bins::Small(array.as_binary::<i32>()),
            DataType::LargeBinary => Bins::Large(array.as_binary::<i64>()),
            DataType::BinaryView => Bins::View(array.as_binary_view()),
            DataType::FixedSizeBinary(_) => Bins::Fixed(array.as_fixed_size_binary()),
            _ => Bins::Str(Strs::of(array)?),
        })
    }
    /// The bytes at `i` (unspecified for a null slot).
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        match self {
            Bins::Small(a) => a.value(i),
            Bins::Large(a) => a.value(i),
            Bins::View(a) => a.value(i),
            Bins::Fixed(a) => a.value(i),
            Bins::Str(s) => s.get(i).as_bytes(),
        }
    }
}

/// Where a numeric column's values come from.
#[derive(Clone, Copy)]
pub enum Numbers<'a> {
    /// Signed integers, widened.
    I64(&'a dyn Array),
    /// `UInt64` (may exceed `i64`).
    U64(&'a PrimitiveArray<UInt64Type>),
    /// `Float16/32` (formatted by their own shortest form).
    F32(&'a dyn Array),
    /// `Float64`
    F64(&'a PrimitiveArray<Float64Type>),
    /// `Decimal32/64/128` with scale.
    Dec(&'a dyn Array, i32),
    /// `Decimal256` with scale.
    Dec256(&'a PrimitiveArray<Decimal256Type>, i32),
}

/// A timestamp column's layout.
#[derive(Clone, Copy)]
pub enum Instants<'a> {
    /// Timestamp values in units of `1/units_per_second` s since 1970.
    Ts(&'a [i64], i64),
    /// `Date32`: days since 1970.
    Days(&'a [i32]),
    /// `Date64`: milliseconds since 1970.
    Millis(&'a [i64]),
}

/// A normalised column: the view each encoder reads.
pub enum Column<'a> {
    /// All NULL.
    Null(usize),
    /// `boolean`
    Bool(&'a BooleanArray),
    /// `smallint`
    I16(&'a [i16]),
    /// `integer`
    I32(&'a [i32]),
    /// `bigint`
    I64(&'a [i64]),
    /// `real`
    F32(&'a [f32]),
    /// `double precision`
    F64(&'a [f64]),
    /// `numeric`, with the target's (precision, scale) to check against.
    Numeric(Numbers<'a>, Option<(u32, i32)>),
    /// Text-like targets from strings.
    Str(Strs<'a>),
    /// `bytea`
    Bytes(Bins<'a>),
    /// `uuid` from 16 raw bytes.
    Uuid(&'a FixedSizeBinaryArray),
    /// `uuid` from its text form.
    UuidText(Strs<'a>),
    /// `date` from `Date32`.
    Date(&'a [i32]),
    /// `timestamp[tz]`
    Timestamp(Instants<'a>),
    /// `time` from `Time64(µs)`.
    Time(&'a [i64]),
    /// `interval`
    Interval(&'a dyn Array),
    /// Anything rendered through its text form or as JSON (handled by callers).
    Other(&'a dyn Array),
}

fn prim<T: ArrowPrimitiveType>(a: &dyn Array) -> &[T::Native] {
    a.as_primitive::<T>().values()
}

impl<'a> Column<'a> {
    /// Views a normalised array (see [`ColumnCodec::normalize`]).
    pub fn new(codec: &ColumnCodec, array: &'a ArrayRef) -> Column<'a> {
        let a: &'a dyn Array = array.as_ref();
        let dt = a.data_type();
        match &codec.kind {
            Kind::Null => Column::Null(a.len()),
            Kind::Bool => Column::Bool(a.as_boolean()),
            Kind::Int(_) => match dt {
                DataType::Int16 => Column::I16(prim::<Int16Type>(a)),
                DataType::Int32 => Column::I32(prim::<Int32Type>(a)),
                _ => Column::I64(prim::<Int64Type>(a)),
            },
            Kind::Float4 => Column::F32(prim::<Float32Type>(a)),
            Kind::Float8 => Column::F64(prim::<Float64Type>(a)),
            Kind::Numeric => {
                let typmod = match codec.pg {
                    PgType::Numeric(t) => t,
                    _ => None,
                };
                let n = match dt {
                    DataType::UInt64 => Numbers::U64(a.as_primitive()),
                    DataType::Float16 | DataType::Float32 => Numbers::F32(a),
                    DataType::Float64 => Numbers::F64(a.as_primitive()),
                    DataType::Decimal32(_, s)
                    | DataType::Decimal64(_, s)
                    | DataType::Decimal128(_, s) => Numbers::Dec(a, *s as i32),
                    DataType::Decimal256(_, s) => Numbers::Dec256(a.as_primitive(), *s as i32),
                    _ => Numbers::I64(a),
                };
                Column::Numeric(n, typmod)
            }
            Kind::Str | Kind::JsonbStr => Column::Str(Strs::of(a).expect("planned as string")),
            Kind::Bytes => Column::Bytes(Bins::of(a).expect("planned as binary")),
            Kind::Uuid => Column::Uuid(a.as_fixed_size_binary()),
            Kind::UuidText => Column::UuidText(Strs::of(a).expect("planned as string")),
            Kind::Date => Column::Date(prim::<Date32Type>(a)),
            Kind::Timestamp => Column::Timestamp(match dt {
                DataType::Date32 => Instants::Days(prim::<Date32Type>(a)),
                DataType::Date64 => Instants::Millis(prim::<Date64Type>(a)),
                DataType::Timestamp(unit, _) => {
                    let raw: &[i64] = match unit {
                        TimeUnit::Second => prim::<TimestampSecondType>(a),
                        TimeUnit::Millisecond => prim::<TimestampMillisecondType>(a),
                        TimeUnit::Microsecond => prim::<TimestampMicrosecondType>(a),
                        TimeUnit::Nanosecond => prim::<TimestampNanosecondType>(a),
                    };
                    Instants::Ts(raw, units_per_second(*unit))
                }
                _ => unreachable!("planned as timestamp"),
            }),
            Kind::Time => Column::Time(prim::<Time64MicrosecondType>(a)),
            Kind::Interval => Column::Interval(a),
            Kind::Render | Kind::Json { .. } | Kind::Array(_) => Column::Other(a),
        }
    }
}

/// Units per second of an Arrow time unit.
pub fn units_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// The nulls of an array, logical (so dictionary and null arrays are right).
pub fn nulls_of(array: &dyn Array) -> Option<NullBuffer> {
    array.logical_nulls().filter(|n| n.null_count() > 0)
}

/// Reads value `i` of a numeric source as a [`NumericValue`].
#[inline]
pub fn numeric_at(n: &Numbers<'_>, i: usize) -> NumericValue {
    match n {
        Numbers::I64(a) => NumericValue::Finite(Decimal::from_i128(int_at(*a, i), 0)),
        Numbers::U64(a) => NumericValue::Finite(Decimal::from_i128(a.value(i) as i128, 0)),
        Numbers::F64(a) => NumericValue::from_f64(a.value(i)),
        Numbers::F32(a) => NumericValue::from_f32(match a.data_type() {
            DataType::Float16 => a.as_primitive::<Float16Type>().value(i).to_f32(),
            _ => a.as_primitive::<Float32Type>().value(i),
        }),
        Numbers::Dec(a, s) => NumericValue::Finite(Decimal::from_i128(decimal_at(*a, i), *s)),
        Numbers::Dec256(a, s) => {
            let mut buf = StackStr::<96>::new();
            use std::fmt::Write;
            let _ = write!(buf, "{}", a.value(i));
            NumericValue::Finite(
                Decimal::from_int_str(buf.as_str(), *s).unwrap_or_else(|| unreachable!()),
            )
        }
    }
}

fn int_at(a: &dyn Array, i: usize) -> i128 {
    match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i) as i128,
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i) as i128,
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i) as i128,
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i) as i128,
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i) as i128,
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i) as i128,
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i) as i128,
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i) as i128,
        _ => 0,
    }
}

fn decimal_at(a: &dyn Array, i: usize) -> i128 {
    match a.data_type() {
        DataType::Decimal32(..) => a.as_primitive::<Decimal32Type>().value(i) as i128,
        DataType::Decimal64(..) => a.as_primitive::<Decimal64Type>().value(i) as i128,
        _ => a.as_primitive::<Decimal128Type>().value(i),
    }
}

/// Checks a numeric value against the target's `numeric(p, s)`.
pub fn check_numeric(v: &NumericValue, typmod: Option<(u32, i32)>) -> Result<(), String> {
    match typmod {
        Some((p, s)) if !v.fits(p, s) => Err(format!(
            "numeric field overflow: numeric({p},{s}) holds values below 10^{}; widen the column or round in transform.sql",
            p as i32 - s
        )),
        _ => Ok(()),
    }
}

/// Reads a date, checking PostgreSQL's range.
#[inline]
pub fn date_at(days: &[i32], i: usize) -> Result<PgDate, String> {
    date_from_unix_days(days[i]).ok_or_else(|| {
        "date out of PostgreSQL's range (4714-11-24 BC to 5874897-12-31)".to_string()
    })
}

/// Reads a timestamp, checking PostgreSQL's range.
#[inline]
pub fn timestamp_at(t: &Instants<'_>, i: usize) -> Result<PgTimestamp, String> {
    let v = match t {
        Instants::Ts(v, units) => timestamp_from_unix(v[i], *units),
        Instants::Days(d) => match d[i] {
            i32::MAX => Some(PgTimestamp::Infinity),
            i32::MIN => Some(PgTimestamp::NegInfinity),
            d => timestamp_from_unix(d as i64 * 86_400, 1),
        },
        Instants::Millis(m) => timestamp_from_unix(m[i], 1_000),
    };
    v.ok_or_else(|| {
        "timestamp out of PostgreSQL's range (4714-11-24 BC to 294276-12-31)".to_string()
    })
}

/// Reads an interval as (months, days, microseconds); sub-microsecond parts are
/// floored, as PostgreSQL keeps microseconds.
pub fn interval_at(a: &dyn Array, i: usize) -> Result<(i32, i32, i64), String> {
    let overflow = || "interval out of range for PostgreSQL".to_string();
    Ok(match a.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => {
            (a.as_primitive::<IntervalYearMonthType>().value(i), 0, 0)
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = a.as_primitive::<IntervalDayTimeType>().value(i);
            (0, v.days, v.milliseconds as i64 * 1_000)
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = a.as_primitive::<IntervalMonthDayNanoType>().value(i);
            (v.months, v.days, v.nanoseconds.div_euclid(1_000))
        }
        DataType::Duration(unit) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<DurationSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<DurationMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<DurationMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<DurationNanosecondType>().value(i),
            };
            let micros = match unit {
                TimeUnit::Second => v.checked_mul(1_000_000).ok_or_else(overflow)?,
                TimeUnit::Millisecond => v.checked_mul(1_000).ok_or_else(overflow)?,
                TimeUnit::Microsecond => v,
                TimeUnit::Nanosecond => v.div_euclid(1_000),
            };
            (0, 0, micros)
        }
        _ => return Err(overflow()),
    })
}

/// Parses a UUID in its canonical text form (hyphens optional, braces allowed),
/// as PostgreSQL's `uuid_in` accepts.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(s);
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut hi: Option<u8> = None;
    for (pos, b) in s.bytes().enumerate() {
        if b == b'-' {
            // Hyphens may only follow a complete group of four hex digits.
            if hi.is_some() || pos == 0 || n % 2 != 0 {
                return None;
            }
            continue;
        }
        let v = (b as char).to_digit(16)? as u8;
        match hi.take() {
            None => hi = Some(v),
            Some(h) => {
                if n == 16 {
                    return None;
                }
                out[n] = h << 4 | v;
                n += 1;
            }
        }
    }
    (n == 16 && hi.is_none()).then_some(out)
}

/// Appends a UUID's canonical text form.
pub fn push_uuid(out: &mut Vec<u8>, u: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// Microseconds since midnight, checked to PostgreSQL's `time` range.
#[inline]
pub fn time_at(v: &[i64], i: usize) -> Result<i64, String> {
    let t = v[i];
    if (0..=MICROS_PER_DAY).contains(&t) {
        Ok(t)
    } else {
        Err("time of day out of range (00:00:00 to 24:00:00)".to_string())
    }
}

/// Checks a text column for NUL bytes, which PostgreSQL text cannot hold.
pub fn check_no_nul(codec: &ColumnCodec, array: &ArrayRef, s: Strs<'_>) -> Result<(), EncodeError> {
    let has_nul = match s {
        Strs::Small(a) => memchr_nul(a.values()),
        Strs::Large(a) => memchr_nul(a.values()),
        Strs::View(_) => true, // checked per value below
    };
    if !has_nul {
        return Ok(());
    }
    for i in 0..array.len() {
        if array.is_valid(i) && s.get(i).as_bytes().contains(&0) {
            return Err(codec.error(
                array.as_ref(),
                i,
                "text contains a NUL byte (0x00), which PostgreSQL cannot store; remove it in transform.sql (e.g. replace(col, chr(0), ''))",
            ));
        }
    }
    Ok(())
}

fn memchr_nul(bytes: &[u8]) -> bool {
    bytes.contains(&0)
}

/// A fixed-capacity string on the stack, for formatting without allocation.
pub struct StackStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackStr<N> {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }
    /// The text written so far.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Default for StackStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Write for StackStr<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > N {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text() {
        let u = parse_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        let mut s = Vec::new();
        push_uuid(&mut s, &u);
        assert_eq!(s, b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        assert_eq!(parse_uuid("{a0eebc999c0b4ef8bb6d6bb9bd380a11}"), Some(u));
        for bad in [
            "",
            "a0eebc99",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11ff",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "-a0eebc999c0b4ef8bb6d6bb9bd380a11",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }
}
