//! `ferry spec check` and `ferry spec init`: specs without data.

use std::path::PathBuf;

use clap::Subcommand;
use ferry_connectors::pg::{PgConfig, SchemaChange};
use ferry_engine::error::FerryError;
use ferry_engine::spec::DatasetSpec;
use ferry_engine::spec::check::{OutputColumnInfo, check, init};

#[derive(Subcommand)]
pub enum SpecCommand {
    /// Validate a spec and print its output schema and CREATE TABLE, touching no data.
    #[command(
        after_help = "Example:\n  ferry spec check sql/lineitem\n  ferry spec check sql/events --sample data/events.ndjson\n  ferry spec check sql/orders --database-url \"$DATABASE_URL\"   # the DDL a load would run"
    )]
    Check {
        /// The spec folder.
        dir: PathBuf,
        /// A sample input to infer undeclared types from (default: the spec's source.sample).
        #[arg(long, value_name = "FILE")]
        sample: Option<PathBuf>,
        /// Compare the spec (and its sample) with the live target table and print the
        /// DDL a load would run (CREATE TABLE, ADD COLUMN, a widening), changing nothing.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
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

/// Runs a `ferry spec` subcommand.
pub async fn run(cmd: SpecCommand) -> Result<(), FerryError> {
    match cmd {
        SpecCommand::Check {
            dir,
            sample,
            database_url,
            json,
        } => {
            let spec = DatasetSpec::load(&dir)?;
            let pg = match &database_url {
                Some(url) => Some(PgConfig::from_url_or_env(Some(url))?),
                None => None,
            };
            let report = check(&spec, sample.as_deref(), pg.as_ref()).await?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                return Ok(());
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
            match &report.database {
                None => {
                    if let Some(ddl) = report.ddl {
                        outln!("\ntarget table:\n{ddl};");
                    }
                }
                Some(db) => {
                    outln!(
                        "\ntarget table {} at {}: {}",
                        db.table,
                        db.database,
                        match (db.table_exists, db.ddl.is_empty()) {
                            (false, _) => "missing; a load would create it:",
                            (true, true) => "fits; a load would change nothing",
                            (true, false) => "drifted; a load would run, in its transaction:",
                        }
                    );
                    for ddl in &db.ddl {
                        outln!("{ddl};");
                    }
                    for change in &db.schema_changes {
                        if matches!(change, SchemaChange::IgnoreColumn { .. }) {
                            outln!("and leave out: {}", change.describe());
                        }
                    }
                }
            }
            Ok(())
        }
        SpecCommand::Init {
            file,
            name,
            dir,
            table,
            force,
        } => {
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
            Ok(())
        }
    }
}

fn print_columns(cols: &[OutputColumnInfo]) {
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
