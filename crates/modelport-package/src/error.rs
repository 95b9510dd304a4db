//! The one error type of this crate.
//!
//! Variants are named for what the caller can do about them: fix a path or a
//! permission (`Io`), choose another input (`InvalidInput`, `NoModel`,
//! `AmbiguousModel`), or distrust and rebuild an artifact (`UnsafeEntry`,
//! `Tampered`, `MissingFile`, `UnexpectedFile`, `InvalidManifest`,
//! `CorruptArchive`). Every message names the file or archive entry at fault.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while packaging, unpacking or verifying a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Reading or writing a file on this machine failed.
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The model path or the destination cannot be used as given.
    #[error("{}: {reason}", path.display())]
    InvalidInput { path: PathBuf, reason: String },

    /// A model directory contains no `.onnx` file.
    #[error("{} contains no .onnx file", dir.display())]
    NoModel { dir: PathBuf },

    /// A model directory contains more than one `.onnx` file, so which one is the
    /// model is unclear.
    #[error("{} contains more than one .onnx file: {}", dir.display(), candidates.join(", "))]
    AmbiguousModel {
        dir: PathBuf,
        candidates: Vec<String>,
    },

    /// The archive is not a readable gzip-compressed tar file.
    #[error("{} is not a readable .tar.gz archive", archive.display())]
    CorruptArchive {
        archive: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An archive entry could escape the destination or is not a regular file.
    #[error("unsafe archive entry `{entry}`: {reason}")]
    UnsafeEntry { entry: String, reason: String },

    /// A file's content differs from what the manifest records.
    #[error(
        "`{file}` does not match the manifest: its sha256 is {actual}, the manifest says {expected}"
    )]
    Tampered {
        file: String,
        expected: String,
        actual: String,
    },

    /// The manifest lists a file that is not there.
    #[error("`{file}` is listed in the manifest but missing")]
    MissingFile { file: String },

    /// A file is there that the manifest does not list.
    #[error("`{file}` is not listed in the manifest")]
    UnexpectedFile { file: String },

    /// `modelport.json` is absent, unreadable or inconsistent.
    #[error("invalid manifest {location}: {reason}")]
    InvalidManifest { location: String, reason: String },
}

impl PackageError {
    pub(crate) fn io(path: &Path, source: io::Error) -> PackageError {
        PackageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn invalid_input(path: &Path, reason: impl Into<String>) -> PackageError {
        PackageError::InvalidInput {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(archive: &Path, source: io::Error) -> PackageError {
        PackageError::CorruptArchive {
            archive: archive.to_path_buf(),
            source,
        }
    }

    pub(crate) fn unsafe_entry(
        entry: impl Into<String>,
        reason: impl Into<String>,
    ) -> PackageError {
        PackageError::UnsafeEntry {
            entry: entry.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_manifest(
        location: impl Into<String>,
        reason: impl Into<String>,
    ) -> PackageError {
        PackageError::InvalidManifest {
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// A likely fix, for the CLI's `hint:` line; `None` when there is no useful advice.
    pub fn hint(&self) -> Option<String> {
        const REPACKAGE: &str =
            "re-create the artifact with `modelport package` from the original model";
        match self {
            PackageError::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => Some("check that the path exists".to_string()),
                io::ErrorKind::PermissionDenied => {
                    Some("check the file and directory permissions".to_string())
                }
                io::ErrorKind::StorageFull => Some("free some disk space".to_string()),
                _ => None,
            },
            PackageError::InvalidInput { .. } => None,
            PackageError::NoModel { .. } => Some(
                "pass the .onnx file itself, or a directory that contains exactly one .onnx file"
                    .to_string(),
            ),
            PackageError::AmbiguousModel { .. } => Some(
                "keep one .onnx file in the directory, or pass the model's .onnx file itself"
                    .to_string(),
            ),
            PackageError::CorruptArchive { .. } => Some(format!(
                "the file is truncated or not a model.tar.gz; download it again or {REPACKAGE}"
            )),
            PackageError::UnsafeEntry { .. } => Some(format!(
                "this archive was not made by `modelport package`; do not use it, {REPACKAGE}"
            )),
            PackageError::Tampered { .. } => Some(format!(
                "the file changed after packaging; restore the original artifact or {REPACKAGE}"
            )),
            PackageError::MissingFile { .. } => Some(format!(
                "the artifact is incomplete; restore the original artifact or {REPACKAGE}"
            )),
            PackageError::UnexpectedFile { file } => Some(format!(
                "remove `{file}`, or {REPACKAGE} so that its manifest lists the file"
            )),
            PackageError::InvalidManifest { .. } => Some(REPACKAGE.to_string()),
        }
    }
}
