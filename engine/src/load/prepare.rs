//! What a load needs before its first row: the job's folder and identity,
//! the staged input, the decode and transform plan, the target's columns.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ferry_connectors::jobs::{self, JobInput};
use ferry_connectors::pg::artifacts::{ArtifactFile, ArtifactSpec, LedgerEntry};
use ferry_connectors::pg::codec::Codecs;
use ferry_connectors::pg::load::{InputIdentity, LoadRequest, OutputColumn, PreviousLoad};
use ferry_connectors::pg::{CopyFormat, PgError, PgType};
use ferry_connectors::store::{Checksum, Expect, Location, Staged, stage};

use crate::decode::REJECTS_FILE;
use crate::error::FerryError;
use crate::progress::Progress;
use crate::source::{Input, Source, register_source};
use crate::spec::DatasetSpec;
use crate::transform;

use super::{
    EncodedColumn, LoadOptions, LoadReport, LoadStatus, TRANSFORM_REPORT, TransformReport,
    describe_previous, run_stamp,
};

/// Everything decided before the first row: the job folder, the staged and
/// checksummed input, the plan, the target and the load request.
pub(crate) struct Prepared {
    pub(crate) started: Instant,
    pub(crate) job_id: String,
    pub(crate) job_dir: PathBuf,
    pub(crate) display: String,
    pub(crate) staged: Staged,
    pub(crate) input: Input,
    pub(crate) source: Source,
    pub(crate) df: datafusion::dataframe::DataFrame,
    pub(crate) request: LoadRequest,
}

pub(crate) async fn prepare(
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
    let identity = match &opts.job {
        Some(job) => job.identity.clone(),
        None => jobs::ledger_identity(&JobInput {
            uri: match &location {
                Location::S3 { uri, .. } => uri.clone(),
                Location::Local(p) => std::path::absolute(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string(),
            },
            size: Some(staged.size),
            etag: staged.etag.clone(),
            version: staged.version.clone(),
        }),
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
        on_missing_columns: target_spec
            .map(|t| t.on_missing_columns)
            .unwrap_or_default(),
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
    pub(crate) fn report(
        &self,
        status: LoadStatus,
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

    pub(crate) fn artifact_spec(
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
    pub(crate) async fn write_transform_report(
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
            on_missing_columns: self.request.on_missing_columns,
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
            artifacts: artifacts.to_vec(),
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
    pub(crate) fn ledger(&self) -> impl FnOnce() -> Result<LedgerEntry, PgError> + Send + 'static {
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

    pub(crate) fn progress(&self, on: bool, rows_done: Arc<AtomicU64>) -> Progress {
        let counters = self.source.counters.clone();
        Progress::start(
            on,
            self.source.size,
            Arc::new(move || counters.bytes.load(Ordering::Relaxed)),
            rows_done,
        )
    }
}
