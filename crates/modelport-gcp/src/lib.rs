//! The Google Cloud provider: the model's files in Cloud Storage, the endpoint on
//! Vertex AI, predictions through Vertex's `:predict`. Every request goes through
//! Google's official crates (`google-cloud-storage`, `google-cloud-aiplatform-v1`,
//! `google-cloud-auth`), except object metadata, listing and deletion, which the
//! storage crate offers over gRPC only (see [`storage`]); endpoint overrides point
//! them all at an emulator or fake.
//!
//! One deployment is one Vertex AI endpoint, whose id is derived from the
//! deployment name. Each revision (an artifact and the settings that shape its
//! resources) is one Vertex model, `NAME-ARTIFACT8-SPEC6`, deployed to the
//! endpoint under a DeployedModel id derived from the same name, so a re-run
//! computes the same ids and converges.
//!
//! A revision is compared before any production request can reach it: it is
//! deployed to a short-lived verification endpoint of its own (with all of that
//! endpoint's traffic) and, at the same time, to the serving endpoint with none of
//! its traffic (at 0 % beside the serving model, or, on a first deploy, with the
//! endpoint's split left empty). The comparison runs on the verification endpoint,
//! and every answer names the deployed model that gave it. Only when it passes does
//! the serving endpoint's split move to the new deployed model; the verification
//! endpoint is then deleted, and retiring undeploys the old model. Rolling back
//! deletes the verification endpoint, moves any traffic back and undeploys the new
//! model. `verify.mode: after-traffic` skips the verification endpoint and compares
//! on the serving endpoint after the split moved. Models and endpoints carry the
//! `modelport-deployment` and `modelport-digest` labels.
//!
//! This crate knows nothing about the terminal: it reports progress through
//! [`Reporter`] and returns data.

pub mod client;
mod doctor;
pub mod error;
pub mod iam;
pub mod names;
pub mod predictor;
pub mod storage;
pub mod vertex;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use google_cloud_aiplatform_v1::client::PredictionService;
use google_cloud_aiplatform_v1::model::Endpoint;
use modelport_core::predictor::Predictor;
use modelport_core::provider::{
    ActionKind, ArtifactRef, Copies, DestroyOptions, DestroyReport, EndpointStatus, Health, Plan,
    PlannedAction, Provider, ProviderError, ProviderResult, Reporter, RolloutPlan,
    require_revision,
};
use modelport_core::spec::{ArtifactLayout, DeploymentSpec, GcpSettings};
use modelport_core::state::{
    DeploymentState, EndpointRef, Protocol, Revision, RolloutMode, Which, Workspace,
};
use modelport_core::{Expected, Signature, env};
use modelport_verify::BatchPredictor;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;

pub use client::{ClientSettings, GcpClients};
use vertex::{Machine, ModelSpec};

/// What one revision created, recorded in the state's `resources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GcpResources {
    pub settings: ClientSettings,
    pub bucket: String,
    /// `PREFIX/NAME/DIGEST`: the revision's objects.
    pub dir: String,
    pub model_id: String,
    /// `projects/P/locations/R/models/MODEL_ID`.
    pub model_name: String,
    /// `projects/P/locations/R/endpoints/ENDPOINT_ID`.
    pub endpoint_name: String,
    pub deployed_model_id: String,
    /// `1 × n1-standard-2`, `1–3 × g2-standard-4 + 1 × NVIDIA_L4`.
    pub machine: String,
    pub dedicated: bool,
    pub deploy_timeout_s: u32,
    /// The model's signature, which types the endpoint's JSON answers.
    pub signature: Option<Signature>,
    /// `projects/P/locations/R/endpoints/ID`: the short-lived endpoint the revision is
    /// compared on before its traffic moves (`None` with `verify.mode: after-traffic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_endpoint: Option<String>,
    /// The revision's deployed model id on its verification endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_deployed_model_id: Option<String>,
}

impl GcpResources {
    fn of(rev: &Revision) -> ProviderResult<GcpResources> {
        serde_json::from_value(rev.resources.clone()).map_err(|e| {
            ProviderError::other(format!(
                "the state's Google Cloud resources are unreadable: {e}"
            ))
        })
    }

    fn artifact_uri(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.dir)
    }

    fn deadline(&self) -> Duration {
        Duration::from_secs(u64::from(self.deploy_timeout_s.max(1)))
    }
}

/// The provider behind `--provider gcp`.
pub struct GcpProvider {
    workspace: Workspace,
    clients: Mutex<HashMap<ClientSettings, Arc<GcpClients>>>,
}

impl GcpProvider {
    pub fn new(workspace: Workspace) -> GcpProvider {
        GcpProvider {
            workspace,
            clients: Mutex::new(HashMap::new()),
        }
    }

    async fn clients(&self, settings: &ClientSettings) -> ProviderResult<Arc<GcpClients>> {
        let mut cache = self.clients.lock().await;
        if let Some(c) = cache.get(settings) {
            return Ok(c.clone());
        }
        let c = Arc::new(client::connect(settings).await?);
        cache.insert(settings.clone(), c.clone());
        Ok(c)
    }

    fn save(&self, state: &DeploymentState) -> ProviderResult<()> {
        Ok(self.workspace.save_state(state)?)
    }
}

/// `provider.gcp`, or an error that says how to add it.
fn settings(spec: &DeploymentSpec) -> ProviderResult<&GcpSettings> {
    spec.provider
        .gcp
        .as_ref()
        .ok_or_else(|| ProviderError::InvalidInput {
            message: format!(
                "{}: no `provider.gcp` section; --provider gcp needs a project, a region and a bucket",
                spec.file.display()
            ),
            hint: Some(
                "add `provider:\n  gcp:\n    project: my-project\n    region: us-central1\n    bucket: my-models\n    image_uri: us-central1-docker.pkg.dev/my-project/modelport/modelport:0.1.0`"
                    .into(),
            ),
        })
}

/// The spec's parts that shape this provider's resources: a change to any of them
/// makes a new model and deployed model; others (like `verify`) do not.
pub fn resource_hash(spec: &DeploymentSpec) -> String {
    let gcp = spec.provider.gcp.as_ref();
    let shape = json!({
        "image": spec.gcp_image(),
        "service_account": gcp.and_then(|g| g.service_account.as_ref()),
        "kms_key_name": gcp.and_then(|g| g.kms_key_name.as_ref()),
        "labels": gcp.map(|g| &g.labels),
        "dedicated_endpoint": gcp.map(|g| g.dedicated_endpoint),
        "machine_type": spec.compute.machine_type(),
        "min_replicas": spec.compute.min_replicas,
        "max_replicas": spec.compute.max_replicas(),
        "accelerator": spec.compute.accelerator,
        "startup_timeout_s": spec.compute.startup_timeout_s,
        "serving": spec.serving,
    });
    modelport_package::sha256_bytes(shape.to_string().as_bytes())
}

/// The container's environment: the user's, then modelport serve's own settings.
fn container_environment(spec: &DeploymentSpec) -> BTreeMap<String, String> {
    let mut environment: BTreeMap<String, String> = spec.serving.env.clone().into_iter().collect();
    for (k, v) in [
        (
            env::MODELPORT_ENGINE,
            spec.serving.engine.as_str().to_string(),
        ),
        (
            env::MODELPORT_MAX_BODY_BYTES,
            spec.serving.max_body_bytes.to_string(),
        ),
        (env::MODELPORT_TIMEOUT_S, spec.serving.timeout_s.to_string()),
        (env::MODELPORT_MODEL_NAME, spec.name.as_str().to_string()),
    ] {
        environment.insert(k.to_string(), v);
    }
    if let Some(image) = spec.gcp_image() {
        environment.insert(env::MODELPORT_IMAGE.to_string(), image.to_string());
    }
    environment
}

/// Everything about the revision a spec and artifact make, computed without I/O.
struct Target {
    deployment: String,
    resources: GcpResources,
    model: ModelSpec,
    machine: Machine,
    endpoint_labels: BTreeMap<String, String>,
    kms_key_name: Option<String>,
    endpoint: EndpointRef,
}

fn target(
    spec: &DeploymentSpec,
    artifact: &ArtifactRef,
    settings: ClientSettings,
) -> ProviderResult<Target> {
    let gcp = self::settings(spec)?;
    let name = spec.name.as_str();
    let hash = resource_hash(spec);
    let model_id = names::model_id(name, &artifact.digest, &hash);
    let image = spec
        .gcp_image()
        .ok_or_else(|| ProviderError::InvalidInput {
            message: format!(
                "{}: no serving image: set `provider.gcp.image_uri` or `serving.image`",
                spec.file.display()
            ),
            hint: Some(
                "leave `provider.gcp.image_uri` out for `modelport deploy` to build and push one (`modelport image build`), or set it to an image in Artifact Registry in the endpoint's region: `REGION-docker.pkg.dev/PROJECT/REPO/modelport:TAG`".into(),
            ),
        })?
        .to_string();
    let dir = names::artifact_dir(&gcp.prefix, name, &artifact.digest);
    let mut labels: BTreeMap<String, String> = gcp.labels.clone();
    labels.insert(names::LABEL_DEPLOYMENT.into(), names::id_of(name));
    let mut endpoint_labels = labels.clone();
    labels.insert(
        names::LABEL_DIGEST.into(),
        names::digest_label(&artifact.digest),
    );
    // The endpoint outlives revisions: it is labelled with the deployment only.
    endpoint_labels.remove(names::LABEL_DIGEST);
    let machine = Machine {
        machine_type: spec.compute.machine_type().to_string(),
        accelerator: spec
            .compute
            .accelerator
            .as_ref()
            .map(|a| (a.kind.clone(), a.count)),
        min_replicas: spec.compute.min_replicas.max(1),
        max_replicas: spec
            .compute
            .max_replicas()
            .max(spec.compute.min_replicas.max(1)),
        service_account: gcp.service_account.clone(),
    };
    let parent = settings.parent();
    let endpoint_id = names::endpoint_id(name);
    let resources = GcpResources {
        bucket: gcp.bucket.clone(),
        dir: dir.clone(),
        model_name: format!("{parent}/models/{model_id}"),
        endpoint_name: format!("{parent}/endpoints/{endpoint_id}"),
        deployed_model_id: names::deployed_model_id(&model_id),
        model_id: model_id.clone(),
        machine: machine.describe(),
        dedicated: gcp.dedicated_endpoint,
        deploy_timeout_s: gcp.deploy_timeout_s,
        signature: artifact.signature.clone(),
        verify_endpoint: None,
        verify_deployed_model_id: None,
        settings,
    };
    let limit = if gcp.dedicated_endpoint {
        predictor::DEDICATED_MAX_BYTES
    } else {
        predictor::SHARED_MAX_BYTES
    } as u64;
    let (predict_url, health_url) = resources.settings.endpoint_urls(&resources.endpoint_name);
    let endpoint = EndpointRef {
        predict_url,
        health_url,
        protocol: Protocol::Instances,
        max_request_bytes: limit.min(spec.serving.max_body_bytes),
        timeout_s: spec.serving.timeout_s,
    };
    let model = ModelSpec {
        model_id,
        display_name: format!("{name} {}", short(&artifact.digest)),
        image,
        artifact_uri: resources.artifact_uri(),
        env: container_environment(spec),
        labels,
        kms_key_name: gcp.kms_key_name.clone(),
        // A large model gets a deployment window that fits it (fetching the files,
        // then loading them) unless the spec sets one.
        startup_timeout_s: spec
            .compute
            .startup_timeout_s
            .or(modelport_core::spec::derived_windows(artifact.size)
                .map(|w| w.download_s + w.startup_s)),
    };
    Ok(Target {
        deployment: name.to_string(),
        resources,
        model,
        machine,
        endpoint_labels,
        kms_key_name: gcp.kms_key_name.clone(),
        endpoint,
    })
}

fn short(digest: &str) -> &str {
    let d = names::hex(digest);
    &d[..d.len().min(12)]
}

/// The traffic split, as `id: percent` sorted by id.
fn traffic_of(ep: &Endpoint) -> String {
    let mut split: Vec<_> = ep.traffic_split.iter().collect();
    split.sort();
    split
        .iter()
        .map(|(id, pct)| format!("{id}: {pct}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn serves(ep: &Endpoint, deployed_id: &str) -> bool {
    ep.deployed_models.iter().any(|d| d.id == deployed_id)
        && ep.traffic_split.get(deployed_id).copied() == Some(100)
}

fn has(ep: &Endpoint, deployed_id: &str) -> bool {
    ep.deployed_models.iter().any(|d| d.id == deployed_id)
}

fn split(pairs: &[(&str, i32)]) -> HashMap<String, i32> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

impl GcpProvider {
    /// Undeploys every deployed model of the endpoint, then deletes it.
    async fn empty_and_delete_endpoint(
        &self,
        c: &GcpClients,
        endpoint: &str,
        deadline: Duration,
        reporter: &dyn Reporter,
    ) -> ProviderResult<bool> {
        vertex::settle(c, endpoint, deadline, reporter).await?;
        let Some(ep) = vertex::get_endpoint(c, endpoint).await? else {
            return Ok(false);
        };
        if !ep.traffic_split.is_empty() && ep.deployed_models.len() > 1 {
            // Undeploying a model that has traffic needs a split for the others: none.
            vertex::set_traffic(c, endpoint, HashMap::new()).await?;
        }
        for d in &ep.deployed_models {
            reporter.on_progress(&format!("undeploying deployed model {}", d.id));
            vertex::undeploy(c, endpoint, &d.id, HashMap::new(), deadline, reporter).await?;
        }
        vertex::delete_endpoint(c, endpoint, deadline, reporter).await
    }

    /// Refuses to touch an endpoint with this id that this deployment did not
    /// create: its labels must name the deployment, or the state must record it.
    fn check_owned(
        &self,
        ep: &Endpoint,
        deployment: &str,
        state: &DeploymentState,
    ) -> ProviderResult<()> {
        if state.active.is_some() || state.pending.is_some() {
            return Ok(());
        }
        if ep.labels.get(names::LABEL_DEPLOYMENT) == Some(&names::id_of(deployment)) {
            return Ok(());
        }
        Err(ProviderError::InvalidInput {
            message: format!(
                "the Vertex AI endpoint {} already exists and modelport did not create it (it has no `{}: {}` label)",
                ep.name,
                names::LABEL_DEPLOYMENT,
                names::id_of(deployment)
            ),
            hint: Some("give the deployment another `name` in modelport.yaml; modelport never changes an endpoint it does not own".into()),
        })
    }

    /// Brings the target revision up: on its verification endpoint with all of that
    /// endpoint's traffic (when it has one) and, at the same time, on the serving
    /// endpoint with none of its traffic. `state.pending` is already saved.
    async fn bring_up(
        &self,
        c: &GcpClients,
        t: &Target,
        res: &GcpResources,
        active: Option<&GcpResources>,
        artifact: &ArtifactRef,
        reporter: &dyn Reporter,
    ) -> ProviderResult<()> {
        let api = storage::ObjectsApi::new(
            c.settings.storage_endpoint.as_deref(),
            c.storage_credentials.clone(),
        )?;
        reporter.on_start(&format!("uploading the model to {}", res.artifact_uri()));
        storage::check_bucket_region(&api, &res.bucket, &c.settings.region).await?;
        let summary = storage::upload_revision(
            &c.storage,
            &api,
            &storage::UploadTarget {
                bucket: &res.bucket,
                dir: &res.dir,
                kms_key_name: t.kms_key_name.as_deref(),
            },
            artifact,
            reporter,
        )
        .await?;
        reporter.on_finish(&format!(
            "{} objects uploaded ({}), {} already there",
            summary.uploaded.len(),
            modelport_core::units::decimal_bytes(summary.bytes_sent),
            summary.skipped.len()
        ));
        reporter.on_start(&format!("uploading Vertex AI model {}", res.model_id));
        vertex::ensure_model(c, &t.model, res.deadline(), reporter).await?;
        reporter.on_start(&format!(
            "endpoint {} (created when it does not exist)",
            res.endpoint_name
        ));
        fn endpoint_spec<'a>(
            t: &'a Target,
            res: &GcpResources,
            id: &'a str,
        ) -> vertex::EndpointSpec<'a> {
            vertex::EndpointSpec {
                endpoint_id: id,
                display_name: &t.deployment,
                labels: &t.endpoint_labels,
                dedicated: res.dedicated,
                kms_key_name: t.kms_key_name.as_deref(),
            }
        }
        let serving_id = names::endpoint_id(&t.deployment);
        let ep = vertex::ensure_endpoint(
            c,
            &endpoint_spec(t, res, &serving_id),
            res.deadline(),
            reporter,
        )
        .await?;
        let serving_old = active.filter(|a| {
            a.deployed_model_id != res.deployed_model_id
                && ep
                    .traffic_split
                    .get(&a.deployed_model_id)
                    .is_some_and(|p| *p > 0)
        });
        let traffic_first = res.verify_endpoint.is_none();
        // "0" names the model being deployed. An empty split leaves the endpoint's
        // split as it is (Vertex's rule), so a first deploy's model gets no traffic.
        let traffic = match (serving_old, traffic_first) {
            (Some(a), _) => split(&[(&a.deployed_model_id, 100), ("0", 0)]),
            (None, true) => split(&[("0", 100)]),
            (None, false) => HashMap::new(),
        };
        let serving = async {
            if has(&ep, &res.deployed_model_id) {
                return Ok(());
            }
            reporter.on_start(&format!(
                "deploying model {} as {} on {} with no traffic",
                res.model_id, res.deployed_model_id, res.machine
            ));
            vertex::deploy(
                c,
                &vertex::Deployment {
                    endpoint: &res.endpoint_name,
                    model: &res.model_name,
                    deployed_id: &res.deployed_model_id,
                    display_name: &t.model.display_name,
                    machine: &t.machine,
                },
                traffic.clone(),
                res.deadline(),
                reporter,
            )
            .await
        };
        let verification = async {
            let (Some(name), Some(deployed)) =
                (&res.verify_endpoint, &res.verify_deployed_model_id)
            else {
                return Ok(());
            };
            let id = name.rsplit('/').next().unwrap_or_default();
            reporter.on_start(&format!(
                "creating the verification endpoint {name} (deleted once the comparison is done)"
            ));
            let vep =
                vertex::ensure_endpoint(c, &endpoint_spec(t, res, id), res.deadline(), reporter)
                    .await?;
            if has(&vep, deployed) {
                return Ok(());
            }
            reporter.on_start(&format!(
                "deploying model {} as {deployed} on the verification endpoint",
                res.model_id
            ));
            vertex::deploy(
                c,
                &vertex::Deployment {
                    endpoint: name,
                    model: &res.model_name,
                    deployed_id: deployed,
                    display_name: &t.model.display_name,
                    machine: &t.machine,
                },
                split(&[("0", 100)]),
                res.deadline(),
                reporter,
            )
            .await
        };
        let (a, b) = tokio::join!(serving, verification);
        a?;
        b?;
        reporter.on_finish(&format!(
            "deployed model {} is ready on endpoint {}",
            res.deployed_model_id, res.endpoint_name
        ));
        Ok(())
    }
}

/// Records `rev` as reached on its serving endpoint, with `res` as its resources
/// less the verification endpoint it no longer has.
fn on_serving_endpoint(rev: &mut Revision, res: &GcpResources) -> ProviderResult<()> {
    let mut served = res.clone();
    served.verify_endpoint = None;
    served.verify_deployed_model_id = None;
    (rev.endpoint.predict_url, rev.endpoint.health_url) =
        res.settings.endpoint_urls(&res.endpoint_name);
    rev.resources = serde_json::to_value(&served)
        .map_err(|e| ProviderError::other(format!("cannot record the resources: {e}")))?;
    Ok(())
}

#[async_trait::async_trait]
impl Provider for GcpProvider {
    fn name(&self) -> &'static str {
        "gcp"
    }

    async fn plan(
        &self,
        spec: &DeploymentSpec,
        artifact: &ArtifactRef,
        state: Option<&DeploymentState>,
        mode: RolloutMode,
    ) -> ProviderResult<Plan> {
        let settings = ClientSettings::from_spec(settings(spec)?)?;
        let c = self.clients(&settings).await?;
        let t = target(spec, artifact, settings)?;
        let res = with_mode(t.resources.clone(), mode);
        let mut actions = Vec::new();
        let recorded = |rev: &Option<Revision>| rev.as_ref().and_then(|r| GcpResources::of(r).ok());
        let pending = state.and_then(|s| recorded(&s.pending));
        let active = state.and_then(|s| recorded(&s.active));
        if let Some(p) = &pending
            && p.model_id != res.model_id
        {
            actions.push(PlannedAction {
                kind: ActionKind::Delete,
                resource: format!(
                    "Vertex AI model {} (deployed as {})",
                    p.model_id, p.deployed_model_id
                ),
                reason: "left over from an interrupted deploy".into(),
            });
        }
        let live = vertex::get_endpoint(&c, &res.endpoint_name).await?;
        let rollout = match &res.verify_endpoint {
            Some(v) => RolloutPlan {
                mode,
                verify_via: format!(
                    "`:predict` on the short-lived endpoint {v}, where only the new model is deployed"
                ),
                traffic: format!(
                    "the traffic split of {} moves to deployed model {} only after it passes",
                    res.endpoint_name, res.deployed_model_id
                ),
                // The new model on the serving endpoint and on its verification one.
                stages: vec![Copies::of(1, 2), Copies::of(1, 1)],
            },
            None => RolloutPlan {
                mode,
                verify_via: format!("`:predict` on {}", res.endpoint_name),
                traffic: "the traffic split moves to the new deployed model before the comparison (verify.mode: after-traffic, or --no-verify)".into(),
                stages: vec![Copies::of(1, 1)],
            },
        };
        if live
            .as_ref()
            .is_some_and(|ep| serves(ep, &res.deployed_model_id))
        {
            actions.push(PlannedAction {
                kind: ActionKind::Keep,
                resource: format!("Vertex AI endpoint {}", res.endpoint_name),
                reason: format!(
                    "deployed model {} serves 100% on {}, artifact {}",
                    res.deployed_model_id,
                    res.machine,
                    short(&artifact.digest)
                ),
            });
        } else {
            let api = storage::ObjectsApi::new(
                c.settings.storage_endpoint.as_deref(),
                c.storage_credentials.clone(),
            )?;
            // The manifest goes up last, after the files (and an archive's copy).
            let dir_layout = artifact.layout == ArtifactLayout::Dir;
            let archive = format!("{}/{}", res.dir, modelport_package::ARCHIVE_NAME);
            let uploaded = (dir_layout || api.meta(&res.bucket, &archive).await?.is_some())
                && api
                    .meta(
                        &res.bucket,
                        &format!("{}/{}", res.dir, modelport_package::MANIFEST_NAME),
                    )
                    .await?
                    .is_some();
            actions.push(PlannedAction {
                kind: if uploaded {
                    ActionKind::Keep
                } else {
                    ActionKind::Create
                },
                resource: format!("{}/", res.artifact_uri()),
                reason: if uploaded {
                    "already uploaded (content-addressed; unchanged files are skipped by crc32c)"
                        .into()
                } else {
                    format!(
                        "upload the model files{} ({})",
                        if dir_layout { "" } else { " and model.tar.gz" },
                        modelport_core::units::decimal_bytes(artifact.size)
                    )
                },
            });
            let model_exists = vertex::get_model(&c, &res.model_name).await?.is_some();
            actions.push(PlannedAction {
                kind: if model_exists {
                    ActionKind::Keep
                } else {
                    ActionKind::Create
                },
                resource: format!("Vertex AI model {}", res.model_id),
                reason: format!("artifact {}", short(&artifact.digest)),
            });
            actions.push(PlannedAction {
                kind: if live.is_some() {
                    ActionKind::Keep
                } else {
                    ActionKind::Create
                },
                resource: format!("Vertex AI endpoint {}", res.endpoint_name),
                reason: if live.is_some() {
                    "exists".into()
                } else {
                    format!(
                        "new {} endpoint",
                        if res.dedicated {
                            "dedicated"
                        } else {
                            "shared public"
                        }
                    )
                },
            });
            let old = live.as_ref().and_then(|ep| {
                ep.deployed_models
                    .iter()
                    .find(|d| {
                        d.id != res.deployed_model_id
                            && ep.traffic_split.get(&d.id).is_some_and(|p| *p > 0)
                    })
                    .map(|d| d.id.clone())
            });
            let mut why = Vec::new();
            if let Some(a) = &active {
                if state
                    .and_then(|s| s.active.as_ref())
                    .is_some_and(|r| r.artifact_digest != artifact.digest)
                {
                    why.push(format!("new artifact {}", short(&artifact.digest)));
                }
                if a.machine != res.machine {
                    why.push(format!("{} → {}", a.machine, res.machine));
                }
            }
            if why.is_empty() && old.is_some() {
                why.push("modelport.yaml changed".into());
            }
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(": {}", why.join("; "))
            };
            if let (Some(v), Some(d)) = (&res.verify_endpoint, &res.verify_deployed_model_id) {
                actions.push(PlannedAction {
                    kind: ActionKind::Create,
                    resource: format!("Vertex AI endpoint {v}"),
                    reason: format!(
                        "short-lived: the new model alone (deployed model {d} on {}) for its comparison, deleted afterwards",
                        res.machine
                    ),
                });
            }
            actions.push(PlannedAction {
                kind: ActionKind::Create,
                resource: format!(
                    "deployed model {} on {}",
                    res.deployed_model_id, res.machine
                ),
                reason: match (&old, &res.verify_endpoint) {
                    (Some(o), Some(_)) => format!(
                        "deploy at 0% next to {o} while its copy is compared, then move the traffic to it{why}"
                    ),
                    (None, Some(_)) => format!(
                        "deploy with no traffic while its copy is compared, then give it 100%{why}"
                    ),
                    (Some(o), None) => format!(
                        "deploy at 0% next to {o}, then move the traffic to it before the comparison{why}"
                    ),
                    (None, None) => "deploy with 100% of the traffic".into(),
                },
            });
            if let Some(o) = old {
                actions.push(PlannedAction {
                    kind: ActionKind::Delete,
                    resource: format!("deployed model {o} and its Vertex AI model"),
                    reason: "undeployed once the new revision serves all the traffic".into(),
                });
            }
        }
        Ok(Plan {
            name: spec.name.as_str().to_string(),
            provider: self.name().to_string(),
            actions,
            spec: spec.clone(),
            // The canonical spec hash, as on every provider (resource names use
            // `resource_hash`, which only the settings that shape resources change).
            spec_hash: modelport_package::spec_hash(spec),
            artifact: artifact.clone(),
            rollout,
            previous: state.cloned(),
        })
    }

    async fn apply(&self, plan: &Plan, reporter: &dyn Reporter) -> ProviderResult<DeploymentState> {
        let spec = &plan.spec;
        let settings = ClientSettings::from_spec(settings(spec)?)?;
        let c = self.clients(&settings).await?;
        let t = target(spec, &plan.artifact, settings)?;
        let mut state = plan.starting_state();
        let live = vertex::get_endpoint(&c, &t.resources.endpoint_name).await?;
        if let Some(ep) = &live {
            self.check_owned(ep, &plan.name, &state)?;
        }
        let recorded_active = state.active.as_ref().map(GcpResources::of).transpose()?;
        let resumed = state
            .pending
            .as_ref()
            .map(GcpResources::of)
            .transpose()?
            .filter(|p| p.model_id == t.resources.model_id);
        if resumed.is_none()
            && live
                .as_ref()
                .is_some_and(|ep| serves(ep, &t.resources.deployed_model_id))
        {
            let res = &t.resources;
            // Already serving this revision. Without a record of it (the state file
            // was lost), the state is rebuilt from what the project holds.
            if recorded_active
                .as_ref()
                .is_none_or(|a| a.model_id != res.model_id)
            {
                reporter.on_progress(&format!(
                    "endpoint {} already serves {}: recording it",
                    res.endpoint_name, res.model_id
                ));
                state.active = Some(plan.revision(t.endpoint.clone(), res)?);
                self.save(&state)?;
            } else if let Some(active) = &mut state.active {
                let current = plan.revision(t.endpoint.clone(), res)?;
                if active.verify != current.verify {
                    active.verify = current.verify;
                    self.save(&state)?;
                }
            }
            return Ok(state);
        }
        if plan.is_noop() {
            return Ok(state);
        }
        let res = match resumed {
            Some(p) => p,
            None => {
                let res = with_mode(t.resources.clone(), plan.mode());
                let endpoint = match &res.verify_endpoint {
                    Some(v) => {
                        let (predict_url, health_url) = res.settings.endpoint_urls(v);
                        EndpointRef {
                            predict_url,
                            health_url,
                            ..t.endpoint.clone()
                        }
                    }
                    None => t.endpoint.clone(),
                };
                // Recorded before anything is created: a crash from here on leaves
                // state that a re-run resumes and `destroy` cleans up.
                state.pending = Some(plan.revision(endpoint, &res)?);
                self.save(&state)?;
                res
            }
        };
        self.bring_up(
            &c,
            &t,
            &res,
            recorded_active.as_ref(),
            &plan.artifact,
            reporter,
        )
        .await?;
        Ok(state)
    }

    async fn move_traffic(
        &self,
        mut state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        let pending = require_revision(&state, Which::Pending)?.clone();
        let p = GcpResources::of(&pending)?;
        let c = self.clients(&p.settings).await?;
        let ep = vertex::get_endpoint(&c, &p.endpoint_name)
            .await?
            .ok_or_else(|| {
                ProviderError::other(format!("endpoint {} vanished", p.endpoint_name))
            })?;
        if !serves(&ep, &p.deployed_model_id) {
            reporter.on_start(&format!(
                "moving the traffic of {} to deployed model {}{}",
                p.endpoint_name,
                p.deployed_model_id,
                if state.active.is_some() {
                    " (the previous one stays deployed until it is retired)"
                } else {
                    ""
                }
            ));
            let mut traffic = split(&[(&p.deployed_model_id, 100)]);
            for d in &ep.deployed_models {
                traffic.entry(d.id.clone()).or_insert(0);
            }
            vertex::set_traffic(&c, &p.endpoint_name, traffic).await?;
        }
        if let Some(v) = &p.verify_endpoint {
            reporter.on_start(&format!("deleting the verification endpoint {v}"));
            self.empty_and_delete_endpoint(&c, v, p.deadline(), reporter)
                .await?;
        }
        // From now on the revision is reached where production reaches it.
        if let Some(r) = state.pending.as_mut() {
            on_serving_endpoint(r, &p)?;
        }
        self.save(&state)?;
        Ok(state)
    }

    async fn retire(
        &self,
        mut state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        let Some(pending) = state.pending.clone() else {
            return Ok(state);
        };
        let p = GcpResources::of(&pending)?;
        let c = self.clients(&p.settings).await?;
        if let Some(v) = &p.verify_endpoint {
            self.empty_and_delete_endpoint(&c, v, p.deadline(), reporter)
                .await?;
        }
        if let Some(old) = &state.active {
            let o = GcpResources::of(old)?;
            if o.deployed_model_id != p.deployed_model_id {
                let oc = self.clients(&o.settings).await?;
                reporter.on_start(&format!(
                    "undeploying the previous deployed model {}",
                    o.deployed_model_id
                ));
                vertex::undeploy(
                    &oc,
                    &o.endpoint_name,
                    &o.deployed_model_id,
                    split(&[(&p.deployed_model_id, 100)]),
                    o.deadline(),
                    reporter,
                )
                .await?;
                reporter.on_progress(&format!("deleting model {}", o.model_id));
                vertex::delete_model(&oc, &o.model_name, o.deadline(), reporter).await?;
            }
        }
        let mut active = pending;
        on_serving_endpoint(&mut active, &p)?;
        state.active = Some(active);
        state.pending = None;
        self.save(&state)?;
        Ok(state)
    }

    async fn rollback(
        &self,
        mut state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        let Some(pending) = state.pending.clone() else {
            return Ok(state);
        };
        let p = GcpResources::of(&pending)?;
        let c = self.clients(&p.settings).await?;
        let active = state.active.as_ref().map(GcpResources::of).transpose()?;
        if let Some(v) = &p.verify_endpoint {
            reporter.on_start(&format!("deleting the verification endpoint {v}"));
            self.empty_and_delete_endpoint(&c, v, p.deadline(), reporter)
                .await?;
        }
        let same = active
            .as_ref()
            .is_some_and(|a| a.deployed_model_id == p.deployed_model_id);
        if !same {
            // A deployModel this rollout started may still run (the command that
            // started it was stopped): what it makes must be seen to be undone.
            vertex::settle(&c, &p.endpoint_name, p.deadline(), reporter).await?;
            let live = vertex::get_endpoint(&c, &p.endpoint_name).await?;
            match (&active, &live) {
                (Some(a), Some(ep)) if has(ep, &a.deployed_model_id) => {
                    if !serves(ep, &a.deployed_model_id) {
                        reporter.on_start(&format!(
                            "moving the traffic back to deployed model {}",
                            a.deployed_model_id
                        ));
                        let mut traffic = split(&[(&a.deployed_model_id, 100)]);
                        for d in &ep.deployed_models {
                            traffic.entry(d.id.clone()).or_insert(0);
                        }
                        vertex::set_traffic(&c, &p.endpoint_name, traffic).await?;
                    }
                    reporter.on_start(&format!(
                        "undeploying deployed model {}",
                        p.deployed_model_id
                    ));
                    vertex::undeploy(
                        &c,
                        &p.endpoint_name,
                        &p.deployed_model_id,
                        split(&[(&a.deployed_model_id, 100)]),
                        p.deadline(),
                        reporter,
                    )
                    .await?;
                }
                (_, Some(_)) => {
                    // Nothing else of this deployment serves there: the endpoint was
                    // this rollout's.
                    reporter.on_start(&format!("removing endpoint {}", p.endpoint_name));
                    self.empty_and_delete_endpoint(&c, &p.endpoint_name, p.deadline(), reporter)
                        .await?;
                }
                (_, None) => {}
            }
            reporter.on_progress(&format!("deleting model {}", p.model_id));
            vertex::delete_model(&c, &p.model_name, p.deadline(), reporter).await?;
        }
        state.pending = None;
        self.save(&state)?;
        Ok(state)
    }

    async fn status(&self, state: &DeploymentState) -> ProviderResult<EndpointStatus> {
        let Some(rev) = state.active.as_ref().or(state.pending.as_ref()) else {
            return Ok(EndpointStatus::nothing_recorded(
                state,
                "no endpoint recorded",
            ));
        };
        let res = GcpResources::of(rev)?;
        let c = self.clients(&res.settings).await?;
        let live = vertex::get_endpoint(&c, &res.endpoint_name).await?;
        let (health, detail) = match &live {
            None => (
                Health::Stopped,
                format!("endpoint {} does not exist", res.endpoint_name),
            ),
            Some(ep) => {
                let mut detail = format!(
                    "Vertex AI endpoint {} ({}), traffic {{{}}}",
                    res.endpoint_name,
                    res.machine,
                    traffic_of(ep)
                );
                let health = if serves(ep, &res.deployed_model_id) {
                    Health::InService
                } else if has(ep, &res.deployed_model_id) || state.pending.is_some() {
                    detail.push_str(&format!(
                        "; deployed model {} does not take all the traffic",
                        res.deployed_model_id
                    ));
                    Health::Updating
                } else {
                    detail.push_str(&format!(
                        "; deployed model {} is not deployed",
                        res.deployed_model_id
                    ));
                    Health::Unhealthy
                };
                (health, detail)
            }
        };
        Ok(EndpointStatus::of(state, rev, health, detail))
    }

    async fn endpoint(
        &self,
        state: &DeploymentState,
        which: Which,
    ) -> ProviderResult<Box<dyn Predictor>> {
        let rev = require_revision(state, which)?;
        let res = GcpResources::of(rev)?;
        let c = self.clients(&res.settings).await?;
        // Until its traffic moves, a pending revision is asked on its verification
        // endpoint, where it is the only deployed model.
        let (endpoint, deployed) = match (&res.verify_endpoint, &res.verify_deployed_model_id) {
            (Some(v), Some(d)) if which == Which::Pending => (v.clone(), d.clone()),
            _ => (res.endpoint_name.clone(), res.deployed_model_id.clone()),
        };
        let mut digests = HashMap::new();
        for r in [&state.active, &state.pending].into_iter().flatten() {
            if let Ok(g) = GcpResources::of(r) {
                let digest = format!("sha256:{}", r.model_digest);
                if let Some(d) = &g.verify_deployed_model_id {
                    digests.insert(d.clone(), digest.clone());
                }
                digests.insert(g.deployed_model_id, digest);
            }
        }
        // Dedicated endpoints answer predictions on their own DNS name only.
        let mut client = c.predictions.clone();
        if res.dedicated
            && res.settings.vertex_endpoint.is_none()
            && let Some(ep) = vertex::get_endpoint(&c, &endpoint).await?
            && !ep.dedicated_endpoint_dns.is_empty()
        {
            client = PredictionService::builder()
                .with_endpoint(format!("https://{}", ep.dedicated_endpoint_dns))
                .build()
                .await
                .map_err(|e| {
                    ProviderError::other(format!("cannot build the prediction client: {e}"))
                })?;
        }
        let transport = predictor::PredictTransport {
            client,
            endpoint,
            label: state.name.clone(),
            digests,
            attempt_timeout: predictor::PredictTransport::attempt_timeout(rev.endpoint.timeout_s),
        };
        let expected = Expected {
            digest: format!("sha256:{}", rev.model_digest),
            revision: Some(deployed),
            revision_kind: "deployed model".into(),
        };
        Ok(Box::new(
            BatchPredictor::for_revision(
                transport,
                &state.name,
                &rev.endpoint,
                res.signature.clone(),
            )
            .expecting(expected),
        ))
    }

    async fn destroy(
        &self,
        state: DeploymentState,
        options: &DestroyOptions,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DestroyReport> {
        let mut report = DestroyReport::default();
        let revisions: Vec<GcpResources> = [&state.pending, &state.active]
            .into_iter()
            .flatten()
            .map(GcpResources::of)
            .collect::<ProviderResult<_>>()?;
        let Some(first) = revisions.first() else {
            self.workspace.remove_state(&state.name)?;
            return Ok(report);
        };
        let c = self.clients(&first.settings).await?;
        let mut endpoints = vec![first.endpoint_name.clone()];
        endpoints.extend(revisions.iter().filter_map(|r| r.verify_endpoint.clone()));
        for endpoint in &endpoints {
            reporter.on_start(&format!("removing endpoint {endpoint}"));
            if self
                .empty_and_delete_endpoint(&c, endpoint, first.deadline(), reporter)
                .await?
            {
                report
                    .removed
                    .push(format!("Vertex AI endpoint {endpoint}"));
            }
        }
        let label = names::id_of(&state.name);
        let mut models: Vec<String> = revisions.iter().map(|r| r.model_name.clone()).collect();
        for m in vertex::list_models(&c, names::LABEL_DEPLOYMENT, &label).await? {
            if !models.contains(&m.name) {
                models.push(m.name);
            }
        }
        for m in &models {
            reporter.on_progress(&format!("deleting model {m}"));
            if vertex::delete_model(&c, m, first.deadline(), reporter).await? {
                report.removed.push(format!("Vertex AI model {m}"));
            }
        }
        if options.purge {
            let api = storage::ObjectsApi::new(
                c.settings.storage_endpoint.as_deref(),
                c.storage_credentials.clone(),
            )?;
            // Every revision this deployment ever uploaded sits under its own
            // prefix (`PREFIX/DEPLOYMENT/DIGEST/`): a purge empties that prefix,
            // so the artifacts of revisions retired long ago go too.
            let mut purge: Vec<(String, String)> = Vec::new();
            for r in &revisions {
                let prefix = match r.dir.rsplit_once('/') {
                    Some((deployment, _digest)) if !deployment.is_empty() => {
                        format!("{deployment}/")
                    }
                    _ => format!("{}/", r.dir),
                };
                if !purge.contains(&(r.bucket.clone(), prefix.clone())) {
                    purge.push((r.bucket.clone(), prefix));
                }
            }
            for (bucket, prefix) in purge {
                let objects = api.list(&bucket, &prefix).await?;
                for o in &objects {
                    api.delete(&bucket, &o.name).await?;
                }
                report.removed.push(format!(
                    "gs://{bucket}/{prefix} ({} objects)",
                    objects.len()
                ));
            }
        }
        self.workspace.remove_state(&state.name)?;
        let mut left = Vec::new();
        for ep in vertex::list_endpoints(&c, names::LABEL_DEPLOYMENT, Some(&label)).await? {
            left.push(format!("Vertex AI endpoint {}", ep.name));
        }
        for m in vertex::list_models(&c, names::LABEL_DEPLOYMENT, &label).await? {
            left.push(format!("Vertex AI model {}", m.name));
        }
        report.leftover = left;
        Ok(report)
    }

    async fn doctor(&self, spec: &DeploymentSpec) -> Vec<modelport_core::provider::Check> {
        doctor::run(self, spec).await
    }

    async fn discover(&self, spec: Option<&DeploymentSpec>) -> ProviderResult<Vec<EndpointStatus>> {
        let Some(gcp) = spec.and_then(|s| s.provider.gcp.as_ref()) else {
            return Err(ProviderError::InvalidInput {
                message: "listing Vertex AI deployments needs a project and a region".into(),
                hint: Some("pass `-f modelport.yaml` with a `provider.gcp` section".into()),
            });
        };
        let settings = ClientSettings::from_spec(gcp)?;
        let c = self.clients(&settings).await?;
        let mut found = Vec::new();
        for ep in vertex::list_endpoints(&c, names::LABEL_DEPLOYMENT, None).await? {
            let serving = ep
                .traffic_split
                .iter()
                .find(|(_, p)| **p == 100)
                .map(|(id, _)| id.clone());
            let health = match (&serving, ep.deployed_models.is_empty()) {
                (Some(_), _) => Health::InService,
                (None, true) => Health::Stopped,
                (None, false) => Health::Updating,
            };
            let digest = match &serving {
                Some(id) => match ep.deployed_models.iter().find(|d| &d.id == id) {
                    Some(d) => vertex::get_model(&c, &d.model)
                        .await?
                        .and_then(|m| m.labels.get(names::LABEL_DIGEST).cloned()),
                    None => None,
                },
                None => None,
            };
            found.push(EndpointStatus {
                name: if ep.display_name.is_empty() {
                    ep.labels
                        .get(names::LABEL_DEPLOYMENT)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    ep.display_name.clone()
                },
                provider: self.name().to_string(),
                health,
                detail: format!(
                    "Vertex AI endpoint {}: traffic {{{}}}; artifact {}",
                    ep.name,
                    traffic_of(&ep),
                    digest.as_deref().unwrap_or("unknown")
                ),
                predict_url: Some(settings.endpoint_urls(&ep.name).0),
                model_digest: None,
                started_at: None,
                pending: false,
                rollout_phase: None,
            });
        }
        Ok(found)
    }

    fn iam_policy(&self, spec: &DeploymentSpec) -> ProviderResult<serde_json::Value> {
        Ok(iam::policies(spec, settings(spec)?))
    }
}

/// `res` with the verification endpoint that `mode` calls for: one for a rollout
/// that compares before the traffic moves, none otherwise.
fn with_mode(mut res: GcpResources, mode: RolloutMode) -> GcpResources {
    if mode == RolloutMode::BeforeTraffic {
        let parent = res.settings.parent();
        res.verify_endpoint = Some(format!(
            "{parent}/endpoints/{}",
            names::verification_endpoint_id(&res.model_id)
        ));
        res.verify_deployed_model_id = Some(names::verification_deployed_model_id(&res.model_id));
    } else {
        res.verify_endpoint = None;
        res.verify_deployed_model_id = None;
    }
    res
}

/// Fetches the model `modelport serve` was given as a `gs://` `AIP_STORAGE_URI`
/// into `dest`, with Application Default Credentials (or anonymously from
/// `MODELPORT_GCP_STORAGE_ENDPOINT`, an emulator).
pub async fn fetch_model(uri: &str, dest: &std::path::Path) -> ProviderResult<()> {
    let endpoint = std::env::var(client::MODELPORT_GCP_STORAGE_ENDPOINT)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let storage = client::storage(endpoint.as_deref()).await?;
    storage::download_model_dir(&storage, uri, dest).await
}
