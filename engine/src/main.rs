//! The `ferry` binary's entry point: process tuning, parsing, logging, the
//! async runtime, and the one place library errors become exit codes. The
//! commands are `cli`; the work is `ferry_engine`.

// As in the library: errors are built once per failed command, never per row.
#![allow(clippy::result_large_err)]

#[macro_use]
mod output;
mod cli;
mod tuning;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ferry_engine::error::{Class, Fault};

/// Only with the `mimalloc` feature; the default is the system allocator
/// (see `engine/Cargo.toml` and `benchmarks/results/tuning.md`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    #[cfg(feature = "mimalloc")]
    tuning::keep_freed_memory();
    tuning::cap_allocator_arenas();
    tuning::no_transparent_huge_pages();
    let cli = cli::Cli::parse();
    let json_logs = cli::init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let interactive = !cli.quiet && !json_logs && std::io::stderr().is_terminal();
    match runtime.block_on(cli::run(cli, interactive)) {
        Ok(cli::Done::Ok) => ExitCode::SUCCESS,
        // Validation found a difference: the exit code of an output that does not read back.
        Ok(cli::Done::Invalid) => exit(Class::of(Fault::Output, false).exit_code()),
        Err(e) => {
            let class = e.class();
            if json_logs {
                tracing::error!(fault = ?class.fault, retryable = class.retryable, exit_code = class.exit_code(), error_name = class.name(), error = %e, "ferry failed");
            } else {
                eprintln!("ferry: error: {e}");
                if class.retryable {
                    eprintln!(
                        "ferry: this looks transient; running the same command again may succeed"
                    );
                }
            }
            exit(class.exit_code())
        }
    }
}

/// An exit code from the error table (always 0–6).
fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
