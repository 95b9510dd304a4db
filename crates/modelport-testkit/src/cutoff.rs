//! An endpoint that dies part-way: a reverse proxy that forwards the first `n`
//! requests to a server and then answers none (each later connection is dropped
//! without an answer), as a server that crashed in the middle of a comparison.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::background::Background;

struct Inner {
    upstream: String,
    limit: usize,
    seen: AtomicUsize,
    http: reqwest::Client,
}

/// The proxy; stops on drop.
pub struct Cutoff {
    addr: SocketAddr,
    inner: Arc<Inner>,
    _server: Background,
}

impl Cutoff {
    /// Forwards to `upstream` (`http://127.0.0.1:PORT`) the first `n` requests.
    pub fn start(upstream: &str, n: usize) -> anyhow::Result<Cutoff> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_string(),
            limit: n,
            seen: AtomicUsize::new(0),
            http: reqwest::Client::builder().no_proxy().build()?,
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let server = Background::serve("cutoff-proxy", listener, app, || async {})?;
        Ok(Cutoff {
            addr,
            inner,
            _server: server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests arrived (forwarded or dropped).
    pub fn requests(&self) -> usize {
        self.inner.seen.load(Ordering::Relaxed)
    }
}

async fn forward(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    if inner.seen.fetch_add(1, Ordering::Relaxed) >= inner.limit {
        return crate::tripwire::dropped();
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut upstream = inner
        .http
        .request(parts.method.clone(), format!("{}{path}", inner.upstream));
    for (name, value) in &parts.headers {
        if !crate::background::hop_by_hop(name.as_str()) && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(answer) = upstream.body(body).send().await else {
        return crate::tripwire::dropped();
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !crate::background::hop_by_hop(name.as_str()) && name != "content-length" {
            headers.append(name, value.clone());
        }
    }
    let Ok(bytes) = answer.bytes().await else {
        return crate::tripwire::dropped();
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}
