//! Everything ferry says to PostgreSQL: types and identifiers, the binary COPY
//! encoder, the COPY text renderer behind the `.sql` artifacts, connections,
//! catalog lookups and the atomic loader.

pub mod artifacts;
pub mod binary;
pub mod catalog;
pub mod codec;
pub mod connect;
pub mod copy;
pub mod error;
pub mod ident;
pub mod load;
pub mod numeric;
pub mod replay;
pub mod statements;
pub mod text;
pub mod time;
pub mod types;
pub mod values;

pub use binary::{BinaryEncoder, PGCOPY_HEADER, PGCOPY_TRAILER};
pub use codec::{ColumnCodec, EncodeError, Kind, PlanError};
pub use connect::{PgConfig, TlsMode};
pub use error::PgError;
pub use ident::{QualifiedName, quote_ident, quote_literal};
pub use statements::{CopyFormat, LoadMode};
pub use types::PgType;
