//! How a serving process is configured, and how the platforms' environment
//! variables map onto it.
//!
//! Precedence: an explicit value (a command-line flag) > the platform's variable
//! (`SAGEMAKER_BIND_TO_PORT`, `AIP_HTTP_PORT`, `AIP_STORAGE_URI`) > the default the
//! platform documents (port 8080, model in `/opt/ml/model`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use modelport_core::env;
use modelport_core::spec::EngineChoice;

use crate::error::ServeError;

/// SageMaker's real-time payload limit, the default body limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Where SageMaker unpacks `model.tar.gz` before it starts the container.
pub const SAGEMAKER_MODEL_DIR: &str = "/opt/ml/model";

/// The port both platforms use when they do not say otherwise.
pub const DEFAULT_PORT: u16 = 8080;

/// Everything a serving process needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// A directory unpacked from a modelport artifact (with `modelport.json`), a
    /// `model.tar.gz`, or a bare `.onnx` file.
    pub model: PathBuf,
    pub host: IpAddr,
    /// 0 picks a free port (the bound address is logged and returned).
    pub port: u16,
    /// The name on the OIP and TF-Serving routes; default: the model file's stem.
    pub model_name: Option<String>,
    pub max_body_bytes: usize,
    pub timeout: Duration,
    pub engine: EngineChoice,
    /// Threads per inference session; default 1, so workers run side by side.
    pub intra_threads: Option<usize>,
    /// Inference workers, each with its own session.
    pub workers: usize,
    /// Requests that may wait for a worker before new ones are refused with 503.
    pub queue_depth: usize,
    /// Queued requests with the same input shapes are merged up to this many rows
    /// into one inference; 1 turns merging off.
    pub max_batch_rows: usize,
    /// Vertex AI's health route, when the process runs under Vertex's contract.
    pub vertex_health_route: Option<String>,
    /// Vertex AI's predict route.
    pub vertex_predict_route: Option<String>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// A name for the revision this process serves, reported in `x-modelport-revision`.
    pub revision: Option<String>,
    /// The image this process runs in, reported in `x-modelport-image`.
    pub image: Option<String>,
    /// A port to take over on SIGUSR1 (see [`crate::run`]): the local provider starts
    /// a new server on a free port, compares it, and only then hands it the port that
    /// production clients use.
    pub handover_port: Option<u16>,
}

impl ServeConfig {
    /// A configuration with every default, serving `model`.
    pub fn new(model: impl Into<PathBuf>) -> ServeConfig {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        ServeConfig {
            model: model.into(),
            host: IpAddr::from([0, 0, 0, 0]),
            port: DEFAULT_PORT,
            model_name: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            timeout: Duration::from_secs(60),
            engine: EngineChoice::Auto,
            intra_threads: Some(1),
            workers,
            queue_depth: 64 * workers,
            max_batch_rows: 64,
            vertex_health_route: None,
            vertex_predict_route: None,
            shutdown_grace: Duration::from_secs(25),
            revision: None,
            image: None,
            handover_port: None,
        }
    }
}

/// The platform variables that shape a serving process, read once so that tests can
/// pass their own.
#[derive(Debug, Clone, Default)]
pub struct PlatformEnv {
    pub sagemaker_port: Option<String>,
    pub aip_http_port: Option<String>,
    pub aip_health_route: Option<String>,
    pub aip_predict_route: Option<String>,
    pub aip_storage_uri: Option<String>,
}

impl PlatformEnv {
    pub fn from_env() -> PlatformEnv {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        PlatformEnv {
            sagemaker_port: get(env::SAGEMAKER_BIND_TO_PORT),
            aip_http_port: get(env::AIP_HTTP_PORT),
            aip_health_route: get(env::AIP_HEALTH_ROUTE),
            aip_predict_route: get(env::AIP_PREDICT_ROUTE),
            aip_storage_uri: get(env::AIP_STORAGE_URI),
        }
    }

    /// The port: the flag, else SageMaker's or Vertex's variable, else 8080.
    pub fn port(&self, flag: Option<u16>) -> Result<u16, ServeError> {
        if let Some(p) = flag {
            return Ok(p);
        }
        for (name, value) in [
            (env::SAGEMAKER_BIND_TO_PORT, &self.sagemaker_port),
            (env::AIP_HTTP_PORT, &self.aip_http_port),
        ] {
            if let Some(v) = value {
                return v.trim().parse().map_err(|_| ServeError::Config {
                    message: format!("{name}={v:?} is not a port number"),
                    hint: format!("set {name} to a number from 1 to 65535, or pass --port"),
                });
            }
        }
        Ok(DEFAULT_PORT)
    }

    /// The `gs://` URI to fetch the model from: `AIP_STORAGE_URI` when it is one and
    /// no model argument was given.
    pub fn gcs_model(&self, arg: Option<&std::path::Path>) -> Option<String> {
        if arg.is_some() {
            return None;
        }
        self.aip_storage_uri
            .as_ref()
            .filter(|u| u.starts_with("gs://"))
            .cloned()
    }

    /// The model: the argument, else `AIP_STORAGE_URI` when it is a local path,
    /// else `/opt/ml/model`. A `gs://` URI is fetched by the caller first
    /// ([`PlatformEnv::gcs_model`]).
    pub fn model(&self, arg: Option<PathBuf>) -> Result<PathBuf, ServeError> {
        if let Some(p) = arg {
            return Ok(p);
        }
        if let Some(uri) = &self.aip_storage_uri {
            if let Some(path) = uri.strip_prefix("file://") {
                return Ok(PathBuf::from(path));
            }
            if uri.contains("://") {
                return Err(ServeError::Config {
                    message: format!(
                        "{}={uri:?}: modelport reads models from local paths and gs:// URIs only",
                        env::AIP_STORAGE_URI
                    ),
                    hint: "copy the files into the container and pass their path, or upload them to Cloud Storage".into(),
                });
            }
            return Ok(PathBuf::from(uri));
        }
        Ok(PathBuf::from(SAGEMAKER_MODEL_DIR))
    }

    /// Vertex's routes, checked to be absolute paths.
    pub fn vertex_routes(&self) -> Result<(Option<String>, Option<String>), ServeError> {
        let check = |name: &str, v: &Option<String>| -> Result<Option<String>, ServeError> {
            match v {
                Some(r) if !r.starts_with('/') => Err(ServeError::Config {
                    message: format!("{name}={r:?} is not an absolute path"),
                    hint: format!("{name} must start with '/'"),
                }),
                other => Ok(other.clone()),
            }
        };
        Ok((
            check(env::AIP_HEALTH_ROUTE, &self.aip_health_route)?,
            check(env::AIP_PREDICT_ROUTE, &self.aip_predict_route)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn port_precedence_is_flag_then_platform_then_8080() {
        let mut e = PlatformEnv::default();
        assert_eq!(e.port(None).unwrap(), 8080);
        e.aip_http_port = Some("9090".into());
        assert_eq!(e.port(None).unwrap(), 9090);
        e.sagemaker_port = Some("7070".into());
        assert_eq!(e.port(None).unwrap(), 7070);
        assert_eq!(e.port(Some(1234)).unwrap(), 1234);
        e.sagemaker_port = Some("http".into());
        let err = e.port(None).unwrap_err().to_string();
        assert!(err.contains("SAGEMAKER_BIND_TO_PORT"), "{err}");
    }

    #[test]
    fn model_precedence_is_argument_then_aip_storage_uri_then_opt_ml_model() {
        let mut e = PlatformEnv::default();
        assert_eq!(e.model(None).unwrap(), PathBuf::from("/opt/ml/model"));
        e.aip_storage_uri = Some("/models/iris".into());
        assert_eq!(e.model(None).unwrap(), PathBuf::from("/models/iris"));
        e.aip_storage_uri = Some("file:///models/x".into());
        assert_eq!(e.model(None).unwrap(), PathBuf::from("/models/x"));
        assert_eq!(
            e.model(Some("m.onnx".into())).unwrap(),
            PathBuf::from("m.onnx")
        );
        e.aip_storage_uri = Some("gs://bucket/iris".into());
        assert_eq!(e.gcs_model(None).as_deref(), Some("gs://bucket/iris"));
        assert_eq!(e.gcs_model(Some(Path::new("m.onnx"))), None);
        e.aip_storage_uri = Some("s3://bucket/iris".into());
        assert_eq!(e.gcs_model(None), None);
        let err = e.model(None).unwrap_err();
        assert!(err.to_string().contains("s3://bucket/iris"), "{err}");
    }

    #[test]
    fn vertex_routes_must_be_absolute() {
        let e = PlatformEnv {
            aip_predict_route: Some("predict".into()),
            ..Default::default()
        };
        assert!(e.vertex_routes().is_err());
    }
}
