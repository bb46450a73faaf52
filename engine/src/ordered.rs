//! The ordered parallel map that the CSV reader, the loader's encoder and
//! the converter share. Work items run on the rayon pool as soon as they are
//! submitted; their results come out in submission order (rows keep their
//! input order, so line numbers, reject files and artifacts are
//! deterministic); at most `depth` items are in flight, so a slow consumer
//! holds the producer back instead of letting memory grow.
//!
//! Each item is a oneshot channel queued in a bounded channel: the queue
//! keeps the order, the oneshot carries the result whenever its task ends.

use tokio::sync::{mpsc, oneshot};

/// The cores this process may use, read once: the standard library reads
/// the cgroup quota files on every call (four system calls), and a run of
/// many small jobs asked once per job.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// A queue deep enough to keep every pool thread busy while the consumer
/// takes the head: two items per thread.
pub fn depth() -> usize {
    rayon::current_num_threads().max(1) * 2
}

/// An ordered parallel map with at most `depth` items in flight.
pub fn channel<T: Send + 'static>(depth: usize) -> (Submit<T>, Results<T>) {
    let (tx, rx) = mpsc::channel(depth.max(1));
    (Submit { tx }, Results { rx })
}

/// The producing side.
pub struct Submit<T> {
    tx: mpsc::Sender<oneshot::Receiver<T>>,
}

impl<T: Send + 'static> Submit<T> {
    /// Runs `work` on the rayon pool; its result takes the next place in
    /// order. Waits while `depth` items are in flight. False once the
    /// consumer is gone (the producer should stop).
    pub async fn spawn(&self, work: impl FnOnce() -> T + Send + 'static) -> bool {
        let (otx, orx) = oneshot::channel();
        if self.tx.send(orx).await.is_err() {
            return false;
        }
        rayon::spawn(move || {
            let _ = otx.send(work());
        });
        true
    }

    /// [`Submit::spawn`] from a blocking thread (a reader's own thread).
    pub fn blocking_spawn(&self, work: impl FnOnce() -> T + Send + 'static) -> bool {
        let (otx, orx) = oneshot::channel();
        if self.tx.blocking_send(orx).is_err() {
            return false;
        }
        rayon::spawn(move || {
            let _ = otx.send(work());
        });
        true
    }

    /// A result known now (typically the error that ends the stream) takes
    /// the next place in order, after everything submitted before it.
    pub async fn put(&self, value: T) -> bool {
        let (otx, orx) = oneshot::channel();
        let _ = otx.send(value);
        self.tx.send(orx).await.is_ok()
    }

    /// [`Submit::put`] from a blocking thread.
    pub fn blocking_put(&self, value: T) -> bool {
        let (otx, orx) = oneshot::channel();
        let _ = otx.send(value);
        self.tx.blocking_send(orx).is_ok()
    }
}

/// A work item whose task ended without a result: it panicked (rayon
/// aborts on a panic by default, so this is a bug, reported as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost;

/// The consuming side.
pub struct Results<T> {
    rx: mpsc::Receiver<oneshot::Receiver<T>>,
}

impl<T> Results<T> {
    /// The next result in submission order; `None` once the producer is
    /// done and every result was taken.
    pub async fn next(&mut self) -> Option<Result<T, Lost>> {
        let pending = self.rx.recv().await?;
        Some(pending.await.map_err(|_| Lost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items that finish in reverse order still come out in submission
    /// order, and a `put` keeps its place among them.
    #[tokio::test]
    async fn results_keep_submission_order() {
        let (submit, mut results) = channel::<u64>(4);
        let producer = tokio::spawn(async move {
            for i in 0..20u64 {
                let ok = submit
                    .spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(20 - i));
                        i
                    })
                    .await;
                assert!(ok);
            }
            assert!(submit.put(99).await);
        });
        let mut got = Vec::new();
        while let Some(r) = results.next().await {
            got.push(r.unwrap());
        }
        producer.await.unwrap();
        let want: Vec<u64> = (0..20).chain([99]).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_gone_consumer_stops_the_producer() {
        let (submit, results) = channel::<u8>(1);
        drop(results);
        assert!(!submit.spawn(|| 1).await);
        assert!(!submit.put(2).await);
    }
}
