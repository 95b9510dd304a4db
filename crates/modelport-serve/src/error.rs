//! Why a serving process could not start, and how a request failed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{message}")]
    Config { message: String, hint: String },
    /// The model directory failed its manifest check (a tampered or partial artifact).
    #[error(transparent)]
    Package(#[from] modelport_package::PackageError),
    #[error(transparent)]
    Runtime(#[from] modelport_runtime::RuntimeError),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the inference workers: {0}")]
    Workers(#[source] std::io::Error),
    #[error("the warm-up inference failed: {0}")]
    WarmUp(String),
}

impl ServeError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ServeError::Config { hint, .. } => Some(hint.clone()),
            ServeError::Package(e) => e.hint(),
            ServeError::Runtime(e) => e.hint(),
            ServeError::Bind { .. } => {
                Some("another process uses the port: pass --port, or 0 for a free one".into())
            }
            _ => None,
        }
    }
}

/// A failed request: a status and a JSON body `{"error": "..."}`, the Open Inference
/// Protocol's error shape, which SageMaker and Vertex pass through to the caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, "{}", self.message);
        } else {
            tracing::debug!(status = %self.status, "{}", self.message);
        }
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}
