//! `ferry verify <table>`: computes a loaded table's digests again, inside
//! PostgreSQL, and compares them with the receipt its load recorded in
//! `ferry.loads` — so an auditor can ask, any day after, whether the table
//! still holds exactly what was loaded. Which rows are the load's: the whole
//! table for a `replace` (the rows it published), or the rows whose lineage
//! column `_ferry_job_id` names the job.

use serde::Serialize;

use super::catalog::describe_table;
use super::connect::PgConfig;
use super::error::PgError;
use super::evolve::LINEAGE_JOB_ID;
use super::ident::{QualifiedName, quote_ident, quote_literal};
use super::receipt::{Mismatch, Receipt, Verify, column_digest_sql, compare, read_column_digest};

/// What `ferry verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// The table.
    pub target: String,
    /// The job whose receipt was checked.
    pub job_id: String,
    /// When it loaded.
    pub loaded_at: String,
    /// Which rows were hashed (`the whole table`, `rows of job …`).
    pub rows_of: String,
    /// Rows found.
    pub rows: u64,
    /// What differs now, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differs: Option<String>,
    /// The first column that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// Why a table cannot be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No receipt, or no way to tell the load's rows apart.
    #[error("cannot verify {table}: {reason}")]
    Refused {
        /// The table.
        table: String,
        /// Why, and what would make it possible.
        reason: String,
    },
    /// PostgreSQL failed.
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// Recomputes the digests of `table`'s last receipted load (or job `job`'s)
/// and compares them with its receipt.
pub async fn verify_table(
    cfg: &PgConfig,
    table: &QualifiedName,
    job: Option<&str>,
) -> Result<Verified, VerifyError> {
    let refuse = |reason: String| VerifyError::Refused {
        table: table.to_string(),
        reason,
    };
    let c = cfg.connect().await?;
    let db = |doing: &'static str| move |e| PgError::db(doing, e);
    let row = c
        .query_opt(
            "SELECT job_id, mode, loaded_at::text, receipt::text FROM ferry.loads
              WHERE target = $1 AND undone_at IS NULL AND receipt IS NOT NULL
                AND ($2::text IS NULL OR job_id = $2)
              ORDER BY loaded_at DESC LIMIT 1",
            &[&table.to_string(), &job],
        )
        .await
        .map_err(db("reading the ledger ferry.loads"))?
        .ok_or_else(|| {
            refuse(match job {
                Some(j) => format!("ferry.loads has no receipt of job {j} for it"),
                None => "ferry.loads has no receipt for it (loads made with verify = \"off\", or before receipts, have none)".into(),
            })
        })?;
    let (job_id, mode, loaded_at, receipt): (String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let receipt: Receipt = serde_json::from_str(&receipt)
        .map_err(|e| refuse(format!("its receipt cannot be read: {e}")))?;
    if receipt.verify != Verify::Full {
        return Err(refuse(format!(
            "job {job_id}'s receipt proves the row count only (verify = \"{}\")",
            receipt.verify
        )));
    }
    let columns = describe_table(&c, table)
        .await?
        .ok_or_else(|| refuse("the table does not exist".into()))?;
    let by_job = columns.iter().any(|col| col.name == LINEAGE_JOB_ID);
    let (from, rows_of) = if by_job {
        (
            format!(
                "{} WHERE {} = {}",
                table.quoted(),
                quote_ident(LINEAGE_JOB_ID),
                quote_literal(&job_id)
            ),
            format!("rows of job {job_id} ({LINEAGE_JOB_ID})"),
        )
    } else if mode == "replace" {
        (
            table.quoted(),
            "the whole table (loaded with replace)".to_string(),
        )
    } else {
        return Err(refuse(format!(
            "job {job_id} loaded it with {mode}, and the table has no {LINEAGE_JOB_ID} column to tell its rows from others' (add lineage = [\"job_id\"] to the spec, or load with replace)"
        )));
    };
    let checks = receipt.checks();
    let sent = receipt.sent().map_err(|e| refuse(e.to_string()))?;
    let row = c
        .query_one(&column_digest_sql(&checks, &from), &[])
        .await
        .map_err(db("computing the table's digests"))?;
    let stored = read_column_digest(&row, checks.len()).map_err(PgError::Count)?;
    let mismatch: Option<Mismatch> = compare(
        &checks,
        &sent,
        stored.rows,
        Some(stored.row_sum),
        Some(&stored),
    );
    Ok(Verified {
        target: table.to_string(),
        job_id,
        loaded_at,
        rows_of,
        rows: stored.rows,
        column: mismatch.as_ref().and_then(|m| m.column.clone()),
        differs: mismatch.map(|m| m.detail),
    })
}
