//! Serving images without Docker.
//!
//! [`build`] writes an OCI image layout holding the `modelport` binary, onnxruntime
//! (or nothing more, for the tract engine), the exact shared libraries both need
//! and CA certificates, reproducibly: the same files give the same manifest digest.
//! [`push`] sends a layout to any OCI registry, skipping the blobs it already has.

pub mod auth;
pub mod build;
pub mod elf;
pub mod push;

pub use build::{BuildOptions, Built, Engine, build, source_date_epoch};
pub use elf::Platform;
pub use push::{Pushed, RegistryAuth, manifest_digest, push};

use std::path::Path;

/// Something an image could not be built or pushed for, and the way out.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ImageError {
    message: String,
    hint: Option<String>,
    /// The registry said the repository does not exist.
    missing_repository: bool,
}

impl ImageError {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> ImageError {
        ImageError {
            message: message.into(),
            hint: Some(hint.into()),
            missing_repository: false,
        }
    }

    pub fn io(path: &Path, e: std::io::Error) -> ImageError {
        ImageError {
            message: format!("{}: {e}", path.display()),
            hint: None,
            missing_repository: false,
        }
    }

    /// The same error with another hint (a caller that knows the registry better).
    pub fn with_hint(mut self, hint: impl Into<String>) -> ImageError {
        self.hint = Some(hint.into());
        self
    }

    /// Whether the registry refused because the repository does not exist.
    pub fn is_missing_repository(&self) -> bool {
        self.missing_repository
    }

    /// A likely fix, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}
