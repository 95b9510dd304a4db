//! The `local` provider: runs `modelport serve` on this machine, under the same
//! container contract (environment variables, routes, startup deadline) that
//! SageMaker or Vertex AI would give it, so that a deployment that works here has
//! exercised the image's real entry point.
//!
//! Everything lives under the workspace (`.modelport/`): the artifact store, the
//! unpacked models, one log per server and one state file per deployment.

pub mod process;
mod store;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use modelport_core::predictor::Predictor;
use modelport_core::provider::{
    ActionKind, ArtifactRef, DestroyOptions, DestroyReport, EndpointStatus, Health, Plan,
    PlannedAction, Provider, ProviderError, ProviderResult, Reporter, require_revision,
};
use modelport_core::spec::{DeploymentSpec, Flavour};
use modelport_core::state::{
    DeploymentState, EndpointRef, Protocol, Revision, Which, Workspace, unix_now,
};
use modelport_core::{TargetKind, env};
use modelport_verify::{HttpPredictor, HttpTarget};
use serde::{Deserialize, Serialize};

pub use process::STOP_GRACE;
pub use store::{store_artifact, unpack_model};

/// Lines of a server's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 20;

/// What the local provider records about one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalResources {
    pub pid: u32,
    pub port: u16,
    pub flavour: Flavour,
    /// The unpacked, verified model the server reads.
    pub model_dir: PathBuf,
    /// The server's stdout and stderr.
    pub log: PathBuf,
}

impl LocalResources {
    fn of(rev: &Revision) -> Option<LocalResources> {
        serde_json::from_value(rev.resources.clone()).ok()
    }

    fn marker(&self) -> String {
        self.model_dir.display().to_string()
    }
}

/// Runs servers on this machine.
pub struct LocalProvider {
    workspace: Workspace,
    server: PathBuf,
    stop_grace: Duration,
}

impl LocalProvider {
    /// `server` is the `modelport` executable that provides `serve` (normally the
    /// running one).
    pub fn new(workspace: Workspace, server: impl Into<PathBuf>) -> LocalProvider {
        LocalProvider {
            workspace,
            server: server.into(),
            stop_grace: STOP_GRACE,
        }
    }

    /// How long a stopping server may take before it is killed.
    pub fn with_stop_grace(mut self, grace: Duration) -> LocalProvider {
        self.stop_grace = grace;
        self
    }

    fn save(&self, state: &DeploymentState) -> ProviderResult<()> {
        Ok(self.workspace.save_state(state)?)
    }

    async fn stop_revision(&self, rev: &Revision, reporter: &dyn Reporter) {
        let Some(res) = LocalResources::of(rev) else {
            return;
        };
        let outcome = process::stop(res.pid, &res.marker(), self.stop_grace).await;
        let what = match outcome {
            process::Stopped::AlreadyGone => "was not running",
            process::Stopped::Terminated => "stopped",
            process::Stopped::Killed => "did not stop within the grace period and was killed",
        };
        reporter.on_progress(&format!(
            "server pid {} on port {} {what}",
            res.pid, res.port
        ));
    }

    fn is_alive(rev: &Revision) -> bool {
        LocalResources::of(rev).is_some_and(|r| process::is_alive(r.pid, &r.marker()))
    }

    /// The command and environment for a server under `flavour`'s contract.
    fn server_command(
        &self,
        spec: &DeploymentSpec,
        model_dir: &Path,
        port: u16,
        revision_id: &str,
    ) -> (Command, EndpointRef) {
        let name = spec.name.as_str();
        let mut cmd = Command::new(&self.server);
        // The platform's variables come from the contract, not from this shell.
        for var in [
            env::SAGEMAKER_BIND_TO_PORT,
            env::AIP_HTTP_PORT,
            env::AIP_HEALTH_ROUTE,
            env::AIP_PREDICT_ROUTE,
            env::AIP_STORAGE_URI,
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(&spec.serving.env);
        cmd.arg("serve");
        let base = format!("http://127.0.0.1:{port}");
        let endpoint = match spec.provider.local.flavour {
            Flavour::Sagemaker => {
                // SageMaker unpacks the artifact into /opt/ml/model and runs `<image> serve`;
                // here the model directory stands in for /opt/ml/model.
                cmd.arg(model_dir)
                    .env(env::SAGEMAKER_BIND_TO_PORT, port.to_string());
                EndpointRef {
                    predict_url: format!("{base}/invocations"),
                    health_url: format!("{base}/ping"),
                    protocol: Protocol::Instances,
                    max_request_bytes: spec.serving.max_body_bytes,
                    timeout_s: spec.serving.timeout_s,
                }
            }
            Flavour::Vertex => {
                // Vertex hands the container its routes and model location in AIP_* variables.
                let route = format!("/v1/endpoints/{name}/deployedModels/{revision_id}");
                cmd.env(env::AIP_HTTP_PORT, port.to_string())
                    .env(env::AIP_HEALTH_ROUTE, &route)
                    .env(env::AIP_PREDICT_ROUTE, format!("{route}:predict"))
                    .env(env::AIP_STORAGE_URI, model_dir)
                    .env("AIP_MODE", "PREDICTION")
                    .env("AIP_DEPLOYED_MODEL_ID", revision_id)
                    .env("AIP_ENDPOINT_ID", name);
                EndpointRef {
                    predict_url: format!("{base}{route}:predict"),
                    health_url: format!("{base}{route}"),
                    protocol: Protocol::Instances,
                    max_request_bytes: spec
                        .serving
                        .max_body_bytes
                        .min(modelport_core::spec::VERTEX_PUBLIC_MAX_BODY_BYTES),
                    timeout_s: spec.serving.timeout_s,
                }
            }
        };
        cmd.args(["--host", "127.0.0.1", "--model-name", name])
            .arg("--max-body-bytes")
            .arg(spec.serving.max_body_bytes.to_string())
            .arg("--timeout-s")
            .arg(spec.serving.timeout_s.to_string())
            .arg("--engine")
            .arg(spec.serving.engine.as_str());
        (cmd, endpoint)
    }

    /// Polls the health route until 200, the process exits, or the deadline passes.
    async fn wait_ready(
        &self,
        child: &mut std::process::Child,
        endpoint: &EndpointRef,
        log: &Path,
        deadline: Duration,
        reporter: &dyn Reporter,
    ) -> ProviderResult<Duration> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ProviderError::other(e.to_string()))?;
        let started = Instant::now();
        let mut delay = Duration::from_millis(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ProviderError::StartupFailed {
                    message: format!("the server exited during start-up ({status})"),
                    log_tail: process::log_tail(log, LOG_TAIL_LINES),
                    hint: Some(format!("the whole log is {}", log.display())),
                });
            }
            if let Ok(r) = client.get(&endpoint.health_url).send().await
                && r.status().is_success()
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProviderError::StartupFailed {
                    message: format!(
                        "the server did not answer {} with 200 within {} s",
                        endpoint.health_url,
                        deadline.as_secs()
                    ),
                    log_tail: process::log_tail(log, LOG_TAIL_LINES),
                    hint: Some(
                        "raise provider.local.startup_timeout_s for a large model, or read the log"
                            .into(),
                    ),
                });
            }
            reporter.on_progress("waiting for the health check");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }
}

fn short(digest: &str) -> &str {
    let d = digest.strip_prefix("sha256:").unwrap_or(digest);
    &d[..d.len().min(12)]
}

#[async_trait::async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn plan(
        &self,
        spec: &DeploymentSpec,
        artifact: &ArtifactRef,
        state: Option<&DeploymentState>,
    ) -> ProviderResult<Plan> {
        let spec_hash = spec_hash(spec);
        let flavour = spec.provider.local.flavour.as_str();
        let mut actions = Vec::new();
        if let Some(pending) = state.and_then(|s| s.pending.as_ref()) {
            actions.push(PlannedAction {
                kind: ActionKind::Delete,
                resource: format!("server {}", describe(pending)),
                reason: "left over from an interrupted deploy".into(),
            });
        }
        let server = format!("server ({flavour} contract)");
        match state.and_then(|s| s.active.as_ref()) {
            None => actions.push(PlannedAction {
                kind: ActionKind::Create,
                resource: server,
                reason: format!("new deployment of artifact {}", short(&artifact.digest)),
            }),
            Some(active) if !Self::is_alive(active) => actions.push(PlannedAction {
                kind: ActionKind::Create,
                resource: server,
                reason: format!("the recorded server ({}) is not running", describe(active)),
            }),
            Some(active) => {
                let mut reasons = Vec::new();
                if active.artifact_digest != artifact.digest {
                    reasons.push(format!(
                        "new artifact {} (serving {})",
                        short(&artifact.digest),
                        short(&active.artifact_digest)
                    ));
                }
                if active.spec_hash != spec_hash {
                    reasons.push("modelport.yaml changed".to_string());
                }
                if reasons.is_empty() {
                    actions.push(PlannedAction {
                        kind: ActionKind::Keep,
                        resource: format!("server {}", describe(active)),
                        reason: "unchanged".into(),
                    });
                } else {
                    actions.push(PlannedAction {
                        kind: ActionKind::Create,
                        resource: server,
                        reason: reasons.join("; "),
                    });
                    actions.push(PlannedAction {
                        kind: ActionKind::Delete,
                        resource: format!("server {}", describe(active)),
                        reason: "replaced once the new server passes its checks".into(),
                    });
                }
            }
        }
        Ok(Plan {
            name: spec.name.as_str().to_string(),
            provider: self.name().to_string(),
            actions,
            spec: spec.clone(),
            spec_hash,
            artifact: artifact.clone(),
            previous: state.cloned(),
        })
    }

    async fn apply(&self, plan: &Plan, reporter: &dyn Reporter) -> ProviderResult<DeploymentState> {
        let spec = &plan.spec;
        let mut state = plan
            .previous
            .clone()
            .unwrap_or_else(|| DeploymentState::new(&plan.name, self.name(), &spec.file));
        state.spec_file = std::path::absolute(&spec.file).unwrap_or_else(|_| spec.file.clone());
        if let Some(pending) = state.pending.take() {
            reporter.on_start("removing a server left by an interrupted deploy");
            self.stop_revision(&pending, reporter).await;
            self.save(&state)?;
        }
        // Only a leftover to remove: the active server is fine as it is.
        if !plan.actions.iter().any(|a| a.kind == ActionKind::Create) {
            return Ok(state);
        }

        reporter.on_start("storing the artifact");
        let archive = store::store_artifact(&self.workspace, &plan.artifact)?;
        let (model_dir, _) =
            store::unpack_model(&self.workspace, &archive, &plan.artifact.model_digest)?;

        let local = &spec.provider.local;
        let port = if local.port == 0 {
            process::free_port()
                .map_err(|e| ProviderError::other(format!("cannot find a free port: {e}")))?
        } else {
            local.port
        };
        // One fixed port cannot hold two servers: the old one goes first.
        if let Some(active) = &state.active
            && LocalResources::of(active).is_some_and(|r| r.port == port)
        {
            reporter.on_progress(&format!(
                "provider.local.port is fixed at {port}: stopping the old server first"
            ));
            self.stop_revision(active, reporter).await;
            state.active = None;
            self.save(&state)?;
        }

        let started_at = unix_now();
        let revision_id = format!("{started_at}-{}", short(&plan.artifact.digest));
        let log = self
            .workspace
            .deployment_dir(&plan.name)
            .join(format!("server-{revision_id}.log"));
        let (command, endpoint) = self.server_command(spec, &model_dir, port, &revision_id);
        reporter.on_start(&format!(
            "starting the server on port {port} ({} contract)",
            local.flavour.as_str()
        ));
        let mut child =
            process::spawn_detached(command, &log).map_err(|e| ProviderError::Other {
                message: format!("cannot start {}: {e}", self.server.display()),
                hint: None,
            })?;
        let recorded = plan
            .revision(
                endpoint.clone(),
                LocalResources {
                    pid: child.id(),
                    port,
                    flavour: local.flavour,
                    model_dir: model_dir.clone(),
                    log: log.clone(),
                },
            )
            .and_then(|mut revision| {
                revision.started_at = started_at;
                state.pending = Some(revision);
                // Recorded before waiting, so that a crash or Ctrl-C leaves nothing
                // untracked.
                self.save(&state)
            });
        if let Err(e) = recorded {
            // Not recorded, so nothing else would ever stop it.
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }

        let deadline = Duration::from_secs(u64::from(local.startup_timeout_s.max(1)));
        match self
            .wait_ready(&mut child, &endpoint, &log, deadline, reporter)
            .await
        {
            Ok(took) => {
                reporter.on_finish(&format!(
                    "server pid {} ready in {} ms",
                    child.id(),
                    took.as_millis()
                ));
                Ok(state)
            }
            Err(e) => {
                state.pending = None;
                self.save(&state)?;
                Err(e)
            }
        }
    }

    async fn promote(
        &self,
        mut state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        let Some(pending) = state.pending.take() else {
            return Ok(state);
        };
        if let Some(old) = state.active.take()
            && LocalResources::of(&old) != LocalResources::of(&pending)
        {
            reporter.on_start("stopping the previous server");
            self.stop_revision(&old, reporter).await;
        }
        state.active = Some(pending);
        self.save(&state)?;
        Ok(state)
    }

    async fn rollback(
        &self,
        mut state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        if let Some(pending) = state.pending.take() {
            reporter.on_start("stopping the new server; the previous one keeps serving");
            self.stop_revision(&pending, reporter).await;
        }
        self.save(&state)?;
        Ok(state)
    }

    async fn status(&self, state: &DeploymentState) -> ProviderResult<EndpointStatus> {
        let Some(active) = state.active.as_ref().or(state.pending.as_ref()) else {
            return Ok(EndpointStatus::nothing_recorded(
                state,
                "no server recorded",
            ));
        };
        let res = LocalResources::of(active);
        let (health, detail) = match &res {
            None => (
                Health::Failed,
                "the state file's resources are unreadable".to_string(),
            ),
            Some(r) if !process::is_alive(r.pid, &r.marker()) => (
                Health::Stopped,
                format!(
                    "pid {} is not running; its log is {}",
                    r.pid,
                    r.log.display()
                ),
            ),
            Some(r) => {
                let healthy = reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .ok();
                let ok = match healthy {
                    Some(c) => c
                        .get(&active.endpoint.health_url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success()),
                    None => false,
                };
                let health = if ok {
                    Health::InService
                } else {
                    Health::Unhealthy
                };
                (
                    health,
                    format!(
                        "pid {} on port {}, {} contract",
                        r.pid,
                        r.port,
                        r.flavour.as_str()
                    ),
                )
            }
        };
        Ok(EndpointStatus::of(state, active, health, detail))
    }

    async fn endpoint(
        &self,
        state: &DeploymentState,
        which: Which,
    ) -> ProviderResult<Box<dyn Predictor>> {
        let rev = require_revision(state, which)?;
        let res = LocalResources::of(rev).ok_or_else(|| {
            ProviderError::other(format!(
                "the state of {:?} has no readable local resources",
                state.name
            ))
        })?;
        // The directory was verified when it was unpacked; the server re-verifies it
        // at start-up. Here only the signature is needed: no hashing.
        let manifest = modelport_package::read_dir_manifest(&res.model_dir).map_err(|e| {
            ProviderError::Other {
                message: e.to_string(),
                hint: e.hint(),
            }
        })?;
        let signature = match manifest.signature {
            Some(s) => s,
            None => {
                modelport_runtime::ModelInfo::from_path(&res.model_dir.join(&manifest.model.file))
                    .map_err(|e| ProviderError::other(e.to_string()))?
                    .signature
            }
        };
        let target = HttpTarget {
            label: state.name.clone(),
            kind: TargetKind::Deployment,
            predict_url: rev.endpoint.predict_url.clone(),
            protocol: rev.endpoint.protocol,
            max_request_bytes: rev.endpoint.max_request_bytes as usize,
            timeout: Duration::from_secs(u64::from(rev.endpoint.timeout_s.max(1)) + 5),
            concurrency: modelport_verify::http::DEFAULT_CONCURRENCY,
        };
        Ok(Box::new(
            HttpPredictor::connect(target, Some(signature)).await?,
        ))
    }

    async fn destroy(
        &self,
        state: DeploymentState,
        options: &DestroyOptions,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DestroyReport> {
        let mut report = DestroyReport::default();
        let revisions: Vec<&Revision> = [&state.pending, &state.active]
            .into_iter()
            .flatten()
            .collect();
        for rev in &revisions {
            self.stop_revision(rev, reporter).await;
            report.removed.push(format!("server {}", describe(rev)));
        }
        self.workspace.remove_state(&state.name)?;
        let dir = self.workspace.deployment_dir(&state.name);
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        if options.purge {
            // The artifact store is shared by content: keep what another deployment uses.
            let others = self.workspace.list_states()?;
            for rev in &revisions {
                let used = others.iter().any(|o| {
                    [&o.active, &o.pending]
                        .into_iter()
                        .flatten()
                        .any(|r| r.artifact_digest == rev.artifact_digest)
                });
                if used {
                    continue;
                }
                for dir in [
                    self.workspace.artifacts_dir().join(&rev.artifact_digest),
                    self.workspace.models_dir().join(&rev.model_digest),
                ] {
                    if dir.exists() {
                        std::fs::remove_dir_all(&dir).map_err(|e| {
                            ProviderError::other(format!("cannot remove {}: {e}", dir.display()))
                        })?;
                        report.removed.push(dir.display().to_string());
                    }
                }
            }
        }
        report.leftover = revisions
            .iter()
            .filter(|r| Self::is_alive(r))
            .map(|r| format!("server {} is still running", describe(r)))
            .collect();
        Ok(report)
    }
}

fn describe(rev: &Revision) -> String {
    match LocalResources::of(rev) {
        Some(r) => format!("pid {} on port {}", r.pid, r.port),
        None => "(unreadable)".into(),
    }
}

/// sha256 of the spec's canonical JSON: any change to what the spec says changes it.
pub fn spec_hash(spec: &DeploymentSpec) -> String {
    modelport_package::sha256_bytes(spec.canonical_json().as_bytes())
}
