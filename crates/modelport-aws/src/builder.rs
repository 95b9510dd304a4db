//! Where the AWS clients come from: aws-config's default chain for credentials and
//! region (environment, profile, SSO, web identity, container, IMDS), with the
//! settings of `provider.aws` on top, and one endpoint override for emulators.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::ProvideCredentials;
use modelport_core::env;
use modelport_core::provider::ProviderError;
use modelport_core::spec::AwsSettings;
use serde::{Deserialize, Serialize};

/// What the clients are built from; recorded in state so that `status`, `compare`
/// and `destroy` reach the same account and region without the spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

impl ClientSettings {
    /// `provider.aws`, with `MODELPORT_AWS_ENDPOINT_URL` winning over the file's
    /// `endpoint_url` (environment > file).
    pub fn from_spec(aws: &AwsSettings) -> ClientSettings {
        ClientSettings {
            region: aws.region.clone(),
            profile: aws.profile.clone(),
            endpoint_url: endpoint_override().or_else(|| aws.endpoint_url.clone()),
        }
    }
}

/// `MODELPORT_AWS_ENDPOINT_URL`, when set and not empty.
pub fn endpoint_override() -> Option<String> {
    std::env::var(env::MODELPORT_AWS_ENDPOINT_URL)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The clients modelport uses, sharing one configuration.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    /// For the serving image a deploy builds and pushes when no `image_uri` is given.
    pub ecr: aws_sdk_ecr::Client,
    pub sagemaker: aws_sdk_sagemaker::Client,
    pub runtime: aws_sdk_sagemakerruntime::Client,
    /// Who the credentials belong to (`modelport doctor`).
    pub sts: aws_sdk_sts::Client,
    /// The execution role, read (`modelport doctor`); IAM is global.
    pub iam: aws_sdk_iam::Client,
    pub region: String,
    /// Which link of the default chain gave the credentials.
    pub credential_source: &'static str,
    pub endpoint_url: Option<String>,
}

/// Builds the clients and resolves credentials once, so that a missing or broken
/// credential setup fails here with a hint instead of deep inside the first call.
///
/// `credentials`, when given, replace the default chain (tests, and programs that
/// hold their own credentials).
pub async fn connect(
    settings: &ClientSettings,
    credentials: Option<&aws_credential_types::Credentials>,
) -> Result<AwsClients, ProviderError> {
    // Throttling is normal on SageMaker's control plane: more attempts than the
    // SDK's default 3, with its exponential backoff and jitter. An attempt that
    // gets no answer is abandoned after the request timeout and retried like a
    // dropped connection (the SDK sets none of its own: a silent peer would hang
    // the command).
    let attempt = env::request_timeout()?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(timeouts(attempt));
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(c.clone());
    }
    let conf = loader.load().await;
    let region = conf
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| ProviderError::InvalidInput {
            message: "no AWS region is configured".into(),
            hint: Some(
                "set `provider.aws.region` in modelport.yaml, or AWS_REGION, or a region in your AWS profile".into(),
            ),
        })?;
    let provider = conf
        .credentials_provider()
        .ok_or_else(|| no_credentials("no credentials provider is configured".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| no_credentials(modelport_verify::http::error_chain(&e)))?;
    tracing::debug!(
        region = %region,
        endpoint_url = settings.endpoint_url.as_deref().unwrap_or("(AWS)"),
        source = credential_source(&credentials),
        "AWS credentials resolved"
    );
    let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
        // Emulators on localhost cannot resolve virtual-hosted bucket names.
        .force_path_style(settings.endpoint_url.is_some())
        .build();
    Ok(AwsClients {
        s3: aws_sdk_s3::Client::from_conf(s3_conf),
        ecr: aws_sdk_ecr::Client::new(&conf),
        sagemaker: aws_sdk_sagemaker::Client::new(&conf),
        runtime: aws_sdk_sagemakerruntime::Client::new(&conf),
        sts: aws_sdk_sts::Client::new(&conf),
        iam: aws_sdk_iam::Client::new(&conf),
        region,
        credential_source: credential_source(&credentials),
        endpoint_url: settings.endpoint_url.clone(),
    })
}

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The timeouts of every client: connecting, and each attempt of a call.
pub fn timeouts(attempt: Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .build()
}

/// The attempt timeout a client was built with (the request timeout).
pub fn attempt_timeout(config: Option<&aws_config::timeout::TimeoutConfig>) -> Duration {
    config
        .and_then(|t| t.operation_attempt_timeout())
        .unwrap_or(env::DEFAULT_REQUEST_TIMEOUT)
}

fn no_credentials(detail: String) -> ProviderError {
    ProviderError::InvalidInput {
        message: format!("no AWS credentials were found: {detail}"),
        hint: Some(
            "run `aws configure` or `aws sso login`, set AWS_PROFILE (or `provider.aws.profile`), \
             or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .into(),
        ),
    }
}

/// Which link of the default chain produced the credentials.
fn credential_source(credentials: &aws_credential_types::Credentials) -> &'static str {
    let features = credentials
        .get_property::<Vec<AwsCredentialFeature>>()
        .cloned()
        .unwrap_or_default();
    for feature in features {
        let name = match feature {
            AwsCredentialFeature::CredentialsEnvVars => "environment variables",
            AwsCredentialFeature::CredentialsEnvVarsStsWebIdToken
            | AwsCredentialFeature::CredentialsStsAssumeRoleWebId
            | AwsCredentialFeature::CredentialsProfileStsWebIdToken => "web identity token",
            AwsCredentialFeature::CredentialsProfile
            | AwsCredentialFeature::CredentialsProfileSourceProfile
            | AwsCredentialFeature::CredentialsProfileNamedProvider => "profile",
            AwsCredentialFeature::CredentialsProfileSso | AwsCredentialFeature::CredentialsSso => {
                "SSO"
            }
            AwsCredentialFeature::CredentialsProfileProcess
            | AwsCredentialFeature::CredentialsProcess => "credential process",
            AwsCredentialFeature::CredentialsHttp => "container credentials endpoint",
            AwsCredentialFeature::CredentialsImds => "instance metadata (IMDS)",
            AwsCredentialFeature::CredentialsStsAssumeRole => "assumed role",
            AwsCredentialFeature::CredentialsCode => "code",
            _ => continue,
        };
        return name;
    }
    "the default chain"
}
