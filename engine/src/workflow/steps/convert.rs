//! convert: writes the staged input in the dataset's `[convert]` format,
//! into the job's output folder.

use std::path::PathBuf;

use ferry_connectors::jobs::Job;
use ferry_connectors::pg::QualifiedName;
use serde::{Deserialize, Serialize};

use super::download::staged_input;
use super::{Outcome, rejects};
use crate::convert::writers::OutputFormat;
use crate::convert::{ConvertRequest, convert};
use crate::error::FerryError;
use crate::source::Input;
use crate::workflow::Runtime;

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
        let stem = stem_of(&job.input.uri);
        let name = match format.extension() {
            Some(ext) => format!("{stem}.{ext}"),
            None => format!("{stem}-{}", format.name()),
        };
        let table = spec
            .target_table()
            .unwrap_or_else(|| QualifiedName::new("public", stem.replace('-', "_")));
        let validate = cspec.validate.unwrap_or(true);
        let req = ConvertRequest {
            spec: spec.into_owned(),
            input: Input {
                path: PathBuf::from(staged_input(job)?),
                display: job.input.uri.clone(),
            },
            output: dir.output().join(name),
            format,
            table,
            progress: self.settings.progress,
            digest: validate,
        };
        Ok((req, validate))
    }

    pub(crate) async fn convert(&self, job: &Job) -> Result<Outcome, FerryError> {
        let (req, _) = self.convert_request(job)?;
        std::fs::create_dir_all(self.job_dir(job)?.output())
            .map_err(|e| FerryError::io("creating the output folder", e))?;
        let r = convert(&req).await?;
        let (rejected_rows, rejects) = rejects(r.rejected, r.rejects.as_deref());
        let output = Output {
            output: r.output.display().to_string(),
            format: r.format,
            rejected_rows,
            rejects,
        };
        Outcome::new(Some(r.rows), Some(r.output_bytes), &output)
    }
}

/// The input name without folders or extensions: names outputs.
fn stem_of(uri: &str) -> String {
    let name = uri.rsplit(['/', '\\']).next().unwrap_or(uri);
    let stem = name.split('.').next().unwrap_or(name);
    // Bounded: the output's file name must fit any file system.
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
        assert_eq!(
            super::stem_of("s3://b/in/orders 2026.csv.gz"),
            "orders_2026"
        );
        assert_eq!(super::stem_of("/x/.csv"), "output");
    }
}
