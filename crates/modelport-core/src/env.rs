//! Every environment variable modelport reads, declared once with its meaning.
//!
//! Precedence everywhere: command-line flag > environment variable > `modelport.yaml` > default.

/// Path of the onnxruntime shared library (`libonnxruntime.so.<version>`) for the
/// `onnxruntime` engine. When unset, modelport looks for a Python onnxruntime install
/// (an active virtualenv, a `.venv` next to the working directory, then `python3`'s
/// site-packages).
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// Default engine for local inference: `auto`, `onnxruntime` or `tract` (the `--engine` flag wins).
pub const MODELPORT_ENGINE: &str = "MODELPORT_ENGINE";

/// Threads each onnxruntime or tract session may use for one inference (default: all cores).
pub const MODELPORT_INTRA_THREADS: &str = "MODELPORT_INTRA_THREADS";

/// `tracing` filter for logs on stderr, e.g. `modelport=debug` (the `-v` flags win).
pub const MODELPORT_LOG: &str = "MODELPORT_LOG";

/// Disables colour in terminal output when set to anything (see no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";
