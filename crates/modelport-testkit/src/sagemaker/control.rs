//! The control plane: models, endpoint configurations and endpoints kept in
//! memory, with SageMaker's names, ARNs, messages and status machine.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{Shared, data};

/// An error as the service reports it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            code: "ValidationException".into(),
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, ApiError>;

/// Seconds since the epoch, with milliseconds, as awsJson timestamps are sent.
pub(crate) fn now() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

pub(crate) struct ModelRec {
    pub name: String,
    pub arn: String,
    pub input: Map<String, Value>,
    pub created: f64,
}

pub(crate) struct ConfigRec {
    pub name: String,
    pub arn: String,
    pub input: Map<String, Value>,
    pub created: f64,
}

/// What a deployment needs, copied when it starts (later deletes of the config or
/// models do not affect a running endpoint, as on SageMaker).
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub config_name: String,
    pub variants: Vec<Value>,
    /// Model name (lower case) → its CreateModel input.
    pub models: BTreeMap<String, Map<String, Value>>,
}

pub(crate) struct Pending {
    pub snapshot: Snapshot,
    pub started: f64,
}

pub(crate) struct EndpointRec {
    pub name: String,
    pub arn: String,
    pub config_name: String,
    pub status: &'static str,
    pub failure_reason: Option<String>,
    pub created: f64,
    pub modified: f64,
    /// The serving deployment.
    pub live: Option<data::Deployment>,
    /// The configuration being rolled out by UpdateEndpoint.
    pub pending: Option<Pending>,
    /// Bumped by every create, update and delete; a background task whose
    /// generation is stale leaves the endpoint alone.
    pub generation: u64,
    pub deployment_config: Option<Value>,
}

#[derive(Default)]
pub(crate) struct State {
    pub models: BTreeMap<String, ModelRec>,
    pub configs: BTreeMap<String, ConfigRec>,
    pub endpoints: BTreeMap<String, EndpointRec>,
    /// ARN → tags in the order they were added.
    pub tags: BTreeMap<String, Vec<(String, String)>>,
    pub generation: u64,
}

impl State {
    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }
}

fn arn(shared: &Shared, kind: &str, name: &str) -> String {
    format!(
        "arn:aws:sagemaker:{}:{}:{kind}/{}",
        shared.config.region,
        shared.config.account,
        name.to_lowercase()
    )
}

fn key(name: &str) -> String {
    name.to_lowercase()
}

fn str_of<'a>(input: &'a Map<String, Value>, member: &str) -> &'a str {
    input.get(member).and_then(Value::as_str).unwrap_or("")
}

/// The resource name a request is about, for the call log.
pub(crate) fn name_of(input: &Value) -> Option<String> {
    [
        "EndpointName",
        "EndpointConfigName",
        "ModelName",
        "ResourceArn",
        "NameContains",
    ]
    .iter()
    .find_map(|m| input.get(*m).and_then(Value::as_str).map(str::to_string))
}

/// The operations with real semantics.
pub(crate) const OPERATIONS: &[&str] = &[
    "CreateModel",
    "DescribeModel",
    "DeleteModel",
    "ListModels",
    "CreateEndpointConfig",
    "DescribeEndpointConfig",
    "DeleteEndpointConfig",
    "ListEndpointConfigs",
    "CreateEndpoint",
    "UpdateEndpoint",
    "UpdateEndpointWeightsAndCapacities",
    "DescribeEndpoint",
    "DeleteEndpoint",
    "ListEndpoints",
    "AddTags",
    "ListTags",
    "DeleteTags",
];

/// Runs one validated operation.
pub(crate) fn handle(shared: &Arc<Shared>, op: &str, input: Map<String, Value>) -> Result<Value> {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    match op {
        "CreateModel" => create_model(shared, &mut state, input),
        "DescribeModel" => describe_model(shared, &state, &input),
        "DeleteModel" => {
            let name = str_of(&input, "ModelName");
            let rec = state
                .models
                .remove(&key(name))
                .ok_or_else(|| not_found(shared, "model", "model", name))?;
            state.tags.remove(&rec.arn);
            Ok(json!({}))
        }
        "ListModels" => {
            let items: Vec<(String, f64, Value)> = state
                .models
                .values()
                .map(|m| {
                    (
                        m.name.clone(),
                        m.created,
                        json!({"ModelName": m.name, "ModelArn": m.arn, "CreationTime": m.created}),
                    )
                })
                .collect();
            list(&input, items, "Models", None)
        }
        "CreateEndpointConfig" => create_config(shared, &mut state, input),
        "DescribeEndpointConfig" => {
            let name = str_of(&input, "EndpointConfigName");
            let rec = state.configs.get(&key(name)).ok_or_else(|| {
                not_found(shared, "endpoint-config", "endpoint configuration", name)
            })?;
            let mut out = echo(shared, "DescribeEndpointConfig", &rec.input);
            out.insert("EndpointConfigName".into(), json!(rec.name));
            out.insert("EndpointConfigArn".into(), json!(rec.arn));
            out.insert("CreationTime".into(), json!(rec.created));
            Ok(Value::Object(out))
        }
        "DeleteEndpointConfig" => {
            let name = str_of(&input, "EndpointConfigName");
            let rec = state.configs.remove(&key(name)).ok_or_else(|| {
                not_found(shared, "endpoint-config", "endpoint configuration", name)
            })?;
            state.tags.remove(&rec.arn);
            Ok(json!({}))
        }
        "ListEndpointConfigs" => {
            let items = state
                .configs
                .values()
                .map(|c| {
                    (
                        c.name.clone(),
                        c.created,
                        json!({"EndpointConfigName": c.name, "EndpointConfigArn": c.arn, "CreationTime": c.created}),
                    )
                })
                .collect();
            list(&input, items, "EndpointConfigs", None)
        }
        "CreateEndpoint" => create_endpoint(shared, &mut state, input),
        "UpdateEndpoint" => update_endpoint(shared, &mut state, input),
        "UpdateEndpointWeightsAndCapacities" => update_weights(shared, &mut state, &input),
        "DescribeEndpoint" => {
            let name = str_of(&input, "EndpointName");
            let rec = state
                .endpoints
                .get(&key(name))
                .ok_or_else(|| not_found(shared, "endpoint", "endpoint", name))?;
            Ok(describe_endpoint(rec))
        }
        "DeleteEndpoint" => delete_endpoint(shared, &mut state, &input),
        "ListEndpoints" => list_endpoints(&state, &input),
        "AddTags" => {
            let arn = resource(&state, &input)?;
            let tags = state.tags.entry(arn).or_default();
            let added = input.get("Tags").and_then(Value::as_array).cloned();
            for tag in added.iter().flatten() {
                put_tag(tags, tag);
            }
            Ok(json!({"Tags": added.unwrap_or_default()}))
        }
        "ListTags" => {
            let arn = resource(&state, &input)?;
            let items = state
                .tags
                .get(&arn)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), 0.0, json!({"Key": k, "Value": v})))
                .collect();
            list(&input, items, "Tags", Some("insertion"))
        }
        "DeleteTags" => {
            let arn = resource(&state, &input)?;
            let keys: Vec<&str> = input
                .get("TagKeys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(tags) = state.tags.get_mut(&arn) {
                tags.retain(|(k, _)| !keys.contains(&k.as_str()));
            }
            Ok(json!({}))
        }
        other => Err(ApiError {
            status: 400,
            code: "UnknownOperationException".into(),
            message: format!("The fake SageMaker does not implement {other}"),
        }),
    }
}

fn not_found(shared: &Shared, kind: &str, what: &str, name: &str) -> ApiError {
    ApiError::validation(format!(
        "Could not find {what} \"{}\".",
        arn(shared, kind, name)
    ))
}

fn exists(shared: &Shared, kind: &str, what: &str, name: &str) -> ApiError {
    ApiError::validation(format!(
        "Cannot create already existing {what} \"{}\".",
        arn(shared, kind, name)
    ))
}

/// The members of a stored create request that the operation's output also has.
fn echo(shared: &Shared, operation: &str, input: &Map<String, Value>) -> Map<String, Value> {
    let members = shared
        .model
        .output_shape(operation)
        .map(|s| shared.model.members(s))
        .unwrap_or_default();
    input
        .iter()
        .filter(|(k, _)| members.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn put_tag(tags: &mut Vec<(String, String)>, tag: &Value) {
    let k = tag.get("Key").and_then(Value::as_str).unwrap_or("");
    let v = tag.get("Value").and_then(Value::as_str).unwrap_or("");
    match tags.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => tags.push((k.to_string(), v.to_string())),
    }
}

fn store_tags(state: &mut State, arn: &str, input: &Map<String, Value>) {
    let tags = state.tags.entry(arn.to_string()).or_default();
    for tag in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        put_tag(tags, tag);
    }
}

/// The ARN named by `ResourceArn`, which must be a resource the fake holds.
fn resource(state: &State, input: &Map<String, Value>) -> Result<String> {
    let arn = str_of(input, "ResourceArn").to_string();
    let known = state.models.values().any(|m| m.arn == arn)
        || state.configs.values().any(|c| c.arn == arn)
        || state.endpoints.values().any(|e| e.arn == arn);
    if !known {
        return Err(ApiError::validation(format!(
            "Could not find resource \"{arn}\"."
        )));
    }
    Ok(arn)
}

fn create_model(shared: &Shared, state: &mut State, input: Map<String, Value>) -> Result<Value> {
    let name = str_of(&input, "ModelName").to_string();
    if state.models.contains_key(&key(&name)) {
        return Err(exists(shared, "model", "model", &name));
    }
    if input.get("PrimaryContainer").is_none() && input.get("Containers").is_none() {
        return Err(ApiError::validation(
            "Either PrimaryContainer or Containers must be specified.",
        ));
    }
    let containers = input.get("PrimaryContainer").into_iter().chain(
        input
            .get("Containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for c in containers {
        check_model_data(c)?;
    }
    let arn = arn(shared, "model", &name);
    store_tags(state, &arn, &input);
    state.models.insert(
        key(&name),
        ModelRec {
            name,
            arn: arn.clone(),
            input,
            created: now(),
        },
    );
    Ok(json!({"ModelArn": arn}))
}

/// A container's model data as SageMaker accepts it: `ModelDataUrl` or
/// `ModelDataSource`, not both; an `S3Prefix` URI ends in `/`; a prefix cannot be
/// gzip-compressed (only one object can be a tar.gz).
fn check_model_data(container: &Value) -> Result<()> {
    let Some(source) = container.get("ModelDataSource") else {
        return Ok(());
    };
    if container.get("ModelDataUrl").is_some() {
        return Err(ApiError::validation(
            "Only one of ModelDataUrl or ModelDataSource can be specified for a container.",
        ));
    }
    let Some(s3) = source.get("S3DataSource") else {
        return Err(ApiError::validation(
            "ModelDataSource must specify exactly one data source (S3DataSource).",
        ));
    };
    let uri = s3.get("S3Uri").and_then(Value::as_str).unwrap_or_default();
    let kind = s3
        .get("S3DataType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let compression = s3
        .get("CompressionType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !uri.starts_with("s3://") {
        return Err(ApiError::validation(format!(
            "S3Uri {uri} of ModelDataSource is not an S3 URI."
        )));
    }
    if kind == "S3Prefix" && !uri.ends_with('/') {
        return Err(ApiError::validation(format!(
            "S3Uri {uri} must end with a forward slash (/) when S3DataType is S3Prefix."
        )));
    }
    if kind == "S3Prefix" && compression == "Gzip" {
        return Err(ApiError::validation(
            "CompressionType Gzip is supported only with S3DataType S3Object.",
        ));
    }
    if kind == "S3Object" {
        return Err(ApiError::validation(
            "This fake serves ModelDataSource with S3DataType S3Prefix only.",
        ));
    }
    Ok(())
}

fn describe_model(shared: &Shared, state: &State, input: &Map<String, Value>) -> Result<Value> {
    let name = str_of(input, "ModelName");
    let rec = state
        .models
        .get(&key(name))
        .ok_or_else(|| not_found(shared, "model", "model", name))?;
    let mut out = echo(shared, "DescribeModel", &rec.input);
    out.insert("ModelName".into(), json!(rec.name));
    out.insert("ModelArn".into(), json!(rec.arn));
    out.insert("CreationTime".into(), json!(rec.created));
    Ok(Value::Object(out))
}

fn create_config(shared: &Shared, state: &mut State, input: Map<String, Value>) -> Result<Value> {
    let name = str_of(&input, "EndpointConfigName").to_string();
    if state.configs.contains_key(&key(&name)) {
        return Err(exists(
            shared,
            "endpoint-config",
            "endpoint configuration",
            &name,
        ));
    }
    let variants = input
        .get("ProductionVariants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let serverless = variants
        .iter()
        .filter(|v| v.get("ServerlessConfig").is_some())
        .count();
    if serverless > 0 && variants.len() > 1 {
        return Err(ApiError::validation(
            "Serverless Inference does not support multiple production variants: an endpoint \
             configuration with a ServerlessConfig must have exactly one production variant.",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for v in &variants {
        let variant = v.get("VariantName").and_then(Value::as_str).unwrap_or("");
        if !seen.insert(variant.to_lowercase()) {
            return Err(ApiError::validation(format!(
                "The production variant name {variant} is used more than once."
            )));
        }
    }
    for v in &variants {
        let model = v.get("ModelName").and_then(Value::as_str).unwrap_or("");
        let Some(rec) = state.models.get(&key(model)) else {
            return Err(not_found(shared, "model", "model", model));
        };
        let uncompressed = rec
            .input
            .get("PrimaryContainer")
            .is_some_and(|c| c.get("ModelDataSource").is_some());
        if uncompressed && v.get("ServerlessConfig").is_some() {
            return Err(ApiError::validation(format!(
                "Model {model} uses ModelDataSource, which is not supported for serverless \
                 endpoints."
            )));
        }
        let variant = v.get("VariantName").and_then(Value::as_str).unwrap_or("");
        let instance = v.get("InstanceType").is_some();
        let serverless = v.get("ServerlessConfig").is_some();
        if instance == serverless {
            return Err(ApiError::validation(format!(
                "Production variant {variant} must specify either InstanceType and \
                 InitialInstanceCount, or ServerlessConfig."
            )));
        }
        if instance && v.get("InitialInstanceCount").is_none() {
            return Err(ApiError::validation(format!(
                "InitialInstanceCount is required for production variant {variant}."
            )));
        }
        if v.get("VolumeSizeInGB").is_some() {
            if serverless {
                return Err(ApiError::validation(format!(
                    "VolumeSizeInGB is not supported for serverless production variant {variant}."
                )));
            }
            let instance_type = v.get("InstanceType").and_then(Value::as_str).unwrap_or("");
            if has_instance_storage(instance_type) {
                return Err(ApiError::validation(format!(
                    "VolumeSizeInGB is not supported for production variant {variant}: instance \
                     type {instance_type} uses its instance storage (NVMe) for the model."
                )));
            }
        }
    }
    let arn = arn(shared, "endpoint-config", &name);
    store_tags(state, &arn, &input);
    state.configs.insert(
        key(&name),
        ConfigRec {
            name,
            arn: arn.clone(),
            input,
            created: now(),
        },
    );
    Ok(json!({"EndpointConfigArn": arn}))
}

/// Instance families whose EC2 types carry NVMe instance storage: SageMaker keeps the
/// model there and attaches no EBS volume, so a `VolumeSizeInGB` for them is refused.
const INSTANCE_STORAGE_FAMILIES: &[&str] = &[
    "ml.c5d", "ml.m5d", "ml.r5d", "ml.c6id", "ml.m6id", "ml.r6id", "ml.g4dn", "ml.g5", "ml.g6",
    "ml.g6e", "ml.p3dn", "ml.p4d", "ml.p4de", "ml.p5", "ml.p5e", "ml.trn1", "ml.trn1n",
];

fn has_instance_storage(instance_type: &str) -> bool {
    instance_type
        .rsplit_once('.')
        .is_some_and(|(family, _)| INSTANCE_STORAGE_FAMILIES.contains(&family))
}

fn snapshot(shared: &Shared, state: &State, config_name: &str) -> Result<Snapshot> {
    let config = state.configs.get(&key(config_name)).ok_or_else(|| {
        not_found(
            shared,
            "endpoint-config",
            "endpoint configuration",
            config_name,
        )
    })?;
    let variants = config
        .input
        .get("ProductionVariants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut models = BTreeMap::new();
    for v in &variants {
        let model = v.get("ModelName").and_then(Value::as_str).unwrap_or("");
        let rec = state
            .models
            .get(&key(model))
            .ok_or_else(|| not_found(shared, "model", "model", model))?;
        models.insert(key(model), rec.input.clone());
    }
    Ok(Snapshot {
        config_name: config.name.clone(),
        variants,
        models,
    })
}

fn create_endpoint(
    shared: &Arc<Shared>,
    state: &mut State,
    input: Map<String, Value>,
) -> Result<Value> {
    let name = str_of(&input, "EndpointName").to_string();
    if state.endpoints.contains_key(&key(&name)) {
        return Err(exists(shared, "endpoint", "endpoint", &name));
    }
    let snap = snapshot(shared, state, str_of(&input, "EndpointConfigName"))?;
    let arn = arn(shared, "endpoint", &name);
    store_tags(state, &arn, &input);
    let generation = state.next_generation();
    let created = now();
    state.endpoints.insert(
        key(&name),
        EndpointRec {
            name: name.clone(),
            arn: arn.clone(),
            config_name: snap.config_name.clone(),
            status: "Creating",
            failure_reason: None,
            created,
            modified: created,
            live: None,
            pending: None,
            generation,
            deployment_config: input.get("DeploymentConfig").cloned(),
        },
    );
    data::spawn_create(shared.clone(), key(&name), generation, snap);
    Ok(json!({"EndpointArn": arn}))
}

/// The quota message SageMaker gives for an instance type.
pub(crate) fn quota_message(instance_type: &str, delta: i64) -> String {
    format!(
        "The account-level service limit '{instance_type} for endpoint usage' is 1 Instances, \
         with current utilization of 1 Instances and a request delta of {delta} Instances. \
         Please use AWS Service Quotas to request an increase for this quota."
    )
}

/// The instance type and count a request would deploy, for quota messages.
pub(crate) fn requested_instances(shared: &Shared, input: &Value) -> (String, i64) {
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let variants: Vec<Value> = match input.get("ProductionVariants") {
        Some(Value::Array(v)) => v.clone(),
        _ => input
            .get("EndpointConfigName")
            .and_then(Value::as_str)
            .and_then(|c| state.configs.get(&key(c)))
            .and_then(|c| c.input.get("ProductionVariants"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    variants
        .iter()
        .find_map(|v| {
            let t = v.get("InstanceType")?.as_str()?.to_string();
            let n = v
                .get("InitialInstanceCount")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            Some((t, n))
        })
        .unwrap_or_else(|| ("ml.m5.large".to_string(), 1))
}

fn update_endpoint(
    shared: &Arc<Shared>,
    state: &mut State,
    input: Map<String, Value>,
) -> Result<Value> {
    let name = str_of(&input, "EndpointName").to_string();
    let snap = snapshot(shared, state, str_of(&input, "EndpointConfigName"))?;
    let generation = state.next_generation();
    let rec = state
        .endpoints
        .get_mut(&key(&name))
        .ok_or_else(|| not_found(shared, "endpoint", "endpoint", &name))?;
    if rec.status != "InService" && rec.status != "Failed" {
        return Err(ApiError::validation(format!(
            "Cannot update in-progress endpoint \"{}\".",
            rec.arn
        )));
    }
    rec.generation = generation;
    rec.status = "Updating";
    rec.failure_reason = None;
    rec.modified = now();
    rec.pending = Some(Pending {
        snapshot: snap.clone(),
        started: rec.modified,
    });
    if let Some(dc) = input.get("DeploymentConfig") {
        rec.deployment_config = Some(dc.clone());
    }
    let arn = rec.arn.clone();
    data::spawn_update(shared.clone(), key(&name), generation, snap);
    Ok(json!({"EndpointArn": arn}))
}

/// UpdateEndpointWeightsAndCapacities: Updating, then the new weights (and counts)
/// take effect and the endpoint is InService again. No new fleet is started.
fn update_weights(
    shared: &Arc<Shared>,
    state: &mut State,
    input: &Map<String, Value>,
) -> Result<Value> {
    let name = str_of(input, "EndpointName").to_string();
    let generation = state.next_generation();
    let rec = state
        .endpoints
        .get_mut(&key(&name))
        .ok_or_else(|| not_found(shared, "endpoint", "endpoint", &name))?;
    if rec.status != "InService" {
        return Err(ApiError::validation(format!(
            "Cannot update in-progress endpoint \"{}\".",
            rec.arn
        )));
    }
    let Some(live) = rec.live.as_mut() else {
        return Err(ApiError::validation(format!(
            "Cannot update in-progress endpoint \"{}\".",
            rec.arn
        )));
    };
    let desired = input
        .get("DesiredWeightsAndCapacities")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let missing: Vec<&str> = desired
        .iter()
        .filter_map(|d| d.get("VariantName").and_then(Value::as_str))
        .filter(|n| !live.variants.iter().any(|v| v.info.name == *n))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::validation(format!(
            "The variant(s) \"[{}]\" is/are not present in the endpoint \"{}\".",
            missing.join(", "),
            rec.arn
        )));
    }
    for d in &desired {
        let name = d.get("VariantName").and_then(Value::as_str).unwrap_or("");
        let v = live
            .variants
            .iter_mut()
            .find(|v| v.info.name == name)
            .expect("checked above");
        if let Some(w) = d.get("DesiredWeight").and_then(Value::as_f64) {
            v.desired_weight = Some(w);
        }
        if let Some(n) = d.get("DesiredInstanceCount").and_then(Value::as_i64) {
            v.desired_count = Some(n);
        }
    }
    let sum: f64 = live
        .variants
        .iter()
        .map(|v| v.desired_weight.unwrap_or(v.info.weight))
        .sum();
    // Assumed, not documented: an endpoint whose variants all weigh 0 could route
    // nothing, so the fake refuses it rather than guess what SageMaker does.
    if sum <= 0.0 {
        for v in &mut live.variants {
            v.desired_weight = None;
            v.desired_count = None;
        }
        return Err(ApiError::validation(
            "The sum of the weights of the production variants of an endpoint must be greater than 0.",
        ));
    }
    rec.generation = generation;
    rec.status = "Updating";
    rec.modified = now();
    let arn = rec.arn.clone();
    data::spawn_weights(shared.clone(), key(&name), generation);
    Ok(json!({"EndpointArn": arn}))
}

fn delete_endpoint(
    shared: &Arc<Shared>,
    state: &mut State,
    input: &Map<String, Value>,
) -> Result<Value> {
    let name = str_of(input, "EndpointName").to_string();
    let generation = state.next_generation();
    let rec = state
        .endpoints
        .get_mut(&key(&name))
        .ok_or_else(|| not_found(shared, "endpoint", "endpoint", &name))?;
    if rec.status == "Deleting" {
        return Err(ApiError::validation(format!(
            "Cannot delete in-progress endpoint \"{}\".",
            rec.arn
        )));
    }
    rec.generation = generation;
    rec.status = "Deleting";
    rec.modified = now();
    data::spawn_delete(shared.clone(), key(&name), generation);
    Ok(json!({}))
}

fn variant_summary(
    v: &data::VariantInfo,
    current: bool,
    desired: (Option<f64>, Option<i64>),
) -> Value {
    let mut out = Map::new();
    out.insert("VariantName".into(), json!(v.name));
    if let Some(image) = &v.image {
        out.insert(
            "DeployedImages".into(),
            json!([{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": v.started}]),
        );
    }
    out.insert("CurrentWeight".into(), json!(v.weight));
    out.insert("DesiredWeight".into(), json!(desired.0.unwrap_or(v.weight)));
    match (&v.serverless, v.instance_count) {
        (Some(sc), _) => {
            if current {
                out.insert("CurrentServerlessConfig".into(), sc.clone());
            }
            out.insert("DesiredServerlessConfig".into(), sc.clone());
        }
        (None, count) => {
            if current {
                out.insert("CurrentInstanceCount".into(), json!(count));
            }
            out.insert(
                "DesiredInstanceCount".into(),
                json!(desired.1.unwrap_or(count)),
            );
        }
    }
    Value::Object(out)
}

fn describe_endpoint(rec: &EndpointRec) -> Value {
    let mut out = Map::new();
    out.insert("EndpointName".into(), json!(rec.name));
    out.insert("EndpointArn".into(), json!(rec.arn));
    out.insert("EndpointConfigName".into(), json!(rec.config_name));
    if let Some(live) = &rec.live {
        let variants: Vec<Value> = live
            .variants
            .iter()
            .map(|v| variant_summary(&v.info, true, (v.desired_weight, v.desired_count)))
            .collect();
        out.insert("ProductionVariants".into(), json!(variants));
    }
    out.insert("EndpointStatus".into(), json!(rec.status));
    if let Some(reason) = &rec.failure_reason {
        out.insert("FailureReason".into(), json!(reason));
    }
    out.insert("CreationTime".into(), json!(rec.created));
    out.insert("LastModifiedTime".into(), json!(rec.modified));
    if let Some(dc) = &rec.deployment_config {
        out.insert("LastDeploymentConfig".into(), dc.clone());
    }
    if let Some(p) = &rec.pending {
        let variants: Vec<Value> = p
            .snapshot
            .variants
            .iter()
            .map(|v| {
                let mut s = variant_summary(
                    &data::VariantInfo::of(v, &p.snapshot, p.started),
                    false,
                    (None, None),
                );
                if let (Some(obj), Some(t)) = (s.as_object_mut(), v.get("InstanceType")) {
                    obj.insert("InstanceType".into(), t.clone());
                }
                s
            })
            .collect();
        out.insert(
            "PendingDeploymentSummary".into(),
            json!({
                "EndpointConfigName": p.snapshot.config_name,
                "ProductionVariants": variants,
                "StartTime": p.started,
            }),
        );
    }
    Value::Object(out)
}

fn list_endpoints(state: &State, input: &Map<String, Value>) -> Result<Value> {
    let status = input.get("StatusEquals").and_then(Value::as_str);
    let num = |m: &str| input.get(m).and_then(Value::as_f64);
    let items = state
        .endpoints
        .values()
        .filter(|e| status.is_none_or(|s| s == e.status))
        .filter(|e| num("LastModifiedTimeBefore").is_none_or(|t| e.modified < t))
        .filter(|e| num("LastModifiedTimeAfter").is_none_or(|t| e.modified > t))
        .map(|e| {
            let summary = json!({
                "EndpointName": e.name,
                "EndpointArn": e.arn,
                "CreationTime": e.created,
                "LastModifiedTime": e.modified,
                "EndpointStatus": e.status,
            });
            let sort = if input.get("SortBy").and_then(Value::as_str) == Some("Status") {
                format!("{}\u{0}{}", e.status, e.name)
            } else {
                e.name.clone()
            };
            (sort, e.created, summary)
        })
        .collect();
    list(input, items, "Endpoints", None)
}

/// Filters (`NameContains`, `CreationTimeBefore/After`), sorts (`SortBy`,
/// `SortOrder`; default newest first) and pages (`MaxResults`, `NextToken`, an
/// offset) a list of (sort name, creation time, summary).
fn list(
    input: &Map<String, Value>,
    mut items: Vec<(String, f64, Value)>,
    field: &str,
    fixed_order: Option<&str>,
) -> Result<Value> {
    if let Some(part) = input.get("NameContains").and_then(Value::as_str) {
        let part = part.to_lowercase();
        items.retain(|(name, _, _)| name.to_lowercase().contains(&part));
    }
    if let Some(t) = input.get("CreationTimeBefore").and_then(Value::as_f64) {
        items.retain(|(_, created, _)| *created < t);
    }
    if let Some(t) = input.get("CreationTimeAfter").and_then(Value::as_f64) {
        items.retain(|(_, created, _)| *created > t);
    }
    if fixed_order.is_none() {
        let by_name = matches!(
            input.get("SortBy").and_then(Value::as_str),
            Some("Name") | Some("Status")
        );
        let ascending = input.get("SortOrder").and_then(Value::as_str) == Some("Ascending");
        items.sort_by(|a, b| {
            let ord = if by_name {
                a.0.cmp(&b.0)
            } else {
                a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0))
            };
            if ascending { ord } else { ord.reverse() }
        });
    }
    let start = match input.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => t
            .strip_prefix("fake-offset-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::validation("Invalid pagination token."))?,
    };
    let max = input
        .get("MaxResults")
        .and_then(Value::as_u64)
        .unwrap_or(if field == "Tags" { 50 } else { 10 }) as usize;
    let page: Vec<Value> = items
        .iter()
        .skip(start)
        .take(max)
        .map(|(_, _, v)| v.clone())
        .collect();
    let mut out = Map::new();
    out.insert(field.into(), Value::Array(page));
    if start + max < items.len() {
        out.insert(
            "NextToken".into(),
            json!(format!("fake-offset-{}", start + max)),
        );
    }
    Ok(Value::Object(out))
}
