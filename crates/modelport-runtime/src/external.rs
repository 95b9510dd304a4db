//! ONNX external data: initializers whose bytes live in files beside the model
//! (`data_location: EXTERNAL`, with `location`, `offset` and `length` entries).
//!
//! A model is outside input: its `location` strings are checked before any file is
//! opened, so that a model cannot make modelport read (and package, upload, serve)
//! a file outside its own directory. A location must be relative, free of `..`, and
//! name a regular file inside the model's directory, reached through no symbolic
//! link; the bytes it names must be in the file, as many as the tensor needs.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use tract_onnx::pb;

/// `TensorProto.DataLocation.EXTERNAL`.
pub const EXTERNAL: i32 = 1;

/// Where one tensor's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRef {
    /// The `location` as the model spells it (relative to the model's directory).
    pub location: String,
    /// The model's directory joined with `location`.
    pub path: PathBuf,
    pub offset: u64,
    pub length: u64,
}

/// One external data file of a model, with the tensors it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalFile {
    /// Relative to the model's directory, with `/` separators.
    pub location: String,
    /// The file's size in bytes.
    pub size: u64,
    /// How many tensors read from it.
    pub tensors: usize,
}

/// Why a tensor's external data cannot be read; the message names the location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDataError {
    pub tensor: String,
    pub reason: String,
}

/// Checks `t`'s external data against `dir` (the model file's directory) and says
/// where its bytes are. Opens no file: reads metadata only.
pub fn resolve(dir: &Path, t: &pb::TensorProto) -> Result<ExternalRef, ExternalDataError> {
    let bad = |reason: String| ExternalDataError {
        tensor: t.name.clone(),
        reason,
    };
    let get = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    };
    let location = get("location").ok_or_else(|| bad("names no `location`".into()))?;
    let rel = Path::new(location);
    if location.is_empty()
        || rel.is_absolute()
        || location.contains('\\')
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad(format!(
            "`location` {location:?} leaves the model's directory (an absolute path, `..` \
             or a backslash)"
        )));
    }
    // No symbolic link anywhere on the way: a link may point anywhere.
    let path = dir.join(rel);
    let mut walked = dir.to_path_buf();
    for part in rel.components() {
        let Component::Normal(part) = part else {
            continue;
        };
        walked.push(part);
        let meta = std::fs::symlink_metadata(&walked).map_err(|e| {
            bad(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "`location` {location:?} does not exist in {}",
                    dir.display()
                )
            } else {
                format!("`location` {location:?} cannot be read: {e}")
            })
        })?;
        if meta.file_type().is_symlink() {
            return Err(bad(format!(
                "`location` {location:?} goes through a symbolic link ({}); symbolic links \
                 are refused",
                walked.display()
            )));
        }
    }
    let meta = std::fs::metadata(&path).map_err(|e| bad(format!("{location:?}: {e}")))?;
    if !meta.is_file() {
        return Err(bad(format!(
            "`location` {location:?} is not a regular file"
        )));
    }
    let number = |key: &str| -> Result<Option<u64>, ExternalDataError> {
        get(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("`{key}` {v:?} is not a number")))
            })
            .transpose()
    };
    let size = meta.len();
    let offset = number("offset")?.unwrap_or(0);
    // The dims are the file's word: a size past u64 can be in no file.
    let needed = data_bytes(t).map_err(|()| {
        bad(format!(
            "dims {:?} of type {} take more bytes than can be counted",
            t.dims, t.data_type
        ))
    })?;
    let length = match (number("length")?, needed) {
        (Some(length), Some(needed)) if length != needed => {
            return Err(bad(format!(
                "`length` is {length} bytes but the tensor ({} elements of type {}) needs \
                 {needed}",
                elements(t).unwrap_or(u64::MAX),
                t.data_type
            )));
        }
        (Some(length), _) => length,
        (None, Some(needed)) => needed,
        (None, None) => size.saturating_sub(offset),
    };
    match offset.checked_add(length) {
        Some(end) if end <= size => {}
        _ => {
            return Err(bad(format!(
                "{location:?} is truncated: the tensor's bytes {offset}..{} are past the \
                 file's end ({size} bytes)",
                offset.saturating_add(length),
            )));
        }
    }
    Ok(ExternalRef {
        location: location.to_string(),
        path,
        offset,
        length,
    })
}

/// Every tensor of `graph` that keeps its data outside the model file: the
/// initializers, sparse initializers and tensor attributes, in subgraphs too.
pub fn external_tensors(graph: &pb::GraphProto) -> Vec<&pb::TensorProto> {
    let mut found = Vec::new();
    collect(graph, &mut found);
    found
}

fn collect<'a>(graph: &'a pb::GraphProto, found: &mut Vec<&'a pb::TensorProto>) {
    let sparse = graph
        .sparse_initializer
        .iter()
        .flat_map(|s| s.values.iter().chain(s.indices.iter()));
    for t in graph.initializer.iter().chain(sparse) {
        if t.data_location == Some(EXTERNAL) {
            found.push(t);
        }
    }
    for a in graph.node.iter().flat_map(|n| &n.attribute) {
        for t in a.t.iter().chain(a.tensors.iter()) {
            if t.data_location == Some(EXTERNAL) {
                found.push(t);
            }
        }
        for g in a.g.iter().chain(a.graphs.iter()) {
            collect(g, found);
        }
    }
}

/// Checks every external tensor of `graph` against `dir`; the files they read, by
/// location.
pub fn check_all(
    dir: &Path,
    graph: &pb::GraphProto,
) -> Result<Vec<ExternalFile>, ExternalDataError> {
    let mut files: BTreeMap<String, ExternalFile> = BTreeMap::new();
    for t in external_tensors(graph) {
        let r = resolve(dir, t)?;
        let size = std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0);
        let location = normalized(&r.location);
        files
            .entry(location.clone())
            .or_insert(ExternalFile {
                location,
                size,
                tensors: 0,
            })
            .tensors += 1;
    }
    Ok(files.into_values().collect())
}

/// `./weights//a.bin` → `weights/a.bin`.
fn normalized(location: &str) -> String {
    Path::new(location)
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => p.to_str(),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// How many elements the dims hold; `None` past u64.
fn elements(t: &pb::TensorProto) -> Option<u64> {
    t.dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d.max(0) as u64))
}

/// The bytes a tensor's data takes, for the element types of a fixed size
/// (`Ok(None)` for the others); `Err` when that is past u64.
fn data_bytes(t: &pb::TensorProto) -> Result<Option<u64>, ()> {
    let n = elements(t).ok_or(())?;
    let per = match t.data_type {
        2 | 3 | 9 | 17..=20 => 1,                  // uint8, int8, bool, the float8s
        4 | 5 | 10 | 16 => 2,                      // uint16, int16, float16, bfloat16
        1 | 6 | 12 => 4,                           // float, int32, uint32
        7 | 11 | 13 | 14 => 8,                     // int64, double, uint64, complex64
        15 => 16,                                  // complex128
        21..=23 => return Ok(Some(n.div_ceil(2))), // the 4-bit types, two per byte
        _ => return Ok(None),
    };
    n.checked_mul(per).map(Some).ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(location: &str, offset: Option<u64>, length: Option<u64>) -> pb::TensorProto {
        let mut entries = vec![pb::StringStringEntryProto {
            key: "location".into(),
            value: location.into(),
        }];
        for (k, v) in [("offset", offset), ("length", length)] {
            if let Some(v) = v {
                entries.push(pb::StringStringEntryProto {
                    key: k.into(),
                    value: v.to_string(),
                });
            }
        }
        pb::TensorProto {
            name: "w".into(),
            dims: vec![4, 4],
            data_type: 1,
            data_location: Some(EXTERNAL),
            external_data: entries,
            ..Default::default()
        }
    }

    fn reason(dir: &Path, t: &pb::TensorProto) -> String {
        let err = resolve(dir, t).unwrap_err();
        assert_eq!(err.tensor, "w");
        err.reason
    }

    #[test]
    fn locations_stay_inside_the_model_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model");
        std::fs::create_dir_all(dir.join("weights")).unwrap();
        std::fs::write(dir.join("weights/w.bin"), [0u8; 128]).unwrap();
        std::fs::write(tmp.path().join("secret"), [0u8; 128]).unwrap();

        let ok = resolve(&dir, &tensor("./weights/w.bin", Some(64), None)).unwrap();
        assert_eq!((ok.offset, ok.length), (64, 64));
        assert_eq!(ok.path, dir.join("./weights/w.bin"));

        for escape in [
            "../secret",
            "weights/../../secret",
            "/etc/passwd",
            "",
            "weights\\w.bin",
        ] {
            let why = reason(&dir, &tensor(escape, None, None));
            assert!(
                why.contains("leaves the model's directory"),
                "{escape}: {why}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(tmp.path().join("secret"), dir.join("link")).unwrap();
            std::os::unix::fs::symlink(tmp.path(), dir.join("up")).unwrap();
            for link in ["link", "up/secret"] {
                let why = reason(&dir, &tensor(link, None, None));
                assert!(why.contains("symbolic link"), "{link}: {why}");
            }
        }
        let why = reason(&dir, &tensor("weights/none.bin", None, None));
        assert!(why.contains("does not exist in"), "{why}");
        let why = reason(&dir, &tensor("weights", None, None));
        assert!(why.contains("not a regular file"), "{why}");
    }

    #[test]
    fn the_bytes_must_be_in_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("w.bin"), [0u8; 100]).unwrap();
        // 16 floats are 64 bytes: from offset 64 only 36 are left.
        let why = reason(tmp.path(), &tensor("w.bin", Some(64), None));
        assert!(why.contains("\"w.bin\" is truncated"), "{why}");
        assert!(
            why.contains("64..128") && why.contains("(100 bytes)"),
            "{why}"
        );
        let why = reason(tmp.path(), &tensor("w.bin", None, Some(32)));
        assert!(why.contains("`length` is 32 bytes but the tensor"), "{why}");
        let why = reason(tmp.path(), &tensor("w.bin", Some(u64::MAX), Some(64)));
        assert!(why.contains("truncated"), "{why}");
        let mut t = tensor("w.bin", None, None);
        t.external_data[0].key = "place".into();
        assert!(reason(tmp.path(), &t).contains("no `location`"));
        assert_eq!(
            resolve(tmp.path(), &tensor("w.bin", Some(36), Some(64)))
                .unwrap()
                .length,
            64
        );
    }

    /// Dims whose byte count passes u64 (any tensor of a model can carry external
    /// data, and `ModelInfo` counts only initializers) are refused, not multiplied
    /// into an overflow.
    #[test]
    fn sizes_past_u64_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("w.bin"), [0u8; 100]).unwrap();
        for dims in [vec![1 << 32, 1 << 32], vec![1 << 62]] {
            let mut t = tensor("w.bin", None, None);
            t.dims = dims.clone();
            let why = reason(tmp.path(), &t);
            assert_eq!(
                why,
                format!("dims {dims:?} of type 1 take more bytes than can be counted")
            );
        }
    }
}
