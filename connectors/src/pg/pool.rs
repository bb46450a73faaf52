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

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

/// Idle connections and the permits that cap open ones.
pub struct Pool {
    idle: Mutex<Vec<Client>>,
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
    ) -> (Vec<OwnedSemaphorePermit>, Vec<Client>) {
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

    fn give_back(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max {
            idle.push(client);
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
    client: Option<Client>,
    pool: Option<Arc<Pool>>,
    keep: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Conn {
    /// A connection of no pool (closed when dropped).
    pub fn unpooled(client: Client) -> Conn {
        Conn {
            client: Some(client),
            pool: None,
            keep: false,
            _permit: None,
        }
    }

    pub(crate) fn pooled(client: Client, pool: Arc<Pool>, permit: OwnedSemaphorePermit) -> Conn {
        Conn {
            client: Some(client),
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
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .expect("a Conn holds its client until dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let (true, Some(pool), Some(client)) = (self.keep, &self.pool, self.client.take()) {
            pool.give_back(client);
        }
    }
}
