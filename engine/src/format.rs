//! Input formats, named in specs and recognised by file extension.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::decode::Compression;

/// A file format ferry reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text, comma by default.
    Csv,
    /// Tab-separated text.
    Tsv,
    /// Newline-delimited JSON (one object per line).
    #[serde(alias = "jsonl", alias = "json")]
    Ndjson,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC, file format (Feather v2) or stream format.
    #[serde(alias = "ipc", alias = "feather", alias = "arrows")]
    Arrow,
    /// Avro object container file.
    Avro,
    /// A spreadsheet (`.xlsx`; `.xlsm`, `.xlsb`, `.xls` and `.ods` too): one sheet.
    #[serde(alias = "excel", alias = "xls", alias = "ods")]
    Xlsx,
}

impl Format {
    /// Every input format, so help texts and errors list them from one place
    /// (a format added here cannot be left out of `--format`'s help).
    pub const ALL: [Format; 7] = [
        Format::Csv,
        Format::Tsv,
        Format::Ndjson,
        Format::Parquet,
        Format::Arrow,
        Format::Avro,
        Format::Xlsx,
    ];

    /// `csv, tsv, ndjson, parquet, arrow, avro`.
    pub fn names() -> String {
        Format::ALL.map(|f| f.to_string()).join(", ")
    }

    /// The format a file name implies (after any compression extension), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = Compression::from_path(path)
            .strip_extension(&name)
            .to_string();
        let ext = Path::new(&name).extension()?.to_str()?.to_string();
        Some(match ext.as_str() {
            "csv" | "txt" | "tbl" | "psv" | "dat" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "ndjson" | "jsonl" | "json" => Format::Ndjson,
            "parquet" | "pq" => Format::Parquet,
            "arrow" | "ipc" | "feather" | "arrows" => Format::Arrow,
            "avro" => Format::Avro,
            "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => Format::Xlsx,
            _ => return None,
        })
    }

    /// Whether the format is delimited text (read by ferry's CSV reader).
    pub fn is_delimited(self) -> bool {
        matches!(self, Format::Csv | Format::Tsv)
    }

    /// Lines of text, which `[source] encoding` applies to.
    pub fn is_text(self) -> bool {
        matches!(self, Format::Csv | Format::Tsv | Format::Ndjson)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
            Format::Avro => "avro",
            Format::Xlsx => "xlsx",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_listed_and_parses_by_its_name() {
        for f in Format::ALL {
            let parsed: Format = serde_json::from_value(serde_json::json!(f.to_string())).unwrap();
            assert_eq!(parsed, f);
        }
        assert_eq!(
            Format::names(),
            "csv, tsv, ndjson, parquet, arrow, avro, xlsx"
        );
    }

    #[test]
    fn by_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/lineitem.tbl")),
            Some(Format::Csv)
        );
        assert_eq!(Format::from_path(Path::new("x.TSV.gz")), Some(Format::Tsv));
        assert_eq!(
            Format::from_path(Path::new("e.jsonl.zst")),
            Some(Format::Ndjson)
        );
        assert_eq!(
            Format::from_path(Path::new("t.parquet")),
            Some(Format::Parquet)
        );
        assert_eq!(
            Format::from_path(Path::new("t.feather")),
            Some(Format::Arrow)
        );
        assert_eq!(Format::from_path(Path::new("noext")), None);
    }
}
