//! `modelport predict MODEL --input FILE|-`: run a model locally and print its outputs.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use modelport_core::{Batch, Signature, codec, npy};
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
        (Some(path), _) => read_inputs(path, &info.signature)?,
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

/// Reads inputs from JSON (either wire form), `.npy`, or `-` (JSON on stdin).
fn read_inputs(path: &Path, signature: &Signature) -> anyhow::Result<Batch> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        let [only] = signature.inputs.as_slice() else {
            bail!(
                "{}: a .npy file holds one tensor, but the model has {} inputs; use JSON with named inputs",
                path.display(),
                signature.inputs.len()
            );
        };
        let tensor = npy::read_file(path)?;
        return Ok(Batch::new().with(only.name.clone(), tensor)?);
    }
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read stdin")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let body: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let (batch, _) = codec::decode_request(&body, &signature.inputs)
        .with_context(|| format!("{}: inputs do not fit the model", path.display()))?;
    Ok(batch)
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
