//! `modelport predict MODEL --input FILE|-`: run a model locally and print its outputs.

use anyhow::{Context, bail};
use modelport_core::{Batch, codec};
use modelport_runtime::{ModelInfo, open_engine, samples};
use serde_json::json;

use super::{print_json, runtime_options};
use crate::cli::{OutputFormat, PredictArgs};
use crate::exit::Code;

/// Rows printed per output in text mode; `--output json` prints everything.
const TEXT_ROWS: usize = 10;

pub fn run(args: PredictArgs, out: OutputFormat) -> anyhow::Result<Code> {
    let info = ModelInfo::from_path(&args.model)
        .with_context(|| format!("cannot load {}", args.model.display()))?;
    let inputs = match (&args.input, args.generate) {
        (Some(path), _) => modelport_verify::inputs::read_inputs(path, &info.signature)?,
        (None, Some(count)) => samples::generate(&info.signature, count, args.seed)?,
        (None, None) => bail!("give --input FILE or --generate N"),
    };
    let engine = open_engine(args.engine.engine, &runtime_options(&args.engine))?;
    let model = engine.load(&info)?;
    let outputs = model.run(&inputs)?;
    match out {
        OutputFormat::Json => {
            let mut body = codec::encode_oip_response(&info.path.display().to_string(), &outputs)?;
            body["engine"] = json!(model.engine());
            print_json(&body)?;
        }
        OutputFormat::Text => print!("{}", text(&outputs, &model.engine().to_string())?),
    }
    Ok(Code::Success)
}

fn text(outputs: &Batch, engine: &str) -> anyhow::Result<String> {
    let mut s = format!("engine {engine}\n");
    for t in outputs.iter() {
        let shape: Vec<String> = t.tensor.shape().iter().map(|d| d.to_string()).collect();
        s.push_str(&format!(
            "{}: {} [{}]\n",
            t.name,
            t.tensor.dtype(),
            shape.join(", ")
        ));
        let single = Batch::new().with(t.name.clone(), t.tensor.clone())?;
        let rows = codec::encode_predictions(&single)?;
        let rows = rows["predictions"].as_array().cloned().unwrap_or_default();
        for row in rows.iter().take(TEXT_ROWS) {
            s.push_str(&format!("  {row}\n"));
        }
        if rows.len() > TEXT_ROWS {
            s.push_str(&format!(
                "  ... {} more (all with --output json)\n",
                rows.len() - TEXT_ROWS
            ));
        }
    }
    Ok(s)
}
