//! `modelport image build` and `modelport image push`: the serving image without Docker.

use anyhow::Context;
use modelport_image::{BuildOptions, Engine, Platform};

use super::{human_bytes, print_json};
use crate::cli::{ImageBuildArgs, ImageCommand, ImageEngine, ImagePushArgs, OutputFormat};
use crate::exit::Code;

pub fn run(cmd: ImageCommand, out: OutputFormat) -> anyhow::Result<Code> {
    match cmd {
        ImageCommand::Build(args) => build(args, out),
        ImageCommand::Push(args) => push(args, out),
    }
}

fn build(args: ImageBuildArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let options = build_options(&args)?;
    let built = modelport_image::build(&options, &args.out)
        .with_context(|| format!("cannot build the image in {}", args.out.display()))?;
    match out {
        OutputFormat::Json => print_json(&built)?,
        OutputFormat::Text => {
            println!(
                "image    {} ({}, {} files, {} compressed from {})",
                built.dir.display(),
                built.platform,
                built.files.len(),
                human_bytes(built.layer.size),
                human_bytes(built.uncompressed_bytes)
            );
            println!("manifest {}", built.manifest.digest);
            if let Some(v) = &built.onnxruntime_version {
                println!("engine   onnxruntime {v}");
            } else if matches!(options.engine, Engine::Tract) {
                println!("engine   tract");
            }
            println!(
                "push it: modelport image push REGISTRY/REPOSITORY:TAG --layout {}",
                built.dir.display()
            );
        }
    }
    Ok(Code::Success)
}

/// What `image build` puts in the image; `deploy` builds with the same defaults.
pub fn build_options(args: &ImageBuildArgs) -> anyhow::Result<BuildOptions> {
    let binary = match &args.binary {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("cannot find the running modelport binary")?,
    };
    let engine = match (args.engine, &args.onnxruntime) {
        (ImageEngine::Tract, Some(_)) => {
            anyhow::bail!(
                "--onnxruntime has no use with --engine tract: the image holds no onnxruntime"
            )
        }
        (ImageEngine::Tract, None) => Engine::Tract,
        (ImageEngine::Onnxruntime, Some(p)) => Engine::Onnxruntime(p.clone()),
        (ImageEngine::Onnxruntime, None) => {
            Engine::Onnxruntime(modelport_runtime::find_onnxruntime_library().map_err(|e| {
                modelport_image::ImageError::new(
                    format!("the image needs onnxruntime: {e}"),
                    "`pip install onnxruntime` in the active virtualenv, pass --onnxruntime \
                     libonnxruntime.so, or build with --engine tract",
                )
            })?)
        }
    };
    let platform = args
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()?;
    Ok(BuildOptions {
        binary,
        engine,
        platform,
        ca_certificates: args.ca_certificates.clone(),
        epoch: modelport_image::source_date_epoch()?,
        version: env!("CARGO_PKG_VERSION").to_string(),
        source: env!("CARGO_PKG_REPOSITORY").to_string(),
    })
}

fn push(args: ImagePushArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let runtime = super::targets::runtime()?;
    let pushed = runtime.block_on(async {
        let image = modelport_image::push::parse_reference(&args.reference)?;
        let auth = super::registry::credentials(image.resolve_registry()).await?;
        anyhow::Ok(modelport_image::push(&args.layout, &args.reference, &auth).await?)
    })?;
    match out {
        OutputFormat::Json => print_json(&pushed)?,
        OutputFormat::Text => {
            println!("pushed   {}", pushed.reference);
            println!("digest   {}", pushed.digest);
            println!(
                "blobs    {} sent ({}), {} already there",
                pushed.blobs_sent,
                human_bytes(pushed.bytes_sent),
                pushed.blobs_skipped
            );
            println!("use it:  image_uri: {}", pushed.pinned);
        }
    }
    Ok(Code::Success)
}
