//! The Loader, fused for one process: stage the input, decode, transform,
//! encode every batch once into binary COPY (and COPY text for the `.sql`
//! artifacts), stream it into PostgreSQL while writing the artifacts, and
//! publish atomically.
//!
//! Batches are encoded on the rayon pool in parallel and come back in order
//! through a bounded queue; the COPY streams and the artifact writer consume
//! the same bytes. Rows are counted at every boundary (decoded, encoded,
//! accepted by PostgreSQL, written to artifacts) and must agree.

pub mod parts;
mod pipeline;
mod prepare;
mod split;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use ferry_connectors::pg::artifacts::{ArtifactFile, ArtifactKinds};
use ferry_connectors::pg::load::{Begin, LoadSession, Outcome, PreviousLoad};
use ferry_connectors::pg::receipt::Receipt;
use ferry_connectors::pg::{BinaryEncoder, LoadMode, PgConfig, QualifiedName, SchemaChange};
use ferry_connectors::work::JobDir;
use serde::{Deserialize, Serialize};

use crate::error::FerryError;
use crate::spec::DatasetSpec;

pub use self::parts::{PartOf, SplitPlan, plan_split};
use self::pipeline::{Encoders, Stop, pipeline};
use self::prepare::{TablePlan, prepare};
pub(crate) use self::prepare::{output_columns, select_loaded, verify_policy, with_lineage};
pub use self::split::{
    ArtifactSource, EncodedColumn, TRANSFORM_REPORT, TransformReport, load_artifacts,
    transform_artifacts,
};

/// How to run a load, beyond what the spec says.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Parallel COPY connections; `None` picks by mode (see [`default_streams`]).
    pub streams: Option<usize>,
    /// Load even if the ledger has this input.
    pub force: bool,
    /// Working storage root.
    pub work_dir: PathBuf,
    /// Which artifacts to write.
    pub artifacts: ArtifactKinds,
    /// Artifact part size in bytes.
    pub part_bytes: u64,
    /// Overrides the spec's target table.
    pub table: Option<QualifiedName>,
    /// Overrides the spec's load mode.
    pub mode: Option<LoadMode>,
    /// Overrides the spec's keys.
    pub keys: Option<Vec<String>>,
    /// Show a progress bar.
    pub progress: bool,
    /// The job this load is a step of (`None` for a one-off `ferry load`).
    pub job: Option<JobContext>,
    /// Whether a load that writes its artifacts while it loads (the fused
    /// transform+sql-processor) syncs each to disk: not for a routed job,
    /// whose upload step archives them into a synced `file.zip` in the same
    /// process; yes for a one-off `ferry load`, whose folder is what its
    /// user keeps (see [`ArtifactSpec::sync`](ferry_connectors::pg::artifacts::ArtifactSpec::sync)).
    pub sync_artifacts: bool,
    /// Transform just this part of a split input (see [`parts`]): its
    /// artifacts under their own names, no `load.sql` driver (the load of
    /// all parts writes it), its `transform.json` in its own folder.
    pub part: Option<PartOf>,
}

impl LoadOptions {
    /// The load mode (flag, else the spec's, else append) and the number of
    /// COPY streams (flag, else by mode: see [`default_streams`]).
    pub fn mode_and_streams(&self, spec: &DatasetSpec) -> (LoadMode, usize) {
        let mode = self
            .mode
            .or(spec.target.as_ref().map(|t| t.mode))
            .unwrap_or(LoadMode::Append);
        (mode, self.streams.unwrap_or_else(|| default_streams(mode)))
    }
}

/// Whether a load loaded its rows or found its input in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadStatus {
    /// The rows are in the table.
    Loaded,
    /// The ledger had this input in this table already: nothing was loaded.
    Skipped,
}

/// The file a load step leaves in its run folder: its report, which
/// `ferry load` prints once the job has run.
pub const LOAD_REPORT: &str = "load.json";

/// What a load did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// Job id (UUIDv7).
    pub job_id: String,
    /// Dataset name.
    pub dataset: String,
    /// The input as given.
    pub input: String,
    /// Target table.
    pub target: String,
    /// Load mode.
    pub mode: LoadMode,
    /// `loaded`, or `skipped` when the ledger already had this input.
    pub status: LoadStatus,
    /// Rows loaded.
    pub rows: u64,
    /// Input size in bytes.
    pub input_bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Whether ferry created the target table.
    pub created_table: bool,
    /// The job's working folder.
    pub job_dir: PathBuf,
    /// Artifacts written.
    pub artifacts: Vec<ArtifactFile>,
    /// The earlier load, when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_job: Option<String>,
    /// Input rows set aside under the dataset's error policy.
    pub rejected: u64,
    /// The reject file, when rows were rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejects: Option<PathBuf>,
    /// What the load changed in the table's columns, or left out of it
    /// (`[target] on_new_columns`, `on_type_change`); empty when nothing.
    #[serde(default)]
    pub schema_changes: Vec<SchemaChange>,
    /// Input rows left out because their key came again (`upsert` and
    /// `delete-insert` under `duplicate_keys = "first"|"last"`).
    #[serde(default)]
    pub duplicate_rows: u64,
    /// What the load proved about the stored rows before publishing
    /// (`[target] verify`); also written as `receipt.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// The file a load leaves in its job folder: its [`Receipt`].
pub const RECEIPT: &str = "receipt.json";

impl LoadReport {
    /// Rows per second.
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }
    /// Input megabytes (10^6) per second.
    pub fn mb_per_second(&self) -> f64 {
        self.input_bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

/// The number of COPY streams when none is given: every core for `replace`,
/// whose streams write straight into the new table and become visible in
/// one instant, and one for `append` and `upsert`. Several `append` streams
/// commit together by two-phase commit, all or nothing, but not in one
/// instant to readers (see `ferry_connectors::pg::load`), so they are asked
/// for, not given; where two-phase commit does not fit they go through a
/// staging table and a second pass (`INSERT … SELECT`) that costs more than
/// the parallel COPY saves (figures: `benchmarks/results/tuning.md`).
pub fn default_streams(mode: LoadMode) -> usize {
    match mode {
        LoadMode::Replace => crate::ordered::cores(),
        LoadMode::Append | LoadMode::Upsert | LoadMode::DeleteInsert => 1,
    }
}

/// Worker threads for decoding and encoding. When PostgreSQL runs on this
/// machine its COPY backends (one per stream) need cores too: ferry leaves
/// them one core each, which was faster and smaller than competing with them
/// (`benchmarks/results/tuning.md`). A remote server (RDS) gets every core. `FERRY_THREADS`
/// overrides the choice.
pub fn worker_threads(pg: &PgConfig, streams: usize) -> usize {
    if let Some(n) = std::env::var("FERRY_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return n;
    }
    let cores = crate::ordered::cores();
    if pg.is_local() {
        cores.saturating_sub(streams).max(1)
    } else {
        cores
    }
}

/// The artifacts that hold the sent rows in order, for a refused receipt
/// to name the row that differs.
pub(crate) fn sent_rows(artifacts: &[ArtifactFile]) -> ferry_connectors::pg::load::SentRows {
    let of = |kind| {
        artifacts
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| a.path.clone())
            .collect()
    };
    ferry_connectors::pg::load::SentRows {
        pgcopy: of(ferry_connectors::work::FileKind::Pgcopy),
        sql: of(ferry_connectors::work::FileKind::Sql),
    }
}

/// The earlier load the ledger found, for the report.
pub(crate) fn describe_previous(p: PreviousLoad) -> String {
    format!("job {} at {}, {} rows", p.job_id, p.loaded_at, p.rows)
}

/// `ddmmyyyyhhmmss` (UTC), the job folder's run stamp as the reference
/// architecture names it.
pub fn run_stamp() -> String {
    chrono::Utc::now().format("%d%m%Y%H%M%S").to_string()
}

/// A job's identity when a load runs as a step of a job (`ferry run`,
/// `ferry task`), instead of as a one-off `ferry load`.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job id (names staging tables and ledger entries).
    pub job_id: String,
    /// The job's folder.
    pub dir: JobDir,
    /// The input as the ledger records it (`s3://b/k#version=…`).
    pub identity: String,
    /// The input as people know it (`s3://b/k`).
    pub display: String,
}

/// Runs a whole load in one process: stage, decode, transform, encode, COPY
/// while writing the artifacts, publish. (The Loader's transform and
/// sql-processor steps, fused.)
///
/// An NDJSON field first seen past the inference window fails the read
/// (nothing is dropped) and rolls the load back; the load then runs once
/// more with the whole file inferred, so the field becomes a column and
/// meets the table under `[target] on_new_columns` like any other.
pub async fn load(
    spec: &DatasetSpec,
    input_uri: &str,
    pg: &PgConfig,
    opts: &LoadOptions,
) -> Result<LoadReport, FerryError> {
    match load_once(spec, input_uri, pg, opts).await {
        Err(e) => match whole_file_inference(spec, &e, opts) {
            Some(wider) => load_once(&wider, input_uri, pg, opts).await,
            None => Err(e),
        },
        done => done,
    }
}

/// The spec to run again with every line inferred, when `e` is a field
/// first seen past the inference window (and the window was not the whole
/// file already); the failed attempt's artifacts are cleared first.
pub(crate) fn whole_file_inference(
    spec: &DatasetSpec,
    e: &FerryError,
    opts: &LoadOptions,
) -> Option<DatasetSpec> {
    let FerryError::Decode(crate::decode::DecodeError::NewField { field, line, .. }) = e else {
        return None;
    };
    if spec.source.infer_rows == Some(0) {
        return None;
    }
    tracing::info!(field = %field, line, "a field first appears past the inference window: inferring from the whole file and loading again (the first attempt rolled back)");
    if let Some(job) = &opts.job {
        let _ = std::fs::remove_dir_all(job.dir.root().join("artifacts"));
    }
    let mut wider = spec.clone();
    wider.source.infer_rows = Some(0);
    Some(wider)
}

async fn load_once(
    spec: &DatasetSpec,
    input_uri: &str,
    pg: &PgConfig,
    opts: &LoadOptions,
) -> Result<LoadReport, FerryError> {
    let p = prepare(spec, input_uri, opts).await?;
    let mut session = match LoadSession::begin(pg, p.request.clone()).await? {
        Begin::AlreadyLoaded(prev) => {
            return Ok(p.report(
                LoadStatus::Skipped,
                0,
                false,
                Vec::new(),
                Some(prev),
                Vec::new(),
            ));
        }
        Begin::Ready(s) => s,
    };
    tracing::info!(job_id = %p.job_id, dataset = %spec.name, input = %p.display, table = %p.request.target, mode = %p.request.mode, streams = p.request.streams, "load started");
    for change in session.schema_changes() {
        tracing::info!(job_id = %p.job_id, table = %p.request.target, "schema change: {}", change.describe());
    }
    let plan = TablePlan::of_session(&session);
    let rows = match p.loaded_rows(&plan.loaded) {
        Ok(df) => df,
        Err(e) => {
            session.abort().await;
            return Err(e);
        }
    };
    let mut artifact_spec = p.artifact_spec(opts, TablePlan::of_session(&session));
    artifact_spec.sync = opts.sync_artifacts;
    artifact_spec.receipt = Some((p.request.verify.level, session.checks().to_vec()));
    let rows_done = Arc::new(AtomicU64::new(0));
    let mut progress = p.progress(opts.progress, rows_done.clone());
    let codecs = session.codecs();
    let piped = pipeline(
        Encoders {
            binary: BinaryEncoder::new(codecs.clone()),
            digester: session.digester(),
        },
        Some(session.sender()),
        rows,
        spec,
        artifact_spec,
        p.ledger(),
        rows_done,
    )
    .await;
    progress.finish();
    if let Ok((rows, artifacts, sent)) = &piped
        && opts.job.is_some()
        && let Err(e) = p
            .write_transform_report(&codecs, &plan, *rows, artifacts, sent.clone())
            .await
    {
        session.abort().await;
        return Err(e);
    }
    match piped {
        Ok((rows, artifacts, sent)) => {
            session.locate_with(sent_rows(&artifacts));
            match session.finish(rows, sent).await? {
                Outcome::Loaded {
                    rows,
                    created,
                    schema_changes,
                    duplicates,
                    receipt,
                } => Ok(LoadReport {
                    duplicate_rows: duplicates,
                    receipt: receipt.map(|r| *r),
                    ..p.report(
                        LoadStatus::Loaded,
                        rows,
                        created,
                        artifacts,
                        None,
                        schema_changes,
                    )
                }),
                Outcome::AlreadyLoaded(prev) => Ok(p.report(
                    LoadStatus::Skipped,
                    0,
                    false,
                    artifacts,
                    Some(prev),
                    Vec::new(),
                )),
            }
        }
        Err(Stop::LoaderStopped) => {
            // A COPY stream failed: its error is the one to report.
            match session.finish(0, None).await {
                Err(e) => Err(e.into()),
                Ok(_) => Err(FerryError::Internal(
                    "the loader stopped without an error".into(),
                )),
            }
        }
        Err(Stop::Failed(e)) => {
            session.abort().await;
            Err(p.source.explain(e, &p.input))
        }
    }
}
