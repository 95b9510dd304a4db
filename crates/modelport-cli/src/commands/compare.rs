//! `modelport compare A [B]`: the same inputs to two targets, outputs compared.

use anyhow::Context;
use modelport_core::Predictor;
use modelport_core::lock::LockKind;
use modelport_core::spec::VerifySpec;
use modelport_core::state::Which;
use modelport_verify::{render_html, render_junit, render_text};

use super::print_json;
use super::targets::{self, Target, load_local};
use crate::cli::{CompareArgs, OutputFormat};
use crate::exit::Code;

pub fn run(args: CompareArgs, out: OutputFormat, quiet: bool) -> anyhow::Result<Code> {
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
    let b_target = match &args.b {
        Some(text) => Some(targets::resolve_target(&ws, text)?),
        None => None,
    };
    let mut verify = match (&a, &b_target) {
        (Target::Deployment(s), _) | (_, Some(Target::Deployment(s))) => s
            .active
            .as_ref()
            .map(|r| r.verify.clone())
            .unwrap_or_default(),
        _ => VerifySpec::default(),
    };
    let connect = |target: &Target, engine, signature| {
        runtime.block_on(targets::predictor(
            &ws,
            target,
            engine,
            signature,
            args.max_request_bytes,
            args.concurrency,
        ))
    };
    // A server that answers `{"predictions"}` does not say its outputs' names and
    // dtypes: the other side's signature types them, so the side that knows its
    // signature (a model, a deployment, an OIP server) is built first.
    let mut typed_by = None;
    let a_untyped = targets::is_untyped_url(&a);
    let (a, b): (Box<dyn Predictor>, Box<dyn Predictor>) = match b_target {
        None => match &a {
            Target::Deployment(state) => {
                let (model, digest) = targets::deployment_model(&ws, state, Which::Active)?;
                let label = format!("{} model", state.name);
                let b: Box<dyn Predictor> =
                    Box::new(load_local(&model, args.engine_b, label, Some(digest))?);
                let a = connect(&a, args.engine_a, b.signature().cloned())?;
                (a, b)
            }
            _ => anyhow::bail!(
                "give two targets, or one deployment name (compared with its own model on this machine)"
            ),
        },
        Some(b_target) => {
            if targets::is_untyped_url(&b_target) && !a_untyped {
                let a = connect(&a, args.engine_a, None)?;
                let b = connect(&b_target, args.engine_b, a.signature().cloned())?;
                if a.signature().is_some() {
                    typed_by = Some(
                        "B's outputs are typed by A's signature (the server does not say its own)",
                    );
                }
                (a, b)
            } else {
                let b = connect(&b_target, args.engine_b, None)?;
                let a = connect(&a, args.engine_a, b.signature().cloned())?;
                if a_untyped && b.signature().is_some() {
                    typed_by = Some(
                        "A's outputs are typed by B's signature (the server does not say its own)",
                    );
                }
                (a, b)
            }
        }
    };

    if let Some(path) = &args.samples {
        verify.samples = Some(path.clone());
    }
    if let Some(count) = args.count {
        verify.samples = None;
        verify.count = count;
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
    let reporter = crate::reporter::StderrReporter::new(quiet || out == OutputFormat::Json);
    let report = runtime.block_on(modelport_verify::run::compare_reporting(
        a.as_ref(),
        b.as_ref(),
        &inputs,
        &verify,
        args.worst,
        &reporter,
    ));
    drop(reporter);
    // A side that stopped part-way still leaves the comparison of what both
    // answered: it is shown (never as a pass), then the error.
    let (mut report, incomplete) = match report {
        Ok(r) => (r, None),
        Err(mut e) => match e.report.take() {
            Some(r) => (*r, Some(e)),
            None => return Err(e.into()),
        },
    };
    if let Some(note) = typed_by {
        report.comparison.notes.push(note.to_string());
    }
    match out {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => print!("{}", render_text(&report)),
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, render_junit(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, render_html(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(e) = incomplete {
        return Err(e.into());
    }
    Ok(if report.passed() {
        Code::Success
    } else {
        Code::Mismatch
    })
}
