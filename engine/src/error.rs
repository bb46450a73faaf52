//! ferry's error: what went wrong, whose fault it is, whether trying again can
//! help, and the exit code scripts (and Step Functions' Retry/Catch) act on.

use datafusion::common::DataFusionError;
use ferry_connectors::pg::{EncodeError, PgError};

use crate::decode::DecodeError;
use crate::spec::SpecError;

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bad flags, spec or SQL: fix the configuration.
    Config,
    /// Bad input data: fix the file (or the spec's types).
    Input,
    /// The target database refused (constraint, type, permissions).
    Target,
    /// A service was unreachable or failed transiently: retrying may help.
    External,
    /// A bug in ferry.
    Internal,
}

impl Fault {
    /// The process exit code for this fault (documented in the README).
    pub fn exit_code(self) -> i32 {
        match self {
            Fault::Internal => 1,
            Fault::Config => 2,
            Fault::Input => 3,
            Fault::Target => 4,
            Fault::External => 5,
        }
    }
}

/// Any error a ferry command can end with.
#[derive(Debug, thiserror::Error)]
pub enum FerryError {
    /// A spec problem.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A bad input file.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A PostgreSQL problem.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// A value the transform produced that its column cannot hold.
    #[error(
        "transformed row {row}, column {:?}: {} (value: {})",
        .source.column,
        .source.reason,
        .source.value
    )]
    Encode {
        /// 1-based row of the transform's output.
        row: u64,
        /// Details.
        #[source]
        source: EncodeError,
    },
    /// Bad command-line usage.
    #[error("{0}")]
    Usage(String),
    /// A file or directory could not be used.
    #[error("{context}: {source}")]
    Io {
        /// What ferry was doing.
        context: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The transform failed while running (e.g. a cast in the SQL).
    #[error("{path}: the transform failed: {detail}")]
    Transform {
        /// transform.sql
        path: String,
        /// DataFusion's message.
        detail: String,
    },
    /// An object store (S3, file://) failed.
    #[error("{uri}: {detail}")]
    Store {
        /// The object.
        uri: String,
        /// What failed.
        detail: String,
        /// Whether retrying may help.
        retryable: bool,
    },
    /// The job store failed or refused a transition.
    #[error(transparent)]
    Jobs(#[from] ferry_connectors::jobs::JobStoreError),
    /// A job event could not be sent.
    #[error(transparent)]
    Notify(#[from] ferry_connectors::notify::NotifyError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] ferry_connectors::aws::AwsError),
    /// The artifacts could not be archived.
    #[error(transparent)]
    Archive(#[from] ferry_connectors::work::ArchiveError),
    /// No dataset's routing globs match an object key (or several do).
    #[error("{0}")]
    Route(String),
    /// A converted file does not read back as what was written.
    #[error("validation by reconversion failed: {0}")]
    Invalid(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ferry_connectors::store::StoreError> for FerryError {
    fn from(e: ferry_connectors::store::StoreError) -> Self {
        FerryError::Store {
            uri: e.uri,
            detail: e.detail,
            retryable: e.retryable,
        }
    }
}

impl FerryError {
    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            FerryError::Spec(_) | FerryError::Usage(_) => Fault::Config,
            // Corrupt or truncated compressed input (see decode::compression).
            FerryError::Decode(DecodeError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::InvalidData =>
            {
                Fault::Input
            }
            FerryError::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
                Fault::Input
            }
            FerryError::Decode(DecodeError::Io { .. }) => Fault::External,
            FerryError::Decode(_) | FerryError::Encode { .. } => Fault::Input,
            FerryError::Transform { .. } => Fault::Input,
            FerryError::Pg(e) if e.is_retryable() => Fault::External,
            FerryError::Pg(PgError::Config(_) | PgError::Connect { .. }) => Fault::Config,
            FerryError::Pg(PgError::Encode(_)) => Fault::Input,
            FerryError::Pg(PgError::Count(_) | PgError::Artifact { .. }) => Fault::Internal,
            FerryError::Pg(PgError::Io { .. }) => Fault::External,
            FerryError::Pg(_) => Fault::Target,
            FerryError::Io { .. } => Fault::External,
            FerryError::Store { retryable, .. } => {
                if *retryable {
                    Fault::External
                } else {
                    Fault::Config
                }
            }
            FerryError::Jobs(e) if e.retryable() => Fault::External,
            FerryError::Jobs(ferry_connectors::jobs::JobStoreError::Corrupt { .. }) => {
                Fault::Internal
            }
            FerryError::Jobs(_) => Fault::Config,
            FerryError::Notify(e) if e.retryable() => Fault::External,
            FerryError::Notify(_) => Fault::Config,
            FerryError::Aws(e) if e.retryable => Fault::External,
            FerryError::Aws(_) => Fault::Config,
            FerryError::Archive(ferry_connectors::work::ArchiveError::Escapes(_)) => {
                Fault::Internal
            }
            FerryError::Archive(_) => Fault::External,
            FerryError::Route(_) => Fault::Config,
            FerryError::Invalid(_) => Fault::Input,
            FerryError::Internal(_) => Fault::Internal,
        }
    }

    /// The error name a Step Functions Retry/Catch matches on:
    /// `ferry.Transient` is the one worth retrying; `ferry.Input`,
    /// `ferry.Config`, `ferry.Target`, `ferry.Invalid` and `ferry.Internal`
    /// fail the same way every time.
    pub fn error_name(&self) -> &'static str {
        if matches!(self, FerryError::Invalid(_)) {
            return "ferry.Invalid";
        }
        match self.fault() {
            Fault::External => "ferry.Transient",
            Fault::Input => "ferry.Input",
            Fault::Config => "ferry.Config",
            Fault::Target => "ferry.Target",
            Fault::Internal => "ferry.Internal",
        }
    }

    /// Whether running the same job again later can succeed unchanged.
    pub fn retryable(&self) -> bool {
        self.fault() == Fault::External
    }

    /// Unwraps a DataFusion error into the ferry error inside it, if any
    /// (decode errors travel through DataFusion as `External`).
    pub fn from_datafusion(e: DataFusionError, transform_path: &str) -> FerryError {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = cur {
            if let Some(d) = err.downcast_ref::<DecodeError>() {
                return FerryError::Decode(d.clone());
            }
            if let Some(fe) = err.downcast_ref::<FerryError>() {
                return FerryError::Internal(fe.to_string());
            }
            cur = err.source();
        }
        FerryError::Transform {
            path: transform_path.to_string(),
            detail: in_ferry_terms(&e.strip_backtrace()),
        }
    }

    /// Builds an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> FerryError {
        FerryError::Io {
            context: context.into(),
            source,
        }
    }
}

/// DataFusion's advice, in the terms a ferry user can act on: a ferry user
/// cannot set DataFusion's options, but can quote an identifier in
/// `transform.sql`.
pub fn in_ferry_terms(message: &str) -> String {
    const START: &str = "You can use double quotes to refer to the ";
    const END: &str =
        " column or disable the datafusion.sql_parser.enable_ident_normalization configuration.";
    let (Some(a), Some(b)) = (message.find(START), message.find(END)) else {
        return message.to_string();
    };
    if b < a {
        return message.to_string();
    }
    let column = &message[a + START.len()..b];
    format!(
        "{}Unquoted names are folded to lower case, as in PostgreSQL: write {column} with its double quotes in transform.sql.{}",
        &message[..a],
        &message[b + END.len()..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_survive_datafusion() {
        let d = DecodeError::Unterminated {
            file: "f.csv".into(),
            line: 7,
        };
        let df = DataFusionError::Context(
            "scan".into(),
            Box::new(DataFusionError::External(Box::new(d))),
        );
        let e = FerryError::from_datafusion(df, "t.sql");
        assert!(
            matches!(
                e,
                FerryError::Decode(DecodeError::Unterminated { line: 7, .. })
            ),
            "{e:?}"
        );
        assert_eq!(e.fault().exit_code(), 3);
    }

    #[test]
    fn datafusion_settings_advice_becomes_quoting_advice() {
        let df = "Schema error: No field named customerid. Did you mean 'source.\"customerId\"'?.\nColumn names are case sensitive. You can use double quotes to refer to the source.\"customerId\" column or disable the datafusion.sql_parser.enable_ident_normalization configuration.\nValid fields are source.\"customerId\".";
        let ours = in_ferry_terms(df);
        assert!(!ours.contains("datafusion.sql_parser"), "{ours}");
        assert!(
            ours.contains("write source.\"customerId\" with its double quotes in transform.sql"),
            "{ours}"
        );
        assert!(
            ours.ends_with("Valid fields are source.\"customerId\"."),
            "{ours}"
        );
    }
}
