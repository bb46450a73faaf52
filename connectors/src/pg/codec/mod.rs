//! How each Arrow column becomes a PostgreSQL column: the plan chosen once per
//! load from the source type and the **target column's** type (DESIGN.md: an
//! Int64 going into `numeric` is encoded as numeric), and the normalisation of
//! each batch's array into the few Arrow types the encoders know.
//!
//! Both the binary COPY encoder ([`self::binary`]) and the COPY text renderer
//! ([`self::text`]) work from the same [`ColumnCodec`], so the two formats
//! cannot disagree about what a value means.
//!
//! This module is the codec and nothing else: no connection, no file. It
//! turns Arrow arrays into binary COPY (`binary`, `copy`) and COPY text
//! (`text`), with PostgreSQL's type mapping (`types`) and value forms
//! (`numeric`, `time`, `values`), so it can be fuzzed (`fuzz/`), benchmarked
//! (`benchmarks/benches/kernels.rs`) and reused on its own. Connections,
//! artifacts on disk and the loader are the rest of [`crate::pg`].

pub mod binary;
pub mod copy;
pub mod numeric;
pub mod text;
pub mod time;
pub mod types;
pub mod values;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, FieldRef, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use self::types::PgType;

/// A value that cannot be encoded for its target column, named precisely
/// enough for a person to find it: column, row within the encoded stream and
/// the value as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?}, row {row}: {reason} (value: {value})")]
pub struct EncodeError {
    /// Target column name.
    pub column: String,
    /// Zero-based row within the batch being encoded; callers rebase it.
    pub row: usize,
    /// The offending value, rendered as text (truncated when long).
    pub value: String,
    /// What is wrong and, where possible, what to do.
    pub reason: String,
}

/// A source column that cannot go into its target column at all; reported
/// before any row is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?}: cannot load Arrow {source_type} into PostgreSQL {target}{hint}")]
pub struct PlanError {
    /// Column name.
    pub column: String,
    /// The Arrow type produced by the transform.
    pub source_type: String,
    /// The target column's PostgreSQL type.
    pub target: String,
    /// A suggestion, starting with "; ".
    pub hint: String,
}

/// Width of a PostgreSQL integer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntWidth {
    /// `smallint`
    I2,
    /// `integer`
    I4,
    /// `bigint`
    I8,
}

/// The conversion chosen for one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Every value is NULL (Arrow `Null` type).
    Null,
    /// `Boolean` → `boolean`.
    Bool,
    /// Any integer → `smallint`/`integer`/`bigint`, range-checked per value.
    Int(IntWidth),
    /// Integers, floats, decimals → `real`.
    Float4,
    /// Integers, floats, decimals → `double precision`.
    Float8,
    /// Integers, floats, decimals → `numeric`, exactly.
    Numeric,
    /// Strings → `text`, `varchar`, `char`, `json`, enums.
    Str,
    /// Strings → `jsonb` (binary form adds the version byte).
    JsonbStr,
    /// Any scalar → a text-like column through its text form.
    Render,
    /// Structs, maps, lists → `json`/`jsonb` (or text) as JSON text.
    Json {
        /// Whether the target is `jsonb` (version byte in binary).
        jsonb: bool,
    },
    /// Binary types (and strings, as their UTF-8 bytes) → `bytea`.
    Bytes,
    /// `FixedSizeBinary(16)` → `uuid`.
    Uuid,
    /// Strings in 8-4-4-4-12 hex form → `uuid`.
    UuidText,
    /// `Date32`/`Date64` → `date`.
    Date,
    /// Timestamps of any unit (and dates) → `timestamp`/`timestamptz`.
    Timestamp,
    /// `Time32`/`Time64` → `time`.
    Time,
    /// Intervals and durations → `interval`.
    Interval,
    /// Lists → one-dimensional arrays.
    Array(Box<ColumnCodec>),
}

/// The plan for one column: its name, source and target types, and the
/// conversion between them.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnCodec {
    /// Column name (as in the target table).
    pub name: String,
    /// Arrow type of the source column (after the transform).
    pub source: DataType,
    /// PostgreSQL type of the target column.
    pub pg: PgType,
    /// How values are converted.
    pub kind: Kind,
    /// The target column is `NOT NULL`: the receipt's digest then needs no
    /// NULL handling for it (see [`ColumnCodec::not_null`]).
    pub not_null: bool,
}

fn value_type(dt: &DataType) -> &DataType {
    match dt {
        DataType::Dictionary(_, v) => value_type(v),
        DataType::RunEndEncoded(_, v) => value_type(v.data_type()),
        other => other,
    }
}

fn is_int(dt: &DataType) -> bool {
    dt.is_integer()
}
fn is_float(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}
fn is_decimal(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}
fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}
fn is_binary(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}
fn is_nested(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Struct(_)
            | DataType::Map(..)
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
    )
}
fn list_field(dt: &DataType) -> Option<&FieldRef> {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => Some(f),
        _ => None,
    }
}

impl ColumnCodec {
    /// Chooses the conversion from `source` to the target type `pg`, or explains
    /// why there is none (and which SQL cast would make one).
    pub fn plan(name: &str, source: &DataType, pg: &PgType) -> Result<ColumnCodec, PlanError> {
        let src = value_type(source);
        let fail = |hint: &str| PlanError {
            column: name.to_string(),
            source_type: source.to_string(),
            target: pg.to_string(),
            hint: hint.to_string(),
        };
        let numeric_source = is_int(src) || is_float(src) || is_decimal(src);
        let kind = match pg {
            _ if *src == DataType::Null => Kind::Null,
            PgType::Bool if *src == DataType::Boolean => Kind::Bool,
            PgType::Int2 | PgType::Int4 | PgType::Int8 if is_int(src) => Kind::Int(match pg {
                PgType::Int2 => IntWidth::I2,
                PgType::Int4 => IntWidth::I4,
                _ => IntWidth::I8,
            }),
            PgType::Float4 if numeric_source => Kind::Float4,
            PgType::Float8 if numeric_source => Kind::Float8,
            PgType::Numeric(_) if numeric_source => Kind::Numeric,
            PgType::Text
            | PgType::Varchar(_)
            | PgType::Bpchar(_)
            | PgType::Enum(_)
            | PgType::Json
                if is_string(src) =>
            {
                Kind::Str
            }
            PgType::Jsonb if is_string(src) => Kind::JsonbStr,
            PgType::Json | PgType::Jsonb | PgType::Text if is_nested(src) => Kind::Json {
                jsonb: *pg == PgType::Jsonb,
            },
            PgType::Text | PgType::Varchar(_) | PgType::Bpchar(_) if !is_nested(src) => {
                // Any scalar has a canonical text form.
                if matches!(src, DataType::Union(..)) {
                    return Err(fail(""));
                }
                Kind::Render
            }
            PgType::Bytea if is_binary(src) || is_string(src) => Kind::Bytes,
            PgType::Uuid if *src == DataType::FixedSizeBinary(16) => Kind::Uuid,
            PgType::Uuid if is_string(src) => Kind::UuidText,
            PgType::Date if matches!(src, DataType::Date32 | DataType::Date64) => Kind::Date,
            PgType::Timestamp | PgType::Timestamptz
                if matches!(
                    src,
                    DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
                ) =>
            {
                Kind::Timestamp
            }
            PgType::Time if matches!(src, DataType::Time32(_) | DataType::Time64(_)) => Kind::Time,
            PgType::Interval if matches!(src, DataType::Interval(_) | DataType::Duration(_)) => {
                Kind::Interval
            }
            PgType::Array(elem) => match list_field(src) {
                Some(f) => {
                    let inner = ColumnCodec::plan(name, f.data_type(), elem)
                        .map_err(|e| fail(&format!("; array elements: {}{}", e.target, e.hint)))?;
                    if matches!(inner.kind, Kind::Array(_)) {
                        return Err(fail("; only one-dimensional arrays are supported"));
                    }
                    Kind::Array(Box::new(inner))
                }
                None => return Err(fail("; the source is not a list")),
            },
            _ => {
                let hint = if is_string(src) {
                    format!("; parse it in transform.sql, e.g. CAST({name:?} AS …)")
                } else {
                    "; cast it in transform.sql or change the target column's type".to_string()
                };
                return Err(fail(&hint));
            }
        };
        Ok(ColumnCodec {
            name: name.to_string(),
            source: source.clone(),
            pg: pg.clone(),
            kind,
            not_null: false,
        })
    }

    /// Marks the target column `NOT NULL` (or not), as the catalog or the
    /// table ferry creates says. PostgreSQL hashes a column it knows holds no
    /// NULL about a third faster without the NULL guard; a wrong `true` can
    /// only make a receipt fail, never pass (a NULL's row hash is NULL and
    /// drops out of the sum).
    pub fn not_null(mut self, not_null: bool) -> ColumnCodec {
        self.not_null = not_null;
        self
    }

    /// Turns a batch's array into the Arrow type this codec's encoders read:
    /// dictionaries unpacked, integers narrowed (checked), floats widened or
    /// narrowed, dates and times brought to one unit.
    pub fn normalize(&self, array: &ArrayRef) -> Result<ArrayRef, EncodeError> {
        let mut array = array.clone();
        if matches!(
            array.data_type(),
            DataType::Dictionary(..) | DataType::RunEndEncoded(..)
        ) {
            let to = value_type(array.data_type()).clone();
            array = self.cast(&array, &to)?;
        }
        let to = match (&self.kind, array.data_type()) {
            (Kind::Int(IntWidth::I2), dt) if *dt != DataType::Int16 => DataType::Int16,
            (Kind::Int(IntWidth::I4), dt) if *dt != DataType::Int32 => DataType::Int32,
            (Kind::Int(IntWidth::I8), dt) if *dt != DataType::Int64 => DataType::Int64,
            (Kind::Float4, dt) if *dt != DataType::Float32 => DataType::Float32,
            (Kind::Float8, dt) if *dt != DataType::Float64 => DataType::Float64,
            (Kind::Date, DataType::Date64) => DataType::Date32,
            (Kind::Time, dt) if *dt != DataType::Time64(TimeUnit::Microsecond) => {
                DataType::Time64(TimeUnit::Microsecond)
            }
            _ => return Ok(array),
        };
        self.cast(&array, &to)
    }

    /// A checked Arrow cast whose failure names the first offending row.
    fn cast(&self, array: &ArrayRef, to: &DataType) -> Result<ArrayRef, EncodeError> {
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        cast_with_options(array, to, &options).map_err(|err| {
            // Slow path, only on failure: find the first value that does not cast.
            let row = (0..array.len())
                .find(|&i| cast_with_options(&array.slice(i, 1), to, &options).is_err())
                .unwrap_or(0);
            self.error(
                array.as_ref(),
                row,
                format!("does not fit {}: {err}", self.pg),
            )
        })
    }

    /// Builds an [`EncodeError`] for `row` of `array`, rendering the value.
    pub fn error(&self, array: &dyn Array, row: usize, reason: impl Into<String>) -> EncodeError {
        EncodeError {
            column: self.name.clone(),
            row,
            value: display_value(array, row),
            reason: reason.into(),
        }
    }
}

/// Renders one value for an error message, truncated to 200 characters.
pub fn display_value(array: &dyn Array, row: usize) -> String {
    if row >= array.len() {
        return String::new();
    }
    if array.is_null(row) {
        return "NULL".to_string();
    }
    let options = FormatOptions::default();
    let text = ArrayFormatter::try_new(array, &options)
        .ok()
        .and_then(|f| f.value(row).try_to_string().ok())
        .unwrap_or_else(|| raw_value(array, row));
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// A value Arrow cannot show in its own terms (a date or timestamp beyond
/// what its calendar code handles): the stored number, with its unit.
fn raw_value(array: &dyn Array, row: usize) -> String {
    use arrow::datatypes::DataType as D;
    let (storage, unit) = match array.data_type() {
        D::Date32 => (D::Int32, "days since 1970-01-01".to_string()),
        D::Date64 => (D::Int64, "ms since 1970-01-01".to_string()),
        D::Timestamp(u, _) => (D::Int64, format!("{u:?} since 1970-01-01")),
        D::Time32(u) | D::Duration(u) => (D::Int64, format!("{u:?}")),
        D::Time64(u) => (D::Int64, format!("{u:?}")),
        other => return format!("<{other}>"),
    };
    arrow::compute::cast(&array.slice(row, 1), &storage)
        .ok()
        .and_then(|a| {
            ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())
                .ok()
                .map(|f| format!("{} {unit}", f.value(0)))
        })
        .unwrap_or_else(|| format!("<{}>", array.data_type()))
}

/// Shared handle to a column plan list.
pub type Codecs = Arc<Vec<ColumnCodec>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_arrow_cannot_show_are_shown_as_their_number() {
        let a = arrow::array::Date32Array::from(vec![-146_597_382]);
        assert_eq!(display_value(&a, 0), "\"-146597382 days since 1970-01-01\"");
    }
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::Field;

    #[test]
    fn chooses_from_the_target_type() {
        let c = ColumnCodec::plan("x", &DataType::Int64, &PgType::Numeric(None)).unwrap();
        assert_eq!(c.kind, Kind::Numeric);
        let c = ColumnCodec::plan("x", &DataType::Int64, &PgType::Int2).unwrap();
        assert_eq!(c.kind, Kind::Int(IntWidth::I2));
        let c = ColumnCodec::plan("x", &DataType::Date32, &PgType::Text).unwrap();
        assert_eq!(c.kind, Kind::Render);
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int8, true)));
        let c = ColumnCodec::plan("x", &list, &PgType::Array(Box::new(PgType::Int8))).unwrap();
        assert!(matches!(c.kind, Kind::Array(ref e) if e.kind == Kind::Int(IntWidth::I8)));
    }

    #[test]
    fn refuses_with_a_hint() {
        let e = ColumnCodec::plan("when", &DataType::Utf8, &PgType::Date).unwrap_err();
        assert_eq!(e.column, "when");
        assert!(
            e.to_string()
                .contains("cannot load Arrow Utf8 into PostgreSQL date"),
            "{e}"
        );
        assert!(e.hint.contains("transform.sql"));
        assert!(ColumnCodec::plan("b", &DataType::Boolean, &PgType::Int4).is_err());
    }

    #[test]
    fn narrowing_names_the_row() {
        let c = ColumnCodec::plan("n", &DataType::Int64, &PgType::Int2).unwrap();
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 70_000, 4]));
        let e = c.normalize(&a).unwrap_err();
        assert_eq!((e.row, e.value.as_str()), (2, "\"70000\""));
        let ok: ArrayRef = Arc::new(Int64Array::from(vec![1, -32768]));
        assert_eq!(c.normalize(&ok).unwrap().data_type(), &DataType::Int16);
        let s: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
        assert_eq!(display_value(s.as_ref(), 1), "NULL");
    }

    /// The codec stays a codec: none of its files opens a connection, a
    /// file, a socket or a process, or reaches into the parts of `pg` that
    /// do (connections, artifacts, catalog, the loader). A change that needs
    /// I/O belongs there.
    #[test]
    fn the_codec_does_no_io() {
        let own = include_str!("mod.rs");
        let own = &own[..own.find("#[cfg(test)]").unwrap_or(own.len())];
        let files = [
            ("mod.rs", own),
            ("binary.rs", include_str!("binary.rs")),
            ("copy.rs", include_str!("copy.rs")),
            ("numeric.rs", include_str!("numeric.rs")),
            ("text.rs", include_str!("text.rs")),
            ("time.rs", include_str!("time.rs")),
            ("types.rs", include_str!("types.rs")),
            ("values.rs", include_str!("values.rs")),
        ];
        for (name, src) in files {
            let io = [
                "tokio",
                "std::fs",
                "std::net",
                "std::io::Read",
                "std::process",
            ];
            let pg_io = [
                "pg::connect",
                "pg::load",
                "pg::artifacts",
                "pg::catalog",
                "pg::replay",
            ];
            for banned in io.iter().chain(&pg_io) {
                assert!(!src.contains(banned), "pg/codec/{name} uses {banned}");
            }
        }
    }
}
