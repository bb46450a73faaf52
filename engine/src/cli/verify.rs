//! `ferry verify <table>`: does the table still hold what its load's
//! receipt proved it stored?

use clap::Args;
use ferry_connectors::pg::verify::{VerifyError, verify_table};
use ferry_connectors::pg::{PgConfig, PgError, QualifiedName};
use ferry_engine::error::FerryError;

pub const VERIFY_HELP: &str = "\
Which rows are the load's: the whole table for a replace, or the rows whose _ferry_job_id
names the job ([target] lineage = [\"job_id\"]). The digests are computed inside PostgreSQL
with the receipt's own method, and compared with the receipt in ferry.loads.

Exit codes: 0 the table matches its receipt; 6 it does not (the column is named);
2 it cannot be verified (no receipt, or its rows cannot be told apart).

Examples:
  ferry verify public.orders
  ferry verify public.orders --job 01a219b7-f0c7-73f7-985c-a03e8c103f8f --json";

/// `ferry verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The table, as schema.table (or table, in public).
    table: String,
    /// The job whose receipt to check (default: the table's last receipted load).
    #[arg(long, value_name = "ID")]
    job: Option<String>,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: VerifyArgs) -> Result<(), FerryError> {
    let pg = PgConfig::from_url_or_env(args.database_url.as_deref())?;
    let table = QualifiedName::parse(&args.table).map_err(|e| FerryError::Usage(e.to_string()))?;
    let found = verify_table(&pg, &table, args.job.as_deref())
        .await
        .map_err(|e| match e {
            VerifyError::Pg(e) => FerryError::Pg(e),
            refused => FerryError::Usage(refused.to_string()),
        })?;
    if args.json {
        outln!("{}", serde_json::to_string(&found).unwrap_or_default());
    } else if found.differs.is_none() {
        outln!(
            "{} matches the receipt of job {} (loaded {}): {} rows, {}",
            found.target,
            found.job_id,
            found.loaded_at,
            found.rows,
            found.rows_of
        );
    }
    match found.differs {
        None => Ok(()),
        Some(detail) => Err(FerryError::Pg(PgError::Receipt {
            table: found.target,
            column: found.column,
            detail: format!(
                "{detail} (job {}'s receipt, {}; it no longer holds what was loaded)",
                found.job_id, found.rows_of
            ),
        })),
    }
}
