//! convert: writes the staged input in the dataset's `[convert]` format,
//! into the job's output folder.

use std::path::PathBuf;

use ferry_connectors::jobs::Job;
use serde::{Deserialize, Serialize};

use super::download::staged_input;
use super::{Outcome, rejects};
use crate::convert::parts::{dataset_report, part_file};
use crate::convert::writers::OutputFormat;
use crate::convert::{ConvertRequest, convert, default_table, input_stem};
use crate::error::FerryError;
use crate::load::SplitPlan;
use crate::load::parts::part_dir;
use crate::source::Input;
use crate::workflow::Runtime;
use crate::workflow::parts::PartOutput;

/// What convert records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// The converted file (or folder).
    pub output: String,
    /// Its format.
    pub format: String,
    /// Rows the error policy set aside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_rows: Option<u64>,
    /// The reject file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
    /// The parts of a split input, each for `ferry task convert --part K`
    /// (under `--defer-parts`: the orchestrator's Distributed Map iterates
    /// them); absent when the input was converted here, whole or in parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<usize>,
}

impl Runtime {
    /// The conversion a job asks for (convert writes it, validate reads it
    /// back), and whether its spec wants it validated.
    pub(crate) fn convert_request(&self, job: &Job) -> Result<(ConvertRequest, bool), FerryError> {
        let spec = self.spec(job)?;
        let cspec = spec.convert.clone().ok_or_else(|| {
            FerryError::Usage(format!(
                "{}: a converter dataset needs a [convert] section",
                spec.toml_path().display()
            ))
        })?;
        let format = OutputFormat::from_spec(&cspec)?;
        let dir = self.job_dir(job)?;
        let stem = portable(&input_stem(&job.input.uri));
        let name = format.file_name(&stem);
        let table = spec.target_table().unwrap_or_else(|| default_table(&stem));
        let validate = cspec.validate.unwrap_or(true);
        let req = ConvertRequest {
            spec: spec.into_owned(),
            input: Input {
                path: PathBuf::from(staged_input(job)?),
                display: job.input.uri.clone(),
            },
            output: match &self.settings.convert_output {
                Some(path) => path.clone(),
                None => dir.output().join(name),
            },
            format,
            table,
            progress: self.settings.progress,
            digest: validate,
            part: None,
            reports: None,
        };
        Ok((req, validate))
    }

    /// The conversion of part `index` of a split input: one file of the
    /// dataset folder that the whole output becomes, its reports in the
    /// part's folder of the job.
    pub(crate) fn part_request(
        &self,
        job: &Job,
        whole: &ConvertRequest,
        plan: &SplitPlan,
        index: usize,
    ) -> Result<ConvertRequest, FerryError> {
        let part = plan.part(index)?;
        let mut req = whole.clone();
        req.output = part_file(&whole.output, index);
        req.reports = Some(part_dir(self.job_dir(job)?.root(), index));
        req.part = Some(part.range);
        req.progress = false;
        Ok(req)
    }

    pub(crate) async fn convert(&self, job: &Job) -> Result<Outcome, FerryError> {
        let (req, _) = self.convert_request(job)?;
        let splits = self.settings.defer_parts || self.settings.parts.is_some();
        if splits && let Some(plan) = self.split_output(job, &req).await? {
            // A whole output of an earlier attempt, or its parts, go first.
            let rejects_file = req.report("rejects.jsonl");
            remove_output(&req.output)?;
            remove_output(&rejects_file)?;
            let format = req.format.name().to_string();
            if self.settings.defer_parts {
                let output = Output {
                    output: req.output.display().to_string(),
                    format,
                    rejected_rows: None,
                    rejects: None,
                    parts: plan.indices(),
                };
                return Outcome::new(None, Some(plan.bytes), &output);
            }
            if let Some(cmd) = &self.settings.parts {
                self.run_parts(cmd, "convert", &job.job_id, &plan).await?;
            }
            let dir = self.job_dir(job)?;
            let merged = dataset_report(&plan, dir.root(), &req.output, &rejects_file)?;
            let (rejected_rows, rejects) = rejects(merged.rejected, merged.rejects.as_deref());
            let output = Output {
                output: req.output.display().to_string(),
                format,
                rejected_rows,
                rejects,
                parts: Vec::new(),
            };
            return Outcome::new(Some(merged.rows), Some(merged.output_bytes), &output);
        }
        let r = convert(&req).await?;
        let (rejected_rows, rejects) = rejects(r.rejected, r.rejects.as_deref());
        let output = Output {
            output: r.output.display().to_string(),
            format: r.format,
            rejected_rows,
            rejects,
            parts: Vec::new(),
        };
        Outcome::new(Some(r.rows), Some(r.output_bytes), &output)
    }

    /// Cuts the input into parts when its dataset asks for it and the
    /// output can be a multi-file dataset (Parquet; other formats are
    /// written whole, with the reason logged).
    async fn split_output(
        &self,
        job: &Job,
        req: &ConvertRequest,
    ) -> Result<Option<SplitPlan>, FerryError> {
        let spec = self.spec(job)?;
        if spec.source.split_size.is_some() && !matches!(req.format, OutputFormat::Parquet(_)) {
            tracing::info!(
                job_id = %job.job_id,
                format = req.format.name(),
                "not splitting the input: only a Parquet output is written in parts"
            );
            // (clears a plan of an earlier attempt)
            let mut whole = spec.into_owned();
            whole.source.split_size = None;
            return self.split(job, &whole).await;
        }
        self.split(job, &spec).await
    }

    /// `ferry task convert --part K`: converts part `index` of a split
    /// input into its file of the dataset folder and
    /// `parts/<K>/convert.json`. Like a transform part, it records no
    /// step, renews the job's lease while it works, and may run again.
    pub async fn convert_part(&self, job_id: &str, index: usize) -> Result<PartOutput, FerryError> {
        let job = self.get(job_id).await?;
        let _lease = self.renew_lease(job_id);
        let (whole, _) = self.convert_request(&job)?;
        let plan = self.read_plan(&job)?;
        let req = self.part_request(&job, &whole, &plan, index)?;
        let r = convert(&req).await?;
        tracing::info!(job_id, part = index, rows = r.rows, "part converted");
        Ok(PartOutput {
            job_id: job_id.to_string(),
            part: index,
            parts: plan.ranges.len(),
            rows: r.rows,
            bytes: req.part.map_or(0, |p| p.bytes()),
            artifacts: r.files.len(),
            rejected_rows: r.rejected,
        })
    }
}

/// Removes a file or folder at `path`, if there is one.
fn remove_output(path: &std::path::Path) -> Result<(), FerryError> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(FerryError::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// A stem safe in any file system and zip archive: letters, digits, `_`
/// and `-` (anything else becomes `_`), at most 64 characters. A job's
/// output travels through S3 and an archive, unlike `ferry convert`'s,
/// which lands beside its input under the input's own name.
fn portable(stem: &str) -> String {
    let clean: String = stem
        .chars()
        .take(64)
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "output".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stems() {
        let stem = |uri| super::portable(&crate::convert::input_stem(uri));
        assert_eq!(stem("s3://b/in/orders 2026.csv.gz"), "orders_2026");
        assert_eq!(stem("/x/.csv"), "output");
    }
}
