//! What each output format can hold exactly, and how a source column is
//! brought to that form before writing (the documented lossy mapping).
//!
//! The converter writes `canonicalize(batch)`; validation reads the output
//! back and compares it with the same canonical batches, so a mismatch is
//! always a real difference, never a type the format cannot express. The
//! table of mappings is printed by `ferry convert --help` and in the README.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, PrimitiveArray, RecordBatch, StringArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::*;
use ferry_connectors::pg::PgType;
use ferry_connectors::pg::codec::ColumnCodec;
use ferry_connectors::pg::codec::text::{Style, TextColumn, render_column};
use ferry_connectors::pg::codec::types::{EXTENSION_NAME, PG_TYPE_METADATA};

use crate::error::FerryError;

/// Output formats grouped by what they can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// CSV and TSV: text, read back with the canonical schema.
    Text,
    /// NDJSON: JSON values, read back with the canonical schema.
    Json,
    /// Parquet: Arrow's types, as the parquet crate maps them.
    Parquet,
    /// Arrow IPC stream: every Arrow type.
    Ipc,
    /// Arrow IPC file: every Arrow type, but one dictionary per column for the
    /// whole file, so dictionary columns are written as their values.
    IpcFile,
    /// Avro object container files.
    Avro,
    /// The PostgreSQL artifacts (`.sql`, `.pgcopy`): the type mapping's types.
    Postgres,
}

fn is_uuid(f: &Field) -> bool {
    matches!(f.data_type(), DataType::FixedSizeBinary(16))
        && f.metadata().get(EXTENSION_NAME).map(String::as_str) == Some("arrow.uuid")
}

fn nested(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Struct(_)
            | DataType::Map(..)
            | DataType::Union(..)
    )
}

fn us_timestamp(tz: &Option<Arc<str>>) -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, tz.as_ref().map(|_| Arc::from("UTC")))
}

/// Scalar types every text-like family shares (CSV, PostgreSQL, JSON).
fn text_scalar(dt: &DataType) -> DataType {
    use DataType as D;
    match dt {
        D::Int8 | D::UInt8 | D::Int16 => D::Int16,
        D::UInt16 | D::Int32 => D::Int32,
        D::UInt32 | D::Int64 => D::Int64,
        D::UInt64 => D::Decimal128(20, 0),
        D::Float16 | D::Float32 => D::Float32,
        D::Decimal32(p, s) | D::Decimal64(p, s) => D::Decimal128(*p, *s),
        D::Utf8 | D::LargeUtf8 | D::Utf8View => D::Utf8,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => D::Binary,
        D::Date32 | D::Date64 => D::Date32,
        D::Time32(_) | D::Time64(_) => D::Time64(TimeUnit::Microsecond),
        D::Timestamp(_, tz) => us_timestamp(tz),
        D::Duration(_) | D::Interval(_) => D::Interval(IntervalUnit::MonthDayNano),
        D::Null => D::Utf8,
        D::Dictionary(_, v) => text_scalar(v),
        D::RunEndEncoded(_, v) => text_scalar(v.data_type()),
        other => other.clone(),
    }
}

fn json_text_field(name: &str, nullable: bool, jsonb: bool) -> Field {
    let f = Field::new(name, DataType::Utf8, nullable);
    if jsonb {
        f.with_metadata([(EXTENSION_NAME.to_string(), "arrow.json".to_string())].into())
    } else {
        f
    }
}

/// A decimal with a negative scale as the same integers at scale 0, for
/// formats whose decimals cannot have one (Parquet, Avro, JSON readers).
fn non_negative_scale(dt: &DataType) -> Option<DataType> {
    let (p, s) = match dt {
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => (*p, *s),
        _ => return None,
    };
    if s >= 0 {
        return None;
    }
    let p = (p as i16 - s as i16).min(76) as u8;
    Some(if p <= 38 {
        DataType::Decimal128(p, 0)
    } else {
        DataType::Decimal256(p, 0)
    })
}

/// The field a source field becomes in `family`.
pub fn canonical_field(f: &Field, family: Family) -> Field {
    let name = f.name();
    let dt = f.data_type();
    if matches!(family, Family::Parquet | Family::Avro | Family::Json)
        && let Some(d) = non_negative_scale(dt)
    {
        return Field::new(name, d, f.is_nullable());
    }
    let keep =
        |dt: DataType| Field::new(name, dt, f.is_nullable()).with_metadata(f.metadata().clone());
    match family {
        Family::Ipc => f.clone(),
        Family::IpcFile => match dt {
            DataType::Dictionary(_, v) => keep(v.as_ref().clone()),
            _ => f.clone(),
        },
        Family::Text | Family::Postgres if is_uuid(f) => f.clone(),
        Family::Text => {
            if nested(dt) {
                json_text_field(name, f.is_nullable(), false)
            } else {
                Field::new(name, text_scalar(dt), f.is_nullable())
            }
        }
        Family::Postgres => {
            let pinned = f.metadata().contains_key(PG_TYPE_METADATA)
                || f.metadata()
                    .get(EXTENSION_NAME)
                    .is_some_and(|e| e == "arrow.json");
            match dt {
                DataType::List(item)
                | DataType::LargeList(item)
                | DataType::FixedSizeList(item, _)
                    if !nested(item.data_type()) =>
                {
                    let item = canonical_field(item, family);
                    Field::new(name, DataType::List(Arc::new(item)), f.is_nullable())
                }
                _ if nested(dt) => json_text_field(name, f.is_nullable(), true),
                _ if pinned => keep(text_scalar(dt)),
                _ => Field::new(name, text_scalar(dt), f.is_nullable()),
            }
        }
        Family::Json => match dt {
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
                let item = canonical_field(item, family);
                Field::new(name, DataType::List(Arc::new(item)), f.is_nullable())
            }
            DataType::Struct(fields) => {
                let fields: Fields = fields
                    .iter()
                    .map(|c| Arc::new(canonical_field(c, family)))
                    .collect();
                Field::new(name, DataType::Struct(fields), f.is_nullable())
            }
            _ if nested(dt) => json_text_field(name, f.is_nullable(), false),
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => {
                // JSON has no bytes: PostgreSQL's hex text (\x…).
                Field::new(name, DataType::Utf8, f.is_nullable())
            }
            DataType::Duration(_)
            | DataType::Interval(_)
            | DataType::Time32(_)
            | DataType::Time64(_) => Field::new(name, DataType::Utf8, f.is_nullable()),
            _ => Field::new(name, text_scalar(dt), f.is_nullable()),
        },
        Family::Parquet => match dt {
            DataType::Interval(IntervalUnit::MonthDayNano) => {
                Field::new(name, DataType::Utf8, f.is_nullable())
            }
            DataType::Null => Field::new(name, DataType::Utf8, f.is_nullable()),
            DataType::Utf8View => keep(DataType::Utf8),
            DataType::BinaryView => keep(DataType::Binary),
            _ => f.clone(),
        },
        Family::Avro => match dt {
            DataType::Int8 | DataType::UInt8 | DataType::Int16 | DataType::UInt16 => {
                keep(DataType::Int32)
            }
            DataType::UInt32 => keep(DataType::Int64),
            DataType::UInt64 => keep(DataType::Decimal128(20, 0)),
            DataType::Float16 => keep(DataType::Float32),
            DataType::Utf8View | DataType::LargeUtf8 => keep(DataType::Utf8),
            DataType::BinaryView | DataType::LargeBinary => keep(DataType::Binary),
            DataType::Interval(_) | DataType::Duration(_) | DataType::Null => {
                Field::new(name, DataType::Utf8, f.is_nullable())
            }
            DataType::Dictionary(_, v) => canonical_field(
                &Field::new(name, v.as_ref().clone(), f.is_nullable()),
                family,
            ),
            // Avro's logical types: date is days; times and timestamps are ms, µs or ns.
            DataType::Date64 => keep(DataType::Timestamp(TimeUnit::Millisecond, None)),
            DataType::Time32(TimeUnit::Second) => keep(DataType::Time32(TimeUnit::Millisecond)),
            DataType::Time64(TimeUnit::Nanosecond) => keep(DataType::Time64(TimeUnit::Microsecond)),
            DataType::Timestamp(TimeUnit::Second, tz) => {
                keep(DataType::Timestamp(TimeUnit::Millisecond, tz.clone()))
            }
            _ => f.clone(),
        },
    }
}

/// The schema a source schema becomes in `family`.
pub fn canonical_schema(schema: &Schema, family: Family) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| canonical_field(f, family))
            .collect::<Vec<_>>(),
    ))
}

/// One line per column the format changes (its type, or values it cannot
/// hold), for reports and `--help`.
pub fn lossy_notes(source: &Schema, canonical: &Schema, family: Family) -> Vec<String> {
    source
        .fields()
        .iter()
        .zip(canonical.fields())
        .filter_map(|(a, b)| {
            if a.data_type() != b.data_type() {
                Some(format!(
                    "{}: {} -> {}",
                    a.name(),
                    a.data_type(),
                    b.data_type()
                ))
            } else if family == Family::Json
                && matches!(b.data_type(), DataType::Float32 | DataType::Float64)
            {
                Some(format!(
                    "{}: NaN and ±Infinity -> null (JSON has no such numbers)",
                    a.name()
                ))
            } else {
                None
            }
        })
        .collect()
}

fn err(column: &str, e: impl std::fmt::Display) -> FerryError {
    FerryError::Transform {
        path: String::new(),
        detail: format!("column {column:?} cannot be converted for the output format: {e}"),
    }
}

/// Renders any column as text (PostgreSQL's text forms; JSON for nested values).
fn render_text(name: &str, array: &ArrayRef) -> Result<ArrayRef, FerryError> {
    let codec =
        ColumnCodec::plan(name, array.data_type(), &PgType::Text).map_err(|e| err(name, e))?;
    let normalized = codec.normalize(array).map_err(|e| err(name, e))?;
    let mut col = TextColumn::default();
    render_column(&codec, &normalized, Style::Raw, &mut col).map_err(|e| err(name, e))?;
    // The rendered column already is a string array's values and offsets.
    let offsets = std::iter::once(0)
        .chain(col.ends.iter().copied())
        .map(|o| i32::try_from(o).map_err(|_| err(name, "more than 2 GiB of text in one batch")))
        .collect::<Result<Vec<i32>, _>>()?;
    let values = StringArray::try_new(
        arrow::buffer::OffsetBuffer::new(offsets.into()),
        arrow::buffer::Buffer::from_vec(col.data),
        array.logical_nulls(),
    )
    .map_err(|e| err(name, e))?;
    Ok(Arc::new(values))
}

/// Floors any timestamp unit to microseconds, keeping the ±infinity sentinels.
fn timestamp_to_micros(
    name: &str,
    array: &ArrayRef,
    to: &DataType,
) -> Result<ArrayRef, FerryError> {
    let DataType::Timestamp(unit, _) = array.data_type() else {
        return Err(err(name, "not a timestamp"));
    };
    let raw: PrimitiveArray<Int64Type> =
        cast_with_options(array, &DataType::Int64, &CastOptions::default())
            .map_err(|e| err(name, e))?
            .as_primitive::<Int64Type>()
            .clone();
    let per = match unit {
        TimeUnit::Second => -1_000_000,
        TimeUnit::Millisecond => -1_000,
        TimeUnit::Microsecond => 1,
        TimeUnit::Nanosecond => 1_000,
    };
    let micros = raw.try_unary::<_, Int64Type, _>(|v| match v {
        i64::MAX | i64::MIN => Ok(v),
        _ if per < 0 => v
            .checked_mul(-per)
            .ok_or_else(|| err(name, format!("{v} is out of range in microseconds"))),
        _ => Ok(v.div_euclid(per)),
    })?;
    cast_with_options(&(Arc::new(micros) as ArrayRef), to, &CastOptions::default())
        .map_err(|e| err(name, e))
}

/// Floors an interval's nanoseconds to microseconds (what text forms carry).
fn interval_to_micros(name: &str, array: &ArrayRef) -> Result<ArrayRef, FerryError> {
    let mdn = cast_with_options(
        array,
        &DataType::Interval(IntervalUnit::MonthDayNano),
        &CastOptions::default(),
    )
    .map_err(|e| err(name, e))?;
    let floored = mdn
        .as_primitive::<IntervalMonthDayNanoType>()
        .unary::<_, IntervalMonthDayNanoType>(|v| {
            IntervalMonthDayNano::new(v.months, v.days, v.nanoseconds.div_euclid(1_000) * 1_000)
        });
    Ok(Arc::new(floored))
}

/// Replaces NaN and infinities by NULL (JSON has no such numbers).
fn finite_only(array: &ArrayRef) -> ArrayRef {
    fn go<T: ArrowPrimitiveType>(
        a: &PrimitiveArray<T>,
        finite: impl Fn(T::Native) -> bool,
    ) -> ArrayRef {
        Arc::new(
            a.iter()
                .map(|v| v.filter(|x| finite(*x)))
                .collect::<PrimitiveArray<T>>(),
        )
    }
    match array.data_type() {
        DataType::Float32 => go(array.as_primitive::<Float32Type>(), |x: f32| x.is_finite()),
        DataType::Float64 => go(array.as_primitive::<Float64Type>(), |x: f64| x.is_finite()),
        _ => array.clone(),
    }
}

/// Converts one column to its canonical field.
fn convert(
    name: &str,
    array: &ArrayRef,
    to: &Field,
    family: Family,
) -> Result<ArrayRef, FerryError> {
    let from = array.data_type();
    let target = to.data_type();
    if let (
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..),
        DataType::List(item),
    ) = (from, target)
    {
        let (values, offsets) = ferry_connectors::pg::codec::text::list_parts(array.as_ref());
        let values = convert(name, &values, item, family)?;
        let offsets: Vec<i32> = offsets.iter().map(|&o| o as i32).collect();
        let list = ListArray::try_new(
            item.clone(),
            arrow::buffer::OffsetBuffer::new(offsets.into()),
            values,
            array.logical_nulls(),
        )
        .map_err(|e| err(name, e))?;
        return Ok(Arc::new(list));
    }
    if let (DataType::Struct(from_fields), DataType::Struct(to_fields)) = (from, target)
        && from_fields != to_fields
    {
        let s = array.as_struct();
        let columns = to_fields
            .iter()
            .zip(s.columns())
            .map(|(f, c)| convert(name, c, f, family))
            .collect::<Result<Vec<_>, _>>()?;
        let out =
            arrow::array::StructArray::try_new(to_fields.clone(), columns, s.nulls().cloned())
                .map_err(|e| err(name, e))?;
        return Ok(Arc::new(out));
    }
    let converted = match (from, target) {
        (a, b) if a == b => array.clone(),
        (_, DataType::Utf8)
            if !matches!(
                from,
                DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(..)
            ) =>
        {
            render_text(name, array)?
        }
        (DataType::Timestamp(..), DataType::Timestamp(TimeUnit::Microsecond, _)) => {
            timestamp_to_micros(name, array, target)?
        }
        (
            DataType::Duration(_) | DataType::Interval(_),
            DataType::Interval(IntervalUnit::MonthDayNano),
        ) => interval_to_micros(name, array)?,
        (DataType::Date64, DataType::Date32) => {
            let ms = array.as_primitive::<Date64Type>();
            Arc::new(ms.unary::<_, Date32Type>(|v| v.div_euclid(86_400_000) as i32))
        }
        _ => cast_with_options(
            array,
            target,
            &CastOptions {
                safe: false,
                ..Default::default()
            },
        )
        .map_err(|e| err(name, e))?,
    };
    Ok(match family {
        Family::Json => finite_only(&converted),
        _ => converted,
    })
}

/// Brings a batch to the canonical schema of its family.
pub fn canonicalize(
    batch: &RecordBatch,
    canonical: &SchemaRef,
    family: Family,
) -> Result<RecordBatch, FerryError> {
    let columns = batch
        .columns()
        .iter()
        .zip(canonical.fields())
        .map(|(a, f)| convert(f.name(), a, f, family))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        canonical.clone(),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| FerryError::Internal(format!("canonical batch: {e}")))
}

/// Representation-only normalisation before comparing or hashing: string,
/// binary and list layouts and dictionaries are the same values whatever their
/// encoding, and readers choose layouts freely (DataFusion reads Parquet
/// strings as views).
pub fn comparable_type(dt: &DataType) -> DataType {
    use DataType as D;
    let field = |f: &FieldRef| {
        Arc::new(Field::new(
            f.name(),
            comparable_type(f.data_type()),
            f.is_nullable(),
        ))
    };
    match dt {
        D::Utf8View | D::LargeUtf8 => D::Utf8,
        D::BinaryView | D::LargeBinary => D::Binary,
        // A zoned timestamp is an instant: "+00:00" and "UTC" name the same one.
        D::Timestamp(unit, Some(_)) => D::Timestamp(*unit, Some("UTC".into())),
        D::Dictionary(_, v) => comparable_type(v),
        D::RunEndEncoded(_, v) => comparable_type(v.data_type()),
        D::List(f) | D::LargeList(f) | D::ListView(f) | D::LargeListView(f) => D::List(field(f)),
        D::FixedSizeList(f, n) => D::FixedSizeList(field(f), *n),
        D::Struct(fields) => D::Struct(fields.iter().map(field).collect()),
        // Map entry names differ between writers ("keys"/"key"): values matter, not names.
        D::Map(entries, sorted) => match entries.data_type() {
            D::Struct(kv) if kv.len() == 2 => {
                let key = Field::new("key", comparable_type(kv[0].data_type()), false);
                let value = Field::new(
                    "value",
                    comparable_type(kv[1].data_type()),
                    kv[1].is_nullable(),
                );
                D::Map(
                    Arc::new(Field::new(
                        "entries",
                        D::Struct(vec![key, value].into()),
                        false,
                    )),
                    *sorted,
                )
            }
            _ => D::Map(field(entries), *sorted),
        },
        other => other.clone(),
    }
}

/// Casts an array to its comparable type.
pub fn comparable(array: &ArrayRef) -> Result<ArrayRef, FerryError> {
    let to = comparable_type(array.data_type());
    if &to == array.data_type() {
        return Ok(array.clone());
    }
    cast_with_options(array, &to, &CastOptions::default())
        .map_err(|e| FerryError::Internal(format!("normalising for comparison: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType as D;

    fn ts(unit: TimeUnit, tz: Option<&str>) -> D {
        D::Timestamp(unit, tz.map(Arc::from))
    }

    /// Each source type's canonical type in each family, written down from
    /// the formats' rules (README, "What each format holds"), not computed:
    /// Text, Json, Parquet, Ipc, IpcFile, Avro, Postgres.
    #[test]
    fn each_type_maps_as_each_format_documents() {
        use Family::*;
        let families = [Text, Json, Parquet, Ipc, IpcFile, Avro, Postgres];
        let dict = D::Dictionary(Box::new(D::Int32), Box::new(D::Utf8));
        let list = D::List(Arc::new(Field::new("item", D::Int32, true)));
        let strukt = D::Struct(vec![Field::new("a", D::Int32, true)].into());
        let mdn = D::Interval(IntervalUnit::MonthDayNano);
        let us = TimeUnit::Microsecond;
        let cases: Vec<(D, [D; 7])> = vec![
            (
                D::Int8,
                [
                    D::Int16,
                    D::Int16,
                    D::Int8,
                    D::Int8,
                    D::Int8,
                    D::Int32,
                    D::Int16,
                ],
            ),
            (
                D::UInt16,
                [
                    D::Int32,
                    D::Int32,
                    D::UInt16,
                    D::UInt16,
                    D::UInt16,
                    D::Int32,
                    D::Int32,
                ],
            ),
            (
                D::UInt32,
                [
                    D::Int64,
                    D::Int64,
                    D::UInt32,
                    D::UInt32,
                    D::UInt32,
                    D::Int64,
                    D::Int64,
                ],
            ),
            (
                D::UInt64,
                [
                    D::Decimal128(20, 0),
                    D::Decimal128(20, 0),
                    D::UInt64,
                    D::UInt64,
                    D::UInt64,
                    D::Decimal128(20, 0),
                    D::Decimal128(20, 0),
                ],
            ),
            (
                D::Float16,
                [
                    D::Float32,
                    D::Float32,
                    D::Float16,
                    D::Float16,
                    D::Float16,
                    D::Float32,
                    D::Float32,
                ],
            ),
            (
                D::Float64,
                [
                    D::Float64,
                    D::Float64,
                    D::Float64,
                    D::Float64,
                    D::Float64,
                    D::Float64,
                    D::Float64,
                ],
            ),
            (
                D::Decimal128(5, -2),
                [
                    D::Decimal128(5, -2),
                    D::Decimal128(7, 0),
                    D::Decimal128(7, 0),
                    D::Decimal128(5, -2),
                    D::Decimal128(5, -2),
                    D::Decimal128(7, 0),
                    D::Decimal128(5, -2),
                ],
            ),
            (
                D::Utf8View,
                [
                    D::Utf8,
                    D::Utf8,
                    D::Utf8,
                    D::Utf8View,
                    D::Utf8View,
                    D::Utf8,
                    D::Utf8,
                ],
            ),
            (
                D::LargeBinary,
                [
                    D::Binary,
                    D::Utf8,
                    D::LargeBinary,
                    D::LargeBinary,
                    D::LargeBinary,
                    D::Binary,
                    D::Binary,
                ],
            ),
            (
                D::Date64,
                [
                    D::Date32,
                    D::Date32,
                    D::Date64,
                    D::Date64,
                    D::Date64,
                    ts(TimeUnit::Millisecond, None),
                    D::Date32,
                ],
            ),
            (
                D::Time32(TimeUnit::Second),
                [
                    D::Time64(us),
                    D::Utf8,
                    D::Time32(TimeUnit::Second),
                    D::Time32(TimeUnit::Second),
                    D::Time32(TimeUnit::Second),
                    D::Time32(TimeUnit::Millisecond),
                    D::Time64(us),
                ],
            ),
            (
                ts(TimeUnit::Nanosecond, None),
                [
                    ts(us, None),
                    ts(us, None),
                    ts(TimeUnit::Nanosecond, None),
                    ts(TimeUnit::Nanosecond, None),
                    ts(TimeUnit::Nanosecond, None),
                    ts(TimeUnit::Nanosecond, None),
                    ts(us, None),
                ],
            ),
            (
                ts(TimeUnit::Millisecond, Some("+05:30")),
                [
                    ts(us, Some("UTC")),
                    ts(us, Some("UTC")),
                    ts(TimeUnit::Millisecond, Some("+05:30")),
                    ts(TimeUnit::Millisecond, Some("+05:30")),
                    ts(TimeUnit::Millisecond, Some("+05:30")),
                    ts(TimeUnit::Millisecond, Some("+05:30")),
                    ts(us, Some("UTC")),
                ],
            ),
            (
                D::Duration(TimeUnit::Second),
                [
                    mdn.clone(),
                    D::Utf8,
                    D::Duration(TimeUnit::Second),
                    D::Duration(TimeUnit::Second),
                    D::Duration(TimeUnit::Second),
                    D::Utf8,
                    mdn.clone(),
                ],
            ),
            (
                mdn.clone(),
                [
                    mdn.clone(),
                    D::Utf8,
                    D::Utf8,
                    mdn.clone(),
                    mdn.clone(),
                    D::Utf8,
                    mdn.clone(),
                ],
            ),
            (
                D::Null,
                [
                    D::Utf8,
                    D::Utf8,
                    D::Utf8,
                    D::Null,
                    D::Null,
                    D::Utf8,
                    D::Utf8,
                ],
            ),
            (
                dict.clone(),
                [
                    D::Utf8,
                    D::Utf8,
                    dict.clone(),
                    dict.clone(),
                    D::Utf8,
                    D::Utf8,
                    D::Utf8,
                ],
            ),
            (
                list.clone(),
                [
                    D::Utf8,
                    list.clone(),
                    list.clone(),
                    list.clone(),
                    list.clone(),
                    list.clone(),
                    list.clone(),
                ],
            ),
            (
                strukt.clone(),
                [
                    D::Utf8,
                    strukt.clone(),
                    strukt.clone(),
                    strukt.clone(),
                    strukt.clone(),
                    strukt.clone(),
                    D::Utf8,
                ],
            ),
        ];
        let mut wrong = Vec::new();
        for (source, expected) in cases {
            for (family, want) in families.iter().zip(expected) {
                let got = canonical_field(&Field::new("c", source.clone(), true), *family);
                if *got.data_type() != want {
                    wrong.push(format!(
                        "{source} in {family:?}: {} (expected {want})",
                        got.data_type()
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
