//! validate: reads the converted output back and compares it with the
//! input, value by value (digests), failing the job on any difference.

use ferry_connectors::jobs::Job;
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::convert::{report_path, validate};
use crate::error::FerryError;
use crate::workflow::Runtime;

/// What validate records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// `valid`, or why it was skipped.
    pub validation: String,
}

impl Runtime {
    pub(crate) async fn validate(&self, job: &Job) -> Result<Outcome, FerryError> {
        let (req, wanted) = self.convert_request(job)?;
        if !wanted {
            let output = Output {
                validation: "skipped ([convert] validate = false)".into(),
            };
            return Outcome::new(None, None, &output);
        }
        let v = validate(&req).await?;
        if !v.is_valid() {
            let mut msg = v.problems.join("; ");
            if let Some(d) = &v.first_difference {
                msg.push_str(&format!(
                    "; first difference: row {}, column {:?}: input {}, output {}",
                    d.row, d.column, d.source, d.written
                ));
            }
            return Err(FerryError::Invalid(format!(
                "{msg} (report: {})",
                report_path(&req.output, "validation.json").display()
            )));
        }
        let output = Output {
            validation: "valid".into(),
        };
        Outcome::new(Some(v.rows.1), None, &output)
    }
}
