//! The artifact store under `.modelport/`: archives by their digest, unpacked and
//! verified models by their manifest digest. Both are written under a temporary
//! name and renamed into place, so a crash never leaves half an entry. A package
//! laid out as a directory has no archive: its copy among the models is the store's.

use std::fs;
use std::path::{Path, PathBuf};

use modelport_core::provider::{ArtifactRef, ProviderError};
use modelport_core::spec::ArtifactLayout;
use modelport_core::state::Workspace;
use modelport_package::{ARCHIVE_NAME, Manifest, unpack, verify_dir};

fn io(path: &Path, e: std::io::Error) -> ProviderError {
    ProviderError::Core(modelport_core::Error::io(path, e))
}

fn scratch(ws: &Workspace, what: &str) -> Result<PathBuf, ProviderError> {
    Ok(ws.scratch_path(what)?)
}

/// Puts `artifact` in the store and returns the verified model directory servers
/// and comparisons read, with its manifest: an archive is kept and unpacked, a
/// directory copied (unless an intact copy is there already).
pub fn install(
    ws: &Workspace,
    artifact: &ArtifactRef,
) -> Result<(PathBuf, Manifest), ProviderError> {
    match artifact.layout {
        ArtifactLayout::Archive => {
            let archive = store_artifact(ws, artifact)?;
            unpack_model(ws, &archive, &artifact.model_digest)
        }
        ArtifactLayout::Dir => copy_model(ws, &artifact.path, &artifact.model_digest),
    }
}

/// `.modelport/models/<model_digest>/`, copied from the package directory `from`
/// (its manifest's files and the manifest) unless present and intact.
pub fn copy_model(
    ws: &Workspace,
    from: &Path,
    model_digest: &str,
) -> Result<(PathBuf, Manifest), ProviderError> {
    let dest = ws.models_dir().join(model_digest);
    if let Some(found) = intact(&dest)? {
        return Ok(found);
    }
    let refused = |e: modelport_package::PackageError| ProviderError::Other {
        message: e.to_string(),
        hint: e.hint(),
    };
    let tmp = scratch(ws, "model")?;
    // Each file is hashed while it is copied: one read of a model of gigabytes.
    let copied = modelport_package::copy_dir_verified(from, &tmp).map_err(refused);
    let manifest = match copied {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if manifest.digest() != model_digest {
        let _ = fs::remove_dir_all(&tmp);
        return Err(ProviderError::other(format!(
            "{} holds model {}, not {model_digest}: it changed since it was packaged",
            from.display(),
            manifest.digest()
        )));
    }
    settle(ws, &tmp, &dest)?;
    checked(&dest);
    Ok((dest, manifest))
}

/// What a directory's files looked like: each one's path, size and modification time.
type Fingerprint = Vec<(PathBuf, u64, Option<std::time::SystemTime>)>;

/// Store directories this process checked against their manifests, as their files
/// were then. A deploy installs the same model for its comparison and for its server,
/// and hashing gigabytes a second time minutes later finds nothing: a directory whose
/// files all look the same is not hashed again; one with any file added, removed,
/// resized or rewritten is.
static CHECKED: std::sync::Mutex<Vec<(PathBuf, Fingerprint)>> = std::sync::Mutex::new(Vec::new());

fn fingerprint(dir: &Path) -> Option<Fingerprint> {
    fn walk(dir: &Path, out: &mut Fingerprint) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let meta = fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                walk(&entry.path(), out)?;
            } else {
                out.push((entry.path(), meta.len(), meta.modified().ok()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out).ok()?;
    out.sort();
    Some(out)
}

/// Records that `dir` matched its manifest just now.
fn checked(dir: &Path) {
    if let Some(print) = fingerprint(dir) {
        let mut all = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(d, _)| d != dir);
        all.push((dir.to_path_buf(), print));
    }
}

/// True when this process checked `dir` and none of its files changed since.
fn unchanged_since_checked(dir: &Path) -> bool {
    let all = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    all.iter()
        .any(|(d, print)| d == dir && fingerprint(dir).as_ref() == Some(print))
}

/// The model directory `dest` and its manifest when it is there and intact; an
/// altered one is removed, so it is replaced rather than served.
fn intact(dest: &Path) -> Result<Option<(PathBuf, Manifest)>, ProviderError> {
    if !dest.exists() {
        return Ok(None);
    }
    if unchanged_since_checked(dest)
        && let Ok(manifest) = modelport_package::read_dir_manifest(dest)
    {
        return Ok(Some((dest.to_path_buf(), manifest)));
    }
    if let Ok(manifest) = verify_dir(dest) {
        checked(dest);
        return Ok(Some((dest.to_path_buf(), manifest)));
    }
    tracing::warn!(
        "{} differs from its manifest; writing it again",
        dest.display()
    );
    fs::remove_dir_all(dest).map_err(|e| io(dest, e))?;
    Ok(None)
}

/// Renames the finished `tmp` to `dest`; another process that got there first wins.
fn settle(ws: &Workspace, tmp: &Path, dest: &Path) -> Result<(), ProviderError> {
    let parent = ws.models_dir();
    fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    if let Err(e) = fs::rename(tmp, dest) {
        let _ = fs::remove_dir_all(tmp);
        if !dest.exists() {
            return Err(io(dest, e));
        }
    }
    modelport_core::failpoint::step("store.model");
    Ok(())
}

/// `.modelport/artifacts/<digest>/model.tar.gz`, copied there unless it already is.
pub fn store_artifact(ws: &Workspace, artifact: &ArtifactRef) -> Result<PathBuf, ProviderError> {
    let dir = ws.artifacts_dir().join(&artifact.digest);
    let dest = dir.join(ARCHIVE_NAME);
    if dest.exists() {
        return Ok(dest);
    }
    let tmp = scratch(ws, "artifact")?;
    let stored = fs::copy(&artifact.path, &tmp)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => io(&artifact.path, e),
            // A failed write (a full disk) is the store's, not the package's.
            _ => io(&dest, e),
        })
        .and_then(|_| fs::create_dir_all(&dir).map_err(|e| io(&dir, e)))
        .and_then(|()| fs::rename(&tmp, &dest).map_err(|e| io(&dest, e)));
    if let Err(e) = stored {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    modelport_core::failpoint::step("store.artifact");
    Ok(dest)
}

/// `.modelport/models/<model_digest>/` and its manifest, unpacked from the archive
/// unless present and intact.
pub fn unpack_model(
    ws: &Workspace,
    archive: &Path,
    model_digest: &str,
) -> Result<(PathBuf, Manifest), ProviderError> {
    let dest = ws.models_dir().join(model_digest);
    if let Some(found) = intact(&dest)? {
        return Ok(found);
    }
    let tmp = scratch(ws, "model")?;
    let manifest = unpack(archive, &tmp).map_err(|e| ProviderError::Other {
        message: e.to_string(),
        hint: e.hint(),
    })?;
    settle(ws, &tmp, &dest)?;
    checked(&dest);
    Ok((dest, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The iris example packaged as a directory in `dir`.
    fn package_dir(dir: &Path) -> (PathBuf, String) {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/iris/model.onnx");
        let opts = modelport_package::PackageOptions {
            layout: ArtifactLayout::Dir,
            ..Default::default()
        };
        let a = modelport_package::package(&model, &dir.join("pkg"), &opts).unwrap();
        (a.path, a.manifest.digest())
    }

    #[test]
    fn a_copied_model_is_checked_once_and_again_when_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path().join("ws"));
        let (from, digest) = package_dir(dir.path());
        let (dest, manifest) = copy_model(&ws, &from, &digest).unwrap();
        assert_eq!(manifest.digest(), digest);
        let file = dest.join(&manifest.model.file);
        let original = fs::read(&file).unwrap();
        assert_eq!(original, fs::read(from.join(&manifest.model.file)).unwrap());
        // Installed again, unchanged: the same directory.
        assert_eq!(copy_model(&ws, &from, &digest).unwrap().0, dest);
        // A file rewritten in the store is noticed and the copy made again.
        let mut bytes = original.clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&file, &bytes).unwrap();
        assert!(!unchanged_since_checked(&dest));
        let (again, _) = copy_model(&ws, &from, &digest).unwrap();
        assert_eq!(again, dest);
        assert_eq!(fs::read(&file).unwrap(), original);
        // A file added to the store's copy too.
        fs::write(dest.join("extra.bin"), b"x").unwrap();
        assert!(!unchanged_since_checked(&dest));
        copy_model(&ws, &from, &digest).unwrap();
        assert!(!dest.join("extra.bin").exists());
    }

    #[test]
    fn a_package_that_changed_since_it_was_packaged_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path().join("ws"));
        let (from, digest) = package_dir(dir.path());
        let manifest = modelport_package::read_dir_manifest(&from).unwrap();
        let file = from.join(&manifest.model.file);
        let mut bytes = fs::read(&file).unwrap();
        bytes[0] ^= 0xff;
        fs::write(&file, &bytes).unwrap();
        let err = copy_model(&ws, &from, &digest).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "`{}` does not match the manifest",
                manifest.model.file
            )),
            "{err}"
        );
        // Nothing half-copied is left in the store.
        assert!(!ws.models_dir().join(&digest).exists());
        assert_eq!(fs::read_dir(ws.tmp_dir()).unwrap().count(), 0);
    }
}
