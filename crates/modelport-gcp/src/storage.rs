//! Cloud Storage: the revision's files go to `gs://BUCKET/PREFIX/NAME/DIGEST/`
//! (the model files and the manifest, plus model.tar.gz when the package is an
//! archive: Vertex AI wants a directory as `artifactUri`), skipping objects already there with the same
//! crc32c, and `modelport serve` fetches them back from `AIP_STORAGE_URI`.
//!
//! Object data goes through the official `google-cloud-storage` client. Object
//! metadata, listing and deletion go through the JSON API with reqwest: the
//! official crate offers those only on `StorageControl`, which speaks gRPC alone,
//! and the JSON API is the interface every GCS-compatible server (fake-gcs-server
//! included) answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use google_cloud_auth::credentials::{CacheableResource, Credentials};
use google_cloud_storage::client::Storage;
use google_cloud_storage::streaming_source::{Seek, SizeHint, StreamingSource};

use modelport_core::provider::{ArtifactRef, ProviderError, ProviderResult, Reporter, Unit};
use modelport_core::spec::ArtifactLayout;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error;

const GOOGLE_STORAGE: &str = "https://storage.googleapis.com";
const READ_SIZE: usize = 1024 * 1024;

fn other(message: String) -> ProviderError {
    ProviderError::other(message)
}

/// What the JSON API says about an object.
#[derive(Debug, Clone, Deserialize)]
pub struct ObjectMeta {
    pub name: String,
    /// Base64 of the big-endian crc32c.
    #[serde(default)]
    pub crc32c: Option<String>,
    #[serde(default, rename = "md5Hash")]
    pub md5_hash: Option<String>,
}

/// The JSON API for what the official crate only does over gRPC.
#[derive(Clone)]
pub struct ObjectsApi {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ObjectsApi {
    pub fn new(endpoint: Option<&str>, credentials: Credentials) -> ProviderResult<ObjectsApi> {
        let timeout = modelport_core::env::request_timeout()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .build()
            .map_err(|e| other(format!("cannot build an HTTP client: {e}")))?;
        Ok(ObjectsApi {
            http,
            base: endpoint
                .unwrap_or(GOOGLE_STORAGE)
                .trim_end_matches('/')
                .to_string(),
            credentials,
        })
    }

    /// Sends the request `req` builds, with the credentials' headers, retrying up
    /// to six times with backoff what Cloud Storage's retry strategy calls
    /// transient: 408, 429 and 5xx answers, and requests whose answer never came
    /// (every request here is a read or a delete, which are safe to repeat).
    async fn send(
        &self,
        what: &str,
        req: impl Fn() -> reqwest::RequestBuilder,
    ) -> ProviderResult<reqwest::Response> {
        let headers = match self
            .credentials
            .headers(http::Extensions::new())
            .await
            .map_err(|e| ProviderError::Other {
                message: format!("{what}: no Google Cloud credentials: {e}"),
                hint: Some("run `gcloud auth application-default login`".into()),
            })? {
            CacheableResource::New { data, .. } => data,
            CacheableResource::NotModified => Default::default(),
        };
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match req().headers(headers.clone()).send().await {
                Ok(r) if !matches!(r.status().as_u16(), 408 | 429 | 500..=599) || attempt == 6 => {
                    return Ok(r);
                }
                Ok(r) => tracing::debug!("{what}: HTTP {}; retrying in {delay:?}", r.status()),
                Err(e) if attempt < 6 => tracing::debug!(
                    "{what}: {}; retrying in {delay:?}",
                    modelport_verify::http::error_chain(&e)
                ),
                Err(e) => {
                    return Err(ProviderError::Other {
                        message: format!("{what}: {}", modelport_verify::http::error_chain(&e)),
                        hint: Some("check the network, or MODELPORT_GCP_STORAGE_ENDPOINT".into()),
                    });
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            attempt += 1;
        }
    }

    async fn failed(what: &str, r: reqwest::Response) -> ProviderError {
        #[derive(Deserialize)]
        struct Body {
            error: Detail,
        }
        #[derive(Deserialize)]
        struct Detail {
            message: String,
        }
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Body>(&text)
            .map(|b| b.error.message)
            .unwrap_or(text);
        let hint = match status.as_u16() {
            401 => Some("run `gcloud auth application-default login`".to_string()),
            403 => Some("the credentials need roles/storage.objectAdmin on the bucket: see `modelport iam-policy --provider gcp`".to_string()),
            404 => Some("create the bucket in the endpoint's region first: `gcloud storage buckets create gs://BUCKET --location REGION`".to_string()),
            _ => None,
        };
        ProviderError::Other {
            message: format!("{what} failed: HTTP {status}: {message}"),
            hint,
        }
    }

    /// The object's metadata, or `None` when there is no such object.
    pub async fn meta(&self, bucket: &str, name: &str) -> ProviderResult<Option<ObjectMeta>> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            encode(bucket),
            encode(name)
        );
        let what = format!("reading gs://{bucket}/{name}");
        let r = self.send(&what, || self.http.get(&url)).await?;
        match r.status().as_u16() {
            404 => Ok(None),
            200 => r
                .json()
                .await
                .map(Some)
                .map_err(|e| other(format!("{what}: {e}"))),
            _ => Err(Self::failed(&what, r).await),
        }
    }

    /// The bucket's location (`US-CENTRAL1`, `US`, ...), upper case.
    pub async fn bucket_location(&self, bucket: &str) -> ProviderResult<String> {
        #[derive(Deserialize)]
        struct B {
            #[serde(default)]
            location: String,
        }
        let url = format!("{}/storage/v1/b/{}", self.base, encode(bucket));
        let what = format!("reading bucket gs://{bucket}");
        let r = self.send(&what, || self.http.get(&url)).await?;
        if !r.status().is_success() {
            return Err(Self::failed(&what, r).await);
        }
        let b: B = r.json().await.map_err(|e| other(format!("{what}: {e}")))?;
        Ok(b.location.to_ascii_uppercase())
    }

    /// Every object whose name starts with `prefix`.
    pub async fn list(&self, bucket: &str, prefix: &str) -> ProviderResult<Vec<ObjectMeta>> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            items: Vec<ObjectMeta>,
            #[serde(default, rename = "nextPageToken")]
            next: Option<String>,
        }
        let what = format!("listing gs://{bucket}/{prefix}");
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("prefix", prefix.to_string())];
            if let Some(t) = &token {
                query.push(("pageToken", t.clone()));
            }
            let url = format!("{}/storage/v1/b/{}/o", self.base, encode(bucket));
            let r = self
                .send(&what, || self.http.get(&url).query(&query))
                .await?;
            if !r.status().is_success() {
                return Err(Self::failed(&what, r).await);
            }
            let page: Page = r.json().await.map_err(|e| other(format!("{what}: {e}")))?;
            all.extend(page.items);
            match page.next.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    /// Deletes the object; true when it existed.
    pub async fn delete(&self, bucket: &str, name: &str) -> ProviderResult<bool> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            encode(bucket),
            encode(name)
        );
        let what = format!("deleting gs://{bucket}/{name}");
        let r = self.send(&what, || self.http.delete(&url)).await?;
        match r.status().as_u16() {
            404 => Ok(false),
            200..=299 => Ok(true),
            _ => Err(Self::failed(&what, r).await),
        }
    }
}

/// Vertex AI reads the model from a bucket in the endpoint's region (or a
/// multi-region containing it): checked before anything is uploaded.
pub async fn check_bucket_region(
    api: &ObjectsApi,
    bucket: &str,
    region: &str,
) -> ProviderResult<()> {
    let location = api.bucket_location(bucket).await?;
    let region_upper = region.to_ascii_uppercase();
    let multi = |l: &str| -> bool {
        match l {
            "US" => region_upper.starts_with("US-"),
            "EU" => region_upper.starts_with("EUROPE-"),
            "ASIA" => region_upper.starts_with("ASIA-"),
            _ => false,
        }
    };
    if location.is_empty() || location == region_upper || multi(&location) {
        return Ok(());
    }
    Err(ProviderError::InvalidInput {
        message: format!(
            "bucket gs://{bucket} is in {location}, but the endpoint's region is {region}: Vertex AI reads models from the same region"
        ),
        hint: Some(format!(
            "use a bucket in {region} (`gcloud storage buckets create gs://BUCKET --location {region}`) as provider.gcp.bucket"
        )),
    })
}

/// A file as the upload's byte source, counting what was read for progress.
struct CountingFile {
    file: tokio::fs::File,
    size: u64,
    sent: Arc<AtomicU64>,
}

impl StreamingSource for CountingFile {
    type Error = std::io::Error;

    async fn next(&mut self) -> Option<Result<bytes::Bytes, Self::Error>> {
        let mut buf = vec![0u8; READ_SIZE];
        match self.file.read(&mut buf).await {
            Err(e) => Some(Err(e)),
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                self.sent.fetch_add(n as u64, Ordering::Relaxed);
                Some(Ok(bytes::Bytes::from(buf)))
            }
        }
    }

    async fn size_hint(&self) -> Result<SizeHint, Self::Error> {
        Ok(SizeHint::with_exact(self.size))
    }
}

impl Seek for CountingFile {
    type Error = std::io::Error;

    async fn seek(&mut self, offset: u64) -> Result<(), Self::Error> {
        self.file.seek(std::io::SeekFrom::Start(offset)).await?;
        self.sent.store(offset, Ordering::Relaxed);
        Ok(())
    }
}

/// crc32c of a file, and base64 of its big-endian bytes as GCS reports it.
pub fn crc32c_file(path: &Path) -> std::io::Result<(u32, String)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; READ_SIZE];
    let mut crc = 0u32;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
    Ok((crc, base64_be(crc)))
}

fn base64_be(crc: u32) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = crc.to_be_bytes();
    let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    let mut out = String::with_capacity(8);
    for shift in [18, 12, 6, 0] {
        out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
    }
    let m = u32::from(b[3]) << 16;
    out.push(ALPHABET[((m >> 18) & 63) as usize] as char);
    out.push(ALPHABET[((m >> 12) & 63) as usize] as char);
    out.push_str("==");
    out
}

/// Where a revision's files go.
pub struct UploadTarget<'a> {
    pub bucket: &'a str,
    /// `PREFIX/NAME/DIGEST`, without a trailing slash.
    pub dir: &'a str,
    pub kms_key_name: Option<&'a str>,
}

/// What an upload did.
#[derive(Debug, Default)]
pub struct UploadSummary {
    pub uploaded: Vec<String>,
    pub skipped: Vec<String>,
    pub bytes_sent: u64,
}

/// Uploads the artifact's files and its manifest (and, for an archive, the archive
/// itself beside them), skipping every object already there with the same crc32c.
pub async fn upload_revision(
    storage: &Storage,
    api: &ObjectsApi,
    target: &UploadTarget<'_>,
    artifact: &ArtifactRef,
    reporter: &dyn Reporter,
) -> ProviderResult<UploadSummary> {
    // A directory artifact is uploaded as it is, and is the only copy; an archive
    // is unpacked first, and goes up beside its files.
    let scratch;
    let (dir, archive) = match artifact.layout {
        ArtifactLayout::Dir => (artifact.path.clone(), None),
        ArtifactLayout::Archive => {
            scratch = tempfile_dir()?;
            let archive = artifact.path.clone();
            let unpack_dir = scratch.path().to_path_buf();
            tokio::task::spawn_blocking(move || modelport_package::unpack(&archive, &unpack_dir))
                .await
                .map_err(|e| other(format!("unpacking the artifact: {e}")))?
                .map_err(|e| other(format!("unpacking {}: {e}", artifact.path.display())))?;
            (scratch.path().to_path_buf(), Some(artifact.path.clone()))
        }
    };
    let manifest = modelport_package::read_dir_manifest(&dir)
        .map_err(|e| other(format!("reading {}: {e}", dir.display())))?;
    let mut files: Vec<(String, PathBuf)> = manifest
        .files
        .iter()
        .map(|f| (f.path.clone(), dir.join(&f.path)))
        .collect();
    if let Some(archive) = archive {
        files.push((modelport_package::ARCHIVE_NAME.to_string(), archive));
    }
    // Last: its presence says the whole directory is there.
    files.push((
        modelport_package::MANIFEST_NAME.to_string(),
        dir.join(modelport_package::MANIFEST_NAME),
    ));
    let mut summary = UploadSummary::default();
    let total = files.len();
    for (i, (rel, path)) in files.iter().enumerate() {
        let name = format!("{}/{rel}", target.dir);
        let p = path.clone();
        let (crc, crc_b64) = tokio::task::spawn_blocking(move || crc32c_file(&p))
            .await
            .map_err(|e| other(format!("hashing {}: {e}", path.display())))?
            .map_err(|e| other(format!("reading {}: {e}", path.display())))?;
        if let Some(meta) = api.meta(target.bucket, &name).await?
            && meta.crc32c.as_deref() == Some(crc_b64.as_str())
        {
            reporter.on_progress(&format!(
                "[{}/{total}] gs://{}/{name} is already there (same crc32c)",
                i + 1,
                target.bucket
            ));
            summary.skipped.push(name);
            continue;
        }
        let size = std::fs::metadata(path)
            .map_err(|e| other(format!("reading {}: {e}", path.display())))?
            .len();
        let sent = Arc::new(AtomicU64::new(0));
        let upload = upload_object(
            storage,
            target.bucket,
            &name,
            path,
            crc,
            target.kms_key_name,
            sent.clone(),
        );
        tokio::pin!(upload);
        let what = format!(
            "uploading [{}/{total}] {rel} to gs://{}",
            i + 1,
            target.bucket
        );
        reporter.on_amount(&what, 0, size, Unit::Bytes);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.tick().await;
        loop {
            tokio::select! {
                r = &mut upload => { r?; break; }
                _ = tick.tick() => {
                    let done = sent.load(Ordering::Relaxed).min(size);
                    if done < size {
                        reporter.on_amount(&what, done, size, Unit::Bytes);
                    }
                }
            }
        }
        reporter.on_amount(&what, size, size, Unit::Bytes);
        summary.bytes_sent += size;
        summary.uploaded.push(name.clone());
    }
    Ok(summary)
}

/// Uploads one file, streamed from disk, as `gs://bucket/name`; the server checks
/// it against `crc` (its crc32c). Files of 16 MiB and more go up as resumable
/// uploads (the storage crate's threshold), retried from where they stopped.
/// `sent` counts the bytes read so far, for progress.
///
/// The object's name holds its content's digest, so writing it twice writes the
/// same bytes: the upload is marked idempotent, and the storage crate retries a
/// single-request upload too (by default it retries those only with a generation
/// precondition). The crate sets no time limit on an attempt, so each attempt
/// here gets the request timeout plus a second per 64 KiB, and one that runs out
/// is tried again from the start, up to three times.
pub async fn upload_object(
    storage: &Storage,
    bucket: &str,
    name: &str,
    path: &Path,
    crc: u32,
    kms_key_name: Option<&str>,
    sent: Arc<AtomicU64>,
) -> ProviderResult<()> {
    const TIMED_ATTEMPTS: u32 = 3;
    let what = format!("uploading gs://{bucket}/{name}");
    let base = modelport_core::env::request_timeout()?;
    let mut attempt = 1;
    loop {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| other(format!("reading {}: {e}", path.display())))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| other(format!("reading {}: {e}", path.display())))?
            .len();
        sent.store(0, Ordering::Relaxed);
        let source = CountingFile {
            file,
            size,
            sent: sent.clone(),
        };
        let mut write = storage
            .write_object(format!("projects/_/buckets/{bucket}"), name, source)
            .set_content_type(content_type(name))
            .with_known_crc32c(crc)
            .with_idempotency(true);
        if let Some(key) = kms_key_name {
            write = write.set_kms_key(key);
        }
        let limit = modelport_core::env::transfer_timeout(base, size);
        match tokio::time::timeout(limit, write.send_unbuffered()).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => return Err(error::failure(&what, &e)),
            Err(_) if attempt < TIMED_ATTEMPTS => {
                tracing::debug!("{what}: no answer within {limit:?}; trying again");
                attempt += 1;
            }
            Err(_) => {
                return Err(ProviderError::Other {
                    message: format!(
                        "{what}: no answer within {} s, {TIMED_ATTEMPTS} times",
                        limit.as_secs()
                    ),
                    hint: Some(format!(
                        "check the connection to Cloud Storage, or raise {} for a slow link; \
                         a re-run uploads what is missing",
                        modelport_core::env::MODELPORT_REQUEST_TIMEOUT_S
                    )),
                });
            }
        }
    }
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".tar.gz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    }
}

fn tempfile_dir() -> ProviderResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("modelport-gcs-")
        .tempdir()
        .map_err(|e| other(format!("cannot create a scratch directory: {e}")))
}

/// `gs://BUCKET/PATH` as (bucket, path without trailing slash).
pub fn parse_gs_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("gs://")?;
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, path.trim_end_matches('/')))
}

async fn download(storage: &Storage, bucket: &str, name: &str, dest: &Path) -> ProviderResult<u64> {
    use tokio::io::AsyncWriteExt;
    let what = format!("downloading gs://{bucket}/{name}");
    let mut reader = storage
        .read_object(format!("projects/_/buckets/{bucket}"), name)
        .send()
        .await
        .map_err(|e| error::failure(&what, &e))?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| other(format!("{what}: {}: {e}", parent.display())))?;
    }
    let mut out = tokio::fs::File::create(dest)
        .await
        .map_err(|e| other(format!("{what}: {}: {e}", dest.display())))?;
    let mut n = 0u64;
    while let Some(chunk) = reader.next().await {
        let chunk = chunk.map_err(|e| error::failure(&what, &e))?;
        n += chunk.len() as u64;
        out.write_all(&chunk)
            .await
            .map_err(|e| other(format!("{what}: {}: {e}", dest.display())))?;
    }
    out.flush()
        .await
        .map_err(|e| other(format!("{what}: {}: {e}", dest.display())))?;
    Ok(n)
}

/// Fetches a model directory that modelport uploaded (`gs://BUCKET/PREFIX/NAME/DIGEST`)
/// into `dest`: the manifest first, then every file it lists. The server verifies
/// each file's sha256 against the manifest before it becomes ready.
pub async fn download_model_dir(storage: &Storage, uri: &str, dest: &Path) -> ProviderResult<()> {
    let (bucket, dir) = parse_gs_uri(uri).ok_or_else(|| ProviderError::InvalidInput {
        message: format!("{uri:?} is not a gs://BUCKET/PATH URI"),
        hint: None,
    })?;
    let object = |rel: &str| {
        if dir.is_empty() {
            rel.to_string()
        } else {
            format!("{dir}/{rel}")
        }
    };
    download(
        storage,
        bucket,
        &object(modelport_package::MANIFEST_NAME),
        &dest.join(modelport_package::MANIFEST_NAME),
    )
    .await
    .map_err(|e| match e {
        ProviderError::Other { message, .. } => ProviderError::Other {
            message,
            hint: Some(format!(
                "AIP_STORAGE_URI must be a directory that `modelport deploy` uploaded: it holds {}",
                modelport_package::MANIFEST_NAME
            )),
        },
        e => e,
    })?;
    let manifest =
        modelport_package::read_dir_manifest(dest).map_err(|e| other(format!("{uri}: {e}")))?;
    for f in &manifest.files {
        download(storage, bucket, &object(&f.path), &dest.join(&f.path)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_encoded_as_gcs_reports_it() {
        // crc32c("hello world") = 0xc99465aa; GCS reports base64 of its big-endian bytes.
        assert_eq!(crc32c::crc32c(b"hello world"), 0xc994_65aa);
        assert_eq!(base64_be(0xc994_65aa), "yZRlqg==");
        assert_eq!(base64_be(0), "AAAAAA==");
    }

    #[test]
    fn gs_uris_split_into_bucket_and_path() {
        assert_eq!(parse_gs_uri("gs://b/p/q/"), Some(("b", "p/q")));
        assert_eq!(parse_gs_uri("gs://b"), Some(("b", "")));
        assert_eq!(parse_gs_uri("s3://b/p"), None);
        assert_eq!(parse_gs_uri("gs:///p"), None);
    }
}
