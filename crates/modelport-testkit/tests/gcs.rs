//! The fake-gcs-server launcher: starts from the test venv behind its proxy,
//! creates buckets, takes simple and resumable uploads shaped like the official
//! `google-cloud-storage` crate's (`Host` without the port), lists, serves the
//! bytes back, and stops by pid.

use modelport_testkit::FakeGcs;
use modelport_testkit::gcs::encode;
use serde_json::Value;

const BUCKET: &str = "models";
/// A resumable chunk: a multiple of 256 KiB, as GCS requires for all but the last.
const CHUNK: usize = 8 * 1024 * 1024;

fn start() -> FakeGcs {
    FakeGcs::start().expect("fake-gcs-server must be installed: run scripts/test")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Deterministic, incompressible-looking bytes (xorshift).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn json(resp: reqwest::Response) -> Value {
    let raw = resp.bytes().await.unwrap();
    serde_json::from_slice(&raw)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&raw)))
}

async fn download(http: &reqwest::Client, gcs: &FakeGcs, name: &str) -> Vec<u8> {
    let resp = http
        .get(format!(
            "{}/storage/v1/b/{BUCKET}/o/{}?alt=media",
            gcs.url(),
            encode(name)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "downloading {name}");
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_lists_downloads_and_stops() {
    let gcs = start();
    let pid = gcs.pid();
    gcs.create_bucket(BUCKET).unwrap();
    gcs.create_bucket(BUCKET)
        .expect("creating a bucket twice is fine");
    let http = client();

    // A simple media upload through the proxy.
    let small = bytes(1000, 7);
    let resp = http
        .post(format!(
            "{}/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={}",
            gcs.url(),
            encode("iris/model.onnx")
        ))
        .header("content-type", "application/octet-stream")
        .body(small.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let object = json(resp).await;
    assert_eq!(object["name"], "iris/model.onnx");
    assert_eq!(object["size"], "1000");

    // A resumable upload shaped like the official crate's: `Host` without the port.
    let big = bytes(17 * 1024 * 1024 + 12345, 11);
    let name = "big/weights.bin";
    let resp = http
        .post(format!(
            "{}/upload/storage/v1/b/{BUCKET}/o?uploadType=resumable&name={}",
            gcs.url(),
            encode(name)
        ))
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("x-upload-content-type", "application/octet-stream")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let location = resp
        .headers()
        .get("location")
        .expect("a resumable session has a Location")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        location.starts_with(&format!("{}/upload/", gcs.url())),
        "the session URL {location} must lead back through the proxy {}",
        gcs.url()
    );
    let total = big.len();
    let mut offset = 0;
    let mut chunks = 0;
    let mut finished: Option<Value> = None;
    while offset < total {
        let end = (offset + CHUNK).min(total);
        let last = end == total;
        let range = if last {
            format!("bytes {offset}-{}/{total}", end - 1)
        } else {
            format!("bytes {offset}-{}/*", end - 1)
        };
        let resp = http
            .put(&location)
            .header("host", "127.0.0.1")
            .header("content-range", &range)
            .body(big[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        chunks += 1;
        if last {
            assert!(
                resp.status().is_success(),
                "final chunk {range}: {}",
                resp.status()
            );
            finished = Some(json(resp).await);
        } else {
            assert_eq!(resp.status(), 308, "chunk {range}");
            let acked = resp
                .headers()
                .get("range")
                .map(|v| v.to_str().unwrap().to_string());
            assert_eq!(acked.as_deref(), Some(&*format!("bytes=0-{}", end - 1)));
        }
        offset = end;
    }
    assert!(chunks >= 3, "{chunks} chunks");
    let finished = finished.unwrap();
    assert_eq!(finished["name"], name);
    assert_eq!(finished["size"], total.to_string());

    // Listing, with and without a prefix.
    assert_eq!(
        gcs.list_objects(BUCKET, "").unwrap(),
        vec!["big/weights.bin".to_string(), "iris/model.onnx".to_string()]
    );
    assert_eq!(
        gcs.list_objects(BUCKET, "iris/").unwrap(),
        vec!["iris/model.onnx".to_string()]
    );
    assert!(gcs.list_objects(BUCKET, "nothing/").unwrap().is_empty());
    assert!(gcs.list_objects("no-such-bucket", "").is_err());

    // The bytes come back whole.
    assert_eq!(download(&http, &gcs, "iris/model.onnx").await, small);
    assert!(
        download(&http, &gcs, name).await == big,
        "the big object differs"
    );

    // Report (not assert) what a ranged read says about the whole object.
    let meta = json(
        http.get(format!(
            "{}/storage/v1/b/{BUCKET}/o/{}",
            gcs.url(),
            encode(name)
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    let resp = http
        .get(format!(
            "{}/storage/v1/b/{BUCKET}/o/{}?alt=media",
            gcs.url(),
            encode(name)
        ))
        .header("range", "bytes=0-0")
        .send()
        .await
        .unwrap();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap_or("<not text>").to_string())
    };
    let hash = header("x-goog-hash");
    let expected = format!(
        "crc32c={},md5={}",
        meta["crc32c"].as_str().unwrap_or("?"),
        meta["md5Hash"].as_str().unwrap_or("?")
    );
    eprintln!(
        "ranged read: status {}, content-range {:?}, x-goog-hash {hash:?} (full object: {expected}; {}), \
         x-goog-stored-content-length {:?}",
        resp.status(),
        header("content-range"),
        if hash.as_deref() == Some(&*expected) {
            "matches"
        } else {
            "DIFFERS"
        },
        header("x-goog-stored-content-length"),
    );
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &big[..1]);

    drop(gcs);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(cmdline.is_empty(), "fake-gcs-server {pid} still runs");
}
