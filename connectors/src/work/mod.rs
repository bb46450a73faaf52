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

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

mod archive;

pub use archive::{ArchiveError, Archived, Manifest, ManifestFile, ZipEntry, archive};

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
}
