//! The load's artifacts on working storage: `.sql` files that
//! `psql -v ON_ERROR_STOP=1 -f load.sql` replays (pg_dump-style: settings, DDL,
//! `COPY … FROM stdin`, rows in COPY text format, `\.`) and `.pgcopy` files
//! (complete binary COPY streams). Both are split into parts of bounded size at
//! batch boundaries, so no file grows with the input and parts can be loaded
//! in parallel.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::catalog::column_list;
use super::codec::binary::{PGCOPY_HEADER, PGCOPY_TRAILER};
use super::error::PgError;
use super::ident::{QualifiedName, quote_literal};
use super::receipt::{Check, Digest, Verify, row_digest_select};
use super::statements::{DuplicateKeys, LEDGER_DDL, LoadMode, publish_keyed_sql};
use crate::work::FileKind;
use crate::writeback::WritebackFile;

/// Which artifacts to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactKinds {
    /// `.sql` parts and the `load.sql` driver.
    pub sql: bool,
    /// `.pgcopy` parts.
    pub pgcopy: bool,
}

/// Everything the writer needs to know up front.
#[derive(Debug, Clone)]
pub struct ArtifactSpec {
    /// Directory the files go to (created if missing).
    pub dir: PathBuf,
    /// File name stem, e.g. the table name.
    pub stem: String,
    /// What to write.
    pub kinds: ArtifactKinds,
    /// Bytes after which a part is closed (at the next batch boundary).
    pub part_bytes: u64,
    /// The target table.
    pub target: QualifiedName,
    /// `CREATE TABLE IF NOT EXISTS` for the target (used when it is missing).
    pub target_ddl: String,
    /// Columns in COPY order.
    pub columns: Vec<String>,
    /// Load mode the driver reproduces.
    pub mode: LoadMode,
    /// Key columns of `upsert` and `delete-insert`.
    pub keys: Vec<String>,
    /// Which row of a repeated key the driver keeps (or whether it fails).
    pub duplicates: DuplicateKeys,
    /// The changes `target_ddl` makes to an existing target, recorded in
    /// the ledger entry the driver writes.
    pub schema_changes: Vec<super::evolve::SchemaChange>,
    /// What the driver proves before it commits (the load's receipt), and
    /// how each column is compared; `None` under `verify = "off"`.
    pub receipt: Option<(Verify, Vec<Check>)>,
    /// Whether each file is synced to disk as it is closed: when another
    /// task reads them (sql-processor on ECS, a user's `ferry load`
    /// folder). A job that archives them into `file.zip` in the same
    /// process, which is synced, need not: a job taken over after a crash
    /// starts in a fresh folder and never reads them.
    pub sync: bool,
    /// Whether the files' pages stay in the page cache once on disk: where
    /// they are read back soon (the converter validates its output; the
    /// load of a split input sends its parts' `.pgcopy`), not for a whole
    /// input's artifacts, read at most once, later, by the archive step
    /// (see [`WritebackFile::create_write_once`]).
    pub keep_cached: bool,
    /// Whether `finish` writes the `load.sql` driver. One part of a split
    /// input writes none: the load of all parts writes one driver for every
    /// part's files ([`write_driver`]), so replaying it loads the file once.
    pub driver: bool,
}

/// One file written: what the load report lists and `transform.json`
/// records for sql-processor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Path of the file.
    pub path: PathBuf,
    /// `sql`, `pgcopy` or `driver`.
    pub kind: FileKind,
    /// Rows it holds (0 for the driver).
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The ledger entry the driver records (and checks before loading).
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    /// Identity of the input (path, or bucket/key/version).
    pub input: String,
    /// Checksum of the input bytes.
    pub checksum: String,
    /// Dataset name.
    pub dataset: String,
    /// Job id.
    pub job_id: String,
    /// Input size in bytes.
    pub bytes: u64,
}

struct Part {
    path: PathBuf,
    out: BufWriter<WritebackFile>,
    rows: u64,
    bytes: u64,
}

/// Streams batches into the artifact files.
pub struct ArtifactWriter {
    spec: ArtifactSpec,
    sql: Option<Part>,
    pgcopy: Option<Part>,
    sql_parts: usize,
    pgcopy_parts: usize,
    files: Vec<ArtifactFile>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PgError + '_ {
    move |source| PgError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl ArtifactWriter {
    /// Prepares the directory; files are created with the first batch.
    pub fn new(spec: ArtifactSpec) -> Result<Self, PgError> {
        std::fs::create_dir_all(&spec.dir).map_err(io_err(&spec.dir))?;
        Ok(Self {
            spec,
            sql: None,
            pgcopy: None,
            sql_parts: 0,
            pgcopy_parts: 0,
            files: Vec::new(),
        })
    }

    /// The table the `.sql` parts COPY into: the target, or for upserts a
    /// temporary staging table the driver merges from.
    fn sql_copy_table(&self) -> QualifiedName {
        match self.spec.mode {
            LoadMode::Upsert | LoadMode::DeleteInsert => QualifiedName::new(
                "pg_temp",
                format!("{}__ferry_upsert", self.spec.target.name),
            ),
            _ => self.spec.target.clone(),
        }
    }

    /// Creates one part's file: handed to the disk as it grows, so the
    /// closing sync waits for its tail only; and, unless the spec keeps
    /// them cached, let go of by the page cache once on disk.
    fn create(&self, path: &Path) -> Result<WritebackFile, PgError> {
        if self.spec.keep_cached {
            WritebackFile::create(path)
        } else {
            WritebackFile::create_write_once(path)
        }
        .map_err(io_err(path))
    }

    fn open_sql(&mut self) -> Result<Part, PgError> {
        self.sql_parts += 1;
        let path = self
            .spec
            .dir
            .join(format!("{}-{:05}.sql", self.spec.stem, self.sql_parts));
        let file = self.create(&path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let table = self.sql_copy_table();
        let ddl = match self.spec.mode {
            LoadMode::Upsert | LoadMode::DeleteInsert => format!(
                "CREATE TEMP TABLE IF NOT EXISTS {} AS SELECT {} FROM {} WITH NO DATA",
                table.quoted(),
                {
                    let l = column_list(&self.spec.columns);
                    l[1..l.len() - 1].to_string()
                },
                self.spec.target.quoted()
            ),
            _ => self.spec.target_ddl.clone(),
        };
        let header = format!(
            "--\n-- ferry {}: part {} of the rows for {}\n--\n\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n\n{ddl};\n\nCOPY {} {} FROM stdin;\n",
            env!("CARGO_PKG_VERSION"),
            self.sql_parts,
            self.spec.target,
            table.quoted(),
            column_list(&self.spec.columns),
        );
        out.write_all(header.as_bytes()).map_err(io_err(&path))?;
        Ok(Part {
            bytes: header.len() as u64,
            path,
            out,
            rows: 0,
        })
    }

    fn open_pgcopy(&mut self) -> Result<Part, PgError> {
        self.pgcopy_parts += 1;
        let path = self.spec.dir.join(format!(
            "{}-{:05}.pgcopy",
            self.spec.stem, self.pgcopy_parts
        ));
        let file = self.create(&path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&PGCOPY_HEADER).map_err(io_err(&path))?;
        Ok(Part {
            bytes: PGCOPY_HEADER.len() as u64,
            path,
            out,
            rows: 0,
        })
    }

    fn close(&mut self, part: Part, kind: FileKind, trailer: &[u8]) -> Result<(), PgError> {
        let Part {
            path,
            mut out,
            rows,
            bytes,
        } = part;
        out.write_all(trailer).map_err(io_err(&path))?;
        let mut file = out.into_inner().map_err(|e| PgError::Io {
            path: path.display().to_string(),
            source: e.into_error(),
        })?;
        if self.spec.sync {
            file.sync_data().map_err(io_err(&path))?;
        }
        self.files.push(ArtifactFile {
            path,
            kind,
            rows,
            bytes: bytes + trailer.len() as u64,
        });
        Ok(())
    }

    /// Appends one batch: its binary COPY tuples and its COPY text rows.
    pub fn write_batch(&mut self, binary: &[u8], text: &[u8], rows: u64) -> Result<(), PgError> {
        if self.spec.kinds.sql {
            if self.sql.is_none() {
                self.sql = Some(self.open_sql()?);
            }
            let part = self.sql.as_mut().unwrap_or_else(|| unreachable!());
            part.out.write_all(text).map_err(io_err(&part.path))?;
            part.rows += rows;
            part.bytes += text.len() as u64;
            if part.bytes >= self.spec.part_bytes
                && let Some(p) = self.sql.take()
            {
                self.close(p, FileKind::Sql, b"\\.\n")?;
            }
        }
        if self.spec.kinds.pgcopy {
            if self.pgcopy.is_none() {
                self.pgcopy = Some(self.open_pgcopy()?);
            }
            let part = self.pgcopy.as_mut().unwrap_or_else(|| unreachable!());
            part.out.write_all(binary).map_err(io_err(&part.path))?;
            part.rows += rows;
            part.bytes += binary.len() as u64;
            if part.bytes >= self.spec.part_bytes
                && let Some(p) = self.pgcopy.take()
            {
                self.close(p, FileKind::Pgcopy, &PGCOPY_TRAILER)?;
            }
        }
        Ok(())
    }

    /// Closes the open parts and writes the `load.sql` driver; `sent` is the
    /// digest of every row written, which the driver's receipt check
    /// compares with what the replay stored.
    pub fn finish(
        mut self,
        ledger: Option<&LedgerEntry>,
        sent: Option<&Digest>,
    ) -> Result<Vec<ArtifactFile>, PgError> {
        // An empty input still gets one (empty) part of each kind.
        if self.spec.kinds.sql && self.sql.is_none() && self.sql_parts == 0 {
            self.sql = Some(self.open_sql()?);
        }
        if self.spec.kinds.pgcopy && self.pgcopy.is_none() && self.pgcopy_parts == 0 {
            self.pgcopy = Some(self.open_pgcopy()?);
        }
        if let Some(p) = self.sql.take() {
            self.close(p, FileKind::Sql, b"\\.\n")?;
        }
        if let Some(p) = self.pgcopy.take() {
            self.close(p, FileKind::Pgcopy, &PGCOPY_TRAILER)?;
        }
        if self.spec.kinds.sql && self.spec.driver {
            let path = self.spec.dir.join("load.sql");
            let text = self.driver(ledger, sent);
            std::fs::write(&path, &text).map_err(io_err(&path))?;
            self.files.push(ArtifactFile {
                path,
                kind: FileKind::Driver,
                rows: 0,
                bytes: text.len() as u64,
            });
        }
        Ok(self.files)
    }

    /// Writes the `load.sql` driver for `files` (the `.sql` parts, in load
    /// order, which may come from several writers: the parts of a split
    /// input) into `spec.dir`, and returns it as an artifact.
    pub fn write_driver(
        spec: ArtifactSpec,
        files: Vec<ArtifactFile>,
        ledger: Option<&LedgerEntry>,
        sent: Option<&Digest>,
    ) -> Result<ArtifactFile, PgError> {
        let writer = ArtifactWriter {
            spec,
            sql: None,
            pgcopy: None,
            sql_parts: 0,
            pgcopy_parts: 0,
            files,
        };
        let path = writer.spec.dir.join("load.sql");
        let text = writer.driver(ledger, sent);
        std::fs::write(&path, &text).map_err(io_err(&path))?;
        Ok(ArtifactFile {
            path,
            kind: FileKind::Driver,
            rows: 0,
            bytes: text.len() as u64,
        })
    }

    /// The driver script: one transaction, the mode's publish step, and the
    /// ledger check and entry, so replaying it twice loads once.
    fn driver(&self, ledger: Option<&LedgerEntry>, sent: Option<&Digest>) -> String {
        let s = &self.spec;
        let target = s.target.quoted();
        let parts: Vec<String> = self
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Sql)
            .filter_map(|f| {
                f.path
                    .file_name()
                    .map(|n| format!("\\ir {}", n.to_string_lossy()))
            })
            .collect();
        let rows: u64 = self
            .files
            .iter()
            .filter(|f| f.kind == FileKind::Sql)
            .map(|f| f.rows)
            .sum();
        let mut out = format!(
            "--\n-- ferry {}: load {} rows into {} (mode {}).\n-- Run: psql -v ON_ERROR_STOP=1 -f load.sql\n--\n\n\\set ON_ERROR_STOP on\nSET client_encoding = 'UTF8';\nSET client_min_messages = warning;\nBEGIN;\n",
            env!("CARGO_PKG_VERSION"),
            rows,
            s.target,
            s.mode
        );
        if let Some(l) = ledger {
            out.push_str(&format!(
                "SELECT pg_advisory_xact_lock(hashtext('ferry.loads')) AS ferry_locked \\gset\n{LEDGER_DDL};\nSELECT NOT EXISTS (SELECT 1 FROM ferry.loads WHERE target = {} AND input = {} AND checksum = {}) AS ferry_todo \\gset\n\\if :ferry_todo\n",
                quote_literal(&s.target.to_string()),
                quote_literal(&l.input),
                quote_literal(&l.checksum)
            ));
        }
        out.push_str(&format!("{};\n", s.target_ddl));
        if s.mode == LoadMode::Replace {
            out.push_str(&format!("TRUNCATE {target};\n"));
        }
        let rewrites = s
            .schema_changes
            .iter()
            .any(|c| matches!(c, super::evolve::SchemaChange::WidenColumn { .. }));
        if rewrites && s.receipt.is_some() {
            // A widened column rewrote every row with this transaction's
            // xid: the receipt counts only rows past the rewritten ones.
            out.push_str(&format!(
                "SELECT set_config('ferry.rewritten_up_to', coalesce(max(ctid), '(0,0)')::text, true) FROM {target} \\gset ferry_\n"
            ));
        }
        if !rewrites && self.checks_receipt() {
            // Where the table ends before this replay writes to it: the
            // receipt reads its rows from there (see `receipt_check`).
            out.push_str(&format!(
                "SELECT set_config('ferry.last_block', greatest(pg_relation_size({}::regclass) / current_setting('block_size')::int8 - 1, 0)::text, true) \\gset ferry_\n",
                quote_literal(&s.target.quoted())
            ));
        }
        for p in &parts {
            out.push_str(p);
            out.push('\n');
        }
        if s.mode.keyed() {
            let stage = self.sql_copy_table();
            if s.mode == LoadMode::DeleteInsert && s.duplicates == DuplicateKeys::Fail {
                // Nothing in PostgreSQL refuses a repeated key here: the
                // driver looks, as the loader does.
                let list = column_list(&s.keys);
                let keys = &list[1..list.len() - 1];
                out.push_str(&format!(
                    "DO $ferry$ BEGIN IF EXISTS (SELECT 1 FROM {} GROUP BY {keys} HAVING count(*) > 1) THEN RAISE EXCEPTION 'ferry: the input holds the same key more than once; delete-insert needs one row per key (duplicate_keys)'; END IF; END $ferry$;\n",
                    stage.quoted()
                ));
            }
            out.push_str(&format!(
                "{};\nDROP TABLE {};\n",
                publish_keyed_sql(s.mode, &s.target, &stage, &s.columns, &s.keys, s.duplicates),
                stage.quoted()
            ));
        }
        if let Some(check) = self.receipt_check(sent, rows, rewrites) {
            out.push_str(&check);
        }
        if let Some(l) = ledger {
            out.push_str(&format!(
                "INSERT INTO ferry.loads (target, input, checksum, dataset, job_id, mode, rows, bytes, schema_changes) VALUES ({}, {}, {}, {}, {}, {}, {rows}, {}, {});\n\\else\n\\echo 'already loaded: ferry.loads has this input for this target; nothing to do'\n\\endif\n",
                quote_literal(&s.target.to_string()),
                quote_literal(&l.input),
                quote_literal(&l.checksum),
                quote_literal(&l.dataset),
                quote_literal(&l.job_id),
                quote_literal(&s.mode.to_string()),
                l.bytes,
                if s.schema_changes.is_empty() {
                    "NULL".to_string()
                } else {
                    format!(
                        "{}::jsonb",
                        quote_literal(&serde_json::to_string(&s.schema_changes).unwrap_or_default())
                    )
                }
            ));
        }
        out.push_str("COMMIT;\n");
        out
    }

    /// Whether the driver checks a receipt (see [`Self::receipt_check`]).
    fn checks_receipt(&self) -> bool {
        let s = &self.spec;
        s.receipt
            .as_ref()
            .is_some_and(|(level, _)| *level != Verify::Off)
            && !(s.mode.keyed() && s.duplicates != DuplicateKeys::Fail)
    }

    /// The receipt check the driver runs before its ledger entry and
    /// commit: the rows this transaction stored in the target, counted (and
    /// under `full` hashed) inside PostgreSQL, must be what ferry wrote, or
    /// the replay stops and nothing is published. Not written when keyed
    /// rows may be left out by `duplicate_keys` (the count kept is not known
    /// here).
    fn receipt_check(&self, sent: Option<&Digest>, rows: u64, rewrites: bool) -> Option<String> {
        let s = &self.spec;
        let (level, checks) = s.receipt.as_ref()?;
        if !self.checks_receipt() {
            return None;
        }
        // The xid in a variable, not pg_current_xact_id() in the query
        // (parallel-unsafe): the digest may use every core.
        let mut from = format!("{} WHERE xmin = ferry_x", s.target.quoted());
        if rewrites {
            from.push_str(" AND ctid > current_setting('ferry.rewritten_up_to')::tid");
        }
        // From where the table ended first (a small append to a large table
        // need not read it all); then from each of RECENT_BLOCKS before (concurrent
        // appends' rows in blocks another extension left free); the whole
        // table when rows went into free space of older blocks. As the
        // loader's `measure_appended`.
        let tail = |back: u64| {
            format!(
                "{from} AND ctid >= format('(%s,0)', greatest(coalesce(current_setting('ferry.last_block', true), '0')::int8 - {back}, 0))::tid"
            )
        };
        let (select, want) = match (level, sent) {
            (Verify::Full, Some(d)) => (row_digest_select(checks), d.row_sum.to_string()),
            _ => ("count(*)::int8, '0'::text".to_string(), "0".to_string()),
        };
        let mut attempts = vec![tail(0)];
        attempts.extend(super::load::RECENT_BLOCKS.iter().map(|&back| tail(back)));
        attempts.push(from.clone());
        let retries: String = attempts[1..]
            .iter()
            .map(|f| {
                format!(
                    "  IF ferry_n IS DISTINCT FROM {rows} THEN\n    SELECT {select} INTO ferry_n, ferry_d FROM {f};\n  END IF;\n"
                )
            })
            .collect();
        let first = &attempts[0];
        let body = format!(
            "#variable_conflict use_column\nDECLARE ferry_n bigint; ferry_d text; ferry_x xid := xid(pg_current_xact_id());\nBEGIN\n  SELECT {select} INTO ferry_n, ferry_d FROM {first};\n{retries}  IF ferry_n IS DISTINCT FROM {rows} OR ferry_d IS DISTINCT FROM '{want}' THEN\n    RAISE EXCEPTION 'ferry: the receipt does not match, nothing was published: PostgreSQL stored % rows (digest %), ferry wrote {rows} (digest {want}); run ferry load to name the column', ferry_n, ferry_d;\n  END IF;\nEND"
        );
        // The dollar-quote tag must not occur in the body (a column name
        // could hold anything): lengthen it until it does not.
        let mut tag = "ferry_receipt".to_string();
        while body.contains(&format!("${tag}$")) {
            tag.push('_');
        }
        Some(format!(
            "-- The receipt: what PostgreSQL stored, hashed inside it, must be what ferry wrote.\nDO ${tag}$\n{body}\n${tag}$;\n"
        ))
    }
}
