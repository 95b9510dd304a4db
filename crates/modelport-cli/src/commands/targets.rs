//! What deploy, compare, status and destroy share: the workspace, providers by
//! name, comparison targets and their inputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use modelport_core::provider::{Provider, ProviderError};
use modelport_core::spec::VerifySpec;
use modelport_core::state::{DeploymentState, Which, Workspace};
use modelport_core::{Batch, Predictor, Signature};
use modelport_local::LocalProvider;
use modelport_runtime::{EngineChoice, RuntimeOptions, samples};
use modelport_verify::{HttpPredictor, HttpTarget, LocalPredictor};

/// The providers this build knows, for error messages.
pub const PROVIDERS: [&str; 3] = ["local", "aws", "gcp"];

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Where a deploy to the provider called `name` pushes the serving image it builds
/// when the spec names none: `None` for a provider that runs no image (local).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageHome {
    /// The account's Amazon ECR.
    Ecr,
    /// The project's Google Artifact Registry.
    ArtifactRegistry,
}

pub fn image_home(name: &str) -> Option<ImageHome> {
    match name {
        "aws" => Some(ImageHome::Ecr),
        "gcp" => Some(ImageHome::ArtifactRegistry),
        _ => None,
    }
}

/// The provider called `name`; with [`image_home`], the only place that matches on
/// provider names.
pub fn provider(name: &str, ws: &Workspace) -> anyhow::Result<Arc<dyn Provider>> {
    match name {
        "local" => {
            let exe = std::env::current_exe().context("cannot find the modelport executable")?;
            Ok(Arc::new(LocalProvider::new(ws.clone(), exe)))
        }
        #[cfg(feature = "aws")]
        "aws" => Ok(Arc::new(modelport_aws::AwsProvider::new(ws.clone()))),
        #[cfg(feature = "gcp")]
        "gcp" => Ok(Arc::new(modelport_gcp::GcpProvider::new(ws.clone()))),
        #[cfg(not(feature = "aws"))]
        "aws" => Err(not_built(name)),
        #[cfg(not(feature = "gcp"))]
        "gcp" => Err(not_built(name)),
        other => {
            let near = PROVIDERS
                .iter()
                .min_by_key(|p| strsim::levenshtein(p, other))
                .copied()
                .unwrap_or("local");
            bail!(
                "unknown provider {other:?}: expected one of local, aws, gcp (did you mean {near:?}?)"
            )
        }
    }
}

/// The error for a provider this binary was built without (its cargo feature off).
#[cfg_attr(all(feature = "aws", feature = "gcp"), allow(dead_code))]
pub fn not_built(provider: &str) -> anyhow::Error {
    ProviderError::Other {
        message: format!(
            "the {provider} provider is not in this build of modelport (built without the `{provider}` feature)"
        ),
        hint: Some(format!(
            "install a build that has it: `cargo install modelport-cli --features {provider}`; \
             the default features and the prebuilt binaries have every provider"
        )),
    }
    .into()
}

/// The state of deployment `name`, or an error with a hint naming what exists.
pub fn load_state(ws: &Workspace, name: &str) -> anyhow::Result<DeploymentState> {
    match ws.load_state(name)? {
        Some(s) => Ok(s),
        None => Err(ProviderError::NotFound {
            what: format!("deployment {name:?} (in {})", ws.root().display()),
        }
        .into()),
    }
}

/// How `deploy` proves the new revision: the spec's `verify.mode`, or not at all
/// with `--no-verify`.
pub fn rollout_mode(
    spec: &modelport_core::spec::DeploymentSpec,
    no_verify: bool,
) -> modelport_core::state::RolloutMode {
    use modelport_core::spec::VerifyMode;
    use modelport_core::state::RolloutMode;
    match (no_verify, spec.verify.mode) {
        (true, _) => RolloutMode::Unverified,
        (false, VerifyMode::BeforeTraffic) => RolloutMode::BeforeTraffic,
        (false, VerifyMode::AfterTraffic) => RolloutMode::AfterTraffic,
    }
}

/// Takes deployment `name`'s lock for `command`, saying on stderr when it waits.
pub fn lock(
    ws: &Workspace,
    name: &str,
    kind: modelport_core::lock::LockKind,
    command: &str,
    wait: std::time::Duration,
    quiet: bool,
) -> anyhow::Result<modelport_core::lock::DeploymentLock> {
    Ok(ws.lock(name, kind, command, wait, |message| {
        if !quiet {
            eprintln!("  {message}");
        }
    })?)
}

/// A comparison target as the user named it.
pub enum Target {
    Url(String),
    Model(PathBuf),
    Deployment(Box<DeploymentState>),
}

/// URLs by scheme; then a path when the text looks like one (has a `/` or ends in
/// `.onnx`); then a recorded deployment; then any existing file or directory. So
/// `iris` is the deployment even beside a directory `iris/`, which `./iris` names.
pub fn resolve_target(ws: &Workspace, text: &str) -> anyhow::Result<Target> {
    if text.starts_with("http://") || text.starts_with("https://") {
        return Ok(Target::Url(text.to_string()));
    }
    let path = Path::new(text);
    let looks_like_path = text.contains('/') || text.ends_with(".onnx");
    if looks_like_path && path.exists() {
        return Ok(Target::Model(path.to_path_buf()));
    }
    if !looks_like_path && let Some(state) = ws.load_state(text)? {
        return Ok(Target::Deployment(Box::new(state)));
    }
    if path.exists() {
        return Ok(Target::Model(path.to_path_buf()));
    }
    let known: Vec<String> = ws.list_states()?.into_iter().map(|s| s.name).collect();
    let hint = if known.is_empty() {
        "no deployment is recorded here; deploy one or pass a model file or URL".to_string()
    } else {
        format!("deployments here: {}", known.join(", "))
    };
    Err(ProviderError::InvalidInput {
        message: format!(
            "{text:?} is neither a URL, a file, nor a deployment in {}",
            ws.root().display()
        ),
        hint: Some(hint),
    }
    .into())
}

/// Where a deployment's own model is on this machine: unpacked from the artifact
/// store, checked against its manifest.
pub fn deployment_model(
    ws: &Workspace,
    state: &DeploymentState,
    which: Which,
) -> anyhow::Result<(PathBuf, String)> {
    let rev = state
        .revision(which)
        .with_context(|| format!("deployment {:?} has no serving revision", state.name))?;
    let archive = ws
        .artifacts_dir()
        .join(&rev.artifact_digest)
        .join(modelport_package::ARCHIVE_NAME);
    let (dir, manifest) = modelport_local::unpack_model(ws, &archive, &rev.model_digest)
        .with_context(|| format!("cannot find the model of deployment {:?}", state.name))?;
    Ok((
        dir.join(&manifest.model.file),
        format!("sha256:{}", rev.model_digest),
    ))
}

/// True for a URL whose answers (`{"predictions"}`) do not say their outputs' names
/// and dtypes; an Open Inference Protocol URL's metadata does.
pub fn is_untyped_url(target: &Target) -> bool {
    match target {
        Target::Url(url) => HttpTarget::from_url(url, 1)
            .is_ok_and(|t| t.protocol == modelport_core::state::Protocol::Instances),
        _ => false,
    }
}

/// A predictor for `target`.
pub async fn predictor(
    ws: &Workspace,
    target: &Target,
    engine: EngineChoice,
    signature: Option<Signature>,
    max_request_bytes: usize,
    concurrency: usize,
) -> anyhow::Result<Box<dyn Predictor>> {
    Ok(match target {
        Target::Url(url) => {
            let mut t = HttpTarget::from_url(url, max_request_bytes)?;
            t.concurrency = concurrency;
            Box::new(HttpPredictor::connect(t, signature).await?)
        }
        Target::Model(path) => {
            Box::new(load_local(path, engine, path.display().to_string(), None)?)
        }
        Target::Deployment(state) => {
            let provider = provider(&state.provider, ws)?;
            provider.endpoint(state, Which::Active).await?
        }
    })
}

/// The local runtime on `path`; blocking (model loading).
pub fn load_local(
    path: &Path,
    engine: EngineChoice,
    label: String,
    digest: Option<String>,
) -> anyhow::Result<LocalPredictor> {
    let digest = match digest {
        Some(d) => Some(d),
        None if path.is_file() => Some(format!("sha256:{}", modelport_package::sha256_file(path)?)),
        None => None,
    };
    LocalPredictor::load(path, engine, &RuntimeOptions::default(), label, digest)
        .with_context(|| format!("cannot load {}", path.display()))
}

/// The inputs of a comparison: a samples file, else generated from the signature.
pub fn inputs(verify: &VerifySpec, signature: &Signature) -> anyhow::Result<Batch> {
    match &verify.samples {
        Some(path) => Ok(modelport_verify::inputs::read_inputs(path, signature)
            .with_context(|| format!("cannot read samples from {}", path.display()))?),
        None => Ok(samples::generate(
            signature,
            verify.count as usize,
            verify.seed,
        )?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_left_out_of_the_build_is_named_with_the_feature_that_brings_it() {
        let err = not_built("aws");
        assert_eq!(
            err.to_string(),
            "the aws provider is not in this build of modelport (built without the `aws` feature)"
        );
        let hint = crate::output::hint(&err).unwrap();
        assert!(
            hint.contains("cargo install modelport-cli --features aws"),
            "{hint}"
        );
    }
}
