//! Model compression with an accuracy gate.
//!
//! [`compress`] makes a smaller model (float16, eight-bit weights, dynamic int8,
//! magnitude pruning) on the ONNX protobuf the rest of the workspace reads, then
//! runs the original and the compressed model on the same inputs and holds the
//! result to a goal ([`gate`]): label agreement, accuracy against labels, errors,
//! SQNR, and never a NaN or infinity the original does not give. `auto` leaves the
//! nodes that cost the most accuracy uncompressed until the goal is met.
//!
//! No I/O beyond files and the local engines: `modelport compress` prints the
//! [`CompressReport`], and a deploy with `model.compress` packages the result and
//! proves the endpoint against the original with the same [`gate`].

pub mod error;
pub mod fp16;
pub mod gate;
pub mod int8;
pub mod onnx;
pub mod report;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use modelport_core::{Batch, Signature, TensorSpec};
use modelport_runtime::{EngineChoice, EngineKind, LoadedModel, ModelInfo, RuntimeOptions};
use serde::Serialize;

pub use error::{CompressError, Result};
pub use gate::{GateReport, Goal, Metric, default_goals};
pub use report::{render_gate, render_summary, render_text};

use crate::onnx::Model;

/// What a model is compressed to: `fp16`, `int8` (weight-only) or `int8-dynamic`;
/// the spec's `model.compress.to` is the same type.
pub use modelport_core::spec::CompressTo as Method;

/// How to compress, as `modelport compress` and `model.compress` say it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Settings {
    pub to: Option<Method>,
    pub per_channel: bool,
    /// The fraction of each weight's smallest values set to zero.
    pub prune: Option<f64>,
    /// Node names or operator types left as they are.
    pub exclude: Vec<String>,
}

impl Settings {
    /// Checks the combination before any work.
    pub fn check(&self) -> Result<()> {
        if self.to.is_none() && self.prune.is_none() {
            return Err(CompressError::option(
                "--to",
                "nothing to do: no method and no pruning",
                "give `--to fp16`, `--to int8` or `--to int8-dynamic`, `--prune SPARSITY`, or both",
            ));
        }
        if let Some(s) = self.prune
            && !(0.0..1.0).contains(&s)
        {
            return Err(CompressError::option(
                "--prune",
                format!("{s} is not a sparsity in [0, 1)"),
                "`--prune 0.5` zeroes the smallest half of each weight",
            ));
        }
        if self.per_channel && !matches!(self.to, Some(Method::Int8 | Method::Int8Dynamic)) {
            return Err(CompressError::option(
                "--per-channel",
                "per-channel scales are for eight-bit weights",
                "use it with `--to int8` or `--to int8-dynamic`",
            ));
        }
        Ok(())
    }
}

/// What one transform did to the model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TransformStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fp16: Option<fp16::Fp16Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8: Option<int8::Int8Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<int8::PruneStats>,
}

impl TransformStats {
    /// Whether any weight changed.
    pub fn changed(&self) -> bool {
        self.fp16.as_ref().is_some_and(|f| f.converted_weights > 0)
            || self.int8.as_ref().is_some_and(|q| q.quantized_weights > 0)
            || self.prune.as_ref().is_some_and(|p| p.weights > 0)
    }
}

/// A compressed model in memory.
#[derive(Debug, Clone)]
pub struct Transformed {
    pub model: Model,
    pub stats: TransformStats,
    /// The nodes (indices in the original graph) whose compression can be undone
    /// one by one: what `auto` ranks.
    pub units: Vec<usize>,
}

/// Operators that only move data: never the reason for lost accuracy, so `auto`
/// does not spend evaluations on them.
const DATA_MOVEMENT: &[&str] = &[
    "Cast",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Expand",
    "Flatten",
    "Gather",
    "Identity",
    "Reshape",
    "Shape",
    "Size",
    "Slice",
    "Split",
    "Squeeze",
    "Tile",
    "Transpose",
    "Unsqueeze",
];

/// Applies `settings` to `original`, leaving the nodes in `excluded` alone.
pub fn transform(
    original: &Model,
    settings: &Settings,
    excluded: &HashSet<usize>,
) -> Result<Transformed> {
    let mut model = original.clone();
    let mut stats = TransformStats::default();
    let mut units: Vec<usize> = Vec::new();
    if let Some(s) = settings.prune {
        units.extend(int8::units(&model, excluded, int8::Mode::WeightOnly, true));
        stats.prune = Some(int8::prune(&mut model, excluded, s)?);
    }
    match settings.to {
        None => {}
        Some(Method::Fp16) => {
            let graph = &original.graph().node;
            units.extend(
                fp16::units(&model, excluded)
                    .into_iter()
                    .filter(|&i| !DATA_MOVEMENT.contains(&graph[i].op_type.as_str())),
            );
            stats.fp16 = Some(fp16::convert(&mut model, excluded)?);
        }
        Some(m @ (Method::Int8 | Method::Int8Dynamic)) => {
            let mode = if m == Method::Int8 {
                int8::Mode::WeightOnly
            } else {
                int8::Mode::Dynamic
            };
            units.extend(int8::units(&model, excluded, mode, false));
            stats.int8 = Some(int8::quantize(
                &mut model,
                excluded,
                mode,
                settings.per_channel,
            )?);
        }
    }
    units.sort_unstable();
    units.dedup();
    Ok(Transformed {
        model,
        stats,
        units,
    })
}

/// The node indices `exclude` names (node names or operator types); a name that
/// matches nothing is an error, so that a typo does not go unnoticed.
pub fn resolve_exclude(model: &Model, exclude: &[String]) -> Result<HashSet<usize>> {
    let nodes = &model.graph().node;
    let mut set = HashSet::new();
    for x in exclude {
        let hits: Vec<usize> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| &n.name == x || &n.op_type == x)
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            let mut ops: Vec<&str> = nodes.iter().map(|n| n.op_type.as_str()).collect();
            ops.sort_unstable();
            ops.dedup();
            return Err(CompressError::option(
                "--exclude",
                format!("{x:?} is neither a node name nor an operator type of the model"),
                format!(
                    "operator types here: {}; `modelport inspect` lists them, and node names are in the model's graph",
                    ops.join(", ")
                ),
            ));
        }
        set.extend(hits);
    }
    Ok(set)
}

/// The inputs the gate runs, and their true labels when the file has them.
#[derive(Debug, Clone)]
pub struct EvalSet {
    pub inputs: Batch,
    pub labels: Option<Vec<String>>,
    /// The file, as reports name it.
    pub source: String,
}

impl EvalSet {
    /// Reads inputs for `signature` from `path` (any form `compare` reads); a JSON
    /// file may carry `"labels": [...]`, one per row.
    pub fn read(path: &Path, signature: &Signature) -> Result<EvalSet> {
        let is_json = !matches!(
            path.extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("npy" | "csv")
        );
        let source = path.display().to_string();
        if !is_json {
            let inputs = modelport_verify::inputs::read_inputs(path, signature)?;
            return Ok(EvalSet {
                inputs,
                labels: None,
                source,
            });
        }
        let mut body = modelport_verify::inputs::read_json(path)?;
        let labels = gate::labels_of(&body)
            .transpose()
            .map_err(|m| modelport_core::Error::invalid(format!("{source}: {m}")))?;
        if let Some(map) = body.as_object_mut() {
            map.remove("labels");
        }
        let inputs = modelport_verify::inputs::decode_json(&body, path, signature)?;
        // A model with a fixed batch size takes the rows in batches of that size.
        let parts = modelport_verify::http::fixed_batches(&inputs, signature)
            .map_err(|e| modelport_core::Error::invalid(format!("{source}: {e}")))?;
        if let Some(first) = parts.first() {
            signature
                .check_inputs(first)
                .map_err(|e| modelport_core::Error::invalid(format!("{source}: {e}")))?;
        }
        if let Some(l) = &labels {
            let rows = inputs.batch_size()?;
            if l.len() != rows {
                return Err(modelport_core::Error::invalid(format!(
                    "{source}: {} labels for {rows} rows of inputs",
                    l.len()
                ))
                .into());
            }
        }
        Ok(EvalSet {
            inputs,
            labels,
            source,
        })
    }
}

/// Everything [`compress`] needs besides the files.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings: Settings,
    /// Empty: [`default_goals`].
    pub goals: Vec<Goal>,
    /// Leave the nodes that cost the most accuracy uncompressed until the goal is met.
    pub auto: bool,
    /// The engine the gate runs both models on.
    pub engine: EngineChoice,
    pub runtime: RuntimeOptions,
    /// Also measure latency on both engines and the packaged artifact's size.
    pub measure: bool,
}

/// A file's size and the tar.gz artifact modelport would upload, before and after.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    pub before: u64,
    pub after: u64,
}

/// A node left uncompressed.
#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    pub node: String,
    pub op_type: String,
    /// `user` (`--exclude`) or `auto`.
    pub by: &'static str,
}

/// One engine's view of both models.
#[derive(Debug, Clone, Serialize)]
pub struct EngineRun {
    pub engine: EngineKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why the engine could not run the original or the compressed model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Median milliseconds to run the whole evaluation set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_before: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_after: Option<f64>,
}

/// What `modelport compress` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CompressReport {
    pub model: PathBuf,
    /// The files written; empty when the gate failed and nothing was written.
    pub written: Vec<PathBuf>,
    pub out: PathBuf,
    pub settings: Settings,
    /// The engine the gate ran on.
    pub engine: String,
    pub eval: String,
    pub labelled: bool,
    pub file: Sizes,
    /// Bytes of weights (initializers and weight attributes).
    pub weights: Sizes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Sizes>,
    pub transform: TransformStats,
    pub excluded: Vec<Excluded>,
    pub gate: GateReport,
    /// With `auto`: whether leaving nodes out could meet the goal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto: Option<String>,
    pub engines: Vec<EngineRun>,
    pub notes: Vec<String>,
}

impl CompressReport {
    pub fn passed(&self) -> bool {
        self.gate.passed
    }
}

/// Runs `model` on `inputs`, in the model's fixed batch size when it has one.
pub fn run_all(model: &dyn LoadedModel, inputs: &Batch) -> Result<Batch> {
    let parts = modelport_verify::http::fixed_batches(inputs, model.signature())
        .map_err(|e| modelport_core::Error::invalid(e.to_string()))?;
    let outs = parts
        .iter()
        .map(|b| model.run(b))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(match outs.len() {
        1 => outs.into_iter().next().expect("one"),
        _ => Batch::concat_rows(&outs)?,
    })
}

/// A candidate written to a scratch file and loaded, with its gate result.
struct Attempt {
    transformed: Transformed,
    gate: GateReport,
}

struct Gate<'a> {
    original: &'a Model,
    settings: &'a Settings,
    scratch: tempfile::TempDir,
    engine: Arc<dyn modelport_runtime::Engine>,
    reference: Batch,
    specs: Vec<TensorSpec>,
    eval: &'a EvalSet,
    goals: &'a [Goal],
    runs: usize,
}

impl Gate<'_> {
    fn attempt(&mut self, excluded: &HashSet<usize>) -> Result<Attempt> {
        let transformed = transform(self.original, self.settings, excluded)?;
        self.runs += 1;
        let path = self
            .scratch
            .path()
            .join(format!("candidate-{}", self.runs))
            .join("model.onnx");
        transformed.model.write(&path)?;
        let info = ModelInfo::from_path(&path)?;
        let loaded = self.engine.load(&info).map_err(|e| CompressError::Unsupported {
            reason: format!("the {} engine does not load the compressed model: {e}", self.engine.info().engine),
            hint: format!(
                "leave the failing operator out with `--exclude OP_TYPE`, or gate on the other engine (`--engine {}`)",
                self.engine.info().engine.other()
            ),
        })?;
        let out = run_all(loaded.as_ref(), &self.eval.inputs)?;
        let gate = gate::evaluate(
            &out,
            &self.reference,
            &self.specs,
            self.eval.labels.as_deref(),
            self.goals,
        );
        let _ = std::fs::remove_dir_all(path.parent().expect("a folder"));
        Ok(Attempt { transformed, gate })
    }
}

/// The files of a model on disk and their total size.
fn files_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Compresses the model at `path` into `out` and gates it on `eval`.
///
/// A gate that fails is a report with `passed() == false` and nothing written,
/// not an error: errors are for what could not run at all.
pub fn compress(path: &Path, out: &Path, eval: &EvalSet, opts: &Options) -> Result<CompressReport> {
    opts.settings.check()?;
    let info = ModelInfo::from_path(path)?;
    let original = Model::read(&info.path)?;
    let user_excluded = resolve_exclude(&original, &opts.settings.exclude)?;
    let goals = if opts.goals.is_empty() {
        default_goals()
    } else {
        opts.goals.clone()
    };
    if eval.labels.is_none() && goals.iter().any(|g| g.metric == Metric::Accuracy) {
        return Err(CompressError::option(
            "--max-degradation",
            "an accuracy goal needs labels, and the evaluation inputs have none",
            "give `--eval FILE` with {\"instances\": [...], \"labels\": [...]}",
        ));
    }
    let engine = modelport_runtime::open_engine(opts.engine, &opts.runtime)?;
    let reference_model = engine.load(&info)?;
    let reference = run_all(reference_model.as_ref(), &eval.inputs)?;
    let mut gate = Gate {
        original: &original,
        settings: &opts.settings,
        scratch: tempfile::tempdir()
            .map_err(|e| CompressError::io(Path::new("a temporary folder"), e))?,
        engine: engine.clone(),
        reference,
        specs: reference_model.signature().outputs.clone(),
        eval,
        goals: &goals,
        runs: 0,
    };
    let mut excluded_by_auto: Vec<usize> = Vec::new();
    let mut best = gate.attempt(&user_excluded)?;
    if !best.transformed.stats.changed() {
        let ml = info.operators.iter().any(|o| o.domain == "ai.onnx.ml");
        return Err(CompressError::Unsupported {
            reason: format!(
                "nothing in {} can be compressed this way: no {} weight initializer{}",
                info.path.display(),
                if opts.settings.to == Some(Method::Fp16) {
                    "float32"
                } else {
                    "MatMul, Gemm, Conv or Gather"
                },
                if user_excluded.is_empty() {
                    ""
                } else {
                    " outside the excluded nodes"
                }
            ),
            hint: if ml {
                "scikit-learn exports keep their weights in the attributes of ai.onnx.ml operators \
                 (LinearClassifier, TreeEnsembleClassifier, SVMClassifier), which no method here changes"
                    .into()
            } else {
                "`modelport inspect` lists the model's operators and parameters".into()
            },
        });
    }
    let mut auto_note = None;
    if opts.auto && !best.gate.passed {
        let units = best.transformed.units.clone();
        // Each node's cost: the departure with only that node compressed.
        let mut ranked: Vec<(f64, usize)> = Vec::new();
        for &u in &units {
            let others: HashSet<usize> = units
                .iter()
                .copied()
                .filter(|&v| v != u)
                .chain(user_excluded.iter().copied())
                .collect();
            let a = gate.attempt(&others)?;
            ranked.push((gate::departure(&a.gate), u));
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let with_top = |k: usize| -> HashSet<usize> {
            user_excluded
                .iter()
                .copied()
                .chain(ranked.iter().take(k).map(|r| r.1))
                .collect()
        };
        // The fewest of the costliest nodes to leave out: doubling, then halving.
        let (mut lo, mut hi) = (0usize, None);
        let mut k = 1usize;
        while k <= ranked.len() {
            let a = gate.attempt(&with_top(k))?;
            if a.gate.passed {
                hi = Some((k, a));
                break;
            }
            lo = k;
            k = if k == ranked.len() {
                k + 1
            } else {
                (k * 2).min(ranked.len())
            };
        }
        match hi {
            None => {
                auto_note = Some(format!(
                    "cannot meet the goal: the gate fails even with all {} compressed nodes left as they were",
                    ranked.len()
                ));
            }
            Some((mut k_hi, mut a_hi)) => {
                while k_hi - lo > 1 {
                    let mid = (lo + k_hi) / 2;
                    let a = gate.attempt(&with_top(mid))?;
                    if a.gate.passed {
                        k_hi = mid;
                        a_hi = a;
                    } else {
                        lo = mid;
                    }
                }
                excluded_by_auto = ranked.iter().take(k_hi).map(|r| r.1).collect();
                auto_note = Some(format!(
                    "met the goal by leaving {k_hi} of {} compressed nodes as they were ({} evaluations)",
                    ranked.len(),
                    gate.runs
                ));
                best = a_hi;
            }
        }
    }

    let mut notes = Vec::new();
    if opts.settings.prune.is_some() {
        notes.push(
            "pruning zeroes weights: the compressed artifact shrinks, but onnxruntime and tract run \
             dense kernels, so latency does not change"
                .to_string(),
        );
    }
    if opts.settings.to == Some(Method::Fp16) {
        notes.push(
            "inputs and outputs stay float32 (modelport's wire formats carry float32)".into(),
        );
    }
    let written = if best.gate.passed {
        best.transformed.model.write(out)?
    } else {
        Vec::new()
    };
    let candidate_files = match written.is_empty() {
        false => written.clone(),
        true => best
            .transformed
            .model
            .write(&gate.scratch.path().join("failed").join("model.onnx"))?,
    };
    let after_info = ModelInfo::from_path(&candidate_files[0])?;
    let file = Sizes {
        before: info.size_bytes,
        after: files_size(&candidate_files),
    };
    let weights = Sizes {
        before: info.weight_bytes,
        after: after_info.weight_bytes,
    };
    let (artifact, engines) = if opts.measure {
        (
            Some(Sizes {
                before: package_size(path, &info, &gate.scratch.path().join("artifact-before"))?,
                after: artifact_size(&candidate_files, &after_info, gate.scratch.path(), "after")?,
            }),
            [EngineKind::Onnxruntime, EngineKind::Tract]
                .into_iter()
                .map(|k| engine_run(k, &opts.runtime, &info, &after_info, &eval.inputs))
                .collect(),
        )
    } else {
        (None, Vec::new())
    };
    let nodes = &original.graph().node;
    let excluded = user_excluded
        .iter()
        .map(|&i| (i, "user"))
        .chain(excluded_by_auto.iter().map(|&i| (i, "auto")))
        .collect::<BTreeMap<usize, &'static str>>()
        .into_iter()
        .map(|(i, by)| Excluded {
            node: onnx::node_label(&nodes[i]),
            op_type: nodes[i].op_type.clone(),
            by,
        })
        .collect();
    Ok(CompressReport {
        model: info.path.clone(),
        written,
        out: out.to_path_buf(),
        settings: opts.settings.clone(),
        engine: engine.info().to_string(),
        eval: eval.source.clone(),
        labelled: eval.labels.is_some(),
        file,
        weights,
        artifact,
        transform: best.transformed.stats,
        excluded,
        gate: best.gate,
        auto: auto_note,
        engines,
        notes,
    })
}

/// The size of the `model.tar.gz` modelport would upload for `source`.
fn package_size(source: &Path, info: &ModelInfo, dir: &Path) -> Result<u64> {
    let opts = modelport_package::PackageOptions {
        signature: Some(info.signature.clone()),
        ..Default::default()
    };
    let artifact = modelport_package::package(source, &dir.join("out"), &opts)?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(artifact.size)
}

/// The size of the `model.tar.gz` modelport would upload for these files (a
/// model and its external data), copied alone into a folder of their own.
fn artifact_size(files: &[PathBuf], info: &ModelInfo, scratch: &Path, what: &str) -> Result<u64> {
    let dir = scratch.join(format!("artifact-{what}"));
    let model_dir = dir.join("model");
    std::fs::create_dir_all(&model_dir).map_err(|e| CompressError::io(&model_dir, e))?;
    for f in files {
        let to = model_dir.join(f.file_name().expect("a file"));
        std::fs::copy(f, &to).map_err(|e| CompressError::io(f, e))?;
    }
    let source = if files.len() == 1 {
        model_dir.join(files[0].file_name().expect("a file"))
    } else {
        model_dir.clone()
    };
    let size = package_size(&source, info, &dir.join("package"))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(size)
}

/// Loads both models on `kind` and times the evaluation set on each.
fn engine_run(
    kind: EngineKind,
    runtime: &RuntimeOptions,
    before: &ModelInfo,
    after: &ModelInfo,
    inputs: &Batch,
) -> EngineRun {
    let choice = match kind {
        EngineKind::Onnxruntime => EngineChoice::Onnxruntime,
        EngineKind::Tract => EngineChoice::Tract,
    };
    let mut run = EngineRun {
        engine: kind,
        version: None,
        error: None,
        latency_ms_before: None,
        latency_ms_after: None,
    };
    let engine = match modelport_runtime::open_engine(choice, runtime) {
        Ok(e) => e,
        Err(e) => {
            run.error = Some(e.to_string());
            return run;
        }
    };
    run.version = Some(engine.info().version);
    let time = |info: &ModelInfo| -> std::result::Result<f64, String> {
        let m = engine.load(info).map_err(|e| e.to_string())?;
        run_all(m.as_ref(), inputs).map_err(|e| e.to_string())?;
        let mut times = Vec::new();
        let started = Instant::now();
        while times.len() < 3 || (started.elapsed().as_secs_f64() < 0.5 && times.len() < 50) {
            let t = Instant::now();
            run_all(m.as_ref(), inputs).map_err(|e| e.to_string())?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    };
    match time(before) {
        Ok(ms) => run.latency_ms_before = Some(ms),
        Err(e) => run.error = Some(format!("the original: {e}")),
    }
    match time(after) {
        Ok(ms) => run.latency_ms_after = Some(ms),
        Err(e) => run.error = Some(format!("the compressed model: {e}")),
    }
    run
}
