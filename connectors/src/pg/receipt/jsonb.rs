//! The text PostgreSQL prints for a `jsonb` value, computed from the JSON
//! text ferry sends: keys sorted (shorter first, then by bytes) with the
//! last of a repeated key kept, `", "` and `": "` between items, strings
//! re-escaped as `escape_json` does, numbers as `numeric` prints them. The
//! receipt hashes this, as the server hashes `value::text`, so a clean load
//! of a `jsonb` column compares equal and a changed one does not.

/// The canonical text, or `None` when `text` is not JSON (the server would
/// have refused it, so the load cannot get this far with it).
pub fn canonical(text: &str) -> Option<String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut out = String::with_capacity(text.len() + 8);
    p.ws();
    p.value(&mut out)?;
    p.ws();
    (p.i == p.s.len()).then_some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek() == Some(b)).then(|| self.i += 1)
    }

    fn value(&mut self, out: &mut String) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' => {
                self.i += 1;
                let mut items: Vec<(String, String)> = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.eat(b':')?;
                        let mut v = String::new();
                        self.value(&mut v)?;
                        match items.iter_mut().find(|(k, _)| *k == key) {
                            Some(slot) => slot.1 = v,
                            None => items.push((key, v)),
                        }
                        self.ws();
                        match self.peek()? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                items.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
                out.push('{');
                for (n, (k, v)) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    escape(k, out);
                    out.push_str(": ");
                    out.push_str(v);
                }
                out.push('}');
            }
            b'[' => {
                self.i += 1;
                out.push('[');
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    let mut first = true;
                    loop {
                        if !first {
                            out.push_str(", ");
                        }
                        first = false;
                        self.value(out)?;
                        self.ws();
                        match self.peek()? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                out.push(']');
            }
            b'"' => {
                let s = self.string()?;
                escape(&s, out);
            }
            b't' => self.word("true", out)?,
            b'f' => self.word("false", out)?,
            b'n' => self.word("null", out)?,
            _ => self.number(out)?,
        }
        Some(())
    }

    fn word(&mut self, w: &str, out: &mut String) -> Option<()> {
        self.s[self.i..].starts_with(w.as_bytes()).then(|| {
            self.i += w.len();
            out.push_str(w);
        })
    }

    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let mut bytes = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                char::from_u32(
                                    0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)?),
                                )?
                            } else {
                                char::from_u32(hi)?
                            }
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => bytes.push(b),
            }
        }
        String::from_utf8(bytes).ok()
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// A JSON number as `numeric_out(numeric_in(text))` prints it: no
    /// exponent, as many decimals as the input held after applying it.
    fn number(&mut self, out: &mut String) -> Option<()> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
            )
        {
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        let (neg, t) = match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t),
        };
        let (mantissa, exp) = match t.find(['e', 'E']) {
            Some(at) => (&t[..at], t[at + 1..].parse::<i64>().ok()?),
            None => (t, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = format!("{int}{frac}");
        // The value is digits × 10^(exp - frac.len()).
        let scale = (frac.len() as i64 - exp).max(0) as usize;
        let point = int.len() as i64 + exp; // digits before the point
        let mut whole = String::new();
        let mut fraction = String::new();
        for (i, d) in digits.chars().enumerate() {
            if (i as i64) < point {
                whole.push(d);
            } else {
                fraction.push(d);
            }
        }
        if point > digits.len() as i64 {
            whole.extend(std::iter::repeat_n(
                '0',
                (point - digits.len() as i64) as usize,
            ));
        }
        if point < 0 {
            fraction.insert_str(0, &"0".repeat((-point) as usize));
        }
        fraction.truncate(scale);
        while fraction.len() < scale {
            fraction.push('0');
        }
        let whole = whole.trim_start_matches('0');
        let zero = whole.is_empty() && fraction.bytes().all(|b| b == b'0');
        if neg && !zero {
            out.push('-');
        }
        out.push_str(if whole.is_empty() { "0" } else { whole });
        if scale > 0 {
            out.push('.');
            out.push_str(&fraction);
        }
        Some(())
    }
}

/// `escape_json`: quotes, backslash and the named control characters
/// escaped, other control characters as `\u00xx`, the rest as is.
fn escape(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn prints_as_postgresql_prints_jsonb() {
        let cases = [
            (
                r#"{"b":1,"a":[1,2,{"zz":null,"y":true}]}"#,
                r#"{"a": [1, 2, {"y": true, "zz": null}], "b": 1}"#,
            ),
            (r#"{"k":1,"k":2}"#, r#"{"k": 2}"#),
            (
                "[1.50, 1e2, -0, 0.1e1, 2.5E-3, -1.0]",
                "[1.50, 100, 0, 1, 0.0025, -1.0]",
            ),
            (
                r#""tab\there \u00e9 \/ \u0001""#,
                "\"tab\\there é / \\u0001\"",
            ),
            ("{}", "{}"),
            (" [ ] ", "[]"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(canonical("{"), None);
    }
}
