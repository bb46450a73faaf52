//! Opening a load: the table its COPY streams write into — the target
//! itself inside the load's transaction (one stream) or in each stream's
//! own (two-phase `append`), a replacement table
//! built beside the target (`replace`), or a staging table (several streams,
//! `upsert`, `delete-insert`) — and the streams themselves.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};
use tokio_postgres::Client;

use super::stream::run_stream;
use super::two_phase::{MeasurePlan, run_participant};
use super::{CopyChunk, Layout, LoadSession, create_target, evolve, exec, short};
use crate::pg::catalog::{self, NewColumn, create_table_sql};
use crate::pg::error::PgError;
use crate::pg::evolve::{SchemaChange, changes_ddl};
use crate::pg::ident::QualifiedName;
use crate::pg::receipt::Verify;
use crate::pg::statements::{LoadMode, copy_from_stdin_sql};

use super::prove::Rows;

impl LoadSession {
    /// Creates the table the streams write into and starts them.
    pub(super) async fn open(&mut self, new_columns: Option<&[NewColumn]>) -> Result<(), PgError> {
        let req = &self.req;
        let c = &self.control;
        let job = short(&req.job_id);
        let like_target = |t: &QualifiedName, unlogged: bool| -> String {
            match new_columns {
                Some(cols) => create_table_sql(t, cols, &[], false, unlogged),
                None => {
                    // The target's columns as they are, then the changes it
                    // will get when publishing (added columns, wider types).
                    let existing: Vec<String> = self
                        .copy_columns
                        .iter()
                        .filter(|c| {
                            !self.changes.iter().any(|ch| {
                                matches!(ch, SchemaChange::AddColumn { column, .. } if column == *c)
                            })
                        })
                        .cloned()
                        .collect();
                    let l = catalog::column_list(&existing);
                    let mut sql = format!(
                        "CREATE {}TABLE {} AS SELECT {} FROM {} WITH NO DATA",
                        if unlogged { "UNLOGGED " } else { "" },
                        t.quoted(),
                        &l[1..l.len() - 1],
                        req.target.quoted()
                    );
                    let alter = changes_ddl(t, &self.changes);
                    if !alter.is_empty() {
                        sql.push_str(";\n");
                        sql.push_str(&alter);
                    }
                    sql
                }
            }
        };
        // The replacement table, built beside the target and swapped in.
        let replacement = req
            .target
            .sibling(format!("{}__ferry_{job}", req.target.name));
        let replacement_ddl = || -> String {
            match new_columns {
                Some(cols) => create_table_sql(&replacement, cols, &[], false, false),
                None => format!(
                    "CREATE TABLE {} (LIKE {} INCLUDING ALL)",
                    replacement.quoted(),
                    req.target.quoted()
                ),
            }
        };
        let mut freeze = false;
        match (self.layout, req.mode) {
            (Layout::Single, mode) => {
                exec(c, "BEGIN", "starting the load transaction").await?;
                self.in_tx = true;
                match mode {
                    LoadMode::Append => {
                        if !self.target_exists {
                            create_target(c, &req.target, &self.target_ddl).await?;
                        }
                        evolve(c, &req.target, &self.changes).await?;
                        self.rewritten_up_to =
                            Rows::rewritten_up_to(c, &req.target, &self.changes).await?;
                        if self.target_exists && req.verify.level != Verify::Off {
                            self.first_block = Some(Rows::last_block(c, &req.target).await?);
                        }
                    }
                    LoadMode::Replace => {
                        exec(c, &replacement_ddl(), "creating the replacement table").await?;
                        evolve(c, &replacement, &self.changes).await?;
                        self.copy_table = replacement;
                        freeze = true;
                    }
                    LoadMode::Upsert | LoadMode::DeleteInsert => {
                        if !self.target_exists {
                            create_target(c, &req.target, &self.target_ddl).await?;
                        }
                        evolve(c, &req.target, &self.changes).await?;
                        let stage = QualifiedName::new("pg_temp", format!("ferry_stage_{job}"));
                        let l = catalog::column_list(&self.copy_columns);
                        let sql = format!(
                            "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA",
                            stage.quoted(),
                            &l[1..l.len() - 1],
                            req.target.quoted()
                        );
                        exec(c, &sql, "creating the staging table").await?;
                        self.copy_table = stage;
                    }
                }
            }
            (Layout::TwoPhase, _) => {
                // The streams write into the target in their own
                // transactions; the control one starts when they are done.
                if req.verify.level != Verify::Off {
                    self.first_block = Some(Rows::last_block(c, &req.target).await?);
                }
            }
            (Layout::Staged, LoadMode::Replace) => {
                drop_leftover(c, &replacement).await?;
                exec(c, &replacement_ddl(), "creating the replacement table").await?;
                self.cleanup = Some(replacement.clone());
                evolve(c, &replacement, &self.changes).await?;
                self.copy_table = replacement;
            }
            (Layout::Staged, _) => {
                let stage = QualifiedName::new("ferry", format!("stage_{job}"));
                drop_leftover(c, &stage).await?;
                exec(c, &like_target(&stage, true), "creating the staging table").await?;
                self.cleanup = Some(stage.clone());
                self.copy_table = stage;
            }
        }
        let copy_sql = Arc::new(copy_from_stdin_sql(
            &self.copy_table,
            &self.copy_columns,
            freeze,
            req.format,
        ));
        let (tx, rx) = mpsc::channel::<CopyChunk>(req.streams.max(1) * 2);
        let rx = Arc::new(Mutex::new(rx));
        let table = Arc::new(self.copy_table.to_string());
        if self.layout == Layout::Single {
            self.streams.push(tokio::spawn(run_stream(
                self.control.clone(),
                copy_sql,
                rx,
                0,
                table,
                req.format,
            )));
        } else if self.layout == Layout::TwoPhase {
            let plan = (req.verify.level != Verify::Off).then(|| {
                Arc::new(MeasurePlan {
                    checks: self.checks.clone(),
                    level: req.verify.level,
                    target: req.target.clone(),
                    first_block: self.first_block,
                })
            });
            for (k, conn) in std::mem::take(&mut self.stream_conns)
                .into_iter()
                .enumerate()
            {
                self.participants.push(tokio::spawn(run_participant(
                    conn,
                    copy_sql.clone(),
                    rx.clone(),
                    k,
                    table.clone(),
                    req.format,
                    plan.clone(),
                )));
            }
        } else {
            for (k, conn) in std::mem::take(&mut self.stream_conns)
                .into_iter()
                .enumerate()
            {
                let client = Arc::new(conn);
                self.streams.push(tokio::spawn(run_stream(
                    client,
                    copy_sql.clone(),
                    rx.clone(),
                    k,
                    table.clone(),
                    req.format,
                )));
            }
        }
        self.sender = Some(tx);
        Ok(())
    }
}

/// Drops a table this job created in an earlier attempt that died before
/// cleaning up (a SIGKILLed or lost worker): the staged layouts commit their
/// staging and replacement tables so that every COPY stream sees them, and
/// their names are the job's own, so a re-run of the job would collide.
async fn drop_leftover(c: &Client, table: &QualifiedName) -> Result<(), PgError> {
    exec(
        c,
        &format!("DROP TABLE IF EXISTS {}", table.quoted()),
        "removing a table an earlier attempt of this job left",
    )
    .await
}
