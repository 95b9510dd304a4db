//! `modelport compare A [B]`: the same inputs to two targets, outputs compared.

use anyhow::Context;
use modelport_core::Predictor;
use modelport_core::lock::LockKind;
use modelport_core::spec::VerifySpec;
use modelport_core::state::Which;
use modelport_verify::{render_junit, render_text};

use super::print_json;
use super::targets::{self, Target, load_local};
use crate::cli::{CompareArgs, OutputFormat};
use crate::exit::Code;

pub fn run(args: CompareArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let ws = super::workspace(&args.workspace.home)?;
    // A deployment is compared while no rollout changes it: a shared lock, which a
    // deploy or destroy of it waits for (and the other way round).
    let mut _locks = Vec::new();
    for text in std::iter::once(&args.a).chain(args.b.as_ref()) {
        if let Target::Deployment(s) = targets::resolve_target(&ws, text)? {
            _locks.push(targets::lock(
                &ws,
                &s.name,
                LockKind::Shared,
                "compare",
                std::time::Duration::from_secs(args.lock.wait_lock),
                out == OutputFormat::Json,
            )?);
        }
    }
    let a = targets::resolve_target(&ws, &args.a)?;
    let runtime = targets::runtime()?;

    // B defaults to A's own model on the local runtime, which needs A to be a deployment.
    let (b, mut verify): (Box<dyn Predictor>, VerifySpec) = match &args.b {
        Some(text) => {
            let b = targets::resolve_target(&ws, text)?;
            let verify = match (&a, &b) {
                (Target::Deployment(s), _) | (_, Target::Deployment(s)) => s
                    .active
                    .as_ref()
                    .map(|r| r.verify.clone())
                    .unwrap_or_default(),
                _ => VerifySpec::default(),
            };
            let p = runtime.block_on(targets::predictor(
                &ws,
                &b,
                args.engine_b,
                None,
                args.max_request_bytes,
                args.concurrency,
            ))?;
            (p, verify)
        }
        None => match &a {
            Target::Deployment(state) => {
                let (model, digest) = targets::deployment_model(&ws, state, Which::Active)?;
                let verify = state
                    .active
                    .as_ref()
                    .map(|r| r.verify.clone())
                    .unwrap_or_default();
                let label = format!("{} model", state.name);
                (
                    Box::new(load_local(&model, args.engine_b, label, Some(digest))?),
                    verify,
                )
            }
            _ => anyhow::bail!(
                "give two targets, or one deployment name (compared with its own model on this machine)"
            ),
        },
    };

    let a_engine = args.engine_a;
    let a = match &a {
        Target::Model(path) => Box::new(load_local(
            path,
            a_engine,
            path.display().to_string(),
            None,
        )?) as Box<dyn Predictor>,
        other => runtime.block_on(targets::predictor(
            &ws,
            other,
            a_engine,
            b.signature().cloned(),
            args.max_request_bytes,
            args.concurrency,
        ))?,
    };

    if let Some(path) = &args.samples {
        verify.samples = Some(path.clone());
    }
    if let Some(count) = args.count {
        verify.samples = None;
        verify.count = count as u32;
    }
    if let Some(seed) = args.seed {
        verify.seed = seed;
    }
    if let Some(atol) = args.atol {
        verify.atol = atol;
        verify.outputs.values_mut().for_each(|o| o.atol = None);
    }
    if let Some(rtol) = args.rtol {
        verify.rtol = rtol;
        verify.outputs.values_mut().for_each(|o| o.rtol = None);
    }

    let signature = b
        .signature()
        .or(a.signature())
        .cloned()
        .context("neither target can say what inputs the model takes; give a model file or an OIP URL as one of them")?;
    let inputs = targets::inputs(&verify, &signature)?;
    let report = runtime.block_on(modelport_verify::run::compare(
        a.as_ref(),
        b.as_ref(),
        &inputs,
        &verify,
        args.worst,
    ))?;
    match out {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => print!("{}", render_text(&report)),
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, render_junit(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.passed() {
        Code::Success
    } else {
        Code::Mismatch
    })
}
