//! `modelport completions SHELL` and `modelport man [--out DIR]`: both generated from the
//! clap definitions in cli.rs, so they cannot drift from the flags the binary parses.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;
use serde_json::json;

use super::print_json;
use crate::cli::{Cli, CompletionsArgs, ManArgs, OutputFormat};
use crate::exit::Code;

pub fn completions(args: CompletionsArgs) -> anyhow::Result<Code> {
    let mut cmd = Cli::command();
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "modelport", &mut stdout);
    stdout
        .flush()
        .context("cannot write the completion script to stdout")?;
    Ok(Code::Success)
}

pub fn man(args: ManArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Names subcommands `modelport-deploy`, `modelport-image-build`, ... as the pages are.
    cmd.build();
    let Some(dir) = args.out else {
        let mut stdout = std::io::stdout().lock();
        clap_mangen::Man::new(cmd)
            .render(&mut stdout)
            .and_then(|()| stdout.flush())
            .context("cannot write the manual page to stdout")?;
        return Ok(Code::Success);
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let mut written = Vec::new();
    write_pages(cmd, &dir, &mut written)?;
    match out {
        OutputFormat::Json => print_json(&json!({ "dir": dir, "pages": written }))?,
        OutputFormat::Text => {
            println!("wrote {} manual pages to {}", written.len(), dir.display());
            if let Some(parent) = dir.parent().filter(|p| p.ends_with("man")) {
                println!(
                    "  read one with: MANPATH={}: man modelport",
                    parent.display()
                );
            } else {
                println!(
                    "  read one with: man -l {}",
                    dir.join("modelport.1").display()
                );
            }
        }
    }
    Ok(Code::Success)
}

/// The page of `cmd`, then one per visible subcommand, depth first.
fn write_pages(
    cmd: clap::Command,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    let page = clap_mangen::Man::new(cmd);
    let path = dir.join(page.get_filename());
    page.generate_to(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    Ok(())
}
