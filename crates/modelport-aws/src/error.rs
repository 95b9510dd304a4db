//! AWS errors turned into what the caller can act on. The SDK's own `Display`
//! says only "service error"; the code and message are in its metadata.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use modelport_core::provider::ProviderError;

/// What went wrong in one AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// The operation, like `CreateEndpoint`.
    pub operation: &'static str,
    /// The service's error code (`ValidationException`), or a transport failure.
    pub code: String,
    pub message: String,
    /// The HTTP status, when the service answered.
    pub status: Option<u16>,
}

impl AwsFailure {
    pub fn from_sdk<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> AwsFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (code, message) = match err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                (
                    e.code().unwrap_or("Unknown").to_string(),
                    e.message().map(str::to_string).unwrap_or_default(),
                )
            }
            SdkError::DispatchFailure(_) => (
                "ConnectionFailed".to_string(),
                modelport_verify::http::error_chain(err),
            ),
            SdkError::TimeoutError(_) => (
                "Timeout".to_string(),
                modelport_verify::http::error_chain(err),
            ),
            _ => (
                "Unknown".to_string(),
                modelport_verify::http::error_chain(err),
            ),
        };
        let status = err.raw_response().map(|r| r.status().as_u16());
        AwsFailure {
            operation,
            code,
            message,
            status,
        }
    }

    /// SageMaker says "not found" with a ValidationException whose message starts
    /// "Could not find"; S3 with NoSuchKey/NotFound/404.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code.as_str(),
            "NoSuchKey" | "NotFound" | "NoSuchUpload" | "ResourceNotFound"
        ) || self.status == Some(404)
            || (self.code == "ValidationException" && self.message.contains("Could not find"))
    }

    /// SageMaker refuses to create a name that exists with a ValidationException.
    pub fn is_already_exists(&self) -> bool {
        self.code == "ValidationException" && self.message.contains("already existing")
    }

    /// "Cannot update in-progress endpoint" and the like: the endpoint is busy
    /// with a change (perhaps the very one a lost answer left under way).
    pub fn is_in_progress(&self) -> bool {
        self.code == "ValidationException" && self.message.contains("in-progress")
    }
}

impl From<AwsFailure> for ProviderError {
    fn from(f: AwsFailure) -> ProviderError {
        let hint = hint_for(&f);
        let message = if f.message.is_empty() {
            format!("AWS {}: {}", f.operation, f.code)
        } else {
            format!("AWS {}: {}: {}", f.operation, f.code, f.message)
        };
        if f.is_not_found() {
            return ProviderError::NotFound { what: message };
        }
        ProviderError::Other { message, hint }
    }
}

/// One place that knows what each AWS error code asks of the user.
fn hint_for(f: &AwsFailure) -> Option<String> {
    let iam = "`modelport iam-policy --provider aws -f modelport.yaml` prints the permissions modelport and the execution role need";
    let hint = match f.code.as_str() {
        "ResourceLimitExceeded" => {
            "the message names the quota: request an increase in the Service Quotas console (service \
             SageMaker), choose another instance type (`modelport catalog --provider aws`), or destroy \
             endpoints you no longer need"
                .to_string()
        }
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => iam.to_string(),
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "the credentials expired: refresh them (`aws sso login`, or new session credentials)"
                .to_string()
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch" => {
            "the credentials are not valid for this account: check AWS_PROFILE / `provider.aws.profile` \
             and the access keys"
                .to_string()
        }
        "ThrottlingException" | "Throttling" | "SlowDown" => {
            "AWS is throttling this account: wait a minute and re-run; the deploy continues where it stopped"
                .to_string()
        }
        "NoSuchBucket" => "create the bucket (`aws s3 mb s3://BUCKET --region REGION`) or fix `provider.aws.bucket`".to_string(),
        "ConnectionFailed" | "Timeout" => {
            "check the network, the region, and `provider.aws.endpoint_url` / MODELPORT_AWS_ENDPOINT_URL when an emulator is meant"
                .to_string()
        }
        "ValidationException" if f.message.contains("role") || f.message.contains("Role") => {
            format!(
                "check `provider.aws.role_arn`: the role must exist and trust sagemaker.amazonaws.com; {iam}"
            )
        }
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: &str, message: &str) -> AwsFailure {
        AwsFailure {
            operation: "CreateEndpoint",
            code: code.into(),
            message: message.into(),
            status: Some(400),
        }
    }

    #[test]
    fn not_found_and_exists_are_told_apart() {
        assert!(failure("ValidationException", "Could not find endpoint \"x\".").is_not_found());
        assert!(!failure("ValidationException", "Could not find endpoint").is_already_exists());
        assert!(
            failure(
                "ValidationException",
                "Cannot create already existing model \"m\"."
            )
            .is_already_exists()
        );
        assert!(!failure("ValidationException", "1 validation error detected").is_not_found());
    }

    #[test]
    fn quota_errors_keep_the_message_and_get_a_hint() {
        let e: ProviderError = failure(
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances",
        )
        .into();
        assert!(
            e.to_string().contains("ml.g5.xlarge for endpoint usage"),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("Service Quotas"));
        let denied: ProviderError = failure("AccessDeniedException", "no").into();
        assert!(denied.hint().unwrap().contains("iam-policy"));
    }
}
