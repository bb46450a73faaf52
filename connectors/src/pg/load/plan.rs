//! Planning a load against the target as it is: which columns the COPY
//! carries and how each is encoded, whether the table exists and matches,
//! the DDL of a table to create, and upsert keys that hold.

use std::sync::Arc;

use tokio_postgres::Client;

use crate::pg::catalog::{
    NewColumn, TableColumn, create_table_sql, create_table_sql_from_catalog, describe_table,
    unique_keys,
};
use crate::pg::codec::{Codecs, ColumnCodec};
use crate::pg::connect::PgConfig;
use crate::pg::error::PgError;
use crate::pg::evolve::{
    LINEAGE_LINE, MatchColumns, OnNewColumns, OnTypeChange, SchemaChange, changes_ddl, is_lineage,
    loose_name, widening,
};
use crate::pg::ident::QualifiedName;
use crate::pg::pool::Prepare;
use crate::pg::statements::{DuplicateKeys, LoadMode, OnMissingColumns, duplicate_key_sql};

use super::LoadRequest;

/// How the transform's output meets the target, decided before any row.
pub(super) struct Planned {
    pub(super) codecs: Vec<ColumnCodec>,
    /// Output columns the COPY carries (indices into the request's
    /// columns), in COPY order: all of them unless some are ignored.
    pub(super) loaded: Vec<usize>,
    /// The table's names for them, in COPY order.
    pub(super) copy_columns: Vec<String>,
    /// Changes the existing target needs, run in the load's transaction.
    pub(super) changes: Vec<SchemaChange>,
    /// The upsert keys as the table names them.
    pub(super) keys: Vec<String>,
    /// Columns to create the target with, when it does not exist.
    pub(super) new_columns: Option<Vec<NewColumn>>,
    pub(super) target_exists: bool,
    pub(super) target_ddl: String,
}

/// Plans the load against the target as the catalog describes it now.
pub(super) async fn plan(control: &impl Prepare, req: &LoadRequest) -> Result<Planned, PgError> {
    let existing = describe_table(control, &req.target).await?;
    let (matched, new_columns) = match &existing {
        Some(cols) => (match_existing(req, cols)?, None),
        None if !req.create => {
            return Err(PgError::Target {
                table: req.target.to_string(),
                detail: "does not exist (and creating it is turned off)".into(),
            });
        }
        None => {
            let (codecs, cols) = plan_new(req)?;
            let matched = Matched {
                codecs,
                loaded: (0..req.columns.len()).collect(),
                copy_columns: req.columns.iter().map(|c| c.name.clone()).collect(),
                changes: Vec::new(),
            };
            (matched, Some(cols))
        }
    };
    let keys = if req.mode.keyed() {
        check_keys(control.client(), req, existing.is_some(), &matched).await?
    } else {
        req.keys.clone()
    };
    let pk = if req.mode == LoadMode::Upsert {
        req.keys.clone()
    } else {
        Vec::new()
    };
    let target_ddl = match &new_columns {
        Some(cols) => {
            let table = create_table_sql(&req.target, cols, &pk, true, false);
            if req.target.schema == "public" {
                table
            } else {
                format!(
                    "CREATE SCHEMA IF NOT EXISTS {};\n{table}",
                    crate::pg::ident::quote_ident(&req.target.schema)
                )
            }
        }
        None => {
            let create =
                create_table_sql_from_catalog(&req.target, existing.as_deref().unwrap_or_default());
            let alter = changes_ddl(&req.target, &matched.changes);
            if alter.is_empty() {
                create
            } else {
                format!("{create};\n{alter}")
            }
        }
    };
    Ok(Planned {
        codecs: matched.codecs,
        loaded: matched.loaded,
        copy_columns: matched.copy_columns,
        changes: matched.changes,
        keys,
        new_columns,
        target_exists: existing.is_some(),
        target_ddl,
    })
}

/// The encoding a load of `req` would use, worked out from the target's
/// catalog (or from the output when ferry would create the target) without
/// starting a load: the transform step of the split Loader writes its
/// artifacts with these, and sql-processor checks the target still agrees.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// Column plans in COPY order.
    pub codecs: Codecs,
    /// The output columns the COPY carries (indices into the request's
    /// columns), in COPY order.
    pub loaded: Vec<usize>,
    /// The table's names for them, in COPY order.
    pub copy_columns: Vec<String>,
    /// `CREATE TABLE IF NOT EXISTS` for the target, then the changes.
    pub target_ddl: String,
    /// What a load would change in the target (or leave out of it).
    pub changes: Vec<SchemaChange>,
    /// The upsert keys as the table names them.
    pub keys: Vec<String>,
    /// Whether the target exists now.
    pub target_exists: bool,
}

/// Plans a load of `req` (reading the catalog; writing nothing).
pub async fn plan_output(cfg: &PgConfig, req: &LoadRequest) -> Result<OutputPlan, PgError> {
    let control = cfg.connect().await?;
    let p = plan(&control, req).await?;
    Ok(OutputPlan {
        codecs: Arc::new(p.codecs),
        loaded: p.loaded,
        copy_columns: p.copy_columns,
        target_ddl: p.target_ddl,
        changes: p.changes,
        keys: p.keys,
        target_exists: p.target_exists,
    })
}

/// How the output meets an existing table: the codecs, which output
/// columns the COPY carries and under which table names, and the changes
/// the table needs first.
pub(super) struct Matched {
    pub(super) codecs: Vec<ColumnCodec>,
    pub(super) loaded: Vec<usize>,
    pub(super) copy_columns: Vec<String>,
    pub(super) changes: Vec<SchemaChange>,
}

/// Pairs each output column with a table column (by name or by position,
/// `[source] match_columns`), or `None` for a column the table lacks.
fn pair_columns(req: &LoadRequest, cols: &[TableColumn]) -> Result<Vec<Option<usize>>, String> {
    let mut pairs = Vec::with_capacity(req.columns.len());
    match req.drift.match_columns {
        MatchColumns::Position => {
            // Lineage columns go by name, wherever the table has them.
            let writable: Vec<usize> = (0..cols.len())
                .filter(|&j| !cols[j].generated && !is_lineage(&cols[j].name))
                .collect();
            let mut at = 0;
            for o in &req.columns {
                if is_lineage(&o.name) {
                    pairs.push(cols.iter().position(|c| c.name == o.name));
                    continue;
                }
                let i = at;
                at += 1;
                match writable.get(i) {
                    Some(&j) => pairs.push(Some(j)),
                    None if cols.iter().any(|c| c.name == o.name) => {
                        return Err(format!(
                            "input column {} ({:?}) is beyond the table's {} columns, and its name is already a column of the table",
                            i + 1,
                            o.name,
                            writable.len()
                        ));
                    }
                    None => pairs.push(None),
                }
            }
        }
        MatchColumns::Name => {
            for o in &req.columns {
                if let Some(j) = cols.iter().position(|c| c.name == o.name) {
                    pairs.push(Some(j));
                    continue;
                }
                let loose = loose_name(&o.name);
                let like: Vec<usize> = (0..cols.len())
                    .filter(|&j| loose_name(&cols[j].name) == loose)
                    .collect();
                match like.as_slice() {
                    [] => pairs.push(None),
                    [j] => pairs.push(Some(*j)),
                    many => {
                        let names: Vec<&str> =
                            many.iter().map(|&j| cols[j].name.as_str()).collect();
                        return Err(format!(
                            "input column {:?} matches several table columns {names:?} when case, spaces and _ are ignored; rename it in transform.sql or [source.rename]",
                            o.name
                        ));
                    }
                }
            }
        }
    }
    for (i, p) in pairs.iter().enumerate() {
        if let Some(j) = p
            && let Some(k) = pairs[..i].iter().position(|q| q == &Some(*j))
        {
            return Err(format!(
                "input columns {:?} and {:?} both match table column {:?}",
                req.columns[k].name, req.columns[i].name, cols[*j].name
            ));
        }
    }
    Ok(pairs)
}

/// Matches output columns to an existing table, plans each column's encoder
/// from the table's type, and decides the table's changes under the
/// request's drift policy (nothing changes here: the loader runs them in
/// its transaction).
fn match_existing(req: &LoadRequest, cols: &[TableColumn]) -> Result<Matched, PgError> {
    let table = req.target.to_string();
    let fail = |detail: String| PgError::Target {
        table: table.clone(),
        detail,
    };
    let pairs = pair_columns(req, cols).map_err(&fail)?;
    let policy = req.drift;
    let new: Vec<&str> = req
        .columns
        .iter()
        .zip(&pairs)
        .filter(|(o, p)| p.is_none() && !is_lineage(&o.name))
        .map(|(o, _)| o.name.as_str())
        .collect();
    if !new.is_empty() && policy.on_new_columns == OnNewColumns::Fail {
        let have: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        // A table created with the input's names as written, loaded now
        // with snake_case names: say which setting loads into it.
        let as_written = cols
            .iter()
            .find(|c| {
                !new.contains(&c.name.as_str())
                    && crate::pg::ident::snake_case(&c.name)
                        .is_some_and(|s| s != c.name && new.contains(&s.as_str()))
            })
            .map(|c| {
                format!(
                    "; its column {:?} holds names as the input wrote them: set [target] column_names = \"as-is\" (or --column-names as-is) to load into it",
                    c.name
                )
            })
            .unwrap_or_default();
        return Err(fail(format!(
            "has no column(s) {new:?} (it has {have:?}; on_new_columns = \"fail\"): rename them in transform.sql, add them to the table, or set on_new_columns = \"add\" or \"ignore\"{as_written}"
        )));
    }
    let mut m = Matched {
        codecs: Vec::with_capacity(req.columns.len()),
        loaded: Vec::with_capacity(req.columns.len()),
        copy_columns: Vec::with_capacity(req.columns.len()),
        changes: Vec::new(),
    };
    for (i, (o, pair)) in req.columns.iter().zip(&pairs).enumerate() {
        let Some(j) = *pair else {
            let ty = o.pg.to_string();
            if policy.on_new_columns == OnNewColumns::Ignore && !is_lineage(&o.name) {
                m.changes.push(SchemaChange::IgnoreColumn {
                    column: o.name.clone(),
                    ty,
                });
                continue;
            }
            m.codecs
                .push(ColumnCodec::plan(&o.name, &o.data_type, &o.pg)?);
            m.changes.push(SchemaChange::AddColumn {
                column: o.name.clone(),
                ty,
            });
            m.loaded.push(i);
            m.copy_columns.push(o.name.clone());
            continue;
        };
        let t = &cols[j];
        let not_null = t.not_null;
        if t.generated {
            return Err(fail(format!(
                "column {:?} is generated and cannot be loaded",
                t.name
            )));
        }
        let Some(pg) = &t.pg else {
            return Err(fail(format!(
                "column {:?} has type {}, which ferry cannot write; change its type or leave it out of transform.sql",
                t.name, t.type_name
            )));
        };
        let wider = widening(pg, &o.pg, o.declared);
        let codec = match (&wider, policy.on_type_change) {
            (Some(w), OnTypeChange::Widen) => {
                let codec = ColumnCodec::plan(&t.name, &o.data_type, w)?;
                m.changes.push(SchemaChange::WidenColumn {
                    column: t.name.clone(),
                    from: t.type_name.clone(),
                    to: w.to_string(),
                });
                codec
            }
            _ => ColumnCodec::plan(&t.name, &o.data_type, pg).map_err(|mut e| {
                e.hint = match &wider {
                    Some(w) => format!(
                        "; the input's type is {} now: set [target] on_type_change = \"widen\" to widen the column to {w} in the load's transaction, or cast it in transform.sql",
                        o.pg
                    ),
                    None => format!(
                        "{} (the input's type is {}, which no lossless widening of {} takes)",
                        e.hint, o.pg, t.type_name
                    ),
                };
                e
            })?,
        };
        m.codecs.push(codec.not_null(not_null));
        m.loaded.push(i);
        m.copy_columns.push(t.name.clone());
    }
    let lacking: Vec<&str> = cols
        .iter()
        .filter(|c| !c.generated && !m.copy_columns.contains(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !lacking.is_empty() && policy.on_missing_columns == OnMissingColumns::Fail {
        return Err(fail(format!(
            "has column(s) {lacking:?} that the input does not provide (on_missing_columns = \"fail\"; \"null\" leaves them to their default or NULL)"
        )));
    }
    let unfilled: Vec<&str> = cols
        .iter()
        .filter(|c| c.not_null && !c.has_default && lacking.contains(&c.name.as_str()))
        .map(|c| c.name.as_str())
        .collect();
    if !unfilled.is_empty() {
        return Err(fail(format!(
            "column(s) {unfilled:?} are NOT NULL without a default, but the transform does not produce them"
        )));
    }
    Ok(m)
}

fn plan_new(req: &LoadRequest) -> Result<(Vec<ColumnCodec>, Vec<NewColumn>), PgError> {
    let mut codecs = Vec::new();
    let mut cols = Vec::new();
    for o in &req.columns {
        let not_null = !o.nullable || (req.mode == LoadMode::Upsert && req.keys.contains(&o.name));
        codecs.push(ColumnCodec::plan(&o.name, &o.data_type, &o.pg)?.not_null(not_null));
        cols.push(NewColumn {
            name: o.name.clone(),
            pg: o.pg.clone(),
            not_null,
        });
    }
    Ok((codecs, cols))
}

/// Checks a keyed load's keys — output columns the table has; for upsert,
/// covered by a unique index — and returns them as the table names them.
pub(super) async fn check_keys(
    c: &Client,
    req: &LoadRequest,
    exists: bool,
    matched: &Matched,
) -> Result<Vec<String>, PgError> {
    let fail = |detail: String| PgError::Target {
        table: req.target.to_string(),
        detail,
    };
    if req.keys.is_empty() {
        return Err(fail(format!(
            "{} needs key columns (target.keys in the spec, or --key)",
            req.mode
        )));
    }
    if req.streams > 1 && req.drift.duplicate_keys != DuplicateKeys::Fail {
        return Err(fail(format!(
            "duplicate_keys = \"{}\" keeps a row by its place in the input, which one COPY stream keeps and several do not: load with --streams 1 (the default for {})",
            serde_json::to_value(req.drift.duplicate_keys)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            req.mode
        )));
    }
    // The keys as the table names them (a loosely matched name differs).
    let mut want = Vec::with_capacity(req.keys.len());
    for k in &req.keys {
        let Some(i) = req.columns.iter().position(|o| &o.name == k) else {
            return Err(fail(format!(
                "{} key {k:?} is not a column of the transform's output",
                req.mode
            )));
        };
        match matched.loaded.iter().position(|&l| l == i) {
            Some(at) => want.push(matched.copy_columns[at].clone()),
            None => {
                return Err(fail(format!(
                    "{} key {k:?} is not a column of the table (on_new_columns = \"ignore\" leaves it out)",
                    req.mode
                )));
            }
        }
    }
    if exists && req.mode == LoadMode::Upsert {
        let mut sorted = want.clone();
        sorted.sort();
        let found = unique_keys(c, &req.target).await?.into_iter().any(|mut k| {
            k.sort();
            k == sorted
        });
        if !found {
            return Err(fail(format!(
                "upsert on {:?} needs a unique index or primary key on exactly those columns",
                req.keys
            )));
        }
    }
    Ok(want)
}

/// How a message can name the staged rows that hold a repeated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Numbering {
    /// By the input's record numbers: the rows carry `_ferry_line`
    /// (`[target] lineage = ["line"]`), whatever the streams.
    InputRecords,
    /// By their place among the rows loaded: one COPY stream filled the
    /// staging table in order.
    RowsLoaded,
    /// Not at all: several streams filled it in no set order.
    Unknown,
}

/// The first key the staged rows hold more than once, described for a
/// message (` — key (id) = 1 occurs 2 times, at records 1, 3 of the input`),
/// or `None`.
pub(super) async fn find_duplicate(
    c: &Client,
    staging: &QualifiedName,
    keys: &[String],
    numbering: Numbering,
) -> Result<Option<String>, PgError> {
    let by_line = (numbering == Numbering::InputRecords).then_some(LINEAGE_LINE);
    let row = c
        .query_opt(&duplicate_key_sql(staging, keys, by_line), &[])
        .await
        .map_err(|e| PgError::db("looking for keys the input repeats", e))?;
    Ok(row.map(|row| {
        let rows = row.get::<_, String>(2);
        let rows = rows
            .trim_matches(|c| c == '{' || c == '}')
            .replace(',', ", ");
        format!(
            " — key ({}) = {} occurs {} times{}",
            keys.join(", "),
            row.get::<_, String>(0),
            row.get::<_, i64>(1),
            match numbering {
                Numbering::InputRecords => format!(", at records {rows} of the input"),
                Numbering::RowsLoaded => format!(", at rows {rows} of the rows loaded"),
                Numbering::Unknown => String::new(),
            }
        )
    }))
}

/// The advice for a key the input repeats.
pub(super) fn duplicate_advice(mode: LoadMode) -> String {
    format!(
        "{mode} needs one row per key: set [target] duplicate_keys = \"last\" or \"first\" to keep one, or deduplicate in transform.sql (e.g. with DISTINCT ON)"
    )
}

/// Names the duplicate key when PostgreSQL refused an upsert because the
/// input holds a key twice (SQLSTATE 21000).
pub(super) async fn explain_upsert(
    e: PgError,
    c: &Client,
    staging: &QualifiedName,
    keys: &[String],
    numbering: Numbering,
) -> PgError {
    let PgError::Db {
        doing,
        detail,
        code: Some(code),
        source,
    } = e
    else {
        return e;
    };
    if code != "21000" {
        return PgError::Db {
            doing,
            detail,
            code: Some(code),
            source,
        };
    }
    let duplicate = match c.batch_execute("ROLLBACK TO SAVEPOINT ferry_upsert").await {
        Ok(()) => find_duplicate(c, staging, keys, numbering)
            .await
            .ok()
            .flatten(),
        Err(_) => None,
    };
    PgError::Db {
        doing,
        detail: format!(
            "{detail}\n  ferry: the input holds the same key more than once{}; {}",
            duplicate.unwrap_or_default(),
            duplicate_advice(LoadMode::Upsert)
        ),
        code: Some(code),
        source,
    }
}
