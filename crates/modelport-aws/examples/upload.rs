//! Uploads one file to S3 through `upload::upload_artifact`, the way `deploy` does,
//! for bench/run's upload row; or a package directory (`modelport package --layout
//! dir`), file by file under a key prefix ending in `/`, for the large-model row.
//!
//! `cargo run -p modelport-aws --example upload -- FILE s3://BUCKET/KEY --endpoint-url URL [--sha256 HEX]`
//! `cargo run -p modelport-aws --example upload -- DIR s3://BUCKET/PREFIX/ --endpoint-url URL`
//!
//! Credentials and region come from the default chain (`AWS_ACCESS_KEY_ID`,
//! `AWS_REGION`, ...). The upload skips an object that already holds the file's
//! sha256, so it needs the digest: `--sha256` passes the one `modelport package`
//! printed (it is computed while the archive is written, and `deploy` hands it to the
//! upload the same way); without it, the file is hashed first. The one JSON line
//! printed at the end says how long that took and how many bytes went over the
//! network.

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use modelport_aws::builder::{ClientSettings, connect};
use modelport_aws::upload::{UploadTarget, Uploaded, upload_artifact};
use modelport_core::provider::{ArtifactRef, Silent};
use sha2::{Digest, Sha256};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, url, endpoint, known) = match args.as_slice() {
        [file, url, flag, endpoint] if flag == "--endpoint-url" => (file, url, endpoint, None),
        [file, url, flag, endpoint, sha, hex] if flag == "--endpoint-url" && sha == "--sha256" => {
            (file, url, endpoint, Some(hex))
        }
        _ => {
            return Err(
                "usage: upload FILE s3://BUCKET/KEY --endpoint-url URL [--sha256 HEX]".into(),
            );
        }
    };
    let (bucket, key) = url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or("the destination must look like s3://BUCKET/KEY")?;

    let start = Instant::now();
    if std::path::Path::new(file).is_dir() {
        // The manifest's sha256 is the package's digest, and its files' sizes its size.
        let manifest = modelport_package::read_dir_manifest(std::path::Path::new(file))?;
        let json =
            std::fs::read(std::path::Path::new(file).join(modelport_package::MANIFEST_NAME))?;
        let size = manifest.files.iter().map(|f| f.size).sum::<u64>() + json.len() as u64;
        let digest = format!("sha256:{}", modelport_package::sha256_bytes(&json));
        let artifact = ArtifactRef {
            path: PathBuf::from(file),
            digest: digest.clone(),
            model_digest: digest,
            size,
            layout: modelport_core::spec::ArtifactLayout::Dir,
            signature: None,
        };
        return send(endpoint, bucket, key, artifact, start, 0.0).await;
    }
    if let Some(hex) = known {
        let artifact = ArtifactRef {
            path: PathBuf::from(file),
            digest: format!("sha256:{hex}"),
            model_digest: format!("sha256:{hex}"),
            size: std::fs::metadata(file)?.len(),
            layout: modelport_core::spec::ArtifactLayout::Archive,
            signature: None,
        };
        return send(endpoint, bucket, key, artifact, start, 0.0).await;
    }
    let mut hasher = Sha256::new();
    let mut reader = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let digest = format!("sha256:{:x}", hasher.finalize());
    let hash_seconds = start.elapsed().as_secs_f64();
    let artifact = ArtifactRef {
        path: PathBuf::from(file),
        digest: digest.clone(),
        model_digest: digest,
        size,
        layout: modelport_core::spec::ArtifactLayout::Archive,
        signature: None,
    };
    send(endpoint, bucket, key, artifact, start, hash_seconds).await
}

async fn send(
    endpoint: &str,
    bucket: &str,
    key: &str,
    artifact: ArtifactRef,
    start: Instant,
    hash_seconds: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let size = artifact.size;
    let settings = ClientSettings {
        region: None,
        profile: None,
        endpoint_url: Some(endpoint.to_string()),
    };
    let clients = connect(&settings, None).await?;
    let target = UploadTarget {
        bucket,
        key,
        kms_key_id: None,
        earlier_uploads: &[],
    };
    let upload_start = Instant::now();
    let uploaded =
        upload_artifact(&clients.s3, &target, &artifact, &Silent, &mut |_| Ok(())).await?;
    let parts = match uploaded {
        Uploaded::AlreadyPresent => 0,
        Uploaded::Single { .. } => 1,
        Uploaded::Multipart { parts, .. } => parts,
    };
    let bytes_sent = uploaded.bytes_sent();
    let upload_seconds = upload_start.elapsed().as_secs_f64();
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"bytes_sent\": {bytes_sent}, \"parts\": {parts}, \"size\": {size}, \"hash_seconds\": {hash_seconds:.3}, \"upload_seconds\": {upload_seconds:.3}, \"seconds\": {seconds:.3}}}"
    );
    Ok(())
}
