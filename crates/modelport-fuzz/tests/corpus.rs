//! Replays every committed fuzz input through its target: `fuzz/corpus/<target>/`
//! (what coverage-guided fuzzing kept, minimized) and `fuzz/regressions/<target>/`
//! (every input that once crashed, hung or broke an invariant).
//!
//! This is how CI runs the fuzz targets: no fuzzing time, only the inputs found so
//! far, under the test build's overflow checks. A target whose corpus folder is
//! missing or empty fails, so that a new target cannot land without seeds.

use std::fs;
use std::path::{Path, PathBuf};

use modelport_fuzz::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; `None` when the folder does not exist.
fn inputs(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Some(files)
}

/// Runs every corpus and regression input of `name`; a panic names the file.
fn check(name: &str) {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target named {name}"));
    let corpus = fuzz_dir().join("corpus").join(name);
    let seeds = inputs(&corpus).unwrap_or_else(|| panic!("{} is missing", corpus.display()));
    assert!(!seeds.is_empty(), "{} is empty", corpus.display());
    let regressions = inputs(&fuzz_dir().join("regressions").join(name)).unwrap_or_default();
    for file in seeds.iter().chain(&regressions) {
        let data = fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| (target.run)(&data));
        if let Err(panic) = outcome {
            std::panic::resume_unwind(Box::new(format!(
                "{} fails target {name}: {}",
                file.display(),
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-text panic)")
            )));
        }
    }
}

/// Every target in `TARGETS` has a test below, and every test names a target.
#[test]
fn every_target_is_replayed() {
    let this = include_str!("corpus.rs");
    for t in TARGETS {
        assert!(
            this.contains(&format!("check(\"{}\")", t.name)),
            "no replay test for target {}",
            t.name
        );
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{}.rs", t.name))
                .is_file(),
            "no fuzz/fuzz_targets/{}.rs",
            t.name
        );
    }
}

#[test]
fn request_instances() {
    check("request_instances");
}

#[test]
fn request_oip() {
    check("request_oip");
}

#[test]
fn response_predictions() {
    check("response_predictions");
}

#[test]
fn inputs_csv() {
    check("inputs_csv");
}

#[test]
fn npy() {
    check("npy");
}

#[test]
fn spec_yaml() {
    check("spec_yaml");
}

#[test]
fn state_json() {
    check("state_json");
}

#[test]
fn package_unpack() {
    check("package_unpack");
}

#[test]
fn onnx_model() {
    check("onnx_model");
}
