//! The artifact store under `.modelport/`: archives by their digest, unpacked and
//! verified models by their manifest digest. Both are written under a temporary
//! name and renamed into place, so a crash never leaves half an entry. A package
//! laid out as a directory has no archive: its copy among the models is the store's.

use std::fs;
use std::path::{Path, PathBuf};

use modelport_core::provider::{ArtifactRef, ProviderError};
use modelport_core::spec::ArtifactLayout;
use modelport_core::state::Workspace;
use modelport_package::{ARCHIVE_NAME, MANIFEST_NAME, Manifest, unpack, verify_dir};

fn io(path: &Path, e: std::io::Error) -> ProviderError {
    ProviderError::Core(modelport_core::Error::io(path, e))
}

fn scratch(ws: &Workspace, what: &str) -> Result<PathBuf, ProviderError> {
    let tmp = ws.tmp_dir();
    fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Ok(tmp.join(format!("{what}-{}-{nanos}", std::process::id())))
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
    let manifest = modelport_package::read_dir_manifest(from).map_err(refused)?;
    let tmp = scratch(ws, "model")?;
    let copied = (|| {
        for rel in manifest
            .files
            .iter()
            .map(|f| f.path.as_str())
            .chain([MANIFEST_NAME])
        {
            let to = tmp.join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            let src = from.join(rel);
            fs::copy(&src, &to).map_err(|e| io(&src, e))?;
        }
        verify_dir(&tmp).map_err(refused)
    })();
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
    Ok((dest, manifest))
}

/// The model directory `dest` and its manifest when it is there and intact; an
/// altered one is removed, so it is replaced rather than served.
fn intact(dest: &Path) -> Result<Option<(PathBuf, Manifest)>, ProviderError> {
    if !dest.exists() {
        return Ok(None);
    }
    if let Ok(manifest) = verify_dir(dest) {
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
    fs::copy(&artifact.path, &tmp).map_err(|e| io(&artifact.path, e))?;
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    fs::rename(&tmp, &dest).map_err(|e| io(&dest, e))?;
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
    Ok((dest, manifest))
}
