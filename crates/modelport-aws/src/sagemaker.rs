//! SageMaker's control plane as modelport uses it: a model and an endpoint
//! configuration per revision, one endpoint per deployment, and a wait loop that
//! reports every status change and ends in InService, a failure reason, or a
//! deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sagemaker::types::{
    ContainerDefinition, DesiredWeightAndCapacity, EndpointStatus, ModelCompressionType,
    ModelDataSource, ProductionVariant, ProductionVariantInstanceType,
    ProductionVariantServerlessConfig, S3ModelDataSource, S3ModelDataType, Tag, VpcConfig,
};
use modelport_core::provider::{ProviderError, Reporter};

use crate::error::AwsFailure;
use crate::names::VARIANT;

/// What a revision's endpoint runs on.
#[derive(Debug, Clone, PartialEq)]
pub enum Capacity {
    Instances {
        instance_type: String,
        count: u32,
    },
    Serverless {
        memory_mb: u32,
        max_concurrency: u32,
    },
}

impl Capacity {
    pub fn describe(&self) -> String {
        match self {
            Capacity::Instances {
                instance_type,
                count,
            } => format!("{count} × {instance_type}"),
            Capacity::Serverless {
                memory_mb,
                max_concurrency,
            } => format!("serverless {memory_mb} MB, up to {max_concurrency} concurrent"),
        }
    }
}

/// Everything CreateModel and CreateEndpointConfig need for one revision.
#[derive(Debug, Clone)]
pub struct RevisionSpec {
    pub model_name: String,
    pub config_name: String,
    /// The production variant that runs this revision.
    pub variant_name: String,
    pub image: String,
    pub model_data_url: String,
    /// `model_data_url` is a prefix of uncompressed files (`ModelDataSource` with
    /// `S3Prefix`, `CompressionType: None`), not a model.tar.gz.
    pub uncompressed: bool,
    pub role_arn: String,
    pub environment: HashMap<String, String>,
    pub vpc: Option<(Vec<String>, Vec<String>)>,
    pub network_isolation: bool,
    pub capacity: Capacity,
    pub kms_key_id: Option<String>,
    pub startup_timeout_s: Option<u32>,
    pub download_timeout_s: Option<u32>,
    /// `VolumeSizeInGB`: none on serverless, on instance types with instance
    /// storage and for small models (the platform's default volume).
    pub volume_size_gb: Option<u32>,
    pub tags: Vec<(String, String)>,
}

fn tags(pairs: &[(String, String)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Creates the model unless it exists. Names are content-derived, so an existing
/// model of that name is this revision's model.
pub async fn ensure_model(
    sm: &aws_sdk_sagemaker::Client,
    spec: &RevisionSpec,
) -> Result<bool, ProviderError> {
    match sm
        .describe_model()
        .model_name(&spec.model_name)
        .send()
        .await
    {
        Ok(_) => return Ok(false),
        Err(e) => {
            let f = AwsFailure::from_sdk("DescribeModel", &e);
            if !f.is_not_found() {
                return Err(f.into());
            }
        }
    }
    let container = ContainerDefinition::builder()
        .image(&spec.image)
        .set_environment(Some(spec.environment.clone()));
    let container = if spec.uncompressed {
        let source = S3ModelDataSource::builder()
            .s3_uri(&spec.model_data_url)
            .s3_data_type(S3ModelDataType::S3Prefix)
            .compression_type(ModelCompressionType::None)
            .build();
        container.model_data_source(ModelDataSource::builder().s3_data_source(source).build())
    } else {
        container.model_data_url(&spec.model_data_url)
    }
    .build();
    let mut create = sm
        .create_model()
        .model_name(&spec.model_name)
        .execution_role_arn(&spec.role_arn)
        .primary_container(container)
        .enable_network_isolation(spec.network_isolation)
        .set_tags(Some(tags(&spec.tags)));
    if let Some((subnets, groups)) = &spec.vpc {
        create = create.vpc_config(
            VpcConfig::builder()
                .set_subnets(Some(subnets.clone()))
                .set_security_group_ids(Some(groups.clone()))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let f = AwsFailure::from_sdk("CreateModel", &e);
            if f.is_already_exists() {
                Ok(false)
            } else {
                Err(f.into())
            }
        }
    }
}

/// The production variant that runs `spec`'s model, with `weight`.
fn variant(spec: &RevisionSpec, weight: f32) -> ProductionVariant {
    let mut variant = ProductionVariant::builder()
        .variant_name(&spec.variant_name)
        .model_name(&spec.model_name)
        .set_container_startup_health_check_timeout_in_seconds(
            spec.startup_timeout_s.map(|s| s as i32),
        )
        .set_model_data_download_timeout_in_seconds(spec.download_timeout_s.map(|s| s as i32))
        .set_volume_size_in_gb(spec.volume_size_gb.map(|gb| gb as i32));
    variant = match &spec.capacity {
        Capacity::Instances {
            instance_type,
            count,
        } => variant
            .instance_type(ProductionVariantInstanceType::from(instance_type.as_str()))
            .initial_instance_count(*count as i32)
            .initial_variant_weight(weight),
        Capacity::Serverless {
            memory_mb,
            max_concurrency,
        } => variant.serverless_config(
            ProductionVariantServerlessConfig::builder()
                .memory_size_in_mb(*memory_mb as i32)
                .max_concurrency(*max_concurrency as i32)
                .build(),
        ),
    };
    variant.build()
}

/// True when the endpoint configuration `name` exists.
async fn config_exists(sm: &aws_sdk_sagemaker::Client, name: &str) -> Result<bool, ProviderError> {
    match sm
        .describe_endpoint_config()
        .endpoint_config_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let f = AwsFailure::from_sdk("DescribeEndpointConfig", &e);
            if f.is_not_found() {
                Ok(false)
            } else {
                Err(f.into())
            }
        }
    }
}

/// Creates an endpoint configuration unless one of that name exists (names are
/// derived from their content).
async fn create_config(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
    variants: Vec<ProductionVariant>,
    spec: &RevisionSpec,
) -> Result<bool, ProviderError> {
    if config_exists(sm, name).await? {
        return Ok(false);
    }
    let result = sm
        .create_endpoint_config()
        .endpoint_config_name(name)
        .set_production_variants(Some(variants))
        .set_kms_key_id(spec.kms_key_id.clone())
        .set_tags(Some(tags(&spec.tags)))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) => {
            let f = AwsFailure::from_sdk("CreateEndpointConfig", &e);
            if f.is_already_exists() {
                Ok(false)
            } else {
                Err(f.into())
            }
        }
    }
}

/// Creates the revision's own configuration (its variant alone, weight 1) unless it exists.
pub async fn ensure_config(
    sm: &aws_sdk_sagemaker::Client,
    spec: &RevisionSpec,
) -> Result<bool, ProviderError> {
    create_config(sm, &spec.config_name, vec![variant(spec, 1.0)], spec).await
}

/// The production variants of an endpoint configuration, as it was created.
pub async fn config_variants(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
) -> Result<Vec<ProductionVariant>, ProviderError> {
    let out = sm
        .describe_endpoint_config()
        .endpoint_config_name(name)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("DescribeEndpointConfig", &e))?;
    Ok(out.production_variants().to_vec())
}

/// Creates the transition configuration `name`: the serving configuration's
/// variants as they are (their weights kept), plus the new revision's variant at
/// weight 0, so that no production request reaches it.
pub async fn ensure_transition_config(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
    serving_variants: Vec<ProductionVariant>,
    spec: &RevisionSpec,
) -> Result<bool, ProviderError> {
    let mut variants = serving_variants;
    variants.retain(|v| v.variant_name() != Some(spec.variant_name.as_str()));
    variants.push(variant(spec, 0.0));
    create_config(sm, name, variants, spec).await
}

/// Sets the weights of an endpoint's variants without a new fleet
/// (UpdateEndpointWeightsAndCapacities: Updating, then InService).
pub async fn update_weights(
    sm: &aws_sdk_sagemaker::Client,
    endpoint: &str,
    weights: &[(String, f32)],
) -> Result<(), ProviderError> {
    let desired = weights
        .iter()
        .map(|(v, w)| {
            DesiredWeightAndCapacity::builder()
                .variant_name(v)
                .desired_weight(*w)
                .build()
        })
        .collect::<Vec<_>>();
    let Err(e) = sm
        .update_endpoint_weights_and_capacities()
        .endpoint_name(endpoint)
        .set_desired_weights_and_capacities(Some(desired))
        .send()
        .await
    else {
        return Ok(());
    };
    let f = AwsFailure::from_sdk("UpdateEndpointWeightsAndCapacities", &e);
    // A retry whose first attempt took effect finds these weights desired (or set).
    if f.is_in_progress()
        && let Some(info) = describe_endpoint(sm, endpoint).await?
        && weights.iter().all(|(v, w)| {
            info.weights
                .iter()
                .any(|x| &x.name == v && (x.desired - w).abs() < f32::EPSILON)
        })
    {
        return Ok(());
    }
    Err(f.into())
}

/// An endpoint as DescribeEndpoint shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInfo {
    pub arn: String,
    pub status: String,
    pub config_name: String,
    /// The configuration a creation or update under way deploys
    /// (`PendingDeploymentSummary`).
    pub pending_config_name: Option<String>,
    pub failure_reason: Option<String>,
    /// One line per variant: `AllTraffic 1/1 instances` and its own statuses.
    pub variants: Vec<String>,
    /// Each serving variant's name with its current and desired weight.
    pub weights: Vec<VariantWeight>,
    /// True when a serving variant is serverless.
    pub serverless: bool,
}

/// A variant's share of the traffic, as DescribeEndpoint says.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantWeight {
    pub name: String,
    pub current: f32,
    pub desired: f32,
}

impl EndpointInfo {
    /// The weight `variant` currently gets, if it serves.
    pub fn weight(&self, variant: &str) -> Option<f32> {
        self.weights
            .iter()
            .find(|w| w.name == variant)
            .map(|w| w.current)
    }

    /// True when every listed variant has reached its weight.
    pub fn has_weights(&self, wanted: &[(String, f32)]) -> bool {
        wanted.iter().all(|(v, w)| {
            self.weights
                .iter()
                .any(|x| x.name == *v && x.current == *w && x.desired == *w)
        })
    }
}

impl EndpointInfo {
    /// Creating, Updating, SystemUpdating, RollingBack or Deleting: wait before acting.
    pub fn is_transitional(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Creating" | "Updating" | "SystemUpdating" | "RollingBack" | "Deleting"
        )
    }

    /// A sentence for progress and `status`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} (config {})", self.status, self.config_name);
        if !self.variants.is_empty() {
            s.push_str("; ");
            s.push_str(&self.variants.join("; "));
        }
        s
    }
}

/// The endpoint, or `None` when it does not exist.
pub async fn describe_endpoint(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
) -> Result<Option<EndpointInfo>, ProviderError> {
    let out = match sm.describe_endpoint().endpoint_name(name).send().await {
        Ok(out) => out,
        Err(e) => {
            let f = AwsFailure::from_sdk("DescribeEndpoint", &e);
            return if f.is_not_found() {
                Ok(None)
            } else {
                Err(f.into())
            };
        }
    };
    let variants = out
        .production_variants()
        .iter()
        .map(|v| {
            let mut line = v.variant_name().unwrap_or(VARIANT).to_string();
            if let (Some(cur), Some(want)) =
                (v.current_instance_count(), v.desired_instance_count())
            {
                line.push_str(&format!(" {cur}/{want} instances"));
            } else if let Some(sc) = v.current_serverless_config() {
                line.push_str(&format!(
                    " serverless {} MB",
                    sc.memory_size_in_mb().unwrap_or(0)
                ));
            }
            let states: Vec<String> = v
                .variant_status()
                .iter()
                .map(|s| {
                    let mut t = s
                        .status()
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_default();
                    if let Some(m) = s.status_message() {
                        t.push_str(&format!(" ({m})"));
                    }
                    t
                })
                .collect();
            if !states.is_empty() {
                line.push_str(&format!(", {}", states.join(", ")));
            }
            if out.production_variants().len() > 1
                && let Some(w) = v.current_weight()
            {
                line.push_str(&format!(", weight {w}"));
            }
            line
        })
        .collect();
    let weights = out
        .production_variants()
        .iter()
        .map(|v| VariantWeight {
            name: v.variant_name().unwrap_or(VARIANT).to_string(),
            current: v.current_weight().unwrap_or(1.0),
            desired: v.desired_weight().or(v.current_weight()).unwrap_or(1.0),
        })
        .collect();
    Ok(Some(EndpointInfo {
        arn: out.endpoint_arn().unwrap_or_default().to_string(),
        status: out
            .endpoint_status()
            .map(EndpointStatus::as_str)
            .unwrap_or("Unknown")
            .to_string(),
        config_name: out.endpoint_config_name().unwrap_or_default().to_string(),
        pending_config_name: out
            .pending_deployment_summary()
            .and_then(|p| p.endpoint_config_name())
            .map(str::to_string),
        failure_reason: out.failure_reason().map(str::to_string),
        variants,
        weights,
        serverless: out
            .production_variants()
            .iter()
            .any(|v| v.current_serverless_config().is_some()),
    }))
}

pub async fn create_endpoint(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
    config: &str,
    tag_pairs: &[(String, String)],
) -> Result<(), ProviderError> {
    let Err(e) = sm
        .create_endpoint()
        .endpoint_name(name)
        .endpoint_config_name(config)
        .set_tags(Some(tags(tag_pairs)))
        .send()
        .await
    else {
        return Ok(());
    };
    let f = AwsFailure::from_sdk("CreateEndpoint", &e);
    // The SDK retries a call whose answer was lost (a dropped connection, a
    // timeout); the retry then meets what the first attempt did.
    if f.is_already_exists() && heading_to(sm, name, config).await? {
        return Ok(());
    }
    Err(f.into())
}

pub async fn update_endpoint(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
    config: &str,
) -> Result<(), ProviderError> {
    let Err(e) = sm
        .update_endpoint()
        .endpoint_name(name)
        .endpoint_config_name(config)
        .send()
        .await
    else {
        return Ok(());
    };
    let f = AwsFailure::from_sdk("UpdateEndpoint", &e);
    // A retried update whose first attempt took effect finds it under way.
    if f.is_in_progress() && heading_to(sm, name, config).await? {
        return Ok(());
    }
    Err(f.into())
}

/// True when endpoint `name` is being deployed with `config` (creating or
/// updating to it: `PendingDeploymentSummary`), or already runs it.
async fn heading_to(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
    config: &str,
) -> Result<bool, ProviderError> {
    let Some(info) = describe_endpoint(sm, name).await? else {
        return Ok(false);
    };
    let pending = info.pending_config_name.as_deref();
    Ok(match info.status.as_str() {
        "Creating" | "Updating" => {
            pending == Some(config) || (pending.is_none() && info.config_name == config)
        }
        "InService" => info.config_name == config,
        _ => false,
    })
}

/// Deletes the endpoint; one that is already gone, or already being deleted (a
/// retry of a delete whose answer was lost), is fine.
pub async fn delete_endpoint(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
) -> Result<(), ProviderError> {
    let Err(e) = sm.delete_endpoint().endpoint_name(name).send().await else {
        return Ok(());
    };
    let f = AwsFailure::from_sdk("DeleteEndpoint", &e);
    if f.is_in_progress()
        && describe_endpoint(sm, name)
            .await?
            .is_none_or(|e| e.status == "Deleting")
    {
        return Ok(());
    }
    ignore_not_found(f)
}

/// Deletes an endpoint configuration; one that is already gone is fine.
pub async fn delete_config(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
) -> Result<(), ProviderError> {
    match sm
        .delete_endpoint_config()
        .endpoint_config_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => ignore_not_found(AwsFailure::from_sdk("DeleteEndpointConfig", &e)),
    }
}

/// Deletes a model; one that is already gone is fine.
pub async fn delete_model(sm: &aws_sdk_sagemaker::Client, name: &str) -> Result<(), ProviderError> {
    match sm.delete_model().model_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) => ignore_not_found(AwsFailure::from_sdk("DeleteModel", &e)),
    }
}

fn ignore_not_found(f: AwsFailure) -> Result<(), ProviderError> {
    if f.is_not_found() {
        Ok(())
    } else {
        Err(f.into())
    }
}

/// What [`wait`] waits for.
#[derive(Debug, Clone, Copy)]
pub enum Goal<'a> {
    /// InService on this endpoint configuration.
    InService(&'a str),
    /// InService on this configuration with these variant weights in effect.
    Weights(&'a str, &'a [(String, f32)]),
    /// Not in a transitional state (before an update or delete).
    Settled,
    /// Deleted.
    Gone,
}

impl<'a> Goal<'a> {
    /// The configuration the endpoint must end up on, for goals that name one.
    fn config(&self) -> Option<&'a str> {
        match *self {
            Goal::InService(c) | Goal::Weights(c, _) => Some(c),
            Goal::Settled | Goal::Gone => None,
        }
    }
}

/// Polls DescribeEndpoint with backoff until `goal`, a failure, or `deadline`,
/// reporting each change of status.
pub async fn wait(
    sm: &aws_sdk_sagemaker::Client,
    name: &str,
    goal: Goal<'_>,
    deadline: Duration,
    reporter: &dyn Reporter,
) -> Result<Option<EndpointInfo>, ProviderError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut last = String::new();
    loop {
        let info = describe_endpoint(sm, name).await?;
        let summary = info
            .as_ref()
            .map(EndpointInfo::summary)
            .unwrap_or_else(|| "gone".to_string());
        // A wait whose goal holds at the first look waits for nothing: no line.
        let settled = match &info {
            None => matches!(goal, Goal::Gone | Goal::Settled),
            Some(i) => matches!(goal, Goal::Settled) && !i.is_transitional(),
        };
        if summary != last && !(last.is_empty() && settled) {
            reporter.on_status(
                &format!("endpoint {name}"),
                &summary,
                start.elapsed(),
                deadline,
            );
            last = summary;
        }
        match (goal, &info) {
            (Goal::Gone, None) => return Ok(None),
            (Goal::Settled, None) => return Ok(None),
            (Goal::InService(_) | Goal::Weights(..), None) => {
                return Err(ProviderError::other(format!(
                    "endpoint {name} disappeared while it was being deployed"
                )));
            }
            (_, Some(i)) if i.status == "UpdateRollbackFailed" => {
                return Err(ProviderError::Other {
                    message: format!(
                        "endpoint {name} is UpdateRollbackFailed: both the update and its automatic rollback failed{}",
                        reason_suffix(i)
                    ),
                    hint: Some(
                        "the endpoint may serve a mix of configurations: inspect it in the SageMaker console, then re-run or `modelport destroy`".into(),
                    ),
                });
            }
            (Goal::Settled, Some(i)) if !i.is_transitional() => return Ok(info),
            (Goal::Weights(config, wanted), Some(i))
                if i.status == "InService" && i.config_name == config && i.has_weights(wanted) =>
            {
                return Ok(info);
            }
            // InService on the right configuration, the weights not there yet: wait.
            (Goal::Weights(config, _), Some(i))
                if i.status == "InService" && i.config_name == config => {}
            (goal, Some(i)) if goal.config().is_some() && i.status == "InService" => {
                let config = goal.config().unwrap_or_default();
                if i.config_name == config {
                    return Ok(info);
                }
                // SageMaker rolls a failed update back to the previous configuration
                // and goes back to InService with a FailureReason.
                if let Some(reason) = &i.failure_reason {
                    return Err(startup_failure(
                        name,
                        format!(
                            "the update of endpoint {name} to {config} failed and SageMaker rolled it back to {}: {reason}",
                            i.config_name
                        ),
                        reason,
                    ));
                }
            }
            (goal, Some(i)) if goal.config().is_some() && i.status == "Failed" => {
                let reason = i.failure_reason.clone().unwrap_or_default();
                return Err(startup_failure(
                    name,
                    format!("endpoint {name} failed{}", reason_suffix(i)),
                    &reason,
                ));
            }
            (goal, Some(i)) if goal.config().is_some() && i.status == "OutOfService" => {
                return Err(ProviderError::other(format!(
                    "endpoint {name} is OutOfService{}",
                    reason_suffix(i)
                )));
            }
            _ => {}
        }
        if start.elapsed() >= deadline {
            return Err(ProviderError::Other {
                message: format!(
                    "endpoint {name} is still {last} after {} s",
                    deadline.as_secs()
                ),
                hint: Some(
                    "raise `provider.aws.deploy_timeout_s`; re-running the deploy picks up where this one stopped, `modelport destroy` removes it".into(),
                ),
            });
        }
        tokio::time::sleep(delay.min(deadline.saturating_sub(start.elapsed()))).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(15));
    }
}

fn reason_suffix(i: &EndpointInfo) -> String {
    i.failure_reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

fn startup_failure(name: &str, message: String, reason: &str) -> ProviderError {
    ProviderError::StartupFailed {
        message,
        log_tail: Vec::new(),
        hint: Some(failure_hint(name, reason)),
    }
}

/// What a FailureReason usually means.
pub fn failure_hint(endpoint: &str, reason: &str) -> String {
    let logs = format!(
        "the container's log is in CloudWatch, log group /aws/sagemaker/Endpoints/{endpoint}"
    );
    let r = reason.to_ascii_lowercase();
    if r.contains("ping") || r.contains("health check") {
        format!(
            "the container did not answer GET /ping on port 8080 in time: {logs}; for a large model raise `compute.startup_timeout_s`"
        )
    } else if r.contains("image") || r.contains("ecr") || r.contains("pull") {
        "the image could not be pulled: check `provider.aws.image_uri` exists in ECR in the endpoint's region and that the execution role may pull it (`modelport iam-policy`)".into()
    } else if r.contains("limit") || r.contains("quota") || r.contains("capacity") {
        "a quota or capacity limit: request an increase in Service Quotas, or pick another instance type (`modelport catalog --provider aws`)".into()
    } else if r.contains("download") || r.contains("model data") || r.contains("s3") {
        "SageMaker could not fetch the model: check the artifact exists and that the execution role has s3:GetObject on it (`modelport iam-policy`)".into()
    } else if r.contains("role") || r.contains("access") || r.contains("permission") {
        "check `provider.aws.role_arn` and its permissions (`modelport iam-policy --provider aws`)"
            .into()
    } else {
        logs
    }
}

/// Tags of a SageMaker resource, by ARN.
pub async fn list_tags(
    sm: &aws_sdk_sagemaker::Client,
    arn: &str,
) -> Result<HashMap<String, String>, ProviderError> {
    let mut out = HashMap::new();
    let mut token = None;
    loop {
        let page = sm
            .list_tags()
            .resource_arn(arn)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("ListTags", &e))?;
        for t in page.tags() {
            out.insert(
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            );
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// What exists of the SageMaker resources, by kind and name, with their ARNs.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub endpoints: Vec<(String, String)>,
    pub configs: Vec<(String, String)>,
    pub models: Vec<(String, String)>,
}

/// Lists endpoints, endpoint configurations and models whose names contain `filter`.
pub async fn inventory(
    sm: &aws_sdk_sagemaker::Client,
    filter: Option<&str>,
) -> Result<Inventory, ProviderError> {
    let mut inv = Inventory::default();
    let mut token = None;
    loop {
        let page = sm
            .list_endpoints()
            .set_name_contains(filter.map(str::to_string))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("ListEndpoints", &e))?;
        for e in page.endpoints() {
            inv.endpoints.push((
                e.endpoint_name().unwrap_or_default().to_string(),
                e.endpoint_arn().unwrap_or_default().to_string(),
            ));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    loop {
        let page = sm
            .list_endpoint_configs()
            .set_name_contains(filter.map(str::to_string))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("ListEndpointConfigs", &e))?;
        for c in page.endpoint_configs() {
            inv.configs.push((
                c.endpoint_config_name().unwrap_or_default().to_string(),
                c.endpoint_config_arn().unwrap_or_default().to_string(),
            ));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    loop {
        let page = sm
            .list_models()
            .set_name_contains(filter.map(str::to_string))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("ListModels", &e))?;
        for m in page.models() {
            inv.models.push((
                m.model_name().unwrap_or_default().to_string(),
                m.model_arn().unwrap_or_default().to_string(),
            ));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(inv)
}
