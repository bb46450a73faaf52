//! ferry's engine: dataset specs, decoding, the DataFusion transform, and the
//! workflows that tie them to the connectors.

#![warn(missing_docs)]

pub mod decode;
pub mod error;
pub mod format;
pub mod load;
pub mod progress;
pub mod sniff;
pub mod source;
pub mod spec;
pub mod transform;
