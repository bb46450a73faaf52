//! Identifier quoting: every table and column name ferry sends to PostgreSQL goes
//! through [`quote_ident`], so hostile or merely unusual names (quotes, spaces,
//! Unicode, reserved words) can never change the meaning of a statement.

use std::fmt;

/// Quotes an identifier the way PostgreSQL's `quote_ident` does, but always:
/// wraps it in double quotes and doubles any embedded double quote.
///
/// Always quoting (instead of only when needed) keeps case exactly as the user
/// wrote it and makes reserved words safe without a keyword list.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for ch in name.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// A column name as PostgreSQL users write names without quotes:
/// `Customer ID` → `customer_id`, `orderDate` → `order_date`,
/// `HTTPStatus` → `http_status`, `Amount (USD)` → `amount_usd`,
/// `2024 sales` → `_2024_sales`. Letters are lower-cased, a lower-case
/// letter or digit followed by an upper-case one starts a new word, and
/// every run of other characters becomes one `_`. An empty result is
/// `None` (the caller names the column by position).
pub fn snake_case(name: &str) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    let mut gap = false;
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            gap = true;
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                gap = true;
            }
        }
        if gap && !out.is_empty() {
            out.push('_');
        }
        gap = false;
        out.extend(c.to_lowercase());
    }
    if out.is_empty() {
        return None;
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

/// Quotes a string literal for the rare places where PostgreSQL syntax has no
/// parameter slot (e.g. `COMMENT ON`, `SET`). Values from data never go through
/// here: data travels only in COPY streams or as bind parameters.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for ch in value.chars() {
        if ch == '\'' {
            out.push('\'');
        }
        out.push(ch);
    }
    out.push('\'');
    out
}

/// A schema-qualified table name, kept unquoted so it can be compared, shown and
/// quoted exactly once at the point it enters SQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    /// Schema (namespace); `public` when the user gave a bare name.
    pub schema: String,
    /// Table name, as the user wrote it (case preserved).
    pub name: String,
}

/// Why a table name given by a user could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid table name {input:?}: {reason}")]
pub struct NameError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl QualifiedName {
    /// Builds a name from already-separated parts.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parses `table`, `schema.table`, or either part double-quoted
    /// (`"My Schema"."odd.name"`), the way users write names on a command line.
    ///
    /// Unquoted parts keep their case: ferry never folds case, because a name
    /// written in a spec should mean exactly that table.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let err = |reason| NameError {
            input: input.to_string(),
            reason,
        };
        let mut parts = Vec::new();
        let mut chars = input.chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            part.push('"');
                        }
                        Some('"') => break,
                        Some(c) => part.push(c),
                        None => return Err(err("unterminated quoted identifier")),
                    }
                }
                match chars.peek() {
                    None | Some('.') => {}
                    Some(_) => return Err(err("unexpected text after a quoted identifier")),
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if c == '"' {
                        return Err(err("a double quote inside an unquoted identifier"));
                    }
                    part.push(c);
                    chars.next();
                }
            }
            if part.is_empty() {
                return Err(err("empty identifier"));
            }
            if part.contains('\0') {
                return Err(err("identifiers cannot contain NUL"));
            }
            parts.push(part);
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some(_) => unreachable!("loop stops only at '.' or end"),
            }
        }
        match parts.len() {
            1 => Ok(Self::new("public", parts.pop().unwrap_or_default())),
            2 => {
                let name = parts.pop().unwrap_or_default();
                let schema = parts.pop().unwrap_or_default();
                Ok(Self::new(schema, name))
            }
            _ => Err(err("expected table or schema.table")),
        }
    }

    /// The name as SQL: `"schema"."table"`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// A sibling table in the same schema, for staging and swap tables.
    pub fn sibling(&self, name: impl Into<String>) -> Self {
        Self::new(self.schema.clone(), name)
    }
}

impl fmt::Display for QualifiedName {
    /// Shows the name the way a user would type it back on a command line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit())
        };
        let part = |s: &str| {
            if plain(s) {
                s.to_string()
            } else {
                quote_ident(s)
            }
        };
        write!(f, "{}.{}", part(&self.schema), part(&self.name))
    }
}

#[cfg(test)]
mod snake_tests {
    use super::snake_case;

    #[test]
    fn names_become_snake_case() {
        for (name, want) in [
            ("Customer ID", Some("customer_id")),
            ("orderDate", Some("order_date")),
            ("HTTPStatus", Some("http_status")),
            ("Amount (USD)", Some("amount_usd")),
            ("2024 sales", Some("_2024_sales")),
            ("already_snake", Some("already_snake")),
            ("  --  ", None),
            ("Straße Nr.", Some("straße_nr")),
            ("v2Value", Some("v2_value")),
        ] {
            assert_eq!(snake_case(name).as_deref(), want, "{name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(
            quote_ident("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn parses_names() {
        assert_eq!(
            QualifiedName::parse("t").unwrap(),
            QualifiedName::new("public", "t")
        );
        assert_eq!(
            QualifiedName::parse("s.T").unwrap(),
            QualifiedName::new("s", "T")
        );
        assert_eq!(
            QualifiedName::parse("\"My Schema\".\"odd.na\"\"me\"").unwrap(),
            QualifiedName::new("My Schema", "odd.na\"me")
        );
        assert_eq!(
            QualifiedName::parse("é.ü").unwrap(),
            QualifiedName::new("é", "ü")
        );
        for bad in ["", "a.b.c", "\"unterminated", "a..b", "\"x\"y", "a\"b", "."] {
            assert!(
                QualifiedName::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        for n in [
            QualifiedName::new("public", "lineitem"),
            QualifiedName::new("My Schema", "odd.na\"me"),
            QualifiedName::new("s", "1abc"),
        ] {
            assert_eq!(QualifiedName::parse(&n.to_string()).unwrap(), n);
        }
    }
}
