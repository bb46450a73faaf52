//! Atomic parallel `append` by two-phase commit: each COPY stream writes
//! into the target in a transaction of its own, and the streams commit
//! together with the ledger entry.
//!
//! 1. Each stream `BEGIN`s, COPYs its share of the rows into the target and,
//!    under a receipt, measures its own rows (the control transaction cannot
//!    see them; the digest is a sum, so the parts add up).
//! 2. The control transaction compares the parts with what was sent and
//!    writes the ledger entry; then every stream `PREPARE TRANSACTION`s as
//!    `ferry:<control xid>:<stream>:<job>`.
//! 3. The control transaction commits: that is the decision. Each prepared
//!    stream is then `COMMIT PREPARED`.
//!
//! A prepared transaction outlives its session and ferry, so whoever finds
//! one decides it by the control transaction it names
//! ([`resolve_leftovers`], run by every load before it looks at the ledger,
//! and by a failed load on its way out): committed → `COMMIT PREPARED`,
//! aborted → `ROLLBACK PREPARED`, still in progress → its load is alive,
//! left alone. Nothing is lost, nothing loads twice, and no prepared
//! transaction keeps its locks past the next load.
//!
//! What it does not give: one instant to readers. Between the control
//! commit and the last `COMMIT PREPARED` (a round trip per stream, run
//! concurrently) a query may see some streams' rows and not others, or the
//! ledger entry before the rows. `--streams 1` (the default for `append`)
//! keeps one transaction.
//!
//! Used for `append` with several streams when the target exists, needs no
//! column changes (the streams could not see them before they commit), has
//! no unique or exclusion index (a key repeated across two streams would
//! make one wait for the other's transaction, which ends only after both
//! finish: a wait PostgreSQL cannot see as a deadlock), and the server allows
//! enough prepared transactions (`max_prepared_transactions`). Otherwise the
//! streams go through a staging table (see the module table in `load`).

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};

use super::prove::{Measured, Rows, Source, measure_appended};
use super::stream::send_rows;
use super::{CopyChunk, LoadSession, exec, join_streams, short};
use crate::pg::error::PgError;
use crate::pg::ident::{QualifiedName, quote_literal};
use crate::pg::pool::{Conn, Prepare};
use crate::pg::receipt::{Check, Verify};
use crate::pg::statements::{CopyFormat, LoadMode};

/// SQLSTATE `undefined_object`: the prepared transaction is gone (another
/// process finished it first).
const GONE: &str = "42704";

/// One stream's transaction, its COPY done, not yet prepared.
pub(super) struct Participant {
    conn: Conn,
    /// Rows PostgreSQL accepted.
    pub rows: u64,
    /// The stream's rows as stored, when the load proves them.
    measured: Option<(Rows, Measured)>,
}

/// What a stream measures of its own rows (none under `verify = "off"`).
pub(super) struct MeasurePlan {
    pub checks: Arc<Vec<Check>>,
    pub level: Verify,
    pub target: QualifiedName,
    /// Where the target ended before the load (see [`Rows::last_block`]).
    pub first_block: Option<u64>,
}

/// One stream: `BEGIN`, the COPY, and under a receipt the measure of its
/// own rows; the transaction stays open for [`LoadSession`] to prepare. On
/// an error the connection is dropped, which rolls the transaction back.
pub(super) async fn run_participant(
    conn: Conn,
    copy_sql: Arc<String>,
    rx: Arc<Mutex<mpsc::Receiver<CopyChunk>>>,
    index: usize,
    table: Arc<String>,
    format: CopyFormat,
    plan: Option<Arc<MeasurePlan>>,
) -> Result<Participant, PgError> {
    exec(&conn, "BEGIN", "starting a COPY stream's transaction").await?;
    let rows = send_rows(&conn, &copy_sql, &rx, index, &table, format).await?;
    let measured = match plan {
        Some(p) => Some(
            measure_appended(
                &conn,
                &p.checks,
                p.level,
                &p.target,
                None,
                p.first_block,
                rows,
            )
            .await?,
        ),
        None => None,
    };
    Ok(Participant {
        conn,
        rows,
        measured,
    })
}

/// Whether several `append` streams can commit together by two-phase
/// commit (see the module documentation); `Err` says why not.
pub(super) fn two_phase_fits(
    mode: LoadMode,
    streams: usize,
    target_exists: bool,
    column_changes: bool,
    capacity: i64,
) -> Result<(), &'static str> {
    if mode != LoadMode::Append || streams <= 1 {
        return Err("not a parallel append");
    }
    if !target_exists {
        return Err("the target is created by this load");
    }
    if column_changes {
        return Err("the load changes the target's columns");
    }
    if capacity < streams as i64 {
        return Err("max_prepared_transactions is lower than the streams");
    }
    Ok(())
}

/// Whether `table` has a unique or exclusion index (see the module
/// documentation).
pub(super) async fn has_unique_index(c: &Conn, table: &QualifiedName) -> Result<bool, PgError> {
    const DOING: &str = "reading the target's unique indexes";
    let statement = c
        .prepared(
            "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = $1::text::regclass AND (indisunique OR indisexclusion))",
        )
        .await
        .map_err(|e| PgError::db(DOING, e))?;
    let row = c
        .client()
        .query_one(&statement, &[&table.quoted()])
        .await
        .map_err(|e| PgError::db(DOING, e))?;
    Ok(row.get(0))
}

/// Decides every prepared transaction a ferry load left in this database
/// whose control transaction has ended (committed: commit it; aborted: roll
/// it back), and returns the server's `max_prepared_transactions`. One
/// round trip when there is nothing to decide. A transaction that cannot be
/// decided here (another role's, say) is logged and left.
pub(super) async fn resolve_leftovers(c: &impl Prepare) -> Result<i64, PgError> {
    const DOING: &str = "looking for prepared transactions of killed loads";
    let statement = c
        .prepared(
            "SELECT current_setting('max_prepared_transactions')::int8, p.gid, pg_xact_status(split_part(p.gid, ':', 2)::xid8)
               FROM (SELECT 1) one LEFT JOIN pg_prepared_xacts p
                 ON p.gid ~ '^ferry:[0-9]+:[0-9]+:' AND p.database = current_database()",
        )
        .await
        .map_err(|e| PgError::db(DOING, e))?;
    let rows = c
        .client()
        .query(&statement, &[])
        .await
        .map_err(|e| PgError::db(DOING, e))?;
    let capacity = rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0);
    for row in rows {
        let (Some(gid), status) = (
            row.get::<_, Option<String>>(1),
            row.get::<_, Option<String>>(2),
        ) else {
            continue;
        };
        let verb = match status.as_deref() {
            Some("committed") => "COMMIT",
            Some("aborted") => "ROLLBACK",
            // Its load is still deciding (or the decision is too old to
            // read, which a prepared transaction holding back the horizon
            // prevents).
            _ => continue,
        };
        match finish_prepared(c.client(), verb, &gid).await {
            Ok(true) => tracing::warn!(
                gid = %gid,
                decision = verb,
                "finished a prepared transaction a killed load left"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(gid = %gid, error = %e, "could not finish a prepared transaction a killed load left")
            }
        }
    }
    Ok(capacity)
}

/// `COMMIT PREPARED` or `ROLLBACK PREPARED`; `false` when another process
/// finished it first.
async fn finish_prepared(
    c: &tokio_postgres::Client,
    verb: &str,
    gid: &str,
) -> Result<bool, PgError> {
    match c
        .batch_execute(&format!("{verb} PREPARED {}", quote_literal(gid)))
        .await
    {
        Ok(()) => Ok(true),
        Err(e) if e.code().map(|c| c.code()) == Some(GONE) => Ok(false),
        Err(e) => Err(PgError::db(
            format!("{} the prepared transaction {gid}", verb.to_lowercase()),
            e,
        )),
    }
}

impl LoadSession {
    /// Waits for every stream's COPY (and measure); `Err` is the first
    /// stream's error, the others' transactions rolled back by closing them.
    pub(super) async fn join_participants(&mut self) -> Result<u64, PgError> {
        self.joined = join_streams(std::mem::take(&mut self.participants)).await?;
        Ok(self.joined.iter().map(|p| p.rows).sum())
    }

    /// The streams' rows as stored, added up: `None` when they were not
    /// measured.
    pub(super) fn participants_measured(&self) -> Option<Measured> {
        let mut total = Measured {
            rows: 0,
            row_sum: Some(0),
        };
        for p in &self.joined {
            let (_, m) = p.measured.as_ref()?;
            total.rows += m.rows;
            total.row_sum = match (total.row_sum, m.row_sum) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
        Some(total)
    }

    /// Each stream's connection and its rows (none unless measured): where
    /// a refused receipt looks for the column and row that differ.
    pub(super) fn participants_rows(&self) -> Vec<Source<'_>> {
        self.joined
            .iter()
            .filter_map(|p| Some((p.conn.client(), &p.measured.as_ref()?.0)))
            .collect()
    }

    /// Prepares every stream's transaction under the open control
    /// transaction's id (it has one: it wrote the ledger entry).
    pub(super) async fn prepare_participants(&mut self) -> Result<(), PgError> {
        const DOING: &str = "reading the load's transaction id";
        let row = self
            .control
            .query_one("SELECT pg_current_xact_id()::text", &[])
            .await
            .map_err(|e| PgError::db(DOING, e))?;
        let xid: String = row.get(0);
        let job = short(&self.req.job_id);
        let gids: Vec<String> = (0..self.joined.len())
            .map(|i| format!("ferry:{xid}:{i}:{job}"))
            .collect();
        let prepares = self.joined.iter().zip(&gids).map(|(p, gid)| async move {
            p.conn
                .batch_execute(&format!("PREPARE TRANSACTION {}", quote_literal(gid)))
                .await
                .map_err(|e| {
                    PgError::db(
                        format!("preparing COPY stream transaction {gid} (max_prepared_transactions may be reached)"),
                        e,
                    )
                })
        });
        let results = futures::future::join_all(prepares).await;
        // Whatever happened, these may now be prepared: a failure is
        // resolved from the control transaction's fate.
        self.prepared = gids;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        // A prepared stream's session is clean again.
        for p in &mut self.joined {
            p.conn.keep();
        }
        Ok(())
    }

    /// After the control commit: commits every prepared stream, each on its
    /// own connection, the first alone (the `commit-prepared` fault point
    /// follows it). A stream whose connection fails is committed over a
    /// new one; failing that, the next load's [`resolve_leftovers`] does.
    pub(super) async fn commit_participants(&mut self) -> Result<(), PgError> {
        let gids = std::mem::take(&mut self.prepared);
        let mut left = Vec::new();
        if let (Some(p), Some(gid)) = (self.joined.first(), gids.first())
            && finish_prepared(&p.conn, "COMMIT", gid).await.is_err()
        {
            left.push(gid.clone());
        }
        crate::fault::point(crate::fault::COMMIT_PREPARED).await;
        let rest = self
            .joined
            .iter()
            .zip(&gids)
            .skip(1)
            .map(|(p, gid)| async move {
                finish_prepared(&p.conn, "COMMIT", gid)
                    .await
                    .map_err(|_| gid.clone())
            });
        for r in futures::future::join_all(rest).await {
            if let Err(gid) = r {
                left.push(gid);
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        let c = self.cfg.connect().await?;
        for gid in &left {
            finish_prepared(&c, "COMMIT", gid).await.map_err(|e| {
                PgError::Count(format!(
                    "the load is committed, but stream transaction {gid} is still prepared (the next ferry load commits it): {e}"
                ))
            })?;
        }
        Ok(())
    }

    /// On a failed load: rolls back the streams not yet prepared (by
    /// closing them) and decides those that were from the control
    /// transaction's fate, over a working connection.
    pub(super) async fn abort_participants(&mut self) {
        for h in self.participants.drain(..) {
            h.abort();
        }
        self.joined.clear();
        if std::mem::take(&mut self.prepared).is_empty() {
            return;
        }
        let resolved = if self.control.is_closed() {
            match self.cfg.connect().await {
                Ok(c) => resolve_leftovers(&c).await,
                Err(e) => Err(e),
            }
        } else {
            resolve_leftovers(&self.control).await
        };
        if let Err(e) = resolved {
            tracing::warn!(error = %e, "could not finish this load's prepared transactions; the next ferry load will");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_phase_only_for_a_parallel_append_into_a_table_as_it_is() {
        let fits = |mode, streams, exists, changes, capacity| {
            two_phase_fits(mode, streams, exists, changes, capacity)
        };
        assert_eq!(fits(LoadMode::Append, 2, true, false, 64), Ok(()));
        assert_eq!(fits(LoadMode::Append, 4, true, false, 4), Ok(()));
        assert!(fits(LoadMode::Append, 1, true, false, 64).is_err());
        assert!(fits(LoadMode::Upsert, 2, true, false, 64).is_err());
        assert!(fits(LoadMode::Replace, 2, true, false, 64).is_err());
        assert_eq!(
            fits(LoadMode::Append, 2, false, false, 64),
            Err("the target is created by this load")
        );
        assert_eq!(
            fits(LoadMode::Append, 2, true, true, 64),
            Err("the load changes the target's columns")
        );
        assert_eq!(
            fits(LoadMode::Append, 3, true, false, 2),
            Err("max_prepared_transactions is lower than the streams")
        );
        assert!(fits(LoadMode::Append, 2, true, false, 0).is_err());
    }
}
