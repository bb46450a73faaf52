//! Tests of `tokenize.rs`, in a file of their own to keep that file readable.

use memchr::memchr3;

use super::*;

fn fields(input: &str, d: &CsvDialect) -> Vec<Vec<(String, bool)>> {
    let mut records = Records::default();
    let r = tokenize(input.as_bytes(), d, &mut records).unwrap();
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

/// The byte-copying tokenizer that [`tokenize`] replaced, kept as its
/// oracle: every field copied into one buffer, found with `memchr3`.
#[derive(Default)]
struct Flat {
    data: Vec<u8>,
    field_ends: Vec<u32>,
    quoted: Vec<bool>,
    record_fields: Vec<u32>,
    record_offsets: Vec<u32>,
}

impl Flat {
    fn field(&self, f: usize) -> (&[u8], bool) {
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
    fn end_field(&mut self, quoted: bool) {
        self.field_ends.push(self.data.len() as u32);
        self.quoted.push(quoted);
    }
    fn push_trimmed_cr(&mut self, bytes: &[u8]) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        self.data.extend_from_slice(bytes);
    }
    fn rows(&self) -> Rows {
        self.record_fields
            .windows(2)
            .map(|w| {
                (w[0]..w[1])
                    .map(|f| {
                        let (b, q) = self.field(f as usize);
                        (b.to_vec(), q)
                    })
                    .collect()
            })
            .collect()
    }
}

/// Fields (bytes, quoted) of each record.
type Rows = Vec<Vec<(Vec<u8>, bool)>>;

fn oracle(chunk: &[u8], d: &CsvDialect) -> Result<Rows, Unterminated> {
    let out = &mut Flat::default();
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
                    out.push_trimmed_cr(rest);
                    out.end_field(quoted);
                    i = len;
                    break 'record;
                };
                let c = rest[p];
                if c == delim {
                    out.data.extend_from_slice(&rest[..p]);
                    out.end_field(quoted);
                    i += p + 1;
                    continue 'record;
                }
                if c == b'\n' {
                    out.push_trimmed_cr(&rest[..p]);
                    out.end_field(quoted);
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
                let bytes = bytes.to_vec();
                if bytes.is_empty() && !quoted {
                    out.field_ends.pop();
                    out.quoted.pop();
                }
            }
        }
    }
    out.record_fields.push(out.field_ends.len() as u32);
    Ok(out.rows())
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
    let t = tokenize(b"1,\"a\nb\",c\n2,\"x\ny\"\r\n", &d, &mut r).unwrap();
    assert_eq!(t.len(), 2);
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
        let whole = tokenize(bytes, &d, &mut whole).unwrap();
        let (mut a, mut b) = (Records::default(), Records::default());
        let a = tokenize(&bytes[..boundary], &d, &mut a).unwrap();
        let b = tokenize(&bytes[boundary..], &d, &mut b).unwrap();
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

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    #[test]
    fn spans_read_as_the_copying_tokenizer_did(
        text in proptest::collection::vec(
            proptest::sample::select(b"ab,|\"\\\n\r#x ".to_vec()), 0..300),
        dialect in 0u8..32,
    ) {
        let d = CsvDialect {
            delimiter: if dialect & 1 == 0 { b',' } else { b'|' },
            quote: (dialect & 2 == 0).then_some(b'"'),
            escape: (dialect & 4 != 0).then_some(b'\\'),
            comment: (dialect & 8 != 0).then_some(b'#'),
            trailing_delimiter: dialect & 16 != 0,
            ..CsvDialect::default()
        };
        let mut records = Records::default();
        let got = tokenize(&text, &d, &mut records).map(|t| {
            (0..t.len())
                .map(|r| (0..t.field_count(r)).map(|c| { let (b, q) = t.get(r, c); (b.to_vec(), q) }).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        });
        proptest::prop_assert_eq!(got, oracle(&text, &d));
    }
}

/// Long runs exercise the 64-byte blocks and their edges.
#[test]
fn fields_across_block_edges() {
    let d = CsvDialect::default();
    for width in [1usize, 15, 16, 17, 62, 63, 64, 65, 127, 128, 200] {
        let field = "x".repeat(width);
        let text = format!("{field},\"{field}\",{field}\r\n{field}\n");
        let mut records = Records::default();
        let t = tokenize(text.as_bytes(), &d, &mut records).unwrap();
        assert_eq!(t.len(), 2, "{width}");
        assert_eq!(t.get(0, 0), (field.as_bytes(), false));
        assert_eq!(t.get(0, 1), (field.as_bytes(), true));
        assert_eq!(t.get(0, 2), (field.as_bytes(), false));
        assert_eq!(t.get(1, 0), (field.as_bytes(), false));
        assert_eq!(oracle(text.as_bytes(), &d).unwrap().len(), 2);
    }
}

proptest::proptest! {
    #[test]
    fn the_splitter_cuts_after_the_last_line_feed_outside_quotes(
        text in proptest::collection::vec(proptest::sample::select(b"a,\"\n\\".to_vec()), 0..200),
        steps in proptest::collection::vec(1usize..40, 1..20),
        backslash in proptest::bool::ANY,
    ) {
        let d = CsvDialect {
            escape: backslash.then_some(b'\\'),
            ..CsvDialect::default()
        };
        // Where a record may end: after a line feed outside quotes (a
        // backslash escape inside quotes hides the byte after it).
        let (mut in_quotes, mut escaped) = (false, false);
        let mut ends = Vec::new();
        for (i, &b) in text.iter().enumerate() {
            if escaped {
                escaped = false;
                continue;
            }
            if in_quotes && backslash && b == b'\\' {
                escaped = true;
                continue;
            }
            in_quotes ^= b == b'"';
            if b == b'\n' && !in_quotes {
                ends.push(i + 1);
            }
        }
        let mut s = Splitter::new(&d);
        let mut from = 0;
        for step in steps.iter().cycle().take(200) {
            let end = (from + step).min(text.len());
            let want = ends.iter().copied().filter(|&e| e > from && e <= end).max();
            proptest::prop_assert_eq!(s.scan(&text[..end], from), want);
            from = end;
            if from == text.len() {
                break;
            }
        }
        proptest::prop_assert_eq!(s.in_quotes(), in_quotes);
    }
}
