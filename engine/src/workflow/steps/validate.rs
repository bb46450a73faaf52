//! validate: reads the converted output back and compares it with the
//! input, value by value (digests), failing the job on any difference.

use ferry_connectors::jobs::Job;
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::convert::parts::{dataset_report, merge_validations};
use crate::convert::{validate, write_json};
use crate::error::FerryError;
use crate::load::SplitPlan;
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
        let dir = self.job_dir(job)?;
        // A split input: every part must be there (even with validation
        // off: a dataset missing a part must not be uploaded), and the
        // dataset's convert report sums them.
        let split = match SplitPlan::read(dir.root())? {
            Some(plan) => {
                let rejects = req.report("rejects.jsonl");
                let merged = dataset_report(&plan, dir.root(), &req.output, &rejects)?;
                write_json(&req.report("convert.json"), &merged)?;
                Some(plan)
            }
            None => None,
        };
        if !wanted {
            let output = Output {
                validation: "skipped ([convert] validate = false)".into(),
            };
            return Outcome::new(None, None, &output);
        }
        let v = match &split {
            None => validate(&req).await?,
            // One verdict for the dataset: each part read back against its
            // own digest.
            Some(plan) => {
                let started = std::time::Instant::now();
                let mut each = Vec::with_capacity(plan.ranges.len());
                for k in plan.indices() {
                    let part = self.part_request(job, &req, plan, k)?;
                    each.push((part.output.clone(), validate(&part).await?));
                }
                let v = merge_validations(&req.output, &each, started.elapsed().as_secs_f64());
                write_json(&req.report("validation.json"), &v)?;
                v
            }
        };
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
                req.report("validation.json").display()
            )));
        }
        let output = Output {
            validation: "valid".into(),
        };
        Outcome::new(Some(v.rows.1), None, &output)
    }
}
