//! `modelport package MODEL [--out DIR]`: a deterministic model.tar.gz with its manifest.

use anyhow::Context;
use modelport_package::{PackageOptions, package};
use modelport_runtime::ModelInfo;

use super::{human_bytes, print_json};
use crate::cli::{OutputFormat, PackageArgs};
use crate::exit::Code;

pub fn run(args: PackageArgs, out: OutputFormat) -> anyhow::Result<Code> {
    // Read the model first: a file that is not a model we can serve is refused
    // before anything is written.
    let info = ModelInfo::from_path(&args.model)
        .with_context(|| format!("cannot package {}", args.model.display()))?;
    let opts = PackageOptions {
        created_by: format!("modelport {}", env!("CARGO_PKG_VERSION")),
        signature: Some(info.signature.clone()),
        engine_hint: None,
    };
    let artifact = package(&args.model, &args.out, &opts)
        .with_context(|| format!("cannot package {}", args.model.display()))?;
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
