//! The `ferry` command line: one module per subcommand (its arguments, its
//! help and its printing), the shared job settings, and the dispatch. The
//! work itself is `ferry_engine`; library errors become exit codes in
//! `main`, and only there.

pub mod convert;
pub mod job_args;
pub mod jobs;
pub mod lambda;
pub mod load;
pub mod run;
pub mod spec;
pub mod task;
pub mod tasks;
pub mod verify;
pub mod watch;

use std::io::IsTerminal;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use ferry_connectors::pg::LoadMode;
use ferry_engine::error::FerryError;
use ferry_engine::format::Format;
use ferry_engine::spec::DatasetSpec;

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
pub struct Cli {
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
    pub quiet: bool,
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
    #[command(after_help = load::LOAD_HELP)]
    Load(load::LoadArgs),
    /// Convert a file to another format and validate it by reading it back.
    #[command(after_help = convert::CONVERT_HELP)]
    Convert(convert::ConvertArgs),
    /// Check or create dataset specs.
    #[command(subcommand)]
    Spec(spec::SpecCommand),
    /// Run a whole job for one input, routed to its dataset by the specs' globs.
    #[command(after_help = run::RUN_HELP)]
    Run(run::RunArgs),
    /// Run one step of a job, as a container task of the Step Functions state machines.
    #[command(after_help = task::TASK_HELP)]
    Task(task::TaskArgs),
    /// Run as an AWS Lambda function: each invocation runs one small object's whole job.
    #[command(after_help = lambda::LAMBDA_HELP)]
    Lambda(lambda::LambdaArgs),
    /// Run jobs as objects arrive in a folder, an S3 prefix or an SQS queue of S3 events.
    #[command(after_help = watch::WATCH_HELP)]
    Watch(watch::WatchArgs),
    /// List and show jobs.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Check that a loaded table still holds what its load's receipt proved it stored.
    #[command(after_help = verify::VERIFY_HELP)]
    Verify(verify::VerifyArgs),
    /// Print the container-task contract (steps, commands, environment, error
    /// names) as JSON: the CDK app builds its state machines from it.
    #[command(after_help = tasks::TASKS_HELP)]
    Tasks,
}

fn parse_mode(s: &str) -> Result<LoadMode, String> {
    s.parse()
}

/// A spec keyword given as a flag (`--on-new-columns ignore`), parsed as the
/// spec parses it, so the flag accepts exactly the key's values.
fn parse_keyword<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|e| e.to_string())
}

fn parse_format(s: &str) -> Result<Format, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("unknown format {s:?}: one of {}", Format::names()))
}

/// The input, given as --input or as the plain argument (clap requires one).
fn either<'a>(flag: &'a Option<String>, plain: &'a Option<String>) -> &'a str {
    flag.as_deref().or(plain.as_deref()).unwrap_or("")
}

/// Sets up logging as the flags say; returns whether logs are JSON lines.
pub fn init_logging(cli: &Cli) -> bool {
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

/// How a command that did not fail ended.
pub enum Done {
    /// Success.
    Ok,
    /// Validation found a difference (exit 6).
    Invalid,
}

/// Runs the parsed command.
pub async fn run(cli: Cli, interactive: bool) -> Result<Done, FerryError> {
    match cli.command {
        Command::Load(args) => load::run(args, interactive).await,
        Command::Convert(args) => convert::run(args, interactive).await,
        Command::Run(args) => run::run(args, interactive).await.map(|()| Done::Ok),
        Command::Task(args) => task::run(args).await.map(|()| Done::Ok),
        Command::Watch(args) => watch::run(args, interactive).await.map(|()| Done::Ok),
        Command::Lambda(args) => lambda::run(args).await.map(|()| Done::Ok),
        Command::Jobs(cmd) => jobs::run(cmd).await.map(|()| Done::Ok),
        Command::Verify(args) => verify::run(args).await.map(|()| Done::Ok),
        Command::Spec(cmd) => spec::run(cmd).await.map(|()| Done::Ok),
        Command::Tasks => {
            outln!("{}", tasks::task_contract_json(&Cli::command()));
            Ok(Done::Ok)
        }
    }
}

/// The input limits `ferry load` and `ferry convert` take, over the spec's.
#[derive(clap::Args)]
pub struct Limits {
    /// Rows of a delimited or NDJSON input that may be bad (set aside in a reject file, the
    /// rest loaded) before the job fails; overrides the spec's [errors] max_bad_rows [default: 0].
    #[arg(long, value_name = "N")]
    max_bad_rows: Option<u64>,
    /// The longest record (a CSV record, an NDJSON line) read before the input is refused,
    /// e.g. 64MiB; overrides the spec's [source] max_record_size [default: 64MiB]. Memory
    /// stays within about twice this, whatever the input.
    #[arg(long, env = "FERRY_MAX_RECORD_SIZE", value_name = "SIZE")]
    max_record_size: Option<bytesize::ByteSize>,
}

impl Limits {
    /// `--max-record-size` as the spec's key.
    fn record_size(&self) -> Option<ferry_engine::spec::ByteCount> {
        self.max_record_size
            .map(|s| ferry_engine::spec::ByteCount(s.as_u64()))
    }

    /// Applies the limits to `spec`, and checks the spec as it will run.
    fn apply(&self, spec: &mut DatasetSpec) -> Result<(), FerryError> {
        if let Some(n) = self.max_bad_rows {
            spec.errors.max_bad_rows = n;
        }
        if let Some(size) = self.record_size() {
            spec.source.max_record_size = Some(size);
        }
        spec.validate(&spec.toml_path())?;
        Ok(())
    }
}

/// The input as a local file when it is one (it must exist), `None` for an
/// S3 object, which the job's download step stages.
fn local_input(uri: &str) -> Result<Option<std::path::PathBuf>, FerryError> {
    use ferry_connectors::store::Location;
    match Location::parse(uri).map_err(|e| FerryError::Usage(e.to_string()))? {
        Location::Local(path) if !path.is_file() => {
            Err(FerryError::Usage(format!("--input {uri}: no such file")))
        }
        Location::Local(path) => Ok(Some(path)),
        Location::S3 { .. } => Ok(None),
    }
}

/// Refuses source flags that are wrong (an unknown encoding label, a
/// separator that is not one character) before the file is read or sniffed.
fn check_source_flags(source: &ferry_engine::spec::SourceSpec) -> Result<(), FerryError> {
    DatasetSpec::ad_hoc("input", source.clone(), None)
        .validate(std::path::Path::new("(command line)"))?;
    Ok(())
}

/// A JSON report a job's step left on disk, read back for printing.
fn read_report<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, FerryError> {
    let bytes = std::fs::read(path)
        .map_err(|e| FerryError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| FerryError::Internal(format!("{}: {e}", path.display())))
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

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (unique names, valid defaults) for every subcommand.
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
