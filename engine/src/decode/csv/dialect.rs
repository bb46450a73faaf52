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
