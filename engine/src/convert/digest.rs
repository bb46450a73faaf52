//! The order-preserving content digest of a stream of batches, computed
//! column by column (columns hashed in parallel): row count, per-column null
//! counts and an xxh3-128 over each column's values in row order — straight
//! from the Arrow buffers for fixed-width and flat string/binary columns, in
//! Arrow's row format for the rest. Both tell -0 from 0 and NaN payloads
//! apart.
//! A digest is only ever compared with one computed by the same build (the
//! convert step's and the validate step's), so its exact bytes may change.

use std::path::Path;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, ToByteSlice};
use arrow::row::{RowConverter, SortField};
use serde::{Deserialize, Serialize};
use twox_hash::xxhash3_128::Hasher as Xxh3;

use super::canonical::comparable;
use crate::error::FerryError;

/// Per-column state.
struct ColumnDigest {
    name: String,
    converter: Option<RowConverter>,
    /// The values (flat types) or their row-format bytes (the others).
    values: Xxh3,
    /// Flat strings and bytes: each value's length.
    lengths: Xxh3,
    /// Flat types: the row number (in the whole stream, as a little-endian
    /// u64) of each NULL. With the row count this is the validity, and a
    /// column without NULLs costs nothing here.
    validity: Xxh3,
    nulls: u64,
    /// Rows of this column hashed so far: where the next batch starts.
    rows: u64,
    /// Reused between batches.
    scratch: Vec<u8>,
    lengths_scratch: Vec<u32>,
}

impl ColumnDigest {
    /// Adds the next values of this column.
    fn update(&mut self, array: &ArrayRef) -> Result<(), FerryError> {
        let array = comparable(array)?;
        self.nulls += array.logical_null_count() as u64;
        let flat = self.update_flat(array.as_ref());
        self.rows += array.len() as u64;
        if flat {
            return Ok(());
        }
        let converter = match &mut self.converter {
            Some(c) => c,
            slot => slot.insert(
                RowConverter::new(vec![SortField::new(array.data_type().clone())])
                    .map_err(|e| FerryError::Internal(format!("digest of {}: {e}", self.name)))?,
            ),
        };
        let rows = converter
            .convert_columns(&[array])
            .map_err(|e| FerryError::Internal(format!("digest of {}: {e}", self.name)))?;
        // The row format of one column is prefix-free (it is built to be
        // concatenated with other columns), so the rows' bytes in sequence
        // identify the values and their order.
        self.scratch.clear();
        self.scratch.reserve(rows.size());
        for row in rows.iter() {
            self.scratch.extend_from_slice(row.as_ref());
        }
        self.values.write(&self.scratch);
        Ok(())
    }

    /// Fixed-width values and flat strings or bytes, hashed from their Arrow
    /// buffers as three streams — the values (NULL slots zeroed or left
    /// out), the value lengths, and the NULLs' row numbers — each a plain
    /// concatenation, so the digest does not depend on how the column was
    /// cut into batches. Other types return false and go through the row
    /// format, which costs several times more per value.
    fn update_flat(&mut self, array: &dyn Array) -> bool {
        let n = array.len();
        let nulls = array.logical_nulls();
        let dt = array.data_type();
        if let Some(width) = dt.primitive_width().filter(|_| dt.is_primitive()) {
            let data = array.to_data();
            let bytes = &data.buffers()[0].as_slice()[data.offset() * width..][..n * width];
            match &nulls {
                None => self.values.write(bytes),
                Some(valid) => {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(bytes);
                    for (i, slot) in self.scratch.chunks_exact_mut(width).enumerate() {
                        if valid.is_null(i) {
                            slot.fill(0);
                        }
                    }
                    self.values.write(&self.scratch);
                }
            }
        } else if matches!(dt, DataType::Utf8 | DataType::Binary) {
            let data = array.to_data();
            let offsets = &data.buffers()[0].typed_data::<i32>()[data.offset()..][..=n];
            let values = data.buffers()[1].as_slice();
            self.lengths_scratch.clear();
            match &nulls {
                None => {
                    self.values
                        .write(&values[offsets[0] as usize..offsets[n] as usize]);
                    // One pass the compiler vectorises; the bytes are hashed
                    // below as they lie in memory.
                    self.lengths_scratch
                        .extend(offsets.windows(2).map(|w| (w[1] - w[0]) as u32));
                }
                Some(valid) => {
                    self.scratch.clear();
                    for (i, w) in offsets.windows(2).enumerate() {
                        if valid.is_valid(i) {
                            self.scratch
                                .extend_from_slice(&values[w[0] as usize..w[1] as usize]);
                            self.lengths_scratch.push((w[1] - w[0]) as u32);
                        }
                    }
                    self.values.write(&self.scratch);
                }
            }
            // Native byte order: a digest is only compared with one from the
            // same build.
            self.lengths.write(self.lengths_scratch.to_byte_slice());
        } else {
            return false;
        }
        if let Some(valid) = nulls.as_ref().filter(|v| v.null_count() > 0) {
            self.scratch.clear();
            for i in (0..n).filter(|&i| valid.is_null(i)) {
                self.scratch
                    .extend_from_slice(&(self.rows + i as u64).to_le_bytes());
            }
            self.validity.write(&self.scratch);
        }
        true
    }

    /// The column's digest: the three streams' hashes, hashed.
    fn digest(&self) -> u128 {
        let mut all = Vec::with_capacity(48);
        for h in [&self.values, &self.lengths, &self.validity] {
            all.extend_from_slice(&h.finish_128().to_le_bytes());
        }
        Xxh3::oneshot(&all)
    }
}

/// A Parquet file opened for validation: its footer and page index, read
/// once for the schema check and the column readers.
pub struct ParquetFile {
    path: std::path::PathBuf,
    meta: datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata,
}

impl ParquetFile {
    /// Reads the footer and the page index. The page index is checked
    /// because readers that prune by it (DataFusion, Spark) would fail or
    /// skip rows on a corrupt one.
    pub fn open(path: &Path) -> Result<ParquetFile, String> {
        use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
        use datafusion::parquet::file::metadata::PageIndexPolicy;
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&file, options).map_err(|e| e.to_string())?;
        Ok(ParquetFile {
            path: path.to_path_buf(),
            meta,
        })
    }

    /// The Arrow schema the file reads back as.
    pub fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.meta.schema().clone()
    }
}

/// How much of a stream's batches [`Digest::push`] gathers before it
/// hashes them, one pool task per column over all of them. Each hashing asks
/// the pool for its cores, and the caller waits: a converter's writer thread,
/// asking once per 512 KiB batch while the pool decodes and writes, stalled
/// (`benchmarks/results/tuning.md`). The batches are held until then.
const GROUP_BYTES: usize = 8 << 20;

/// A running digest.
pub struct Digest {
    columns: Vec<ColumnDigest>,
    rows: u64,
    /// Batches pushed and not hashed yet, and their memory.
    waiting: Vec<RecordBatch>,
    waiting_bytes: usize,
    group_bytes: usize,
}

/// The summary of one column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ColumnSummary {
    /// Column name.
    pub name: String,
    /// NULL values.
    pub nulls: u64,
    /// xxh3-128 of the values in order, hex.
    pub digest: String,
}

/// The summary of a stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DigestSummary {
    /// Rows digested (validation compares the counts before the digests).
    pub rows: u64,
    /// Per column.
    pub columns: Vec<ColumnSummary>,
}

impl Digest {
    /// A digest over columns with these names.
    pub fn new(names: &[String]) -> Self {
        Digest {
            columns: names
                .iter()
                .map(|n| ColumnDigest {
                    name: n.clone(),
                    converter: None,
                    values: Xxh3::new(),
                    lengths: Xxh3::new(),
                    validity: Xxh3::new(),
                    nulls: 0,
                    rows: 0,
                    scratch: Vec::new(),
                    lengths_scratch: Vec::new(),
                })
                .collect(),
            rows: 0,
            waiting: Vec::new(),
            waiting_bytes: 0,
            group_bytes: GROUP_BYTES,
        }
    }

    /// Adds the next batch of a stream, hashed with the ones gathered
    /// before it once they hold [`GROUP_BYTES`] (or at [`Digest::summary`]):
    /// the same digest as [`Digest::update`] on each, for fewer waits on the
    /// pool when batches are small.
    pub fn push(&mut self, batch: RecordBatch) -> Result<(), FerryError> {
        self.waiting_bytes += batch.get_array_memory_size();
        self.waiting.push(batch);
        if self.waiting_bytes >= self.group_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Hashes the batches [`Digest::push`] gathered.
    fn flush(&mut self) -> Result<(), FerryError> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        let waiting = std::mem::take(&mut self.waiting);
        self.waiting_bytes = 0;
        self.update_all(&waiting)
    }

    /// Adds a batch (already canonical), after any that [`Digest::push`]
    /// gathered: the streams keep their order however they are fed.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<(), FerryError> {
        self.flush()?;
        self.update_all(std::slice::from_ref(batch))
    }

    /// Adds batches in order, one task per column over all of them: the
    /// same digest as adding them one by one (each stream is a plain
    /// concatenation), for one fan-out to the pool instead of one per
    /// batch (see [`Digest::push`]).
    fn update_all(&mut self, batches: &[RecordBatch]) -> Result<(), FerryError> {
        if let Some(batch) = batches
            .iter()
            .find(|b| b.num_columns() != self.columns.len())
        {
            return Err(FerryError::Internal(format!(
                "digest over {} columns got a batch of {}",
                self.columns.len(),
                batch.num_columns()
            )));
        }
        self.rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        let size = |i: usize| -> u64 {
            batches
                .iter()
                .map(|b| b.column(i).get_buffer_memory_size() as u64)
                .sum()
        };
        // Hashing costs about what the column holds: free text first.
        crate::longest_first::run(self.columns.iter_mut().collect(), size, |i, col| {
            batches.iter().try_for_each(|b| col.update(b.column(i)))
        })?;
        Ok(())
    }

    /// Adds a whole Parquet file, reading each column on its own task (in
    /// row-group order, so the digest is the one [`Digest::update`] gives):
    /// column digests are independent, so validation needs neither whole
    /// batches nor a single decoding thread. Errors are the reader's, as text.
    pub fn update_parquet(&mut self, file: &ParquetFile) -> Result<(), String> {
        use datafusion::parquet::arrow::ProjectionMask;
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        // After any batches gathered by `push`, in order.
        self.flush().map_err(|e| e.to_string())?;
        let (path, meta) = (&file.path, &file.meta);
        let open = || std::fs::File::open(path).map_err(|e| e.to_string());
        if meta.schema().fields().len() != self.columns.len() {
            return Err(format!(
                "{} columns read back, {} written",
                meta.schema().fields().len(),
                self.columns.len()
            ));
        }
        // Reading and hashing a column costs about its decoded size: the
        // largest column starts first.
        let mut sizes = vec![0u64; self.columns.len()];
        let leaves = meta.parquet_schema().num_columns();
        for group in meta.metadata().row_groups() {
            for (leaf, chunk) in group.columns().iter().enumerate().take(leaves) {
                let root = meta.parquet_schema().get_column_root_idx(leaf);
                if let Some(size) = sizes.get_mut(root) {
                    *size += u64::try_from(chunk.uncompressed_size()).unwrap_or(0);
                }
            }
        }
        let read = || {
            crate::longest_first::run(
                self.columns.iter_mut().collect(),
                |c| sizes[c],
                |c, col| -> Result<u64, String> {
                    let mask = ProjectionMask::roots(meta.parquet_schema(), [c]);
                    let reader =
                        ParquetRecordBatchReaderBuilder::new_with_metadata(open()?, meta.clone())
                            .with_projection(mask)
                            .with_batch_size(8192)
                            .build()
                            .map_err(|e| e.to_string())?;
                    let mut rows = 0u64;
                    for batch in reader {
                        let batch = batch.map_err(|e| e.to_string())?;
                        rows += batch.num_rows() as u64;
                        col.update(batch.column(0)).map_err(|e| e.to_string())?;
                    }
                    Ok(rows)
                },
            )
        };
        // A corrupt file must be a finding, not a crash of the validator.
        let counts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
            .map_err(|_| "the Parquet reader failed on corrupt data".to_string())??;
        let rows = counts.first().copied().unwrap_or(0);
        if counts.iter().any(|&n| n != rows) {
            return Err(format!(
                "columns read back with different row counts: {counts:?}"
            ));
        }
        self.rows += rows;
        Ok(())
    }

    /// The summary so far, the batches still gathered included.
    pub fn summary(&mut self) -> Result<DigestSummary, FerryError> {
        self.flush()?;
        Ok(DigestSummary {
            rows: self.rows,
            columns: self
                .columns
                .iter()
                .map(|c| ColumnSummary {
                    name: c.name.clone(),
                    nulls: c.nulls,
                    digest: format!("{:032x}", c.digest()),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, StringArray, StringViewArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn digest(a: ArrayRef) -> DigestSummary {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "c",
            a.data_type().clone(),
            true,
        )]));
        let mut d = Digest::new(&["c".to_string()]);
        d.update(&RecordBatch::try_new(schema, vec![a]).unwrap())
            .unwrap();
        d.summary().unwrap()
    }

    #[test]
    fn sensitive_to_order_sign_and_nulls_not_to_layout() {
        let a = digest(Arc::new(Float64Array::from(vec![
            Some(0.0),
            Some(1.0),
            None,
        ])));
        let b = digest(Arc::new(Float64Array::from(vec![
            Some(1.0),
            Some(0.0),
            None,
        ])));
        let c = digest(Arc::new(Float64Array::from(vec![
            Some(-0.0),
            Some(1.0),
            None,
        ])));
        let d = digest(Arc::new(Float64Array::from(vec![
            Some(0.0),
            Some(1.0),
            Some(f64::NAN),
        ])));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a.columns[0].nulls, 1);
        let s = digest(Arc::new(StringArray::from(vec!["x", "yy"])));
        let v = digest(Arc::new(StringViewArray::from(vec!["x", "yy"])));
        assert_eq!(s, v);
        // Splitting into batches does not change the digest.
        let schema = Arc::new(Schema::new(vec![Field::new("c", DataType::Utf8, true)]));
        let mut split = Digest::new(&["c".to_string()]);
        for part in [vec!["x"], vec!["yy"]] {
            split
                .update(
                    &RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(part))])
                        .unwrap(),
                )
                .unwrap();
        }
        assert_eq!(split.summary().unwrap(), s);
    }

    /// Batches pushed — hashed in groups, whether a group is one batch,
    /// several, or all of them at the summary — digest as batches added one
    /// by one: values, NULLs and their rows.
    #[test]
    fn pushed_batches_hashed_in_groups_digest_as_added_one_by_one() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("f", DataType::Float64, true),
        ]));
        let batches: Vec<RecordBatch> = (0..7)
            .map(|i| {
                let s: Vec<Option<String>> = (0..i * 3 + 1)
                    .map(|j| (j % 4 != 1).then(|| format!("v{i}-{j}")))
                    .collect();
                let f: Vec<Option<f64>> = (0..i * 3 + 1)
                    .map(|j| (j % 5 != 2).then_some(j as f64 - i as f64))
                    .collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from(s)),
                        Arc::new(Float64Array::from(f)),
                    ],
                )
                .unwrap()
            })
            .collect();
        let names = ["s".to_string(), "f".to_string()];
        let mut one_by_one = Digest::new(&names);
        for b in &batches {
            one_by_one.update(b).unwrap();
        }
        let expected = one_by_one.summary().unwrap();
        let size = batches[3].get_array_memory_size();
        for group in [1, size, 3 * size, usize::MAX] {
            let mut pushed = Digest::new(&names);
            pushed.group_bytes = group;
            for b in &batches {
                pushed.push(b.clone()).unwrap();
            }
            assert_eq!(
                pushed.summary().unwrap(),
                expected,
                "group of {group} bytes"
            );
        }
        // Pushed and added batches mixed keep their order too.
        let mut mixed = Digest::new(&names);
        for (k, b) in batches.iter().enumerate() {
            if k % 3 == 2 {
                mixed.update(b).unwrap();
            } else {
                mixed.push(b.clone()).unwrap();
            }
        }
        assert_eq!(mixed.summary().unwrap(), expected);
        // Reordered batches digest differently: the groups keep order.
        let mut reordered = Digest::new(&names);
        for b in batches.iter().rev() {
            reordered.push(b.clone()).unwrap();
        }
        assert_ne!(reordered.summary().unwrap(), expected);
    }

    /// Digest of one column fed in batches cut at `cuts`.
    fn digest_split(a: ArrayRef, cuts: &[usize]) -> DigestSummary {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "c",
            a.data_type().clone(),
            true,
        )]));
        let mut d = Digest::new(&["c".to_string()]);
        let mut from = 0;
        for &to in cuts.iter().chain([a.len()].iter()) {
            let part = a.slice(from, to - from);
            d.update(&RecordBatch::try_new(schema.clone(), vec![part]).unwrap())
                .unwrap();
            from = to;
        }
        d.summary().unwrap()
    }

    #[test]
    fn flat_columns_hash_values_lengths_and_validity_whatever_the_batches() {
        use arrow::array::{Decimal128Array, Int64Array};
        let s: ArrayRef = Arc::new(StringArray::from(vec![
            Some("ab"),
            None,
            Some(""),
            Some("c"),
            Some("déjà"),
        ]));
        let whole = digest(s.clone());
        for cuts in [&[1][..], &[2, 3], &[1, 2, 3, 4]] {
            assert_eq!(digest_split(s.clone(), cuts), whole, "cut at {cuts:?}");
        }
        // Moving a byte between neighbours, or NULL against empty, is seen.
        let moved = digest(Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some(""),
            Some("bc"),
            Some("déjà"),
        ])));
        let null_for_empty = digest(Arc::new(StringArray::from(vec![
            Some("ab"),
            Some(""),
            Some(""),
            Some("c"),
            Some("déjà"),
        ])));
        assert_ne!(moved, whole);
        assert_ne!(null_for_empty, whole);
        // Whatever a NULL slot holds underneath does not count.
        let i = |v: Vec<i64>| -> ArrayRef {
            let nulls = arrow::buffer::NullBuffer::from(vec![true, false, true]);
            Arc::new(Int64Array::new(v.into(), Some(nulls)))
        };
        assert_eq!(digest(i(vec![1, 7, 3])), digest(i(vec![1, 8, 3])));
        assert_ne!(digest(i(vec![1, 7, 3])), digest(i(vec![1, 7, 4])));
        // A NULL that trades places with a zero is seen: the values stream
        // alone (NULL slots zeroed) would not see it, the NULLs' row numbers do.
        let z = |v: Vec<Option<i64>>| digest(Arc::new(Int64Array::from(v)));
        assert_ne!(z(vec![Some(0), None]), z(vec![None, Some(0)]));
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(-4)]));
        assert_eq!(digest_split(ints.clone(), &[1, 3]), digest(ints));
        let dec: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(1234), None, Some(-5)])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        );
        assert_eq!(digest_split(dec.clone(), &[2]), digest(dec));
    }
}
