//! The client side of the receipt: the digest of the rows ferry sends,
//! computed from the binary COPY tuples the encoder produced (so it is what
//! went over the wire) in the parallel encode stage, one chunk at a time.
//! Chunk digests are sums, so they add up in any order: parallel streams
//! may deliver chunks in any order and the digest is the same.

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use serde::{Deserialize, Serialize};

use super::hash::{fold_array, hash_bytes, hash_f64, hash_i64, hash_numeric};
use super::jsonb;
use super::{Check, ValueHash};

/// One column's share of a digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSum {
    /// NULLs.
    pub nulls: u64,
    /// The sum of the column's value hashes (each a signed 64-bit number,
    /// as PostgreSQL's `sum(bigint)` adds them).
    #[serde(with = "text_i128")]
    pub sum: i128,
}

/// The digest of a set of rows: their number, each column's NULLs and
/// value-hash sum, and the sum over rows of each row's hash (the XOR of its
/// columns' hashes) — the one figure the server recomputes on every load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Rows.
    pub rows: u64,
    /// Sum of the row hashes.
    #[serde(with = "text_i128")]
    pub row_sum: i128,
    /// Per column, in COPY order (unchecked columns stay zero).
    pub columns: Vec<ColumnSum>,
}

/// i128 as a decimal string in JSON (no JSON reader loses digits then).
pub(crate) mod text_i128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Digest {
    /// An empty digest for `columns` columns.
    pub fn new(columns: usize) -> Self {
        Digest {
            rows: 0,
            row_sum: 0,
            columns: vec![ColumnSum::default(); columns],
        }
    }

    /// Adds another chunk's digest.
    pub fn merge(&mut self, other: &Digest) {
        self.rows += other.rows;
        self.row_sum += other.row_sum;
        if self.columns.len() < other.columns.len() {
            self.columns
                .resize(other.columns.len(), ColumnSum::default());
        }
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.nulls += b.nulls;
            a.sum += b.sum;
        }
    }
}

/// A value that is not what ferry's encoder writes: a bug, never user data.
#[derive(Debug, thiserror::Error)]
#[error("receipt: column {column:?}: the encoded row {row} cannot be read back ({why})")]
pub struct DigestError {
    /// Column.
    pub column: String,
    /// Row within the chunk.
    pub row: usize,
    /// What is wrong.
    pub why: &'static str,
}

/// Reads one big-endian integer of `N` bytes.
fn be<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.get(..N)?.try_into().ok()
}

/// The seed of column `k`: each column hashes with its own, so two columns
/// swapping values changes the row hash.
pub fn seed(k: usize) -> u64 {
    k as u64 + 1
}

/// What a NULL of column `k` adds to its row's hash.
pub fn null_hash(k: usize) -> i64 {
    (seed(k).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1) as i64
}

/// Days from 2000-01-01 to 294277-01-01, the first date a `timestamp`
/// cannot hold.
const TIMESTAMP_END_DAYS: i32 = 109_203_528 - 2_451_545;

/// The hash of one value in its binary COPY form (`None`: not a value
/// ferry's encoder writes).
pub fn hash_value(h: &ValueHash, v: &[u8], s: u64) -> Option<u64> {
    Some(match h {
        ValueHash::Bool => hash_i64(*v.first()? as i64, s),
        ValueHash::Int => match v.len() {
            2 => hash_i64(i16::from_be_bytes(be(v)?) as i64, s),
            4 => hash_i64(i32::from_be_bytes(be(v)?) as i64, s),
            8 => hash_i64(i64::from_be_bytes(be(v)?), s),
            _ => return None,
        },
        ValueHash::Float => match v.len() {
            4 => hash_f64(f32::from_be_bytes(be(v)?) as f64, s),
            8 => hash_f64(f64::from_be_bytes(be(v)?), s),
            _ => return None,
        },
        // Read from the Arrow batch instead (see `Digester::digest`).
        ValueHash::FloatAsSent => return None,
        ValueHash::Numeric { round, signed } => {
            let ndigits = i16::from_be_bytes(be(v)?) as usize;
            let weight = i16::from_be_bytes(be(&v[2..])?) as i32;
            let sign = u16::from_be_bytes(be(&v[4..])?);
            if sign >= 0xC000 {
                // NaN and the infinities hash to the seed.
                return Some(s);
            }
            // Digits on the stack: a numeric rarely has more than 32 (128
            // decimal digits); longer ones take the heap.
            let mut stack = [0i16; 32];
            let mut heap = Vec::new();
            let digits: &mut [i16] = if ndigits <= stack.len() {
                &mut stack[..ndigits]
            } else {
                heap.resize(ndigits, 0);
                &mut heap
            };
            for (i, d) in digits.iter_mut().enumerate() {
                *d = i16::from_be_bytes(be(v.get(8 + 2 * i..)?)?);
            }
            let negative = sign == 0x4000 && digits.iter().any(|&d| d != 0);
            let seed_for = |negative: bool| {
                if *signed && negative {
                    (s as i64).wrapping_neg() as u64
                } else {
                    s
                }
            };
            match round {
                Some(scale) => {
                    let (digits, weight) = round_numeric(digits, weight, *scale);
                    let negative = negative && digits.iter().any(|&d| d != 0);
                    hash_numeric(&digits, weight, seed_for(negative))
                }
                None => hash_numeric(digits, weight, seed_for(negative)),
            }
        }
        ValueHash::Text => hash_bytes(v, s),
        ValueHash::Padded => hash_bytes(trim_spaces(v), s) ^ v.len() as u64,
        ValueHash::Trimmed => hash_bytes(trim_spaces(v), s),
        ValueHash::Jsonb => {
            // Binary jsonb starts with its version byte.
            let text = std::str::from_utf8(v.get(1..)?).ok()?;
            hash_bytes(jsonb::canonical(text)?.as_bytes(), s)
        }
        ValueHash::Bytea => fold_array([hash_bytes(v, s)]),
        ValueHash::Date => hash_i64(i32::from_be_bytes(be(v)?) as i64, s),
        ValueHash::DateAsTimestamp => {
            let days = i32::from_be_bytes(be(v)?);
            match days {
                i32::MIN => hash_i64(i64::MIN, s),
                i32::MAX => hash_i64(i64::MAX, s),
                // 294277-01-01, where timestamps end.
                d if d < TIMESTAMP_END_DAYS => hash_i64(d as i64 * 86_400_000_000, s),
                d => hash_i64(d as i64, s) ^ 1,
            }
        }
        ValueHash::Time | ValueHash::Timestamp | ValueHash::Timestamptz => {
            hash_i64(i64::from_be_bytes(be(v)?), s)
        }
        ValueHash::Interval => {
            let micros = i64::from_be_bytes(be(v)?) as i128;
            let days = i32::from_be_bytes(be(&v[8..])?) as i128;
            let months = i32::from_be_bytes(be(&v[12..])?) as i128;
            hash_i64((micros + (months * 30 + days) * 86_400_000_000) as i64, s)
        }
        ValueHash::Uuid => hash_bytes(v.get(..16)?, s),
        ValueHash::Array(elem) => {
            let ndim = i32::from_be_bytes(be(v)?);
            if ndim == 0 {
                return Some(fold_array([]));
            }
            let mut n = 1usize;
            for d in 0..ndim as usize {
                n *= i32::from_be_bytes(be(v.get(12 + 8 * d..)?)?) as usize;
            }
            let mut at = 12 + 8 * ndim as usize;
            let mut hashes = Vec::with_capacity(n);
            for _ in 0..n {
                let len = i32::from_be_bytes(be(v.get(at..)?)?);
                at += 4;
                if len < 0 {
                    hashes.push(0);
                } else {
                    let e = v.get(at..at + len as usize)?;
                    at += len as usize;
                    hashes.push(hash_value(elem, e, s)?);
                }
            }
            fold_array(hashes)
        }
    })
}

fn trim_spaces(v: &[u8]) -> &[u8] {
    let end = v.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &v[..end]
}

/// Rounds a numeric (base-10000 digits, weight of the first) to `scale`
/// decimal places, half away from zero, as PostgreSQL does when it stores a
/// value in `numeric(p, scale)`.
pub(crate) fn round_numeric(digits: &[i16], weight: i32, scale: i32) -> (Vec<i16>, i32) {
    // Decimal digits, and the power of ten of the last one.
    let mut dec: Vec<u8> = Vec::with_capacity(digits.len() * 4);
    for d in digits {
        let d = *d as u16;
        dec.extend_from_slice(&[
            (d / 1000) as u8,
            (d / 100 % 10) as u8,
            (d / 10 % 10) as u8,
            (d % 10) as u8,
        ]);
    }
    let mut exp = 4 * (weight - digits.len() as i32 + 1);
    let drop = (-scale - exp).max(0) as usize;
    if drop > 0 {
        let cut = dec.len().saturating_sub(drop);
        let up = drop <= dec.len() && dec[cut] >= 5;
        dec.truncate(cut);
        exp += drop as i32;
        if up {
            let mut i = dec.len();
            loop {
                if i == 0 {
                    dec.insert(0, 1);
                    break;
                }
                i -= 1;
                if dec[i] == 9 {
                    dec[i] = 0;
                } else {
                    dec[i] += 1;
                    break;
                }
            }
        }
    }
    // Back to base 10000: align the last digit to a group boundary.
    let pad = exp.rem_euclid(4) as usize;
    dec.extend(std::iter::repeat_n(0, pad));
    exp -= pad as i32;
    let lead = (4 - dec.len() % 4) % 4;
    let mut aligned = vec![0u8; lead];
    aligned.extend_from_slice(&dec);
    let groups: Vec<i16> = aligned
        .chunks(4)
        .map(|c| (c[0] as i16) * 1000 + (c[1] as i16) * 100 + (c[2] as i16) * 10 + c[3] as i16)
        .collect();
    let weight = exp / 4 + groups.len() as i32 - 1;
    (groups, weight)
}

/// Splits binary COPY tuples into their fields (`None` for NULL), calling
/// `row` with each tuple's index and fields; stops at the first error, the
/// callback's or a malformed tuple's (`Err((row, why))`).
pub fn for_each_tuple(
    tuples: &[u8],
    columns: usize,
    mut row: impl FnMut(usize, &[Option<&[u8]>]) -> Result<(), (usize, &'static str)>,
) -> Result<(), (usize, &'static str)> {
    let mut at = 0usize;
    let mut index = 0usize;
    let mut fields: Vec<Option<&[u8]>> = Vec::with_capacity(columns);
    while at < tuples.len() {
        let malformed = |why| (index, why);
        let n = be::<2>(&tuples[at..])
            .map(i16::from_be_bytes)
            .ok_or(malformed("truncated tuple"))?;
        if n as usize != columns {
            return Err(malformed("field count"));
        }
        at += 2;
        fields.clear();
        for _ in 0..columns {
            let len = be::<4>(tuples.get(at..).unwrap_or(&[]))
                .map(i32::from_be_bytes)
                .ok_or(malformed("truncated field"))?;
            at += 4;
            if len < 0 {
                fields.push(None);
            } else {
                fields.push(Some(
                    tuples
                        .get(at..at + len as usize)
                        .ok_or(malformed("truncated value"))?,
                ));
                at += len as usize;
            }
        }
        row(index, &fields)?;
        index += 1;
    }
    Ok(())
}

/// Computes chunk digests for one load's columns.
#[derive(Debug, Clone)]
pub struct Digester {
    checks: Vec<Check>,
}

impl Digester {
    /// A digester for these columns (COPY order).
    pub fn new(checks: Vec<Check>) -> Self {
        Digester { checks }
    }

    /// The columns and how each is compared.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The digest of one encoded chunk: `tuples` are the binary COPY tuples
    /// of `batch` (the batch the encoder was given, columns in COPY order).
    pub fn digest(&self, batch: &RecordBatch, tuples: &[u8]) -> Result<Digest, DigestError> {
        let n = batch.num_rows();
        let mut out = Digest::new(self.checks.len());
        out.rows = n as u64;
        // Columns compared as the transform produced them, not as encoded.
        let as_sent: Vec<Option<arrow::array::ArrayRef>> = self
            .checks
            .iter()
            .enumerate()
            .map(|(k, c)| {
                (c.hash == Some(ValueHash::FloatAsSent))
                    .then(|| cast(batch.column(k), &DataType::Float64).ok())
                    .flatten()
            })
            .collect();
        // The column an error names: the one whose value could not be
        // hashed (a malformed tuple names the first).
        let mut failed_column = 0usize;
        let walked = for_each_tuple(tuples, self.checks.len(), |row, fields| {
            let mut row_hash = 0i64;
            for (k, (check, value)) in self.checks.iter().zip(fields).enumerate() {
                let Some(h) = &check.hash else { continue };
                let s = seed(k);
                let hashed = match (value, h) {
                    (None, _) => None,
                    (Some(_), ValueHash::FloatAsSent) => {
                        let Some(a) = &as_sent[k] else {
                            failed_column = k;
                            return Err((row, "not a number"));
                        };
                        Some(hash_f64(a.as_primitive::<Float64Type>().value(row), s))
                    }
                    (Some(v), h) => match hash_value(h, v, s) {
                        Some(x) => Some(x),
                        None => {
                            failed_column = k;
                            return Err((row, "malformed value"));
                        }
                    },
                };
                let col = &mut out.columns[k];
                match hashed {
                    Some(h) => {
                        col.sum += h as i64 as i128;
                        row_hash ^= h as i64;
                    }
                    None => {
                        col.nulls += 1;
                        row_hash ^= null_hash(k);
                    }
                }
            }
            out.row_sum += row_hash as i128;
            Ok(())
        });
        if let Err((row, why)) = walked {
            return Err(DigestError {
                column: self
                    .checks
                    .get(failed_column)
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                row,
                why,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::round_numeric;

    #[test]
    fn rounds_half_away_from_zero_at_any_scale() {
        // 1.2345 → digits [1, 2345], weight 0.
        assert_eq!(round_numeric(&[1, 2345], 0, 2), (vec![1, 2300], 0));
        // 1.235 → 1.24; 9999.995 → 10000.00
        assert_eq!(round_numeric(&[1, 2350], 0, 2), (vec![1, 2400], 0));
        assert_eq!(round_numeric(&[9999, 9950], 0, 2), (vec![1, 0, 0], 1));
        // 0.004 → 0.00; a scale the value already fits leaves it alone.
        let (d, _) = round_numeric(&[40], -1, 2);
        assert!(d.iter().all(|&x| x == 0));
        assert_eq!(round_numeric(&[1, 5000], 0, 4), (vec![1, 5000], 0));
        // 1234 at scale -2 → 1200.
        assert_eq!(round_numeric(&[1234], 0, -2), (vec![1200], 0));
    }
}
