//! `modelport doctor --provider gcp`: what a deploy would need, asked of the project
//! with read-only calls (an access token, the bucket's metadata, a listing of the
//! region's endpoints). Nothing is created.

use modelport_core::provider::Check;
use modelport_core::spec::DeploymentSpec;

use crate::client::{self, ClientSettings};
use crate::{GcpProvider, names, settings, storage, vertex};

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
        Some(account) if account.contains('@') => Check::ok(
            "service account",
            format!("the model runs as {account}"),
        ),
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
        Some(image) => Check::ok(
            "image",
            format!("{image}, which Vertex AI pulls when the model is deployed"),
        ),
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
