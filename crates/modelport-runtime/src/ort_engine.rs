//! The onnxruntime engine: the reference implementation of ONNX, loaded at run time.
//!
//! The shared library is never downloaded or linked at build time. It comes from
//! `ORT_DYLIB_PATH`, else from the active virtualenv, a system library folder or
//! python3's site-packages (the PyPI wheel ships
//! `onnxruntime/capi/libonnxruntime.so.<version>`); see [`find_onnxruntime_library`]. The library can be loaded once
//! per process; the first successful load wins.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use modelport_core::env::ORT_DYLIB_PATH;
use modelport_core::{Batch, ClassLabels, Signature, Tensor, TensorData};
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynMapValueType, DynValue, TensorElementType, ValueType};

use prost::Message;
use tract_onnx::pb;

use crate::error::RuntimeError;
use crate::model::ModelInfo;
use crate::{Engine, EngineInfo, EngineKind, LoadedModel, RuntimeOptions};

/// The process-wide onnxruntime environment, or why it could not be created.
static ENVIRONMENT: OnceLock<Result<(Environment, String, PathBuf), String>> = OnceLock::new();

const INSTALL_HINT: &str = "install onnxruntime for python3 or into an activated virtualenv \
     (`pip install onnxruntime==1.32.0`; the README's test command creates .venv: `source .venv/bin/activate`) \
     or set ORT_DYLIB_PATH to libonnxruntime.so; `--engine tract` needs nothing installed";

pub struct OrtEngine {
    info: EngineInfo,
    opts: RuntimeOptions,
}

impl OrtEngine {
    /// Loads the onnxruntime library (once per process) and returns the engine.
    pub fn open(opts: &RuntimeOptions) -> Result<OrtEngine, RuntimeError> {
        let env = ENVIRONMENT.get_or_init(|| {
            let lib = find_onnxruntime_library()?;
            tracing::debug!(library = %lib.display(), "loading onnxruntime");
            let builder =
                ort::init_from(&lib).map_err(|e| format!("cannot load {}: {e}", lib.display()))?;
            let env = builder
                .with_name("modelport")
                .build()
                .map_err(|e| format!("cannot start onnxruntime from {}: {e}", lib.display()))?;
            let version = version_of(&lib);
            Ok((env, version, lib))
        });
        match env {
            Ok((_, version, _)) => Ok(OrtEngine {
                info: EngineInfo {
                    engine: EngineKind::Onnxruntime,
                    version: version.clone(),
                },
                opts: opts.clone(),
            }),
            Err(reason) => Err(RuntimeError::EngineUnavailable {
                engine: EngineKind::Onnxruntime,
                reason: reason.clone(),
                hint: INSTALL_HINT.into(),
            }),
        }
    }

    /// The library this process loaded, once [`OrtEngine::open`] succeeded.
    pub fn library_path() -> Option<&'static Path> {
        match ENVIRONMENT.get() {
            Some(Ok((_, _, p))) => Some(p),
            _ => None,
        }
    }
}

/// The version onnxruntime reports in its build string, else the library's file name.
fn version_of(lib: &Path) -> String {
    let build = ort::info();
    if let Some(v) = build
        .split([',', ' '])
        .find_map(|part| part.trim().strip_prefix("git-branch=rel-"))
    {
        return v.to_string();
    }
    lib.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| {
            n.split(".so.")
                .nth(1)
                .or_else(|| n.strip_prefix("libonnxruntime."))
        })
        .unwrap_or("unknown")
        .trim_end_matches(".dylib")
        .to_string()
}

/// Where a `libonnxruntime` was found. Every source is one the user chose explicitly
/// or a root-owned system location: nothing is loaded because of the working directory
/// (a checkout's `.venv` is not trusted to supply native code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibrarySource {
    /// `ORT_DYLIB_PATH`.
    Variable,
    /// The active virtualenv (`VIRTUAL_ENV`).
    VirtualEnv,
    /// A system library folder: `/usr/local/lib` (where the serving image puts it) or `/usr/lib`.
    System,
    /// The site-packages of `python3` on `PATH`.
    Python,
}

impl std::fmt::Display for LibrarySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LibrarySource::Variable => ORT_DYLIB_PATH,
            LibrarySource::VirtualEnv => "VIRTUAL_ENV",
            LibrarySource::System => "system library folder",
            LibrarySource::Python => "python3 site-packages",
        })
    }
}

/// The system folders searched for `libonnxruntime.so.<version>`, in order.
pub const SYSTEM_LIBRARY_DIRS: &[&str] = &["/usr/local/lib", "/usr/lib"];

/// Finds `libonnxruntime`: `ORT_DYLIB_PATH`, else the active virtualenv (`VIRTUAL_ENV`),
/// else [`SYSTEM_LIBRARY_DIRS`], else the site-packages of `python3`. Of several
/// versions in one place the newest (compared numerically) wins.
pub fn find_onnxruntime_library() -> Result<PathBuf, String> {
    Ok(locate_onnxruntime_library()?.1)
}

/// [`find_onnxruntime_library`], with where the library was found.
pub fn locate_onnxruntime_library() -> Result<(LibrarySource, PathBuf), String> {
    let (source, lib) = locate(
        std::env::var_os(ORT_DYLIB_PATH).map(PathBuf::from),
        std::env::var_os("VIRTUAL_ENV").map(PathBuf::from),
        SYSTEM_LIBRARY_DIRS.iter().map(PathBuf::from).collect(),
        python_site_packages,
    )?;
    tracing::debug!(source = %source, library = %lib.display(), "found onnxruntime");
    Ok((source, lib))
}

/// The search behind [`find_onnxruntime_library`], with its inputs passed in.
fn locate(
    variable: Option<PathBuf>,
    virtual_env: Option<PathBuf>,
    system_dirs: Vec<PathBuf>,
    python: impl FnOnce() -> Vec<PathBuf>,
) -> Result<(LibrarySource, PathBuf), String> {
    if let Some(p) = variable {
        return if p.is_file() {
            Ok((LibrarySource::Variable, p))
        } else {
            Err(format!(
                "{ORT_DYLIB_PATH} is set to {}, which is not a file",
                p.display()
            ))
        };
    }
    let mut searched = 0usize;
    if let Some(venv) = virtual_env
        && let Ok(entries) = std::fs::read_dir(venv.join("lib"))
    {
        for e in entries.flatten() {
            let capi = e.path().join("site-packages/onnxruntime/capi");
            searched += 1;
            if let Some(found) = newest_library(&capi) {
                return Ok((LibrarySource::VirtualEnv, found));
            }
        }
    }
    for dir in system_dirs {
        searched += 1;
        if let Some(found) = newest_library(&dir) {
            return Ok((LibrarySource::System, found));
        }
    }
    for site in python() {
        searched += 1;
        if let Some(found) = newest_library(&site.join("onnxruntime").join("capi")) {
            return Ok((LibrarySource::Python, found));
        }
    }
    Err(format!(
        "no onnxruntime library found (looked at {ORT_DYLIB_PATH}, VIRTUAL_ENV, {} and \
         python3's site-packages: {searched} folder{})",
        SYSTEM_LIBRARY_DIRS.join(", "),
        if searched == 1 { "" } else { "s" }
    ))
}

/// The newest `libonnxruntime` in `dir`: versioned files (`libonnxruntime.so.1.20.1`,
/// `libonnxruntime.1.20.1.dylib`) compared by version numerically, then an unversioned one.
fn newest_library(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let version = library_version(p.file_name()?.to_str()?)?;
            Some((version, p))
        })
        .max()
        .map(|(_, p)| p)
}

/// The version numbers in a library's file name: `Some([])` for `libonnxruntime.so`,
/// `None` for a file that is not onnxruntime's library (`libonnxruntime_providers_shared.so`).
fn library_version(name: &str) -> Option<Vec<u64>> {
    let rest = name.strip_prefix("libonnxruntime.so").or_else(|| {
        name.strip_prefix("libonnxruntime")
            .and_then(|r| r.strip_suffix(".dylib"))
    })?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.strip_prefix('.')?
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

fn python_site_packages() -> Vec<PathBuf> {
    let script = "import site, sysconfig\nfor p in [*site.getsitepackages(), site.getusersitepackages(), sysconfig.get_paths()['purelib']]: print(p)";
    std::process::Command::new("python3")
        .args(["-c", script])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

impl Engine for OrtEngine {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    fn unsupported_operators(&self, _model: &ModelInfo) -> Vec<String> {
        // onnxruntime implements the whole ai.onnx and ai.onnx.ml operator sets; a
        // model it cannot run fails at load time with onnxruntime's own message.
        Vec::new()
    }

    fn load(&self, model: &ModelInfo) -> Result<Arc<dyn LoadedModel>, RuntimeError> {
        let Some(Ok((env, _, _))) = ENVIRONMENT.get() else {
            unreachable!("OrtEngine exists only after the environment loaded")
        };
        let fail = |e: String| RuntimeError::Inference {
            engine: EngineKind::Onnxruntime,
            message: e,
        };
        let mut builder = Session::builder(env)
            .map_err(|e| fail(e.to_string()))?
            // Basic optimizations keep results exact; extended fusions (e.g. MatMulNBits)
            // drift by ~1e-2 on quantized models, which a reference must not do.
            .with_optimization_level(GraphOptimizationLevel::Level1)
            .map_err(|e| fail(e.to_string()))?;
        if let Some(n) = self.opts.intra_threads {
            builder = builder
                .with_intra_threads(n)
                .map_err(|e| fail(e.to_string()))?;
        }
        let session = if model.uses("ZipMap") {
            let bytes = zipmap_as_identity(&model.path).map_err(fail)?;
            builder.commit_from_memory(&bytes)
        } else {
            builder.commit_from_file(&model.path)
        }
        .map_err(|e| fail(format!("loading {}: {e}", model.path.display())))?;
        Ok(Arc::new(OrtModel {
            session: Mutex::new(session),
            signature: model.signature.clone(),
            info: self.info.clone(),
        }))
    }
}

struct OrtModel {
    // `Session::run` takes `&mut self`; one inference at a time per session.
    session: Mutex<Session>,
    signature: Signature,
    info: EngineInfo,
}

impl LoadedModel for OrtModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn engine(&self) -> &EngineInfo {
        &self.info
    }

    fn run(&self, inputs: &Batch) -> Result<Batch, RuntimeError> {
        self.signature.check_inputs(inputs)?;
        let fail = |e: String| RuntimeError::Inference {
            engine: EngineKind::Onnxruntime,
            message: e,
        };
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(inputs.len());
        for spec in &self.signature.inputs {
            let t = inputs.get(&spec.name).expect("checked above");
            values.push((
                spec.name.clone(),
                to_ort(t).map_err(|e| fail(format!("input `{}`: {e}", spec.name)))?,
            ));
        }
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(values).map_err(|e| fail(e.to_string()))?;
        let mut batch = Batch::new();
        for spec in &self.signature.outputs {
            let value = outputs
                .get(&spec.name)
                .ok_or_else(|| fail(format!("output `{}` is missing", spec.name)))?;
            let t = from_ort(value, spec.class_labels.as_ref())
                .map_err(|e| fail(format!("output `{}`: {e}", spec.name)))?;
            batch.insert(spec.name.clone(), t)?;
        }
        Ok(batch)
    }
}

fn to_ort(t: &Tensor) -> Result<DynValue, String> {
    let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
    let e = |e: ort::Error| e.to_string();
    Ok(match t.data() {
        TensorData::F32(v) => ort::value::Tensor::from_array((shape, v.clone()))
            .map_err(e)?
            .into_dyn(),
        TensorData::F64(v) => ort::value::Tensor::from_array((shape, v.clone()))
            .map_err(e)?
            .into_dyn(),
        TensorData::I64(v) => ort::value::Tensor::from_array((shape, v.clone()))
            .map_err(e)?
            .into_dyn(),
        TensorData::I32(v) => ort::value::Tensor::from_array((shape, v.clone()))
            .map_err(e)?
            .into_dyn(),
        TensorData::I8(v) => ort::value::Tensor::from_array((shape, v.clone()))
            .map_err(e)?
            .into_dyn(),
        TensorData::U8(v) => ort::value::Tensor::from_array((shape, v.clone()))
            .map_err(e)?
            .into_dyn(),
        TensorData::Bool(v) => ort::value::Tensor::from_array((shape, v.clone()))
            .map_err(e)?
            .into_dyn(),
        TensorData::String(v) => ort::value::Tensor::from_string_array((shape, v.as_slice()))
            .map_err(e)?
            .into_dyn(),
    })
}

fn from_ort(value: &DynValue, labels: Option<&ClassLabels>) -> Result<Tensor, String> {
    let e = |e: ort::Error| e.to_string();
    match value.dtype() {
        ValueType::Tensor { ty, .. } => {
            macro_rules! extract {
                ($t:ty) => {{
                    let (shape, data) = value.try_extract_tensor::<$t>().map_err(e)?;
                    (dims(shape), TensorData::from(data.to_vec()))
                }};
            }
            let (shape, data) = match ty {
                TensorElementType::Float32 => extract!(f32),
                TensorElementType::Float64 => extract!(f64),
                TensorElementType::Int64 => extract!(i64),
                TensorElementType::Int32 => extract!(i32),
                TensorElementType::Int8 => extract!(i8),
                TensorElementType::Uint8 => extract!(u8),
                TensorElementType::Bool => extract!(bool),
                TensorElementType::String => {
                    let (shape, data) = value.try_extract_strings().map_err(e)?;
                    (dims(shape), TensorData::String(data))
                }
                other => return Err(format!("element type {other} is not supported")),
            };
            Tensor::new(shape, data).map_err(|e| e.to_string())
        }
        ValueType::Sequence(inner) if matches!(**inner, ValueType::Map { .. }) => {
            zipmap_to_tensor(value, labels)
        }
        other => Err(format!("values of type {other:?} are not supported")),
    }
}

fn dims(shape: &[i64]) -> Vec<usize> {
    shape.iter().map(|&d| d.max(0) as usize).collect()
}

/// A ZipMap output (one `{label: probability}` map per example) as an `f32 [N, C]`
/// matrix whose columns follow the declared class labels.
fn zipmap_to_tensor(value: &DynValue, labels: Option<&ClassLabels>) -> Result<Tensor, String> {
    let e = |e: ort::Error| e.to_string();
    let maps = value.try_extract_sequence::<DynMapValueType>().map_err(e)?;
    let rows = maps.len();
    let mut data: Vec<f32> = Vec::new();
    let mut columns = 0;
    for map in &maps {
        let row: Vec<f32> = match labels {
            Some(ClassLabels::Int64(order)) => {
                in_label_order(order, map.try_extract_key_values::<i64, f32>().map_err(e)?)?
            }
            Some(ClassLabels::String(order)) => in_label_order(
                order,
                map.try_extract_key_values::<String, f32>().map_err(e)?,
            )?,
            None => return Err("ZipMap output without class labels".into()),
        };
        columns = row.len();
        data.extend(row);
    }
    Tensor::new(vec![rows, columns], data).map_err(|e| e.to_string())
}

/// The probabilities of one ZipMap row, in the order of the declared labels.
fn in_label_order<K: PartialEq + std::fmt::Display>(
    order: &[K],
    row: Vec<(K, f32)>,
) -> Result<Vec<f32>, String> {
    order
        .iter()
        .map(|k| {
            row.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| *v)
                .ok_or(format!("class {k} is missing"))
        })
        .collect()
}

/// The model with every ZipMap that produces a graph output replaced by an Identity.
///
/// ZipMap only repackages its input matrix as one `{label: probability}` map per
/// example; the values are the same floats. Reading those maps back through the C
/// API costs several calls per example (measured: 7x Python onnxruntime's latency at
/// batch 64 on the iris model), so the reference keeps the matrix, which is also the
/// form modelport exposes on both engines.
fn zipmap_as_identity(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut proto = pb::ModelProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
    let graph = proto.graph.as_mut().ok_or("the model has no graph")?;
    let mut replaced = Vec::new();
    for node in &mut graph.node {
        if node.op_type == "ZipMap"
            && node.output.len() == 1
            && graph.output.iter().any(|o| o.name == node.output[0])
        {
            node.op_type = "Identity".into();
            node.domain.clear();
            node.attribute.clear();
            replaced.push(node.output[0].clone());
        }
    }
    for output in graph
        .output
        .iter_mut()
        .filter(|o| replaced.contains(&o.name))
    {
        output.r#type = Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1, // float
                shape: None,
            })),
            ..Default::default()
        });
    }
    Ok(proto.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn versions_compare_numerically() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "libonnxruntime.so.1.9.0",
            "libonnxruntime.so.1.20.1",
            "libonnxruntime.so.1.3.10",
            "libonnxruntime_providers_shared.so",
        ] {
            touch(&dir.path().join(name));
        }
        assert_eq!(
            newest_library(dir.path()).unwrap(),
            dir.path().join("libonnxruntime.so.1.20.1")
        );
        assert_eq!(library_version("libonnxruntime.so"), Some(vec![]));
        assert_eq!(
            library_version("libonnxruntime.1.20.1.dylib"),
            Some(vec![1, 20, 1])
        );
        assert_eq!(library_version("libonnxruntime.so.1.x"), None);
        assert_eq!(library_version("libonnxruntime_providers_shared.so"), None);
    }

    #[test]
    fn sources_are_explicit_and_in_order() {
        let root = tempfile::tempdir().unwrap();
        let venv = root.path().join("venv");
        let in_venv =
            venv.join("lib/python3.12/site-packages/onnxruntime/capi/libonnxruntime.so.1.2.0");
        let system = root.path().join("usr-local-lib");
        let in_system = system.join("libonnxruntime.so.1.3.0");
        let site = root.path().join("site");
        let in_python = site.join("onnxruntime/capi/libonnxruntime.so.1.4.0");
        for p in [&in_venv, &in_system, &in_python] {
            touch(p);
        }
        let python = || vec![site.clone()];
        assert_eq!(
            locate(
                Some(in_python.clone()),
                Some(venv.clone()),
                vec![system.clone()],
                python
            ),
            Ok((LibrarySource::Variable, in_python.clone()))
        );
        assert_eq!(
            locate(None, Some(venv.clone()), vec![system.clone()], python),
            Ok((LibrarySource::VirtualEnv, in_venv))
        );
        assert_eq!(
            locate(None, None, vec![system.clone()], python),
            Ok((LibrarySource::System, in_system))
        );
        assert_eq!(
            locate(None, None, vec![], python),
            Ok((LibrarySource::Python, in_python))
        );
        let missing = root.path().join("nope.so");
        let err = locate(Some(missing), None, vec![], python).unwrap_err();
        assert!(err.contains("ORT_DYLIB_PATH is set to"), "{err}");
        let err = locate(None, None, vec![], Vec::new).unwrap_err();
        assert!(err.starts_with("no onnxruntime library found"), "{err}");
    }
}
