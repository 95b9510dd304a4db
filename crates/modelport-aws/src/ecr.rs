//! Amazon ECR, for the serving image a deploy builds and pushes itself when
//! `provider.aws.image_uri` is absent: the registry and a push token
//! (`GetAuthorizationToken`), and the repository, created when missing with
//! scan-on-push and the deployment's tags.

use std::collections::BTreeMap;

use aws_sdk_ecr::types::{ImageScanningConfiguration, Tag};
use base64::Engine as _;
use modelport_core::provider::{ProviderError, ProviderResult};

use crate::builder::AwsClients;
use crate::error::AwsFailure;

/// The repository modelport pushes its serving image to.
pub const REPOSITORY: &str = "modelport";

/// A registry host and the credentials to push to it.
#[derive(Debug, Clone)]
pub struct EcrLogin {
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` (the token's `proxyEndpoint`, without its scheme).
    pub registry: String,
    pub username: String,
    pub password: String,
}

/// Whether `registry` is an Amazon ECR private registry host.
pub fn is_ecr_registry(registry: &str) -> bool {
    let parts: Vec<&str> = registry.split('.').collect();
    parts.len() >= 6
        && parts[0].len() == 12
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1] == "dkr"
        && parts[2].starts_with("ecr")
        && registry.contains(".amazonaws.com")
}

/// The region in an ECR host (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`).
pub fn ecr_region(registry: &str) -> Option<&str> {
    is_ecr_registry(registry)
        .then(|| registry.split('.').nth(3))
        .flatten()
}

/// The registry of the clients' account and region, and a token to push to it.
pub async fn login(clients: &AwsClients) -> ProviderResult<EcrLogin> {
    let out = clients
        .ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("GetAuthorizationToken", &e))?;
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| invalid("GetAuthorizationToken returned no authorization data"))?;
    let token = data
        .authorization_token()
        .ok_or_else(|| invalid("GetAuthorizationToken returned no token"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid("the ECR token is not base64 of USER:PASSWORD"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| invalid("the ECR token is not USER:PASSWORD"))?;
    let endpoint = data
        .proxy_endpoint()
        .ok_or_else(|| invalid("GetAuthorizationToken returned no proxy endpoint"))?;
    let registry = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    Ok(EcrLogin {
        registry,
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// Makes sure the repository exists: `true` when it was created now.
pub async fn ensure_repository(
    clients: &AwsClients,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> ProviderResult<bool> {
    let found = clients
        .ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await;
    match found {
        Ok(_) => return Ok(false),
        Err(e) => {
            let f = AwsFailure::from_sdk("DescribeRepositories", &e);
            if f.code != "RepositoryNotFoundException" {
                return Err(f.into());
            }
        }
    }
    let mut create = clients
        .ecr
        .create_repository()
        .repository_name(name)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        );
    for (k, v) in tags {
        create = create.tags(
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| invalid(&format!("tag {k}: {e}")))?,
        );
    }
    match create.send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let f = AwsFailure::from_sdk("CreateRepository", &e);
            // Another deploy created it in between.
            if f.code == "RepositoryAlreadyExistsException" {
                Ok(false)
            } else {
                Err(f.into())
            }
        }
    }
}

fn invalid(message: &str) -> ProviderError {
    ProviderError::InvalidInput {
        message: format!("Amazon ECR: {message}"),
        hint: Some("check the region and endpoint of `provider.aws`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts_are_told_from_others() {
        let host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        assert!(is_ecr_registry(host));
        assert_eq!(ecr_region(host), Some("eu-west-1"));
        assert!(is_ecr_registry(
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"
        ));
        assert!(!is_ecr_registry("public.ecr.aws"));
        assert!(!is_ecr_registry("us-central1-docker.pkg.dev"));
        assert!(!is_ecr_registry("127.0.0.1:5000"));
        assert_eq!(ecr_region("127.0.0.1:5000"), None);
    }
}
