//! Delimited text (CSV, TSV, `|`-separated): ferry's own reader, because the
//! loader needs PostgreSQL's CSV semantics (quoted empty ≠ NULL, null markers
//! on unquoted fields only), line numbers in every error, and a parallel split
//! that never cuts a quoted field.

pub mod build;
pub mod dialect;
pub mod infer;
pub mod ranges;
pub mod reader;
pub mod tokenize;

pub use dialect::CsvDialect;
pub use ranges::{ByteRange, record_ranges};
pub use reader::{CsvSource, CsvTable, ReadCounters};
