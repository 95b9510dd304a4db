//! `modelport deploy`: package, plan, apply, compare, then promote or roll back.

use anyhow::Context;
use modelport_catalog::ModelFootprint;
use modelport_core::provider::{ArtifactRef, Reporter};
use modelport_core::spec::DeploymentSpec;
use modelport_core::state::{Which, Workspace};
use modelport_package::{PackageOptions, package};
use modelport_runtime::ModelInfo;
use modelport_verify::{CompareReport, DEFAULT_WORST, render_text};
use serde_json::json;

use super::targets::{self, load_local};
use super::{plan, print_json};
use crate::cli::{DeployArgs, OutputFormat};
use crate::exit::Code;
use crate::reporter::StderrReporter;

pub fn run(args: DeployArgs, out: OutputFormat, quiet: bool) -> anyhow::Result<Code> {
    let spec = DeploymentSpec::from_file(&args.file)?;
    let ws = super::workspace(&args.workspace.home)?;
    let provider = targets::provider(&args.provider, &ws)?;
    let name = spec.name.as_str().to_string();
    let reporter = StderrReporter::new(quiet || out == OutputFormat::Json);

    let scratch = Scratch::new(&ws, "package");
    let runtime = targets::runtime()?;
    // Validation against the catalog, packaging and the plan, with its cost: what
    // `modelport plan` prints.
    let planned = plan::prepare(&spec, &ws, provider.as_ref(), &scratch, &runtime, &reporter)?;
    if out == OutputFormat::Text && !quiet {
        eprint!("{}", plan::render(&planned));
    }
    if !plan::confirm(&planned, args.yes)? {
        eprintln!("cancelled: nothing was created");
        return Ok(Code::Error);
    }
    let plan = planned.plan;
    let artifact = plan.artifact.clone();
    // `compare NAME` runs exactly what was deployed, whichever the provider: the
    // artifact is kept in the workspace's store by content.
    modelport_local::store_artifact(&ws, &artifact)?;
    let state = match runtime.block_on(provider.apply(&plan, &reporter)) {
        Ok(s) => s,
        Err(e) => {
            forget_if_empty(&ws, &name)?;
            return Err(e.into());
        }
    };
    if state.pending.is_none() {
        // Nothing new to start: an unchanged deploy, or one that only removed what an
        // interrupted deploy left behind.
        let changed = !plan.is_noop();
        plan::record_deployed(&ws, &state, &spec);
        let status = runtime.block_on(provider.status(&state))?;
        match out {
            OutputFormat::Json => {
                print_json(&json!({"changed": changed, "plan": plan, "status": status}))?
            }
            OutputFormat::Text => println!(
                "{name} is up to date{} ({})",
                if changed {
                    "; removed what an interrupted deploy left"
                } else {
                    ": nothing to do"
                },
                status.predict_url.as_deref().unwrap_or("no URL")
            ),
        }
        return Ok(Code::Success);
    }
    let report = if args.no_verify {
        None
    } else {
        reporter.on_start("comparing the new endpoint with the local runtime");
        let endpoint = runtime.block_on(provider.endpoint(&state, Which::Pending))?;
        let reference = load_local(
            &spec.model_path(),
            args.engine.engine,
            spec.model_path().display().to_string(),
            Some(format!("sha256:{}", artifact.model_digest)),
        )?;
        let signature = reference.model_signature().clone();
        let mut verify = spec.verify.clone();
        verify.samples = spec.samples_path();
        let inputs = targets::inputs(&verify, &signature)?;
        let result = runtime.block_on(modelport_verify::run::compare(
            endpoint.as_ref(),
            &reference,
            &inputs,
            &verify,
            DEFAULT_WORST,
        ));
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                runtime.block_on(provider.rollback(state, &reporter))?;
                forget_if_empty(&ws, &name)?;
                return Err(e)
                    .context("the comparison could not run; the new revision was removed");
            }
        }
    };

    let wrong_server = report.as_ref().and_then(|r| {
        let expected = format!("sha256:{}", artifact.model_digest);
        match &r.a.served_by.digest {
            Some(d) if *d != expected => Some(format!(
                "the endpoint answered as {d}, but the deployed model is {expected}"
            )),
            _ => None,
        }
    });
    let passed = report.as_ref().is_none_or(CompareReport::passed) && wrong_server.is_none();
    let state = if passed {
        let s = runtime.block_on(provider.promote(state, &reporter))?;
        plan::record_deployed(&ws, &s, &spec);
        s
    } else {
        let s = runtime.block_on(provider.rollback(state, &reporter))?;
        forget_if_empty(&ws, &name)?;
        s
    };
    let status = runtime.block_on(provider.status(&state))?;

    match out {
        OutputFormat::Json => print_json(&json!({
            "changed": passed,
            "passed": passed,
            "plan": plan,
            "comparison": report,
            "status": status,
        }))?,
        OutputFormat::Text => {
            if let Some(r) = &report {
                print!("{}", render_text(r));
            }
            if let Some(w) = &wrong_server {
                println!("FAIL  {w}");
            }
            if passed {
                println!(
                    "deployed {name}: {} ({})",
                    status.predict_url.as_deref().unwrap_or("-"),
                    status.detail
                );
            } else if state.active.is_some() {
                println!(
                    "not deployed: the new revision was removed and the previous one keeps serving"
                );
            } else {
                println!("not deployed: the new revision was removed");
            }
        }
    }
    if let (Some(path), Some(r)) = (&args.junit, &report) {
        std::fs::write(path, modelport_verify::render_junit(r))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if passed {
        Code::Success
    } else {
        Code::Mismatch
    })
}

/// A first deploy that failed leaves nothing to remember.
fn forget_if_empty(ws: &Workspace, name: &str) -> anyhow::Result<()> {
    if let Some(s) = ws.load_state(name)?
        && s.active.is_none()
        && s.pending.is_none()
    {
        ws.remove_state(name)?;
    }
    Ok(())
}

/// Packages the spec's model into the workspace's scratch space; also says what the
/// model weighs, for the fit check.
pub(super) fn package_model(
    spec: &DeploymentSpec,
    scratch: &std::path::Path,
) -> anyhow::Result<(ArtifactRef, ModelFootprint)> {
    let model = spec.model_path();
    let info =
        ModelInfo::from_path(&model).with_context(|| format!("cannot load {}", model.display()))?;
    let opts = PackageOptions {
        signature: Some(info.signature.clone()),
        ..PackageOptions::default()
    };
    let artifact = package(&model, scratch, &opts)?;
    let footprint = ModelFootprint {
        file_bytes: info.size_bytes,
        parameters: info.parameters,
        weight_bytes: info.weight_bytes,
    };
    Ok((
        ArtifactRef {
            model_digest: artifact.manifest.digest(),
            path: artifact.path,
            digest: artifact.digest,
            size: artifact.size,
            signature: Some(info.signature),
        },
        footprint,
    ))
}

/// A scratch directory removed when the command ends, however it ends.
pub(super) struct Scratch(pub std::path::PathBuf);

impl Scratch {
    /// `<workspace>/tmp/<what>-<pid>`.
    pub(super) fn new(ws: &Workspace, what: &str) -> Scratch {
        Scratch(ws.tmp_dir().join(format!("{what}-{}", std::process::id())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
