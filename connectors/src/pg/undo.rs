//! Undoing one load: the rows a job added, found by their lineage column
//! `_ferry_job_id`, deleted in one transaction with the ledger entry marked
//! undone, so the input can be loaded again — or refused, saying why, where
//! it cannot be exact.

use serde::Serialize;

use super::catalog::describe_table;
use super::connect::PgConfig;
use super::error::PgError;
use super::evolve::LINEAGE_JOB_ID;
use super::ident::{QualifiedName, quote_ident};

/// What an undo removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undone {
    /// The job whose rows went.
    pub job_id: String,
    /// The table they were in.
    pub target: String,
    /// The input the job had loaded (loadable again now).
    pub input: String,
    /// Rows removed.
    pub rows: u64,
}

/// Why an undo was refused: nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// The refusal, in words.
    #[error("cannot undo job {job_id}: {reason}")]
    Refused {
        /// The job.
        job_id: String,
        /// Why, and what would make it possible.
        reason: String,
    },
    /// PostgreSQL failed.
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// Removes exactly the rows job `job_id` added to its target, and marks its
/// ledger entry undone, in one transaction. Refuses — changing nothing — a
/// job the ledger does not have or has undone already, a `replace` or
/// `delete-insert` (which removed rows an undo cannot bring back), an upsert
/// that updated rows, a table without the `_ferry_job_id` lineage column,
/// and a job some of whose rows another load or writer has changed since.
pub async fn undo_load(cfg: &PgConfig, job_id: &str) -> Result<Undone, UndoError> {
    let refuse = |reason: String| UndoError::Refused {
        job_id: job_id.to_string(),
        reason,
    };
    let c = cfg.connect().await?;
    let db = |doing: &str| {
        let doing = doing.to_string();
        move |e| PgError::db(doing, e)
    };
    c.batch_execute("BEGIN")
        .await
        .map_err(db("starting the undo"))?;
    let result = async {
        let exists: bool = c
            .query_one("SELECT to_regclass('ferry.loads') IS NOT NULL", &[])
            .await
            .map_err(db("reading the ledger"))?
            .get(0);
        if !exists {
            return Err(refuse("this database has no ledger (ferry.loads): nothing was loaded here".into()));
        }
        let rows = c
            .query(
                "SELECT target, input, mode, rows, inserted, undone_at::text FROM ferry.loads
                  WHERE job_id = $1 FOR UPDATE",
                &[&job_id],
            )
            .await
            .map_err(db("reading the ledger"))?;
        let Some(entry) = rows.first() else {
            return Err(refuse(
                "ferry.loads has no load by this job in this database (a job that loaded nothing, or another database?)".into(),
            ));
        };
        let (target, input, mode): (String, String, String) =
            (entry.get(0), entry.get(1), entry.get(2));
        let (loaded, inserted, undone): (i64, Option<i64>, Option<String>) =
            (entry.get(3), entry.get(4), entry.get(5));
        if let Some(at) = undone {
            return Err(refuse(format!("it was undone already, at {at}")));
        }
        match mode.as_str() {
            "append" => {}
            "upsert" if inserted == Some(loaded) => {}
            "upsert" => {
                return Err(refuse(match inserted {
                    Some(n) => format!(
                        "its upsert updated {} existing row(s) of {target} besides inserting {n}, and an undo cannot bring their old values back",
                        loaded - n
                    ),
                    None => format!(
                        "its upsert into {target} did not record which rows it inserted (it ran without [target] lineage \"job_id\")"
                    ),
                }));
            }
            other => {
                return Err(refuse(format!(
                    "a {other} load removed rows of {target} that an undo cannot bring back; only append and upsert loads that only inserted can be undone"
                )));
            }
        }
        let table = QualifiedName::parse(&target)
            .map_err(|e| refuse(format!("the ledger's target {target:?}: {e}")))?;
        let columns = describe_table(&c, &table).await?.ok_or_else(|| {
            refuse(format!("{target} does not exist any more"))
        })?;
        if !columns.iter().any(|col| col.name == LINEAGE_JOB_ID) {
            return Err(refuse(format!(
                "{target} has no {LINEAGE_JOB_ID} column to find the job's rows by: load with [target] lineage including \"job_id\""
            )));
        }
        // Writers wait while the rows are counted and removed, so nothing
        // changes between the check and the delete.
        c.batch_execute(&format!(
            "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
            table.quoted()
        ))
        .await
        .map_err(db("locking the table"))?;
        let by_job = format!(
            "FROM {} WHERE {} = $1",
            table.quoted(),
            quote_ident(LINEAGE_JOB_ID)
        );
        let now: i64 = c
            .query_one(&format!("SELECT count(*) {by_job}"), &[&job_id])
            .await
            .map_err(db("counting the job's rows"))?
            .get(0);
        if now != loaded {
            return Err(refuse(format!(
                "it loaded {loaded} row(s) into {target}, and {now} still carry its {LINEAGE_JOB_ID}: the others were updated or deleted since, so removing what is left would not be exact"
            )));
        }
        let removed = c
            .execute(&format!("DELETE {by_job}"), &[&job_id])
            .await
            .map_err(db("removing the job's rows"))?;
        c.execute(
            "UPDATE ferry.loads SET undone_at = now() WHERE job_id = $1",
            &[&job_id],
        )
        .await
        .map_err(db("marking the ledger entry undone"))?;
        Ok(Undone {
            job_id: job_id.to_string(),
            target,
            input,
            rows: removed,
        })
    }
    .await;
    match result {
        Ok(undone) => {
            c.batch_execute("COMMIT")
                .await
                .map_err(db("committing the undo"))?;
            Ok(undone)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}
