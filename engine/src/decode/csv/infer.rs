//! Type inference for delimited text: every sampled value narrows each
//! column's candidate types; the most specific survivor wins. It uses the
//! same dialect and value parsers as decoding, so what inference accepts,
//! decoding accepts. Declared types always take precedence (the caller
//! applies them); inference never drops rows.

use arrow::datatypes::{DataType, TimeUnit};

use super::super::parse::{parse_date, parse_f64, parse_i64, parse_time, parse_timestamp};
use super::dialect::{CsvDialect, Locale};
use super::tokenize::Tokens;

const BOOL: u16 = 1;
const INT: u16 = 2;
const FLOAT: u16 = 4;
const DATE: u16 = 8;
const TS: u16 = 16;
const TSTZ: u16 = 32;
const TIME: u16 = 64;
const UUID: u16 = 128;
const DECIMAL: u16 = 256;
const ALL: u16 = BOOL | INT | FLOAT | DATE | TS | TSTZ | TIME | UUID | DECIMAL;

/// The most digits an inferred `numeric` holds (Arrow's Decimal128).
const DECIMAL_DIGITS: usize = 38;

/// (integer digits, decimal places) of a plain decimal `[+-]ddd.ddd` (no
/// exponent, leading zeros not counted), or `None` for anything else.
fn decimal_shape(t: &[u8]) -> Option<(usize, usize)> {
    let body = match t.first()? {
        b'-' | b'+' => &t[1..],
        _ => t,
    };
    let (int, frac) = match memchr::memchr(b'.', body) {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &body[..0]),
    };
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if int.len() + frac.len() == 0 || !digits(int) || !digits(frac) {
        return None;
    }
    let significant = int
        .iter()
        .position(|&b| b != b'0')
        .map_or(0, |p| int.len() - p);
    Some((significant, frac.len()))
}

/// What inference concluded for one column.
#[derive(Debug, Clone, PartialEq)]
pub struct Guess {
    /// The type to decode with.
    pub data_type: DataType,
    /// The column is a UUID (FixedSizeBinary(16) + `arrow.uuid`).
    pub uuid: bool,
    /// Non-null values seen.
    pub values: usize,
    /// Null values seen.
    pub nulls: usize,
}

/// Accumulates candidates for each column over sampled records.
#[derive(Debug, Clone)]
pub struct Inference {
    candidates: Vec<u16>,
    values: Vec<usize>,
    nulls: Vec<usize>,
    /// Most integer digits and decimal places seen per column (plain decimals).
    digits: Vec<(usize, usize)>,
    /// How the file writes numbers and booleans.
    locale: Locale,
    /// A value's number in PostgreSQL's form, when the locale rewrites it
    /// (reused: no allocation per value).
    plain: Vec<u8>,
}

/// The types a trimmed value `t` can be; `number` is `t` as PostgreSQL
/// writes numbers ([`Locale::plain_number`]; `t` itself by default).
fn fits(t: &[u8], number: &[u8], locale: &Locale) -> u16 {
    let boolean = t.eq_ignore_ascii_case(b"true")
        || t.eq_ignore_ascii_case(b"false")
        || t.eq_ignore_ascii_case(b"t")
        || t.eq_ignore_ascii_case(b"f")
        || locale.boolean(t).is_some();
    (if boolean { BOOL } else { 0 }) | number_fits(number) | other_fits(t)
}

/// The numeric types a trimmed value in PostgreSQL's form can be.
fn number_fits(t: &[u8]) -> u16 {
    let mut c = 0;
    let integer_like = !t.is_empty()
        && t.iter()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && (*b == b'-' || *b == b'+')));
    if integer_like {
        if parse_i64(t).is_some() {
            c |= INT | DECIMAL | FLOAT;
        }
        // Integers beyond i64 would lose digits as floats: leave them text.
    } else if parse_f64(t).is_some() {
        // A plain decimal (`19.99`) is exact text: `numeric` keeps it as
        // written, where `double precision` would keep the nearest binary
        // fraction. Exponent notation, NaN and infinities are floats; a plain
        // decimal of more digits than `numeric` holds stays text, which keeps
        // every digit (a float would not).
        c |= match decimal_shape(t) {
            Some((int, scale)) if int + scale <= DECIMAL_DIGITS => DECIMAL | FLOAT,
            Some(_) => 0,
            None => FLOAT,
        };
    }
    c
}

/// The date, time and UUID types a trimmed value can be.
fn other_fits(t: &[u8]) -> u16 {
    let mut c = 0;
    if t.len() >= 8 && t[0].is_ascii_digit() {
        if parse_date(t).is_some() {
            c |= DATE;
        }
        if parse_timestamp(t, false).is_ok() {
            c |= TS;
        }
        if parse_timestamp(t, true).is_ok() {
            c |= TSTZ;
        }
    }
    if t.len() >= 5 && t[2] == b':' && parse_time(t).is_some() {
        c |= TIME;
    }
    if (32..=38).contains(&t.len())
        && let Ok(s) = std::str::from_utf8(t)
        && ferry_connectors::pg::codec::values::parse_uuid(s).is_some()
    {
        c |= UUID;
    }
    c
}

impl Inference {
    /// Starts with every type possible for `columns` columns.
    pub fn new(columns: usize) -> Self {
        Inference {
            candidates: vec![ALL; columns],
            values: vec![0; columns],
            nulls: vec![0; columns],
            digits: vec![(0, 0); columns],
            locale: Locale::default(),
            plain: Vec::new(),
        }
    }

    /// Reads numbers and booleans as `locale` writes them.
    pub fn with_locale(mut self, locale: Locale) -> Self {
        self.locale = locale;
        self
    }

    /// Narrows candidates with the records in `range` (records with another
    /// field count are left for decoding to report).
    pub fn observe(&mut self, records: &Tokens<'_>, range: std::ops::Range<usize>, d: &CsvDialect) {
        let n = self.candidates.len();
        for r in range {
            if records.field_count(r) != n {
                continue;
            }
            for c in 0..n {
                let (bytes, quoted) = records.get(r, c);
                if !quoted && d.is_null(bytes) {
                    self.nulls[c] += 1;
                    continue;
                }
                self.observe_value(c, bytes);
            }
        }
    }

    /// Narrows column `c`'s candidates with one non-null value.
    pub fn observe_value(&mut self, c: usize, bytes: &[u8]) {
        self.values[c] += 1;
        if self.candidates[c] == 0 {
            return;
        }
        let t = bytes.trim_ascii();
        let mut plain = std::mem::take(&mut self.plain);
        let number = if self.locale.rewrites_numbers() {
            plain.clear();
            self.locale.plain_number(t, &mut plain);
            &plain[..]
        } else {
            t
        };
        self.candidates[c] &= fits(t, number, &self.locale);
        let shape = if self.candidates[c] & DECIMAL != 0 {
            decimal_shape(number)
        } else {
            None
        };
        self.plain = plain;
        if let Some((int, scale)) = shape {
            let d = &mut self.digits[c];
            *d = (d.0.max(int), d.1.max(scale));
            if d.0 + d.1 > DECIMAL_DIGITS {
                // No numeric holds both the longest integer part and the
                // most decimal places seen, and a float would round: text.
                self.candidates[c] &= !(DECIMAL | FLOAT);
            }
        }
    }

    /// Whether value `bytes` fits the type inferred so far for column `c`
    /// (used to detect a header row).
    pub fn value_fits(&self, c: usize, bytes: &[u8]) -> bool {
        let cand = self.candidates[c];
        if cand == 0 || self.values[c] == 0 {
            return true;
        }
        let t = bytes.trim_ascii();
        let mut plain = Vec::new();
        let number = if self.locale.rewrites_numbers() {
            self.locale.plain_number(t, &mut plain);
            &plain[..]
        } else {
            t
        };
        fits(t, number, &self.locale) & cand != 0
    }

    /// Whether column `c` has a type more specific than text.
    pub fn is_typed(&self, c: usize) -> bool {
        self.values[c] > 0 && self.candidates[c] != 0
    }

    /// The conclusion for every column.
    pub fn finish(&self) -> Vec<Guess> {
        (0..self.candidates.len())
            .map(|c| {
                let cand = if self.values[c] == 0 {
                    0
                } else {
                    self.candidates[c]
                };
                let (data_type, uuid) = if cand & BOOL != 0 {
                    (DataType::Boolean, false)
                } else if cand & INT != 0 {
                    (DataType::Int64, false)
                } else if cand & DECIMAL != 0 {
                    (
                        DataType::Decimal128(DECIMAL_DIGITS as u8, self.digits[c].1 as i8),
                        false,
                    )
                } else if cand & FLOAT != 0 {
                    (DataType::Float64, false)
                } else if cand & DATE != 0 {
                    (DataType::Date32, false)
                } else if cand & TS != 0 {
                    (DataType::Timestamp(TimeUnit::Microsecond, None), false)
                } else if cand & TSTZ != 0 {
                    (
                        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                        false,
                    )
                } else if cand & TIME != 0 {
                    (DataType::Time64(TimeUnit::Microsecond), false)
                } else if cand & UUID != 0 {
                    (DataType::FixedSizeBinary(16), true)
                } else {
                    (DataType::Utf8, false)
                };
                Guess {
                    data_type,
                    uuid,
                    values: self.values[c],
                    nulls: self.nulls[c],
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tokenize::tokenize;
    use super::*;

    fn infer(text: &str) -> Vec<DataType> {
        let d = CsvDialect::default();
        let mut records = super::super::tokenize::Records::default();
        let r = tokenize(text.as_bytes(), &d, &mut records).unwrap();
        let mut inf = Inference::new(r.field_count(0));
        inf.observe(&r, 0..r.len(), &d);
        inf.finish().into_iter().map(|g| g.data_type).collect()
    }

    #[test]
    fn narrows_to_the_most_specific_type() {
        let types = infer(
            "1,1.5,2024-01-01,2024-01-01 10:00:00,2024-01-01T10:00:00+02:00,t,10:30,a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,x\n\
             -2,3,2024-02-29,2024-01-01,2024-01-01 00:00:00Z,false,23:59:59.5,A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11,1\n\
             ,,,,,,,,\n",
        );
        use DataType as D;
        assert_eq!(
            types,
            vec![
                D::Int64,
                D::Decimal128(38, 1),
                D::Date32,
                D::Timestamp(TimeUnit::Microsecond, None),
                D::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                D::Boolean,
                D::Time64(TimeUnit::Microsecond),
                D::FixedSizeBinary(16),
                D::Utf8,
            ]
        );
    }

    #[test]
    fn plain_decimals_are_numeric_and_exponents_float() {
        use DataType as D;
        assert_eq!(
            infer("19.99,1e3,1.5,1.5,NaN\n5,2.5,-0.125,1e-2,1.25\n.5,1,7.,3,2\n"),
            vec![
                D::Decimal128(38, 2),
                D::Float64,
                D::Decimal128(38, 3),
                D::Float64,
                D::Float64
            ]
        );
        // More digits than numeric(38, s) holds: text keeps every one, where
        // a float would round.
        let long = format!("{}.5\n0.{}\n", "9".repeat(30), "1".repeat(10));
        assert_eq!(infer(&long), vec![D::Utf8]);
        let longer = format!("0.{}\n", "1".repeat(39));
        assert_eq!(infer(&longer), vec![D::Utf8]);
    }

    #[test]
    fn huge_integers_and_empty_columns_stay_text() {
        assert_eq!(
            infer("99999999999999999999,\n1,\n"),
            vec![DataType::Utf8, DataType::Utf8]
        );
        // 0/1 are integers, not booleans
        assert_eq!(infer("0\n1\n"), vec![DataType::Int64]);
        // a quoted empty string is a value, and not a number
        assert_eq!(infer("1\n\"\"\n"), vec![DataType::Utf8]);
    }
}
