//! Splitting CSV bytes into records and fields.
//!
//! Two passes with different jobs. [`Splitter`] runs sequentially over the
//! input and only finds record boundaries (tracking quote state, so a quoted
//! newline never splits a record: the failure that breaks naive parallel CSV
//! readers). [`tokenize`] then runs in parallel on complete chunks and
//! produces field bytes, unescaped, with a quoted flag per field (PostgreSQL
//! treats a quoted empty field as `""` and an unquoted one as NULL).

use memchr::{memchr, memchr2, memchr3};

use super::super::error::{DecodeError, show_value};
use super::dialect::CsvDialect;

/// Fields of the records of one chunk, stored flat.
#[derive(Debug, Default)]
pub struct Records {
    /// Unescaped field bytes, back to back.
    pub data: Vec<u8>,
    /// End offset in `data` of each field.
    pub field_ends: Vec<u32>,
    /// Whether each field had any quoted part.
    pub quoted: Vec<bool>,
    /// Index of each record's first field (one extra entry at the end).
    pub record_fields: Vec<u32>,
    /// Byte offset within the chunk where each record starts.
    pub record_offsets: Vec<u32>,
}

impl Records {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.record_fields.len().saturating_sub(1)
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of fields of record `r`.
    #[inline]
    pub fn field_count(&self, r: usize) -> usize {
        (self.record_fields[r + 1] - self.record_fields[r]) as usize
    }

    /// Bytes and quoted flag of field `f` (flat index).
    #[inline]
    pub fn field(&self, f: usize) -> (&[u8], bool) {
        let start = if f == 0 {
            0
        } else {
            self.field_ends[f - 1] as usize
        };
        (
            &self.data[start..self.field_ends[f] as usize],
            self.quoted[f],
        )
    }

    /// Bytes and quoted flag of column `c` of record `r`.
    #[inline]
    pub fn get(&self, r: usize, c: usize) -> (&[u8], bool) {
        self.field(self.record_fields[r] as usize + c)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.field_ends.clear();
        self.quoted.clear();
        self.record_fields.clear();
        self.record_offsets.clear();
    }
}

/// A quote the records cannot be cut around: a quoted field still open when
/// the chunk (the input) ended, or one that ran over a line break and closed
/// in the middle of a field — the mark of a stray quote that swallowed the
/// lines after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unterminated {
    /// Byte offset in the chunk where the record started.
    pub record_offset: usize,
    /// Where the quote closed, when it did (in the middle of a field).
    pub closed_at: Option<usize>,
}

impl Unterminated {
    /// The error a person reads: the file, the line where the record starts
    /// (`chunk` starts on line `first_line`) and, for a quote closed
    /// mid-field, the line where it closed.
    pub fn to_error(&self, file: &str, chunk: &[u8], first_line: u64) -> DecodeError {
        let line_at = |at: usize| {
            first_line + memchr::memchr_iter(b'\n', &chunk[..at.min(chunk.len())]).count() as u64
        };
        match self.closed_at {
            None => DecodeError::Unterminated {
                file: file.to_string(),
                line: line_at(self.record_offset),
            },
            Some(at) => DecodeError::Layout {
                file: file.to_string(),
                detail: format!(
                    "line {}: a quoted field opened in the record starting here runs to line {} and closes in the middle of a field (before {}): a stray quote? Fix the quoting, or set quote = \"\" if the file does not quote",
                    line_at(self.record_offset),
                    line_at(at),
                    show_value(&chunk[(at + 1).min(chunk.len())..(at + 2).min(chunk.len())])
                ),
            },
        }
    }
}

/// Tokenizes a chunk made of complete records (the last may lack its line
/// break). Blank lines and comment lines are skipped; with
/// `trailing_delimiter`, an empty unquoted last field is dropped.
pub fn tokenize(chunk: &[u8], d: &CsvDialect, out: &mut Records) -> Result<(), Unterminated> {
    out.clear();
    let len = chunk.len();
    let quote = d.quote;
    let escape = d.effective_escape();
    let delim = d.delimiter;
    let mut i = 0;
    while i < len {
        let rec_start = i;
        let b = chunk[i];
        if Some(b) == d.comment {
            i = memchr(b'\n', &chunk[i..]).map_or(len, |p| i + p + 1);
            continue;
        }
        if b == b'\n' {
            i += 1;
            continue;
        }
        if b == b'\r' && chunk.get(i + 1) == Some(&b'\n') {
            i += 2;
            continue;
        }
        out.record_fields.push(out.field_ends.len() as u32);
        out.record_offsets.push(rec_start as u32);
        // Fields of this record.
        'record: loop {
            let mut quoted = false;
            // Unquoted segment(s) and quoted segment(s) alternate within a field.
            loop {
                let rest = &chunk[i..];
                let hit = match quote {
                    Some(q) => memchr3(delim, b'\n', q, rest),
                    None => memchr2(delim, b'\n', rest),
                };
                let Some(p) = hit else {
                    push_trimmed_cr(&mut out.data, rest);
                    end_field(out, quoted);
                    i = len;
                    break 'record;
                };
                let c = rest[p];
                if c == delim {
                    out.data.extend_from_slice(&rest[..p]);
                    end_field(out, quoted);
                    i += p + 1;
                    continue 'record;
                }
                if c == b'\n' {
                    push_trimmed_cr(&mut out.data, &rest[..p]);
                    end_field(out, quoted);
                    i += p + 1;
                    break 'record;
                }
                // An opening quote.
                out.data.extend_from_slice(&rest[..p]);
                quoted = true;
                i += p + 1;
                let opened = i;
                let q = c;
                loop {
                    let rest = &chunk[i..];
                    let hit = match escape {
                        Some(e) if e != q => memchr2(q, e, rest),
                        _ => memchr(q, rest),
                    };
                    let Some(p) = hit else {
                        return Err(Unterminated {
                            record_offset: rec_start,
                            closed_at: None,
                        });
                    };
                    out.data.extend_from_slice(&rest[..p]);
                    let c = rest[p];
                    let next = rest.get(p + 1).copied();
                    if c == q {
                        if escape == Some(q) && next == Some(q) {
                            out.data.push(q);
                            i += p + 2;
                            continue;
                        }
                        i += p + 1;
                        // PostgreSQL reads `"a"b` as `ab`, and so does ferry;
                        // but a quoted part over a line break that closes
                        // mid-field is a stray quote, not data.
                        if next.is_some_and(|n| n != delim && n != b'\n' && n != b'\r')
                            && memchr(b'\n', &chunk[opened..i]).is_some()
                        {
                            return Err(Unterminated {
                                record_offset: rec_start,
                                closed_at: Some(i - 1),
                            });
                        }
                        break; // back to unquoted
                    }
                    // The escape character: it escapes a quote or itself only.
                    match next {
                        Some(n) if n == q || Some(n) == escape => {
                            out.data.push(n);
                            i += p + 2;
                        }
                        _ => {
                            out.data.push(c);
                            i += p + 1;
                        }
                    }
                }
            }
        }
        if d.trailing_delimiter {
            let first = *out.record_fields.last().unwrap_or(&0) as usize;
            let last = out.field_ends.len() - 1;
            if last > first {
                let (bytes, quoted) = out.field(last);
                if bytes.is_empty() && !quoted {
                    out.field_ends.pop();
                    out.quoted.pop();
                }
            }
        }
    }
    out.record_fields.push(out.field_ends.len() as u32);
    Ok(())
}

#[inline]
fn push_trimmed_cr(data: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    data.extend_from_slice(bytes);
}

#[inline]
fn end_field(out: &mut Records, quoted: bool) {
    out.field_ends.push(out.data.len() as u32);
    out.quoted.push(quoted);
}

/// Finds record boundaries in a byte stream, sequentially and cheaply
/// (it only stops at quotes, escapes and line breaks).
#[derive(Debug, Clone)]
pub struct Splitter {
    quote: Option<u8>,
    escape: Option<u8>,
    comment: Option<u8>,
    in_quotes: bool,
    in_comment: bool,
    at_line_start: bool,
    /// A pending escape byte whose next byte must be skipped.
    skip_next: bool,
}

impl Splitter {
    /// A splitter positioned at the start of a record.
    pub fn new(d: &CsvDialect) -> Self {
        Splitter {
            quote: d.quote,
            escape: d.effective_escape(),
            comment: d.comment,
            in_quotes: false,
            in_comment: false,
            at_line_start: true,
            skip_next: false,
        }
    }

    /// Scans `buf[from..]` (continuing the state left by earlier calls, which
    /// must have scanned `buf[..from]`) and returns the offset just past the
    /// last line break that ends a record, if any.
    pub fn scan(&mut self, buf: &[u8], from: usize) -> Option<usize> {
        let mut last = None;
        let mut i = from;
        let len = buf.len();
        while i < len {
            if self.skip_next {
                self.skip_next = false;
                i += 1;
                continue;
            }
            if self.in_comment {
                match memchr(b'\n', &buf[i..]) {
                    Some(p) => {
                        i += p + 1;
                        self.in_comment = false;
                        self.at_line_start = true;
                        last = Some(i);
                        continue;
                    }
                    None => return last,
                }
            }
            if self.at_line_start {
                self.at_line_start = false;
                if !self.in_quotes && Some(buf[i]) == self.comment {
                    self.in_comment = true;
                    continue;
                }
            }
            let rest = &buf[i..];
            if self.in_quotes {
                let q = self.quote.unwrap_or(b'"');
                let hit = match self.escape {
                    Some(e) if e != q => memchr3(q, e, b'\n', rest),
                    _ => memchr2(q, b'\n', rest),
                };
                let Some(p) = hit else { return last };
                let c = rest[p];
                i += p + 1;
                if c == b'\n' {
                    self.at_line_start = true;
                } else if c == q {
                    // A doubled quote closes and reopens: same state either way.
                    self.in_quotes = false;
                } else {
                    self.skip_next = true;
                }
            } else {
                let hit = match self.quote {
                    Some(q) => memchr2(q, b'\n', rest),
                    None => memchr(b'\n', rest),
                };
                let Some(p) = hit else { return last };
                i += p + 1;
                if rest[p] == b'\n' {
                    self.at_line_start = true;
                    last = Some(i);
                } else {
                    self.in_quotes = true;
                }
            }
        }
        last
    }

    /// Whether the scanner is inside a quoted field (at end of input: the
    /// last record is unterminated).
    pub fn in_quotes(&self) -> bool {
        self.in_quotes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(input: &str, d: &CsvDialect) -> Vec<Vec<(String, bool)>> {
        let mut r = Records::default();
        tokenize(input.as_bytes(), d, &mut r).unwrap();
        (0..r.len())
            .map(|i| {
                (0..r.field_count(i))
                    .map(|c| {
                        let (b, q) = r.get(i, c);
                        (String::from_utf8(b.to_vec()).unwrap(), q)
                    })
                    .collect()
            })
            .collect()
    }

    fn plain(v: &[&str]) -> Vec<(String, bool)> {
        v.iter().map(|s| (s.to_string(), false)).collect()
    }

    #[test]
    fn basic_and_crlf() {
        let d = CsvDialect::default();
        assert_eq!(
            fields("a,b\r\n1,2\n", &d),
            vec![plain(&["a", "b"]), plain(&["1", "2"])]
        );
        assert_eq!(
            fields("x,\n,y", &d),
            vec![plain(&["x", ""]), plain(&["", "y"])]
        );
        // blank lines are skipped
        assert_eq!(
            fields("a\n\n\r\nb\n", &d),
            vec![plain(&["a"]), plain(&["b"])]
        );
    }

    #[test]
    fn quotes_like_postgres() {
        let d = CsvDialect::default();
        let got = fields(
            "\"\",x\n\"a,b\",\"say \"\"hi\"\"\"\n\"multi\nline\",ab\"cd\"ef\n",
            &d,
        );
        assert_eq!(got[0], vec![("".into(), true), ("x".into(), false)]);
        assert_eq!(
            got[1],
            vec![("a,b".into(), true), ("say \"hi\"".into(), true)]
        );
        assert_eq!(
            got[2],
            vec![("multi\nline".into(), true), ("abcdef".into(), true)]
        );
        // quoted \r\n stays data; unquoted trailing \r is a line ending
        let got = fields("\"a\r\nb\"\r\n", &d);
        assert_eq!(got[0], vec![("a\r\nb".into(), true)]);
    }

    #[test]
    fn escapes_and_comments() {
        let d = CsvDialect {
            escape: Some(b'\\'),
            comment: Some(b'#'),
            ..CsvDialect::default()
        };
        let got = fields("# a \"comment\n\"a\\\"b\",\"c\\\\d\",\"e\\f\"\n", &d);
        assert_eq!(
            got,
            vec![vec![
                ("a\"b".into(), true),
                ("c\\d".into(), true),
                ("e\\f".into(), true)
            ]]
        );
    }

    #[test]
    fn trailing_delimiter_and_no_quote() {
        let d = CsvDialect {
            delimiter: b'|',
            trailing_delimiter: true,
            quote: None,
            header: false,
            ..CsvDialect::default()
        };
        assert_eq!(
            fields("1|\"x|\n2||\n", &d),
            vec![plain(&["1", "\"x"]), plain(&["2", ""])]
        );
    }

    #[test]
    fn unterminated_quote() {
        let mut r = Records::default();
        let e = tokenize(b"a\n\"open,1\n2\n", &CsvDialect::default(), &mut r).unwrap_err();
        assert_eq!(e.record_offset, 2);
    }

    #[test]
    fn a_stray_quote_that_swallows_lines_is_refused() {
        let mut r = Records::default();
        let d = CsvDialect::default();
        // Line 3 opens a quote that the `"` on line 5 closes mid-field.
        let text = b"id,s\n1,a\n2,\"b\n3,c\n4,\"d\n5,e\n";
        let e = tokenize(text, &d, &mut r).unwrap_err();
        assert_eq!(e.record_offset, 9);
        assert_eq!(e.closed_at, Some(20));
        // Over a line break and then a delimiter or line end: fine.
        tokenize(b"1,\"a\nb\",c\n2,\"x\ny\"\r\n", &d, &mut r).unwrap();
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn splitter_never_cuts_a_quoted_field() {
        let d = CsvDialect {
            comment: Some(b'#'),
            ..CsvDialect::default()
        };
        let input = b"a,\"x\ny\"\n# \"odd\nb,\"\"\"\n\"\nc,d";
        let mut s = Splitter::new(&d);
        // Boundaries only after complete records: after line 2 ("a,..y"), after
        // the comment, and after the record ending at the quoted newline.
        let mut cuts = Vec::new();
        for end in 1..=input.len() {
            let mut s2 = Splitter::new(&d);
            if let Some(c) = s2.scan(&input[..end], 0) {
                cuts.push(c);
            }
        }
        cuts.dedup();
        assert_eq!(cuts, vec![8, 15, 23]);
        // Incremental scanning agrees with one pass.
        assert_eq!(s.scan(&input[..10], 0), Some(8));
        assert_eq!(s.scan(input, 10), Some(23));
        assert!(!s.in_quotes());
    }

    proptest::proptest! {
        #[test]
        fn split_anywhere_then_tokenize_equals_whole(
            rows in proptest::collection::vec(
                proptest::collection::vec("[a-c,\"\n ]{0,6}", 1..4), 1..20),
            cut in 0usize..400,
        ) {
            // Write rows with proper quoting, then compare whole vs split tokenization.
            let d = CsvDialect::default();
            let mut text = String::new();
            for r in &rows {
                let line: Vec<String> = r.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
                text.push_str(&line.join(","));
                text.push('\n');
            }
            let bytes = text.as_bytes();
            let cut = cut.min(bytes.len());
            let mut s = Splitter::new(&d);
            let boundary = s.scan(&bytes[..cut], 0).unwrap_or(0);
            let mut whole = Records::default();
            tokenize(bytes, &d, &mut whole).unwrap();
            let mut a = Records::default();
            let mut b = Records::default();
            tokenize(&bytes[..boundary], &d, &mut a).unwrap();
            tokenize(&bytes[boundary..], &d, &mut b).unwrap();
            proptest::prop_assert_eq!(a.len() + b.len(), rows.len());
            proptest::prop_assert_eq!(whole.len(), rows.len());
            for (i, r) in rows.iter().enumerate() {
                let (recs, k) = if i < a.len() { (&a, i) } else { (&b, i - a.len()) };
                for (c, f) in r.iter().enumerate() {
                    proptest::prop_assert_eq!(recs.get(k, c).0, f.as_bytes());
                }
            }
        }
    }
}
