//! Fuzz targets for every parser that takes bytes from outside modelport.
//!
//! Each target is one `pub fn(&[u8])` that feeds the bytes through a parser the way
//! the product does and then checks invariants that must hold for any input: no
//! panic, no unbounded allocation or time (libFuzzer's `-rss_limit_mb` and
//! `-timeout` catch those), and, for whatever the parser accepts, the properties
//! the rest of modelport relies on (a decoded request re-encodes to the same tensors,
//! an unpacked directory passes `verify_dir`, ...). A broken invariant panics with
//! a message saying which one.
//!
//! The same functions are called by the libFuzzer binaries in `fuzz/fuzz_targets/`
//! (built by `cargo fuzz`, outside this workspace) and by `tests/corpus.rs`, which
//! replays the committed corpora and regression inputs under a plain `cargo test`,
//! so CI checks every input ever found without spending any time fuzzing.
//!
//! The workspace forbids `unsafe` code, so the bugs these targets can find are
//! panics (indexing, slicing inside a UTF-8 character, `expect`), arithmetic
//! overflow (the fuzz build and the test build both check it), hangs and memory
//! blow-ups from sizes an input declares.

mod mutate;
mod onnx;
mod package;
mod request;
mod signatures;
mod text;

pub use mutate::{mutate_onnx, mutate_tar};
pub use onnx::onnx_model;
pub use package::package_unpack;
pub use request::{request_instances, request_oip, response_predictions};
pub use text::{inputs_csv, npy, spec_yaml, state_json};

/// The most heap a fuzz binary may hold at once (1 GiB). No input of at most
/// 64 KiB needs this much; one that gets there trusted a size it declared.
pub const HEAP_LIMIT_BYTES: usize = 1 << 30;

/// One fuzz target: its name (the folder under `fuzz/corpus/` and
/// `fuzz/regressions/`, and the binary under `fuzz/fuzz_targets/`) and its function.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `fuzz/run` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "request_instances",
        run: request_instances,
    },
    Target {
        name: "request_oip",
        run: request_oip,
    },
    Target {
        name: "response_predictions",
        run: response_predictions,
    },
    Target {
        name: "inputs_csv",
        run: inputs_csv,
    },
    Target {
        name: "npy",
        run: npy,
    },
    Target {
        name: "spec_yaml",
        run: spec_yaml,
    },
    Target {
        name: "state_json",
        run: state_json,
    },
    Target {
        name: "package_unpack",
        run: package_unpack,
    },
    Target {
        name: "onnx_model",
        run: onnx_model,
    },
];
