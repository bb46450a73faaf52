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
    inserted  bigint,
    undone_at timestamptz,
    receipt   jsonb,
    PRIMARY KEY (target, input, checksum)
);
DO $ferry$ BEGIN
    -- Ledgers made by an earlier ferry gain the newer columns; checked
    -- first, since ALTER TABLE would wait for every running load.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'ferry.loads'::regclass
                      AND attname = 'receipt' AND NOT attisdropped) THEN
        ALTER TABLE ferry.loads ADD COLUMN IF NOT EXISTS schema_changes jsonb,
                                ADD COLUMN IF NOT EXISTS inserted bigint,
                                ADD COLUMN IF NOT EXISTS undone_at timestamptz,
                                ADD COLUMN IF NOT EXISTS receipt jsonb;
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
    /// Delete the target's rows whose keys the input has, then insert the
    /// input's rows (no unique index needed; a key may own several rows).
    #[serde(rename = "delete-insert", alias = "delete_insert")]
    DeleteInsert,
}

impl LoadMode {
    /// Whether the mode merges by key columns, through a staging table.
    pub fn keyed(self) -> bool {
        matches!(self, LoadMode::Upsert | LoadMode::DeleteInsert)
    }
}

/// `[target] duplicate_keys`: a key that occurs more than once in one input,
/// under `upsert` and `delete-insert`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateKeys {
    /// Fail before anything changes, naming the key and its rows.
    #[default]
    Fail,
    /// Keep the key's last row in input order.
    Last,
    /// Keep the key's first row in input order.
    First,
}

impl std::str::FromStr for LoadMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "append" => Ok(LoadMode::Append),
            "replace" => Ok(LoadMode::Replace),
            "upsert" => Ok(LoadMode::Upsert),
            "delete-insert" | "delete_insert" => Ok(LoadMode::DeleteInsert),
            other => Err(format!(
                "unknown load mode {other:?}: expected append, replace, upsert or delete-insert"
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
            LoadMode::DeleteInsert => "delete-insert",
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

/// `SELECT cols FROM staging`, keeping one row per key when `duplicates`
/// says which: staging tables are filled in input order by one COPY stream,
/// so physical order (`ctid`) is input order.
fn staged_rows_sql(
    staging: &QualifiedName,
    columns: &[String],
    keys: &[String],
    duplicates: DuplicateKeys,
) -> String {
    let cols = column_list(columns);
    let cols = &cols[1..cols.len() - 1];
    let list = column_list(keys);
    let keys = &list[1..list.len() - 1];
    match duplicates {
        DuplicateKeys::Fail => format!("SELECT {cols} FROM {}", staging.quoted()),
        DuplicateKeys::Last | DuplicateKeys::First => format!(
            "SELECT DISTINCT ON ({keys}) {cols} FROM {} ORDER BY {keys}, ctid{}",
            staging.quoted(),
            if duplicates == DuplicateKeys::Last {
                " DESC"
            } else {
                ""
            }
        ),
    }
}

/// What publishes a keyed load's staged rows into the target:
/// `upsert` — `INSERT … SELECT … ON CONFLICT (keys) DO UPDATE SET c =
/// EXCLUDED.c` (or `DO NOTHING` when every column is a key);
/// `delete-insert` — `DELETE` the target's rows whose keys are staged, then
/// `INSERT … SELECT`. Under `duplicate_keys = "first"|"last"` one row per key
/// is taken from the staging table.
pub fn publish_keyed_sql(
    mode: LoadMode,
    target: &QualifiedName,
    staging: &QualifiedName,
    columns: &[String],
    keys: &[String],
    duplicates: DuplicateKeys,
) -> String {
    let cols = column_list(columns);
    let rows = staged_rows_sql(staging, columns, keys, duplicates);
    let insert = format!("INSERT INTO {} {cols} {rows}", target.quoted());
    if mode == LoadMode::DeleteInsert {
        let list = column_list(keys);
        let matches: Vec<String> = keys
            .iter()
            .map(|k| format!("t.{0} = s.{0}", quote_ident(k)))
            .collect();
        return format!(
            "DELETE FROM {} t USING (SELECT DISTINCT {} FROM {}) s WHERE {};\n{insert}",
            target.quoted(),
            &list[1..list.len() - 1],
            staging.quoted(),
            matches.join(" AND ")
        );
    }
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
    format!("{insert} ON CONFLICT {} {action}", column_list(keys))
}

/// The first key (in input order) that occurs more than once in the staged
/// rows, as text, with its count and the numbers of the rows holding it (the
/// first ten): what a keyed load under `duplicate_keys = "fail"` reports.
/// The rows are numbered by the column `by` (the input's record numbers)
/// when given, else by their place in the staging table.
pub fn duplicate_key_sql(staging: &QualifiedName, keys: &[String], by: Option<&str>) -> String {
    let list = column_list(keys);
    let keys = &list[1..list.len() - 1];
    let number = match by {
        Some(column) => quote_ident(column),
        None => "row_number() OVER (ORDER BY ctid)".to_string(),
    };
    format!(
        "SELECT ({keys})::text, count(*), (array_agg(ferry_row ORDER BY ferry_row))[1:10]::text
           FROM (SELECT {keys}, {number} AS ferry_row FROM {}) d
          GROUP BY {keys} HAVING count(*) > 1 ORDER BY min(ferry_row) LIMIT 1",
        staging.quoted()
    )
}

/// How many staged rows repeat a key that came before (what keeping one
/// row per key leaves out).
pub fn duplicate_count_sql(staging: &QualifiedName, keys: &[String]) -> String {
    let list = column_list(keys);
    let stage = staging.quoted();
    format!(
        "SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {} FROM {stage}) d) FROM {stage}",
        &list[1..list.len() - 1],
    )
}

/// The ledger insert, with bind parameters $1..$11 (target, input,
/// checksum, dataset, job_id, mode, rows, bytes, schema changes as JSON text
/// or NULL, rows inserted (not updated) or NULL when unknown, the receipt as
/// JSON text or NULL). An existing
/// entry is taken over (its load count incremented) when it was undone, or
/// with `force`; otherwise a conflict inserts nothing.
pub fn ledger_insert_sql(force: bool) -> &'static str {
    if force {
        "INSERT INTO ferry.loads (target, input, checksum, dataset, job_id, mode, rows, bytes, schema_changes, inserted, receipt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11::text::jsonb)
         ON CONFLICT (target, input, checksum) DO UPDATE
            SET job_id = EXCLUDED.job_id, mode = EXCLUDED.mode, rows = EXCLUDED.rows,
                bytes = EXCLUDED.bytes, loaded_at = now(), loads = ferry.loads.loads + 1,
                schema_changes = EXCLUDED.schema_changes, inserted = EXCLUDED.inserted,
                receipt = EXCLUDED.receipt, undone_at = NULL"
    } else {
        "INSERT INTO ferry.loads (target, input, checksum, dataset, job_id, mode, rows, bytes, schema_changes, inserted, receipt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11::text::jsonb)
         ON CONFLICT (target, input, checksum) DO UPDATE
            SET job_id = EXCLUDED.job_id, mode = EXCLUDED.mode, rows = EXCLUDED.rows,
                bytes = EXCLUDED.bytes, loaded_at = now(), loads = ferry.loads.loads + 1,
                schema_changes = EXCLUDED.schema_changes, inserted = EXCLUDED.inserted,
                receipt = EXCLUDED.receipt, undone_at = NULL
            WHERE ferry.loads.undone_at IS NOT NULL"
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
        let upsert = |cols: &[String], dup| {
            publish_keyed_sql(LoadMode::Upsert, &t, &s, cols, &cols[..1], dup)
        };
        assert_eq!(
            upsert(&cols, DuplicateKeys::Fail),
            "INSERT INTO \"public\".\"t\" (\"id\", \"na\"\"me\") SELECT \"id\", \"na\"\"me\" FROM \"ferry\".\"stage_1\" ON CONFLICT (\"id\") DO UPDATE SET \"na\"\"me\" = EXCLUDED.\"na\"\"me\""
        );
        assert!(upsert(&cols[..1], DuplicateKeys::Fail).ends_with("DO NOTHING"));
        assert_eq!(
            publish_keyed_sql(
                LoadMode::DeleteInsert,
                &t,
                &s,
                &cols,
                &cols[..1],
                DuplicateKeys::Last
            ),
            "DELETE FROM \"public\".\"t\" t USING (SELECT DISTINCT \"id\" FROM \"ferry\".\"stage_1\") s WHERE t.\"id\" = s.\"id\";\nINSERT INTO \"public\".\"t\" (\"id\", \"na\"\"me\") SELECT DISTINCT ON (\"id\") \"id\", \"na\"\"me\" FROM \"ferry\".\"stage_1\" ORDER BY \"id\", ctid DESC"
        );
        assert_eq!("Replace".parse::<LoadMode>(), Ok(LoadMode::Replace));
        assert_eq!(
            "delete-insert".parse::<LoadMode>(),
            Ok(LoadMode::DeleteInsert)
        );
        assert!("merge".parse::<LoadMode>().is_err());
    }
}
