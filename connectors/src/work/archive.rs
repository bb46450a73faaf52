//! `file.zip`: a job's artifacts and reports with their `manifest.json`, as
//! efs-s3-uploader uploads them.
//!
//! A Loader job's artifacts are its rows twice over (COPY text and binary
//! COPY), 1.8 GB for 6 million TPC-H rows, and deflating them was the
//! longest step after the load itself: 7.2 s of an 18.3 s SF 1 job, on one
//! core while the others (and the database) sat idle. So every core
//! deflates the next large file not yet taken, each into a one-entry zip in
//! an anonymous temporary file on local disk (not the job folder, which is
//! EFS in AWS), and the calling thread copies their compressed bytes as
//! they are into `file.zip`, in order, as each is ready. Memory stays one
//! copy buffer per thread. `file.zip` hands its pages to the disk as it
//! grows, so its closing fsync is short.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use super::{FileKind, JobDir};
use crate::store::checksum_text;
use crate::writeback::WritebackFile;

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

/// Files smaller than this are deflated in line: a thread and a temporary
/// file cost more than they save on a small job's few kilobytes.
const PARALLEL_FROM: u64 = 4 << 20;

/// The zip entry options for a file of `size` bytes: deflate at a fast
/// level, ZIP64 when it needs it.
fn entry_options(size: u64) -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(size >= u32::MAX as u64)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + use<> {
    let path = path.display().to_string();
    move |source| ArchiveError::Io { path, source }
}

fn zip_error(path: &Path) -> impl FnOnce(zip::result::ZipError) -> ArchiveError + use<> {
    let path = path.display().to_string();
    move |source| ArchiveError::Zip { path, source }
}

/// Copies `path` into `out` (an open zip entry), returning the xxh3-128 of
/// its bytes: one read per file for both.
fn copy_hashed(
    path: &Path,
    out: &mut impl Write,
    buf: &mut [u8],
    out_path: &Path,
) -> Result<String, ArchiveError> {
    let mut hasher = twox_hash::xxhash3_128::Hasher::new();
    let mut input = File::open(path).map_err(io_error(path))?;
    loop {
        let n = input.read(buf).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        hasher.write(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_error(out_path))?;
    }
    Ok(checksum_text(hasher.finish_128()))
}

/// Deflates one file into a one-entry zip in an anonymous temporary file,
/// rewound for reading: the work one thread does beside the others.
fn deflate_apart(
    path: &Path,
    name: &str,
    size: u64,
    buf_len: usize,
) -> Result<(File, String), ArchiveError> {
    let temp_dir = std::env::temp_dir();
    let tmp = tempfile::tempfile_in(&temp_dir).map_err(io_error(&temp_dir))?;
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(buf_len, tmp));
    zip.start_file(name, entry_options(size))
        .map_err(zip_error(path))?;
    let mut buf = vec![0u8; buf_len];
    let sum = copy_hashed(path, &mut zip, &mut buf, &temp_dir)?;
    let mut file = zip
        .finish()
        .map_err(zip_error(path))?
        .into_inner()
        .map_err(|e| io_error(&temp_dir)(e.into_error()))?;
    file.rewind().map_err(io_error(&temp_dir))?;
    Ok((file, sum))
}

/// Puts every file of [`PARALLEL_FROM`] bytes or more into `zip`: each
/// core deflates the next one not yet taken ([`deflate_apart`]), and this
/// thread copies them in, in `entries`' order, as each is ready. Returns
/// each entry's checksum, `None` for the entries left to write in line.
fn deflate_large_files(
    zip: &mut zip::ZipWriter<BufWriter<WritebackFile>>,
    zip_path: &Path,
    entries: &[ZipEntry],
    names: &[String],
    sizes: &[u64],
    buf_len: usize,
) -> Result<Vec<Option<String>>, ArchiveError> {
    let mut sums = vec![None; entries.len()];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let apart: Vec<usize> = (0..entries.len())
        .filter(|&i| threads > 1 && entries[i].data.is_none() && sizes[i] >= PARALLEL_FROM)
        .collect();
    if apart.is_empty() {
        return Ok(sums);
    }
    let next = AtomicUsize::new(0);
    let (done_tx, done) = mpsc::channel::<(usize, Result<(File, String), ArchiveError>)>();
    std::thread::scope(|s| {
        for _ in 0..threads.min(apart.len()) {
            let (done_tx, next, apart) = (done_tx.clone(), &next, &apart);
            s.spawn(move || {
                while let Some(&i) = apart.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let deflated = deflate_apart(&entries[i].path, &names[i], sizes[i], buf_len);
                    if done_tx.send((i, deflated)).is_err() {
                        break; // the archive failed; its error is reported
                    }
                }
            });
        }
        drop(done_tx);
        let mut waiting = std::collections::BTreeMap::new();
        let mut merged = 0;
        for (i, deflated) in done {
            waiting.insert(i, deflated);
            while let Some(deflated) = apart.get(merged).and_then(|i| waiting.remove(i)) {
                let i = apart[merged];
                let copied = deflated.and_then(|(file, sum)| {
                    let part = zip::ZipArchive::new(BufReader::with_capacity(buf_len, file))
                        .map_err(zip_error(&entries[i].path))?;
                    zip.merge_archive(part).map_err(zip_error(zip_path))?;
                    Ok(sum)
                });
                if copied.is_err() {
                    next.store(apart.len(), Ordering::Relaxed); // no more to take
                }
                sums[i] = Some(copied?);
                merged += 1;
            }
        }
        match apart.get(merged) {
            None => Ok(sums),
            Some(&i) => Err(io_error(&entries[i].path)(std::io::Error::other(
                "its deflating thread stopped without a result",
            ))),
        }
    })
}

/// Writes `file.zip` into the job folder: each entry deflated at a fast
/// level (ZIP64 for files over 4 GiB), large files on every core (see the
/// module), then `manifest.json`; each file checksummed as it is read (one
/// read per file). The manifest lists the files in `entries`' order.
pub fn archive(
    dir: &JobDir,
    mut manifest: Manifest,
    entries: &[ZipEntry],
) -> Result<Archived, ArchiveError> {
    let zip_path = dir.zip();
    let mut sizes = Vec::with_capacity(entries.len());
    let mut names = Vec::with_capacity(entries.len());
    for e in entries {
        if !dir.contains(&e.path) {
            return Err(ArchiveError::Escapes(e.path.display().to_string()));
        }
        sizes.push(match &e.data {
            Some(d) => d.len() as u64,
            None => std::fs::metadata(&e.path).map_err(io_error(&e.path))?.len(),
        });
        let rel = e
            .path
            .strip_prefix(dir.root())
            .map_err(|_| ArchiveError::Escapes(e.path.display().to_string()))?;
        names.push(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
        );
    }
    let tmp = zip_path.with_extension("zip.partial");
    let out = WritebackFile::create(&tmp).map_err(io_error(&tmp))?;
    // Buffers no larger than the files: a small job's archive is a few KB,
    // and zeroing a megabyte for it was a visible share of its CPU.
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let buf_len = (largest as usize).clamp(8 << 10, 1 << 20);
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(buf_len, out));
    // Large files first (see the module).
    let mut sums = deflate_large_files(&mut zip, &tmp, entries, &names, &sizes, buf_len)?;
    // The rest in line: small files and entries built in memory.
    let mut buf = vec![0u8; buf_len];
    for (i, e) in entries.iter().enumerate() {
        if sums[i].is_some() {
            continue;
        }
        zip.start_file(names[i].as_str(), entry_options(sizes[i]))
            .map_err(zip_error(&tmp))?;
        sums[i] = Some(match &e.data {
            Some(d) => {
                zip.write_all(d).map_err(io_error(&tmp))?;
                checksum_text(twox_hash::xxhash3_128::Hasher::oneshot(d))
            }
            None => copy_hashed(&e.path, &mut zip, &mut buf, &tmp)?,
        });
    }
    manifest.files = entries
        .iter()
        .zip(names)
        .zip(sizes)
        .zip(sums)
        .map(|(((e, name), bytes), sum)| ManifestFile {
            name,
            kind: e.kind,
            bytes,
            rows: e.rows,
            checksum: sum.unwrap_or_default(),
        })
        .collect();
    // The manifest (which needs every checksum) last; consumers find it by
    // name.
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    zip.start_file("manifest.json", entry_options(json.len() as u64))
        .map_err(zip_error(&tmp))?;
    zip.write_all(&json).map_err(io_error(&tmp))?;
    let mut out = zip.finish().map_err(zip_error(&tmp))?;
    out.flush().map_err(io_error(&tmp))?;
    out.get_mut().sync_all().map_err(io_error(&tmp))?;
    drop(out);
    std::fs::rename(&tmp, &zip_path).map_err(io_error(&zip_path))?;
    let bytes = std::fs::metadata(&zip_path)
        .map_err(io_error(&zip_path))?
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
            format!(
                "xxh3-128:{:032x}",
                twox_hash::xxhash3_128::Hasher::oneshot(&receipt)
            )
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

    /// Large files are deflated apart, on every core, and copied in:
    /// the archive must still hold every file byte for byte, under its own
    /// name, with the manifest in the entries' order (large, small and
    /// in-memory ones mixed) — more files than threads, of different sizes,
    /// so they finish out of order.
    #[test]
    fn large_files_deflated_apart_arrive_whole_and_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let d = JobDir::new(tmp.path(), ID, "26112026205704").unwrap();
        std::fs::create_dir_all(d.artifacts()).unwrap();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut entries = Vec::new();
        let mut contents = Vec::new();
        // More large files than threads, each different.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..(threads + 2) {
            // The first three times the others: they finish before it.
            let len = PARALLEL_FROM as usize * if i == 0 { 3 } else { 1 } + 1000 * i;
            let mut bytes = Vec::with_capacity(len + 64);
            while bytes.len() < len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.extend_from_slice(format!("{i}|{}|row\n", state % 100_000).as_bytes());
            }
            let path = d.artifacts().join(format!("t-{i:05}.pgcopy"));
            std::fs::write(&path, &bytes).unwrap();
            entries.push(ZipEntry {
                path,
                kind: FileKind::Pgcopy,
                rows: Some(i as u64),
                data: None,
            });
            contents.push(bytes);
            if i == 1 {
                let small = b"COPY t FROM stdin;\n\\.\n".to_vec();
                let path = d.artifacts().join("load.sql");
                std::fs::write(&path, &small).unwrap();
                entries.push(ZipEntry {
                    path,
                    kind: FileKind::Driver,
                    rows: None,
                    data: None,
                });
                contents.push(small);
                let report = br#"{"rows": 1}"#.to_vec();
                entries.push(ZipEntry {
                    path: d.file("receipt.json"),
                    kind: FileKind::Report,
                    rows: None,
                    data: Some(report.clone()),
                });
                contents.push(report);
            }
        }
        let m = Manifest {
            job_id: ID.into(),
            dataset: "t".into(),
            workflow: "loader".into(),
            input: "s3://b/k.csv".into(),
            rows: 0,
            created_at: "2026-11-26T00:00:00Z".into(),
            files: vec![],
        };
        let archived = archive(&d, m, &entries).unwrap();
        let want: Vec<&str> = entries
            .iter()
            .map(|e| e.path.strip_prefix(d.root()).unwrap().to_str().unwrap())
            .collect();
        let got: Vec<&str> = archived
            .manifest
            .files
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            got, want,
            "the manifest lists the files in the entries' order"
        );
        let total: usize = contents.iter().map(Vec::len).sum();
        assert!(
            (archived.zip_bytes as usize) < total / 2,
            "deflated: {} of {total} bytes",
            archived.zip_bytes
        );
        let mut z = zip::ZipArchive::new(File::open(d.zip()).unwrap()).unwrap();
        assert_eq!(z.len(), entries.len() + 1, "every file and manifest.json");
        for ((f, bytes), e) in archived.manifest.files.iter().zip(&contents).zip(&entries) {
            let mut entry = z.by_name(&f.name).unwrap();
            assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
            let mut back = Vec::new();
            entry.read_to_end(&mut back).unwrap();
            assert!(back == *bytes, "{} differs after the round trip", f.name);
            assert_eq!(f.bytes, bytes.len() as u64);
            assert_eq!(f.rows, e.rows);
            assert_eq!(
                f.checksum,
                format!(
                    "xxh3-128:{:032x}",
                    twox_hash::xxhash3_128::Hasher::oneshot(bytes)
                )
            );
        }
        assert!(!d.root().join("file.zip.partial").exists());
    }
}
