//! The parts of a split input as steps see them: the transform step cuts
//! the input and records the plan (`split.json`); each part is transformed
//! by `ferry task transform --part K` (a Distributed Map item in AWS; in a
//! one-process run, a child process of this binary, so a part's memory and
//! a crash stay its own); sql-processor then loads every part as one load
//! (see [`crate::load::parts`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_connectors::jobs::Job;
use serde::{Deserialize, Serialize};

use super::Runtime;
use super::steps::download::staged_input;
use crate::error::FerryError;
use crate::load::{ArtifactSource, SplitPlan, plan_split, transform_artifacts};
use crate::source::Input;
use crate::spec::DatasetSpec;

/// How a one-process run starts one part: this binary as
/// `ferry task transform|convert --job-id J --part K`, with the arguments and
/// environment that find the same specs, job store, working storage and
/// database (the database URL travels in the environment, never in argv).
#[derive(Debug, Clone)]
pub struct PartCommand {
    /// The program (this executable).
    pub program: PathBuf,
    /// The job settings, passed after `task <step>` and before `--job-id`
    /// and `--part`.
    pub args: Vec<OsString>,
    /// Environment added for the child.
    pub env: Vec<(String, String)>,
    /// Parts run at once. Each part's decode already uses every core, so
    /// more only helps while others wait on disk.
    pub parallel: usize,
}

/// What `ferry task transform --part K` prints (its task output).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartOutput {
    /// The job.
    pub job_id: String,
    /// The part.
    pub part: usize,
    /// Of how many.
    pub parts: usize,
    /// Rows its artifacts hold.
    pub rows: u64,
    /// Its input bytes.
    pub bytes: u64,
    /// Artifact files it wrote.
    pub artifacts: usize,
    /// Rows it set aside under the error policy.
    pub rejected_rows: u64,
}

impl Runtime {
    /// Cuts the job's staged input into parts when its dataset asks for it
    /// (`[source] split_size`) and it can be cut, and records the plan in
    /// the job folder; `None` (and no plan) otherwise.
    pub(crate) async fn split(
        &self,
        job: &Job,
        spec: &DatasetSpec,
    ) -> Result<Option<SplitPlan>, FerryError> {
        // The plan and part folders of an earlier attempt in this folder
        // must not be mistaken for this attempt's (its spec may no longer
        // split, or split otherwise).
        let dir = self.job_dir(job)?;
        let parts = dir.root().join(crate::load::parts::PARTS_DIR);
        if parts.exists() {
            std::fs::remove_dir_all(&parts)
                .map_err(|e| FerryError::io(format!("removing {}", parts.display()), e))?;
        }
        let stale = dir.root().join(crate::load::parts::SPLIT_PLAN);
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(FerryError::io(format!("removing {}", stale.display()), e));
            }
            _ => {}
        }
        if spec.source.split_size.is_none() {
            return Ok(None);
        }
        let input = Input {
            path: PathBuf::from(staged_input(job)?),
            display: job.input.uri.clone(),
        };
        let Some(plan) = plan_split(spec, &input).await? else {
            return Ok(None);
        };
        plan.write(dir.root())?;
        tracing::info!(
            job_id = %job.job_id,
            parts = plan.ranges.len(),
            bytes = plan.bytes,
            split_size = plan.split_size,
            "the input is split into parts"
        );
        Ok(Some(plan))
    }

    /// The job's split plan, which `--part` needs.
    pub(crate) fn read_plan(&self, job: &Job) -> Result<SplitPlan, FerryError> {
        SplitPlan::read(self.job_dir(job)?.root())?.ok_or_else(|| {
            FerryError::Usage(format!(
                "job {}'s input was not split (its folder has no {}): run the step without --part",
                job.job_id,
                crate::load::parts::SPLIT_PLAN
            ))
        })
    }

    /// `ferry task transform --part K`: transforms part `index` of a split
    /// input into its artifacts and `parts/<K>/transform.json`. It records
    /// no step (the parts run at once; the job's transform step is the
    /// plan), renews the job's lease while it works, and may run again: a
    /// re-run rewrites the same files.
    pub async fn transform_part(
        &self,
        job_id: &str,
        index: usize,
    ) -> Result<PartOutput, FerryError> {
        let job = self.get(job_id).await?;
        let _lease = self.renew_lease(job_id);
        let spec = self.spec(&job)?;
        let plan = self.read_plan(&job)?;
        let part = plan.part(index)?;
        let bytes = part.range.bytes();
        let mut opts = self.load_options(&job)?;
        if !opts.artifacts.pgcopy && self.load_from(&spec) == ArtifactSource::Pgcopy {
            opts.artifacts.pgcopy = true;
        }
        opts.progress = false;
        opts.part = Some(part);
        let input = staged_input(&job)?;
        let r = transform_artifacts(&spec, &input, self.pg()?, &opts).await?;
        tracing::info!(
            job_id,
            part = index,
            rows = r.rows,
            bytes,
            "part transformed"
        );
        Ok(PartOutput {
            job_id: job_id.to_string(),
            part: index,
            parts: plan.ranges.len(),
            rows: r.rows,
            bytes,
            artifacts: r.artifacts.len(),
            rejected_rows: r.rejected,
        })
    }

    /// Runs every part of `plan` as a child process ([`PartCommand`] for
    /// `step`: `transform` or `convert`), at most `parallel` at once; a part that was killed or failed
    /// transiently is started once more (it rewrites its own files). The
    /// first failure stops the rest and is returned.
    pub(crate) async fn run_parts(
        &self,
        cmd: &PartCommand,
        step: &'static str,
        job_id: &str,
        plan: &SplitPlan,
    ) -> Result<(), FerryError> {
        let mut todo = plan.indices().into_iter();
        let mut running = tokio::task::JoinSet::new();
        let parallel = cmd.parallel.max(1);
        // Set on the first failure: the parts still running are killed
        // (the job failed; their files would be of no use).
        let stop = Arc::new(AtomicBool::new(false));
        loop {
            while running.len() < parallel {
                let Some(k) = todo.next() else { break };
                let cmd = cmd.clone();
                let job_id = job_id.to_string();
                let stop = stop.clone();
                running.spawn(async move {
                    match run_part(&cmd, step, &job_id, k, stop.clone()).await {
                        Err(e) if e.retryable() && !stop.load(Ordering::Relaxed) => {
                            tracing::warn!(job_id, part = k, error = %e, "part failed; starting it once more");
                            run_part(&cmd, step, &job_id, k, stop).await
                        }
                        done => done,
                    }
                });
            }
            let Some(done) = running.join_next().await else {
                return Ok(());
            };
            let done = done.map_err(|e| FerryError::Internal(format!("a part's runner: {e}")));
            if let Err(e) = done.and_then(|r| r) {
                stop.store(true, Ordering::Relaxed);
                while running.join_next().await.is_some() {}
                return Err(e);
            }
        }
    }
}

/// One part in a child process; its log goes to this process's stderr,
/// its output line is read and dropped. (std's process, on a blocking
/// thread: tokio's needs a feature that would rebuild every crate on tokio.)
async fn run_part(
    cmd: &PartCommand,
    step: &'static str,
    job_id: &str,
    index: usize,
    stop: Arc<AtomicBool>,
) -> Result<(), FerryError> {
    let cmd = cmd.clone();
    let job_id = job_id.to_string();
    tokio::task::spawn_blocking(move || run_part_blocking(&cmd, step, &job_id, index, &stop))
        .await
        .map_err(|e| FerryError::Internal(format!("part {index}'s runner: {e}")))?
}

fn run_part_blocking(
    cmd: &PartCommand,
    step: &str,
    job_id: &str,
    index: usize,
    stop: &AtomicBool,
) -> Result<(), FerryError> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(&cmd.program)
        .args(["task", step])
        .args(&cmd.args)
        .arg("--job-id")
        .arg(job_id)
        .arg("--part")
        .arg(index.to_string())
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            FerryError::io(
                format!("starting part {index} ({})", cmd.program.display()),
                e,
            )
        })?;
    // Its log is relayed by a thread of its own, so this one can watch
    // for the stop.
    let relay = child.stderr.take().map(|err| {
        std::thread::spawn(move || {
            let mut last = String::new();
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                if !line.trim().is_empty() {
                    last = line;
                }
            }
            last
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if stop.load(Ordering::Relaxed) => {
                let _ = child.kill();
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => return Err(FerryError::io(format!("waiting for part {index}"), e)),
        }
    };
    let last = relay.and_then(|r| r.join().ok()).unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(FerryError::Part {
        index,
        code: status.code(),
        message: if last.is_empty() {
            format!("its process ended with {status}")
        } else {
            last.trim_start_matches("ferry: error: ").to_string()
        },
    })
}
