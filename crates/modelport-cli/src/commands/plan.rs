//! `modelport plan`: what `deploy` would do and what it would cost, before anything
//! is created.
//!
//! The plan itself comes from `modelport_deploy::prepare` (catalog check, packaging,
//! the provider's plan, the cost from the catalog); this file prints it, and asks
//! before a deploy starts something billed.

use std::io::IsTerminal;

use anyhow::Context;
use modelport_catalog::Cost;
use modelport_core::provider::ActionKind;
use modelport_core::spec::DeploymentSpec;
use modelport_core::state::RolloutMode;
use modelport_deploy::{Planned, Scratch};

use super::{print_json, registry, targets};
use crate::cli::{OutputFormat, PlanArgs};
use crate::exit::Code;
use crate::reporter::StderrReporter;

pub fn run(args: PlanArgs, out: OutputFormat, quiet: bool) -> anyhow::Result<Code> {
    let mut spec = DeploymentSpec::from_file(&args.file)?;
    let ws = super::workspace(&args.workspace.home)?;
    let provider = targets::provider(&args.provider, &ws)?;
    let reporter = StderrReporter::new(quiet || out == OutputFormat::Json);
    let scratch = Scratch::new(&ws, "plan")?;
    let runtime = targets::runtime()?;
    // A wrong instance type fails before the image is built.
    modelport_deploy::check_compute(&spec, provider.as_ref())?;
    let own = runtime.block_on(registry::own_image(
        &mut spec,
        &args.provider,
        &ws,
        &reporter,
    ))?;
    let mode = targets::rollout_mode(&spec, false);
    let planned = match runtime.block_on(modelport_deploy::prepare(
        &spec,
        &ws,
        provider.as_ref(),
        &scratch,
        mode,
        &reporter,
    )) {
        Err(modelport_deploy::DeployError::Gate(report)) => return gate_failed(&report, out),
        other => other?,
    };
    match out {
        OutputFormat::Json => {
            let mut json = planned.to_json();
            if let Some(image) = &own {
                json["image"] = serde_json::json!({
                    "build": true,
                    "push": image.reference,
                    "pinned": image.pinned,
                });
            }
            print_json(&json)?
        }
        OutputFormat::Text => {
            print!("{}", render(&planned));
            if let Some(image) = &own {
                print!("{}", render_own_image(image));
            }
        }
    }
    Ok(if planned.plan.is_noop() {
        Code::Success
    } else {
        Code::Changes
    })
}

/// A compression that missed its goal before anything was planned or created:
/// the gate's report, and exit 3 as for any comparison that fails.
pub fn gate_failed(
    report: &modelport_compress::CompressReport,
    out: OutputFormat,
) -> anyhow::Result<Code> {
    match out {
        OutputFormat::Json => print_json(&serde_json::json!({
            "passed": false,
            "reason": "the compressed model misses the goal against the original model",
            "compression": report,
        }))?,
        OutputFormat::Text => {
            print!(
                "{}",
                modelport_compress::render_gate(
                    &report.gate,
                    "original → compressed (this machine)"
                )
            );
            println!(
                "FAIL  the compressed model misses the goal against the original model: nothing was created"
            );
            println!(
                "hint: loosen `model.compress.max_degradation`, set `per_channel: true`, `exclude` the nodes \
                 that lose accuracy, or `auto: true`; `modelport compress` tries settings without deploying"
            );
        }
    }
    Ok(Code::Mismatch)
}

/// The serving image a deploy builds and pushes because the spec names none.
pub fn render_own_image(image: &registry::OwnImage) -> String {
    format!(
        "  + image     {} (this modelport, built without Docker; the endpoint runs {})\n",
        image.reference, image.pinned
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
    if !plan.is_noop() {
        let r = &plan.rollout;
        let how = match r.mode {
            RolloutMode::BeforeTraffic => "compared before any production request reaches it",
            RolloutMode::AfterTraffic => {
                "compared after the traffic moved to it (verify.mode: after-traffic)"
            }
            RolloutMode::Unverified => "not compared (--no-verify)",
        };
        s.push_str(&format!("rollout   the new revision is {how}\n"));
        if r.mode != RolloutMode::Unverified {
            s.push_str(&format!("verify    through {}\n", r.verify_via));
        }
        s.push_str(&format!("traffic   {}\n", r.traffic));
    }
    let before = p.before.as_ref().map_or(
        "unknown (the state does not record what runs)".into(),
        Cost::describe,
    );
    if let Some(c) = &p.compression {
        s.push_str(&format!(
            "compress  {}\n",
            modelport_compress::render_summary(c)
        ));
        s.push_str("          the endpoint is proved against the original, uncompressed model\n");
    }
    if let Some(f) = &p.compressed_fit {
        let offer = |o: &Option<modelport_catalog::Offer>| {
            o.as_ref().map_or("no machine in the catalog".into(), |o| {
                format!(
                    "{} ({}/h)",
                    o.name(),
                    modelport_catalog::dollars(o.usd_per_hour)
                )
            })
        };
        s.push_str(&format!(
            "fits      the compressed model on {} at the cheapest; the original on {}\n",
            offer(&f.compressed),
            offer(&f.original)
        ));
    }
    s.push_str(&format!("compute   {}\n", p.compute.describe()));
    s.push_str(&format!(
        "cost      {before} now → {} after\n",
        p.after.describe()
    ));
    if let Some((peak, copies)) = p.peak() {
        let mut runs = Vec::new();
        match copies.old {
            0 => {}
            1 => runs.push("what runs now".to_string()),
            n => runs.push(format!("{n} × what runs now")),
        }
        match copies.new {
            0 => {}
            1 => runs.push("the new revision".to_string()),
            n => runs.push(format!("{n} × the new revision")),
        }
        s.push_str(&format!(
            "          up to {}/h while the rollout runs ({})\n",
            modelport_catalog::dollars(peak),
            runs.join(" + ")
        ));
    }
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

/// True when a deploy of `p` would ask before going on: it starts something billed,
/// stdin is a terminal and `--yes` was not given.
pub fn asks(p: &Planned, yes: bool) -> bool {
    !yes && p.creates_billable() && std::io::stdin().is_terminal()
}

/// Asks on the terminal before a deploy starts something billed. True to go on.
pub fn confirm(p: &Planned) -> anyhow::Result<bool> {
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
