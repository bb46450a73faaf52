//! Object stores and working storage: where inputs come from (`s3://`,
//! `file://`, plain paths) and how they are staged into a job folder without
//! letting an object key escape it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An object-store failure.
#[derive(Debug, thiserror::Error)]
#[error("{uri}: {detail}")]
pub struct StoreError {
    /// The object or location.
    pub uri: String,
    /// What went wrong.
    pub detail: String,
    /// Whether trying again may help (network, throttling, server errors).
    pub retryable: bool,
}

/// Where an input lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A file on this machine.
    Local(PathBuf),
    /// An object in S3 (or an S3-compatible endpoint).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// `s3://bucket/key` as given.
        uri: String,
    },
}

impl Location {
    /// Parses `s3://bucket/key`, `file:///path` or a plain path.
    pub fn parse(uri: &str) -> Result<Location, StoreError> {
        let bad = |detail: &str| StoreError {
            uri: uri.to_string(),
            detail: detail.to_string(),
            retryable: false,
        };
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest
                .split_once('/')
                .ok_or_else(|| bad("expected s3://bucket/key"))?;
            if bucket.is_empty() || key.is_empty() {
                return Err(bad("expected s3://bucket/key"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
                uri: uri.to_string(),
            });
        }
        if uri.starts_with("file://") {
            let url = url::Url::parse(uri).map_err(|e| bad(&e.to_string()))?;
            let path = url
                .to_file_path()
                .map_err(|_| bad("not a local file URL"))?;
            return Ok(Location::Local(path));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(bad(&format!(
                "unsupported scheme {scheme}:// (use a path, file:// or s3://)"
            )));
        }
        Ok(Location::Local(PathBuf::from(uri)))
    }
}

/// An S3 client from the standard environment (`AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`…, `AWS_ENDPOINT_URL[_S3]` for emulators).
pub fn s3_store(bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry_config());
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok();
    if let Some(ep) = endpoint {
        builder = builder
            .with_endpoint(&ep)
            .with_allow_http(ep.starts_with("http://"));
    }
    builder
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| classify(&format!("s3://{bucket}"), e))
}

/// Retries of throttled (503 SlowDown, 429) and failed (5xx, connection)
/// requests: exponential backoff with jitter from 200 ms to 10 s, at most
/// `FERRY_S3_RETRIES` times (default 6: about 20 s of backoff) and never past
/// two minutes, then the error is reported as retryable — the job's own retry
/// (Step Functions) takes over from there.
fn retry_config() -> object_store::RetryConfig {
    let max_retries = std::env::var("FERRY_S3_RETRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(200),
            max_backoff: std::time::Duration::from_secs(10),
            base: 2.0,
        },
        max_retries,
        retry_timeout: std::time::Duration::from_secs(120),
    }
}

fn classify(uri: &str, e: object_store::Error) -> StoreError {
    let retryable = !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::UnknownConfigurationKey { .. }
    );
    StoreError {
        uri: uri.to_string(),
        detail: e.to_string(),
        retryable,
    }
}

/// A file name for an object key that cannot leave its folder: the key's
/// last segment, with `..`, `.`, empty names, NUL and control characters
/// refused, and names over 200 bytes shortened (keeping a hash, so two long
/// keys stay distinct).
pub fn safe_file_name(key: &str) -> Result<String, StoreError> {
    let bad = |detail: &str| StoreError {
        uri: key.to_string(),
        detail: detail.to_string(),
        retryable: false,
    };
    if key.contains('\0') {
        return Err(bad("object keys with NUL bytes are refused"));
    }
    let name = key.rsplit(['/', '\\']).next().unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return Err(bad("the key does not end in a file name"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("object keys with control characters are refused"));
    }
    if name.len() <= 200 {
        return Ok(name.to_string());
    }
    let hash = twox_hash::xxhash3_64::Hasher::oneshot(key.as_bytes());
    let ext: String = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.len() <= 20)
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let mut cut = 150;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    Ok(format!("{}-{hash:016x}{ext}", &name[..cut]))
}

/// What was staged.
#[derive(Debug, Clone)]
pub struct Staged {
    /// Where the bytes are now.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// The object's ETag, when it came from S3.
    pub etag: Option<String>,
    /// The object's version, when versioned.
    pub version: Option<String>,
}

/// What the event said about the object; the downloader refuses an object
/// that no longer matches (it was overwritten after the event was sent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Read this version (versioned buckets; S3's `"null"` is ignored).
    pub version: Option<String>,
    /// The object must still have this ETag.
    pub etag: Option<String>,
    /// The object must have this size.
    pub size: Option<u64>,
}

/// An object key as object_store takes it; a key it refuses names the
/// object's URI.
fn object_path(key: &str, uri: &str) -> Result<ObjectPath, StoreError> {
    ObjectPath::parse(key).map_err(|e| StoreError {
        uri: uri.to_string(),
        detail: e.to_string(),
        retryable: false,
    })
}

/// Makes an input available as a local file: local paths are used in place;
/// S3 objects are streamed into `dir` (created if needed) under a name that
/// cannot leave it, then checked against the size the store reported and
/// against what `expect` says.
pub async fn stage(location: &Location, dir: &Path, expect: &Expect) -> Result<Staged, StoreError> {
    match location {
        Location::Local(path) => {
            let meta = std::fs::metadata(path).map_err(|e| StoreError {
                uri: path.display().to_string(),
                detail: e.to_string(),
                retryable: false,
            })?;
            if !meta.is_file() {
                return Err(StoreError {
                    uri: path.display().to_string(),
                    detail: "not a file".into(),
                    retryable: false,
                });
            }
            Ok(Staged {
                path: path.clone(),
                size: meta.len(),
                etag: None,
                version: None,
            })
        }
        Location::S3 { bucket, key, uri } => {
            let store = s3_store(bucket)?;
            let object = object_path(key, uri)?;
            let name = safe_file_name(key)?;
            let io = |e: std::io::Error| StoreError {
                uri: uri.clone(),
                detail: format!("writing to {}: {e}", dir.display()),
                retryable: false,
            };
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
            let dest = dir.join(&name);
            let options = GetOptions {
                version: expect
                    .version
                    .clone()
                    .filter(|v| !v.is_empty() && v != "null"),
                if_match: expect.etag.as_ref().map(|e| quoted_etag(e)),
                ..GetOptions::default()
            };
            let result = store.get_opts(&object, options).await.map_err(|e| match e {
                object_store::Error::Precondition { .. } => StoreError {
                    uri: uri.clone(),
                    detail: format!(
                        "the object changed after the event (its ETag is no longer {}); the newer object has its own event",
                        expect.etag.as_deref().unwrap_or("")
                    ),
                    retryable: false,
                },
                e => classify(uri, e),
            })?;
            let meta = result.meta.clone();
            if let Some(want) = expect.size
                && want != meta.size
            {
                return Err(StoreError {
                    uri: uri.clone(),
                    detail: format!(
                        "the event said {want} bytes but the object has {}",
                        meta.size
                    ),
                    retryable: false,
                });
            }
            let tmp = dir.join(format!(".{name}.partial"));
            let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
            let mut stream = result.into_stream();
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| classify(uri, e))?;
                size += chunk.len() as u64;
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            file.sync_all().await.map_err(io)?;
            drop(file);
            if size != meta.size {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(StoreError {
                    uri: uri.clone(),
                    detail: format!("downloaded {size} bytes but the object has {}", meta.size),
                    retryable: true,
                });
            }
            tokio::fs::rename(&tmp, &dest).await.map_err(io)?;
            Ok(Staged {
                path: dest,
                size,
                etag: meta.e_tag,
                version: meta.version,
            })
        }
    }
}

fn quoted_etag(e: &str) -> String {
    if e.starts_with('"') {
        e.to_string()
    } else {
        format!("\"{e}\"")
    }
}

/// Where an upload went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Uploaded {
    /// `s3://bucket/key` or the local path.
    pub uri: String,
    /// Bytes uploaded.
    pub bytes: u64,
    /// The stored object's ETag (S3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Part size of multipart uploads: S3 needs ≥ 5 MiB; 16 MiB keeps a 100 GB
/// file under S3's 10 000-part limit.
const PART_BYTES: usize = 16 << 20;

/// Copies a local file to `dest`: `s3://bucket/key` as a multipart upload
/// (parts sent 4 at a time, the upload aborted on failure so no part is
/// left behind), or a local path / `file://` URL (written beside it and
/// renamed into place).
pub async fn upload(file: &Path, dest: &str) -> Result<Uploaded, StoreError> {
    let location = Location::parse(dest)?;
    let ioerr = |e: std::io::Error| StoreError {
        uri: dest.to_string(),
        detail: format!("reading {}: {e}", file.display()),
        retryable: false,
    };
    match location {
        Location::Local(path) => {
            let werr = |e: std::io::Error| StoreError {
                uri: dest.to_string(),
                detail: e.to_string(),
                retryable: false,
            };
            let (file, dest) = (file.to_path_buf(), path.clone());
            let bytes = tokio::task::spawn_blocking(move || place_file(&file, &dest))
                .await
                .map_err(|e| werr(std::io::Error::other(e)))?
                .map_err(werr)?;
            Ok(Uploaded {
                uri: path.display().to_string(),
                bytes,
                etag: None,
            })
        }
        Location::S3 { bucket, key, uri } => {
            // A file smaller than a part goes in one request, not three.
            let size = tokio::fs::metadata(file).await.map_err(ioerr)?.len();
            if size < PART_BYTES as u64 {
                let bytes = tokio::fs::read(file).await.map_err(ioerr)?;
                return put(bytes, dest).await;
            }
            let store = s3_store(&bucket)?;
            let object = object_path(&key, &uri)?;
            let upload = store
                .put_multipart(&object)
                .await
                .map_err(|e| classify(&uri, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut input = tokio::fs::File::open(file).await.map_err(ioerr)?;
            let mut bytes = 0u64;
            let result = async {
                loop {
                    // A part's buffer no larger than what is left of the file.
                    let left = size.saturating_sub(bytes).max(1);
                    let mut buf = vec![0u8; PART_BYTES.min(left as usize)];
                    let mut filled = 0;
                    while filled < buf.len() {
                        let n = input.read(&mut buf[filled..]).await.map_err(ioerr)?;
                        if n == 0 {
                            break;
                        }
                        filled += n;
                    }
                    if filled == 0 {
                        break;
                    }
                    buf.truncate(filled);
                    bytes += filled as u64;
                    writer
                        .wait_for_capacity(4)
                        .await
                        .map_err(|e| classify(&uri, e))?;
                    writer.put(bytes::Bytes::from(buf));
                }
                Ok::<(), StoreError>(())
            }
            .await;
            if let Err(e) = result {
                let _ = writer.abort().await;
                return Err(e);
            }
            let put = writer.finish().await.map_err(|e| classify(&uri, e))?;
            Ok(Uploaded {
                uri,
                bytes,
                etag: put.e_tag,
            })
        }
    }
}

/// Puts a local file at `dest` (a local path) under its final name at once:
/// a hard link when both are on one file system (no bytes copied and no new
/// file: the source is a finished artifact that is replaced, never
/// rewritten), else a copy beside it renamed into place. Returns its size.
fn place_file(file: &Path, dest: &Path) -> std::io::Result<u64> {
    write_into_place(dest, |tmp| match std::fs::hard_link(file, tmp) {
        Ok(()) => Ok(std::fs::metadata(tmp)?.len()),
        Err(_) => std::fs::copy(file, tmp),
    })
}

/// Creates `dest` whole or not at all: `fill` writes `<dest>.partial` (gone
/// first, should a crash have left one), which is then renamed over `dest`.
/// Public so that every file a reader may look at while it is written (a
/// staged input, a job's `split.json`, a part's `transform.json`) is made
/// the same way.
pub fn write_into_place(
    dest: &Path,
    fill: impl FnOnce(&Path) -> std::io::Result<u64>,
) -> std::io::Result<u64> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = dest.with_extension("partial");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let bytes = fill(&tmp)?;
    std::fs::rename(&tmp, dest)?;
    Ok(bytes)
}

/// Writes `bytes` to `dest`, as [`upload`] does a file: a small document
/// built in memory (a job's `manifest.json`) needs no file of its own on
/// working storage first.
pub async fn put(bytes: Vec<u8>, dest: &str) -> Result<Uploaded, StoreError> {
    let werr = |e: std::io::Error| StoreError {
        uri: dest.to_string(),
        detail: e.to_string(),
        retryable: false,
    };
    match Location::parse(dest)? {
        Location::Local(path) => {
            let target = path.clone();
            let n = tokio::task::spawn_blocking(move || {
                write_into_place(&target, |tmp| {
                    std::fs::write(tmp, &bytes)?;
                    Ok(bytes.len() as u64)
                })
            })
            .await
            .map_err(|e| werr(std::io::Error::other(e)))?
            .map_err(werr)?;
            Ok(Uploaded {
                uri: path.display().to_string(),
                bytes: n,
                etag: None,
            })
        }
        Location::S3 { bucket, key, uri } => {
            let store = s3_store(&bucket)?;
            let object = object_path(&key, &uri)?;
            let n = bytes.len() as u64;
            let put = store
                .put(&object, bytes.into())
                .await
                .map_err(|e| classify(&uri, e))?;
            Ok(Uploaded {
                uri,
                bytes: n,
                etag: put.e_tag,
            })
        }
    }
}

/// An object found by [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The object's ETag, when it came from S3: the job's identity when there is no version.
    pub etag: Option<String>,
    /// Version id.
    pub version: Option<String>,
}

/// Reads an object's metadata (size, ETag, version) without its bytes.
pub async fn head(bucket: &str, key: &str) -> Result<Listed, StoreError> {
    let store = s3_store(bucket)?;
    let uri = format!("s3://{bucket}/{key}");
    let path = object_path(key, &uri)?;
    let meta = store.head(&path).await.map_err(|e| classify(&uri, e))?;
    Ok(Listed {
        key: key.to_string(),
        size: meta.size,
        etag: meta.e_tag,
        version: meta.version,
    })
}

/// Lists the objects under `prefix` in `bucket`.
pub async fn list(bucket: &str, prefix: &str) -> Result<Vec<Listed>, StoreError> {
    let store = s3_store(bucket)?;
    let uri = format!("s3://{bucket}/{prefix}");
    let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.trim_end_matches('/')));
    let mut stream = store.list(prefix.as_ref());
    let mut out = Vec::new();
    while let Some(meta) = stream.next().await {
        let meta = meta.map_err(|e| classify(&uri, e))?;
        out.push(Listed {
            key: meta.location.to_string(),
            size: meta.size,
            etag: meta.e_tag,
            version: meta.version,
        });
    }
    Ok(out)
}

/// An input's checksum, possibly still being computed.
///
/// Hashing a staged file reads all of it before the first
/// row could move; a load needs the checksum only to record it in the ledger
/// at commit, and earlier only when the ledger already knows the input. So
/// the hash runs on a blocking thread beside the load, and whoever needs it
/// waits then. Cheap to clone; every clone sees the one result.
///
/// When the last clone is dropped unawaited (the load failed first), the
/// hashing stops at its next read: the process would otherwise wait for it at
/// exit, since the runtime finishes its blocking tasks before it shuts down:
/// a refused load of a large file waited seconds for a hash nobody needed
/// (`benchmarks/results/tuning.md`).
#[derive(Clone)]
pub struct Checksum {
    value: futures::future::Shared<futures::future::BoxFuture<'static, Result<String, Arc<str>>>>,
    /// Held by every clone; the hashing thread watches it through a `Weak`.
    _wanted: Arc<()>,
}

impl Checksum {
    /// Starts hashing `path` on the runtime's blocking pool (call it inside a
    /// Tokio runtime); `label` names the input in an error.
    pub fn of_file(path: PathBuf, label: String) -> Checksum {
        use futures::FutureExt;
        let wanted = Arc::new(());
        let watch = Arc::downgrade(&wanted);
        let task = tokio::task::spawn_blocking(move || {
            hash_file(&path, &|| watch.strong_count() > 0)
                .map_err(|e| Arc::from(format!("reading {label}: {e}")))
        });
        Checksum {
            value: async move { task.await.map_err(|e| Arc::from(e.to_string()))? }
                .boxed()
                .shared(),
            _wanted: wanted,
        }
    }

    /// A checksum already known (read from a job's records).
    pub fn known(value: impl Into<String>) -> Checksum {
        use futures::FutureExt;
        let value = value.into();
        Checksum {
            value: async move { Ok(value) }.boxed().shared(),
            _wanted: Arc::new(()),
        }
    }

    /// Waits for the checksum.
    pub async fn get(&self) -> std::io::Result<String> {
        self.value
            .clone()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Blocks for the checksum, for threads outside the async runtime.
    pub fn wait(&self) -> std::io::Result<String> {
        futures::executor::block_on(self.get())
    }
}

impl std::fmt::Debug for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value.peek() {
            Some(Ok(v)) => write!(f, "Checksum({v})"),
            Some(Err(e)) => write!(f, "Checksum(failed: {e})"),
            None => f.write_str("Checksum(pending)"),
        }
    }
}

/// Streams a file through xxh3-128, the checksum the ledger records.
pub fn checksum_file(path: &Path) -> std::io::Result<String> {
    hash_file(path, &|| true)
}

/// [`checksum_file`], giving up between reads once `wanted` says so.
fn hash_file(path: &Path, wanted: &dyn Fn() -> bool) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = twox_hash::xxhash3_128::Hasher::new();
    let len = file.metadata().map_or(1 << 20, |m| m.len());
    let mut buf = vec![0u8; (len as usize).clamp(8 << 10, 1 << 20)];
    loop {
        if !wanted() {
            return Err(std::io::Error::other("stopped: nobody waits for it"));
        }
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.write(&buf[..n]);
    }
    Ok(checksum_text(hasher.finish_128()))
}

/// How a checksum is written wherever ferry records one (the ledger, the
/// manifest): `xxh3-128:` and 32 hex digits.
pub fn checksum_text(digest: u128) -> String {
    format!("xxh3-128:{digest:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        assert_eq!(safe_file_name("in/2024/data.csv").unwrap(), "data.csv");
        assert_eq!(safe_file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(safe_file_name("..\\..\\x.csv").unwrap(), "x.csv");
        for bad in ["in/..", "in/.", "in/", "", "a\0b", "x/\u{7}bell"] {
            assert!(safe_file_name(bad).is_err(), "{bad:?}");
        }
        let long = format!("p/{}.csv", "é".repeat(200));
        let a = safe_file_name(&long).unwrap();
        assert!(a.len() < 200 && a.ends_with(".csv"), "{a}");
        let b = safe_file_name(&format!("q/{}.csv", "é".repeat(200))).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn parses_locations() {
        assert!(
            matches!(Location::parse("s3://b/k/x.csv").unwrap(), Location::S3 { ref key, .. } if key == "k/x.csv")
        );
        assert!(
            matches!(Location::parse("file:///tmp/x.csv").unwrap(), Location::Local(ref p) if p == Path::new("/tmp/x.csv"))
        );
        assert!(matches!(
            Location::parse("data/x.csv").unwrap(),
            Location::Local(_)
        ));
        assert!(Location::parse("s3://bucket").is_err());
        assert!(Location::parse("gs://b/k").is_err());
    }

    /// A checksum nobody waits for any more stops reading: the writer of a
    /// FIFO the hash reads from sees the pipe closed. (Without the stop the
    /// hash would read for as long as bytes come, and a failed load's process
    /// would wait for it at exit.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_checksum_stops_reading() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("input.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let checksum = Checksum::of_file(fifo.clone(), "endless.csv".into());
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            // Opening blocks until the hash opens its end.
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let chunk = vec![b'x'; 64 << 10];
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let mut sent = 0usize;
            while std::time::Instant::now() < deadline {
                match f.write_all(&chunk) {
                    Ok(()) => {
                        sent += chunk.len();
                        if sent == 4 * chunk.len() {
                            tx.send(()).unwrap(); // the hash is reading
                        }
                    }
                    Err(e) => return Some(e.kind()),
                }
            }
            None
        });
        rx.recv().unwrap();
        drop(checksum);
        let ended = tokio::task::spawn_blocking(move || writer.join().unwrap())
            .await
            .unwrap();
        assert_eq!(ended, Some(std::io::ErrorKind::BrokenPipe));
    }

    /// Clones share one hash, which a dropped clone does not stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checksum_finishes_while_one_clone_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.csv");
        std::fs::write(&f, vec![b'y'; 3 << 20]).unwrap();
        let kept = Checksum::of_file(f.clone(), "a.csv".into());
        drop(kept.clone());
        assert_eq!(kept.get().await.unwrap(), checksum_file(&f).unwrap());
    }

    #[tokio::test]
    async fn stages_local_files_in_place_and_checksums() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a.csv");
        std::fs::write(&f, b"x\n1\n").unwrap();
        let s = stage(
            &Location::parse(f.to_str().unwrap()).unwrap(),
            tmp.path(),
            &Expect::default(),
        )
        .await
        .unwrap();
        assert_eq!((s.path, s.size), (f.clone(), 4));
        let c = checksum_file(&f).unwrap();
        assert!(c.starts_with("xxh3-128:") && c.len() == 41);
        assert!(
            stage(
                &Location::Local(tmp.path().join("missing")),
                tmp.path(),
                &Expect::default()
            )
            .await
            .is_err()
        );
    }
}
