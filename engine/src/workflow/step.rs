//! The steps of the reference architecture as one type. A step is named
//! in the job record, in `ferry task <step>`, in the task contract and in
//! the state machines by the same string ([`Step::name`]); it is parsed once,
//! at the edge, and matched exhaustively everywhere else, so a new step cannot
//! be half-wired.

use std::fmt;
use std::str::FromStr;

use ferry_connectors::jobs::Workflow;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One step of a workflow.
///
/// | workflow | steps |
/// |---|---|
/// | Loader | create-job → s3-efs-downloader → transform → sql-processor → efs-s3-uploader → notify |
/// | Converter | create-job → s3-efs-downloader → convert → validate → efs-s3-uploader → notify |
///
/// In one process the Loader's transform and sql-processor run fused
/// ([`Step::TransformAndLoad`]): rows stream into COPY while the artifacts
/// are written, which saves writing and re-reading the `.pgcopy` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Parse the event, route it, create the job once and claim it.
    CreateJob,
    /// Copy the input from S3 into the job folder (checks size and ETag).
    Download,
    /// Decode, transform, encode into .sql and .pgcopy artifacts.
    Transform,
    /// Load the artifacts into PostgreSQL (parallel binary COPY, atomic, once).
    SqlProcessor,
    /// transform and sql-processor fused, in one process (never a task).
    TransformAndLoad,
    /// Convert to the dataset's [convert] format.
    Convert,
    /// Read the converted file back and compare.
    Validate,
    /// Zip the artifacts with manifest.json and upload them.
    Upload,
    /// End the job (failed if the input has an "error") and send its event.
    Notify,
}

impl Step {
    /// Every step, in workflow order.
    pub const ALL: [Step; 9] = [
        Step::CreateJob,
        Step::Download,
        Step::Transform,
        Step::SqlProcessor,
        Step::TransformAndLoad,
        Step::Convert,
        Step::Validate,
        Step::Upload,
        Step::Notify,
    ];

    /// The steps a container task runs (`ferry task <step>`): all but the
    /// fused one.
    pub const TASKS: [Step; 8] = [
        Step::CreateJob,
        Step::Download,
        Step::Transform,
        Step::SqlProcessor,
        Step::Convert,
        Step::Validate,
        Step::Upload,
        Step::Notify,
    ];

    /// The Loader as its state machine runs it, one task per step.
    pub const LOADER: [Step; 6] = [
        Step::CreateJob,
        Step::Download,
        Step::Transform,
        Step::SqlProcessor,
        Step::Upload,
        Step::Notify,
    ];

    /// The Converter as its state machine runs it, one task per step.
    pub const CONVERTER: [Step; 6] = [
        Step::CreateJob,
        Step::Download,
        Step::Convert,
        Step::Validate,
        Step::Upload,
        Step::Notify,
    ];

    /// The name the architecture, the job record and `ferry task` use.
    pub const fn name(self) -> &'static str {
        match self {
            Step::CreateJob => "create-job",
            Step::Download => "s3-efs-downloader",
            Step::Transform => "transform",
            Step::SqlProcessor => "sql-processor",
            Step::TransformAndLoad => "transform+sql-processor",
            Step::Convert => "convert",
            Step::Validate => "validate",
            Step::Upload => "efs-s3-uploader",
            Step::Notify => "notify",
        }
    }

    /// One line on what the step does (`ferry task --help`, the contract).
    pub const fn summary(self) -> &'static str {
        match self {
            Step::CreateJob => "Parse the event, route it, create the job once and claim it",
            Step::Download => "Copy the input from S3 into the job folder (checks size and ETag)",
            Step::Transform => "Decode, transform, encode into .sql and .pgcopy artifacts",
            Step::SqlProcessor => {
                "Load the artifacts into PostgreSQL (parallel binary COPY, atomic, once)"
            }
            Step::TransformAndLoad => {
                "transform and sql-processor in one process: rows stream into COPY while the artifacts are written"
            }
            Step::Convert => "Convert to the dataset's [convert] format",
            Step::Validate => "Read the converted file back and compare",
            Step::Upload => "Zip the artifacts with manifest.json and upload them",
            Step::Notify => "End the job (failed if the input has an \"error\") and send its event",
        }
    }

    /// The steps a workflow runs between create-job and notify when one
    /// process runs them all (`ferry run`, `ferry watch`).
    pub const fn in_process(workflow: Workflow) -> &'static [Step] {
        match workflow {
            Workflow::Loader => &[Step::Download, Step::TransformAndLoad, Step::Upload],
            Workflow::Converter => &[Step::Download, Step::Convert, Step::Validate, Step::Upload],
        }
    }

    /// Whether the step is part of `workflow` (create-job and notify are
    /// part of both).
    pub const fn belongs_to(self, workflow: Workflow) -> bool {
        match self {
            Step::CreateJob | Step::Download | Step::Upload | Step::Notify => true,
            Step::Transform | Step::SqlProcessor | Step::TransformAndLoad => {
                matches!(workflow, Workflow::Loader)
            }
            Step::Convert | Step::Validate => matches!(workflow, Workflow::Converter),
        }
    }

    /// Whether the step's rows are the job's rows: the rows loaded, or
    /// converted (manifest, job record and event report them).
    pub const fn counts_rows(self) -> bool {
        matches!(
            self,
            Step::SqlProcessor | Step::TransformAndLoad | Step::Convert
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A step name that is not one of [`Step::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown step {0:?}: one of {names}", names = Step::ALL.map(Step::name).join(", "))]
pub struct UnknownStep(pub String);

impl FromStr for Step {
    type Err = UnknownStep;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Step::ALL
            .into_iter()
            .find(|step| step.name() == s)
            .ok_or_else(|| UnknownStep(s.to_string()))
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// `ferry task <step>` takes the task steps, each listed with its summary.
impl clap::ValueEnum for Step {
    fn value_variants<'a>() -> &'a [Self] {
        &Step::TASKS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.summary()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_tasks_exclude_the_fused_step() {
        for step in Step::ALL {
            assert_eq!(step.name().parse::<Step>(), Ok(step));
            let json = serde_json::to_string(&step).unwrap();
            assert_eq!(serde_json::from_str::<Step>(&json).unwrap(), step);
        }
        assert!(!Step::TASKS.contains(&Step::TransformAndLoad));
        let err = "load".parse::<Step>().unwrap_err().to_string();
        assert!(
            err.contains("create-job") && err.contains("notify"),
            "{err}"
        );
        for w in [Workflow::Loader, Workflow::Converter] {
            let chain = match w {
                Workflow::Loader => Step::LOADER,
                Workflow::Converter => Step::CONVERTER,
            };
            assert!(chain.iter().all(|s| s.belongs_to(w)));
            assert!(Step::in_process(w).iter().all(|s| s.belongs_to(w)));
        }
    }
}
