//! Errors of compression, each with what the user can do about it.

use std::path::{Path, PathBuf};

pub type Result<T, E = CompressError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error("{}: not a valid ONNX model: {reason}", path.display())]
    InvalidModel { path: PathBuf, reason: String },

    #[error("initializer `{tensor}` is malformed: {reason}")]
    InvalidTensor { tensor: String, reason: String },

    #[error("the external data of initializer `{tensor}` is refused: {reason}")]
    ExternalData { tensor: String, reason: String },

    /// The model or the setting cannot be compressed as asked.
    #[error("{reason}")]
    Unsupported { reason: String, hint: String },

    /// An option is wrong; `option` is how the command line spells it.
    #[error("{option}: {reason}")]
    Option {
        option: String,
        reason: String,
        hint: String,
    },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Runtime(#[from] modelport_runtime::RuntimeError),

    #[error(transparent)]
    Core(#[from] modelport_core::Error),

    #[error(transparent)]
    Package(#[from] modelport_package::PackageError),
}

impl CompressError {
    pub fn io(path: &Path, source: std::io::Error) -> CompressError {
        CompressError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn option(option: &str, reason: impl Into<String>, hint: impl Into<String>) -> Self {
        CompressError::Option {
            option: option.into(),
            reason: reason.into(),
            hint: hint.into(),
        }
    }

    /// A likely fix, printed as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            CompressError::InvalidModel { .. } | CompressError::InvalidTensor { .. } => Some(
                "re-export the model and check that the file is complete (`modelport inspect` \
                 reads it)"
                    .into(),
            ),
            CompressError::ExternalData { .. } => {
                Some(modelport_runtime::EXTERNAL_DATA_HINT.into())
            }
            CompressError::Unsupported { hint, .. } | CompressError::Option { hint, .. } => {
                Some(hint.clone())
            }
            CompressError::Runtime(e) => e.hint(),
            CompressError::Core(e) => e.hint(),
            CompressError::Package(e) => e.hint(),
            CompressError::Io { .. } => None,
        }
    }
}
