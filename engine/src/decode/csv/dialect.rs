//! How a delimited text file is written: the options of a spec's `[source]`
//! that the tokenizer, the type inference and the reader all share.

/// CSV/TSV dialect, following PostgreSQL's CSV mode where the two differ from
/// other tools: a quote may open anywhere in a field, the escape character
/// defaults to the quote (doubling), and a null marker matches only an
/// unquoted field, so `""` stays an empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvDialect {
    /// Field separator (ASCII).
    pub delimiter: u8,
    /// Quote character, or `None` to read quotes as data.
    pub quote: Option<u8>,
    /// Escape character inside quotes; `None` means the quote itself (doubling).
    pub escape: Option<u8>,
    /// Lines starting with this byte are skipped.
    pub comment: Option<u8>,
    /// The first record names the columns.
    pub header: bool,
    /// Unquoted field values that mean NULL.
    pub nulls: Vec<Vec<u8>>,
    /// Every record ends with a delimiter (TPC-H `.tbl`): drop the empty last field.
    pub trailing_delimiter: bool,
    /// How numbers and booleans are written (`1.234,5`, `ja`/`nein`).
    pub locale: Locale,
}

/// How a file writes numbers and booleans where it follows local
/// conventions: `[source] decimal_separator`, `thousands_separator`,
/// `true_values` and `false_values`. The default is what PostgreSQL's COPY
/// reads (`1234.5`, `true`/`false`), and costs nothing: values are read as
/// they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale {
    /// The byte between a number's integer and fractional parts.
    pub decimal: u8,
    /// A byte that groups digits and is dropped (`1.234.567,5`).
    pub thousands: Option<u8>,
    /// Values that mean true, besides `true`, `t`, `yes`, `on`, `1`
    /// (matched exactly, after trimming spaces).
    pub true_values: Vec<Vec<u8>>,
    /// Values that mean false, besides `false`, `f`, `no`, `off`, `0`.
    pub false_values: Vec<Vec<u8>>,
}

impl Default for Locale {
    fn default() -> Self {
        Locale {
            decimal: b'.',
            thousands: None,
            true_values: Vec::new(),
            false_values: Vec::new(),
        }
    }
}

/// Whether `sep` (if present) groups an integer part in threes after a
/// first group of one to three digits.
fn grouped_in_threes(int: &[u8], sep: u8) -> bool {
    let body = match int.first() {
        Some(b'-' | b'+') => &int[1..],
        _ => int,
    };
    let mut groups = body.split(|&b| b == sep);
    let first = groups.next().unwrap_or_default().len();
    let mut rest = groups.peekable();
    rest.peek().is_none() || ((1..=3).contains(&first) && rest.all(|g| g.len() == 3))
}

impl Locale {
    /// Whether numbers must be rewritten before parsing.
    #[inline]
    pub fn rewrites_numbers(&self) -> bool {
        self.decimal != b'.' || self.thousands.is_some()
    }

    /// `bytes` as a number is written in PostgreSQL's form, appended to `out`: the thousands separator dropped, the decimal
    /// separator made a `.`. A `.` that is neither separator here makes the
    /// value unreadable as a number (with `decimal_separator = ","`, `1.5`
    /// is not one and a half), rather than read as something it may not be.
    ///
    /// Thousands separators must group the integer part in threes
    /// (`1.234.567`, not `1.23.4`, and none after the decimal separator):
    /// otherwise the value is not a number, so a date such as `01.02.2024`
    /// is never read as the integer 1022024.
    pub fn plain_number(&self, bytes: &[u8], out: &mut Vec<u8>) {
        if let Some(sep) = self.thousands {
            let int_end = bytes
                .iter()
                .position(|&b| b == self.decimal || b == b'e' || b == b'E')
                .unwrap_or(bytes.len());
            let (int, rest) = bytes.split_at(int_end);
            if rest.contains(&sep) || !grouped_in_threes(int.trim_ascii(), sep) {
                out.push(b'?');
                return;
            }
        }
        for &b in bytes {
            if Some(b) == self.thousands {
                continue;
            }
            out.push(if b == self.decimal {
                b'.'
            } else if b == b'.' {
                b'?'
            } else {
                b
            });
        }
    }

    /// The boolean a value spells under `true_values`/`false_values`, if it
    /// is one of them.
    #[inline]
    pub fn boolean(&self, bytes: &[u8]) -> Option<bool> {
        if self.true_values.is_empty() && self.false_values.is_empty() {
            return None;
        }
        let t = bytes.trim_ascii();
        if self.true_values.iter().any(|v| v.as_slice() == t) {
            Some(true)
        } else if self.false_values.iter().any(|v| v.as_slice() == t) {
            Some(false)
        } else {
            None
        }
    }
}

impl Default for CsvDialect {
    fn default() -> Self {
        CsvDialect {
            delimiter: b',',
            quote: Some(b'"'),
            escape: None,
            comment: None,
            header: true,
            nulls: vec![Vec::new()],
            trailing_delimiter: false,
            locale: Locale::default(),
        }
    }
}

impl CsvDialect {
    /// The escape byte in effect inside quotes (the quote itself by default).
    pub fn effective_escape(&self) -> Option<u8> {
        self.escape.or(self.quote)
    }

    /// Whether an unquoted field with these bytes is NULL.
    #[inline]
    pub fn is_null(&self, bytes: &[u8]) -> bool {
        self.nulls.iter().any(|n| n.as_slice() == bytes)
    }

    /// Checks the dialect can be tokenized unambiguously.
    pub fn validate(&self) -> Result<(), String> {
        let mut specials = vec![("delimiter", self.delimiter)];
        specials.extend(self.quote.map(|q| ("quote", q)));
        specials.extend(self.comment.map(|c| ("comment", c)));
        for (name, b) in &specials {
            if !b.is_ascii() || *b == b'\n' || *b == b'\r' {
                return Err(format!(
                    "{name} must be a single ASCII character other than a line break"
                ));
            }
        }
        if let Some(e) = self.escape
            && (!e.is_ascii() || e == b'\n' || e == b'\r')
        {
            return Err("escape must be a single ASCII character other than a line break".into());
        }
        let l = &self.locale;
        for (name, b) in [
            ("decimal_separator", Some(l.decimal)),
            ("thousands_separator", l.thousands),
        ]
        .into_iter()
        .filter_map(|(n, b)| Some((n, b?)))
        {
            if !b.is_ascii() || b.is_ascii_digit() || matches!(b, b'\n' | b'\r' | b'-' | b'+') {
                return Err(format!(
                    "{name} must be a single ASCII character other than a digit, a sign or a line break"
                ));
            }
        }
        if l.thousands == Some(l.decimal) {
            return Err(
                "decimal_separator and thousands_separator cannot be the same character".into(),
            );
        }
        for (i, (a, x)) in specials.iter().enumerate() {
            for (b, y) in &specials[i + 1..] {
                if x == y {
                    return Err(format!("{a} and {b} cannot be the same character"));
                }
            }
        }
        Ok(())
    }
}
