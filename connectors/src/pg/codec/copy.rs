//! One batch encoded for COPY, in both formats: binary tuples for the COPY
//! streams and `.pgcopy` files, COPY text rows for the `.sql` files. Used by
//! the loader and by the converter's PostgreSQL targets alike.

use arrow::array::RecordBatch;
use bytes::Bytes;

use super::EncodeError;
use super::binary::BinaryEncoder;
use super::text::{Style, TextColumn, render_column};

/// A batch's rows in the requested COPY formats.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Binary COPY tuples (empty unless requested).
    pub binary: Bytes,
    /// COPY text rows, `\n`-terminated (empty unless requested).
    pub text: Bytes,
    /// Rows encoded.
    pub rows: u64,
    /// Zero-based index of the first row among all rows of the stream.
    pub first_row: u64,
}

/// Appends the COPY text rows of `batch` (tab-separated, `\N` for NULL).
pub fn encode_text(
    encoder: &BinaryEncoder,
    batch: &RecordBatch,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let codecs = encoder.codecs();
    let mut cols = Vec::with_capacity(codecs.len());
    for (codec, array) in codecs.iter().zip(batch.columns()) {
        let normalized = codec.normalize(array)?;
        let mut col = TextColumn::default();
        render_column(codec, &normalized, Style::Copy, &mut col)?;
        cols.push(col);
    }
    let n = batch.num_rows();
    out.reserve(cols.iter().map(|c| c.data.len()).sum::<usize>() + n * cols.len());
    for r in 0..n {
        for (k, c) in cols.iter().enumerate() {
            if k > 0 {
                out.push(b'\t');
            }
            out.extend_from_slice(c.get(r));
        }
        out.push(b'\n');
    }
    Ok(())
}

/// Encodes `batch` (rows `first_row..`) in the formats asked for. Errors name
/// the row within the batch; callers add `first_row`.
pub fn encode_batch(
    encoder: &BinaryEncoder,
    batch: &RecordBatch,
    first_row: u64,
    binary: bool,
    text: bool,
) -> Result<Encoded, EncodeError> {
    let mut bin = Vec::new();
    if binary {
        bin.reserve(batch.get_array_memory_size() + batch.num_rows() * 8);
        encoder.encode(batch, &mut bin)?;
    }
    let mut txt = Vec::new();
    if text {
        encode_text(encoder, batch, &mut txt)?;
    }
    Ok(Encoded {
        binary: Bytes::from(bin),
        text: Bytes::from(txt),
        rows: batch.num_rows() as u64,
        first_row,
    })
}
