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
    /// The parts of a split input, each for `ferry task transform --part K`
    /// (under `--defer-parts`: the orchestrator's Distributed Map iterates
    /// them); absent when the input was transformed here, whole or in parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<usize>,
}

impl Runtime {
    pub(crate) async fn transform(&self, job: &Job) -> Result<Outcome, FerryError> {
        let spec = self.spec(job)?;
        // A split input: its parts for the orchestrator to run, or run
        // here, each in its own process.
        let splits = self.settings.defer_parts || self.settings.parts.is_some();
        if splits && let Some(plan) = self.split(job, &spec).await? {
            let target = spec
                .target_table()
                .map(|t| t.to_string())
                .unwrap_or_default();
            if self.settings.defer_parts {
                let output = Output {
                    artifacts: 0,
                    target,
                    rejected_rows: None,
                    rejects: None,
                    parts: plan.indices(),
                };
                return Outcome::new(None, Some(plan.bytes), &output);
            }
            if let Some(cmd) = &self.settings.parts {
                self.run_parts(cmd, "transform", &job.job_id, &plan).await?;
            }
            let merged = plan.merged_report(self.job_dir(job)?.root())?;
            let (rejected_rows, rejects) = rejects(merged.rejected, merged.rejects.as_deref());
            let output = Output {
                artifacts: merged.artifacts.len(),
                target,
                rejected_rows,
                rejects,
                parts: Vec::new(),
            };
            let bytes = merged.artifacts.iter().map(|a| a.bytes).sum();
            return Outcome::new(Some(merged.rows), Some(bytes), &output);
        }
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
            parts: Vec::new(),
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
            part: None,
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
