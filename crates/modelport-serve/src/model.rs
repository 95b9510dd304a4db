//! Finding, checking and loading the model a server answers with.
//!
//! A server reads one of three things: a directory unpacked from a modelport
//! artifact (what SageMaker puts in `/opt/ml/model`), a `model.tar.gz`, or a bare
//! `.onnx` file. A directory with a `modelport.json` is checked against it: its file
//! list before anything is loaded, every file's sha256 while the engine loads (see
//! [`ModelSource::check_contents`]), and the server answers only when both passed, so
//! a tampered or half-copied model never serves.

use std::path::{Path, PathBuf};

use modelport_package::{ListedDir, MANIFEST_NAME, list_dir, sha256_file, unpack};

use crate::error::ServeError;

/// The model file to load and the identity the server reports for it.
#[derive(Debug)]
pub struct ModelSource {
    pub model_file: PathBuf,
    /// `sha256:<hex>` of `modelport.json` when there is one (it pins every file), else
    /// of the model file itself.
    pub digest: String,
    /// False for a bare model without a manifest.
    pub verified: bool,
    /// A directory whose file list matched its manifest and whose contents are still
    /// to be hashed.
    listed: Option<ListedDir>,
    /// Keeps an archive's unpacked copy alive as long as the server runs.
    _unpacked: Option<tempfile::TempDir>,
}

impl ModelSource {
    /// Hashes the files of a directory listed by its manifest and checks each one;
    /// nothing to do for an archive (checked while unpacking) or a bare model. The
    /// error names the first file that differs. Runs beside the engine's load.
    pub fn check_contents(&self) -> Result<(), ServeError> {
        match &self.listed {
            Some(listed) => Ok(listed.hash()?),
            None => Ok(()),
        }
    }
}

/// Resolves and checks `path`; the errors name the file that is missing or differs.
pub fn resolve(path: &Path) -> Result<ModelSource, ServeError> {
    let meta = std::fs::metadata(path).map_err(|source| ServeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return from_dir(path, None);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let tmp = tempfile::Builder::new()
            .prefix("modelport-serve-")
            .tempdir()
            .map_err(|source| ServeError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let dest = tmp.path().join("model");
        unpack(path, &dest)?;
        return from_dir(&dest, Some(tmp));
    }
    Ok(ModelSource {
        model_file: path.to_path_buf(),
        digest: format!("sha256:{}", sha256_file(path)?),
        verified: false,
        listed: None,
        _unpacked: None,
    })
}

fn from_dir(dir: &Path, unpacked: Option<tempfile::TempDir>) -> Result<ModelSource, ServeError> {
    let manifest_path = dir.join(MANIFEST_NAME);
    if manifest_path.exists() {
        // An unpacked archive was checked file by file while it was extracted.
        let listed = list_dir(dir)?;
        return Ok(ModelSource {
            model_file: dir.join(&listed.manifest.model.file),
            digest: format!("sha256:{}", sha256_file(&manifest_path)?),
            verified: true,
            listed: unpacked.is_none().then_some(listed),
            _unpacked: unpacked,
        });
    }
    // A directory someone else packed: serve its single ONNX file, unverified.
    let mut onnx = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|source| ServeError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "onnx") {
            onnx.push(p);
        }
    }
    match onnx.as_slice() {
        [one] => Ok(ModelSource {
            digest: format!("sha256:{}", sha256_file(one)?),
            model_file: one.clone(),
            verified: false,
            listed: None,
            _unpacked: unpacked,
        }),
        [] => Err(ServeError::Config {
            message: format!(
                "{}: no {MANIFEST_NAME} and no .onnx file in the directory",
                dir.display()
            ),
            hint: "pass a directory unpacked from `modelport package`, a model.tar.gz or an .onnx file".into(),
        }),
        _ => Err(ServeError::Config {
            message: format!(
                "{}: no {MANIFEST_NAME} and {} .onnx files; cannot tell which to serve",
                dir.display(),
                onnx.len()
            ),
            hint: "package the model with `modelport package`, or pass the .onnx file itself".into(),
        }),
    }
}
