//! Connections kept open between the jobs of one process, and a cap on how
//! many it opens at once.
//!
//! A small file's load is a few milliseconds of work, but a new PostgreSQL
//! connection costs a backend fork, a TLS handshake, authentication and a
//! backend whose catalog caches start cold: measured here, 13.6 ms of server
//! CPU per 200-row job with a connection each, most of it that. `ferry watch`
//! and the Lambda handler run many jobs in one process, so they keep clean
//! connections (a load that committed or rolled back) and hand them to the
//! next job. A connection is reused only when the code that used it says it
//! is clean ([`Conn::keep`]); anything that failed is closed, so the server
//! rolls back whatever it held.
//!
//! The cap makes a burst queue instead of failing: a process never holds
//! more than `max` connections, and a job takes every connection it needs
//! (its control connection and its COPY streams) at once, so two jobs can
//! never each hold half of what both need.
//!
//! A connection keeps the statements prepared on it ([`Prepare`]): a small
//! job runs about ten fixed statements (the ledger, the catalog, the
//! receipt), and parsing and planning each of them again for every job was
//! more server time than the job's COPY (measured here: the catalog query
//! alone, 0.5 ms of parse and plan per job).

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Statement};

/// A connection that may keep statements prepared: the fixed statements of
/// a load go through [`Prepare::prepared`], so a pooled connection parses
/// each once, and a plain [`Client`] (tools, tests) prepares each time, as
/// `query` with a string does.
pub trait Prepare: Sync {
    /// The connection.
    fn client(&self) -> &Client;
    /// `sql` prepared on this connection; only fixed text (`'static`), so
    /// what a connection keeps stays a handful of statements.
    fn prepared(
        &self,
        sql: &'static str,
    ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send;
}

impl Prepare for Client {
    fn client(&self) -> &Client {
        self
    }
    async fn prepared(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        self.prepare(sql).await
    }
}

impl<T: Prepare + Send> Prepare for Arc<T> {
    fn client(&self) -> &Client {
        (**self).client()
    }
    fn prepared(
        &self,
        sql: &'static str,
    ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send {
        (**self).prepared(sql)
    }
}

/// A connection with what it has prepared and learned; it travels with the
/// connection into the pool and out to the next job.
pub(crate) struct Session {
    client: Client,
    statements: Mutex<HashMap<&'static str, Statement>>,
    ledger_ready: AtomicBool,
}

impl Session {
    pub(crate) fn new(client: Client) -> Session {
        Session {
            client,
            statements: Mutex::new(HashMap::new()),
            ledger_ready: AtomicBool::new(false),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    async fn prepared(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        let known = self
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql, statement.clone());
        Ok(statement)
    }

    /// Names a reused connection for its next job (`pg_stat_activity`).
    pub(crate) async fn set_application_name(
        &self,
        name: &str,
    ) -> Result<(), tokio_postgres::Error> {
        let statement = self
            .prepared("SELECT set_config('application_name', $1, false)")
            .await?;
        self.client.execute(&statement, &[&name]).await.map(|_| ())
    }
}

/// Idle connections and the permits that cap open ones.
pub struct Pool {
    idle: Mutex<Vec<Session>>,
    slots: Arc<Semaphore>,
    max: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max", &self.max)
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl Pool {
    /// A pool that opens at most `max` connections at once (at least one).
    pub fn new(max: usize) -> Arc<Pool> {
        let max = max.max(1);
        Arc::new(Pool {
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(max)),
            max,
        })
    }

    /// The most connections open at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections waiting for a job.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits until `n` connections (at most [`Pool::max`]) may be open for
    /// one job, and returns their permits with the idle connections that can
    /// serve them, newest first.
    pub(crate) async fn reserve(
        self: &Arc<Self>,
        n: usize,
    ) -> (Vec<OwnedSemaphorePermit>, Vec<Session>) {
        let n = n.clamp(1, self.max);
        let permit = self
            .slots
            .clone()
            .acquire_many_owned(n as u32)
            .await
            .expect("the pool's semaphore is never closed");
        let permits = split(permit, n);
        let mut reused = Vec::new();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while reused.len() < n {
            match idle.pop() {
                Some(c) if c.is_closed() => continue,
                Some(c) => reused.push(c),
                None => break,
            }
        }
        (permits, reused)
    }

    fn give_back(&self, session: Session) {
        if session.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max {
            idle.push(session);
        }
    }
}

fn split(mut permit: OwnedSemaphorePermit, n: usize) -> Vec<OwnedSemaphorePermit> {
    let mut out = Vec::with_capacity(n);
    for _ in 1..n {
        if let Some(one) = permit.split(1) {
            out.push(one);
        }
    }
    out.push(permit);
    out
}

/// A connection, maybe from a [`Pool`]: it goes back to the pool when
/// dropped only after [`Conn::keep`] said it is clean; otherwise it closes.
pub struct Conn {
    session: Option<Session>,
    pool: Option<Arc<Pool>>,
    keep: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Conn {
    /// A connection of no pool (closed when dropped).
    pub fn unpooled(client: Client) -> Conn {
        Conn {
            session: Some(Session::new(client)),
            pool: None,
            keep: false,
            _permit: None,
        }
    }

    pub(crate) fn pooled(session: Session, pool: Arc<Pool>, permit: OwnedSemaphorePermit) -> Conn {
        Conn {
            session: Some(session),
            pool: Some(pool),
            keep: false,
            _permit: Some(permit),
        }
    }

    /// Says the connection is clean — no transaction open, no session state
    /// a later job must not inherit — so it may serve the next job.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    fn session(&self) -> &Session {
        self.session
            .as_ref()
            .expect("a Conn holds its session until dropped")
    }

    /// Whether this connection has seen the ledger with its newest columns
    /// (see `ensure_ledger`): once per connection, not per job. A ledger
    /// dropped meanwhile fails the next job's ledger read, and a failed job's
    /// connection is closed, so the one after it checks again.
    pub(crate) fn ledger_ready(&self) -> bool {
        self.session().ledger_ready.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ledger_ready(&self) {
        self.session().ledger_ready.store(true, Ordering::Relaxed);
    }
}

impl Prepare for Conn {
    fn client(&self) -> &Client {
        self.session().client()
    }

    async fn prepared(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        self.session().prepared(sql).await
    }
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.session().client()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let (true, Some(pool), Some(session)) = (self.keep, &self.pool, self.session.take()) {
            pool.give_back(session);
        }
    }
}
