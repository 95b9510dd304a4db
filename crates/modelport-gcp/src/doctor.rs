//! `modelport doctor --provider gcp`: what a deploy would need, asked of the project
//! with read-only calls (an access token, the bucket's metadata, a listing of the
//! region's endpoints, the service account). Nothing is created.

use modelport_core::provider::Check;
use modelport_core::spec::DeploymentSpec;
use modelport_image::RegistryAuth;

use crate::client::{self, ClientSettings};
use crate::{GcpProvider, error, names, settings, storage, vertex};

pub async fn run(provider: &GcpProvider, spec: &DeploymentSpec) -> Vec<Check> {
    let gcp = match settings(spec) {
        Ok(gcp) => gcp,
        Err(e) => return vec![Check::failed("provider.gcp", &e)],
    };
    let client_settings = match ClientSettings::from_spec(gcp) {
        Ok(s) => s,
        Err(e) => return vec![Check::failed("project", &e)],
    };
    let mut checks = vec![Check::ok(
        "project",
        format!(
            "{} from {}, region {}",
            client_settings.project,
            if gcp.project.is_some() {
                "provider.gcp.project"
            } else {
                "GOOGLE_CLOUD_PROJECT or CLOUDSDK_CORE_PROJECT"
            },
            client_settings.region
        ),
    )];

    match (
        &client_settings.vertex_endpoint,
        &client_settings.storage_endpoint,
    ) {
        (Some(vertex), Some(storage)) => checks.push(Check::ok(
            "credentials",
            format!("none sent: Vertex AI calls go to {vertex}, Cloud Storage calls to {storage}"),
        )),
        _ => match client::access_token().await {
            Ok(_) => checks.push(Check::ok(
                "credentials",
                format!(
                    "Application Default Credentials from {}",
                    client::adc_source()
                ),
            )),
            // Every other check calls Google with them.
            Err(e) => {
                checks.push(Check::failed("credentials", &e));
                return checks;
            }
        },
    }

    let clients = match provider.clients(&client_settings).await {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::failed("clients", &e));
            return checks;
        }
    };

    let bucket = match storage::ObjectsApi::new(
        client_settings.storage_endpoint.as_deref(),
        clients.storage_credentials.clone(),
    ) {
        Ok(api) => {
            match storage::check_bucket_region(&api, &gcp.bucket, &client_settings.region).await {
                Ok(()) => Check::ok(
                    "bucket",
                    format!(
                        "gs://{} is readable from {}",
                        gcp.bucket, client_settings.region
                    ),
                ),
                Err(e) => Check::failed("bucket", &e),
            }
        }
        Err(e) => Check::failed("bucket", &e),
    };
    checks.push(bucket);

    checks.push(
        match vertex::list_endpoints(&clients, names::LABEL_DEPLOYMENT, None).await {
            Ok(found) => Check::ok(
                "Vertex AI",
                format!(
                    "{} answers; {} endpoint{} of modelport's there",
                    client_settings.parent(),
                    found.len(),
                    if found.len() == 1 { "" } else { "s" }
                ),
            ),
            Err(e) => Check::failed("Vertex AI", &e),
        },
    );

    checks.push(match &gcp.service_account {
        Some(account) if account.contains('@') => {
            service_account_check(&client_settings, account).await
        }
        Some(account) => Check::fail(
            "service account",
            format!("provider.gcp.service_account `{account}` is not a service account's email"),
            Some("use NAME@PROJECT.iam.gserviceaccount.com".into()),
        ),
        None => Check::warn(
            "service account",
            "none set: the model runs as Vertex AI's default service agent, which may read more than this model needs",
            "set provider.gcp.service_account to an account holding only what `modelport iam-policy --provider gcp` prints",
        ),
    });

    checks.push(match spec.gcp_image() {
        Some(image) => image_check(&client_settings, image).await,
        None => match client::image_registry(&client_settings).await {
            Ok((repository, _)) => Check::ok(
                "image",
                format!("deploy builds modelport's serving image and pushes it to {repository}"),
            ),
            Err(e) => Check::failed("image", &e),
        },
    });
    checks
}

/// The service account the model runs as: it exists and is enabled (IAM
/// `projects.serviceAccounts.get`; `-` lets IAM find the account's project).
async fn service_account_check(settings: &ClientSettings, account: &str) -> Check {
    const WHAT: &str = "service account";
    let iam = match client::iam(settings).await {
        Ok(Some(iam)) => iam,
        Ok(None) => {
            return Check::warn(
                WHAT,
                format!(
                    "the model runs as {account}; whether it exists was not asked: Vertex AI calls go to an override and IAM calls have none"
                ),
                format!(
                    "set {} to the IAM endpoint of the same fake",
                    client::MODELPORT_GCP_IAM_ENDPOINT
                ),
            );
        }
        Err(e) => return Check::failed(WHAT, &e),
    };
    let name = format!("projects/-/serviceAccounts/{account}");
    let (account_name, project) = account
        .split_once('@')
        .map(|(n, domain)| (n, domain.split('.').next().unwrap_or(&settings.project)))
        .unwrap_or((account, &settings.project));
    match iam.get_service_account().set_name(&name).send().await {
        Ok(found) if found.disabled => Check::fail(
            WHAT,
            format!("{account} is disabled: Vertex AI cannot run the model as it"),
            Some(format!(
                "`gcloud iam service-accounts enable {account} --project {}`",
                found.project_id
            )),
        ),
        Ok(found) => Check::ok(
            WHAT,
            format!(
                "the model runs as {account} (enabled, in project {})",
                found.project_id
            ),
        ),
        Err(e) => match error::code_name(&e).as_str() {
            "NOT_FOUND" => Check::fail(
                WHAT,
                format!("{account} does not exist"),
                Some(format!(
                    "create it: `gcloud iam service-accounts create {account_name} --project {project}`, then grant it what `modelport iam-policy --provider gcp` prints"
                )),
            ),
            "PERMISSION_DENIED" => Check::warn(
                WHAT,
                format!(
                    "whether {account} exists cannot be read here: {}",
                    error::message(&e)
                ),
                "Vertex AI checks it when the model is deployed; roles/iam.serviceAccountUser on the account (in `modelport iam-policy --provider gcp`) lets doctor read it too",
            ),
            _ => Check::failed(WHAT, &error::failure("serviceAccounts.get", &e)),
        },
    }
}

/// An explicit image in Artifact Registry (or Container Registry): its manifest
/// is asked of the registry as Vertex AI's pull would, with an access token as
/// `oauth2accesstoken`. With [`client::MODELPORT_GCP_REGISTRY`] set, that
/// registry stands in for Artifact Registry's hosts.
async fn image_check(settings: &ClientSettings, image: &str) -> Check {
    const WHAT: &str = "image";
    let (host, path) = image.split_once('/').unwrap_or((image, ""));
    let google = host.ends_with("-docker.pkg.dev") || host == "gcr.io" || host.ends_with(".gcr.io");
    if !google {
        return Check::ok(
            WHAT,
            format!(
                "{image}, which Vertex AI pulls when the model is deployed (not in Artifact Registry: not looked up)"
            ),
        );
    }
    let (reference, auth) = match (client::registry_override(), &settings.vertex_endpoint) {
        (Some(stand_in), _) => (format!("{stand_in}/{path}"), RegistryAuth::Anonymous),
        (None, Some(_)) => {
            return Check::warn(
                WHAT,
                format!(
                    "{image} was not looked up: Vertex AI calls go to an override and registry calls have none"
                ),
                format!(
                    "set {} to the registry that stands in for Artifact Registry",
                    client::MODELPORT_GCP_REGISTRY
                ),
            );
        }
        (None, None) => match client::access_token().await {
            Ok(token) => (
                image.to_string(),
                RegistryAuth::Basic("oauth2accesstoken".into(), token),
            ),
            Err(e) => return Check::failed(WHAT, &e),
        },
    };
    let push_hint = format!(
        "push it (`modelport image build`, then `modelport image push {image}`), or leave provider.gcp.image_uri out and deploy builds and pushes one"
    );
    match modelport_image::manifest_digest(&reference, &auth).await {
        Ok(Some(digest)) => Check::ok(
            WHAT,
            format!(
                "{image} is in the registry ({digest}); Vertex AI pulls it when the model is deployed"
            ),
        ),
        Ok(None) => Check::fail(
            WHAT,
            format!(
                "{image} is not in the registry{}",
                if reference != image {
                    format!(" ({reference})")
                } else {
                    String::new()
                }
            ),
            Some(push_hint),
        ),
        Err(e) => Check::fail(WHAT, e.to_string(), e.hint()),
    }
}
