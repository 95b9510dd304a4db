//! The error kinds of modelport-core, named for what the caller can do about them.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller passed data that cannot be used as given (bad shape, wrong dtype, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A wire body (JSON, .npy, CSV) could not be decoded.
    #[error("cannot decode {what}: {message}")]
    Decode { what: &'static str, message: String },

    /// `modelport.yaml` is wrong; the error says where and how to fix it.
    #[error(transparent)]
    Spec(#[from] Box<crate::spec::SpecError>),

    /// A model file modelport will not load, with the reason and the way out.
    #[error("{}: {reason}", path.display())]
    UnsupportedModel {
        path: PathBuf,
        reason: String,
        hint: String,
    },

    /// Another modelport command holds the deployment's lock.
    #[error("{message}")]
    Locked { message: String, hint: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidInput(message.into())
    }

    pub fn decode(what: &'static str, message: impl Into<String>) -> Error {
        Error::Decode {
            what,
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A likely fix, printed by the CLI as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Spec(e) => e.hint.clone(),
            Error::UnsupportedModel { hint, .. } => Some(hint.clone()),
            Error::Locked { hint, .. } => Some(hint.clone()),
            Error::Io { path, source } => match source.kind() {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                    Some(format!(
                        "free some disk space on the file system of {}; files modelport writes are \
                     replaced whole, so the previous version is still there, and the same \
                     command finishes once there is room",
                        path.display()
                    ))
                }
                std::io::ErrorKind::PermissionDenied => {
                    Some(format!("check the permissions of {}", path.display()))
                }
                std::io::ErrorKind::ReadOnlyFilesystem => Some(format!(
                    "{} is on a read-only file system: point MODELPORT_HOME (or --home) elsewhere",
                    path.display()
                )),
                _ => None,
            },
            _ => None,
        }
    }
}
