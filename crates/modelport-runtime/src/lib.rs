//! The local reference runtime: runs an ONNX model on this machine.
//!
//! Two engines sit behind one [`Engine`] trait:
//!
//! - **onnxruntime** (through `ort`, loading the shared library at run time) is the
//!   reference implementation of ONNX, including the `ai.onnx.ml` operators that
//!   scikit-learn exports use.
//! - **tract** (pure Rust, always compiled in) needs nothing installed. modelport adds
//!   the simple `ai.onnx.ml` operators tract lacks and refuses, with a clear error,
//!   the models tract would answer wrongly.
//!
//! Every result names the engine and version that produced it. Inference is
//! blocking: callers on an async runtime use `spawn_blocking` or a pool.

mod error;
pub mod external;
mod ml;
pub mod model;
mod ort_engine;
pub mod samples;
mod tract_engine;
mod tract_ops;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use modelport_core::{Batch, Signature};
use serde::{Deserialize, Serialize};

pub use error::{EXTERNAL_DATA_HINT, RuntimeError};
pub use model::{ModelInfo, OperatorCount};
pub use modelport_core::spec::EngineChoice;
pub use ort_engine::{
    LibrarySource, OrtEngine, find_onnxruntime_library, locate_onnxruntime_library,
};
pub use tract_engine::TractEngine;

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Which engine runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Onnxruntime,
    Tract,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Onnxruntime => "onnxruntime",
            EngineKind::Tract => "tract",
        }
    }

    pub fn other(self) -> EngineKind {
        match self {
            EngineKind::Onnxruntime => EngineKind::Tract,
            EngineKind::Tract => EngineKind::Onnxruntime,
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An engine and its version, as reported with every result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EngineInfo {
    pub engine: EngineKind,
    pub version: String,
}

impl fmt::Display for EngineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.engine, self.version)
    }
}

/// Settings shared by both engines.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Threads one inference may use; `None` lets the engine decide (all cores).
    pub intra_threads: Option<usize>,
}

/// Something that can load ONNX models.
pub trait Engine: Send + Sync {
    fn info(&self) -> EngineInfo;

    /// Loads a model once; the result is reused for every inference.
    fn load(&self, model: &ModelInfo) -> Result<Arc<dyn LoadedModel>>;

    /// The operators of `model` this engine cannot run correctly (empty when it can).
    fn unsupported_operators(&self, model: &ModelInfo) -> Vec<String>;
}

/// A model loaded into an engine, ready to run.
pub trait LoadedModel: Send + Sync {
    /// The signature the engine runs with (ZipMap outputs read as probability tensors).
    fn signature(&self) -> &Signature;

    fn engine(&self) -> &EngineInfo;

    /// Runs inference. Inputs are checked against the signature first; a wrong
    /// dtype, rank or size, or a missing or extra input, is an error naming the input.
    fn run(&self, inputs: &Batch) -> Result<Batch>;
}

/// Opens the engine `choice` names; `auto` falls back to tract when onnxruntime's
/// library cannot be loaded.
pub fn open_engine(choice: EngineChoice, opts: &RuntimeOptions) -> Result<Arc<dyn Engine>> {
    match choice {
        EngineChoice::Tract => Ok(Arc::new(TractEngine::new(opts))),
        EngineChoice::Onnxruntime => Ok(Arc::new(OrtEngine::open(opts)?)),
        EngineChoice::Auto => match OrtEngine::open(opts) {
            Ok(e) => Ok(Arc::new(e)),
            Err(e) => {
                tracing::debug!("onnxruntime unavailable, using tract: {e}");
                Ok(Arc::new(TractEngine::new(opts)))
            }
        },
    }
}

/// Loads the model at `path` with the chosen engine.
///
/// With `auto`, a model that tract cannot run while onnxruntime is missing gives the
/// operator error, which says how to get onnxruntime.
pub fn load(
    path: &Path,
    choice: EngineChoice,
    opts: &RuntimeOptions,
) -> Result<Arc<dyn LoadedModel>> {
    let info = ModelInfo::from_path(path)?;
    let engine = open_engine(choice, opts)?;
    engine.load(&info)
}
