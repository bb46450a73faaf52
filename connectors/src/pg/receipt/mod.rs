//! The load receipt: proof that what PostgreSQL holds is what ferry sent.
//!
//! PostgreSQL can store something other than what a client sends without
//! any error — a `numeric(15,2)` column rounds, `char(n)` pads, `real`
//! keeps 24 bits of a double, a `BEFORE INSERT` trigger rewrites values. So
//! every load ends, inside its publishing transaction and before it commits,
//! by hashing the rows as the target holds them **inside PostgreSQL** and
//! comparing with the same digest ferry computed over the rows it sent
//! ([`digest`]). Equal: the load publishes and records the receipt.
//! Different: nothing is published and the error names the column.
//!
//! The hashes are PostgreSQL's own 64-bit hash support functions
//! (`hashint8extended`, `hash_numeric_extended`, `hashtextextended`, …),
//! which [`hash`] reproduces, seeded per column; a row's hash is the XOR of
//! its columns', and the digest is the row count and the sum of the row
//! hashes, so it does not depend on the order rows arrived in. One
//! aggregate over the stored rows proves every column; only when it differs
//! does a second query compute each column's NULL count and hash sum to
//! name the column that differs.

pub mod digest;
pub mod hash;
pub mod jsonb;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::digest::{ColumnSum, Digest, DigestError, Digester};
use self::digest::{null_hash, seed};
use super::codec::types::PgType;
use super::codec::{ColumnCodec, Kind};
use super::ident::quote_ident;

/// `[target] verify`: how much of the stored rows a load proves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// Row count and every value of every column (a digest inside
    /// PostgreSQL, compared before publishing).
    #[default]
    Full,
    /// The row count only, counted inside PostgreSQL.
    Count,
    /// No receipt.
    Off,
}

impl fmt::Display for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verify::Full => "full",
            Verify::Count => "count",
            Verify::Off => "off",
        })
    }
}

impl std::str::FromStr for Verify {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Verify::Full),
            "count" => Ok(Verify::Count),
            "off" => Ok(Verify::Off),
            other => Err(format!("verify must be full, count or off, not {other:?}")),
        }
    }
}

/// `[target.verify_except] column = "…"`: a change to a column's values
/// that the user wants. Each but `any` still proves the column: the values
/// ferry sent are changed the same way before they are compared, so the
/// receipt shows that this change, and only it, happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Except {
    /// `numeric(p, s)` rounds to `s` decimals: compare the sent values
    /// rounded the same way (half away from zero).
    Rounding,
    /// `character(n)` pads with spaces: compare without trailing spaces.
    Padding,
    /// `real` keeps a float's 24 bits: compare the sent values as `real`.
    Precision,
    /// The column's values are not compared (a trigger owns them, say);
    /// the receipt says so.
    Any,
}

impl fmt::Display for Except {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Except::Rounding => "rounding",
            Except::Padding => "padding",
            Except::Precision => "precision",
            Except::Any => "any",
        })
    }
}

impl std::str::FromStr for Except {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rounding" => Ok(Except::Rounding),
            "padding" => Ok(Except::Padding),
            "precision" => Ok(Except::Precision),
            "any" => Ok(Except::Any),
            other => Err(format!(
                "verify_except must be rounding, padding, precision or any, not {other:?}"
            )),
        }
    }
}

/// What a load proves, from the spec and the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// How much.
    pub level: Verify,
    /// Wanted changes, by column name.
    pub except: BTreeMap<String, Except>,
}

/// How one column's values are hashed, on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueHash {
    /// `boolean`, hashed as 0/1.
    Bool,
    /// `smallint`, `integer`, `bigint`.
    Int,
    /// `real` and `double precision`, as the bytes sent.
    Float,
    /// `real` fed by the transform's values as doubles: a narrowing shows.
    FloatAsSent,
    /// `numeric`; with `round`, sent values rounded to that scale first.
    Numeric {
        /// Scale to round to (`verify_except = "rounding"`).
        round: Option<i32>,
        /// The sign goes into the seed (not into arrays' element hashes,
        /// whose seed PostgreSQL passes unchanged).
        signed: bool,
    },
    /// Text types, enums, `json`: the bytes.
    Text,
    /// `character(n)` without trailing spaces (its own hash,
    /// `hashbpcharextended`).
    Trimmed,
    /// `character(n)` with its padding: the hash without trailing spaces,
    /// XORed with the byte length (padding included).
    Padded,
    /// `jsonb`: its canonical text.
    Jsonb,
    /// `bytea`, as a one-element array (its hash is not callable from SQL).
    Bytea,
    /// `date`: days since 2000-01-01 (as PostgreSQL hashes it; array
    /// elements, and receipts written before `DateAsTimestamp`).
    Date,
    /// A `date` column: hashed as the `timestamp` of its midnight (±infinity
    /// as timestamp's; the days of a date past timestamp's range, XOR 1),
    /// because PostgreSQL computes that a third as fast as the days.
    DateAsTimestamp,
    /// `time`: microseconds since midnight.
    Time,
    /// `timestamp`: microseconds since 2000-01-01.
    Timestamp,
    /// `timestamptz`: microseconds since 2000-01-01 UTC.
    Timestamptz,
    /// `interval`: its span in microseconds, a month as 30 days.
    Interval,
    /// `uuid`: its 16 bytes.
    Uuid,
    /// A one-dimensional array of the element type.
    Array(Box<ValueHash>),
}

/// One column of the receipt: how it is compared, or why it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Column name.
    pub name: String,
    /// The target column's type.
    #[serde(rename = "type")]
    pub pg: String,
    /// How values are hashed; `None` when the column is not compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<ValueHash>,
    /// The wanted change, from `[target.verify_except]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub except: Option<Except>,
    /// Why the column's values are not compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
    /// The target column is `NOT NULL`, so the stored rows' digest hashes
    /// it without a NULL guard (receipts written before this field had
    /// none and keep the guard).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_null: bool,
}

/// A `verify_except` entry that cannot apply to its column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[target.verify_except] {column} = \"{except}\": {why}")]
pub struct ExceptError {
    /// Column.
    pub column: String,
    /// The entry.
    pub except: Except,
    /// Why it does not fit.
    pub why: String,
}

fn element_hash(pg: &PgType) -> Result<ValueHash, &'static str> {
    Ok(match pg {
        PgType::Bool => ValueHash::Bool,
        PgType::Int2 | PgType::Int4 | PgType::Int8 => ValueHash::Int,
        PgType::Float4 | PgType::Float8 => ValueHash::Float,
        PgType::Numeric(_) => ValueHash::Numeric {
            round: None,
            signed: false,
        },
        PgType::Text | PgType::Varchar(_) => ValueHash::Text,
        PgType::Bpchar(_) => ValueHash::Trimmed,
        PgType::Bytea => ValueHash::Text,
        PgType::Date => ValueHash::Date,
        PgType::Time => ValueHash::Time,
        PgType::Timestamp => ValueHash::Timestamp,
        PgType::Timestamptz => ValueHash::Timestamptz,
        PgType::Interval => ValueHash::Interval,
        PgType::Uuid => ValueHash::Uuid,
        PgType::Json | PgType::Jsonb | PgType::Enum(_) | PgType::Array(_) => {
            return Err(
                "arrays of json, jsonb and enums have no hash ferry can reproduce: count and NULLs only",
            );
        }
    })
}

impl Check {
    /// How column `codec` is compared under `except`.
    pub fn plan(codec: &ColumnCodec, except: Option<Except>) -> Result<Check, ExceptError> {
        let bad = |why: &str| ExceptError {
            column: codec.name.clone(),
            except: except.unwrap_or(Except::Any),
            why: format!("{why} (the column is {})", codec.pg),
        };
        let mut unchecked = None;
        let hash = match (&codec.pg, except) {
            (_, Some(Except::Any)) => {
                unchecked = Some("verify_except = \"any\"".to_string());
                None
            }
            (PgType::Numeric(Some((_, s))), Some(Except::Rounding)) => Some(ValueHash::Numeric {
                round: Some(*s),
                signed: true,
            }),
            (_, Some(Except::Rounding)) => {
                return Err(bad("only a numeric(p, s) column rounds"));
            }
            (PgType::Bpchar(_), Some(Except::Padding)) => Some(ValueHash::Trimmed),
            (_, Some(Except::Padding)) => return Err(bad("only a character(n) column pads")),
            (PgType::Float4, Some(Except::Precision)) => Some(ValueHash::Float),
            (_, Some(Except::Precision)) => return Err(bad("only a real column narrows")),
            (PgType::Float4, None) if codec.kind == Kind::Float4 => Some(ValueHash::FloatAsSent),
            (PgType::Numeric(_), None) => Some(ValueHash::Numeric {
                round: None,
                signed: true,
            }),
            (PgType::Bpchar(_), None) => Some(ValueHash::Padded),
            (PgType::Date, None) => Some(ValueHash::DateAsTimestamp),
            (PgType::Bytea, None) => Some(ValueHash::Bytea),
            (PgType::Json | PgType::Enum(_), None) => Some(ValueHash::Text),
            (PgType::Jsonb, None) => Some(ValueHash::Jsonb),
            (PgType::Array(elem), None) => match element_hash(elem) {
                Ok(h) => Some(ValueHash::Array(Box::new(h))),
                Err(why) => {
                    unchecked = Some(why.to_string());
                    None
                }
            },
            (pg, None) => Some(element_hash(pg).expect("scalar types all hash")),
        };
        Ok(Check {
            name: codec.name.clone(),
            pg: codec.pg.to_string(),
            hash,
            except,
            unchecked,
            not_null: codec.not_null,
        })
    }

    /// The SQL expression PostgreSQL hashes the stored value of this
    /// column (the `k`-th) with, matching [`digest::hash_value`]. `None` for
    /// unchecked columns.
    pub fn sql(&self, k: usize) -> Option<String> {
        let c = quote_ident(&self.name);
        let s = seed(k);
        // Expressions that would hash a NULL as a value (concat, ARRAY[],
        // CASE) are guarded, so a NULL stays NULL on both sides.
        let guarded = |e: String| format!("CASE WHEN {c} IS NOT NULL THEN {e} END");
        Some(match self.hash.as_ref()? {
            ValueHash::Bool => format!("hashint8extended({c}::int4, {s})"),
            ValueHash::Int => format!("hashint8extended({c}, {s})"),
            ValueHash::Float | ValueHash::FloatAsSent => format!("hashfloat8extended({c}, {s})"),
            ValueHash::Numeric { .. } => {
                format!("hash_numeric_extended({c}, CASE WHEN {c} < 0 THEN -{s} ELSE {s} END)")
            }
            // character(n)'s own hash ignores trailing spaces; its byte
            // length (octet_length counts the padding) shows them.
            ValueHash::Padded => {
                format!("hashbpcharextended({c} COLLATE \"C\", {s}) # octet_length({c})::int8")
            }
            ValueHash::Trimmed => format!("hashbpcharextended({c} COLLATE \"C\", {s})"),
            ValueHash::Text | ValueHash::Jsonb => {
                format!("hashtextextended({c}::text COLLATE \"C\", {s})")
            }
            ValueHash::Bytea => guarded(format!("hash_array_extended(ARRAY[{c}], {s})")),
            // Days since 2000-01-01, the stored int (±infinity are its
            // extremes, which date subtraction refuses).
            ValueHash::Date => guarded(format!(
                "hashint8extended(CASE WHEN isfinite({c}) THEN {c} - DATE '2000-01-01' WHEN {c} > DATE '2000-01-01' THEN 2147483647 ELSE -2147483648 END, {s})"
            )),
            // The cast refuses dates from 294277 AD on: those (and
            // +infinity) are hashed apart.
            ValueHash::DateAsTimestamp => format!(
                "CASE WHEN {c} < DATE '294277-01-01' THEN timestamp_hash_extended({c}::timestamp, {s}) WHEN isfinite({c}) THEN hashint8extended({c} - DATE '2000-01-01', {s}) # 1 WHEN {c} IS NOT NULL THEN timestamp_hash_extended('infinity'::timestamp, {s}) END"
            ),
            ValueHash::Timestamptz => {
                format!("timestamp_hash_extended({c} AT TIME ZONE 'UTC', {s})")
            }
            ValueHash::Timestamp => format!("timestamp_hash_extended({c}, {s})"),
            ValueHash::Time => format!("time_hash_extended({c}, {s})"),
            ValueHash::Interval => format!("interval_hash_extended({c}, {s})"),
            ValueHash::Uuid => format!("uuid_hash_extended({c}, {s})"),
            ValueHash::Array(_) => format!("hash_array_extended({c}, {s})"),
        })
    }
}

/// The checks for a load's columns (COPY order), or the first
/// `verify_except` entry that cannot apply.
pub fn plan_checks(
    codecs: &[ColumnCodec],
    policy: &VerifyPolicy,
) -> Result<Vec<Check>, ExceptError> {
    if let Some(unknown) = policy
        .except
        .keys()
        .find(|name| !codecs.iter().any(|c| &c.name == *name))
    {
        return Err(ExceptError {
            column: unknown.clone(),
            except: policy.except[unknown],
            why: "the load has no such column".into(),
        });
    }
    codecs
        .iter()
        .map(|c| Check::plan(c, policy.except.get(&c.name).copied()))
        .collect()
}

/// `count(*), sum(row hash)`: the select list of the one aggregate every
/// load runs.
pub fn row_digest_select(checks: &[Check]) -> String {
    format!("count(*)::int8, {}", row_sum_select(checks))
}

/// The row hash as an `int8` expression: the XOR of the seeded column
/// hashes (a NULL as its column's constant), leaving out column `skip`
/// (the row locator hashes that one apart).
pub fn row_hash_sql(checks: &[Check], skip: Option<usize>) -> String {
    let terms: Vec<String> = checks
        .iter()
        .enumerate()
        .filter(|(k, _)| Some(*k) != skip)
        .filter_map(|(k, c)| {
            let h = c.sql(k)?;
            Some(if c.not_null {
                h
            } else {
                format!("coalesce({h}, {})", null_hash(k))
            })
        })
        .collect();
    if terms.is_empty() {
        "0::int8".to_string()
    } else {
        format!("({})::int8", terms.join(" # "))
    }
}

/// `sum(row hash)` as text, summed over rows.
fn row_sum_select(checks: &[Check]) -> String {
    format!("coalesce(sum({}), 0)::text", row_hash_sql(checks, None))
}

/// `SELECT count, row-hash sum FROM rows`. `from` is a FROM clause (a
/// table, a filtered table or a CTE).
pub fn row_digest_sql(checks: &[Check], from: &str) -> String {
    format!("SELECT {} FROM {from}", row_digest_select(checks))
}

/// `SELECT count(*) FROM rows`: what `verify = "count"` runs.
pub fn count_sql(from: &str) -> String {
    format!("SELECT count(*)::int8 FROM {from}")
}

/// Each column's NULL count and hash sum over the stored rows, and the row
/// digest, in one scan: a load runs it only when the row digest differed
/// (to name the column); `ferry verify` runs it instead of the row digest.
pub fn column_digest_sql(checks: &[Check], from: &str) -> String {
    let mut cols = vec!["count(*)::int8".to_string()];
    for (k, c) in checks.iter().enumerate() {
        let q = quote_ident(&c.name);
        cols.push(format!("(count(*) - count({q}))::int8"));
        cols.push(match c.sql(k) {
            Some(h) => format!("coalesce(sum({h}), 0)::text"),
            None => "'0'".to_string(),
        });
    }
    cols.push(row_sum_select(checks));
    format!("SELECT {} FROM {from}", cols.join(", "))
}

/// Reads [`column_digest_sql`]'s row.
pub fn read_column_digest(row: &tokio_postgres::Row, columns: usize) -> Result<Digest, String> {
    let mut d = Digest::new(columns);
    d.rows = row.get::<_, i64>(0) as u64;
    for k in 0..columns {
        d.columns[k].nulls = row.get::<_, i64>(1 + 2 * k) as u64;
        d.columns[k].sum = parse_sum(row.get::<_, &str>(2 + 2 * k))?;
    }
    d.row_sum = parse_sum(row.get::<_, &str>(1 + 2 * columns))?;
    Ok(d)
}

/// A `sum(bigint)` as PostgreSQL prints it.
pub fn parse_sum(text: &str) -> Result<i128, String> {
    text.parse()
        .map_err(|_| format!("a digest sum ferry cannot read: {text:?}"))
}

/// Where the stored rows differ from the sent ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The first column that differs, when the column digests name one.
    pub column: Option<String>,
    /// What differs, for people.
    pub detail: String,
}

/// Compares the sent digest with the stored one: `None` when equal.
/// `stored_columns` (from [`column_digest_sql`]) is consulted only to name
/// the column.
pub fn compare(
    checks: &[Check],
    sent: &Digest,
    stored_rows: u64,
    stored_row_sum: Option<i128>,
    stored_columns: Option<&Digest>,
) -> Option<Mismatch> {
    let rows_differ = sent.rows != stored_rows;
    let sum_differs = stored_row_sum.is_some_and(|s| s != sent.row_sum);
    if !rows_differ && !sum_differs {
        return None;
    }
    if rows_differ {
        return Some(Mismatch {
            column: None,
            detail: format!(
                "ferry sent {} rows but the table holds {stored_rows} of them",
                sent.rows
            ),
        });
    }
    let named = stored_columns.and_then(|stored| {
        checks.iter().enumerate().find_map(|(k, c)| {
            let (a, b) = (sent.columns.get(k)?, stored.columns.get(k)?);
            // Unchecked columns are not compared.
            c.hash.as_ref()?;
            if a.nulls != b.nulls {
                return Some(Mismatch {
                    column: Some(c.name.clone()),
                    detail: format!(
                        "column {:?} ({}): ferry sent {} NULLs, the table holds {}",
                        c.name, c.pg, a.nulls, b.nulls
                    ),
                });
            }
            (a.sum != b.sum).then(|| Mismatch {
                column: Some(c.name.clone()),
                detail: format!(
                    "column {:?} ({}): the values PostgreSQL stored differ from the values ferry sent (hash sums: sent {}, stored {}){}",
                    c.name,
                    c.pg,
                    a.sum,
                    b.sum,
                    advice(c)
                ),
            })
        })
    });
    Some(named.unwrap_or_else(|| {
        Mismatch {
            column: None,
            detail:
                "the stored rows' digest differs from the sent rows' (two columns swapped values?)"
                    .into(),
        }
    }))
}

/// What a user can do about a column that changed, by its type.
fn advice(c: &Check) -> String {
    let except = |kind: &str, why: &str| {
        format!(
            "; {why}: if that is wanted, say so with [target.verify_except] {} = \"{kind}\"",
            c.name
        )
    };
    if c.pg.starts_with("numeric(") && c.except.is_none() {
        except("rounding", "the column's scale rounds values")
    } else if c.pg.starts_with("character") && c.except.is_none() {
        except("padding", "character(n) pads values with spaces")
    } else if c.pg == "real" && c.except.is_none() {
        except("precision", "real keeps about 7 digits of a double")
    } else {
        except("any", "a trigger, a rule or a domain may have changed them")
    }
}

/// The receipt a load records: what PostgreSQL holds, proven equal to what
/// ferry sent. Written as `receipt.json` in the job folder, kept in the job
/// record, the notification and `ferry.loads.receipt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// `full` or `count`.
    pub verify: Verify,
    /// The table.
    pub target: String,
    /// The input (path, or `s3://bucket/key#version`).
    pub input: String,
    /// The input's checksum.
    pub checksum: String,
    /// Rows, sent and stored.
    pub rows: u64,
    /// The sum of row hashes, sent and recomputed inside PostgreSQL
    /// (`full` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Per column, in COPY order: how it is compared, NULLs and the hash
    /// sum of the values sent (`full` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ReceiptColumn>,
    /// `server_version` of the server that computed it.
    pub server_version: String,
    /// The transaction it was computed and published in.
    pub transaction: String,
    /// How values are hashed: PostgreSQL's 64-bit hash functions, seeded by
    /// column position (see `pg/receipt`).
    pub method: String,
}

/// One column of a [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptColumn {
    /// How it is compared.
    #[serde(flatten)]
    pub check: Check,
    /// NULLs.
    pub nulls: u64,
    /// Hash sum of the values.
    pub digest: String,
}

/// The name of the hashing scheme, recorded in every receipt: a later
/// change to it must change this.
pub const METHOD: &str = "pg-hash-extended-v1";

impl Receipt {
    /// The receipt of a load whose digest matched.
    pub fn new(verify: Verify, checks: &[Check], sent: &Digest, ids: ReceiptIds) -> Receipt {
        let full = verify == Verify::Full;
        Receipt {
            verify,
            target: ids.target,
            input: ids.input,
            checksum: ids.checksum,
            rows: sent.rows,
            digest: full.then(|| sent.row_sum.to_string()),
            columns: if full {
                checks
                    .iter()
                    .zip(&sent.columns)
                    .map(|(c, s)| ReceiptColumn {
                        check: c.clone(),
                        nulls: s.nulls,
                        digest: s.sum.to_string(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            server_version: ids.server_version,
            transaction: ids.transaction,
            method: METHOD.into(),
        }
    }

    /// One line for people: what was proven, and any column left out or
    /// compared under an exception.
    pub fn summary(&self) -> String {
        let mut s = match self.verify {
            Verify::Full => format!(
                "{} rows and every value of {} columns stored as sent (verified inside PostgreSQL {}, transaction {})",
                self.rows,
                self.columns
                    .iter()
                    .filter(|c| c.check.hash.is_some())
                    .count(),
                self.server_version,
                self.transaction
            ),
            _ => format!(
                "{} rows stored (counted inside PostgreSQL {}, transaction {}; values not compared)",
                self.rows, self.server_version, self.transaction
            ),
        };
        for c in &self.columns {
            if let Some(e) = c.check.except {
                s.push_str(&format!("; {} compared after {e}", c.check.name));
            } else if let Some(why) = &c.check.unchecked {
                s.push_str(&format!("; {} not compared ({why})", c.check.name));
            }
        }
        s
    }

    /// The checks the receipt was computed with (to compute it again).
    pub fn checks(&self) -> Vec<Check> {
        self.columns.iter().map(|c| c.check.clone()).collect()
    }

    /// The sent digest the receipt records.
    pub fn sent(&self) -> Result<Digest, String> {
        Ok(Digest {
            rows: self.rows,
            row_sum: parse_sum(self.digest.as_deref().unwrap_or("0"))?,
            columns: self
                .columns
                .iter()
                .map(|c| {
                    Ok(ColumnSum {
                        nulls: c.nulls,
                        sum: parse_sum(&c.digest)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }
}

/// Who and where a receipt was computed.
#[derive(Debug, Clone, Default)]
pub struct ReceiptIds {
    /// The table.
    pub target: String,
    /// The input.
    pub input: String,
    /// Its checksum.
    pub checksum: String,
    /// The server's version.
    pub server_version: String,
    /// The transaction id.
    pub transaction: String,
}
