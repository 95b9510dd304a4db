//! `modelport status [NAME]` and `modelport list`.

use modelport_core::provider::{EndpointStatus, Health};
use modelport_core::spec::DeploymentSpec;
use modelport_core::state::unix_now;

use super::print_json;
use super::targets;
use crate::cli::{ListArgs, OutputFormat};
use crate::exit::Code;

pub fn run(
    name: Option<String>,
    home: &std::path::Path,
    out: OutputFormat,
    detailed: bool,
) -> anyhow::Result<Code> {
    let ws = super::workspace(home)?;
    let states = match &name {
        Some(n) => vec![targets::load_state(&ws, n)?],
        None => ws.list_states()?,
    };
    let runtime = targets::runtime()?;
    let mut statuses = Vec::new();
    for state in &states {
        let provider = targets::provider(&state.provider, &ws)?;
        statuses.push(runtime.block_on(provider.status(state))?);
    }
    match out {
        OutputFormat::Json if detailed => print_json(&statuses)?,
        OutputFormat::Json => print_json(&with_cost(&ws, &statuses)?)?,
        OutputFormat::Text if statuses.is_empty() => {
            println!("no deployments in {}", ws.root().display());
        }
        OutputFormat::Text if detailed => {
            for s in &statuses {
                print!("{}", detail(s));
            }
        }
        OutputFormat::Text => print!("{}", table(&statuses, &costs(&ws, &statuses)?)),
    }
    Ok(Code::Success)
}

/// `modelport list`: the deployments recorded here and, with `--provider`, the
/// ones the provider finds by tag, marked when no local state records them.
pub fn list(args: ListArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let Some(provider_name) = &args.provider else {
        return run(None, &args.workspace.home, out, false);
    };
    let ws = super::workspace(&args.workspace.home)?;
    let spec = args
        .file
        .as_deref()
        .map(DeploymentSpec::from_file)
        .transpose()?;
    let provider = targets::provider(provider_name, &ws)?;
    let runtime = targets::runtime()?;
    let states = ws.list_states()?;
    let mut statuses = Vec::new();
    for state in states.iter().filter(|s| &s.provider == provider_name) {
        statuses.push(runtime.block_on(provider.status(state))?);
    }
    for mut found in runtime.block_on(provider.discover(spec.as_ref()))? {
        if statuses.iter().any(|s| s.name == found.name) {
            continue;
        }
        found.detail.push_str(
            "; no local state: `modelport deploy` with its modelport.yaml records it again",
        );
        statuses.push(found);
    }
    match out {
        OutputFormat::Json => print_json(&with_cost(&ws, &statuses)?)?,
        OutputFormat::Text if statuses.is_empty() => {
            println!("no {provider_name} deployments found");
        }
        OutputFormat::Text => print!("{}", table(&statuses, &costs(&ws, &statuses)?)),
    }
    Ok(Code::Success)
}

fn health(h: Health) -> &'static str {
    match h {
        Health::InService => "in service",
        Health::Updating => "updating",
        Health::Unhealthy => "unhealthy",
        Health::Stopped => "stopped",
        Health::Failed => "failed",
    }
}

/// `3d 4h`, `5m 10s`: how long something has been up.
pub fn uptime(since: Option<u64>) -> String {
    let Some(since) = since else {
        return "-".into();
    };
    let s = unix_now().saturating_sub(since);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

fn detail(s: &EndpointStatus) -> String {
    let mut t = format!("{}\n", s.name);
    t.push_str(&format!("  provider  {}\n", s.provider));
    t.push_str(&format!("  health    {}\n", health(s.health)));
    t.push_str(&format!(
        "  url       {}\n",
        s.predict_url.as_deref().unwrap_or("-")
    ));
    t.push_str(&format!(
        "  digest    {}\n",
        s.model_digest
            .as_deref()
            .map(|d| format!("sha256:{d}"))
            .unwrap_or("-".into())
    ));
    t.push_str(&format!("  up        {}\n", uptime(s.started_at)));
    t.push_str(&format!("  detail    {}\n", s.detail));
    if s.pending {
        let phase = s
            .rollout_phase
            .map(|p| format!(" (rollout phase: {})", p.as_str()))
            .unwrap_or_default();
        t.push_str(&format!(
            "  pending   a new revision is being deployed, or a deploy stopped half-way{phase}; \
             re-run the deploy or `modelport destroy` to finish\n"
        ));
    }
    t
}

/// What each deployment costs by the hour, from the catalogs and the spec its serving
/// revision was deployed with (`$0/h` on this machine, `?` when unknown).
fn hourly(
    ws: &modelport_core::state::Workspace,
    statuses: &[EndpointStatus],
) -> anyhow::Result<Vec<(String, Option<f64>)>> {
    let catalogs = modelport_catalog::Catalogs::from_env()?;
    statuses
        .iter()
        .map(|s| {
            Ok(match ws.load_state(&s.name)? {
                Some(state) if s.health != Health::Stopped => {
                    modelport_deploy::hourly(ws, &catalogs, &state)
                }
                Some(_) => ("$0/h".into(), Some(0.0)),
                None => ("?".into(), None),
            })
        })
        .collect()
}

fn costs(
    ws: &modelport_core::state::Workspace,
    statuses: &[EndpointStatus],
) -> anyhow::Result<Vec<String>> {
    Ok(hourly(ws, statuses)?.into_iter().map(|c| c.0).collect())
}

/// The statuses as JSON, each with `usd_per_hour` (null when unknown).
fn with_cost(
    ws: &modelport_core::state::Workspace,
    statuses: &[EndpointStatus],
) -> anyhow::Result<Vec<serde_json::Value>> {
    let costs = hourly(ws, statuses)?;
    statuses
        .iter()
        .zip(costs)
        .map(|(s, (_, usd))| {
            let mut v = serde_json::to_value(s)?;
            v["usd_per_hour"] = serde_json::json!(usd);
            Ok(v)
        })
        .collect()
}

fn table(statuses: &[EndpointStatus], costs: &[String]) -> String {
    let rows: Vec<[String; 6]> = statuses
        .iter()
        .zip(costs)
        .map(|(s, cost)| {
            [
                s.name.clone(),
                s.provider.clone(),
                health(s.health).to_string() + if s.pending { " (pending)" } else { "" },
                uptime(s.started_at),
                cost.clone(),
                s.predict_url.clone().unwrap_or("-".into()),
            ]
        })
        .collect();
    let header = ["NAME", "PROVIDER", "HEALTH", "UP", "COST", "URL"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
