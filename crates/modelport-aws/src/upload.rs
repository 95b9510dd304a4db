//! The artifact's way into S3: content-addressed, skipped when already there with the
//! encryption asked for, otherwise streamed from disk in concurrent multipart parts
//! with sha256 checksums, and aborted on failure so no half-upload is left to pay for.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use modelport_core::provider::{ArtifactRef, ProviderError, Reporter, Unit};
use modelport_core::spec::ArtifactLayout;

use crate::error::AwsFailure;
use crate::names;

/// The metadata key that records the archive's sha256 on the object.
pub const SHA256_METADATA: &str = "modelport-sha256";

/// Objects up to this size go up in one PUT.
pub const SINGLE_PUT_MAX: u64 = 16 * 1024 * 1024;

/// The smallest part; S3 allows at most 10,000 parts, so large files get larger ones.
pub const MIN_PART_SIZE: u64 = 16 * 1024 * 1024;

/// Parts in flight at once. Each streams from the file, so memory does not grow
/// with it. awscli sends 10; against moto on 2 cores, bench/run measured 8 in
/// flight at 0.74x awscli's speed and 4 at 1.17x, so 4 it stays until a
/// measurement against real S3 says otherwise.
pub const CONCURRENCY: usize = 4;

/// How much of the file each read takes while a part streams: one aws-chunked
/// chunk per read, so the server parses 16 chunks of a 16 MiB part, not 256.
const READ_BUFFER: usize = 1 << 20;

/// The checksum S3 verifies on each part: CRC32, the SDKs' default. The object's
/// identity is its sha256 in [`SHA256_METADATA`]; S3 never checks a multipart
/// object against one sha256 anyway (its sha256 checksum of a multipart object is
/// of the parts' checksums), and CRC32 costs both sides a fraction of sha256's time.
/// A single PUT keeps sha256, which S3 checks against the whole object.
const PART_CHECKSUM: ChecksumAlgorithm = ChecksumAlgorithm::Crc32;

/// The metadata key that records the encryption modelport asked for: `aws:kms KEY`
/// or `default` (the bucket's). S3 reports an alias's key, never the alias, so the
/// request is recorded to compare with the next one.
pub const ENCRYPTION_METADATA: &str = "modelport-encryption";

/// A multipart upload under the key that no run of this deployment recorded is
/// aborted only once it is older than this: a younger one may be a concurrent
/// deploy's (from another machine) that is still sending parts.
pub const FOREIGN_UPLOAD_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Where an artifact goes and how.
#[derive(Debug, Clone)]
pub struct UploadTarget<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub kms_key_id: Option<&'a str>,
    /// Multipart uploads an earlier run of this deployment started and recorded (it
    /// was stopped before completing or aborting them).
    pub earlier_uploads: &'a [String],
}

impl UploadTarget<'_> {
    fn encryption(&self) -> String {
        match self.kms_key_id {
            Some(key) => format!("aws:kms {key}"),
            None => "default".into(),
        }
    }
}

/// Told the multipart upload in flight: `Some(id)` once it is created (persist it, so
/// a re-run after a crash can abort it), `None` when none is in flight any more.
pub type UploadRecorder<'r> = dyn FnMut(Option<&str>) -> Result<(), ProviderError> + Send + 'r;

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    /// The object was already there with the same sha256: nothing was sent.
    AlreadyPresent,
    /// Sent in one PUT.
    Single { bytes: u64 },
    /// Sent in parts.
    Multipart { bytes: u64, parts: usize },
}

impl Uploaded {
    /// Bytes sent over the network.
    pub fn bytes_sent(self) -> u64 {
        match self {
            Uploaded::AlreadyPresent => 0,
            Uploaded::Single { bytes } | Uploaded::Multipart { bytes, .. } => bytes,
        }
    }
}

/// Checks that the bucket lives in `region`: SageMaker cannot read a model from
/// another region.
pub async fn check_bucket_region(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    region: &str,
) -> Result<(), ProviderError> {
    let out = s3
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| {
            let f = AwsFailure::from_sdk("GetBucketLocation", &e);
            if f.code == "NoSuchBucket" || f.status == Some(404) {
                ProviderError::InvalidInput {
                    message: format!("provider.aws.bucket: bucket `{bucket}` does not exist"),
                    hint: Some(format!(
                        "create it in {region} (`aws s3 mb s3://{bucket} --region {region}`) or name another bucket"
                    )),
                }
            } else {
                f.into()
            }
        })?;
    // No constraint means us-east-1; `EU` is the legacy name of eu-west-1.
    let location = match out.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1",
        Some("EU") => "eu-west-1",
        Some(other) => other,
    };
    if location != region {
        return Err(ProviderError::InvalidInput {
            message: format!(
                "provider.aws.bucket: bucket `{bucket}` is in {location}, but the endpoint would be in {region}; SageMaker cannot read a model from another region"
            ),
            hint: Some(format!(
                "set `provider.aws.region: {location}`, or use a bucket in {region}"
            )),
        });
    }
    Ok(())
}

/// One file to put under a key.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    pub path: &'a Path,
    /// sha256 of its bytes, 64 hex digits.
    pub sha256: &'a str,
    pub size: u64,
    pub content_type: &'a str,
}

/// Uploads `artifact` to `target` unless an object with its sha256 and the requested
/// encryption is already there. `record` is told the multipart upload in flight.
/// A directory artifact goes up file by file under `target.key` (a prefix ending
/// in `/`), see [`upload_dir`].
pub async fn upload_artifact(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    artifact: &ArtifactRef,
    reporter: &dyn Reporter,
    record: &mut UploadRecorder<'_>,
) -> Result<Uploaded, ProviderError> {
    if artifact.layout == ArtifactLayout::Dir {
        return upload_dir(s3, target, artifact, reporter, record).await;
    }
    let object = Object {
        path: &artifact.path,
        sha256: names::hex(&artifact.digest),
        size: artifact.size,
        content_type: "application/gzip",
    };
    upload_object(s3, target, &object, reporter, record).await
}

/// The files of a directory artifact, as SageMaker lays them out under
/// `/opt/ml/model` (their keys were checked by the plan, `names::check_model_files`):
/// every file of its manifest and `modelport.json`, each under
/// `target.key` + its path. Each is skipped when already there (so a re-run after
/// a crash sends only what is missing). A multipart upload in flight is recorded
/// as `UPLOAD_ID KEY`.
pub async fn upload_dir(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    artifact: &ArtifactRef,
    reporter: &dyn Reporter,
    record: &mut UploadRecorder<'_>,
) -> Result<Uploaded, ProviderError> {
    let manifest = modelport_package::read_dir_manifest(&artifact.path).map_err(|e| {
        ProviderError::other(format!("cannot read {}: {e}", artifact.path.display()))
    })?;
    let manifest_sha = names::hex(&artifact.digest).to_string();
    let mut files: Vec<(String, &str, u64)> = manifest
        .files
        .iter()
        .map(|f| (f.path.clone(), f.sha256.as_str(), f.size))
        .collect();
    let manifest_len = std::fs::metadata(artifact.path.join(modelport_package::MANIFEST_NAME))
        .map_err(|e| read_error(&artifact.path, e))?
        .len();
    files.push((
        modelport_package::MANIFEST_NAME.to_string(),
        &manifest_sha,
        manifest_len,
    ));
    let (mut bytes, mut parts, mut sent_any) = (0, 0, false);
    for (rel, sha256, size) in &files {
        let key = format!("{}{rel}", target.key);
        let earlier: Vec<String> = target
            .earlier_uploads
            .iter()
            .filter_map(|e| e.split_once(' ').filter(|(_, k)| *k == key))
            .map(|(id, _)| id.to_string())
            .collect();
        let file = UploadTarget {
            bucket: target.bucket,
            key: &key,
            kms_key_id: target.kms_key_id,
            earlier_uploads: &earlier,
        };
        let path = artifact.path.join(rel);
        let object = Object {
            path: &path,
            sha256,
            size: *size,
            content_type: "application/octet-stream",
        };
        let mut keyed = |id: Option<&str>| {
            let entry = id.map(|id| format!("{id} {key}"));
            record(entry.as_deref())
        };
        match upload_object(s3, &file, &object, reporter, &mut keyed).await? {
            Uploaded::AlreadyPresent => {}
            Uploaded::Single { bytes: b } => (bytes, sent_any) = (bytes + b, true),
            Uploaded::Multipart { bytes: b, parts: n } => {
                (bytes, parts, sent_any) = (bytes + b, parts + n, true)
            }
        }
    }
    Ok(match (sent_any, parts) {
        (false, _) => Uploaded::AlreadyPresent,
        (true, 0) => Uploaded::Single { bytes },
        (true, parts) => Uploaded::Multipart { bytes, parts },
    })
}

/// Deletes every object under `prefix` (a directory artifact).
pub async fn delete_prefix(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<usize, ProviderError> {
    let mut deleted = 0;
    let mut token = None;
    loop {
        let listed = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("ListObjectsV2", &e))?;
        for key in listed.contents().iter().filter_map(|o| o.key()) {
            s3.delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| AwsFailure::from_sdk("DeleteObject", &e))?;
            deleted += 1;
        }
        token = listed.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return Ok(deleted);
        }
    }
}

/// Uploads one file to `target` unless an object with its sha256 and the requested
/// encryption is already there.
async fn upload_object(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    object: &Object<'_>,
    reporter: &dyn Reporter,
    record: &mut UploadRecorder<'_>,
) -> Result<Uploaded, ProviderError> {
    let sha = object.sha256;
    match presence(s3, target, sha, object.size).await? {
        Presence::Same => {
            reporter.on_progress(&format!(
                "s3://{}/{} is already there (same sha256 and encryption): nothing to upload",
                target.bucket, target.key
            ));
            if !target.earlier_uploads.is_empty() {
                // A stopped run's upload that is no longer needed.
                abort_recorded(s3, target.bucket, target.key, target.earlier_uploads).await;
                record(None)?;
            }
            return Ok(Uploaded::AlreadyPresent);
        }
        Presence::OtherEncryption(found) => reporter.on_progress(&format!(
            "s3://{}/{} holds the artifact with encryption {found}, but {} is asked for: uploading it again",
            target.bucket,
            target.key,
            target.encryption()
        )),
        Presence::Absent => {}
    }
    abort_stale_uploads(s3, target, record).await?;
    let what = format!("uploading to s3://{}", target.bucket);
    reporter.on_amount(&what, 0, object.size, Unit::Bytes);
    if object.size <= SINGLE_PUT_MAX {
        let body = ByteStream::from_path(object.path)
            .await
            .map_err(|e| read_error(object.path, e))?;
        let mut put = s3
            .put_object()
            .bucket(target.bucket)
            .key(target.key)
            .body(body)
            .content_type(object.content_type)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .metadata(SHA256_METADATA, sha)
            .metadata(ENCRYPTION_METADATA, target.encryption());
        if let Some(kms) = target.kms_key_id {
            put = put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        put.customize()
            .config_override(carrying(s3, object.size))
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("PutObject", &e))?;
        reporter.on_amount(&what, object.size, object.size, Unit::Bytes);
        return Ok(Uploaded::Single { bytes: object.size });
    }
    multipart(s3, target, object, reporter, record).await
}

/// What is under the key already.
#[derive(Debug, PartialEq)]
enum Presence {
    /// The artifact, encrypted as asked.
    Same,
    /// The artifact, encrypted otherwise (or by an upload that did not record how).
    OtherEncryption(String),
    /// Nothing, or other bytes.
    Absent,
}

async fn presence(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    sha: &str,
    size: u64,
) -> Result<Presence, ProviderError> {
    let head = match s3
        .head_object()
        .bucket(target.bucket)
        .key(target.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(head) => head,
        Err(e) => {
            let f = AwsFailure::from_sdk("HeadObject", &e);
            return if f.is_not_found() {
                Ok(Presence::Absent)
            } else {
                Err(f.into())
            };
        }
    };
    let metadata = |key: &str| head.metadata().and_then(|m| m.get(key)).map(String::as_str);
    if metadata(SHA256_METADATA) != Some(sha) || head.content_length() != Some(size as i64) {
        return Ok(Presence::Absent);
    }
    Ok(encryption_matches(
        target.kms_key_id,
        metadata(ENCRYPTION_METADATA),
        head.server_side_encryption().map(|e| e.as_str()),
        head.ssekms_key_id(),
    ))
}

/// Whether an object's encryption is the one asked for. The recorded request must be
/// the same; for a key id or key ARN, the key S3 reports must be it too (an alias
/// cannot be checked against the key S3 reports without KMS, so the record decides).
fn encryption_matches(
    wanted: Option<&str>,
    recorded: Option<&str>,
    sse: Option<&str>,
    reported_key: Option<&str>,
) -> Presence {
    let wanted_text = match wanted {
        Some(key) => format!("aws:kms {key}"),
        None => "default".into(),
    };
    let found = || match (sse, reported_key) {
        (Some(sse), Some(key)) => format!("{sse} {key}"),
        (Some(sse), None) => sse.to_string(),
        (None, _) => "unrecorded".to_string(),
    };
    if recorded != Some(wanted_text.as_str()) {
        return Presence::OtherEncryption(recorded.map(str::to_string).unwrap_or_else(found));
    }
    if let Some(key) = wanted {
        let same_key = match reported_key {
            _ if key.starts_with("alias/") || key.contains(":alias/") => true,
            Some(reported) => reported == key || reported.ends_with(&format!(":key/{key}")),
            None => false,
        };
        if sse != Some("aws:kms") || !same_key {
            return Presence::OtherEncryption(found());
        }
    }
    Presence::Same
}

/// Why a multipart upload under the key is aborted, or `None` to leave it.
fn abort_reason(
    id: &str,
    initiated: Option<SystemTime>,
    now: SystemTime,
    earlier: &[String],
) -> Option<&'static str> {
    if earlier.iter().any(|e| e == id) {
        return Some("an earlier run of this deployment started it and was stopped");
    }
    match initiated.map(|t| now.duration_since(t)) {
        Some(Ok(age)) if age >= FOREIGN_UPLOAD_MAX_AGE => Some("it is more than a day old"),
        _ => None,
    }
}

/// Aborts the multipart uploads under the key that are abandoned: the ones an earlier,
/// stopped run of this deployment recorded, and any older than a day. They cost storage
/// and are never completed. A younger upload nobody here recorded is left alone: it may
/// be a concurrent deploy's, still sending parts.
async fn abort_stale_uploads(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    record: &mut UploadRecorder<'_>,
) -> Result<(), ProviderError> {
    let listed = s3
        .list_multipart_uploads()
        .bucket(target.bucket)
        .prefix(target.key)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("ListMultipartUploads", &e))?;
    let now = SystemTime::now();
    for upload in listed.uploads() {
        let Some(id) = upload
            .upload_id()
            .filter(|_| upload.key() == Some(target.key))
        else {
            continue;
        };
        let initiated = upload
            .initiated()
            .and_then(|t| SystemTime::try_from(*t).ok());
        match abort_reason(id, initiated, now, target.earlier_uploads) {
            Some(reason) => {
                tracing::debug!(upload_id = id, "aborting a multipart upload: {reason}");
                abort(s3, target, id).await;
            }
            None => tracing::info!(
                upload_id = id,
                "leaving a multipart upload under s3://{}/{} alone: it is less than a day old and no run of this deployment recorded it (a concurrent deploy?)",
                target.bucket,
                target.key
            ),
        }
    }
    if !target.earlier_uploads.is_empty() {
        record(None)?;
    }
    Ok(())
}

/// Aborts the multipart uploads a stopped run of a revision recorded (a rollback or
/// `destroy` of that revision); ones already completed or aborted are fine.
pub async fn abort_recorded(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, uploads: &[String]) {
    let target = UploadTarget {
        bucket,
        key,
        kms_key_id: None,
        earlier_uploads: uploads,
    };
    for entry in uploads {
        // `UPLOAD_ID KEY` for a file of a directory artifact, else the id alone.
        match entry.split_once(' ') {
            Some((id, key)) => {
                let file = UploadTarget {
                    key,
                    ..target.clone()
                };
                abort(s3, &file, id).await;
            }
            None => abort(s3, &target, entry).await,
        }
    }
}

async fn abort(s3: &aws_sdk_s3::Client, target: &UploadTarget<'_>, upload_id: &str) {
    if let Err(e) = s3
        .abort_multipart_upload()
        .bucket(target.bucket)
        .key(target.key)
        .upload_id(upload_id)
        .send()
        .await
    {
        let f = AwsFailure::from_sdk("AbortMultipartUpload", &e);
        if f.code != "NoSuchUpload" {
            tracing::warn!(
                "could not abort multipart upload {upload_id}: {}",
                f.message
            );
        }
    }
}

/// A configuration override giving an attempt that carries `bytes` the time to
/// send them: the client's attempt timeout plus a second per 64 KiB.
fn carrying(s3: &aws_sdk_s3::Client, bytes: u64) -> aws_sdk_s3::config::Builder {
    let base = crate::builder::attempt_timeout(s3.config().timeout_config());
    aws_sdk_s3::config::Builder::default().timeout_config(crate::builder::timeouts(
        modelport_core::env::transfer_timeout(base, bytes),
    ))
}

/// The part size for a file: at least [`MIN_PART_SIZE`], at most 10,000 parts.
pub fn part_size(size: u64) -> u64 {
    MIN_PART_SIZE.max(size.div_ceil(10_000))
}

async fn multipart(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    object: &Object<'_>,
    reporter: &dyn Reporter,
    record: &mut UploadRecorder<'_>,
) -> Result<Uploaded, ProviderError> {
    let mut create = s3
        .create_multipart_upload()
        .bucket(target.bucket)
        .key(target.key)
        .content_type(object.content_type)
        .checksum_algorithm(PART_CHECKSUM)
        .metadata(SHA256_METADATA, object.sha256)
        .metadata(ENCRYPTION_METADATA, target.encryption());
    if let Some(kms) = target.kms_key_id {
        create = create
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(kms);
    }
    let created = create
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("CreateMultipartUpload", &e))?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| ProviderError::other("S3 returned no upload id"))?
        .to_string();
    if let Err(e) = record(Some(&upload_id)) {
        abort(s3, target, &upload_id).await;
        return Err(e);
    }
    let result = send_parts(s3, target, object, &upload_id, reporter).await;
    // Completed or aborted: nothing of this upload is left in flight either way.
    if result.is_err() {
        abort(s3, target, &upload_id).await;
    }
    record(None)?;
    result
}

async fn send_parts(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    object: &Object<'_>,
    upload_id: &String,
    reporter: &dyn Reporter,
) -> Result<Uploaded, ProviderError> {
    let size = object.size;
    let part = part_size(size);
    let count = size.div_ceil(part);
    let sent = AtomicU64::new(0);
    let result: Result<Vec<CompletedPart>, ProviderError> = stream::iter(0..count)
        .map(|i| {
            let sent = &sent;
            async move {
                let offset = i * part;
                let length = part.min(size - offset);
                let body = ByteStream::read_from()
                    .path(object.path)
                    .buffer_size(READ_BUFFER)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(|e| read_error(object.path, e))?;
                let number = i as i32 + 1;
                let out = s3
                    .upload_part()
                    .bucket(target.bucket)
                    .key(target.key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(length as i64)
                    .checksum_algorithm(PART_CHECKSUM)
                    .body(body)
                    .customize()
                    .config_override(carrying(s3, length))
                    .send()
                    .await
                    .map_err(|e| AwsFailure::from_sdk("UploadPart", &e))?;
                let done = sent.fetch_add(length, Ordering::Relaxed) + length;
                reporter.on_amount(
                    &format!("uploading to s3://{}", target.bucket),
                    done,
                    size,
                    Unit::Bytes,
                );
                Ok::<_, ProviderError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                        .build(),
                )
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await;
    let mut parts = result?;
    parts.sort_by_key(|p| p.part_number());
    let parts_len = parts.len();
    if let Err(e) = s3
        .complete_multipart_upload()
        .bucket(target.bucket)
        .key(target.key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
    {
        return Err(AwsFailure::from_sdk("CompleteMultipartUpload", &e).into());
    }
    Ok(Uploaded::Multipart {
        bytes: size,
        parts: parts_len,
    })
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::other(format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_s3_limits() {
        assert_eq!(part_size(1), MIN_PART_SIZE);
        let huge: u64 = 5 * 1024 * 1024 * 1024 * 1024; // 5 TiB, the largest S3 object.
        assert!(huge.div_ceil(part_size(huge)) <= 10_000);
    }

    /// Issue 13 #6: an object is reused only with the encryption asked for.
    #[test]
    fn reuse_needs_the_requested_encryption() {
        use Presence::*;
        let arn = "arn:aws:kms:us-east-1:123:key/abcd";
        // As asked, by record and by what S3 reports.
        assert_eq!(encryption_matches(None, Some("default"), None, None), Same);
        assert_eq!(
            encryption_matches(
                Some("abcd"),
                Some("aws:kms abcd"),
                Some("aws:kms"),
                Some(arn)
            ),
            Same
        );
        assert_eq!(
            encryption_matches(
                Some(arn),
                Some(&format!("aws:kms {arn}")),
                Some("aws:kms"),
                Some(arn)
            ),
            Same
        );
        assert_eq!(
            encryption_matches(
                Some("alias/models"),
                Some("aws:kms alias/models"),
                Some("aws:kms"),
                Some(arn)
            ),
            Same
        );
        // Another key, no key, or no record: uploaded again.
        assert_eq!(
            encryption_matches(
                Some("alias/b"),
                Some("aws:kms alias/a"),
                Some("aws:kms"),
                Some(arn)
            ),
            OtherEncryption("aws:kms alias/a".into())
        );
        assert_eq!(
            encryption_matches(Some("alias/a"), Some("default"), Some("AES256"), None),
            OtherEncryption("default".into())
        );
        assert_eq!(
            encryption_matches(None, Some("aws:kms alias/a"), Some("aws:kms"), Some(arn)),
            OtherEncryption("aws:kms alias/a".into())
        );
        assert_eq!(
            encryption_matches(Some("abcd"), None, Some("aws:kms"), Some(arn)),
            OtherEncryption(format!("aws:kms {arn}"))
        );
        // The record says the key, but the object was re-encrypted with another.
        assert_eq!(
            encryption_matches(
                Some("abcd"),
                Some("aws:kms abcd"),
                Some("aws:kms"),
                Some("arn:aws:kms:us-east-1:123:key/ef01")
            ),
            OtherEncryption("aws:kms arn:aws:kms:us-east-1:123:key/ef01".into())
        );
    }

    /// Issue 13 #6: a concurrent deploy's young upload is left alone.
    #[test]
    fn only_abandoned_uploads_are_aborted() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let earlier = vec!["mine".to_string()];
        assert!(abort_reason("mine", Some(now - hour), now, &earlier).is_some());
        assert!(abort_reason("other", Some(now - hour), now, &earlier).is_none());
        assert!(abort_reason("other", None, now, &earlier).is_none());
        assert!(abort_reason("other", Some(now - 25 * hour), now, &earlier).is_some());
        assert!(abort_reason("other", Some(now + hour), now, &[]).is_none());
    }
}
