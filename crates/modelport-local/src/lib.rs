//! The `local` provider: runs `modelport serve` on this machine, under the same
//! container contract (environment variables, routes, startup deadline) that
//! SageMaker or Vertex AI would give it, so that a deployment that works here has
//! exercised the image's real entry point.
//!
//! Everything lives under the workspace (`.modelport/`): the artifact store, the
//! unpacked models, one log per server and one state file per deployment.
//!
//! Each new revision's server starts on a free port of its own, where the rollout
//! compares it; no client knows that port, so no production request reaches it
//! before its comparison passes. With a fixed `provider.local.port`, the server is
//! started with `--handover-port PORT` and takes the fixed port only when
//! [`Provider::move_traffic`] sends it SIGUSR1, after the comparison. It binds the
//! port with `SO_REUSEPORT`, beside the previous server (which did the same), so the
//! port never stops answering; the previous server stops when it is retired.

pub mod process;
mod store;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use modelport_core::predictor::Predictor;
use modelport_core::provider::{
    ActionKind, ArtifactRef, Check, Copies, DestroyOptions, DestroyReport, EndpointStatus, Health,
    Plan, PlannedAction, Provider, ProviderError, ProviderResult, Reporter, RolloutPlan,
    require_revision,
};
use modelport_core::spec::{DeploymentSpec, Flavour};
use modelport_core::state::{
    DeploymentState, EndpointRef, Protocol, Revision, RolloutMode, Which, Workspace, unix_now,
};
use modelport_core::{Expected, TargetKind, env};
use modelport_verify::{HttpPredictor, HttpTarget};
use serde::{Deserialize, Serialize};

pub use process::STOP_GRACE;
pub use store::{copy_model, install, store_artifact, unpack_model};

/// Lines of a server's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 20;

/// What the local provider records about one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalResources {
    /// The server's pid; 0 while it is being started. The revision is recorded
    /// before its process exists, so that a crash in between leaves a server that
    /// [`LocalResources::server_pid`] finds by its `--revision` name.
    pub pid: u32,
    /// The port the server was started on (its own, until a hand-over).
    pub port: u16,
    pub flavour: Flavour,
    /// The unpacked, verified model the server reads.
    pub model_dir: PathBuf,
    /// The server's stdout and stderr.
    pub log: PathBuf,
    /// The name the server reports in `x-modelport-revision` (empty for servers
    /// started before modelport named them).
    #[serde(default)]
    pub revision: String,
    /// The fixed port the server takes over after its comparison, when the spec sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_port: Option<u16>,
}

impl LocalResources {
    fn of(rev: &Revision) -> Option<LocalResources> {
        serde_json::from_value(rev.resources.clone()).ok()
    }

    fn marker(&self) -> String {
        self.model_dir.display().to_string()
    }

    /// The recorded pid, or the pid of the server started with this revision's
    /// name when none was recorded (the command that started it stopped first).
    fn server_pid(&self) -> Option<u32> {
        match self.pid {
            0 => process::find_server(&self.revision, &self.marker()),
            pid => Some(pid),
        }
    }

    /// True when the server binds its fixed port with `SO_REUSEPORT`, so that the
    /// next revision can take it over while this one still answers.
    fn shares_port(&self) -> bool {
        self.handover_port.is_some()
    }
}

/// `url` with its loopback port changed to `port`.
fn on_port(url: &str, from: u16, port: u16) -> String {
    url.replacen(
        &format!("127.0.0.1:{from}"),
        &format!("127.0.0.1:{port}"),
        1,
    )
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
        let Some(pid) = res.server_pid() else {
            reporter.on_progress(&format!(
                "the server of revision {} on port {} was not running",
                res.revision, res.port
            ));
            return;
        };
        let outcome = process::stop(pid, &res.marker(), self.stop_grace).await;
        let what = match outcome {
            process::Stopped::AlreadyGone => "was not running",
            process::Stopped::Terminated => "stopped",
            process::Stopped::Killed => "did not stop within the grace period and was killed",
        };
        reporter.on_progress(&format!("server pid {pid} on port {} {what}", res.port));
    }

    /// Removes the store entries (archive and unpacked model) of `revisions` of
    /// deployment `name` that neither `keep` nor another recorded deployment
    /// uses: the store is shared by content. Returns the directories removed.
    fn release_store(
        &self,
        name: &str,
        revisions: &[&Revision],
        keep: &[&Revision],
    ) -> ProviderResult<Vec<String>> {
        let states = self.workspace.list_states()?;
        let used: Vec<&Revision> = states
            .iter()
            .filter(|s| s.name != name)
            .flat_map(|s| [&s.active, &s.pending])
            .flatten()
            .chain(keep.iter().copied())
            .collect();
        let mut removed = Vec::new();
        for rev in revisions {
            let dirs = [
                (
                    self.workspace.artifacts_dir().join(&rev.artifact_digest),
                    used.iter()
                        .any(|u| u.artifact_digest == rev.artifact_digest),
                ),
                (
                    self.workspace.models_dir().join(&rev.model_digest),
                    used.iter().any(|u| u.model_digest == rev.model_digest),
                ),
            ];
            for (dir, in_use) in dirs {
                if in_use || !dir.exists() {
                    continue;
                }
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| ProviderError::Core(modelport_core::Error::io(&dir, e)))?;
                modelport_core::failpoint::step("store.release");
                removed.push(dir.display().to_string());
            }
        }
        Ok(removed)
    }

    fn is_alive(rev: &Revision) -> bool {
        LocalResources::of(rev)
            .and_then(|r| Some((r.server_pid()?, r.marker())))
            .is_some_and(|(pid, marker)| process::is_alive(pid, &marker))
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
            // A test's crash points are the CLI's, not its servers'.
            env::MODELPORT_CRASH_AT,
            env::MODELPORT_STEPS,
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
        mode: RolloutMode,
    ) -> ProviderResult<Plan> {
        let spec_hash = modelport_package::spec_hash(spec);
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
                        reason: "replaced once the new server passes its comparison".into(),
                    });
                }
            }
        }
        let port = spec.provider.local.port;
        let traffic = match (port, mode) {
            (0, _) => "the new server listens on a port of its own; `status` and `compare` \
                       switch to it (and the old one stops) once it passes"
                .to_string(),
            (p, RolloutMode::BeforeTraffic) => format!(
                "port {p} is handed to the new server only after it passes (SO_REUSEPORT: the port never stops answering)"
            ),
            (p, _) => format!(
                "port {p} is handed to the new server before its comparison (verify.mode: after-traffic)"
            ),
        };
        Ok(Plan {
            name: spec.name.as_str().to_string(),
            provider: self.name().to_string(),
            actions,
            spec: spec.clone(),
            spec_hash,
            artifact: artifact.clone(),
            rollout: RolloutPlan {
                mode,
                verify_via: "the new server's own port, which no client knows".into(),
                traffic,
                stages: vec![Copies::of(1, 1)],
            },
            previous: state.cloned(),
        })
    }

    async fn apply(&self, plan: &Plan, reporter: &dyn Reporter) -> ProviderResult<DeploymentState> {
        let spec = &plan.spec;
        let mut state = plan.starting_state();
        if let Some(pending) = state.pending.take() {
            reporter.on_start("removing a server left by an interrupted deploy");
            self.stop_revision(&pending, reporter).await;
            self.save(&state)?;
        }
        // Only a leftover to remove: the active server is fine as it is.
        if !plan.actions.iter().any(|a| a.kind == ActionKind::Create) {
            return Ok(state);
        }

        let local = &spec.provider.local;
        let handover_port = (local.port != 0).then_some(local.port);
        if let Some(p) = handover_port {
            let held_by_us = state
                .active
                .as_ref()
                .filter(|a| Self::is_alive(a))
                .and_then(LocalResources::of)
                .is_some_and(|r| r.handover_port.unwrap_or(r.port) == p);
            if !held_by_us && !process::port_is_free(p) {
                return Err(ProviderError::InvalidInput {
                    message: format!(
                        "{}: provider.local.port {p} is in use by another process",
                        spec.file.display()
                    ),
                    hint: Some(
                        "stop whatever listens there, pick another port, or set `port: 0` for a free one"
                            .into(),
                    ),
                });
            }
        }

        reporter.on_start("storing the artifact");
        let (model_dir, _) = store::install(&self.workspace, &plan.artifact)?;

        // Always a port of its own: nobody sends it a request before its comparison.
        let port = process::free_port()
            .map_err(|e| ProviderError::other(format!("cannot find a free port: {e}")))?;
        let started_at = unix_now();
        // Unique per server, also for two revisions of one artifact started in the
        // same second: it is how answers say which server gave them.
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let revision_id = format!(
            "{millis}-{}-{}",
            &short(&plan.artifact.digest)[..8],
            &plan.spec_hash[..6.min(plan.spec_hash.len())]
        );
        let log = self
            .workspace
            .deployment_dir(&plan.name)
            .join(format!("server-{revision_id}.log"));
        let (mut command, endpoint) = self.server_command(spec, &model_dir, port, &revision_id);
        command.arg("--revision").arg(&revision_id);
        if let Some(p) = handover_port {
            command.arg("--handover-port").arg(p.to_string());
        }
        reporter.on_start(&format!(
            "starting the server on port {port} ({} contract){}",
            local.flavour.as_str(),
            handover_port.map_or(String::new(), |p| format!(
                "; it takes port {p} once it passes"
            ))
        ));
        // Recorded before the process exists (pid 0, found by its revision name)
        // and again with its pid, so that a crash or Ctrl-C at any moment leaves
        // nothing untracked.
        let mut resources = LocalResources {
            pid: 0,
            port,
            flavour: local.flavour,
            model_dir: model_dir.clone(),
            log: log.clone(),
            revision: revision_id.clone(),
            handover_port,
        };
        let mut revision = plan.revision(endpoint.clone(), resources.clone())?;
        revision.started_at = started_at;
        state.pending = Some(revision.clone());
        self.save(&state)?;
        let mut child = match process::spawn_detached(command, &log) {
            Ok(child) => child,
            Err(e) => {
                state.pending = None;
                self.save(&state)?;
                return Err(ProviderError::Other {
                    message: format!("cannot start {}: {e}", self.server.display()),
                    hint: None,
                });
            }
        };
        resources.pid = child.id();
        let recorded = serde_json::to_value(&resources)
            .map_err(|e| ProviderError::other(format!("cannot record the server: {e}")))
            .and_then(|value| {
                revision.resources = value;
                state.pending = Some(revision);
                self.save(&state)
            });
        if let Err(e) = recorded {
            // Not recorded with its pid: stop it rather than leave it to a search.
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }

        let deadline = Duration::from_secs(u64::from(local.startup_timeout_s.max(1)));
        let took = self
            .wait_ready(&mut child, &endpoint, &log, deadline, reporter)
            .await?;
        reporter.on_finish(&format!(
            "server pid {} ready in {} ms",
            child.id(),
            took.as_millis()
        ));
        Ok(state)
    }

    async fn move_traffic(
        &self,
        mut state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        let pending = require_revision(&state, Which::Pending)?.clone();
        let Some(new) = LocalResources::of(&pending) else {
            return Err(ProviderError::other(
                "the pending server's record is unreadable",
            ));
        };
        let Some(fixed) = new.handover_port else {
            // Its own port is where it serves: nothing to hand over.
            return Ok(state);
        };
        let health = on_port(&pending.endpoint.health_url, new.port, fixed);
        if !process::hand_over(new.pid, &new.marker()) {
            return Err(ProviderError::other(format!(
                "the new server (pid {}) is not running, so it cannot take port {fixed}; its log is {}",
                new.pid,
                new.log.display()
            )));
        }
        reporter.on_start(&format!("handing port {fixed} to the new server"));
        let old = state
            .active
            .as_ref()
            .filter(|a| Self::is_alive(a))
            .and_then(LocalResources::of)
            .filter(|o| o.pid != new.pid && o.handover_port.unwrap_or(o.port) == fixed);
        if let Some(o) = old.as_ref().filter(|o| !o.shares_port()) {
            // Started by a modelport that bound the port exclusively: it has to go first.
            reporter.on_progress(&format!(
                "the old server (pid {}) cannot share port {fixed}: stopping it first",
                o.pid
            ));
            let _ = process::stop(o.pid, &o.marker(), self.stop_grace).await;
        }
        wait_for_revision(&health, &new.revision, Duration::from_secs(30))
            .await
            .map_err(|why| ProviderError::StartupFailed {
                message: format!("the new server did not take over port {fixed}: {why}"),
                log_tail: process::log_tail(&new.log, LOG_TAIL_LINES),
                hint: Some(format!("the whole log is {}", new.log.display())),
            })?;
        if let Some(p) = state.pending.as_mut() {
            p.endpoint.predict_url = on_port(&p.endpoint.predict_url, new.port, fixed);
            p.endpoint.health_url = health;
        }
        self.save(&state)?;
        reporter.on_finish(&format!("the new server answers on port {fixed}"));
        Ok(state)
    }

    async fn retire(
        &self,
        mut state: DeploymentState,
        reporter: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        let Some(pending) = state.pending.take() else {
            return Ok(state);
        };
        let retired = state
            .active
            .take()
            .filter(|old| LocalResources::of(old) != LocalResources::of(&pending));
        if let Some(old) = &retired {
            reporter.on_start("stopping the previous server");
            self.stop_revision(old, reporter).await;
            // Its files are no server's now: out of the store, unless another
            // deployment (or the new revision) holds the same model. Before the
            // state forgets it, so that a crash in between leaves a retire to finish.
            match self.release_store(&state.name, &[old], &[&pending]) {
                Ok(dirs) => {
                    for dir in dirs {
                        tracing::debug!(%dir, "removed from the artifact store");
                    }
                }
                // The rollout is done; a file left in the store is not worth failing it.
                Err(e) => tracing::warn!("the previous revision's files stay in the store: {e}"),
            }
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
            let active_alive = state.active.as_ref().is_some_and(Self::is_alive);
            reporter.on_start(if active_alive {
                "stopping the new server; the previous one keeps serving"
            } else {
                "stopping the new server"
            });
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
                        serving_port(active, r),
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
        let expected = Expected {
            digest: format!("sha256:{}", rev.model_digest),
            revision: (!res.revision.is_empty()).then(|| res.revision.clone()),
            revision_kind: "server revision".into(),
        };
        Ok(Box::new(
            HttpPredictor::connect(target, Some(signature))
                .await?
                .expecting(expected),
        ))
    }

    async fn doctor(&self, spec: &DeploymentSpec) -> Vec<Check> {
        let mut checks = Vec::new();
        let root = self.workspace.root();
        // Asked, not tried: doctor creates nothing. A home that does not exist yet is
        // created by the first deploy in its nearest existing parent.
        let existing = root.ancestors().find(|p| p.exists()).unwrap_or(root);
        let writable = rustix::fs::access(existing, rustix::fs::Access::WRITE_OK);
        checks.push(match writable {
            Ok(()) if existing == root => {
                Check::ok("state", format!("{} is writable", root.display()))
            }
            Ok(()) => Check::ok(
                "state",
                format!(
                    "{} does not exist yet; deploy creates it in {}",
                    root.display(),
                    existing.display()
                ),
            ),
            Err(e) => Check::fail(
                "state",
                format!("cannot write in {}: {e}", existing.display()),
                Some(format!(
                    "state, artifacts and logs live in {}: make it writable, or point {} (or --home) elsewhere",
                    root.display(),
                    env::MODELPORT_HOME
                )),
            ),
        });
        let port = spec.provider.local.port;
        if port != 0 {
            let own = matches!(
                self.workspace.load_state(spec.name.as_str()),
                Ok(Some(state)) if state.provider == self.name()
            );
            checks.push(match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(_) => Check::ok("port", format!("127.0.0.1:{port} is free")),
                Err(_) if own => Check::ok(
                    "port",
                    format!(
                        "127.0.0.1:{port} is served by deployment `{}`, which a deploy hands over",
                        spec.name
                    ),
                ),
                Err(e) => Check::fail(
                    "port",
                    format!("127.0.0.1:{port} (provider.local.port) is taken: {e}"),
                    Some(format!(
                        "stop what listens there (`ss -ltnp 'sport = :{port}'`), or set provider.local.port: 0 for any free port"
                    )),
                ),
            });
        }
        checks.push(if self.server.is_file() {
            Check::ok(
                "server",
                format!("`{} serve` runs the endpoint", self.server.display()),
            )
        } else {
            Check::fail(
                "server",
                format!("{} is not a file", self.server.display()),
                Some("reinstall modelport (`cargo install --path crates/modelport-cli`)".into()),
            )
        });
        checks
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
        // Before the state goes: a crash in between leaves a destroy to finish.
        if options.purge {
            report
                .removed
                .extend(self.release_store(&state.name, &revisions, &[])?);
        }
        self.workspace.remove_state(&state.name)?;
        let dir = self.workspace.deployment_dir(&state.name);
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        report.leftover = revisions
            .iter()
            .filter(|r| Self::is_alive(r))
            .map(|r| format!("server {} is still running", describe(r)))
            .collect();
        Ok(report)
    }
}

/// The port a revision's clients use: the fixed one once it took it over.
fn serving_port(rev: &Revision, res: &LocalResources) -> u16 {
    match res.handover_port {
        Some(p) if rev.endpoint.health_url.contains(&format!("127.0.0.1:{p}/")) => p,
        _ => res.port,
    }
}

/// Polls `health_url` with a new connection each time until a 200 answer names
/// `revision`, or `within` passes. Other servers may share the port meanwhile.
async fn wait_for_revision(
    health_url: &str,
    revision: &str,
    within: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    while started.elapsed() < within {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| e.to_string())?;
        match client.get(health_url).send().await {
            Ok(r) => {
                let got = r
                    .headers()
                    .get(modelport_core::predictor::headers::REVISION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if r.status().is_success() && got == revision {
                    return Ok(());
                }
                last = format!("{health_url} answered {} from revision {got:?}", r.status());
            }
            Err(e) => last = format!("{health_url}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("{last} after {} s", within.as_secs()))
}

fn describe(rev: &Revision) -> String {
    match LocalResources::of(rev) {
        Some(r) => format!("pid {} on port {}", r.pid, serving_port(rev, &r)),
        None => "(unreadable)".into(),
    }
}
