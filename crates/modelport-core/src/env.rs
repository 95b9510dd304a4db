//! Every environment variable modelport reads, declared once with its meaning.
//!
//! Precedence everywhere: command-line flag > environment variable > `modelport.yaml` > default.

/// Path of the onnxruntime shared library (`libonnxruntime.so.<version>`) for the
/// `onnxruntime` engine. When unset, modelport looks in the active virtualenv
/// (`VIRTUAL_ENV`), `/usr/local/lib` and `/usr/lib`, then `python3`'s site-packages;
/// never in a folder found from the working directory.
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// Default engine for local inference: `auto`, `onnxruntime` or `tract` (the `--engine` flag wins).
pub const MODELPORT_ENGINE: &str = "MODELPORT_ENGINE";

/// Threads each onnxruntime or tract session may use for one inference (default: all cores).
pub const MODELPORT_INTRA_THREADS: &str = "MODELPORT_INTRA_THREADS";

/// `tracing` filter for logs on stderr, e.g. `modelport=debug` (the `-v` flags win).
pub const MODELPORT_LOG: &str = "MODELPORT_LOG";

/// Disables colour in terminal output when set to anything (see no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";

/// How long one attempt of a call to a cloud API (SageMaker, S3, Vertex AI, Cloud
/// Storage) may wait for its answer before it is abandoned and retried, in whole
/// seconds (default 60). A prediction may take the endpoint's serving timeout plus
/// 10 s when that is longer; an upload one more second for every 64 KiB it carries.
pub const MODELPORT_REQUEST_TIMEOUT_S: &str = "MODELPORT_REQUEST_TIMEOUT_S";

/// [`MODELPORT_REQUEST_TIMEOUT_S`] when none is set.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// [`MODELPORT_REQUEST_TIMEOUT_S`]: its value, or [`DEFAULT_REQUEST_TIMEOUT`] when
/// it is unset or empty; an error naming the variable, with a hint, when it is not
/// a whole number of seconds from 1 to 3600.
pub fn request_timeout() -> Result<std::time::Duration, crate::provider::ProviderError> {
    parse_request_timeout(std::env::var_os(MODELPORT_REQUEST_TIMEOUT_S).as_deref())
}

fn parse_request_timeout(
    raw: Option<&std::ffi::OsStr>,
) -> Result<std::time::Duration, crate::provider::ProviderError> {
    let Some(raw) = raw.filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_REQUEST_TIMEOUT);
    };
    let text = raw.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(s) if (1..=3600).contains(&s) => Ok(std::time::Duration::from_secs(s)),
        _ => Err(crate::provider::ProviderError::InvalidInput {
            message: format!(
                "{MODELPORT_REQUEST_TIMEOUT_S}={text:?} is not a number of seconds from 1 to 3600"
            ),
            hint: Some(format!(
                "unset {MODELPORT_REQUEST_TIMEOUT_S} for the default of {} s",
                DEFAULT_REQUEST_TIMEOUT.as_secs()
            )),
        }),
    }
}

/// How long an attempt that carries `bytes` may take: `base` plus one second per
/// 64 KiB, so that a slow link is not mistaken for a dead one.
pub fn transfer_timeout(base: std::time::Duration, bytes: u64) -> std::time::Duration {
    base + std::time::Duration::from_secs(bytes.div_ceil(64 * 1024))
}

/// Where `.modelport` (state, artifacts, server logs) lives; default `./.modelport`.
pub const MODELPORT_HOME: &str = "MODELPORT_HOME";

/// Debug builds only: fail points a test arms, as `NAME=ACTION` pairs separated by
/// commas (`rollout.verify=error`, `rollout.retire=abort`, `rollout.verify=sleep(2000)`).
/// Release builds ignore it.
pub const MODELPORT_FAILPOINTS: &str = "MODELPORT_FAILPOINTS";

/// Debug builds only: the number of the side effect (a state file written, a
/// server started or signalled, a file stored) after which the process kills
/// itself with SIGKILL, counted from 1 in the order they happen. The crash-point
/// harness walks it over every step. Release builds ignore it.
pub const MODELPORT_CRASH_AT: &str = "MODELPORT_CRASH_AT";

/// Debug builds only: a file to which every side effect appends a line
/// `N NAME`, so that a harness learns the crash points of a command. Release
/// builds ignore it.
pub const MODELPORT_STEPS: &str = "MODELPORT_STEPS";

/// `modelport serve`: a name for the revision this process serves, sent back in the
/// `x-modelport-revision` header so that a caller can tell two servers of the same
/// model apart (the local provider sets it).
pub const MODELPORT_REVISION: &str = "MODELPORT_REVISION";

/// `modelport serve`: the image this process runs in (`REGISTRY/REPO@sha256:...`),
/// sent back in the `x-modelport-image` header, so that a comparison names the image
/// that answered. `deploy` sets it in the container's environment.
pub const MODELPORT_IMAGE: &str = "MODELPORT_IMAGE";

/// A directory whose `aws.yaml` and `gcp.yaml` replace the instance catalogs (limits and
/// prices) embedded in the binary; a file missing from it keeps the embedded one.
pub const MODELPORT_CATALOG_DIR: &str = "MODELPORT_CATALOG_DIR";

// `modelport serve`: the platform contracts, then modelport's own knobs.

/// SageMaker: the port the serving container must listen on (default 8080).
pub const SAGEMAKER_BIND_TO_PORT: &str = "SAGEMAKER_BIND_TO_PORT";

/// Vertex AI: the port the serving container must listen on (default 8080).
pub const AIP_HTTP_PORT: &str = "AIP_HTTP_PORT";

/// Vertex AI: the path Vertex sends health checks to.
pub const AIP_HEALTH_ROUTE: &str = "AIP_HEALTH_ROUTE";

/// Vertex AI: the path Vertex sends prediction requests to.
pub const AIP_PREDICT_ROUTE: &str = "AIP_PREDICT_ROUTE";

/// Vertex AI: where the model files are, a copy of the model's artifactUri.
pub const AIP_STORAGE_URI: &str = "AIP_STORAGE_URI";

/// `modelport serve`: the address to listen on (default 0.0.0.0, as containers must).
pub const MODELPORT_HOST: &str = "MODELPORT_HOST";

/// `modelport serve`: the largest request body in bytes (default 6291456, SageMaker's limit).
pub const MODELPORT_MAX_BODY_BYTES: &str = "MODELPORT_MAX_BODY_BYTES";

/// `modelport serve`: seconds one request may take (default 60, SageMaker's limit).
pub const MODELPORT_TIMEOUT_S: &str = "MODELPORT_TIMEOUT_S";

/// `modelport serve`: inference workers, each with its own session (default: the cores).
pub const MODELPORT_WORKERS: &str = "MODELPORT_WORKERS";

/// `modelport serve`: requests that may wait for a worker before new ones get 503.
pub const MODELPORT_QUEUE_DEPTH: &str = "MODELPORT_QUEUE_DEPTH";

/// `modelport serve`: rows that queued requests may be merged into for one inference (1 = off).
pub const MODELPORT_MAX_BATCH_ROWS: &str = "MODELPORT_MAX_BATCH_ROWS";

/// `modelport serve`: the model name on the OIP and TF-Serving routes (default: the model file's stem).
pub const MODELPORT_MODEL_NAME: &str = "MODELPORT_MODEL_NAME";

// Cloud providers.

/// AWS: send every S3, SageMaker and SageMaker Runtime call to this URL instead of AWS
/// (an emulator such as moto, or `fakecloud`); wins over `provider.aws.endpoint_url`.
/// With an override, S3 uses path-style addressing.
pub const MODELPORT_AWS_ENDPOINT_URL: &str = "MODELPORT_AWS_ENDPOINT_URL";

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::time::Duration;

    use super::*;

    #[test]
    fn request_timeouts_are_whole_seconds_from_1_to_3600() {
        let parse = |v: Option<&str>| parse_request_timeout(v.map(OsStr::new));
        assert_eq!(parse(None).unwrap(), DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(parse(Some("")).unwrap(), DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(parse(Some(" 3 ")).unwrap(), Duration::from_secs(3));
        assert_eq!(parse(Some("3600")).unwrap(), Duration::from_secs(3600));
        for bad in ["0", "3601", "1.5", "soon"] {
            let e = parse(Some(bad)).unwrap_err();
            let crate::provider::ProviderError::InvalidInput { message, hint } = e else {
                panic!("{bad}: {e:?}");
            };
            assert!(message.contains(MODELPORT_REQUEST_TIMEOUT_S), "{message}");
            assert!(hint.is_some_and(|h| h.contains("unset")), "{bad}");
        }
    }
}
