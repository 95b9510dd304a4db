//! A SageMaker endpoint as a [`Predictor`], called the way SageMaker's own clients
//! call it: InvokeEndpoint through the official runtime client, JSON bodies cut
//! to the payload limit, and the container's identity read from the one header
//! SageMaker forwards (`X-Amzn-SageMaker-Custom-Attributes`). A pending revision is
//! reached with `TargetVariant`, which routes to that variant whatever the weights;
//! SageMaker names the variant that answered in `InvokedProductionVariant`.

use std::time::Duration;

use aws_sdk_sagemakerruntime::error::ProvideErrorMetadata;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::primitives::Blob;
use modelport_core::{PredictError, ServedBy};
use modelport_verify::http::error_chain;
use modelport_verify::{Reply, Transport};

/// SageMaker's real-time payload limit (6 MB).
pub const REALTIME_MAX_BYTES: usize = 6 * 1024 * 1024;
/// SageMaker Serverless Inference's payload limit (4 MB).
pub const SERVERLESS_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Attempts per request when the endpoint is not ready or throttles.
const ATTEMPTS: u32 = 6;

/// InvokeEndpoint on one endpoint.
pub struct InvokeTransport {
    pub client: aws_sdk_sagemakerruntime::Client,
    pub endpoint: String,
    /// The production variant every request goes to (`X-Amzn-SageMaker-Target-Variant`);
    /// `None` lets the variant weights choose, as production clients do.
    pub target_variant: Option<String>,
    /// How errors name the target.
    pub label: String,
    /// How long one attempt may wait for the answer: the endpoint's serving
    /// timeout plus a margin, or the request timeout when that is longer.
    pub attempt_timeout: Duration,
}

impl InvokeTransport {
    /// The attempt timeout for an endpoint that answers within `serving_timeout_s`.
    pub fn attempt_timeout(
        client: &aws_sdk_sagemakerruntime::Client,
        serving_timeout_s: u32,
    ) -> Duration {
        let base = crate::builder::attempt_timeout(client.config().timeout_config());
        base.max(Duration::from_secs(u64::from(serving_timeout_s) + 10))
    }
}

#[async_trait::async_trait]
impl Transport for InvokeTransport {
    /// Retries ModelNotReady (429), throttling and 503 with exponential backoff; a
    /// ModelError (424) comes back with the container's own status and message.
    async fn post(&self, body: Vec<u8>) -> Result<Reply, PredictError> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .invoke_endpoint()
                .endpoint_name(&self.endpoint)
                .content_type("application/json")
                .accept("application/json")
                .set_target_variant(self.target_variant.clone())
                .body(Blob::new(body.clone()))
                .customize()
                .config_override(
                    aws_sdk_sagemakerruntime::config::Builder::default()
                        .timeout_config(crate::builder::timeouts(self.attempt_timeout)),
                )
                .send()
                .await;
            let err = match result {
                Ok(out) => {
                    let mut served_by = out
                        .custom_attributes()
                        .map(ServedBy::from_custom_attributes)
                        .unwrap_or_default();
                    // SageMaker's own word on which variant answered wins over the container's.
                    served_by.revision = out.invoked_production_variant().map(str::to_string);
                    return Ok(Reply {
                        status: 200,
                        body: out.body().map(|b| b.as_ref().to_vec()).unwrap_or_default(),
                        served_by,
                    });
                }
                Err(e) => e,
            };
            let service = err.as_service_error();
            let retryable = match service {
                Some(InvokeEndpointError::ModelNotReadyException(_))
                | Some(InvokeEndpointError::ServiceUnavailable(_)) => true,
                Some(e) => matches!(e.code(), Some("ThrottlingException" | "Throttling")),
                None => false,
            };
            if retryable && attempt < ATTEMPTS {
                tracing::debug!(attempt, "InvokeEndpoint not ready or throttled; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                continue;
            }
            return Err(match service {
                Some(InvokeEndpointError::ModelError(m)) => {
                    let mut message = m
                        .original_message()
                        .or(m.message())
                        .unwrap_or("the container failed")
                        .to_string();
                    if let Some(log) = m.log_stream_arn() {
                        message.push_str(&format!(" (container log: {log})"));
                    }
                    PredictError::Remote {
                        target: self.label.clone(),
                        status: m.original_status_code().map(|s| s as u16).unwrap_or(424),
                        message,
                    }
                }
                Some(InvokeEndpointError::ValidationError(v)) => {
                    let message = v.message().unwrap_or("validation error").to_string();
                    if message.contains("not found") {
                        PredictError::Unavailable {
                            target: self.label.clone(),
                            message,
                        }
                    } else {
                        PredictError::InvalidInput(message)
                    }
                }
                Some(e) => PredictError::Unavailable {
                    target: self.label.clone(),
                    message: format!(
                        "{}: {}",
                        e.code().unwrap_or("error"),
                        e.message().unwrap_or_default()
                    ),
                },
                None => PredictError::Unavailable {
                    target: self.label.clone(),
                    message: error_chain(&err),
                },
            });
        }
    }
}
