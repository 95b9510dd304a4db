//! The HTTP surface: one handler that routes by the request's SigV4 credential
//! scope to the control plane, the runtime, or the S3 pass-through, plus the
//! fake's own `/_fake/` API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::control::{self, ApiError};
use super::{
    Answered, Call, Fault, FaultKind, FaultSpec, Invocation, MAX_PAYLOAD_BYTES, Shared,
    validation_message,
};

const JSON_1_1: &str = "application/x-amz-json-1.1";
const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
/// How long the container gets to answer an invocation, as on SageMaker.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// The service named by the request's SigV4 credential scope
/// (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`), from the `Authorization`
/// header or a presigned URL's `X-Amz-Credential`.
fn signing_service(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let scope = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| {
            let rest = &auth[auth.find("Credential=")? + "Credential=".len()..];
            Some(rest.split([',', ' ']).next()?.to_string())
        })
        .or_else(|| {
            query?.split('&').find_map(|kv| {
                let v = kv.strip_prefix("X-Amz-Credential=")?;
                Some(percent_decode(v))
            })
        })?;
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.len() {
        5 => Some(parts[3].to_string()),
        // SigV4a has no region in the scope.
        4 => Some(parts[2].to_string()),
        _ => None,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if let Some(rest) = path.strip_prefix("/_fake/") {
        return fake_api(&shared, &parts.method, rest, &body);
    }
    let service = signing_service(&parts.headers, parts.uri.query());
    if service.as_deref() == Some("ecr")
        && let Some(op) = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix("AmazonEC2ContainerRegistry_V20150921."))
    {
        let input: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        let name = input["repositoryName"].as_str().map(str::to_string);
        let decision = shared.config.tripwire.on_call(
            &format!("ecr:{op} {}", name.as_deref().unwrap_or("")),
            !reads(op),
        );
        let result = if let Some(trip) = decision.refusal() {
            Err(refused(trip))
        } else if op == "DescribeImages" {
            super::ecr::describe_images(&shared, &input).await
        } else {
            super::ecr::run(&shared, op, &input)
        };
        return decision.finish(finish(&shared, op, name, result)).await;
    }
    if service.as_deref() == Some("sagemaker") {
        if let Some(target) = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
        {
            let op = target
                .strip_prefix("SageMaker.")
                .unwrap_or(target)
                .to_string();
            return control_plane(&shared, &op, &body).await;
        }
        let invoke = path
            .strip_prefix("/endpoints/")
            .and_then(|r| r.strip_suffix("/invocations"))
            .filter(|name| !name.contains('/'));
        if let (Some(name), &Method::POST) = (invoke, &parts.method) {
            return invoke_endpoint(&shared, &percent_decode(name), &parts.headers, body).await;
        }
        shared.record(Call {
            operation: "unknown".into(),
            name: Some(path.clone()),
            status: 404,
        });
        return json_error(
            404,
            "UnknownOperationException",
            &format!(
                "The fake SageMaker has no route for {} {path}",
                parts.method
            ),
            "application/json",
        );
    }
    proxy_s3(&shared, parts, body).await
}

fn json_error(status: u16, code: &str, message: &str, content_type: &str) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// A control-plane fault, if one is due: `Err` is the response to give, `Ok`
/// means go on (after any delay).
async fn control_fault(shared: &Shared, op: &str, input: &Value) -> Result<(), ApiError> {
    let fault = shared.take_fault(op, |k| {
        matches!(
            k,
            FaultKind::Throttling
                | FaultKind::ResourceLimitExceeded
                | FaultKind::InternalError
                | FaultKind::Delay(_)
        )
    });
    match fault {
        None => Ok(()),
        Some(FaultKind::Delay(d)) => {
            tracing::info!(operation = op, delay = ?d, "fault: delaying the request");
            tokio::time::sleep(d).await;
            Ok(())
        }
        Some(FaultKind::Throttling) => Err(ApiError {
            status: 400,
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
        }),
        Some(FaultKind::ResourceLimitExceeded) => {
            let (instance_type, count) = control::requested_instances(shared, input);
            Err(ApiError {
                status: 400,
                code: "ResourceLimitExceeded".into(),
                message: control::quota_message(&instance_type, count),
            })
        }
        Some(_) => Err(ApiError {
            status: 500,
            code: "InternalFailure".into(),
            message: "We encountered an internal error. Please try again.".into(),
        }),
    }
}

async fn control_plane(shared: &Arc<Shared>, op: &str, body: &[u8]) -> Response {
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return finish(
                    shared,
                    op,
                    None,
                    Err(ApiError {
                        status: 400,
                        code: "SerializationException".into(),
                        message: format!("The request body is not valid JSON: {e}"),
                    }),
                );
            }
        }
    };
    let name = control::name_of(&input);
    let decision = shared.config.tripwire.on_call(
        &format!("{op} {}", name.as_deref().unwrap_or("")),
        !reads(op),
    );
    let result = match decision.refusal() {
        Some(trip) => Err(refused(trip)),
        None => run_control(shared, op, input).await,
    };
    decision.finish(finish(shared, op, name, result)).await
}

/// True for operations that change nothing (`Describe*`, `List*`, `Get*`, ...).
fn reads(op: &str) -> bool {
    [
        "Describe",
        "List",
        "Get",
        "BatchGet",
        "BatchCheck",
        "Search",
    ]
    .iter()
    .any(|p| op.starts_with(p))
}

/// The error a tripwire's refusal answers with.
fn refused(trip: crate::Trip) -> ApiError {
    match trip {
        crate::Trip::Throttle => ApiError {
            status: 400,
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
        },
        _ => ApiError {
            status: 500,
            code: "InternalFailure".into(),
            message: "We encountered an internal error. Please try again.".into(),
        },
    }
}

async fn run_control(shared: &Arc<Shared>, op: &str, input: Value) -> Result<Value, ApiError> {
    control_fault(shared, op, &input).await?;
    let model = &shared.model;
    if !control::OPERATIONS.contains(&op) {
        let why = if model.has_operation(op) {
            format!("The fake SageMaker does not implement {op}")
        } else {
            format!("SageMaker has no operation {op}")
        };
        return Err(ApiError {
            status: 400,
            code: "UnknownOperationException".into(),
            message: why,
        });
    }
    if let Some(shape) = model.input_shape(op) {
        let errors = model.validate(shape, &input);
        if !errors.is_empty() {
            return Err(ApiError::validation(validation_message(&errors)));
        }
    }
    let Value::Object(input) = input else {
        return Err(ApiError::validation(
            "The request body must be a JSON object",
        ));
    };
    let output = control::handle(shared, op, input)?;
    if cfg!(debug_assertions)
        && let Some(shape) = model.output_shape(op)
    {
        let errors = model.validate(shape, &output);
        if !errors.is_empty() {
            tracing::error!(operation = op, ?errors, %output, "the fake's response does not fit the output shape");
            return Err(ApiError {
                status: 500,
                code: "InternalFailure".into(),
                message: format!(
                    "fake SageMaker bug: the {op} response does not fit {shape}: {}",
                    errors.join("; ")
                ),
            });
        }
    }
    Ok(output)
}

fn finish(
    shared: &Shared,
    op: &str,
    name: Option<String>,
    result: Result<Value, ApiError>,
) -> Response {
    let (status, resp) = match result {
        Ok(output) => {
            let mut resp = (StatusCode::OK, output.to_string()).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
            if let Ok(v) = HeaderValue::from_str(&request_id()) {
                resp.headers_mut().insert("x-amzn-requestid", v);
            }
            (200, resp)
        }
        Err(e) => {
            if e.status != 500 {
                tracing::debug!(operation = op, code = %e.code, message = %e.message, "refused");
            }
            (
                e.status,
                json_error(e.status, &e.code, &e.message, JSON_1_1),
            )
        }
    };
    tracing::info!(
        operation = op,
        name = name.as_deref().unwrap_or("-"),
        status,
        "sagemaker"
    );
    shared.record(Call {
        operation: op.to_string(),
        name,
        status,
    });
    resp
}

/// A runtime (restJson1) error: `{"message": ...}` with `x-amzn-ErrorType`.
fn runtime_error(status: u16, code: &str, message: &str) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"message": message}).to_string(),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert("x-amzn-errortype", v);
    }
    resp
}

async fn invoke_endpoint(
    shared: &Arc<Shared>,
    name: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let decision = shared
        .config
        .tripwire
        .on_call(&format!("InvokeEndpoint {name}"), false);
    let mut resp = match decision.refusal() {
        Some(crate::Trip::Throttle) => runtime_error(400, "ThrottlingException", "Rate exceeded"),
        Some(_) => runtime_error(
            500,
            "InternalFailure",
            "An internal failure occurred. Try your call again.",
        ),
        None => invoke_inner(shared, name, headers, body).await,
    };
    let status = resp.status().as_u16();
    let answered = resp
        .extensions_mut()
        .remove::<Answered>()
        .unwrap_or_default();
    let target_variant = headers
        .get(TARGET_VARIANT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    tracing::info!(
        operation = "InvokeEndpoint",
        name,
        status,
        target = target_variant.as_deref().unwrap_or("-"),
        variant = answered.variant.as_deref().unwrap_or("-"),
        "sagemaker-runtime"
    );
    let seq = shared.record(Call {
        operation: "InvokeEndpoint".into(),
        name: Some(name.to_string()),
        status,
    });
    shared
        .invocations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Invocation {
            seq,
            endpoint: name.to_string(),
            target_variant,
            variant: answered.variant,
            digest: answered.digest,
            status,
        });
    decision.finish(resp).await
}

async fn invoke_inner(
    shared: &Arc<Shared>,
    name: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = &shared.config;
    let fault = shared.take_fault("InvokeEndpoint", |k| {
        matches!(
            k,
            FaultKind::Throttling
                | FaultKind::InternalError
                | FaultKind::Delay(_)
                | FaultKind::ModelNotReady
        )
    });
    match fault {
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::Throttling) => {
            return runtime_error(400, "ThrottlingException", "Rate exceeded");
        }
        Some(FaultKind::InternalError) => {
            return runtime_error(
                500,
                "InternalFailure",
                "An internal failure occurred. Try your call again.",
            );
        }
        Some(_) => {
            return runtime_error(
                429,
                "ModelNotReadyException",
                &format!(
                    "Model for endpoint {name} is not ready. Wait and try your request again."
                ),
            );
        }
        None => {}
    }
    if body.len() > MAX_PAYLOAD_BYTES {
        // SageMaker's front end refuses these before any operation logic, with no
        // error type (botocore reports the code as "413").
        let mut resp = (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"message": format!("HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes.")})
                .to_string(),
        )
            .into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return resp;
    }
    let variant = headers.get(TARGET_VARIANT).and_then(|v| v.to_str().ok());
    let target = {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(rec) = state.endpoints.get_mut(&name.to_lowercase()) else {
            return runtime_error(
                400,
                "ValidationError",
                &format!("Endpoint {name} of account {} not found.", cfg.account),
            );
        };
        let serving = matches!(rec.status, "InService" | "Updating" | "RollingBack");
        let (rec_name, status) = (rec.name.clone(), rec.status);
        match rec.live.as_mut().filter(|_| serving) {
            None => {
                return runtime_error(
                    400,
                    "ValidationError",
                    &format!(
                        "Endpoint {} of account {} is not in service (status: {}).",
                        rec_name, cfg.account, status
                    ),
                );
            }
            Some(dep) => match dep.target(variant) {
                // Held until the answer is read, so that an update does not stop
                // the server under it (SageMaker drains the fleet it replaces).
                Some(v) => (v.port, v.info.name.clone(), shared.servers.hold(v.pid)),
                None if variant.is_none() => {
                    return runtime_error(
                        400,
                        "ValidationError",
                        &format!(
                            "Endpoint {rec_name} has no production variant with a weight above 0."
                        ),
                    );
                }
                None => {
                    return runtime_error(
                        400,
                        "ValidationError",
                        &format!(
                            "The variant {} does not exist for endpoint {rec_name}.",
                            variant.unwrap_or("-"),
                        ),
                    );
                }
            },
        }
    };
    let (port, variant_name, _hold) = target;
    let mut req = shared
        .http
        .post(format!("http://127.0.0.1:{port}/invocations"))
        .timeout(INVOKE_TIMEOUT)
        .body(body);
    for h in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = headers.get(&h) {
            req = req.header(h, v);
        }
    }
    if let Some(v) = headers.get(CUSTOM_ATTRIBUTES) {
        req = req.header(CUSTOM_ATTRIBUTES, v);
    }
    let answer = match req.send().await {
        Ok(a) => a,
        Err(e) if e.is_timeout() => {
            return model_error(
                shared,
                name,
                0,
                "Your invocation timed out while waiting for a response from container primary.",
                "",
            );
        }
        Err(e) => {
            return runtime_error(
                500,
                "InternalFailure",
                &format!("The fake could not reach the container of {name}: {e}"),
            );
        }
    };
    let status = answer.status().as_u16();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let custom = answer.headers().get(CUSTOM_ATTRIBUTES).cloned();
    let bytes = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return runtime_error(
                500,
                "InternalFailure",
                &format!("The fake could not read the container's answer: {e}"),
            );
        }
    };
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let side = if status >= 500 { "server" } else { "client" };
        return model_error(
            shared,
            name,
            status,
            &format!("Received {side} error ({status}) from primary with message \"{text}\"."),
            &text,
        );
    }
    let digest = custom
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| modelport_core::ServedBy::from_custom_attributes(v).digest);
    let drop_identity = shared
        .take_fault("InvokeEndpoint", |k| *k == FaultKind::DropIdentity)
        .is_some();
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&variant_name) {
        h.insert("x-amzn-invoked-production-variant", v);
    }
    if let Some(v) = custom.filter(|_| !drop_identity) {
        h.insert(CUSTOM_ATTRIBUTES, v);
    }
    resp.extensions_mut().insert(Answered {
        variant: Some(variant_name),
        digest,
    });
    resp
}

/// HTTP 424 ModelError, as SageMaker reports a container's non-2xx answer.
fn model_error(
    shared: &Shared,
    endpoint: &str,
    status: u16,
    message: &str,
    original: &str,
) -> Response {
    let cfg = &shared.config;
    let group = format!("/aws/sagemaker/Endpoints/{endpoint}");
    let body = json!({
        "Message": format!(
            "{message} See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group={group} in account {account} for more information.",
            region = cfg.region,
            account = cfg.account,
        ),
        "OriginalStatusCode": status,
        "OriginalMessage": original,
        "LogStreamArn": format!("arn:aws:logs:{}:{}:log-group:{group}", cfg.region, cfg.account),
    });
    let mut resp = (StatusCode::FAILED_DEPENDENCY, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("x-amzn-errortype", HeaderValue::from_static("ModelError"));
    resp
}

async fn proxy_s3(shared: &Shared, parts: axum::http::request::Parts, body: Bytes) -> Response {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let url = format!(
        "{}{path_and_query}",
        shared.config.s3_upstream.trim_end_matches('/')
    );
    let mut req = shared.http.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if !crate::background::hop_by_hop(name.as_str()) && name != header::CONTENT_LENGTH {
            req = req.header(name, value);
        }
    }
    let mutates = !matches!(parts.method, Method::GET | Method::HEAD);
    let decision = shared.config.tripwire.on_call(
        &format!(
            "{}:{} {}",
            signed_service(&parts.headers),
            parts.method,
            parts.uri.path()
        ),
        mutates,
    );
    let answer = match decision.refusal() {
        Some(trip) => Err(trip),
        None => Ok(req.body(body).send().await),
    };
    let resp = match answer {
        Err(trip) => s3_error(trip),
        Ok(answer) => match answer {
            Ok(answer) => {
                let status = answer.status();
                let mut headers = HeaderMap::new();
                for (name, value) in answer.headers() {
                    if !crate::background::hop_by_hop(name.as_str()) {
                        headers.append(name, value.clone());
                    }
                }
                match answer.bytes().await {
                    Ok(bytes) => {
                        let mut resp = Response::new(Body::from(bytes));
                        *resp.status_mut() = status;
                        *resp.headers_mut() = headers;
                        resp
                    }
                    Err(e) => (StatusCode::BAD_GATEWAY, format!("reading S3's answer: {e}"))
                        .into_response(),
                }
            }
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                format!(
                    "the S3 upstream {} did not answer: {e}",
                    shared.config.s3_upstream
                ),
            )
                .into_response(),
        },
    };
    let status = resp.status().as_u16();
    let operation = format!("{}:{}", signed_service(&parts.headers), parts.method);
    tracing::info!(operation = %operation, name = parts.uri.path(), status, "pass-through to moto");
    shared.record(Call {
        operation,
        name: Some(parts.uri.path().to_string()),
        status,
    });
    decision.finish(resp).await
}

/// S3's answer to a tripwire's refusal: 503 `SlowDown` (S3's throttling) or 500
/// `InternalError`, in S3's XML.
fn s3_error(trip: crate::Trip) -> Response {
    let (status, code, message) = match trip {
        crate::Trip::Throttle => (
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId></Error>",
        request_id()
    );
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

/// The service a request was signed for (`s3`, `sts`, ...): the part of the SigV4 or
/// SigV4a credential scope before `aws4_request`; `s3` when unsigned.
fn signed_service(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|scope| {
            let scope: Vec<&str> = scope.split(',').next()?.split('/').collect();
            let end = scope.iter().position(|p| *p == "aws4_request")?;
            scope.get(end.checked_sub(1)?).map(|s| s.to_string())
        })
        .unwrap_or_else(|| "s3".into())
}

fn fake_api(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Response {
    let ok = |v: Value| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response()
    };
    match (method, path) {
        (&Method::GET, "calls") => ok(json!(shared
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())),
        (&Method::GET, "invocations") => ok(json!(shared
            .invocations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())),
        (&Method::GET, "health") => ok(json!({"ok": true})),
        (&Method::POST, "faults") => {
            match crate::faults::parse::<FaultSpec, Fault>(body) {
                Ok(faults) => {
                    let n = faults.len();
                    shared
                        .faults
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(faults);
                    ok(json!({"added": n}))
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
            ok(json!({"cleared": true}))
        }
        _ => (
            StatusCode::NOT_FOUND,
            "the fake's API: GET /_fake/calls, GET /_fake/invocations, POST /_fake/faults, DELETE /_fake/faults, GET /_fake/health",
        )
            .into_response(),
    }
}
