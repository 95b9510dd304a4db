//! The data plane: deployModel runs `modelport serve` under Vertex's custom
//! container contract and the operation follows the server's health route.

use std::collections::BTreeMap;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelport_local::process::{free_port, log_tail};
use serde_json::{Map, Value, json};

use super::Shared;
use super::control::{ApiError, Deployed, finish_operation, set_stage};

/// Everything a deployModel operation needs once accepted.
pub(crate) struct DeployJob {
    pub op_id: String,
    pub endpoint: String,
    pub model: String,
    pub model_resource: Map<String, Value>,
    pub deployed: Map<String, Value>,
    pub split: BTreeMap<String, i64>,
    pub never_ready: bool,
}

fn never_ready_message(endpoint: &str) -> String {
    let id = endpoint.rsplit('/').next().unwrap_or(endpoint);
    format!(
        "Model server never became ready. Please validate that your model file or container \
         configuration are valid. Model server logs can be found at \
         https://console.cloud.google.com/logs/viewer?resource=aiplatform.googleapis.com%2FEndpoint&endpoint_id={id}."
    )
}

/// The deployModel operation's background work: PREPARING_MODEL (the operation
/// delay, then the model files), STARTING_MODEL_SERVER (until the health route
/// answers 200), FINISHING_UP (the endpoint gets the model and its traffic).
pub(crate) async fn deploy(shared: Arc<Shared>, job: DeployJob) {
    let result = run_deploy(&shared, &job).await;
    let finished = {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let rec = state.endpoints.get_mut(&job.endpoint);
        match (rec, result) {
            (Some(rec), Ok(dep)) => {
                rec.deploying = rec.deploying.saturating_sub(1);
                let id = dep.resource["id"].as_str().unwrap_or_default().to_string();
                // As the discovery document says: a non-empty split replaces the
                // endpoint's, and an empty one leaves it as it is (so the first model
                // deployed with one gets no traffic at all).
                if !job.split.is_empty() {
                    rec.traffic = job
                        .split
                        .iter()
                        .map(|(k, v)| (if k == "0" { id.clone() } else { k.clone() }, *v))
                        .filter(|(_, v)| *v > 0)
                        .collect();
                }
                let response = json!({
                    "@type": "type.googleapis.com/google.cloud.aiplatform.v1.DeployModelResponse",
                    "deployedModel": dep.resource,
                });
                rec.deployed.push(dep);
                tracing::info!(endpoint = %job.endpoint, deployed_model = %id, "model deployed");
                Ok(response)
            }
            (Some(rec), Err(e)) => {
                rec.deploying = rec.deploying.saturating_sub(1);
                Err((e, None))
            }
            (None, Ok(dep)) => Err((
                ApiError::not_found(format!("Endpoint \"{}\" not found.", job.endpoint)),
                Some(dep.pid),
            )),
            (None, Err(e)) => Err((e, None)),
        }
    };
    match finished {
        Ok(response) => {
            set_stage(&shared, &job.op_id, "FINISHING_UP");
            tokio::time::sleep(shared.config.operation_delay / 4).await;
            finish_operation(&shared, &job.op_id, Ok(response));
        }
        Err((e, orphan)) => {
            if let Some(pid) = orphan {
                shared.servers.stop(pid).await;
            }
            finish_operation(&shared, &job.op_id, Err(e));
        }
    }
}

async fn run_deploy(shared: &Arc<Shared>, job: &DeployJob) -> Result<Deployed, ApiError> {
    tokio::time::sleep(shared.config.operation_delay).await;
    let id = job.deployed["id"].as_str().unwrap_or_default().to_string();
    let endpoint_id = job
        .endpoint
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let artifact = job
        .model_resource
        .get("artifactUri")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let storage = if artifact.is_empty() {
        None
    } else {
        Some(model_files(shared, artifact).await?)
    };
    set_stage(shared, &job.op_id, "STARTING_MODEL_SERVER");
    let spec = job
        .model_resource
        .get("containerSpec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let route = format!("/v1/endpoints/{endpoint_id}/deployedModels/{id}");
    let health_route = spec
        .get("healthRoute")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| route.clone());
    let predict_route = spec
        .get("predictRoute")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{route}:predict"));
    let port = free_port().map_err(|e| internal(format!("no free port: {e}")))?;
    let started = Instant::now();
    let timeout = shared.config.startup_timeout;
    if job.never_ready {
        tracing::info!(endpoint = %job.endpoint, deployed_model = %id, "fault: the server never becomes ready");
        tokio::time::sleep(timeout).await;
        return Err(ApiError::precondition(never_ready_message(&job.endpoint)));
    }
    let log = shared
        .workdir
        .join("logs")
        .join(format!("{endpoint_id}-{id}.log"));
    let mut cmd = Command::new(&shared.config.server_exe);
    for var in [
        "SAGEMAKER_BIND_TO_PORT",
        "AIP_HTTP_PORT",
        "AIP_HEALTH_ROUTE",
        "AIP_PREDICT_ROUTE",
        "AIP_STORAGE_URI",
        "MODELPORT_GCP_STORAGE_ENDPOINT",
    ] {
        cmd.env_remove(var);
    }
    // `<image> serve`: the container's command is modelport itself.
    cmd.arg("serve")
        .env("AIP_HTTP_PORT", port.to_string())
        .env("AIP_HEALTH_ROUTE", &health_route)
        .env("AIP_PREDICT_ROUTE", &predict_route)
        .env("AIP_MODE", "PREDICTION")
        .env("AIP_DEPLOYED_MODEL_ID", &id)
        .env("AIP_ENDPOINT_ID", &endpoint_id)
        .env("AIP_PROJECT_NUMBER", project_of(&job.endpoint))
        .env("AIP_MACHINE_TYPE", machine_type(&job.deployed));
    match (&storage, &shared.config.gcs_upstream) {
        (Some(uri), Some(gcs)) if uri.starts_with("gs://") => {
            cmd.env("AIP_STORAGE_URI", uri)
                .env("MODELPORT_GCP_STORAGE_ENDPOINT", gcs);
        }
        (Some(dir), _) => {
            cmd.env("AIP_STORAGE_URI", dir);
        }
        (None, _) => {}
    }
    cmd.args(["--host", "127.0.0.1"]);
    for e in spec
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(k), Some(v)) = (
            e.get("name").and_then(Value::as_str),
            e.get("value").and_then(Value::as_str),
        ) {
            cmd.env(k, v);
        }
    }
    // The model's location is in the server's environment, which is how `stop`
    // recognises the process as ours.
    let marker = storage.clone().unwrap_or_else(|| "serve".into());
    let pid = shared.servers.spawn(cmd, &log, marker).map_err(internal)?;
    tracing::info!(endpoint = %job.endpoint, deployed_model = %id, pid, port, "data plane started");
    let health = format!("http://127.0.0.1:{port}{health_route}");
    loop {
        let answered = shared
            .http
            .get(&health)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if matches!(answered, Ok(200)) {
            break;
        }
        let exited = shared.servers.exited(pid);
        if exited || started.elapsed() > timeout {
            tracing::warn!(
                endpoint = %job.endpoint, deployed_model = %id, pid, exited,
                "the model server did not answer its health route; its log:\n{}",
                log_tail(&log, 20).join("\n")
            );
            shared.servers.stop(pid).await;
            return Err(ApiError::precondition(never_ready_message(&job.endpoint)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut resource = job.deployed.clone();
    resource.insert(
        "status".into(),
        json!({"availableReplicaCount": min_replicas(&job.deployed), "lastUpdateTime": super::control::timestamp()}),
    );
    Ok(Deployed {
        resource,
        model: job.model.clone(),
        port,
        pid,
        predict_route,
        undeploying: false,
    })
}

fn internal(message: String) -> ApiError {
    ApiError {
        http: 500,
        status: "INTERNAL",
        message,
    }
}

fn project_of(name: &str) -> String {
    name.split('/').nth(1).unwrap_or_default().to_string()
}

fn machine_type(deployed: &Map<String, Value>) -> String {
    deployed
        .get("dedicatedResources")
        .and_then(|d| d.pointer("/machineSpec/machineType"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn min_replicas(deployed: &Map<String, Value>) -> i64 {
    deployed
        .get("dedicatedResources")
        .and_then(|d| d.get("minReplicaCount"))
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(1)
}

/// The model files for AIP_STORAGE_URI: a local path as it is, or a `gs://`
/// prefix, checked to hold objects in the GCS emulator and passed through: as on
/// Vertex, the container downloads the files itself (`modelport serve` does, from
/// `MODELPORT_GCP_STORAGE_ENDPOINT`, which the fake points at the emulator).
async fn model_files(shared: &Shared, artifact: &str) -> Result<String, ApiError> {
    let Some(rest) = artifact.strip_prefix("gs://") else {
        return Ok(artifact
            .strip_prefix("file://")
            .unwrap_or(artifact)
            .to_string());
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(gcs) = shared.config.gcs_upstream.as_deref() else {
        return Err(ApiError::precondition(format!(
            "The fake Vertex AI has no GCS upstream configured and cannot read {artifact}."
        )));
    };
    check_prefix(shared, gcs, bucket, prefix)
        .await
        .map_err(|why| {
            tracing::warn!(%artifact, "the model files are missing: {why}");
            ApiError::precondition(format!(
                "Failed to download the model artifacts from {artifact}: {why}"
            ))
        })?;
    Ok(artifact.to_string())
}

/// Checks that `gs://bucket/prefix/` holds at least one object (fake-gcs-server's
/// JSON API).
async fn check_prefix(
    shared: &Shared,
    gcs: &str,
    bucket: &str,
    prefix: &str,
) -> Result<(), String> {
    let gcs = gcs.trim_end_matches('/');
    let dir_prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    };
    let url = format!(
        "{gcs}/storage/v1/b/{}/o?prefix={}",
        crate::gcs::encode(bucket),
        crate::gcs::encode(&dir_prefix)
    );
    let resp = shared
        .http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("listing: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("listing answered {}", resp.status()));
    }
    let raw = resp.bytes().await.map_err(|e| format!("listing: {e}"))?;
    let listing: Value =
        serde_json::from_slice(&raw).map_err(|e| format!("listing is not JSON: {e}"))?;
    let any = listing
        .get("items")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if any {
        Ok(())
    } else {
        Err("no objects under that prefix".into())
    }
}
