//! Anything that turns inputs into outputs: the local reference runtime, a local
//! endpoint, a SageMaker or Vertex endpoint, any Open Inference Protocol URL.
//!
//! A comparison takes two predictors and knows nothing else about them, so that
//! endpoint-vs-local, endpoint-vs-endpoint and engine-vs-engine are one code path.

use serde::Serialize;

use crate::{Batch, Signature};

/// What kind of thing a comparison target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A model file run in this process by one of the local engines.
    Model,
    /// A deployment recorded in `.modelport/state`, reached through its provider.
    Deployment,
    /// The URL of a running server.
    Url,
}

/// Who produced a set of outputs: the engine, its version and the artifact digest.
///
/// Servers report it in response headers (see [`headers`]); the local runtime knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServedBy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The platform's own name for what answered: SageMaker's invoked production
    /// variant, Vertex AI's deployed model id, a local server's revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The serving image (`REGISTRY/REPO@sha256:...`), when the container says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl ServedBy {
    pub fn is_empty(&self) -> bool {
        self.engine.is_none()
            && self.engine_version.is_none()
            && self.digest.is_none()
            && self.revision.is_none()
            && self.image.is_none()
    }

    /// The value of SageMaker's `X-Amzn-SageMaker-Custom-Attributes` header that
    /// carries this identity: SageMaker passes only that header from the container
    /// back to the caller, so it is how an endpoint says which artifact answered.
    pub fn to_custom_attributes(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("modelport-engine", &self.engine),
            ("modelport-engine-version", &self.engine_version),
            ("modelport-digest", &self.digest),
            ("modelport-revision", &self.revision),
            ("modelport-image", &self.image),
        ] {
            if let Some(v) = value {
                parts.push(format!("{key}={v}"));
            }
        }
        parts.join(",")
    }

    /// Reads what [`ServedBy::to_custom_attributes`] wrote; other attributes are ignored.
    pub fn from_custom_attributes(value: &str) -> ServedBy {
        let mut served = ServedBy::default();
        for part in value.split(',') {
            let Some((key, v)) = part.trim().split_once('=') else {
                continue;
            };
            let slot = match key {
                "modelport-engine" => &mut served.engine,
                "modelport-engine-version" => &mut served.engine_version,
                "modelport-digest" => &mut served.digest,
                "modelport-revision" => &mut served.revision,
                "modelport-image" => &mut served.image,
                _ => continue,
            };
            *slot = Some(v.to_string());
        }
        served
    }
}

/// What must have answered every request of a verification: the digest of the
/// revision being verified and, where the platform names what answered, its name
/// for that revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// `sha256:...` of the revision's `modelport.json`.
    pub digest: String,
    /// The platform's name of the revision (see [`ServedBy::revision`]), when it
    /// reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// What the platform calls that name: `production variant`, `deployed model`,
    /// `server revision`.
    pub revision_kind: String,
}

impl Expected {
    /// Checks one answer's identity; the error says what was missing or foreign.
    pub fn check(&self, served: &ServedBy) -> Result<(), String> {
        let kind = &self.revision_kind;
        if let (Some(want), Some(got)) = (&self.revision, &served.revision)
            && got != want
        {
            return Err(format!(
                "an answer came from {kind} {got}, not from {want}, the one being verified"
            ));
        }
        match &served.digest {
            None => {
                return Err(format!(
                    "an answer carried no model digest, so nothing shows it came from the revision \
                     being verified ({}): the server is not `modelport serve`, or something between \
                     it and modelport dropped its identity header",
                    self.digest
                ));
            }
            Some(d) if *d != self.digest => {
                return Err(format!(
                    "an answer came from model {d}, not from the revision being verified ({})",
                    self.digest
                ));
            }
            Some(_) => {}
        }
        if let (Some(want), None) = (&self.revision, &served.revision) {
            return Err(format!(
                "an answer did not name the {kind} that gave it (expected {want})"
            ));
        }
        Ok(())
    }
}

/// A comparison target as a report names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetInfo {
    /// How the user named it: a deployment name, a path or a URL.
    pub label: String,
    pub kind: TargetKind,
    /// Where requests go: the file path or the predict URL.
    pub location: String,
    /// What answered, when known; filled in from the last response.
    #[serde(skip_serializing_if = "ServedBy::is_empty")]
    pub served_by: ServedBy,
}

/// The outputs of one `predict` call and who produced them.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub outputs: Batch,
    pub served_by: ServedBy,
}

/// Why a prediction failed, named for what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The target refused the inputs (HTTP 400, or a local signature check).
    #[error("the inputs were refused: {0}")]
    InvalidInput(String),
    /// The request body would exceed the target's payload limit even for one row.
    #[error("one row needs {needed} bytes but {target} accepts at most {limit}")]
    TooLarge {
        target: String,
        needed: usize,
        limit: usize,
    },
    /// No answer in time.
    #[error("no answer from {target} within {seconds} s")]
    Timeout { target: String, seconds: u64 },
    /// The target cannot be reached or says it is not ready (connection refused, 503).
    #[error("{target} is unavailable: {message}")]
    Unavailable { target: String, message: String },
    /// The target answered with an error status.
    #[error("{target} answered HTTP {status}: {message}")]
    Remote {
        target: String,
        status: u16,
        message: String,
    },
    /// The target answered 200 with a body that is not a prediction.
    #[error("cannot read the answer of {target}: {message}")]
    Decode { target: String, message: String },
    /// The local engine failed.
    #[error("inference failed: {0}")]
    Inference(String),
    /// An answer did not come from the revision that had to give it.
    #[error("{target}: {message}")]
    Identity { target: String, message: String },
    /// The target answered some rows, then stopped answering (it died, it went
    /// away, it timed out): what it answered is in `partial`, so that those rows
    /// can still be compared and the others reported as unchecked.
    #[error("{target} answered {answered} of {total} samples, then failed: {reason}")]
    Incomplete {
        target: String,
        total: usize,
        answered: usize,
        reason: String,
        partial: Box<Partial>,
    },
}

/// What a target answered before it failed: the input rows it answered, as
/// sorted, disjoint ranges, and their outputs in that order.
#[derive(Debug, Clone)]
pub struct Partial {
    pub rows: Vec<std::ops::Range<usize>>,
    pub prediction: Prediction,
}

impl PredictError {
    /// A likely fix, printed by the CLI as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            PredictError::Unavailable { .. } => Some(
                "check that the server is running (`modelport status`) and that the URL's port is right"
                    .into(),
            ),
            PredictError::Timeout { .. } => Some(
                "the server may be overloaded: lower --concurrency or the batch size".into(),
            ),
            PredictError::TooLarge { .. } => {
                Some("raise the server's body limit (serving.max_body_bytes)".into())
            }
            PredictError::Identity { .. } => Some(
                "the comparison only proves a revision whose every answer carries its digest; \
                 check that the endpoint runs the modelport serving image"
                    .into(),
            ),
            PredictError::Incomplete { .. } => Some(
                "the endpoint stopped answering during the comparison: `modelport status` says \
                 how it is; a new comparison sends every sample again"
                    .into(),
            ),
            PredictError::Remote { status: 413, .. } => Some(
                "the server's body limit is lower than modelport assumed: lower --max-request-bytes"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Anything that turns inputs into outputs.
///
/// # Contract
/// - `predict` returns one output row per input row, in input order, whatever
///   batching or concurrency the implementation uses underneath.
/// - Outputs are named and typed as the model's signature says, so two predictors
///   over the same model return comparable batches.
/// - Inference never runs on the async executor's threads.
#[async_trait::async_trait]
pub trait Predictor: Send + Sync {
    /// What this predictor is, for reports.
    fn target(&self) -> &TargetInfo;

    /// The model's signature when the predictor knows it (a local model, an OIP
    /// server's metadata); `None` when the target cannot say.
    fn signature(&self) -> Option<&Signature>;

    /// Predicts every row of `inputs`.
    async fn predict(&self, inputs: &Batch) -> Result<Prediction, PredictError>;

    /// [`Predictor::predict`], calling `answered` with the number of rows answered
    /// so far as the answers arrive. A predictor that answers in one piece (the
    /// default) calls it once, at the end.
    async fn predict_counted(
        &self,
        inputs: &Batch,
        answered: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Prediction, PredictError> {
        let prediction = self.predict(inputs).await?;
        answered(inputs.batch_size().unwrap_or(0) as u64);
        Ok(prediction)
    }
}

/// The response headers by which `modelport serve` says what answered.
pub mod headers {
    pub const ENGINE: &str = "x-modelport-engine";
    pub const ENGINE_VERSION: &str = "x-modelport-engine-version";
    pub const DIGEST: &str = "x-modelport-digest";
    pub const REVISION: &str = "x-modelport-revision";
    /// The image the server runs in (`MODELPORT_IMAGE`).
    pub const IMAGE: &str = "x-modelport-image";
    /// SageMaker forwards this one container header to the caller; the server puts
    /// [`super::ServedBy::to_custom_attributes`] in it.
    pub const SAGEMAKER_CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_attributes_round_trip() {
        let served = ServedBy {
            engine: Some("onnxruntime".into()),
            engine_version: Some("1.32.0".into()),
            digest: Some("sha256:ab12".into()),
            revision: None,
            image: Some("127.0.0.1:5000/modelport@sha256:cd34".into()),
        };
        let text = served.to_custom_attributes();
        assert_eq!(
            text,
            "modelport-engine=onnxruntime,modelport-engine-version=1.32.0,modelport-digest=sha256:ab12,\
             modelport-image=127.0.0.1:5000/modelport@sha256:cd34"
        );
        assert_eq!(ServedBy::from_custom_attributes(&text), served);
        let other = ServedBy::from_custom_attributes("trace=1, modelport-digest=sha256:cd,junk");
        assert_eq!(other.digest.as_deref(), Some("sha256:cd"));
        assert_eq!(other.engine, None);
    }
}
