//! A running server as a [`Predictor`]: `modelport serve`, a SageMaker-style
//! container, a Vertex or TF-Serving `:predict` route, or any Open Inference
//! Protocol v2 server (KServe, Triton, MLServer).
//!
//! Inputs are cut into requests that fit the target's payload limit, sent with
//! bounded concurrency, and the answers put back together in input order.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use modelport_core::predictor::headers;
use modelport_core::state::Protocol;
use modelport_core::{
    Batch, DType, Dim, Expected, PredictError, Prediction, Predictor, ServedBy, Signature,
    TargetInfo, TargetKind, TensorSpec, codec,
};
use serde_json::Value;

/// Requests per target in flight at once, by default.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// The fewest rows a request is cut to for the sake of concurrency: fewer would spend
/// more on each request's round trip than the parallel work saves.
const MIN_ROWS_PER_REQUEST: usize = 256;

/// How to reach a server.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// How reports name it: a deployment name or the URL.
    pub label: String,
    pub kind: TargetKind,
    /// Where predictions are POSTed.
    pub predict_url: String,
    pub protocol: Protocol,
    /// The largest request body the target accepts.
    pub max_request_bytes: usize,
    pub timeout: Duration,
    pub concurrency: usize,
}

impl HttpTarget {
    /// Reads a URL the way `modelport compare` takes it:
    /// - `…/v2/models/NAME` or `…/v2/models/NAME/infer`: Open Inference Protocol v2;
    /// - `…/invocations`, `…:predict` or any other path: `{"instances": [...]}`;
    /// - a bare `http://host:port`: the SageMaker contract, `POST /invocations`.
    pub fn from_url(url: &str, max_request_bytes: usize) -> Result<HttpTarget, PredictError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| PredictError::InvalidInput(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PredictError::InvalidInput(format!(
                "{url:?}: only http and https URLs can be compared"
            )));
        }
        let path = parsed.path().trim_end_matches('/');
        let base = url.trim_end_matches('/');
        let (predict_url, protocol) = if path.is_empty() {
            (format!("{base}/invocations"), Protocol::Instances)
        } else if let Some(rest) = path.split("/v2/models/").nth(1) {
            let infer = if rest.ends_with("/infer") {
                base.to_string()
            } else {
                format!("{base}/infer")
            };
            (infer, Protocol::Oip)
        } else {
            (base.to_string(), Protocol::Instances)
        };
        Ok(HttpTarget {
            label: url.to_string(),
            kind: TargetKind::Url,
            predict_url,
            protocol,
            max_request_bytes,
            timeout: Duration::from_secs(60),
            concurrency: DEFAULT_CONCURRENCY,
        })
    }
}

/// One answer from an endpoint, before its body is decoded.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// What the answer's headers say produced it.
    pub served_by: ServedBy,
}

/// How request bodies reach an endpoint: plain HTTP here, a cloud SDK elsewhere
/// (SageMaker's InvokeEndpoint). Retrying what the platform calls transient is the
/// transport's job; turning replies into outputs is [`BatchPredictor`]'s.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Sends one JSON body and returns the platform's reply.
    async fn post(&self, body: Vec<u8>) -> Result<Reply, PredictError>;
}

/// Any JSON endpoint as a predictor: inputs are cut into bodies that fit the
/// payload limit, sent through a [`Transport`] with bounded concurrency, and the
/// answers put back together in input order, checking that one server answered all.
pub struct BatchPredictor<T> {
    transport: T,
    info: TargetInfo,
    protocol: Protocol,
    max_request_bytes: usize,
    concurrency: usize,
    signature: Option<Signature>,
    expected: Option<Expected>,
}

/// A server reached over plain HTTP.
pub type HttpPredictor = BatchPredictor<HttpTransport>;

impl<T: Transport> BatchPredictor<T> {
    /// `signature` types the outputs of `{"instances"}` endpoints, whose answers do
    /// not say their dtypes.
    pub fn new(
        transport: T,
        info: TargetInfo,
        protocol: Protocol,
        max_request_bytes: usize,
        concurrency: usize,
        signature: Option<Signature>,
    ) -> BatchPredictor<T> {
        BatchPredictor {
            transport,
            info,
            protocol,
            max_request_bytes,
            concurrency,
            signature,
            expected: None,
        }
    }

    /// Requires every answer to carry this identity: an answer without it, or with
    /// another revision's, fails the prediction with [`PredictError::Identity`].
    pub fn expecting(mut self, expected: Expected) -> BatchPredictor<T> {
        self.expected = Some(expected);
        self
    }

    /// A deployed revision's cloud endpoint, reached through `transport`: named after
    /// the deployment, `{"instances"}` bodies batched to the revision's limit.
    pub fn for_revision(
        transport: T,
        deployment: &str,
        endpoint: &modelport_core::state::EndpointRef,
        signature: Option<Signature>,
    ) -> BatchPredictor<T> {
        let info = TargetInfo {
            label: deployment.to_string(),
            kind: modelport_core::TargetKind::Deployment,
            location: endpoint.predict_url.clone(),
            served_by: Default::default(),
        };
        BatchPredictor::new(
            transport,
            info,
            Protocol::Instances,
            endpoint.max_request_bytes as usize,
            DEFAULT_CONCURRENCY,
            signature,
        )
    }

    /// Cuts `inputs` into request bodies that fit the payload limit, each with its
    /// row count. The rows per request are estimated from a sample; every body is
    /// encoded once, and a body over the limit is cut in half and encoded again.
    fn encode_requests(&self, inputs: &Batch) -> Result<Vec<(Vec<u8>, usize)>, PredictError> {
        let rows = inputs.batch_size().map_err(invalid)?;
        if rows == 0 {
            return Ok(Vec::new());
        }
        // A model exported with a fixed batch size takes requests of exactly that many rows.
        if let Some(size) = self.signature.as_ref().and_then(Signature::fixed_batch)
            && size != rows
        {
            return fixed_batches(inputs, self.signature.as_ref().expect("checked"))?
                .iter()
                .map(|b| Ok((self.encode(b)?, size)))
                .collect();
        }
        let limit = self.max_request_bytes;
        let probe = rows.min(16);
        let probe_len = self
            .encode(&inputs.slice_rows(0, probe).map_err(invalid)?)?
            .len();
        let per_row = (probe_len / probe).max(1);
        // As many rows as fit the limit, but spread over enough requests to keep every
        // one of `concurrency` slots busy (an endpoint has several workers, or
        // instances), each of at least MIN_ROWS_PER_REQUEST rows.
        let spread = rows
            .div_ceil(self.concurrency.max(1))
            .max(MIN_ROWS_PER_REQUEST);
        let mut step = ((limit as f64 * 0.9) as usize / per_row)
            .min(spread)
            .clamp(1, rows);
        let mut bodies = Vec::new();
        let mut start = 0;
        while start < rows {
            let end = (start + step).min(rows);
            let body = self.encode(&inputs.slice_rows(start, end).map_err(invalid)?)?;
            if body.len() > limit {
                if end - start == 1 {
                    return Err(PredictError::TooLarge {
                        target: self.info.label.clone(),
                        needed: body.len(),
                        limit,
                    });
                }
                step = ((end - start) / 2).max(1);
                continue;
            }
            bodies.push((body, end - start));
            start = end;
        }
        Ok(bodies)
    }

    fn encode(&self, inputs: &Batch) -> Result<Vec<u8>, PredictError> {
        match self.protocol {
            Protocol::Instances => codec::encode_instances_bytes(inputs).map_err(invalid),
            Protocol::Oip => {
                let body = codec::encode_oip_request(inputs).map_err(invalid)?;
                serde_json::to_vec(&body).map_err(|e| PredictError::InvalidInput(e.to_string()))
            }
        }
    }

    /// Sends one request and decodes its answer, which must hold `rows` rows.
    async fn send(&self, body: Vec<u8>, rows: usize) -> Result<(Batch, ServedBy), PredictError> {
        let label = &self.info.label;
        if modelport_core::failpoint::hit("verify.request")
            == Some(modelport_core::failpoint::Action::Error)
        {
            return Err(PredictError::Unavailable {
                target: label.clone(),
                message: "connection reset by peer (fail point verify.request)".into(),
            });
        }
        let reply = self.transport.post(body).await?;
        if let Some(expected) = &self.expected
            && reply.status == 200
            && let Err(message) = expected.check(&reply.served_by)
        {
            return Err(PredictError::Identity {
                target: label.clone(),
                message,
            });
        }
        if reply.status != 200 {
            let message = serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&reply.body)
                        .chars()
                        .take(500)
                        .collect()
                });
            return Err(match reply.status {
                400 => PredictError::InvalidInput(message),
                status => PredictError::Remote {
                    target: label.clone(),
                    status,
                    message,
                },
            });
        }
        let decode_err = |message: String| PredictError::Decode {
            target: label.clone(),
            message,
        };
        let typed = self.signature.as_ref().map(|s| s.outputs.as_slice());
        // Rows of numbers for one output, the commonest answer, skip the JSON tree.
        let fast = match (self.protocol, typed) {
            (Protocol::Instances, Some(outputs)) => {
                codec::decode_predictions_fast(&reply.body, outputs)
            }
            _ => None,
        };
        let outputs = match fast {
            Some(outputs) => outputs,
            None => {
                let value: Value = serde_json::from_slice(&reply.body)
                    .map_err(|e| decode_err(format!("not JSON: {e}")))?;
                match self.protocol {
                    Protocol::Instances => codec::decode_predictions(&value, typed),
                    Protocol::Oip => codec::decode_oip_response(&value),
                }
                .map_err(|e| decode_err(e.to_string()))?
            }
        };
        if let Some(bad) = outputs
            .iter()
            .find(|t| t.tensor.shape().first() != Some(&rows))
        {
            return Err(decode_err(format!(
                "output `{}` has {} rows for {rows} inputs",
                bad.name,
                bad.tensor.shape().first().copied().unwrap_or(0)
            )));
        }
        Ok((outputs, reply.served_by))
    }
}

impl HttpPredictor {
    /// Connects to `target`. `signature` types the outputs of `{"instances"}`
    /// targets; an OIP target's own metadata is used when no signature is given.
    pub async fn connect(
        target: HttpTarget,
        signature: Option<Signature>,
    ) -> Result<HttpPredictor, PredictError> {
        let client = reqwest::Client::builder()
            .timeout(target.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| PredictError::Unavailable {
                target: target.label.clone(),
                message: e.to_string(),
            })?;
        let signature = match (signature, target.protocol) {
            (Some(s), _) => Some(s),
            (None, Protocol::Oip) => Some(fetch_oip_signature(&client, &target).await?),
            (None, Protocol::Instances) => None,
        };
        let info = TargetInfo {
            label: target.label.clone(),
            kind: target.kind,
            location: target.predict_url.clone(),
            served_by: ServedBy::default(),
        };
        let (protocol, limit, concurrency) = (
            target.protocol,
            target.max_request_bytes,
            target.concurrency,
        );
        Ok(BatchPredictor::new(
            HttpTransport { client, target },
            info,
            protocol,
            limit,
            concurrency,
            signature,
        ))
    }
}

/// `inputs` cut into batches of the model's fixed batch size, when it has one (a
/// model exported for one image at a time, say); otherwise `inputs` whole.
pub fn fixed_batches(inputs: &Batch, signature: &Signature) -> Result<Vec<Batch>, PredictError> {
    let rows = inputs.batch_size().map_err(invalid)?;
    let Some(size) = signature.fixed_batch().filter(|s| *s != rows && rows > 0) else {
        return Ok(vec![inputs.clone()]);
    };
    if rows % size != 0 {
        return Err(PredictError::InvalidInput(format!(
            "the model takes batches of exactly {size} rows, and {rows} rows do not divide into them; \
             compare a multiple of {size} samples"
        )));
    }
    (0..rows / size)
        .map(|i| inputs.slice_rows(i * size, (i + 1) * size).map_err(invalid))
        .collect()
}

/// Plain HTTP POSTs to a predict URL.
pub struct HttpTransport {
    client: reqwest::Client,
    target: HttpTarget,
}

/// Attempts per request: the first and three retries, 100 ms, 400 ms and 1.6 s apart.
const HTTP_ATTEMPTS: u32 = 4;

#[async_trait::async_trait]
impl Transport for HttpTransport {
    /// Retries what a busy or starting server answers (429, 503), refused
    /// connections and connections dropped before the whole answer arrived (a
    /// kept-alive connection the server had just closed, a proxy restarting), with
    /// exponential backoff. A prediction changes nothing on the server, so sending
    /// it again is safe. A timeout is not retried: the server is there but slow,
    /// and each retry would wait as long again.
    async fn post(&self, body: Vec<u8>) -> Result<Reply, PredictError> {
        let label = &self.target.label;
        let mut delay = Duration::from_millis(100);
        for attempt in 1.. {
            let retry = attempt < HTTP_ATTEMPTS;
            match self.attempt(&body).await {
                Ok(reply) if retry && matches!(reply.status, 429 | 503) => {}
                Ok(reply) => return Ok(reply),
                Err(e) if e.is_timeout() => {
                    return Err(PredictError::Timeout {
                        target: label.clone(),
                        seconds: self.target.timeout.as_secs(),
                    });
                }
                // Refused, or dropped before the whole answer arrived.
                Err(e) if retry && (e.is_connect() || e.is_request() || e.is_body()) => {}
                Err(e) => {
                    let mut message = error_chain(&e);
                    if attempt > 1 {
                        message.push_str(&format!(" (attempt {attempt} of {HTTP_ATTEMPTS})"));
                    }
                    return Err(PredictError::Unavailable {
                        target: label.clone(),
                        message,
                    });
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 4;
        }
        unreachable!("the attempts end with a return")
    }
}

impl HttpTransport {
    /// One request and its whole answer.
    async fn attempt(&self, body: &[u8]) -> Result<Reply, reqwest::Error> {
        let response = self
            .client
            .post(&self.target.predict_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.to_vec())
            .send()
            .await?;
        let status = response.status().as_u16();
        let served_by = served_by(response.headers());
        let body = response.bytes().await?.to_vec();
        Ok(Reply {
            status,
            body,
            served_by,
        })
    }
}

#[async_trait::async_trait]
impl<T: Transport> Predictor for BatchPredictor<T> {
    fn target(&self) -> &TargetInfo {
        &self.info
    }

    fn signature(&self) -> Option<&Signature> {
        self.signature.as_ref()
    }

    async fn predict(&self, inputs: &Batch) -> Result<Prediction, PredictError> {
        self.predict_counted(inputs, &|_| {}).await
    }

    async fn predict_counted(
        &self,
        inputs: &Batch,
        answered: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Prediction, PredictError> {
        let bodies = self.encode_requests(inputs)?;
        let total = inputs.batch_size().map_err(invalid)?;
        // Where each request's rows start in the inputs.
        let starts: Vec<usize> = bodies
            .iter()
            .scan(0, |at, (_, rows)| {
                let start = *at;
                *at += rows;
                Some(start)
            })
            .collect();
        // Once a request has failed for good (the transports retry what is worth
        // retrying), the rest are not sent: a target that stopped answering would
        // only make each of them wait out its retries.
        let stopped = std::sync::atomic::AtomicBool::new(false);
        let mut rows_answered = 0u64;
        let answers: Vec<Result<(Batch, ServedBy), PredictError>> = stream::iter(bodies)
            .map(|(body, rows)| {
                let stopped = &stopped;
                async move {
                    if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                        return Err(PredictError::Unavailable {
                            target: self.info.label.clone(),
                            message: "not sent: an earlier request failed".into(),
                        });
                    }
                    let answer = self.send(body, rows).await;
                    if answer.is_err() {
                        stopped.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    answer
                }
            })
            .buffered(self.concurrency.max(1))
            .inspect(|answer| {
                if let Ok((batch, _)) = answer {
                    rows_answered += batch.batch_size().unwrap_or(0) as u64;
                    answered(rows_answered);
                }
            })
            .collect()
            .await;
        if answers.iter().any(Result::is_err) {
            return Err(self.incomplete(answers, &starts, total));
        }
        self.join(answers.into_iter().flatten())
    }
}

impl<T: Transport> BatchPredictor<T> {
    /// The error of a prediction some of whose requests failed: the first failure
    /// as it is when it says something about every answer (wrong inputs, a foreign
    /// identity, an unreadable answer) or nothing was answered; otherwise
    /// [`PredictError::Incomplete`] with the rows that were answered.
    fn incomplete(
        &self,
        answers: Vec<Result<(Batch, ServedBy), PredictError>>,
        starts: &[usize],
        total: usize,
    ) -> PredictError {
        let mut rows = Vec::new();
        let mut parts = Vec::new();
        let mut failure = None;
        for (i, (answer, start)) in answers.into_iter().zip(starts).enumerate() {
            match answer {
                Ok((batch, by)) => {
                    let n = batch.batch_size().unwrap_or(0);
                    rows.push(*start..*start + n);
                    parts.push((batch, by));
                }
                Err(e) if failure.is_none() => failure = Some((i, e)),
                Err(_) => {}
            }
        }
        let (first, failure) = failure.expect("called with a failed request");
        let gave_up = matches!(
            failure,
            PredictError::Unavailable { .. }
                | PredictError::Timeout { .. }
                | PredictError::Remote { status: 500.., .. }
        );
        if !gave_up || parts.is_empty() {
            return failure;
        }
        let answered: usize = rows.iter().map(|r| r.len()).sum();
        match self.join(parts.into_iter()) {
            Ok(prediction) => PredictError::Incomplete {
                target: self.info.label.clone(),
                total,
                answered,
                reason: format!("request {} of {}: {failure}", first + 1, starts.len()),
                partial: Box::new(modelport_core::Partial {
                    rows: merge(rows),
                    prediction,
                }),
            },
            Err(e) => e,
        }
    }

    /// Puts answers back together in order, checking that one server gave them all.
    fn join(
        &self,
        answers: impl Iterator<Item = (Batch, ServedBy)>,
    ) -> Result<Prediction, PredictError> {
        let mut parts = Vec::new();
        let mut served = ServedBy::default();
        for (batch, by) in answers {
            if !served.is_empty() && !by.is_empty() && by != served {
                return Err(PredictError::Decode {
                    target: self.info.label.clone(),
                    message: format!(
                        "two different servers answered ({} and {}): the endpoint changed during the comparison",
                        describe(&served),
                        describe(&by)
                    ),
                });
            }
            if served.is_empty() {
                served = by;
            }
            parts.push(batch);
        }
        let outputs = Batch::concat_rows(&parts).map_err(|e| PredictError::Decode {
            target: self.info.label.clone(),
            message: e.to_string(),
        })?;
        Ok(Prediction {
            outputs,
            served_by: served,
        })
    }
}

/// Sorted ranges with the adjacent ones joined.
fn merge(ranges: Vec<std::ops::Range<usize>>) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

fn describe(s: &ServedBy) -> String {
    format!(
        "{} {} {}",
        s.engine.as_deref().unwrap_or("?"),
        s.engine_version.as_deref().unwrap_or("?"),
        s.digest.as_deref().unwrap_or("?")
    )
}

fn invalid(e: modelport_core::Error) -> PredictError {
    PredictError::InvalidInput(e.to_string())
}

fn served_by(h: &reqwest::header::HeaderMap) -> ServedBy {
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    ServedBy {
        engine: get(headers::ENGINE),
        engine_version: get(headers::ENGINE_VERSION),
        digest: get(headers::DIGEST),
        revision: get(headers::REVISION),
        image: get(headers::IMAGE),
    }
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// Reads `GET /v2/models/NAME` into a signature.
async fn fetch_oip_signature(
    client: &reqwest::Client,
    target: &HttpTarget,
) -> Result<Signature, PredictError> {
    let url = target.predict_url.trim_end_matches("/infer");
    let unavailable = |message: String| PredictError::Unavailable {
        target: target.label.clone(),
        message,
    };
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| unavailable(error_chain(&e)))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unavailable(format!("model metadata at {url}: {e}")))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| PredictError::Decode {
        target: target.label.clone(),
        message: format!("model metadata at {url} is not JSON: {e}"),
    })?;
    if status != 200 {
        return Err(PredictError::Remote {
            target: target.label.clone(),
            status,
            message: value
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no model metadata")
                .to_string(),
        });
    }
    let specs = |key: &str| -> Result<Vec<TensorSpec>, PredictError> {
        let bad = |m: String| PredictError::Decode {
            target: target.label.clone(),
            message: format!("model metadata at {url}: {m}"),
        };
        value
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("no `{key}` list")))?
            .iter()
            .map(|t| {
                let name = t
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("a tensor without `name`".into()))?;
                let datatype = t.get("datatype").and_then(Value::as_str).unwrap_or("");
                let dtype = DType::from_oip_name(datatype)
                    .ok_or_else(|| bad(format!("`{name}` has datatype {datatype:?}")))?;
                let shape = t
                    .get("shape")
                    .and_then(Value::as_array)
                    .map(|dims| {
                        dims.iter()
                            .map(|d| match d.as_i64() {
                                Some(n) if n >= 0 => Dim::Fixed(n as usize),
                                _ => Dim::Dynamic(None),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(TensorSpec::new(name, dtype, shape))
            })
            .collect()
    };
    Ok(Signature {
        inputs: specs("inputs")?,
        outputs: specs("outputs")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server on loopback that reads each request whole, then drops the first
    /// `drops` connections without an answer and answers the rest with `{}`.
    /// Returns its URL and how many connections it accepted.
    fn dropping_server(drops: usize) -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/invocations", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let n = count.fetch_add(1, Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                while let Ok(read @ 1..) = stream.read(&mut buf) {
                    request.extend_from_slice(&buf[..read]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                if n >= drops {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                          content-length: 2\r\nconnection: close\r\n\r\n{}",
                    );
                }
            }
        });
        (url, accepted)
    }

    fn transport(url: &str) -> HttpTransport {
        HttpTransport {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            target: HttpTarget::from_url(url, 1 << 20).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_dropped_connection_is_sent_again() {
        let (url, accepted) = dropping_server(2);
        let reply = transport(&url)
            .post(br#"{"instances": [[1.0]]}"#.to_vec())
            .await
            .unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_server_that_keeps_dropping_is_unavailable_after_four_attempts() {
        let (url, accepted) = dropping_server(usize::MAX);
        let error = transport(&url)
            .post(br#"{"instances": [[1.0]]}"#.to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, PredictError::Unavailable { message, .. } if message.contains("attempt 4 of 4")),
            "{error:?}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    /// Rows spread over the concurrency, none below the minimum, all under the limit.
    #[test]
    fn large_inputs_are_spread_over_the_requests_in_flight() {
        let rows_per_request = |rows: usize, concurrency: usize, limit: usize| {
            let url = "http://127.0.0.1:9/invocations";
            let predictor = BatchPredictor::new(
                transport(url),
                TargetInfo {
                    label: "t".into(),
                    kind: modelport_core::TargetKind::Url,
                    location: url.into(),
                    served_by: Default::default(),
                },
                Protocol::Instances,
                limit,
                concurrency,
                None,
            );
            let mut inputs = Batch::new();
            inputs
                .insert(
                    "x",
                    modelport_core::Tensor::new(vec![rows, 4], vec![0.5f32; rows * 4]).unwrap(),
                )
                .unwrap();
            let bodies = predictor.encode_requests(&inputs).unwrap();
            assert!(bodies.iter().all(|(body, _)| body.len() <= limit));
            assert_eq!(bodies.iter().map(|(_, n)| n).sum::<usize>(), rows);
            bodies.iter().map(|(_, n)| *n).collect::<Vec<_>>()
        };
        assert_eq!(rows_per_request(10_000, 4, 6 << 20), vec![2500; 4]);
        assert_eq!(rows_per_request(600, 4, 6 << 20), vec![256, 256, 88]);
        assert_eq!(rows_per_request(100, 4, 6 << 20), vec![100]);
        assert_eq!(rows_per_request(10_000, 1, 6 << 20), vec![10_000]);
        // The payload limit still cuts further.
        assert!(rows_per_request(10_000, 4, 20_000).len() > 4);
    }

    #[test]
    fn urls_map_to_protocols() {
        let check = |url: &str, predict: &str, protocol: Protocol| {
            let t = HttpTarget::from_url(url, 1000).unwrap();
            assert_eq!(
                (t.predict_url.as_str(), t.protocol),
                (predict, protocol),
                "{url}"
            );
        };
        check("http://h:1", "http://h:1/invocations", Protocol::Instances);
        check("http://h:1/", "http://h:1/invocations", Protocol::Instances);
        check(
            "http://h:1/invocations",
            "http://h:1/invocations",
            Protocol::Instances,
        );
        check(
            "http://h:1/v1/models/m:predict",
            "http://h:1/v1/models/m:predict",
            Protocol::Instances,
        );
        check(
            "http://h:1/v2/models/iris",
            "http://h:1/v2/models/iris/infer",
            Protocol::Oip,
        );
        check(
            "http://h:1/v2/models/iris/infer",
            "http://h:1/v2/models/iris/infer",
            Protocol::Oip,
        );
        assert!(HttpTarget::from_url("ftp://h/x", 1).is_err());
        assert!(HttpTarget::from_url("not a url", 1).is_err());
    }
}
