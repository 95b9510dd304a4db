//! Which credentials a registry gets: the cloud's own for Amazon ECR and Google
//! Artifact Registry, else the user's Docker configuration, else none.

use modelport_image::RegistryAuth;

pub async fn credentials(registry: &str) -> anyhow::Result<RegistryAuth> {
    let Some(path) = modelport_image::auth::docker_config_path() else {
        return Ok(RegistryAuth::Anonymous);
    };
    Ok(modelport_image::auth::docker_credentials(&path, registry)?)
}
