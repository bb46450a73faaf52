//! `ferry-bench`: the benchmark suite's deterministic inputs.
//!
//! - `lineitem`: TPC-H lineitem (the `tpchgen` crate, byte-identical to
//!   dbgen) as `|`-delimited CSV — no header, `l_comment` quoted — and as
//!   Parquet (snappy), the same rows both ways.
//! - `wide`: a table with every type of the type mapping (NULLs, Unicode,
//!   long text, decimals, zoned timestamps, intervals, lists, structs, JSON),
//!   as an Arrow IPC file, so the encoders are measured beyond TPC-H's types.
//!
//! Same arguments, same bytes: every file is a pure function of its
//! arguments, so results from different runs and machines compare.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use clap::{Parser, Subcommand};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use ferry_benchmarks::wide;
use rayon::prelude::*;
use tpchgen::csv::LineItemCsv;
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

#[derive(Parser)]
#[command(
    name = "ferry-bench",
    about = "Deterministic inputs for ferry's benchmark suite"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// TPC-H lineitem at a scale factor (SF 1 = 6,001,215 rows, ~766 MB of CSV).
    Lineitem {
        /// Scale factor (0.01, 0.1, 1, 10 …).
        #[arg(long)]
        scale: f64,
        /// Write '|'-delimited CSV here (no header, comments quoted).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write Parquet (snappy) here.
        #[arg(long)]
        parquet: Option<PathBuf>,
    },
    /// The wide all-types table, as an Arrow IPC file (Parquet cannot hold
    /// every Arrow type it has, e.g. month-day-nano intervals).
    Wide {
        /// Rows.
        #[arg(long)]
        rows: usize,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Lineitem {
            scale,
            csv,
            parquet,
        } => {
            if let Some(path) = csv {
                let rows = lineitem_csv(scale, &path)?;
                println!("{}: {rows} rows", path.display());
            }
            if let Some(path) = parquet {
                let rows = lineitem_parquet(scale, &path)?;
                println!("{}: {rows} rows", path.display());
            }
            Ok(())
        }
        Command::Wide { rows, out } => {
            let tmp = out.with_extension("partial");
            let mut w = arrow::ipc::writer::FileWriter::try_new(
                BufWriter::new(File::create(&tmp)?),
                &wide::schema(),
            )?;
            for b in wide::batches(rows) {
                w.write(&b)?;
            }
            w.finish()?;
            std::fs::rename(&tmp, &out)?;
            println!("{}: {rows} rows", out.display());
            Ok(())
        }
    }
}

/// Parts generated per scale factor unit: small enough that two parts in
/// flight stay well under 100 MB, many enough to keep every core busy.
const PARTS_PER_SF: f64 = 16.0;

fn parts(scale: f64) -> i32 {
    ((scale * PARTS_PER_SF).ceil() as i32).max(1)
}

/// Writes the CSV: parts are generated in parallel, a core's worth at a
/// time, and appended in order (so the file does not depend on the core count).
fn lineitem_csv(scale: f64, path: &Path) -> Result<u64> {
    let part_count = parts(scale);
    let tmp = path.with_extension("partial");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut rows = 0u64;
    let all: Vec<i32> = (1..=part_count).collect();
    for group in all.chunks(rayon::current_num_threads().max(1)) {
        let bufs: Vec<(Vec<u8>, u64)> = group
            .par_iter()
            .map(|&part| {
                let mut buf = Vec::with_capacity(8 << 20);
                let mut n = 0u64;
                for line in LineItemGenerator::new(scale, part, part_count).iter() {
                    // Writing to a Vec cannot fail.
                    let _ = writeln!(buf, "{}", LineItemCsv::with_delimiter(line, '|'));
                    n += 1;
                }
                (buf, n)
            })
            .collect();
        for (buf, n) in bufs {
            out.write_all(&buf)?;
            rows += n;
        }
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    Ok(rows)
}

/// Plain `Utf8` instead of `Utf8View`, which every peer reads.
fn plain_strings(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8View => Field::new(f.name(), DataType::Utf8, f.is_nullable()),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ))
}

fn lineitem_parquet(scale: f64, path: &Path) -> Result<u64> {
    let part_count = parts(scale);
    let schema = plain_strings(&LineItemArrow::schema_ref());
    let target = schema.clone();
    let batches = (1..=part_count).flat_map(move |part| {
        let target = target.clone();
        LineItemArrow::new(LineItemGenerator::new(scale, part, part_count))
            .with_batch_size(64 * 1024)
            .map(move |b| {
                let b = b?;
                let columns = b
                    .columns()
                    .iter()
                    .zip(target.fields())
                    .map(|(c, f)| cast(c, f.data_type()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(RecordBatch::try_new(target.clone(), columns)?)
            })
    });
    write_parquet(path, schema, batches)
}

fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<u64> {
    let tmp = path.with_extension("partial");
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut writer = ArrowWriter::try_new(File::create(&tmp)?, schema, Some(props))?;
    let mut rows = 0u64;
    for b in batches {
        let b = b?;
        rows += b.num_rows() as u64;
        writer.write(&b)?;
    }
    writer.close()?;
    std::fs::rename(&tmp, path)?;
    Ok(rows)
}
