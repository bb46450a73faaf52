//! Working storage (EFS in AWS, a directory locally), laid out as the
//! reference architecture draws it:
//!
//! ```text
//! <work>/<job_id>/<ddmmyyyyhhmmss>/
//!     input/<object name>      the staged input
//!     artifacts/…              .sql parts + load.sql, .pgcopy parts (Loader)
//!     output/…                 the converted file and its reports (Converter)
//!     transform.json           what the transform step wrote, for sql-processor
//!     file.zip                 what efs-s3-uploader uploads (its manifest.json inside)
//! <work>/specs/<hash>/         a routed dataset spec as jobs ran it, shared by
//!                              every job pinned to the same files (see [`SpecPin`])
//! ```
//!
//! Every path under a job folder is built here from parts that are checked
//! (a UUID, a 14-digit stamp, a file name from [`crate::store::safe_file_name`]),
//! so nothing an object key says can place a file outside its job folder.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// A dataset spec pinned for the jobs that run with it:
/// `<work>/specs/<hash>/`, named by the hash of its files, written once and
/// read by every later step of every job routed to the same spec. A copy
/// per job would say the same thing at the cost of a folder and two files
/// created and removed per job, which on small inputs is a large share of
/// the job (file creation is the dearest file-system call). The folders are
/// a few KB each, one per version of a spec, and are kept: an unfinished or
/// failed job may still need its version, and `ferry jobs gc` leaves
/// everything that is not a job folder alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecPin {
    root: PathBuf,
}

impl SpecPin {
    /// `<work>/specs/<hash>`: `hash` must be 32 lowercase hex digits.
    pub fn new(work: &Path, hash: &str) -> Result<SpecPin, StoreError> {
        if hash.len() != 32 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad(hash, "a spec pin is named by 32 hex digits"));
        }
        let work = std::path::absolute(work)
            .map_err(|e| bad(&work.display().to_string(), &e.to_string()))?;
        Ok(SpecPin {
            root: work.join("specs").join(hash),
        })
    }

    /// Re-opens a pin recorded in a job: it must be `<work>/specs/<hash>`
    /// under `work` (a tampered job record cannot point elsewhere).
    pub fn existing(work: &Path, recorded: &str) -> Result<SpecPin, StoreError> {
        let path = Path::new(recorded);
        let hash = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
        let pin = SpecPin::new(work, hash)?;
        if std::path::absolute(path).ok().as_deref() != Some(pin.root.as_path()) {
            return Err(bad(
                recorded,
                &format!("not a spec pin under {}", work.join("specs").display()),
            ));
        }
        Ok(pin)
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes the pin's files unless it exists: into a fresh folder beside
    /// it, renamed into place, so a reader never sees half a pin and two
    /// workers pinning the same spec at once both end with the same one.
    pub fn write(&self, files: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
        if self.root.join("dataset.toml").is_file() {
            return Ok(());
        }
        let parent = self.root.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let tmp = parent.join(format!(".pin-{}", uuid::Uuid::now_v7()));
        let written = (|| {
            for (name, bytes) in files {
                let path = tmp.join(name);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, bytes)?;
            }
            std::fs::rename(&tmp, &self.root)
        })();
        match written {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                // Another worker pinned the same files first.
                if self.root.join("dataset.toml").is_file() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// A job's folder on working storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDir {
    root: PathBuf,
}

fn bad(what: &str, detail: &str) -> StoreError {
    StoreError {
        uri: what.to_string(),
        detail: detail.to_string(),
        retryable: false,
    }
}

impl JobDir {
    /// `<work>/<job_id>/<stamp>`: `job_id` must be a UUID and `stamp`
    /// fourteen digits (`ddmmyyyyhhmmss`).
    pub fn new(work: &Path, job_id: &str, stamp: &str) -> Result<JobDir, StoreError> {
        if uuid::Uuid::parse_str(job_id).is_err() {
            return Err(bad(job_id, "a job id must be a UUID"));
        }
        if stamp.len() != 14 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(stamp, "a run stamp is ddmmyyyyhhmmss"));
        }
        let work = std::path::absolute(work)
            .map_err(|e| bad(&work.display().to_string(), &e.to_string()))?;
        Ok(JobDir {
            root: work.join(job_id).join(stamp),
        })
    }

    /// Re-opens a folder recorded in a job: it must be `<work>/<uuid>/<stamp>`
    /// under `work` (a tampered job record cannot point elsewhere).
    pub fn existing(work: &Path, recorded: &str) -> Result<JobDir, StoreError> {
        let path = Path::new(recorded);
        let stamp = path.file_name().and_then(|s| s.to_str());
        let job_id = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str());
        let (Some(job_id), Some(stamp)) = (job_id, stamp) else {
            return Err(bad(recorded, "not a job folder (<work>/<job id>/<stamp>)"));
        };
        let dir = JobDir::new(work, job_id, stamp)?;
        if std::path::absolute(path).ok().as_deref() != Some(dir.root.as_path()) {
            return Err(bad(
                recorded,
                &format!(
                    "the job folder is not under the working directory {}",
                    work.display()
                ),
            ));
        }
        Ok(dir)
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Where the input is staged.
    pub fn input(&self) -> PathBuf {
        self.root.join("input")
    }
    /// Loader artifacts.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }
    /// Converter output.
    pub fn output(&self) -> PathBuf {
        self.root.join("output")
    }
    /// The archive efs-s3-uploader uploads.
    pub fn zip(&self) -> PathBuf {
        self.root.join("file.zip")
    }
    /// The dataset spec a one-off job ran with (`ferry load`, `ferry
    /// convert`: the flags over the spec folder's), written by create-job;
    /// and where jobs created before [`SpecPin`] pinned a routed spec.
    /// Every later step reads the pinned copy, so a spec edited (or a specs
    /// prefix re-synced) mid-job cannot change the job's remaining steps.
    pub fn spec(&self) -> PathBuf {
        self.root.join("spec")
    }
    /// A file directly in the job folder (`transform.json`, `load.json`).
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Whether `path` lies inside this job folder (lexically, after making it
    /// absolute; `..` components are refused outright).
    pub fn contains(&self, path: &Path) -> bool {
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return false;
        }
        std::path::absolute(path).is_ok_and(|p| p.starts_with(&self.root))
    }

    /// Deletes the folder and, when it is left empty, its job-id parent.
    pub fn remove(&self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.root)?;
        if let Some(parent) = self.root.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(())
    }
}

/// What a file in the archive is, as `manifest.json` says it, so a
/// consumer can pick the files it wants without parsing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// `load.sql`: runs the `.sql` parts in order with psql.
    Driver,
    /// A `.sql` part (COPY … FROM stdin with its rows).
    Sql,
    /// A `.pgcopy` part (binary COPY).
    Pgcopy,
    /// The converted output.
    Output,
    /// A JSON report (`transform.json`, `.convert.json`, `.validation.json`).
    Report,
    /// Rows the error policy set aside (JSON lines).
    Rejects,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Driver => "driver",
            FileKind::Sql => "sql",
            FileKind::Pgcopy => "pgcopy",
            FileKind::Output => "output",
            FileKind::Report => "report",
            FileKind::Rejects => "rejects",
        })
    }
}

/// One file in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path inside the zip (relative to the job folder, `/`-separated).
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows it holds, where that means something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// `xxh3-128:<hex>` of its bytes.
    pub checksum: String,
}

/// `manifest.json`: what the archive holds, so a consumer can check it
/// without trusting the zip's own CRCs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The job whose artifacts these are.
    pub job_id: String,
    /// The dataset the input was routed to.
    pub dataset: String,
    /// `loader` or `converter`.
    pub workflow: String,
    /// The input object.
    pub input: String,
    /// Rows loaded or converted.
    pub rows: u64,
    /// RFC 3339.
    pub created_at: String,
    /// Every file in the zip, with its kind, size and checksum.
    pub files: Vec<ManifestFile>,
}

/// A file to put in the archive.
#[derive(Debug, Clone)]
pub struct ZipEntry {
    /// The file on disk (inside the job folder); for an entry built in
    /// memory, the place it would have in the folder, which names it.
    pub path: PathBuf,
    /// Its kind, for the manifest.
    pub kind: FileKind,
    /// Rows, for the manifest.
    pub rows: Option<u64>,
    /// The bytes, for an entry that is never a file in the job folder (a
    /// routed job's receipt, kept in its job record): one file fewer to
    /// create and remove per job.
    pub data: Option<Vec<u8>>,
}

/// An archive error.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The zip writer failed.
    #[error("writing {path}: {source}")]
    Zip {
        /// The archive.
        path: String,
        /// Why.
        #[source]
        source: zip::result::ZipError,
    },
    /// A file is outside the job folder.
    #[error("{0} is outside the job folder")]
    Escapes(String),
}

/// What [`archive`] wrote.
#[derive(Debug, Clone)]
pub struct Archived {
    /// The manifest, with every file's checksum.
    pub manifest: Manifest,
    /// The manifest as `manifest.json` holds it, inside the zip and for
    /// upload beside it (never a file in the job folder: one file fewer to
    /// create and remove per job).
    pub manifest_json: Vec<u8>,
    /// Size of `file.zip`.
    pub zip_bytes: u64,
}

/// Writes `file.zip` into the job folder: each entry, deflated at a fast
/// level (ZIP64 for files over 4 GiB), then `manifest.json`; checksumming
/// each file as it is copied in (one read per file).
pub fn archive(
    dir: &JobDir,
    mut manifest: Manifest,
    entries: &[ZipEntry],
) -> Result<Archived, ArchiveError> {
    use zip::write::SimpleFileOptions;
    let zip_path = dir.zip();
    let zerr = |source| ArchiveError::Zip {
        path: zip_path.display().to_string(),
        source,
    };
    let ioerr = |path: &Path| {
        let path = path.display().to_string();
        move |source| ArchiveError::Io { path, source }
    };
    let mut sizes = Vec::with_capacity(entries.len());
    for e in entries {
        if !dir.contains(&e.path) {
            return Err(ArchiveError::Escapes(e.path.display().to_string()));
        }
        sizes.push(match &e.data {
            Some(d) => d.len() as u64,
            None => std::fs::metadata(&e.path).map_err(ioerr(&e.path))?.len(),
        });
    }
    let tmp = zip_path.with_extension("zip.partial");
    let out = File::create(&tmp).map_err(ioerr(&tmp))?;
    // Buffers no larger than the files: a small job's archive is a few KB,
    // and zeroing a megabyte for it was a visible share of its CPU.
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let buf_len = (largest as usize).clamp(8 << 10, 1 << 20);
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(buf_len, out));
    let mut files = Vec::with_capacity(entries.len());
    let mut buf = vec![0u8; buf_len];
    // Files first into the archive, the manifest (which needs their
    // checksums) last; consumers find it by name.
    for (e, &size) in entries.iter().zip(&sizes) {
        let rel = e
            .path
            .strip_prefix(dir.root())
            .map_err(|_| ArchiveError::Escapes(e.path.display().to_string()))?;
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1))
            .large_file(size >= u32::MAX as u64);
        zip.start_file(name.as_str(), opts).map_err(zerr)?;
        let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
        if let Some(d) = &e.data {
            hasher.update(d);
            zip.write_all(d).map_err(ioerr(&tmp))?;
        } else {
            let mut input = File::open(&e.path).map_err(ioerr(&e.path))?;
            loop {
                let n = input.read(&mut buf).map_err(ioerr(&e.path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                zip.write_all(&buf[..n]).map_err(ioerr(&tmp))?;
            }
        }
        files.push(ManifestFile {
            name,
            kind: e.kind,
            bytes: size,
            rows: e.rows,
            checksum: format!("xxh3-128:{:032x}", hasher.digest128()),
        });
    }
    manifest.files = files;
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    zip.start_file(
        "manifest.json",
        SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1)),
    )
    .map_err(zerr)?;
    zip.write_all(&json).map_err(ioerr(&tmp))?;
    let mut out = zip.finish().map_err(zerr)?;
    out.flush().map_err(ioerr(&tmp))?;
    out.get_ref().sync_all().map_err(ioerr(&tmp))?;
    drop(out);
    std::fs::rename(&tmp, &zip_path).map_err(ioerr(&zip_path))?;
    let bytes = std::fs::metadata(&zip_path)
        .map_err(ioerr(&zip_path))?
        .len();
    Ok(Archived {
        manifest,
        manifest_json: json,
        zip_bytes: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190f3c2-7b1e-7c3a-9f00-1234567890ab";

    #[test]
    fn job_folders_are_checked() {
        let work = Path::new("/data");
        let d = JobDir::new(work, ID, "26112026205704").unwrap();
        assert_eq!(d.root(), Path::new("/data").join(ID).join("26112026205704"));
        assert!(d.contains(&d.input().join("x.csv")));
        assert!(!d.contains(&d.input().join("../../../etc/passwd")));
        assert!(!d.contains(Path::new("/data/other/x")));
        for (id, stamp) in [
            ("../x", "26112026205704"),
            (ID, "2611"),
            (ID, "../../../../.."),
        ] {
            assert!(JobDir::new(work, id, stamp).is_err(), "{id} {stamp}");
        }
        let again = JobDir::existing(work, &d.root().display().to_string()).unwrap();
        assert_eq!(again, d);
        assert!(JobDir::existing(work, &format!("/elsewhere/{ID}/26112026205704")).is_err());
        assert!(JobDir::existing(work, "/data/../etc").is_err());
    }

    #[test]
    fn archives_with_a_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let d = JobDir::new(tmp.path(), ID, "26112026205704").unwrap();
        std::fs::create_dir_all(d.artifacts()).unwrap();
        let a = d.artifacts().join("t.part-0001.sql");
        std::fs::write(&a, b"COPY t FROM stdin;\n1\n\\.\n").unwrap();
        let m = Manifest {
            job_id: ID.into(),
            dataset: "t".into(),
            workflow: "loader".into(),
            input: "s3://b/k.csv".into(),
            rows: 1,
            created_at: "2026-11-26T00:00:00Z".into(),
            files: vec![],
        };
        let receipt = br#"{"verify": "full"}"#.to_vec();
        let entries = [
            ZipEntry {
                path: a.clone(),
                kind: FileKind::Sql,
                rows: Some(1),
                data: None,
            },
            ZipEntry {
                path: d.file("receipt.json"),
                kind: FileKind::Report,
                rows: None,
                data: Some(receipt.clone()),
            },
        ];
        let Archived {
            manifest: m,
            manifest_json,
            zip_bytes,
        } = archive(&d, m, &entries).unwrap();
        assert!(zip_bytes > 0);
        assert!(
            !d.file("manifest.json").exists(),
            "the manifest is in the zip and uploaded from memory"
        );
        assert_eq!(m.files[0].name, "artifacts/t.part-0001.sql");
        assert_eq!(
            m.files[0].checksum,
            crate::store::checksum_file(&a).unwrap()
        );
        // An entry built in memory: named by its place, never a file.
        assert!(!d.file("receipt.json").exists());
        assert_eq!(m.files[1].name, "receipt.json");
        assert_eq!(m.files[1].bytes, receipt.len() as u64);
        assert_eq!(
            m.files[1].checksum,
            format!("xxh3-128:{:032x}", xxhash_rust::xxh3::xxh3_128(&receipt))
        );
        let mut z = zip::ZipArchive::new(File::open(d.zip()).unwrap()).unwrap();
        let mut stored = Vec::new();
        z.by_name("receipt.json")
            .unwrap()
            .read_to_end(&mut stored)
            .unwrap();
        assert_eq!(stored, receipt);
        let mut text = String::new();
        z.by_name("manifest.json")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.as_bytes(), manifest_json);
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        let outside = ZipEntry {
            path: tmp.path().join("secret"),
            kind: FileKind::Output,
            rows: None,
            data: None,
        };
        std::fs::write(tmp.path().join("secret"), b"x").unwrap();
        assert!(matches!(
            archive(&d, back, &[outside]),
            Err(ArchiveError::Escapes(_))
        ));
    }
}
