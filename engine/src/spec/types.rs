//! Column types as a spec declares them (`bigint`, `numeric(15,2)`,
//! `timestamptz`, `uuid`, `jsonb`…) turned into the Arrow types the decoder
//! produces, with metadata pinning the PostgreSQL type where Arrow alone
//! cannot say it (`json`, `varchar(n)`, `uuid`).

use std::collections::HashMap;

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use ferry_connectors::pg::PgType;
use ferry_connectors::pg::codec::types::{EXTENSION_NAME, PG_TYPE_METADATA};

/// A declared source column type.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceType {
    /// What the decoder produces.
    pub data_type: DataType,
    /// Field metadata carrying the PostgreSQL type when Arrow cannot.
    pub metadata: HashMap<String, String>,
}

impl SourceType {
    /// A field of this type.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        Field::new(name, self.data_type.clone(), nullable).with_metadata(self.metadata.clone())
    }
}

/// The type names a spec accepts, for messages.
pub const TYPE_NAMES: &str = "boolean, smallint, integer, bigint, real, double precision, numeric(p,s), text, varchar(n), char(n), bytea, date, time, timestamp, timestamptz, interval, uuid, json, jsonb";

/// Parses a declared type.
pub fn parse_source_type(text: &str) -> Result<SourceType, String> {
    let unknown = || format!("unknown type {text:?}; use one of {TYPE_NAMES}");
    let pg = PgType::parse(text).ok_or_else(unknown)?;
    let plain = |dt: DataType| SourceType {
        data_type: dt,
        metadata: HashMap::new(),
    };
    let pinned = |dt: DataType, pg: &PgType| SourceType {
        data_type: dt,
        metadata: [(PG_TYPE_METADATA.to_string(), pg.to_string())].into(),
    };
    Ok(match &pg {
        PgType::Bool => plain(DataType::Boolean),
        PgType::Int2 => plain(DataType::Int16),
        PgType::Int4 => plain(DataType::Int32),
        PgType::Int8 => plain(DataType::Int64),
        PgType::Float4 => plain(DataType::Float32),
        PgType::Float8 => plain(DataType::Float64),
        PgType::Numeric(None) => {
            return Err(format!(
                "{text:?} needs a precision and scale to be decoded exactly, e.g. numeric(18,4) (up to numeric(76,s))"
            ));
        }
        PgType::Numeric(Some((p, s))) => {
            if *p > 76 || *s > 76 || *s < -76 {
                return Err(format!(
                    "{text:?}: ferry decodes numeric up to precision 76"
                ));
            }
            let (p, s) = (*p as u8, *s as i8);
            plain(if p <= 38 {
                DataType::Decimal128(p, s)
            } else {
                DataType::Decimal256(p, s)
            })
        }
        PgType::Text => plain(DataType::Utf8),
        PgType::Varchar(_) | PgType::Bpchar(_) | PgType::Json => pinned(DataType::Utf8, &pg),
        PgType::Jsonb => SourceType {
            data_type: DataType::Utf8,
            metadata: [(EXTENSION_NAME.to_string(), "arrow.json".to_string())].into(),
        },
        PgType::Bytea => plain(DataType::Binary),
        PgType::Date => plain(DataType::Date32),
        PgType::Time => plain(DataType::Time64(TimeUnit::Microsecond)),
        PgType::Timestamp => plain(DataType::Timestamp(TimeUnit::Microsecond, None)),
        PgType::Timestamptz => plain(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        )),
        PgType::Interval => plain(DataType::Interval(IntervalUnit::MonthDayNano)),
        PgType::Uuid => SourceType {
            data_type: DataType::FixedSizeBinary(16),
            metadata: [(EXTENSION_NAME.to_string(), "arrow.uuid".to_string())].into(),
        },
        PgType::Enum(_) | PgType::Array(_) => {
            return Err(format!(
                "{text:?} cannot be declared for a source column; declare text and convert it in transform.sql (or set the target column type in [target.types])"
            ));
        }
    })
}

/// The spec spelling of an Arrow type produced by inference (for `spec init`).
pub fn spell(field: &Field) -> String {
    PgType::for_field(field)
        .map(|t| t.to_string())
        .unwrap_or_else(|| "text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types() {
        assert_eq!(
            parse_source_type("numeric(15,2)").unwrap().data_type,
            DataType::Decimal128(15, 2)
        );
        assert_eq!(
            parse_source_type("decimal(60, 10)").unwrap().data_type,
            DataType::Decimal256(60, 10)
        );
        let u = parse_source_type("uuid").unwrap();
        assert_eq!(PgType::for_field(&u.field("u", true)), Some(PgType::Uuid));
        let j = parse_source_type("json").unwrap();
        assert_eq!(PgType::for_field(&j.field("j", true)), Some(PgType::Json));
        let v = parse_source_type("varchar(44)").unwrap();
        assert_eq!(
            PgType::for_field(&v.field("v", true)),
            Some(PgType::Varchar(Some(44)))
        );
        assert!(
            parse_source_type("numeric")
                .unwrap_err()
                .contains("precision")
        );
        assert!(parse_source_type("int[]").is_err());
        assert!(
            parse_source_type("strnig")
                .unwrap_err()
                .contains("unknown type")
        );
        for name in TYPE_NAMES.split(", ") {
            let name = name.replace("(p,s)", "(10,2)").replace("(n)", "(5)");
            assert!(parse_source_type(&name).is_ok(), "{name}");
        }
    }
}
