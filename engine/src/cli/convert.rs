//! `ferry convert`: a file into another format, validated by reading it
//! back.

use std::path::PathBuf;

use clap::Args;
use ferry_connectors::jobs::{Origin, Workflow};
use ferry_connectors::pg::QualifiedName;
use ferry_connectors::store::Location;
use ferry_engine::convert::writers::OutputFormat;
use ferry_engine::convert::{
    ConvertReport, ValidationReport, default_table, input_stem, report_path,
};
use ferry_engine::error::FerryError;
use ferry_engine::format::Format;
use ferry_engine::source::Input;
use ferry_engine::spec::{ConvertSpec, DatasetSpec, NullMarkers, SourceSpec, TargetSpec};
use ferry_engine::workflow::event::Trigger;
use ferry_engine::workflow::{Runtime, Settings, Step};

use super::job_args::{Retention, StoreArgs};
use super::{
    Done, Limits, check_source_flags, either, local_input, parse_format, print_rejects, read_report,
};

pub const CONVERT_HELP: &str = "\
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
  sql, pgcopy        PostgreSQL's types (see the README's type mapping); nested -> jsonb

Each conversion is a job in the job store (`ferry jobs list`), run through the
Converter's steps (create-job, s3-efs-downloader, convert, validate, notify; no upload),
writing to --output instead of the job folder; the folder is kept for --work-retention.";

#[derive(Args)]
pub struct ConvertArgs {
    /// The input: a path, file:///path or s3://bucket/key.
    #[arg(short, long, value_name = "URI", required_unless_present = "input_arg")]
    input: Option<String>,
    /// The input, as a plain argument (`ferry convert orders.csv …`): the same as --input.
    #[arg(value_name = "INPUT", conflicts_with = "input")]
    input_arg: Option<String>,
    /// The output format.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ferry_engine::convert::writers::names()))]
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
    /// The input's text encoding, e.g. windows-1252, latin1, utf-16 (without --dataset;
    /// default utf-8).
    #[arg(long, value_name = "LABEL")]
    input_encoding: Option<String>,
    /// The input's decimal separator, e.g. , for 1234,5 (without --dataset; default .).
    #[arg(long, value_name = "CHAR")]
    input_decimal_separator: Option<String>,
    /// A thousands separator in the input's numbers, to drop (without --dataset).
    #[arg(long, value_name = "CHAR")]
    input_thousands_separator: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    retention: Retention,
    #[command(flatten)]
    limits: Limits,
    /// Print the reports as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl ConvertArgs {
    fn input(&self) -> &str {
        either(&self.input, &self.input_arg)
    }
}

/// The `[convert]` section the flags describe (a dataset's own is not
/// used: `--to` is required).
fn convert_spec(args: &ConvertArgs) -> ConvertSpec {
    ConvertSpec {
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
    }
}

/// `ferry convert`: one input into another format, then read back, as a
/// job of the local job store (create-job, download, convert, validate,
/// notify: the Converter's steps less the upload), writing where the user
/// asked instead of into the job folder.
pub async fn run(args: ConvertArgs, interactive: bool) -> Result<Done, FerryError> {
    let cspec = convert_spec(&args);
    let format = OutputFormat::from_spec(&cspec)?;
    let work_dir = args.store.work_dir()?;
    let store = args.store.open().await?;
    args.retention.sweep(&work_dir, Some(store.as_ref())).await;
    let local = local_input(args.input())?;
    let mut spec = match &args.dataset {
        Some(dir) => {
            if args.input_format.is_some()
                || args.input_delimiter.is_some()
                || !args.input_nulls.is_empty()
                || args.input_encoding.is_some()
                || args.input_decimal_separator.is_some()
                || args.input_thousands_separator.is_some()
            {
                return Err(FerryError::Usage(
                    "--input-format, --input-delimiter, --input-null, --input-encoding and the --input-…-separator flags describe the input without a spec; with --dataset, set them in dataset.toml".into(),
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
                encoding: args.input_encoding.clone(),
                decimal_separator: args.input_decimal_separator.clone(),
                thousands_separator: args.input_thousands_separator.clone(),
                max_record_size: args.limits.record_size(),
                ..SourceSpec::default()
            };
            check_source_flags(&source)?;
            // An S3 object is sniffed once the job has staged it.
            if let Some(path) = &local {
                let input = Input {
                    path: path.clone(),
                    display: args.input().to_string(),
                };
                ferry_engine::sniff::complete_source(&mut source, &input)?;
            }
            DatasetSpec::ad_hoc(&input_stem(args.input()), source, None)
        }
    };
    args.limits.apply(&mut spec)?;
    let step = args.step.as_deref();
    let output = match &args.output {
        Some(o) => o.clone(),
        None => default_output(args.input(), &format, spec.source.format, step),
    };
    if let Some(path) = &local
        && std::path::absolute(&output).ok() == std::path::absolute(path).ok()
    {
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
        None => spec
            .target_table()
            .unwrap_or_else(|| default_table(&input_stem(args.input()))),
    };
    // The job's convert step reads the table and the format from the spec.
    match spec.target.as_mut() {
        Some(target) => target.table = table.to_string(),
        None => spec.target = Some(TargetSpec::named(table.to_string())),
    }
    spec.convert = Some(cspec);
    spec.routing.workflow = Workflow::Converter;
    let validating = !args.no_validate && step != Some("convert");
    let converting = step != Some("validate");
    let steps: Vec<Step> = [
        Some(Step::Download),
        converting.then_some(Step::Convert),
        validating.then_some(Step::Validate),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut settings = Settings::new(work_dir);
    settings.progress = interactive;
    settings.convert_output = Some(output.clone());
    let trigger = Trigger::from_uri(args.input()).await?;
    let runtime = Runtime::one_off(settings, store, spec, None).await?;
    let ran = runtime.run_one_off(&trigger, Origin::Convert, &steps).await;
    let invalid = match ran {
        Ok(_) => false,
        // The validate step failed the job: its report says how, below.
        Err(FerryError::Invalid(_)) if validating => true,
        Err(e) => return Err(e),
    };
    if converting {
        let r: ConvertReport = read_report(&report_path(&output, "convert.json"))?;
        print_conversion(&r, args.json);
    }
    if validating {
        let v: ValidationReport = read_report(&report_path(&output, "validation.json"))?;
        print_validation(&v, &output, args.json);
        if invalid || !v.is_valid() {
            return Ok(Done::Invalid);
        }
    }
    Ok(Done::Ok)
}

fn print_conversion(r: &ConvertReport, json: bool) {
    if json {
        outln!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
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

fn print_validation(v: &ValidationReport, output: &std::path::Path, json: bool) {
    if json {
        outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
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
            report_path(output, "validation.json").display()
        );
    }
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
    let stem = input_stem(input);
    let name = |stem: &str| format.file_name(stem);
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
