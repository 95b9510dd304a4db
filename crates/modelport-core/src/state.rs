//! What a deployment left behind: one JSON file per deployment under
//! `.modelport/state/`, written atomically, so that a re-run, `status`, `compare`
//! or `destroy` can pick up from wherever the last command stopped.
//!
//! A deployment has at most two revisions: the `active` one that serves, and a
//! `pending` one being brought up next to it (blue/green). A command that dies
//! between the two leaves both recorded, and the next command finishes or undoes
//! the switch instead of leaking a server or a cloud endpoint.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::VerifySpec;

/// The `format` of every state file this version writes.
pub const STATE_FORMAT: &str = "modelport-state/v1";

/// The wire form a deployment's predict route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `{"instances": [...]}` → `{"predictions": [...]}` (SageMaker JSON, Vertex, TF-Serving).
    Instances,
    /// Open Inference Protocol v2 `{"inputs": [...]}` → `{"outputs": [...]}`.
    Oip,
}

/// How to reach one revision's server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRef {
    /// The URL predictions are POSTed to.
    pub predict_url: String,
    /// The URL that answers 200 once the server is ready.
    pub health_url: String,
    pub protocol: Protocol,
    /// The largest request body the endpoint accepts, in bytes.
    pub max_request_bytes: u64,
    /// How long one request may take, in seconds.
    pub timeout_s: u32,
}

/// One version of a deployment: an artifact, a spec and the resources running them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// sha256 of `model.tar.gz`, the content address of the artifact.
    pub artifact_digest: String,
    /// sha256 of the artifact's `modelport.json`: what the server reports in its
    /// `x-modelport-digest` header, since it sees the unpacked files and not the archive.
    pub model_digest: String,
    /// sha256 of the spec's canonical JSON.
    pub spec_hash: String,
    pub endpoint: EndpointRef,
    /// How `compare` checks this revision, as the spec said at deploy time (sample
    /// paths made absolute).
    pub verify: VerifySpec,
    /// Unix seconds when the revision was started.
    pub started_at: u64,
    /// The provider's own record of what it created (a pid and port, ARNs, resource
    /// names); other code treats it as opaque.
    pub resources: serde_json::Value,
}

/// Everything modelport knows about one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    pub name: String,
    /// The provider that owns the resources, for example `local`.
    pub provider: String,
    /// The `modelport.yaml` of the last deploy.
    pub spec_file: PathBuf,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
    /// The revision that serves traffic.
    pub active: Option<Revision>,
    /// A revision being brought up next to `active`, not yet switched to.
    pub pending: Option<Revision>,
    /// Where the rollout of `pending` stands; `None` when no rollout is under way.
    /// Written before each step, so that a command that dies anywhere leaves what
    /// the next one needs to finish or undo it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// The steps of a rollout, in order. A rollout that stops before the traffic has
/// moved to a verified revision is undone; one that stops after is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The pending revision's resources are being created. No production request
    /// reaches it (unless the mode is after-traffic and the traffic has moved).
    Starting,
    /// The pending revision is being compared with the local reference.
    Verifying,
    /// Production traffic is being moved to the pending revision.
    MovingTraffic,
    /// Production traffic goes to the pending revision; the previous one is being removed.
    Retiring,
    /// The pending revision is being removed; the active one keeps (or gets back) the traffic.
    RollingBack,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Verifying => "verifying",
            Phase::MovingTraffic => "moving_traffic",
            Phase::Retiring => "retiring",
            Phase::RollingBack => "rolling_back",
        }
    }
}

/// How a rollout proves its revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutMode {
    /// Compared while no production request can reach it; traffic moves after.
    BeforeTraffic,
    /// Traffic moves first (`verify.mode: after-traffic`), then the comparison runs.
    AfterTraffic,
    /// No comparison (`deploy --no-verify`).
    Unverified,
}

impl RolloutMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutMode::BeforeTraffic => "before_traffic",
            RolloutMode::AfterTraffic => "after_traffic",
            RolloutMode::Unverified => "unverified",
        }
    }

    /// True when production traffic moves before any comparison.
    pub fn traffic_first(self) -> bool {
        !matches!(self, RolloutMode::BeforeTraffic)
    }
}

/// One rollout of a pending revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub phase: Phase,
    pub mode: RolloutMode,
    /// True once the pending revision has passed its comparison (or the mode asks for none).
    pub verified: bool,
    /// True once production requests may reach the pending revision.
    pub traffic_moved: bool,
    /// Unix seconds.
    pub started_at: u64,
}

impl Rollout {
    pub fn new(mode: RolloutMode) -> Rollout {
        Rollout {
            phase: Phase::Starting,
            mode,
            verified: false,
            traffic_moved: false,
            started_at: unix_now(),
        }
    }

    /// True when a rollout that stopped here should be finished rather than undone:
    /// the revision passed and the traffic is moving or has moved to it.
    pub fn should_finish(&self) -> bool {
        self.verified && matches!(self.phase, Phase::MovingTraffic | Phase::Retiring)
    }
}

impl DeploymentState {
    pub fn new(name: &str, provider: &str, spec_file: &Path) -> DeploymentState {
        let now = unix_now();
        DeploymentState {
            format: STATE_FORMAT.to_string(),
            name: name.to_string(),
            provider: provider.to_string(),
            spec_file: spec_file.to_path_buf(),
            created_at: now,
            updated_at: now,
            active: None,
            pending: None,
            rollout: None,
        }
    }

    /// The phase of the rollout under way, if any.
    pub fn phase(&self) -> Option<Phase> {
        self.rollout.as_ref().map(|r| r.phase)
    }

    /// True when production requests may reach the pending revision.
    pub fn traffic_moved(&self) -> bool {
        self.rollout.as_ref().is_some_and(|r| r.traffic_moved)
    }

    /// The revision `which` names, if there is one.
    pub fn revision(&self, which: Which) -> Option<&Revision> {
        match which {
            Which::Active => self.active.as_ref(),
            Which::Pending => self.pending.as_ref(),
        }
    }
}

/// One of a deployment's two revision slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    Active,
    Pending,
}

impl Which {
    pub fn as_str(self) -> &'static str {
        match self {
            Which::Active => "active",
            Which::Pending => "pending",
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses the text of a state file; `path` names it in errors.
///
/// The file is outside input (another version of modelport, an edit, a disk that
/// filled up may have written it), so every error names the file and says what to do.
pub fn parse_state(text: &str, path: &Path) -> Result<DeploymentState> {
    // The format first: a file another version wrote may not have this
    // version's shape, and the fix for it is another modelport, not an edit.
    #[derive(Deserialize)]
    struct Format {
        format: Option<String>,
    }
    if let Ok(Format {
        format: Some(format),
    }) = serde_json::from_str::<Format>(text)
        && format != STATE_FORMAT
    {
        let hint = if format.starts_with("modelport-state/") {
            "it was written by another version of modelport: use that version (or a newer one) \
             for this deployment; the file is left as it is"
        } else {
            "this is not a modelport state file; move it away if it does not belong here"
        };
        return Err(Error::decode(
            "a state file",
            format!(
                "{}: format {format:?}, this modelport reads {STATE_FORMAT:?}; {hint}",
                path.display(),
            ),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        Error::decode(
            "a state file",
            format!(
                "{}: {e} (delete the file to forget the deployment; its resources then need cleaning up by hand)",
                path.display()
            ),
        )
    })
}

/// True when a process with this pid exists (it may belong to another user): a
/// scratch file named after it may still be in use.
pub fn process_runs(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}

/// The `.modelport` directory: state files, the artifact store and per-deployment
/// working directories.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// The directory name used under the current directory by default.
    pub const DIR_NAME: &'static str = ".modelport";

    pub fn new(root: impl Into<PathBuf>) -> Workspace {
        Workspace { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Artifacts by content: `artifacts/<sha256>/model.tar.gz`.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// Unpacked, verified models by manifest digest, shared by every deployment of them.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Per-deployment working files (server logs).
    pub fn deployment_dir(&self, name: &str) -> PathBuf {
        self.root.join("deployments").join(name)
    }

    /// Scratch space on the same file system, so that finished files can be renamed
    /// into place.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A new path in the scratch folder for this process, `tmp/PID-WHAT-N`
    /// (created by the caller), after removing the scratch of processes that no
    /// longer run ([`Workspace::sweep_scratch`]).
    pub fn scratch_path(&self, what: &str) -> Result<PathBuf> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = self.tmp_dir();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        self.sweep_scratch();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(dir.join(format!("{}-{what}-{n}", std::process::id())))
    }

    /// Removes what processes that no longer run left in the scratch folder (a
    /// crash or a kill runs no clean-up): `tmp/PID-…` entries and half-written
    /// state files (`state/.NAME.json.PID.tmp`) whose PID is not a live process.
    /// A PID another process reuses keeps its entry until that one ends.
    /// Returns what was removed.
    pub fn sweep_scratch(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let leftover = |name: &str| -> Option<u32> {
            if let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
                return rest.rsplit_once(".json.")?.1.parse().ok();
            }
            name.split('-').next()?.parse().ok()
        };
        for dir in [self.tmp_dir(), self.state_dir()] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = leftover(&name) else {
                    continue;
                };
                if pid == std::process::id() || process_runs(pid) {
                    continue;
                }
                let path = entry.path();
                let gone = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                if gone.is_ok() {
                    removed.push(path);
                }
            }
        }
        removed
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.state_dir().join(format!("{name}.json"))
    }

    /// The state of deployment `name`, or `None` when there is none.
    pub fn load_state(&self, name: &str) -> Result<Option<DeploymentState>> {
        let path = self.state_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        parse_state(&text, &path).map(Some)
    }

    /// Writes `state` atomically: a temporary file in the same directory, flushed to
    /// disk, then renamed over the old one. A crash leaves the old or the new file,
    /// never half of one.
    pub fn save_state(&self, state: &DeploymentState) -> Result<()> {
        let dir = self.state_dir();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = self.state_path(&state.name);
        let tmp = dir.join(format!(".{}.json.{}.tmp", state.name, std::process::id()));
        let mut state = state.clone();
        state.updated_at = unix_now();
        let mut bytes = serde_json::to_vec_pretty(&state).expect("state always serializes");
        bytes.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&path, e)
        })?;
        crate::failpoint::step("state.save");
        Ok(())
    }

    /// Forgets deployment `name`; no error when it was already gone.
    pub fn remove_state(&self, name: &str) -> Result<()> {
        let path = self.state_path(name);
        match fs::remove_file(&path) {
            Ok(()) => {
                crate::failpoint::step("state.remove");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Every recorded deployment, sorted by name.
    pub fn list_states(&self) -> Result<Vec<DeploymentState>> {
        let dir = self.state_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let file = entry.file_name();
            let file = file.to_string_lossy();
            if let Some(name) = file.strip_suffix(".json")
                && !name.starts_with('.')
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        let mut states = Vec::new();
        for name in names {
            if let Some(s) = self.load_state(&name)? {
                states.push(s);
            }
        }
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision() -> Revision {
        Revision {
            artifact_digest: "a".repeat(64),
            model_digest: "b".repeat(64),
            spec_hash: "c".repeat(64),
            endpoint: EndpointRef {
                predict_url: "http://127.0.0.1:1/invocations".into(),
                health_url: "http://127.0.0.1:1/ping".into(),
                protocol: Protocol::Instances,
                max_request_bytes: 6_291_456,
                timeout_s: 60,
            },
            verify: VerifySpec::default(),
            started_at: 1,
            resources: serde_json::json!({"pid": 42}),
        }
    }

    /// The pid of a process that has ended (a child that ran `true` and was reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn scratch_of_processes_that_no_longer_run_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path().join(".modelport"));
        fs::create_dir_all(ws.tmp_dir()).unwrap();
        fs::create_dir_all(ws.state_dir()).unwrap();
        let dead = dead_pid();
        let mine = std::process::id();
        // What a killed deploy leaves: a packaging folder and a half-written state file.
        let left = ws.tmp_dir().join(format!("{dead}-package-0"));
        fs::create_dir_all(left.join("inner")).unwrap();
        fs::write(left.join("inner/model.tar.gz"), b"half").unwrap();
        let half = ws.state_dir().join(format!(".iris.json.{dead}.tmp"));
        fs::write(&half, b"{\"format\"").unwrap();
        // What must stay: this process's own scratch, files of no pid, the state.
        let own = ws.tmp_dir().join(format!("{mine}-plan-3"));
        fs::create_dir_all(&own).unwrap();
        let other = ws.tmp_dir().join("notes.txt");
        fs::write(&other, b"x").unwrap();
        let state = ws.state_dir().join("iris.json");
        fs::write(&state, b"{}").unwrap();

        let mut removed = ws.sweep_scratch();
        removed.sort();
        let mut expected = vec![left, half];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(own.exists() && other.exists() && state.exists());
        // A fresh scratch path sweeps too, and names this process.
        let path = ws.scratch_path("package").unwrap();
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{mine}-package-"))
        );
    }

    #[test]
    fn state_round_trips_and_lists_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path().join(".modelport"));
        assert!(ws.load_state("iris").unwrap().is_none());
        assert!(ws.list_states().unwrap().is_empty());
        for name in ["zeta", "iris"] {
            let mut s = DeploymentState::new(name, "local", Path::new("modelport.yaml"));
            s.active = Some(revision());
            ws.save_state(&s).unwrap();
        }
        let loaded = ws.load_state("iris").unwrap().unwrap();
        assert_eq!(loaded.active, Some(revision()));
        let names: Vec<_> = ws
            .list_states()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["iris", "zeta"]);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(ws.state_dir()).unwrap().count(), 2);
        ws.remove_state("iris").unwrap();
        ws.remove_state("iris").unwrap();
        assert!(ws.load_state("iris").unwrap().is_none());
    }

    #[test]
    fn a_corrupt_or_foreign_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        fs::create_dir_all(ws.state_dir()).unwrap();
        fs::write(ws.state_dir().join("iris.json"), "{not json").unwrap();
        let err = ws.load_state("iris").unwrap_err().to_string();
        assert!(err.contains("iris.json"), "{err}");
        let mut s = DeploymentState::new("other", "local", Path::new("m.yaml"));
        s.format = "modelport-state/v9".into();
        fs::write(
            ws.state_dir().join("other.json"),
            serde_json::to_string(&s).unwrap(),
        )
        .unwrap();
        let err = ws.load_state("other").unwrap_err().to_string();
        assert!(err.contains("modelport-state/v9"), "{err}");
        // A newer version's file of another shape: the format is what is reported,
        // and the file is left alone.
        let newer = r#"{"format": "modelport-state/v2", "revisions": {"a": 1}}"#;
        fs::write(ws.state_dir().join("newer.json"), newer).unwrap();
        let err = ws.load_state("newer").unwrap_err().to_string();
        assert!(
            err.contains("newer.json: format \"modelport-state/v2\"")
                && err.contains("written by another version of modelport"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(ws.state_dir().join("newer.json")).unwrap(),
            newer
        );
        // A truncated file names the file.
        let mut s = DeploymentState::new("cut", "local", Path::new("m.yaml"));
        s.format = STATE_FORMAT.into();
        let whole = serde_json::to_string(&s).unwrap();
        fs::write(ws.state_dir().join("cut.json"), &whole[..whole.len() / 2]).unwrap();
        let err = ws.load_state("cut").unwrap_err().to_string();
        assert!(
            err.contains("cut.json") && err.contains("delete the file"),
            "{err}"
        );
    }
}
