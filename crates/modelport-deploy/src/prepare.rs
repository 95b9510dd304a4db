//! Before anything is created: `compute` checked against the catalog, the model
//! packaged, the provider's plan, and what it costs. `modelport plan` prints this;
//! `deploy` prints it and then rolls it out.
//!
//! The cost lines never come from the provider: they come from the catalog
//! (`modelport-catalog`) and the spec, so every provider gets the same prices,
//! limits and fit checks, and a new backend gets them for free.

use std::path::{Path, PathBuf};

use modelport_catalog::{
    Catalog, Catalogs, Compute, Cost, Finding, FitFilter, ModelFootprint, Offer, PayloadLimit,
    dollars, local_payload_limit,
};
use modelport_compress::{CompressReport, EvalSet, Goal, Options as CompressOptions, Settings};
use modelport_core::Signature;
use modelport_core::provider::{ActionKind, ArtifactRef, Copies, Plan, Provider, Reporter, Unit};
use modelport_core::spec::CompressSpec;
use modelport_core::spec::DeploymentSpec;
use modelport_core::state::{DeploymentState, RolloutMode, Workspace};
use modelport_package::{PackStep, PackageOptions, package_with_progress};
use modelport_runtime::{ModelInfo, RuntimeOptions, samples};
use serde_json::json;

use crate::error::{DeployError, Result};

/// The file, in a deployment's working directory, that records the spec of the
/// revision that serves, so that `plan` and `list` can price what runs now.
const DEPLOYED_SPEC: &str = "deployed-spec.json";

/// A plan with its cost, limits and warnings.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub compute: Compute,
    /// What runs now costs; `None` when the recorded state does not say what runs.
    pub before: Option<Cost>,
    pub after: Cost,
    pub payload: PayloadLimit,
    pub warnings: Vec<Finding>,
    /// `Vertex AI list prices in us-central1 as of 2025-01-15 (embedded providers/gcp.yaml)`.
    pub prices: Option<String>,
    /// With `model.compress`: the gate's result, original → compressed.
    pub compression: Option<CompressReport>,
    /// With `model.compress` on a cloud: where each model fits, cheapest first.
    pub compressed_fit: Option<CompressedFit>,
}

impl Planned {
    /// What the rollout costs by the hour at its most expensive stage, while both
    /// revisions (and any verification copy) run, with what runs then; `None` when
    /// nothing hourly is billed or what runs now is unknown.
    pub fn peak(&self) -> Option<(f64, Copies)> {
        let before = self.before.as_ref()?;
        if !self.after.billable || self.after.per_use.is_some() || self.plan.is_noop() {
            return None;
        }
        let old = if before.billable {
            before.usd_per_hour_max
        } else {
            0.0
        };
        self.plan
            .rollout
            .stages
            .iter()
            .map(|c| {
                let copies = Copies::of(if old > 0.0 { c.old } else { 0 }, c.new);
                let cost = f64::from(copies.old) * old
                    + f64::from(copies.new) * self.after.usd_per_hour_max;
                (cost, copies)
            })
            .reduce(|a, b| if b.0 > a.0 { b } else { a })
    }

    /// True when applying the plan starts something billed.
    pub fn creates_billable(&self) -> bool {
        self.after.billable
            && self
                .plan
                .actions
                .iter()
                .any(|a| matches!(a.kind, ActionKind::Create | ActionKind::Update))
    }

    /// The documented `--output json` form of a plan.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "name": self.plan.name,
            "provider": self.plan.provider,
            "changes": !self.plan.is_noop(),
            "actions": self.plan.actions,
            "artifact": self.plan.artifact,
            "rollout": self.plan.rollout,
            "rollout_peak_usd_per_hour": self.peak().map(|p| p.0),
            "compute": self.compute,
            "cost": {
                "currency": "USD",
                "hours_per_month": modelport_catalog::HOURS_PER_MONTH,
                "before": self.before,
                "after": self.after,
                "prices": self.prices,
            },
            "payload_limit": self.payload,
            "warnings": self.warnings,
            "compression": self.compression,
            "compressed_fit": self.compressed_fit,
        })
    }
}

/// A scratch directory removed when dropped, however the command ends.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// `<workspace>/tmp/<pid>-<what>-<n>` (see [`Workspace::scratch_path`], which
    /// also removes what crashed commands left there).
    pub fn new(ws: &Workspace, what: &str) -> Result<Scratch> {
        Ok(Scratch(ws.scratch_path(what)?))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The model packaged and described: what `prepare` plans with.
#[derive(Debug, Clone)]
pub struct Packaged {
    pub artifact: ArtifactRef,
    pub footprint: ModelFootprint,
    /// With `model.compress`: what the gate found, and the original model the
    /// endpoint is proved against.
    pub compression: Option<Compression>,
}

/// A model compressed for a deploy, and what proves it.
#[derive(Debug, Clone)]
pub struct Compression {
    /// The gate's result: original → compressed, on this machine.
    pub report: CompressReport,
    /// A copy of the original model, taken before compressing, in the scratch folder.
    pub original: PathBuf,
    pub goals: Vec<Goal>,
    /// The gate's inputs (and labels), which the endpoint is given too.
    pub eval: EvalSet,
    /// What the original model weighs, for the fit check's comparison.
    pub original_footprint: ModelFootprint,
}

/// The cheapest machines (CPU only) the compressed and the original model fit on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompressedFit {
    pub compressed: Option<Offer>,
    pub original: Option<Offer>,
}

/// The gate's inputs for a deploy: `model.compress.eval`, else `verify.samples`,
/// else generated from the signature as the comparison does.
fn eval_set(spec: &DeploymentSpec, c: &CompressSpec, signature: &Signature) -> Result<EvalSet> {
    let file = c
        .eval
        .as_deref()
        .map(|p| spec.resolve_path(p))
        .or_else(|| spec.samples_path());
    Ok(match file {
        Some(path) => EvalSet::read(&path, signature).map_err(|e| DeployError::Other {
            message: format!("the evaluation inputs of `model.compress` do not fit the model: {e}"),
            hint: Some(
                "`model.compress.eval` (else `verify.samples`) names the file: JSON \
                 {\"instances\": [...], \"labels\": [...]}, .npy or CSV"
                    .into(),
            ),
        })?,
        None => EvalSet {
            inputs: samples::generate(signature, spec.verify.count as usize, spec.verify.seed)?,
            labels: None,
            source: format!(
                "{} generated inputs (seed {})",
                spec.verify.count, spec.verify.seed
            ),
        },
    })
}

/// `model.compress` as the compressor's settings and goals.
pub fn compress_settings(c: &CompressSpec) -> Result<(Settings, Vec<Goal>)> {
    let settings = Settings {
        to: c.to,
        per_channel: c.per_channel,
        prune: c.prune,
        exclude: c.exclude.clone(),
    };
    let goals = c
        .goals()
        .iter()
        .map(|g| {
            g.parse::<Goal>().map_err(|e| DeployError::Other {
                message: format!("model.compress.max_degradation: {e}"),
                hint: Some("`agreement: 1%`, `accuracy: 0.01`, `max_abs: 0.05`, `sqnr: 30`".into()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((settings, goals))
}

/// Copies the model (a file and its external data, or a folder and its files) into
/// `to`; returns the copy.
fn copy_model(model: &Path, data_files: &[String], to: &Path) -> Result<PathBuf> {
    let io = |p: &Path, e| DeployError::Core(modelport_core::Error::io(p, e));
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    let name = model
        .file_name()
        .ok_or_else(|| DeployError::other(format!("{} names no file", model.display())))?;
    let copy = to.join(name);
    // The external data, at the same paths relative to the model file.
    let (from, into) = if model.is_dir() {
        std::fs::create_dir_all(&copy).map_err(|e| io(&copy, e))?;
        for entry in std::fs::read_dir(model).map_err(|e| io(model, e))? {
            let path = entry.map_err(|e| io(model, e))?.path();
            if path.is_file() {
                std::fs::copy(&path, copy.join(path.file_name().expect("a file")))
                    .map_err(|e| io(&path, e))?;
            }
        }
        (model, copy.as_path())
    } else {
        std::fs::copy(model, &copy).map_err(|e| io(model, e))?;
        (model.parent().unwrap_or(Path::new("")), to)
    };
    for location in data_files {
        let target = into.join(location);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::copy(from.join(location), &target).map_err(|e| io(&target, e))?;
    }
    Ok(copy)
}

/// Compresses the spec's model into `scratch` and gates it; a missed goal is
/// [`DeployError::Gate`]. Blocking.
fn compress_model(
    spec: &DeploymentSpec,
    c: &CompressSpec,
    scratch: &Path,
) -> Result<(PathBuf, Compression)> {
    let model = spec.model_path();
    let info = ModelInfo::from_path(&model)?;
    let (settings, goals) = compress_settings(c)?;
    let eval = eval_set(spec, c, &info.signature)?;
    let original = copy_model(&model, &info.data_files(), &scratch.join("original"))?;
    let original_footprint = ModelFootprint {
        file_bytes: info.size_bytes,
        parameters: info.parameters,
        weight_bytes: info.weight_bytes,
    };
    let out = scratch.join("compressed").join("model.onnx");
    let opts = CompressOptions {
        settings,
        goals: goals.clone(),
        auto: c.auto,
        engine: spec.serving.engine,
        runtime: RuntimeOptions::default(),
        measure: false,
    };
    let report = modelport_compress::compress(&original, &out, &eval, &opts)?;
    if !report.passed() {
        return Err(DeployError::Gate(Box::new(report)));
    }
    // The compressed model alone in its folder (with its external data, if any).
    let source = if report.written.len() > 1 {
        scratch.join("compressed")
    } else {
        out
    };
    Ok((
        source,
        Compression {
            report,
            original,
            goals,
            eval,
            original_footprint,
        },
    ))
}

/// Packages the spec's model into `scratch` (compressed first when the spec says
/// so); also says what the model weighs, for the fit check. Blocking.
fn package_model(
    spec: &DeploymentSpec,
    scratch: &Path,
    progress: &mut dyn FnMut(PackStep, u64, u64),
) -> Result<Packaged> {
    let (model, compression) = match &spec.model.compress {
        None => (spec.model_path(), None),
        Some(c) => {
            let (model, compression) = compress_model(spec, c, scratch)?;
            (model, Some(compression))
        }
    };
    let info = ModelInfo::from_path(&model)?;
    let opts = PackageOptions {
        signature: Some(info.signature.clone()),
        data_files: info.data_files(),
        layout: spec.artifact_layout(info.size_bytes),
        ..PackageOptions::default()
    };
    let artifact = package_with_progress(&model, scratch, &opts, progress)?;
    Ok(Packaged {
        artifact: ArtifactRef {
            model_digest: artifact.manifest.digest(),
            path: artifact.path,
            digest: artifact.digest,
            size: artifact.size,
            layout: artifact.layout,
            signature: Some(info.signature),
        },
        footprint: ModelFootprint {
            file_bytes: info.size_bytes,
            parameters: info.parameters,
            weight_bytes: info.weight_bytes,
        },
        compression,
    })
}

/// [`package_model`] off the async threads, said on `reporter`.
pub async fn package_in(
    spec: &DeploymentSpec,
    scratch: &Scratch,
    reporter: &dyn Reporter,
) -> Result<Packaged> {
    reporter.on_start(&match &spec.model.compress {
        Some(_) => format!("compressing and packaging {}", spec.model_path().display()),
        None => format!("packaging {}", spec.model_path().display()),
    });
    let spec = spec.clone();
    let dir = scratch.path().to_path_buf();
    // The bytes each pass has read, from the blocking task to `reporter`.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut work = tokio::task::spawn_blocking(move || {
        package_model(&spec, &dir, &mut |step, done, total| {
            let _ = tx.send((step, done, total));
        })
    });
    let say = |(step, done, total): (PackStep, u64, u64)| {
        reporter.on_amount(step.describe(), done, total, Unit::Bytes)
    };
    let result = loop {
        tokio::select! {
            biased;
            Some(moved) = rx.recv() => say(moved),
            r = &mut work => break r,
        }
    };
    while let Ok(moved) = rx.try_recv() {
        say(moved);
    }
    result.map_err(|e| DeployError::other(format!("packaging stopped: {e}")))?
}

/// The compute of `spec` on `provider`, checked against its catalog: a wrong
/// instance type fails here, before anything is packaged or created.
pub fn check_compute(spec: &DeploymentSpec, provider: &dyn Provider) -> Result<Compute> {
    compute_in(spec, Catalogs::from_env()?.get(provider.name()))
}

/// The compute of `spec` in `catalog` (`None`: this machine, nothing billed).
fn compute_in(spec: &DeploymentSpec, catalog: Option<&Catalog>) -> Result<Compute> {
    Ok(match catalog {
        Some(c) => c.compute(spec).map_err(modelport_core::Error::Spec)?,
        None => Compute::Local,
    })
}

/// The state of `spec`'s deployment, refused when it belongs to another provider.
pub fn recorded_state(
    spec: &DeploymentSpec,
    ws: &Workspace,
    provider: &dyn Provider,
) -> Result<Option<DeploymentState>> {
    let previous = ws.load_state(spec.name.as_str())?;
    if let Some(prev) = &previous
        && prev.provider != provider.name()
    {
        return Err(DeployError::Other {
            message: format!(
                "deployment {:?} exists on provider {:?}",
                prev.name, prev.provider
            ),
            hint: Some(format!(
                "`modelport destroy {}` first, or give this one another name",
                prev.name
            )),
        });
    }
    Ok(previous)
}

/// Plans `packaged` against `previous`, with the cost, without changing anything.
pub async fn plan(
    spec: &DeploymentSpec,
    ws: &Workspace,
    provider: &dyn Provider,
    packaged: &Packaged,
    previous: Option<&DeploymentState>,
    mode: RolloutMode,
) -> Result<Planned> {
    let catalogs = Catalogs::from_env()?;
    let catalog = catalogs.get(provider.name());
    let compute = compute_in(spec, catalog)?;
    let plan = provider
        .plan(spec, &packaged.artifact, previous, mode)
        .await?;
    let after = compute.cost();
    let before = match previous.filter(|s| s.active.is_some()) {
        None => Some(Cost::free()),
        Some(_) if plan.is_noop() => Some(after.clone()),
        Some(state) => recorded_cost(ws, state, catalog),
    };
    let mut warnings = Vec::new();
    if let Some(c) = catalog {
        warnings.extend(c.region_note(spec));
        warnings.extend(c.fit(&compute, &packaged.footprint));
    }
    Ok(Planned {
        payload: catalog.map_or_else(|| local_payload_limit(spec), |c| c.payload_limit(spec)),
        prices: catalog.map(price_line),
        plan,
        compute,
        before,
        after,
        warnings,
        compression: packaged.compression.as_ref().map(|c| c.report.clone()),
        compressed_fit: match (catalog, &packaged.compression) {
            (Some(c), Some(z)) => {
                let cheapest = |f: &ModelFootprint| {
                    c.cheapest_fits(f, &FitFilter::default()).into_iter().next()
                };
                Some(CompressedFit {
                    compressed: cheapest(&packaged.footprint),
                    original: cheapest(&z.original_footprint),
                })
            }
            _ => None,
        },
    })
}

/// Checks the spec against the catalog, packages the model into `scratch` and
/// plans against the recorded state, without changing anything.
pub async fn prepare(
    spec: &DeploymentSpec,
    ws: &Workspace,
    provider: &dyn Provider,
    scratch: &Scratch,
    mode: RolloutMode,
    reporter: &dyn Reporter,
) -> Result<Planned> {
    check_compute(spec, provider)?;
    let previous = recorded_state(spec, ws, provider)?;
    let packaged = package_in(spec, scratch, reporter).await?;
    plan(spec, ws, provider, &packaged, previous.as_ref(), mode).await
}

fn price_line(c: &Catalog) -> String {
    format!(
        "{} on-demand list prices in {} as of {} ({}); refresh with `modelport catalog refresh`",
        c.platform.title(),
        c.region,
        c.price_date(),
        c.origin
    )
}

/// Records the spec of the revision that now serves, after a deploy switched to it.
pub fn record_deployed(ws: &Workspace, state: &DeploymentState, spec: &DeploymentSpec) {
    let Some(active) = &state.active else {
        return;
    };
    let dir = ws.deployment_dir(&state.name);
    let body = json!({"spec_hash": active.spec_hash, "spec": spec});
    let write = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(DEPLOYED_SPEC), body.to_string()));
    // Only prices depend on it: a failure costs a `?` in `list`, not the deploy.
    if let Err(e) = write {
        tracing::warn!("cannot record the deployed spec in {}: {e}", dir.display());
    }
}

/// The spec of the revision that serves: as recorded by the deploy that switched to
/// it, else the state's spec file when it still hashes the same.
fn deployed_spec(ws: &Workspace, state: &DeploymentState) -> Option<DeploymentSpec> {
    let active = state.active.as_ref()?;
    let path = ws.deployment_dir(&state.name).join(DEPLOYED_SPEC);
    if let Ok(text) = std::fs::read_to_string(path)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && v["spec_hash"] == active.spec_hash.as_str()
        && let Ok(mut spec) = serde_json::from_value::<DeploymentSpec>(v["spec"].clone())
    {
        spec.file = state.spec_file.clone();
        return Some(spec);
    }
    let spec = DeploymentSpec::from_file(&state.spec_file).ok()?;
    (modelport_package::spec_hash(&spec) == active.spec_hash).then_some(spec)
}

/// What the serving revision of `state` costs, when the state says what it runs.
fn recorded_cost(
    ws: &Workspace,
    state: &DeploymentState,
    catalog: Option<&Catalog>,
) -> Option<Cost> {
    match catalog {
        None => Some(Cost::free()),
        Some(c) => c.compute(&deployed_spec(ws, state)?).ok().map(|c| c.cost()),
    }
}

/// `$0.115/h` for `list`: what a deployment's serving revision costs by the hour,
/// `$0` on this machine, `?` when the state does not say what runs.
pub fn hourly(
    ws: &Workspace,
    catalogs: &Catalogs,
    state: &DeploymentState,
) -> (String, Option<f64>) {
    match recorded_cost(ws, state, catalogs.get(&state.provider)) {
        Some(c) if c.per_use.is_some() => ("per use".into(), Some(0.0)),
        Some(c) => (
            format!("{}/h", dollars(c.usd_per_hour)),
            Some(c.usd_per_hour),
        ),
        None => ("?".into(), None),
    }
}
