//! sql-processor: loads a job's artifacts into PostgreSQL in one
//! transaction, once per input (the ledger); and the fused
//! transform+sql-processor of one-process runs, which streams rows into COPY
//! while it writes the artifacts.

use ferry_connectors::jobs::Job;
use ferry_connectors::pg::SchemaChange;
use ferry_connectors::pg::receipt::Receipt;
use serde::{Deserialize, Serialize};

use super::download::staged_input;
use super::{Outcome, rejects};
use crate::error::FerryError;
use crate::load::{
    ArtifactSource, LOAD_REPORT, LoadReport, LoadStatus, RECEIPT, load, load_artifacts,
};
use crate::workflow::Runtime;

/// What sql-processor (and the fused step) records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// The table loaded.
    pub target: String,
    /// `loaded`, or `skipped` when the ledger has the input.
    pub load: LoadStatus,
    /// Rows the error policy set aside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_rows: Option<u64>,
    /// The reject file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
    /// The job that loaded the input before (a skipped load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_load: Option<String>,
    /// What sql-processor loaded: `pgcopy` or `sql` (not the fused step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<ArtifactSource>,
    /// What the load changed in the table's columns (or left out), when
    /// anything: the job record and the event carry it for audit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_changes: Vec<SchemaChange>,
    /// What the load proved about the stored rows (`[target] verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

impl Output {
    fn of(r: &LoadReport, from: Option<ArtifactSource>) -> Output {
        let (rejected_rows, rejects) = rejects(r.rejected, r.rejects.as_deref());
        Output {
            target: r.target.clone(),
            load: r.status,
            rejected_rows,
            rejects,
            previous_load: r.previous_job.clone(),
            from,
            schema_changes: r.schema_changes.clone(),
            receipt: r.receipt.clone(),
        }
    }
}

impl Runtime {
    pub(crate) async fn sql_processor(&self, job: &Job) -> Result<Outcome, FerryError> {
        let dir = self.job_dir(job)?;
        let spec = self.spec(job)?;
        let from = self.load_from(&spec);
        let r = load_artifacts(
            dir.root(),
            self.pg()?,
            from,
            self.settings.streams,
            self.settings.force,
            spec.errors.max_bad_rows,
        )
        .await?;
        keep_report(&r, job)?;
        let output = Output::of(&r, Some(from));
        Outcome::new(Some(r.rows), Some(r.input_bytes), &output)
    }

    pub(crate) async fn transform_and_load(&self, job: &Job) -> Result<Outcome, FerryError> {
        let spec = self.spec(job)?;
        // A split input: each part in its own process, then one load of them all.
        if let Some(cmd) = &self.settings.parts
            && let Some(plan) = self.split(job, &spec).await?
        {
            self.run_parts(cmd, "transform", &job.job_id, &plan).await?;
            return self.sql_processor(job).await;
        }
        let input = staged_input(job)?;
        let r = load(&spec, &input, self.pg()?, &self.load_options(job)?).await?;
        keep_report(&r, job)?;
        Outcome::new(Some(r.rows), Some(r.input_bytes), &Output::of(&r, None))
    }
}

/// Writes a one-off load's whole report into its run folder (`load.json`):
/// the job record keeps a summary, `ferry load` prints this. The receipt
/// goes beside it as `receipt.json`, for an auditor to keep. A routed job's
/// folder is removed once its zip is uploaded, so neither is written there:
/// its receipt is in its job record and event, and upload puts it into
/// `file.zip` from the record (two files fewer to create and remove per
/// small file).
fn keep_report(r: &LoadReport, job: &Job) -> Result<(), FerryError> {
    if job.origin.is_none() {
        return Ok(());
    }
    let write = |name: &str, json: Result<Vec<u8>, serde_json::Error>| {
        let path = r.job_dir.join(name);
        let json = json.map_err(|e| FerryError::Internal(e.to_string()))?;
        std::fs::write(&path, json)
            .map_err(|e| FerryError::io(format!("writing {}", path.display()), e))
    };
    write(LOAD_REPORT, serde_json::to_vec_pretty(r))?;
    if let Some(receipt) = &r.receipt {
        write(RECEIPT, serde_json::to_vec_pretty(receipt))?;
    }
    Ok(())
}
