//! s3-efs-downloader: stages the input object into the job folder, checking
//! the version, ETag and size the event named.

use ferry_connectors::jobs::Job;
use ferry_connectors::store::{self, Expect, Location};
use serde::{Deserialize, Serialize};

use super::{Outcome, needs};
use crate::error::FerryError;
use crate::workflow::{Runtime, Step};

/// What s3-efs-downloader records, and the later steps read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// The staged file, inside the job folder.
    pub input_path: String,
}

impl Runtime {
    pub(crate) async fn download(&self, job: &Job) -> Result<Outcome, FerryError> {
        let dir = self.job_dir(job)?;
        let location = Location::parse(&job.input.uri)?;
        let expect = Expect {
            version: job.input.version.clone(),
            etag: job.input.etag.clone(),
            size: job.input.size,
        };
        let staged = store::stage(&location, &dir.input(), &expect).await?;
        if matches!(location, Location::S3 { .. }) && !dir.contains(&staged.path) {
            return Err(FerryError::Internal(format!(
                "{} was staged outside the job folder",
                staged.path.display()
            )));
        }
        let output = Output {
            input_path: staged.path.display().to_string(),
        };
        Outcome::new(None, Some(staged.size), &output)
    }
}

/// The staged input of a job whose download step ran.
pub(crate) fn staged_input(job: &Job) -> Result<String, FerryError> {
    needs::<Output>(job, Step::Download, "the input is not staged yet").map(|o| o.input_path)
}
