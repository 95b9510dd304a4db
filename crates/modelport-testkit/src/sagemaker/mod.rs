//! A strict fake of SageMaker (control plane and runtime) that the official AWS
//! SDK crates talk to through an endpoint URL override.
//!
//! One URL serves everything; the request's SigV4 credential scope decides:
//! service `sagemaker` with `X-Amz-Target: SageMaker.<Operation>` is the control
//! plane (awsJson1.1), service `sagemaker` with `POST /endpoints/{name}/invocations`
//! is InvokeEndpoint (restJson1), anything else (S3) is forwarded verbatim to moto.
//! `/_fake/...` is the fake's own API (faults, call log).
//!
//! Every control-plane request is checked against botocore's service model before
//! it is handled, and in debug builds every response is checked against the
//! operation's output shape, so what the fake says is known to parse in the SDK.
//! Endpoints move through the real status machine, and their data plane is the
//! real `modelport serve`, started from the model's `ModelDataUrl` in moto.

mod control;
mod data;
mod ecr;
mod http;
mod shapes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::background::Background;
use crate::servers::Servers;
use serde::{Deserialize, Serialize};

pub use shapes::{MODEL_PATH, ServiceModel, validation_message};

/// SageMaker's real-time payload limit (6 MB).
pub const MAX_PAYLOAD_BYTES: usize = 6_291_456;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Where S3 requests are forwarded and model data is fetched from (moto's URL).
    pub s3_upstream: String,
    /// The `modelport` binary, run as `serve` for each endpoint variant.
    pub server_exe: PathBuf,
    /// The region in ARNs.
    pub region: String,
    /// The account in ARNs.
    pub account: String,
    /// How long an endpoint stays `Creating` (or `Updating`) before its data plane starts.
    pub create_delay: Duration,
    /// How long an endpoint stays `Deleting`; also how long a failed update stays
    /// `RollingBack`.
    pub delete_delay: Duration,
    /// How long a server may take to answer `/ping` when the variant does not set
    /// `ContainerStartupHealthCheckTimeoutInSeconds`.
    pub default_startup_timeout: Duration,
    /// botocore's `sagemaker/2017-07-24/service-2.json(.gz)`; `None` finds it in the
    /// test venv.
    pub service_model: Option<PathBuf>,
    /// The registry ECR's `GetAuthorizationToken` names as `proxyEndpoint`
    /// (`http://127.0.0.1:PORT`, a [`crate::Registry`]); `None` refuses it.
    pub registry: Option<String>,
    /// The crash and fault points of the calls this fake sees (S3 pass-through
    /// included); share it with a test to kill the client or fail a call at one.
    pub tripwire: crate::Tripwire,
}

impl FakeConfig {
    /// Defaults for tests: us-east-1, account 123456789012, one-second transitions.
    pub fn new(s3_upstream: impl Into<String>, server_exe: impl Into<PathBuf>) -> FakeConfig {
        FakeConfig {
            s3_upstream: s3_upstream.into(),
            server_exe: server_exe.into(),
            region: "us-east-1".to_string(),
            account: "123456789012".to_string(),
            create_delay: Duration::from_secs(1),
            delete_delay: Duration::from_secs(1),
            default_startup_timeout: Duration::from_secs(60),
            service_model: None,
            registry: None,
            tripwire: crate::Tripwire::default(),
        }
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// 400 `ThrottlingException` "Rate exceeded" (the SDK retries it).
    Throttling,
    /// 400 `ResourceLimitExceeded` naming the instance quota.
    ResourceLimitExceeded,
    /// 500 `InternalFailure` (the SDK retries it).
    InternalError,
    /// The request waits this long before it is handled.
    Delay(Duration),
    /// The next endpoint create or update starts a data plane that never answers
    /// `/ping`, so it fails after the startup timeout.
    ServerNeverReady,
    /// InvokeEndpoint answers 429 `ModelNotReadyException`.
    ModelNotReady,
    /// InvokeEndpoint answers without the container's
    /// `X-Amzn-SageMaker-Custom-Attributes`, as a container that is not
    /// `modelport serve` would: the answer says nothing of what produced it.
    DropIdentity,
}

/// A fault for the next `times` requests of `operation` (`"*"` for any).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// An operation name such as `CreateEndpoint` or `InvokeEndpoint`, or `"*"`.
    pub operation: String,
    pub kind: FaultKind,
    /// How many requests it affects.
    pub times: u32,
}

impl Fault {
    /// A fault for the next request of `operation`.
    pub fn new(operation: impl Into<String>, kind: FaultKind) -> Fault {
        Fault {
            operation: operation.into(),
            kind,
            times: 1,
        }
    }

    /// Affects the next `n` requests instead of one.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }

    fn matches(&self, operation: &str) -> bool {
        self.operation == "*" || self.operation == operation
    }
}

/// The JSON form of a fault for `POST /_fake/faults`:
/// `{"operation": "CreateEndpoint", "kind": "Delay", "delay_ms": 1500, "times": 1}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpec {
    pub operation: String,
    /// `Throttling`, `ResourceLimitExceeded`, `InternalError`, `Delay`,
    /// `ServerNeverReady`, `ModelNotReady` or `DropIdentity`.
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
            "Throttling" => FaultKind::Throttling,
            "ResourceLimitExceeded" => FaultKind::ResourceLimitExceeded,
            "InternalError" => FaultKind::InternalError,
            "Delay" => FaultKind::Delay(Duration::from_millis(
                spec.delay_ms.ok_or("a Delay fault needs delay_ms")?,
            )),
            "ServerNeverReady" => FaultKind::ServerNeverReady,
            "ModelNotReady" => FaultKind::ModelNotReady,
            "DropIdentity" => FaultKind::DropIdentity,
            other => {
                return Err(format!(
                    "unknown fault kind {other:?}; one of Throttling, ResourceLimitExceeded, \
                     InternalError, Delay, ServerNeverReady, ModelNotReady, DropIdentity"
                ));
            }
        };
        Ok(Fault {
            operation: spec.operation,
            kind,
            times: spec.times.unwrap_or(1),
        })
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The operation (`CreateModel`, `InvokeEndpoint`), or `s3:METHOD` for a
    /// request passed through to S3.
    pub operation: String,
    /// The resource the request names (model, config or endpoint name, tagged
    /// ARN, or the S3 path), when it names one.
    pub name: Option<String>,
    /// The HTTP status the fake answered.
    pub status: u16,
}

/// One InvokeEndpoint the fake answered: who asked for what, and who answered.
/// Tests count these to prove that no production request (one without a
/// `TargetVariant`) reached a revision before its comparison passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// The index of this request in [`FakeSageMaker::calls`], so it can be placed
    /// before or after a control-plane call.
    pub seq: usize,
    pub endpoint: String,
    /// The variant the caller asked for; `None` for a request routed by the weights,
    /// as production clients send them.
    pub target_variant: Option<String>,
    /// The variant that answered.
    pub variant: Option<String>,
    /// The digest the answering container reported (before any fault dropped it).
    pub digest: Option<String>,
    pub status: u16,
}

/// What the runtime handler learned about an answer, passed to the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answered {
    pub variant: Option<String>,
    pub digest: Option<String>,
}

/// State shared by the HTTP handlers and background tasks.
pub(crate) struct Shared {
    config: FakeConfig,
    model: Arc<ServiceModel>,
    state: Mutex<control::State>,
    faults: Mutex<Vec<Fault>>,
    calls: Mutex<Vec<Call>>,
    invocations: Mutex<Vec<Invocation>>,
    /// ECR repositories by name, as `DescribeRepositories` shows them (plus `tags`).
    repositories: Mutex<std::collections::BTreeMap<String, serde_json::Value>>,
    servers: Servers,
    http: reqwest::Client,
    workdir: PathBuf,
}

impl Shared {
    /// Takes one use of the first fault that matches `operation` and `accept`.
    fn take_fault(
        &self,
        operation: &str,
        accept: impl Fn(&FaultKind) -> bool,
    ) -> Option<FaultKind> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let i = faults
            .iter()
            .position(|f| f.times > 0 && f.matches(operation) && accept(&f.kind))?;
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
pub struct FakeSageMaker {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Background,
    _workdir: tempfile::TempDir,
}

impl FakeSageMaker {
    /// Loads the service model, binds 127.0.0.1 on a free port and serves.
    pub fn start(config: FakeConfig) -> anyhow::Result<FakeSageMaker> {
        let model = ServiceModel::shared(config.service_model.as_deref())?;
        anyhow::ensure!(
            config.server_exe.is_file(),
            "the data-plane server {} does not exist; build it with `cargo build -p modelport-cli`",
            config.server_exe.display()
        );
        let workdir = tempfile::Builder::new()
            .prefix("modelport-fake-sagemaker-")
            .tempdir()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let shared = Arc::new(Shared {
            config,
            model,
            state: Mutex::new(control::State::default()),
            faults: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            invocations: Mutex::new(Vec::new()),
            repositories: Mutex::new(Default::default()),
            servers: Servers::default(),
            http,
            workdir: workdir.path().to_path_buf(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = http::router(shared.clone());
        let thread_shared = shared.clone();
        let server = Background::serve("fake-sagemaker", listener, app, move || async move {
            thread_shared.servers.stop_all().await;
        })?;
        tracing::info!(
            url = %format!("http://{addr}"),
            patterns_checked = shared.model.checked_patterns(),
            patterns_skipped = shared.model.skipped_patterns().len(),
            "fake SageMaker listening"
        );
        Ok(FakeSageMaker {
            addr,
            shared,
            server,
            _workdir: workdir,
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL for SageMaker, SageMaker Runtime and S3.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The service model requests are checked against.
    pub fn service_model(&self) -> &ServiceModel {
        &self.shared.model
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

    /// Creates an ECR repository as `CreateRepository` would: for a test that
    /// pushes an image to [`FakeConfig::registry`] itself and names it in `image_uri`.
    pub fn create_repository(&self, name: &str) -> anyhow::Result<()> {
        ecr::run(
            &self.shared,
            "CreateRepository",
            &serde_json::json!({"repositoryName": name}),
        )
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))
    }

    /// The ECR repositories created, with their scan setting and tags.
    pub fn repositories(&self) -> Vec<serde_json::Value> {
        self.shared
            .repositories
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The CreateModel requests of the models that exist now, as received.
    pub fn models(&self) -> Vec<serde_json::Value> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .models
            .values()
            .map(|m| serde_json::Value::Object(m.input.clone()))
            .collect()
    }

    /// The CreateEndpointConfig requests of the configurations that exist now.
    pub fn configs(&self) -> Vec<serde_json::Value> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .configs
            .values()
            .map(|c| serde_json::Value::Object(c.input.clone()))
            .collect()
    }

    /// Every request received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every InvokeEndpoint answered so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.shared
            .invocations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The pids of the serving processes currently running.
    pub fn server_pids(&self) -> Vec<u32> {
        self.shared.servers.pids()
    }

    /// What takes production traffic now: every variant with a weight above 0 of
    /// every endpoint that answers invocations.
    pub fn serving(&self) -> Vec<crate::Serving> {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for rec in state.endpoints.values() {
            if !matches!(rec.status, "InService" | "Updating" | "RollingBack") {
                continue;
            }
            for v in rec.live.iter().flat_map(|d| &d.variants) {
                if v.info.weight > 0.0 {
                    out.push(crate::Serving {
                        endpoint: rec.name.clone(),
                        target: v.info.name.clone(),
                        weight: v.info.weight,
                        port: v.port,
                    });
                }
            }
        }
        out
    }

    /// Every resource that exists, one line each, sorted: `model NAME`, `config
    /// NAME`, `endpoint NAME STATUS CONFIG`.
    pub fn resources(&self) -> Vec<String> {
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = state
            .models
            .values()
            .map(|m| format!("model {}", m.name))
            .chain(state.configs.values().map(|c| format!("config {}", c.name)))
            .chain(
                state
                    .endpoints
                    .values()
                    .map(|e| format!("endpoint {} {} {}", e.name, e.status, e.config_name)),
            )
            .collect();
        out.sort();
        out
    }
}

impl Drop for FakeSageMaker {
    fn drop(&mut self) {
        self.shared.servers.close();
        self.server.stop();
    }
}
