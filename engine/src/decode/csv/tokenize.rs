//! Splitting CSV bytes into records and fields.
//!
//! Two passes with different jobs. [`Splitter`] runs sequentially over the
//! input and only finds record boundaries (tracking quote state, so a quoted
//! newline never splits a record: the failure that breaks naive parallel CSV
//! readers). [`tokenize`] then runs in parallel on complete chunks and
//! produces each field as a span of the chunk (or of a side buffer when it
//! had to be unescaped) with a quoted flag (PostgreSQL treats a quoted empty
//! field as `""` and an unquoted one as NULL).

use memchr::{memchr, memchr2};

use super::super::error::{DecodeError, show_value};
use super::dialect::CsvDialect;

/// Fields of the records of one chunk, kept between chunks so that its
/// buffers are reused; read through the [`Tokens`] that [`tokenize`] returns.
///
/// A field is a span: of the chunk itself when its bytes are one run of it
/// (an unquoted field, or a quoted one without escapes), so the common
/// field is never copied; of `unescaped` when they are not (an escaped or
/// doubled quote, or quoted and unquoted parts side by side).
#[derive(Debug, Default)]
pub struct Records {
    /// Bytes of the fields that had to be unescaped, back to back.
    unescaped: Vec<u8>,
    /// Start and end of each field, in the chunk or in `unescaped`.
    spans: Vec<(u32, u32)>,
    /// [`QUOTED`] and [`UNESCAPED`] bits of each field.
    flags: Vec<u8>,
    /// Index of each record's first field (one extra entry at the end).
    record_fields: Vec<u32>,
    /// Byte offset within the chunk where each record starts.
    record_offsets: Vec<u32>,
    /// Size of the chunk tokenized last, whose field and record counts
    /// size the buffers for the next one.
    last_len: usize,
}

/// The field had a quoted part (PostgreSQL reads a quoted empty field as
/// `""` and an unquoted one as NULL).
const QUOTED: u8 = 1;
/// The field's span is in `Records::unescaped`, not in the chunk.
const UNESCAPED: u8 = 2;

impl Records {
    fn clear(&mut self) {
        self.unescaped.clear();
        self.spans.clear();
        self.flags.clear();
        self.record_fields.clear();
        self.record_offsets.clear();
    }

    /// Clears the buffers and, when `len` is larger than the last chunk,
    /// gives them fresh room for it at the last chunk's density: growing a
    /// cleared buffer would copy its dead contents at every doubling, and
    /// the reader's chunks double in size at the start of every file.
    fn prepare(&mut self, len: usize) {
        let (fields, records, last) = (self.spans.len(), self.record_fields.len(), self.last_len);
        self.clear();
        self.last_len = len;
        if last == 0 || len <= last {
            return;
        }
        let room = |n: usize| (n as u64 * len as u64 / last as u64) as usize + n / 8 + 64;
        fresh(&mut self.spans, room(fields));
        fresh(&mut self.flags, room(fields));
        fresh(&mut self.record_fields, room(records));
        fresh(&mut self.record_offsets, room(records));
    }

    #[inline]
    fn end_field(&mut self, parts: Parts) {
        self.spans.push((parts.start as u32, parts.end as u32));
        self.flags
            .push(u8::from(parts.quoted) | (u8::from(parts.unescaped) << 1));
    }
}

/// Replaces an empty `v` with one of capacity `want` if it has less.
fn fresh<T>(v: &mut Vec<T>, want: usize) {
    if v.capacity() < want {
        *v = Vec::with_capacity(want);
    }
}

/// The records of a tokenized chunk: the field spans with the bytes they
/// point into.
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    records: &'a Records,
    chunk: &'a [u8],
}

impl<'a> Tokens<'a> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.record_fields.len().saturating_sub(1)
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of fields of record `r`.
    #[inline]
    pub fn field_count(&self, r: usize) -> usize {
        (self.records.record_fields[r + 1] - self.records.record_fields[r]) as usize
    }

    /// Bytes and quoted flag of field `f` (flat index).
    #[inline]
    pub fn field(&self, f: usize) -> (&'a [u8], bool) {
        let (start, end) = self.records.spans[f];
        let flags = self.records.flags[f];
        let bytes = if flags & UNESCAPED == 0 {
            self.chunk
        } else {
            &self.records.unescaped
        };
        (&bytes[start as usize..end as usize], flags & QUOTED != 0)
    }

    /// Bytes and quoted flag of column `c` of record `r`.
    #[inline]
    pub fn get(&self, r: usize, c: usize) -> (&'a [u8], bool) {
        self.field(self.records.record_fields[r] as usize + c)
    }

    /// Byte offset within the chunk where record `r` starts.
    pub fn record_offset(&self, r: usize) -> usize {
        self.records.record_offsets[r] as usize
    }

    /// The bytes of record `r` as they are in the chunk, without its line
    /// ending (for messages and reject files).
    pub fn record_text(&self, r: usize) -> &'a [u8] {
        let start = self.record_offset(r);
        let end = if r + 1 < self.len() {
            self.record_offset(r + 1)
        } else {
            self.chunk.len()
        };
        let mut raw = &self.chunk[start..end.max(start)];
        while let [rest @ .., b'\n' | b'\r'] = raw {
            raw = rest;
        }
        raw
    }
}

/// The parts of one field as the tokenizer finds them: one run of the chunk
/// is kept as a span; a second part moves the field into
/// `Records::unescaped`.
#[derive(Debug, Clone, Copy, Default)]
struct Parts {
    start: usize,
    end: usize,
    runs: u8,
    quoted: bool,
    unescaped: bool,
}

impl Parts {
    #[inline]
    fn push(&mut self, chunk: &[u8], start: usize, end: usize, unescaped: &mut Vec<u8>) {
        if start == end {
            return;
        }
        if self.runs == 0 {
            (self.start, self.end, self.runs) = (start, end, 1);
            return;
        }
        if !self.unescaped {
            let first = self.start..self.end;
            self.start = unescaped.len();
            unescaped.extend_from_slice(&chunk[first]);
            self.unescaped = true;
        }
        unescaped.extend_from_slice(&chunk[start..end]);
        self.end = unescaped.len();
    }
}

/// Positions of the bytes where a field can end or a quote begin (the
/// delimiter, the line feed and the quote), found 64 bytes at a time: one
/// bit per byte, so each field costs a bit scan rather than a search call.
struct Structural<'a> {
    bytes: &'a [u8],
    set: [u8; 3],
    /// Start of the block `mask` describes.
    base: usize,
    mask: u64,
}

impl<'a> Structural<'a> {
    fn new(bytes: &'a [u8], set: [u8; 3]) -> Self {
        Structural {
            bytes,
            set,
            base: usize::MAX,
            mask: 0,
        }
    }

    /// The first position at or after `from` holding one of the bytes.
    #[inline(always)]
    fn find(&mut self, from: usize) -> Option<usize> {
        let mut base = from & !63;
        let mut mask = if base == self.base {
            self.mask
        } else {
            self.load(base)
        } & (u64::MAX << (from & 63));
        while mask == 0 {
            base += 64;
            if base >= self.bytes.len() {
                return None;
            }
            mask = self.load(base);
        }
        Some(base + mask.trailing_zeros() as usize)
    }

    /// Computes the mask of the block at `base` (once per 64 bytes).
    #[inline(never)]
    fn load(&mut self, base: usize) -> u64 {
        self.base = base;
        self.mask = match self.bytes.get(base..base + 64) {
            Some(block) => mask64(
                block.try_into().unwrap_or_else(|_| unreachable!()),
                self.set,
            ),
            None => scalar_mask(self.bytes.get(base..).unwrap_or_default(), self.set),
        };
        self.mask
    }
}

/// One bit per byte of `block` that equals one of `set`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn mask64(block: &[u8; 64], set: [u8; 3]) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline, so every instruction here
    // exists on every x86_64 CPU; each load reads 16 bytes inside `block`.
    unsafe {
        let [a, b, c] = set.map(|x| _mm_set1_epi8(x as i8));
        let mut m = 0u64;
        for (k, part) in block.chunks_exact(16).enumerate() {
            let v = _mm_loadu_si128(part.as_ptr().cast());
            let hit = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, a), _mm_cmpeq_epi8(v, b)),
                _mm_cmpeq_epi8(v, c),
            );
            m |= u64::from(_mm_movemask_epi8(hit) as u16) << (16 * k);
        }
        m
    }
}

/// One bit per byte of `block` that equals one of `set`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn mask64(block: &[u8; 64], set: [u8; 3]) -> u64 {
    scalar_mask(block, set)
}

/// One bit per byte of `bytes` (at most 64) that equals one of `set`: the
/// tail of a chunk, and every block where there is no SSE2.
fn scalar_mask(bytes: &[u8], set: [u8; 3]) -> u64 {
    bytes
        .iter()
        .enumerate()
        .fold(0, |m, (k, b)| m | (u64::from(set.contains(b)) << k))
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
pub fn tokenize<'a>(
    chunk: &'a [u8],
    d: &CsvDialect,
    out: &'a mut Records,
) -> Result<Tokens<'a>, Unterminated> {
    out.prepare(chunk.len());
    let len = chunk.len();
    let quote = d.quote;
    let escape = d.effective_escape();
    let delim = d.delimiter;
    // Without a quote character the scanner looks for the delimiter twice.
    let mut scan = Structural::new(chunk, [delim, b'\n', quote.unwrap_or(delim)]);
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
        out.record_fields.push(out.spans.len() as u32);
        out.record_offsets.push(rec_start as u32);
        // Fields of this record.
        'record: loop {
            let mut parts = Parts::default();
            // Unquoted part(s) and quoted part(s) alternate within a field.
            loop {
                let Some(p) = scan.find(i) else {
                    parts.push(chunk, i, trim_cr(chunk, i, len), &mut out.unescaped);
                    out.end_field(parts);
                    i = len;
                    break 'record;
                };
                let c = chunk[p];
                if c == delim {
                    parts.push(chunk, i, p, &mut out.unescaped);
                    out.end_field(parts);
                    i = p + 1;
                    continue 'record;
                }
                if c == b'\n' {
                    parts.push(chunk, i, trim_cr(chunk, i, p), &mut out.unescaped);
                    out.end_field(parts);
                    i = p + 1;
                    break 'record;
                }
                // An opening quote.
                parts.push(chunk, i, p, &mut out.unescaped);
                parts.quoted = true;
                i = p + 1;
                let opened = i;
                let q = c;
                loop {
                    let hit = match escape {
                        Some(e) if e != q => memchr2(q, e, &chunk[i..]).map(|p| i + p),
                        // The quote is one of the scanner's bytes; delimiters
                        // and line feeds inside the quotes are passed over.
                        _ => {
                            let mut from = i;
                            loop {
                                match scan.find(from) {
                                    Some(p) if chunk[p] != q => from = p + 1,
                                    found => break found,
                                }
                            }
                        }
                    };
                    let Some(p) = hit else {
                        return Err(Unterminated {
                            record_offset: rec_start,
                            closed_at: None,
                        });
                    };
                    parts.push(chunk, i, p, &mut out.unescaped);
                    let c = chunk[p];
                    let next = chunk.get(p + 1).copied();
                    if c == q {
                        if escape == Some(q) && next == Some(q) {
                            // The second quote of the pair is the data.
                            parts.push(chunk, p + 1, p + 2, &mut out.unescaped);
                            i = p + 2;
                            continue;
                        }
                        i = p + 1;
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
                            parts.push(chunk, p + 1, p + 2, &mut out.unescaped);
                            i = p + 2;
                        }
                        _ => {
                            parts.push(chunk, p, p + 1, &mut out.unescaped);
                            i = p + 1;
                        }
                    }
                }
            }
        }
        if d.trailing_delimiter {
            let first = *out.record_fields.last().unwrap_or(&0) as usize;
            let last = out.spans.len() - 1;
            let (start, end) = out.spans[last];
            if last > first && start == end && out.flags[last] & QUOTED == 0 {
                out.spans.pop();
                out.flags.pop();
            }
        }
    }
    out.record_fields.push(out.spans.len() as u32);
    Ok(Tokens {
        records: out,
        chunk,
    })
}

/// `end`, or one less when the run `start..end` ends in a carriage return
/// (an unquoted `\r` before the line feed is part of the line ending).
#[inline]
fn trim_cr(chunk: &[u8], start: usize, end: usize) -> usize {
    if end > start && chunk[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
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
        // The common case: no quote in the new bytes and no comment lines,
        // so every line feed ends a record and the last one is the cut —
        // two vector scans instead of a search per line.
        let plain = self.comment.is_none() && !self.in_quotes && !self.skip_next;
        if plain && self.quote.is_none_or(|q| memchr(q, &buf[from..]).is_none()) {
            // (`at_line_start` only matters with a comment character.)
            return memchr::memrchr(b'\n', &buf[from..]).map(|p| from + p + 1);
        }
        // Without a quote character, the line feed stands in for it (and for
        // the escape), so only line feeds are found.
        let q = self.quote.unwrap_or(b'\n');
        let mut hits = Structural::new(buf, [q, b'\n', self.escape.unwrap_or(q)]);
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
            let Some(p) = hits.find(i) else { return last };
            let c = buf[p];
            i = p + 1;
            if c == b'\n' {
                self.at_line_start = true;
                if !self.in_quotes {
                    last = Some(i);
                }
            } else if self.in_quotes {
                if c == q {
                    // A doubled quote closes and reopens: same state either way.
                    self.in_quotes = false;
                } else {
                    self.skip_next = true; // the escape character
                }
            } else if c == q {
                self.in_quotes = true;
            }
            // (Outside quotes the escape character is an ordinary byte.)
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
mod tests;
