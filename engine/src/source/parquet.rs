//! Apache Parquet, through DataFusion's reader (in parallel, by row group),
//! or, for one part of a split input, through the parquet crate's reader of
//! chosen row groups.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::{Deserialize, Serialize};

use crate::decode::DecodeError;
use crate::decode::blocking::{BlockingPartition, OpenFn};
use crate::error::FerryError;
use crate::format::Format;

use super::typed::TypedFile;
use super::{Input, df_err, path_str};

/// `parquet` inputs.
pub(super) struct Parquet;

#[async_trait::async_trait]
impl TypedFile for Parquet {
    const FORMAT: Format = Format::Parquet;

    async fn register_raw(
        &self,
        ctx: &SessionContext,
        name: &str,
        input: &Input,
    ) -> Result<(), FerryError> {
        let path = path_str(input)?;
        ctx.register_parquet(name, path.as_str(), options())
            .await
            .map_err(df_err(input))
    }
}

fn options() -> ParquetReadOptions<'static> {
    ParquetReadOptions::default().file_extension("")
}

/// Row groups `[first, first + count)` of a Parquet file: the unit a part of
/// a split Parquet input reads (a row group is the smallest piece a reader
/// can start at, and the unit writers size for parallel reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowGroupRange {
    /// Index of the first row group.
    pub first: usize,
    /// How many row groups.
    pub count: usize,
    /// The file's row (0-based) at the first row group's first row, so a
    /// value that does not fit its declared type is named by the file's row.
    pub row: u64,
    /// Their compressed size in bytes.
    pub bytes: u64,
}

/// Groups the row groups of the Parquet file at `input` into parts of at
/// least `part_bytes` compressed bytes each (the last may be smaller), in
/// file order. One part when the file is that small or has one row group.
pub fn row_group_ranges(input: &Input, part_bytes: u64) -> Result<Vec<RowGroupRange>, FerryError> {
    let meta = metadata(input)?;
    let mut parts: Vec<RowGroupRange> = Vec::new();
    let mut row = 0u64;
    let mut open: Option<RowGroupRange> = None;
    for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
        let part = open.get_or_insert(RowGroupRange {
            first: i,
            count: 0,
            row,
            bytes: 0,
        });
        part.count += 1;
        part.bytes += rg.compressed_size().max(0) as u64;
        row += rg.num_rows().max(0) as u64;
        if part.bytes >= part_bytes {
            parts.extend(open.take());
        }
    }
    parts.extend(open);
    Ok(parts)
}

fn metadata(input: &Input) -> Result<ArrowReaderMetadata, FerryError> {
    let file = std::fs::File::open(&input.path)
        .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?;
    ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| reader_error(input, e))
}

fn reader_error(input: &Input, e: impl std::fmt::Display) -> FerryError {
    FerryError::Decode(parquet_error(&input.display, e))
}

/// Registers row groups `part` of the Parquet file at `input` as `name`, with
/// the columns typed exactly as DataFusion types the whole file (so a part's
/// rows encode as an unsplit read's do), read by up to `partitions` threads,
/// each its own share of the row groups, in order.
pub(super) async fn register_row_groups(
    ctx: &SessionContext,
    name: &str,
    input: &Input,
    part: RowGroupRange,
    partitions: usize,
) -> Result<(), FerryError> {
    // The schema DataFusion reads the whole file with (string columns as
    // views, for one): the file's metadata only.
    let probe = SessionContext::new();
    probe
        .register_parquet("probe", path_str(input)?.as_str(), options())
        .await
        .map_err(df_err(input))?;
    let schema: SchemaRef = Arc::new(
        probe
            .table("probe")
            .await
            .map_err(df_err(input))?
            .schema()
            .as_arrow()
            .clone(),
    );
    let meta = ArrowReaderMetadata::load(
        &std::fs::File::open(&input.path)
            .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?,
        ArrowReaderOptions::new().with_schema(schema.clone()),
    )
    .map_err(|e| reader_error(input, e))?;
    let groups: Vec<usize> = (part.first..part.first + part.count).collect();
    let shares = partitions.clamp(1, groups.len().max(1));
    let per = groups.len().div_ceil(shares);
    let streams: Vec<Arc<dyn PartitionStream>> = groups
        .chunks(per.max(1))
        .map(|share| {
            let (path, display) = (PathBuf::from(&input.path), input.display.clone());
            let (meta, share) = (meta.clone(), share.to_vec());
            let open: OpenFn = Arc::new(move || {
                let file = std::fs::File::open(&path)
                    .map_err(|e| DecodeError::io(display.clone(), "cannot open", e))?;
                let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
                    .with_row_groups(share.clone())
                    .with_batch_size(8192)
                    .build()
                    .map_err(|e| parquet_error(&display, e))?;
                let display = display.clone();
                Ok(Box::new(
                    reader.map(move |b| b.map_err(|e| parquet_error(&display, e))),
                ))
            });
            Arc::new(BlockingPartition::new(schema.clone(), open)) as Arc<dyn PartitionStream>
        })
        .collect();
    let table = StreamingTable::try_new(schema, streams).map_err(df_err(input))?;
    ctx.register_table(name, Arc::new(table))
        .map_err(df_err(input))?;
    Ok(())
}

fn parquet_error(display: &str, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Reader {
        file: display.to_string(),
        location: String::new(),
        detail: e.to_string(),
    }
}
