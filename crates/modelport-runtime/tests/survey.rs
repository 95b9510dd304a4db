//! The classic-ML survey (tests/fixtures/survey, written by its make_survey.py): every
//! model scikit-learn, XGBoost and LightGBM exports for common estimators and pipelines,
//! and hand-made models for the attributes exporters rarely emit. Both engines must
//! reproduce onnxruntime's stored outputs on every one: labels and integers exactly,
//! floats within 1e-5 (plus 1e-5 of the value, a few float32 steps on large regression
//! targets), NaN where onnxruntime answers NaN. The few models on which onnxruntime's
//! own float32 error is larger (index.json's `atol`, with the reason) get that tolerance.
//!
//! The few elements onnxruntime leaves unwritten (index.json's `unwritten`: the
//! second column of a one-score binary classifier under PROBIT) are not compared.
//!
//! Every model is run before the test fails, so one failure lists all of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use modelport_core::{Batch, TensorData, codec};
use modelport_runtime::{Engine, EngineChoice, ModelInfo, RuntimeOptions};

fn survey() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/survey")
}

fn read_json(p: &Path) -> serde_json::Value {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One survey model: its folder's name and the output column onnxruntime leaves
/// unwritten, if any.
struct Entry {
    name: String,
    unwritten: Option<(String, usize)>,
    atol: f64,
}

/// The models index.json lists, checked against the folders on disk (a model
/// without an entry, or an entry without its files, is a broken survey).
fn models() -> Vec<Entry> {
    let index = read_json(&survey().join("index.json"));
    let entries: Vec<Entry> = index
        .as_array()
        .expect("index.json is a list")
        .iter()
        .map(|e| Entry {
            name: e["name"].as_str().expect("a name").to_owned(),
            unwritten: e.get("unwritten").map(|u| {
                (
                    u["output"].as_str().expect("unwritten.output").to_owned(),
                    u["column"].as_u64().expect("unwritten.column") as usize,
                )
            }),
            atol: e["atol"]["value"].as_f64().unwrap_or(1e-5),
        })
        .collect();
    let listed: Vec<&String> = entries.iter().map(|e| &e.name).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(survey())
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_type()
                .unwrap()
                .is_dir()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    assert_eq!(
        listed.iter().map(|n| (*n).clone()).collect::<BTreeSet<_>>(),
        on_disk,
        "index.json and the survey's folders disagree"
    );
    for name in listed {
        for file in ["model.onnx", "samples.json", "expected.json"] {
            assert!(survey().join(name).join(file).is_file(), "{name}/{file}");
        }
    }
    assert!(
        entries.len() >= 30,
        "the survey has {} models",
        entries.len()
    );
    entries
}

fn close(a: f64, b: f64, atol: f64) -> bool {
    (a - b).abs() <= atol + 1e-5 * b.abs() || (a.is_nan() && b.is_nan()) || a == b
}

/// Runs one survey model on `engine`; the first disagreement with onnxruntime's
/// stored outputs, if any.
fn check(engine: &dyn Engine, entry: &Entry) -> Result<(), String> {
    let dir = survey().join(&entry.name);
    let info =
        ModelInfo::from_path(&dir.join("model.onnx")).map_err(|e| format!("inspect: {e}"))?;
    let model = engine.load(&info).map_err(|e| format!("load: {e}"))?;
    let (inputs, _): (Batch, _) = codec::decode_request(
        &read_json(&dir.join("samples.json")),
        &info.signature.inputs,
    )
    .map_err(|e| format!("samples.json: {e}"))?;
    let got = model.run(&inputs).map_err(|e| format!("run: {e}"))?;
    let expected = codec::decode_oip_response(&read_json(&dir.join("expected.json")))
        .map_err(|e| format!("expected.json: {e}"))?;
    let names = |b: &Batch| b.names().map(str::to_owned).collect::<Vec<_>>();
    if got.len() != expected.len() {
        return Err(format!(
            "outputs {:?}, onnxruntime's {:?}",
            names(&got),
            names(&expected)
        ));
    }
    for want in expected.iter() {
        let have = got
            .get(&want.name)
            .ok_or_else(|| format!("no output `{}` (has {:?})", want.name, names(&got)))?;
        let (h, w) = (have.data(), want.tensor.data());
        if have.shape() != want.tensor.shape() || h.dtype() != w.dtype() {
            return Err(format!(
                "output `{}` is {} {:?}, onnxruntime's {} {:?}",
                want.name,
                h.dtype().name(),
                have.shape(),
                w.dtype().name(),
                want.tensor.shape()
            ));
        }
        let skipped = match &entry.unwritten {
            Some((output, column)) if *output == want.name => Some(*column),
            _ => None,
        };
        let cols = have.shape().get(1).copied().unwrap_or(1).max(1);
        let mut compared = (0..h.len()).filter(|i| Some(i % cols) != skipped);
        let first_bad = match (h, w) {
            (TensorData::String(a), TensorData::String(b)) => compared.find(|&i| a[i] != b[i]),
            _ if h.dtype().is_float() => {
                compared.find(|&i| !close(h.get_f64(i).unwrap(), w.get_f64(i).unwrap(), entry.atol))
            }
            _ => compared.find(|&i| h.get_f64(i) != w.get_f64(i)),
        };
        if let Some(i) = first_bad {
            return Err(format!(
                "output `{}`[{i}] is {}, onnxruntime stored {}",
                want.name,
                h.display_at(i),
                w.display_at(i)
            ));
        }
    }
    Ok(())
}

fn every_model_on(choice: EngineChoice) {
    let engine = modelport_runtime::open_engine(choice, &RuntimeOptions::default()).unwrap();
    let models = models();
    let failures: Vec<String> = models
        .iter()
        .filter_map(|m| {
            check(engine.as_ref(), m)
                .err()
                .map(|e| format!("  {}: {e}", m.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} survey models disagree with onnxruntime's outputs on {choice}:\n{}",
        failures.len(),
        models.len(),
        failures.join("\n")
    );
}

#[test]
fn tract_reproduces_every_survey_model() {
    every_model_on(EngineChoice::Tract);
}

#[test]
fn onnxruntime_reproduces_every_survey_model() {
    every_model_on(EngineChoice::Onnxruntime);
}
