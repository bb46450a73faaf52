//! ferry's engine: dataset specs, decoding, the DataFusion transform, and the
//! workflows that tie them to the connectors.

#![warn(missing_docs)]

pub mod decode;
