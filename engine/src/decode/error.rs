//! Decode errors that name the file, the line, the column and the value, and
//! say what to do: the message a person reads when an input is bad.

/// A problem reading an input file. `Clone` because the error travels
/// through DataFusion as a boxed source and is rebuilt on the way out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DecodeError {
    /// A value that does not parse as its column's type.
    #[error("{file}:{line}: column {column} ({name:?}): {reason}: {value}{hint}")]
    Value {
        /// Input file.
        file: String,
        /// 1-based physical line where the record starts.
        line: u64,
        /// 1-based column number.
        column: usize,
        /// Column name.
        name: String,
        /// The value as text (quoted, truncated).
        value: String,
        /// What is wrong.
        reason: String,
        /// What to do, starting with "; ".
        hint: String,
    },
    /// A field the inferred schema lacks: it first appears after the lines
    /// sampled for inference. Refused rather than dropped.
    #[error(
        "{file}:{line}: field {field:?} first appears here, after the {sampled} lines sampled to infer the schema; ferry does not drop its values: raise infer_rows in [source] (0 samples every line) or declare the field ([[source.columns]])"
    )]
    NewField {
        /// Input file.
        file: String,
        /// 1-based line where the field first appears.
        line: u64,
        /// The field (a dotted path when nested).
        field: String,
        /// Lines sampled for inference.
        sampled: usize,
    },
    /// A value of a typed file (Parquet, Arrow IPC, Avro) that its declared
    /// type cannot hold as it is.
    #[error("{file}: row {row}: column {column} ({name:?}): {reason}: {value}{hint}")]
    RowValue {
        /// Input file.
        file: String,
        /// 1-based row in the file.
        row: u64,
        /// 1-based column number.
        column: usize,
        /// Column name.
        name: String,
        /// The value.
        value: String,
        /// What is wrong.
        reason: String,
        /// What to do, starting with "; ".
        hint: String,
    },
    /// A record with the wrong number of fields.
    #[error(
        "{file}:{line}: expected {expected} fields, found {found}; record starts: {preview}{hint}"
    )]
    FieldCount {
        /// Input file.
        file: String,
        /// 1-based line where the record starts.
        line: u64,
        /// Fields expected.
        expected: usize,
        /// Fields found.
        found: usize,
        /// The start of the record.
        preview: String,
        /// What to do.
        hint: String,
    },
    /// A quoted field that never closes.
    #[error(
        "{file}:{line}: a quoted field opened in the record starting here is never closed (unterminated quote at end of input)"
    )]
    Unterminated {
        /// Input file.
        file: String,
        /// 1-based line where the record starts.
        line: u64,
    },
    /// Bytes that are not UTF-8 (the default encoding).
    #[error(
        "{file}:{line}: invalid UTF-8 at byte offset {offset} (bytes {bytes}); if the file is in another encoding, declare it: [source] encoding = \"windows-1252\" (or latin1, utf-16, …; --encoding without a spec)"
    )]
    Utf8 {
        /// Input file.
        file: String,
        /// 1-based line.
        line: u64,
        /// Byte offset in the (decompressed) input.
        offset: u64,
        /// The offending bytes in hex.
        bytes: String,
    },
    /// Bytes the declared encoding does not allow.
    #[error(
        "{file}:{line}: a byte sequence that is not valid {encoding}; is [source] encoding right for this file?"
    )]
    Malformed {
        /// Input file.
        file: String,
        /// 1-based line.
        line: u64,
        /// The declared encoding.
        encoding: &'static str,
    },
    /// The file could not be read or decompressed.
    #[error("{file}: {what}: {source}")]
    Io {
        /// Input file.
        file: String,
        /// What was being done.
        what: String,
        /// Underlying error.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// The file's structure does not match the spec (header, column names…).
    #[error("{file}: {detail}")]
    Layout {
        /// Input file.
        file: String,
        /// What does not match.
        detail: String,
    },
    /// More rows were bad than the dataset's error policy allows.
    #[error(
        "{file}: {count} bad rows, more than max_bad_rows = {max}; the first: {first}; every bad row so far is in {rejects}"
    )]
    TooManyBadRows {
        /// Input file.
        file: String,
        /// Rows rejected when the limit was crossed.
        count: u64,
        /// The dataset's `max_bad_rows`.
        max: u64,
        /// The first rejected row, described.
        first: String,
        /// The reject file.
        rejects: String,
    },
    /// A reader from DataFusion/Arrow failed (JSON, Parquet, Arrow IPC).
    #[error("{file}{location}: {detail}")]
    Reader {
        /// Input file.
        file: String,
        /// ":line" when known.
        location: String,
        /// The reader's message.
        detail: String,
    },
}

impl DecodeError {
    /// An I/O failure on `file` while doing `what`.
    pub fn io(file: impl Into<String>, what: impl Into<String>, source: std::io::Error) -> Self {
        DecodeError::Io {
            file: file.into(),
            what: what.into(),
            source: std::sync::Arc::new(source),
        }
    }
}

/// Quotes a field for an error message, lossily decoded and truncated.
pub fn show_value(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(120).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    format!("{out:?}")
}
