//! `ferry watch`: the event-driven mode without Step Functions. New objects
//! come from a folder (file-system notifications), an S3 prefix (listing) or
//! an SQS queue of EventBridge S3 events; each runs as a job, with at most
//! `concurrency` jobs at once. Duplicates (the same object version seen
//! again) run nothing: the job store decides.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_connectors::queue::{Message, Queue};
use ferry_connectors::store;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore, mpsc};

use super::Runtime;
use super::event::Trigger;
use crate::error::FerryError;

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchSource {
    /// A local folder (recursively; hidden files and `*.partial` are ignored).
    Dir(PathBuf),
    /// An S3 prefix, listed every poll interval.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
    /// An SQS queue URL carrying S3 Object Created events.
    Sqs(String),
}

impl WatchSource {
    /// `s3://bucket[/prefix]`, an `http(s)://…` SQS queue URL, or a folder.
    pub fn parse(s: &str) -> Result<WatchSource, FerryError> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(FerryError::Usage(format!(
                    "{s}: expected s3://bucket/prefix"
                )));
            }
            return Ok(WatchSource::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if s.starts_with("https://") || s.starts_with("http://") {
            return Ok(WatchSource::Sqs(s.to_string()));
        }
        let path = PathBuf::from(s.strip_prefix("file://").unwrap_or(s));
        if !path.is_dir() {
            return Err(FerryError::Usage(format!(
                "{s}: not a folder, s3://bucket/prefix or SQS queue URL"
            )));
        }
        Ok(WatchSource::Dir(path))
    }
}

/// How to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Jobs at once.
    pub concurrency: usize,
    /// Exit after this long with nothing running and nothing new (for
    /// scripts and tests; `None` runs until interrupted).
    pub idle_exit: Option<Duration>,
    /// S3 listing interval; SQS long-poll wait.
    pub poll: Duration,
    /// Run the jobs of what is there now (the folder's files, one S3
    /// listing, the SQS queue until a receive comes back empty), then exit:
    /// a backlog loaded by a script, with no idle wait at the end.
    pub once: bool,
}

/// What a watch session did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchSummary {
    /// Jobs that ran and succeeded.
    pub succeeded: u64,
    /// Jobs that ran and failed.
    pub failed: u64,
    /// Events for objects whose job existed (nothing ran).
    pub duplicates: u64,
}

#[derive(Default)]
struct Counters {
    succeeded: AtomicU64,
    failed: AtomicU64,
    duplicates: AtomicU64,
    in_flight: AtomicUsize,
}

/// One thing to do: a trigger, and the queue message to settle after it.
struct Work {
    trigger: Trigger,
    message: Option<(Queue, Message)>,
}

/// Watches `source` and runs a job per new object until interrupted (or
/// idle for `idle_exit`).
pub async fn watch(
    rt: Arc<Runtime>,
    source: WatchSource,
    opts: WatchOptions,
) -> Result<WatchSummary, FerryError> {
    let concurrency = opts.concurrency.max(1);
    let (tx, mut rx) = mpsc::channel::<Work>(concurrency);
    let last_activity = Arc::new(std::sync::Mutex::new(Instant::now()));
    let touch = {
        let last = last_activity.clone();
        move || *last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now()
    };
    let producer = match source.clone() {
        WatchSource::Dir(dir) => {
            tokio::spawn(watch_dir(dir, rt.settings.work_dir.clone(), opts.once, tx))
        }
        WatchSource::S3 { bucket, prefix } => {
            tokio::spawn(poll_s3(bucket, prefix, opts.poll, opts.once, tx))
        }
        WatchSource::Sqs(url) => tokio::spawn(poll_sqs(url, opts.poll, opts.once, tx)),
    };
    tracing::info!(source = ?source, concurrency, "watching");
    let counters = Arc::new(Counters::default());
    let permits = Arc::new(Semaphore::new(concurrency));
    // A job's end is a moment to stop (the last one of a backlog), as is
    // each tick (idle long enough).
    let job_ended = Arc::new(Notify::new());
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            work = rx.recv() => {
                let Some(work) = work else { break };
                touch();
                let permit = permits.clone().acquire_owned().await.map_err(|e| FerryError::Internal(e.to_string()))?;
                counters.in_flight.fetch_add(1, Ordering::SeqCst);
                let rt = rt.clone();
                let counters = counters.clone();
                let touch = touch.clone();
                let job_ended = job_ended.clone();
                tokio::spawn(async move {
                    run_one(&rt, work, &counters).await;
                    counters.in_flight.fetch_sub(1, Ordering::SeqCst);
                    touch();
                    drop(permit);
                    job_ended.notify_one();
                });
            }
            _ = job_ended.notified() => {
                if drained(&producer, &rx, &counters) {
                    break;
                }
            }
            _ = tick.tick() => {
                if let Some(idle) = opts.idle_exit {
                    let quiet = last_activity.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
                    if counters.in_flight.load(Ordering::SeqCst) == 0 && quiet >= idle {
                        tracing::info!(idle_seconds = idle.as_secs_f64(), "idle: stopping");
                        break;
                    }
                }
                if drained(&producer, &rx, &counters) {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted: finishing running jobs");
                break;
            }
        }
    }
    producer.abort();
    // Let running jobs finish (their messages are settled by them).
    let _all = permits
        .acquire_many(concurrency as u32)
        .await
        .map_err(|e| FerryError::Internal(e.to_string()))?;
    if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::ZERO, producer).await {
        return Err(e);
    }
    Ok(WatchSummary {
        succeeded: counters.succeeded.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        duplicates: counters.duplicates.load(Ordering::Relaxed),
    })
}

/// Nothing more will come and nothing runs: the producer ended (a `--once`
/// listing, a closed watcher), its queue is empty and no job is in flight.
fn drained<T>(
    producer: &tokio::task::JoinHandle<T>,
    rx: &mpsc::Receiver<Work>,
    counters: &Counters,
) -> bool {
    producer.is_finished() && rx.is_empty() && counters.in_flight.load(Ordering::SeqCst) == 0
}

/// Runs one job and settles its queue message: deleted once the job ended
/// (succeeded, failed for good, or a duplicate); made visible again after a
/// transient failure so the queue redelivers it.
async fn run_one(rt: &Runtime, work: Work, counters: &Counters) {
    // Keep the message invisible while the job runs.
    let keepalive = work.message.clone().map(|(q, m)| {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if let Err(e) = q.release(&m, Duration::from_secs(180)).await {
                    tracing::warn!(error = %e, "could not extend the message's visibility");
                }
            }
        })
    });
    let result = rt.run(&work.trigger).await;
    if let Some(k) = keepalive {
        k.abort();
    }
    let settle_delete = match &result {
        Ok(a) if !a.run => {
            counters.duplicates.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(_) => {
            counters.succeeded.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(input = %work.trigger.input.uri, error = %e, retryable = e.retryable(), "job failed");
            !e.retryable()
        }
    };
    if let Some((q, m)) = work.message {
        let settled = if settle_delete {
            q.delete(&m).await
        } else {
            q.release(&m, Duration::from_secs(10)).await
        };
        if let Err(e) = settled {
            tracing::warn!(message = %m.id, error = %e, "could not settle the queue message");
        }
    }
}

/// Hidden files and folders (below the watched folder), partial uploads and
/// ferry's own working storage are not inputs.
fn ignored(path: &Path, watched: &Path, work_dir: &Path) -> bool {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (path_abs, watched_abs) = (abs(path), abs(watched));
    let below = path_abs.strip_prefix(&watched_abs).unwrap_or(&path_abs);
    let hidden = below
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    hidden
        || name.ends_with(".partial")
        || name.ends_with(".tmp")
        || std::path::absolute(path)
            .ok()
            .zip(std::path::absolute(work_dir).ok())
            .is_some_and(|(p, w)| p.starts_with(w))
}

async fn watch_dir(
    dir: PathBuf,
    work_dir: PathBuf,
    once: bool,
    tx: mpsc::Sender<Work>,
) -> Result<(), FerryError> {
    use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
    use notify::{EventKind, RecursiveMode, Watcher};
    if once {
        return send_existing(&dir, &work_dir, &tx).await;
    }
    let (ntx, mut nrx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            match ev.kind {
                // Written and closed.
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    for p in ev.paths {
                        let _ = ntx.send(p);
                    }
                }
                // Renamed or moved in: the destination is the last path.
                EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
                    if let Some(p) = ev.paths.last() {
                        let _ = ntx.send(p.clone());
                    }
                }
                _ => {}
            }
        }
    })
    .map_err(|e| FerryError::Usage(format!("watching {}: {e}", dir.display())))?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| FerryError::Usage(format!("watching {}: {e}", dir.display())))?;
    // Files already there count as new (their jobs, if any, make them no-ops).
    send_existing(&dir, &work_dir, &tx).await?;
    while let Some(path) = nrx.recv().await {
        if ignored(&path, &dir, &work_dir) || !path.is_file() {
            continue;
        }
        match Trigger::from_path(&path) {
            Ok(trigger) => {
                if !send(&tx, trigger).await {
                    break;
                }
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipped"),
        }
    }
    drop(watcher);
    Ok(())
}

/// Hands `trigger` to the job loop; false once the loop has stopped.
async fn send(tx: &mpsc::Sender<Work>, trigger: Trigger) -> bool {
    tx.send(Work {
        trigger,
        message: None,
    })
    .await
    .is_ok()
}

/// Sends a job for each file under `dir` now (in name order).
async fn send_existing(
    dir: &Path,
    work_dir: &Path,
    tx: &mpsc::Sender<Work>,
) -> Result<(), FerryError> {
    for path in super::files_under(dir)? {
        if !ignored(&path, dir, work_dir) {
            let trigger = Trigger::from_path(&path)?;
            if !send(tx, trigger).await {
                return Ok(());
            }
        }
    }
    Ok(())
}

async fn poll_s3(
    bucket: String,
    prefix: String,
    every: Duration,
    once: bool,
    tx: mpsc::Sender<Work>,
) -> Result<(), FerryError> {
    let mut seen: HashSet<(String, Option<String>)> = HashSet::new();
    loop {
        match store::list(&bucket, &prefix).await {
            Ok(objects) => {
                for o in objects {
                    if o.key.ends_with('/') || !seen.insert((o.key.clone(), o.etag.clone())) {
                        continue;
                    }
                    let trigger = Trigger::from_listed(&bucket, &o);
                    if !send(&tx, trigger).await {
                        return Ok(());
                    }
                }
                if once {
                    return Ok(());
                }
            }
            Err(e) if e.retryable => tracing::warn!(error = %e, "listing failed; trying again"),
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(every).await;
    }
}

async fn poll_sqs(
    url: String,
    wait: Duration,
    once: bool,
    tx: mpsc::Sender<Work>,
) -> Result<(), FerryError> {
    let queue = Queue::new(&url).await;
    let mut backoff = Duration::from_millis(500);
    loop {
        let capacity = tx.capacity().clamp(1, 10) as i32;
        let messages = match queue
            .receive(
                capacity,
                wait.min(Duration::from_secs(20)),
                Duration::from_secs(180),
            )
            .await
        {
            Ok(m) => {
                backoff = Duration::from_millis(500);
                m
            }
            Err(e) if e.retryable => {
                tracing::warn!(error = %e, "receiving from SQS failed; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if once && messages.is_empty() {
            return Ok(());
        }
        for m in messages {
            match Trigger::from_event(&m.body) {
                Ok(trigger) => {
                    let work = Work {
                        trigger,
                        message: Some((queue.clone(), m)),
                    };
                    if tx.send(work).await.is_err() {
                        return Ok(());
                    }
                }
                Err(e) => {
                    // Left in the queue: its redrive policy moves it to the
                    // dead-letter queue after maxReceiveCount deliveries.
                    tracing::error!(message = %m.id, receive_count = m.receive_count, error = %e, "not an S3 event; left for the dead-letter queue");
                }
            }
        }
    }
}
