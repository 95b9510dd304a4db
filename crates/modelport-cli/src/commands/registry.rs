//! Registries: which credentials one gets (the cloud's own for Amazon ECR and
//! Google Artifact Registry, else the user's Docker configuration, else none), and
//! the serving image a deploy builds and pushes itself when the spec names none.

use std::path::PathBuf;

use anyhow::Context;
use modelport_core::provider::Reporter;
use modelport_core::spec::{DeploymentSpec, EngineChoice};
use modelport_core::state::Workspace;
use modelport_image::{BuildOptions, Engine, RegistryAuth};

use super::targets::ImageHome;

/// The credentials for `registry`.
pub async fn credentials(registry: &str) -> anyhow::Result<RegistryAuth> {
    #[cfg(feature = "aws")]
    if let Some(region) = modelport_aws::ecr::ecr_region(registry) {
        let settings = modelport_aws::ClientSettings {
            region: Some(region.to_string()),
            profile: None,
            endpoint_url: modelport_aws::builder::endpoint_override(),
        };
        let clients = modelport_aws::builder::connect(&settings, None).await?;
        let login = modelport_aws::ecr::login(&clients).await?;
        return Ok(RegistryAuth::Basic(login.username, login.password));
    }
    #[cfg(feature = "gcp")]
    if registry.ends_with("-docker.pkg.dev") || registry.ends_with("gcr.io") {
        let token = modelport_gcp::client::access_token().await?;
        return Ok(RegistryAuth::Basic("oauth2accesstoken".into(), token));
    }
    let Some(path) = modelport_image::auth::docker_config_path() else {
        return Ok(RegistryAuth::Anonymous);
    };
    Ok(modelport_image::auth::docker_credentials(&path, registry)?)
}

/// The clients and tags that create the ECR repository.
#[cfg(feature = "aws")]
type EcrClients = (
    modelport_aws::AwsClients,
    std::collections::BTreeMap<String, String>,
);
#[cfg(not(feature = "aws"))]
type EcrClients = std::convert::Infallible;

/// The image a deploy built for a spec with no `image_uri`, and where it goes.
pub struct OwnImage {
    pub layout: PathBuf,
    /// `REGISTRY/REPOSITORY:VERSION`, the tag pushed.
    pub reference: String,
    /// `REGISTRY/REPOSITORY@DIGEST`: what the endpoint runs.
    pub pinned: String,
    auth: RegistryAuth,
    /// For ECR: the clients that create the repository when it is missing.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    ecr: Option<EcrClients>,
    /// How to create the repository where modelport does not (Artifact Registry).
    create_repository: Option<String>,
}

/// When `provider` is a cloud and the spec names no serving image for it, builds
/// the image of this modelport (the engine of `serving.engine`) and points the
/// spec at it, pinned by digest: the plan and the resources then use it, and an
/// unchanged image is an unchanged spec. Nothing is pushed yet: see [`push_own_image`].
pub async fn own_image(
    spec: &mut DeploymentSpec,
    provider: &str,
    ws: &Workspace,
    reporter: &dyn Reporter,
) -> anyhow::Result<Option<OwnImage>> {
    let home = super::targets::image_home(provider);
    let missing = match home {
        Some(ImageHome::Ecr) => spec.provider.aws.is_some() && spec.aws_image().is_none(),
        Some(ImageHome::ArtifactRegistry) => {
            spec.provider.gcp.is_some() && spec.gcp_image().is_none()
        }
        None => false,
    };
    if !missing {
        return Ok(None);
    }
    let engine = match spec.serving.engine {
        EngineChoice::Tract => Engine::Tract,
        choice => match modelport_runtime::find_onnxruntime_library() {
            Ok(lib) => Engine::Onnxruntime(lib),
            Err(_) if choice == EngineChoice::Auto => Engine::Tract,
            Err(e) => {
                return Err(modelport_image::ImageError::new(
                    format!("the serving image needs onnxruntime (serving.engine: onnxruntime): {e}"),
                    "`pip install onnxruntime` in the active virtualenv, or set `serving.engine: tract`, \
                     or set `image_uri` to an image you built",
                )
                .into());
            }
        },
    };
    let options = BuildOptions {
        binary: std::env::current_exe().context("cannot find the running modelport binary")?,
        engine,
        platform: None,
        ca_certificates: None,
        epoch: modelport_image::source_date_epoch()?,
        version: env!("CARGO_PKG_VERSION").to_string(),
        source: env!("CARGO_PKG_REPOSITORY").to_string(),
    };
    let layout = ws.root().join("image");
    reporter.on_start("building the serving image");
    let built = modelport_image::build(&options, &layout)
        .with_context(|| format!("cannot build the serving image in {}", layout.display()))?;

    let version = env!("CARGO_PKG_VERSION");
    let Some(Destination {
        repository,
        auth,
        ecr,
        create_repository,
    }) = destination(home, spec).await?
    else {
        // Not reached: `missing` above needs the provider's section.
        return Ok(None);
    };
    let pinned = format!("{repository}@{}", built.manifest.digest);
    let slot = match home {
        Some(ImageHome::Ecr) => spec.provider.aws.as_mut().map(|a| &mut a.image_uri),
        _ => spec.provider.gcp.as_mut().map(|g| &mut g.image_uri),
    };
    if let Some(slot) = slot {
        *slot = Some(pinned.clone());
    }
    Ok(Some(OwnImage {
        layout,
        reference: format!("{repository}:{version}"),
        pinned,
        auth,
        ecr,
        create_repository,
    }))
}

/// Where the image of a deploy to `home` goes, and how to get in.
struct Destination {
    repository: String,
    auth: RegistryAuth,
    ecr: Option<EcrClients>,
    create_repository: Option<String>,
}

/// The registry of `home` for `spec`, logged in; `None` when the spec has no
/// section for that provider.
async fn destination(
    home: Option<ImageHome>,
    spec: &DeploymentSpec,
) -> anyhow::Result<Option<Destination>> {
    match (home, &spec.provider.aws, &spec.provider.gcp) {
        #[cfg(feature = "aws")]
        (Some(ImageHome::Ecr), Some(aws), _) => {
            let settings = modelport_aws::ClientSettings::from_spec(aws);
            let clients = modelport_aws::builder::connect(&settings, None).await?;
            let login = modelport_aws::ecr::login(&clients).await?;
            let mut tags = aws.tags.clone();
            tags.insert("modelport:managed-by".into(), "modelport".into());
            Ok(Some(Destination {
                repository: format!("{}/{}", login.registry, modelport_aws::ecr::REPOSITORY),
                auth: RegistryAuth::Basic(login.username, login.password),
                ecr: Some((clients, tags)),
                create_repository: None,
            }))
        }
        #[cfg(feature = "gcp")]
        (Some(ImageHome::ArtifactRegistry), _, Some(gcp)) => {
            let settings = modelport_gcp::ClientSettings::from_spec(gcp)?;
            let (repository, login) = modelport_gcp::client::image_registry(&settings).await?;
            let auth = login.map_or(RegistryAuth::Anonymous, |(u, p)| RegistryAuth::Basic(u, p));
            let how = format!(
                "create the Artifact Registry repository once: `gcloud artifacts repositories create {} \
                 --repository-format=docker --location={} --project={}`, or set `provider.gcp.image_uri`",
                modelport_gcp::client::IMAGE_REPOSITORY,
                settings.region,
                settings.project
            );
            Ok(Some(Destination {
                repository,
                auth,
                ecr: None,
                create_repository: Some(how),
            }))
        }
        #[cfg(not(feature = "aws"))]
        (Some(ImageHome::Ecr), ..) => Err(super::targets::not_built("aws")),
        #[cfg(not(feature = "gcp"))]
        (Some(ImageHome::ArtifactRegistry), ..) => Err(super::targets::not_built("gcp")),
        _ => Ok(None),
    }
}

/// Pushes the image [`own_image`] built (creating the ECR repository when
/// missing); a registry that has the digest already gets nothing but the manifest.
pub async fn push_own_image(image: &OwnImage, reporter: &dyn Reporter) -> anyhow::Result<()> {
    #[cfg(feature = "aws")]
    if let Some((clients, tags)) = &image.ecr
        && modelport_aws::ecr::ensure_repository(clients, modelport_aws::ecr::REPOSITORY, tags)
            .await?
    {
        reporter.on_start(&format!(
            "created the ECR repository {} (scan on push)",
            modelport_aws::ecr::REPOSITORY
        ));
    }
    reporter.on_start(&format!("pushing the serving image to {}", image.reference));
    let pushed = modelport_image::push(&image.layout, &image.reference, &image.auth)
        .await
        .map_err(|e| match &image.create_repository {
            Some(how) if e.is_missing_repository() => e.with_hint(how.clone()),
            _ => e,
        })?;
    reporter.on_start(&format!(
        "pushed: {} blob(s) sent ({}), {} already there",
        pushed.blobs_sent,
        super::human_bytes(pushed.bytes_sent),
        pushed.blobs_skipped
    ));
    Ok(())
}
