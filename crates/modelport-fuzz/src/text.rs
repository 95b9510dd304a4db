//! Files a user or another program writes: CSV and `.npy` inputs, `modelport.yaml`
//! and the deployment state files.

use std::path::Path;

use modelport_core::spec::DeploymentSpec;
use modelport_core::state::{self, STATE_FORMAT};

use crate::signatures::all;

/// `--input x.csv` and a spec's `verify.samples` CSV, read against each signature.
///
/// The file is read as UTF-8 text first (`read_inputs` refuses other bytes before
/// the CSV reader sees them). Invariants: an accepted file gives exactly the model's
/// inputs, each of its dtype, all with the same number of rows, and that batch
/// passes the signature check (a CSV that decodes is one the model can run).
pub fn inputs_csv(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `read_csv` is these two steps; the table is read once for every signature,
    // since building a CSV reader dominates the cost of a small input.
    let Ok(table) = modelport_verify::inputs::parse_csv(text) else {
        return;
    };
    for signature in all() {
        let Ok(batch) = modelport_verify::inputs::csv_batch(&table, signature) else {
            continue;
        };
        assert!(
            batch
                .iter()
                .map(|t| (t.name.as_str(), t.tensor.dtype()))
                .eq(signature.inputs.iter().map(|s| (s.name.as_str(), s.dtype))),
            "a CSV decode did not give the declared inputs and dtypes"
        );
        batch
            .batch_size()
            .expect("every input of a CSV has one row per record");
        if let Err(e) = signature.check_inputs(&batch) {
            panic!("read_csv accepted a file the model cannot run: {e}");
        }
    }
}

/// `.npy` bytes, as `--input x.npy` reads them.
///
/// Invariant: an accepted array writes back as `.npy` bytes that read as the same
/// array (compared as bytes, so that NaN payloads count too).
pub fn npy(data: &[u8]) {
    let Ok(tensor) = modelport_core::npy::read(data) else {
        return;
    };
    let mut written = Vec::new();
    modelport_core::npy::write(&tensor, &mut written).expect("a tensor read from .npy writes");
    let again = modelport_core::npy::read(&written[..]).expect(".npy written here reads back");
    let mut rewritten = Vec::new();
    modelport_core::npy::write(&again, &mut rewritten).expect("writes");
    assert_eq!(written, rewritten, ".npy round trip changed the array");
    assert_eq!(
        tensor.shape(),
        again.shape(),
        ".npy round trip changed the shape"
    );
}

/// `modelport.yaml` text, as every command that takes `--spec` reads it.
///
/// Invariants: an accepted spec passes `validate`, has a canonical JSON (the
/// deployment's hash), and that JSON, read back as a spec (YAML is a superset of
/// JSON), is the same spec.
pub fn spec_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("modelport.yaml");
    let Ok(spec) = DeploymentSpec::from_str(text, file) else {
        return;
    };
    if let Err(e) = spec.validate() {
        panic!("a spec that parsed does not validate: {e}");
    }
    let canonical = spec.canonical_json();
    let back = DeploymentSpec::from_str(&canonical, file)
        .unwrap_or_else(|e| panic!("the canonical JSON does not read back: {e}\n{canonical}"));
    assert_eq!(
        canonical,
        back.canonical_json(),
        "the canonical JSON changed on a round trip"
    );
}

/// A state file under `.modelport/state/`, as `status`, `deploy` and `destroy` read it.
///
/// Invariants: an accepted state has this version's format, and writes back as JSON
/// that reads as the same state.
pub fn state_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("state/x.json");
    let Ok(parsed) = state::parse_state(text, path) else {
        return;
    };
    assert_eq!(
        parsed.format, STATE_FORMAT,
        "a state of another format was read"
    );
    let written = serde_json::to_string_pretty(&parsed).expect("a state always serializes");
    let back = state::parse_state(&written, path)
        .unwrap_or_else(|e| panic!("a written state does not read back: {e}\n{written}"));
    assert_eq!(parsed, back, "state round trip");
}
