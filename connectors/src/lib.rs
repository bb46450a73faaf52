//! ferry's connections to the outside world.
//!
//! This crate knows PostgreSQL (binary COPY encoder, `.sql` writer, loader),
//! object stores and working storage. It depends on Arrow but never on
//! DataFusion: the engine decides *what* to load, this crate decides *how* it
//! reaches each system.

#![warn(missing_docs)]

pub mod pg;
pub mod store;
