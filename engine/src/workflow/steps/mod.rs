//! One module per step, each with its typed output: what the step records in
//! the job (`steps[].outputs`, the task output, the job event) and what a
//! later step reads back ([`output`]), in this process or in another
//! container. The contract (`ferry tasks`) lists each step's output fields
//! from these types ([`output_fields`]).

pub mod convert;
pub mod create_job;
pub mod download;
pub mod notify;
pub mod sql_processor;
pub mod transform;
pub mod upload;
pub mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use ferry_connectors::jobs::Job;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Step;
use crate::error::FerryError;

/// What one step produced: its figures and its typed output, as the job
/// record stores them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub(crate) rows: Option<u64>,
    pub(crate) bytes: Option<u64>,
    pub(crate) outputs: BTreeMap<String, Value>,
}

impl Outcome {
    /// A step's figures and output (a struct of named fields).
    pub(crate) fn new(
        rows: Option<u64>,
        bytes: Option<u64>,
        output: &impl Serialize,
    ) -> Result<Self, FerryError> {
        let outputs = match serde_json::to_value(output) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            Ok(other) => {
                return Err(FerryError::Internal(format!(
                    "a step output must be an object, not {other}"
                )));
            }
            Err(e) => return Err(FerryError::Internal(format!("a step output: {e}"))),
        };
        Ok(Outcome {
            rows,
            bytes,
            outputs,
        })
    }
}

/// The output of the latest successful record of `step`, read as `T`;
/// `None` when the step has not succeeded in this job.
pub fn output<T: DeserializeOwned>(job: &Job, step: Step) -> Option<T> {
    let record = job
        .steps
        .iter()
        .rev()
        .find(|s| s.step == step.name() && s.error.is_none() && s.finished_at.is_some())?;
    let map: serde_json::Map<String, Value> = record
        .outputs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(map)).ok()
}

/// The output `step` needs from an earlier step, or the error that says
/// which step must run first.
pub(crate) fn needs<T: DeserializeOwned>(
    job: &Job,
    earlier: Step,
    what: &str,
) -> Result<T, FerryError> {
    output(job, earlier).ok_or_else(|| {
        FerryError::Usage(format!("job {}: {what} (run {earlier} first)", job.job_id))
    })
}

/// The rows the job's main step (load or convert) reported in its current
/// attempt, if it succeeded.
pub(crate) fn job_rows(job: &Job) -> Option<u64> {
    job.steps
        .iter()
        .rev()
        .find(|s| {
            s.attempt == job.attempts
                && s.error.is_none()
                && s.step.parse::<Step>().is_ok_and(Step::counts_rows)
        })
        .and_then(|s| s.rows)
}

/// Rows the error policy set aside, as outputs record them
/// (`rejected_rows`, `rejects`): only when there are some.
pub(crate) fn rejects(rejected: u64, file: Option<&Path>) -> (Option<u64>, Option<String>) {
    match file.filter(|_| rejected > 0) {
        Some(f) => (Some(rejected), Some(f.display().to_string())),
        None => (None, None),
    }
}

/// The output fields `step` records, read off its output type.
pub fn output_fields(step: Step) -> &'static [&'static str] {
    match step {
        Step::CreateJob => fields::<create_job::Output>(),
        Step::Download => fields::<download::Output>(),
        Step::Transform => fields::<transform::Output>(),
        Step::SqlProcessor | Step::TransformAndLoad => fields::<sql_processor::Output>(),
        Step::Convert => fields::<convert::Output>(),
        Step::Validate => fields::<validate::Output>(),
        Step::Upload => fields::<upload::Output>(),
        Step::Notify => fields::<notify::Output>(),
    }
}

/// The field names of a struct, as serde knows them: its `Deserialize` asks
/// for a struct with those fields, and this deserializer answers with them
/// instead of data.
fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Fields(&'static [&'static str]);

    impl<'de> de::Deserializer<'de> for &mut Fields {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct's field names"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("only a struct's field names"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut f = Fields(&[]);
    let _ = T::deserialize(&mut f);
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_lists_its_output_fields() {
        for step in Step::ALL {
            assert!(!output_fields(step).is_empty(), "{step}");
        }
        assert_eq!(output_fields(Step::Download), ["input_path"]);
    }
}
