//! What the target table looks like, read from the catalog, and the DDL ferry
//! writes when it has to create one.

use tokio_postgres::Client;

use super::codec::types::PgType;
use super::error::PgError;
use super::ident::{QualifiedName, quote_ident};
use super::pool::Prepare;

/// One column of an existing table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    /// Column name.
    pub name: String,
    /// The type, when ferry can encode it.
    pub pg: Option<PgType>,
    /// The type as PostgreSQL spells it (`format_type`), for messages.
    pub type_name: String,
    /// `NOT NULL`
    pub not_null: bool,
    /// Has a default, identity or is generated: may be left out of COPY.
    pub has_default: bool,
    /// A generated column: cannot be written at all.
    pub generated: bool,
}

/// A column ferry will create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewColumn {
    /// Column name.
    pub name: String,
    /// Its type.
    pub pg: PgType,
    /// Add `NOT NULL`.
    pub not_null: bool,
}

/// Reads a table's columns, or `None` if it does not exist.
///
/// One statement finds the table and its columns by name, so both come from
/// the same snapshot: another job's `CREATE TABLE` committing meanwhile makes
/// the table either missing or whole, never present without columns (which
/// two separate reads, or `to_regclass` with its newer catalog snapshot,
/// allowed).
pub async fn describe_table(
    client: &impl Prepare,
    table: &QualifiedName,
) -> Result<Option<Vec<TableColumn>>, PgError> {
    let doing = || format!("reading the columns of {table}");
    let statement = client
        .prepared(
            "SELECT a.attname::text,
                    format_type(a.atttypid, a.atttypmod),
                    coalesce(bt.typname, t.typname)::text,
                    CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
                    coalesce(bt.typtype, t.typtype)::text,
                    a.attnotnull,
                    a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
                    a.attgenerated <> ''
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attribute a
                      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               LEFT JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
              WHERE c.relname = $2
                AND (n.nspname = $1 OR ($1 = 'pg_temp' AND n.oid = pg_my_temp_schema()))
              ORDER BY a.attnum",
        )
        .await
        .map_err(|e| PgError::db(doing(), e))?;
    let rows = client
        .client()
        .query(&statement, &[&table.schema, &table.name])
        .await
        .map_err(|e| PgError::db(doing(), e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            // A table with no columns yields one row of NULLs: it exists but
            // is useless as a target, which the caller reports.
            .filter_map(|r| {
                let name: String = r.get::<_, Option<String>>(0)?;
                let typname: String = r.get(2);
                let typmod: i32 = r.get(3);
                let typtype: String = r.get(4);
                Some(TableColumn {
                    name,
                    type_name: r.get(1),
                    pg: PgType::from_catalog(&typname, typmod, &typtype),
                    not_null: r.get(5),
                    has_default: r.get(6),
                    generated: r.get(7),
                })
            })
            .collect(),
    ))
}

/// The column sets of the table's unique indexes and constraints (full,
/// non-partial), which `INSERT … ON CONFLICT (keys)` needs.
pub async fn unique_keys(
    client: &Client,
    table: &QualifiedName,
) -> Result<Vec<Vec<String>>, PgError> {
    let rows = client
        .query(
            "SELECT array_agg(a.attname::text ORDER BY k.ord)
               FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL
              GROUP BY i.indexrelid",
            &[&table.quoted()],
        )
        .await
        .map_err(|e| PgError::db(format!("reading the unique keys of {table}"), e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// One column of a `CREATE TABLE`: `    "name" type[ NOT NULL]`.
fn column_line(name: &str, ty: &dyn std::fmt::Display, not_null: bool) -> String {
    format!(
        "    {} {ty}{}",
        quote_ident(name),
        if not_null { " NOT NULL" } else { "" }
    )
}

/// `CREATE TABLE [IF NOT EXISTS] "s"."t" (…[, PRIMARY KEY (…)])`.
pub fn create_table_sql(
    table: &QualifiedName,
    columns: &[NewColumn],
    primary_key: &[String],
    if_not_exists: bool,
    unlogged: bool,
) -> String {
    let mut sql = format!(
        "CREATE {}TABLE {}{} (\n",
        if unlogged { "UNLOGGED " } else { "" },
        if if_not_exists { "IF NOT EXISTS " } else { "" },
        table.quoted()
    );
    let mut lines: Vec<String> = columns
        .iter()
        .map(|c| column_line(&c.name, &c.pg, c.not_null))
        .collect();
    if !primary_key.is_empty() {
        let keys: Vec<String> = primary_key.iter().map(|k| quote_ident(k)).collect();
        lines.push(format!("    PRIMARY KEY ({})", keys.join(", ")));
    }
    sql.push_str(&lines.join(",\n"));
    sql.push_str("\n)");
    sql
}

/// `CREATE TABLE IF NOT EXISTS` reproducing an existing table's columns as
/// the catalog spells their types (for the `.sql` artifacts of a load into an
/// existing table).
pub fn create_table_sql_from_catalog(table: &QualifiedName, columns: &[TableColumn]) -> String {
    let lines: Vec<String> = columns
        .iter()
        .filter(|c| !c.generated)
        .map(|c| column_line(&c.name, &c.type_name, c.not_null))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n)",
        table.quoted(),
        lines.join(",\n")
    )
}

/// `("a", "b", …)` for a COPY or INSERT column list.
pub fn column_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    format!("({})", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_quotes_everything() {
        let sql = create_table_sql(
            &QualifiedName::new("s p", "t\"x"),
            &[
                NewColumn {
                    name: "id".into(),
                    pg: PgType::Int8,
                    not_null: true,
                },
                NewColumn {
                    name: "Name; DROP".into(),
                    pg: PgType::Text,
                    not_null: false,
                },
            ],
            &["id".to_string()],
            true,
            false,
        );
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS \"s p\".\"t\"\"x\" (\n    \"id\" bigint NOT NULL,\n    \"Name; DROP\" text,\n    PRIMARY KEY (\"id\")\n)"
        );
        assert_eq!(
            column_list(&["a".into(), "B\"".into()]),
            "(\"a\", \"B\"\"\")"
        );
    }
}
