//! The three Amazon ECR operations a deploy without `image_uri` calls, answered
//! for a registry on 127.0.0.1 ([`super::FakeConfig::registry`]):
//! `GetAuthorizationToken` (its `proxyEndpoint` is that registry),
//! `DescribeRepositories` and `CreateRepository` (names checked as ECR does), and
//! `DescribeImages` (what `modelport doctor` asks of an explicit image), answered
//! from that registry's own manifests.

use serde_json::{Value, json};

use super::Shared;
use super::control::ApiError;

fn err(code: &str, message: String) -> ApiError {
    ApiError {
        status: 400,
        code: code.into(),
        message,
    }
}

/// ECR's repository name rule: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, 2 to 256 characters.
fn valid_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.split(['.', '_', '-']).all(|w| {
                    !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        })
}

pub(crate) fn run(shared: &Shared, op: &str, input: &Value) -> Result<Value, ApiError> {
    let config = &shared.config;
    let arn = |name: &str| {
        format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            config.region, config.account
        )
    };
    match op {
        "GetAuthorizationToken" => {
            let registry = config.registry.as_ref().ok_or_else(|| {
                err(
                    "ServerException",
                    "the fake has no registry: set FakeConfig::registry".into(),
                )
            })?;
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode("AWS:fake-ecr-password");
            let expires = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() + 12 * 3600)
                .unwrap_or(0);
            Ok(json!({"authorizationData": [{
                "authorizationToken": token,
                "expiresAt": expires,
                "proxyEndpoint": registry,
            }]}))
        }
        "DescribeRepositories" => {
            let repos = shared
                .repositories
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let names: Vec<String> = input["repositoryNames"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_else(|| repos.keys().cloned().collect());
            let mut out = Vec::new();
            for n in names {
                match repos.get(&n) {
                    Some(r) => out.push(r.clone()),
                    None => {
                        return Err(err(
                            "RepositoryNotFoundException",
                            format!(
                                "The repository with name '{n}' does not exist in the registry with id '{}'",
                                config.account
                            ),
                        ));
                    }
                }
            }
            Ok(json!({"repositories": out}))
        }
        "CreateRepository" => {
            let name = input["repositoryName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !valid_name(&name) {
                return Err(err(
                    "InvalidParameterException",
                    format!(
                        "Invalid parameter at 'repositoryName' failed to satisfy constraint: '{name}'"
                    ),
                ));
            }
            let mut repos = shared
                .repositories
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if repos.contains_key(&name) {
                return Err(err(
                    "RepositoryAlreadyExistsException",
                    format!(
                        "The repository with name '{name}' already exists in the registry with id '{}'",
                        config.account
                    ),
                ));
            }
            let host = config
                .registry
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .to_string();
            let repo = json!({
                "repositoryArn": arn(&name),
                "registryId": config.account,
                "repositoryName": name,
                "repositoryUri": format!("{host}/{name}"),
                "imageTagMutability": input["imageTagMutability"].as_str().unwrap_or("MUTABLE"),
                "imageScanningConfiguration": {
                    "scanOnPush": input["imageScanningConfiguration"]["scanOnPush"].as_bool().unwrap_or(false)
                },
                "tags": input["tags"].clone(),
            });
            repos.insert(name, repo.clone());
            let mut answer = repo;
            if let Some(o) = answer.as_object_mut() {
                o.remove("tags");
            }
            Ok(json!({"repository": answer}))
        }
        other => Err(err(
            "UnknownOperationException",
            format!("the fake answers no ECR operation {other}"),
        )),
    }
}

/// `DescribeImages` for `imageIds` of one repository: the repository must have
/// been created here, and each image must be in the registry (a `HEAD` of its
/// manifest, as a pull would ask). Unknown images fail the call, as ECR does
/// (`ImageNotFoundException`) when every id asked for is missing.
pub(crate) async fn describe_images(shared: &Shared, input: &Value) -> Result<Value, ApiError> {
    let config = &shared.config;
    let name = input["repositoryName"].as_str().unwrap_or_default();
    if name.is_empty() {
        return Err(err(
            "InvalidParameterException",
            "1 validation error detected: Value null at 'repositoryName' failed to satisfy constraint: Member must not be null".into(),
        ));
    }
    let registry_id = input["registryId"].as_str().unwrap_or(&config.account);
    let not_found = || {
        err(
            "RepositoryNotFoundException",
            format!(
                "The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
            ),
        )
    };
    if registry_id != config.account {
        return Err(not_found());
    }
    let repository = shared
        .repositories
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .cloned()
        .ok_or_else(not_found)?;
    let registry = config.registry.as_deref().ok_or_else(|| {
        err(
            "ServerException",
            "the fake has no registry: set FakeConfig::registry".into(),
        )
    })?;
    let ids = input["imageIds"].as_array().cloned().unwrap_or_default();
    let mut details = Vec::new();
    let mut missing = Vec::new();
    for id in &ids {
        let (tag, digest) = (id["imageTag"].as_str(), id["imageDigest"].as_str());
        let Some(reference) = digest.or(tag) else {
            return Err(err(
                "InvalidParameterException",
                "An image identifier must have an imageTag or an imageDigest".into(),
            ));
        };
        let url = format!(
            "{}/v2/{name}/manifests/{reference}",
            registry.trim_end_matches('/')
        );
        let answer = shared
            .http
            .head(&url)
            .header(
                "accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json",
            )
            .send()
            .await
            .map_err(|e| err("ServerException", format!("the fake's registry: {e}")))?;
        if !answer.status().is_success() {
            missing.push(match digest {
                Some(d) => format!("{{imageDigest:'{d}', imageTag:'null'}}"),
                None => format!("{{imageDigest:'null', imageTag:'{reference}'}}"),
            });
            continue;
        }
        let header = |h: &str| {
            answer
                .headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let mut detail = json!({
            "registryId": config.account,
            "repositoryName": repository["repositoryName"],
            "imageDigest": header("docker-content-digest").unwrap_or_default(),
            "imageManifestMediaType": header("content-type").unwrap_or_default(),
        });
        if let Some(tag) = tag {
            detail["imageTags"] = json!([tag]);
        }
        details.push(detail);
    }
    if details.is_empty() && !missing.is_empty() {
        return Err(err(
            "ImageNotFoundException",
            format!(
                "The image with imageId {} does not exist within the repository with name '{name}' in the registry with id '{registry_id}'",
                missing[0]
            ),
        ));
    }
    Ok(json!({"imageDetails": details}))
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn repository_names_follow_ecr() {
        assert!(valid_name("modelport"));
        assert!(valid_name("team/model-port_1.x"));
        assert!(!valid_name("Modelport"));
        assert!(!valid_name("a"));
        assert!(!valid_name("model//port"));
        assert!(!valid_name("-modelport"));
    }
}
