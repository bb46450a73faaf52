//! One COPY stream: it takes encoded chunks from the queue the streams
//! share, sends them between the binary header and trailer, and, when
//! PostgreSQL refuses a row, names it by its output row number.

use std::sync::Arc;

use bytes::Bytes;
use futures::SinkExt;
use tokio::sync::{Mutex, mpsc};
use tokio_postgres::Client;

use super::CopyChunk;
use crate::pg::codec::binary::{PGCOPY_HEADER, PGCOPY_TRAILER};
use crate::pg::error::PgError;
use crate::pg::pool::Conn;
use crate::pg::statements::CopyFormat;

/// One COPY stream on a connection of its own, which commits it (the
/// staged layouts): header, chunks from the shared queue, trailer.
pub(super) async fn run_stream(
    mut client: Arc<Conn>,
    copy_sql: Arc<String>,
    rx: Arc<Mutex<mpsc::Receiver<CopyChunk>>>,
    index: usize,
    table: Arc<String>,
    format: CopyFormat,
) -> Result<u64, PgError> {
    let result = send_rows(&client, &copy_sql, &rx, index, &table, format).await;
    // A stream of its own connection committed its COPY: it is clean.
    if result.is_ok()
        && let Some(c) = Arc::get_mut(&mut client)
    {
        c.keep();
    }
    result
}

/// Sends the header, every chunk the shared queue gives this stream, and
/// the trailer as one `COPY … FROM STDIN`, in whatever transaction
/// `client` is in; returns the rows PostgreSQL accepted. A refused row is
/// named by its output row number, and the queue is closed so that no
/// other stream goes on loading into a failed job.
pub(super) async fn send_rows(
    client: &Client,
    copy_sql: &str,
    rx: &Mutex<mpsc::Receiver<CopyChunk>>,
    index: usize,
    table: &str,
    format: CopyFormat,
) -> Result<u64, PgError> {
    // (first output row, rows) of each chunk sent, to name the row PostgreSQL rejects.
    let mut sent: Vec<(u64, u64)> = Vec::new();
    let result = async {
        let sink = client.copy_in::<_, Bytes>(copy_sql).await?;
        futures::pin_mut!(sink);
        let binary = format == CopyFormat::Binary;
        if binary {
            sink.send(Bytes::from_static(&PGCOPY_HEADER)).await?;
        }
        loop {
            let next = rx.lock().await.recv().await;
            let Some(chunk) = next else { break };
            sent.push((chunk.first_row, chunk.rows));
            sink.send(chunk.bytes).await?;
            if index == 0 && sent.len() == 1 {
                crate::fault::point(crate::fault::COPY).await;
            }
        }
        if binary {
            sink.send(Bytes::from_static(&PGCOPY_TRAILER)).await?;
        }
        sink.as_mut().finish().await
    }
    .await;
    result.map_err(|e| {
        if let Ok(mut r) = rx.try_lock() {
            r.close();
        }
        let doing = match copy_line(&e).and_then(|line| locate(&sent, line)) {
            Some(row) => format!(
                "loading output row {} into {table} (COPY stream {index})",
                row + 1
            ),
            None => format!("COPY stream {index} into {table}"),
        };
        PgError::db(doing, e)
    })
}

/// The 1-based tuple number from a COPY error's CONTEXT ("COPY t, line 17, …").
fn copy_line(e: &tokio_postgres::Error) -> Option<u64> {
    let ctx = e.as_db_error()?.where_()?;
    let rest = &ctx[ctx.find(", line ")? + 7..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn locate(sent: &[(u64, u64)], line: u64) -> Option<u64> {
    if line == 0 {
        return None;
    }
    let mut seen = 0;
    for &(first, rows) in sent {
        if line <= seen + rows {
            return Some(first + (line - seen - 1));
        }
        seen += rows;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_rows_across_chunks() {
        let sent = [(0, 10), (30, 5), (50, 5)];
        assert_eq!(locate(&sent, 1), Some(0));
        assert_eq!(locate(&sent, 10), Some(9));
        assert_eq!(locate(&sent, 11), Some(30));
        assert_eq!(locate(&sent, 16), Some(50));
        assert_eq!(locate(&sent, 21), None);
        assert_eq!(locate(&sent, 0), None);
    }
}
