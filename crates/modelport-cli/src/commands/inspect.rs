//! `modelport inspect MODEL`: what a model takes and returns, and who can run it.

use std::fmt::Write as _;

use anyhow::Context;
use modelport_runtime::{EngineChoice, ModelInfo, open_engine};
use serde::Serialize;

use super::{human_bytes, print_json, runtime_options};
use crate::cli::{InspectArgs, OutputFormat};
use crate::exit::Code;

/// Whether one engine can run the model, as `--output json` prints it.
#[derive(Debug, Serialize)]
struct EngineReport {
    engine: String,
    version: Option<String>,
    runs: bool,
    /// Why not, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    model: &'a ModelInfo,
    engines: Vec<EngineReport>,
}

pub fn run(args: InspectArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let info = ModelInfo::from_path(&args.model)
        .with_context(|| format!("cannot inspect {}", args.model.display()))?;
    let opts = runtime_options(&args.engine);
    let engines = [EngineChoice::Onnxruntime, EngineChoice::Tract]
        .into_iter()
        .map(|choice| match open_engine(choice, &opts) {
            Err(e) => EngineReport {
                engine: choice.to_string(),
                version: None,
                runs: false,
                reason: Some(e.to_string()),
            },
            Ok(engine) => {
                let loaded = engine.load(&info);
                EngineReport {
                    engine: choice.to_string(),
                    version: Some(engine.info().version),
                    runs: loaded.is_ok(),
                    reason: loaded.err().map(|e| e.to_string()),
                }
            }
        })
        .collect();
    let report = Report {
        model: &info,
        engines,
    };
    match out {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => print!("{}", text(&report)),
    }
    Ok(Code::Success)
}

fn text(r: &Report) -> String {
    let m = r.model;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model       {} ({})",
        m.path.display(),
        human_bytes(m.size_bytes)
    );
    if !m.producer.is_empty() {
        let _ = writeln!(s, "producer    {}", m.producer);
    }
    let opsets: Vec<String> = m.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
    let _ = writeln!(
        s,
        "opsets      {} (ir_version {})",
        opsets.join(", "),
        m.ir_version
    );
    let _ = writeln!(
        s,
        "parameters  {} ({})",
        m.parameters,
        human_bytes(m.weight_bytes)
    );
    for f in &m.external_data {
        let _ = writeln!(
            s,
            "data        {} ({}, {} tensor{})",
            f.location,
            human_bytes(f.size),
            f.tensors,
            if f.tensors == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(s, "inputs");
    for t in &m.signature.inputs {
        let _ = writeln!(s, "  {t}");
    }
    let _ = writeln!(s, "outputs");
    for t in &m.signature.outputs {
        match &t.class_labels {
            Some(labels) => {
                let _ = writeln!(
                    s,
                    "  {t}  classes {}",
                    serde_json::to_string(labels).unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(s, "  {t}");
            }
        }
    }
    let ops: Vec<String> = m
        .operators
        .iter()
        .map(|o| {
            if o.count == 1 {
                o.qualified()
            } else {
                format!("{} x{}", o.qualified(), o.count)
            }
        })
        .collect();
    let _ = writeln!(s, "operators   {}", ops.join(", "));
    let _ = writeln!(s, "engines");
    for e in &r.engines {
        let name = match &e.version {
            Some(v) => format!("{} {v}", e.engine),
            None => e.engine.clone(),
        };
        match &e.reason {
            None => {
                let _ = writeln!(s, "  {name}: runs");
            }
            Some(reason) => {
                let _ = writeln!(s, "  {name}: cannot run: {reason}");
            }
        }
    }
    s
}
