//! Recognises model files, and refuses the formats modelport will not open.
//!
//! Pickle-based formats (pickle, joblib, PyTorch checkpoints) run arbitrary code
//! when loaded, so modelport never loads them; it names the conversion to ONNX
//! instead. Detection looks at file contents as well as names, so a renamed
//! pickle is still refused.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A model modelport can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// One ONNX file.
    OnnxFile(PathBuf),
    /// A directory holding exactly one ONNX file (and, e.g., its external data).
    OnnxDir { dir: PathBuf, model: PathBuf },
}

impl ModelSource {
    /// The ONNX file itself.
    pub fn onnx_path(&self) -> &Path {
        match self {
            ModelSource::OnnxFile(p) => p,
            ModelSource::OnnxDir { model, .. } => model,
        }
    }
}

const PICKLE_HINT: &str = "pickle and joblib files run arbitrary code when loaded, so modelport never opens them; \
export the model to ONNX with skl2onnx: `onnx = skl2onnx.to_onnx(model, X[:1].astype(numpy.float32))`";
const TORCH_HINT: &str = "PyTorch checkpoints are pickles that run code when loaded; export to ONNX with \
`torch.onnx.export(model, example_input, \"model.onnx\", dynamic_axes={\"input\": {0: \"N\"}})`";
const KERAS_HINT: &str = "convert Keras models to ONNX with tf2onnx: `python -m tf2onnx.convert --keras model.h5 --output model.onnx`";
const SAVED_MODEL_HINT: &str = "convert a SavedModel to ONNX with tf2onnx: \
`python -m tf2onnx.convert --saved-model DIR --output model.onnx`";

/// Finds the ONNX model at `path`, or explains why modelport will not load it.
pub fn detect(path: &Path) -> Result<ModelSource> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return detect_dir(path);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    let refuse = |reason: &str, hint: &str| Error::UnsupportedModel {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        hint: hint.to_string(),
    };
    if head.first() == Some(&0x80) && head.get(1).is_some_and(|p| (2..=5).contains(p))
        || matches!(ext.as_str(), "pkl" | "pickle" | "joblib")
    {
        return Err(refuse(
            "this is a Python pickle (or joblib) file, which modelport does not load",
            PICKLE_HINT,
        ));
    }
    if matches!(ext.as_str(), "pt" | "pth" | "ckpt") || head.starts_with(b"PK\x03\x04") {
        return Err(refuse(
            "this is a PyTorch checkpoint (a zip of pickles), which modelport does not load",
            TORCH_HINT,
        ));
    }
    if head.starts_with(b"\x89HDF\r\n\x1a\n") || matches!(ext.as_str(), "h5" | "hdf5" | "keras") {
        return Err(refuse(
            "this is a Keras/HDF5 model, which modelport does not load",
            KERAS_HINT,
        ));
    }
    if ext == "pb" || path.file_name().is_some_and(|n| n == "saved_model.pb") {
        return Err(refuse(
            "this is a TensorFlow graph, which modelport does not load",
            SAVED_MODEL_HINT,
        ));
    }
    if n == 0 {
        return Err(refuse(
            "the file is empty",
            "check that the export finished and wrote the whole file",
        ));
    }
    Ok(ModelSource::OnnxFile(path.to_path_buf()))
}

fn detect_dir(dir: &Path) -> Result<ModelSource> {
    if dir.join("saved_model.pb").exists() {
        return Err(Error::UnsupportedModel {
            path: dir.to_path_buf(),
            reason: "this is a TensorFlow SavedModel directory, which modelport does not load"
                .into(),
            hint: SAVED_MODEL_HINT.into(),
        });
    }
    let mut onnx = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
        {
            onnx.push(p);
        }
    }
    onnx.sort();
    match onnx.len() {
        1 => Ok(ModelSource::OnnxDir {
            dir: dir.to_path_buf(),
            model: onnx.remove(0),
        }),
        0 => Err(Error::UnsupportedModel {
            path: dir.to_path_buf(),
            reason: "the directory holds no .onnx file".into(),
            hint: "point at the .onnx file, or at a directory holding exactly one".into(),
        }),
        n => Err(Error::UnsupportedModel {
            path: dir.to_path_buf(),
            reason: format!(
                "the directory holds {n} .onnx files and modelport cannot tell which to serve"
            ),
            hint: "point at the .onnx file itself".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str, bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        match detect(&p) {
            Err(Error::UnsupportedModel { reason, .. }) => reason,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn refuses_code_carrying_formats() {
        assert!(refused("model.pkl", b"\x80\x04K\x01.").contains("pickle"));
        assert!(
            refused("model.onnx", b"\x80\x04K\x01.").contains("pickle"),
            "renamed pickle"
        );
        assert!(refused("m.joblib", b"xx").contains("pickle"));
        assert!(refused("m.pt", b"PK\x03\x04rest").contains("PyTorch"));
        assert!(refused("m.h5", b"\x89HDF\r\n\x1a\nxx").contains("Keras"));
        assert!(refused("frozen.pb", b"\x0a\x01").contains("TensorFlow"));
        assert!(refused("empty.onnx", b"").contains("empty"));
    }

    #[test]
    fn saved_model_dir_is_refused_and_onnx_dir_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("saved_model.pb"), b"x").unwrap();
        assert!(matches!(
            detect(dir.path()),
            Err(Error::UnsupportedModel { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.onnx"), b"\x08\x08").unwrap();
        std::fs::write(dir.path().join("weights.bin"), b"x").unwrap();
        assert_eq!(
            detect(dir.path()).unwrap().onnx_path(),
            dir.path().join("m.onnx")
        );
    }
}
