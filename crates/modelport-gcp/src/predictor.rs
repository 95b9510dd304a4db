//! A Vertex AI endpoint as a [`Predictor`](modelport_core::Predictor), called the
//! way Vertex's own clients call it: `:predict` with `{"instances": [...]}` through
//! the official prediction client, bodies cut to the endpoint's payload limit,
//! 429 and 503 retried with backoff. Which deployed model answered comes back in
//! the response (`deployedModelId`) and is turned into the digest it serves.

use std::collections::HashMap;
use std::time::Duration;

use google_cloud_aiplatform_v1::client::PredictionService;
use google_cloud_gax::options::RequestOptionsBuilder;
use modelport_core::{PredictError, ServedBy};
use modelport_verify::{Reply, Transport};
use serde_json::{Value, json};

use crate::error;

/// The request limit of shared public endpoints (1.5 MB).
pub const SHARED_MAX_BYTES: usize = 1_500_000;
/// The request limit of dedicated endpoints (10 MB).
pub const DEDICATED_MAX_BYTES: usize = 10_000_000;

/// Attempts per request when Vertex answers 429 or 503.
const ATTEMPTS: u32 = 6;

/// `:predict` on one endpoint.
pub struct PredictTransport {
    pub client: PredictionService,
    /// `projects/P/locations/R/endpoints/E`.
    pub endpoint: String,
    /// How errors name the target.
    pub label: String,
    /// The model digest (`sha256:...`) each of the deployment's deployed models
    /// serves, by deployed model id.
    pub digests: HashMap<String, String>,
    /// How long one attempt may wait for the answer: the endpoint's serving
    /// timeout plus a margin, or the request timeout when that is longer.
    pub attempt_timeout: Duration,
}

impl PredictTransport {
    /// The attempt timeout for an endpoint that answers within `serving_timeout_s`.
    pub fn attempt_timeout(serving_timeout_s: u32) -> Duration {
        modelport_core::env::request_timeout()
            .unwrap_or(modelport_core::env::DEFAULT_REQUEST_TIMEOUT)
            .max(Duration::from_secs(u64::from(serving_timeout_s) + 10))
    }
}

#[async_trait::async_trait]
impl Transport for PredictTransport {
    async fn post(&self, body: Vec<u8>) -> Result<Reply, PredictError> {
        let mut request: serde_json::Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| PredictError::InvalidInput(format!("the request is not JSON: {e}")))?;
        let instances = match request.remove("instances") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(PredictError::InvalidInput(
                    "a Vertex AI request needs an \"instances\" array".into(),
                ));
            }
        };
        let parameters = request.remove("parameters");
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            let mut call = self
                .client
                .predict()
                .set_endpoint(&self.endpoint)
                .set_instances(instances.clone())
                .with_attempt_timeout(self.attempt_timeout);
            if let Some(p) = &parameters {
                call = call.set_parameters(p.clone());
            }
            match call.send().await {
                Ok(r) => {
                    // Vertex says which deployed model answered; the digest is the one
                    // that deployed model serves (unknown ones carry none).
                    let digest = self.digests.get(&r.deployed_model_id).cloned();
                    return Ok(Reply {
                        status: 200,
                        body: json!({"predictions": r.predictions})
                            .to_string()
                            .into_bytes(),
                        served_by: ServedBy {
                            digest,
                            revision: Some(r.deployed_model_id.clone()).filter(|id| !id.is_empty()),
                            ..Default::default()
                        },
                    });
                }
                Err(e) if attempt < ATTEMPTS && error::is_transient(&e) => {
                    tracing::debug!(
                        "{}: {} {}; retrying in {delay:?}",
                        self.label,
                        error::code_name(&e),
                        error::message(&e)
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(8));
                    attempt += 1;
                }
                Err(e) => return Err(self.error(&e)),
            }
        }
    }
}

impl PredictTransport {
    fn error(&self, e: &google_cloud_gax::error::Error) -> PredictError {
        let code = error::code_name(e);
        let message = error::message(e);
        if code == "INVALID_ARGUMENT" {
            return PredictError::InvalidInput(message);
        }
        if e.is_connect() || code == "UNAVAILABLE" || code == "RESOURCE_EXHAUSTED" {
            return PredictError::Unavailable {
                target: self.label.clone(),
                message: format!("{code}: {message}"),
            };
        }
        PredictError::Remote {
            target: self.label.clone(),
            status: e.http_status_code().unwrap_or(500),
            message: format!("{code}: {message}"),
        }
    }
}
