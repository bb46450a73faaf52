//! Every integration test of the connectors in one binary: one link instead
//! of one per file. Each module is the file of its name beside this one.

mod common;

mod jobstore;
mod loader;
mod notify;
mod pool;
mod receipt;
mod tls;
