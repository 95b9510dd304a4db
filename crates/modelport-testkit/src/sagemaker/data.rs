//! The data plane: for each production variant, the model's `ModelDataUrl` is
//! fetched from S3 (moto), unpacked like the local provider does, and served by
//! `modelport serve` under SageMaker's container contract; the endpoint's status
//! follows the server's `/ping`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelport_core::state::Workspace;
use modelport_local::process::{free_port, log_tail};
use serde_json::{Map, Value};

use super::control::{Snapshot, now};
use super::{FaultKind, Shared};

/// What DescribeEndpoint says about a variant.
#[derive(Debug, Clone)]
pub(crate) struct VariantInfo {
    pub name: String,
    pub image: Option<String>,
    pub weight: f64,
    pub instance_count: i64,
    pub serverless: Option<Value>,
    pub started: f64,
}

impl VariantInfo {
    pub fn of(variant: &Value, snap: &Snapshot, started: f64) -> VariantInfo {
        let model = variant
            .get("ModelName")
            .and_then(Value::as_str)
            .and_then(|m| snap.models.get(&m.to_lowercase()));
        VariantInfo {
            name: variant
                .get("VariantName")
                .and_then(Value::as_str)
                .unwrap_or("AllTraffic")
                .to_string(),
            image: model
                .and_then(container)
                .and_then(|c| c.get("Image"))
                .and_then(Value::as_str)
                .map(str::to_string),
            weight: variant
                .get("InitialVariantWeight")
                .and_then(Value::as_f64)
                .unwrap_or(1.0),
            instance_count: variant
                .get("InitialInstanceCount")
                .and_then(Value::as_i64)
                .unwrap_or(1),
            serverless: variant.get("ServerlessConfig").cloned(),
            started,
        }
    }
}

/// One running server.
pub(crate) struct VariantServer {
    pub info: VariantInfo,
    pub port: u16,
    pub pid: u32,
    /// The weight an UpdateEndpointWeightsAndCapacities in progress asks for.
    pub desired_weight: Option<f64>,
    /// The instance count it asks for.
    pub desired_count: Option<i64>,
}

/// The servers of one endpoint configuration.
pub(crate) struct Deployment {
    pub variants: Vec<VariantServer>,
    /// Requests routed by weight so far, which spreads them deterministically.
    pub routed: u64,
}

impl Deployment {
    /// The server for `variant`; without one, the next by the variants' current
    /// weights (each block of 1000 requests is cut in proportion to them), or `None`
    /// when every weight is 0.
    pub fn target(&mut self, variant: Option<&str>) -> Option<&VariantServer> {
        if let Some(name) = variant {
            return self.variants.iter().find(|v| v.info.name == name);
        }
        let total: f64 = self.variants.iter().map(|v| v.info.weight.max(0.0)).sum();
        if total <= 0.0 {
            return None;
        }
        let slot = (self.routed % 1000) as f64 / 1000.0 * total;
        self.routed += 1;
        let mut acc = 0.0;
        for v in &self.variants {
            acc += v.info.weight.max(0.0);
            if slot < acc {
                return Some(v);
            }
        }
        self.variants.iter().rev().find(|v| v.info.weight > 0.0)
    }
}

/// The container a model runs: `PrimaryContainer`, else the first of `Containers`.
fn container(model: &Map<String, Value>) -> Option<&Map<String, Value>> {
    model
        .get("PrimaryContainer")
        .or_else(|| model.get("Containers").and_then(|c| c.get(0)))
        .and_then(Value::as_object)
}

fn ping_failure(variant: &str) -> String {
    format!(
        "The primary container for production variant {variant} did not pass the ping health \
         check. Please check CloudWatch logs for this endpoint."
    )
}

fn download_failure(url: &str) -> String {
    format!(
        "Failed to download model data for container \"container_1\" from URL: \"{url}\". \
         Please ensure that there is an object located at the URL and that the role passed to \
         CreateModel has permissions to download the object."
    )
}

fn extract_failure(url: &str, why: &str) -> String {
    format!(
        "Failed to extract model data archive from URL \"{url}\". Please ensure that the object \
         located at the URL is a valid tar.gz archive. ({why})"
    )
}

/// CreateEndpoint's background work: wait, start the data plane, settle the status.
pub(crate) fn spawn_create(shared: Arc<Shared>, key: String, generation: u64, snap: Snapshot) {
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.create_delay).await;
        let never_ready = shared
            .take_fault("CreateEndpoint", |k| *k == FaultKind::ServerNeverReady)
            .is_some();
        let result = start_deployment(&shared, &key, generation, &snap, never_ready).await;
        let orphan = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            match state.endpoints.get_mut(&key) {
                Some(rec) if rec.generation == generation => {
                    rec.modified = now();
                    match result {
                        Ok(dep) => {
                            rec.live = Some(dep);
                            rec.status = "InService";
                        }
                        Err(reason) => {
                            rec.status = "Failed";
                            rec.failure_reason = Some(reason);
                        }
                    }
                    tracing::info!(endpoint = %rec.name, status = rec.status, "endpoint settled");
                    None
                }
                _ => result.ok(),
            }
        };
        if let Some(dep) = orphan {
            stop_deployment(&shared, dep).await;
        }
    });
}

/// UpdateEndpoint's background work: start the new configuration's servers next
/// to the old ones, then swap, or roll back and keep the old ones.
pub(crate) fn spawn_update(shared: Arc<Shared>, key: String, generation: u64, snap: Snapshot) {
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.create_delay).await;
        let never_ready = shared
            .take_fault("UpdateEndpoint", |k| *k == FaultKind::ServerNeverReady)
            .is_some();
        let result = start_deployment(&shared, &key, generation, &snap, never_ready).await;
        let mut to_stop = None;
        let mut rolled_back = None;
        {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            match state.endpoints.get_mut(&key) {
                Some(rec) if rec.generation == generation => {
                    rec.modified = now();
                    rec.pending = None;
                    match result {
                        Ok(dep) => {
                            to_stop = rec.live.replace(dep);
                            rec.config_name = snap.config_name.clone();
                            rec.status = "InService";
                            rec.failure_reason = None;
                        }
                        Err(reason) => {
                            rec.status = "RollingBack";
                            rolled_back = Some(reason);
                        }
                    }
                    tracing::info!(endpoint = %rec.name, status = rec.status, "endpoint update settled");
                }
                _ => to_stop = result.ok(),
            }
        }
        if let Some(dep) = to_stop {
            stop_deployment(&shared, dep).await;
        }
        if let Some(reason) = rolled_back {
            tokio::time::sleep(shared.config.delete_delay).await;
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(rec) = state.endpoints.get_mut(&key)
                && rec.generation == generation
            {
                rec.status = if rec.live.is_some() {
                    "InService"
                } else {
                    "Failed"
                };
                rec.failure_reason = Some(reason);
                rec.modified = now();
                tracing::info!(endpoint = %rec.name, status = rec.status, "endpoint rolled back");
            }
        }
    });
}

/// UpdateEndpointWeightsAndCapacities' background work: after half the create
/// delay the desired weights and counts take effect and the endpoint is InService.
pub(crate) fn spawn_weights(shared: Arc<Shared>, key: String, generation: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.create_delay / 2).await;
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rec) = state.endpoints.get_mut(&key)
            && rec.generation == generation
        {
            if let Some(live) = rec.live.as_mut() {
                for v in &mut live.variants {
                    if let Some(w) = v.desired_weight.take() {
                        v.info.weight = w;
                    }
                    if let Some(n) = v.desired_count.take() {
                        v.info.instance_count = n;
                    }
                }
            }
            rec.status = "InService";
            rec.modified = now();
            tracing::info!(endpoint = %rec.name, "endpoint weights updated");
        }
    });
}

/// DeleteEndpoint's background work: after the delay the endpoint and its tags are
/// gone and its servers stopped.
pub(crate) fn spawn_delete(shared: Arc<Shared>, key: String, generation: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.delete_delay).await;
        let live = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            match state.endpoints.get(&key) {
                Some(rec) if rec.generation == generation => {
                    let rec = state.endpoints.remove(&key);
                    rec.and_then(|rec| {
                        state.tags.remove(&rec.arn);
                        tracing::info!(endpoint = %rec.name, "endpoint deleted");
                        rec.live
                    })
                }
                _ => None,
            }
        };
        if let Some(dep) = live {
            stop_deployment(&shared, dep).await;
        }
    });
}

async fn start_deployment(
    shared: &Arc<Shared>,
    endpoint: &str,
    generation: u64,
    snap: &Snapshot,
    never_ready: bool,
) -> Result<Deployment, String> {
    let mut dep = Deployment {
        variants: Vec::new(),
        routed: 0,
    };
    for variant in &snap.variants {
        let info = VariantInfo::of(variant, snap, now());
        let timeout = variant
            .get("ContainerStartupHealthCheckTimeoutInSeconds")
            .and_then(Value::as_u64)
            .map(Duration::from_secs)
            .unwrap_or(shared.config.default_startup_timeout);
        let model = variant
            .get("ModelName")
            .and_then(Value::as_str)
            .and_then(|m| snap.models.get(&m.to_lowercase()));
        let started = match model.and_then(container) {
            Some(c) => {
                start_variant(
                    shared,
                    endpoint,
                    generation,
                    &info.name,
                    c,
                    timeout,
                    never_ready,
                )
                .await
            }
            None => Err(format!(
                "The model of production variant {} has no container.",
                info.name
            )),
        };
        match started {
            Ok((port, pid)) => dep.variants.push(VariantServer {
                info,
                port,
                pid,
                desired_weight: None,
                desired_count: None,
            }),
            Err(reason) => {
                stop_deployment(shared, dep).await;
                return Err(reason);
            }
        }
    }
    Ok(dep)
}

/// Fetches, unpacks and serves one variant's model; `(port, pid)` once `/ping` answers 200.
async fn start_variant(
    shared: &Arc<Shared>,
    endpoint: &str,
    generation: u64,
    variant: &str,
    container: &Map<String, Value>,
    timeout: Duration,
    never_ready: bool,
) -> Result<(u16, u32), String> {
    let model_dir = match model_data(container) {
        Some(ModelData::Archive(url)) => {
            fetch_archive(shared, endpoint, generation, variant, url).await?
        }
        Some(ModelData::Prefix(uri)) => {
            fetch_prefix(shared, endpoint, generation, variant, uri).await?
        }
        None => {
            return Err(format!(
                "The container of production variant {variant} has no ModelDataUrl or \
                 ModelDataSource (the fake serves only model data from S3)."
            ));
        }
    };

    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let started = Instant::now();
    if never_ready {
        tracing::info!(%endpoint, %variant, "fault: the server never becomes ready");
        tokio::time::sleep(timeout).await;
        return Err(ping_failure(variant));
    }
    let log = shared
        .workdir
        .join("logs")
        .join(format!("{endpoint}-{generation}-{variant}.log"));
    let marker = model_dir.display().to_string();
    let mut cmd = Command::new(&shared.config.server_exe);
    cmd.arg("serve")
        .arg(&model_dir)
        .args(["--host", "127.0.0.1"])
        .env("SAGEMAKER_BIND_TO_PORT", port.to_string());
    for (k, v) in container
        .get("Environment")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        cmd.env(k, v.as_str().unwrap_or_default());
    }
    let pid = shared.servers.spawn(cmd, &log, marker)?;
    tracing::info!(%endpoint, %variant, pid, port, "data plane started");
    let ping = format!("http://127.0.0.1:{port}/ping");
    loop {
        let answered = shared
            .http
            .get(&ping)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if matches!(answered, Ok(200)) {
            return Ok((port, pid));
        }
        let exited = shared.servers.exited(pid);
        if exited || started.elapsed() > timeout {
            tracing::warn!(
                %endpoint, %variant, pid, exited,
                "data plane did not pass the ping health check; its log:\n{}",
                log_tail(&log, 20).join("\n")
            );
            shared.servers.stop(pid).await;
            return Err(ping_failure(variant));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where a container's model data is.
enum ModelData<'a> {
    /// `ModelDataUrl`: a model.tar.gz, unpacked into /opt/ml/model.
    Archive(&'a str),
    /// `ModelDataSource.S3DataSource` with `S3Prefix` and no compression: every
    /// object under the prefix, laid out by its key's remainder.
    Prefix(&'a str),
}

fn model_data(container: &Map<String, Value>) -> Option<ModelData<'_>> {
    if let Some(url) = container.get("ModelDataUrl").and_then(Value::as_str) {
        return Some(ModelData::Archive(url));
    }
    container
        .get("ModelDataSource")
        .and_then(|s| s.get("S3DataSource"))
        .and_then(|s| s.get("S3Uri"))
        .and_then(Value::as_str)
        .map(ModelData::Prefix)
}

/// `s3://BUCKET/KEY` as `(bucket, key)`.
fn s3_parts(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("s3://").and_then(|r| r.split_once('/'))
}

/// A GET to moto, which refuses anonymous reads of private objects (403) but checks
/// no signature: any SigV4-shaped Authorization header is taken as the account's.
fn moto_get(shared: &Shared, bucket: &str, key: &str) -> reqwest::RequestBuilder {
    let url = format!(
        "{}/{bucket}/{key}",
        shared.config.s3_upstream.trim_end_matches('/')
    );
    let (name, value) = crate::moto::SIGNED_S3
        .split_once(": ")
        .expect("a header line");
    shared.http.get(url).header(name, value)
}

/// Streams the object `bucket/key` into `to`, never holding it in memory.
async fn download(
    shared: &Shared,
    bucket: &str,
    key: &str,
    to: &std::path::Path,
) -> Result<u64, String> {
    use tokio::io::AsyncWriteExt;
    let mut r = moto_get(shared, bucket, key)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("S3 answered {}", r.status()));
    }
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        file.write_all(&chunk).await.map_err(|e| e.to_string())?;
        n += chunk.len() as u64;
    }
    file.flush().await.map_err(|e| e.to_string())?;
    Ok(n)
}

/// Fetches a model.tar.gz and unpacks it like the local provider does.
async fn fetch_archive(
    shared: &Arc<Shared>,
    endpoint: &str,
    generation: u64,
    variant: &str,
    url: &str,
) -> Result<PathBuf, String> {
    let Some((bucket, object)) = s3_parts(url) else {
        return Err(download_failure(url));
    };
    let downloads = shared.workdir.join("downloads");
    let archive = downloads.join(format!("{endpoint}-{generation}-{variant}.tar.gz"));
    if let Err(why) = download(shared, bucket, object, &archive).await {
        tracing::warn!(%url, "cannot fetch model data: {why}");
        let _ = std::fs::remove_file(&archive);
        return Err(download_failure(url));
    }
    let ws = Workspace::new(shared.workdir.join("ws"));
    let unpacked = {
        let archive = archive.clone();
        tokio::task::spawn_blocking(move || -> Result<PathBuf, String> {
            let manifest = modelport_package::read_manifest(&archive).map_err(|e| e.to_string());
            let result = manifest.and_then(|m| {
                modelport_local::unpack_model(&ws, &archive, &m.digest())
                    .map(|(dir, _)| dir)
                    .map_err(|e| e.to_string())
            });
            let _ = std::fs::remove_file(&archive);
            result
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
    };
    unpacked.map_err(|why| {
        tracing::warn!(%url, "cannot unpack model data: {why}");
        extract_failure(url, &why)
    })
}

/// The keys under `prefix` in `bucket` (ListObjectsV2, every page).
async fn list_keys(shared: &Shared, bucket: &str, prefix: &str) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![
            ("list-type", "2".to_string()),
            ("prefix", prefix.to_string()),
        ];
        if let Some(t) = &token {
            query.push(("continuation-token", t.clone()));
        }
        let r = moto_get(shared, bucket, "")
            .query(&query)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("S3 answered {} to ListObjectsV2", r.status()));
        }
        let body = r.text().await.map_err(|e| e.to_string())?;
        let (page, next) = crate::moto::list_objects_page(&body);
        keys.extend(page);
        token = next;
        if token.is_none() {
            return Ok(keys);
        }
    }
}

/// Why SageMaker would refuse `rel` (a key's remainder after the prefix) as a path
/// under /opt/ml/model, by the rules botocore documents for `CompressionType: None`.
fn bad_model_path(rel: &str, all: &std::collections::BTreeSet<&str>) -> Option<String> {
    if rel.ends_with('/') {
        return Some("the key ends with a slash (a folder object)".into());
    }
    for part in rel.split('/') {
        if part.trim().is_empty() {
            return Some("a file or directory name is empty or blank".into());
        }
        if part.contains('\0') {
            return Some("a name contains a null byte".into());
        }
        if part.len() > 255 {
            return Some("a name is longer than 255 bytes".into());
        }
        if part == "." || part == ".." {
            return Some(format!("a name is `{part}`"));
        }
    }
    let dir = format!("{rel}/");
    if all.iter().any(|o| o.starts_with(&dir)) {
        return Some(format!(
            "it clashes with the directory /opt/ml/model/{rel}/"
        ));
    }
    None
}

/// Fetches every object under an `S3Prefix` into a directory, laid out by each
/// key's remainder as SageMaker lays uncompressed model data under /opt/ml/model,
/// then checks it against its modelport.json like the serving container does.
async fn fetch_prefix(
    shared: &Arc<Shared>,
    endpoint: &str,
    generation: u64,
    variant: &str,
    uri: &str,
) -> Result<PathBuf, String> {
    let Some((bucket, prefix)) = s3_parts(uri) else {
        return Err(download_failure(uri));
    };
    let keys = match list_keys(shared, bucket, prefix).await {
        Ok(keys) if !keys.is_empty() => keys,
        Ok(_) => {
            tracing::warn!(%uri, "no object under the model data prefix");
            return Err(download_failure(uri));
        }
        Err(why) => {
            tracing::warn!(%uri, "cannot list the model data: {why}");
            return Err(download_failure(uri));
        }
    };
    let rels: std::collections::BTreeSet<&str> = keys
        .iter()
        .map(|k| k.strip_prefix(prefix).unwrap_or(k))
        .collect();
    for rel in &rels {
        if let Some(why) = bad_model_path(rel, &rels) {
            return Err(format!(
                "Failed to prepare model data for container \"container_1\" from S3 prefix \
                 \"{uri}\": the object s3://{bucket}/{prefix}{rel} cannot be placed under \
                 /opt/ml/model: {why}."
            ));
        }
    }
    let dir = shared
        .workdir
        .join("model-data")
        .join(format!("{endpoint}-{generation}-{variant}"));
    let _ = tokio::fs::remove_dir_all(&dir).await;
    for rel in &rels {
        let key = format!("{prefix}{rel}");
        if let Err(why) = download(shared, bucket, &key, &dir.join(rel)).await {
            tracing::warn!(%uri, %key, "cannot fetch model data: {why}");
            return Err(download_failure(uri));
        }
    }
    let checked = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            modelport_package::verify_dir(&dir).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
    };
    match checked {
        Ok(_) => Ok(dir),
        Err(why) => {
            // The container refuses it at start-up: the endpoint fails its ping.
            tracing::warn!(%uri, "the model data does not match its manifest: {why}");
            Err(ping_failure(variant))
        }
    }
}

async fn stop_deployment(shared: &Arc<Shared>, dep: Deployment) {
    for v in dep.variants {
        shared.servers.stop(v.pid).await;
    }
}
