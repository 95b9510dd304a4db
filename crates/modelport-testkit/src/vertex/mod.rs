//! A strict fake of Vertex AI's REST API (model, endpoint and prediction
//! services) for tests and for trying the GCP flow without an account.
//!
//! Paths are Vertex's: `/v1/projects/{p}/locations/{l}/models:upload`,
//! `.../endpoints/{id}:deployModel`, `:predict`, `:rawPredict` and so on; the same
//! paths without `/v1` are not served, because the official crate always sends
//! them. Long-running operations are answered at `GET /v1/{name}` and at
//! `GET /ui/{name}`, where the official Rust crate polls them.
//!
//! Every request body is checked against the method's request schema in the
//! official discovery document (`aiplatform.v1.json` from google-api-python-client)
//! before it is handled: unknown fields, missing `Required.` fields, enum values
//! (names or integers, because the crate sends `$alt=json;enum-encoding=int`) and
//! JSON types are refused with Google's `INVALID_ARGUMENT` wording.
//!
//! deployModel runs the real `modelport serve` under Vertex's container contract
//! (`AIP_HTTP_PORT`, `AIP_HEALTH_ROUTE`, `AIP_PREDICT_ROUTE`, `AIP_STORAGE_URI`,
//! ...), and `:predict` / `:rawPredict` forward to it, the endpoint's traffic split
//! choosing which deployed model answers. IAM's `GET /v1/projects/-/serviceAccounts/EMAIL`
//! is answered too, from [`VertexConfig::service_accounts`] (what `modelport doctor`
//! reads). `/_fake/...` is the fake's own API (faults, call log).

mod control;
mod data;
mod discovery;
mod http;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::background::Background;
use crate::servers::Servers;
use serde::{Deserialize, Serialize};

pub use discovery::{DISCOVERY_PATH, Discovery};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct VertexConfig {
    /// The `modelport` binary, run as `serve` for each deployed model.
    pub server_exe: PathBuf,
    /// A fake-gcs-server URL (JSON API) that `gs://` artifact URIs are read from;
    /// `None` refuses `gs://` artifacts at deploy time.
    pub gcs_upstream: Option<String>,
    /// How long an operation stays `done: false` before its work starts. A
    /// deployModel operation spends it in `PREPARING_MODEL`.
    pub operation_delay: Duration,
    /// How long a server may take to answer its health route before the deployment
    /// fails with "Model server never became ready".
    pub startup_timeout: Duration,
    /// `aiplatform.v1.json`; `None` finds it in the test venv.
    pub discovery: Option<PathBuf>,
    /// The service accounts IAM knows (their email, and whether each is disabled).
    pub service_accounts: Vec<(String, bool)>,
    /// The crash and fault points of the calls this fake sees; share it with the
    /// Cloud Storage proxy ([`crate::FakeGcs::start_with`]) and a test.
    pub tripwire: crate::Tripwire,
}

impl VertexConfig {
    /// Defaults for tests: one-second operations, a 60 s startup deadline, no GCS.
    pub fn new(server_exe: impl Into<PathBuf>) -> VertexConfig {
        VertexConfig {
            server_exe: server_exe.into(),
            gcs_upstream: None,
            operation_delay: Duration::from_secs(1),
            startup_timeout: Duration::from_secs(60),
            discovery: None,
            service_accounts: Vec::new(),
            tripwire: crate::Tripwire::default(),
        }
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// 429 `RESOURCE_EXHAUSTED` naming the serving CPU quota. On deployModel the
    /// request itself is refused, as Vertex checks quota before it starts.
    QuotaExceeded,
    /// 429 `RESOURCE_EXHAUSTED` "Quota exceeded ... online prediction requests"
    /// (a rate limit: retrying later helps).
    TooManyRequests,
    /// 503 `UNAVAILABLE`.
    Unavailable,
    /// The request waits this long before it is handled.
    Delay(Duration),
    /// The next deployModel starts a server that never answers its health route,
    /// so the operation fails after the startup timeout.
    ServerNeverReady,
    /// A prediction is answered, but names a deployed model that is not the one that
    /// answered (an answer whose identity cannot be trusted).
    ForeignAnswer,
}

/// A fault for the next `times` requests of `method` (`"*"` for any).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// A method name as in the discovery document (`models.upload`,
    /// `endpoints.deployModel`, `endpoints.predict`, ...), or `"*"`.
    pub method: String,
    pub kind: FaultKind,
    /// How many requests it affects.
    pub times: u32,
}

impl Fault {
    /// A fault for the next request of `method`.
    pub fn new(method: impl Into<String>, kind: FaultKind) -> Fault {
        Fault {
            method: method.into(),
            kind,
            times: 1,
        }
    }

    /// Affects the next `n` requests instead of one.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }

    fn matches(&self, method: &str) -> bool {
        self.method == "*" || self.method == method
    }
}

/// The JSON form of a fault for `POST /_fake/faults`:
/// `{"method": "endpoints.predict", "kind": "TooManyRequests", "times": 2}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    pub method: String,
    /// `QuotaExceeded`, `TooManyRequests`, `Unavailable`, `Delay` (with
    /// `delay_ms`), `ServerNeverReady` or `ForeignAnswer`.
    pub kind: String,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub times: Option<u32>,
}

impl TryFrom<FaultSpec> for Fault {
    type Error = String;

    fn try_from(spec: FaultSpec) -> Result<Fault, String> {
        let kind = match spec.kind.as_str() {
            "QuotaExceeded" => FaultKind::QuotaExceeded,
            "TooManyRequests" => FaultKind::TooManyRequests,
            "Unavailable" => FaultKind::Unavailable,
            "Delay" => FaultKind::Delay(Duration::from_millis(
                spec.delay_ms.ok_or("a Delay fault needs delay_ms")?,
            )),
            "ServerNeverReady" => FaultKind::ServerNeverReady,
            "ForeignAnswer" => FaultKind::ForeignAnswer,
            other => {
                return Err(format!(
                    "unknown fault kind {other:?}; one of QuotaExceeded, TooManyRequests, \
                     Unavailable, Delay, ServerNeverReady, ForeignAnswer"
                ));
            }
        };
        Ok(Fault {
            method: spec.method,
            kind,
            times: spec.times.unwrap_or(1),
        })
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The discovery method (`models.upload`, `endpoints.predict`,
    /// `operations.get`), or `unknown`.
    pub method: String,
    /// The resource name the request names, when it names one.
    pub name: Option<String>,
    /// The HTTP status the fake answered.
    pub status: u16,
}

/// One prediction the fake answered: which endpoint was asked and which deployed
/// model answered. Tests count these to prove that no production request reached
/// a revision before its comparison passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prediction {
    /// The index of this request in [`FakeVertex::calls`].
    pub seq: usize,
    /// `projects/P/locations/L/endpoints/E`.
    pub endpoint: String,
    /// The deployed model whose server answered.
    pub deployed_model_id: String,
    pub status: u16,
}

/// State shared by the HTTP handlers and background tasks.
pub(crate) struct Shared {
    config: VertexConfig,
    discovery: Arc<Discovery>,
    state: Mutex<control::State>,
    faults: Mutex<Vec<Fault>>,
    calls: Mutex<Vec<Call>>,
    predictions: Mutex<Vec<Prediction>>,
    servers: Servers,
    http: reqwest::Client,
    workdir: PathBuf,
}

impl Shared {
    /// Takes one use of the first fault that matches `method` and `accept`.
    fn take_fault(&self, method: &str, accept: impl Fn(&FaultKind) -> bool) -> Option<FaultKind> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let i = faults
            .iter()
            .position(|f| f.times > 0 && f.matches(method) && accept(&f.kind))?;
        let kind = faults[i].kind.clone();
        faults[i].times -= 1;
        if faults[i].times == 0 {
            faults.remove(i);
        }
        Some(kind)
    }

    /// Logs a call; returns its index in the log.
    fn record(&self, call: Call) -> usize {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.push(call);
        calls.len() - 1
    }
}

/// A running fake, on its own thread and tokio runtime; stops its server and every
/// serving process it started when dropped.
pub struct FakeVertex {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Background,
    _workdir: tempfile::TempDir,
}

impl FakeVertex {
    /// Loads the discovery document, binds 127.0.0.1 on a free port and serves.
    pub fn start(config: VertexConfig) -> anyhow::Result<FakeVertex> {
        let discovery = Discovery::shared(config.discovery.as_deref())?;
        anyhow::ensure!(
            config.server_exe.is_file(),
            "the data-plane server {} does not exist; build it with `cargo build -p modelport-cli`",
            config.server_exe.display()
        );
        let workdir = tempfile::Builder::new()
            .prefix("modelport-fake-vertex-")
            .tempdir()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let shared = Arc::new(Shared {
            config,
            discovery,
            state: Mutex::new(control::State::default()),
            faults: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            predictions: Mutex::new(Vec::new()),
            servers: Servers::default(),
            http,
            workdir: workdir.path().to_path_buf(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = http::router(shared.clone());
        let thread_shared = shared.clone();
        let server = Background::serve("fake-vertex", listener, app, move || async move {
            thread_shared.servers.stop_all().await;
        })?;
        tracing::info!(url = %format!("http://{addr}"), "fake Vertex AI listening");
        Ok(FakeVertex {
            addr,
            shared,
            server,
            _workdir: workdir,
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint to give the aiplatform client (it
    /// appends `/v1/...`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The discovery document requests are checked against.
    pub fn discovery(&self) -> &Discovery {
        &self.shared.discovery
    }

    /// Adds a fault; faults are used in the order they were added.
    pub fn inject(&self, fault: Fault) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fault);
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Every request received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every prediction answered so far, in order.
    pub fn predictions(&self) -> Vec<Prediction> {
        self.shared
            .predictions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The pids of the serving processes currently running.
    pub fn server_pids(&self) -> Vec<u32> {
        self.shared.servers.pids()
    }

    /// What takes production traffic now: every deployed model with a share of
    /// its endpoint's traffic split.
    pub fn serving(&self) -> Vec<crate::Serving> {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (name, rec) in &state.endpoints {
            for d in &rec.deployed {
                let id = d.resource.get("id").and_then(|v| v.as_str()).unwrap_or("");
                let share = rec.traffic.get(id).copied().unwrap_or(0);
                if share > 0 && !d.undeploying {
                    out.push(crate::Serving {
                        endpoint: name.clone(),
                        target: id.to_string(),
                        weight: share as f64,
                        port: d.port,
                    });
                }
            }
        }
        out
    }

    /// Every resource that exists, one line each, sorted, by display name (ids
    /// differ from run to run): `model NAME`, `endpoint NAME`, `deployed ENDPOINT
    /// MODEL PERCENT`.
    pub fn resources(&self) -> Vec<String> {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let display = |r: &serde_json::Map<String, serde_json::Value>| {
            r.get("displayName")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_string()
        };
        let model_name = |name: &str| {
            state
                .models
                .get(name.split('@').next().unwrap_or(name))
                .map(|m| display(&m.resource))
                .unwrap_or_else(|| format!("(missing {name})"))
        };
        let mut out = Vec::new();
        for m in state.models.values() {
            out.push(format!("model {}", display(&m.resource)));
        }
        for rec in state.endpoints.values() {
            let endpoint = display(&rec.resource);
            out.push(format!("endpoint {endpoint}"));
            for d in &rec.deployed {
                let id = d.resource.get("id").and_then(|v| v.as_str()).unwrap_or("");
                out.push(format!(
                    "deployed {endpoint} {} {}%",
                    model_name(&d.model),
                    rec.traffic.get(id).copied().unwrap_or(0)
                ));
            }
        }
        out.sort();
        out
    }
}

impl Drop for FakeVertex {
    fn drop(&mut self) {
        self.shared.servers.close();
        self.server.stop();
    }
}
