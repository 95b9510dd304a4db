//! `modelport deploy`: the rollout of `modelport_deploy`, wired to the terminal.
//!
//! Under the deployment's lock: finish or undo what an interrupted deploy left,
//! package and plan, print the plan (and ask, on a terminal, before something
//! billed starts), then roll out: the new revision comes up beside the old one, is
//! compared with the packaged model on the local runtime before any production
//! request reaches it, and only then takes the traffic. SIGINT and SIGTERM from then
//! on roll the new revision back instead of ending the process.

use std::time::Duration;

use anyhow::Context;
use modelport_core::lock::LockKind;
use modelport_core::provider::Provider;
use modelport_core::spec::DeploymentSpec;
use modelport_core::state::{DeploymentState, Workspace};
use modelport_deploy::{
    Cancellation, Deployer, EndpointGate, Outcome, Packaged, Planned, ReferenceVerifier, Scratch,
};
use modelport_verify::{CompareReport, DEFAULT_WORST, render_text};
use serde_json::json;

use super::{plan, print_json, registry, targets};
use crate::cli::{DeployArgs, OutputFormat};
use crate::exit::Code;
use crate::reporter::StderrReporter;

pub fn run(args: DeployArgs, out: OutputFormat, quiet: bool) -> anyhow::Result<Code> {
    let spec = DeploymentSpec::from_file(&args.file)?;
    let ws = super::workspace(&args.workspace.home)?;
    let provider = targets::provider(&args.provider, &ws)?;
    let runtime = targets::runtime()?;
    let reporter = StderrReporter::new(quiet || out == OutputFormat::Json);
    runtime.block_on(deploy(&args, spec, &ws, provider.as_ref(), out, &reporter))
}

async fn deploy(
    args: &DeployArgs,
    mut spec: DeploymentSpec,
    ws: &Workspace,
    provider: &dyn Provider,
    out: OutputFormat,
    reporter: &StderrReporter,
) -> anyhow::Result<Code> {
    let silent = reporter.is_silent();
    let mode = targets::rollout_mode(&spec, args.no_verify);
    let wait = Duration::from_secs(args.lock.wait_lock);
    // A wrong instance type fails before anything is built, locked, packaged or created.
    modelport_deploy::check_compute(&spec, provider)?;
    // No image named: this modelport's own, built now and pushed once the plan is accepted.
    let own = registry::own_image(&mut spec, &args.provider, ws, reporter).await?;
    let spec = &spec;
    let name = spec.name.as_str();
    let scratch = Scratch::new(ws, "package")?;

    let mut lock = targets::lock(ws, name, LockKind::Exclusive, "deploy", wait, silent)?;
    let mut deployer = Deployer {
        provider,
        workspace: ws,
        reporter,
        cancel: Cancellation::never(),
    };
    let (state, recovered) = recover(&deployer, spec, ws, provider).await?;
    let packaged = match modelport_deploy::package_in(spec, &scratch, reporter).await {
        Err(modelport_deploy::DeployError::Gate(report)) => return plan::gate_failed(&report, out),
        other => other?,
    };
    let mut planned =
        modelport_deploy::plan(spec, ws, provider, &packaged, state.as_ref(), mode).await?;
    if !silent {
        eprint!("{}", plan::render(&planned));
        if let Some(image) = &own {
            eprint!("{}", plan::render_own_image(image));
        }
    }
    if plan::asks(&planned, args.yes) {
        // Nobody waits on us while the user reads the plan.
        drop(lock);
        if !plan::confirm(&planned)? {
            eprintln!("cancelled: nothing was created");
            return Ok(Code::Error);
        }
        lock = targets::lock(ws, name, LockKind::Exclusive, "deploy", wait, silent)?;
        planned = replan(&deployer, spec, ws, provider, &packaged, planned, mode).await?;
    }

    if let Some(image) = &own {
        registry::push_own_image(image, reporter).await?;
    }
    // From here on a signal rolls the new revision back.
    deployer.cancel = Cancellation::on_signals().context("cannot watch for SIGINT and SIGTERM")?;
    // `compare NAME` runs exactly what was deployed, whichever the provider: the
    // artifact is kept in the workspace's store by content.
    modelport_local::install(ws, &packaged.artifact)?;
    let mut verify = spec.verify.clone();
    verify.samples = spec.samples_path();
    let verifier = ReferenceVerifier {
        workspace: ws.clone(),
        artifact: packaged.artifact.clone(),
        label: match &packaged.compression {
            None => spec.model_path().display().to_string(),
            Some(c) => format!(
                "{}, compressed ({})",
                spec.model_path().display(),
                modelport_compress::report::method(&c.report.settings)
            ),
        },
        engine: args.engine.engine,
        verify,
        worst: DEFAULT_WORST,
        compression: packaged.compression.as_ref().map(|c| EndpointGate {
            original: c.original.clone(),
            goals: c.goals.clone(),
            eval: c.eval.clone(),
            result: Default::default(),
        }),
    };
    let plan_json = serde_json::to_value(&planned.plan)?;
    let outcome = deployer.run(planned.plan, Some(&verifier)).await;
    drop(lock);
    let outcome = outcome?;
    let hops = packaged.compression.as_ref().map(|c| Hops {
        local: c.report.clone(),
        endpoint: verifier.compression.as_ref().and_then(EndpointGate::last),
    });
    report(
        args, provider, name, out, recovered, plan_json, outcome, hops,
    )
    .await
}

/// The two hops of a compressed deploy's proof.
struct Hops {
    /// original → compressed, on this machine (the gate before packaging).
    local: modelport_compress::CompressReport,
    /// original → endpoint; absent when the endpoint was not reached.
    endpoint: Option<modelport_compress::GateReport>,
}

impl Hops {
    fn to_json(&self) -> serde_json::Value {
        json!({
            "local": self.local,
            "endpoint": self.endpoint,
        })
    }

    fn render(&self) -> String {
        let mut s = format!(
            "compression  {}\n",
            modelport_compress::render_summary(&self.local)
        );
        s.push_str(&modelport_compress::render_gate(
            &self.local.gate,
            "original → compressed (this machine)",
        ));
        match &self.endpoint {
            Some(g) => s.push_str(&modelport_compress::render_gate(g, "original → endpoint")),
            None => s.push_str("original → endpoint: not compared (the endpoint did not answer like the packaged model)\n"),
        }
        s
    }
}

/// Finishes or undoes what an interrupted deploy left, so that the plan starts
/// from a settled state.
async fn recover(
    deployer: &Deployer<'_>,
    spec: &DeploymentSpec,
    ws: &Workspace,
    provider: &dyn Provider,
) -> anyhow::Result<(Option<DeploymentState>, bool)> {
    let state = modelport_deploy::recorded_state(spec, ws, provider)?;
    match state {
        Some(s) if s.pending.is_some() || s.rollout.is_some() => Ok(deployer.recover(s).await?),
        other => Ok((other, false)),
    }
}

/// After the confirmation prompt, under the lock again: the state is read anew, and
/// a plan that another command changed meanwhile is not applied.
async fn replan(
    deployer: &Deployer<'_>,
    spec: &DeploymentSpec,
    ws: &Workspace,
    provider: &dyn Provider,
    packaged: &Packaged,
    planned: Planned,
    mode: modelport_core::state::RolloutMode,
) -> anyhow::Result<Planned> {
    let (state, _) = recover(deployer, spec, ws, provider).await?;
    if state == planned.plan.previous {
        return Ok(planned);
    }
    let fresh = modelport_deploy::plan(spec, ws, provider, packaged, state.as_ref(), mode).await?;
    if fresh.plan.actions != planned.plan.actions {
        eprint!("{}", plan::render(&fresh));
        anyhow::bail!(
            "deployment {:?} changed while the plan was shown (another modelport command ran): nothing was done; run the deploy again to see the new plan",
            spec.name.as_str()
        );
    }
    Ok(fresh)
}

#[allow(clippy::too_many_arguments)]
async fn report(
    args: &DeployArgs,
    provider: &dyn Provider,
    name: &str,
    out: OutputFormat,
    recovered: bool,
    plan: serde_json::Value,
    outcome: Outcome,
    hops: Option<Hops>,
) -> anyhow::Result<Code> {
    let (state, comparison, passed, reason) = match outcome {
        Outcome::UpToDate { state } => {
            let status = provider.status(&state).await?;
            match out {
                OutputFormat::Json => print_json(&json!({
                    "changed": recovered,
                    "plan": plan,
                    "status": status,
                }))?,
                OutputFormat::Text => println!(
                    "{name} is up to date{} ({})",
                    if recovered {
                        "; finished what an interrupted deploy left"
                    } else {
                        ": nothing to do"
                    },
                    status.predict_url.as_deref().unwrap_or("no URL")
                ),
            }
            return Ok(Code::Success);
        }
        Outcome::Deployed { state, report } => (Some(state), report, true, None),
        Outcome::Rejected {
            state,
            report,
            reason,
        } => (state, report, false, Some(reason)),
    };
    let status = match &state {
        Some(s) => Some(provider.status(s).await?),
        None => None,
    };
    match out {
        OutputFormat::Json => print_json(&json!({
            "changed": passed,
            "passed": passed,
            "reason": reason,
            "plan": plan,
            "comparison": comparison,
            "compression": hops.as_ref().map(Hops::to_json),
            "status": status,
        }))?,
        OutputFormat::Text => {
            if let Some(r) = &comparison {
                print!("{}", render_text(r));
            }
            if let Some(h) = &hops {
                print!("{}", h.render());
            }
            // A failed report says FAIL itself; a failure it does not show is said here.
            if let Some(why) = &reason
                && comparison.as_ref().is_none_or(CompareReport::passed)
            {
                println!("FAIL  {why}");
            }
            match (&status, passed) {
                (Some(s), true) => println!(
                    "deployed {name}: {} ({})",
                    s.predict_url.as_deref().unwrap_or("-"),
                    s.detail
                ),
                (Some(_), false) => println!(
                    "not deployed: the new revision was removed and the previous one keeps serving"
                ),
                (None, _) => println!("not deployed: the new revision was removed"),
            }
        }
    }
    if let (Some(path), Some(r)) = (&args.junit, &comparison) {
        write_junit(path, r)?;
    }
    if let (Some(path), Some(r)) = (&args.report, &comparison) {
        std::fs::write(path, modelport_verify::render_html(r))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if passed {
        Code::Success
    } else {
        Code::Mismatch
    })
}

fn write_junit(path: &std::path::Path, r: &CompareReport) -> anyhow::Result<()> {
    std::fs::write(path, modelport_verify::render_junit(r))
        .with_context(|| format!("cannot write {}", path.display()))
}
