//! Every integration test of the engine in one binary (Cargo builds and links
//! each file under `tests/` as its own binary otherwise: twelve links of a
//! DataFusion build per change, and binaries run one after another). Each
//! module is the file of its name beside this one. The bad-input corpus is
//! the other binary (`corpus.rs`): one test per case, made at run time.

mod common;

mod cli;
mod convert;
mod faults;
mod first_hour;
mod fuzz_regressions;
mod hostile;
mod lambda;
mod receipt;
mod s3;
mod split;
mod type_matrix;
mod workflow;
