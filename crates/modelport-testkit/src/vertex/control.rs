//! The control plane: models, endpoints, deployed models and the long-running
//! operations that change them, with Vertex's rules and messages.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::{FaultKind, Shared, data};

const TYPE_PREFIX: &str = "type.googleapis.com/google.cloud.aiplatform.v1.";

/// A refusal, as Google's JSON error `{"error": {"code", "message", "status"}}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub http: u16,
    pub status: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            http: 400,
            status: "INVALID_ARGUMENT",
            message: message.into(),
        }
    }

    pub fn precondition(message: impl Into<String>) -> ApiError {
        ApiError {
            http: 400,
            status: "FAILED_PRECONDITION",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            http: 404,
            status: "NOT_FOUND",
            message: message.into(),
        }
    }

    pub fn unimplemented(message: impl Into<String>) -> ApiError {
        ApiError {
            http: 501,
            status: "UNIMPLEMENTED",
            message: message.into(),
        }
    }

    /// The `google.rpc.Status` form, for an operation's `error`.
    pub fn rpc_status(&self) -> Value {
        json!({"code": grpc_code(self.status), "message": self.message})
    }
}

/// The gRPC code of a status name.
pub(crate) fn grpc_code(status: &str) -> i64 {
    match status {
        "CANCELLED" => 1,
        "INVALID_ARGUMENT" => 3,
        "DEADLINE_EXCEEDED" => 4,
        "NOT_FOUND" => 5,
        "ALREADY_EXISTS" => 6,
        "PERMISSION_DENIED" => 7,
        "RESOURCE_EXHAUSTED" => 8,
        "FAILED_PRECONDITION" => 9,
        "ABORTED" => 10,
        "UNIMPLEMENTED" => 12,
        "INTERNAL" => 13,
        "UNAVAILABLE" => 14,
        _ => 2,
    }
}

/// `projects/P/locations/L`.
#[derive(Debug, Clone)]
pub(crate) struct Loc {
    pub project: String,
    pub location: String,
}

impl Loc {
    pub fn parent(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.location)
    }
}

pub(crate) struct ModelRec {
    pub resource: Map<String, Value>,
}

/// A deployed model and the server answering for it.
pub(crate) struct Deployed {
    pub resource: Map<String, Value>,
    pub model: String,
    pub port: u16,
    pub pid: u32,
    pub predict_route: String,
    pub undeploying: bool,
}

pub(crate) struct EndpointRec {
    pub resource: Map<String, Value>,
    pub deployed: Vec<Deployed>,
    pub traffic: BTreeMap<String, i64>,
    /// deployModel operations not finished yet.
    pub deploying: u32,
    pub deleting: bool,
    /// Counts predictions, for the deterministic traffic split.
    pub served: u64,
}

pub(crate) struct Operation {
    pub name: String,
    pub metadata: Value,
    pub done: bool,
    pub response: Option<Value>,
    pub error: Option<Value>,
}

#[derive(Default)]
pub(crate) struct State {
    next_id: u64,
    pub models: BTreeMap<String, ModelRec>,
    pub endpoints: BTreeMap<String, EndpointRec>,
    /// By operation id (the last segment of its name).
    pub operations: HashMap<String, Operation>,
}

impl State {
    /// A fresh numeric id, shaped like Vertex's.
    pub fn id(&mut self) -> String {
        self.next_id += 1;
        (4_000_000_000_000_000_000u64 + self.next_id * 7919).to_string()
    }
}

/// RFC 3339 UTC with nanoseconds, as Google prints timestamps.
pub(crate) fn timestamp() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    modelport_core::time::rfc3339_nanos(d.as_secs(), d.subsec_nanos())
}

fn generic_metadata(kind: &str) -> Value {
    let now = timestamp();
    json!({
        "@type": format!("{TYPE_PREFIX}{kind}"),
        "genericMetadata": {"createTime": now, "updateTime": now},
    })
}

/// Registers a new, not yet done operation named under `owner` and returns it.
fn new_operation(state: &mut State, owner: &str, metadata: Value) -> (String, Value) {
    let id = state.id();
    let name = format!("{owner}/operations/{id}");
    let op = Operation {
        name: name.clone(),
        metadata,
        done: false,
        response: None,
        error: None,
    };
    let rendered = render_operation(&op);
    state.operations.insert(id.clone(), op);
    (id, rendered)
}

pub(crate) fn render_operation(op: &Operation) -> Value {
    let mut out = json!({"name": op.name, "metadata": op.metadata, "done": op.done});
    if let Some(r) = &op.response {
        out["response"] = r.clone();
    }
    if let Some(e) = &op.error {
        out["error"] = e.clone();
    }
    out
}

/// Updates an operation's metadata (deployment stage) and its update time.
pub(crate) fn set_stage(shared: &Shared, op_id: &str, stage: &str) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(op) = state.operations.get_mut(op_id) {
        op.metadata["deploymentStage"] = json!(stage);
        op.metadata["genericMetadata"]["updateTime"] = json!(timestamp());
        tracing::info!(operation = %op.name, stage, "deployment stage");
    }
}

/// Finishes an operation with a response or an error.
pub(crate) fn finish_operation(shared: &Shared, op_id: &str, result: Result<Value, ApiError>) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(op) = state.operations.get_mut(op_id) {
        op.done = true;
        op.metadata["genericMetadata"]["updateTime"] = json!(timestamp());
        match result {
            Ok(r) => op.response = Some(r),
            Err(e) => {
                tracing::info!(operation = %op.name, message = %e.message, "operation failed");
                op.error = Some(e.rpc_status());
            }
        }
    }
}

pub(crate) fn get_operation(shared: &Shared, loc: &Loc, name: &str) -> Result<Value, ApiError> {
    let id = name.rsplit('/').next().unwrap_or_default();
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state
        .operations
        .get(id)
        .filter(|op| op.name.starts_with(&format!("{}/", loc.parent())))
        .map(render_operation)
        .ok_or_else(|| ApiError::not_found(format!("Operation \"{name}\" not found.")))
}

/// `GET {name}/operations`: the operations on one resource, running or done,
/// oldest first, in one page. Filters other than `done=true` / `done=false` are
/// refused rather than ignored.
pub(crate) fn list_operations(
    shared: &Shared,
    name: &str,
    filter: &str,
    page_token: Option<&str>,
) -> Result<Value, ApiError> {
    let done = match filter.trim().replace(' ', "").as_str() {
        "" => None,
        "done=true" => Some(true),
        "done=false" => Some(false),
        other => {
            return Err(ApiError::invalid(format!(
                "The fake Vertex AI filters operations by done=true or done=false only, not {other:?}."
            )));
        }
    };
    if page_token.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::invalid(
            "Invalid page token: the fake lists one page.",
        ));
    }
    let prefix = format!("{name}/operations/");
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let mut ops: Vec<&Operation> = state
        .operations
        .values()
        .filter(|op| op.name.starts_with(&prefix))
        .filter(|op| done.is_none_or(|d| op.done == d))
        .collect();
    ops.sort_by_key(|op| {
        op.name
            .rsplit('/')
            .next()
            .and_then(|id| id.parse::<u64>().ok())
    });
    Ok(if ops.is_empty() {
        json!({})
    } else {
        json!({"operations": ops.into_iter().map(render_operation).collect::<Vec<_>>()})
    })
}

fn string_map(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

/// `labels.KEY=VALUE`, `labels.KEY="VALUE"`, `labels.KEY:*` and
/// `display_name=NAME`, joined with `AND`.
fn matches_filter(resource: &Map<String, Value>, filter: &str) -> Result<bool, ApiError> {
    let filter = filter.trim();
    if filter.is_empty() {
        return Ok(true);
    }
    let labels = string_map(resource.get("labels"));
    let mut all = true;
    for term in filter.split(" AND ").flat_map(|t| t.split(" and ")) {
        let term = term.trim();
        let unquote = |v: &str| v.trim().trim_matches('"').to_string();
        let ok = if let Some(key) = term
            .strip_prefix("labels.")
            .and_then(|t| t.strip_suffix(":*"))
        {
            labels.contains_key(key.trim())
        } else if let Some((key, value)) =
            term.strip_prefix("labels.").and_then(|t| t.split_once('='))
        {
            labels.get(key.trim()).and_then(Value::as_str) == Some(unquote(value).as_str())
        } else if let Some((key, value)) = term.split_once('=') {
            match key.trim() {
                "display_name" | "displayName" => {
                    resource.get("displayName").and_then(Value::as_str)
                        == Some(unquote(value).as_str())
                }
                other => {
                    return Err(ApiError::invalid(format!(
                        "Provided filter is not supported: the fake filters on labels and \
                         display_name only, not {other:?}."
                    )));
                }
            }
        } else {
            return Err(ApiError::invalid(format!("Invalid filter: {filter:?}.")));
        };
        all &= ok;
    }
    Ok(all)
}

// ---- models --------------------------------------------------------------

pub(crate) fn upload_model(
    shared: &Arc<Shared>,
    loc: &Loc,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    if body.contains_key("parentModel") || body.contains_key("parent_model") {
        return Err(ApiError::unimplemented(
            "The fake Vertex AI does not implement model versions (parentModel).",
        ));
    }
    let model = string_map(body.get("model"));
    if !model.contains_key("containerSpec") && !model.contains_key("container_spec") {
        return Err(ApiError::invalid(
            "Model.container_spec must be set: the fake serves custom-container models only.",
        ));
    }
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let id = match body
        .get("modelId")
        .or(body.get("model_id"))
        .and_then(Value::as_str)
    {
        Some(id) if !id.is_empty() => {
            let valid = id.len() <= 63
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                return Err(ApiError::invalid(format!(
                    "Invalid model_id \"{id}\": it must match [a-z][-a-z0-9]{{0,62}}."
                )));
            }
            id.to_string()
        }
        _ => state.id(),
    };
    let name = format!("{}/models/{id}", loc.parent());
    if state.models.contains_key(&name) {
        return Err(ApiError {
            http: 409,
            status: "ALREADY_EXISTS",
            message: format!("Model with id {id} already exists."),
        });
    }
    let now = timestamp();
    let mut resource = Map::new();
    for (k, v) in model {
        resource.insert(super::discovery::camel(&k), v);
    }
    resource.insert("name".into(), json!(name));
    resource.insert("versionId".into(), json!("1"));
    resource.insert("versionAliases".into(), json!(["default"]));
    for k in [
        "createTime",
        "updateTime",
        "versionCreateTime",
        "versionUpdateTime",
    ] {
        resource.insert(k.into(), json!(now));
    }
    resource.insert("etag".into(), json!(format!("AMEw9yN{}", state.next_id)));
    let (op_id, op) = new_operation(
        &mut state,
        &name,
        generic_metadata("UploadModelOperationMetadata"),
    );
    drop(state);
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.operation_delay).await;
        shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .models
            .insert(name.clone(), ModelRec { resource });
        tracing::info!(model = %name, "model uploaded");
        finish_operation(
            &shared,
            &op_id,
            Ok(json!({
                "@type": format!("{TYPE_PREFIX}UploadModelResponse"),
                "model": name,
                "modelVersionId": "1",
            })),
        );
    });
    Ok(op)
}

/// The model as GET shows it, with the endpoints it is deployed to.
fn render_model(state: &State, name: &str, rec: &ModelRec) -> Value {
    let mut out = rec.resource.clone();
    let refs: Vec<Value> = state
        .endpoints
        .iter()
        .flat_map(|(ep, e)| {
            e.deployed
                .iter()
                .filter(|d| d.model == name)
                .map(move |d| json!({"endpoint": ep, "deployedModelId": d.resource["id"]}))
        })
        .collect();
    if !refs.is_empty() {
        out.insert("deployedModels".into(), Value::Array(refs));
    }
    Value::Object(out)
}

fn model_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("The Model \"{name}\" does not exist."))
}

/// `projects/P/locations/L/models/ID`, also when given with `@VERSION`.
fn model_key(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

pub(crate) fn get_model(shared: &Shared, name: &str) -> Result<Value, ApiError> {
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let rec = state
        .models
        .get(model_key(name))
        .ok_or_else(|| model_not_found(name))?;
    Ok(render_model(&state, model_key(name), rec))
}

pub(crate) fn list_models(shared: &Shared, loc: &Loc, filter: &str) -> Result<Value, ApiError> {
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = format!("{}/models/", loc.parent());
    let mut models = Vec::new();
    for (name, rec) in state.models.range(prefix.clone()..) {
        if !name.starts_with(&prefix) {
            break;
        }
        if matches_filter(&rec.resource, filter)? {
            models.push(render_model(&state, name, rec));
        }
    }
    Ok(if models.is_empty() {
        json!({})
    } else {
        json!({"models": models})
    })
}

pub(crate) fn delete_model(shared: &Arc<Shared>, name: &str) -> Result<Value, ApiError> {
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    if !state.models.contains_key(name) {
        return Err(model_not_found(name));
    }
    let users: Vec<String> = state
        .endpoints
        .iter()
        .filter(|(_, e)| e.deployed.iter().any(|d| d.model == name))
        .map(|(n, _)| n.clone())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::precondition(format!(
            "Model \"{name}\" is deployed or being deployed at the following Endpoint(s): {}.",
            users.join(", ")
        )));
    }
    Ok(delete_later(shared, state, name, |st, n| {
        st.models.remove(n);
    }))
}

// ---- endpoints -----------------------------------------------------------

fn endpoint_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Endpoint \"{name}\" not found."))
}

pub(crate) fn render_endpoint(rec: &EndpointRec) -> Value {
    let mut out = rec.resource.clone();
    let deployed: Vec<Value> = rec
        .deployed
        .iter()
        .map(|d| Value::Object(d.resource.clone()))
        .collect();
    if !deployed.is_empty() {
        out.insert("deployedModels".into(), Value::Array(deployed));
    }
    if !rec.traffic.is_empty() {
        out.insert("trafficSplit".into(), json!(rec.traffic));
    }
    Value::Object(out)
}

pub(crate) fn create_endpoint(
    shared: &Arc<Shared>,
    loc: &Loc,
    endpoint_id: Option<&str>,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let id = match endpoint_id.filter(|s| !s.is_empty()) {
        Some(id) => {
            // The discovery document's rule: a letter first and up to 63 of
            // `[a-z0-9-]` not ending in `-`, or a number of at most 9 digits
            // without leading zeros.
            let valid = if id.starts_with(|c: char| c.is_ascii_lowercase()) {
                id.len() <= 63
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !id.ends_with('-')
            } else {
                id.len() <= 9 && id.chars().all(|c| c.is_ascii_digit()) && !id.starts_with('0')
            };
            if !valid {
                return Err(ApiError::invalid(format!(
                    "Invalid endpoint_id \"{id}\": it must start with a letter and hold at most \
                     63 lowercase letters, digits and hyphens, or be a number of at most 9 digits \
                     without leading zeros."
                )));
            }
            id.to_string()
        }
        None => state.id(),
    };
    let name = format!("{}/endpoints/{id}", loc.parent());
    if state.endpoints.contains_key(&name) {
        return Err(ApiError {
            http: 409,
            status: "ALREADY_EXISTS",
            message: format!("Endpoint with id {id} already exists."),
        });
    }
    if body
        .get("trafficSplit")
        .is_some_and(|t| t.as_object().is_some_and(|m| !m.is_empty()))
    {
        return Err(ApiError::invalid(
            "Endpoint.traffic_split must be empty when the Endpoint is created: it has no \
             deployed models.",
        ));
    }
    let now = timestamp();
    let mut resource = Map::new();
    for (k, v) in body {
        let k = super::discovery::camel(&k);
        if !matches!(k.as_str(), "deployedModels" | "trafficSplit") {
            resource.insert(k, v);
        }
    }
    resource.insert("name".into(), json!(name));
    resource.insert("createTime".into(), json!(now));
    resource.insert("updateTime".into(), json!(now));
    resource.insert("etag".into(), json!(format!("AMEw9yN{}", state.next_id)));
    if resource.get("dedicatedEndpointEnabled") == Some(&json!(true)) {
        resource.insert(
            "dedicatedEndpointDns".into(),
            json!(format!(
                "{id}.{}-{}.prediction.vertexai.goog",
                loc.location, loc.project
            )),
        );
    }
    let (op_id, op) = new_operation(
        &mut state,
        &name,
        generic_metadata("CreateEndpointOperationMetadata"),
    );
    drop(state);
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.operation_delay).await;
        let rec = EndpointRec {
            resource,
            deployed: Vec::new(),
            traffic: BTreeMap::new(),
            deploying: 0,
            deleting: false,
            served: 0,
        };
        let mut response = render_endpoint(&rec);
        response["@type"] = json!(format!("{TYPE_PREFIX}Endpoint"));
        shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .endpoints
            .insert(name.clone(), rec);
        tracing::info!(endpoint = %name, "endpoint created");
        finish_operation(&shared, &op_id, Ok(response));
    });
    Ok(op)
}

pub(crate) fn get_endpoint(shared: &Shared, name: &str) -> Result<Value, ApiError> {
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state
        .endpoints
        .get(name)
        .map(render_endpoint)
        .ok_or_else(|| endpoint_not_found(name))
}

pub(crate) fn list_endpoints(shared: &Shared, loc: &Loc, filter: &str) -> Result<Value, ApiError> {
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = format!("{}/endpoints/", loc.parent());
    let mut endpoints = Vec::new();
    for (name, rec) in state.endpoints.range(prefix.clone()..) {
        if !name.starts_with(&prefix) {
            break;
        }
        if matches_filter(&rec.resource, filter)? {
            endpoints.push(render_endpoint(rec));
        }
    }
    Ok(if endpoints.is_empty() {
        json!({})
    } else {
        json!({"endpoints": endpoints})
    })
}

/// PATCH: `trafficSplit`, `labels`, `displayName`, `description` (per
/// `updateMask`, snake_case or camelCase).
pub(crate) fn patch_endpoint(
    shared: &Shared,
    name: &str,
    update_mask: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let rec = state
        .endpoints
        .get_mut(name)
        .ok_or_else(|| endpoint_not_found(name))?;
    if update_mask.trim().is_empty() {
        return Err(ApiError::invalid("update_mask must be set."));
    }
    for path in update_mask.split(',') {
        let field = super::discovery::camel(path.trim());
        let value = body
            .get(&field)
            .or_else(|| body.get(&super::discovery::snake(&field)))
            .cloned();
        match field.as_str() {
            "trafficSplit" => {
                let split = parse_split(value.as_ref())?;
                let ids: Vec<String> = rec
                    .deployed
                    .iter()
                    .filter_map(|d| d.resource["id"].as_str().map(str::to_string))
                    .collect();
                check_split(&split, &ids, name)?;
                rec.traffic = split;
            }
            "labels" | "displayName" | "description" => match value {
                Some(v) => {
                    rec.resource.insert(field, v);
                }
                None => {
                    rec.resource.remove(&field);
                }
            },
            other => {
                return Err(ApiError::invalid(format!(
                    "The update_mask path \"{other}\" is not supported by the fake (traffic_split, \
                     labels, display_name, description)."
                )));
            }
        }
    }
    rec.resource.insert("updateTime".into(), json!(timestamp()));
    Ok(render_endpoint(rec))
}

pub(crate) fn delete_endpoint(shared: &Arc<Shared>, name: &str) -> Result<Value, ApiError> {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let rec = state
        .endpoints
        .get_mut(name)
        .ok_or_else(|| endpoint_not_found(name))?;
    if !rec.deployed.is_empty() || rec.deploying > 0 {
        let ids: Vec<String> = rec
            .deployed
            .iter()
            .filter_map(|d| d.resource["id"].as_str().map(str::to_string))
            .collect();
        return Err(ApiError::precondition(format!(
            "Endpoint \"{name}\" has deployed or being deployed DeployedModel(s): [{}]. Undeploy \
             them before deleting the Endpoint.",
            ids.join(", ")
        )));
    }
    if rec.deleting {
        return Err(ApiError::precondition(format!(
            "Endpoint \"{name}\" is already being deleted."
        )));
    }
    rec.deleting = true;
    Ok(delete_later(shared, state, name, |st, n| {
        st.endpoints.remove(n);
    }))
}

/// Starts the delete operation of resource `name`: after the operation delay,
/// `remove` takes it out of the state and the operation finishes with `Empty`.
fn delete_later(
    shared: &Arc<Shared>,
    mut state: std::sync::MutexGuard<'_, State>,
    name: &str,
    remove: impl FnOnce(&mut State, &str) + Send + 'static,
) -> Value {
    let (op_id, op) = new_operation(
        &mut state,
        name,
        generic_metadata("DeleteOperationMetadata"),
    );
    drop(state);
    let shared = shared.clone();
    let name = name.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.operation_delay).await;
        remove(
            &mut shared.state.lock().unwrap_or_else(|e| e.into_inner()),
            &name,
        );
        tracing::info!(resource = %name, "deleted");
        finish_operation(
            &shared,
            &op_id,
            Ok(json!({"@type": "type.googleapis.com/google.protobuf.Empty"})),
        );
    });
    op
}

fn parse_split(v: Option<&Value>) -> Result<BTreeMap<String, i64>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in v.and_then(Value::as_object).into_iter().flatten() {
        let pct = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(-1);
        if !(0..=100).contains(&pct) {
            return Err(ApiError::invalid(format!(
                "Traffic split percentage for DeployedModel {k} must be between 0 and 100, got {v}."
            )));
        }
        out.insert(k.clone(), pct);
    }
    Ok(out)
}

/// A split must name only deployed models (`ids`) and add up to 100, or be empty
/// when nothing is deployed.
fn check_split(
    split: &BTreeMap<String, i64>,
    ids: &[String],
    endpoint: &str,
) -> Result<(), ApiError> {
    for k in split.keys() {
        if !ids.contains(k) {
            return Err(ApiError::invalid(format!(
                "Traffic split references DeployedModel {k}, which is not deployed to Endpoint \
                 \"{endpoint}\"."
            )));
        }
    }
    let sum: i64 = split.values().sum();
    if !(split.is_empty() && ids.is_empty()) && sum != 100 {
        return Err(ApiError::invalid(format!(
            "The traffic split percentages must add up to 100, got {sum}."
        )));
    }
    Ok(())
}

fn quota_message(project: &str, region: &str, cpus: i64) -> String {
    format!(
        "The following quota metrics exceed quota limits: \
         aiplatform.googleapis.com/custom_model_serving_cpus (requested {cpus} CPUs in region \
         {region} for project {project})"
    )
}

/// The vCPUs a machine type has (`n1-standard-4` → 4), for quota messages.
fn machine_cpus(machine_type: &str) -> i64 {
    machine_type
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2)
}

pub(crate) fn deploy_model(
    shared: &Arc<Shared>,
    loc: &Loc,
    endpoint: &str,
    body: Map<String, Value>,
    quota_fault: bool,
) -> Result<Value, ApiError> {
    let mut dm: Map<String, Value> = string_map(body.get("deployedModel"))
        .into_iter()
        .map(|(k, v)| (super::discovery::camel(&k), v))
        .collect();
    let model_name = dm
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if model_name.is_empty() {
        return Err(ApiError::invalid(
            "List of found errors:\t1.Field: deployed_model.model; Message: Required field is not \
             set.\t",
        ));
    }
    if dm.contains_key("automaticResources") || !dm.contains_key("dedicatedResources") {
        return Err(ApiError::invalid(format!(
            "Model \"{model_name}\" does not support automatic resources: set \
             deployed_model.dedicated_resources."
        )));
    }
    let dedicated = string_map(dm.get("dedicatedResources"));
    let machine = string_map(dedicated.get("machineSpec"));
    let machine_type = machine
        .get("machineType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if machine_type.is_empty() {
        return Err(ApiError::invalid(
            "Machine type must be set: deployed_model.dedicated_resources.machine_spec.machine_type.",
        ));
    }
    let int = |v: Option<&Value>| {
        v.and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
    };
    let accel_type = machine.get("acceleratorType").cloned();
    let accel_set = match &accel_type {
        Some(Value::String(s)) => s != "ACCELERATOR_TYPE_UNSPECIFIED",
        Some(Value::Number(n)) => n.as_u64() != Some(0),
        _ => false,
    };
    let accel_count = int(machine.get("acceleratorCount"));
    if accel_set && accel_count < 1 {
        return Err(ApiError::invalid(
            "accelerator_count must be at least 1 when accelerator_type is set.",
        ));
    }
    if !accel_set && accel_count > 0 {
        return Err(ApiError::invalid(
            "accelerator_type must be set when accelerator_count is set.",
        ));
    }
    let min = int(dedicated.get("minReplicaCount"));
    let max = int(dedicated.get("maxReplicaCount"));
    if min < 1 {
        return Err(ApiError::invalid(
            "dedicated_resources.min_replica_count must be at least 1.",
        ));
    }
    if max != 0 && max < min {
        return Err(ApiError::invalid(format!(
            "dedicated_resources.max_replica_count ({max}) must not be less than \
             min_replica_count ({min})."
        )));
    }
    if quota_fault {
        return Err(ApiError {
            http: 429,
            status: "RESOURCE_EXHAUSTED",
            message: quota_message(
                &loc.project,
                &loc.location,
                machine_cpus(&machine_type) * max.max(min),
            ),
        });
    }
    let split = parse_split(body.get("trafficSplit"))?;
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let model = state
        .models
        .get(model_key(&model_name))
        .map(|m| m.resource.clone())
        .ok_or_else(|| model_not_found(&model_name))?;
    let id = match dm
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(id) => id.to_string(),
        None => state.id(),
    };
    let rec = state
        .endpoints
        .get_mut(endpoint)
        .ok_or_else(|| endpoint_not_found(endpoint))?;
    if rec.deleting {
        return Err(ApiError::precondition(format!(
            "Endpoint \"{endpoint}\" is being deleted."
        )));
    }
    if rec.deployed.iter().any(|d| d.resource["id"] == json!(id)) {
        return Err(ApiError {
            http: 409,
            status: "ALREADY_EXISTS",
            message: format!(
                "DeployedModel with ID {id} already exists in Endpoint \"{endpoint}\"."
            ),
        });
    }
    let mut ids: Vec<String> = rec
        .deployed
        .iter()
        .filter_map(|d| d.resource["id"].as_str().map(str::to_string))
        .collect();
    ids.push("0".into());
    if !split.is_empty() {
        check_split(&split, &ids, endpoint)?;
    }
    rec.deploying += 1;
    dm.insert("id".into(), json!(id));
    dm.insert("model".into(), json!(model_key(&model_name)));
    dm.insert("modelVersionId".into(), json!("1"));
    dm.insert("createTime".into(), json!(timestamp()));
    if let (false, Some(n)) = (dm.contains_key("displayName"), model.get("displayName")) {
        dm.insert("displayName".into(), n.clone());
    }
    let mut metadata = generic_metadata("DeployModelOperationMetadata");
    metadata["deploymentStage"] = json!("PREPARING_MODEL");
    let (op_id, op) = new_operation(&mut state, endpoint, metadata);
    drop(state);
    let never_ready = shared
        .take_fault("endpoints.deployModel", |k| {
            *k == FaultKind::ServerNeverReady
        })
        .is_some();
    tokio::spawn(data::deploy(
        shared.clone(),
        data::DeployJob {
            op_id,
            endpoint: endpoint.to_string(),
            model: model_key(&model_name).to_string(),
            model_resource: model,
            deployed: dm,
            split,
            never_ready,
        },
    ));
    Ok(op)
}

pub(crate) fn undeploy_model(
    shared: &Arc<Shared>,
    endpoint: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let id = body
        .get("deployedModelId")
        .or(body.get("deployed_model_id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let split = parse_split(body.get("trafficSplit").or(body.get("traffic_split")))?;
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let rec = state
        .endpoints
        .get_mut(endpoint)
        .ok_or_else(|| endpoint_not_found(endpoint))?;
    let Some(dep) = rec
        .deployed
        .iter()
        .position(|d| d.resource["id"] == json!(id))
    else {
        return Err(ApiError::not_found(format!(
            "DeployedModel with ID {id} not found in Endpoint \"{endpoint}\"."
        )));
    };
    if rec.deployed[dep].undeploying {
        return Err(ApiError::precondition(format!(
            "DeployedModel {id} of Endpoint \"{endpoint}\" is already being undeployed."
        )));
    }
    let rest: Vec<String> = rec
        .deployed
        .iter()
        .filter(|d| !d.undeploying && d.resource["id"] != json!(id))
        .filter_map(|d| d.resource["id"].as_str().map(str::to_string))
        .collect();
    let new_split = if !split.is_empty() {
        check_split(&split, &rest, endpoint)?;
        split
    } else {
        let share = rec.traffic.get(&id).copied().unwrap_or(0);
        if share > 0 && !rest.is_empty() {
            return Err(ApiError::precondition(format!(
                "DeployedModel {id} receives {share}% of the traffic of Endpoint \"{endpoint}\"; \
                 undeploying it needs a traffic_split for the remaining DeployedModels."
            )));
        }
        let mut t = rec.traffic.clone();
        t.remove(&id);
        t
    };
    rec.deployed[dep].undeploying = true;
    // The model stops receiving traffic when the request is accepted.
    rec.traffic = new_split;
    let (op_id, op) = new_operation(
        &mut state,
        endpoint,
        generic_metadata("UndeployModelOperationMetadata"),
    );
    drop(state);
    let shared = shared.clone();
    let endpoint = endpoint.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.operation_delay).await;
        let pid = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.endpoints.get_mut(&endpoint).and_then(|rec| {
                let i = rec
                    .deployed
                    .iter()
                    .position(|d| d.resource["id"] == json!(id))?;
                Some(rec.deployed.remove(i).pid)
            })
        };
        if let Some(pid) = pid {
            shared.servers.stop(pid).await;
        }
        tracing::info!(%endpoint, deployed_model = %id, "model undeployed");
        finish_operation(
            &shared,
            &op_id,
            Ok(json!({"@type": format!("{TYPE_PREFIX}UndeployModelResponse")})),
        );
    });
    Ok(op)
}

/// The deployed model that answers the next prediction: the traffic split read
/// as consecutive ranges of 100 requests, so a 90/10 split sends requests 0–89 of
/// every hundred to the first model and 90–99 to the second.
pub(crate) fn route(shared: &Shared, endpoint: &str) -> Result<Target, ApiError> {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let rec = state
        .endpoints
        .get_mut(endpoint)
        .ok_or_else(|| endpoint_not_found(endpoint))?;
    let slot = (rec.served % 100) as i64;
    let mut acc = 0;
    let mut chosen = None;
    for (id, pct) in &rec.traffic {
        acc += pct;
        if slot < acc {
            chosen = Some(id.clone());
            break;
        }
    }
    let dep = chosen
        .and_then(|id| rec.deployed.iter().find(|d| d.resource["id"] == json!(id)))
        .ok_or_else(|| {
            ApiError::precondition(format!(
                "Endpoint \"{endpoint}\" has no DeployedModel receiving traffic."
            ))
        })?;
    let target = Target {
        deployed_model_id: dep.resource["id"].as_str().unwrap_or_default().to_string(),
        model: dep.model.clone(),
        display_name: dep.resource.get("displayName").cloned(),
        port: dep.port,
        _hold: shared.servers.hold(dep.pid),
        predict_route: dep.predict_route.clone(),
        dedicated: rec.resource.get("dedicatedEndpointEnabled") == Some(&json!(true)),
    };
    rec.served += 1;
    Ok(target)
}

/// Where a prediction goes.
pub(crate) struct Target {
    pub deployed_model_id: String,
    pub model: String,
    pub display_name: Option<Value>,
    pub port: u16,
    /// Keeps the server from being stopped while the request is on its way.
    pub _hold: Option<crate::servers::Hold>,
    pub predict_route: String,
    pub dedicated: bool,
}

/// Whether an endpoint exists (for predict's 404 before routing).
pub(crate) fn endpoint_exists(shared: &Shared, name: &str) -> bool {
    shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .endpoints
        .contains_key(name)
}
