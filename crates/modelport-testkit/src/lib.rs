//! Dev-only helpers for modelport's tests: launchers for third-party emulators
//! (`moto`, fake-gcs-server) and strict fakes of the clouds' control planes that no
//! emulator covers well enough (SageMaker endpoints and Vertex AI models and
//! endpoints, with real state transitions and a data plane that runs the real
//! `modelport serve`), and the provider conformance suite.
//!
//! Everything listens on 127.0.0.1 on a free port and stops on `Drop`; every
//! process started here is stopped by its pid.
//!
//! ```no_run
//! use modelport_testkit::{Moto, sagemaker::{FakeConfig, FakeSageMaker}};
//! let moto = Moto::start().unwrap();
//! let fake = FakeSageMaker::start(FakeConfig::new(moto.url(), modelport_testkit::modelport_exe().unwrap())).unwrap();
//! // Point the AWS SDK's endpoint_url at fake.url(): SageMaker, SageMaker Runtime
//! // and S3 (passed through to moto) all answer there.
//! ```

mod background;
pub mod conformance;
pub mod cutoff;
pub mod disk;
mod faults;
pub mod gcs;
pub mod moto;
pub mod registry;
pub mod sagemaker;
mod servers;
pub mod tripwire;
pub mod vertex;

mod http1;
mod listening;

use std::path::PathBuf;

pub use gcs::FakeGcs;
pub use moto::{Moto, venv};
pub use registry::Registry;
pub use tripwire::{Trip, Tripwire, running};

/// One server that takes production traffic in a fake: requests that name no
/// variant or deployed model reach it in proportion to `weight`.
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    /// The endpoint's name.
    pub endpoint: String,
    /// The variant (SageMaker) or deployed model id (Vertex AI).
    pub target: String,
    /// The variant's weight, or the deployed model's traffic percentage.
    pub weight: f64,
    /// The port its `modelport serve` listens on (127.0.0.1).
    pub port: u16,
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = dir.join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// The variable that names the `modelport` binary the fakes run as their data
/// plane; when unset it is looked for next to the running executable.
pub const SERVER_EXE_ENV: &str = "MODELPORT_SERVER_EXE";

/// The `modelport` binary: `$MODELPORT_SERVER_EXE`, else `modelport` in the
/// running executable's directory or the one above it (`target/debug/` for both a
/// binary and a test in `target/debug/deps/`).
pub fn modelport_exe() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(SERVER_EXE_ENV) {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "{SERVER_EXE_ENV}={} is not a file",
            path.display()
        );
        return Ok(path);
    }
    let exe = std::env::current_exe()?;
    let mut candidates = Vec::new();
    for dir in exe.ancestors().skip(1).take(2) {
        candidates.push(dir.join(format!("modelport{}", std::env::consts::EXE_SUFFIX)));
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    anyhow::bail!(
        "the modelport binary was not found (looked at {}); build it with \
         `cargo build -p modelport-cli` or set {SERVER_EXE_ENV}",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
