//! The `ferry` command line. Library errors become exit codes here, and only
//! here; everything else lives in `ferry_engine`.

// As in the library: errors are built once per failed command, never per row.
#![allow(clippy::result_large_err)]

#[macro_use]
mod output;
mod commands;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use ferry_connectors::pg::artifacts::ArtifactKinds;
use ferry_connectors::pg::{LoadMode, PgConfig, QualifiedName};
use ferry_connectors::store::{Expect, Location, stage};
use ferry_engine::convert::writers::OutputFormat;
use ferry_engine::convert::{ConvertRequest, convert, validate};
use ferry_engine::error::FerryError;
use ferry_engine::format::Format;
use ferry_engine::load::{LoadOptions, LoadReport, load, worker_threads};
use ferry_engine::source::Input;
use ferry_engine::spec::check::{check, init};
use ferry_engine::spec::{ConvertSpec, DatasetSpec, NullMarkers, SourceSpec, TargetSpec};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory for reuse instead of handing it back to the OS 10 ms
/// after it is freed (mimalloc's default). A conversion frees and allocates
/// batch buffers without pause, and handing them back made the kernel fault
/// and zero the same pages again: an SF 1 CSV → Parquet took 12–17 k page
/// faults instead of 2 k, and one run in three spent 0.5 s more in the
/// kernel. Memory stays at the process's peak, which streaming bounds
/// (measured: no higher for loads, +20 MB for converts).
fn keep_freed_memory() {
    // `mi_option_purge_delay` (-1: never purge); mimalloc keeps the option
    // numbers stable (deprecated ones keep their slots), v2 and v3 alike.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one integer option, which mimalloc reads at each purge.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

/// Turns transparent huge pages off for this process. mimalloc asks for
/// them on its arenas, and then the first touch of any byte of a 2 MiB
/// region faults in and zeroes all of it: peak RSS rose by 50–60 MB, and
/// after other processes had churned memory (as in the benchmark suite, or
/// on a busy host) the kernel time to get huge pages made an SF 0.1 load
/// 0.71 s instead of 0.59 s (sys 0.32 s instead of 0.10 s) and an SF 0.1
/// CSV → Parquet 0.38 s instead of 0.28 s. With 4 KiB pages ferry takes
/// more, cheaper faults, and its times no longer depend on what ran before.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it sets one flag on this
    // process, which the kernel checks at each later page fault. A failure
    // (a kernel without THP) leaves things as they were, so it is ignored.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

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

  # Convert to Parquet and prove it by reading it back:
  ferry convert --input data/orders.csv --to parquet

PostgreSQL is found through --database-url, DATABASE_URL or the libpq
variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE).

Exit codes:
  0 success (including an input the ledger says is already loaded)
  1 internal error (a bug: please report it)
  2 bad usage, spec or SQL: fix the configuration
  3 bad input data: fix the file or the declared types
  4 PostgreSQL refused the load (constraint, type, permission): fix the target
  5 a service was unreachable or failed transiently: retrying may help
  6 validation failed: the converted file does not read back as the input";

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
    /// Convert a file to another format and validate it by reading it back.
    #[command(after_help = CONVERT_HELP)]
    Convert(ConvertArgs),
    /// Check or create dataset specs.
    #[command(subcommand)]
    Spec(SpecCommand),
    /// Run a whole job for one input, routed to its dataset by the specs' globs.
    #[command(after_help = RUN_HELP)]
    Run(commands::RunArgs),
    /// Run one step of a job, as a container task of the Step Functions state machines.
    #[command(after_help = TASK_HELP)]
    Task(commands::TaskArgs),
    /// Run jobs as objects arrive in a folder, an S3 prefix or an SQS queue of S3 events.
    #[command(after_help = WATCH_HELP)]
    Watch(commands::WatchArgs),
    /// List and show jobs.
    #[command(subcommand)]
    Jobs(commands::JobsCommand),
    /// Print the container-task contract (steps, commands, environment, error
    /// names) as JSON: the CDK app builds its state machines from it.
    #[command(after_help = TASKS_HELP)]
    Tasks,
}

const TASKS_HELP: &str = "\
containers/ferry-tasks.json is this output, checked in; a test fails when the
two differ, so the state machines cannot drift from the CLI:
  ferry tasks > containers/ferry-tasks.json";

const RUN_HELP: &str = "\
Examples:
  ferry run --input data/in/orders/2026-11.csv          # routed by sql/*/dataset.toml [routing] keys
  ferry run --input s3://in-bucket/orders/2026-11.csv --output s3://out-bucket/ferry
  ferry run --event event.json                           # an EventBridge S3 Object Created event
  aws s3api ... | ferry run --event -

A job is created once per object version (bucket/key + version id, or + ETag);
running it again for the same object does nothing. Steps:
  Loader     create-job, s3-efs-downloader, transform+sql-processor (fused), efs-s3-uploader, notify
  Converter  create-job, s3-efs-downloader, convert, validate, efs-s3-uploader, notify
The job folder is <work-dir>/<job-id>/<ddmmyyyyhhmmss>/; file.zip and manifest.json
go to <output>/<dataset>/<job-id>/<ddmmyyyyhhmmss>/; one event per job goes to --notify.";

const TASK_HELP: &str = "\
Examples (what the state machines run, each step in its own container):
  ferry task create-job --event @event.json
  ferry task s3-efs-downloader --job-id 0190…
  ferry task transform --job-id 0190…
  ferry task sql-processor --job-id 0190… [--from sql]
  ferry task convert --job-id 0190…
  ferry task validate --job-id 0190…
  ferry task efs-s3-uploader --job-id 0190…
  ferry task notify --job-id 0190…                              (the job succeeded)
  ferry task notify --job-id 0190… --caught States.HeartbeatTimeout   (a Catch caught this)

Only the job id travels: each step reads the job from the job store (ECS caps a task's
overrides at 8 KiB). --job '<a previous output, JSON>' or --job @job.json works too.
Each prints its output as one JSON object (job_id, status, run, rows, bytes, outputs)
for the next state. With a task token (--task-token or FERRY_TASK_TOKEN) it sends
heartbeats while working, then SendTaskSuccess with that output, or SendTaskFailure
with an error name for Retry/Catch:
  ferry.Transient   retrying may help (network, throttling, database restart)
  ferry.Input       bad input data        ferry.Config    bad spec, flags or routing
  ferry.Target      PostgreSQL refused    ferry.Invalid   validation by reconversion failed
  ferry.Internal    a bug";

const WATCH_HELP: &str = "\
Examples:
  ferry watch data/incoming                     # file-system notifications; existing files too
  ferry watch s3://in-bucket/incoming/ --poll 10
  ferry watch https://sqs.eu-west-1.amazonaws.com/123456789012/ferry-events --concurrency 4

An SQS message is deleted only after its job ended (succeeded, failed for good, or was
a duplicate); after a transient failure it becomes visible again and is retried.";

const CONVERT_HELP: &str = "\
Examples:
  ferry convert --input orders.csv --to parquet
  ferry convert --input orders.csv --to parquet --compression zstd:3 --row-group-rows 500000
  ferry convert --input events.ndjson.gz --to csv --output out/events.csv.gz --compression gzip
  ferry convert --dataset sql/lineitem --input lineitem.tbl --to arrow
  ferry convert --input trips.parquet --to sql --table public.trips   # psql-loadable, no database

Formats (--to): csv, tsv, ndjson, parquet, arrow (IPC file), arrows (IPC stream), avro,
sql (.sql files + load.sql in a folder), pgcopy (binary COPY files in a folder).
Inputs: csv, tsv, ndjson, parquet, arrow (file or stream), avro; gzip, zstd, bzip2, xz.

--compression by format:
  csv, tsv, ndjson   none (default), gzip, zstd
  parquet            snappy (default), zstd[:level], gzip[:level], lz4, none
  arrow, arrows      none (default), lz4, zstd
  avro               null (default), deflate, snappy, zstd

Validation (on unless --no-validate) reads the output back with that format's own
reader and compares it with the converted input: schema, row count, NULLs per column
and an order-preserving digest of every column. A mismatch names the first differing
row, column and values, writes <output>.validation.json, and exits 6.

What each format cannot hold is converted first, and listed in the report:
  csv, tsv           values in PostgreSQL's text forms (what COPY … CSV writes and reads);
                     small/unsigned integers widen, UInt64 -> numeric(20), times and
                     timestamps to microseconds, intervals/durations -> interval,
                     lists/structs/maps -> JSON text
  ndjson             the same scalars; bytes, times, intervals -> text; NaN/Infinity -> null
  parquet            interval(month-day-nano) -> text; everything else exact
  arrow, arrows      exact
  avro               small/unsigned integers widen, UInt64 -> decimal(20), Float16 -> float,
                     intervals/durations -> text
  sql, pgcopy        PostgreSQL's types (see the README's type mapping); nested -> jsonb";

#[derive(Args)]
struct ConvertArgs {
    /// The input: a path, file:///path or s3://bucket/key.
    #[arg(short, long, value_name = "URI", required_unless_present = "input_arg")]
    input: Option<String>,
    /// The input, as a plain argument (`ferry convert orders.csv …`): the same as --input.
    #[arg(value_name = "INPUT", conflicts_with = "input")]
    input_arg: Option<String>,
    /// The output format.
    #[arg(long, value_parser = ["csv", "tsv", "ndjson", "parquet", "arrow", "arrows", "avro", "sql", "pgcopy"])]
    to: String,
    /// Output path [default: the input's name with the new extension, beside it].
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// A dataset spec: its source options and transform.sql apply before writing.
    #[arg(short, long, value_name = "DIR")]
    dataset: Option<PathBuf>,
    /// Skip validation by reconversion.
    #[arg(long)]
    no_validate: bool,
    /// Run one step only, as the container tasks do: convert, or validate an earlier conversion.
    #[arg(long, value_parser = ["convert", "validate"])]
    step: Option<String>,
    /// Overwrite an existing output.
    #[arg(long)]
    force: bool,
    /// Compression (see below for each format).
    #[arg(long, value_name = "CODEC")]
    compression: Option<String>,
    /// Parquet: rows per row group.
    #[arg(long, default_value_t = 1_048_576, value_name = "N")]
    row_group_rows: usize,
    /// Parquet: dictionary encoding for which columns: auto (those whose
    /// first 65 536 values repeat at least 8 times on average), all or none.
    #[arg(long, default_value = "auto", value_parser = ["auto", "all", "none"], value_name = "WHICH")]
    dictionary: String,
    /// Parquet: statistics to write: none, chunk or page.
    #[arg(long, default_value = "page", value_parser = ["none", "chunk", "page"])]
    statistics: String,
    /// csv: output field delimiter.
    #[arg(long, value_name = "CHAR")]
    delimiter: Option<String>,
    /// csv/tsv: no header line in the output.
    #[arg(long)]
    no_header: bool,
    /// csv/tsv: how NULL is written (default: nothing; an empty string is then written as \"\").
    #[arg(long, value_name = "TEXT", default_value = "")]
    null: String,
    /// sql/pgcopy: the table the files load into [default: the dataset's target, or public.<input name>].
    #[arg(short, long, value_name = "TABLE")]
    table: Option<String>,
    /// Input format when it cannot be told from the name (without --dataset).
    #[arg(long, value_parser = parse_format, help = format!("Input format when it cannot be told from the name (without --dataset): {}", Format::names()))]
    input_format: Option<Format>,
    /// Input delimiter (without --dataset; sniffed by default).
    #[arg(long, value_name = "CHAR")]
    input_delimiter: Option<String>,
    /// An unquoted input value that means NULL (without --dataset; repeatable).
    #[arg(long = "input-null", value_name = "TEXT")]
    input_nulls: Vec<String>,
    /// Working storage for inputs staged from S3.
    #[arg(
        long,
        env = "FERRY_WORK_DIR",
        default_value = ".ferry/work",
        value_name = "DIR"
    )]
    work_dir: PathBuf,
    #[command(flatten)]
    retention: commands::Retention,
    /// Rows of a delimited or NDJSON input that may be bad (set aside in a reject file, the
    /// rest loaded) before the job fails; overrides the spec's [errors] max_bad_rows [default: 0].
    #[arg(long, value_name = "N")]
    max_bad_rows: Option<u64>,
    /// The longest record (a CSV record, an NDJSON line) read before the input is refused,
    /// e.g. 64MiB; overrides the spec's [source] max_record_size [default: 64MiB]. Memory
    /// stays within about twice this, whatever the input.
    #[arg(long, env = "FERRY_MAX_RECORD_SIZE", value_name = "SIZE")]
    max_record_size: Option<bytesize::ByteSize>,
    /// Print the reports as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LoadArgs {
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
    #[command(flatten)]
    retention: commands::Retention,
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
    /// Rows of a delimited or NDJSON input that may be bad (set aside in a reject file, the
    /// rest loaded) before the job fails; overrides the spec's [errors] max_bad_rows [default: 0].
    #[arg(long, value_name = "N")]
    max_bad_rows: Option<u64>,
    /// The longest record (a CSV record, an NDJSON line) read before the input is refused,
    /// e.g. 64MiB; overrides the spec's [source] max_record_size [default: 64MiB]. Memory
    /// stays within about twice this, whatever the input.
    #[arg(long, env = "FERRY_MAX_RECORD_SIZE", value_name = "SIZE")]
    max_record_size: Option<bytesize::ByteSize>,
    /// Table column names: snake_case ("Customer ID" -> customer_id) or as-is; overrides
    /// the spec's [target] column_names [default: snake_case].
    #[arg(long, value_name = "STYLE")]
    column_names: Option<ferry_engine::spec::ColumnNames>,
    /// Print the job report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The input, given as --input or as the plain argument (clap requires one).
fn either<'a>(flag: &'a Option<String>, plain: &'a Option<String>) -> &'a str {
    flag.as_deref().or(plain.as_deref()).unwrap_or("")
}

impl ConvertArgs {
    fn input(&self) -> &str {
        either(&self.input, &self.input_arg)
    }
}

impl LoadArgs {
    fn input(&self) -> &str {
        either(&self.input, &self.input_arg)
    }
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
        .map_err(|_| format!("unknown format {s:?}: one of {}", Format::names()))
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
        // Colour only for a person at a terminal, not into a log file.
        builder
            .compact()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
    json
}

fn main() -> ExitCode {
    keep_freed_memory();
    no_transparent_huge_pages();
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
        Ok(Done::Ok) => ExitCode::SUCCESS,
        Ok(Done::Invalid) => ExitCode::from(6),
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
            if matches!(e, FerryError::Invalid(_)) {
                return ExitCode::from(6);
            }
            ExitCode::from(fault.exit_code() as u8)
        }
    }
}

/// How a command that did not fail ended.
enum Done {
    Ok,
    /// Validation found a difference (exit 6).
    Invalid,
}

async fn run(cli: Cli, interactive: bool) -> Result<Done, FerryError> {
    match cli.command {
        Command::Load(args) => run_load(args, interactive).await,
        Command::Convert(args) => run_convert(args, interactive).await,
        Command::Run(args) => commands::run(args, interactive).await.map(|()| Done::Ok),
        Command::Task(args) => commands::task(args).await.map(|()| Done::Ok),
        Command::Watch(args) => commands::watch_cmd(args, interactive)
            .await
            .map(|()| Done::Ok),
        Command::Jobs(cmd) => commands::jobs_cmd(cmd).await.map(|()| Done::Ok),
        Command::Tasks => {
            outln!("{}", commands::task_contract_json(&Cli::command()));
            Ok(Done::Ok)
        }
        Command::Spec(SpecCommand::Check { dir, sample, json }) => {
            let spec = DatasetSpec::load(&dir)?;
            let report = check(&spec, sample.as_deref()).await?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                return Ok(Done::Ok);
            }
            match report.sample_rows {
                Some(rows) => outln!(
                    "dataset {} ({}) is valid: its sample's {rows} rows decode, transform and fit their target columns",
                    report.dataset,
                    dir.display()
                ),
                None => outln!("dataset {} ({}) is valid", report.dataset, dir.display()),
            }
            outln!("\nsource columns (from {}):", report.schema_from);
            print_columns(&report.source);
            outln!("\noutput of {}:", spec.transform_path.display());
            print_columns(&report.output);
            if let Some(ddl) = report.ddl {
                outln!("\ntarget table:\n{ddl};");
            }
            Ok(Done::Ok)
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
                outln!("wrote {}", f.display());
            }
            for n in &report.notes {
                outln!("sniffed: {n}");
            }
            outln!(
                "next: review {}/dataset.toml, then `ferry spec check {}`",
                report.dir.display(),
                report.dir.display()
            );
            Ok(Done::Ok)
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
        outln!(
            "  {:<w$}  {:<a$}  -> {}{}",
            c.name,
            c.arrow,
            c.postgres,
            if c.nullable { "" } else { " NOT NULL" }
        );
    }
}

async fn run_load(args: LoadArgs, interactive: bool) -> Result<Done, FerryError> {
    let pg = PgConfig::from_url_or_env(args.database_url.as_deref())?;
    args.retention.sweep_local(&args.work_dir).await;
    if let ferry_connectors::store::Location::Local(path) =
        ferry_connectors::store::Location::parse(args.input())
            .map_err(|e| FerryError::Usage(e.to_string()))?
        && !path.is_file()
    {
        return Err(FerryError::Usage(format!(
            "--input {}: no such file",
            args.input()
        )));
    }
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
                max_record_size: record_size(args.max_record_size),
                ..SourceSpec::default()
            };
            // Sniff what the flags leave open, from the local file (S3 inputs
            // are sniffed after staging, inside the load).
            if let ferry_connectors::store::Location::Local(path) =
                ferry_connectors::store::Location::parse(args.input())
                    .map_err(|e| FerryError::Usage(e.to_string()))?
            {
                let input = Input {
                    path,
                    display: args.input().to_string(),
                };
                ferry_engine::sniff::complete_source(&mut source, &input)?;
            }
            let target = TargetSpec {
                table: table.to_string(),
                mode: args.mode.unwrap_or(LoadMode::Append),
                keys: args.keys.clone(),
                create: true,
                types: Default::default(),
                column_names: args.column_names.unwrap_or_default(),
                load_from: None,
            };
            DatasetSpec::ad_hoc(&table.name, source, Some(target))
        }
    };
    apply_limits(&mut spec, args.max_bad_rows, args.max_record_size)?;
    if let (Some(style), Some(target)) = (args.column_names, spec.target.as_mut()) {
        target.column_names = style;
    }
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
        job: None,
    };
    let (_, streams) = options.mode_and_streams(&spec);
    let threads = worker_threads(&pg, streams);
    // First use of the pool in this process, so the size takes effect.
    if rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .is_ok()
    {
        tracing::debug!(threads, streams, local = pg.is_local(), "worker threads");
    }
    let report = load(&spec, args.input(), &pg, &options).await?;
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

/// `--max-record-size` as the spec's key.
fn record_size(size: Option<bytesize::ByteSize>) -> Option<ferry_engine::spec::ByteCount> {
    size.map(|s| ferry_engine::spec::ByteCount(s.as_u64()))
}

/// Applies `--max-bad-rows` and `--max-record-size`, and checks the spec as
/// it will run.
fn apply_limits(
    spec: &mut DatasetSpec,
    max_bad_rows: Option<u64>,
    max_record_size: Option<bytesize::ByteSize>,
) -> Result<(), FerryError> {
    if let Some(n) = max_bad_rows {
        spec.errors.max_bad_rows = n;
    }
    if let Some(size) = record_size(max_record_size) {
        spec.source.max_record_size = Some(size);
    }
    spec.validate(&spec.toml_path())?;
    Ok(())
}

/// The line saying how many rows were set aside, and where.
fn print_rejects(rejected: u64, file: Option<&std::path::Path>) {
    if let Some(f) = file.filter(|_| rejected > 0) {
        outln!(
            "rejected {rejected} bad rows (within max_bad_rows): {}",
            f.display()
        );
    }
}

fn print_summary(r: &LoadReport, pg: &PgConfig) {
    if r.status == "skipped" {
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

fn output_format(args: &ConvertArgs) -> Result<OutputFormat, FerryError> {
    OutputFormat::from_spec(&ConvertSpec {
        to: args.to.clone(),
        compression: args.compression.clone(),
        row_group_rows: Some(args.row_group_rows),
        dictionary: match args.dictionary.as_str() {
            "all" => Some(true),
            "none" => Some(false),
            _ => None,
        },
        statistics: Some(args.statistics.clone()),
        delimiter: args.delimiter.clone(),
        header: Some(!args.no_header),
        null: Some(args.null.clone()),
        validate: Some(!args.no_validate),
    })
}

/// Makes the input a local file (staging S3 objects into the working folder).
async fn local_input(uri: &str, work_dir: &std::path::Path) -> Result<Input, FerryError> {
    let location = Location::parse(uri).map_err(|e| FerryError::Usage(e.to_string()))?;
    if let Location::Local(path) = &location
        && !path.is_file()
    {
        return Err(FerryError::Usage(format!("--input {uri}: no such file")));
    }
    let dir = std::path::absolute(work_dir)
        .unwrap_or_else(|_| work_dir.to_path_buf())
        .join(uuid::Uuid::now_v7().to_string())
        .join(ferry_engine::load::run_stamp())
        .join("input");
    let staged = stage(&location, &dir, &Expect::default()).await?;
    Ok(Input {
        path: staged.path,
        display: uri.to_string(),
    })
}

async fn run_convert(args: ConvertArgs, interactive: bool) -> Result<Done, FerryError> {
    let format = output_format(&args)?;
    args.retention.sweep_local(&args.work_dir).await;
    let input = local_input(args.input(), &args.work_dir).await?;
    let mut spec = match &args.dataset {
        Some(dir) => {
            if args.input_format.is_some()
                || args.input_delimiter.is_some()
                || !args.input_nulls.is_empty()
            {
                return Err(FerryError::Usage(
                    "--input-format, --input-delimiter and --input-null describe the input without a spec; with --dataset, set them in dataset.toml".into(),
                ));
            }
            DatasetSpec::load(dir)?
        }
        None => {
            let mut source = SourceSpec {
                format: args.input_format,
                delimiter: args.input_delimiter.clone(),
                null: (!args.input_nulls.is_empty())
                    .then(|| NullMarkers::Many(args.input_nulls.clone())),
                max_record_size: record_size(args.max_record_size),
                ..SourceSpec::default()
            };
            ferry_engine::sniff::complete_source(&mut source, &input)?;
            let stem = file_stem(args.input());
            DatasetSpec::ad_hoc(&stem, source, None)
        }
    };
    apply_limits(&mut spec, args.max_bad_rows, args.max_record_size)?;
    let step = args.step.as_deref();
    let output = match &args.output {
        Some(o) => o.clone(),
        None => default_output(args.input(), &format, spec.source.format, step),
    };
    if std::path::absolute(&output).ok() == std::path::absolute(&input.path).ok() {
        return Err(FerryError::Usage(format!(
            "--output {} is the input itself",
            output.display()
        )));
    }
    if step != Some("validate") && output.exists() && !args.force {
        return Err(FerryError::Usage(format!(
            "{} exists; pass --force to overwrite it",
            output.display()
        )));
    }
    let table = match &args.table {
        Some(t) => {
            QualifiedName::parse(t).map_err(|e| FerryError::Usage(format!("--table: {e}")))?
        }
        None => spec.target_table().unwrap_or_else(|| {
            QualifiedName::new(
                "public",
                file_stem(args.input()).replace(['-', '.', ' '], "_"),
            )
        }),
    };
    let req = ConvertRequest {
        spec,
        input,
        output,
        format,
        table,
        progress: interactive,
        digest: !args.no_validate,
    };
    let mut done = Done::Ok;
    if step != Some("validate") {
        let r = convert(&req).await?;
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        } else {
            outln!(
                "converted {} rows {} -> {} ({}) in {:.2} s: {:.0} rows/s, {:.1} MB in ({:.1} MB/s), {:.1} MB out",
                r.rows,
                r.input,
                r.output.display(),
                r.format,
                r.seconds,
                r.rows as f64 / r.seconds.max(1e-9),
                r.input_bytes as f64 / 1e6,
                r.input_bytes as f64 / 1e6 / r.seconds.max(1e-9),
                r.output_bytes as f64 / 1e6,
            );
            for l in &r.lossy {
                outln!("  converted for {}: {l}", r.format);
            }
            print_rejects(r.rejected, r.rejects.as_deref());
        }
    }
    if !args.no_validate && step != Some("convert") {
        let v = validate(&req).await?;
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else if v.is_valid() {
            outln!(
                "validation: valid ({} rows, {} columns read back and identical) in {:.2} s",
                v.rows.1,
                v.written.columns.len(),
                v.seconds
            );
        } else {
            outln!("validation: INVALID");
            for p in &v.problems {
                outln!("  {p}");
            }
            if let Some(d) = &v.first_difference {
                outln!(
                    "  first difference: row {}, column {:?}: input {}, output {}",
                    d.row,
                    d.column,
                    d.source,
                    d.written
                );
            }
            outln!(
                "  report: {}",
                ferry_engine::convert::report_path(&req.output, "validation.json").display()
            );
        }
        if !v.is_valid() {
            done = Done::Invalid;
        }
    }
    Ok(done)
}

/// The output next to the input: `<stem>.<ext>`, or, when a file of that
/// name exists that ferry did not write (no `.convert.json` beside it: the
/// round trip `orders.csv` → `orders.parquet` → CSV would name the original),
/// `<stem>.from-<input format>.<ext>`, so a default never points at a file
/// the user brought. ferry's own earlier output keeps its name (and needs
/// --force to be replaced). The validate step looks for what the convert
/// step chose: the second name when it exists.
fn default_output(
    input: &str,
    format: &OutputFormat,
    from: Option<Format>,
    step: Option<&str>,
) -> PathBuf {
    let stem = file_stem(input);
    let name = |stem: &str| match format.extension() {
        Some(ext) => format!("{stem}.{ext}"),
        None => format!("{stem}-{}", format.name()),
    };
    let place = |name: String| match Location::parse(input) {
        Ok(Location::Local(p)) => p.with_file_name(name),
        _ => PathBuf::from(name),
    };
    let plain = place(name(&stem));
    let from = from
        .or_else(|| Format::from_path(std::path::Path::new(input)))
        .map_or_else(|| "input".to_string(), |f| f.to_string());
    let marked = place(name(&format!("{stem}.from-{from}")));
    let ferrys = |p: &std::path::Path| {
        let mut report = p.as_os_str().to_owned();
        report.push(".convert.json");
        PathBuf::from(report).exists()
    };
    let plain_is_ours = match step {
        Some("validate") => !marked.exists(),
        _ => !plain.exists() || ferrys(&plain),
    };
    if plain_is_ours { plain } else { marked }
}

fn file_stem(uri: &str) -> String {
    let name = uri.rsplit(['/', '\\']).next().unwrap_or(uri);
    let name = name.split('.').next().unwrap_or(name);
    if name.is_empty() {
        "output".to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (unique names, valid defaults) for every subcommand.
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    /// The kernel reports the switch in /proc (Linux 6.x prints
    /// `THP_enabled:`); a kernel that does not print it has nothing to check.
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_after_the_switch() {
        let thp = || {
            std::fs::read_to_string("/proc/self/status")
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_string()))
        };
        if thp().is_none() {
            return;
        }
        super::no_transparent_huge_pages();
        assert_eq!(thp().as_deref(), Some("0"));
    }
}
