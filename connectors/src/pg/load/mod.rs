//! The loader: binary COPY into PostgreSQL over one or more connections,
//! published atomically per load mode, recorded in the ledger in the same
//! transaction.
//!
//! | streams | append | replace | upsert |
//! |---|---|---|---|
//! | 1 | one transaction: COPY into the target, ledger, commit | one transaction: create the new table, `COPY … FREEZE`, swap, ledger, commit | one transaction: COPY into a temp table, `INSERT … ON CONFLICT`, ledger, commit |
//! | N | each stream COPYs into the target in its own transaction and prepares it; one transaction writes the ledger and commits, then the streams `COMMIT PREPARED` ([`two_phase`]); or, where that does not fit, COPY into an unlogged staging table, then one transaction: `INSERT … SELECT`, ledger, commit | COPY into the new table; then one transaction: swap, ledger, commit | COPY into staging; then one transaction: `INSERT … ON CONFLICT`, ledger, commit |
//!
//! Until the final commit nothing is visible in the target; on any failure the
//! transaction is rolled back and staging tables are dropped, so a failed load
//! leaves the target exactly as it was. (Two-phase streams become visible one
//! by one just after that commit, which decided them: see [`two_phase`].)
//!
//! This module holds the session and its publish; `plan` matches the output
//! to the table, `open` creates what the streams write into, `stream` is one
//! COPY stream, `keyed` publishes upserts, `prove` the receipt's rows,
//! `ledger` the `ferry.loads` bookkeeping.

mod keyed;
mod ledger;
mod open;
mod plan;
mod prove;
mod stream;
mod two_phase;

use std::sync::Arc;

use arrow::datatypes::DataType;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::codec::Codecs;
use super::codec::types::PgType;
use super::connect::PgConfig;
use super::error::PgError;
use super::evolve::{DriftPolicy, SchemaChange, changes_ddl};
use super::ident::QualifiedName;
use super::pool::{Conn, Prepare};
use super::receipt::{
    Check, Digest, Digester, Receipt, ReceiptIds, Verify, VerifyPolicy, plan_checks,
};
use super::statements::{CopyFormat, LoadMode, insert_select_sql, ledger_insert_sql};
use crate::store::Checksum;

use self::ledger::{ensure_ledger, ledger_knows, previous_load};
pub use self::plan::{OutputPlan, plan_output};
use self::plan::{Planned, plan};
pub use self::prove::SentRows;
use self::prove::{Measured, Rows, Settle, measure, settle};

/// One column the transform produces.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    /// Column name.
    pub name: String,
    /// Arrow type.
    pub data_type: DataType,
    /// Whether it may hold NULLs (non-nullable columns become `NOT NULL`).
    pub nullable: bool,
    /// The PostgreSQL type ferry would create it as.
    pub pg: PgType,
    /// `pg` was declared (`[target.types]`), not mapped from the Arrow type:
    /// only a declared `text` may widen a column to text.
    pub declared: bool,
}

/// Where the rows come from, as the ledger records it.
#[derive(Debug, Clone)]
pub struct InputIdentity {
    /// Path or `s3://bucket/key#version`.
    pub input: String,
    /// Checksum of the input's bytes, possibly still being computed: the
    /// load waits for it only when the ledger already has this input, and
    /// to record it at commit.
    pub checksum: Checksum,
    /// Input size in bytes.
    pub bytes: u64,
}

/// Everything a load needs to know before the first row.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// Target table.
    pub target: QualifiedName,
    /// How rows are published.
    pub mode: LoadMode,
    /// Key columns for `upsert` (and the primary key of a created table).
    pub keys: Vec<String>,
    /// Parallel COPY connections (≥ 1).
    pub streams: usize,
    /// Create the target when it is missing.
    pub create: bool,
    /// Load even if the ledger says this input is already loaded.
    pub force: bool,
    /// How the ledger names the input (and its checksum), so it loads once.
    pub input: InputIdentity,
    /// Dataset name, for the ledger.
    pub dataset: String,
    /// Job id: names staging tables and ledger entries.
    pub job_id: String,
    /// The transform's output columns, in order.
    pub columns: Vec<OutputColumn>,
    /// What a load may do when the table's columns drifted from the output's.
    pub drift: DriftPolicy,
    /// What the chunks hold: binary tuples (the encoder's output, `.pgcopy`
    /// parts) or COPY text rows (replayed `.sql` parts).
    pub format: CopyFormat,
    /// What the load proves before publishing (`[target] verify`).
    pub verify: VerifyPolicy,
}

/// A ledger entry found for this input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousLoad {
    /// Job that loaded it.
    pub job_id: String,
    /// Rows it loaded.
    pub rows: i64,
    /// When (as PostgreSQL prints it).
    pub loaded_at: String,
}

/// The result of [`LoadSession::begin`].
pub enum Begin {
    /// Ready to receive rows.
    Ready(Box<LoadSession>),
    /// The ledger already has this input for this target (and `force` is off).
    AlreadyLoaded(PreviousLoad),
}

/// The result of a finished load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Rows were published.
    Loaded {
        /// Rows loaded.
        rows: u64,
        /// Whether ferry created the target table.
        created: bool,
        /// What the load changed in the table's columns (or left out).
        schema_changes: Vec<SchemaChange>,
        /// Input rows left out because their key came again
        /// (`duplicate_keys = "first"|"last"`).
        duplicates: u64,
        /// What the load proved (`None` under `verify = "off"`).
        receipt: Option<Box<Receipt>>,
    },
    /// Another job published the same input first; this one rolled back.
    AlreadyLoaded(PreviousLoad),
}

/// Encoded binary COPY tuples for some consecutive output rows.
#[derive(Debug, Clone)]
pub struct CopyChunk {
    /// Tuples only (no header or trailer).
    pub bytes: Bytes,
    /// Number of tuples.
    pub rows: u64,
    /// Zero-based index of the first tuple among all output rows.
    pub first_row: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One connection, everything in the control transaction.
    Single,
    /// Parallel streams into a committed staging (or new) table, then publish.
    Staged,
    /// Parallel streams into the target, each in its own transaction,
    /// committed together by two-phase commit (see [`two_phase`]).
    TwoPhase,
}

/// How far before the table's end a receipt looks, in turn, for an
/// append's rows when they are not all past it. PostgreSQL 15 extends a
/// relation that several sessions insert into by 20 blocks per waiting
/// session, up to 512, and lists them as free, so concurrent appends' rows
/// land in blocks before the end each load measured (seen: 59 % of 1,000
/// small appends by four workers into one table, each then reading the
/// whole table). 64 blocks cover a few waiters at a tenth of 512's reading.
pub(crate) const RECENT_BLOCKS: [u64; 2] = [64, 512];

/// A load in progress. Feed chunks through [`LoadSession::sender`], then call
/// [`LoadSession::finish`]; on any error call [`LoadSession::abort`].
pub struct LoadSession {
    cfg: PgConfig,
    req: LoadRequest,
    control: Arc<Conn>,
    /// Connections taken for the COPY streams of a staged load.
    stream_conns: Vec<Conn>,
    layout: Layout,
    codecs: Codecs,
    /// Output columns the COPY carries (indices into `req.columns`).
    loaded: Vec<usize>,
    copy_columns: Vec<String>,
    /// Changes the target needs, run in the load's transaction.
    changes: Vec<SchemaChange>,
    /// Upsert keys as the table names them.
    keys: Vec<String>,
    /// Where the COPY streams write.
    copy_table: QualifiedName,
    /// Table to drop on failure (staging or the not-yet-swapped new table).
    cleanup: Option<QualifiedName>,
    target_exists: bool,
    target_ddl: String,
    sender: Option<mpsc::Sender<CopyChunk>>,
    streams: Vec<JoinHandle<Result<u64, PgError>>>,
    /// The two-phase layout's streams, running.
    participants: Vec<JoinHandle<Result<two_phase::Participant, PgError>>>,
    /// The two-phase layout's streams, their COPY done.
    joined: Vec<two_phase::Participant>,
    /// Names of the stream transactions prepared and not yet committed.
    prepared: Vec<String>,
    /// A transaction is open on the control connection.
    in_tx: bool,
    /// How each loaded column is compared for the receipt.
    checks: Arc<Vec<Check>>,
    /// The last row of a target this load rewrote (a widened column)
    /// before its own rows went in.
    rewritten_up_to: Option<String>,
    /// The target's last block before this load appended to it (see
    /// [`Rows::last_block`]).
    first_block: Option<u64>,
    /// The sent rows in order, to name the row a refused receipt differs in.
    sent_rows: Option<SentRows>,
}

impl LoadSession {
    /// Connects, checks the ledger, matches the output to the target table,
    /// creates staging tables and opens the COPY streams.
    pub async fn begin(cfg: &PgConfig, req: LoadRequest) -> Result<Begin, PgError> {
        // The configured name (PGAPPNAME, application_name=…) stays first,
        // so operators and monitors still find ferry's sessions by it.
        let app = format!(
            "{} {}",
            cfg.application_name().unwrap_or("ferry"),
            short(&req.job_id)
        );
        let cfg = cfg.clone().with_application_name(&app);
        // Every connection the load needs, at once (a pool's cap may give
        // fewer streams than asked for; one connection loads alone).
        let want = if req.streams <= 1 { 1 } else { req.streams + 1 };
        let mut conns = cfg.checkout(want).await?.into_iter();
        let mut control = Arc::new(
            conns
                .next()
                .ok_or_else(|| PgError::Config("no connection for the load".into()))?,
        );
        let stream_conns: Vec<Conn> = conns.collect();
        ensure_ledger(&control).await?;
        // Stream transactions a killed load left prepared hold their locks
        // and rows until decided; decided first, the ledger then tells the
        // truth about them. A failed look (a prepared transaction named like
        // ferry's that is not, say) must not stop loads that do not need
        // it: they go on without two-phase commit.
        let prepared_capacity = match two_phase::resolve_leftovers(&control).await {
            Ok(capacity) => capacity,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for prepared transactions of killed loads; parallel append goes through a staging table");
                0
            }
        };
        // An input the ledger has never seen cannot be a duplicate, whatever
        // its checksum: only then does the load start before the hash is done
        // (a concurrent duplicate is still caught when publishing).
        if !req.force
            && ledger_knows(&control, &req).await?
            && let Some(prev) = previous_load(&control, &req).await?
        {
            if let Some(c) = Arc::get_mut(&mut control) {
                c.keep();
            }
            return Ok(Begin::AlreadyLoaded(prev));
        }
        let Planned {
            codecs,
            loaded,
            copy_columns,
            changes,
            keys,
            new_columns,
            target_exists,
            target_ddl,
        } = plan(&control, &req).await?;
        let checks = Arc::new(plan_checks(&codecs, &req.verify)?);
        let layout = if stream_conns.len() <= 1 {
            Layout::Single
        } else {
            let fits = two_phase::two_phase_fits(
                req.mode,
                stream_conns.len(),
                target_exists,
                !changes.is_empty(),
                prepared_capacity,
            );
            let fits = match fits {
                Ok(()) if two_phase::has_unique_index(&control, &req.target).await? => {
                    Err("the target has a unique or exclusion index")
                }
                fits => fits,
            };
            match fits {
                Ok(()) => Layout::TwoPhase,
                Err(why) => {
                    if req.mode == LoadMode::Append {
                        tracing::info!(
                            streams = stream_conns.len(),
                            why,
                            "parallel append through a staging table (INSERT … SELECT) instead of two-phase commit"
                        );
                    }
                    Layout::Staged
                }
            }
        };
        let mut session = LoadSession {
            cfg,
            control,
            stream_conns,
            layout,
            codecs: Arc::new(codecs),
            loaded,
            copy_columns,
            changes,
            keys,
            copy_table: req.target.clone(),
            cleanup: None,
            target_exists,
            target_ddl,
            sender: None,
            streams: Vec::new(),
            participants: Vec::new(),
            joined: Vec::new(),
            prepared: Vec::new(),
            in_tx: false,
            checks,
            rewritten_up_to: None,
            first_block: None,
            sent_rows: None,
            req,
        };
        if let Err(e) = session.open(new_columns.as_deref()).await {
            session.abort().await;
            return Err(e);
        }
        Ok(Begin::Ready(Box::new(session)))
    }

    /// The column plans, in COPY order, for the encoder.
    pub fn codecs(&self) -> Codecs {
        self.codecs.clone()
    }

    /// What computes the sent rows' digest, chunk by chunk, in the encode
    /// stage: `None` unless `verify = "full"`.
    pub fn digester(&self) -> Option<Digester> {
        (self.req.verify.level == Verify::Full).then(|| Digester::new(self.checks.to_vec()))
    }

    /// How each loaded column is compared for the receipt (COPY order).
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Where the sent rows are kept in order (the artifacts): a refused
    /// receipt then names the first row that differs and both its values.
    pub fn locate_with(&mut self, rows: SentRows) {
        self.sent_rows = Some(rows);
    }

    /// The `CREATE TABLE IF NOT EXISTS` statement for the target.
    pub fn target_ddl(&self) -> &str {
        &self.target_ddl
    }

    /// The table's columns in COPY order.
    pub fn columns(&self) -> &[String] {
        &self.copy_columns
    }

    /// Which output columns the COPY carries, in COPY order (indices into
    /// the request's columns): the encoder must be fed just these.
    pub fn loaded(&self) -> &[usize] {
        &self.loaded
    }

    /// The upsert keys as the table names them.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// What the load changes in the target's columns (or leaves out).
    pub fn schema_changes(&self) -> &[SchemaChange] {
        &self.changes
    }

    /// Where encoded chunks go. Drop every clone before calling `finish`.
    pub fn sender(&self) -> mpsc::Sender<CopyChunk> {
        self.sender.clone().unwrap_or_else(|| mpsc::channel(1).0)
    }

    /// Waits for the streams, checks the row count, proves the stored rows
    /// equal `sent` (the digest of what was sent; `None` proves the count
    /// only), and publishes in one transaction with the ledger entry.
    pub async fn finish(
        mut self,
        expected_rows: u64,
        sent: Option<Digest>,
    ) -> Result<Outcome, PgError> {
        match self.publish(expected_rows, sent).await {
            Ok(outcome) => {
                // Committed or rolled back: the connection is clean.
                if let Some(c) = Arc::get_mut(&mut self.control) {
                    c.keep();
                }
                if matches!(outcome, Outcome::AlreadyLoaded(_)) {
                    self.abort().await;
                } else {
                    self.drop_cleanup_table().await;
                }
                Ok(outcome)
            }
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn publish(
        &mut self,
        expected_rows: u64,
        sent: Option<Digest>,
    ) -> Result<Outcome, PgError> {
        self.sender = None;
        let loaded = if self.layout == Layout::TwoPhase {
            self.join_participants().await?
        } else {
            join_streams(std::mem::take(&mut self.streams))
                .await?
                .into_iter()
                .sum()
        };
        if loaded != expected_rows {
            return Err(PgError::Count(format!(
                "encoded {expected_rows} rows but PostgreSQL accepted {loaded}"
            )));
        }
        let req = &self.req;
        let c = &self.control;
        if matches!(self.layout, Layout::Staged | Layout::TwoPhase) {
            exec(c, "BEGIN", "starting the publish transaction").await?;
            self.in_tx = true;
        }
        let created = !self.target_exists;
        let mut duplicates = 0u64;
        // Rows the load inserted, as far as it knows (an upsert without
        // lineage cannot tell inserts from updates).
        let mut inserted_rows = match req.mode {
            LoadMode::Append => Some(expected_rows as i64),
            _ => None,
        };
        // Without the sent rows' digest (a replay of artifacts made
        // without one) only the count can be proven.
        let level = match (req.verify.level, &sent) {
            (Verify::Full, None) => Verify::Count,
            (level, _) => level,
        };
        let mut measured: Option<(Rows, Measured)> = None;
        match (self.layout, req.mode) {
            (Layout::Single, LoadMode::Append) => {
                if level != Verify::Off {
                    measured = Some(self.measure_appended(level, expected_rows).await?);
                }
            }
            (_, LoadMode::Replace) => {
                if level != Verify::Off {
                    let rows = Rows::all_of(&self.copy_table);
                    measured = Some(self.measure(level, rows).await?);
                }
                if self.target_exists {
                    exec(
                        c,
                        &format!("DROP TABLE {}", req.target.quoted()),
                        "dropping the replaced table (views or foreign keys that depend on it must be dropped first)",
                    )
                    .await?;
                }
                exec(
                    c,
                    &format!(
                        "ALTER TABLE {} RENAME TO {}",
                        self.copy_table.quoted(),
                        super::ident::quote_ident(&req.target.name)
                    ),
                    "swapping in the new table",
                )
                .await?;
            }
            (Layout::TwoPhase, _) => {
                // Each stream measured its own rows in its own transaction.
                measured = self
                    .participants_measured()
                    .filter(|_| level != Verify::Off)
                    .map(|m| (Rows::Streams, m));
            }
            (Layout::Staged, LoadMode::Append) => {
                if !self.target_exists {
                    create_target(c, &req.target, &self.target_ddl).await?;
                }
                evolve(c, &req.target, &self.changes).await?;
                self.rewritten_up_to = Rows::rewritten_up_to(c, &req.target, &self.changes).await?;
                if self.target_exists && level != Verify::Off {
                    self.first_block = Some(Rows::last_block(c, &req.target).await?);
                }
                exec(
                    c,
                    &insert_select_sql(&req.target, &self.copy_table, &self.copy_columns),
                    "publishing staged rows",
                )
                .await?;
                if level != Verify::Off {
                    measured = Some(self.measure_appended(level, expected_rows).await?);
                }
            }
            (_, mode @ (LoadMode::Upsert | LoadMode::DeleteInsert)) => {
                let k = self.publish_keyed_mode(mode, level).await?;
                measured = k.measured;
                duplicates = k.duplicates;
                if let Some(inserted) = k.inserted {
                    inserted_rows = inserted;
                }
            }
        }
        crate::fault::point(crate::fault::PUBLISH).await;
        let checksum = req.input.checksum_value().await?;
        let receipt = match measured {
            Some((rows, m)) => {
                let mut expected = sent.unwrap_or_else(|| Digest {
                    rows: expected_rows,
                    ..Digest::new(self.checks.len())
                });
                let mut level = level;
                if duplicates > 0 {
                    // Rows left out by duplicate_keys: only the count of
                    // those kept can be compared.
                    expected.rows -= duplicates;
                    level = Verify::Count;
                }
                let ids = ReceiptIds {
                    target: req.target.to_string(),
                    input: req.input.input.clone(),
                    checksum: checksum.clone(),
                    ..Default::default()
                };
                // Two-phase streams' rows are seen only by their own
                // transactions: each is asked about its own.
                let sources: Vec<prove::Source> = match &rows {
                    Rows::Streams => self.participants_rows(),
                    rows => vec![(c.client(), rows)],
                };
                let receipt = settle(Settle {
                    c,
                    checks: &self.checks,
                    columns: &self.copy_columns,
                    level,
                    sent: &expected,
                    measured: m,
                    sources: &sources,
                    ids,
                    sent_rows: self.sent_rows.as_ref(),
                })
                .await?;
                Some(Box::new(receipt))
            }
            None => None,
        };
        let receipt_json = receipt
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default());
        let changes = (!self.changes.is_empty())
            .then(|| serde_json::to_string(&self.changes).unwrap_or_default());
        const RECORDING: &str = "recording the load in ferry.loads";
        let statement = c
            .prepared(ledger_insert_sql(req.force))
            .await
            .map_err(|e| PgError::db(RECORDING, e))?;
        let inserted = c
            .execute(
                &statement,
                &[
                    &req.target.to_string(),
                    &req.input.input,
                    &checksum,
                    &req.dataset,
                    &req.job_id,
                    &req.mode.to_string(),
                    &(loaded as i64),
                    &(req.input.bytes as i64),
                    &changes,
                    &inserted_rows,
                    &receipt_json,
                ],
            )
            .await
            .map_err(|e| PgError::db(RECORDING, e))?;
        if inserted == 0 {
            // A concurrent job published this input first: ours must not count.
            exec(c, "ROLLBACK", "rolling back a duplicate load").await?;
            self.in_tx = false;
            let prev = previous_load(c, req).await?.unwrap_or(PreviousLoad {
                job_id: String::new(),
                rows: 0,
                loaded_at: String::new(),
            });
            return Ok(Outcome::AlreadyLoaded(prev));
        }
        crate::fault::point(crate::fault::LEDGER).await;
        if self.layout == Layout::TwoPhase {
            self.prepare_participants().await?;
            crate::fault::point(crate::fault::PREPARED).await;
        }
        let c = &self.control;
        exec(c, "COMMIT", "committing the load").await?;
        self.in_tx = false;
        crate::fault::point(crate::fault::COMMITTED).await;
        if self.layout == Layout::TwoPhase {
            self.commit_participants().await?;
        }
        if self.req.mode == LoadMode::Replace {
            // The swapped-in table is the target now; nothing to clean up.
            self.cleanup = None;
        }
        Ok(Outcome::Loaded {
            rows: loaded,
            created,
            schema_changes: self.changes.clone(),
            duplicates,
            receipt,
        })
    }

    /// Measures the rows this transaction appended to the target (see
    /// [`prove::measure_appended`]).
    async fn measure_appended(
        &self,
        level: Verify,
        expected_rows: u64,
    ) -> Result<(Rows, Measured), PgError> {
        prove::measure_appended(
            &self.control,
            &self.checks,
            level,
            &self.req.target,
            self.rewritten_up_to.as_deref(),
            self.first_block,
            expected_rows,
        )
        .await
    }

    /// Measures this load's stored rows (see [`prove`]).
    async fn measure(&self, level: Verify, from: String) -> Result<(Rows, Measured), PgError> {
        let m = measure(&self.control, &self.checks, level, &from).await?;
        Ok((Rows::Table(from), m))
    }

    /// Stops the streams, rolls back and drops staging tables. Never fails:
    /// problems are logged, since the caller is already handling an error.
    pub async fn abort(mut self) {
        self.sender = None;
        for h in self.streams.drain(..) {
            h.abort();
        }
        if self.in_tx && !self.control.is_closed() {
            let _ = self.control.batch_execute("ROLLBACK").await;
        }
        self.abort_participants().await;
        self.drop_cleanup_table().await;
    }

    async fn drop_cleanup_table(&mut self) {
        let Some(table) = self.cleanup.take() else {
            return;
        };
        let sql = format!("DROP TABLE IF EXISTS {}", table.quoted());
        let result = if self.control.is_closed() {
            match self.cfg.connect().await {
                Ok(c) => c
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| PgError::db("cleanup", e)),
                Err(e) => Err(e),
            }
        } else {
            self.control
                .batch_execute(&sql)
                .await
                .map_err(|e| PgError::db("cleanup", e))
        };
        if let Err(e) = result {
            tracing::warn!(table = %table, error = %e, "could not drop a staging table; drop it by hand");
        }
    }
}

/// Waits for every COPY stream; `Err` is the first stream's error (the
/// others are dropped: their connections close and roll back).
async fn join_streams<T>(handles: Vec<JoinHandle<Result<T, PgError>>>) -> Result<Vec<T>, PgError> {
    let mut done = Vec::with_capacity(handles.len());
    let mut first_err = None;
    for handle in handles {
        match handle.await {
            Ok(Ok(v)) => done.push(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(join) => {
                first_err.get_or_insert(PgError::Count(format!("a COPY stream stopped: {join}")));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

fn short(job_id: &str) -> String {
    let alnum: Vec<char> = job_id.chars().filter(char::is_ascii_alphanumeric).collect();
    alnum[alnum.len().saturating_sub(12)..]
        .iter()
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Creates a missing target inside the load's transaction, serialised per
/// schema (its DDL may create the schema too) with a transaction-scoped
/// advisory lock: two loads that both found
/// the table missing would otherwise race on the catalog (`CREATE TABLE IF
/// NOT EXISTS` is not safe against a concurrent, uncommitted creator). The
/// second waits for the first to commit, then finds the table and skips.
async fn create_target(c: &Client, target: &QualifiedName, ddl: &str) -> Result<(), PgError> {
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtext('ferry.create:' || $1::text))::text",
        &[&target.schema],
    )
    .await
    .map_err(|e| PgError::db("locking the target table's creation", e))?;
    exec(c, ddl, "creating the target table").await
}

/// Runs the planned schema changes on `table` (the target, or the
/// replacement or staging table built from it), inside the caller's
/// transaction when it has one.
async fn evolve(
    c: &Client,
    table: &QualifiedName,
    changes: &[SchemaChange],
) -> Result<(), PgError> {
    let ddl = changes_ddl(table, changes);
    if ddl.is_empty() {
        return Ok(());
    }
    exec(
        c,
        &ddl,
        &format!("changing the columns of {table} for the input's"),
    )
    .await
}

async fn exec(c: &Client, sql: &str, doing: &str) -> Result<(), PgError> {
    c.batch_execute(sql)
        .await
        .map_err(|e| PgError::db(doing, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids() {
        assert_eq!(
            short("0190f3c2-7b1e-7c3a-9f00-1234567890ab"),
            "1234567890ab"
        );
    }
}
