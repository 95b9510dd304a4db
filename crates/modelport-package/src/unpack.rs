//! Reading archives back: the manifest alone, a safe and verified extraction, and
//! the check of an already extracted directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::error::PackageError;
use crate::hash::{CHUNK, hash_file, to_hex};
use crate::manifest::{MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest};
use crate::paths::{Temp, normalize_entry_path, walk};

type Archive = tar::Archive<GzDecoder<BufReader<File>>>;

fn open(archive: &Path) -> Result<Archive, PackageError> {
    let file = File::open(archive).map_err(|e| PackageError::io(archive, e))?;
    Ok(tar::Archive::new(GzDecoder::new(BufReader::with_capacity(
        CHUNK, file,
    ))))
}

fn archive_location(archive: &Path) -> String {
    format!("in {}", archive.display())
}

/// Reads at most [`MAX_MANIFEST_BYTES`] of a manifest.
fn read_manifest_bytes(
    reader: impl Read,
    location: &str,
    read_err: impl Fn(io::Error) -> PackageError,
) -> Result<Vec<u8>, PackageError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(PackageError::invalid_manifest(
            location,
            format!(
                "it is larger than {} MiB",
                MAX_MANIFEST_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(bytes)
}

/// Reads only the manifest of a `model.tar.gz`. In archives written by
/// [`package`](crate::package) it is the first entry, so the rest is not read.
pub fn read_manifest(archive: &Path) -> Result<Manifest, PackageError> {
    let corrupt = |e| PackageError::corrupt(archive, e);
    let location = archive_location(archive);
    let mut ar = open(archive)?;
    for entry in ar.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes();
        if normalize_entry_path(&raw).is_ok_and(|p| p == MANIFEST_NAME) {
            let shown = String::from_utf8_lossy(&raw).into_owned();
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(PackageError::unsafe_entry(shown, "is not a regular file"));
            }
            let bytes = read_manifest_bytes(entry, &location, corrupt)?;
            return Manifest::from_json(&bytes, &location);
        }
    }
    Err(PackageError::invalid_manifest(
        location,
        format!("the archive has no {MANIFEST_NAME}"),
    ))
}

/// The most a model may hold once unpacked unless the caller says otherwise: its
/// manifest's sizes must add up to no more (64 GiB).
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 64 << 30;

/// Extracts a `model.tar.gz` into `dest` and checks it against its manifest.
///
/// The manifest comes first in the archive and is read before any file is written:
/// an entry it does not list is refused before a byte of it is written, a file is
/// cut off (and refused) as soon as it grows past the size the manifest gives it, and
/// the manifest's sizes must add up to at most [`DEFAULT_MAX_UNPACKED_BYTES`] (see
/// [`unpack_with_limit`]), so a crafted archive cannot fill the disk.
///
/// Refused, naming the entry: absolute paths, `..` components, backslashes,
/// symbolic and hard links, devices, FIFOs, any other non-regular entry (directory
/// entries are checked and otherwise ignored), an entry that appears twice, and
/// paths that would put a file inside another file. After extraction every file the
/// manifest lists must be there with its size and sha256. Hashes are computed while
/// extracting, so nothing is read twice.
///
/// `dest` must not exist or be an empty directory. Extraction goes to a temporary
/// directory next to it, renamed to `dest` only once everything checked out: `dest`
/// never holds a partial or unverified model. The manifest is written as
/// `dest/modelport.json`, so that [`verify_dir`] can check the directory later.
pub fn unpack(archive: &Path, dest: &Path) -> Result<Manifest, PackageError> {
    unpack_with_limit(archive, dest, DEFAULT_MAX_UNPACKED_BYTES)
}

/// [`unpack`] with another cap on the unpacked size, in bytes.
pub fn unpack_with_limit(
    archive: &Path,
    dest: &Path,
    max_bytes: u64,
) -> Result<Manifest, PackageError> {
    // Without `.` components, the parent and the name below agree with `dest`.
    let dest: PathBuf = dest.components().collect();
    let dest_exists = match fs::symlink_metadata(&dest) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(&dest).map_err(|e| PackageError::io(&dest, e))?;
            if entries.next().is_some() {
                return Err(PackageError::invalid_input(
                    &dest,
                    "the destination directory is not empty; choose a new or empty directory",
                ));
            }
            true
        }
        Ok(_) => {
            return Err(PackageError::invalid_input(
                &dest,
                "the destination exists and is not a directory",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(PackageError::io(&dest, e)),
    };
    let Some(name) = dest.file_name().and_then(|n| n.to_str()) else {
        return Err(PackageError::invalid_input(
            &dest,
            "name the directory to extract into, such as `./model`",
        ));
    };
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(|e| PackageError::io(parent, e))?;

    let staging = Temp::dir(parent, name)?;
    let location = archive_location(archive);
    let (manifest_bytes, manifest, extracted) = extract(archive, staging.path(), max_bytes)?;
    check_files(
        &manifest,
        extracted.keys().map(String::as_str),
        |rel| Ok(Some(extracted[rel].clone())),
        &location,
    )?;

    let manifest_path = staging.path().join(MANIFEST_NAME);
    fs::write(&manifest_path, &manifest_bytes).map_err(|e| PackageError::io(&manifest_path, e))?;
    if dest_exists {
        fs::remove_dir(&dest).map_err(|e| PackageError::io(&dest, e))?;
    }
    staging.persist(&dest)?;
    Ok(manifest)
}

/// The manifest's bytes, the manifest, and the extracted files by relative path with
/// their size and sha256.
type Extracted = (Vec<u8>, Manifest, BTreeMap<String, (u64, String)>);

fn extract(archive: &Path, root: &Path, max_bytes: u64) -> Result<Extracted, PackageError> {
    let corrupt = |e| PackageError::corrupt(archive, e);
    let location = archive_location(archive);
    let mut manifest: Option<(Vec<u8>, Manifest)> = None;
    let mut files: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut buf = vec![0u8; CHUNK];

    let mut ar = open(archive)?;
    for entry in ar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let rel = normalize_entry_path(&raw).map_err(|r| PackageError::unsafe_entry(&shown, r))?;
        // The same rule as `read_manifest`'s, which stops at the first entry of this
        // name: a directory here must not be skipped in favour of a later file.
        if rel == MANIFEST_NAME && entry.header().entry_type() != tar::EntryType::Regular {
            return Err(PackageError::unsafe_entry(shown, "is not a regular file"));
        }
        if !is_regular_file(&entry, &shown)? {
            continue;
        }
        let clash = |reason: &str| PackageError::unsafe_entry(&shown, reason);

        if rel == MANIFEST_NAME {
            if manifest.is_some() {
                return Err(clash("appears twice in the archive"));
            }
            let bytes = read_manifest_bytes(&mut entry, &location, corrupt)?;
            let parsed = Manifest::from_json(&bytes, &location)?;
            // The sizes are the archive's word: their sum may not even fit a u64.
            let total = parsed
                .files
                .iter()
                .try_fold(0u64, |sum, f| sum.checked_add(f.size));
            if total.is_none_or(|t| t > max_bytes) {
                let total =
                    total.map_or_else(|| format!("more than {}", u64::MAX), |t| t.to_string());
                return Err(PackageError::invalid_manifest(
                    &location,
                    format!(
                        "its files add up to {total} bytes, more than the {max_bytes} this unpacks at most"
                    ),
                ));
            }
            manifest = Some((bytes, parsed));
            continue;
        }
        // Nothing is written before the manifest says what may be.
        let Some((_, m)) = &manifest else {
            return Err(PackageError::invalid_manifest(
                &location,
                format!(
                    "`{shown}` comes before {MANIFEST_NAME}, which must be the archive's first file"
                ),
            ));
        };
        if files.contains_key(&rel) {
            return Err(clash("appears twice in the archive"));
        }
        // A file may not sit where another file needs a directory, nor the reverse.
        let mut prefix = rel.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            if files.contains_key(parent) || parent == MANIFEST_NAME {
                return Err(clash(&format!(
                    "would be inside `{parent}`, which is a file"
                )));
            }
            prefix = parent;
        }
        let below = format!("{rel}/");
        if files
            .range(below.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&below))
        {
            return Err(clash("is also a directory in the archive"));
        }
        let Some(listed) = m.file(&rel) else {
            return Err(PackageError::UnexpectedFile { file: rel });
        };
        let allowed = listed.size;
        let too_big = |size: u64| {
            PackageError::invalid_manifest(
                &location,
                format!("`{rel}` has {size} bytes or more but the manifest says {allowed}"),
            )
        };
        let declared = entry.header().size().map_err(corrupt)?;
        if declared > allowed {
            return Err(too_big(declared));
        }

        let out = root.join(&rel);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(|e| PackageError::io(parent, e))?;
        }
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&out)
            .map_err(|e| PackageError::io(&out, e))?;
        let mut writer = BufWriter::with_capacity(CHUNK, file);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        // One byte more than allowed is enough to know the file is too large.
        let mut limited = (&mut entry).take(allowed + 1);
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(corrupt(e)),
            };
            size += n as u64;
            if size > allowed {
                return Err(too_big(size));
            }
            hasher.update(&buf[..n]);
            writer
                .write_all(&buf[..n])
                .map_err(|e| PackageError::io(&out, e))?;
        }
        writer.flush().map_err(|e| PackageError::io(&out, e))?;
        files.insert(rel, (size, to_hex(hasher)));
    }
    let Some((bytes, parsed)) = manifest else {
        return Err(PackageError::invalid_manifest(
            location,
            format!("the archive has no {MANIFEST_NAME}"),
        ));
    };
    Ok((bytes, parsed, files))
}

/// Whether an entry is a regular file (`true`) or a directory to skip (`false`);
/// anything else is an error naming the entry.
fn is_regular_file<R: Read>(entry: &tar::Entry<'_, R>, shown: &str) -> Result<bool, PackageError> {
    use tar::EntryType;
    let link = || {
        entry
            .link_name_bytes()
            .map(|l| format!(" to `{}`", String::from_utf8_lossy(&l)))
            .unwrap_or_default()
    };
    let reason = match entry.header().entry_type() {
        EntryType::Regular => return Ok(true),
        EntryType::Directory => return Ok(false),
        EntryType::Symlink => format!("is a symbolic link{}", link()),
        EntryType::Link => format!("is a hard link{}", link()),
        EntryType::Char => "is a character device".to_string(),
        EntryType::Block => "is a block device".to_string(),
        EntryType::Fifo => "is a FIFO".to_string(),
        other => format!(
            "has entry type `{}`, which modelport does not extract",
            other.as_byte().escape_ascii()
        ),
    };
    Err(PackageError::unsafe_entry(shown, reason))
}

/// Checks that the files present are exactly those of the manifest, then that each
/// has its recorded size and sha256 (`digest_of` gives them for a present path).
/// Checks that `present` are the manifest's files, then each one's size and sha256
/// as `digest_of` gives them (`None`: not hashed yet, only the list is checked).
fn check_files<'a>(
    manifest: &Manifest,
    present: impl IntoIterator<Item = &'a str>,
    mut digest_of: impl FnMut(&str) -> Result<Option<(u64, String)>, PackageError>,
    location: &str,
) -> Result<(), PackageError> {
    let present: BTreeSet<&str> = present.into_iter().collect();
    if let Some(missing) = manifest
        .files
        .iter()
        .find(|f| !present.contains(f.path.as_str()))
    {
        return Err(PackageError::MissingFile {
            file: missing.path.clone(),
        });
    }
    if let Some(extra) = present.iter().find(|p| manifest.file(p).is_none()) {
        return Err(PackageError::UnexpectedFile {
            file: extra.to_string(),
        });
    }
    for f in &manifest.files {
        if let Some((size, sha256)) = digest_of(&f.path)? {
            check_entry(f, size, sha256, location)?;
        }
    }
    Ok(())
}

/// A file's measured size and sha256 against its manifest entry.
fn check_entry(
    f: &crate::manifest::FileEntry,
    size: u64,
    sha256: String,
    location: &str,
) -> Result<(), PackageError> {
    if sha256 != f.sha256 {
        return Err(PackageError::Tampered {
            file: f.path.clone(),
            expected: f.sha256.clone(),
            actual: sha256,
        });
    }
    if size != f.size {
        return Err(PackageError::invalid_manifest(
            location,
            format!(
                "`{}` has {size} bytes but the manifest says {}",
                f.path, f.size
            ),
        ));
    }
    Ok(())
}

/// Checks an extracted model directory against its `modelport.json`: every listed
/// file present with its sha256, nothing else besides the manifest. Meant for a
/// serving process at start-up, to refuse a model directory that was altered; the
/// error names the first file that differs.
pub fn verify_dir(dir: &Path) -> Result<Manifest, PackageError> {
    let listed = list_dir(dir)?;
    listed.hash()?;
    Ok(listed.manifest)
}

/// A model directory whose files are the ones its `modelport.json` lists, none
/// missing and none extra, with their contents not yet hashed: [`ListedDir::hash`]
/// finishes what [`verify_dir`] does. A server hashes on one thread while its engine
/// loads the same files on another, and serves only when both succeeded.
#[derive(Debug)]
pub struct ListedDir {
    pub manifest: Manifest,
    found: BTreeMap<String, PathBuf>,
    location: String,
}

/// Reads `dir`'s manifest and checks the directory's file list against it; the
/// error names the first file missing or not listed.
pub fn list_dir(dir: &Path) -> Result<ListedDir, PackageError> {
    let manifest = read_dir_manifest(dir)?;
    let location = dir.join(MANIFEST_NAME).display().to_string();
    let found: BTreeMap<String, PathBuf> = walk(dir)?
        .into_iter()
        .filter(|s| s.rel != MANIFEST_NAME)
        .map(|s| (s.rel, s.abs))
        .collect();
    check_files(
        &manifest,
        found.keys().map(String::as_str),
        |_| Ok(None),
        &location,
    )?;
    Ok(ListedDir {
        manifest,
        found,
        location,
    })
}

/// Copies the package directory `from` (its manifest's files, then the manifest)
/// into `to`, which must not hold them yet, hashing each file while it is copied: one
/// read of every byte. The error names the first file that differs from the
/// manifest; the caller removes `to` then.
pub fn copy_dir_verified(from: &Path, to: &Path) -> Result<Manifest, PackageError> {
    let listed = list_dir(from)?;
    for f in &listed.manifest.files {
        let dest = to.join(&f.path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| PackageError::io(parent, e))?;
        }
        let (size, sha256) = crate::pack::copy_hashed(&listed.found[&f.path], &dest, &mut |_| {})?;
        check_entry(f, size, sha256, &listed.location)?;
    }
    let manifest = to.join(MANIFEST_NAME);
    fs::create_dir_all(to).map_err(|e| PackageError::io(to, e))?;
    fs::copy(from.join(MANIFEST_NAME), &manifest).map_err(|e| PackageError::io(&manifest, e))?;
    Ok(listed.manifest)
}

impl ListedDir {
    /// Hashes every file and checks its sha256 and size; the error names the first
    /// file that differs.
    pub fn hash(&self) -> Result<(), PackageError> {
        check_files(
            &self.manifest,
            self.found.keys().map(String::as_str),
            |rel| hash_file(&self.found[rel]).map(Some),
            &self.location,
        )
    }
}

/// Reads an unpacked directory's `modelport.json` without hashing the files: for a
/// directory already verified once, when only the manifest's content is needed.
pub fn read_dir_manifest(dir: &Path) -> Result<Manifest, PackageError> {
    let path = dir.join(MANIFEST_NAME);
    let location = path.display().to_string();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PackageError::invalid_manifest(
                location,
                "the file does not exist (is this a directory unpacked by modelport?)",
            ));
        }
        Err(e) => return Err(PackageError::io(&path, e)),
    };
    let bytes = read_manifest_bytes(file, &location, |e| PackageError::io(&path, e))?;
    Manifest::from_json(&bytes, &location)
}
