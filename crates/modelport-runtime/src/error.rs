//! Errors of the local runtime, named for what the caller can do about them.

use std::path::PathBuf;

use crate::EngineKind;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The file is not an ONNX model modelport can read.
    #[error("{}: not a valid ONNX model: {reason}", path.display())]
    InvalidModel { path: PathBuf, reason: String },

    /// A tensor's external data is outside the model's directory, missing or short.
    #[error("{}: tensor `{tensor}`: {reason}", model.display())]
    ExternalData {
        model: PathBuf,
        tensor: String,
        reason: String,
    },

    /// The chosen engine lacks operators the model uses (or runs them wrongly).
    #[error("the {engine} engine cannot run this model: unsupported operator{} {}", if operators.len() == 1 { "" } else { "s" }, operators.join(", "))]
    UnsupportedOperators {
        engine: EngineKind,
        operators: Vec<String>,
        /// Whether the other engine supports every operator of the model.
        other_engine_can: bool,
    },

    /// The engine itself cannot be used on this machine (e.g. no onnxruntime library).
    #[error("the {engine} engine is unavailable: {reason}")]
    EngineUnavailable {
        engine: EngineKind,
        reason: String,
        hint: String,
    },

    /// The inputs do not match the model's signature, or could not be decoded.
    #[error(transparent)]
    Input(#[from] modelport_core::Error),

    /// The engine failed while running the model.
    #[error("{engine} failed to run the model: {message}")]
    Inference { engine: EngineKind, message: String },
}

/// How external data files must be laid out.
pub const EXTERNAL_DATA_HINT: &str = "external data files must be regular files inside the model's \
     directory, named by a relative `location` without `..` and reached through no symbolic \
     link (onnx.save_model(..., save_as_external_data=True) writes them so); copy the whole \
     file again if it is truncated";

impl RuntimeError {
    /// A likely fix, printed by the CLI as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            RuntimeError::InvalidModel { .. } => Some(
                "the file may be truncated or not ONNX at all; re-export the model \
                 (skl2onnx, torch.onnx.export, tf2onnx) and check the copy finished"
                    .into(),
            ),
            RuntimeError::ExternalData { .. } => Some(EXTERNAL_DATA_HINT.into()),
            RuntimeError::UnsupportedOperators {
                engine,
                other_engine_can,
                ..
            } => Some(match (engine, other_engine_can) {
                (EngineKind::Tract, true) => "onnxruntime runs this model: use `--engine onnxruntime` \
                     (it needs the onnxruntime library: `pip install onnxruntime` or set ORT_DYLIB_PATH)"
                    .into(),
                (EngineKind::Onnxruntime, true) => "the tract engine runs this model: use `--engine tract`".into(),
                (_, false) => "neither engine runs this model; check the exporter's target opset".into(),
            }),
            RuntimeError::EngineUnavailable { hint, .. } => Some(hint.clone()),
            RuntimeError::Input(e) => e.hint(),
            RuntimeError::Inference { .. } => None,
        }
    }
}
