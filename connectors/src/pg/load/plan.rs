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
use crate::pg::ident::QualifiedName;
use crate::pg::statements::{LoadMode, OnMissingColumns, duplicate_key_sql};

use super::LoadRequest;

/// How the transform's output meets the target, decided before any row.
pub(super) struct Planned {
    pub(super) codecs: Vec<ColumnCodec>,
    /// Columns to create the target with, when it does not exist.
    pub(super) new_columns: Option<Vec<NewColumn>>,
    pub(super) target_exists: bool,
    pub(super) target_ddl: String,
}

/// Plans the load against the target as the catalog describes it now
/// (inside the load's transaction, so it cannot change underneath).
pub(super) async fn plan(control: &Client, req: &LoadRequest) -> Result<Planned, PgError> {
    let existing = describe_table(control, &req.target).await?;
    let (codecs, new_columns) = match &existing {
        Some(cols) => (match_existing(req, cols)?, None),
        None if !req.create => {
            return Err(PgError::Target {
                table: req.target.to_string(),
                detail: "does not exist (and creating it is turned off)".into(),
            });
        }
        None => {
            let (codecs, cols) = plan_new(req)?;
            (codecs, Some(cols))
        }
    };
    if req.mode == LoadMode::Upsert {
        check_upsert_keys(control, req, existing.is_some()).await?;
    }
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
        None => create_table_sql_from_catalog(&req.target, existing.as_deref().unwrap_or_default()),
    };
    Ok(Planned {
        codecs,
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
    /// `CREATE TABLE IF NOT EXISTS` for the target.
    pub target_ddl: String,
}

/// Plans a load of `req` (reading the catalog; writing nothing).
pub async fn plan_output(cfg: &PgConfig, req: &LoadRequest) -> Result<OutputPlan, PgError> {
    let control = cfg.connect().await?;
    let p = plan(&control, req).await?;
    Ok(OutputPlan {
        codecs: Arc::new(p.codecs),
        target_ddl: p.target_ddl,
    })
}

/// Matches output columns to an existing table by name and plans each
/// column's encoder from the target's type.
fn match_existing(req: &LoadRequest, cols: &[TableColumn]) -> Result<Vec<ColumnCodec>, PgError> {
    let table = req.target.to_string();
    let fail = |detail: String| PgError::Target {
        table: table.clone(),
        detail,
    };
    let mut codecs = Vec::with_capacity(req.columns.len());
    let missing: Vec<&str> = req
        .columns
        .iter()
        .filter(|o| !cols.iter().any(|c| c.name == o.name))
        .map(|o| o.name.as_str())
        .collect();
    if !missing.is_empty() {
        let have: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        // A table created with the input's names as written, loaded now
        // with snake_case names: say which setting loads into it.
        let as_written = cols
            .iter()
            .find(|c| {
                !missing.contains(&c.name.as_str())
                    && crate::pg::ident::snake_case(&c.name)
                        .is_some_and(|s| s != c.name && missing.contains(&s.as_str()))
            })
            .map(|c| {
                format!(
                    "; its column {:?} holds names as the input wrote them: set [target] column_names = \"as-is\" (or --column-names as-is) to load into it",
                    c.name
                )
            })
            .unwrap_or_default();
        return Err(fail(format!(
            "has no column(s) {missing:?} (it has {have:?}); rename them in transform.sql or add them to the table{as_written}"
        )));
    }
    for o in &req.columns {
        let t = cols
            .iter()
            .find(|c| c.name == o.name)
            .unwrap_or_else(|| unreachable!());
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
        codecs.push(ColumnCodec::plan(&o.name, &o.data_type, pg)?);
    }
    if req.on_missing_columns == OnMissingColumns::Fail {
        let lacking: Vec<&str> = cols
            .iter()
            .filter(|c| !c.generated && !req.columns.iter().any(|o| o.name == c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !lacking.is_empty() {
            return Err(fail(format!(
                "has column(s) {lacking:?} that the input does not provide (on_missing_columns = \"fail\"; \"null\" leaves them to their default or NULL)"
            )));
        }
    }
    let unfilled: Vec<&str> = cols
        .iter()
        .filter(|c| c.not_null && !c.has_default && !req.columns.iter().any(|o| o.name == c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !unfilled.is_empty() {
        return Err(fail(format!(
            "column(s) {unfilled:?} are NOT NULL without a default, but the transform does not produce them"
        )));
    }
    Ok(codecs)
}

fn plan_new(req: &LoadRequest) -> Result<(Vec<ColumnCodec>, Vec<NewColumn>), PgError> {
    let mut codecs = Vec::new();
    let mut cols = Vec::new();
    for o in &req.columns {
        codecs.push(ColumnCodec::plan(&o.name, &o.data_type, &o.pg)?);
        cols.push(NewColumn {
            name: o.name.clone(),
            pg: o.pg.clone(),
            not_null: !o.nullable || (req.mode == LoadMode::Upsert && req.keys.contains(&o.name)),
        });
    }
    Ok((codecs, cols))
}

pub(super) async fn check_upsert_keys(
    c: &Client,
    req: &LoadRequest,
    exists: bool,
) -> Result<(), PgError> {
    let fail = |detail: String| PgError::Target {
        table: req.target.to_string(),
        detail,
    };
    if req.keys.is_empty() {
        return Err(fail(
            "upsert needs key columns (target.keys in the spec, or --key)".into(),
        ));
    }
    for k in &req.keys {
        if !req.columns.iter().any(|o| &o.name == k) {
            return Err(fail(format!(
                "upsert key {k:?} is not a column of the transform's output"
            )));
        }
    }
    if exists {
        let mut want = req.keys.clone();
        want.sort();
        let found = unique_keys(c, &req.target).await?.into_iter().any(|mut k| {
            k.sort();
            k == want
        });
        if !found {
            return Err(fail(format!(
                "upsert on {:?} needs a unique index or primary key on exactly those columns",
                req.keys
            )));
        }
    }
    Ok(())
}

/// Names the duplicate key when PostgreSQL refused an upsert because the
/// input holds a key twice (SQLSTATE 21000).
pub(super) async fn explain_upsert(
    e: PgError,
    c: &Client,
    staging: &QualifiedName,
    keys: &[String],
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
        Ok(()) => c
            .query_opt(&duplicate_key_sql(staging, keys), &[])
            .await
            .ok()
            .flatten()
            .map(|row| {
                format!(
                    " — key ({}) = {} occurs {} times",
                    keys.join(", "),
                    row.get::<_, String>(0),
                    row.get::<_, i64>(1)
                )
            }),
        Err(_) => None,
    };
    PgError::Db {
        doing,
        detail: format!(
            "{detail}\n  ferry: the input holds the same key more than once{}; upsert needs one row per key (deduplicate in transform.sql, e.g. with DISTINCT ON)",
            duplicate.unwrap_or_default()
        ),
        code: Some(code),
        source,
    }
}
