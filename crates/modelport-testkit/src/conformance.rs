//! One conformance suite for every provider: plain async functions that drive a
//! [`Provider`] through a deployment's whole life and check what the trait's
//! `# Contract` promises. Each provider's tests call them with their own spec
//! (and emulators); a provider passes when the same code passes for it.

use std::path::Path;

use anyhow::{Context, ensure};
use modelport_core::provider::{ActionKind, ArtifactRef, DestroyOptions, Health, Provider, Silent};
use modelport_core::spec::{DeploymentSpec, EngineChoice};
use modelport_core::state::{RolloutMode, Which, Workspace};
use modelport_deploy::{Cancellation, Deployer, Outcome, ReferenceVerifier};
use modelport_package::{PackageOptions, package};
use modelport_runtime::{ModelInfo, RuntimeOptions};
use modelport_verify::{DEFAULT_WORST, LocalPredictor};

/// Packages the spec's model the way `modelport deploy` does.
pub fn package_spec(spec: &DeploymentSpec, out: &Path) -> anyhow::Result<ArtifactRef> {
    let model = spec.model_path();
    let info = ModelInfo::from_path(&model)?;
    let opts = PackageOptions {
        signature: Some(info.signature.clone()),
        data_files: info.data_files(),
        layout: spec.artifact_layout(info.size_bytes),
        ..PackageOptions::default()
    };
    let artifact = package(&model, out, &opts)?;
    Ok(ArtifactRef {
        model_digest: artifact.manifest.digest(),
        path: artifact.path,
        digest: artifact.digest,
        size: artifact.size,
        layout: artifact.layout,
        signature: Some(info.signature),
    })
}

/// Compares one revision of the deployment with the spec's model on the local
/// runtime, and checks that the endpoint says it serves `artifact`.
pub async fn check_revision(
    provider: &dyn Provider,
    state: &modelport_core::state::DeploymentState,
    which: Which,
    spec: &DeploymentSpec,
    artifact: &ArtifactRef,
) -> anyhow::Result<()> {
    let endpoint = provider.endpoint(state, which).await?;
    let digest = format!("sha256:{}", artifact.model_digest);
    let reference = LocalPredictor::load(
        &spec.model_path(),
        EngineChoice::Auto,
        &RuntimeOptions::default(),
        "reference",
        Some(digest.clone()),
    )?;
    let inputs = modelport_runtime::samples::generate(reference.model_signature(), 40, 7)?;
    let report = modelport_verify::run::compare(
        endpoint.as_ref(),
        &reference,
        &inputs,
        &spec.verify,
        DEFAULT_WORST,
    )
    .await?;
    ensure!(
        report.passed(),
        "the {which:?} revision does not answer like the model"
    );
    ensure!(
        report.a.served_by.digest.as_deref() == Some(digest.as_str()),
        "the {which:?} revision says it serves {:?}, not {digest}",
        report.a.served_by.digest
    );
    Ok(())
}

/// deploy → status → compare → redeploy (a no-op) → update → compare → destroy,
/// each step of the rollout driven by hand, then an update through the rollout itself.
///
/// After an update's `apply`, the active revision is compared the way production
/// clients reach it: every answer must come from the active revision, so a provider
/// that let the pending one take production traffic fails here.
///
/// `changed` is `spec` with a change that makes a new revision (another model or
/// other serving settings).
pub async fn lifecycle(
    provider: &dyn Provider,
    ws: &Workspace,
    spec: &DeploymentSpec,
    changed: &DeploymentSpec,
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let name = spec.name.as_str();
    let artifact = package_spec(spec, &scratch.path().join("a"))?;

    // A first plan creates, and changes nothing.
    let mode = RolloutMode::BeforeTraffic;
    let plan = provider.plan(spec, &artifact, None, mode).await?;
    ensure!(
        !plan.is_noop(),
        "a first plan must create something: {:?}",
        plan.actions
    );
    ensure!(
        plan.actions.iter().any(|a| a.kind == ActionKind::Create),
        "{:?}",
        plan.actions
    );
    ensure!(ws.load_state(name)?.is_none(), "plan wrote state");

    // apply brings the revision up as pending, recorded in state.
    let state = provider
        .apply(&plan, &Silent)
        .await
        .context("first apply")?;
    ensure!(
        state.pending.is_some() && state.active.is_none(),
        "{state:?}"
    );
    ensure!(
        ws.load_state(name)?.is_some_and(|s| s.pending.is_some()),
        "apply must persist the pending revision"
    );
    check_revision(provider, &state, Which::Pending, spec, &artifact).await?;
    let state = provider.move_traffic(state, &Silent).await?;
    // Moving the traffic is idempotent.
    let state = provider.move_traffic(state, &Silent).await?;
    check_revision(provider, &state, Which::Pending, spec, &artifact).await?;
    let state = provider.retire(state, &Silent).await?;
    ensure!(
        state.pending.is_none() && state.active.is_some(),
        "{state:?}"
    );
    // retire is idempotent.
    let state = provider.retire(state, &Silent).await?;
    let status = provider.status(&state).await?;
    ensure!(status.health == Health::InService, "{status:?}");
    check_revision(provider, &state, Which::Active, spec, &artifact).await?;

    // Unchanged: the plan keeps everything and apply starts nothing.
    let plan = provider.plan(spec, &artifact, Some(&state), mode).await?;
    ensure!(
        plan.is_noop(),
        "an unchanged plan must keep everything: {:?}",
        plan.actions
    );
    let state = provider.apply(&plan, &Silent).await?;
    ensure!(
        state.pending.is_none(),
        "an unchanged apply started a revision"
    );

    // A change comes up next to the active revision, which keeps all the production
    // traffic; rolling it back keeps the active one serving; the rollout then
    // switches to it.
    let new_artifact = package_spec(changed, &scratch.path().join("b"))?;
    let plan = provider
        .plan(changed, &new_artifact, Some(&state), mode)
        .await?;
    ensure!(
        !plan.is_noop(),
        "a change must be planned: {:?}",
        plan.actions
    );
    let state = provider
        .apply(&plan, &Silent)
        .await
        .context("update apply")?;
    ensure!(
        state.pending.is_some() && state.active.is_some(),
        "{state:?}"
    );
    check_revision(provider, &state, Which::Pending, changed, &new_artifact).await?;
    check_revision(provider, &state, Which::Active, spec, &artifact)
        .await
        .context("production requests must still reach the active revision only")?;
    let state = provider.rollback(state, &Silent).await?;
    ensure!(state.pending.is_none(), "{state:?}");
    check_revision(provider, &state, Which::Active, spec, &artifact).await?;

    let plan = provider
        .plan(changed, &new_artifact, Some(&state), mode)
        .await?;
    modelport_local::store_artifact(ws, &new_artifact)?;
    let verifier = ReferenceVerifier {
        workspace: ws.clone(),
        artifact: new_artifact.clone(),
        label: "reference".into(),
        engine: EngineChoice::Auto,
        verify: modelport_core::spec::VerifySpec {
            samples: changed.samples_path(),
            ..changed.verify.clone()
        },
        worst: DEFAULT_WORST,
        compression: None,
    };
    let deployer = Deployer {
        provider,
        workspace: ws,
        reporter: &Silent,
        cancel: Cancellation::never(),
    };
    let outcome = deployer
        .run(plan, Some(&verifier))
        .await
        .context("the rollout of the update")?;
    let Outcome::Deployed { state, report } = outcome else {
        anyhow::bail!("the rollout did not deploy: {outcome:?}");
    };
    ensure!(report.is_some_and(|r| r.passed()), "no passing comparison");
    ensure!(
        state.rollout.is_none() && state.pending.is_none(),
        "{state:?}"
    );
    let status = provider.status(&state).await?;
    ensure!(status.health == Health::InService, "{status:?}");
    check_revision(provider, &state, Which::Active, changed, &new_artifact).await?;

    // destroy removes everything, and finds nothing left.
    let report = provider
        .destroy(state, &DestroyOptions { purge: true }, &Silent)
        .await?;
    ensure!(
        report.leftover.is_empty(),
        "left after destroy: {:?}",
        report.leftover
    );
    ensure!(ws.load_state(name)?.is_none(), "destroy left state");
    Ok(())
}
