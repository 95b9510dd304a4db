//! The storage half of the GCP provider against fake-gcs-server, through the
//! official storage crate: a resumable upload of a file larger than the crate's
//! 16 MiB threshold, checksums as the JSON API reports them, a model directory
//! fetched back the way `modelport serve` fetches it, listing and deletion.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use modelport_gcp::storage::{self, ObjectsApi};
use modelport_testkit::FakeGcs;

async fn clients(gcs: &FakeGcs) -> (google_cloud_storage::client::Storage, ObjectsApi) {
    let storage = modelport_gcp::client::storage(Some(&gcs.url()))
        .await
        .unwrap();
    let api = ObjectsApi::new(
        Some(&gcs.url()),
        google_cloud_auth::credentials::anonymous::Builder::new().build(),
    )
    .unwrap();
    (storage, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_resumably_with_its_crc32c() {
    let gcs = FakeGcs::start().unwrap();
    gcs.create_bucket("models").unwrap();
    let (client, api) = clients(&gcs).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    // 20 MiB + a tail, not a multiple of the 256 KiB chunk size.
    let data: Vec<u8> = (0..20 * 1024 * 1024 + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let (crc, crc_b64) = storage::crc32c_file(&path).unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    storage::upload_object(
        &client,
        "models",
        "m/big.bin",
        &path,
        crc,
        None,
        sent.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        sent.load(std::sync::atomic::Ordering::Relaxed),
        data.len() as u64
    );
    let meta = api.meta("models", "m/big.bin").await.unwrap().unwrap();
    assert_eq!(meta.crc32c.as_deref(), Some(crc_b64.as_str()));
    assert!(api.meta("models", "m/none").await.unwrap().is_none());

    // Read back through the official client, as `modelport serve` reads.
    let mut reader = client
        .read_object("projects/_/buckets/models", "m/big.bin")
        .send()
        .await
        .unwrap();
    let mut back = Vec::new();
    while let Some(chunk) = reader.next().await {
        back.extend_from_slice(&chunk.unwrap());
    }
    assert!(back == data, "the object differs from the file");

    assert_eq!(
        api.list("models", "m/")
            .await
            .unwrap()
            .iter()
            .map(|o| o.name.clone())
            .collect::<Vec<_>>(),
        vec!["m/big.bin".to_string()]
    );
    assert!(api.delete("models", "m/big.bin").await.unwrap());
    assert!(!api.delete("models", "m/big.bin").await.unwrap());
    assert!(gcs.list_objects("models", "").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_an_error_with_a_hint() {
    let gcs = FakeGcs::start().unwrap();
    let (_, api) = clients(&gcs).await;
    let err = storage::check_bucket_region(&api, "nope", "us-central1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gs://nope"), "{err}");
    assert!(err.hint().unwrap().contains("buckets create"), "{err:?}");
}
