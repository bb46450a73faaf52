//! The order-preserving content digest of a stream of batches, computed
//! column by column (columns hashed in parallel): row count, per-column null
//! counts and an xxh3-128 over each column's values in row order, in Arrow's
//! row format (which tells -0 from 0, NaN payloads apart, and every type).

use arrow::array::RecordBatch;
use arrow::row::{RowConverter, SortField};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3Default;

use super::canonical::comparable;
use crate::error::FerryError;

/// Per-column state.
struct ColumnDigest {
    name: String,
    converter: Option<RowConverter>,
    hasher: Xxh3Default,
    nulls: u64,
}

/// A running digest.
pub struct Digest {
    columns: Vec<ColumnDigest>,
    rows: u64,
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
    /// Rows.
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
                    hasher: Xxh3Default::new(),
                    nulls: 0,
                })
                .collect(),
            rows: 0,
        }
    }

    /// Adds a batch (already canonical).
    pub fn update(&mut self, batch: &RecordBatch) -> Result<(), FerryError> {
        if batch.num_columns() != self.columns.len() {
            return Err(FerryError::Internal(format!(
                "digest over {} columns got a batch of {}",
                self.columns.len(),
                batch.num_columns()
            )));
        }
        self.rows += batch.num_rows() as u64;
        self.columns
            .par_iter_mut()
            .zip(batch.columns().par_iter())
            .try_for_each(|(col, array)| -> Result<(), FerryError> {
                let array = comparable(array)?;
                col.nulls += array.logical_null_count() as u64;
                let converter = match &mut col.converter {
                    Some(c) => c,
                    slot => slot.insert(
                        RowConverter::new(vec![SortField::new(array.data_type().clone())])
                            .map_err(|e| {
                                FerryError::Internal(format!("digest of {}: {e}", col.name))
                            })?,
                    ),
                };
                let rows = converter
                    .convert_columns(&[array])
                    .map_err(|e| FerryError::Internal(format!("digest of {}: {e}", col.name)))?;
                for row in rows.iter() {
                    let bytes = row.as_ref();
                    col.hasher.update(&(bytes.len() as u32).to_le_bytes());
                    col.hasher.update(bytes);
                }
                Ok(())
            })
    }

    /// The summary so far.
    pub fn summary(&self) -> DigestSummary {
        DigestSummary {
            rows: self.rows,
            columns: self
                .columns
                .iter()
                .map(|c| ColumnSummary {
                    name: c.name.clone(),
                    nulls: c.nulls,
                    digest: format!("{:032x}", c.hasher.digest128()),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, StringArray, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};
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
        d.summary()
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
        assert_eq!(split.summary(), s);
    }
}
