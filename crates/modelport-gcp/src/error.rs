//! Google API errors as modelport errors: the status code and message in one line,
//! a hint per kind of failure, and one retry rule for what Google calls transient.

use std::future::Future;
use std::time::Duration;

use google_cloud_gax::error::Error;
use google_cloud_gax::error::rpc::Code;
use modelport_core::provider::ProviderError;

/// Attempts per call when Google answers 429 (a rate limit) or 503.
const ATTEMPTS: u32 = 6;

/// True when the credentials could not produce a token, also when the failure
/// reaches us wrapped (a retry loop that gave up on it).
pub fn is_authentication(e: &Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<Error>()
            .is_some_and(Error::is_authentication)
            || s.downcast_ref::<google_cloud_gax::error::CredentialsError>()
                .is_some()
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The last two distinct messages of the error's source chain: where the
/// failure started, without the layers that repeat it.
fn root_cause(e: &Error) -> String {
    let mut chain: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if chain.last().is_none_or(|l| !l.contains(&text)) {
            chain.push(text);
        }
        source = s.source();
    }
    let n = chain.len();
    chain[n.saturating_sub(2)..].join(": ")
}

/// The status code's name (`NOT_FOUND`), or what kind of failure it was.
pub fn code_name(e: &Error) -> String {
    match e.status() {
        Some(s) => s.code.name().to_string(),
        None if is_authentication(e) => "UNAUTHENTICATED".into(),
        None if e.is_connect() => "CONNECT".into(),
        None if e.is_timeout() => "DEADLINE_EXCEEDED".into(),
        None => match e.http_status_code() {
            Some(c) => format!("HTTP {c}"),
            None => "ERROR".into(),
        },
    }
}

/// The message Google sent, or the error's own text.
pub fn message(e: &Error) -> String {
    match e.status() {
        Some(s) if !s.message.is_empty() => s.message.clone(),
        _ => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

pub fn is_not_found(e: &Error) -> bool {
    e.status().is_some_and(|s| s.code == Code::NotFound) || e.http_status_code() == Some(404)
}

pub fn is_already_exists(e: &Error) -> bool {
    e.status().is_some_and(|s| s.code == Code::AlreadyExists) || e.http_status_code() == Some(409)
}

/// A quota on resources (serving CPUs, GPUs): retrying does not help.
pub fn is_quota(e: &Error) -> bool {
    e.status().is_some_and(|s| {
        s.code == Code::ResourceExhausted && s.message.contains("exceed quota limits")
    })
}

/// What is worth trying again, by Google's retry guidance: 503 (and the other
/// 5xx a front end answers without a status), a 429 that is a rate limit rather
/// than a quota on resources, and a call whose answer never came (a connection
/// that failed or dropped, an attempt that timed out). A retried change meets
/// what its first attempt did; the callers reconcile that (ids modelport chooses,
/// [`crate::vertex::settle`]).
pub fn is_transient(e: &Error) -> bool {
    match e.status() {
        Some(s) => {
            s.code == Code::Unavailable || (s.code == Code::ResourceExhausted && !is_quota(e))
        }
        None => {
            matches!(e.http_status_code(), Some(429 | 500 | 502 | 503 | 504))
                || (e.http_status_code().is_none()
                    && (e.is_io()
                        || e.is_timeout()
                        || e.is_connect()
                        || e.is_transient_and_before_rpc()))
        }
    }
}

/// Runs `call` until it succeeds, fails for good, or has been tried [`ATTEMPTS`]
/// times, waiting 0.5 s, 1 s, 2 s ... (at most 8 s) between attempts.
pub async fn retry<T, F, Fut>(what: &str, mut call: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tracing::debug!(
                    "{what}: {} {}; retrying in {delay:?}",
                    code_name(&e),
                    message(&e)
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A failed Google API call as a provider error: `models.upload: NOT_FOUND: ...`
/// with a hint.
pub fn failure(what: &str, e: &Error) -> ProviderError {
    if e.status().is_none() && is_authentication(e) {
        return ProviderError::Other {
            message: format!(
                "{what} failed: no usable Google Cloud credentials: {}",
                root_cause(e)
            ),
            hint: hint("UNAUTHENTICATED", ""),
        };
    }
    let code = code_name(e);
    let message = message(e);
    ProviderError::Other {
        hint: hint(&code, &message),
        message: format!("{what} failed: {code}: {message}"),
    }
}

fn hint(code: &str, message: &str) -> Option<String> {
    let h = match code {
        "PERMISSION_DENIED"
            if message.contains("has not been used")
                || message.contains("SERVICE_DISABLED")
                || message.contains("is disabled") =>
        {
            "enable the API: `gcloud services enable aiplatform.googleapis.com storage.googleapis.com --project PROJECT`"
        }
        "PERMISSION_DENIED" => {
            "the credentials lack a permission: `modelport iam-policy --provider gcp -f modelport.yaml` lists the roles modelport and the serving account need"
        }
        "UNAUTHENTICATED" => {
            "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
        }
        "NOT_FOUND" if message.contains("project") || message.contains("Project") => {
            "check `provider.gcp.project` and `provider.gcp.region` in modelport.yaml"
        }
        "NOT_FOUND" if message.contains("bucket") || message.contains("Bucket") => {
            "create the bucket in the endpoint's region first: `gcloud storage buckets create gs://BUCKET --location REGION`"
        }
        "RESOURCE_EXHAUSTED" if message.contains("exceed quota limits") => {
            "request a higher quota for the named metric in the Cloud console (IAM & Admin → Quotas), or choose a smaller `compute.machine_type` or fewer replicas"
        }
        "RESOURCE_EXHAUSTED" => {
            "Google is rate-limiting the project: wait a minute and run the command again"
        }
        "CONNECT" => {
            "cannot reach Google Cloud: check the network, or the endpoint overrides (MODELPORT_GCP_VERTEX_ENDPOINT, MODELPORT_GCP_STORAGE_ENDPOINT)"
        }
        "FAILED_PRECONDITION"
            if message.contains("never became ready") || message.contains("health") =>
        {
            "the serving container did not pass its health check: check the image's logs in Cloud Logging (resource aiplatform.googleapis.com/Endpoint) and that it serves AIP_HEALTH_ROUTE on AIP_HTTP_PORT"
        }
        _ => return None,
    };
    Some(h.to_string())
}

/// How the operation pollers treat a failed poll: what [`is_transient`] calls
/// transient (429 rate limits too, which the crate's default policy gives up on)
/// and I/O errors go on; [`crate::vertex::run_operation`] bounds how many.
#[derive(Debug, Clone, Copy)]
pub struct TransientPolling;

impl google_cloud_gax::polling_error_policy::PollingErrorPolicy for TransientPolling {
    fn on_error(
        &self,
        _state: &google_cloud_gax::polling_state::PollingState,
        error: Error,
    ) -> google_cloud_gax::retry_result::RetryResult {
        use google_cloud_gax::retry_result::RetryResult;
        if is_transient(&error) || error.is_io() || error.is_transient_and_before_rpc() {
            RetryResult::Continue(error)
        } else {
            RetryResult::Permanent(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use google_cloud_gax::error::rpc::Status;

    use super::*;

    fn status(code: Code, message: &str) -> Error {
        Error::service(Status::default().set_code(code).set_message(message))
    }

    #[test]
    fn rate_limits_are_retried_and_resource_quotas_are_not() {
        let rate = status(
            Code::ResourceExhausted,
            "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model",
        );
        let quota = status(
            Code::ResourceExhausted,
            "The following quota metrics exceed quota limits: aiplatform.googleapis.com/custom_model_serving_cpus",
        );
        assert!(is_transient(&rate) && !is_quota(&rate));
        assert!(is_quota(&quota) && !is_transient(&quota));
        assert!(is_transient(&status(Code::Unavailable, "try again")));
        assert!(!is_transient(&status(Code::InvalidArgument, "bad")));
    }

    #[test]
    fn failures_name_the_call_and_code_with_a_hint() {
        let e = failure(
            "models.upload",
            &status(
                Code::PermissionDenied,
                "Vertex AI API has not been used in project 123 before or it is disabled.",
            ),
        );
        assert!(
            e.to_string()
                .starts_with("models.upload failed: PERMISSION_DENIED: "),
            "{e}"
        );
        assert!(
            e.hint()
                .unwrap()
                .contains("gcloud services enable aiplatform.googleapis.com")
        );
        let e = failure("x", &status(Code::PermissionDenied, "denied"));
        assert!(e.hint().unwrap().contains("iam-policy"));
        let e = failure("x", &status(Code::NotFound, "Project 'p' not found"));
        assert!(e.hint().unwrap().contains("provider.gcp.project"));
        assert!(is_not_found(&status(Code::NotFound, "no")));
    }
}
