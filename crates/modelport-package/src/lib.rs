//! The model artifact: a deterministic `model.tar.gz` with a sha256 manifest, and
//! its safe, verified unpacking.
//!
//! [`package`] turns an ONNX model (a file, or a directory holding one `.onnx`
//! file and its companions) into `model.tar.gz`; [`unpack`] extracts one while
//! refusing anything that could escape the destination; [`verify_dir`] lets a
//! serving process refuse a model directory that was altered after unpacking.
//! This crate does not parse ONNX: the caller passes the signature in.
//!
//! # Archive layout
//!
//! The model's files sit at the archive root, the layout SageMaker unpacks into
//! `/opt/ml/model`. A single-file model keeps its file name; a directory's files
//! keep their paths relative to the directory. The manifest `modelport.json` is the
//! first entry, so [`read_manifest`] reads it without decompressing the model;
//! the model's files follow, sorted by path (byte order). No directory entries are
//! written: directories are implied by the files' paths.
//!
//! # `modelport.json`
//!
//! ```json
//! {
//!   "format": "modelport/v1",
//!   "model": { "file": "model.onnx", "format": "onnx" },
//!   "files": [
//!     { "path": "model.onnx", "size": 765, "sha256": "<64 lowercase hex digits>" }
//!   ],
//!   "signature": { "inputs": [...], "outputs": [...] },
//!   "engine_hint": "onnxruntime",
//!   "created_by": "modelport 0.1.0"
//! }
//! ```
//!
//! - `format` is `modelport/v1`; readers refuse any other value.
//! - `model.file` is the model's path, one of `files`.
//! - `files` lists every file of the package except the manifest, sorted by `path`;
//!   paths are relative, `/`-separated, without `.` or `..` components.
//! - `signature` is a [`modelport_core::Signature`], or `null` when unknown.
//! - `engine_hint` is omitted when unknown.
//!
//! # Determinism
//!
//! The same input gives the same bytes, whatever the files' modification times,
//! owners, permissions or location. Every entry is a GNU-format tar header for a
//! regular file with mode 0644, uid and gid 0, empty user and group names and mtime
//! 0 (paths longer than 100 bytes use GNU long-name entries, equally fixed). The
//! gzip header has no file name, mtime 0 and OS byte 255 ("unknown"). The tar
//! stream is compressed on every core the way pigz does it: 1 MiB blocks at fixed
//! offsets, each deflated by zlib-rs at level [`COMPRESSION_LEVEL`] (6) with the
//! previous block's last 32 KiB as its dictionary and joined into one deflate
//! stream in one gzip member, so the bytes do not depend on the number of cores.
//! The artifact's digest is the sha256 of the `.tar.gz` bytes. A different
//! compression backend or version could compress differently; the manifest's
//! per-file hashes, not the archive digest, are what identifies a model across
//! modelport versions.
//!
//! # Streaming
//!
//! No model is held in memory: files are hashed and copied in 256 KiB chunks, the
//! archive's digest is computed as it is written, and unpacking hashes files as it
//! extracts them. Output goes to a temporary name and is renamed into place only
//! when complete and checked.

mod error;
mod gzip;
mod hash;
mod manifest;
mod pack;
mod paths;
mod unpack;

pub use error::PackageError;
pub use hash::{sha256_bytes, sha256_file, spec_hash};
pub use manifest::{FORMAT, FileEntry, MANIFEST_NAME, Manifest, ModelFile};
pub use pack::{
    ARCHIVE_NAME, Artifact, ArtifactLayout, COMPRESSION_LEVEL, DIR_NAME, PackStep, PackageOptions,
    package, package_with_progress,
};
pub use unpack::{
    DEFAULT_MAX_UNPACKED_BYTES, ListedDir, copy_dir_verified, list_dir, read_dir_manifest,
    read_manifest, unpack, unpack_with_limit, verify_dir,
};
