//! `ferry load`: a file into a PostgreSQL table, with a dataset spec or
//! with flags (the rest sniffed from the file).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ferry_connectors::jobs::{Origin, Workflow};
use ferry_connectors::pg::artifacts::ArtifactKinds;
use ferry_connectors::pg::receipt::Verify;
use ferry_connectors::pg::{
    DuplicateKeys, LoadMode, MatchColumns, OnMissingColumns, OnNewColumns, OnTypeChange, PgConfig,
    QualifiedName,
};
use ferry_engine::error::FerryError;
use ferry_engine::format::Format;
use ferry_engine::load::{LOAD_REPORT, LoadReport, LoadStatus, default_streams};
use ferry_engine::source::Input;
use ferry_engine::spec::{DatasetSpec, NullMarkers, SourceSpec, TargetSpec};
use ferry_engine::workflow::event::Trigger;
use ferry_engine::workflow::{Runtime, Settings, Step};

use super::job_args::{Retention, StoreArgs};
use super::{
    Done, Limits, check_source_flags, either, local_input, parse_format, parse_keyword, parse_mode,
    print_rejects, read_report,
};

pub const LOAD_HELP: &str = "\
Examples:
  ferry load --input orders.csv --table sales.orders
  ferry load --input orders.csv --table sales.orders --mode upsert --key id
  ferry load --input 'data/export.tsv.gz' --table t --null NA --null ''
  ferry load --dataset sql/lineitem --input s3://bucket/in/lineitem.tbl --streams 4
  ferry load --dataset sql/events --input events.ndjson --artifacts none --json

Without --dataset, the format, delimiter, header and column types are sniffed
from the file as `ferry spec init` would, and the transform is SELECT * FROM source.

The input is recorded in the ledger table ferry.loads with its checksum, in the
same transaction as the rows: loading the same input again does nothing (exit 0)
unless --force. Artifacts (.sql parts with load.sql, and .pgcopy parts) go to
<work-dir>/<job-id>/<ddmmyyyyhhmmss>/artifacts/.

Each load is a job in the job store (`ferry jobs list`, `ferry jobs show <id>`), run
through the same steps as `ferry run` (create-job, s3-efs-downloader, the fused
transform+sql-processor, notify; no upload), with its event in <work-dir>/events.jsonl.
Its folder (artifacts, load.json, the spec as it ran) is kept for --work-retention.";

#[derive(Args)]
pub struct LoadArgs {
    /// The dataset spec folder (sql/<name>).
    #[arg(short, long, value_name = "DIR")]
    dataset: Option<PathBuf>,
    /// The input: a path, file:///path or s3://bucket/key.
    #[arg(short, long, value_name = "URI", required_unless_present = "input_arg")]
    input: Option<String>,
    /// The input, as a plain argument (`ferry load orders.csv …`): the same as --input.
    #[arg(value_name = "INPUT", conflicts_with = "input")]
    input_arg: Option<String>,
    /// Target table (schema.table); overrides the spec's.
    #[arg(short, long, value_name = "TABLE")]
    table: Option<String>,
    /// append, replace (swap in a new table), upsert (on --key columns) or delete-insert
    /// (delete the rows of the input's --key values, then insert); overrides the spec's.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<LoadMode>,
    /// Key column for upsert and delete-insert (repeat for composite keys); overrides the spec's.
    #[arg(long = "key", value_name = "COLUMN")]
    keys: Vec<String>,
    /// Parallel COPY connections [default: the number of cores for replace, 1 for append
    /// and upsert]. Several append streams into an existing table commit together by
    /// two-phase commit (the server needs max_prepared_transactions ≥ N): all or nothing,
    /// but readers may see one stream's rows a moment before another's. Elsewhere they
    /// go through a staging table and a second pass.
    #[arg(long, value_name = "N")]
    streams: Option<usize>,
    /// Load even if the ledger says this input is already loaded.
    #[arg(long)]
    force: bool,
    /// PostgreSQL URL (postgres://user:pass@host:port/db?sslmode=…).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    retention: Retention,
    /// Artifacts to write: all, sql, pgcopy or none.
    #[arg(long, default_value = "all")]
    artifacts: ArtifactChoice,
    /// Size after which an artifact file is split (e.g. 256MiB, 1GB).
    #[arg(long, default_value = "256MiB", value_name = "SIZE")]
    part_size: bytesize::ByteSize,
    /// Input format when it cannot be told from the name.
    #[arg(long, value_parser = parse_format, help = format!("Input format when it cannot be told from the name: {}", Format::names()))]
    format: Option<Format>,
    /// Field delimiter for csv (without --dataset; sniffed by default).
    #[arg(long, value_name = "CHAR")]
    delimiter: Option<String>,
    /// The first line is a header (without --dataset; sniffed by default).
    #[arg(long, conflicts_with = "no_header")]
    header: bool,
    /// The first line is data.
    #[arg(long)]
    no_header: bool,
    /// An unquoted value that means NULL (repeatable; default: the empty string).
    #[arg(long = "null", value_name = "TEXT")]
    nulls: Vec<String>,
    /// The input's text encoding, e.g. windows-1252, latin1, utf-16 (without --dataset;
    /// default utf-8).
    #[arg(long, value_name = "LABEL")]
    encoding: Option<String>,
    /// The decimal separator of numbers, e.g. , for 1234,5 (without --dataset; default .).
    #[arg(long, value_name = "CHAR")]
    decimal_separator: Option<String>,
    /// A thousands separator to drop, e.g. . for 1.234,5 (without --dataset).
    #[arg(long, value_name = "CHAR")]
    thousands_separator: Option<String>,
    #[command(flatten)]
    limits: Limits,
    /// Table column names: snake_case ("Customer ID" -> customer_id) or as-is; overrides
    /// the spec's [target] column_names [default: snake_case].
    #[arg(long, value_name = "STYLE")]
    column_names: Option<ferry_engine::spec::ColumnNames>,
    /// A column the input has and the table lacks: add (ALTER TABLE … ADD COLUMN in the
    /// load's transaction), ignore or fail; overrides the spec's [default: add].
    #[arg(long, value_name = "WHAT", value_parser = parse_keyword::<OnNewColumns>)]
    on_new_columns: Option<OnNewColumns>,
    /// A column the table has and the input lacks: null (its default, else NULL) or fail;
    /// overrides the spec's [default: null].
    #[arg(long, value_name = "WHAT", value_parser = parse_keyword::<OnMissingColumns>)]
    on_missing_columns: Option<OnMissingColumns>,
    /// An input type the table's column cannot take: widen (losslessly, in the load's
    /// transaction) or fail; overrides the spec's [default: fail].
    #[arg(long, value_name = "WHAT", value_parser = parse_keyword::<OnTypeChange>)]
    on_type_change: Option<OnTypeChange>,
    /// A key the input holds more than once (upsert, delete-insert): fail (naming its rows),
    /// last or first (the row kept); overrides the spec's [default: fail].
    #[arg(long, value_name = "WHAT", value_parser = parse_keyword::<DuplicateKeys>)]
    duplicate_keys: Option<DuplicateKeys>,
    /// Match output columns to the table's by name (case and spaces aside) or by position;
    /// overrides the spec's [default: name; position for a headerless file].
    #[arg(long, value_name = "HOW", value_parser = parse_keyword::<MatchColumns>)]
    match_columns: Option<MatchColumns>,
    /// What the load proves before it publishes: full (the rows as PostgreSQL stored them
    /// hash to what ferry sent, every column; a difference fails with exit 6, nothing
    /// published), count (rows only) or off; overrides the spec's [default: full].
    #[arg(long, value_name = "LEVEL", value_parser = parse_keyword::<Verify>)]
    verify: Option<Verify>,
    /// Print the job report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl LoadArgs {
    fn input(&self) -> &str {
        either(&self.input, &self.input_arg)
    }
}

impl ArtifactChoice {
    fn kinds(self) -> ArtifactKinds {
        let (sql, pgcopy) = match self {
            ArtifactChoice::All => (true, true),
            ArtifactChoice::Sql => (true, false),
            ArtifactChoice::Pgcopy => (false, true),
            ArtifactChoice::None => (false, false),
        };
        ArtifactKinds { sql, pgcopy }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ArtifactChoice {
    All,
    Sql,
    Pgcopy,
    None,
}

/// `ferry load`: one input into one table, as a job of the local job store
/// (create-job, download, the fused transform and load, notify: the steps
/// `ferry run` runs, less the upload), so `ferry jobs` lists it and its
/// folder follows the retention rules.
pub async fn run(args: LoadArgs, interactive: bool) -> Result<Done, FerryError> {
    let pg = PgConfig::from_url_or_env(args.database_url.as_deref())?;
    let work_dir = args.store.work_dir()?;
    let store = args.store.open().await?;
    args.retention.sweep(&work_dir, Some(store.as_ref())).await;
    let local = local_input(args.input())?;
    let spec = spec_of(&args, local)?;
    let mode = spec.target.as_ref().map_or(LoadMode::Append, |t| t.mode);
    crate::tuning::size_worker_pool(&pg, args.streams.unwrap_or_else(|| default_streams(mode)));
    let mut settings = Settings::new(work_dir);
    settings.streams = args.streams;
    settings.force = args.force;
    settings.artifacts = args.artifacts.kinds();
    settings.part_bytes = args.part_size.as_u64().max(1);
    settings.progress = interactive;
    let trigger = Trigger::from_uri(args.input()).await?;
    let runtime = Runtime::one_off(settings, store, spec, Some(pg.clone())).await?;
    let job = runtime
        .run_one_off(
            &trigger,
            Origin::Load,
            &[Step::Download, Step::TransformAndLoad],
        )
        .await?;
    let report: LoadReport = read_report(&std::path::Path::new(&job.dir).join(LOAD_REPORT))?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_summary(&report, &pg);
    }
    Ok(Done::Ok)
}

/// The spec the load runs: the dataset's, or one sniffed from the file and
/// the flags; with the flags' table, mode, keys, column names and limits
/// over the spec's (the job pins it as it is here).
fn spec_of(args: &LoadArgs, local: Option<PathBuf>) -> Result<DatasetSpec, FerryError> {
    let table = args
        .table
        .as_deref()
        .map(QualifiedName::parse)
        .transpose()
        .map_err(|e| FerryError::Usage(format!("--table: {e}")))?;
    let mut spec = match &args.dataset {
        Some(dir) => {
            let spec = DatasetSpec::load(dir)?;
            if args.format.is_some()
                || args.delimiter.is_some()
                || args.header
                || args.no_header
                || !args.nulls.is_empty()
                || args.encoding.is_some()
                || args.decimal_separator.is_some()
                || args.thousands_separator.is_some()
            {
                return Err(FerryError::Usage(
                    "--format, --delimiter, --header/--no-header, --null, --encoding, --decimal-separator and --thousands-separator describe the input without a spec; with --dataset, set them in dataset.toml".into(),
                ));
            }
            spec
        }
        None => {
            let table = table.clone().ok_or_else(|| {
                FerryError::Usage("without --dataset, --table is required".into())
            })?;
            let mut source = SourceSpec {
                format: args.format,
                delimiter: args.delimiter.clone(),
                header: if args.header {
                    Some(true)
                } else if args.no_header {
                    Some(false)
                } else {
                    None
                },
                null: (!args.nulls.is_empty()).then(|| NullMarkers::Many(args.nulls.clone())),
                encoding: args.encoding.clone(),
                decimal_separator: args.decimal_separator.clone(),
                thousands_separator: args.thousands_separator.clone(),
                max_record_size: args.limits.record_size(),
                ..SourceSpec::default()
            };
            check_source_flags(&source)?;
            // Sniff what the flags leave open, from the local file (S3 inputs
            // are sniffed after staging, inside the load).
            if let Some(path) = local {
                let input = Input {
                    path,
                    display: args.input().to_string(),
                };
                ferry_engine::sniff::complete_source(&mut source, &input)?;
            }
            DatasetSpec::ad_hoc(&table.name, source, None)
        }
    };
    let keys = (!args.keys.is_empty()).then(|| args.keys.clone());
    match (spec.target.as_mut(), table) {
        (Some(target), table) => {
            if let Some(table) = table {
                target.table = table.to_string();
            }
            if let Some(mode) = args.mode {
                target.mode = mode;
            }
            if let Some(keys) = keys {
                target.keys = keys;
            }
            if let Some(style) = args.column_names {
                target.column_names = style;
            }
            if let Some(on) = args.on_new_columns {
                target.on_new_columns = on;
            }
            if let Some(on) = args.on_missing_columns {
                target.on_missing_columns = on;
            }
            if let Some(on) = args.on_type_change {
                target.on_type_change = on;
            }
            if let Some(keep) = args.duplicate_keys {
                target.duplicate_keys = keep;
            }
            if let Some(level) = args.verify {
                target.verify = level;
            }
        }
        (None, Some(table)) => {
            spec.target = Some(TargetSpec {
                mode: args.mode.unwrap_or(LoadMode::Append),
                keys: keys.unwrap_or_default(),
                column_names: args.column_names.unwrap_or_default(),
                on_new_columns: args.on_new_columns.unwrap_or_default(),
                on_missing_columns: args.on_missing_columns.unwrap_or_default(),
                on_type_change: args.on_type_change.unwrap_or_default(),
                duplicate_keys: args.duplicate_keys.unwrap_or_default(),
                verify: args.verify.unwrap_or_default(),
                ..TargetSpec::named(table.to_string())
            });
        }
        // No table anywhere: the load step says so, naming the spec.
        (None, None) => {}
    }
    if let Some(how) = args.match_columns {
        spec.source.match_columns = Some(how);
    }
    args.limits.apply(&mut spec)?;
    // What the job runs, whatever workflow the spec routes its objects to.
    spec.routing.workflow = Workflow::Loader;
    Ok(spec)
}

fn print_summary(r: &LoadReport, pg: &PgConfig) {
    if r.status == LoadStatus::Skipped {
        outln!(
            "skipped: {} is already loaded into {} ({}); pass --force to load it again",
            r.input,
            r.target,
            r.previous_job.as_deref().unwrap_or("?")
        );
        return;
    }
    outln!(
        "loaded {} rows into {} ({}{}) in {:.2} s: {:.0} rows/s, {:.1} MB/s of input ({:.1} MB)",
        r.rows,
        r.target,
        r.mode,
        if r.created_table {
            ", table created"
        } else {
            ""
        },
        r.seconds,
        r.rows_per_second(),
        r.mb_per_second(),
        r.input_bytes as f64 / 1e6
    );
    for change in &r.schema_changes {
        outln!("schema: {}", change.describe());
    }
    if let Some(receipt) = &r.receipt {
        outln!("receipt: {}", receipt.summary());
    }
    print_rejects(r.rejected, r.rejects.as_deref());
    if !r.artifacts.is_empty() {
        outln!(
            "artifacts: {} ({} files)",
            r.job_dir.join("artifacts").display(),
            r.artifacts.len()
        );
    }
    outln!("job: {}  database: {}", r.job_id, pg.display());
}
