//! The three Amazon ECR operations a deploy without `image_uri` calls, answered
//! for a registry on 127.0.0.1 ([`super::FakeConfig::registry`]):
//! `GetAuthorizationToken` (its `proxyEndpoint` is that registry),
//! `DescribeRepositories` and `CreateRepository` (names checked as ECR does).

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
