//! The `modelport` binary: parse arguments, run one command, map the outcome to an exit code.
//!
//! Exit codes (documented in the README and `modelport --help`):
//! 0 success, 1 error, 2 usage error (bad flags or arguments), 3 comparison mismatch.

mod cli;
mod commands;
mod exit;
mod output;
mod reporter;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // A server logs what it does by default; other commands only warn.
    let verbose = match args.command {
        cli::Command::Serve(_) => args.global.verbose.max(1),
        _ => args.global.verbose,
    };
    output::init_logging(verbose, args.global.quiet);
    match commands::run(args) {
        Ok(code) => code.into(),
        Err(err) => {
            output::print_error(&err);
            exit::Code::Error.into()
        }
    }
}
