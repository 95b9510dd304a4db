//! The classic-ML survey (tests/fixtures/survey) through the command line, as a user
//! meets it: `inspect` says both engines run every model, and `compare MODEL MODEL
//! --engine-a tract --engine-b onnxruntime` on the model's samples passes.
//!
//! Every model is tried before the test fails, so one failure lists all of them.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The survey's models and the absolute tolerance each is compared with (1e-5 unless
/// index.json says why onnxruntime's own error is larger); with `comparable`, only those whose every output element
/// onnxruntime writes (index.json's `unwritten` lists the others: their values change
/// from run to run, so no comparison with them can pass reliably).
fn survey_models(comparable: bool) -> Vec<(String, f64)> {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/survey/index.json")).unwrap(),
    )
    .unwrap();
    let names: Vec<(String, f64)> = index
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !comparable || e.get("unwritten").is_none())
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["atol"]["value"].as_f64().unwrap_or(1e-5),
            )
        })
        .collect();
    assert!(names.len() >= 30, "{} survey models", names.len());
    names
}

/// Runs modelport from the repository root; (exit code, stdout, stderr).
fn modelport(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::cargo_bin("modelport")
        .unwrap()
        .current_dir(root())
        .args(args)
        .env_remove("MODELPORT_ENGINE")
        .env_remove("MODELPORT_LOG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_says_both_engines_run_every_survey_model() {
    let mut failures = Vec::new();
    for (name, _) in survey_models(false) {
        let model = format!("tests/fixtures/survey/{name}/model.onnx");
        let (code, stdout, stderr) = modelport(&["inspect", &model, "--output", "json"]);
        if code != Some(0) {
            failures.push(format!("  {name}: exit {code:?}: {stderr}"));
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        for e in v["engines"].as_array().unwrap() {
            if e["runs"] != true {
                failures.push(format!(
                    "  {name}: {} cannot run it: {}",
                    e["engine"], e["reason"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "inspect:\n{}", failures.join("\n"));
}

#[test]
fn compare_tract_with_onnxruntime_on_every_survey_model() {
    let mut failures = Vec::new();
    let models = survey_models(true);
    for (name, atol) in &models {
        let atol = atol.to_string();
        let dir = format!("tests/fixtures/survey/{name}");
        let model = format!("{dir}/model.onnx");
        let samples = format!("{dir}/samples.json");
        let (code, stdout, stderr) = modelport(&[
            "compare",
            &model,
            &model,
            "--engine-a",
            "tract",
            "--engine-b",
            "onnxruntime",
            "--samples",
            &samples,
            "--atol",
            &atol,
            "--output",
            "json",
        ]);
        if code != Some(0) {
            failures.push(format!("  {name}: exit {code:?}\n{stdout}{stderr}"));
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        if v["passed"] != true || v["samples"].as_u64().unwrap_or(0) == 0 {
            failures.push(format!("  {name}: {v}"));
        }
    }
    assert!(
        failures.is_empty(),
        "compare --engine-a tract --engine-b onnxruntime failed on {} of {} survey models:\n{}",
        failures.len(),
        models.len(),
        failures.join("\n")
    );
}
