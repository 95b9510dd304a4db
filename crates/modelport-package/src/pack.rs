//! Writing `model.tar.gz`: the model's files plus `modelport.json`, byte for byte
//! the same for the same input.

use std::fs::{self, File};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use modelport_core::Signature;
pub use modelport_core::spec::ArtifactLayout;
use serde::Serialize;

use crate::error::PackageError;
use crate::gzip::ParallelGz;
use crate::hash::{CHUNK, HashingReader, HashingWriter, hash_file_counted};
use crate::manifest::{FORMAT, FileEntry, MANIFEST_NAME, Manifest, ModelFile};
use crate::paths::{SourceFile, Temp, normalize_entry_path, walk};

/// The archive's file name in the output directory.
pub const ARCHIVE_NAME: &str = "model.tar.gz";

/// The directory a `dir` layout writes in the output directory.
pub const DIR_NAME: &str = "model";

/// The gzip compression level (the same as `gzip -6`).
pub const COMPRESSION_LEVEL: u32 = 6;

/// What goes into the manifest besides the files.
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// The tool that writes the package, for example `modelport 0.1.0`.
    pub created_by: String,
    /// The model's signature, when the caller has inspected the model.
    pub signature: Option<Signature>,
    /// The engine the model is known to run on, for example `onnxruntime`.
    pub engine_hint: Option<String>,
    /// The files the model reads besides itself (its external data), relative to
    /// the model file's directory: packed beside a model file, and required to be
    /// among a model directory's files.
    pub data_files: Vec<String>,
    /// `model.tar.gz`, or the files and their manifest in a directory.
    pub layout: ArtifactLayout,
}

impl Default for PackageOptions {
    fn default() -> Self {
        PackageOptions {
            created_by: concat!("modelport ", env!("CARGO_PKG_VERSION")).to_string(),
            signature: None,
            engine_hint: None,
            data_files: Vec::new(),
            layout: ArtifactLayout::Archive,
        }
    }
}

/// A written package: `model.tar.gz`, or a directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Artifact {
    /// `out_dir/model.tar.gz`, or `out_dir/model/` for a directory.
    pub path: PathBuf,
    /// sha256 of the archive's bytes, or of the directory's `modelport.json` (which
    /// holds every file's sha256), 64 lowercase hex digits.
    pub digest: String,
    /// Size of the archive in bytes, or of all the directory's files.
    pub size: u64,
    /// The manifest stored in the package.
    pub manifest: Manifest,
    pub layout: ArtifactLayout,
}

/// Packages the model at `model` into `out_dir/model.tar.gz`, or into the directory
/// `out_dir/model/` when `opts.layout` is [`ArtifactLayout::Dir`].
///
/// `model` is either a single ONNX file, packed under its own name, or a directory
/// holding exactly one `.onnx` file plus any other files (external weights,
/// tokenizers...), all packed with their paths relative to the directory. A model
/// with external data must be passed as its directory: its data files cannot be
/// found from the `.onnx` file alone.
///
/// Each file is read twice, in chunks: once to hash it for the manifest, which
/// comes first in the archive, and once to stream it into the archive, where it is
/// hashed again to catch a file that changed in between. The archive's own digest
/// is computed as it is written. The output appears under its final name only when
/// complete; a failure leaves `out_dir` as it was (apart from creating it).
///
/// A directory is written in one pass: each file is copied and hashed as it is
/// copied, and `modelport.json` comes last, so the manifest describes the very
/// bytes in the directory. Its digest is the manifest's sha256.
pub fn package(
    model: &Path,
    out_dir: &Path,
    opts: &PackageOptions,
) -> Result<Artifact, PackageError> {
    package_with_progress(model, out_dir, opts, &mut |_, _, _| {})
}

/// The two passes of [`package`] over the model's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackStep {
    /// Hashing the files for the manifest.
    Hashing,
    /// Streaming them through gzip into the archive.
    Compressing,
    /// Copying them, hashed as they go, into a directory.
    Copying,
}

impl PackStep {
    /// `hashing the model's files`, `writing model.tar.gz`, `copying the model's files`.
    pub fn describe(self) -> &'static str {
        match self {
            PackStep::Hashing => "hashing the model's files",
            PackStep::Compressing => "writing model.tar.gz",
            PackStep::Copying => "copying the model's files",
        }
    }
}

/// [`package`], calling `progress(step, done, total)` with the bytes of the model's
/// files each pass has read: `(step, 0, total)` when a pass begins, then at most
/// once per MiB, the last call with `done == total`.
pub fn package_with_progress(
    model: &Path,
    out_dir: &Path,
    opts: &PackageOptions,
    progress: &mut dyn FnMut(PackStep, u64, u64),
) -> Result<Artifact, PackageError> {
    let mut said: Option<(PackStep, u64)> = None;
    let progress = &mut |step, done, total| {
        let due = match said {
            Some((s, d)) if s == step => done != d && (done == total || done >= d + (1 << 20)),
            _ => true,
        };
        if due {
            said = Some((step, done));
            progress(step, done, total);
        }
    };
    let (sources, model_file) = collect(model, out_dir, &opts.data_files)?;
    let mut total = 0u64;
    for src in &sources {
        total += fs::metadata(&src.abs)
            .map_err(|e| PackageError::io(&src.abs, e))?
            .len();
    }

    if opts.layout == ArtifactLayout::Dir {
        return write_dir(&sources, model_file, opts, out_dir, total, progress);
    }

    let mut files = Vec::with_capacity(sources.len());
    let mut done = 0u64;
    progress(PackStep::Hashing, 0, total);
    for src in &sources {
        let (size, sha256) = hash_file_counted(&src.abs, &mut |n| {
            done += n;
            progress(PackStep::Hashing, done.min(total), total);
        })?;
        files.push(FileEntry {
            path: src.rel.clone(),
            size,
            sha256,
        });
    }
    let manifest = manifest_of(files, model_file, opts);

    // Ended even when a file changed size since it was measured (the archive pass
    // refuses it); a repeat of the last report is not passed on.
    progress(PackStep::Hashing, total, total);
    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    let path = out_dir.join(ARCHIVE_NAME);
    progress(PackStep::Compressing, 0, total);
    let (size, digest) = write_archive(&sources, &manifest, out_dir, &path, &mut |done| {
        progress(PackStep::Compressing, done.min(total), total)
    })?;
    Ok(Artifact {
        path,
        digest,
        size,
        manifest,
        layout: ArtifactLayout::Archive,
    })
}

/// The manifest of `files`, as `opts` describe the model.
fn manifest_of(files: Vec<FileEntry>, model_file: String, opts: &PackageOptions) -> Manifest {
    Manifest {
        format: FORMAT.to_string(),
        model: ModelFile {
            file: model_file,
            format: "onnx".to_string(),
        },
        files,
        signature: opts.signature.clone(),
        engine_hint: opts.engine_hint.clone(),
        created_by: opts.created_by.clone(),
    }
}

/// Writes `out_dir/model/`: the files copied (and hashed as they are copied), then
/// `modelport.json`, in a temporary directory renamed into place when complete. An
/// earlier package there is replaced; anything else there is refused.
fn write_dir(
    sources: &[SourceFile],
    model_file: String,
    opts: &PackageOptions,
    out_dir: &Path,
    total: u64,
    progress: &mut dyn FnMut(PackStep, u64, u64),
) -> Result<Artifact, PackageError> {
    let path = out_dir.join(DIR_NAME);
    if fs::symlink_metadata(&path).is_ok() && crate::read_dir_manifest(&path).is_err() {
        return Err(PackageError::invalid_input(
            &path,
            format!(
                "exists and is not a directory modelport packaged (it has no valid {MANIFEST_NAME}); \
                 move it away or choose another output directory"
            ),
        ));
    }
    let temp = Temp::dir(out_dir, DIR_NAME)?;
    let mut files = Vec::with_capacity(sources.len());
    let mut done = 0u64;
    progress(PackStep::Copying, 0, total);
    for src in sources {
        let dest = temp.path().join(&src.rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| PackageError::io(parent, e))?;
        }
        let (size, sha256) = copy_hashed(&src.abs, &dest, &mut |n| {
            done += n;
            progress(PackStep::Copying, done.min(total), total);
        })?;
        files.push(FileEntry {
            path: src.rel.clone(),
            size,
            sha256,
        });
    }
    let manifest = manifest_of(files, model_file, opts);
    let json = manifest.to_json();
    let manifest_path = temp.path().join(MANIFEST_NAME);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&manifest_path)?;
        std::io::Write::write_all(&mut f, &json)?;
        f.sync_all()
    };
    write().map_err(|e| PackageError::io(&manifest_path, e))?;
    if path.exists() {
        fs::remove_dir_all(&path).map_err(|e| PackageError::io(&path, e))?;
    }
    temp.persist(&path)?;
    progress(PackStep::Copying, total, total);
    let size = manifest.files.iter().map(|f| f.size).sum::<u64>() + json.len() as u64;
    Ok(Artifact {
        path,
        digest: crate::sha256_bytes(&json),
        size,
        manifest,
        layout: ArtifactLayout::Dir,
    })
}

/// Copies `from` to the new file `to` in chunks, hashing what it writes; returns
/// the size and sha256 of the copy. Refuses a source that changed size meanwhile.
pub(crate) fn copy_hashed(
    from: &Path,
    to: &Path,
    copied: &mut dyn FnMut(u64),
) -> Result<(u64, String), PackageError> {
    let mut src = File::open(from).map_err(|e| PackageError::io(from, e))?;
    let expected = src.metadata().map_err(|e| PackageError::io(from, e))?.len();
    let out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| PackageError::io(to, e))?;
    let mut out = HashingWriter::new(BufWriter::with_capacity(CHUNK, out));
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PackageError::io(from, e)),
        };
        std::io::Write::write_all(&mut out, &buf[..n]).map_err(|e| PackageError::io(to, e))?;
        copied(n as u64);
    }
    let (buffered, size, sha256) = out.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| PackageError::io(to, e.into_error()))?;
    file.sync_all().map_err(|e| PackageError::io(to, e))?;
    if size != expected {
        return Err(PackageError::invalid_input(
            from,
            "the file changed while it was being packaged; try again when nothing writes to it",
        ));
    }
    Ok((size, sha256))
}

/// The files to pack, sorted by path, and the model's path among them. Creates
/// `out_dir`.
fn collect(
    model: &Path,
    out_dir: &Path,
    data_files: &[String],
) -> Result<(Vec<SourceFile>, String), PackageError> {
    let meta = fs::metadata(model).map_err(|e| PackageError::io(model, e))?;
    if meta.is_file() {
        let Some(name) = model.file_name().and_then(|n| n.to_str()) else {
            return Err(PackageError::invalid_input(
                model,
                "the file name is not valid UTF-8",
            ));
        };
        if name.contains('\\') {
            return Err(PackageError::invalid_input(
                model,
                "the file name contains a backslash",
            ));
        }
        if name == MANIFEST_NAME {
            return Err(PackageError::invalid_input(
                model,
                format!("`{MANIFEST_NAME}` is the manifest's name; rename the model"),
            ));
        }
        fs::create_dir_all(out_dir).map_err(|e| PackageError::io(out_dir, e))?;
        let mut sources = vec![SourceFile {
            rel: name.to_string(),
            abs: model.to_path_buf(),
        }];
        let dir = model.parent().unwrap_or(Path::new(""));
        for location in data_files {
            let rel = normalize_entry_path(location.as_bytes()).map_err(|why| {
                PackageError::invalid_input(model, format!("external data {location:?}: {why}"))
            })?;
            if rel == MANIFEST_NAME || rel == name {
                return Err(PackageError::invalid_input(
                    model,
                    format!("external data {location:?} is the model or the manifest"),
                ));
            }
            if sources.iter().any(|s| s.rel == rel) {
                continue;
            }
            let abs = dir.join(&rel);
            let meta = fs::symlink_metadata(&abs).map_err(|e| PackageError::io(&abs, e))?;
            if !meta.is_file() {
                return Err(PackageError::invalid_input(
                    &abs,
                    "the model's external data is not a regular file (symbolic links are refused)",
                ));
            }
            sources.push(SourceFile { rel, abs });
        }
        sources.sort_by(|a, b| a.rel.cmp(&b.rel));
        return Ok((sources, name.to_string()));
    }
    if !meta.is_dir() {
        return Err(PackageError::invalid_input(
            model,
            "is neither a file nor a directory",
        ));
    }

    fs::create_dir_all(out_dir).map_err(|e| PackageError::io(out_dir, e))?;
    let model_abs = model
        .canonicalize()
        .map_err(|e| PackageError::io(model, e))?;
    let out_abs = out_dir
        .canonicalize()
        .map_err(|e| PackageError::io(out_dir, e))?;
    if out_abs.starts_with(&model_abs) {
        return Err(PackageError::invalid_input(
            out_dir,
            format!(
                "the output directory is inside the model directory {}, so the archive would \
                 pack itself; choose an output directory elsewhere",
                model.display()
            ),
        ));
    }

    let sources = walk(model)?;
    if let Some(src) = sources.iter().find(|s| s.rel == MANIFEST_NAME) {
        return Err(PackageError::invalid_input(
            &src.abs,
            format!("`{MANIFEST_NAME}` is reserved for the manifest modelport writes; remove it"),
        ));
    }
    let candidates: Vec<&SourceFile> = sources
        .iter()
        .filter(|s| {
            Path::new(&s.rel)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
        })
        .collect();
    let model_file = match candidates.as_slice() {
        [] => {
            return Err(PackageError::NoModel {
                dir: model.to_path_buf(),
            });
        }
        [one] => one.rel.clone(),
        many => {
            return Err(PackageError::AmbiguousModel {
                dir: model.to_path_buf(),
                candidates: many.iter().map(|s| s.rel.clone()).collect(),
            });
        }
    };
    // The model's external data is among the files (a model in a subfolder reads
    // it relative to that folder).
    let base = model_file.rsplit_once('/').map_or("", |(d, _)| d);
    for location in data_files {
        let rel = normalize_entry_path(location.as_bytes()).map_err(|why| {
            PackageError::invalid_input(model, format!("external data {location:?}: {why}"))
        })?;
        let rel = if base.is_empty() {
            rel
        } else {
            format!("{base}/{rel}")
        };
        if !sources.iter().any(|s| s.rel == rel) {
            return Err(PackageError::invalid_input(
                model,
                format!("the model's external data {rel:?} is not a file of the directory"),
            ));
        }
    }
    Ok((sources, model_file))
}

/// A tar header that depends on nothing but the size: GNU format, regular file,
/// mode 0644, owner 0:0 with empty names, mtime 0.
fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// A reader that adds what it reads to `done` and reports the sum.
struct Counting<'a, R> {
    inner: R,
    done: &'a mut u64,
    report: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            *self.done += n as u64;
            (self.report)(*self.done);
        }
        Ok(n)
    }
}

/// Writes the archive through a temporary file renamed to `path`; returns the
/// archive's size and sha256.
fn write_archive(
    sources: &[SourceFile],
    manifest: &Manifest,
    out_dir: &Path,
    path: &Path,
    packed: &mut dyn FnMut(u64),
) -> Result<(u64, String), PackageError> {
    let (temp, file) = Temp::file(out_dir, ARCHIVE_NAME)?;
    let temp_path = temp.path().to_path_buf();
    let write_err = |e| PackageError::io(&temp_path, e);

    let out = HashingWriter::new(BufWriter::with_capacity(CHUNK, file));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gz = ParallelGz::new(out, COMPRESSION_LEVEL, workers).map_err(write_err)?;
    let mut tar = tar::Builder::new(gz);

    // The manifest comes first so that `read_manifest` stops after one entry.
    let json = manifest.to_json();
    tar.append_data(
        &mut file_header(json.len() as u64),
        MANIFEST_NAME,
        json.as_slice(),
    )
    .map_err(write_err)?;

    let mut done = 0u64;
    for (src, entry) in sources.iter().zip(&manifest.files) {
        let file = File::open(&src.abs).map_err(|e| PackageError::io(&src.abs, e))?;
        let mut reader = HashingReader::new(Counting {
            inner: file.take(entry.size),
            done: &mut done,
            report: &mut *packed,
        });
        if let Err(e) = tar.append_data(&mut file_header(entry.size), &entry.path, &mut reader) {
            return Err(if reader.failed {
                PackageError::io(&src.abs, e)
            } else {
                write_err(e)
            });
        }
        let grew = reader
            .inner_mut()
            .inner
            .get_mut()
            .read(&mut [0u8; 1])
            .map_err(|e| PackageError::io(&src.abs, e))?
            > 0;
        let (len, sha256) = reader.finish();
        if grew || len != entry.size || sha256 != entry.sha256 {
            return Err(PackageError::invalid_input(
                &src.abs,
                "the file changed while it was being packaged; try again when nothing writes to it",
            ));
        }
    }

    // Finishing the tar writes its end-of-archive blocks, finishing the gzip stream
    // its trailer; only then are the size and digest final.
    let gz = tar.into_inner().map_err(write_err)?;
    let out = gz.finish().map_err(write_err)?;
    let (buffered, size, digest) = out.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    temp.persist(path)?;
    Ok((size, digest))
}
