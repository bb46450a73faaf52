//! ferry's engine: dataset specs, decoding, the DataFusion transform, and the
//! workflows that tie them to the connectors.

#![warn(missing_docs)]
// Errors here carry file, line, column and value for the person reading them;
// they are built once per failed job, never on the per-row path, so their size
// in a `Result` costs nothing that matters.
#![allow(clippy::result_large_err)]

pub mod convert;
pub mod decode;
pub mod error;
pub mod format;
pub mod fuzz;
pub mod load;
pub mod longest_first;
pub mod ordered;
pub mod progress;
pub mod sniff;
pub mod source;
pub mod spec;
pub mod transform;
pub mod workflow;
