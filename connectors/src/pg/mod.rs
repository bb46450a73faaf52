//! Everything ferry says to PostgreSQL: types and identifiers, the binary COPY
//! encoder, the COPY text renderer behind the `.sql` artifacts, connections,
//! catalog lookups and the atomic loader.

pub mod artifacts;
pub mod catalog;
pub mod codec;
pub mod connect;
pub mod error;
pub mod evolve;
pub mod ident;
pub mod load;
pub mod pool;
pub mod receipt;
pub mod replay;
pub mod statements;
pub mod undo;
pub mod verify;

pub use codec::binary::{BinaryEncoder, PGCOPY_HEADER, PGCOPY_TRAILER};
pub use codec::types::PgType;
pub use codec::{ColumnCodec, EncodeError, Kind, PlanError};
pub use connect::{PgConfig, TlsMode};
pub use error::PgError;
pub use evolve::{DriftPolicy, MatchColumns, OnNewColumns, OnTypeChange, SchemaChange};
pub use ident::{QualifiedName, quote_ident, quote_literal};
pub use pool::{Conn, Pool};
pub use statements::{CopyFormat, DuplicateKeys, LoadMode, OnMissingColumns};
