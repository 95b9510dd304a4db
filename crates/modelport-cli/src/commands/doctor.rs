//! `modelport doctor`: what can run here and what a deploy would need, one line per
//! check. The engine, spec and model checks live here; each provider checks its own
//! platform (`Provider::doctor`), with reads only.

use std::path::PathBuf;

use modelport_core::provider::{Check, CheckLevel};
use modelport_core::spec::DeploymentSpec;
use modelport_runtime::{
    EngineChoice, ModelInfo, OrtEngine, RuntimeOptions, locate_onnxruntime_library, open_engine,
};
use serde::Serialize;
use serde_json::json;

use super::{print_json, targets, workspace};
use crate::cli::{DoctorArgs, OutputFormat};
use crate::exit::Code;

/// A check and the part of the setup it belongs to (`engine`, `spec`, `aws`, ...).
#[derive(Serialize)]
struct Line {
    scope: String,
    #[serde(flatten)]
    check: Check,
}

fn line(scope: &str, check: Check) -> Line {
    Line {
        scope: scope.to_string(),
        check,
    }
}

pub fn run(args: DoctorArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let mut lines = engines();

    let file = args.file.clone().or_else(|| {
        let here = PathBuf::from("modelport.yaml");
        here.is_file().then_some(here)
    });
    let spec = match &file {
        None => {
            lines.push(line(
                "spec",
                Check::warn(
                    "modelport.yaml",
                    "no modelport.yaml here: only this machine was checked",
                    "pass `-f modelport.yaml` (or run `modelport init MODEL`) to check what a deploy needs",
                ),
            ));
            None
        }
        Some(file) => match DeploymentSpec::from_file(file) {
            Ok(spec) => {
                lines.push(line(
                    "spec",
                    Check::ok(
                        file.display().to_string(),
                        format!("deployment `{}`", spec.name),
                    ),
                ));
                lines.push(line("spec", model(&spec)));
                Some(spec)
            }
            Err(e) => {
                let e = anyhow::Error::from(e);
                lines.push(line(
                    "spec",
                    Check::fail(
                        file.display().to_string(),
                        e.to_string(),
                        crate::output::hint(&e),
                    ),
                ));
                None
            }
        },
    };

    if let Some(spec) = &spec {
        let names: Vec<&str> = match &args.provider {
            Some(p) => vec![p.as_str()],
            None => {
                let mut names = vec!["local"];
                if spec.provider.aws.is_some() {
                    names.push("aws");
                }
                if spec.provider.gcp.is_some() {
                    names.push("gcp");
                }
                names
            }
        };
        let ws = workspace(&args.workspace.home)?;
        let rt = targets::runtime()?;
        for name in names {
            let provider = match targets::provider(name, &ws) {
                Ok(provider) => provider,
                // A provider this binary was built without is one failed check, not the
                // end of the others.
                Err(e) if targets::PROVIDERS.contains(&name) => {
                    let hint = crate::output::hint(&e);
                    lines.push(line(name, Check::fail("build", e.to_string(), hint)));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for check in rt.block_on(provider.doctor(spec)) {
                lines.push(line(name, check));
            }
        }
    } else if let Some(p) = &args.provider {
        // Validates the name even when nothing else can be checked.
        targets::provider(p, &workspace(&args.workspace.home)?)?;
    }

    let count = |level| lines.iter().filter(|l| l.check.level == level).count();
    let (ok, warn, fail) = (
        count(CheckLevel::Ok),
        count(CheckLevel::Warn),
        count(CheckLevel::Fail),
    );
    match out {
        OutputFormat::Json => print_json(&json!({
            "checks": lines,
            "ok": ok,
            "warn": warn,
            "fail": fail,
        }))?,
        OutputFormat::Text => print_text(&lines, ok, warn, fail),
    }
    Ok(if fail > 0 { Code::Error } else { Code::Success })
}

fn print_text(lines: &[Line], ok: usize, warn: usize, fail: usize) {
    let label = |l: &Line| format!("{} {}", l.scope, l.check.what);
    let width = lines.iter().map(|l| label(l).len()).max().unwrap_or(0);
    for l in lines {
        let level = match l.check.level {
            CheckLevel::Ok => "ok",
            CheckLevel::Warn => "warn",
            CheckLevel::Fail => "fail",
        };
        println!("{level:<5} {:<width$}  {}", label(l), l.check.detail);
        if let Some(hint) = &l.check.hint {
            for (i, text) in hint.lines().enumerate() {
                let lead = if i == 0 { "hint: " } else { "      " };
                println!("{:<5} {:<width$}  {lead}{text}", "", "");
            }
        }
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    println!(
        "{}, {}, {}",
        plural(ok, "ok", "ok"),
        plural(warn, "warning", "warnings"),
        plural(fail, "failure", "failures")
    );
}

/// Both engines: tract is compiled in; onnxruntime is a library found at run time.
fn engines() -> Vec<Line> {
    let opts = RuntimeOptions::default();
    let mut lines = Vec::new();
    match open_engine(EngineChoice::Tract, &opts) {
        Ok(engine) => lines.push(line(
            "engine",
            Check::ok("tract", format!("{}, compiled in", engine.info().version)),
        )),
        Err(e) => lines.push(line("engine", Check::fail("tract", e.to_string(), None))),
    }
    let check = match open_engine(EngineChoice::Onnxruntime, &opts) {
        Ok(engine) => {
            let from = match (locate_onnxruntime_library(), OrtEngine::library_path()) {
                (Ok((source, _)), Some(path)) => format!(" from {} ({source})", path.display()),
                (_, Some(path)) => format!(" from {}", path.display()),
                _ => String::new(),
            };
            Check::ok("onnxruntime", format!("{}{from}", engine.info().version))
        }
        Err(e) => Check::warn(
            "onnxruntime",
            e.to_string(),
            crate::output::hint(&anyhow::Error::from(e))
                .unwrap_or_else(|| "`pip install onnxruntime`, or set ORT_DYLIB_PATH".into()),
        ),
    };
    lines.push(line("engine", check));
    lines
}

/// The spec's model, read and loaded on every engine that opened.
fn model(spec: &DeploymentSpec) -> Check {
    let path = spec.model_path();
    let what = "model";
    let info = match ModelInfo::from_path(&path) {
        Ok(info) => info,
        Err(e) => {
            let e = anyhow::Error::from(e);
            return Check::fail(
                what,
                format!("{}: {e}", path.display()),
                crate::output::hint(&e),
            );
        }
    };
    let opts = RuntimeOptions::default();
    let mut runs = Vec::new();
    let mut refused = Vec::new();
    for choice in [EngineChoice::Onnxruntime, EngineChoice::Tract] {
        let Ok(engine) = open_engine(choice, &opts) else {
            continue;
        };
        let name = format!("{} {}", choice, engine.info().version);
        match engine.load(&info) {
            Ok(_) => runs.push(name),
            Err(e) => refused.push(format!("{name}: {e}")),
        }
    }
    let detail = format!("{} loads on {}", path.display(), runs.join(" and "));
    match (runs.is_empty(), refused.is_empty()) {
        (false, true) => Check::ok(what, detail),
        (false, false) => Check::warn(
            what,
            format!("{detail}; {}", refused.join("; ")),
            "the comparison runs on an engine that loads it; `modelport inspect` shows why the other refuses",
        ),
        (true, _) => Check::fail(
            what,
            format!("{}: no engine loads it: {}", path.display(), refused.join("; ")),
            Some("`modelport inspect MODEL` names the operators; a deploy could not prove the endpoint".into()),
        ),
    }
}
