//! The one trait every deployment target implements, and the small types it speaks.
//!
//! The CLI constructs a provider by name and from then on only calls this trait; it
//! never matches on which provider it holds. Adding a provider touches no other one.

use std::path::PathBuf;

use serde::Serialize;

use crate::Signature;
use crate::predictor::{PredictError, Predictor};
use crate::spec::DeploymentSpec;
use crate::state::{DeploymentState, EndpointRef, Phase, Revision, RolloutMode, Which, unix_now};

/// A packaged model as a provider receives it.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactRef {
    /// The `model.tar.gz` on this machine, or the directory (the model's files and
    /// `modelport.json`) of a `dir` layout.
    pub path: PathBuf,
    /// sha256 of the archive; of `modelport.json` for a directory.
    pub digest: String,
    /// sha256 of the package's `modelport.json`, which servers report.
    pub model_digest: String,
    /// Size of the archive in bytes; of all the directory's files for a directory.
    pub size: u64,
    pub layout: crate::spec::ArtifactLayout,
    #[serde(skip)]
    pub signature: Option<Signature>,
}

/// What a plan does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Create,
    Update,
    Keep,
    Delete,
}

impl ActionKind {
    pub fn symbol(self) -> &'static str {
        match self {
            ActionKind::Create => "+",
            ActionKind::Update => "~",
            ActionKind::Keep => "=",
            ActionKind::Delete => "-",
        }
    }
}

/// One line of a plan: a resource and what happens to it, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    pub kind: ActionKind,
    /// What the resource is, for example `server process` or `SageMaker endpoint iris`.
    pub resource: String,
    /// Why, for example `new artifact sha256:ab12…` or `unchanged`.
    pub reason: String,
}

/// What `apply` would do, computed without changing anything.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub provider: String,
    pub actions: Vec<PlannedAction>,
    #[serde(skip)]
    pub spec: DeploymentSpec,
    pub spec_hash: String,
    pub artifact: ArtifactRef,
    /// How the new revision is proved and when production traffic reaches it.
    pub rollout: RolloutPlan,
    /// The state the plan was computed from.
    #[serde(skip)]
    pub previous: Option<DeploymentState>,
}

/// How a plan's new revision is proved, and when production traffic reaches it:
/// what `plan` and `deploy` print, so that a user knows before anything is created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutPlan {
    pub mode: RolloutMode,
    /// How the comparison reaches the new revision, in words.
    pub verify_via: String,
    /// When production traffic moves to the new revision, in words.
    pub traffic: String,
    /// How many copies of the old and the new revision's compute run at once in each
    /// stage of the rollout (a SageMaker update runs the old variant twice while the
    /// first new fleet comes up, for example): what it costs while it lasts.
    pub stages: Vec<Copies>,
}

/// Copies of each revision's compute running at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Copies {
    pub old: u32,
    pub new: u32,
}

impl Copies {
    pub const fn of(old: u32, new: u32) -> Copies {
        Copies { old, new }
    }
}

impl Plan {
    /// The revision this plan brings up, started now: the artifact, the spec hash,
    /// how `compare` checks it (samples made absolute, so it runs from anywhere),
    /// the endpoint and the provider's own record of what it created (which must
    /// serialize to JSON: a path that is not UTF-8 does not).
    pub fn revision(
        &self,
        endpoint: EndpointRef,
        resources: impl Serialize,
    ) -> ProviderResult<Revision> {
        let mut verify = self.spec.verify.clone();
        verify.samples = self
            .spec
            .samples_path()
            .map(|p| std::path::absolute(&p).unwrap_or(p));
        let resources = serde_json::to_value(resources).map_err(|e| {
            ProviderError::other(format!(
                "cannot record the resources of {} in its state: {e}",
                self.name
            ))
        })?;
        Ok(Revision {
            artifact_digest: self.artifact.digest.clone(),
            model_digest: self.artifact.model_digest.clone(),
            spec_hash: self.spec_hash.clone(),
            endpoint,
            verify,
            started_at: unix_now(),
            resources,
        })
    }

    /// The state `apply` starts from: the recorded one, or a new deployment's, with
    /// the spec file made absolute so that later commands run from anywhere.
    pub fn starting_state(&self) -> DeploymentState {
        let mut state = self
            .previous
            .clone()
            .unwrap_or_else(|| DeploymentState::new(&self.name, &self.provider, &self.spec.file));
        state.spec_file =
            std::path::absolute(&self.spec.file).unwrap_or_else(|_| self.spec.file.clone());
        state
    }

    /// How the plan's revision is proved.
    pub fn mode(&self) -> RolloutMode {
        self.rollout.mode
    }

    /// True when applying the plan would change nothing.
    pub fn is_noop(&self) -> bool {
        self.actions.iter().all(|a| a.kind == ActionKind::Keep)
    }
}

/// How a deployment's endpoint is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Answering its health check.
    InService,
    /// Being created or updated.
    Updating,
    /// Running but not answering its health check.
    Unhealthy,
    /// Gone: the process exited or the cloud resource does not exist.
    Stopped,
    /// Failed, with the platform's reason in the detail.
    Failed,
}

/// The status of one deployment as `modelport status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointStatus {
    pub name: String,
    pub provider: String,
    pub health: Health,
    /// A human sentence: `pid 4242 on port 8080`, a FailureReason, ...
    pub detail: String,
    pub predict_url: Option<String>,
    pub model_digest: Option<String>,
    /// Unix seconds since the serving revision started.
    pub started_at: Option<u64>,
    /// True when a revision is recorded as pending: a deploy is under way or stopped half-way.
    pub pending: bool,
    /// The step its rollout was in, when one is recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_phase: Option<Phase>,
}

impl EndpointStatus {
    /// The status of `rev`, one of `state`'s revisions, as a provider found it.
    pub fn of(
        state: &DeploymentState,
        rev: &Revision,
        health: Health,
        detail: String,
    ) -> EndpointStatus {
        EndpointStatus {
            name: state.name.clone(),
            provider: state.provider.clone(),
            health,
            detail,
            predict_url: Some(rev.endpoint.predict_url.clone()),
            model_digest: Some(rev.model_digest.clone()),
            started_at: Some(rev.started_at),
            pending: state.pending.is_some(),
            rollout_phase: state.phase(),
        }
    }

    /// A deployment whose state records no revision at all.
    pub fn nothing_recorded(state: &DeploymentState, detail: &str) -> EndpointStatus {
        EndpointStatus {
            name: state.name.clone(),
            provider: state.provider.clone(),
            health: Health::Stopped,
            detail: detail.to_string(),
            predict_url: None,
            model_digest: None,
            started_at: None,
            pending: state.pending.is_some(),
            rollout_phase: state.phase(),
        }
    }
}

/// The revision `which` of `state`, or the NotFound error every provider gives.
pub fn require_revision(state: &DeploymentState, which: Which) -> ProviderResult<&Revision> {
    state
        .revision(which)
        .ok_or_else(|| ProviderError::NotFound {
            what: format!(
                "a {} revision of deployment {:?}",
                which.as_str(),
                state.name
            ),
        })
}

/// Options of [`Provider::destroy`].
#[derive(Debug, Clone, Default)]
pub struct DestroyOptions {
    /// Also delete the uploaded artifacts (S3 or GCS objects, the local artifact store).
    pub purge: bool,
}

/// What `destroy` removed, and what it found still there afterwards.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DestroyReport {
    pub removed: Vec<String>,
    /// Resources of the deployment that still exist after the destroy, found by
    /// listing the provider's resources by tag or label; empty when all is gone.
    pub leftover: Vec<String>,
}

/// How a provider reports progress; only the CLI renders it.
pub trait Reporter: Send + Sync {
    /// A step begins, for example `starting server`.
    fn on_start(&self, _step: &str) {}
    /// Something happened within the current step.
    fn on_progress(&self, _message: &str) {}
    /// The current step ended.
    fn on_finish(&self, _step: &str) {}
    /// What the step waits on (`endpoint iris`) reached a new status, `elapsed` into a
    /// wait that may last `deadline`. Reported once per change; a reporter for people
    /// shows every one (they are few and can be minutes apart).
    fn on_status(
        &self,
        what: &str,
        status: &str,
        elapsed: std::time::Duration,
        deadline: std::time::Duration,
    ) {
        let _ = deadline;
        self.on_progress(&format!("{what}: {status} ({} s)", elapsed.as_secs()));
    }
    /// `done` of `total` units of a transfer (`uploading s3://…/model.tar.gz`, the
    /// samples an endpoint has answered), reported as it moves, from 0 when it
    /// begins; `done == total` ends it. Reports of one transfer come in order and
    /// from one task at a time.
    fn on_amount(&self, what: &str, done: u64, total: u64, unit: Unit) {
        if done == total {
            self.on_progress(&format!("{what}: {}", unit.format(total)));
        }
    }
}

/// What an amount of [`Reporter::on_amount`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Samples,
}

impl Unit {
    /// `921 B`, `1.5 MB` ([`crate::units::decimal_bytes`]), `10000 samples`.
    pub fn format(self, n: u64) -> String {
        match self {
            Unit::Samples => format!("{n} samples"),
            Unit::Bytes => crate::units::decimal_bytes(n),
        }
    }
}

/// A reporter that reports nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {}

/// Why a provider call failed, named for what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The spec asks for something this provider cannot do.
    #[error("{message}")]
    InvalidInput {
        message: String,
        hint: Option<String>,
    },
    /// The deployment or one of its resources does not exist.
    #[error("{what} does not exist")]
    NotFound { what: String },
    /// The provider lacks a capability.
    #[error("the {provider} provider cannot {what}")]
    NotSupported { provider: String, what: String },
    /// The endpoint did not become ready; `log_tail` holds its last log lines.
    #[error("{message}")]
    StartupFailed {
        message: String,
        log_tail: Vec<String>,
        hint: Option<String>,
    },
    /// Talking to the endpoint failed.
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error(transparent)]
    Core(#[from] crate::Error),
    #[error("{message}")]
    Other {
        message: String,
        hint: Option<String>,
    },
}

impl ProviderError {
    pub fn other(message: impl Into<String>) -> ProviderError {
        ProviderError::Other {
            message: message.into(),
            hint: None,
        }
    }

    /// A likely fix, printed by the CLI as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            ProviderError::InvalidInput { hint, .. }
            | ProviderError::StartupFailed { hint, .. }
            | ProviderError::Other { hint, .. } => hint.clone(),
            ProviderError::NotFound { .. } => {
                Some("`modelport list` shows the deployments recorded here".into())
            }
            ProviderError::Predict(e) => e.hint(),
            ProviderError::Core(e) => e.hint(),
            ProviderError::NotSupported { .. } => None,
        }
    }
}

pub type ProviderResult<T> = std::result::Result<T, ProviderError>;

/// A deployment target: this machine, SageMaker, Vertex AI.
///
/// A provider implements the steps of one rollout; the sequence itself (record,
/// create, verify, move traffic, retire, or roll back) lives in `modelport-deploy`
/// and is the same for every provider. The state's `rollout` field says which step
/// a deployment is in; providers carry it through unchanged.
///
/// # Contract
/// Every implementation guarantees:
/// - `plan` changes nothing, anywhere, and says in its [`RolloutPlan`] how the new
///   revision will be reached for its comparison and when traffic moves.
/// - `apply` brings the planned revision up as `pending` next to the active one,
///   recording it in the state before it creates anything, so a crash at any point
///   leaves state that `rollback`, a re-run or `destroy` finishes from. With a
///   before-traffic plan, no production request can reach the pending revision when
///   `apply` returns (and on a first deploy, where the platform allows it, none
///   reaches the new endpoint either); with an after-traffic or unverified plan the
///   provider may move the traffic as part of `apply`.
/// - `endpoint(state, Pending)` reaches the pending revision only (and never the
///   active one), and checks that every answer carries the pending revision's
///   identity (see [`crate::Expected`]).
/// - `move_traffic` sends all production traffic to the pending revision; the
///   active one stays up until `retire`.
/// - `retire` removes the previous revision and makes the pending one active.
/// - `rollback` sends the traffic back to the active revision (when it had moved)
///   and removes the pending one; the active one never stops serving.
/// - Every step is idempotent, and each tolerates a previous attempt of any step
///   that stopped half-way (a crash, a Ctrl-C).
/// - `destroy` removes every resource the state records and then the state itself;
///   resources that are already gone are not an error.
/// - State is persisted by the provider after every step that creates or removes
///   something, through the workspace it was built with.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The name used with `--provider` and recorded in state.
    fn name(&self) -> &'static str;

    /// What `apply` would do for `spec` and `artifact`, given the recorded state,
    /// rolled out in `mode`.
    async fn plan(
        &self,
        spec: &DeploymentSpec,
        artifact: &ArtifactRef,
        state: Option<&DeploymentState>,
        mode: RolloutMode,
    ) -> ProviderResult<Plan>;

    /// Brings the planned revision up as `pending`; returns the new state.
    async fn apply(&self, plan: &Plan, reporter: &dyn Reporter) -> ProviderResult<DeploymentState>;

    /// Sends production traffic to the pending revision; the active one stays up.
    async fn move_traffic(
        &self,
        state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState>;

    /// Removes the previous revision; the pending one becomes the active one.
    async fn retire(
        &self,
        state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState>;

    /// Sends the traffic back to the active revision and removes the pending one.
    async fn rollback(
        &self,
        state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState>;

    /// How the deployment is doing.
    async fn status(&self, state: &DeploymentState) -> ProviderResult<EndpointStatus>;

    /// A predictor that sends requests to one revision the way the platform's
    /// clients would, checking on every answer that this revision gave it.
    async fn endpoint(
        &self,
        state: &DeploymentState,
        which: Which,
    ) -> ProviderResult<Box<dyn Predictor>>;

    /// Removes every resource of the deployment, then its state; afterwards looks
    /// for anything of the deployment that is left and reports it.
    async fn destroy(
        &self,
        state: DeploymentState,
        options: &DestroyOptions,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DestroyReport>;

    /// Deployments that exist on the provider, found by their tags or labels even
    /// without local state. `spec` says which account, region or emulator to ask.
    async fn discover(
        &self,
        _spec: Option<&DeploymentSpec>,
    ) -> ProviderResult<Vec<EndpointStatus>> {
        Err(ProviderError::NotSupported {
            provider: self.name().to_string(),
            what: "list deployments without local state".into(),
        })
    }

    /// The least-privilege permissions for the user running modelport and for the
    /// identity the endpoint runs as, as JSON.
    fn iam_policy(&self, _spec: &DeploymentSpec) -> ProviderResult<serde_json::Value> {
        Err(ProviderError::NotSupported {
            provider: self.name().to_string(),
            what: "print an IAM policy (it needs no cloud permissions)".into(),
        })
    }

    /// What a deploy of `spec` here would need, checked without changing anything
    /// (`modelport doctor`): credentials and where they come from, region, bucket,
    /// the identity the endpoint runs as, the platform's API and the image registry.
    /// Each check stands alone: one that fails does not hide the others it does not
    /// depend on.
    async fn doctor(&self, spec: &DeploymentSpec) -> Vec<Check>;
}

/// How one `doctor` check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckLevel {
    Ok,
    /// A deploy may still work, or works with a default the user may not want.
    Warn,
    /// A deploy would fail.
    Fail,
}

/// One line of `modelport doctor`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked: `credentials`, `bucket`, ...
    pub what: String,
    pub level: CheckLevel,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    pub fn ok(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            what: what.into(),
            level: CheckLevel::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn warn(
        what: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            what: what.into(),
            level: CheckLevel::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn fail(what: impl Into<String>, detail: impl Into<String>, hint: Option<String>) -> Check {
        Check {
            what: what.into(),
            level: CheckLevel::Fail,
            detail: detail.into(),
            hint,
        }
    }

    /// A failed check from the error the operation it stands for returned.
    pub fn failed(what: impl Into<String>, err: &ProviderError) -> Check {
        Check::fail(what, err.to_string(), err.hint())
    }
}
