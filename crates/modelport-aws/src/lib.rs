//! The AWS provider: the artifact in S3, the endpoint on SageMaker, predictions
//! through SageMaker Runtime. Every request goes through the official SDK crates;
//! an endpoint override points them all at an emulator.
//!
//! One deployment is one endpoint, named after the deployment. Each revision (an
//! artifact and the settings that shape its resources) gets its own model, its own
//! production variant and its own endpoint configuration, all named
//! `NAME-ARTIFACT8-SPEC6`, so a re-run computes the same names and converges. Every
//! resource carries the `modelport-deployment` and `modelport-digest` tags.
//!
//! How a revision reaches production ([`Strategy`]): an update of an instance-based
//! endpoint adds the new revision as a second production variant at weight 0
//! (UpdateEndpoint to a two-variant configuration), compares it through
//! InvokeEndpoint with `TargetVariant`, moves the weights with
//! UpdateEndpointWeightsAndCapacities only when it passed, then retires the old
//! variant with UpdateEndpoint to the new revision's own configuration. Serverless
//! endpoints take one variant only, so a serverless revision is compared on a
//! short-lived endpoint of its own first. A first deploy creates the endpoint with
//! the revision as its only variant. `verify.mode: after-traffic` keeps the single
//! UpdateEndpoint of earlier versions.
//!
//! This crate knows nothing about the terminal: it reports progress through
//! [`Reporter`] and returns data.

pub mod builder;
mod doctor;
pub mod ecr;
pub mod error;
pub mod iam;
pub mod names;
pub mod predictor;
pub mod sagemaker;
pub mod upload;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use modelport_core::predictor::Predictor;
use modelport_core::provider::{
    ActionKind, ArtifactRef, Copies, DestroyOptions, DestroyReport, EndpointStatus, Health, Plan,
    PlannedAction, Provider, ProviderError, ProviderResult, Reporter, RolloutPlan,
    require_revision,
};
use modelport_core::spec::{ArtifactLayout, AwsSettings, DeploymentSpec};
use modelport_core::state::{
    DeploymentState, EndpointRef, Protocol, Revision, RolloutMode, Which, Workspace,
};
use modelport_core::{Expected, Signature, env};
use modelport_verify::BatchPredictor;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;

pub use builder::{AwsClients, ClientSettings};
use sagemaker::{Capacity, Goal, RevisionSpec};

/// What one revision created, recorded in the state's `resources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwsResources {
    pub settings: ClientSettings,
    /// The region the clients resolved, recorded even when it came from the chain.
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub model_name: String,
    pub config_name: String,
    pub endpoint_name: String,
    /// `1 × ml.m5.large` or `serverless 2048 MB, ...`.
    pub capacity: String,
    pub serverless: bool,
    pub deploy_timeout_s: u32,
    /// The model's signature, which types the endpoint's JSON answers.
    pub signature: Option<Signature>,
    /// The production variant that runs this revision.
    #[serde(default = "legacy_variant")]
    pub variant: String,
    /// How this revision is brought to production.
    #[serde(default)]
    pub strategy: Strategy,
    /// The two-variant configuration it sits in, at weight 0, while it is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_config: Option<String>,
    /// The short-lived endpoint it is compared on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_endpoint: Option<String>,
    /// The tags of everything it creates, for the endpoint it may create later.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The artifact is a directory: `key` is its prefix (ending in `/`), and the
    /// model reads it as uncompressed `S3Prefix` model data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncompressed: bool,
    /// The multipart upload of its artifact while one is in flight: a run stopped
    /// mid-upload leaves it here for the next run (or a rollback, or `destroy`) to abort.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<String>,
}

fn legacy_variant() -> String {
    names::VARIANT.to_string()
}

/// How a revision is brought to production on SageMaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// UpdateEndpoint to the revision's own configuration: it takes the traffic as
    /// it comes up (`verify.mode: after-traffic`, `--no-verify`, and every revision
    /// deployed before variants).
    #[default]
    Replace,
    /// A second production variant at weight 0 beside the serving one, compared
    /// with `TargetVariant`, then given the traffic by its weight.
    Variant,
    /// A first deploy: the endpoint is created with the revision as its only variant.
    NewEndpoint,
    /// Compared on a short-lived endpoint of its own, then the serving endpoint is
    /// updated to it (serverless endpoints take one variant only).
    VerificationEndpoint,
}

impl AwsResources {
    fn of(rev: &Revision) -> ProviderResult<AwsResources> {
        serde_json::from_value(rev.resources.clone()).map_err(|e| {
            ProviderError::other(format!("the state's AWS resources are unreadable: {e}"))
        })
    }

    fn model_data_url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// The provider behind `--provider aws`.
pub struct AwsProvider {
    workspace: Workspace,
    credentials: Option<aws_credential_types::Credentials>,
    clients: Mutex<HashMap<ClientSettings, Arc<AwsClients>>>,
}

impl AwsProvider {
    pub fn new(workspace: Workspace) -> AwsProvider {
        AwsProvider {
            workspace,
            credentials: None,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Uses these credentials instead of the default chain.
    pub fn with_credentials(
        mut self,
        credentials: aws_credential_types::Credentials,
    ) -> AwsProvider {
        self.credentials = Some(credentials);
        self
    }

    async fn clients(&self, settings: &ClientSettings) -> ProviderResult<Arc<AwsClients>> {
        let mut cache = self.clients.lock().await;
        if let Some(c) = cache.get(settings) {
            return Ok(c.clone());
        }
        let c = Arc::new(builder::connect(settings, self.credentials.as_ref()).await?);
        cache.insert(settings.clone(), c.clone());
        Ok(c)
    }

    fn save(&self, state: &DeploymentState) -> ProviderResult<()> {
        Ok(self.workspace.save_state(state)?)
    }
}

/// `provider.aws`, or an error that says how to add it.
fn settings(spec: &DeploymentSpec) -> ProviderResult<&AwsSettings> {
    spec.provider
        .aws
        .as_ref()
        .ok_or_else(|| ProviderError::InvalidInput {
            message: format!(
                "{}: no `provider.aws` section; --provider aws needs a bucket and an execution role",
                spec.file.display()
            ),
            hint: Some(
                "add `provider:\n  aws:\n    bucket: my-models\n    role_arn: arn:aws:iam::123456789012:role/SageMakerExecution\n    image_uri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0`"
                    .into(),
            ),
        })
}

/// The spec's parts that shape this provider's resources: a change to any of them
/// makes a new model and endpoint configuration; others (like `verify`) do not.
pub fn resource_hash(spec: &DeploymentSpec) -> String {
    let aws = spec.provider.aws.as_ref();
    let shape = json!({
        "role_arn": aws.map(|a| &a.role_arn),
        "image": spec.aws_image(),
        "kms_key_id": aws.and_then(|a| a.kms_key_id.as_ref()),
        "vpc": aws.and_then(|a| a.vpc.as_ref()),
        "network_isolation": aws.map(|a| a.network_isolation),
        "tags": aws.map(|a| &a.tags),
        "instance_type": spec.compute.instance_type(),
        "instance_count": spec.compute.instance_count(),
        "serverless": spec.compute.serverless,
        "startup_timeout_s": spec.compute.startup_timeout_s,
        "model_download_timeout_s": spec.compute.model_download_timeout_s,
        "volume_size_gb": spec.compute.volume_size_gb,
        "serving": spec.serving,
    });
    modelport_package::sha256_bytes(shape.to_string().as_bytes())
}

/// The container's environment: the user's, then modelport serve's own settings.
fn container_environment(spec: &DeploymentSpec) -> HashMap<String, String> {
    let mut environment: HashMap<String, String> = spec
        .serving
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let name = spec.name.as_str();
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
        (env::MODELPORT_MODEL_NAME, name.to_string()),
    ] {
        environment.insert(k.to_string(), v);
    }
    // So that a comparison names the image that answered.
    if let Some(image) = spec.aws_image() {
        environment.insert(env::MODELPORT_IMAGE.to_string(), image.to_string());
    }
    environment
}

fn capacity(spec: &DeploymentSpec) -> Capacity {
    match &spec.compute.serverless {
        Some(s) => Capacity::Serverless {
            memory_mb: s.memory_mb,
            max_concurrency: s.max_concurrency,
        },
        None => Capacity::Instances {
            instance_type: spec.compute.instance_type().to_string(),
            count: spec.compute.instance_count(),
        },
    }
}

/// Everything about the revision a spec and artifact make, computed without I/O.
struct Target {
    resources: AwsResources,
    revision: RevisionSpec,
    endpoint: EndpointRef,
}

fn target(
    spec: &DeploymentSpec,
    artifact: &ArtifactRef,
    region: &str,
    settings: ClientSettings,
) -> ProviderResult<Target> {
    let aws = settings_of(spec)?;
    let name = spec.name.as_str();
    let hash = resource_hash(spec);
    let revision_name = names::revision_name(name, &artifact.digest, &hash);
    let image = spec
        .aws_image()
        .ok_or_else(|| ProviderError::InvalidInput {
            message: format!(
                "{}: no serving image: set `provider.aws.image_uri` or `serving.image`",
                spec.file.display()
            ),
            hint: Some(
                "leave `provider.aws.image_uri` out for `modelport deploy` to build and push one (`modelport image build`), or set it to an image in ECR in the endpoint's region: `ACCOUNT.dkr.ecr.REGION.amazonaws.com/modelport:TAG`".into(),
            ),
        })?
        .to_string();
    let capacity = capacity(spec);
    let serverless = matches!(capacity, Capacity::Serverless { .. });
    let windows = modelport_core::spec::derived_windows(artifact.size);
    let uncompressed = artifact.layout == ArtifactLayout::Dir;
    if uncompressed && serverless {
        return Err(ProviderError::InvalidInput {
            message: format!(
                "{}: the model is packaged as a directory, but SageMaker Serverless Inference reads only a model.tar.gz",
                spec.file.display()
            ),
            hint: Some(
                "set `model.layout: archive`, or run on instances (`compute.instance_type`)".into(),
            ),
        });
    }
    let key = if uncompressed {
        names::artifact_prefix(&aws.prefix, name, &artifact.digest)
    } else {
        names::artifact_key(&aws.prefix, name, &artifact.digest)
    };
    if uncompressed {
        // Refused by plan already, before anything is uploaded.
        let manifest = modelport_package::read_dir_manifest(&artifact.path).map_err(|e| {
            ProviderError::other(format!("cannot read {}: {e}", artifact.path.display()))
        })?;
        names::check_model_files(
            &key,
            manifest
                .files
                .iter()
                .map(|f| f.path.as_str())
                .chain([modelport_package::MANIFEST_NAME]),
        )?;
    }
    let volume_size_gb = volume(spec, artifact)?;
    let mut tags: BTreeMap<String, String> = aws.tags.clone();
    tags.insert(names::TAG_DEPLOYMENT.into(), name.to_string());
    tags.insert(
        names::TAG_DIGEST.into(),
        names::hex(&artifact.digest).to_string(),
    );
    let resources = AwsResources {
        settings,
        region: region.to_string(),
        bucket: aws.bucket.clone(),
        key,
        model_name: revision_name.clone(),
        config_name: revision_name.clone(),
        endpoint_name: names::endpoint_name(name),
        capacity: capacity.describe(),
        serverless,
        deploy_timeout_s: aws.deploy_timeout_s,
        signature: artifact.signature.clone(),
        variant: revision_name.clone(),
        strategy: Strategy::Replace,
        transition_config: None,
        verify_endpoint: None,
        tags: tags.clone(),
        uncompressed,
        uploads: Vec::new(),
    };
    let limit = if serverless {
        predictor::SERVERLESS_MAX_BYTES
    } else {
        predictor::REALTIME_MAX_BYTES
    } as u64;
    let endpoint = EndpointRef {
        predict_url: format!(
            "sagemaker://{region}/endpoints/{}/invocations",
            resources.endpoint_name
        ),
        health_url: format!("sagemaker://{region}/endpoints/{}", resources.endpoint_name),
        protocol: Protocol::Instances,
        max_request_bytes: limit.min(spec.serving.max_body_bytes),
        timeout_s: spec.serving.timeout_s.min(60),
    };
    let revision = RevisionSpec {
        model_name: revision_name.clone(),
        config_name: revision_name.clone(),
        variant_name: revision_name,
        image,
        model_data_url: resources.model_data_url(),
        uncompressed,
        role_arn: aws.role_arn.clone(),
        environment: container_environment(spec),
        vpc: aws
            .vpc
            .as_ref()
            .map(|v| (v.subnets.clone(), v.security_groups.clone())),
        network_isolation: aws.network_isolation,
        capacity,
        kms_key_id: aws.kms_key_id.clone(),
        // A large model gets windows that fit it unless the spec sets them.
        startup_timeout_s: spec
            .compute
            .startup_timeout_s
            .or(windows.map(|w| w.startup_s)),
        download_timeout_s: spec
            .compute
            .model_download_timeout_s
            .or(windows.map(|w| w.download_s)),
        volume_size_gb,
        tags: tags.into_iter().collect(),
    };
    Ok(Target {
        resources,
        revision,
        endpoint,
    })
}

/// The instance's storage volume for the model (`VolumeSizeInGB`), from the catalog's
/// knowledge of the instance type and the model's size on its disk: the files, and
/// the archive beside them while it is unpacked.
fn volume(spec: &DeploymentSpec, artifact: &ArtifactRef) -> ProviderResult<Option<u32>> {
    let (model_bytes, disk) = match artifact.layout {
        ArtifactLayout::Dir => (
            artifact.size,
            modelport_core::spec::disk_bytes(artifact.size, None),
        ),
        // Only a large archive needs its unpacked size, read from its manifest.
        ArtifactLayout::Archive
            if artifact.size <= modelport_core::spec::DIR_LAYOUT_ABOVE_BYTES =>
        {
            (artifact.size, artifact.size)
        }
        ArtifactLayout::Archive => {
            let manifest = modelport_package::read_manifest(&artifact.path).map_err(|e| {
                ProviderError::other(format!("cannot read {}: {e}", artifact.path.display()))
            })?;
            let files: u64 = manifest.files.iter().map(|f| f.size).sum();
            (
                files,
                modelport_core::spec::disk_bytes(files, Some(artifact.size)),
            )
        }
    };
    let catalogs =
        modelport_catalog::Catalogs::from_env().map_err(|e| ProviderError::InvalidInput {
            message: e.to_string(),
            hint: e.hint(),
        })?;
    let Some(catalog) = catalogs.get("aws") else {
        return Ok(spec.compute.volume_size_gb);
    };
    catalog
        .volume_gb(spec, model_bytes, disk)
        .map_err(|e| ProviderError::InvalidInput {
            message: e.to_string(),
            hint: e.hint.clone(),
        })
}

/// `, model download window 750 s, start-up window 660 s` when either is set.
fn windows_note(r: &RevisionSpec) -> String {
    let mut note = String::new();
    if let Some(s) = r.download_timeout_s {
        note.push_str(&format!(", model download window {s} s"));
    }
    if let Some(s) = r.startup_timeout_s {
        note.push_str(&format!(", start-up window {s} s"));
    }
    note
}

fn settings_of(spec: &DeploymentSpec) -> ProviderResult<&AwsSettings> {
    settings(spec)
}

fn deadline(res: &AwsResources) -> Duration {
    Duration::from_secs(u64::from(res.deploy_timeout_s.max(1)))
}

fn short(digest: &str) -> &str {
    let d = names::hex(digest);
    &d[..d.len().min(12)]
}

/// The sagemaker:// URL of an endpoint, for reports and `status`.
fn endpoint_ref(region: &str, endpoint: &str, limit: u64, timeout_s: u32) -> EndpointRef {
    EndpointRef {
        predict_url: format!("sagemaker://{region}/endpoints/{endpoint}/invocations"),
        health_url: format!("sagemaker://{region}/endpoints/{endpoint}"),
        protocol: Protocol::Instances,
        max_request_bytes: limit,
        timeout_s,
    }
}

/// Records `rev` as reached on the serving endpoint, with `res` as its resources.
fn on_serving_endpoint(rev: &mut Revision, res: &AwsResources) -> ProviderResult<()> {
    rev.endpoint = endpoint_ref(
        &res.region,
        &res.endpoint_name,
        rev.endpoint.max_request_bytes,
        rev.endpoint.timeout_s,
    );
    rev.resources = serde_json::to_value(res)
        .map_err(|e| ProviderError::other(format!("cannot record the resources: {e}")))?;
    Ok(())
}

/// How the target revision reaches production, given the serving endpoint as it is.
fn choose(mode: RolloutMode, serverless: bool, live: Option<&sagemaker::EndpointInfo>) -> Strategy {
    if mode.traffic_first() {
        return Strategy::Replace;
    }
    if serverless {
        return Strategy::VerificationEndpoint;
    }
    match live {
        None => Strategy::NewEndpoint,
        Some(i) if i.status == "Failed" => Strategy::NewEndpoint,
        // A second variant needs an instance-based endpoint with one variant: a
        // serverless one (or one with other variants) is compared elsewhere first.
        Some(i) if i.weights.len() == 1 && !i.serverless => Strategy::Variant,
        Some(_) => Strategy::VerificationEndpoint,
    }
}

/// Moves `endpoint` (as `live` shows it) to `config` with UpdateEndpoint unless it is
/// there already, and waits until it is InService on it.
async fn switch_config(
    sm: &aws_sdk_sagemaker::Client,
    endpoint: &str,
    live: Option<&sagemaker::EndpointInfo>,
    config: &str,
    why: &str,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> ProviderResult<()> {
    if live.is_some_and(|i| i.config_name != config) {
        reporter.on_start(&format!("updating endpoint {endpoint} to {config}: {why}"));
        sagemaker::update_endpoint(sm, endpoint, config).await?;
    }
    sagemaker::wait(sm, endpoint, Goal::InService(config), deadline, reporter).await?;
    Ok(())
}

/// The weights that give `to` all the traffic among `live`'s variants.
fn all_to(live: &sagemaker::EndpointInfo, to: &str) -> Vec<(String, f32)> {
    live.weights
        .iter()
        .map(|w| (w.name.clone(), if w.name == to { 1.0 } else { 0.0 }))
        .collect()
}

impl AwsProvider {
    /// Refuses to touch an endpoint of the same name that this deployment did not
    /// create: its tags must name the deployment, or the state must record it.
    async fn check_owned(
        &self,
        clients: &AwsClients,
        info: &sagemaker::EndpointInfo,
        deployment: &str,
        state: &DeploymentState,
    ) -> ProviderResult<()> {
        if state.active.is_some() || state.pending.is_some() {
            return Ok(());
        }
        let tags = sagemaker::list_tags(&clients.sagemaker, &info.arn).await?;
        if tags.get(names::TAG_DEPLOYMENT).map(String::as_str) == Some(deployment) {
            return Ok(());
        }
        Err(ProviderError::InvalidInput {
            message: format!(
                "a SageMaker endpoint named {deployment} already exists in {} and modelport did not create it (it has no `{}: {deployment}` tag)",
                clients.region,
                names::TAG_DEPLOYMENT
            ),
            hint: Some("give the deployment another `name` in modelport.yaml; modelport never updates an endpoint it does not own".into()),
        })
    }

    /// Creates `endpoint` on `config` (re-creating it when it had failed) and waits
    /// until it is InService.
    async fn create_endpoint(
        &self,
        sm: &aws_sdk_sagemaker::Client,
        endpoint: &str,
        config: &str,
        tags: &[(String, String)],
        deadline: Duration,
        reporter: &dyn Reporter,
    ) -> ProviderResult<()> {
        let live = sagemaker::wait(sm, endpoint, Goal::Settled, deadline, reporter).await?;
        match live {
            Some(i) if i.status == "Failed" => {
                // A failed endpoint cannot be updated; it holds no instances, so
                // deleting and re-creating it loses nothing.
                reporter.on_start(&format!(
                    "re-creating endpoint {endpoint}, which had failed"
                ));
                sagemaker::delete_endpoint(sm, endpoint).await?;
                sagemaker::wait(sm, endpoint, Goal::Gone, deadline, reporter).await?;
                sagemaker::create_endpoint(sm, endpoint, config, tags).await?;
            }
            Some(i) if i.config_name == config => {}
            Some(i) => {
                reporter.on_start(&format!(
                    "updating endpoint {endpoint} from {} to {config}",
                    i.config_name
                ));
                sagemaker::update_endpoint(sm, endpoint, config).await?;
            }
            None => {
                reporter.on_start(&format!("creating endpoint {endpoint}"));
                sagemaker::create_endpoint(sm, endpoint, config, tags).await?;
            }
        }
        sagemaker::wait(sm, endpoint, Goal::InService(config), deadline, reporter).await?;
        Ok(())
    }

    /// Deletes `endpoint` if it exists and waits until it is gone.
    async fn remove_endpoint(
        &self,
        sm: &aws_sdk_sagemaker::Client,
        endpoint: &str,
        deadline: Duration,
        reporter: &dyn Reporter,
    ) -> ProviderResult<bool> {
        if sagemaker::wait(sm, endpoint, Goal::Settled, deadline, reporter)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        reporter.on_start(&format!("deleting endpoint {endpoint}"));
        sagemaker::delete_endpoint(sm, endpoint).await?;
        sagemaker::wait(sm, endpoint, Goal::Gone, deadline, reporter).await?;
        Ok(true)
    }

    /// Brings the target revision up; `state.pending` (with its strategy) is saved.
    #[allow(clippy::too_many_arguments)]
    async fn bring_up(
        &self,
        clients: &AwsClients,
        t: &Target,
        res: &AwsResources,
        live: Option<&sagemaker::EndpointInfo>,
        artifact: &ArtifactRef,
        state: &mut DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<()> {
        let sm = &clients.sagemaker;
        let deadline = deadline(res);
        reporter.on_start(&format!(
            "uploading the artifact to s3://{}/{}",
            res.bucket, res.key
        ));
        upload::check_bucket_region(&clients.s3, &res.bucket, &clients.region).await?;
        let kms = t.revision.kms_key_id.as_deref();
        // The upload in flight is recorded on the pending revision, so a run stopped
        // mid-upload leaves an id the next one aborts (and a concurrent deploy's
        // upload, which nobody here recorded, is left alone).
        let mut record = |upload: Option<&str>| -> ProviderResult<()> {
            if let Some(pending) = state.pending.as_mut() {
                pending.resources["uploads"] =
                    serde_json::json!(upload.into_iter().collect::<Vec<_>>());
            }
            self.save(state)
        };
        upload::upload_artifact(
            &clients.s3,
            &upload::UploadTarget {
                bucket: &res.bucket,
                key: &res.key,
                kms_key_id: kms,
                earlier_uploads: &res.uploads,
            },
            artifact,
            reporter,
            &mut record,
        )
        .await?;
        reporter.on_start(&format!("creating model {}", res.model_name));
        sagemaker::ensure_model(sm, &t.revision).await?;
        reporter.on_start(&format!(
            "creating endpoint config {} ({})",
            res.config_name, res.capacity
        ));
        sagemaker::ensure_config(sm, &t.revision).await?;
        match res.strategy {
            Strategy::Variant => {
                let live = live.ok_or_else(|| {
                    ProviderError::other(format!("endpoint {} vanished", res.endpoint_name))
                })?;
                let transition = res.transition_config.as_deref().unwrap_or_default();
                let serving = sagemaker::config_variants(sm, &live.config_name).await?;
                reporter.on_start(&format!(
                    "creating endpoint config {transition}: {} as it is, and {} at weight 0",
                    live.config_name, res.variant
                ));
                sagemaker::ensure_transition_config(sm, transition, serving, &t.revision).await?;
                if live.config_name != transition {
                    reporter.on_start(&format!(
                        "updating endpoint {} to {transition}: the new variant joins at weight 0, so no production request reaches it",
                        res.endpoint_name
                    ));
                    sagemaker::update_endpoint(sm, &res.endpoint_name, transition).await?;
                }
                reporter.on_start(&format!("waiting for endpoint {}", res.endpoint_name));
                sagemaker::wait(
                    sm,
                    &res.endpoint_name,
                    Goal::InService(transition),
                    deadline,
                    reporter,
                )
                .await?;
            }
            Strategy::VerificationEndpoint => {
                let endpoint = res.verify_endpoint.as_deref().unwrap_or_default();
                reporter.on_start(&format!(
                    "creating the verification endpoint {endpoint} (deleted once the comparison is done)"
                ));
                self.create_endpoint(
                    sm,
                    endpoint,
                    &res.config_name,
                    &t.revision.tags,
                    deadline,
                    reporter,
                )
                .await?;
            }
            Strategy::NewEndpoint | Strategy::Replace => {
                self.create_endpoint(
                    sm,
                    &res.endpoint_name,
                    &res.config_name,
                    &t.revision.tags,
                    deadline,
                    reporter,
                )
                .await?;
            }
        }
        reporter.on_finish(&format!(
            "variant {} of endpoint {} is InService",
            res.variant,
            res.verify_endpoint.as_deref().unwrap_or(&res.endpoint_name)
        ));
        Ok(())
    }

    /// Deletes a revision's model and configurations; ones already gone are fine.
    async fn delete_revision(
        &self,
        sm: &aws_sdk_sagemaker::Client,
        res: &AwsResources,
        reporter: &dyn Reporter,
    ) -> ProviderResult<()> {
        reporter.on_progress(&format!(
            "deleting endpoint config and model {}",
            res.config_name
        ));
        if let Some(t) = &res.transition_config {
            sagemaker::delete_config(sm, t).await?;
        }
        sagemaker::delete_config(sm, &res.config_name).await?;
        sagemaker::delete_model(sm, &res.model_name).await
    }
}

#[async_trait::async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn plan(
        &self,
        spec: &DeploymentSpec,
        artifact: &ArtifactRef,
        state: Option<&DeploymentState>,
        mode: RolloutMode,
    ) -> ProviderResult<Plan> {
        let settings = ClientSettings::from_spec(settings(spec)?);
        let clients = self.clients(&settings).await?;
        let t = target(spec, artifact, &clients.region, settings)?;
        let res = &t.resources;
        let mut actions = Vec::new();
        let recorded = |rev: &Option<Revision>| rev.as_ref().and_then(|r| AwsResources::of(r).ok());
        let pending = state.and_then(|s| recorded(&s.pending));
        let active = state.and_then(|s| recorded(&s.active));
        if let Some(p) = &pending
            && p.config_name != res.config_name
        {
            actions.push(PlannedAction {
                kind: ActionKind::Delete,
                resource: format!("model + endpoint config {}", p.config_name),
                reason: "left over from an interrupted deploy".into(),
            });
        }
        let live = sagemaker::describe_endpoint(&clients.sagemaker, &res.endpoint_name).await?;
        let serving_ours = live
            .as_ref()
            .is_some_and(|i| i.status == "InService" && i.config_name == res.config_name);
        let strategy = choose(mode, res.serverless, live.as_ref());
        let vb = &res.variant;
        let rollout = match strategy {
            Strategy::Variant => RolloutPlan {
                mode,
                verify_via: format!("InvokeEndpoint with TargetVariant {vb}, a variant at weight 0"),
                traffic: format!(
                    "UpdateEndpointWeightsAndCapacities gives {vb} all the traffic only after it passes; \
                     until then the serving variant keeps weight 1"
                ),
                // UpdateEndpoint brings up a new fleet of both variants beside the old
                // one; retiring brings up a new fleet of the new variant alone.
                stages: vec![Copies::of(2, 1), Copies::of(1, 1), Copies::of(1, 2)],
            },
            Strategy::NewEndpoint => RolloutPlan {
                mode,
                verify_via: format!("InvokeEndpoint with TargetVariant {vb}"),
                traffic: "a new endpoint answers whoever calls it from the moment it is InService; \
                          `deploy` compares it before it reports success, and deletes it if it fails"
                    .to_string(),
                stages: vec![Copies::of(0, 1)],
            },
            Strategy::VerificationEndpoint => RolloutPlan {
                mode,
                verify_via: format!(
                    "InvokeEndpoint on the short-lived endpoint {}",
                    names::verification_endpoint_name(&res.config_name)
                ),
                traffic: format!(
                    "endpoint {} is moved to the verified configuration only after it passes \
                     (a serverless endpoint takes one variant, so it cannot hold the new one at weight 0)",
                    res.endpoint_name
                ),
                stages: vec![Copies::of(1, 1), Copies::of(1, 2)],
            },
            Strategy::Replace => RolloutPlan {
                mode,
                verify_via: format!("InvokeEndpoint on {}", res.endpoint_name),
                traffic: "UpdateEndpoint moves all the traffic before the comparison (verify.mode: after-traffic, or --no-verify)".into(),
                stages: vec![Copies::of(1, 1)],
            },
        };
        if serving_ours {
            actions.push(PlannedAction {
                kind: ActionKind::Keep,
                resource: format!("SageMaker endpoint {}", res.endpoint_name),
                reason: format!(
                    "InService on {} ({}), artifact {}",
                    res.config_name,
                    res.capacity,
                    short(&artifact.digest)
                ),
            });
        } else {
            let sm = &clients.sagemaker;
            // A directory's manifest goes up last, and its sha256 is the artifact's digest.
            let probe = if res.uncompressed {
                format!("{}{}", res.key, modelport_package::MANIFEST_NAME)
            } else {
                res.key.clone()
            };
            let object = clients
                .s3
                .head_object()
                .bucket(&res.bucket)
                .key(&probe)
                .send()
                .await;
            let uploaded = object
                .ok()
                .and_then(|h| {
                    h.metadata()
                        .and_then(|m| m.get(upload::SHA256_METADATA).cloned())
                })
                .is_some_and(|sha| sha == names::hex(&artifact.digest));
            actions.push(PlannedAction {
                kind: if uploaded {
                    ActionKind::Keep
                } else {
                    ActionKind::Create
                },
                resource: format!("s3://{}/{}", res.bucket, res.key),
                reason: if uploaded {
                    "already uploaded (same sha256)".into()
                } else {
                    format!(
                        "upload {}{}",
                        modelport_core::units::decimal_bytes(artifact.size),
                        if res.uncompressed {
                            ", uncompressed: SageMaker places the files under /opt/ml/model as they are"
                        } else {
                            ""
                        }
                    )
                },
            });
            let model_exists = sm
                .describe_model()
                .model_name(&res.model_name)
                .send()
                .await
                .is_ok();
            actions.push(PlannedAction {
                kind: if model_exists {
                    ActionKind::Keep
                } else {
                    ActionKind::Create
                },
                resource: format!("SageMaker model {}", res.model_name),
                reason: format!(
                    "artifact {}{}",
                    short(&artifact.digest),
                    windows_note(&t.revision)
                ),
            });
            let config_exists = sm
                .describe_endpoint_config()
                .endpoint_config_name(&res.config_name)
                .send()
                .await
                .is_ok();
            actions.push(PlannedAction {
                kind: if config_exists {
                    ActionKind::Keep
                } else {
                    ActionKind::Create
                },
                resource: format!("SageMaker endpoint config {}", res.config_name),
                reason: format!(
                    "variant {vb} alone: {}{}",
                    res.capacity,
                    t.revision
                        .volume_size_gb
                        .map(|gb| format!(", volume {gb} GB"))
                        .unwrap_or_default()
                ),
            });
            let mut why = Vec::new();
            if let Some(a) = &active {
                if state
                    .and_then(|s| s.active.as_ref())
                    .is_some_and(|r| r.artifact_digest != artifact.digest)
                {
                    why.push(format!("new artifact {}", short(&artifact.digest)));
                }
                if a.capacity != res.capacity {
                    why.push(format!("{} → {}", a.capacity, res.capacity));
                }
            }
            if why.is_empty() {
                why.push("modelport.yaml changed".into());
            }
            let endpoint = format!("SageMaker endpoint {}", res.endpoint_name);
            match (strategy, &live) {
                (Strategy::Variant, Some(i)) => {
                    let transition =
                        names::transition_config_name(&res.config_name, &i.config_name);
                    actions.push(PlannedAction {
                        kind: ActionKind::Create,
                        resource: format!("SageMaker endpoint config {transition}"),
                        reason: format!("{} as it is, plus {vb} at weight 0", i.config_name),
                    });
                    actions.push(PlannedAction {
                        kind: ActionKind::Update,
                        resource: endpoint,
                        reason: format!(
                            "{}: UpdateEndpoint to {transition} (a new fleet for both variants, no availability loss), \
                             compare {vb}, move the weights, then UpdateEndpoint to {} (a new fleet for {vb} alone)",
                            why.join("; "),
                            res.config_name
                        ),
                    });
                }
                (Strategy::VerificationEndpoint, _) => {
                    actions.push(PlannedAction {
                        kind: ActionKind::Create,
                        resource: format!(
                            "SageMaker endpoint {}",
                            names::verification_endpoint_name(&res.config_name)
                        ),
                        reason: "short-lived: compares the new revision, deleted afterwards".into(),
                    });
                    actions.push(PlannedAction {
                        kind: if live.is_some() {
                            ActionKind::Update
                        } else {
                            ActionKind::Create
                        },
                        resource: endpoint,
                        reason: format!(
                            "{}: moved to {} once the new revision passed",
                            why.join("; "),
                            res.config_name
                        ),
                    });
                }
                (_, Some(i)) if i.status == "Failed" => actions.push(PlannedAction {
                    kind: ActionKind::Create,
                    resource: endpoint,
                    reason: "the endpoint failed before: delete and create it again".to_string(),
                }),
                (_, None) => actions.push(PlannedAction {
                    kind: ActionKind::Create,
                    resource: endpoint,
                    reason: "new endpoint".to_string(),
                }),
                (_, Some(i)) => actions.push(PlannedAction {
                    kind: ActionKind::Update,
                    resource: endpoint,
                    reason: format!(
                        "UpdateEndpoint from {} to {}: {} (traffic moves before the comparison)",
                        i.config_name,
                        res.config_name,
                        why.join("; ")
                    ),
                }),
            }
            if let Some(a) = &active
                && a.config_name != res.config_name
            {
                actions.push(PlannedAction {
                    kind: ActionKind::Delete,
                    resource: format!("model + endpoint config {}", a.config_name),
                    reason: "removed once the new revision serves all the traffic".into(),
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
        let settings = ClientSettings::from_spec(settings(spec)?);
        let clients = self.clients(&settings).await?;
        let t = target(spec, &plan.artifact, &clients.region, settings)?;
        let sm = &clients.sagemaker;
        let mut state = plan.starting_state();
        let recorded_active = state.active.as_ref().map(AwsResources::of).transpose()?;
        let live = sagemaker::describe_endpoint(sm, &t.resources.endpoint_name).await?;
        if let Some(info) = &live {
            self.check_owned(&clients, info, &plan.name, &state).await?;
        }
        let mut res = t.resources.clone();
        // A revision this rollout already recorded (a resumed apply) keeps its strategy.
        let resumed = state
            .pending
            .as_ref()
            .map(AwsResources::of)
            .transpose()?
            .filter(|p| p.config_name == res.config_name);
        if resumed.is_none()
            && live
                .as_ref()
                .is_some_and(|i| i.status == "InService" && i.config_name == res.config_name)
        {
            // Already serving this revision. Without a record of it (the state file
            // was lost), the state is rebuilt from what the account holds.
            if recorded_active
                .as_ref()
                .is_none_or(|a| a.config_name != res.config_name)
            {
                reporter.on_progress(&format!(
                    "endpoint {} already serves {}: recording it",
                    res.endpoint_name, res.config_name
                ));
                state.active = Some(plan.revision(t.endpoint.clone(), &res)?);
                self.save(&state)?;
            } else if let Some(active) = &mut state.active {
                // Settings that shape no resource (how `compare` checks) still
                // take effect.
                let current = plan.revision(t.endpoint.clone(), &res)?;
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
        let live = sagemaker::wait(
            sm,
            &res.endpoint_name,
            Goal::Settled,
            deadline(&res),
            reporter,
        )
        .await?;
        match resumed {
            Some(p) => res = p,
            None => {
                res.strategy = choose(plan.mode(), res.serverless, live.as_ref());
                match res.strategy {
                    Strategy::Variant => {
                        let serving = live.as_ref().map(|i| i.config_name.as_str()).unwrap_or("");
                        res.transition_config =
                            Some(names::transition_config_name(&res.config_name, serving));
                    }
                    Strategy::VerificationEndpoint => {
                        res.verify_endpoint =
                            Some(names::verification_endpoint_name(&res.config_name));
                    }
                    Strategy::NewEndpoint | Strategy::Replace => {}
                }
                let mut endpoint = t.endpoint.clone();
                if let Some(v) = &res.verify_endpoint {
                    endpoint = endpoint_ref(
                        &res.region,
                        v,
                        endpoint.max_request_bytes,
                        endpoint.timeout_s,
                    );
                }
                // Recorded before anything is created: a crash from here on leaves
                // state that a re-run resumes and `destroy` cleans up.
                state.pending = Some(plan.revision(endpoint, &res)?);
                self.save(&state)?;
            }
        }
        self.bring_up(
            &clients,
            &t,
            &res,
            live.as_ref(),
            &plan.artifact,
            &mut state,
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
        let p = AwsResources::of(require_revision(&state, Which::Pending)?)?;
        let clients = self.clients(&p.settings).await?;
        let sm = &clients.sagemaker;
        let deadline = deadline(&p);
        match p.strategy {
            Strategy::Variant => {
                let transition = p.transition_config.as_deref().unwrap_or_default();
                let live = sagemaker::wait(sm, &p.endpoint_name, Goal::Settled, deadline, reporter)
                    .await?
                    .ok_or_else(|| {
                        ProviderError::other(format!("endpoint {} vanished", p.endpoint_name))
                    })?;
                let wanted = all_to(&live, &p.variant);
                if live.config_name == transition && !live.has_weights(&wanted) {
                    reporter.on_start(&format!(
                        "moving all the traffic of endpoint {} to variant {} (UpdateEndpointWeightsAndCapacities)",
                        p.endpoint_name, p.variant
                    ));
                    sagemaker::update_weights(sm, &p.endpoint_name, &wanted).await?;
                }
                if live.config_name == transition {
                    sagemaker::wait(
                        sm,
                        &p.endpoint_name,
                        Goal::Weights(transition, &wanted),
                        deadline,
                        reporter,
                    )
                    .await?;
                }
            }
            Strategy::VerificationEndpoint => {
                let tags: Vec<(String, String)> = p.tags.clone().into_iter().collect();
                reporter.on_start(&format!(
                    "moving endpoint {} to the verified configuration {}",
                    p.endpoint_name, p.config_name
                ));
                self.create_endpoint(
                    sm,
                    &p.endpoint_name,
                    &p.config_name,
                    &tags,
                    deadline,
                    reporter,
                )
                .await?;
                if let Some(v) = &p.verify_endpoint {
                    self.remove_endpoint(sm, v, deadline, reporter).await?;
                }
                // From now on the revision is reached where production reaches it.
                let mut moved = p.clone();
                moved.verify_endpoint = None;
                if let Some(r) = state.pending.as_mut() {
                    on_serving_endpoint(r, &moved)?;
                }
                self.save(&state)?;
            }
            Strategy::NewEndpoint | Strategy::Replace => {}
        }
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
        let p = AwsResources::of(&pending)?;
        let clients = self.clients(&p.settings).await?;
        let sm = &clients.sagemaker;
        let deadline = deadline(&p);
        if p.strategy == Strategy::Variant {
            let live =
                sagemaker::wait(sm, &p.endpoint_name, Goal::Settled, deadline, reporter).await?;
            let why = format!(
                "variant {} alone (the previous variant is retired)",
                p.variant
            );
            switch_config(
                sm,
                &p.endpoint_name,
                live.as_ref(),
                &p.config_name,
                &why,
                deadline,
                reporter,
            )
            .await?;
            if let Some(t) = &p.transition_config {
                sagemaker::delete_config(sm, t).await?;
            }
        }
        if let Some(v) = &p.verify_endpoint {
            self.remove_endpoint(sm, v, deadline, reporter).await?;
        }
        if let Some(old) = &state.active {
            let o = AwsResources::of(old)?;
            if o.config_name != p.config_name {
                reporter.on_start(&format!(
                    "deleting the previous endpoint config and model {}",
                    o.config_name
                ));
                let oc = self.clients(&o.settings).await?;
                self.delete_revision(&oc.sagemaker, &o, reporter).await?;
            }
        }
        let mut active = pending;
        let mut served = p;
        served.transition_config = None;
        served.verify_endpoint = None;
        on_serving_endpoint(&mut active, &served)?;
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
        let p = AwsResources::of(&pending)?;
        let clients = self.clients(&p.settings).await?;
        let sm = &clients.sagemaker;
        let deadline = deadline(&p);
        let active = state.active.as_ref().map(AwsResources::of).transpose()?;
        if let Some(v) = &p.verify_endpoint {
            self.remove_endpoint(sm, v, deadline, reporter).await?;
        }
        let live = sagemaker::wait(sm, &p.endpoint_name, Goal::Settled, deadline, reporter).await?;
        match (&active, &live) {
            (Some(a), Some(info)) if info.config_name != a.config_name => {
                if p.strategy == Strategy::Variant
                    && p.transition_config.as_deref() == Some(info.config_name.as_str())
                    && info.weight(&p.variant).is_some_and(|w| w > 0.0)
                {
                    // The weights move back at once, without waiting for a new fleet.
                    let wanted = all_to(info, &a.variant);
                    reporter.on_start(&format!(
                        "moving the traffic of endpoint {} back to variant {}",
                        a.endpoint_name, a.variant
                    ));
                    sagemaker::update_weights(sm, &a.endpoint_name, &wanted).await?;
                    sagemaker::wait(
                        sm,
                        &a.endpoint_name,
                        Goal::Weights(&info.config_name, &wanted),
                        deadline,
                        reporter,
                    )
                    .await?;
                }
                switch_config(
                    sm,
                    &a.endpoint_name,
                    Some(info),
                    &a.config_name,
                    "back to the previous revision alone",
                    deadline,
                    reporter,
                )
                .await?;
            }
            (None, Some(_)) => {
                self.remove_endpoint(sm, &p.endpoint_name, deadline, reporter)
                    .await?;
            }
            _ => {}
        }
        upload::abort_recorded(&clients.s3, &p.bucket, &p.key, &p.uploads).await;
        if active
            .as_ref()
            .is_none_or(|a| a.config_name != p.config_name)
        {
            self.delete_revision(sm, &p, reporter).await?;
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
        let res = AwsResources::of(rev)?;
        let clients = self.clients(&res.settings).await?;
        let live = sagemaker::describe_endpoint(&clients.sagemaker, &res.endpoint_name).await?;
        let (health, detail) = match &live {
            None => (
                Health::Stopped,
                format!(
                    "endpoint {} does not exist in {}",
                    res.endpoint_name, res.region
                ),
            ),
            Some(i) => {
                let health = match i.status.as_str() {
                    "InService" => Health::InService,
                    "Creating" | "Updating" | "SystemUpdating" | "RollingBack" => Health::Updating,
                    "OutOfService" => Health::Unhealthy,
                    "Deleting" => Health::Stopped,
                    _ => Health::Failed,
                };
                let mut detail = format!(
                    "SageMaker endpoint {} in {}: {}, {}",
                    res.endpoint_name,
                    res.region,
                    i.summary(),
                    res.capacity
                );
                if let Some(r) = &i.failure_reason {
                    detail.push_str(&format!("; last failure: {r}"));
                }
                if i.status == "InService" && i.config_name != res.config_name {
                    detail.push_str(&format!(
                        "; serving {}, not the recorded {}",
                        i.config_name, res.config_name
                    ));
                }
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
        let res = AwsResources::of(rev)?;
        let clients = self.clients(&res.settings).await?;
        // The pending revision is reached by its variant, whatever the weights; the
        // active one as production clients reach it, by the weights.
        let (endpoint, target_variant) = match which {
            Which::Pending => (
                res.verify_endpoint
                    .clone()
                    .unwrap_or_else(|| res.endpoint_name.clone()),
                Some(res.variant.clone()),
            ),
            Which::Active => (res.endpoint_name.clone(), None),
        };
        let transport = predictor::InvokeTransport {
            client: clients.runtime.clone(),
            endpoint,
            target_variant,
            label: state.name.clone(),
            attempt_timeout: predictor::InvokeTransport::attempt_timeout(
                &clients.runtime,
                rev.endpoint.timeout_s,
            ),
        };
        let expected = Expected {
            digest: format!("sha256:{}", rev.model_digest),
            revision: Some(res.variant.clone()),
            revision_kind: "production variant".into(),
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
        let recorded: Vec<&Revision> = [&state.pending, &state.active]
            .into_iter()
            .flatten()
            .collect();
        let revisions: Vec<AwsResources> = recorded
            .iter()
            .map(|r| AwsResources::of(r))
            .collect::<ProviderResult<_>>()?;
        let Some(first) = revisions.first() else {
            self.workspace.remove_state(&state.name)?;
            return Ok(report);
        };
        let clients = self.clients(&first.settings).await?;
        let sm = &clients.sagemaker;
        let mut endpoints = vec![first.endpoint_name.clone()];
        endpoints.extend(revisions.iter().filter_map(|r| r.verify_endpoint.clone()));
        for endpoint in &endpoints {
            if self
                .remove_endpoint(sm, endpoint, deadline(first), reporter)
                .await?
            {
                report
                    .removed
                    .push(format!("SageMaker endpoint {endpoint}"));
            }
        }
        // Every revision this deployment ever uploaded sits under its own prefix
        // (`PREFIX/DEPLOYMENT/DIGEST/`): a purge empties that prefix, so the
        // artifacts of revisions retired long ago go too.
        let mut purge: Vec<(String, String)> = Vec::new();
        for (r, rev) in revisions.iter().zip(&recorded) {
            upload::abort_recorded(&clients.s3, &r.bucket, &r.key, &r.uploads).await;
            self.delete_revision(sm, r, reporter).await?;
            report.removed.push(format!(
                "SageMaker endpoint config and model {}",
                r.config_name
            ));
            if options.purge {
                let prefix = names::deployment_prefix(&r.key, &rev.artifact_digest)
                    .unwrap_or(&r.key)
                    .to_string();
                if !purge.contains(&(r.bucket.clone(), prefix.clone())) {
                    purge.push((r.bucket.clone(), prefix));
                }
            }
        }
        for (bucket, prefix) in purge {
            let deleted = upload::delete_prefix(&clients.s3, &bucket, &prefix).await?;
            report
                .removed
                .push(format!("s3://{bucket}/{prefix} ({deleted} objects)"));
        }
        self.workspace.remove_state(&state.name)?;
        report.leftover = leftovers(sm, &state.name).await?;
        Ok(report)
    }

    async fn doctor(&self, spec: &DeploymentSpec) -> Vec<modelport_core::provider::Check> {
        doctor::run(self, spec).await
    }

    async fn discover(&self, spec: Option<&DeploymentSpec>) -> ProviderResult<Vec<EndpointStatus>> {
        let settings = match spec.and_then(|s| s.provider.aws.as_ref()) {
            Some(aws) => ClientSettings::from_spec(aws),
            None => ClientSettings {
                region: None,
                profile: None,
                endpoint_url: builder::endpoint_override(),
            },
        };
        let clients = self.clients(&settings).await?;
        let sm = &clients.sagemaker;
        let inv = sagemaker::inventory(sm, None).await?;
        let mut found = Vec::new();
        for (name, arn) in &inv.endpoints {
            let tags = sagemaker::list_tags(sm, arn).await?;
            let Some(deployment) = tags.get(names::TAG_DEPLOYMENT) else {
                continue;
            };
            let Some(info) = sagemaker::describe_endpoint(sm, name).await? else {
                continue;
            };
            let health = match info.status.as_str() {
                "InService" => Health::InService,
                "Failed" | "UpdateRollbackFailed" => Health::Failed,
                "OutOfService" => Health::Unhealthy,
                _ => Health::Updating,
            };
            found.push(EndpointStatus {
                name: deployment.clone(),
                provider: self.name().to_string(),
                health,
                detail: format!(
                    "SageMaker endpoint {name} in {}: {}; artifact {}",
                    clients.region,
                    info.summary(),
                    tags.get(names::TAG_DIGEST)
                        .map(|d| short(d))
                        .unwrap_or("unknown")
                ),
                predict_url: Some(format!(
                    "sagemaker://{}/endpoints/{name}/invocations",
                    clients.region
                )),
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

/// Resources tagged with the deployment's name that still exist.
async fn leftovers(
    sm: &aws_sdk_sagemaker::Client,
    deployment: &str,
) -> ProviderResult<Vec<String>> {
    let inv = sagemaker::inventory(sm, Some(deployment)).await?;
    let mut left = Vec::new();
    for (kind, items) in [
        ("endpoint", &inv.endpoints),
        ("endpoint config", &inv.configs),
        ("model", &inv.models),
    ] {
        for (name, arn) in items {
            let tags = sagemaker::list_tags(sm, arn).await?;
            if tags.get(names::TAG_DEPLOYMENT).map(String::as_str) == Some(deployment) {
                left.push(format!("SageMaker {kind} {name}"));
            }
        }
    }
    Ok(left)
}
