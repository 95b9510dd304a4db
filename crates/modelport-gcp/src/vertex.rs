//! Vertex AI's control plane through the official client: models, endpoints and
//! deployed models, each long-running operation polled with backoff under a
//! deadline, its deployment stage reported as progress.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use google_cloud_aiplatform_v1::model::probe::HttpGetAction;
use google_cloud_aiplatform_v1::model::{
    AcceleratorType, DedicatedResources, DeployModelOperationMetadata, DeployedModel,
    EncryptionSpec, Endpoint, EnvVar, MachineSpec, Model, ModelContainerSpec, Port, Probe,
};
use google_cloud_gax::error::Error;
use google_cloud_lro::{Poller, PollingResult};
use modelport_core::provider::{ProviderError, ProviderResult, Reporter};

use crate::client::GcpClients;
use crate::error::{self, failure, retry};

/// The container port modelport serve listens on (`AIP_HTTP_PORT`).
pub const CONTAINER_PORT: i32 = 8080;
/// The routes of `modelport serve` that Vertex AI calls.
pub const PREDICT_ROUTE: &str = "/predict";
pub const HEALTH_ROUTE: &str = "/health";

/// Everything a model upload needs.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub model_id: String,
    pub display_name: String,
    pub image: String,
    pub artifact_uri: String,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub kms_key_name: Option<String>,
    pub startup_timeout_s: Option<u32>,
}

/// Everything a deployModel needs besides the model.
#[derive(Debug, Clone)]
pub struct Machine {
    pub machine_type: String,
    pub accelerator: Option<(String, u32)>,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub service_account: Option<String>,
}

impl Machine {
    pub fn describe(&self) -> String {
        let mut s = format!("{} × {}", self.min_replicas, self.machine_type);
        if self.max_replicas > self.min_replicas {
            s = format!(
                "{}–{} × {}",
                self.min_replicas, self.max_replicas, self.machine_type
            );
        }
        if let Some((kind, n)) = &self.accelerator {
            s.push_str(&format!(" + {n} × {kind}"));
        }
        s
    }
}

/// How long after starting an operation it is first polled.
const FIRST_POLL: Duration = Duration::from_millis(250);

/// Polls a long-running operation until it is done or `deadline` passes. `start`
/// makes a fresh poller, so that a start refused as transient (429, 503) is tried
/// again; `describe` turns metadata into a progress line.
pub async fn run_operation<P, R, M, F>(
    what: &str,
    start: F,
    deadline: Duration,
    reporter: &dyn Reporter,
    describe: impl Fn(&M) -> Option<String>,
) -> ProviderResult<R>
where
    F: Fn() -> P,
    P: Poller<R, M>,
{
    let begun = Instant::now();
    let mut poller = start();
    let mut first = true;
    let mut start_attempts = 1;
    // Short operations (an endpoint, an undeploy) finish in seconds: the first polls
    // come soon, then back off to 30 s for deployments that take minutes.
    let mut delay = FIRST_POLL;
    let mut retry_delay = Duration::from_secs(1);
    let mut last: Option<String> = None;
    let mut poll_errors = 0;
    loop {
        match poller.poll().await {
            None => {
                return Err(ProviderError::other(format!(
                    "{what}: the operation ended without a result"
                )));
            }
            Some(PollingResult::Completed(Err(e)))
                if first && start_attempts < 6 && error::is_transient(&e) =>
            {
                tracing::debug!("{what}: {}; retrying", error::message(&e));
                tokio::time::sleep(retry_delay).await;
                retry_delay = (retry_delay * 2).min(Duration::from_secs(8));
                start_attempts += 1;
                poller = start();
                continue;
            }
            Some(PollingResult::Completed(r)) => return r.map_err(|e| failure(what, &e)),
            Some(PollingResult::InProgress(m)) => {
                if first {
                    delay = FIRST_POLL;
                }
                if let Some(line) = m.as_ref().and_then(&describe)
                    && last.as_deref() != Some(line.as_str())
                {
                    // Stage changes are few and minutes apart: shown, not logged.
                    reporter.on_status(what, &line, begun.elapsed(), deadline);
                    last = Some(line);
                }
            }
            Some(PollingResult::PollingError(e)) => {
                poll_errors += 1;
                if poll_errors > 10 {
                    return Err(failure(&format!("{what} (polling)"), &e));
                }
                tracing::debug!("{what}: polling failed: {}", error::message(&e));
            }
        }
        first = false;
        if begun.elapsed() > deadline {
            return Err(ProviderError::Other {
                message: format!(
                    "{what} did not finish within {} s",
                    deadline.as_secs()
                ),
                hint: Some("the operation may still finish: `modelport status` shows where it stands, a re-run resumes it and `modelport destroy` removes it; raise provider.gcp.deploy_timeout_s for large models".into()),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

fn stage(m: &DeployModelOperationMetadata) -> Option<String> {
    m.deployment_stage
        .name()
        .filter(|s| *s != "DEPLOYMENT_STAGE_UNSPECIFIED")
        .map(|s| format!("deployment stage {s}"))
}

/// The endpoint, or `None` when it does not exist.
pub async fn get_endpoint(c: &GcpClients, name: &str) -> ProviderResult<Option<Endpoint>> {
    let r = retry("endpoints.get", || {
        c.endpoints.get_endpoint().set_name(name).send()
    })
    .await;
    match r {
        Ok(e) => Ok(Some(e)),
        Err(e) if error::is_not_found(&e) => Ok(None),
        Err(e) => Err(failure(&format!("reading endpoint {name}"), &e)),
    }
}

/// Waits until no operation on `resource` (an endpoint or a model, by its full
/// name) is still running: one that a command stopped mid-way (a crash, a kill)
/// started and never saw finish — an endpoint being created, a model being
/// uploaded or deployed. Clean-up that ran before it finished would find nothing
/// to remove and leave what it then makes, or be refused with
/// FAILED_PRECONDITION ("being deployed").
pub async fn settle(
    c: &GcpClients,
    resource: &str,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> ProviderResult<()> {
    let begun = Instant::now();
    let mut delay = FIRST_POLL;
    loop {
        let running = running_operations(c, resource).await?;
        if running.is_empty() {
            return Ok(());
        }
        let what = format!("waiting for an earlier operation on {resource}");
        reporter.on_status(
            &what,
            &format!("{} still running: {}", running.len(), running.join(", ")),
            begun.elapsed(),
            deadline,
        );
        if begun.elapsed() > deadline {
            return Err(ProviderError::Other {
                message: format!(
                    "{} on {resource} did not finish within {} s",
                    running.join(", "),
                    deadline.as_secs()
                ),
                hint: Some(
                    "an earlier, interrupted command started it: run this command again once it                      finished (`gcloud ai operations describe` shows it)"
                        .into(),
                ),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// The names of the operations on `resource` that are not done (none when the
/// resource does not exist). Filtered here: the service's filter grammar for
/// operations is not documented.
async fn running_operations(c: &GcpClients, resource: &str) -> ProviderResult<Vec<String>> {
    let mut running = Vec::new();
    let mut token = String::new();
    loop {
        let page = retry("operations.list", || {
            c.endpoints
                .list_operations()
                .set_name(resource)
                .set_page_token(token.clone())
                .send()
        })
        .await;
        let page = match page {
            Ok(p) => p,
            Err(e) if error::is_not_found(&e) => return Ok(running),
            Err(e) => {
                return Err(failure(
                    &format!("listing the operations on {resource}"),
                    &e,
                ));
            }
        };
        running.extend(
            page.operations
                .iter()
                .filter(|op| !op.done)
                .map(|op| op.name.clone()),
        );
        if page.next_page_token.is_empty() {
            return Ok(running);
        }
        token = page.next_page_token;
    }
}

/// The model, or `None` when it does not exist.
pub async fn get_model(c: &GcpClients, name: &str) -> ProviderResult<Option<Model>> {
    let r = retry("models.get", || c.models.get_model().set_name(name).send()).await;
    match r {
        Ok(m) => Ok(Some(m)),
        Err(e) if error::is_not_found(&e) => Ok(None),
        Err(e) => Err(failure(&format!("reading model {name}"), &e)),
    }
}

fn container(spec: &ModelSpec) -> ModelContainerSpec {
    let mut env: Vec<EnvVar> = spec
        .env
        .iter()
        .map(|(k, v)| EnvVar::new().set_name(k).set_value(v))
        .collect();
    env.sort_by(|a, b| a.name.cmp(&b.name));
    let mut c = ModelContainerSpec::new()
        .set_image_uri(&spec.image)
        .set_args(["serve"])
        .set_env(env)
        .set_ports([Port::new().set_container_port(CONTAINER_PORT)])
        .set_predict_route(PREDICT_ROUTE)
        .set_health_route(HEALTH_ROUTE);
    if let Some(s) = spec.startup_timeout_s {
        // The whole deployment may take that long, and the startup probe gives the
        // server that long to answer its health route (every 10 s).
        c = c
            .set_deployment_timeout(wkt::Duration::clamp(i64::from(s), 0))
            .set_startup_probe(
                Probe::new()
                    .set_http_get(
                        HttpGetAction::new()
                            .set_path(HEALTH_ROUTE)
                            .set_port(CONTAINER_PORT),
                    )
                    .set_period_seconds(10)
                    .set_timeout_seconds(5)
                    .set_failure_threshold(s.div_ceil(10).max(1) as i32),
            );
    }
    c
}

/// Uploads the model under its id, or finds it already there (a re-run).
pub async fn ensure_model(
    c: &GcpClients,
    spec: &ModelSpec,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> ProviderResult<String> {
    let name = format!("{}/models/{}", c.settings.parent(), spec.model_id);
    if get_model(c, &name).await?.is_some() {
        reporter.on_progress(&format!("model {} already exists", spec.model_id));
        return Ok(name);
    }
    let mut model = Model::new()
        .set_display_name(&spec.display_name)
        .set_artifact_uri(&spec.artifact_uri)
        .set_container_spec(container(spec))
        .set_labels(spec.labels.clone());
    if let Some(k) = &spec.kms_key_name {
        model = model.set_encryption_spec(EncryptionSpec::new().set_kms_key_name(k));
    }
    let parent = c.settings.parent();
    let result = run_operation(
        &format!("models.upload {}", spec.model_id),
        || {
            c.models
                .upload_model()
                .set_parent(&parent)
                .set_model_id(&spec.model_id)
                .set_model(model.clone())
                .poller()
        },
        deadline,
        reporter,
        |_| None,
    )
    .await;
    match result {
        Ok(_) => Ok(name),
        Err(e) => {
            // A concurrent or interrupted run, or a first attempt whose answer was
            // lost, uploaded it first (perhaps still uploading).
            settle(c, &name, deadline, reporter).await?;
            if get_model(c, &name).await?.is_some() {
                tracing::debug!("models.upload failed ({e}) but the model exists");
                return Ok(name);
            }
            Err(e)
        }
    }
}

/// What an endpoint is created with.
#[derive(Debug, Clone)]
pub struct EndpointSpec<'a> {
    pub endpoint_id: &'a str,
    pub display_name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub dedicated: bool,
    pub kms_key_name: Option<&'a str>,
}

/// Creates the endpoint under its id, or returns it when it exists.
pub async fn ensure_endpoint(
    c: &GcpClients,
    spec: &EndpointSpec<'_>,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> ProviderResult<Endpoint> {
    let EndpointSpec {
        endpoint_id,
        display_name,
        labels,
        dedicated,
        kms_key_name,
    } = *spec;
    let name = format!("{}/endpoints/{endpoint_id}", c.settings.parent());
    if let Some(e) = get_endpoint(c, &name).await? {
        return Ok(e);
    }
    let mut endpoint = Endpoint::new()
        .set_display_name(display_name)
        .set_labels(labels.clone())
        .set_dedicated_endpoint_enabled(dedicated);
    if let Some(k) = kms_key_name {
        endpoint = endpoint.set_encryption_spec(EncryptionSpec::new().set_kms_key_name(k));
    }
    let parent = c.settings.parent();
    let r = run_operation(
        &format!("endpoints.create {endpoint_id}"),
        || {
            c.endpoints
                .create_endpoint()
                .set_parent(&parent)
                .set_endpoint_id(endpoint_id)
                .set_endpoint(endpoint.clone())
                .poller()
        },
        deadline,
        reporter,
        |_| None,
    )
    .await;
    let e = match r {
        Ok(created) => return Ok(created),
        Err(e) => e,
    };
    // Created (or being created) by a first attempt whose answer was lost.
    settle(c, &name, deadline, reporter).await?;
    match get_endpoint(c, &name).await? {
        Some(found) => {
            tracing::debug!("endpoints.create failed ({e}) but the endpoint exists");
            Ok(found)
        }
        None => Err(e),
    }
}

/// One model deployed to one endpoint.
#[derive(Debug, Clone)]
pub struct Deployment<'a> {
    /// `projects/P/locations/R/endpoints/E`.
    pub endpoint: &'a str,
    /// `projects/P/locations/R/models/M`.
    pub model: &'a str,
    pub deployed_id: &'a str,
    pub display_name: &'a str,
    pub machine: &'a Machine,
}

/// Deploys the model with `traffic` as the endpoint's new split (`"0"` naming the
/// new deployed model); waits until it serves.
pub async fn deploy(
    c: &GcpClients,
    d: &Deployment<'_>,
    traffic: HashMap<String, i32>,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> ProviderResult<()> {
    let Deployment {
        endpoint,
        model,
        deployed_id,
        display_name,
        machine,
    } = *d;
    let mut spec = MachineSpec::new().set_machine_type(&machine.machine_type);
    if let Some((kind, n)) = &machine.accelerator {
        spec = spec
            .set_accelerator_type(AcceleratorType::from(kind.as_str()))
            .set_accelerator_count(*n as i32);
    }
    let resources = DedicatedResources::new()
        .set_machine_spec(spec)
        .set_min_replica_count(machine.min_replicas as i32)
        .set_max_replica_count(machine.max_replicas as i32);
    let mut deployed = DeployedModel::new()
        .set_id(deployed_id)
        .set_model(model)
        .set_display_name(display_name)
        .set_dedicated_resources(resources);
    if let Some(sa) = &machine.service_account {
        deployed = deployed.set_service_account(sa);
    }
    let r = run_operation(
        &format!("endpoints.deployModel {deployed_id}"),
        || {
            c.endpoints
                .deploy_model()
                .set_endpoint(endpoint)
                .set_deployed_model(deployed.clone())
                .set_traffic_split(traffic.clone())
                .poller()
        },
        deadline,
        reporter,
        stage,
    )
    .await;
    if let Err(e) = r {
        // Deployed already by an interrupted run, or by a first attempt whose
        // answer was lost: once its operation finished, the model is there.
        settle(c, endpoint, deadline, reporter).await?;
        if let Some(ep) = get_endpoint(c, endpoint).await?
            && ep.deployed_models.iter().any(|d| d.id == deployed_id)
        {
            tracing::debug!("deployModel failed ({e}) but {deployed_id} is deployed");
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Undeploys `deployed_id` when it is deployed; `traffic` is the split afterwards
/// (empty keeps Vertex's own rule: the remaining models keep their shares).
pub async fn undeploy(
    c: &GcpClients,
    endpoint: &str,
    deployed_id: &str,
    traffic: HashMap<String, i32>,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> ProviderResult<bool> {
    // An undeploy an interrupted command started may still run: it is the one
    // asked for, and a second one would be refused.
    settle(c, endpoint, deadline, reporter).await?;
    let Some(ep) = get_endpoint(c, endpoint).await? else {
        return Ok(false);
    };
    if !ep.deployed_models.iter().any(|d| d.id == deployed_id) {
        return Ok(false);
    }
    let r = run_operation(
        &format!("endpoints.undeployModel {deployed_id}"),
        || {
            c.endpoints
                .undeploy_model()
                .set_endpoint(endpoint)
                .set_deployed_model_id(deployed_id)
                .set_traffic_split(traffic.clone())
                .poller()
        },
        deadline,
        reporter,
        |_| None,
    )
    .await;
    if let Err(e) = r {
        // A retry whose first attempt took effect is refused ("already being
        // undeployed"): once that undeploy finished, the model is gone.
        settle(c, endpoint, deadline, reporter).await?;
        let still = get_endpoint(c, endpoint)
            .await?
            .is_some_and(|ep| ep.deployed_models.iter().any(|d| d.id == deployed_id));
        if still {
            return Err(e);
        }
        tracing::debug!("undeployModel failed ({e}) but {deployed_id} is gone");
    }
    Ok(true)
}

/// Sets the endpoint's traffic split.
pub async fn set_traffic(
    c: &GcpClients,
    endpoint: &str,
    traffic: HashMap<String, i32>,
) -> ProviderResult<()> {
    let ep = Endpoint::new()
        .set_name(endpoint)
        .set_traffic_split(traffic);
    retry("endpoints.patch", || {
        c.endpoints
            .update_endpoint()
            .set_endpoint(ep.clone())
            .set_update_mask(wkt::FieldMask::default().set_paths(["traffic_split"]))
            .send()
    })
    .await
    .map_err(|e| failure(&format!("setting the traffic split of {endpoint}"), &e))?;
    Ok(())
}

fn gone_ok<T>(r: ProviderResult<T>, exists: bool) -> ProviderResult<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(_) if !exists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes the endpoint (which must have no deployed models); true when it existed.
pub async fn delete_endpoint(
    c: &GcpClients,
    endpoint: &str,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> ProviderResult<bool> {
    if get_endpoint(c, endpoint).await?.is_none() {
        return Ok(false);
    }
    let r = run_operation(
        &format!("endpoints.delete {endpoint}"),
        || c.endpoints.delete_endpoint().set_name(endpoint).poller(),
        deadline,
        reporter,
        |_| None,
    )
    .await;
    if r.is_err() {
        // A retry whose first attempt took effect is refused ("already being
        // deleted"): once that delete finished, the endpoint is gone.
        settle(c, endpoint, deadline, reporter).await?;
    }
    let exists = get_endpoint(c, endpoint).await?.is_some();
    gone_ok(r, exists)
}

/// Deletes the model; true when it existed.
pub async fn delete_model(
    c: &GcpClients,
    model: &str,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> ProviderResult<bool> {
    settle(c, model, deadline, reporter).await?;
    if get_model(c, model).await?.is_none() {
        return Ok(false);
    }
    let r = run_operation(
        &format!("models.delete {model}"),
        || c.models.delete_model().set_name(model).poller(),
        deadline,
        reporter,
        |_| None,
    )
    .await;
    if r.is_err() {
        settle(c, model, deadline, reporter).await?;
    }
    let exists = get_model(c, model).await?.is_some();
    gone_ok(r, exists)
}

/// Endpoints whose labels include `key=value` (every labelled endpoint when
/// `value` is `None`).
pub async fn list_endpoints(
    c: &GcpClients,
    key: &str,
    value: Option<&str>,
) -> ProviderResult<Vec<Endpoint>> {
    let filter = match value {
        Some(v) => format!("labels.{key}={v}"),
        None => format!("labels.{key}:*"),
    };
    let parent = c.settings.parent();
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = retry("endpoints.list", || {
            c.endpoints
                .list_endpoints()
                .set_parent(&parent)
                .set_filter(&filter)
                .set_page_token(&token)
                .send()
        })
        .await
        .map_err(|e| failure("listing endpoints", &e))?;
        out.extend(page.endpoints);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

/// Models whose labels include `key=value`.
pub async fn list_models(c: &GcpClients, key: &str, value: &str) -> ProviderResult<Vec<Model>> {
    let filter = format!("labels.{key}={value}");
    let parent = c.settings.parent();
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = retry("models.list", || {
            c.models
                .list_models()
                .set_parent(&parent)
                .set_filter(&filter)
                .set_page_token(&token)
                .send()
        })
        .await
        .map_err(|e| failure("listing models", &e))?;
        out.extend(page.models);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

/// Whether an error is Google's "not found".
pub fn not_found(e: &Error) -> bool {
    error::is_not_found(e)
}
