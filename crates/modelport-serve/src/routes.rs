//! The HTTP surface: every route of every contract, and the one predict path they share.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use modelport_core::codec::{self, BinaryOutputs, WireForm};
use modelport_core::predictor::headers as mp_headers;
use modelport_core::{Batch, Signature, TensorSpec};
use modelport_runtime::EngineInfo;
use serde_json::{Value, json};

use crate::config::ServeConfig;
use crate::error::ApiError;
use crate::model::ModelSource;
use crate::pool::{Pool, PoolError};

/// The model once it is ready to answer.
pub(crate) struct Loaded {
    pub name: String,
    pub signature: Signature,
    pub engine: EngineInfo,
    pub digest: String,
    pub pool: Pool,
    pub _source: ModelSource,
}

/// What every handler sees.
pub struct AppState {
    max_body_bytes: usize,
    timeout: Duration,
    vertex_health_route: Option<String>,
    vertex_predict_route: Option<String>,
    /// The revision name this process reports (`--revision`), if any.
    revision: Option<String>,
    /// The image this process runs in (`MODELPORT_IMAGE`), if known.
    image: Option<String>,
    loaded: OnceLock<Loaded>,
    identity: OnceLock<Vec<(&'static str, HeaderValue)>>,
}

impl AppState {
    pub(crate) fn new(config: &ServeConfig) -> AppState {
        AppState {
            max_body_bytes: config.max_body_bytes,
            timeout: config.timeout,
            vertex_health_route: config.vertex_health_route.clone(),
            vertex_predict_route: config.vertex_predict_route.clone(),
            revision: config.revision.clone(),
            image: config.image.clone(),
            loaded: OnceLock::new(),
            identity: OnceLock::new(),
        }
    }

    pub(crate) fn set_ready(&self, loaded: Loaded) {
        let value =
            |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("unknown"));
        let served = modelport_core::ServedBy {
            engine: Some(loaded.engine.engine.name().to_string()),
            engine_version: Some(loaded.engine.version.clone()),
            digest: Some(loaded.digest.clone()),
            revision: self.revision.clone(),
            image: self.image.clone(),
        };
        let mut identity = vec![
            (mp_headers::ENGINE, value(loaded.engine.engine.name())),
            (mp_headers::ENGINE_VERSION, value(&loaded.engine.version)),
            (mp_headers::DIGEST, value(&loaded.digest)),
            (
                mp_headers::SAGEMAKER_CUSTOM_ATTRIBUTES,
                value(&served.to_custom_attributes()),
            ),
        ];
        if let Some(r) = &self.revision {
            identity.push((mp_headers::REVISION, value(r)));
        }
        if let Some(i) = &self.image {
            identity.push((mp_headers::IMAGE, value(i)));
        }
        let _ = self.identity.set(identity);
        let _ = self.loaded.set(loaded);
    }

    fn loaded(&self) -> Result<&Loaded, ApiError> {
        self.loaded.get().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the model is still loading",
            )
        })
    }
}

/// The router for one server; exposed so tests can drive it without a socket.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ping", get(health))
        .route("/invocations", post(invocations))
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(health))
        .route("/v2/models/{name}", get(oip_model_metadata))
        .route("/v2/models/{name}/ready", get(oip_model_ready))
        .route("/v2/models/{name}/infer", post(oip_infer))
        .route("/v1/models/{name}", get(tf_status).post(tf_predict))
        .fallback(fallback)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            add_identity,
        ))
        .with_state(state)
}

/// Every response says which engine, engine version and artifact answered, in our own
/// headers and in the one header SageMaker forwards to its callers.
async fn add_identity(State(state): State<Arc<AppState>>, mut response: Response) -> Response {
    if let Some(identity) = state.identity.get() {
        for (name, value) in identity {
            response.headers_mut().insert(*name, value.clone());
        }
    }
    response
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.loaded.get() {
        // Every worker's session failed and none could be loaded again: the platform
        // should replace this instance.
        Some(l) if !l.pool.serving() => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "failed", "reason": "no inference worker can serve"})),
        )
            .into_response(),
        Some(_) => (StatusCode::OK, axum::Json(json!({"status": "ready"}))).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "loading"})),
        )
            .into_response(),
    }
}

async fn live() -> Response {
    (StatusCode::OK, axum::Json(json!({"live": true}))).into_response()
}

async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": "modelport",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": [],
    }))
    .into_response()
}

/// What a predict route accepts.
#[derive(Clone, Copy, PartialEq)]
enum Accept {
    /// `{"instances"}`, a bare array or `{"inputs"}`; the answer mirrors the request.
    Any,
    /// Open Inference Protocol v2 only.
    Oip,
}

async fn invocations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(predict(&state, &headers, body, Accept::Any).await)
}

fn model_named<'a>(state: &'a AppState, name: &str) -> Result<&'a Loaded, ApiError> {
    let loaded = state.loaded()?;
    if loaded.name != name {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no model named {name:?}; this server serves {:?}",
                loaded.name
            ),
        ));
    }
    Ok(loaded)
}

async fn oip_model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    let loaded = match model_named(&state, &name) {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let specs = |specs: &[TensorSpec]| -> Vec<Value> {
        specs
            .iter()
            .map(|s| {
                let shape: Vec<i64> = s
                    .shape
                    .iter()
                    .map(|d| d.fixed().map(|n| n as i64).unwrap_or(-1))
                    .collect();
                json!({"name": s.name, "datatype": s.dtype.oip_name(), "shape": shape})
            })
            .collect()
    };
    axum::Json(json!({
        "name": loaded.name,
        "versions": ["1"],
        "platform": format!("{}_onnx", loaded.engine.engine.name()),
        "inputs": specs(&loaded.signature.inputs),
        "outputs": specs(&loaded.signature.outputs),
    }))
    .into_response()
}

async fn oip_model_ready(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match model_named(&state, &name) {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(json!({"name": name, "ready": true})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn oip_infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = model_named(&state, &name) {
        return e.into_response();
    }
    respond(predict(&state, &headers, body, Accept::Oip).await)
}

/// TF-Serving's `GET /v1/models/{name}`: the model's version status.
async fn tf_status(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match model_named(&state, &name) {
        Ok(_) => axum::Json(json!({"model_version_status": [{
            "version": "1", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}
        }]}))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// TF-Serving's `POST /v1/models/{name}:predict`; the `:predict` verb is part of the
/// last path segment, so it is split off here.
async fn tf_predict(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(name) = segment.strip_suffix(":predict") else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no route POST /v1/models/{segment}; TF-Serving's predict is /v1/models/NAME:predict"),
        )
        .into_response();
    };
    if let Err(e) = model_named(&state, name) {
        return e.into_response();
    }
    respond(predict(&state, &headers, body, Accept::Any).await)
}

/// Vertex's routes come from the environment at start-up and may be any path, so
/// they are matched here rather than registered (a registered route could clash
/// with a fixed one).
async fn fallback(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path();
    if method == Method::GET && state.vertex_health_route.as_deref() == Some(path) {
        return health(State(state)).await;
    }
    if method == Method::POST && state.vertex_predict_route.as_deref() == Some(path) {
        return respond(predict(&state, &headers, body, Accept::Any).await);
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {method} {path}; predict with POST /invocations or POST /v2/models/NAME/infer"
        ),
    )
    .into_response()
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The one predict path: limits, decoding, the signature check, the pool, encoding.
async fn predict(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    accept: Accept,
) -> Result<Response, ApiError> {
    let loaded = state.loaded()?;
    let bytes = read_body(state.max_body_bytes, headers, body).await?;
    let npy_in = content_type_is(headers, NPY);
    let json_len = match headers.get(codec::OIP_HEADER_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Inference-Header-Content-Length must be the byte length of the body's JSON part",
                    )
                })?,
        ),
    };
    let (inputs, form, binary_out) = if npy_in {
        if accept == Accept::Oip {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the Open Inference Protocol route takes JSON (with binary tensor data if you like); \
                 send application/x-npy to /invocations",
            ));
        }
        let inputs = npy_request(&bytes, &loaded.signature)?;
        (inputs, WireForm::Instances, BinaryOutputs::None)
    } else if let Some(json_len) = json_len {
        let (inputs, binary_out) =
            codec::decode_oip_binary_request(&bytes, json_len, Some(&loaded.signature.inputs))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        (inputs, WireForm::Oip, binary_out)
    } else if let Some(inputs) = (accept == Accept::Any)
        .then(|| codec::decode_instances_fast(&bytes, &loaded.signature.inputs))
        .flatten()
    {
        // The commonest body, rows of numbers, read without a JSON tree.
        (inputs, WireForm::Instances, BinaryOutputs::None)
    } else {
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            let hint = if content_type_is(headers, "text/csv") {
                " (CSV bodies are not accepted: send application/json or application/x-npy)"
            } else {
                ""
            };
            ApiError::bad_request(format!("the body is not valid JSON: {e}{hint}"))
        })?;
        let (inputs, form) = match accept {
            Accept::Any => codec::decode_request(&value, &loaded.signature.inputs),
            Accept::Oip => codec::decode_oip_request(&value, Some(&loaded.signature.inputs))
                .map(|b| (b, WireForm::Oip)),
        }
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let binary_out = if form == WireForm::Oip {
            BinaryOutputs::requested(&value)
        } else {
            BinaryOutputs::None
        };
        (inputs, form, binary_out)
    };
    let npy_out = form == WireForm::Instances && answers_npy(headers, npy_in, &loaded.signature)?;
    check_batch(&loaded.signature, &inputs)?;
    let outputs = match tokio::time::timeout(state.timeout, loaded.pool.run(inputs)).await {
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "inference took longer than {} s",
                    state.timeout.as_secs_f64()
                ),
            ));
        }
        Ok(Err(PoolError::Busy)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is at capacity: every worker is busy and the queue is full; retry later",
            ));
        }
        Ok(Err(PoolError::Closed)) if !loaded.pool.serving() => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no inference worker is left: their sessions failed and could not be loaded again",
            ));
        }
        Ok(Err(PoolError::Closed)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            ));
        }
        Ok(Err(PoolError::Inference(message))) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("inference failed: {message}"),
            ));
        }
        Ok(Ok(outputs)) => outputs,
    };
    if npy_out {
        let mut bytes = Vec::new();
        // `answers_npy` let only a model of one output through.
        let only = outputs.iter().next().map(|t| &t.tensor);
        only.ok_or_else(|| "the model returned no output".to_string())
            .and_then(|t| modelport_core::npy::write(t, &mut bytes).map_err(|e| e.to_string()))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot encode the output as .npy: {e}"),
                )
            })?;
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(NPY))],
            bytes,
        )
            .into_response());
    }
    if binary_out != BinaryOutputs::None {
        let (body, json_len) =
            codec::encode_oip_binary_response(&loaded.name, &outputs, &binary_out).map_err(
                |e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot encode the outputs: {e}"),
                    )
                },
            )?;
        return Ok((
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (
                    header::HeaderName::from_static(codec::OIP_HEADER_LENGTH),
                    HeaderValue::from(json_len),
                ),
            ],
            body,
        )
            .into_response());
    }
    let cannot = |e: String| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the outputs: {e}"),
        )
    };
    let bytes = match form {
        WireForm::Instances => {
            codec::encode_predictions_bytes(&outputs).map_err(|e| cannot(e.to_string()))?
        }
        WireForm::Oip => codec::encode_oip_response(&loaded.name, &outputs)
            .map_err(|e| cannot(e.to_string()))
            .and_then(|body| serde_json::to_vec(&body).map_err(|e| cannot(e.to_string())))?,
    };
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}

/// NumPy's array file, the binary body SageMaker's own serving containers take on
/// `/invocations`: no number is parsed, the bytes are the tensor's.
const NPY: &str = "application/x-npy";

/// Whether the request's `Content-Type` is `media` (parameters ignored).
fn content_type_is(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media))
}

/// Whether the answer is `.npy`: when `Accept` names it, or when the request was
/// `.npy` and `Accept` is absent or `*/*` and the model has one output (one array
/// is all a `.npy` holds; a model of several outputs answers JSON then). Asking for
/// `.npy` from a model of several outputs is refused before any inference.
fn answers_npy(headers: &HeaderMap, npy_in: bool, signature: &Signature) -> Result<bool, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let asked = accept.split(',').any(|m| {
        m.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(NPY))
    });
    let one = signature.outputs.len() == 1;
    if asked && !one {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "the model has {} and a .npy body holds one array; ask for Accept: application/json",
                counted(&signature.outputs, "outputs")
            ),
        ));
    }
    Ok(asked || (npy_in && one && accept.trim() == "*/*"))
}

/// `2 outputs (label, probabilities)`.
fn counted(specs: &[TensorSpec], what: &str) -> String {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    format!("{} {what} ({})", names.len(), names.join(", "))
}

/// A `.npy` body: the model's one input, as is (dtype and shape are checked with
/// the rest of the batch).
fn npy_request(bytes: &[u8], signature: &Signature) -> Result<Batch, ApiError> {
    let [input] = signature.inputs.as_slice() else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the model has {} and a .npy body holds one array; send application/json",
                counted(&signature.inputs, "inputs")
            ),
        ));
    };
    let tensor = modelport_core::npy::read(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not a valid .npy array: {e}")))?;
    Batch::new()
        .with(input.name.clone(), tensor)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// An empty batch and inputs that do not fit the signature are the caller's error.
fn check_batch(signature: &Signature, inputs: &Batch) -> Result<(), ApiError> {
    match inputs.batch_size() {
        Ok(0) => {
            return Err(ApiError::bad_request(
                "the batch is empty: send at least one instance",
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(ApiError::bad_request(e.to_string())),
    }
    signature
        .check_inputs(inputs)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// How much of an oversize body is read and discarded before its 413 is sent. A
/// client that is still sending when the server answers and closes gets a broken
/// pipe (or a reset) instead of the answer; reading the rest first lets it finish and
/// read the JSON error. Beyond this the connection is closed unread.
pub const OVERSIZE_DRAIN_MAX: u64 = 64 * 1024 * 1024;

/// Reads the body up to the limit; a declared or actual size beyond it is a 413,
/// answered once the rest of the body is read (up to [`OVERSIZE_DRAIN_MAX`]) unless
/// the client waits for `100 Continue`, which it then never gets.
async fn read_body(limit: usize, headers: &HeaderMap, mut body: Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let too_large = |size: Option<u64>| {
        let size = size.map(|s| format!("{s}-byte ")).unwrap_or_default();
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the {size}request body exceeds the limit of {limit} bytes; split the batch into smaller requests"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let waits_for_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if declared.is_some_and(|n| n > limit as u64) {
        if !waits_for_continue && declared.is_some_and(|n| n <= OVERSIZE_DRAIN_MAX) {
            drain(&mut body, OVERSIZE_DRAIN_MAX).await;
        }
        return Err(too_large(declared));
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            let read = (buf.len() + data.len()) as u64;
            drop(buf);
            drain(&mut body, OVERSIZE_DRAIN_MAX.saturating_sub(read)).await;
            return Err(too_large(None));
        }
        buf.extend_from_slice(&data);
    }
    Ok(Bytes::from(buf))
}

/// Reads and discards up to `max` bytes of what is left of `body`.
async fn drain(body: &mut Body, max: u64) {
    use http_body_util::BodyExt;
    let mut read = 0u64;
    while read <= max {
        match body.frame().await {
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            Some(Err(_)) | None => return,
        }
    }
    tracing::debug!("closing a connection whose oversize body goes on past {max} bytes");
}
