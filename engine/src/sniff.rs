//! Sniffing an unknown file: format, delimiter, header and column types, for
//! `ferry spec init` and for `ferry load` without a spec. It uses the same
//! tokenizer and inference as decoding, so what it proposes will read.

use std::path::Path;

use crate::decode::csv::CsvDialect;
use crate::decode::csv::infer::Inference;
use crate::decode::csv::tokenize::{Records, tokenize};
use crate::error::FerryError;
use crate::format::Format;
use crate::source::{Input, first_lines, resolve_format};
use crate::spec::SourceSpec;

/// What sniffing concluded about a delimited file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// Field delimiter.
    pub delimiter: u8,
    /// Whether the first record is a header.
    pub header: bool,
    /// Why the header decision was made (shown to the user).
    pub header_reason: String,
}

const CANDIDATES: [u8; 4] = [b',', b'\t', b'|', b';'];

/// A guess at a text file's encoding, for `ferry spec init` to write down
/// (and say so): `utf-16` after a UTF-16 byte-order mark; `windows-1252`
/// (the usual encoding of a Western spreadsheet export, and a superset of
/// latin1) when the first 64 KiB are not UTF-8; `None` for UTF-8, or for a
/// format that is not text.
pub fn guess_encoding(
    source: &SourceSpec,
    input: &Input,
) -> Result<Option<&'static str>, FerryError> {
    use std::io::Read;
    if !resolve_format(source, input)?.is_text() {
        return Ok(None);
    }
    let compression = source.compression.resolve(Path::new(&input.path));
    let file = std::fs::File::open(&input.path)
        .map_err(|e| FerryError::io(format!("opening {}", input.display), e))?;
    let mut head = Vec::with_capacity(64 << 10);
    compression
        .reader(file)
        .and_then(|r| r.take(64 << 10).read_to_end(&mut head))
        .map_err(|e| FerryError::io(format!("reading {}", input.display), e))?;
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Ok(Some("utf-16"));
    }
    Ok(match std::str::from_utf8(&head) {
        Ok(_) => None,
        // Cut inside a character at the end of the 64 KiB: still UTF-8.
        Err(e) if e.error_len().is_none() => None,
        Err(_) => Some("windows-1252"),
    })
}

/// Guesses delimiter and header from the first lines of a delimited file.
pub fn sniff_delimited(lines: &[String], base: &CsvDialect) -> Sniffed {
    // Drop the last line: it may be cut mid-record.
    let text = match lines.len() {
        0 | 1 => lines.join("\n"),
        n => lines[..n - 1].join("\n"),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut best = (b',', 0usize);
    for &d in &CANDIDATES {
        let dialect = CsvDialect {
            delimiter: d,
            header: false,
            ..base.clone()
        };
        let mut records = Records::default();
        let Ok(r) = tokenize(text.as_bytes(), &dialect, &mut records) else {
            continue;
        };
        if r.is_empty() {
            continue;
        }
        let first = r.field_count(0);
        let consistent = (0..r.len()).all(|i| r.field_count(i) == first);
        if consistent && first > 1 && first > best.1 {
            best = (d, first);
        }
    }
    let delimiter = best.0;
    let dialect = CsvDialect {
        delimiter,
        header: false,
        ..base.clone()
    };
    let mut records = Records::default();
    let r = match tokenize(text.as_bytes(), &dialect, &mut records) {
        Ok(r) if !r.is_empty() => r,
        _ => {
            return Sniffed {
                delimiter,
                header: true,
                header_reason: "assumed (the sample could not be read)".into(),
            };
        }
    };
    let n = r.field_count(0);
    let mut inf = Inference::new(n);
    inf.observe(&r, 1..r.len(), &dialect);
    let mut typed_mismatch = None;
    for c in 0..n {
        let (bytes, _) = r.get(0, c);
        if inf.is_typed(c) && !inf.value_fits(c, bytes) {
            typed_mismatch = Some(c);
            break;
        }
    }
    let (header, header_reason) = match typed_mismatch {
        Some(c) => (
            true,
            format!(
                "detected: the first row's {:?} does not fit column {}'s type",
                String::from_utf8_lossy(r.get(0, c).0),
                c + 1
            ),
        ),
        None if (0..n).any(|c| inf.is_typed(c)) => (
            false,
            "detected: the first row fits the types of the rows below it".into(),
        ),
        None => {
            let names: Vec<&[u8]> = (0..n).map(|c| r.get(0, c).0).collect();
            let unique = names
                .iter()
                .enumerate()
                .all(|(i, a)| !a.is_empty() && !names[..i].contains(a));
            if unique {
                (true, "guessed: every column is text and the first row's values are distinct; check it".into())
            } else {
                (
                    false,
                    "guessed: the first row has empty or repeated values, so it is data; check it"
                        .into(),
                )
            }
        }
    };
    Sniffed {
        delimiter,
        header,
        header_reason,
    }
}

/// Fills a source spec's format, delimiter and header from the file itself
/// where the spec (or the command line) left them open.
pub fn complete_source(
    source: &mut SourceSpec,
    input: &Input,
) -> Result<Option<Sniffed>, FerryError> {
    let format = resolve_format(source, input)?;
    source.format = Some(format);
    if !format.is_delimited() || (source.delimiter.is_some() && source.header.is_some()) {
        return Ok(None);
    }
    let compression = source.compression.resolve(Path::new(&input.path));
    let lines = first_lines(input, compression, source.text_encoding(), 200)?;
    let base = CsvDialect {
        delimiter: if format == Format::Tsv { b'\t' } else { b',' },
        ..CsvDialect::default()
    };
    let sniffed = sniff_delimited(&lines, &base);
    if source.delimiter.is_none() && format == Format::Csv && sniffed.delimiter != b',' {
        source.delimiter = Some(match sniffed.delimiter {
            b'\t' => "\\t".to_string(),
            d => (d as char).to_string(),
        });
    }
    if source.header.is_none() {
        source.header = Some(sniffed.header);
    }
    Ok(Some(sniffed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(text: &str) -> Sniffed {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        sniff_delimited(&lines, &CsvDialect::default())
    }

    #[test]
    fn finds_delimiters_and_headers() {
        let s = sniff("id|name|price\n1|a|1.5\n2|b|2\n3|c|3\n");
        assert_eq!((s.delimiter, s.header), (b'|', true));
        let s = sniff("1\tx\t2024-01-01\n2\ty\t2024-01-02\n3\tz\t2024-01-03\n");
        assert_eq!((s.delimiter, s.header), (b'\t', false));
        let s = sniff("a;b\n\"x;y\";z\nq;r\nend;here\n");
        assert_eq!(s.delimiter, b';');
        let s = sniff("name,city\nann,oslo\nbob,rome\nx,y\n");
        assert!(s.header, "{}", s.header_reason);
        let s = sniff("ann,oslo\nann,rome\n,y\nq,r\n");
        assert_eq!(s.delimiter, b',');
    }
}
