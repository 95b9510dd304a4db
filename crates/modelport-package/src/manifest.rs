//! `modelport.json`: what an artifact contains, with the size and sha256 of every file.

use modelport_core::Signature;
use serde::{Deserialize, Serialize};

use crate::error::PackageError;
use crate::hash::is_sha256_hex;
use crate::paths::normalize_entry_path;

/// The value of the manifest's `format` field written and read by this version.
pub const FORMAT: &str = "modelport/v1";

/// The manifest's file name, at the root of the archive and of an unpacked directory.
pub const MANIFEST_NAME: &str = "modelport.json";

/// The largest manifest accepted when reading; real ones are a few kilobytes.
pub(crate) const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// The content of `modelport.json`. See the crate documentation for the format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    pub model: ModelFile,
    /// Every file of the package except the manifest itself, sorted by path.
    pub files: Vec<FileEntry>,
    /// The model's inputs and outputs, when the caller knew them.
    pub signature: Option<Signature>,
    /// The engine the model was checked with (for example `onnxruntime` or `tract`);
    /// omitted when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_hint: Option<String>,
    /// The tool that wrote the package, for example `modelport 0.1.0`.
    pub created_by: String,
}

/// Which file of the package is the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    /// The model's path relative to the package root; one of [`Manifest::files`].
    pub file: String,
    /// Always `onnx` in this version.
    pub format: String,
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative, `/`-separated, without `.` or `..` components.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content, 64 lowercase hex digits.
    pub sha256: String,
}

impl Manifest {
    /// The entry for the file at `path`, if the manifest lists it.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }

    /// sha256 of the manifest as written into an archive (and unpacked beside the
    /// model): it pins every file's content, so it identifies the model. Servers
    /// report it, since they see the unpacked files and not the archive.
    pub fn digest(&self) -> String {
        crate::sha256_bytes(&self.to_json())
    }

    /// The manifest as written into an archive: pretty JSON with a final newline.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec_pretty(self).expect("a manifest always serializes to JSON");
        bytes.push(b'\n');
        bytes
    }

    /// Parses and checks a manifest; `location` names it in errors.
    pub(crate) fn from_json(bytes: &[u8], location: &str) -> Result<Manifest, PackageError> {
        // Look at the format first, so that a manifest from a newer modelport is
        // reported as such rather than as a missing or unknown field.
        #[derive(Deserialize)]
        struct Probe {
            format: Option<String>,
        }
        let probe: Probe = serde_json::from_slice(bytes)
            .map_err(|e| PackageError::invalid_manifest(location, format!("not JSON: {e}")))?;
        match probe.format.as_deref() {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(PackageError::invalid_manifest(
                    location,
                    format!("format `{other}` is not supported (this modelport reads {FORMAT})"),
                ));
            }
            None => {
                return Err(PackageError::invalid_manifest(
                    location,
                    "the `format` field is missing",
                ));
            }
        }
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| PackageError::invalid_manifest(location, e.to_string()))?;
        manifest
            .check()
            .map_err(|reason| PackageError::invalid_manifest(location, reason))?;
        Ok(manifest)
    }

    /// Checks what the types cannot say: safe, sorted, unique paths, well-formed
    /// digests, and a model file that is one of the files.
    fn check(&self) -> Result<(), String> {
        for (i, f) in self.files.iter().enumerate() {
            match normalize_entry_path(f.path.as_bytes()) {
                Ok(p) if p == f.path => {}
                Ok(_) => return Err(format!("file path `{}` is not in normal form", f.path)),
                Err(reason) => return Err(format!("file path `{}`: {reason}", f.path)),
            }
            if f.path == MANIFEST_NAME {
                return Err(format!("the manifest lists itself (`{MANIFEST_NAME}`)"));
            }
            if !is_sha256_hex(&f.sha256) {
                return Err(format!(
                    "the sha256 of `{}` is not 64 lowercase hex digits",
                    f.path
                ));
            }
            if i > 0 && self.files[i - 1].path >= f.path {
                return Err(format!(
                    "files are not sorted by path or repeat a path (at `{}`)",
                    f.path
                ));
            }
        }
        if self.file(&self.model.file).is_none() {
            return Err(format!(
                "the model file `{}` is not among the files",
                self.model.file
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT.to_string(),
            model: ModelFile {
                file: "model.onnx".to_string(),
                format: "onnx".to_string(),
            },
            files: vec![
                FileEntry {
                    path: "model.onnx".to_string(),
                    size: 3,
                    sha256: "a".repeat(64),
                },
                FileEntry {
                    path: "weights/w.bin".to_string(),
                    size: 5,
                    sha256: "b".repeat(64),
                },
            ],
            signature: None,
            engine_hint: None,
            created_by: "modelport 0.1.0".to_string(),
        }
    }

    #[test]
    fn json_shape() {
        let json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            ["format", "model", "files", "signature", "created_by"]
        );
        assert_eq!(json["model"]["file"], "model.onnx");
        assert_eq!(json["files"][1]["path"], "weights/w.bin");
        assert!(json["signature"].is_null());
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Manifest::from_json(&m.to_json(), "test").unwrap(), m);
        let mut with_hint = m.clone();
        with_hint.engine_hint = Some("tract".to_string());
        assert_eq!(
            Manifest::from_json(&with_hint.to_json(), "test").unwrap(),
            with_hint
        );
    }

    /// Breaks a valid manifest with `edit` and expects an error containing `needle`.
    fn check(edit: impl FnOnce(&mut Manifest), needle: &str) {
        let mut m = sample();
        edit(&mut m);
        let err = Manifest::from_json(&m.to_json(), "x/modelport.json").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PackageError::InvalidManifest { .. }), "{msg}");
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
        assert!(msg.contains("x/modelport.json"), "{msg}");
    }

    #[test]
    fn invalid_manifests() {
        check(|m| m.format = "modelport/v9".into(), "modelport/v9");
        check(|m| m.files[1].path = "../w.bin".into(), "`../w.bin`");
        check(|m| m.files[1].path = "/w.bin".into(), "`/w.bin`");
        check(|m| m.files[1].path = "./w.bin".into(), "normal form");
        check(
            |m| m.files[1].path = "modelport.json".into(),
            "lists itself",
        );
        check(|m| m.files.swap(0, 1), "not sorted");
        check(|m| m.files[1].path = "model.onnx".into(), "repeat");
        check(|m| m.files[0].sha256 = "A".repeat(64), "lowercase hex");
        check(|m| m.model.file = "other.onnx".into(), "`other.onnx`");
    }

    #[test]
    fn not_json_or_no_format() {
        let err = Manifest::from_json(b"{", "m").unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
        let err = Manifest::from_json(b"{}", "m").unwrap_err();
        assert!(err.to_string().contains("`format`"), "{err}");
    }
}
