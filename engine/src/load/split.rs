//! The Loader as separate container tasks: transform writes the artifacts
//! and `transform.json`, sql-processor loads the artifacts (binary COPY
//! from `.pgcopy`, or the `.sql` files replayed).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use ferry_connectors::pg::artifacts::{
    ArtifactFile, ArtifactKinds, ArtifactSpec, ArtifactWriter, LedgerEntry,
};
use ferry_connectors::pg::load::{
    Begin, CopyChunk, InputIdentity, LoadRequest, LoadSession, Outcome, OutputColumn, PreviousLoad,
    plan_output,
};
use ferry_connectors::pg::receipt::{Digest, Digester, Except, Verify, VerifyPolicy, plan_checks};
use ferry_connectors::pg::replay::{PgcopyChunks, Rows, SqlCopyChunks};
use ferry_connectors::pg::{
    BinaryEncoder, CopyFormat, DriftPolicy, LoadMode, PgConfig, PgError, PgType, QualifiedName,
    SchemaChange,
};
use ferry_connectors::store::Checksum;
use ferry_connectors::work::FileKind;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::decode::DecodeError;
use crate::error::FerryError;
use crate::spec::DatasetSpec;

use super::pipeline::{Encoders, Stop, pipeline};
use super::prepare::{TablePlan, prepare};
use super::{LoadOptions, LoadReport, LoadStatus, SplitPlan, default_streams, describe_previous};

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
    /// `pg` was declared in `[target.types]` (it may widen a column to text).
    #[serde(default)]
    pub declared: bool,
}

/// `transform.json`: what the transform step wrote, so sql-processor (another
/// container, maybe later) loads exactly it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformReport {
    /// Job id.
    pub job_id: String,
    /// The dataset whose spec encoded the rows.
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
    /// What the load may do when the table drifted from the output.
    #[serde(flatten)]
    pub drift: DriftPolicy,
    /// The columns, in COPY order (an ignored column is not among them).
    pub columns: Vec<EncodedColumn>,
    /// The changes the transform step planned from the catalog (the load
    /// plans again against the table as it is then, and records what it did).
    #[serde(default)]
    pub schema_changes: Vec<SchemaChange>,
    /// Rows written.
    pub rows: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// Every artifact, in load order, with its rows and size.
    pub artifacts: Vec<ArtifactFile>,
    /// Input rows set aside under the dataset's error policy.
    #[serde(default)]
    pub rejected: u64,
    /// The reject file, when rows were rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<PathBuf>,
    /// What the load step proves (`[target] verify`).
    #[serde(default)]
    pub verify: Verify,
    /// Wanted changes by column (`[target.verify_except]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verify_except: BTreeMap<String, Except>,
    /// The digest of the rows the artifacts hold, as encoded (for the load
    /// step's receipt under `verify = "full"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Digest>,
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
    // A field past the inference window: once more with the whole file
    // inferred (see `load`).
    match transform_once(spec, input_uri, pg, opts).await {
        Err(e) => match super::whole_file_inference(spec, &e, opts) {
            Some(wider) => transform_once(&wider, input_uri, pg, opts).await,
            None => Err(e),
        },
        done => done,
    }
}

async fn transform_once(
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
    let output = plan_output(pg, &p.request).await?;
    let plan = TablePlan::of_output(&output);
    let rows = p.loaded_rows(&plan.loaded)?;
    let mut artifact_spec = p.artifact_spec(opts, TablePlan::of_output(&output));
    let checks = plan_checks(&output.codecs, &p.request.verify).map_err(PgError::from)?;
    artifact_spec.receipt = Some((p.request.verify.level, checks.clone()));
    let rows_done = Arc::new(AtomicU64::new(0));
    let mut progress = p.progress(opts.progress, rows_done.clone());
    let digester = (p.request.verify.level == Verify::Full).then(|| Digester::new(checks));
    let piped = pipeline(
        Encoders {
            binary: BinaryEncoder::new(output.codecs.clone()),
            digester,
        },
        None,
        rows,
        spec,
        artifact_spec,
        p.ledger(),
        rows_done,
    )
    .await;
    progress.finish();
    let (rows, artifacts, sent) = match piped {
        Ok(done) => done,
        Err(Stop::Failed(e)) => return Err(p.source.explain(e, &p.input)),
        Err(Stop::LoaderStopped) => {
            return Err(FerryError::Internal(
                "no loader runs in the transform step".into(),
            ));
        }
    };
    p.write_transform_report(&output.codecs, &plan, rows, &artifacts, sent)
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
///
/// A split input (`split.json` in the job folder) loads every part's
/// artifacts, in the file's order, as this one load; `max_bad_rows` then
/// bounds the rows the parts set aside together, as it bounds one file's.
pub async fn load_artifacts(
    job_dir: &std::path::Path,
    pg: &PgConfig,
    from: ArtifactSource,
    streams: Option<usize>,
    force: bool,
    max_bad_rows: u64,
) -> Result<LoadReport, FerryError> {
    let started = Instant::now();
    let path = job_dir.join(TRANSFORM_REPORT);
    let split = SplitPlan::read(job_dir)?;
    let t: TransformReport = match &split {
        Some(plan) => plan.merged_report(job_dir)?,
        None => {
            let text = std::fs::read(&path).map_err(|e| {
                FerryError::io(
                    format!("reading {} (did the transform step run?)", path.display()),
                    e,
                )
            })?;
            serde_json::from_slice(&text)
                .map_err(|e| FerryError::Internal(format!("{}: {e}", path.display())))?
        }
    };
    if split.is_some() && t.rejected > max_bad_rows {
        return Err(FerryError::Decode(DecodeError::TooManyBadRows {
            file: t.input.clone(),
            count: t.rejected,
            max: max_bad_rows,
            first: "see the reject file".to_string(),
            rejects: t
                .rejects
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
        }));
    }
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
            declared: c.declared,
        });
    }
    let (kind, format) = match from {
        ArtifactSource::Pgcopy => (FileKind::Pgcopy, CopyFormat::Binary),
        ArtifactSource::Sql => (FileKind::Sql, CopyFormat::Text),
    };
    let parts: Vec<&ArtifactFile> = t.artifacts.iter().filter(|a| a.kind == kind).collect();
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
        drift: t.drift,
        format,
        verify: VerifyPolicy {
            level: t.verify,
            except: t.verify_except.clone(),
        },
    };
    let report = |status,
                  rows,
                  created,
                  previous: Option<PreviousLoad>,
                  schema_changes: Vec<SchemaChange>| LoadReport {
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
        schema_changes,
        duplicate_rows: 0,
        receipt: None,
    };
    let mut session = match LoadSession::begin(pg, request).await? {
        Begin::AlreadyLoaded(prev) => {
            return Ok(report(
                LoadStatus::Skipped,
                0,
                false,
                Some(prev),
                Vec::new(),
            ));
        }
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
    if split.is_some()
        && t.artifacts.iter().any(|a| a.kind == FileKind::Sql)
        && let Err(e) = write_split_driver(&t, job_dir, &session)
    {
        session.abort().await;
        return Err(e);
    }
    session.locate_with(super::sent_rows(&t.artifacts));
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
        Ok(Some(rows)) => match session.finish(rows, t.sent.clone()).await? {
            Outcome::Loaded {
                rows,
                created,
                schema_changes,
                duplicates,
                receipt,
            } => Ok(LoadReport {
                duplicate_rows: duplicates,
                receipt: receipt.map(|r| *r),
                ..report(LoadStatus::Loaded, rows, created, None, schema_changes)
            }),
            Outcome::AlreadyLoaded(prev) => Ok(report(
                LoadStatus::Skipped,
                0,
                false,
                Some(prev),
                Vec::new(),
            )),
        },
        Ok(None) => match session.finish(0, None).await {
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

/// The `load.sql` driver of a split input: every part's `.sql` files in
/// order, under one transaction, one receipt and one ledger entry, as the
/// driver of an unsplit input (the parts write none of their own).
fn write_split_driver(
    t: &TransformReport,
    job_dir: &std::path::Path,
    session: &LoadSession,
) -> Result<(), FerryError> {
    let target = QualifiedName::parse(&t.target).map_err(|e| FerryError::Usage(e.to_string()))?;
    let spec = ArtifactSpec {
        dir: job_dir.join("artifacts"),
        stem: target.name.clone(),
        kinds: ArtifactKinds {
            sql: true,
            pgcopy: t.artifacts.iter().any(|a| a.kind == FileKind::Pgcopy),
        },
        part_bytes: 0,
        target,
        target_ddl: session.target_ddl().to_string(),
        columns: session.columns().to_vec(),
        mode: t.mode,
        keys: session.keys().to_vec(),
        duplicates: t.drift.duplicate_keys,
        schema_changes: t.schema_changes.clone(),
        receipt: Some((t.verify, session.checks().to_vec())),
        sync: true,
        keep_cached: true,
        driver: true,
    };
    let ledger = LedgerEntry {
        input: t.identity.clone(),
        checksum: t.checksum.clone(),
        dataset: t.dataset.clone(),
        job_id: t.job_id.clone(),
        bytes: t.input_bytes,
    };
    ArtifactWriter::write_driver(spec, t.artifacts.clone(), Some(&ledger), t.sent.as_ref())?;
    Ok(())
}
