//! `modelport destroy NAME`: stop what a deployment runs and forget it.

use serde_json::json;

use super::print_json;
use super::targets;
use crate::cli::{DestroyArgs, OutputFormat};
use crate::exit::Code;
use crate::reporter::StderrReporter;

pub fn run(args: DestroyArgs, out: OutputFormat, quiet: bool) -> anyhow::Result<Code> {
    let ws = super::workspace(&args.workspace.home)?;
    let Some(state) = ws.load_state(&args.name)? else {
        match out {
            OutputFormat::Json => print_json(&json!({"name": args.name, "destroyed": false}))?,
            OutputFormat::Text => println!(
                "nothing to destroy: no deployment {:?} is recorded in {}",
                args.name,
                ws.root().display()
            ),
        }
        return Ok(Code::Success);
    };
    let provider = targets::provider(&state.provider, &ws)?;
    let reporter = StderrReporter::new(quiet || out == OutputFormat::Json);
    targets::runtime()?.block_on(provider.destroy(state, &reporter))?;
    match out {
        OutputFormat::Json => print_json(&json!({"name": args.name, "destroyed": true}))?,
        OutputFormat::Text => println!("destroyed {}", args.name),
    }
    Ok(Code::Success)
}
