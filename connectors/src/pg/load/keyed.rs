//! Publishing `upsert` and `delete-insert`: staged rows go into the target
//! by one `INSERT … ON CONFLICT` (after a `DELETE` of their keys for
//! `delete-insert`) under a savepoint, so a refused publish can still ask
//! the staged rows which key came twice, and the receipt can measure the
//! rows the `INSERT` returned (after the target's triggers).

use crate::pg::error::PgError;
use crate::pg::evolve::{LINEAGE_JOB_ID, LINEAGE_LINE};
use crate::pg::receipt::Verify;
use crate::pg::statements::{DuplicateKeys, LoadMode, duplicate_count_sql, publish_keyed_sql};

use super::plan::{Numbering, duplicate_advice, explain_upsert, find_duplicate};
use super::prove::{Measured, Rows, publish_keyed};
use super::{Layout, LoadSession, create_target, evolve, exec};

/// What a keyed publish did.
#[derive(Default)]
pub(super) struct Keyed {
    /// This load's stored rows and their measure (unless `verify = "off"`).
    pub measured: Option<(Rows, Measured)>,
    /// Input rows left out because their key came again.
    pub duplicates: u64,
    /// The rows the upsert inserted rather than updated, where lineage can
    /// tell (`None`: it was not counted).
    pub inserted: Option<Option<i64>>,
}

impl LoadSession {
    /// Publishes the staged rows into the target by key, inside the open
    /// publishing transaction.
    pub(super) async fn publish_keyed_mode(
        &self,
        mode: LoadMode,
        level: Verify,
    ) -> Result<Keyed, PgError> {
        let req = &self.req;
        let c = &self.control;
        let mut out = Keyed::default();
        if self.layout == Layout::Staged {
            if !self.target_exists {
                create_target(c, &req.target, &self.target_ddl).await?;
            }
            evolve(c, &req.target, &self.changes).await?;
        }
        let numbering = if self.copy_columns.iter().any(|c| c == LINEAGE_LINE) {
            Numbering::InputRecords
        } else if self.layout == Layout::Single {
            Numbering::RowsLoaded
        } else {
            Numbering::Unknown
        };
        let dup = req.drift.duplicate_keys;
        if dup == DuplicateKeys::Fail && mode == LoadMode::DeleteInsert {
            // Nothing in PostgreSQL refuses a repeated key here: look.
            if let Some(d) = find_duplicate(c, &self.copy_table, &self.keys, numbering).await? {
                return Err(PgError::Target {
                    table: req.target.to_string(),
                    detail: format!(
                        "the input holds the same key more than once{d}; {}",
                        duplicate_advice(mode)
                    ),
                });
            }
        }
        if dup != DuplicateKeys::Fail {
            out.duplicates = c
                .query_one(&duplicate_count_sql(&self.copy_table, &self.keys), &[])
                .await
                .map_err(|e| PgError::db("counting keys the input repeats", e))?
                .get::<_, i64>(0) as u64;
        }
        // A savepoint, so that a refused upsert can still ask the
        // staged rows which key came twice.
        let doing = format!("publishing staged rows ({mode})");
        exec(c, "SAVEPOINT ferry_upsert", &doing).await?;
        let publish = publish_keyed_sql(
            mode,
            &req.target,
            &self.copy_table,
            &self.copy_columns,
            &self.keys,
            dup,
        );
        let (delete, insert) = match publish.rsplit_once(";\n") {
            Some((d, i)) => (Some(d.to_string()), i.to_string()),
            None => (None, publish.clone()),
        };
        // With lineage, count the rows the upsert inserted (not
        // updated): `ferry jobs undo` can remove only those.
        let count_inserted =
            mode == LoadMode::Upsert && self.copy_columns.iter().any(|c| c == LINEAGE_JOB_ID);
        let published = publish_keyed(
            c,
            &self.checks,
            level,
            &self.copy_columns,
            delete.as_deref(),
            &insert,
            count_inserted,
        )
        .await;
        match published {
            Ok((m, inserted)) => {
                if count_inserted {
                    out.inserted = Some(inserted);
                }
                let keys_only = mode == LoadMode::Upsert
                    && self.copy_columns.iter().all(|c| self.keys.contains(c));
                if level != Verify::Off && keys_only {
                    // `DO NOTHING`: a row whose key is there already
                    // is not returned, yet it is stored as sent (its
                    // columns are its key). Measure the target's rows
                    // of the staged keys instead.
                    let l = crate::pg::catalog::column_list(&self.keys);
                    let from = format!(
                        "{} WHERE {l} IN (SELECT {} FROM {})",
                        req.target.quoted(),
                        &l[1..l.len() - 1],
                        self.copy_table.quoted()
                    );
                    out.measured = Some(self.measure(level, from).await?);
                } else if level != Verify::Off {
                    out.measured = Some((Rows::Keyed { delete, insert }, m));
                }
            }
            Err(e) => {
                let e = PgError::db(doing.clone(), e);
                return Err(explain_upsert(e, c, &self.copy_table, &self.keys, numbering).await);
            }
        }
        if out.duplicates > 0 {
            tracing::info!(job_id = %req.job_id, table = %req.target, duplicates = out.duplicates, "left out rows whose key came again (duplicate_keys = {dup:?})");
        }
        Ok(out)
    }
}
