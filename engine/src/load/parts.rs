//! One input in parts: a delimited file larger than `[source] split_size`
//! is cut at record boundaries ([`record_ranges`]), a Parquet file between
//! row groups ([`row_group_ranges`]); each part is decoded,
//! transformed and encoded by its own task (a Distributed Map item in AWS, a
//! separate process in one-process runs) into artifacts in the job's
//! `artifacts/` folder and its own `parts/<k>/transform.json`; then one
//! sql-processor loads every part's artifacts as one load: one transaction
//! (or one two-phase decision), one ledger entry, one receipt.
//!
//! Why the parts stage artifacts rather than COPY into a staging table each:
//! the COPY's server work is the same whichever task sends it, and a
//! staging table copied again by `INSERT … SELECT` would double it; what
//! grows with the file on the client (decoding, the transform, encoding,
//! writing `.sql` and `.pgcopy`) is what the parts share out. A re-run part
//! rewrites its own files, so a crashed item retried adds nothing twice,
//! and nothing reaches PostgreSQL before every part is done.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decode::csv::record_ranges;
use crate::decode::{Compression, REJECTS_FILE};
use crate::error::FerryError;
use crate::format::Format;
use crate::source::{Input, PartRange, resolve_format, row_group_ranges};
use crate::spec::{DatasetSpec, Lineage};

use super::{TRANSFORM_REPORT, TransformReport};

/// The plan, in the job folder: its presence is what tells sql-processor
/// to load the parts.
pub const SPLIT_PLAN: &str = "split.json";

/// Where each part's `transform.json` (and reject file) goes.
pub const PARTS_DIR: &str = "parts";

/// How an input was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPlan {
    /// The input as people know it.
    pub input: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Checksum of all its bytes (hashed once, not by every part).
    pub checksum: String,
    /// `[source] split_size` when it was cut.
    pub split_size: u64,
    /// The parts, in the file's order.
    pub ranges: Vec<PartRange>,
}

/// Which part of a split input one transform works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartOf {
    /// Its index (0-based) in [`SplitPlan::ranges`].
    pub index: usize,
    /// Its records (a delimited file's bytes, a Parquet file's row groups).
    pub range: PartRange,
    /// The whole input's checksum, as the ledger records it.
    pub checksum: String,
}

impl PartOf {
    /// The artifact file stem of this part: the table's, then the part, so
    /// the job's `artifacts/` folder lists the parts in load order.
    pub fn stem(&self, table: &str) -> String {
        format!("{table}.part{:04}", self.index)
    }
}

/// The folder of part `index` in the job folder.
pub fn part_dir(job_dir: &Path, index: usize) -> PathBuf {
    job_dir.join(PARTS_DIR).join(format!("{index:04}"))
}

impl SplitPlan {
    /// The plan in `job_dir`, if the input was split.
    pub fn read(job_dir: &Path) -> Result<Option<SplitPlan>, FerryError> {
        let path = job_dir.join(SPLIT_PLAN);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| FerryError::Internal(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FerryError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Writes the plan into `job_dir` (whole or not at all).
    pub fn write(&self, job_dir: &Path) -> Result<(), FerryError> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| FerryError::Internal(e.to_string()))?;
        std::fs::create_dir_all(job_dir)
            .map_err(|e| FerryError::io(format!("creating {}", job_dir.display()), e))?;
        write_whole(&job_dir.join(SPLIT_PLAN), &json)
    }

    /// Part `index`, or a usage error naming how many there are.
    pub fn part(&self, index: usize) -> Result<PartOf, FerryError> {
        self.ranges
            .get(index)
            .map(|&range| PartOf {
                index,
                range,
                checksum: self.checksum.clone(),
            })
            .ok_or_else(|| {
                FerryError::Usage(format!(
                    "{} was split into {} parts (0 to {}); there is no part {index}",
                    self.input,
                    self.ranges.len(),
                    self.ranges.len().saturating_sub(1)
                ))
            })
    }

    /// The parts' indices, as the state machine's Distributed Map iterates them.
    pub fn indices(&self) -> Vec<usize> {
        (0..self.ranges.len()).collect()
    }

    /// Every part's reject file, in part order, gathered into `dest` (whole
    /// or not at all), so the job's archive keeps the rows the parts set
    /// aside as one file keeps a whole input's; `None` (and no file) when
    /// no part set a row aside.
    pub fn gather_rejects(
        &self,
        job_dir: &Path,
        dest: &Path,
    ) -> Result<Option<PathBuf>, FerryError> {
        let files: Vec<PathBuf> = self
            .indices()
            .into_iter()
            .map(|k| part_dir(job_dir, k).join(REJECTS_FILE))
            .filter(|p| p.is_file())
            .collect();
        if files.is_empty() {
            return Ok(None);
        }
        ferry_connectors::store::write_into_place(dest, |tmp| {
            let mut out = std::fs::File::create(tmp)?;
            let mut bytes = 0;
            for f in &files {
                bytes += std::io::copy(&mut std::fs::File::open(f)?, &mut out)?;
            }
            Ok(bytes)
        })
        .map_err(|e| FerryError::io(format!("writing {}", dest.display()), e))?;
        Ok(Some(dest.to_path_buf()))
    }

    /// Part `k`'s report `file` (written last by `ferry task <step> --part
    /// K`, so its presence says the part is done); a usage error naming the
    /// part and the command that makes it when it is missing.
    pub fn part_report<T: serde::de::DeserializeOwned>(
        &self,
        job_dir: &Path,
        k: usize,
        file: &str,
        step: &str,
    ) -> Result<T, FerryError> {
        let path = part_dir(job_dir, k).join(file);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| FerryError::Internal(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FerryError::Usage(format!(
                "part {k} of {} ({} parts) has not been {step}ed: {} is missing (run `ferry task {step} --part {k}`)",
                self.input,
                self.ranges.len(),
                path.display()
            ))),
            Err(e) => Err(FerryError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Every part's `transform.json` merged into the one sql-processor loads:
    /// the parts' artifacts in order, their rows, rejects and digests summed,
    /// their rejected rows gathered into the job's one reject file.
    /// Fails naming the first part that has not been transformed, and when
    /// the parts disagree on the table or its columns (a spec changed in
    /// between: transform again).
    pub fn merged_report(&self, job_dir: &Path) -> Result<TransformReport, FerryError> {
        let mut merged: Option<TransformReport> = None;
        for k in self.indices() {
            let part: TransformReport =
                self.part_report(job_dir, k, TRANSFORM_REPORT, "transform")?;
            merged = Some(match merged {
                None => part,
                Some(mut m) => {
                    if part.target != m.target
                        || part.mode != m.mode
                        || part.columns != m.columns
                        || part.job_id != m.job_id
                    {
                        return Err(FerryError::Internal(format!(
                            "{}: part {k} was encoded for {} ({} columns) but part 0 for {} ({} columns); transform every part again",
                            part_dir(job_dir, k).join(TRANSFORM_REPORT).display(),
                            part.target,
                            part.columns.len(),
                            m.target,
                            m.columns.len()
                        )));
                    }
                    m.rows += part.rows;
                    m.seconds = m.seconds.max(part.seconds);
                    m.artifacts.extend(part.artifacts);
                    m.rejected += part.rejected;
                    m.sent = match (m.sent, part.sent) {
                        (Some(mut a), Some(b)) => {
                            a.merge(&b);
                            Some(a)
                        }
                        _ => None,
                    };
                    m
                }
            });
        }
        let mut merged =
            merged.ok_or_else(|| FerryError::Internal(format!("{}: no parts", self.input)))?;
        merged.rejects = self.gather_rejects(job_dir, &job_dir.join(REJECTS_FILE))?;
        Ok(merged)
    }
}

/// Whether `input` is split under `spec`, and where; `None` when the spec
/// sets no `split_size`, the input is no larger, or it cannot be cut: a
/// delimited file by bytes at record boundaries, a Parquet file by row
/// groups (one with a single row group cannot be); not a compressed or
/// non-UTF-8 delimited file (a byte offset may fall inside a character),
/// not other formats, nor an input numbered by `[target] lineage =
/// ["line"]` (each part would count from one). The whole input is hashed
/// (once, for the ledger) while it is cut, and only when it is.
pub async fn plan_split(
    spec: &DatasetSpec,
    input: &Input,
) -> Result<Option<SplitPlan>, FerryError> {
    let Some(split_size) = spec.source.split_size.map(|b| b.0.max(1)) else {
        return Ok(None);
    };
    let bytes = std::fs::metadata(&input.path)
        .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?
        .len();
    if bytes <= split_size {
        return Ok(None);
    }
    let format = resolve_format(&spec.source, input)?;
    let text = matches!(format, Format::Csv | Format::Tsv);
    let why_not = if !text && format != Format::Parquet {
        Some(format!(
            "{format} is not split (delimited text and Parquet are)"
        ))
    } else if text
        && !matches!(
            spec.source.compression.resolve(&input.path),
            Compression::None
        )
    {
        Some("a compressed file cannot be cut by bytes".to_string())
    } else if text && !spec.source.text_encoding().is_utf8() {
        Some("only UTF-8 text is cut by bytes".to_string())
    } else if spec
        .target
        .as_ref()
        .is_some_and(|t| t.lineage.contains(&Lineage::Line))
    {
        Some("[target] lineage numbers the input's lines, which parts cannot".to_string())
    } else {
        None
    };
    if let Some(why) = why_not {
        tracing::info!(input = %input.display, bytes, split_size, why, "not splitting the input");
        return Ok(None);
    }
    let checksum =
        ferry_connectors::store::Checksum::of_file(input.path.clone(), input.display.clone());
    let ranges: Vec<PartRange> = if text {
        let mut dialect = spec.dialect();
        if format == Format::Tsv {
            dialect.delimiter = b'\t';
        }
        let path = input.path.clone();
        tokio::task::spawn_blocking(move || record_ranges(&path, &dialect, split_size))
            .await
            .map_err(|e| FerryError::Internal(format!("planning the parts: {e}")))?
            .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?
            .into_iter()
            .map(PartRange::Bytes)
            .collect()
    } else {
        row_group_ranges(input, split_size)?
            .into_iter()
            .map(PartRange::RowGroups)
            .collect()
    };
    if ranges.len() <= 1 {
        return Ok(None);
    }
    let checksum = checksum
        .get()
        .await
        .map_err(|e| FerryError::io(format!("hashing {}", input.display), e))?;
    Ok(Some(SplitPlan {
        input: input.display.clone(),
        bytes,
        checksum,
        split_size,
        ranges,
    }))
}

/// Writes `bytes` to `path` through a temporary file renamed over it, so a
/// reader (or a crash) never sees half of it.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), FerryError> {
    ferry_connectors::store::write_into_place(path, |tmp| {
        std::fs::write(tmp, bytes).map(|()| bytes.len() as u64)
    })
    .map(|_| ())
    .map_err(|e| FerryError::io(format!("writing {}", path.display()), e))
}
