//! The `ferry` command line. Library errors become exit codes here, and only
//! here; everything else lives in `ferry_engine`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ferry_connectors::pg::artifacts::ArtifactKinds;
use ferry_connectors::pg::{LoadMode, PgConfig, QualifiedName};
use ferry_engine::error::FerryError;
use ferry_engine::format::Format;
use ferry_engine::load::{LoadOptions, LoadReport, load};
use ferry_engine::source::Input;
use ferry_engine::spec::check::{check, init};
use ferry_engine::spec::{DatasetSpec, NullMarkers, SourceSpec, TargetSpec};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AFTER_HELP: &str = "\
Examples:
  # Load a CSV into a new table (types inferred, table created):
  ferry load --input orders.csv --table sales.orders

  # Load with a dataset spec (sql/<name>/dataset.toml + transform.sql):
  ferry load --dataset sql/lineitem --input data/lineitem.tbl

  # See what a spec will create, without touching data or the database:
  ferry spec check sql/lineitem

  # Write a first spec from a sample file:
  ferry spec init data/orders.csv --name orders

PostgreSQL is found through --database-url, DATABASE_URL or the libpq
variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE).

Exit codes:
  0 success (including an input the ledger says is already loaded)
  1 internal error (a bug: please report it)
  2 bad usage, spec or SQL: fix the configuration
  3 bad input data: fix the file or the declared types
  4 PostgreSQL refused the load (constraint, type, permission): fix the target
  5 a service was unreachable or failed transiently: retrying may help";

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Stream files into PostgreSQL (and between formats) through Arrow and DataFusion.",
    long_about = "ferry decodes a file into Arrow record batches, transforms them with a dataset's SQL \
                  (DataFusion), and loads them into PostgreSQL with parallel binary COPY, atomically, \
                  while writing .sql and .pgcopy artifacts you can replay with psql.",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: `auto` is text on a terminal and JSON lines otherwise (containers, CloudWatch).
    #[arg(long, global = true, env = "FERRY_LOG_FORMAT", default_value = "auto")]
    log_format: LogFormat,
    /// More log output (-v: info, -vv: debug). `FERRY_LOG` takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only, and no progress bar.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Load a file into a PostgreSQL table (binary COPY, atomic, loaded once).
    #[command(after_help = "\
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
<work-dir>/<job-id>/<ddmmyyyyhhmmss>/artifacts/.")]
    Load(LoadArgs),
    /// Check or create dataset specs.
    #[command(subcommand)]
    Spec(SpecCommand),
}

#[derive(Args)]
struct LoadArgs {
    /// The dataset spec folder (sql/<name>).
    #[arg(short, long, value_name = "DIR")]
    dataset: Option<PathBuf>,
    /// The input: a path, file:///path or s3://bucket/key.
    #[arg(short, long, value_name = "URI")]
    input: String,
    /// Target table (schema.table); overrides the spec's.
    #[arg(short, long, value_name = "TABLE")]
    table: Option<String>,
    /// append, replace (swap in a new table) or upsert (on --key columns); overrides the spec's.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<LoadMode>,
    /// Key column for upsert (repeat for composite keys); overrides the spec's.
    #[arg(long = "key", value_name = "COLUMN")]
    keys: Vec<String>,
    /// Parallel COPY connections [default: the number of cores for replace, 1 for append
    /// and upsert, where more streams need a staging table and a second pass].
    #[arg(long, value_name = "N")]
    streams: Option<usize>,
    /// Load even if the ledger says this input is already loaded.
    #[arg(long)]
    force: bool,
    /// PostgreSQL URL (postgres://user:pass@host:port/db?sslmode=…).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
    /// Working storage root for job folders.
    #[arg(
        long,
        env = "FERRY_WORK_DIR",
        default_value = ".ferry/work",
        value_name = "DIR"
    )]
    work_dir: PathBuf,
    /// Artifacts to write: all, sql, pgcopy or none.
    #[arg(long, default_value = "all")]
    artifacts: ArtifactChoice,
    /// Size after which an artifact file is split (e.g. 256MiB, 1GB).
    #[arg(long, default_value = "256MiB", value_name = "SIZE")]
    part_size: bytesize::ByteSize,
    /// Input format when it cannot be told from the name: csv, tsv, ndjson, parquet, arrow.
    #[arg(long, value_parser = parse_format)]
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
    /// Print the job report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ArtifactChoice {
    All,
    Sql,
    Pgcopy,
    None,
}

#[derive(Subcommand)]
enum SpecCommand {
    /// Validate a spec and print its output schema and CREATE TABLE, touching no data.
    #[command(
        after_help = "Example:\n  ferry spec check sql/lineitem\n  ferry spec check sql/events --sample data/events.ndjson"
    )]
    Check {
        /// The spec folder.
        dir: PathBuf,
        /// A sample input to infer undeclared types from (default: the spec's source.sample).
        #[arg(long, value_name = "FILE")]
        sample: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sniff a file (format, delimiter, header, types) and write an editable spec folder.
    #[command(
        after_help = "Example:\n  ferry spec init data/orders.csv --name orders\n  # writes sql/orders/dataset.toml, transform.sql and sample.csv"
    )]
    Init {
        /// The file to sniff.
        file: PathBuf,
        /// Dataset name (the folder name).
        #[arg(long)]
        name: String,
        /// Parent folder of dataset specs.
        #[arg(long, default_value = "sql", value_name = "DIR")]
        dir: PathBuf,
        /// Target table (default: public.<name>).
        #[arg(long)]
        table: Option<String>,
        /// Overwrite an existing spec.
        #[arg(long)]
        force: bool,
    },
}

fn parse_mode(s: &str) -> Result<LoadMode, String> {
    s.parse()
}

fn parse_format(s: &str) -> Result<Format, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("unknown format {s:?}: csv, tsv, ndjson, parquet or arrow"))
}

fn init_logging(cli: &Cli) -> bool {
    use tracing_subscriber::EnvFilter;
    let json = match cli.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let level = match (cli.quiet, cli.verbose, json) {
        (true, _, _) => "error",
        (_, 0, false) => "warn",
        (_, 0, true) | (_, 1, _) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},ferry_engine={level},ferry_connectors={level}"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.compact().with_target(false).init();
    }
    json
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_logs = init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let interactive = !cli.quiet && !json_logs && std::io::stderr().is_terminal();
    match runtime.block_on(run(cli, interactive)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let fault = e.fault();
            if json_logs {
                tracing::error!(fault = ?fault, retryable = e.retryable(), exit_code = fault.exit_code(), error = %e, "ferry failed");
            } else {
                eprintln!("ferry: error: {e}");
                if e.retryable() {
                    eprintln!(
                        "ferry: this looks transient; running the same command again may succeed"
                    );
                }
            }
            ExitCode::from(fault.exit_code() as u8)
        }
    }
}

async fn run(cli: Cli, interactive: bool) -> Result<(), FerryError> {
    match cli.command {
        Command::Load(args) => run_load(args, interactive).await,
        Command::Spec(SpecCommand::Check { dir, sample, json }) => {
            let spec = DatasetSpec::load(&dir)?;
            let report = check(&spec, sample.as_deref()).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                return Ok(());
            }
            println!("dataset {} ({}) is valid", report.dataset, dir.display());
            println!("\nsource columns (from {}):", report.schema_from);
            print_columns(&report.source);
            println!("\noutput of {}:", spec.transform_path.display());
            print_columns(&report.output);
            if let Some(ddl) = report.ddl {
                println!("\ntarget table:\n{ddl};");
            }
            Ok(())
        }
        Command::Spec(SpecCommand::Init {
            file,
            name,
            dir,
            table,
            force,
        }) => {
            let report = init(&file, &name, &dir, table.as_deref(), force).await?;
            for f in &report.files {
                println!("wrote {}", f.display());
            }
            for n in &report.notes {
                println!("sniffed: {n}");
            }
            println!(
                "next: review {}/dataset.toml, then `ferry spec check {}`",
                report.dir.display(),
                report.dir.display()
            );
            Ok(())
        }
    }
}

fn print_columns(cols: &[ferry_engine::spec::check::OutputColumnInfo]) {
    let w = cols
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let a = cols.iter().map(|c| c.arrow.len()).max().unwrap_or(5).max(5);
    for c in cols {
        println!(
            "  {:<w$}  {:<a$}  -> {}{}",
            c.name,
            c.arrow,
            c.postgres,
            if c.nullable { "" } else { " NOT NULL" }
        );
    }
}

async fn run_load(args: LoadArgs, interactive: bool) -> Result<(), FerryError> {
    let pg = PgConfig::from_url_or_env(args.database_url.as_deref())?;
    if let ferry_connectors::store::Location::Local(path) =
        ferry_connectors::store::Location::parse(&args.input)
            .map_err(|e| FerryError::Usage(e.to_string()))?
        && !path.is_file()
    {
        return Err(FerryError::Usage(format!(
            "--input {}: no such file",
            args.input
        )));
    }
    let table = args
        .table
        .as_deref()
        .map(QualifiedName::parse)
        .transpose()
        .map_err(|e| FerryError::Usage(format!("--table: {e}")))?;
    let spec = match &args.dataset {
        Some(dir) => {
            let spec = DatasetSpec::load(dir)?;
            if args.format.is_some()
                || args.delimiter.is_some()
                || args.header
                || args.no_header
                || !args.nulls.is_empty()
            {
                return Err(FerryError::Usage(
                    "--format, --delimiter, --header/--no-header and --null describe the input without a spec; with --dataset, set them in dataset.toml".into(),
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
                ..SourceSpec::default()
            };
            // Sniff what the flags leave open, from the local file (S3 inputs
            // are sniffed after staging, inside the load).
            if let ferry_connectors::store::Location::Local(path) =
                ferry_connectors::store::Location::parse(&args.input)
                    .map_err(|e| FerryError::Usage(e.to_string()))?
            {
                let input = Input {
                    path,
                    display: args.input.clone(),
                };
                ferry_engine::sniff::complete_source(&mut source, &input)?;
            }
            let target = TargetSpec {
                table: table.to_string(),
                mode: args.mode.unwrap_or(LoadMode::Append),
                keys: args.keys.clone(),
                create: true,
                types: Default::default(),
            };
            let spec = DatasetSpec::ad_hoc(&table.name, source, Some(target));
            spec.validate(&spec.toml_path())?;
            spec
        }
    };
    let artifacts = match args.artifacts {
        ArtifactChoice::All => ArtifactKinds {
            sql: true,
            pgcopy: true,
        },
        ArtifactChoice::Sql => ArtifactKinds {
            sql: true,
            pgcopy: false,
        },
        ArtifactChoice::Pgcopy => ArtifactKinds {
            sql: false,
            pgcopy: true,
        },
        ArtifactChoice::None => ArtifactKinds {
            sql: false,
            pgcopy: false,
        },
    };
    let options = LoadOptions {
        streams: args.streams,
        force: args.force,
        work_dir: args.work_dir.clone(),
        artifacts,
        part_bytes: args.part_size.as_u64().max(1),
        table,
        mode: args.mode,
        keys: (!args.keys.is_empty()).then(|| args.keys.clone()),
        progress: interactive,
    };
    let report = load(&spec, &args.input, &pg, &options).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_summary(&report, &pg);
    }
    Ok(())
}

fn print_summary(r: &LoadReport, pg: &PgConfig) {
    if r.status == "skipped" {
        println!(
            "skipped: {} is already loaded into {} ({}); pass --force to load it again",
            r.input,
            r.target,
            r.previous_job.as_deref().unwrap_or("?")
        );
        return;
    }
    println!(
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
    if !r.artifacts.is_empty() {
        println!(
            "artifacts: {} ({} files)",
            r.job_dir.join("artifacts").display(),
            r.artifacts.len()
        );
    }
    println!("job: {}  database: {}", r.job_id, pg.display());
}
