//! `modelport plan`: what `deploy` would do and what it would cost, before anything
//! is created.
//!
//! The actions come from the provider's own `plan` (which reads state and, for clouds,
//! the live resources). The cost
//! lines never come from the provider: they come from the catalog (`modelport-catalog`)
//! and the spec, so every provider gets the same prices, limits and fit checks, and a
//! new backend gets them for free.
//!
//! `deploy` shows the same plan through [`prepare`] and [`render`].

use std::io::IsTerminal;

use anyhow::Context;
use modelport_catalog::{
    Catalog, Catalogs, Compute, Cost, Finding, PayloadLimit, dollars, local_payload_limit,
};
use modelport_core::provider::{ActionKind, Plan, Provider};
use modelport_core::spec::DeploymentSpec;
use modelport_core::state::{DeploymentState, Workspace};
use serde_json::json;

use super::deploy::{Scratch, package_model};
use super::{print_json, targets};
use crate::cli::{OutputFormat, PlanArgs};
use crate::exit::Code;
use crate::reporter::StderrReporter;

/// The file, in a deployment's working directory, that records the spec of the
/// revision that serves, so that `plan` and `list` can price what runs now.
const DEPLOYED_SPEC: &str = "deployed-spec.json";

pub fn run(args: PlanArgs, out: OutputFormat, quiet: bool) -> anyhow::Result<Code> {
    let spec = DeploymentSpec::from_file(&args.file)?;
    let ws = super::workspace(&args.workspace.home)?;
    let provider = targets::provider(&args.provider, &ws)?;
    let reporter = StderrReporter::new(quiet || out == OutputFormat::Json);
    let scratch = Scratch::new(&ws, "plan");
    let runtime = targets::runtime()?;
    let planned = prepare(&spec, &ws, provider.as_ref(), &scratch, &runtime, &reporter)?;
    match out {
        OutputFormat::Json => print_json(&planned.to_json())?,
        OutputFormat::Text => print!("{}", render(&planned)),
    }
    Ok(if planned.plan.is_noop() {
        Code::Success
    } else {
        Code::Changes
    })
}

/// A plan with its cost, limits and warnings.
pub struct Planned {
    pub plan: Plan,
    pub compute: Compute,
    /// What runs now costs; `None` when the recorded state does not say what runs.
    pub before: Option<Cost>,
    pub after: Cost,
    pub payload: PayloadLimit,
    pub warnings: Vec<Finding>,
    /// `Vertex AI list prices in us-central1 as of 2025-01-15 (embedded providers/gcp.yaml)`.
    pub prices: Option<String>,
}

impl Planned {
    /// True when applying the plan starts something billed.
    pub fn creates_billable(&self) -> bool {
        self.after.billable
            && self
                .plan
                .actions
                .iter()
                .any(|a| matches!(a.kind, ActionKind::Create | ActionKind::Update))
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "name": self.plan.name,
            "provider": self.plan.provider,
            "changes": !self.plan.is_noop(),
            "actions": self.plan.actions,
            "artifact": self.plan.artifact,
            "compute": self.compute,
            "cost": {
                "currency": "USD",
                "hours_per_month": modelport_catalog::HOURS_PER_MONTH,
                "before": self.before,
                "after": self.after,
                "prices": self.prices,
            },
            "payload_limit": self.payload,
            "warnings": self.warnings,
        })
    }
}

/// Checks the spec against the catalog, packages the model and plans, without
/// changing anything.
pub fn prepare(
    spec: &DeploymentSpec,
    ws: &Workspace,
    provider: &dyn Provider,
    scratch: &Scratch,
    runtime: &tokio::runtime::Runtime,
    reporter: &StderrReporter,
) -> anyhow::Result<Planned> {
    use modelport_core::provider::Reporter;

    let name = provider.name();
    let catalogs = Catalogs::from_env()?;
    let catalog = catalogs.get(name);
    // Before anything is packaged or created: a wrong instance type fails here.
    let compute = match catalog {
        Some(c) => c.compute(spec).map_err(modelport_core::Error::Spec)?,
        None => Compute::Local,
    };

    let previous = ws.load_state(spec.name.as_str())?;
    if let Some(prev) = &previous
        && prev.provider != name
    {
        anyhow::bail!(
            "deployment {:?} exists on provider {:?}; `modelport destroy {}` first, or give this one another name",
            prev.name,
            prev.provider,
            prev.name
        );
    }

    reporter.on_start(&format!("packaging {}", spec.model_path().display()));
    let (artifact, footprint) = package_model(spec, &scratch.0)?;
    let plan = runtime.block_on(provider.plan(spec, &artifact, previous.as_ref()))?;

    let after = compute.cost();
    let before = match previous.as_ref().filter(|s| s.active.is_some()) {
        None => Some(Cost::free()),
        Some(_) if plan.is_noop() => Some(after.clone()),
        Some(state) => recorded_cost(ws, state, catalog),
    };
    let mut warnings = Vec::new();
    if let Some(c) = catalog {
        warnings.extend(c.region_note(spec));
        warnings.extend(c.fit(&compute, &footprint));
    }
    Ok(Planned {
        payload: catalog.map_or_else(|| local_payload_limit(spec), |c| c.payload_limit(spec)),
        prices: catalog.map(price_line),
        plan,
        compute,
        before,
        after,
        warnings,
    })
}

fn price_line(c: &Catalog) -> String {
    format!(
        "{} on-demand list prices in {} as of {} ({}); refresh with `modelport catalog refresh`",
        c.platform.title(),
        c.region,
        c.price_date(),
        c.origin
    )
}

/// The plan as `plan` prints it on stdout and `deploy` on stderr.
pub fn render(p: &Planned) -> String {
    let plan = &p.plan;
    let mut s = format!("plan for {} ({}):\n", plan.name, plan.provider);
    let width = plan
        .actions
        .iter()
        .map(|a| a.resource.chars().count())
        .max()
        .unwrap_or(0);
    for a in &plan.actions {
        s.push_str(&format!(
            "  {} {:width$}  {}\n",
            a.kind.symbol(),
            a.resource,
            a.reason
        ));
    }
    let before = p.before.as_ref().map_or(
        "unknown (the state does not record what runs)".into(),
        Cost::describe,
    );
    s.push_str(&format!("compute   {}\n", p.compute.describe()));
    s.push_str(&format!(
        "cost      {before} now → {} after\n",
        p.after.describe()
    ));
    if let Some(prices) = &p.prices {
        s.push_str(&format!("prices    {prices}\n"));
    }
    s.push_str(&format!(
        "payload   the comparison batches requests to {} bytes ({})\n",
        p.payload.bytes, p.payload.reason
    ));
    for w in &p.warnings {
        s.push_str(&format!("warning   {w}\n"));
        if let Some(h) = &w.hint {
            s.push_str(&format!("          hint: {h}\n"));
        }
    }
    let changes = plan
        .actions
        .iter()
        .filter(|a| a.kind != ActionKind::Keep)
        .count();
    s.push_str(&match changes {
        0 => "no changes\n".to_string(),
        1 => "1 change\n".to_string(),
        n => format!("{n} changes\n"),
    });
    s
}

/// Asks on the terminal before a deploy starts something billed. True to go on.
/// Never asks when stdin is not a terminal, with `--yes`, or when nothing billed starts.
pub fn confirm(p: &Planned, yes: bool) -> anyhow::Result<bool> {
    if yes || !p.creates_billable() || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!(
        "this creates resources billed at {}; deploy? [y/N] ",
        p.after.describe()
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn spec_hash(spec: &DeploymentSpec) -> String {
    modelport_package::sha256_bytes(spec.canonical_json().as_bytes())
}

/// Records the spec of the revision that now serves, after a deploy switched to it.
pub fn record_deployed(ws: &Workspace, state: &DeploymentState, spec: &DeploymentSpec) {
    let Some(active) = &state.active else {
        return;
    };
    let dir = ws.deployment_dir(&state.name);
    let body = json!({"spec_hash": active.spec_hash, "spec": spec});
    let write = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(DEPLOYED_SPEC), body.to_string()));
    // Only prices depend on it: a failure costs a `?` in `list`, not the deploy.
    if let Err(e) = write {
        tracing::warn!("cannot record the deployed spec in {}: {e}", dir.display());
    }
}

/// The spec of the revision that serves: as recorded by the deploy that switched to
/// it, else the state's spec file when it still hashes the same.
fn deployed_spec(ws: &Workspace, state: &DeploymentState) -> Option<DeploymentSpec> {
    let active = state.active.as_ref()?;
    let path = ws.deployment_dir(&state.name).join(DEPLOYED_SPEC);
    if let Ok(text) = std::fs::read_to_string(path)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && v["spec_hash"] == active.spec_hash.as_str()
        && let Ok(mut spec) = serde_json::from_value::<DeploymentSpec>(v["spec"].clone())
    {
        spec.file = state.spec_file.clone();
        return Some(spec);
    }
    let spec = DeploymentSpec::from_file(&state.spec_file).ok()?;
    (spec_hash(&spec) == active.spec_hash).then_some(spec)
}

/// What the serving revision of `state` costs, when the state says what it runs.
fn recorded_cost(
    ws: &Workspace,
    state: &DeploymentState,
    catalog: Option<&Catalog>,
) -> Option<Cost> {
    match catalog {
        None => Some(Cost::free()),
        Some(c) => c.compute(&deployed_spec(ws, state)?).ok().map(|c| c.cost()),
    }
}

/// `$0.115/h` for `list`: what a deployment's serving revision costs by the hour,
/// `$0` on this machine, `?` when the state does not say what runs.
pub fn hourly(
    ws: &Workspace,
    catalogs: &Catalogs,
    state: &DeploymentState,
) -> (String, Option<f64>) {
    match recorded_cost(ws, state, catalogs.get(&state.provider)) {
        Some(c) if c.per_use.is_some() => ("per use".into(), Some(0.0)),
        Some(c) => (
            format!("{}/h", dollars(c.usd_per_hour)),
            Some(c.usd_per_hour),
        ),
        None => ("?".into(), None),
    }
}
