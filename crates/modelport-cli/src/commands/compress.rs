//! `modelport compress MODEL --to ... --out FILE`: a smaller model, gated against the original.

use modelport_compress::{EvalSet, Options, Settings};
use modelport_runtime::{ModelInfo, samples};

use super::{print_json, runtime_options};
use crate::cli::{CompressArgs, OutputFormat};
use crate::exit::Code;

pub fn run(args: CompressArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let settings = Settings {
        to: args.to,
        per_channel: args.per_channel,
        prune: args.prune,
        exclude: args.exclude,
    };
    settings.check()?;
    let info = ModelInfo::from_path(&args.model)?;
    let eval = match args.eval.as_ref().or(args.samples.as_ref()) {
        Some(path) => EvalSet::read(path, &info.signature)?,
        None => EvalSet {
            inputs: samples::generate(&info.signature, args.count as usize, args.seed)?,
            labels: None,
            source: format!("{} generated inputs (seed {})", args.count, args.seed),
        },
    };
    let opts = Options {
        settings,
        goals: args.max_degradation,
        auto: args.auto,
        engine: args.engine.engine,
        runtime: runtime_options(&args.engine),
        measure: !args.no_measure,
    };
    let report = modelport_compress::compress(&args.model, &args.out, &eval, &opts)?;
    match out {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => print!("{}", modelport_compress::render_text(&report)),
    }
    Ok(if report.passed() {
        Code::Success
    } else {
        Code::Mismatch
    })
}
