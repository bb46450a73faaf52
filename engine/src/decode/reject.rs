//! The error policy's reject file: rows a dataset allows to be bad
//! (`[errors] max_bad_rows`) are set aside with everything needed to fix and
//! replay them, instead of failing the whole file for one typo.
//!
//! The file is JSON Lines — one object per rejected row, in input order — so a
//! person can read it with `less` and a script with `jq`: the line and byte
//! offset where the record starts, the column (1-based number and name), the
//! value, the reason, and the raw record as it was in the file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::DecodeError;

/// The reject file's name in a job folder.
pub const REJECTS_FILE: &str = "rejects.jsonl";

/// Values longer than this are cut in the `value` field (the `raw` field
/// keeps the whole record).
const VALUE_CHARS: usize = 1024;

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// The input, as the user named it.
    pub file: String,
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// Byte offset where the record starts (in the decompressed input).
    pub offset: u64,
    /// 1-based column number (absent when the record as a whole is bad:
    /// wrong field count, invalid UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// Column name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The offending value (lossily decoded, cut at 1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What is wrong, in the words of the matching error message.
    pub reason: String,
    /// The record as it was in the file, without its line ending (lossily
    /// decoded when it is not UTF-8).
    pub raw: String,
}

impl RejectedRow {
    /// The value as stored in the reject file: lossy, cut.
    pub fn value_text(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        match text.char_indices().nth(VALUE_CHARS) {
            Some((i, _)) => format!("{}…", &text[..i]),
            None => text.into_owned(),
        }
    }

    /// One line for messages, shaped like the decode errors.
    pub fn describe(&self) -> String {
        match (&self.column, &self.name, &self.value) {
            (Some(c), Some(n), Some(v)) => format!(
                "{}:{}: column {c} ({n:?}): {}: {v:?}",
                self.file, self.line, self.reason
            ),
            _ => format!("{}:{}: {}", self.file, self.line, self.reason),
        }
    }
}

struct State {
    writer: Option<BufWriter<File>>,
    count: u64,
    first: Option<String>,
}

/// Where a source's rejected rows go, and how many it may have.
///
/// Rows arrive in input order (the reader hands batches over in order), so
/// the file is deterministic. It is created on the first rejected row: a
/// clean input leaves no file.
pub struct RejectSink {
    path: PathBuf,
    max_bad_rows: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for RejectSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RejectSink")
            .field("path", &self.path)
            .field("max_bad_rows", &self.max_bad_rows)
            .field("count", &self.count())
            .finish()
    }
}

impl RejectSink {
    /// A sink writing to `path` that accepts up to `max_bad_rows` rows.
    pub fn new(path: PathBuf, max_bad_rows: u64) -> Self {
        RejectSink {
            path,
            max_bad_rows,
            state: Mutex::new(State {
                writer: None,
                count: 0,
                first: None,
            }),
        }
    }

    /// The reject file (which exists once a row was rejected).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows rejected so far.
    pub fn count(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.count)
    }

    /// Writes `rows` and fails once there are more than `max_bad_rows`.
    pub fn record(&self, file: &str, rows: &[RejectedRow]) -> Result<(), DecodeError> {
        if rows.is_empty() {
            return Ok(());
        }
        let io = |source: std::io::Error| {
            DecodeError::io(
                file.to_string(),
                format!("writing the reject file {}", self.path.display()),
                source,
            )
        };
        let mut state = self.state.lock().map_err(|_| DecodeError::Layout {
            file: file.to_string(),
            detail: "internal: the reject file's lock is poisoned".into(),
        })?;
        if state.writer.is_none() {
            if let Some(parent) = self.path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            state.writer = Some(BufWriter::new(File::create(&self.path).map_err(io)?));
        }
        if state.first.is_none() {
            state.first = rows.first().map(RejectedRow::describe);
        }
        state.count += rows.len() as u64;
        if let Some(w) = state.writer.as_mut() {
            for row in rows {
                serde_json::to_writer(&mut *w, row).map_err(|e| io(e.into()))?;
                w.write_all(b"\n").map_err(io)?;
            }
            w.flush().map_err(io)?;
        }
        if state.count > self.max_bad_rows {
            return Err(DecodeError::TooManyBadRows {
                file: file.to_string(),
                count: state.count,
                max: self.max_bad_rows,
                first: state.first.clone().unwrap_or_default(),
                rejects: self.path.display().to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64) -> RejectedRow {
        RejectedRow {
            file: "in.csv".into(),
            line,
            offset: line * 10,
            column: Some(2),
            name: Some("qty".into()),
            value: Some("x".into()),
            reason: "not an integer".into(),
            raw: format!("{line},x"),
        }
    }

    #[test]
    fn rows_up_to_the_limit_are_written_and_one_more_fails_naming_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("job").join(REJECTS_FILE);
        let sink = RejectSink::new(path.clone(), 2);
        assert!(!path.exists(), "no file before a reject");
        sink.record("in.csv", &[row(3)]).unwrap();
        sink.record("in.csv", &[row(5)]).unwrap();
        let e = sink.record("in.csv", &[row(9)]).unwrap_err().to_string();
        assert!(e.contains("max_bad_rows = 2"), "{e}");
        assert!(e.contains("in.csv:3: column 2 (\"qty\")"), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
        let lines: Vec<RejectedRow> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, vec![row(3), row(5), row(9)]);
        assert_eq!(sink.count(), 3);
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let v = RejectedRow::value_text("é".repeat(2000).as_bytes());
        assert_eq!(v.chars().count(), VALUE_CHARS + 1);
        assert!(v.ends_with('…'));
        assert_eq!(RejectedRow::value_text(b"\xff1"), "\u{fffd}1");
    }
}
