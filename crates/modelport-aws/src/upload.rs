//! The artifact's way into S3: content-addressed, skipped when already there,
//! otherwise streamed from disk in concurrent multipart parts with sha256
//! checksums, and aborted on failure so no half-upload is left to pay for.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use modelport_core::provider::{ArtifactRef, ProviderError, Reporter};

use crate::error::AwsFailure;
use crate::names;

/// The metadata key that records the archive's sha256 on the object.
pub const SHA256_METADATA: &str = "modelport-sha256";

/// Objects up to this size go up in one PUT.
pub const SINGLE_PUT_MAX: u64 = 16 * 1024 * 1024;

/// The smallest part; S3 allows at most 10,000 parts, so large files get larger ones.
pub const MIN_PART_SIZE: u64 = 16 * 1024 * 1024;

/// Parts in flight at once.
pub const CONCURRENCY: usize = 4;

/// Where an artifact goes and how.
#[derive(Debug, Clone)]
pub struct UploadTarget<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub kms_key_id: Option<&'a str>,
}

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

/// Uploads `artifact` to `target` unless an object with its sha256 is already there.
pub async fn upload_artifact(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    artifact: &ArtifactRef,
    reporter: &dyn Reporter,
) -> Result<Uploaded, ProviderError> {
    let sha = names::hex(&artifact.digest);
    if is_present(s3, target, sha, artifact.size).await? {
        reporter.on_progress(&format!(
            "s3://{}/{} is already there (same sha256): nothing to upload",
            target.bucket, target.key
        ));
        return Ok(Uploaded::AlreadyPresent);
    }
    abort_stale_uploads(s3, target).await?;
    if artifact.size <= SINGLE_PUT_MAX {
        let body = ByteStream::from_path(&artifact.path)
            .await
            .map_err(|e| read_error(artifact, e))?;
        let mut put = s3
            .put_object()
            .bucket(target.bucket)
            .key(target.key)
            .body(body)
            .content_type("application/gzip")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .metadata(SHA256_METADATA, sha);
        if let Some(kms) = target.kms_key_id {
            put = put
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        put.send()
            .await
            .map_err(|e| AwsFailure::from_sdk("PutObject", &e))?;
        reporter.on_progress(&format!("uploaded {}", mb(artifact.size)));
        return Ok(Uploaded::Single {
            bytes: artifact.size,
        });
    }
    multipart(s3, target, artifact, sha, reporter).await
}

async fn is_present(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    sha: &str,
    size: u64,
) -> Result<bool, ProviderError> {
    match s3
        .head_object()
        .bucket(target.bucket)
        .key(target.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(head) => Ok(head
            .metadata()
            .and_then(|m| m.get(SHA256_METADATA))
            .is_some_and(|v| v == sha)
            && head.content_length() == Some(size as i64)),
        Err(e) => {
            let f = AwsFailure::from_sdk("HeadObject", &e);
            if f.is_not_found() {
                Ok(false)
            } else {
                Err(f.into())
            }
        }
    }
}

/// Aborts multipart uploads a killed run left under the key: they cost storage
/// and are never completed.
async fn abort_stale_uploads(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
) -> Result<(), ProviderError> {
    let listed = s3
        .list_multipart_uploads()
        .bucket(target.bucket)
        .prefix(target.key)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("ListMultipartUploads", &e))?;
    for upload in listed.uploads() {
        if upload.key() != Some(target.key) {
            continue;
        }
        if let Some(id) = upload.upload_id() {
            tracing::debug!(upload_id = id, "aborting a stale multipart upload");
            abort(s3, target, id).await;
        }
    }
    Ok(())
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
        tracing::warn!(
            "could not abort multipart upload {upload_id}: {}",
            AwsFailure::from_sdk("AbortMultipartUpload", &e).message
        );
    }
}

/// The part size for a file: at least [`MIN_PART_SIZE`], at most 10,000 parts.
pub fn part_size(size: u64) -> u64 {
    MIN_PART_SIZE.max(size.div_ceil(10_000))
}

async fn multipart(
    s3: &aws_sdk_s3::Client,
    target: &UploadTarget<'_>,
    artifact: &ArtifactRef,
    sha: &str,
    reporter: &dyn Reporter,
) -> Result<Uploaded, ProviderError> {
    let mut create = s3
        .create_multipart_upload()
        .bucket(target.bucket)
        .key(target.key)
        .content_type("application/gzip")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .metadata(SHA256_METADATA, sha);
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

    let size = artifact.size;
    let part = part_size(size);
    let count = size.div_ceil(part);
    let sent = AtomicU64::new(0);
    let result: Result<Vec<CompletedPart>, ProviderError> = stream::iter(0..count)
        .map(|i| {
            let (sent, upload_id) = (&sent, &upload_id);
            async move {
                let offset = i * part;
                let length = part.min(size - offset);
                let body = ByteStream::read_from()
                    .path(&artifact.path)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(|e| read_error(artifact, e))?;
                let number = i as i32 + 1;
                let out = s3
                    .upload_part()
                    .bucket(target.bucket)
                    .key(target.key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(length as i64)
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| AwsFailure::from_sdk("UploadPart", &e))?;
                let done = sent.fetch_add(length, Ordering::Relaxed) + length;
                reporter.on_progress(&format!("uploaded {} of {}", mb(done), mb(size)));
                Ok::<_, ProviderError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .set_checksum_sha256(out.checksum_sha256().map(str::to_string))
                        .build(),
                )
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await;
    let mut parts = match result {
        Ok(parts) => parts,
        Err(e) => {
            abort(s3, target, &upload_id).await;
            return Err(e);
        }
    };
    parts.sort_by_key(|p| p.part_number());
    let parts_len = parts.len();
    if let Err(e) = s3
        .complete_multipart_upload()
        .bucket(target.bucket)
        .key(target.key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
    {
        abort(s3, target, &upload_id).await;
        return Err(AwsFailure::from_sdk("CompleteMultipartUpload", &e).into());
    }
    Ok(Uploaded::Multipart {
        bytes: size,
        parts: parts_len,
    })
}

fn read_error(artifact: &ArtifactRef, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::other(format!("cannot read {}: {e}", artifact.path.display()))
}

fn mb(bytes: u64) -> String {
    human(bytes)
}

/// `12.3 MB`, `4.5 kB`: sizes in decimal units, as S3 and the AWS console show them.
pub fn human(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
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
}
