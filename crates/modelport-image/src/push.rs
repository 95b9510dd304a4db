//! `modelport image push`: a layout written by [`crate::build`] to any OCI
//! registry. Blobs the registry already has are not sent (a `HEAD` first); the
//! others stream from disk in chunks; the manifest goes last, as the exact bytes
//! of the layout, so the digest the registry reports is the layout's.

use std::path::{Path, PathBuf};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::ImageError;
use crate::build::{MANIFEST_MEDIA_TYPE, blob_path, read_blob};

pub use oci_client::secrets::RegistryAuth;

/// The bytes read from disk per request of a chunked upload.
const CHUNK: usize = 8 << 20;

/// What `push` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    /// The reference pushed to, as given (`REGISTRY/REPOSITORY:TAG`).
    pub reference: String,
    /// The manifest digest the registry holds now.
    pub digest: String,
    /// `REGISTRY/REPOSITORY@DIGEST`: the reference that cannot move.
    pub pinned: String,
    pub blobs_sent: usize,
    pub blobs_skipped: usize,
    /// Bytes of blobs sent (the manifest not counted).
    pub bytes_sent: u64,
}

/// The manifest of a layout and the blobs it names (config first, then layers).
pub struct Layout {
    pub dir: PathBuf,
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub blobs: Vec<(String, u64)>,
}

impl Layout {
    /// Reads the layout in `dir`: one manifest in `index.json`, every blob present.
    pub fn open(dir: &Path) -> Result<Layout, ImageError> {
        let bad = |what: &str| {
            ImageError::new(
                format!(
                    "{}: not an image layout of modelport ({what})",
                    dir.display()
                ),
                "build one with `modelport image build --out DIR`",
            )
        };
        let index_path = dir.join("index.json");
        let index: Value = std::fs::read(&index_path)
            .map_err(|e| ImageError::io(&index_path, e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|_| bad("index.json is not JSON")))?;
        let manifests = index["manifests"]
            .as_array()
            .ok_or_else(|| bad("index.json has no manifests"))?;
        let [entry] = manifests.as_slice() else {
            return Err(bad("index.json must name exactly one manifest"));
        };
        let manifest_digest = entry["digest"]
            .as_str()
            .ok_or_else(|| bad("the manifest has no digest"))?
            .to_string();
        let manifest = read_blob(dir, &manifest_digest)?;
        if crate::build::sha256_digest(&manifest) != manifest_digest {
            return Err(bad("the manifest blob does not match its digest"));
        }
        let parsed: Value =
            serde_json::from_slice(&manifest).map_err(|_| bad("the manifest is not JSON"))?;
        let mut blobs = Vec::new();
        for d in std::iter::once(&parsed["config"]).chain(
            parsed["layers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        ) {
            let digest = d["digest"]
                .as_str()
                .ok_or_else(|| bad("a blob has no digest"))?;
            let size = d["size"]
                .as_u64()
                .ok_or_else(|| bad("a blob has no size"))?;
            let p = blob_path(dir, digest);
            let on_disk = std::fs::metadata(&p)
                .map_err(|e| ImageError::io(&p, e))?
                .len();
            if on_disk != size {
                return Err(bad(&format!("{digest} has {on_disk} bytes, not {size}")));
            }
            blobs.push((digest.to_string(), size));
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
            manifest_digest,
            manifest,
            blobs,
        })
    }
}

/// Parses `REGISTRY/REPOSITORY[:TAG]`, with a hint on what is wrong.
pub fn parse_reference(reference: &str) -> Result<Reference, ImageError> {
    reference.parse::<Reference>().map_err(|e| {
        ImageError::new(
            format!("`{reference}` is not an image reference ({e})"),
            "write REGISTRY/REPOSITORY:TAG, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0",
        )
    })
}

/// Whether the registry is on this machine: spoken to over plain HTTP, as
/// Docker does for `localhost`. Every other registry gets HTTPS.
pub fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(h, port)| !h.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Pushes the layout in `dir` to `reference`.
pub async fn push(dir: &Path, reference: &str, auth: &RegistryAuth) -> Result<Pushed, ImageError> {
    let layout = Layout::open(dir)?;
    let image = parse_reference(reference)?;
    let registry = image.resolve_registry().to_string();
    let client = client_for(&registry);
    let fail = |e: OciDistributionError| registry_error(&registry, image.repository(), e);
    client
        .auth(&image, auth, RegistryOperation::Push)
        .await
        .map_err(fail)?;

    let mut pushed = Pushed {
        reference: reference.to_string(),
        digest: layout.manifest_digest.clone(),
        pinned: format!(
            "{registry}/{}@{}",
            image.repository(),
            layout.manifest_digest
        ),
        blobs_sent: 0,
        blobs_skipped: 0,
        bytes_sent: 0,
    };
    // Layers before the config, as Docker pushes, so that a registry never holds a
    // config whose layers are missing.
    for (digest, size) in layout.blobs.iter().rev() {
        if client.blob_exists(&image, digest).await.map_err(fail)? {
            tracing::debug!(%digest, "the registry has the blob already");
            pushed.blobs_skipped += 1;
            continue;
        }
        tracing::debug!(%digest, size, "pushing blob");
        let stream = chunks(blob_path(&layout.dir, digest)).await?;
        client
            .push_blob_stream(&image, stream, digest)
            .await
            .map_err(fail)?;
        pushed.blobs_sent += 1;
        pushed.bytes_sent += size;
    }
    let content_type = MANIFEST_MEDIA_TYPE
        .parse()
        .expect("the media type is a valid header value");
    client
        .push_manifest_raw(&image, layout.manifest.clone(), content_type)
        .await
        .map_err(fail)?;
    Ok(pushed)
}

/// The digest of the manifest `reference` names, asked of its registry as a pull
/// would (`HEAD /v2/REPOSITORY/manifests/TAG`); `None` when the registry has no
/// such repository or manifest.
pub async fn manifest_digest(
    reference: &str,
    auth: &RegistryAuth,
) -> Result<Option<String>, ImageError> {
    let image = parse_reference(reference)?;
    let registry = image.resolve_registry().to_string();
    let client = client_for(&registry);
    match client.fetch_manifest_digest(&image, auth).await {
        Ok(digest) => Ok(Some(digest)),
        Err(e) if is_unknown_manifest(&e) => Ok(None),
        Err(e) => {
            let hint = if is_refusal(&e) {
                format!(
                    "the credentials for {registry} were refused or may not pull from `{}`: log in \
                     (`docker login {registry}`, or the cloud's own login)",
                    image.repository()
                )
            } else if matches!(e, OciDistributionError::RequestError(_)) {
                format!("{registry} could not be reached: check the name and the network")
            } else {
                format!("the registry {registry} refused the lookup; `-vv` shows each request")
            };
            Err(ImageError::new(format!("look up {reference}: {e}"), hint))
        }
    }
}

/// The registry refused the credentials (or has none for this client).
fn is_refusal(e: &OciDistributionError) -> bool {
    let lower = e.to_string().to_ascii_lowercase();
    matches!(
        e,
        OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. }
    ) || ["unauthorized", "denied", "401", "403"]
        .iter()
        .any(|s| lower.contains(s))
}

/// A registry's answer that the repository or manifest does not exist.
fn is_unknown_manifest(e: &OciDistributionError) -> bool {
    if matches!(e, OciDistributionError::ImageManifestNotFoundError(_)) {
        return true;
    }
    let text = e.to_string().to_ascii_lowercase();
    [
        "manifest unknown",
        "manifest_unknown",
        "name unknown",
        "name_unknown",
        "not found",
    ]
    .iter()
    .any(|s| text.contains(s))
}

/// A client that speaks plain HTTP to a registry on this machine, HTTPS elsewhere.
fn client_for(registry: &str) -> Client {
    let protocol = if is_loopback(registry) {
        ClientProtocol::HttpsExcept(vec![registry.to_string()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    })
}

/// The file at `path` as a stream of [`CHUNK`]-sized pieces.
async fn chunks(
    path: PathBuf,
) -> Result<impl futures_util::Stream<Item = Result<bytes::Bytes, OciDistributionError>>, ImageError>
{
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ImageError::io(&path, e))?;
    Ok(futures_util::stream::try_unfold(
        file,
        |mut file| async move {
            let mut buf = Vec::with_capacity(CHUNK);
            (&mut file).take(CHUNK as u64).read_to_end(&mut buf).await?;
            if buf.is_empty() {
                Ok(None)
            } else {
                Ok(Some((bytes::Bytes::from(buf), file)))
            }
        },
    ))
}

fn missing_repository(lower: &str) -> bool {
    lower.contains("name_unknown")
        || (lower.contains("repository")
            && (lower.contains("not found") || lower.contains("does not exist")))
}

/// A registry's refusal in words a user can act on: which registry, and what to do.
fn registry_error(registry: &str, repository: &str, e: OciDistributionError) -> ImageError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let hint = if is_refusal(&e) {
        format!(
            "the credentials for {registry} were refused or may not push to `{repository}`: \
             log in (`docker login {registry}`, or the cloud's own login), and check the \
             permission to push (`modelport iam-policy` lists what a deploy needs)"
        )
    } else if missing_repository(&lower) {
        let mut e = ImageError::new(
            format!("push to {registry}/{repository}: {text}"),
            format!(
                "the repository `{repository}` does not exist on {registry}: create it, or check \
                 the region in the registry's name"
            ),
        );
        e.missing_repository = true;
        return e;
    } else if matches!(e, OciDistributionError::RequestError(_)) {
        format!(
            "{registry} could not be reached: check the name (and the region in it) and the network"
        )
    } else {
        format!("the registry {registry} refused the push; `-vv` shows each request")
    };
    ImageError::new(format!("push to {registry}/{repository}: {text}"), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_registries_are_spoken_to_over_http() {
        for r in [
            "127.0.0.1:5000",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "us-central1-docker.pkg.dev",
            "10.0.0.1:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn a_bad_reference_shows_the_form() {
        let err = parse_reference("registry.example.com/model port:tag").unwrap_err();
        assert!(
            err.hint().unwrap().contains("REGISTRY/REPOSITORY:TAG"),
            "{err:?}"
        );
    }
}
