//! ferry's error: what went wrong, whose fault it is, whether trying again can
//! help, and the exit code scripts (and Step Functions' Retry/Catch) act on.

use datafusion::common::DataFusionError;
use ferry_connectors::pg::{EncodeError, PgError};

use crate::decode::DecodeError;
use crate::spec::SpecError;

/// Whose fault an error is: who has to act before it can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Bad flags, spec, SQL, routing or permissions: fix the configuration.
    Config,
    /// Bad input data: fix the file (or the spec's types).
    Input,
    /// The target database refused (constraint, type, permissions).
    Target,
    /// The converted output does not read back as the input.
    Output,
    /// A service (PostgreSQL, S3, DynamoDB, the disk) failed or was unreachable.
    External,
    /// A bug in ferry.
    Internal,
}

/// An error on its two axes: whose fault it is, and whether running the
/// same job again, unchanged, can succeed. Exit codes and the error names
/// Step Functions' Retry/Catch match are derived from the pair in one table
/// ([`Class::exit_code`], [`Class::name`]), never from message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Class {
    /// Whose fault.
    pub fault: Fault,
    /// Whether a retry can help.
    pub retryable: bool,
}

impl Class {
    /// Every class ferry's errors fall into (a test checks each error's
    /// class is one of these, so the contract's lists of error names are
    /// complete).
    pub const PRODUCED: [Class; 6] = [
        Class::of(Fault::External, true),
        Class::of(Fault::Input, false),
        Class::of(Fault::Config, false),
        Class::of(Fault::Target, false),
        Class::of(Fault::Output, false),
        Class::of(Fault::Internal, false),
    ];

    /// The class of `fault`, retryable or not.
    pub const fn of(fault: Fault, retryable: bool) -> Class {
        Class { fault, retryable }
    }

    /// The table: exit code (documented in the README and `ferry --help`)
    /// and Step Functions error name of each class. Anything a retry can
    /// mend is `5` / `ferry.Transient`, whoever's fault.
    const fn table(self) -> (i32, &'static str) {
        if self.retryable {
            return (5, "ferry.Transient");
        }
        match self.fault {
            Fault::Internal => (1, "ferry.Internal"),
            Fault::Config => (2, "ferry.Config"),
            Fault::Input => (3, "ferry.Input"),
            Fault::Target => (4, "ferry.Target"),
            Fault::External => (5, "ferry.External"),
            Fault::Output => (6, "ferry.Invalid"),
        }
    }

    /// The process exit code.
    pub const fn exit_code(self) -> i32 {
        self.table().0
    }

    /// The error name a Step Functions Retry/Catch matches on.
    pub const fn name(self) -> &'static str {
        self.table().1
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
    /// A part of a split input failed in its own process, whose exit code
    /// says what kind of failure it was (its message went to the log).
    #[error("part {index} of the input failed: {message}")]
    Part {
        /// The part.
        index: usize,
        /// Its process's exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// Its last error line.
        message: String,
    },
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
    /// The error's class: whose fault, and whether a retry can help.
    pub fn class(&self) -> Class {
        use Fault::*;
        let (fault, retryable) = match self {
            FerryError::Spec(_) | FerryError::Usage(_) | FerryError::Route(_) => (Config, false),
            // Corrupt or truncated compressed input (see decode::compression).
            FerryError::Decode(DecodeError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::InvalidData =>
            {
                (Input, false)
            }
            FerryError::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
                (Input, false)
            }
            FerryError::Decode(DecodeError::Io { .. }) => (External, true),
            FerryError::Decode(_) | FerryError::Encode { .. } | FerryError::Transform { .. } => {
                (Input, false)
            }
            FerryError::Pg(e) if e.is_retryable() => (External, true),
            FerryError::Pg(PgError::Config(_) | PgError::Connect { .. }) => (Config, false),
            FerryError::Pg(PgError::Encode(_)) => (Input, false),
            FerryError::Pg(PgError::Count(_) | PgError::Artifact { .. }) => (Internal, false),
            FerryError::Pg(PgError::Io { .. }) => (External, true),
            FerryError::Pg(PgError::Receipt { .. }) => (Output, false),
            FerryError::Pg(PgError::Except(_)) => (Config, false),
            FerryError::Pg(_) => (Target, false),
            FerryError::Io { .. } => (External, true),
            // A store error that a retry cannot mend is a missing object, a
            // refused permission or a bad URI: configuration.
            FerryError::Store { retryable, .. } => {
                (if *retryable { External } else { Config }, *retryable)
            }
            FerryError::Jobs(e) if e.retryable() => (External, true),
            FerryError::Jobs(ferry_connectors::jobs::JobStoreError::Corrupt { .. }) => {
                (Internal, false)
            }
            FerryError::Jobs(_) => (Config, false),
            FerryError::Notify(e) if e.retryable() => (External, true),
            FerryError::Notify(_) => (Config, false),
            FerryError::Aws(e) if e.retryable => (External, true),
            FerryError::Aws(_) => (Config, false),
            FerryError::Archive(ferry_connectors::work::ArchiveError::Escapes(_)) => {
                (Internal, false)
            }
            FerryError::Archive(_) => (External, true),
            FerryError::Invalid(_) => (Output, false),
            FerryError::Internal(_) => (Internal, false),
            FerryError::Part { code, .. } => match code {
                Some(2) => (Config, false),
                Some(3) => (Input, false),
                Some(4) => (Target, false),
                Some(6) => (Output, false),
                Some(1) => (Internal, false),
                // Killed, or a service failed: another attempt may pass.
                _ => (External, true),
            },
        };
        Class { fault, retryable }
    }

    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        self.class().fault
    }

    /// The error name a Step Functions Retry/Catch matches on:
    /// `ferry.Transient` is the one worth retrying (see [`Class::name`]).
    pub fn error_name(&self) -> &'static str {
        self.class().name()
    }

    /// Whether running the same job again later can succeed unchanged.
    pub fn retryable(&self) -> bool {
        self.class().retryable
    }

    /// The process exit code (see [`Class::exit_code`]).
    pub fn exit_code(&self) -> i32 {
        self.class().exit_code()
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

    /// The table as the README and `ferry --help` document it, and each
    /// error's class among those the contract lists.
    #[test]
    fn exit_codes_and_names_come_from_the_two_axes() {
        let io = || std::io::Error::other("gone");
        let store = |retryable| FerryError::Store {
            uri: "s3://b/k".into(),
            detail: "x".into(),
            retryable,
        };
        let cases = [
            (FerryError::Internal("x".into()), 1, "ferry.Internal", false),
            (FerryError::Usage("x".into()), 2, "ferry.Config", false),
            (FerryError::Route("x".into()), 2, "ferry.Config", false),
            (store(false), 2, "ferry.Config", false),
            (FerryError::io("writing", io()), 5, "ferry.Transient", true),
            (store(true), 5, "ferry.Transient", true),
            (FerryError::Invalid("x".into()), 6, "ferry.Invalid", false),
        ];
        for (e, code, name, retryable) in cases {
            assert_eq!(
                (e.exit_code(), e.error_name(), e.retryable()),
                (code, name, retryable),
                "{e:?}"
            );
            assert!(Class::PRODUCED.contains(&e.class()), "{e:?}");
        }
        let retryable = Class::of(Fault::Target, true);
        assert_eq!(
            (retryable.exit_code(), retryable.name()),
            (5, "ferry.Transient")
        );
    }

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
        assert_eq!(e.exit_code(), 3);
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
