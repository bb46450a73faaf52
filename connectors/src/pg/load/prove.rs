//! The receipt step of publishing (see [`crate::pg::receipt`]): measure the
//! rows as the target holds them, inside the publishing transaction and
//! before it commits, and compare with what ferry sent.
//!
//! Which rows are "this load's" depends on the layout: rows this
//! transaction wrote to the target (`xmin`), the whole replacement table,
//! or — for keyed modes, whose publish runs under a savepoint (its rows
//! carry a subtransaction's xid) — the rows the publishing `INSERT`
//! returns, after triggers and column types had their say.

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::pg::catalog::column_list;
use crate::pg::error::PgError;
use crate::pg::evolve::SchemaChange;
use crate::pg::ident::{QualifiedName, quote_literal};
use crate::pg::pool::{Conn, Prepare};

use crate::pg::evolve::LINEAGE_LINE;
use crate::pg::ident::quote_ident;
use crate::pg::receipt::ValueHash;
use crate::pg::receipt::digest::{for_each_tuple, hash_value, null_hash, seed};
use crate::pg::receipt::{
    Check, Digest, Receipt, ReceiptIds, Verify, column_digest_sql, compare, count_sql, parse_sum,
    read_column_digest, row_digest_select, row_digest_sql, row_hash_sql,
};
use crate::pg::replay::{PgcopyChunks, SqlCopyChunks};

/// Where this load's stored rows are.
pub(super) enum Rows {
    /// A FROM clause over a table.
    Table(String),
    /// The rows a keyed publish inserts: it is run again (after rolling
    /// back to its savepoint) when the columns must be measured one by one.
    Keyed {
        /// The `DELETE` of `delete-insert`.
        delete: Option<String>,
        /// The publishing `INSERT`.
        insert: String,
    },
    /// In the two-phase streams' own transactions, which measured them.
    Streams,
}

impl Rows {
    /// A FROM clause: the rows this transaction wrote to `table` — past
    /// `after`, the last row of a table this transaction rewrote (a widened
    /// column gives every old row this transaction's xid too; rows added
    /// after the rewrite come after them) — looking only from block
    /// `from_block` on when given (see [`Rows::last_block`]).
    ///
    /// `xid` is this transaction's id as a literal: `pg_current_xact_id()`
    /// in the query would make it parallel-unsafe, and the digest of a large
    /// load wants every core.
    pub(super) fn written_to(
        table: &QualifiedName,
        after: Option<&str>,
        from_block: Option<u64>,
        xid: &str,
    ) -> String {
        let mut from = format!(
            "{} WHERE xmin = {}::xid",
            table.quoted(),
            quote_literal(xid)
        );
        if let Some(tid) = after {
            from.push_str(&format!(" AND ctid > {}::tid", quote_literal(tid)));
        } else if let Some(block) = from_block.filter(|&b| b > 0) {
            from.push_str(&format!(" AND ctid >= '({block},0)'::tid"));
        }
        from
    }

    /// The last block of `table` before this load writes to it (0 for an
    /// empty table). An append's rows go into that block's free space and
    /// after it, mostly: reading from there
    /// (a TID range scan) keeps the receipt of a small file appended to a
    /// large table from reading the whole table. Rows the server put into
    /// free space of earlier blocks are missed by it, which the count shows:
    /// then the receipt reads the whole table again (see
    /// [`LoadSession::measure_appended`](super::LoadSession)).
    pub(super) async fn last_block(
        c: &impl Prepare,
        table: &QualifiedName,
    ) -> Result<u64, PgError> {
        const DOING: &str = "measuring the table before the load";
        let statement = c
            .prepared(
                "SELECT pg_relation_size($1::text::regclass) / current_setting('block_size')::int8",
            )
            .await
            .map_err(db(DOING))?;
        let row = c
            .client()
            .query_one(&statement, &[&table.quoted()])
            .await
            .map_err(db(DOING))?;
        Ok((row.get::<_, i64>(0) - 1).max(0) as u64)
    }

    /// This transaction's id (it has one: it wrote the rows).
    pub(super) async fn transaction_id(c: &impl Prepare) -> Result<String, PgError> {
        const DOING: &str = "reading the load's transaction id";
        let statement = c
            .prepared("SELECT xid(pg_current_xact_id())::text")
            .await
            .map_err(db(DOING))?;
        let row = c
            .client()
            .query_one(&statement, &[])
            .await
            .map_err(db(DOING))?;
        Ok(row.get(0))
    }

    /// The last row of `table`, when the changes rewrote it (see
    /// [`Rows::written_to`]).
    pub(super) async fn rewritten_up_to(
        c: &Client,
        table: &QualifiedName,
        changes: &[SchemaChange],
    ) -> Result<Option<String>, PgError> {
        if !changes
            .iter()
            .any(|ch| matches!(ch, SchemaChange::WidenColumn { .. }))
        {
            return Ok(None);
        }
        let row = c
            .query_one(
                &format!(
                    "SELECT coalesce(max(ctid), '(0,0)')::text FROM {}",
                    table.quoted()
                ),
                &[],
            )
            .await
            .map_err(db("finding where the rewritten table ends"))?;
        Ok(Some(row.get(0)))
    }

    /// A FROM clause: all rows of `table`.
    pub(super) fn all_of(table: &QualifiedName) -> String {
        table.quoted()
    }
}

/// Rows counted and, under `full`, their digest.
#[derive(Debug, Clone, Copy)]
pub(super) struct Measured {
    pub rows: u64,
    pub row_sum: Option<i128>,
}

fn db(doing: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError + '_ {
    move |e| PgError::db(doing, e)
}

/// Counts (and under `full` digests) the rows in a table.
pub(super) async fn measure(
    c: &Client,
    checks: &[Check],
    level: Verify,
    from: &str,
) -> Result<Measured, PgError> {
    const DOING: &str = "computing the load's receipt";
    if level == Verify::Full {
        let row = c
            .query_one(&row_digest_sql(checks, from), &[])
            .await
            .map_err(db(DOING))?;
        Ok(Measured {
            rows: row.get::<_, i64>(0) as u64,
            row_sum: Some(parse_sum(row.get(1)).map_err(|e| PgError::Count(e.to_string()))?),
        })
    } else {
        let row = c
            .query_one(&count_sql(from), &[])
            .await
            .map_err(db(DOING))?;
        Ok(Measured {
            rows: row.get::<_, i64>(0) as u64,
            row_sum: None,
        })
    }
}

/// Measures the rows the transaction on `c` appended to `target`: from
/// block `first_block`, where the table ended before the load (see
/// [`Rows::last_block`]); when fewer rows are there than `expected_rows`,
/// from each of [`RECENT_BLOCKS`](super::RECENT_BLOCKS) before it in turn
/// (where concurrent loads' extensions left free blocks); when still fewer
/// (rows went into free space of old blocks), over the whole table. `after`
/// is the last row of a table this transaction rewrote (see
/// [`Rows::written_to`]).
pub(super) async fn measure_appended(
    c: &Conn,
    checks: &[Check],
    level: Verify,
    target: &QualifiedName,
    after: Option<&str>,
    first_block: Option<u64>,
    expected_rows: u64,
) -> Result<(Rows, Measured), PgError> {
    let xid = Rows::transaction_id(c).await?;
    let first = first_block.unwrap_or(0);
    let mut from_blocks = vec![Some(first)];
    if after.is_none() && first > 0 {
        for back in super::RECENT_BLOCKS {
            if first > back {
                from_blocks.push(Some(first - back));
            }
        }
        from_blocks.push(None);
    }
    let mut result = None;
    for from_block in from_blocks {
        let from = Rows::written_to(target, after, from_block, &xid);
        let m = measure(c, checks, level, &from).await?;
        let enough = m.rows == expected_rows;
        result = Some((Rows::Table(from), m));
        if enough {
            break;
        }
    }
    Ok(result.expect("one attempt at least"))
}

/// Runs a keyed publish (`delete` then `insert`), measuring the rows the
/// insert returns; with `count_inserted`, also how many it inserted rather
/// than updated.
pub(super) async fn publish_keyed(
    c: &Client,
    checks: &[Check],
    level: Verify,
    columns: &[String],
    delete: Option<&str>,
    insert: &str,
    count_inserted: bool,
) -> Result<(Measured, Option<i64>), tokio_postgres::Error> {
    if let Some(d) = delete {
        c.batch_execute(d).await?;
    }
    let cols = column_list(columns);
    let select = if level == Verify::Full {
        row_digest_select(checks)
    } else {
        "count(*)::int8, NULL::text".to_string()
    };
    let sql = format!(
        "WITH ferry_rows AS ({insert} RETURNING {}, (xmax = 0) AS ferry_inserted) SELECT {select}, count(*) FILTER (WHERE ferry_inserted)::int8 FROM ferry_rows",
        &cols[1..cols.len() - 1]
    );
    let row = c.query_one(&sql, &[]).await?;
    let measured = Measured {
        rows: row.get::<_, i64>(0) as u64,
        row_sum: row
            .get::<_, Option<&str>>(1)
            .and_then(|s| parse_sum(s).ok()),
    };
    Ok((measured, count_inserted.then(|| row.get::<_, i64>(2))))
}

/// SQL that runs `query` over this load's stored rows, named `ferry_rows`.
/// A keyed publish is rolled back to its savepoint first and run again
/// inside the query (the load fails either way).
async fn over_stored_rows(
    c: &Client,
    columns: &[String],
    rows: &Rows,
    query: &str,
    doing: &str,
) -> Result<String, PgError> {
    Ok(match rows {
        Rows::Table(from) => format!("WITH ferry_rows AS (SELECT * FROM {from}) {query}"),
        Rows::Streams => {
            return Err(PgError::Count(format!(
                "{doing}: the rows are in the COPY streams' transactions"
            )));
        }
        Rows::Keyed { delete, insert } => {
            c.batch_execute("ROLLBACK TO SAVEPOINT ferry_upsert")
                .await
                .map_err(db(doing))?;
            if let Some(d) = delete {
                c.batch_execute(d).await.map_err(db(doing))?;
            }
            let cols = column_list(columns);
            format!(
                "WITH ferry_rows AS ({insert} RETURNING {}) {query}",
                &cols[1..cols.len() - 1]
            )
        }
    })
}

/// Where stored rows are read from: the connection whose transaction holds
/// them, and which of its rows. One for a load in one transaction; one per
/// stream for two-phase streams, whose rows only their own transactions see.
pub(super) type Source<'a> = (&'a Client, &'a Rows);

/// Each column's NULLs and hash sum over the stored rows, to name the
/// column that differs.
async fn column_digests(
    sources: &[Source<'_>],
    checks: &[Check],
    columns: &[String],
) -> Result<Digest, PgError> {
    const DOING: &str = "finding the column that differs";
    let query = column_digest_sql(checks, "ferry_rows");
    let mut total = Digest::new(checks.len());
    for &(c, rows) in sources {
        let sql = over_stored_rows(c, columns, rows, &query, DOING).await?;
        let row = c.query_one(&sql, &[]).await.map_err(db(DOING))?;
        total.merge(&read_column_digest(&row, checks.len()).map_err(PgError::Count)?);
    }
    Ok(total)
}

/// The load's rows as ferry sent them, in order: its `.pgcopy` parts (to
/// hash each row again) and `.sql` parts (to show a value as text). Used
/// only when a receipt is refused, to name the row that differs.
#[derive(Debug, Clone, Default)]
pub struct SentRows {
    /// `.pgcopy` parts, in order.
    pub pgcopy: Vec<std::path::PathBuf>,
    /// `.sql` parts, in order.
    pub sql: Vec<std::path::PathBuf>,
}

/// The hash of column `k` and the XOR of the others', from one sent row.
fn split_hash(checks: &[Check], k: usize, fields: &[Option<&[u8]>]) -> (i64, Option<i64>) {
    let mut others = 0i64;
    let mut own = None;
    for (j, (check, field)) in checks.iter().zip(fields).enumerate() {
        let Some(h) = &check.hash else { continue };
        // The bytes sent are what a real column stores: hash them as such.
        let h = match h {
            ValueHash::FloatAsSent => &ValueHash::Float,
            h => h,
        };
        let value = field.and_then(|v| hash_value(h, v, seed(j)).map(|x| x as i64));
        if j == k {
            own = value;
        } else {
            others ^= value.unwrap_or_else(|| null_hash(j));
        }
    }
    (others, own)
}

/// Row `index` (0-based) of the `.sql` parts, column `k`, as COPY text.
fn sent_text(parts: &[std::path::PathBuf], index: u64, k: usize) -> Option<String> {
    let mut seen = 0u64;
    for part in parts {
        for chunk in SqlCopyChunks::open(part).ok()? {
            let chunk = chunk.ok()?;
            if seen + chunk.rows <= index {
                seen += chunk.rows;
                continue;
            }
            let line = chunk
                .bytes
                .split(|&b| b == b'\n')
                .nth((index - seen) as usize)?;
            let field = line.split(|&b| b == b'\t').nth(k)?;
            return Some(if field == b"\\N" {
                "NULL".into()
            } else {
                String::from_utf8_lossy(field).into_owned()
            });
        }
    }
    None
}

/// Buckets rows are spread over by the hash of their other columns when
/// the row that differs is looked for (a power of two).
const BUCKETS: usize = 1 << 16;

/// Buckets whose rows are fetched to name the row (those holding the
/// earliest sent rows).
const FETCHED_BUCKETS: usize = 16;

/// A row's bucket: the low bits of the hash of its other columns.
fn bucket(others: i64) -> usize {
    (others as u64 as usize) & (BUCKETS - 1)
}

/// A stored row's value of the differing column and its input line, as
/// text.
type StoredValue = (Option<String>, Option<String>);

/// One sent row's hashes: of column `k`, and the XOR of the others'.
struct SentHash {
    index: u64,
    others: i64,
    own: Option<i64>,
}

/// Calls `each` with every sent row's hashes, in order; `false` when the
/// sent rows cannot be read.
fn for_each_sent(
    sent: &SentRows,
    checks: &[Check],
    k: usize,
    mut each: impl FnMut(SentHash),
) -> Result<bool, PgError> {
    let mut index = 0u64;
    for part in &sent.pgcopy {
        for chunk in PgcopyChunks::open(part)? {
            let chunk = chunk?;
            let read = for_each_tuple(&chunk.bytes, checks.len(), |_, f| {
                let (others, own) = split_hash(checks, k, f);
                each(SentHash { index, others, own });
                index += 1;
                Ok(())
            });
            if read.is_err() {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Finds a row whose column `k` differs and says where, whatever order the
/// rows were stored in (several COPY streams, split tasks, keyed publishes):
///
/// 1. the sent rows and the stored rows are spread over [`BUCKETS`] buckets
///    by the hash of their *other* columns, which a change to column `k`
///    leaves alone, and each bucket's count and sum of column `k`'s hashes
///    compared (one grouped query; memory bounded by the buckets);
/// 2. the stored rows of the differing buckets that hold the earliest sent
///    rows are fetched (a second, targeted query) and matched with the sent
///    rows of those buckets: a sent and a stored row with the same other
///    columns but a different column `k` are the pair named.
///
/// `None` when no pair is found (the other columns changed too) or the
/// value cannot be compared from the bytes sent.
async fn locate(
    sources: &[Source<'_>],
    checks: &[Check],
    columns: &[String],
    k: usize,
    sent: &SentRows,
) -> Result<Option<String>, PgError> {
    const DOING: &str = "finding the row that differs";
    let check = &checks[k];
    let (Some(own), false) = (
        check.sql(k),
        matches!(check.hash, Some(ValueHash::FloatAsSent)),
    ) else {
        return Ok(None);
    };
    let own = format!("({own})::int8");
    let others = row_hash_sql(checks, Some(k));
    let mask = BUCKETS - 1;
    let null_own = null_hash(k);

    // 1. Bucket sums, sent and stored.
    let mut sums = vec![(0u64, 0i128, u64::MAX); BUCKETS];
    let readable = for_each_sent(sent, checks, k, |r| {
        let b = &mut sums[bucket(r.others)];
        b.0 += 1;
        b.1 += r.own.unwrap_or(null_own) as i128;
        b.2 = b.2.min(r.index);
    })?;
    if !readable {
        return Ok(None);
    }
    let query = format!(
        "SELECT ({others} & {mask})::int4, count(*)::int8, sum(coalesce({own}, {null_own}))::text FROM ferry_rows GROUP BY 1"
    );
    let mut stored = vec![(0u64, 0i128); BUCKETS];
    for &(c, rows) in sources {
        let sql = over_stored_rows(c, columns, rows, &query, DOING).await?;
        for row in c.query(&sql, &[]).await.map_err(db(DOING))? {
            let b = row.get::<_, i32>(0) as usize & mask;
            let sum = parse_sum(row.get(2)).map_err(PgError::Count)?;
            stored[b].0 += row.get::<_, i64>(1) as u64;
            stored[b].1 += sum;
        }
    }
    let mut differing: Vec<(u64, usize)> = (0..BUCKETS)
        .filter(|&b| (sums[b].0, sums[b].1) != stored[b])
        .map(|b| (sums[b].2, b))
        .collect();
    differing.sort_unstable();
    differing.truncate(FETCHED_BUCKETS);
    if differing.is_empty() {
        return Ok(None);
    }
    let chosen: Vec<usize> = differing.iter().map(|&(_, b)| b).collect();

    // 2. The rows of those buckets, sent and stored, matched.
    let mut sent_rows: Vec<SentHash> = Vec::new();
    for_each_sent(sent, checks, k, |r| {
        if chosen.contains(&bucket(r.others)) {
            sent_rows.push(r);
        }
    })?;
    let line = if checks.iter().any(|c| c.name == LINEAGE_LINE) {
        format!("{}::text", quote_ident(LINEAGE_LINE))
    } else {
        "NULL::text".into()
    };
    let list: Vec<String> = chosen.iter().map(|b| b.to_string()).collect();
    let query = format!(
        "SELECT {others}, {own}, {}::text, {line} FROM ferry_rows WHERE ({others} & {mask})::int4 IN ({})",
        quote_ident(&check.name),
        list.join(", ")
    );
    // Stored rows by their hashes; a sent row with the same hashes is
    // stored as sent and takes one of them away.
    let mut unmatched: HashMap<(i64, Option<i64>), Vec<StoredValue>> = HashMap::new();
    for &(c, rows) in sources {
        let sql = over_stored_rows(c, columns, rows, &query, DOING).await?;
        for row in c.query(&sql, &[]).await.map_err(db(DOING))? {
            unmatched
                .entry((row.get(0), row.get(1)))
                .or_default()
                .push((row.get(2), row.get(3)));
        }
    }
    let mut changed = Vec::new();
    for r in sent_rows {
        match unmatched.get_mut(&(r.others, r.own)) {
            Some(same) if !same.is_empty() => {
                same.pop();
            }
            _ => changed.push(r),
        }
    }
    // The earliest sent row that a stored row matches in every other column.
    for r in changed {
        let Some((value, line)) = unmatched
            .iter_mut()
            .find(|((others, _), left)| *others == r.others && !left.is_empty())
            .and_then(|(_, left)| left.pop())
        else {
            continue;
        };
        let place = match line {
            Some(l) => format!("input line {l} (row {} of the rows loaded)", r.index + 1),
            None => format!("row {} of the rows loaded", r.index + 1),
        };
        let sent_value = sent_text(&sent.sql, r.index, k)
            .unwrap_or_else(|| "(see the .pgcopy artifacts)".into());
        return Ok(Some(format!(
            "; first at {place}: ferry sent {sent_value}, PostgreSQL stored {}",
            value.unwrap_or_else(|| "NULL".into())
        )));
    }
    Ok(None)
}

/// Everything [`settle`] needs.
pub(super) struct Settle<'a> {
    pub c: &'a Conn,
    pub checks: &'a [Check],
    pub columns: &'a [String],
    pub level: Verify,
    pub sent: &'a Digest,
    pub measured: Measured,
    /// Where the stored rows are, to find the column and row that differ.
    pub sources: &'a [Source<'a>],
    pub ids: ReceiptIds,
    /// The sent rows (`.pgcopy` and `.sql` artifacts), to name the row
    /// that differs.
    pub sent_rows: Option<&'a SentRows>,
}

/// Compares; on a difference names the column and fails (the caller rolls
/// back), else returns the receipt to record.
pub(super) async fn settle(s: Settle<'_>) -> Result<Receipt, PgError> {
    let stored_sum = s.measured.row_sum.filter(|_| s.level == Verify::Full);
    if let Some(first) = compare(s.checks, s.sent, s.measured.rows, stored_sum, None) {
        let mut mismatch = if first.column.is_none() && s.sent.rows == s.measured.rows {
            let stored = column_digests(s.sources, s.checks, s.columns).await?;
            compare(s.checks, s.sent, stored.rows, stored_sum, Some(&stored)).unwrap_or(first)
        } else {
            first
        };
        let k = mismatch
            .column
            .as_ref()
            .and_then(|name| s.checks.iter().position(|c| &c.name == name));
        if let (Some(k), Some(sent)) = (k, s.sent_rows) {
            // Naming the row is a courtesy: the load fails either way.
            match locate(s.sources, s.checks, s.columns, k, sent).await {
                Ok(Some(found)) => mismatch.detail.push_str(&found),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "could not name the row that differs"),
            }
        }
        return Err(PgError::Receipt {
            table: s.ids.target.clone(),
            column: mismatch.column,
            detail: mismatch.detail,
        });
    }
    const DOING: &str = "reading the server version for the receipt";
    let statement =
        s.c.prepared("SELECT current_setting('server_version'), pg_current_xact_id()::text")
            .await
            .map_err(db(DOING))?;
    let row = s.c.query_one(&statement, &[]).await.map_err(db(DOING))?;
    let ids = ReceiptIds {
        server_version: row.get(0),
        transaction: row.get(1),
        ..s.ids
    };
    Ok(Receipt::new(s.level, s.checks, s.sent, ids))
}
