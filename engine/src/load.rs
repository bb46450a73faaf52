//! The Loader, fused for one process: stage the input, decode, transform,
//! encode every batch once into binary COPY (and COPY text for the `.sql`
//! artifacts), stream it into PostgreSQL while writing the artifacts, and
//! publish atomically.
//!
//! Batches are encoded on the rayon pool in parallel and come back in order
//! through a bounded queue; the COPY streams and the artifact writer consume
//! the same bytes. Rows are counted at every boundary (decoded, encoded,
//! accepted by PostgreSQL, written to artifacts) and must agree.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::RecordBatch;
use ferry_connectors::pg::artifacts::{
    ArtifactFile, ArtifactKinds, ArtifactSpec, ArtifactWriter, LedgerEntry,
};
use ferry_connectors::pg::codec::Codecs;
use ferry_connectors::pg::copy::{Encoded, encode_batch};
use ferry_connectors::pg::load::{
    Begin, CopyChunk, InputIdentity, LoadRequest, LoadSession, Outcome, OutputColumn, PreviousLoad,
    plan_output,
};
use ferry_connectors::pg::replay::{PgcopyChunks, Rows, SqlCopyChunks};
use ferry_connectors::pg::{
    BinaryEncoder, CopyFormat, LoadMode, PgConfig, PgError, PgType, QualifiedName,
};
use ferry_connectors::store::{Checksum, Expect, Location, Staged, stage};
use ferry_connectors::work::JobDir;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::decode::REJECTS_FILE;
use crate::error::FerryError;
use crate::ordered;
use crate::progress::Progress;
use crate::source::{Input, Source, register_source};
use crate::spec::DatasetSpec;
use crate::transform;

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

/// What a load did.
#[derive(Debug, Clone, Serialize)]
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
    pub status: &'static str,
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
}

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
/// whose streams write straight into the new table, and one for `append` and
/// `upsert`, where several streams must go through a staging table and a
/// second pass (`INSERT … SELECT`) that costs more than the parallel COPY
/// saves (measured on TPC-H lineitem SF1, 2 cores: append 6.7 s with one
/// stream vs 13.9 s with two; replace 5.9 s vs 5.3 s).
pub fn default_streams(mode: LoadMode) -> usize {
    match mode {
        LoadMode::Replace => std::thread::available_parallelism().map_or(2, |n| n.get()),
        LoadMode::Append | LoadMode::Upsert => 1,
    }
}

/// Worker threads for decoding and encoding. When PostgreSQL runs on this
/// machine its COPY backends (one per stream) need cores too: ferry leaves
/// them one core each (measured on TPC-H lineitem SF1, 2 cores, append, one
/// stream: 5.9 s with one worker vs 6.2–6.8 s with two, and 250 MB vs 300 MB
/// peak RSS). A remote server (RDS) gets every core. `FERRY_THREADS`
/// overrides the choice.
pub fn worker_threads(pg: &PgConfig, streams: usize) -> usize {
    if let Some(n) = std::env::var("FERRY_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return n;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    if pg.is_local() {
        cores.saturating_sub(streams).max(1)
    } else {
        cores
    }
}

/// The earlier load the ledger found, for the report.
fn describe_previous(p: PreviousLoad) -> String {
    format!("job {} at {}, {} rows", p.job_id, p.loaded_at, p.rows)
}

/// `ddmmyyyyhhmmss` (UTC), the job folder's run stamp as the reference
/// architecture names it.
pub fn run_stamp() -> String {
    chrono::Utc::now().format("%d%m%Y%H%M%S").to_string()
}

/// Rows encoded per task: small enough to spread over every core and keep
/// COPY messages and artifact parts fine-grained.
const ENCODE_ROWS: usize = 8192;

fn encode(
    encoder: &BinaryEncoder,
    batch: &RecordBatch,
    first_row: u64,
    want_text: bool,
) -> Result<Encoded, FerryError> {
    encode_batch(encoder, batch, first_row, true, want_text).map_err(|e| FerryError::Encode {
        row: first_row + e.row as u64 + 1,
        source: e,
    })
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

/// Everything decided before the first row: the job folder, the staged and
/// checksummed input, the plan, the target and the load request.
struct Prepared {
    started: Instant,
    job_id: String,
    job_dir: PathBuf,
    display: String,
    staged: Staged,
    input: Input,
    source: Source,
    df: datafusion::dataframe::DataFrame,
    request: LoadRequest,
}

async fn prepare(
    spec: &DatasetSpec,
    input_uri: &str,
    opts: &LoadOptions,
) -> Result<Prepared, FerryError> {
    let started = Instant::now();
    let (job_id, job_dir) = match &opts.job {
        Some(job) => (job.job_id.clone(), job.dir.root().to_path_buf()),
        None => {
            let job_id = uuid::Uuid::now_v7().to_string();
            let work_dir = std::path::absolute(&opts.work_dir).map_err(|e| {
                FerryError::io(format!("working directory {}", opts.work_dir.display()), e)
            })?;
            let dir = work_dir.join(&job_id).join(run_stamp());
            (job_id, dir)
        }
    };
    let target_spec = spec.target.as_ref();
    let table = opts
        .table
        .clone()
        .or_else(|| spec.target_table())
        .ok_or_else(|| {
            FerryError::Usage(format!(
                "{}: no target table (set [target] table, or pass --table)",
                spec.toml_path().display()
            ))
        })?;
    let (mode, streams) = opts.mode_and_streams(spec);
    let keys = opts
        .keys
        .clone()
        .or_else(|| target_spec.map(|t| t.keys.clone()))
        .unwrap_or_default();

    // Stage the input (S3 objects are downloaded into the job folder).
    let location = Location::parse(input_uri).map_err(FerryError::from)?;
    let staged = stage(&location, &job_dir.join("input"), &Expect::default())
        .await
        .map_err(FerryError::from)?;
    let identity = match (&opts.job, &location, &staged.version, &staged.etag) {
        (Some(job), ..) => job.identity.clone(),
        (None, Location::S3 { uri, .. }, Some(v), _) if v != "null" => {
            format!("{uri}#version={v}")
        }
        (None, Location::S3 { uri, .. }, _, Some(e)) => {
            format!("{uri}#etag={}", e.trim_matches('"'))
        }
        (None, Location::S3 { uri, .. }, _, _) => uri.clone(),
        (None, Location::Local(p), _, _) => std::path::absolute(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string(),
    };
    let display = opts
        .job
        .as_ref()
        .map_or_else(|| input_uri.to_string(), |j| j.display.clone());
    // Hashed beside the load: see `Checksum`.
    let checksum = Checksum::of_file(staged.path.clone(), display.clone());
    let input = Input {
        path: staged.path.clone(),
        display: display.clone(),
    };

    // Decode + transform plan.
    let ctx = transform::new_session();
    let rejects = job_dir.join(REJECTS_FILE);
    let _ = std::fs::remove_file(&rejects); // from an earlier attempt in this folder
    let source = register_source(&ctx, spec, &input, Some(rejects)).await?;
    let df = transform::plan(&ctx, spec).await?;
    let (df, renamed) = transform::name_for_target(df, spec)?;
    let keys: Vec<String> = keys.iter().map(|k| renamed.table_name(k)).collect();
    let schema = df.schema().as_arrow().clone();
    let types: std::collections::BTreeMap<String, String> = target_spec
        .map(|t| t.types.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (renamed.table_name(&k), v))
        .collect();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let pg = match types.get(f.name()) {
            Some(t) => PgType::parse(t).ok_or_else(|| FerryError::Usage(format!("target.types.{}: unknown type {t:?}", f.name())))?,
            None => PgType::for_field(f).ok_or_else(|| {
                FerryError::Usage(format!(
                    "column {:?} has Arrow type {} with no PostgreSQL mapping; cast it in {} or set [target.types]",
                    f.name(),
                    f.data_type(),
                    spec.transform_path.display()
                ))
            })?,
        };
        columns.push(OutputColumn {
            name: f.name().clone(),
            data_type: f.data_type().clone(),
            nullable: f.is_nullable(),
            pg,
        });
    }
    for k in &keys {
        if !columns.iter().any(|c| &c.name == k) {
            return Err(FerryError::Usage(format!(
                "key column {k:?} is not produced by the transform"
            )));
        }
    }
    let request = LoadRequest {
        target: table,
        mode,
        keys,
        streams: streams.max(1),
        create: target_spec.is_none_or(|t| t.create),
        force: opts.force,
        input: InputIdentity {
            input: identity,
            checksum,
            bytes: staged.size,
        },
        dataset: spec.name.clone(),
        job_id: job_id.clone(),
        columns,
        format: CopyFormat::Binary,
    };
    Ok(Prepared {
        started,
        job_id,
        job_dir,
        display,
        staged,
        input,
        source,
        df,
        request,
    })
}

impl Prepared {
    fn report(
        &self,
        status: &'static str,
        rows: u64,
        created: bool,
        artifacts: Vec<ArtifactFile>,
        previous: Option<PreviousLoad>,
    ) -> LoadReport {
        LoadReport {
            job_id: self.job_id.clone(),
            dataset: self.request.dataset.clone(),
            input: self.display.clone(),
            target: self.request.target.to_string(),
            mode: self.request.mode,
            status,
            rows,
            input_bytes: self.staged.size,
            seconds: self.started.elapsed().as_secs_f64(),
            created_table: created,
            job_dir: self.job_dir.clone(),
            artifacts,
            previous_job: previous.map(describe_previous),
            rejected: self.source.rejected(),
            rejects: self.source.reject_file(),
        }
    }

    fn artifact_spec(
        &self,
        opts: &LoadOptions,
        target_ddl: String,
        columns: Vec<String>,
    ) -> ArtifactSpec {
        ArtifactSpec {
            dir: self.job_dir.join("artifacts"),
            stem: self.request.target.name.clone(),
            kinds: opts.artifacts,
            part_bytes: opts.part_bytes,
            target: self.request.target.clone(),
            target_ddl,
            columns,
            mode: self.request.mode,
            keys: self.request.keys.clone(),
        }
    }

    /// Writes `transform.json` into the job folder: what was encoded, for
    /// sql-processor (and the uploader's manifest).
    async fn write_transform_report(
        &self,
        codecs: &Codecs,
        rows: u64,
        artifacts: &[ArtifactFile],
    ) -> Result<TransformReport, FerryError> {
        let checksum = self.request.input.checksum_value().await?;
        let report = TransformReport {
            job_id: self.job_id.clone(),
            dataset: self.request.dataset.clone(),
            input: self.display.clone(),
            identity: self.request.input.input.clone(),
            checksum,
            input_bytes: self.staged.size,
            target: self.request.target.to_string(),
            mode: self.request.mode,
            keys: self.request.keys.clone(),
            create: self.request.create,
            columns: self
                .request
                .columns
                .iter()
                .zip(codecs.iter())
                .map(|(c, codec)| EncodedColumn {
                    name: c.name.clone(),
                    data_type: c.data_type.clone(),
                    nullable: c.nullable,
                    pg: codec.pg.to_string(),
                })
                .collect(),
            rows,
            seconds: self.started.elapsed().as_secs_f64(),
            artifacts: artifacts
                .iter()
                .map(|a| RecordedArtifact {
                    path: a.path.clone(),
                    kind: a.kind.to_string(),
                    rows: a.rows,
                    bytes: a.bytes,
                })
                .collect(),
            rejected: self.source.rejected(),
            rejects: self.source.reject_file(),
        };
        let path = self.job_dir.join(TRANSFORM_REPORT);
        let json =
            serde_json::to_vec_pretty(&report).map_err(|e| FerryError::Internal(e.to_string()))?;
        std::fs::write(&path, json)
            .map_err(|e| FerryError::io(format!("writing {}", path.display()), e))?;
        Ok(report)
    }

    /// The ledger entry for the artifacts' driver, made once the checksum is
    /// known (by the artifact writer's thread, at its end).
    fn ledger(&self) -> impl FnOnce() -> Result<LedgerEntry, PgError> + Send + 'static {
        let input = self.request.input.clone();
        let (dataset, job_id, bytes) = (
            self.request.dataset.clone(),
            self.job_id.clone(),
            self.staged.size,
        );
        move || {
            Ok(LedgerEntry {
                checksum: input.wait_checksum()?,
                input: input.input,
                dataset,
                job_id,
                bytes,
            })
        }
    }

    fn progress(&self, on: bool, rows_done: Arc<AtomicU64>) -> Progress {
        let counters = self.source.counters.clone();
        Progress::start(
            on,
            self.source.size,
            Arc::new(move || counters.bytes.load(Ordering::Relaxed)),
            rows_done,
        )
    }
}

/// Runs a whole load in one process: stage, decode, transform, encode, COPY
/// while writing the artifacts, publish. (The Loader's transform and
/// sql-processor steps, fused.)
pub async fn load(
    spec: &DatasetSpec,
    input_uri: &str,
    pg: &PgConfig,
    opts: &LoadOptions,
) -> Result<LoadReport, FerryError> {
    let p = prepare(spec, input_uri, opts).await?;
    let session = match LoadSession::begin(pg, p.request.clone()).await? {
        Begin::AlreadyLoaded(prev) => {
            return Ok(p.report("skipped", 0, false, Vec::new(), Some(prev)));
        }
        Begin::Ready(s) => s,
    };
    tracing::info!(job_id = %p.job_id, dataset = %spec.name, input = %p.display, table = %p.request.target, mode = %p.request.mode, streams = p.request.streams, "load started");
    let artifact_spec = p.artifact_spec(
        opts,
        session.target_ddl().to_string(),
        session.columns().to_vec(),
    );
    let rows_done = Arc::new(AtomicU64::new(0));
    let mut progress = p.progress(opts.progress, rows_done.clone());
    let codecs = session.codecs();
    let piped = pipeline(
        BinaryEncoder::new(codecs.clone()),
        Some(session.sender()),
        p.df.clone(),
        spec,
        artifact_spec,
        p.ledger(),
        rows_done,
    )
    .await;
    progress.finish();
    if let Ok((rows, artifacts)) = &piped
        && opts.job.is_some()
        && let Err(e) = p.write_transform_report(&codecs, *rows, artifacts).await
    {
        session.abort().await;
        return Err(e);
    }
    match piped {
        Ok((rows, artifacts)) => match session.finish(rows).await? {
            Outcome::Loaded { rows, created } => {
                Ok(p.report("loaded", rows, created, artifacts, None))
            }
            Outcome::AlreadyLoaded(prev) => {
                Ok(p.report("skipped", 0, false, artifacts, Some(prev)))
            }
        },
        Err(Stop::LoaderStopped) => {
            // A COPY stream failed: its error is the one to report.
            match session.finish(0).await {
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

/// The file the transform step leaves for sql-processor in the job folder.
pub const TRANSFORM_REPORT: &str = "transform.json";

/// One output column as the transform step encoded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedColumn {
    /// Name.
    pub name: String,
    /// Arrow type out of the transform.
    pub data_type: arrow::datatypes::DataType,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// The PostgreSQL type the binary values were encoded for.
    pub pg: String,
}

/// One artifact file, as recorded in `transform.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedArtifact {
    /// Path.
    pub path: PathBuf,
    /// `sql`, `pgcopy` or `driver`.
    pub kind: String,
    /// Rows it holds.
    pub rows: u64,
    /// Size.
    pub bytes: u64,
}

/// `transform.json`: what the transform step wrote, so sql-processor (another
/// container, maybe later) loads exactly it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformReport {
    /// Job id.
    pub job_id: String,
    /// Dataset.
    pub dataset: String,
    /// The input as people know it.
    pub input: String,
    /// The input as the ledger records it.
    pub identity: String,
    /// Checksum of the input's bytes.
    pub checksum: String,
    /// Input size.
    pub input_bytes: u64,
    /// Target table.
    pub target: String,
    /// Load mode.
    pub mode: LoadMode,
    /// Upsert keys.
    pub keys: Vec<String>,
    /// Create the target when missing.
    pub create: bool,
    /// The columns, in COPY order.
    pub columns: Vec<EncodedColumn>,
    /// Rows written.
    pub rows: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// The files.
    pub artifacts: Vec<RecordedArtifact>,
    /// Input rows set aside under the dataset's error policy.
    #[serde(default)]
    pub rejected: u64,
    /// The reject file, when rows were rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<PathBuf>,
}

/// The Loader's transform step on its own: decode, transform and encode into
/// the `.sql` and `.pgcopy` artifacts (with the column types the target has,
/// read from its catalog, or would be created with), and record them in
/// `transform.json`. Nothing is loaded.
pub async fn transform_artifacts(
    spec: &DatasetSpec,
    input_uri: &str,
    pg: &PgConfig,
    opts: &LoadOptions,
) -> Result<TransformReport, FerryError> {
    if !opts.artifacts.pgcopy && !opts.artifacts.sql {
        return Err(FerryError::Usage(
            "the transform step writes artifacts for sql-processor: .pgcopy, .sql or both".into(),
        ));
    }
    let p = prepare(spec, input_uri, opts).await?;
    let plan = plan_output(pg, &p.request).await?;
    let columns: Vec<String> = p.request.columns.iter().map(|c| c.name.clone()).collect();
    let artifact_spec = p.artifact_spec(opts, plan.target_ddl.clone(), columns);
    let rows_done = Arc::new(AtomicU64::new(0));
    let mut progress = p.progress(opts.progress, rows_done.clone());
    let piped = pipeline(
        BinaryEncoder::new(plan.codecs.clone()),
        None,
        p.df.clone(),
        spec,
        artifact_spec,
        p.ledger(),
        rows_done,
    )
    .await;
    progress.finish();
    let (rows, artifacts) = match piped {
        Ok(done) => done,
        Err(Stop::Failed(e)) => return Err(p.source.explain(e, &p.input)),
        Err(Stop::LoaderStopped) => {
            return Err(FerryError::Internal(
                "no loader runs in the transform step".into(),
            ));
        }
    };
    p.write_transform_report(&plan.codecs, rows, &artifacts)
        .await
}

/// Which artifacts sql-processor loads: `ferry task --from` (`FERRY_LOAD_FROM`),
/// or a dataset's `[target] load_from`, which wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactSource {
    /// The `.pgcopy` parts, as binary COPY (the fast path).
    #[default]
    Pgcopy,
    /// The `.sql` parts' COPY text blocks (what `psql -f load.sql` replays).
    Sql,
}

impl ArtifactSource {
    /// `pgcopy` or `sql`, as specs and flags spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactSource::Pgcopy => "pgcopy",
            ArtifactSource::Sql => "sql",
        }
    }
}

/// The Loader's sql-processor step: loads the artifacts the transform step
/// recorded in `<job_dir>/transform.json`, with parallel COPY streams under
/// the load mode's atomicity and the ledger's load-once guarantee. The
/// target must still have the column types the artifacts were encoded for.
pub async fn load_artifacts(
    job_dir: &std::path::Path,
    pg: &PgConfig,
    from: ArtifactSource,
    streams: Option<usize>,
    force: bool,
) -> Result<LoadReport, FerryError> {
    let started = Instant::now();
    let path = job_dir.join(TRANSFORM_REPORT);
    let text = std::fs::read(&path).map_err(|e| {
        FerryError::io(
            format!("reading {} (did the transform step run?)", path.display()),
            e,
        )
    })?;
    let t: TransformReport = serde_json::from_slice(&text)
        .map_err(|e| FerryError::Internal(format!("{}: {e}", path.display())))?;
    let target = QualifiedName::parse(&t.target).map_err(|e| FerryError::Usage(e.to_string()))?;
    let mut columns = Vec::with_capacity(t.columns.len());
    for c in &t.columns {
        columns.push(OutputColumn {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            pg: PgType::parse(&c.pg).ok_or_else(|| {
                FerryError::Internal(format!("{}: unknown type {:?}", path.display(), c.pg))
            })?,
        });
    }
    let (kind, format) = match from {
        ArtifactSource::Pgcopy => ("pgcopy", CopyFormat::Binary),
        ArtifactSource::Sql => ("sql", CopyFormat::Text),
    };
    let parts: Vec<&RecordedArtifact> = t.artifacts.iter().filter(|a| a.kind == kind).collect();
    if parts.is_empty() {
        return Err(FerryError::Usage(format!(
            "{}: the transform step wrote no .{kind} files",
            path.display()
        )));
    }
    let expected: u64 = parts.iter().map(|a| a.rows).sum();
    if expected != t.rows {
        return Err(FerryError::Internal(format!(
            "{}: the .{kind} files hold {expected} rows but the transform wrote {}",
            path.display(),
            t.rows
        )));
    }
    let request = LoadRequest {
        target: target.clone(),
        mode: t.mode,
        keys: t.keys.clone(),
        streams: streams.unwrap_or_else(|| default_streams(t.mode)).max(1),
        create: t.create,
        force,
        input: InputIdentity {
            input: t.identity.clone(),
            checksum: Checksum::known(t.checksum.clone()),
            bytes: t.input_bytes,
        },
        dataset: t.dataset.clone(),
        job_id: t.job_id.clone(),
        columns,
        format,
    };
    let report = |status, rows, created, previous: Option<PreviousLoad>| LoadReport {
        job_id: t.job_id.clone(),
        dataset: t.dataset.clone(),
        input: t.input.clone(),
        target: target.to_string(),
        mode: t.mode,
        status,
        rows,
        input_bytes: parts.iter().map(|a| a.bytes).sum(),
        seconds: started.elapsed().as_secs_f64(),
        created_table: created,
        job_dir: job_dir.to_path_buf(),
        artifacts: Vec::new(),
        previous_job: previous.map(describe_previous),
        rejected: t.rejected,
        rejects: t.rejects.clone(),
    };
    let session = match LoadSession::begin(pg, request).await? {
        Begin::AlreadyLoaded(prev) => return Ok(report("skipped", 0, false, Some(prev))),
        Begin::Ready(s) => s,
    };
    // The binary values were encoded for the types recorded; the target
    // must still have them (a changed table needs the transform again).
    if format == CopyFormat::Binary {
        for (codec, c) in session.codecs().iter().zip(&t.columns) {
            if codec.pg.to_string() != c.pg {
                session.abort().await;
                return Err(FerryError::Pg(PgError::Target {
                    table: target.to_string(),
                    detail: format!(
                        "column {:?} is {} now, but the .pgcopy files were encoded for {}; run the transform step again",
                        c.name, codec.pg, c.pg
                    ),
                }));
            }
        }
    }
    let tx = session.sender();
    let files: Vec<PathBuf> = parts.iter().map(|a| a.path.clone()).collect();
    let feed = async move {
        let mut first_row = 0u64;
        for f in files {
            // Reading is blocking I/O: one thread per part, chunks handed over
            // through a small channel.
            let (ctx, mut crx) = mpsc::channel::<Result<Rows, PgError>>(2);
            let reader = tokio::task::spawn_blocking(move || {
                let chunks: Box<dyn Iterator<Item = Result<Rows, PgError>>> = match from {
                    ArtifactSource::Pgcopy => match PgcopyChunks::open(&f) {
                        Ok(c) => Box::new(c),
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    },
                    ArtifactSource::Sql => match SqlCopyChunks::open(&f) {
                        Ok(c) => Box::new(c),
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    },
                };
                for c in chunks {
                    if ctx.blocking_send(c).is_err() {
                        break;
                    }
                }
            });
            while let Some(chunk) = crx.recv().await {
                let chunk = chunk?;
                let rows = chunk.rows;
                let sent = tx
                    .send(CopyChunk {
                        bytes: chunk.bytes,
                        rows,
                        first_row,
                    })
                    .await;
                if sent.is_err() {
                    return Ok(None); // a stream failed; finish() reports it
                }
                first_row += rows;
            }
            let _ = reader.await;
        }
        Ok::<Option<u64>, PgError>(Some(first_row))
    };
    match feed.await {
        Ok(Some(rows)) => match session.finish(rows).await? {
            Outcome::Loaded { rows, created } => Ok(report("loaded", rows, created, None)),
            Outcome::AlreadyLoaded(prev) => Ok(report("skipped", 0, false, Some(prev))),
        },
        Ok(None) => match session.finish(0).await {
            Err(e) => Err(e.into()),
            Ok(_) => Err(FerryError::Internal(
                "the loader stopped without an error".into(),
            )),
        },
        Err(e) => {
            session.abort().await;
            Err(e.into())
        }
    }
}

enum Stop {
    /// The COPY side closed its queue (a stream failed).
    LoaderStopped,
    /// Anything else.
    Failed(FerryError),
}

impl From<FerryError> for Stop {
    fn from(e: FerryError) -> Self {
        Stop::Failed(e)
    }
}

/// Decode → encode (parallel, ordered) → COPY + artifacts.
async fn pipeline(
    encoder: BinaryEncoder,
    copy_tx: Option<mpsc::Sender<CopyChunk>>,
    df: datafusion::dataframe::DataFrame,
    spec: &DatasetSpec,
    artifact_spec: ArtifactSpec,
    ledger: impl FnOnce() -> Result<LedgerEntry, PgError> + Send + 'static,
    rows_done: Arc<AtomicU64>,
) -> Result<(u64, Vec<ArtifactFile>), Stop> {
    let sql_path = spec.transform_path.display().to_string();

    let want_text = artifact_spec.kinds.sql;
    let write_artifacts = artifact_spec.kinds.sql || artifact_spec.kinds.pgcopy;

    // Artifact writer: a blocking thread fed in order.
    let (art_tx, mut art_rx) = mpsc::channel::<Arc<Encoded>>(4);
    let writer = std::thread::Builder::new()
        .name("ferry-artifacts".into())
        .spawn(move || -> Result<Vec<ArtifactFile>, PgError> {
            let mut w = ArtifactWriter::new(artifact_spec)?;
            while let Some(e) = art_rx.blocking_recv() {
                w.write_batch(&e.binary, &e.text, e.rows)?;
            }
            // Only the .sql driver records the ledger entry.
            let ledger = if want_text { Some(ledger()?) } else { None };
            w.finish(ledger.as_ref())
        })
        .map_err(|e| FerryError::io("starting the artifact writer", e))?;

    let (q_tx, q_rx) = ordered::channel::<Result<Encoded, FerryError>>(ordered::depth());
    let producer = async {
        let mut stream = transform::execute_ordered(df)
            .await
            .map_err(|e| FerryError::from_datafusion(e, &sql_path))?;
        let mut first_row = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| FerryError::from_datafusion(e, &sql_path))?;
            // Encode in slices (zero-copy) so work spreads over the pool and
            // COPY chunks and artifact parts stay small.
            for offset in (0..batch.num_rows()).step_by(ENCODE_ROWS) {
                let slice = batch.slice(offset, ENCODE_ROWS.min(batch.num_rows() - offset));
                let encoder = encoder.clone();
                let row = first_row;
                first_row += slice.num_rows() as u64;
                let submitted = q_tx
                    .spawn(move || encode(&encoder, &slice, row, want_text))
                    .await;
                if !submitted {
                    return Ok(first_row); // the consumer stopped; it reports why
                }
            }
        }
        drop(q_tx);
        Ok::<u64, Stop>(first_row)
    };
    let consumer = async {
        // Owned here: when the consumer stops early (the artifact writer
        // failed, say on a full disk), the queue closes and the producer
        // stops too instead of waiting on a full queue forever.
        let mut q_rx = q_rx;
        let mut rows = 0u64;
        while let Some(encoded) = q_rx.next().await {
            let encoded = encoded.map_err(|_| {
                FerryError::Internal("an encode task stopped without a result".into())
            })??;
            rows += encoded.rows;
            let chunk = CopyChunk {
                bytes: encoded.binary.clone(),
                rows: encoded.rows,
                first_row: encoded.first_row,
            };
            if let Some(tx) = &copy_tx
                && tx.send(chunk).await.is_err()
            {
                return Err(Stop::LoaderStopped);
            }
            if write_artifacts && art_tx.send(Arc::new(encoded)).await.is_err() {
                break; // the writer failed; its error is collected below
            }
            rows_done.store(rows, Ordering::Relaxed);
        }
        Ok::<u64, Stop>(rows)
    };
    let joined = tokio::try_join!(producer, consumer);
    drop(copy_tx);
    drop(art_tx);
    let artifacts = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| FerryError::Internal(e.to_string()))?
        .map_err(|_| FerryError::Internal("the artifact writer panicked".into()))?;
    let (produced, consumed) = joined?;
    let artifacts = artifacts.map_err(FerryError::from)?;
    if produced != consumed {
        return Err(FerryError::Pg(PgError::Count(format!(
            "the transform produced {produced} rows but {consumed} were encoded"
        )))
        .into());
    }
    let in_artifacts: u64 = artifacts
        .iter()
        .filter(|f| f.kind == "pgcopy")
        .map(|f| f.rows)
        .sum();
    if write_artifacts && artifacts.iter().any(|f| f.kind == "pgcopy") && in_artifacts != consumed {
        return Err(FerryError::Pg(PgError::Count(format!(
            "{consumed} rows encoded but {in_artifacts} written to .pgcopy files"
        )))
        .into());
    }
    Ok((consumed, artifacts))
}
