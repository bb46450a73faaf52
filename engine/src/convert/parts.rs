//! A split input converted in parts (`[source] split_size`, Parquet output):
//! the output becomes a folder of one Parquet file per part, in the input's
//! order (`<output>/part-0000.parquet`, …), a multi-file dataset every
//! Parquet reader opens as one table. Each part records its own
//! `convert.json` in its folder of the job; validation reads every part back
//! against its own digest and gives one verdict for the dataset, and the
//! dataset's reports (`<output>.convert.json`, `<output>.validation.json`)
//! sum the parts'.

use std::path::{Path, PathBuf};

use twox_hash::xxhash3_128::Hasher as Xxh3;

use super::digest::{ColumnSummary, DigestSummary};
use super::{ConvertReport, Difference, ValidationReport};
use crate::error::FerryError;
use crate::load::SplitPlan;

/// The file part `index` writes in the dataset folder `folder`.
pub fn part_file(folder: &Path, index: usize) -> PathBuf {
    folder.join(format!("part-{index:04}.parquet"))
}

/// Every part's `convert.json`, in order; fails naming the first part that
/// has not been converted (a Map item that died), so nothing is validated
/// or uploaded until every part is there.
fn part_reports(plan: &SplitPlan, job_dir: &Path) -> Result<Vec<ConvertReport>, FerryError> {
    plan.indices()
        .into_iter()
        .map(|k| plan.part_report(job_dir, k, "convert.json", "convert"))
        .collect()
}

/// The dataset's conversion report, as the convert step (parts run in its
/// own process) and validate (after the Map ran them) both record it: the
/// parts' reports merged ([`merge_reports`]), and their rejected rows
/// gathered into the dataset's one reject file `rejects`.
pub fn dataset_report(
    plan: &SplitPlan,
    job_dir: &Path,
    folder: &Path,
    rejects: &Path,
) -> Result<ConvertReport, FerryError> {
    let mut merged = merge_reports(folder, plan.bytes, &part_reports(plan, job_dir)?)?;
    merged.rejects = plan.gather_rejects(job_dir, rejects)?;
    Ok(merged)
}

/// The dataset's conversion report: the parts' rows, files, sizes and
/// rejects summed, their digests combined in order ([`combine`]). Fails
/// when the parts were written with different schemas (a spec changed
/// between them: convert every part again).
fn merge_reports(
    folder: &Path,
    input_bytes: u64,
    parts: &[ConvertReport],
) -> Result<ConvertReport, FerryError> {
    let first = parts
        .first()
        .ok_or_else(|| FerryError::Internal(format!("{}: no parts", folder.display())))?;
    if let Some((k, _)) = parts
        .iter()
        .enumerate()
        .find(|(_, p)| p.schema_ipc != first.schema_ipc)
    {
        return Err(FerryError::Internal(format!(
            "{}: part {k} was written with other columns than part 0; convert every part again",
            folder.display()
        )));
    }
    let sum = |f: fn(&ConvertReport) -> u64| parts.iter().map(f).sum::<u64>();
    Ok(ConvertReport {
        input: first.input.clone(),
        output: folder.to_path_buf(),
        format: first.format.clone(),
        rows: sum(|p| p.rows),
        source_rows: parts.iter().map(|p| p.source_rows).sum(),
        input_bytes,
        output_bytes: sum(|p| p.output_bytes),
        seconds: parts.iter().map(|p| p.seconds).fold(0.0, f64::max),
        files: parts.iter().flat_map(|p| p.files.clone()).collect(),
        lossy: first.lossy.clone(),
        digest: combine(parts.iter().map(|p| &p.digest)),
        rejected: sum(|p| p.rejected),
        rejects: parts.iter().find_map(|p| p.rejects.clone()),
        schema_ipc: first.schema_ipc.clone(),
    })
}

/// One digest for a dataset in parts: rows and NULLs summed, and per column
/// an xxh3-128 of the parts' digests in part order. Equal for two datasets
/// exactly when every part's digests are equal, part for part.
pub fn combine<'a>(parts: impl IntoIterator<Item = &'a DigestSummary>) -> DigestSummary {
    let mut rows = 0u64;
    let mut columns: Vec<(ColumnSummary, Xxh3)> = Vec::new();
    for part in parts {
        rows += part.rows;
        for (i, c) in part.columns.iter().enumerate() {
            if columns.len() <= i {
                let empty = ColumnSummary {
                    name: c.name.clone(),
                    nulls: 0,
                    digest: String::new(),
                };
                columns.push((empty, Xxh3::new()));
            }
            let (sum, hash) = &mut columns[i];
            sum.nulls += c.nulls;
            hash.write(c.digest.as_bytes());
        }
    }
    DigestSummary {
        rows,
        columns: columns
            .into_iter()
            .map(|(mut c, h)| {
                c.digest = format!("{:032x}", h.finish_128());
                c
            })
            .collect(),
    }
}

/// The dataset's verdict from each part's: valid when every part is; each
/// problem names its part's file, and the first difference its part.
pub fn merge_validations(
    folder: &Path,
    parts: &[(PathBuf, ValidationReport)],
    seconds: f64,
) -> ValidationReport {
    let name = |p: &Path| {
        p.file_name()
            .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
    };
    let problems: Vec<String> = parts
        .iter()
        .flat_map(|(file, v)| {
            v.problems
                .iter()
                .map(move |p| format!("{}: {p}", name(file)))
        })
        .collect();
    let first_difference = parts.iter().find_map(|(file, v)| {
        v.first_difference.as_ref().map(|d| Difference {
            row: d.row,
            column: format!("{} ({})", d.column, name(file)),
            source: d.source.clone(),
            written: d.written.clone(),
        })
    });
    let (source, written) = (
        combine(parts.iter().map(|(_, v)| &v.source)),
        combine(parts.iter().map(|(_, v)| &v.written)),
    );
    ValidationReport {
        verdict: if problems.is_empty() {
            "valid"
        } else {
            "invalid"
        }
        .into(),
        output: folder.to_path_buf(),
        rows: (source.rows, written.rows),
        problems,
        first_difference,
        lossy: parts
            .first()
            .map(|(_, v)| v.lossy.clone())
            .unwrap_or_default(),
        seconds,
        source,
        written,
    }
}
