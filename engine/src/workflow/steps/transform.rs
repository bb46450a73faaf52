//! transform: decodes the staged input, runs the dataset's SQL and encodes
//! the rows into `.sql` and `.pgcopy` artifacts for sql-processor.

use ferry_connectors::jobs::{self, Job};
use serde::{Deserialize, Serialize};

use super::download::staged_input;
use super::{Outcome, rejects};
use crate::error::FerryError;
use crate::load::{ArtifactSource, JobContext, LoadOptions, transform_artifacts};
use crate::spec::DatasetSpec;
use crate::workflow::Runtime;

/// What transform records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// Artifact files written.
    pub artifacts: usize,
    /// The target table the artifacts load.
    pub target: String,
    /// Rows the error policy set aside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_rows: Option<u64>,
    /// The reject file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
}

impl Runtime {
    pub(crate) async fn transform(&self, job: &Job) -> Result<Outcome, FerryError> {
        let spec = self.spec(job)?;
        let input = staged_input(job)?;
        let mut opts = self.load_options(job)?;
        if !opts.artifacts.pgcopy && self.load_from(&spec) == ArtifactSource::Pgcopy {
            opts.artifacts.pgcopy = true;
        }
        let r = transform_artifacts(&spec, &input, self.pg()?, &opts).await?;
        let (rejected_rows, rejects) = rejects(r.rejected, r.rejects.as_deref());
        let output = Output {
            artifacts: r.artifacts.len(),
            target: r.target,
            rejected_rows,
            rejects,
        };
        let bytes = r.artifacts.iter().map(|a| a.bytes).sum();
        Outcome::new(Some(r.rows), Some(bytes), &output)
    }

    /// How a job's load runs: the settings, in the job's folder, under the
    /// job's input identity.
    pub(crate) fn load_options(&self, job: &Job) -> Result<LoadOptions, FerryError> {
        let identity = jobs::ledger_identity(&job.input);
        Ok(LoadOptions {
            streams: self.settings.streams,
            force: self.settings.force,
            work_dir: self.settings.work_dir.clone(),
            artifacts: self.settings.artifacts,
            part_bytes: self.settings.part_bytes,
            table: None,
            mode: None,
            keys: None,
            progress: self.settings.progress,
            sync_artifacts: job.origin.is_some(),
            job: Some(JobContext {
                job_id: job.job_id.clone(),
                dir: self.job_dir(job)?,
                identity,
                display: job.input.uri.clone(),
            }),
        })
    }

    /// What sql-processor loads for this dataset: its spec's `load_from`, else the setting.
    pub(crate) fn load_from(&self, spec: &DatasetSpec) -> ArtifactSource {
        spec.target
            .as_ref()
            .and_then(|t| t.load_from)
            .unwrap_or(self.settings.from)
    }
}
