//! Errors from PostgreSQL work, with PostgreSQL's own diagnostics passed
//! through (message, detail, hint, and the CONTEXT line that names the COPY row).

use super::codec::{EncodeError, PlanError};

/// What went wrong talking to PostgreSQL or preparing data for it.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection settings are unusable (bad URL, missing certificate…).
    #[error("PostgreSQL connection settings: {0}")]
    Config(String),
    /// Could not connect or the connection broke.
    #[error("cannot connect to PostgreSQL at {target}: {detail}")]
    Connect {
        /// Host/port/database, never the password.
        target: String,
        /// Why.
        detail: String,
        /// Underlying error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed; `detail` carries PostgreSQL's diagnostics.
    #[error("{doing}: {detail}")]
    Db {
        /// What ferry was doing ("creating table …", "COPY stream 2").
        doing: String,
        /// PostgreSQL's message, detail, hint and context.
        detail: String,
        /// SQLSTATE, when the server sent one.
        code: Option<String>,
        /// Underlying error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Output columns and the target table do not fit together.
    #[error("target table {table}: {detail}")]
    Target {
        /// The table.
        table: String,
        /// What does not fit and what to do.
        detail: String,
    },
    /// A column cannot be converted to its target type at all.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A value cannot be encoded for its column.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// What PostgreSQL stored differs from what ferry sent: nothing was
    /// published (the load receipt, `[target] verify`).
    #[error(
        "target table {table}: the load's receipt does not match, nothing was published: {detail}"
    )]
    Receipt {
        /// The table.
        table: String,
        /// The first column that differs, when known.
        column: Option<String>,
        /// What differs and what to do.
        detail: String,
    },
    /// A `[target.verify_except]` entry that cannot apply.
    #[error(transparent)]
    Except(#[from] crate::pg::receipt::ExceptError),
    /// Row counts disagree between stages: a bug, never user data.
    #[error("row count mismatch: {0}")]
    Count(String),
    /// An artifact read back for loading is not what ferry writes.
    #[error("{path}: {detail}")]
    Artifact {
        /// The file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Reading or writing an artifact failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl PgError {
    /// Wraps a driver error with what ferry was doing.
    pub fn db(doing: impl Into<String>, source: tokio_postgres::Error) -> Self {
        PgError::Db {
            doing: doing.into(),
            detail: describe(&source),
            code: source.code().map(|c| c.code().to_string()),
            source,
        }
    }

    /// Whether trying again later can help (connection loss, server shutdown,
    /// serialization failure, deadlock, too many connections) as opposed to a
    /// problem with the data or the setup.
    pub fn is_retryable(&self) -> bool {
        match self {
            PgError::Connect { source, detail, .. } => match source.code().map(|c| c.code()) {
                // The server answered: only "not now" conditions are transient.
                Some(c) => c.starts_with("57P") || c.starts_with("53") || c.starts_with("08"),
                // TLS verification failures do not fix themselves.
                None => !(detail.contains("certificate") || detail.contains("TLS handshake")),
            },
            PgError::Db {
                code: None, source, ..
            } => source.is_closed() || source.as_db_error().is_none(),
            PgError::Db { code: Some(c), .. } => {
                c.starts_with("08") // connection exception
                    || c.starts_with("57P") // operator intervention: admin shutdown, terminated
                    || c.starts_with("53") // insufficient resources
                    || c == "40001" // serialization failure
                    || c == "40P01" // deadlock
                    || c == "55P03" // lock not available
            }
            _ => false,
        }
    }
}

/// Renders a driver error with everything the server said.
pub fn describe(e: &tokio_postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            src = inner.source();
        }
        return s;
    };
    let mut s = format!(
        "{}: {} (SQLSTATE {})",
        db.severity(),
        db.message(),
        db.code().code()
    );
    if let Some(d) = db.detail() {
        s.push_str("\n  DETAIL: ");
        s.push_str(d);
    }
    if let Some(h) = db.hint() {
        s.push_str("\n  HINT: ");
        s.push_str(h);
    }
    if let Some(w) = db.where_() {
        s.push_str("\n  CONTEXT: ");
        s.push_str(w);
    }
    s
}
