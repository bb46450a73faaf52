//! Reading the Loader's artifacts back as COPY chunks, for sql-processor:
//! `.pgcopy` parts are walked tuple by tuple (lengths only, values are not
//! decoded) and `.sql` parts yield the rows of their `COPY … FROM stdin`
//! block. Chunks end on row boundaries and stay near [`CHUNK_BYTES`], so a
//! part of any size streams in bounded memory and every chunk knows its rows.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::codec::binary::PGCOPY_HEADER;
use super::error::PgError;

/// Target size of one chunk.
pub const CHUNK_BYTES: usize = 4 << 20;

/// A chunk of whole rows.
#[derive(Debug, Clone)]
pub struct Rows {
    /// The rows' bytes (binary tuples or COPY text lines).
    pub bytes: Bytes,
    /// How many rows.
    pub rows: u64,
}

fn corrupt(path: &Path, detail: impl Into<String>) -> PgError {
    PgError::Artifact {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PgError + '_ {
    move |source| PgError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Tuples of a `.pgcopy` file, without its header and trailer.
pub struct PgcopyChunks {
    path: PathBuf,
    input: BufReader<File>,
    done: bool,
}

impl PgcopyChunks {
    /// Opens a part and checks its header.
    pub fn open(path: &Path) -> Result<Self, PgError> {
        let mut input = BufReader::with_capacity(1 << 20, File::open(path).map_err(io(path))?);
        let mut header = [0u8; 19];
        input
            .read_exact(&mut header)
            .map_err(|_| corrupt(path, "shorter than a PGCOPY header"))?;
        if header[..11] != PGCOPY_HEADER[..11] {
            return Err(corrupt(
                path,
                "not a PostgreSQL binary COPY file (bad signature)",
            ));
        }
        let ext = u32::from_be_bytes([header[15], header[16], header[17], header[18]]);
        std::io::copy(&mut (&mut input).take(ext as u64), &mut std::io::sink())
            .map_err(io(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            input,
            done: false,
        })
    }

    /// Appends one tuple to `buf`; `false` at the trailer.
    fn read_tuple(
        input: &mut BufReader<File>,
        path: &Path,
        buf: &mut Vec<u8>,
    ) -> Result<bool, PgError> {
        let truncated = || corrupt(path, "ends inside a tuple (truncated?)");
        let mut n = [0u8; 2];
        input
            .read_exact(&mut n)
            .map_err(|_| corrupt(path, "has no trailer (truncated?)"))?;
        let fields = i16::from_be_bytes(n);
        if fields == -1 {
            return Ok(false);
        }
        if fields < 0 {
            return Err(corrupt(path, format!("a tuple claims {fields} fields")));
        }
        buf.extend_from_slice(&n);
        for _ in 0..fields {
            let mut l = [0u8; 4];
            input.read_exact(&mut l).map_err(|_| truncated())?;
            buf.extend_from_slice(&l);
            let len = i32::from_be_bytes(l);
            if len < -1 {
                return Err(corrupt(path, format!("a field claims {len} bytes")));
            }
            if len > 0 {
                let start = buf.len();
                buf.resize(start + len as usize, 0);
                input
                    .read_exact(&mut buf[start..])
                    .map_err(|_| truncated())?;
            }
        }
        Ok(true)
    }
}

impl Iterator for PgcopyChunks {
    type Item = Result<Rows, PgError>;
    fn next(&mut self) -> Option<Self::Item> {
        let Self { path, input, done } = self;
        next_chunk(done, |buf| Self::read_tuple(input, path, buf)).transpose()
    }
}

/// The rows of a `.sql` part's `COPY … FROM stdin;` block (COPY text
/// format: one row per line, newlines inside values escaped).
pub struct SqlCopyChunks {
    path: PathBuf,
    input: BufReader<File>,
    done: bool,
}

impl SqlCopyChunks {
    /// Opens a part and skips to the first row of its COPY block.
    pub fn open(path: &Path) -> Result<Self, PgError> {
        let mut input = BufReader::with_capacity(1 << 20, File::open(path).map_err(io(path))?);
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line).map_err(io(path))? == 0 {
                return Err(corrupt(path, "has no COPY … FROM stdin; block"));
            }
            if line.starts_with(b"COPY ") && line.trim_ascii_end().ends_with(b"FROM stdin;") {
                break;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            input,
            done: false,
        })
    }

    /// Appends one row (line) to `buf`; `false` at the `\.` end marker.
    fn read_line(
        input: &mut BufReader<File>,
        path: &Path,
        buf: &mut Vec<u8>,
    ) -> Result<bool, PgError> {
        let start = buf.len();
        if input.read_until(b'\n', buf).map_err(io(path))? == 0 {
            return Err(corrupt(
                path,
                "the COPY block has no end marker \\. (truncated?)",
            ));
        }
        if &buf[start..] == b"\\.\n" {
            buf.truncate(start);
            return Ok(false);
        }
        if buf.last() != Some(&b'\n') {
            return Err(corrupt(path, "the last row has no newline (truncated?)"));
        }
        Ok(true)
    }
}

impl Iterator for SqlCopyChunks {
    type Item = Result<Rows, PgError>;
    fn next(&mut self) -> Option<Self::Item> {
        let Self { path, input, done } = self;
        next_chunk(done, |buf| Self::read_line(input, path, buf)).transpose()
    }
}

/// Reads whole rows with `read_row` (which appends one row, or returns
/// `false` at the format's end marker) until a chunk is about full.
fn next_chunk(
    done: &mut bool,
    mut read_row: impl FnMut(&mut Vec<u8>) -> Result<bool, PgError>,
) -> Result<Option<Rows>, PgError> {
    if *done {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
    let mut rows = 0u64;
    while buf.len() < CHUNK_BYTES {
        if !read_row(&mut buf)? {
            *done = true;
            break;
        }
        rows += 1;
    }
    if rows == 0 {
        return Ok(None);
    }
    Ok(Some(Rows {
        bytes: Bytes::from(buf),
        rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::codec::binary::PGCOPY_TRAILER;

    #[test]
    fn walks_pgcopy_tuples_and_sql_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.pgcopy");
        let mut bytes = PGCOPY_HEADER.to_vec();
        // (1, NULL), ('ab', 7)
        for (a, b) in [
            (&b"\x00\x00\x00\x01"[..], None),
            (&b"ab"[..], Some(&b"\x07"[..])),
        ] {
            bytes.extend_from_slice(&2i16.to_be_bytes());
            bytes.extend_from_slice(&(a.len() as i32).to_be_bytes());
            bytes.extend_from_slice(a);
            match b {
                Some(b) => {
                    bytes.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    bytes.extend_from_slice(b);
                }
                None => bytes.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        let tuples = bytes.len() - PGCOPY_HEADER.len();
        bytes.extend_from_slice(&PGCOPY_TRAILER);
        std::fs::write(&p, &bytes).unwrap();
        let chunks: Vec<Rows> = PgcopyChunks::open(&p)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].rows, 2);
        assert_eq!(chunks[0].bytes.len(), tuples);
        // Truncated: no trailer.
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(PgcopyChunks::open(&p).unwrap().any(|r| r.is_err()));

        let s = tmp.path().join("t.sql");
        std::fs::write(
            &s,
            b"SET x = 1;\nCOPY \"t\" (\"a\") FROM stdin;\n1\n\\N\nx\\ny\n\\.\n",
        )
        .unwrap();
        let chunks: Vec<Rows> = SqlCopyChunks::open(&s)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(chunks[0].rows, 3);
        assert_eq!(&chunks[0].bytes[..], b"1\n\\N\nx\\ny\n");
        std::fs::write(&s, b"COPY \"t\" (\"a\") FROM stdin;\n1\n").unwrap();
        assert!(SqlCopyChunks::open(&s).unwrap().any(|r| r.is_err()));
    }
}
