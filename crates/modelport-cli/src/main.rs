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
    quiet_broken_pipe();
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

/// `modelport catalog | head` closes stdout early. The reader got what it wanted,
/// so that ends the command quietly (exit 0, as ripgrep does) instead of printing
/// the panic `println!` raises.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
