//! The pipeline of a load: decode → encode (parallel, ordered) → COPY and
//! artifacts, with rows counted at every boundary.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use ferry_connectors::pg::artifacts::{ArtifactFile, ArtifactSpec, ArtifactWriter, LedgerEntry};
use ferry_connectors::pg::codec::copy::{Encoded, encode_batch};
use ferry_connectors::pg::load::CopyChunk;
use ferry_connectors::pg::receipt::{Digest, Digester};
use ferry_connectors::pg::{BinaryEncoder, PgError};
use ferry_connectors::work::FileKind;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::error::FerryError;
use crate::ordered;
use crate::spec::DatasetSpec;
use crate::transform;

/// Rows encoded per task: small enough to spread over every core and keep
/// COPY messages and artifact parts fine-grained.
pub(crate) const ENCODE_ROWS: usize = 8192;

/// One slice in binary COPY (and COPY text for the `.sql` artifacts), and
/// the digest of what it sends (for the load's receipt), computed here in
/// the parallel stage while the tuples are in cache.
pub(crate) fn encode(
    encoder: &BinaryEncoder,
    digester: Option<&Digester>,
    batch: &RecordBatch,
    first_row: u64,
    want_text: bool,
) -> Result<(Encoded, Option<Digest>), FerryError> {
    let encoded = encode_batch(encoder, batch, first_row, true, want_text).map_err(|e| {
        FerryError::Encode {
            row: first_row + e.row as u64 + 1,
            source: e,
        }
    })?;
    let digest = digester
        .map(|d| d.digest(batch, &encoded.binary))
        .transpose()
        .map_err(|e| FerryError::Internal(e.to_string()))?;
    Ok((encoded, digest))
}

/// What each slice goes through: the COPY encoder, and the receipt's
/// digester (under `verify = "full"`).
pub(crate) struct Encoders {
    /// Binary COPY (and COPY text).
    pub binary: BinaryEncoder,
    /// The digest of what is sent.
    pub digester: Option<Digester>,
}

/// Why the pipeline stopped early.
pub(crate) enum Stop {
    /// The COPY side closed its queue (a stream failed).
    LoaderStopped,
    /// Anything else.
    Failed(FerryError),
}

impl From<FerryError> for Stop {
    fn from(e: FerryError) -> Self {
        Stop::Failed(e)
    }
}

/// Decode → encode (parallel, ordered) → COPY + artifacts.
pub(crate) async fn pipeline(
    encoders: Encoders,
    copy_tx: Option<mpsc::Sender<CopyChunk>>,
    df: datafusion::dataframe::DataFrame,
    spec: &DatasetSpec,
    artifact_spec: ArtifactSpec,
    ledger: impl FnOnce() -> Result<LedgerEntry, PgError> + Send + 'static,
    rows_done: Arc<AtomicU64>,
) -> Result<(u64, Vec<ArtifactFile>, Option<Digest>), Stop> {
    let sql_path = spec.transform_path.display().to_string();

    let want_text = artifact_spec.kinds.sql;
    let write_artifacts = artifact_spec.kinds.sql || artifact_spec.kinds.pgcopy;

    // Artifact writer: a blocking thread fed in order.
    let (art_tx, mut art_rx) = mpsc::channel::<(Arc<Encoded>, Option<Digest>)>(4);
    let writer = std::thread::Builder::new()
        .name("ferry-artifacts".into())
        .spawn(move || -> Result<Vec<ArtifactFile>, PgError> {
            let mut w = ArtifactWriter::new(artifact_spec)?;
            // The digest of what the artifacts hold, for load.sql's receipt.
            let mut written: Option<Digest> = None;
            while let Some((e, digest)) = art_rx.blocking_recv() {
                w.write_batch(&e.binary, &e.text, e.rows)?;
                if let Some(d) = digest {
                    written.get_or_insert_with(Digest::default).merge(&d);
                }
            }
            // Only the .sql driver records the ledger entry.
            let ledger = if want_text { Some(ledger()?) } else { None };
            w.finish(ledger.as_ref(), written.as_ref())
        })
        .map_err(|e| FerryError::io("starting the artifact writer", e))?;

    let (q_tx, q_rx) =
        ordered::channel::<Result<(Encoded, Option<Digest>), FerryError>>(ordered::depth());
    let Encoders {
        binary: encoder,
        digester,
    } = encoders;
    let digester = digester.map(Arc::new);
    let producer = async {
        let mut stream = transform::execute_ordered(df)
            .await
            .map_err(|e| FerryError::from_datafusion(e, &sql_path))?;
        let mut first_row = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| FerryError::from_datafusion(e, &sql_path))?;
            // Encode in slices (zero-copy) so work spreads over the pool and
            // COPY chunks and artifact parts stay small.
            for offset in (0..batch.num_rows()).step_by(ENCODE_ROWS) {
                let slice = batch.slice(offset, ENCODE_ROWS.min(batch.num_rows() - offset));
                let encoder = encoder.clone();
                let digester = digester.clone();
                let row = first_row;
                first_row += slice.num_rows() as u64;
                let submitted = q_tx
                    .spawn(move || encode(&encoder, digester.as_deref(), &slice, row, want_text))
                    .await;
                if !submitted {
                    return Ok(first_row); // the consumer stopped; it reports why
                }
            }
        }
        drop(q_tx);
        Ok::<u64, Stop>(first_row)
    };
    let consumer = async {
        // Owned here: when the consumer stops early (the artifact writer
        // failed, say on a full disk), the queue closes and the producer
        // stops too instead of waiting on a full queue forever.
        let mut q_rx = q_rx;
        let mut rows = 0u64;
        let mut sent: Option<Digest> = None;
        while let Some(encoded) = q_rx.next().await {
            let (encoded, digest) = encoded.map_err(|_| {
                FerryError::Internal("an encode task stopped without a result".into())
            })??;
            if let Some(d) = &digest {
                sent.get_or_insert_with(Digest::default).merge(d);
            }
            rows += encoded.rows;
            let chunk = CopyChunk {
                bytes: encoded.binary.clone(),
                rows: encoded.rows,
                first_row: encoded.first_row,
            };
            if let Some(tx) = &copy_tx
                && tx.send(chunk).await.is_err()
            {
                return Err(Stop::LoaderStopped);
            }
            if write_artifacts && art_tx.send((Arc::new(encoded), digest)).await.is_err() {
                break; // the writer failed; its error is collected below
            }
            rows_done.store(rows, Ordering::Relaxed);
        }
        Ok::<(u64, Option<Digest>), Stop>((rows, sent))
    };
    let joined = tokio::try_join!(producer, consumer);
    drop(copy_tx);
    drop(art_tx);
    let artifacts = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| FerryError::Internal(e.to_string()))?
        .map_err(|_| FerryError::Internal("the artifact writer panicked".into()))?;
    let (produced, (consumed, sent)) = joined?;
    let artifacts = artifacts.map_err(FerryError::from)?;
    if produced != consumed {
        return Err(FerryError::Pg(PgError::Count(format!(
            "the transform produced {produced} rows but {consumed} were encoded"
        )))
        .into());
    }
    let in_artifacts: u64 = artifacts
        .iter()
        .filter(|f| f.kind == FileKind::Pgcopy)
        .map(|f| f.rows)
        .sum();
    if write_artifacts
        && artifacts.iter().any(|f| f.kind == FileKind::Pgcopy)
        && in_artifacts != consumed
    {
        return Err(FerryError::Pg(PgError::Count(format!(
            "{consumed} rows encoded but {in_artifacts} written to .pgcopy files"
        )))
        .into());
    }
    // An empty input has no chunk: its digest is the empty one.
    let sent = sent.or_else(|| digester.as_ref().map(|d| Digest::new(d.checks().len())));
    Ok((consumed, artifacts, sent))
}
