//! Cutting one delimited file into byte ranges that start and end on record
//! boundaries, so that separate tasks can each decode a range of it (a file
//! larger than one task's time or memory, `[source] split_size`).
//!
//! A line feed inside a quoted field does not end a record, and whether a
//! byte is inside quotes depends on every quote before it: no reader can
//! find a boundary by looking around an offset alone (DuckDB's and polars'
//! parallel readers guess and re-check for that reason). The plan is made
//! once, by one sequential pass of the [`Splitter`] the reader itself uses:
//! memory-bandwidth bound (it only stops at quotes and line feeds), and its
//! cuts are boundaries the reader would also make. The pass counts lines
//! too, so each range's errors still name the file's own line numbers.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CsvDialect;
use super::tokenize::Splitter;

/// Bytes `[start, end)` of a file, beginning at a record's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// Offset of the range's first byte.
    pub start: u64,
    /// Offset just past its last byte (a record's line feed, or the file's end).
    pub end: u64,
    /// The file's line number (1-based, counting every line feed) at `start`,
    /// so that errors in this range name the line a person finds in the file.
    pub line: u64,
}

impl ByteRange {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// How far past a target offset the search for the next boundary reads at a
/// time: a cut lands within this many bytes after the first record boundary
/// past the target (the search runs once per part, so small costs nothing).
const WINDOW: usize = 256;

/// Bytes read per call.
const BLOCK: usize = 1 << 20;

/// Cuts the file at `path` into ranges of about `part_bytes` each (at least
/// one; the last may be shorter), each ending where a record ends under
/// `dialect`. A file no larger than `part_bytes` is one range. The first
/// range holds the header (and a byte-order mark), which only it skips.
pub fn record_ranges(
    path: &Path,
    dialect: &CsvDialect,
    part_bytes: u64,
) -> std::io::Result<Vec<ByteRange>> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let part_bytes = part_bytes.max(1);
    if size <= part_bytes {
        return Ok(vec![ByteRange {
            start: 0,
            end: size,
            line: 1,
        }]);
    }
    let mut splitter = Splitter::new(dialect);
    let mut ranges = Vec::new();
    let mut current = ByteRange {
        start: 0,
        end: 0,
        line: 1,
    };
    let mut target = part_bytes;
    let mut searching = false;
    let mut block = vec![0u8; BLOCK];
    let mut pos = 0u64; // offset of block[0]
    let mut lines_before = 0u64; // line feeds before block[0]
    loop {
        let n = read_full(&mut file, &mut block)?;
        if n == 0 {
            break;
        }
        let bytes = &block[..n];
        let mut at = 0usize;
        while at < n {
            if !searching {
                if target >= pos + n as u64 {
                    splitter.scan(&bytes[at..], 0);
                    at = n;
                } else {
                    let t = (target - pos) as usize;
                    if t > at {
                        splitter.scan(&bytes[at..t], 0);
                        at = t;
                    }
                    searching = true;
                }
                continue;
            }
            let w = (at + WINDOW).min(n);
            if let Some(cut) = splitter.scan(&bytes[at..w], 0) {
                let c = at + cut;
                let offset = pos + c as u64;
                if offset < size {
                    let line =
                        1 + lines_before + memchr::memchr_iter(b'\n', &bytes[..c]).count() as u64;
                    current.end = offset;
                    ranges.push(current);
                    current = ByteRange {
                        start: offset,
                        end: 0,
                        line,
                    };
                }
                searching = false;
                target = offset + part_bytes;
            }
            at = w;
        }
        lines_before += memchr::memchr_iter(b'\n', bytes).count() as u64;
        pos += n as u64;
    }
    current.end = pos.max(current.start);
    if !current.is_empty() || ranges.is_empty() {
        ranges.push(current);
    }
    Ok(ranges)
}

/// Fills `buf` unless the file ends first; the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    fn ranges_of(text: &[u8], dialect: &CsvDialect, part: u64) -> Vec<ByteRange> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text).unwrap();
        f.flush().unwrap();
        record_ranges(f.path(), dialect, part).unwrap()
    }

    /// Record boundaries as the reader's own splitter finds them, fed one
    /// byte at a time (the slowest and simplest way).
    fn boundaries(text: &[u8], dialect: &CsvDialect) -> Vec<u64> {
        let mut s = Splitter::new(dialect);
        let mut out = Vec::new();
        for i in 0..text.len() {
            if s.scan(&text[i..i + 1], 0).is_some() {
                out.push(i as u64 + 1);
            }
        }
        out
    }

    fn check(text: &[u8], dialect: &CsvDialect, part: u64) {
        let ranges = ranges_of(text, dialect, part);
        assert!(!ranges.is_empty());
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges.last().unwrap().end, text.len() as u64);
        let cuts = boundaries(text, dialect);
        for w in ranges.windows(2) {
            assert_eq!(w[0].end, w[1].start, "ranges are contiguous");
            assert!(
                cuts.contains(&w[1].start),
                "{} is not a record boundary",
                w[1].start
            );
            assert!(!w[0].is_empty());
        }
        for r in &ranges {
            let before = memchr::memchr_iter(b'\n', &text[..r.start as usize]).count() as u64;
            assert_eq!(r.line, before + 1, "line number at {}", r.start);
        }
    }

    #[test]
    fn a_small_file_is_one_range() {
        let d = CsvDialect::default();
        assert_eq!(
            ranges_of(b"a,b\n1,2\n", &d, 1 << 20),
            vec![ByteRange {
                start: 0,
                end: 8,
                line: 1
            }]
        );
    }

    #[test]
    fn cuts_never_fall_inside_quotes() {
        let d = CsvDialect::default();
        // Every record has a quoted line feed; a cut after it would split
        // the record in two.
        let mut text = b"id,note\n".to_vec();
        for i in 0..5000 {
            text.extend_from_slice(
                format!("{i},\"line one\nline two, \"\"quoted\"\"\"\n").as_bytes(),
            );
        }
        for part in [1, 7, 100, 4096, 50_000] {
            check(&text, &d, part);
        }
        let ranges = ranges_of(&text, &d, 50_000);
        assert!(ranges.len() > 2);
        for r in &ranges[1..] {
            let at = &text[r.start as usize..];
            assert!(at[0].is_ascii_digit(), "a range starts at a record");
        }
    }

    #[test]
    fn sizes_are_near_the_part_size() {
        let d = CsvDialect::default();
        let text = "1,abcdefgh\n".repeat(200_000); // 2.2 MB
        let ranges = ranges_of(text.as_bytes(), &d, 500_000);
        assert_eq!(ranges.len(), 5);
        for r in &ranges[..4] {
            assert!(
                r.len() >= 500_000 && r.len() < 500_000 + WINDOW as u64 + 11,
                "{r:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn ranges_tile_the_file_on_record_boundaries(
            records in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![
                    Just("x".to_string()),
                    Just("\"a\nb\"".to_string()),
                    Just("\"q\"\"\"".to_string()),
                    Just("".to_string()),
                    Just("\"\r\n,\"".to_string()),
                ], 1..4),
                0..200),
            part in 1u64..300,
            crlf in any::<bool>(),
        ) {
            let d = CsvDialect::default();
            let end = if crlf { "\r\n" } else { "\n" };
            let text: String = records.iter().map(|r| r.join(",") + end).collect();
            check(text.as_bytes(), &d, part);
        }
    }
}
