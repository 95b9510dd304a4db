//! Client construction: the project, the regional Vertex AI host, credentials from
//! Application Default Credentials, and the endpoint overrides that point every
//! client at an emulator or fake (with anonymous credentials).

use google_cloud_aiplatform_v1::client::{EndpointService, ModelService, PredictionService};
use google_cloud_auth::credentials::Credentials;
use google_cloud_iam_admin_v1::client::Iam;
use google_cloud_storage::client::Storage;
use modelport_core::provider::{ProviderError, ProviderResult};
use modelport_core::spec::GcpSettings;
use serde::{Deserialize, Serialize};

/// Sends Vertex AI calls to this URL instead of Google (a fake); wins over
/// `provider.gcp.endpoint_url`. Credentials are then anonymous.
pub const MODELPORT_GCP_VERTEX_ENDPOINT: &str = "MODELPORT_GCP_VERTEX_ENDPOINT";
/// Sends Cloud Storage calls to this URL instead of Google (fake-gcs-server); wins
/// over `provider.gcp.storage_endpoint_url`. Credentials are then anonymous.
pub const MODELPORT_GCP_STORAGE_ENDPOINT: &str = "MODELPORT_GCP_STORAGE_ENDPOINT";
/// Sends IAM calls (`modelport doctor` reading the service account) to this URL
/// instead of Google (the Vertex AI fake answers them). Credentials are then
/// anonymous.
pub const MODELPORT_GCP_IAM_ENDPOINT: &str = "MODELPORT_GCP_IAM_ENDPOINT";
/// Pushes the serving image a deploy builds to this registry host instead of
/// Artifact Registry (a local registry); credentials are then anonymous.
pub const MODELPORT_GCP_REGISTRY: &str = "MODELPORT_GCP_REGISTRY";

/// The Artifact Registry repository (format DOCKER) a deploy pushes its own image to.
pub const IMAGE_REPOSITORY: &str = "modelport";

/// Where a deploy without `image_uri` pushes the serving image:
/// `REGION-docker.pkg.dev/PROJECT/modelport/modelport` (or the override's host),
/// and the credentials to push with: an Application Default Credentials access
/// token as `oauth2accesstoken`, or `None` (anonymous) for the override.
pub async fn image_registry(
    settings: &ClientSettings,
) -> ProviderResult<(String, Option<(String, String)>)> {
    if let Some(host) = registry_override() {
        return Ok((
            format!("{host}/{}/{IMAGE_REPOSITORY}/modelport", settings.project),
            None,
        ));
    }
    let repository = format!(
        "{}-docker.pkg.dev/{}/{IMAGE_REPOSITORY}/modelport",
        settings.region, settings.project
    );
    let token = access_token().await?;
    Ok((repository, Some(("oauth2accesstoken".into(), token))))
}

/// The registry host that stands in for Artifact Registry ([`MODELPORT_GCP_REGISTRY`]).
pub fn registry_override() -> Option<String> {
    env_override(MODELPORT_GCP_REGISTRY)
}

/// An OAuth access token from Application Default Credentials (what a registry
/// login as `oauth2accesstoken` takes).
pub async fn access_token() -> ProviderResult<String> {
    let no_token = |e: &dyn std::fmt::Display| {
        ProviderError::Other {
        message: format!("no Google Cloud access token: {e}"),
        hint: Some(
            "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
                .into(),
        ),
    }
    };
    Ok(google_cloud_auth::credentials::Builder::default()
        .build_access_token_credentials()
        .map_err(|e| no_token(&e))?
        .access_token()
        .await
        .map_err(|e| no_token(&e))?
        .token)
}

/// What a set of clients is built from; recorded in state so that `status`,
/// `compare` and `destroy` reach the same project, region and endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientSettings {
    pub project: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_endpoint: Option<String>,
}

fn env_override(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The project when `provider.gcp.project` is not set: `GOOGLE_CLOUD_PROJECT`, then
/// `CLOUDSDK_CORE_PROJECT` (what gcloud's configuration exports).
fn default_project() -> Option<String> {
    env_override("GOOGLE_CLOUD_PROJECT").or_else(|| env_override("CLOUDSDK_CORE_PROJECT"))
}

impl ClientSettings {
    /// The settings `provider.gcp` asks for, environment overrides applied.
    pub fn from_spec(gcp: &GcpSettings) -> ProviderResult<ClientSettings> {
        let project = gcp
            .project
            .clone()
            .or_else(default_project)
            .ok_or_else(|| ProviderError::InvalidInput {
                message: "provider.gcp.project is not set and neither GOOGLE_CLOUD_PROJECT nor CLOUDSDK_CORE_PROJECT names one".into(),
                hint: Some("set `provider.gcp.project: my-project` in modelport.yaml".into()),
            })?;
        Ok(ClientSettings {
            project,
            region: gcp.region.clone(),
            vertex_endpoint: env_override(MODELPORT_GCP_VERTEX_ENDPOINT)
                .or_else(|| gcp.endpoint_url.clone()),
            storage_endpoint: env_override(MODELPORT_GCP_STORAGE_ENDPOINT)
                .or_else(|| gcp.storage_endpoint_url.clone()),
        })
    }

    /// `https://{region}-aiplatform.googleapis.com`, or the override. The crate's
    /// default host is the global one, which serves no regional resources.
    pub fn vertex_host(&self) -> String {
        self.vertex_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{}-aiplatform.googleapis.com", self.region))
    }

    /// The `:predict` URL and the URL that describes the endpoint named `endpoint`
    /// (`projects/P/locations/R/endpoints/E`).
    pub fn endpoint_urls(&self, endpoint: &str) -> (String, String) {
        let host = self.vertex_host();
        (
            format!("{host}/v1/{endpoint}:predict"),
            format!("{host}/v1/{endpoint}"),
        )
    }

    /// `projects/P/locations/R`.
    pub fn parent(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.region)
    }
}

/// The clients one deployment talks to.
#[derive(Clone)]
pub struct GcpClients {
    pub settings: ClientSettings,
    pub models: ModelService,
    pub endpoints: EndpointService,
    pub predictions: PredictionService,
    pub storage: Storage,
    /// For the JSON API calls the storage crate cannot make (see `storage`).
    pub storage_credentials: Credentials,
}

/// Where Application Default Credentials come from, in the order the auth crate looks.
pub fn adc_source() -> String {
    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
        format!(
            "GOOGLE_APPLICATION_CREDENTIALS ({})",
            path.to_string_lossy()
        )
    } else if gcloud_adc_file().is_some_and(|p| p.is_file()) {
        "the gcloud application-default credentials file".to_string()
    } else {
        "the metadata server".to_string()
    }
}

/// Application Default Credentials, with a debug line naming where they come from.
fn adc() -> ProviderResult<Credentials> {
    tracing::debug!("Google Cloud credentials from {}", adc_source());
    google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| ProviderError::Other {
            message: format!("no Google Cloud credentials: {e}"),
            hint: Some(
                "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
                    .into(),
            ),
        })
}

fn gcloud_adc_file() -> Option<std::path::PathBuf> {
    let config = match std::env::var_os("CLOUDSDK_CONFIG") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".config/gcloud"),
    };
    Some(config.join("application_default_credentials.json"))
}

fn anonymous() -> Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

fn build_error(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Other {
        message: format!("cannot build the {what} client: {e}"),
        hint: None,
    }
}

/// The Cloud Storage client alone (what `modelport serve` needs to fetch a model):
/// anonymous against an override, Application Default Credentials otherwise.
pub async fn storage(endpoint: Option<&str>) -> ProviderResult<Storage> {
    let builder = Storage::builder();
    let builder = match endpoint {
        Some(url) => builder.with_endpoint(url).with_credentials(anonymous()),
        None => builder.with_credentials(adc()?),
    };
    builder
        .build()
        .await
        .map_err(|e| build_error("Cloud Storage", e))
}

/// The IAM client `modelport doctor` reads the service account with: anonymous
/// against [`MODELPORT_GCP_IAM_ENDPOINT`], Application Default Credentials
/// against Google. `None` when Vertex AI calls go to an override but IAM calls
/// have none: they would reach Google with credentials meant for a fake.
pub async fn iam(settings: &ClientSettings) -> ProviderResult<Option<Iam>> {
    let builder = match (
        env_override(MODELPORT_GCP_IAM_ENDPOINT),
        &settings.vertex_endpoint,
    ) {
        (Some(url), _) => Iam::builder()
            .with_endpoint(url)
            .with_credentials(anonymous()),
        (None, Some(_)) => return Ok(None),
        (None, None) => Iam::builder().with_credentials(adc()?),
    };
    builder
        .build()
        .await
        .map(Some)
        .map_err(|e| build_error("IAM", e))
}

/// Builds every client; credentials are resolved once, up front.
pub async fn connect(settings: &ClientSettings) -> ProviderResult<GcpClients> {
    let vertex_creds = match &settings.vertex_endpoint {
        Some(_) => anonymous(),
        None => adc()?,
    };
    let host = settings.vertex_host();
    // The clients set no time limit on an attempt: a silent peer would hang the
    // command. One that runs out is retried like a dropped connection.
    let attempt = modelport_core::env::request_timeout()?;
    let models = ModelService::builder()
        .with_endpoint(&host)
        .with_attempt_timeout(attempt)
        .with_polling_error_policy(crate::error::TransientPolling)
        .with_credentials(vertex_creds.clone())
        .build()
        .await
        .map_err(|e| build_error("Vertex AI model service", e))?;
    let endpoints = EndpointService::builder()
        .with_endpoint(&host)
        .with_attempt_timeout(attempt)
        .with_polling_error_policy(crate::error::TransientPolling)
        .with_credentials(vertex_creds.clone())
        .build()
        .await
        .map_err(|e| build_error("Vertex AI endpoint service", e))?;
    let predictions = PredictionService::builder()
        .with_endpoint(&host)
        .with_attempt_timeout(attempt)
        .with_credentials(vertex_creds.clone())
        .build()
        .await
        .map_err(|e| build_error("Vertex AI prediction service", e))?;
    let storage_credentials = match &settings.storage_endpoint {
        Some(_) => anonymous(),
        None if settings.vertex_endpoint.is_some() => {
            return Err(ProviderError::InvalidInput {
                message:
                    "Vertex AI calls go to an override but Cloud Storage calls would go to Google"
                        .into(),
                hint: Some(format!(
                    "set {MODELPORT_GCP_STORAGE_ENDPOINT} (or provider.gcp.storage_endpoint_url) too, or neither"
                )),
            });
        }
        None => vertex_creds.clone(),
    };
    let mut builder = Storage::builder().with_credentials(storage_credentials.clone());
    if let Some(url) = &settings.storage_endpoint {
        builder = builder.with_endpoint(url);
    }
    let storage = builder
        .build()
        .await
        .map_err(|e| build_error("Cloud Storage", e))?;
    Ok(GcpClients {
        settings: settings.clone(),
        models,
        endpoints,
        predictions,
        storage,
        storage_credentials,
    })
}
