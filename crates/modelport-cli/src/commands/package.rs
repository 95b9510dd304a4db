//! `modelport package MODEL [--out DIR] [--layout auto|archive|dir]`: a deterministic
//! model.tar.gz, or a directory, with its manifest.

use anyhow::Context;
use modelport_core::provider::{Reporter, Unit};
use modelport_core::spec::LayoutChoice;
use modelport_package::{PackageOptions, package_with_progress};
use modelport_runtime::ModelInfo;

use super::{human_bytes, print_json};
use crate::cli::{OutputFormat, PackageArgs};
use crate::exit::Code;
use crate::reporter::StderrReporter;

pub fn run(args: PackageArgs, out: OutputFormat, quiet: bool) -> anyhow::Result<Code> {
    // Read the model first: a file that is not a model we can serve is refused
    // before anything is written.
    let info = ModelInfo::from_path(&args.model)
        .with_context(|| format!("cannot package {}", args.model.display()))?;
    let opts = PackageOptions {
        created_by: format!("modelport {}", env!("CARGO_PKG_VERSION")),
        signature: Some(info.signature.clone()),
        engine_hint: None,
        data_files: info.data_files(),
        layout: args
            .layout
            .parse::<LayoutChoice>()
            .map_err(anyhow::Error::msg)?
            .resolve(info.size_bytes, false),
    };
    let reporter = StderrReporter::new(quiet || out == OutputFormat::Json);
    let artifact =
        package_with_progress(&args.model, &args.out, &opts, &mut |step, done, total| {
            reporter.on_amount(step.describe(), done, total, Unit::Bytes)
        })
        .with_context(|| format!("cannot package {}", args.model.display()))?;
    drop(reporter);
    match out {
        OutputFormat::Json => print_json(&artifact)?,
        OutputFormat::Text => {
            println!(
                "artifact {} ({})",
                artifact.path.display(),
                human_bytes(artifact.size)
            );
            println!("digest   sha256:{}", artifact.digest);
            for f in &artifact.manifest.files {
                println!("  {}  {}  {}", f.sha256, human_bytes(f.size), f.path);
            }
        }
    }
    Ok(Code::Success)
}
