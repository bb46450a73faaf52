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
use ferry_connectors::pg::{CopyFormat, PgError, PgType, SchemaChange};
use ferry_connectors::store::{Checksum, Expect, Location, Staged, stage};

use crate::decode::REJECTS_FILE;
use crate::error::FerryError;
use crate::progress::Progress;
use crate::source::{Input, Source, register_part};
use crate::spec::DatasetSpec;
use crate::transform;

use super::{
    EncodedColumn, LoadOptions, LoadReport, LoadStatus, TRANSFORM_REPORT, TransformReport,
    describe_previous, run_stamp,
};

/// How the output meets the table, from the load's plan: what the
/// artifacts and `transform.json` record.
pub(crate) struct TablePlan {
    /// `CREATE TABLE IF NOT EXISTS` for the target, then its changes.
    pub(crate) target_ddl: String,
    /// The table's columns in COPY order.
    pub(crate) columns: Vec<String>,
    /// The output columns the COPY carries (indices into the request's).
    pub(crate) loaded: Vec<usize>,
    /// Upsert keys as the table names them.
    pub(crate) keys: Vec<String>,
    /// The changes the load makes to the table (or leaves out).
    pub(crate) schema_changes: Vec<SchemaChange>,
}

impl TablePlan {
    /// The plan a load session made.
    pub(crate) fn of_session(s: &ferry_connectors::pg::load::LoadSession) -> TablePlan {
        TablePlan {
            target_ddl: s.target_ddl().to_string(),
            columns: s.columns().to_vec(),
            loaded: s.loaded().to_vec(),
            keys: s.keys().to_vec(),
            schema_changes: s.schema_changes().to_vec(),
        }
    }

    /// The plan the transform step made from the catalog.
    pub(crate) fn of_output(p: &ferry_connectors::pg::load::OutputPlan) -> TablePlan {
        TablePlan {
            target_ddl: p.target_ddl.clone(),
            columns: p.copy_columns.clone(),
            loaded: p.loaded.clone(),
            keys: p.keys.clone(),
            schema_changes: p.changes.clone(),
        }
    }
}

/// Everything decided before the first row: the job folder, the staged and
/// checksummed input, the plan, the target and the load request.
pub(crate) struct Prepared {
    pub(crate) started: Instant,
    pub(crate) job_id: String,
    pub(crate) job_dir: PathBuf,
    /// Where `transform.json` goes: the job folder, or a part's.
    pub(crate) part_dir: PathBuf,
    /// The part of a split input this transforms (`None`: all of it).
    pub(crate) part: Option<super::PartOf>,
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
    // Hashed beside the load: see `Checksum`. A part has the whole
    // input's, hashed once when it was cut.
    let checksum = match &opts.part {
        Some(part) => Checksum::known(part.checksum.clone()),
        None => Checksum::of_file(staged.path.clone(), display.clone()),
    };
    let input = Input {
        path: staged.path.clone(),
        display: display.clone(),
    };

    // Decode + transform plan.
    let ctx = transform::new_session();
    // A part works in its own folder (its rejects and transform.json).
    let part_dir = match &opts.part {
        Some(part) => {
            let dir = super::parts::part_dir(&job_dir, part.index);
            std::fs::create_dir_all(&dir)
                .map_err(|e| FerryError::io(format!("creating {}", dir.display()), e))?;
            dir
        }
        None => job_dir.clone(),
    };
    let rejects = part_dir.join(REJECTS_FILE);
    let _ = std::fs::remove_file(&rejects); // from an earlier attempt in this folder
    let range = opts.part.as_ref().map(|p| p.range);
    let source = register_part(&ctx, spec, &input, Some(rejects), range).await?;
    let df = transform::plan(&ctx, spec).await?;
    let (df, renamed) = transform::name_for_target(df, spec)?;
    let df = with_lineage(df, spec, &job_id, &display)?;
    let keys: Vec<String> = keys.iter().map(|k| renamed.table_name(k)).collect();
    let schema = df.schema().as_arrow().clone();
    let types: std::collections::BTreeMap<String, String> = target_spec
        .map(|t| t.types.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (renamed.table_name(&k), v))
        .collect();
    let columns = output_columns(&schema, &types, spec)?;
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
        drift: spec.drift_policy(),
        format: CopyFormat::Binary,
        verify: verify_policy(spec, |c| renamed.table_name(c)),
    };
    Ok(Prepared {
        started,
        job_id,
        job_dir,
        part_dir,
        part: opts.part.clone(),
        display,
        staged,
        input,
        source,
        df,
        request,
    })
}

/// What the load proves: the spec's `[target] verify`, and
/// `[target.verify_except]` with its columns named as the table names them.
pub(crate) fn verify_policy(
    spec: &DatasetSpec,
    table_name: impl Fn(&str) -> String,
) -> ferry_connectors::pg::receipt::VerifyPolicy {
    let mut policy = spec.verify_policy();
    policy.except = policy
        .except
        .into_iter()
        .map(|(k, v)| (table_name(&k), v))
        .collect();
    policy
}

/// The transform's output with the spec's `[target] lineage` columns: the
/// load's start, the input and the job as constants, and `_ferry_line`, which
/// the source numbered and transform.sql must keep.
pub(crate) fn with_lineage(
    df: datafusion::dataframe::DataFrame,
    spec: &DatasetSpec,
    job_id: &str,
    input: &str,
) -> Result<datafusion::dataframe::DataFrame, FerryError> {
    use crate::spec::Lineage;
    use datafusion::prelude::lit;
    use datafusion::scalar::ScalarValue;
    let Some(lineage) = spec.target.as_ref().map(|t| &t.lineage) else {
        return Ok(df);
    };
    let mut df = df;
    for l in lineage {
        let value = match l {
            Lineage::Line => {
                if df.schema().field_with_unqualified_name(l.column()).is_err() {
                    return Err(FerryError::Usage(format!(
                        "{}: [target] lineage has \"line\", but {} does not keep the column {} that numbers the input's records: select it (SELECT * keeps it)",
                        spec.toml_path().display(),
                        spec.transform_path.display(),
                        l.column()
                    )));
                }
                continue;
            }
            Lineage::LoadedAt => lit(ScalarValue::TimestampMicrosecond(
                Some(chrono::Utc::now().timestamp_micros()),
                Some("UTC".into()),
            )),
            Lineage::Source => lit(input),
            Lineage::JobId => lit(job_id),
        };
        df = df
            .with_column(l.column(), value)
            .map_err(|e| FerryError::Internal(format!("adding lineage columns: {e}")))?;
    }
    Ok(df)
}

/// `df` (whose columns are `columns`) with just the columns at `loaded`, in
/// that order.
pub(crate) fn select_loaded(
    df: datafusion::dataframe::DataFrame,
    columns: &[OutputColumn],
    loaded: &[usize],
) -> Result<datafusion::dataframe::DataFrame, FerryError> {
    if loaded.len() == columns.len() && loaded.iter().enumerate().all(|(i, &l)| i == l) {
        return Ok(df);
    }
    let exprs: Vec<datafusion::prelude::Expr> = loaded
        .iter()
        .map(|&i| {
            datafusion::prelude::Expr::Column(datafusion::common::Column::new_unqualified(
                columns[i].name.clone(),
            ))
        })
        .collect();
    df.select(exprs)
        .map_err(|e| FerryError::Internal(format!("leaving out ignored columns: {e}")))
}

/// The transform's output columns with the PostgreSQL type each maps to
/// (`types`, the spec's `[target.types]` by table name, wins over the
/// mapping from the Arrow type).
pub(crate) fn output_columns(
    schema: &arrow::datatypes::Schema,
    types: &std::collections::BTreeMap<String, String>,
    spec: &DatasetSpec,
) -> Result<Vec<OutputColumn>, FerryError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let declared = types.get(f.name());
        let pg = match declared {
            Some(t) => PgType::parse(t).ok_or_else(|| {
                FerryError::Usage(format!("target.types.{}: unknown type {t:?}", f.name()))
            })?,
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
            declared: declared.is_some(),
        });
    }
    Ok(columns)
}

impl Prepared {
    pub(crate) fn report(
        &self,
        status: LoadStatus,
        rows: u64,
        created: bool,
        artifacts: Vec<ArtifactFile>,
        previous: Option<PreviousLoad>,
        schema_changes: Vec<SchemaChange>,
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
            schema_changes,
            duplicate_rows: 0,
            receipt: None,
        }
    }

    /// The transform's rows with just the output columns the COPY carries
    /// (`loaded`, from the load's plan: a column `on_new_columns = "ignore"`
    /// leaves out is never encoded).
    pub(crate) fn loaded_rows(
        &self,
        loaded: &[usize],
    ) -> Result<datafusion::dataframe::DataFrame, FerryError> {
        select_loaded(self.df.clone(), &self.request.columns, loaded)
    }

    pub(crate) fn artifact_spec(&self, opts: &LoadOptions, plan: TablePlan) -> ArtifactSpec {
        ArtifactSpec {
            dir: self.job_dir.join("artifacts"),
            stem: match &self.part {
                Some(part) => part.stem(&self.request.target.name),
                None => self.request.target.name.clone(),
            },
            kinds: opts.artifacts,
            part_bytes: opts.part_bytes,
            target: self.request.target.clone(),
            target_ddl: plan.target_ddl,
            columns: plan.columns,
            mode: self.request.mode,
            keys: plan.keys,
            duplicates: self.request.drift.duplicate_keys,
            schema_changes: plan.schema_changes,
            receipt: None,
            sync: true,
            // A part's artifacts are what the load sends later (maybe in
            // this machine's cache); a whole input's were sent as written.
            keep_cached: self.part.is_some(),
            driver: self.part.is_none(),
        }
    }

    /// Writes `transform.json` into the job folder: what was encoded, for
    /// sql-processor (and the uploader's manifest).
    pub(crate) async fn write_transform_report(
        &self,
        codecs: &Codecs,
        plan: &TablePlan,
        rows: u64,
        artifacts: &[ArtifactFile],
        sent: Option<ferry_connectors::pg::receipt::Digest>,
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
            drift: self.request.drift,
            columns: plan
                .loaded
                .iter()
                .map(|&i| &self.request.columns[i])
                .zip(codecs.iter())
                .map(|(c, codec)| EncodedColumn {
                    name: c.name.clone(),
                    data_type: c.data_type.clone(),
                    nullable: c.nullable,
                    pg: codec.pg.to_string(),
                    declared: c.declared,
                })
                .collect(),
            schema_changes: plan.schema_changes.clone(),
            rows,
            seconds: self.started.elapsed().as_secs_f64(),
            artifacts: artifacts.to_vec(),
            rejected: self.source.rejected(),
            rejects: self.source.reject_file(),
            verify: self.request.verify.level,
            verify_except: self.request.verify.except.clone(),
            sent,
        };
        let path = self.part_dir.join(TRANSFORM_REPORT);
        let json =
            serde_json::to_vec_pretty(&report).map_err(|e| FerryError::Internal(e.to_string()))?;
        super::parts::write_whole(&path, &json)?;
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
