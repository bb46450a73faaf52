//! PostgreSQL column types as ferry sees them: what Arrow type maps to which
//! column type (the table in DESIGN.md), how each is spelled in DDL, and its OID
//! (binary arrays carry the element OID and the server checks it).

use std::fmt;

use arrow::datatypes::{DataType, Field};

/// Field metadata key that pins the PostgreSQL type of an Arrow field
/// (e.g. `jsonb` for a text column declared as JSON in a spec).
pub const PG_TYPE_METADATA: &str = "ferry.pg_type";
/// Arrow's canonical extension-name metadata key.
pub const EXTENSION_NAME: &str = "ARROW:extension:name";

/// A PostgreSQL column type ferry can encode in binary COPY and in COPY text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PgType {
    /// `boolean`
    Bool,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `numeric` or `numeric(p, s)`; scale may be negative (PostgreSQL 15+).
    Numeric(Option<(u32, i32)>),
    /// `text`
    Text,
    /// `varchar` or `varchar(n)`
    Varchar(Option<u32>),
    /// `character(n)`
    Bpchar(Option<u32>),
    /// `bytea`
    Bytea,
    /// `date`
    Date,
    /// `time` (without time zone)
    Time,
    /// `timestamp` (without time zone)
    Timestamp,
    /// `timestamptz`
    Timestamptz,
    /// `interval`
    Interval,
    /// `uuid`
    Uuid,
    /// `json` (binary form is the text itself)
    Json,
    /// `jsonb` (binary form is a version byte `0x01` then the text)
    Jsonb,
    /// A user-defined enum: binary form is the label text.
    Enum(String),
    /// One-dimensional array of a scalar type.
    Array(Box<PgType>),
}

impl PgType {
    /// The type's OID (for arrays: the array type's OID), or `None` for enums,
    /// whose OID is assigned per database.
    pub fn oid(&self) -> Option<u32> {
        Some(match self {
            PgType::Bool => 16,
            PgType::Int2 => 21,
            PgType::Int4 => 23,
            PgType::Int8 => 20,
            PgType::Float4 => 700,
            PgType::Float8 => 701,
            PgType::Numeric(_) => 1700,
            PgType::Text => 25,
            PgType::Varchar(_) => 1043,
            PgType::Bpchar(_) => 1042,
            PgType::Bytea => 17,
            PgType::Date => 1082,
            PgType::Time => 1083,
            PgType::Timestamp => 1114,
            PgType::Timestamptz => 1184,
            PgType::Interval => 1186,
            PgType::Uuid => 2950,
            PgType::Json => 114,
            PgType::Jsonb => 3802,
            PgType::Enum(_) => return None,
            PgType::Array(elem) => match elem.as_ref() {
                PgType::Bool => 1000,
                PgType::Int2 => 1005,
                PgType::Int4 => 1007,
                PgType::Int8 => 1016,
                PgType::Float4 => 1021,
                PgType::Float8 => 1022,
                PgType::Numeric(_) => 1231,
                PgType::Text => 1009,
                PgType::Varchar(_) => 1015,
                PgType::Bpchar(_) => 1014,
                PgType::Bytea => 1001,
                PgType::Date => 1182,
                PgType::Time => 1183,
                PgType::Timestamp => 1115,
                PgType::Timestamptz => 1185,
                PgType::Interval => 1187,
                PgType::Uuid => 2951,
                PgType::Json => 199,
                PgType::Jsonb => 3807,
                PgType::Enum(_) | PgType::Array(_) => return None,
            },
        })
    }

    /// Recognises a type from the catalog: `typname` (arrays start with `_`),
    /// `atttypmod`, and the type's `typtype` (`e` for enums).
    ///
    /// Returns `None` for a type ferry has no encoder for; callers turn that into
    /// an error naming the column before any row is sent.
    pub fn from_catalog(typname: &str, typmod: i32, typtype: &str) -> Option<PgType> {
        if let Some(elem) = typname.strip_prefix('_') {
            let elem = PgType::from_catalog(elem, typmod, "b")?;
            return matches!(elem, PgType::Array(_) | PgType::Enum(_))
                .then_some(None)
                .unwrap_or(Some(PgType::Array(Box::new(elem))));
        }
        if typtype == "e" {
            return Some(PgType::Enum(typname.to_string()));
        }
        let len = (typmod >= 4).then(|| (typmod - 4) as u32);
        Some(match typname {
            "bool" => PgType::Bool,
            "int2" => PgType::Int2,
            "int4" => PgType::Int4,
            "int8" => PgType::Int8,
            "float4" => PgType::Float4,
            "float8" => PgType::Float8,
            "numeric" => PgType::Numeric((typmod >= 4).then(|| {
                let t = typmod - 4;
                let precision = ((t >> 16) & 0xffff) as u32;
                // The scale is an 11-bit signed field since PostgreSQL 15.
                let scale = ((t & 0x7ff) ^ 1024) - 1024;
                (precision, scale)
            })),
            "text" | "citext" | "name" => PgType::Text,
            "varchar" => PgType::Varchar(len),
            "bpchar" => PgType::Bpchar(len),
            "bytea" => PgType::Bytea,
            "date" => PgType::Date,
            "time" => PgType::Time,
            "timestamp" => PgType::Timestamp,
            "timestamptz" => PgType::Timestamptz,
            "interval" => PgType::Interval,
            "uuid" => PgType::Uuid,
            "json" => PgType::Json,
            "jsonb" => PgType::Jsonb,
            _ => return None,
        })
    }

    /// Parses a type as a user writes it in a spec (`numeric(15,2)`, `varchar(44)`,
    /// `timestamp with time zone`, `int[]`, …).
    pub fn parse(text: &str) -> Option<PgType> {
        let t = text.trim().to_ascii_lowercase();
        let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(elem) = t.strip_suffix("[]") {
            let elem = PgType::parse(elem)?;
            return (!matches!(elem, PgType::Array(_))).then(|| PgType::Array(Box::new(elem)));
        }
        let (base, args) = match t.find('(') {
            Some(open) if t.ends_with(')') => {
                let args: Vec<&str> = t[open + 1..t.len() - 1].split(',').map(str::trim).collect();
                (t[..open].trim().to_string(), args)
            }
            Some(_) => return None,
            None => (t.clone(), Vec::new()),
        };
        let one = |args: &[&str]| -> Option<Option<u32>> {
            match args {
                [] => Some(None),
                [n] => n.parse().ok().filter(|n| *n > 0).map(Some),
                _ => None,
            }
        };
        Some(match (base.as_str(), args.as_slice()) {
            ("bool" | "boolean", []) => PgType::Bool,
            ("int2" | "smallint", []) => PgType::Int2,
            ("int" | "int4" | "integer", []) => PgType::Int4,
            ("int8" | "bigint", []) => PgType::Int8,
            ("float4" | "real", []) => PgType::Float4,
            ("float8" | "double precision" | "double" | "float", []) => PgType::Float8,
            ("numeric" | "decimal", []) => PgType::Numeric(None),
            ("numeric" | "decimal", [p]) => PgType::Numeric(Some((p.parse().ok()?, 0))),
            ("numeric" | "decimal", [p, s]) => {
                let p: u32 = p.parse().ok()?;
                let s: i32 = s.parse().ok()?;
                if p == 0 || p > 1000 || !(-1000..=1000).contains(&s) {
                    return None;
                }
                PgType::Numeric(Some((p, s)))
            }
            ("text", []) => PgType::Text,
            ("varchar" | "character varying", a) => PgType::Varchar(one(a)?),
            ("char" | "character" | "bpchar", a) => PgType::Bpchar(Some(one(a)?.unwrap_or(1))),
            ("bytea", []) => PgType::Bytea,
            ("date", []) => PgType::Date,
            ("time" | "time without time zone", []) => PgType::Time,
            ("timestamp" | "timestamp without time zone", []) => PgType::Timestamp,
            ("timestamptz" | "timestamp with time zone", []) => PgType::Timestamptz,
            ("interval", []) => PgType::Interval,
            ("uuid", []) => PgType::Uuid,
            ("json", []) => PgType::Json,
            ("jsonb", []) => PgType::Jsonb,
            _ => return None,
        })
    }

    /// The column type PostgreSQL should get for an Arrow field (DESIGN.md's
    /// mapping), honouring a `ferry.pg_type` pin and the `arrow.uuid` /
    /// `arrow.json` extension types. `None` when the type has no mapping.
    pub fn for_field(field: &Field) -> Option<PgType> {
        if let Some(pinned) = field.metadata().get(PG_TYPE_METADATA) {
            return PgType::parse(pinned);
        }
        match field.metadata().get(EXTENSION_NAME).map(String::as_str) {
            Some("arrow.uuid") if matches!(field.data_type(), DataType::FixedSizeBinary(16)) => {
                return Some(PgType::Uuid);
            }
            Some("arrow.json") if is_string(field.data_type()) => return Some(PgType::Jsonb),
            _ => {}
        }
        PgType::for_data_type(field.data_type())
    }

    /// The default column type for an Arrow data type (no metadata).
    pub fn for_data_type(dt: &DataType) -> Option<PgType> {
        Some(match dt {
            DataType::Null => PgType::Text,
            DataType::Boolean => PgType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => PgType::Int2,
            DataType::Int32 | DataType::UInt16 => PgType::Int4,
            DataType::Int64 | DataType::UInt32 => PgType::Int8,
            DataType::UInt64 => PgType::Numeric(Some((20, 0))),
            DataType::Float16 | DataType::Float32 => PgType::Float4,
            DataType::Float64 => PgType::Float8,
            DataType::Decimal32(p, s)
            | DataType::Decimal64(p, s)
            | DataType::Decimal128(p, s)
            | DataType::Decimal256(p, s) => PgType::Numeric(Some((*p as u32, *s as i32))),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PgType::Text,
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => PgType::Bytea,
            DataType::Date32 | DataType::Date64 => PgType::Date,
            DataType::Time32(_) | DataType::Time64(_) => PgType::Time,
            DataType::Timestamp(_, None) => PgType::Timestamp,
            DataType::Timestamp(_, Some(_)) => PgType::Timestamptz,
            DataType::Duration(_) | DataType::Interval(_) => PgType::Interval,
            DataType::List(f)
            | DataType::LargeList(f)
            | DataType::ListView(f)
            | DataType::LargeListView(f)
            | DataType::FixedSizeList(f, _) => match PgType::for_field(f) {
                // Nested lists and lists of objects have no 1-D array form.
                Some(PgType::Array(_) | PgType::Json | PgType::Jsonb) | None => PgType::Jsonb,
                Some(elem) => PgType::Array(Box::new(elem)),
            },
            DataType::Struct(_) | DataType::Map(_, _) => PgType::Jsonb,
            DataType::Dictionary(_, value) => PgType::for_data_type(value)?,
            DataType::RunEndEncoded(_, value) => PgType::for_data_type(value.data_type())?,
            DataType::Union(_, _) => return None,
        })
    }
}

fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

impl fmt::Display for PgType {
    /// The DDL spelling, as `CREATE TABLE` and error messages show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgType::Bool => f.write_str("boolean"),
            PgType::Int2 => f.write_str("smallint"),
            PgType::Int4 => f.write_str("integer"),
            PgType::Int8 => f.write_str("bigint"),
            PgType::Float4 => f.write_str("real"),
            PgType::Float8 => f.write_str("double precision"),
            PgType::Numeric(None) => f.write_str("numeric"),
            PgType::Numeric(Some((p, s))) => write!(f, "numeric({p},{s})"),
            PgType::Text => f.write_str("text"),
            PgType::Varchar(None) => f.write_str("varchar"),
            PgType::Varchar(Some(n)) => write!(f, "varchar({n})"),
            PgType::Bpchar(None) => f.write_str("character"),
            PgType::Bpchar(Some(n)) => write!(f, "character({n})"),
            PgType::Bytea => f.write_str("bytea"),
            PgType::Date => f.write_str("date"),
            PgType::Time => f.write_str("time"),
            PgType::Timestamp => f.write_str("timestamp"),
            PgType::Timestamptz => f.write_str("timestamptz"),
            PgType::Interval => f.write_str("interval"),
            PgType::Uuid => f.write_str("uuid"),
            PgType::Json => f.write_str("json"),
            PgType::Jsonb => f.write_str("jsonb"),
            PgType::Enum(name) => f.write_str(&crate::pg::ident::quote_ident(name)),
            PgType::Array(elem) => write!(f, "{elem}[]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Fields, IntervalUnit, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn design_md_mapping() {
        use DataType as D;
        let cases: Vec<(DataType, &str)> = vec![
            (D::Boolean, "boolean"),
            (D::Int8, "smallint"),
            (D::Int16, "smallint"),
            (D::UInt8, "smallint"),
            (D::Int32, "integer"),
            (D::UInt16, "integer"),
            (D::Int64, "bigint"),
            (D::UInt32, "bigint"),
            (D::UInt64, "numeric(20,0)"),
            (D::Float16, "real"),
            (D::Float32, "real"),
            (D::Float64, "double precision"),
            (D::Decimal128(15, 2), "numeric(15,2)"),
            (D::Decimal256(76, -3), "numeric(76,-3)"),
            (D::Utf8, "text"),
            (D::LargeUtf8, "text"),
            (D::Utf8View, "text"),
            (D::Binary, "bytea"),
            (D::FixedSizeBinary(16), "bytea"),
            (D::Date32, "date"),
            (D::Time64(TimeUnit::Microsecond), "time"),
            (D::Timestamp(TimeUnit::Nanosecond, None), "timestamp"),
            (
                D::Timestamp(TimeUnit::Second, Some("+02:00".into())),
                "timestamptz",
            ),
            (D::Duration(TimeUnit::Millisecond), "interval"),
            (D::Interval(IntervalUnit::MonthDayNano), "interval"),
            (
                D::List(Arc::new(Field::new("item", D::Int32, true))),
                "integer[]",
            ),
            (
                D::List(Arc::new(Field::new(
                    "item",
                    D::List(Arc::new(Field::new("item", D::Int32, true))),
                    true,
                ))),
                "jsonb",
            ),
            (
                D::Struct(Fields::from(vec![Field::new("a", D::Int32, true)])),
                "jsonb",
            ),
            (D::Dictionary(Box::new(D::Int32), Box::new(D::Utf8)), "text"),
        ];
        for (dt, ddl) in cases {
            assert_eq!(PgType::for_data_type(&dt).unwrap().to_string(), ddl, "{dt}");
        }
    }

    #[test]
    fn extensions_and_pins() {
        let uuid = Field::new("u", DataType::FixedSizeBinary(16), true)
            .with_metadata([(EXTENSION_NAME.to_string(), "arrow.uuid".to_string())].into());
        assert_eq!(PgType::for_field(&uuid), Some(PgType::Uuid));
        let json = Field::new("j", DataType::Utf8, true)
            .with_metadata([(PG_TYPE_METADATA.to_string(), "json".to_string())].into());
        assert_eq!(PgType::for_field(&json), Some(PgType::Json));
    }

    #[test]
    fn parses_user_spellings() {
        assert_eq!(
            PgType::parse("NUMERIC(15, 2)"),
            Some(PgType::Numeric(Some((15, 2))))
        );
        assert_eq!(
            PgType::parse("timestamp  with time zone"),
            Some(PgType::Timestamptz)
        );
        assert_eq!(
            PgType::parse("int[]"),
            Some(PgType::Array(Box::new(PgType::Int4)))
        );
        assert_eq!(
            PgType::parse("varchar(44)"),
            Some(PgType::Varchar(Some(44)))
        );
        assert_eq!(PgType::parse("char"), Some(PgType::Bpchar(Some(1))));
        assert_eq!(PgType::parse("int[][]"), None);
        assert_eq!(PgType::parse("geometry"), None);
        assert_eq!(PgType::parse("numeric(0,1)"), None);
    }

    #[test]
    fn catalog_typmods() {
        // numeric(15,2): typmod = (15 << 16 | 2) + 4
        assert_eq!(
            PgType::from_catalog("numeric", (15 << 16 | 2) + 4, "b"),
            Some(PgType::Numeric(Some((15, 2))))
        );
        // numeric(5,-2) stores the scale as 11-bit two's complement.
        assert_eq!(
            PgType::from_catalog("numeric", (5 << 16 | (2048 - 2)) + 4, "b"),
            Some(PgType::Numeric(Some((5, -2))))
        );
        assert_eq!(
            PgType::from_catalog("varchar", 48, "b"),
            Some(PgType::Varchar(Some(44)))
        );
        assert_eq!(
            PgType::from_catalog("_int4", -1, "b"),
            Some(PgType::Array(Box::new(PgType::Int4)))
        );
        assert_eq!(
            PgType::from_catalog("mood", -1, "e"),
            Some(PgType::Enum("mood".into()))
        );
        assert_eq!(PgType::from_catalog("inet", -1, "b"), None);
    }
}
