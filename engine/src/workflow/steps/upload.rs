//! efs-s3-uploader: `manifest.json` + `file.zip` of the job's artifacts (or
//! its converted output and reports), uploaded to
//! `<output>/<dataset>/<job_id>/<stamp>/`.

use ferry_connectors::jobs::{self, Job};
use ferry_connectors::pg::receipt::Receipt;
use ferry_connectors::store;
use ferry_connectors::work::{Archived, FileKind, JobDir, Manifest, ZipEntry, archive};
use serde::{Deserialize, Serialize};

use super::{Outcome, job_rows};
use crate::decode::REJECTS_FILE;
use crate::error::FerryError;
use crate::load::{RECEIPT, TRANSFORM_REPORT, TransformReport};
use crate::workflow::{Runtime, files_under};

/// What efs-s3-uploader records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// The uploaded `file.zip`.
    pub zip: String,
    /// The uploaded `manifest.json`.
    pub manifest: String,
    /// Files in the zip.
    pub files: usize,
}

impl Runtime {
    pub(crate) async fn upload(&self, job: &Job) -> Result<Outcome, FerryError> {
        let dir = self.job_dir(job)?;
        let workflow = job.workflow.unwrap_or_default();
        let entries = entries(&dir, job)?;
        let rows = job_rows(job).unwrap_or(0);
        let manifest = Manifest {
            job_id: job.job_id.clone(),
            dataset: job.dataset.clone().unwrap_or_default(),
            workflow: workflow.to_string(),
            input: job.input.uri.clone(),
            rows,
            created_at: jobs::now(),
            files: Vec::new(),
        };
        // A run whose load was already committed (a re-run after a crash)
        // wrote nothing into its folder: it may not exist yet.
        std::fs::create_dir_all(dir.root())
            .map_err(|e| FerryError::io(format!("creating {}", dir.root().display()), e))?;
        let archive_dir = dir.clone();
        let Archived {
            manifest,
            manifest_json,
            zip_bytes,
        } = tokio::task::spawn_blocking(move || archive(&archive_dir, manifest, &entries))
            .await
            .map_err(|e| FerryError::Internal(e.to_string()))??;
        let stamp = dir
            .root()
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let base = format!(
            "{}/{}/{}/{stamp}",
            self.settings.output.trim_end_matches('/'),
            manifest.dataset,
            job.job_id
        );
        let zip = store::upload(&dir.zip(), &format!("{base}/file.zip")).await?;
        let man = store::put(manifest_json, &format!("{base}/manifest.json")).await?;
        let output = Output {
            zip: zip.uri,
            manifest: man.uri,
            files: manifest.files.len(),
        };
        Outcome::new(Some(rows), Some(zip_bytes), &output)
    }
}

/// The files a job's archive holds, each with its kind (and its rows, for
/// artifacts `transform.json` lists); and the load's receipt, which a
/// routed job keeps in its job record, not in its folder.
fn entries(dir: &JobDir, job: &Job) -> Result<Vec<ZipEntry>, FerryError> {
    let transform: Option<TransformReport> = std::fs::read(dir.file(TRANSFORM_REPORT))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut entries = Vec::new();
    for (folder, artifacts) in [(dir.artifacts(), true), (dir.output(), false)] {
        for path in files_under(&folder)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let kind = match (artifacts, name) {
                (true, "load.sql") => FileKind::Driver,
                (true, n) if n.ends_with(".sql") => FileKind::Sql,
                (true, n) if n.ends_with(".pgcopy") => FileKind::Pgcopy,
                (false, n) if n.ends_with(".json") => FileKind::Report,
                (false, n) if n.ends_with(".rejects.jsonl") => FileKind::Rejects,
                _ => FileKind::Output,
            };
            let rows = transform
                .as_ref()
                .and_then(|t| t.artifacts.iter().find(|a| a.path == path).map(|a| a.rows));
            entries.push(ZipEntry {
                path,
                kind,
                rows,
                data: None,
            });
        }
    }
    let report = |name: &str, kind, data: Option<Vec<u8>>| ZipEntry {
        path: dir.file(name),
        kind,
        rows: None,
        data,
    };
    let on_disk = |name: &str, kind| dir.file(name).is_file().then(|| report(name, kind, None));
    entries.extend(on_disk(TRANSFORM_REPORT, FileKind::Report));
    entries.extend(recorded_receipt(job).map(|r| report(RECEIPT, FileKind::Report, Some(r))));
    entries.extend(on_disk(REJECTS_FILE, FileKind::Rejects));
    Ok(entries)
}

/// `receipt.json` as the load step of the job's current attempt recorded
/// it (what PostgreSQL was proved to store), for the zip: the proof travels
/// with the artifacts to the output, where an auditor can keep it.
fn recorded_receipt(job: &Job) -> Option<Vec<u8>> {
    let value = job
        .steps
        .iter()
        .rev()
        .filter(|s| s.attempt == job.attempts && s.error.is_none())
        .find_map(|s| s.outputs.get("receipt"))?;
    let receipt: Receipt = serde_json::from_value(value.clone()).ok()?;
    serde_json::to_vec_pretty(&receipt).ok()
}
