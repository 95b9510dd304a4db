//! `modelport destroy NAME`: stop what a deployment runs and forget it.

use modelport_core::lock::LockKind;
use modelport_core::provider::DestroyOptions;
use serde_json::json;

use super::print_json;
use super::targets;
use crate::cli::{DestroyArgs, OutputFormat};
use crate::exit::Code;
use crate::reporter::StderrReporter;

pub fn run(args: DestroyArgs, out: OutputFormat, quiet: bool) -> anyhow::Result<Code> {
    let ws = super::workspace(&args.workspace.home)?;
    // Nothing changes a deployment while it is destroyed; the state is read under the lock.
    let _lock = match ws.load_state(&args.name)? {
        Some(_) => Some(targets::lock(
            &ws,
            &args.name,
            LockKind::Exclusive,
            "destroy",
            std::time::Duration::from_secs(args.lock.wait_lock),
            quiet || out == OutputFormat::Json,
        )?),
        None => None,
    };
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
    let options = DestroyOptions { purge: args.purge };
    let report = targets::runtime()?.block_on(provider.destroy(state, &options, &reporter))?;
    match out {
        OutputFormat::Json => print_json(&json!({
            "name": args.name,
            "destroyed": true,
            "removed": report.removed,
            "leftover": report.leftover,
        }))?,
        OutputFormat::Text => {
            for r in &report.removed {
                eprintln!("  - {r}");
            }
            if report.leftover.is_empty() {
                println!("destroyed {}", args.name);
            } else {
                println!("destroyed {}, but these are still there:", args.name);
                for l in &report.leftover {
                    println!("  ! {l}");
                }
            }
        }
    }
    Ok(if report.leftover.is_empty() {
        Code::Success
    } else {
        Code::Error
    })
}
