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
use ferry_engine::error::FerryError;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tuning::keep_freed_memory();
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
        Ok(cli::Done::Invalid) => ExitCode::from(6),
        Err(e) => {
            let fault = e.fault();
            if json_logs {
                tracing::error!(fault = ?fault, retryable = e.retryable(), exit_code = fault.exit_code(), error = %e, "ferry failed");
            } else {
                eprintln!("ferry: error: {e}");
                if e.retryable() {
                    eprintln!(
                        "ferry: this looks transient; running the same command again may succeed"
                    );
                }
            }
            if matches!(e, FerryError::Invalid(_)) {
                return ExitCode::from(6);
            }
            ExitCode::from(fault.exit_code() as u8)
        }
    }
}
