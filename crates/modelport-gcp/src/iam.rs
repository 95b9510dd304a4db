//! The least-privilege roles for `modelport iam-policy --provider gcp`: what the
//! user running modelport needs, and what the serving container's service account
//! needs to read its model.

use modelport_core::spec::{DeploymentSpec, GcpSettings};
use serde_json::{Value, json};

pub fn policies(spec: &DeploymentSpec, gcp: &GcpSettings) -> Value {
    let project = gcp.project.as_deref().unwrap_or("PROJECT");
    let prefix = gcp.prefix.trim_matches('/');
    let objects = if prefix.is_empty() {
        format!(
            "projects/_/buckets/{}/objects/{}/",
            gcp.bucket,
            spec.name.as_str()
        )
    } else {
        format!(
            "projects/_/buckets/{}/objects/{prefix}/{}/",
            gcp.bucket,
            spec.name.as_str()
        )
    };
    let serving = gcp.service_account.clone().unwrap_or_else(|| {
        "service-PROJECT_NUMBER@gcp-sa-aiplatform-cc.iam.gserviceaccount.com (Vertex AI's custom code service agent, used when provider.gcp.service_account is not set)".into()
    });
    let mut deployer_permissions = vec![
        "aiplatform.models.upload",
        "aiplatform.models.get",
        "aiplatform.models.list",
        "aiplatform.models.delete",
        "aiplatform.endpoints.create",
        "aiplatform.endpoints.get",
        "aiplatform.endpoints.list",
        "aiplatform.endpoints.update",
        "aiplatform.endpoints.delete",
        "aiplatform.endpoints.deploy",
        "aiplatform.endpoints.undeploy",
        "aiplatform.endpoints.predict",
        "aiplatform.operations.list",
        "storage.buckets.get",
        "storage.objects.create",
        "storage.objects.get",
        "storage.objects.list",
        "storage.objects.delete",
    ];
    if gcp.service_account.is_some() {
        deployer_permissions.push("iam.serviceAccounts.actAs");
        // `modelport doctor` reads the account (part of roles/iam.serviceAccountUser).
        deployer_permissions.push("iam.serviceAccounts.get");
    }
    let mut deployer_bindings = vec![
        json!({
            "role": "roles/aiplatform.user",
            "resource": format!("projects/{project}"),
            "why": "upload models, create endpoints, deploy, undeploy, predict, delete"
        }),
        json!({
            "role": "roles/storage.objectAdmin",
            "resource": format!("projects/_/buckets/{}", gcp.bucket),
            "condition": format!("resource.name.startsWith(\"{objects}\")"),
            "why": "upload the revision's files, skip unchanged ones, delete them on destroy --purge"
        }),
        json!({
            "role": "roles/storage.legacyBucketReader",
            "resource": format!("projects/_/buckets/{}", gcp.bucket),
            "why": "read the bucket's location before uploading"
        }),
    ];
    if let Some(sa) = &gcp.service_account {
        deployer_bindings.push(json!({
            "role": "roles/iam.serviceAccountUser",
            "resource": format!("projects/{project}/serviceAccounts/{sa}"),
            "why": "deploy a model that runs as this service account"
        }));
    }
    let mut serving_bindings = vec![json!({
        "role": "roles/storage.objectViewer",
        "resource": format!("projects/_/buckets/{}", gcp.bucket),
        "condition": format!("resource.name.startsWith(\"{objects}\")"),
        "why": "modelport serve downloads the model from AIP_STORAGE_URI"
    })];
    match spec.gcp_image() {
        Some(image) => {
            if let Some(repo) = artifact_registry_repo(image) {
                // `modelport doctor` asks the registry whether the tag is there.
                deployer_permissions.push("artifactregistry.repositories.downloadArtifacts");
                deployer_bindings.push(json!({
                    "role": "roles/artifactregistry.reader",
                    "resource": repo,
                    "why": "modelport doctor checks that image_uri is in the repository"
                }));
                serving_bindings.push(json!({
                    "role": "roles/artifactregistry.reader",
                    "resource": repo,
                    "why": "pull the serving image"
                }));
            }
        }
        None => {
            // deploy builds the image and pushes it to the project's `modelport` repository.
            let repo = format!(
                "projects/{project}/locations/{}/repositories/{}",
                gcp.region,
                crate::client::IMAGE_REPOSITORY
            );
            deployer_permissions.extend([
                "artifactregistry.repositories.uploadArtifacts",
                "artifactregistry.repositories.downloadArtifacts",
                "artifactregistry.tags.create",
                "artifactregistry.tags.update",
            ]);
            deployer_bindings.push(json!({
                "role": "roles/artifactregistry.writer",
                "resource": repo,
                "why": "push the serving image deploy builds (no image_uri); create the repository once: \
                        gcloud artifacts repositories create modelport --repository-format=docker --location=REGION"
            }));
            serving_bindings.push(json!({
                "role": "roles/artifactregistry.reader",
                "resource": repo,
                "why": "pull the serving image"
            }));
        }
    }
    if let Some(key) = &gcp.kms_key_name {
        serving_bindings.push(json!({
            "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
            "resource": key,
            "member": "the Vertex AI and Cloud Storage service agents of the project",
            "why": "CMEK for the model, the endpoint and the objects"
        }));
    }
    json!({
        "deployer": {
            "description": "the identity that runs `modelport deploy`, `compare` and `destroy`",
            "bindings": deployer_bindings,
            "permissions": deployer_permissions,
        },
        "serving": {
            "description": "the service account the serving container runs as",
            "member": serving,
            "bindings": serving_bindings,
        }
    })
}

/// `projects/P/locations/L/repositories/R` for an Artifact Registry image
/// (`L-docker.pkg.dev/P/R/image:tag`).
fn artifact_registry_repo(image: &str) -> Option<String> {
    let (host, rest) = image.split_once('/')?;
    let location = host.strip_suffix("-docker.pkg.dev")?;
    let mut parts = rest.split('/');
    let project = parts.next()?;
    let repo = parts.next()?;
    Some(format!(
        "projects/{project}/locations/{location}/repositories/{repo}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_registry_images_name_their_repository() {
        assert_eq!(
            artifact_registry_repo("us-central1-docker.pkg.dev/p/modelport/modelport:0.1.0")
                .as_deref(),
            Some("projects/p/locations/us-central1/repositories/modelport")
        );
        assert_eq!(artifact_registry_repo("gcr.io/p/img"), None);
    }
}
