//! The ONNX inspector: the protobuf decode, the signature, and the checks of
//! external-data locations that run before any file a model names is opened.

use std::fs;
use std::path::{Component, Path};

use modelport_runtime::ModelInfo;

use crate::package::scratch_dir;

/// Bytes of `weights.bin`, the data file a fuzzed model may point into.
const WEIGHTS_BYTES: usize = 256;

/// Inspects the bytes as `model.onnx` in a fresh directory that also holds data
/// files for external-data locations to name: `weights.bin`, `sub/w.bin`, a
/// directory `data/` and a symbolic link `link.bin` to `weights.bin` (which must be
/// refused).
///
/// Invariants: an accepted model's external data files are normalized relative
/// paths to regular files inside the directory, reached through no link, with
/// their real sizes; the model's size counts them; the summary serializes (as
/// `inspect --output json` prints it).
pub fn onnx_model(data: &[u8]) {
    let scratch = scratch_dir();
    let root = scratch.path();
    let model = root.join("model.onnx");
    fs::write(&model, data).expect("write the model");
    fs::write(root.join("weights.bin"), [7u8; WEIGHTS_BYTES]).expect("write weights.bin");
    fs::create_dir(root.join("sub")).expect("mkdir sub");
    fs::write(root.join("sub/w.bin"), [1u8; 16]).expect("write sub/w.bin");
    fs::create_dir(root.join("data")).expect("mkdir data");
    std::os::unix::fs::symlink("weights.bin", root.join("link.bin")).expect("symlink");

    let Ok(info) = ModelInfo::from_path(&model) else {
        return;
    };
    let mut external = 0;
    for f in &info.external_data {
        let rel = Path::new(&f.location);
        assert!(
            !f.location.is_empty()
                && !f.location.contains("//")
                && rel.components().all(|c| matches!(c, Component::Normal(_))),
            "external data location {:?} is not a normalized relative path",
            f.location
        );
        let mut walked = root.to_path_buf();
        for part in rel.components() {
            walked.push(part);
            let meta = fs::symlink_metadata(&walked)
                .unwrap_or_else(|e| panic!("{:?} was accepted but: {e}", f.location));
            assert!(
                !meta.file_type().is_symlink(),
                "{:?} goes through a link",
                f.location
            );
        }
        let meta = fs::metadata(&walked).expect("metadata");
        assert!(meta.is_file(), "{:?} is not a regular file", f.location);
        assert_eq!(meta.len(), f.size, "{:?}: wrong size", f.location);
        external += f.size;
    }
    assert_eq!(info.data_files().len(), info.external_data.len());
    assert_eq!(
        info.size_bytes,
        data.len() as u64 + external,
        "size_bytes is the model file plus its data files"
    );
    serde_json::to_string(&info).expect("a model summary serializes");
}
