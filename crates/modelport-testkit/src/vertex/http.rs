//! The HTTP surface: Vertex's REST paths mapped to discovery methods, faults and
//! body checks applied in one place, the fake's own `/_fake/` API.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::control::{self, ApiError, Loc};
use super::discovery::{Violation, validation_message};
use super::{Call, Fault, FaultKind, FaultSpec, Prediction, Shared};

/// How long the container gets to answer a prediction.
const PREDICT_TIMEOUT: Duration = Duration::from_secs(60);
/// Request limit of shared public endpoints (1.5 MB) and dedicated ones (10 MB).
const SHARED_MAX_BYTES: usize = 1_572_864;
const DEDICATED_MAX_BYTES: usize = 10 * 1024 * 1024;
const DEPLOYED_MODEL_HEADER: &str = "x-vertex-ai-deployed-model-id";
/// The key under which `predict` hands `handle` the deployed model that really
/// answered; removed before the answer is sent.
const ANSWERED_BY: &str = "__modelportFakeAnsweredBy";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// What a path names.
enum Route {
    Op {
        method: &'static str,
        loc: Loc,
        /// The resource name (model, endpoint, operation).
        name: String,
    },
    NotFound,
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(method: &Method, path: &str) -> Route {
    let (rest, ui) = if let Some(r) = path.strip_prefix("/v1/") {
        (r, false)
    } else if let Some(r) = path.strip_prefix("/ui/") {
        (r, true)
    } else {
        return Route::NotFound;
    };
    let rest = decode(rest);
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 5 || segs[0] != "projects" || segs[2] != "locations" {
        return Route::NotFound;
    }
    let loc = Loc {
        project: segs[1].to_string(),
        location: segs[3].to_string(),
    };
    let tail = &segs[4..];
    let parent = loc.parent();
    let op = |m: &'static str, name: String| Route::Op {
        method: m,
        loc: loc.clone(),
        name,
    };
    // Operations, flat or nested under a resource, at /v1/ and /ui/.
    if tail.len() >= 2 && tail[tail.len() - 2] == "operations" && *method == Method::GET {
        return op("operations.get", rest.clone());
    }
    // The operations of one resource (an endpoint, a model), as the official
    // client lists them at /ui/{name}/operations.
    if tail.len() >= 3 && tail[tail.len() - 1] == "operations" && *method == Method::GET {
        let owner = rest.trim_end_matches("/operations").to_string();
        return op("operations.list", owner);
    }
    if ui {
        return Route::NotFound;
    }
    match (method.clone(), tail) {
        (Method::POST, ["models:upload"]) => op("models.upload", parent),
        (Method::GET, ["models"]) => op("models.list", parent),
        (Method::GET, ["models", id]) => op("models.get", format!("{parent}/models/{id}")),
        (Method::DELETE, ["models", id]) => op("models.delete", format!("{parent}/models/{id}")),
        (Method::POST, ["endpoints"]) => op("endpoints.create", parent),
        (Method::GET, ["endpoints"]) => op("endpoints.list", parent),
        (Method::GET, ["endpoints", id]) if !id.contains(':') => {
            op("endpoints.get", format!("{parent}/endpoints/{id}"))
        }
        (Method::PATCH, ["endpoints", id]) if !id.contains(':') => {
            op("endpoints.patch", format!("{parent}/endpoints/{id}"))
        }
        (Method::DELETE, ["endpoints", id]) if !id.contains(':') => {
            op("endpoints.delete", format!("{parent}/endpoints/{id}"))
        }
        (Method::POST, ["endpoints", id_verb]) => match id_verb.split_once(':') {
            Some((id, verb)) => {
                let name = format!("{parent}/endpoints/{id}");
                match verb {
                    "deployModel" => op("endpoints.deployModel", name),
                    "undeployModel" => op("endpoints.undeployModel", name),
                    "mutateDeployedModel" => op("endpoints.mutateDeployedModel", name),
                    "predict" => op("endpoints.predict", name),
                    "rawPredict" => op("endpoints.rawPredict", name),
                    _ => Route::NotFound,
                }
            }
            None => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

/// IAM's `projects.serviceAccounts.get`: the project is `-` or the account's own.
fn service_account(shared: &Shared, path: &str, (project, email): (&str, &str)) -> Response {
    let email = decode(email);
    let known = shared
        .config
        .service_accounts
        .iter()
        .find(|(e, _)| *e == email);
    let own_project = email
        .split_once('@')
        .and_then(|(_, domain)| domain.split('.').next())
        .unwrap_or_default()
        .to_string();
    let (status, body) = match known {
        Some((_, disabled)) if project == "-" || project == own_project => (
            200,
            json!({
                "name": format!("projects/{own_project}/serviceAccounts/{email}"),
                "projectId": own_project,
                "uniqueId": "104857600000000000001",
                "email": email,
                "etag": "MDEwMjE5MjA=",
                "oauth2ClientId": "104857600000000000001",
                "disabled": disabled,
            }),
        ),
        _ => (
            404,
            json!({"error": {"code": 404, "message": "Unknown service account", "status": "NOT_FOUND"}}),
        ),
    };
    shared.record(Call {
        method: "iam.serviceAccounts.get".into(),
        name: Some(path.trim_start_matches("/v1/").to_string()),
        status,
    });
    json_response(status, &body)
}

fn google_error(e: &ApiError) -> Response {
    let body = json!({"error": {"code": e.http, "message": e.message, "status": e.status}});
    json_response(e.http, &body)
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if let Some(rest) = path.strip_prefix("/_fake/") {
        return fake_api(&shared, &parts.method, rest, &body);
    }
    if parts.method == Method::GET
        && let Some(account) = path
            .strip_prefix("/v1/projects/")
            .and_then(|rest| rest.split_once("/serviceAccounts/"))
    {
        return service_account(&shared, &path, account);
    }
    let Route::Op { method, loc, name } = route(&parts.method, &path) else {
        shared.record(Call {
            method: "unknown".into(),
            name: Some(path.clone()),
            status: 404,
        });
        return google_error(&ApiError::not_found(format!(
            "The fake Vertex AI has no method for {} {path}.",
            parts.method
        )));
    };
    let int_enums = decode(&query).contains("enum-encoding=int");
    let mut answered_by = None;
    let reads = parts.method == Method::GET || method.ends_with("redict");
    let decision = shared
        .config
        .tripwire
        .on_call(&format!("{method} {name}"), !reads);
    let result = match decision.refusal() {
        Some(crate::Trip::Throttle) => Err(ApiError {
            http: 429,
            status: "RESOURCE_EXHAUSTED",
            message: format!(
                "Quota exceeded for aiplatform.googleapis.com/{} (project {}, region {}); \
                 the request rate is too high.",
                if reads {
                    "read_requests"
                } else {
                    "write_requests"
                },
                loc.project,
                loc.location
            ),
        }),
        Some(_) => Err(ApiError {
            http: 503,
            status: "UNAVAILABLE",
            message: "The service is currently unavailable.".into(),
        }),
        None => dispatch(&shared, method, &loc, &name, &query, &parts.headers, body).await,
    };
    let result = result.map(|answer| match answer {
        Answer::Json(mut v) => {
            // Who really answered, for the prediction log (not part of the answer).
            answered_by = v
                .as_object_mut()
                .and_then(|o| o.remove(ANSWERED_BY))
                .and_then(|id| id.as_str().map(str::to_string));
            Answer::Json(v)
        }
        Answer::Raw(resp) => {
            answered_by = resp
                .headers()
                .get(DEPLOYED_MODEL_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Answer::Raw(resp)
        }
    });
    let resp = match result {
        Ok(Answer::Json(v)) if cfg!(debug_assertions) && !response_fits(&shared, method, &v) => {
            google_error(&ApiError {
                http: 500,
                status: "INTERNAL",
                message: format!(
                    "fake Vertex AI bug: the {method} response does not fit the discovery \
                     document (see the fake's log)"
                ),
            })
        }
        Ok(Answer::Json(mut v)) => {
            if int_enums {
                int_encode(&mut v);
            }
            json_response(200, &v)
        }
        Ok(Answer::Raw(resp)) => resp,
        Err(e) => {
            tracing::debug!(method, status = e.status, message = %e.message, "refused");
            google_error(&e)
        }
    };
    let status = resp.status().as_u16();
    tracing::info!(method, name = %name, status, answered_by = answered_by.as_deref().unwrap_or("-"), "vertex");
    let seq = shared.record(Call {
        method: method.to_string(),
        name: Some(name.clone()),
        status,
    });
    if let Some(id) = answered_by {
        shared
            .predictions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Prediction {
                seq,
                endpoint: name,
                deployed_model_id: id,
                status,
            });
    }
    decision.finish(resp).await
}

/// Checks an answer against the method's response schema, and an operation's
/// `metadata` and `response` against the schema their `@type` names, so that what
/// the fake says is known to parse in the official clients.
fn response_fits(shared: &Shared, method: &str, v: &Value) -> bool {
    let d = &shared.discovery;
    let Some(schema) = d.method(method).and_then(|m| m.response.clone()) else {
        return true;
    };
    let mut errors = d.validate(&schema, v);
    if schema == "GoogleLongrunningOperation" {
        for key in ["metadata", "response"] {
            let Some(Value::Object(inner)) = v.get(key) else {
                continue;
            };
            let Some(ty) = inner.get("@type").and_then(Value::as_str) else {
                errors.push(Violation::Required {
                    path: format!("{key}.@type"),
                });
                continue;
            };
            let schema = match ty.rsplit('/').next().unwrap_or_default() {
                "google.protobuf.Empty" => "GoogleProtobufEmpty".to_string(),
                t => match t.strip_prefix("google.cloud.aiplatform.v1.") {
                    Some(name) => format!("GoogleCloudAiplatformV1{name}"),
                    None => String::new(),
                },
            };
            if !d.has_schema(&schema) {
                errors.push(Violation::Invalid {
                    path: format!("{key}.@type"),
                    kind: "TYPE_URL".into(),
                    value: ty.to_string(),
                });
                continue;
            }
            let mut body = inner.clone();
            body.remove("@type");
            errors.extend(d.validate(&schema, &Value::Object(body)));
        }
    }
    if !errors.is_empty() {
        tracing::error!(method, ?errors, %v, "the fake's response does not fit the discovery document");
    }
    errors.is_empty()
}

/// The proto numbers of the one enum the fake answers with
/// (DeployModelOperationMetadata.DeploymentStage), for `enum-encoding=int`.
fn int_encode(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(stage)) = m.get("deploymentStage") {
                let n = match stage.as_str() {
                    "STARTING_DEPLOYMENT" => 5,
                    "PREPARING_MODEL" => 6,
                    "CREATING_SERVING_CLUSTER" => 7,
                    "ADDING_NODES_TO_CLUSTER" => 8,
                    "GETTING_CONTAINER_IMAGE" => 9,
                    "STARTING_MODEL_SERVER" => 3,
                    "FINISHING_UP" => 4,
                    "DEPLOYMENT_TERMINATED" => 10,
                    _ => 0,
                };
                m.insert("deploymentStage".into(), json!(n));
            }
            for v in m.values_mut() {
                int_encode(v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(int_encode),
        _ => {}
    }
}

enum Answer {
    Json(Value),
    Raw(Response),
}

/// An injected fault due for `method`, other than ServerNeverReady (which the
/// deployment takes). `Ok(true)` means a quota fault for deployModel to report
/// after its own checks.
async fn take_fault(shared: &Shared, method: &str, loc: &Loc) -> Result<bool, ApiError> {
    let fault = shared.take_fault(method, |k| {
        !matches!(k, FaultKind::ServerNeverReady | FaultKind::ForeignAnswer)
    });
    match fault {
        None => Ok(false),
        Some(FaultKind::Delay(d)) => {
            tracing::info!(method, delay = ?d, "fault: delaying the request");
            tokio::time::sleep(d).await;
            Ok(false)
        }
        Some(FaultKind::QuotaExceeded) if method == "endpoints.deployModel" => Ok(true),
        Some(FaultKind::QuotaExceeded) => Err(ApiError {
            http: 429,
            status: "RESOURCE_EXHAUSTED",
            message: format!(
                "The following quota metrics exceed quota limits: \
                 aiplatform.googleapis.com/custom_model_serving_cpus (project {}, region {})",
                loc.project, loc.location
            ),
        }),
        Some(FaultKind::TooManyRequests) => Err(ApiError {
            http: 429,
            status: "RESOURCE_EXHAUSTED",
            message: format!(
                "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model \
                 with base model: modelport. Please submit a quota increase request. (project {}, \
                 region {})",
                loc.project, loc.location
            ),
        }),
        Some(_) => Err(ApiError {
            http: 503,
            status: "UNAVAILABLE",
            message: "The service is currently unavailable.".into(),
        }),
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    method: &'static str,
    loc: &Loc,
    name: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: Bytes,
) -> Result<Answer, ApiError> {
    let quota = take_fault(shared, method, loc).await?;
    if method == "endpoints.rawPredict" {
        // The body is the HttpBody itself, passed to the container untouched.
        return raw_predict(shared, name, headers, body)
            .await
            .map(Answer::Raw);
    }
    let request_schema = shared
        .discovery
        .method(method)
        .and_then(|m| m.request.clone());
    let input: Map<String, Value> = match &request_schema {
        None => Map::new(),
        Some(schema) => {
            let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))?
            };
            let mut errors = shared.discovery.validate(schema, &value);
            if method.ends_with(".patch") {
                // A PATCH carries only the fields in its update mask.
                errors.retain(|v| !matches!(v, Violation::Required { .. }));
            }
            if !errors.is_empty() {
                return Err(ApiError::invalid(validation_message(&errors)));
            }
            match shared.discovery.normalize(schema, value) {
                Value::Object(m) => m,
                _ => {
                    return Err(ApiError::invalid(
                        "Invalid JSON payload received. Expected an object.",
                    ));
                }
            }
        }
    };
    let filter = query_param(query, "filter").unwrap_or_default();
    let json = match method {
        "operations.get" => control::get_operation(shared, loc, name)?,
        "operations.list" => control::list_operations(
            shared,
            name,
            &filter,
            query_param(query, "pageToken").as_deref(),
        )?,
        "models.upload" => control::upload_model(shared, loc, input)?,
        "models.get" => control::get_model(shared, name)?,
        "models.list" => control::list_models(shared, loc, &filter)?,
        "models.delete" => control::delete_model(shared, name)?,
        "endpoints.create" => control::create_endpoint(
            shared,
            loc,
            query_param(query, "endpointId").as_deref(),
            input,
        )?,
        "endpoints.get" => control::get_endpoint(shared, name)?,
        "endpoints.list" => control::list_endpoints(shared, loc, &filter)?,
        "endpoints.patch" => control::patch_endpoint(
            shared,
            name,
            &query_param(query, "updateMask")
                .or_else(|| query_param(query, "update_mask"))
                .unwrap_or_default(),
            input,
        )?,
        "endpoints.delete" => control::delete_endpoint(shared, name)?,
        "endpoints.deployModel" => control::deploy_model(shared, loc, name, input, quota)?,
        "endpoints.undeployModel" => control::undeploy_model(shared, name, input)?,
        "endpoints.predict" => predict(shared, name, input, body.len()).await?,
        other => {
            return Err(ApiError::unimplemented(format!(
                "The fake Vertex AI does not implement {other}."
            )));
        }
    };
    Ok(Answer::Json(json))
}

fn check_size(len: usize, dedicated: bool) -> Result<(), ApiError> {
    let limit = if dedicated {
        DEDICATED_MAX_BYTES
    } else {
        SHARED_MAX_BYTES
    };
    if len > limit {
        return Err(ApiError::invalid(format!(
            "Request payload size exceeds the limit: {limit} bytes."
        )));
    }
    Ok(())
}

async fn predict(
    shared: &Shared,
    endpoint: &str,
    input: Map<String, Value>,
    size: usize,
) -> Result<Value, ApiError> {
    let target = control::route(shared, endpoint)?;
    check_size(size, target.dedicated)?;
    let mut forward = Map::new();
    for key in ["instances", "parameters"] {
        if let Some(v) = input.get(key) {
            forward.insert(key.into(), v.clone());
        }
    }
    let (status, bytes, _) = send(
        shared,
        &target,
        "application/json",
        Value::Object(forward).to_string().into(),
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(container_error(status, &bytes));
    }
    let mut out: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError {
        http: 500,
        status: "INTERNAL",
        message: format!("The model server's answer is not JSON: {e}"),
    })?;
    let Some(obj) = out.as_object_mut() else {
        return Err(ApiError {
            http: 500,
            status: "INTERNAL",
            message: "The model server's answer is not a JSON object.".into(),
        });
    };
    if !obj.contains_key("predictions") {
        return Err(ApiError {
            http: 500,
            status: "INTERNAL",
            message: "The model server's answer has no \"predictions\".".into(),
        });
    }
    let foreign = shared
        .take_fault("endpoints.predict", |k| *k == FaultKind::ForeignAnswer)
        .is_some();
    let named = if foreign {
        tracing::info!("fault: the answer names another deployed model");
        "1000000001".to_string()
    } else {
        target.deployed_model_id.clone()
    };
    obj.insert("deployedModelId".into(), json!(named));
    obj.insert(ANSWERED_BY.into(), json!(target.deployed_model_id));
    obj.insert("model".into(), json!(target.model));
    obj.insert("modelVersionId".into(), json!("1"));
    if let Some(n) = target.display_name {
        obj.insert("modelDisplayName".into(), n);
    }
    Ok(out)
}

/// A container's non-2xx answer, passed to the caller with its status.
fn container_error(status: u16, body: &[u8]) -> ApiError {
    let status_name = match status {
        400 => "INVALID_ARGUMENT",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    };
    ApiError {
        http: status,
        status: status_name,
        message: String::from_utf8_lossy(body).into_owned(),
    }
}

async fn send(
    shared: &Shared,
    target: &control::Target,
    content_type: &str,
    body: Bytes,
) -> Result<(u16, Bytes, Option<HeaderValue>), ApiError> {
    let url = format!("http://127.0.0.1:{}{}", target.port, target.predict_route);
    let answer = shared
        .http
        .post(&url)
        .timeout(PREDICT_TIMEOUT)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(|e| ApiError {
            http: if e.is_timeout() { 504 } else { 503 },
            status: if e.is_timeout() {
                "DEADLINE_EXCEEDED"
            } else {
                "UNAVAILABLE"
            },
            message: format!("The model server did not answer: {e}"),
        })?;
    let status = answer.status().as_u16();
    let ct = answer.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = answer.bytes().await.map_err(|e| ApiError {
        http: 503,
        status: "UNAVAILABLE",
        message: format!("The model server's answer was cut: {e}"),
    })?;
    Ok((status, bytes, ct))
}

async fn raw_predict(
    shared: &Shared,
    endpoint: &str,
    headers: &axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !control::endpoint_exists(shared, endpoint) {
        return Err(ApiError::not_found(format!(
            "Endpoint \"{endpoint}\" not found."
        )));
    }
    let target = control::route(shared, endpoint)?;
    check_size(body.len(), target.dedicated)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let (status, bytes, answer_ct) = send(shared, &target, &ct, body).await?;
    if !(200..300).contains(&status) {
        return Err(container_error(status, &bytes));
    }
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        answer_ct.unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&target.deployed_model_id) {
        h.insert(DEPLOYED_MODEL_HEADER, v);
    }
    Ok(resp)
}

fn fake_api(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Response {
    match (method, path) {
        (&Method::GET, "calls") => json_response(
            200,
            &json!(shared
                .calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()),
        ),
        (&Method::GET, "health") => json_response(200, &json!({"ok": true})),
        (&Method::POST, "faults") => {
            match crate::faults::parse::<FaultSpec, Fault>(body) {
                Ok(faults) => {
                    let n = faults.len();
                    shared
                        .faults
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(faults);
                    json_response(200, &json!({"added": n}))
                }
                Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
            }
        }
        (&Method::DELETE, "faults") => {
            shared
                .faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            json_response(200, &json!({"cleared": true}))
        }
        _ => (
            StatusCode::NOT_FOUND,
            "the fake's API: GET /_fake/calls, POST /_fake/faults, DELETE /_fake/faults, GET /_fake/health",
        )
            .into_response(),
    }
}
