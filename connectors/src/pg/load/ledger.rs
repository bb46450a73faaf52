//! The ledger (`ferry.loads`): one row per loaded input, written in the
//! load's own transaction, so an input loads once.

use crate::pg::error::PgError;
use crate::pg::pool::{Conn, Prepare};
use crate::pg::statements::LEDGER_DDL;

use super::{InputIdentity, LoadRequest, PreviousLoad};

pub(super) async fn ensure_ledger(c: &Conn) -> Result<(), PgError> {
    // A ledger with its newest column needs nothing: one catalog lookup
    // instead of a DDL batch (about 5 ms of every small job otherwise), and
    // none for a pooled connection that has looked before.
    if c.ledger_ready() {
        return Ok(());
    }
    let current = c
        .query_opt(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('ferry.loads') AND attname = 'receipt' AND NOT attisdropped",
            &[],
        )
        .await
        .map_err(|e| PgError::db("reading the ledger ferry.loads", e))?;
    if current.is_some() {
        c.set_ledger_ready();
        return Ok(());
    }
    // Serialised with an advisory lock: concurrent CREATE … IF NOT EXISTS can
    // otherwise race on the catalog's unique indexes.
    let sql = format!(
        "BEGIN; SELECT pg_advisory_xact_lock(hashtext('ferry.loads')); {LEDGER_DDL}; COMMIT;"
    );
    c.batch_execute(&sql)
        .await
        .map_err(|e| PgError::db("creating the ledger ferry.loads", e))?;
    c.set_ledger_ready();
    Ok(())
}

impl InputIdentity {
    /// Waits for the checksum; a failed read names the input.
    pub async fn checksum_value(&self) -> Result<String, PgError> {
        self.checksum.get().await.map_err(|e| self.read_error(e))
    }

    /// Blocks for the checksum, for threads outside the async runtime.
    pub fn wait_checksum(&self) -> Result<String, PgError> {
        self.checksum.wait().map_err(|e| self.read_error(e))
    }

    fn read_error(&self, source: std::io::Error) -> PgError {
        PgError::Io {
            path: self.input.clone(),
            source,
        }
    }
}

/// Whether the ledger has any load of this input into the target.
pub(super) async fn ledger_knows(c: &impl Prepare, req: &LoadRequest) -> Result<bool, PgError> {
    let err = |e| PgError::db("reading ferry.loads", e);
    let statement = c
        .prepared(
            "SELECT 1 FROM ferry.loads WHERE target = $1 AND input = $2 AND undone_at IS NULL LIMIT 1",
        )
        .await
        .map_err(err)?;
    let row = c
        .client()
        .query_opt(&statement, &[&req.target.to_string(), &req.input.input])
        .await
        .map_err(err)?;
    Ok(row.is_some())
}

pub(super) async fn previous_load(
    c: &impl Prepare,
    req: &LoadRequest,
) -> Result<Option<PreviousLoad>, PgError> {
    let checksum = req.input.checksum_value().await?;
    let err = |e| PgError::db("reading ferry.loads", e);
    let statement = c
        .prepared(
            "SELECT job_id, rows, loaded_at::text FROM ferry.loads
              WHERE target = $1 AND input = $2 AND checksum = $3 AND undone_at IS NULL",
        )
        .await
        .map_err(err)?;
    let row = c
        .client()
        .query_opt(
            &statement,
            &[&req.target.to_string(), &req.input.input, &checksum],
        )
        .await
        .map_err(err)?;
    Ok(row.map(|r| PreviousLoad {
        job_id: r.get(0),
        rows: r.get(1),
        loaded_at: r.get(2),
    }))
}
