//! The artifact store under `.modelport/`: archives by their digest, unpacked and
//! verified models by their manifest digest. Both are written under a temporary
//! name and renamed into place, so a crash never leaves half an entry.

use std::fs;
use std::path::{Path, PathBuf};

use modelport_core::provider::{ArtifactRef, ProviderError};
use modelport_core::state::Workspace;
use modelport_package::{ARCHIVE_NAME, Manifest, unpack, verify_dir};

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
    if dest.exists() {
        if let Ok(manifest) = verify_dir(&dest) {
            return Ok((dest, manifest));
        }
        // Altered since it was unpacked: replace it rather than serve it.
        tracing::warn!(
            "{} differs from its manifest; unpacking it again",
            dest.display()
        );
        fs::remove_dir_all(&dest).map_err(|e| io(&dest, e))?;
    }
    let tmp = scratch(ws, "model")?;
    let manifest = unpack(archive, &tmp).map_err(|e| ProviderError::Other {
        message: e.to_string(),
        hint: e.hint(),
    })?;
    let parent = ws.models_dir();
    fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    if let Err(e) = fs::rename(&tmp, &dest) {
        let _ = fs::remove_dir_all(&tmp);
        if !dest.exists() {
            return Err(io(&dest, e));
        }
    }
    Ok((dest, manifest))
}
