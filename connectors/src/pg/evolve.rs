//! Schema drift: what a load does when the input and the target table no
//! longer agree — a column the table lacks, a column the input lacks, a
//! column whose type grew, columns that moved — and the record of every
//! change it made, so each can be audited.
//!
//! The policies come from the spec's `[target]` and `[source]` keys. The
//! changes are planned before any row is sent and run as DDL **inside the
//! load's transaction**, so a failed load leaves the table's columns exactly
//! as they were.

use serde::{Deserialize, Serialize};

use super::codec::types::PgType;
use super::ident::{QualifiedName, quote_ident};
use super::statements::{DuplicateKeys, OnMissingColumns};

/// `[target] on_new_columns`: an input column the table lacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNewColumns {
    /// `ALTER TABLE … ADD COLUMN` with the mapped type, in the load's
    /// transaction (rows loaded before keep NULL in it).
    #[default]
    Add,
    /// Leave the column out of the load (recorded as ignored).
    Ignore,
    /// Fail before anything changes, naming the columns.
    Fail,
}

/// `[target] on_type_change`: an input column whose type no longer fits the
/// table's column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTypeChange {
    /// Widen the column where that loses nothing (smallint → integer →
    /// bigint → numeric, real → double precision, a longer varchar or
    /// numeric, any type → text when `[target.types]` says text), in the
    /// load's transaction.
    Widen,
    /// Change nothing: a type that cannot be loaded as it is fails before
    /// any row, naming column, old and new type. (Narrower values still load
    /// into a wider column, and a value out of the column's range fails
    /// naming its row.)
    #[default]
    Fail,
}

/// `[source] match_columns`: how output columns find their table columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchColumns {
    /// By name, whatever the order; a name that differs only in case,
    /// spaces, `_` or `-` still matches when exactly one column does.
    #[default]
    Name,
    /// The n-th output column is the table's n-th column, whatever the
    /// names (files without a header).
    Position,
}

/// How a load treats an input that does not fit the table as it is: columns
/// that drifted from the input's, and keys the input repeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftPolicy {
    /// A key that occurs more than once in the input (`upsert`, `delete-insert`).
    #[serde(default)]
    pub duplicate_keys: DuplicateKeys,
    /// A table column the input lacks.
    #[serde(default)]
    pub on_missing_columns: OnMissingColumns,
    /// An input column the table lacks.
    #[serde(default)]
    pub on_new_columns: OnNewColumns,
    /// An input column whose type the table's column cannot take as it is.
    #[serde(default)]
    pub on_type_change: OnTypeChange,
    /// Matching output columns to table columns.
    #[serde(default)]
    pub match_columns: MatchColumns,
}

/// One change a load made (or, for `spec check`, would make) to its target,
/// as the load report, the job record, the event and the ledger record it:
/// `{"change": "add_column", "column": "email", "type": "text"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaChange {
    /// A column the input has and the table lacked, added.
    AddColumn {
        /// Column name.
        column: String,
        /// Its type.
        #[serde(rename = "type")]
        ty: String,
    },
    /// A column widened to take the input's values.
    WidenColumn {
        /// Column name.
        column: String,
        /// The type it had.
        from: String,
        /// The type it has now.
        to: String,
    },
    /// An input column the table lacks, left out (`on_new_columns = "ignore"`).
    IgnoreColumn {
        /// Column name.
        column: String,
        /// The type it would have had.
        #[serde(rename = "type")]
        ty: String,
    },
}

impl SchemaChange {
    /// The DDL that makes the change on `table`, written so that running it
    /// again (a replayed `load.sql`, a concurrent load) changes nothing more.
    pub fn ddl(&self, table: &QualifiedName) -> Option<String> {
        match self {
            SchemaChange::AddColumn { column, ty } => Some(format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {ty}",
                table.quoted(),
                quote_ident(column)
            )),
            SchemaChange::WidenColumn { column, to, .. } => {
                let c = quote_ident(column);
                Some(format!(
                    "ALTER TABLE {} ALTER COLUMN {c} TYPE {to} USING {c}::{to}",
                    table.quoted()
                ))
            }
            SchemaChange::IgnoreColumn { .. } => None,
        }
    }

    /// One line for people: `added column "email" text`.
    pub fn describe(&self) -> String {
        match self {
            SchemaChange::AddColumn { column, ty } => format!("added column {column:?} {ty}"),
            SchemaChange::WidenColumn { column, from, to } => {
                format!("widened column {column:?} from {from} to {to}")
            }
            SchemaChange::IgnoreColumn { column, ty } => {
                format!("ignored input column {column:?} ({ty}): the table has no such column")
            }
        }
    }
}

/// The DDL of all `changes` on `table`, one statement per line (no trailing
/// `;`), or an empty string.
pub fn changes_ddl(table: &QualifiedName, changes: &[SchemaChange]) -> String {
    changes
        .iter()
        .filter_map(|c| c.ddl(table))
        .collect::<Vec<_>>()
        .join(";\n")
}

fn int_rank(t: &PgType) -> Option<u8> {
    match t {
        PgType::Int2 => Some(0),
        PgType::Int4 => Some(1),
        PgType::Int8 => Some(2),
        _ => None,
    }
}

/// The type a table column of type `have` widens to so that it takes the
/// input's `want` (the type ferry maps the input column to) losing nothing,
/// or `None` when there is no such widening (or none is needed).
/// `declared` says `want` comes from `[target.types]`, which alone may turn
/// a column into text.
pub fn widening(have: &PgType, want: &PgType, declared: bool) -> Option<PgType> {
    if have == want {
        return None;
    }
    if declared && *want == PgType::Text {
        return Some(PgType::Text);
    }
    match (have, want) {
        (h, w) if int_rank(h).is_some() && int_rank(w).is_some() => {
            (int_rank(w) > int_rank(h)).then(|| w.clone())
        }
        (h, PgType::Numeric(_) | PgType::Float4 | PgType::Float8) if int_rank(h).is_some() => {
            Some(PgType::Numeric(None))
        }
        (PgType::Float4, PgType::Float8) => Some(PgType::Float8),
        (PgType::Numeric(Some(_)), PgType::Numeric(None)) => Some(PgType::Numeric(None)),
        (PgType::Numeric(Some((p1, s1))), PgType::Numeric(Some((p2, s2)))) => {
            let (i1, i2) = (*p1 as i64 - *s1 as i64, *p2 as i64 - *s2 as i64);
            if i2 <= i1 && s2 <= s1 {
                return None;
            }
            let scale = (*s1).max(*s2);
            let precision = (i1.max(i2) + scale as i64).clamp(1, 1000) as u32;
            Some(PgType::Numeric(Some((precision, scale))))
        }
        (PgType::Varchar(Some(n)), PgType::Varchar(Some(m))) if m > n => {
            Some(PgType::Varchar(Some(*m)))
        }
        (PgType::Varchar(Some(_)), PgType::Varchar(None)) => Some(PgType::Varchar(None)),
        _ => None,
    }
}

/// `_ferry_loaded_at`: when the load began (`[target] lineage = ["loaded_at"]`).
pub const LINEAGE_LOADED_AT: &str = "_ferry_loaded_at";
/// `_ferry_source`: the input's URI (`"source"`).
pub const LINEAGE_SOURCE: &str = "_ferry_source";
/// `_ferry_line`: the input's record number (`"line"`).
pub const LINEAGE_LINE: &str = "_ferry_line";
/// `_ferry_job_id`: the job that loaded the row (`"job_id"`), what
/// `ferry jobs undo` finds a job's rows by.
pub const LINEAGE_JOB_ID: &str = "_ferry_job_id";

/// ferry's own lineage columns, which a load adds to a table that lacks
/// them whatever `on_new_columns` says, and matches by name whatever
/// `match_columns` says.
pub fn is_lineage(name: &str) -> bool {
    [
        LINEAGE_LOADED_AT,
        LINEAGE_SOURCE,
        LINEAGE_LINE,
        LINEAGE_JOB_ID,
    ]
    .contains(&name)
}

/// A column name as [`MatchColumns::Name`] compares it when the exact name is
/// not there: lower case, with spaces, `_` and `-` dropped.
pub fn loose_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_only_where_nothing_is_lost() {
        use PgType::*;
        assert_eq!(widening(&Int4, &Int8, false), Some(Int8));
        assert_eq!(widening(&Int2, &Int4, false), Some(Int4));
        assert_eq!(widening(&Int8, &Int4, false), None);
        assert_eq!(widening(&Int8, &Float8, false), Some(Numeric(None)));
        assert_eq!(widening(&Float4, &Float8, false), Some(Float8));
        assert_eq!(widening(&Float8, &Float4, false), None);
        assert_eq!(
            widening(&Numeric(Some((10, 2))), &Numeric(Some((12, 4))), false),
            Some(Numeric(Some((12, 4))))
        );
        assert_eq!(
            widening(&Numeric(Some((10, 2))), &Numeric(Some((6, 1))), false),
            None
        );
        assert_eq!(
            widening(&Int4, &Text, false),
            None,
            "text only when declared"
        );
        assert_eq!(widening(&Int4, &Text, true), Some(Text));
        assert_eq!(widening(&Date, &Timestamp, false), None);
        assert_eq!(
            widening(&Varchar(Some(10)), &Varchar(Some(40)), false),
            Some(Varchar(Some(40)))
        );
    }

    #[test]
    fn changes_render_quoted_rerunnable_ddl() {
        let t = QualifiedName::new("public", "t");
        let add = SchemaChange::AddColumn {
            column: "E mail".into(),
            ty: "text".into(),
        };
        assert_eq!(
            add.ddl(&t).unwrap(),
            "ALTER TABLE \"public\".\"t\" ADD COLUMN IF NOT EXISTS \"E mail\" text"
        );
        let widen = SchemaChange::WidenColumn {
            column: "n".into(),
            from: "integer".into(),
            to: "bigint".into(),
        };
        assert_eq!(
            widen.ddl(&t).unwrap(),
            "ALTER TABLE \"public\".\"t\" ALTER COLUMN \"n\" TYPE bigint USING \"n\"::bigint"
        );
        assert_eq!(
            serde_json::to_string(&add).unwrap(),
            r#"{"change":"add_column","column":"E mail","type":"text"}"#
        );
        assert_eq!(loose_name("Order Date"), "orderdate");
        assert_eq!(loose_name("order_date"), "orderdate");
    }
}
