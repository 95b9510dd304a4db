//! `modelport init [MODEL]`: write a commented modelport.yaml from templates/.

use anyhow::{Context, bail};
use modelport_core::spec::{DeploymentName, DeploymentSpec, INIT_TEMPLATE, render_template};
use serde_json::json;

use super::print_json;
use crate::cli::{InitArgs, OutputFormat};
use crate::exit::Code;

pub fn run(args: InitArgs, out: OutputFormat) -> anyhow::Result<Code> {
    if args.file.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            args.file.display()
        );
    }
    let name = match &args.name {
        Some(n) => DeploymentName::new(n.clone()).map_err(|e| anyhow::anyhow!("--name: {e}"))?,
        None => {
            // `iris/model.onnx` is named after its folder; `fraud.onnx` after its file.
            let stem = args
                .model
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("model");
            let folder = std::path::absolute(&args.model)
                .ok()
                .and_then(|p| p.parent()?.file_name()?.to_str().map(String::from));
            let raw = match folder {
                Some(folder) if stem == "model" => folder,
                _ => stem.to_string(),
            };
            DeploymentName::sanitize(&raw)
                .or_else(|| DeploymentName::sanitize("model"))
                .context("cannot derive a deployment name; pass --name")?
        }
    };
    // model.path is relative to the YAML file's directory.
    let base = args.file.parent().filter(|p| !p.as_os_str().is_empty());
    let model_path = match base {
        Some(base) => pathdiff(&args.model, base),
        None => args.model.display().to_string(),
    };
    let text = render_template(INIT_TEMPLATE, &name, &model_path);
    // The written file must parse: check before writing.
    DeploymentSpec::from_str(&text, &args.file)?;
    if let Some(dir) = base {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&args.file, &text)
        .with_context(|| format!("cannot write {}", args.file.display()))?;
    match out {
        OutputFormat::Json => {
            print_json(&json!({"file": args.file, "name": name.as_str(), "model": model_path}))?
        }
        OutputFormat::Text => {
            println!(
                "wrote {} for deployment `{name}` (model {model_path})",
                args.file.display()
            );
        }
    }
    Ok(Code::Success)
}

/// `model` relative to `base` when both are relative paths under the working directory.
fn pathdiff(model: &std::path::Path, base: &std::path::Path) -> String {
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (m, b) = (abs(model), abs(base));
    let common = m
        .components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .count();
    let ups = b.components().count() - common;
    let mut out = std::path::PathBuf::new();
    for _ in 0..ups {
        out.push("..");
    }
    for c in m.components().skip(common) {
        out.push(c);
    }
    out.display().to_string()
}
