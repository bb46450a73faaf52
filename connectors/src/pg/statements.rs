//! The SQL statements a load runs, written once and used both by the binary
//! loader and by the `load.sql` driver of the `.sql` artifacts, so replaying the
//! artifacts means the same thing as the load itself.
//!
//! Identifiers are always quoted; values never appear here except ledger
//! metadata in the driver script, quoted as literals.

use super::catalog::column_list;
use super::ident::{QualifiedName, quote_ident};

/// The ledger: one row per input loaded into a target, so a re-delivered event
/// is a no-op. Created on first use.
pub const LEDGER_DDL: &str = "CREATE SCHEMA IF NOT EXISTS ferry;
CREATE TABLE IF NOT EXISTS ferry.loads (
    target    text        NOT NULL,
    input     text        NOT NULL,
    checksum  text        NOT NULL,
    dataset   text,
    job_id    text        NOT NULL,
    mode      text        NOT NULL,
    rows      bigint      NOT NULL,
    bytes     bigint      NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    loads     integer     NOT NULL DEFAULT 1,
    schema_changes jsonb,
    PRIMARY KEY (target, input, checksum)
);
DO $ferry$ BEGIN
    -- Ledgers made before ferry recorded schema changes gain the column;
    -- checked first, since ALTER TABLE would wait for every running load.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'ferry.loads'::regclass
                      AND attname = 'schema_changes' AND NOT attisdropped) THEN
        ALTER TABLE ferry.loads ADD COLUMN schema_changes jsonb;
    END IF;
END $ferry$";

/// What a load does with a column the target has and the input lacks
/// (`[target] on_missing_columns`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OnMissingColumns {
    /// Leave it to PostgreSQL: the column's default, else NULL (a NOT NULL
    /// column without a default still fails the load, before any row).
    #[default]
    Null,
    /// Fail before anything changes, naming the columns.
    Fail,
}

/// How a load publishes its rows into the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// Add the rows to the table.
    Append,
    /// Replace the table's contents with the rows (new table, swapped in).
    Replace,
    /// Insert new keys, update existing ones.
    Upsert,
}

impl std::str::FromStr for LoadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "append" => Ok(LoadMode::Append),
            "replace" => Ok(LoadMode::Replace),
            "upsert" => Ok(LoadMode::Upsert),
            other => Err(format!(
                "unknown load mode {other:?}: expected append, replace or upsert"
            )),
        }
    }
}

impl std::fmt::Display for LoadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoadMode::Append => "append",
            LoadMode::Replace => "replace",
            LoadMode::Upsert => "upsert",
        })
    }
}

/// `COPY "s"."t" ("a", …) FROM STDIN WITH (FORMAT binary[, FREEZE])`.
pub fn copy_binary_sql(table: &QualifiedName, columns: &[String], freeze: bool) -> String {
    copy_from_stdin_sql(table, columns, freeze, CopyFormat::Binary)
}

/// What a COPY stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyFormat {
    /// PostgreSQL binary COPY tuples (what ferry encodes and `.pgcopy` holds).
    #[default]
    Binary,
    /// COPY text rows (what the `.sql` artifacts hold), for replaying them.
    Text,
}

/// `COPY table (cols) FROM STDIN WITH (FORMAT binary|text[, FREEZE])`.
pub fn copy_from_stdin_sql(
    table: &QualifiedName,
    columns: &[String],
    freeze: bool,
    format: CopyFormat,
) -> String {
    format!(
        "COPY {} {} FROM STDIN WITH (FORMAT {}{})",
        table.quoted(),
        column_list(columns),
        match format {
            CopyFormat::Binary => "binary",
            CopyFormat::Text => "text",
        },
        if freeze { ", FREEZE" } else { "" }
    )
}

/// `INSERT INTO target (cols) SELECT cols FROM staging`.
pub fn insert_select_sql(
    target: &QualifiedName,
    staging: &QualifiedName,
    columns: &[String],
) -> String {
    let cols = column_list(columns);
    format!(
        "INSERT INTO {} {cols} SELECT {} FROM {}",
        target.quoted(),
        &cols[1..cols.len() - 1],
        staging.quoted()
    )
}

/// `INSERT … SELECT … ON CONFLICT (keys) DO UPDATE SET c = EXCLUDED.c` (or
/// `DO NOTHING` when every column is a key).
pub fn upsert_sql(
    target: &QualifiedName,
    staging: &QualifiedName,
    columns: &[String],
    keys: &[String],
) -> String {
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !keys.contains(c))
        .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(c)))
        .collect();
    let action = if updates.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    format!(
        "{} ON CONFLICT {} {action}",
        insert_select_sql(target, staging, columns),
        column_list(keys)
    )
}

/// One key that occurs more than once in the staged rows, as text, with its
/// count: what an upsert that PostgreSQL refused (SQLSTATE 21000) tripped on.
pub fn duplicate_key_sql(staging: &QualifiedName, keys: &[String]) -> String {
    let list = column_list(keys);
    format!(
        "SELECT ({list})::text, count(*) FROM {} GROUP BY {list} HAVING count(*) > 1 LIMIT 1",
        staging.quoted()
    )
}

/// The ledger insert, with bind parameters $1..$9 (target, input, checksum,
/// dataset, job_id, mode, rows, bytes, schema changes as JSON text or NULL).
/// With `force`, an existing entry is updated and its load count
/// incremented; otherwise a conflict inserts nothing.
pub fn ledger_insert_sql(force: bool) -> &'static str {
    if force {
        "INSERT INTO ferry.loads (target, input, checksum, dataset, job_id, mode, rows, bytes, schema_changes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb)
         ON CONFLICT (target, input, checksum) DO UPDATE
            SET job_id = EXCLUDED.job_id, mode = EXCLUDED.mode, rows = EXCLUDED.rows,
                bytes = EXCLUDED.bytes, loaded_at = now(), loads = ferry.loads.loads + 1,
                schema_changes = EXCLUDED.schema_changes"
    } else {
        "INSERT INTO ferry.loads (target, input, checksum, dataset, job_id, mode, rows, bytes, schema_changes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb)
         ON CONFLICT (target, input, checksum) DO NOTHING"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_identifiers() {
        let t = QualifiedName::new("public", "t");
        let s = QualifiedName::new("ferry", "stage_1");
        let cols = vec!["id".to_string(), "na\"me".to_string()];
        assert_eq!(
            copy_binary_sql(&t, &cols, true),
            "COPY \"public\".\"t\" (\"id\", \"na\"\"me\") FROM STDIN WITH (FORMAT binary, FREEZE)"
        );
        assert_eq!(
            upsert_sql(&t, &s, &cols, &cols[..1]),
            "INSERT INTO \"public\".\"t\" (\"id\", \"na\"\"me\") SELECT \"id\", \"na\"\"me\" FROM \"ferry\".\"stage_1\" ON CONFLICT (\"id\") DO UPDATE SET \"na\"\"me\" = EXCLUDED.\"na\"\"me\""
        );
        assert!(upsert_sql(&t, &s, &cols[..1], &cols[..1]).ends_with("DO NOTHING"));
        assert_eq!("Replace".parse::<LoadMode>(), Ok(LoadMode::Replace));
        assert!("merge".parse::<LoadMode>().is_err());
    }
}
