//! Helpers shared by the integration tests: the example model, and archives built
//! entry by entry, including entries that `modelport package` would never write.

#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// The committed example model.
pub fn iris() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/iris/model.onnx")
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// What an archive entry is.
pub enum Kind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
    HardLink(&'a str),
    CharDevice,
    Fifo,
}

/// One archive entry; the name goes into the header as raw bytes, so `../evil` and
/// `/etc/passwd` are written as they are.
pub struct Raw<'a> {
    pub name: &'a str,
    pub kind: Kind<'a>,
}

pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name,
        kind: Kind::File(data),
    }
}

/// Writes a `.tar.gz` with exactly these entries, in this order.
pub fn write_archive(path: &Path, entries: &[Raw<'_>]) {
    let gz = GzEncoder::new(File::create(path).unwrap(), Compression::new(6));
    let mut builder = tar::Builder::new(gz);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let name = entry.name.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_mtime(0);
        let (kind, data, link): (tar::EntryType, &[u8], Option<&str>) = match entry.kind {
            Kind::File(data) => (tar::EntryType::Regular, data, None),
            Kind::Dir => (tar::EntryType::Directory, &[], None),
            Kind::Symlink(target) => (tar::EntryType::Symlink, &[], Some(target)),
            Kind::HardLink(target) => (tar::EntryType::Link, &[], Some(target)),
            Kind::CharDevice => (tar::EntryType::Char, &[], None),
            Kind::Fifo => (tar::EntryType::Fifo, &[], None),
        };
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        if let Some(target) = link {
            header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        }
        if matches!(entry.kind, Kind::CharDevice) {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        }
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
}

/// A valid `modelport.json` listing `files` (which must be sorted), the first being
/// the model.
pub fn manifest_json(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = files
        .iter()
        .map(|(path, data)| {
            serde_json::json!({ "path": path, "size": data.len(), "sha256": sha256(data) })
        })
        .collect();
    serde_json::to_vec_pretty(&serde_json::json!({
        "format": "modelport/v1",
        "model": { "file": files[0].0, "format": "onnx" },
        "files": entries,
        "signature": null,
        "created_by": "test",
    }))
    .unwrap()
}

/// The names in a directory, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
