//! One file per command; each takes its parsed arguments and returns an exit code.

mod catalog;
mod compare;
mod compress;
mod deploy;
mod destroy;
mod docs;
mod doctor;
mod iam;
mod image;
mod init;
mod inspect;
mod package;
mod plan;
mod predict;
mod registry;
mod serve;
mod status;
mod targets;

use crate::cli::{Cli, Command, EngineArgs};
use crate::exit::Code;
use modelport_runtime::RuntimeOptions;

pub fn run(cli: Cli) -> anyhow::Result<Code> {
    let out = cli.global.output;
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Inspect(args) => inspect::run(args, out),
        Command::Predict(args) => predict::run(args, out),
        Command::Package(args) => package::run(args, out, quiet),
        Command::Init(args) => init::run(args, out),
        Command::Serve(args) => serve::run(args),
        Command::Deploy(args) => deploy::run(args, out, quiet),
        Command::Plan(args) => plan::run(args, out, quiet),
        Command::Catalog(args) => catalog::run(args, out),
        Command::Compare(args) => compare::run(args, out, quiet),
        Command::Compress(args) => compress::run(args, out),
        Command::Status(args) => status::run(args.name, &args.workspace.home, out, true),
        Command::List(args) => status::list(args, out),
        Command::IamPolicy(args) => iam::run(args),
        Command::Image(cmd) => image::run(cmd, out),
        Command::Destroy(args) => destroy::run(args, out, quiet),
        Command::Doctor(args) => doctor::run(args, out),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args, out),
    }
}

fn runtime_options(engine: &EngineArgs) -> RuntimeOptions {
    RuntimeOptions {
        intra_threads: engine.threads,
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) use modelport_core::units::human_bytes;

/// The workspace at `home`, made absolute so that the paths recorded in state work
/// from any directory.
fn workspace(home: &std::path::Path) -> anyhow::Result<modelport_core::state::Workspace> {
    Ok(modelport_core::state::Workspace::new(std::path::absolute(
        home,
    )?))
}
