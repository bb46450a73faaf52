//! convert: writes the staged input in the dataset's `[convert]` format,
//! into the job's output folder.

use std::path::PathBuf;

use ferry_connectors::jobs::Job;
use serde::{Deserialize, Serialize};

use super::download::staged_input;
use super::{Outcome, rejects};
use crate::convert::writers::OutputFormat;
use crate::convert::{ConvertRequest, convert, default_table, input_stem};
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
        };
        Ok((req, validate))
    }

    pub(crate) async fn convert(&self, job: &Job) -> Result<Outcome, FerryError> {
        let (req, _) = self.convert_request(job)?;
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
