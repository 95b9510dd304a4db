//! The comparison a rollout runs on its pending revision: the same inputs to the
//! pending endpoint and to the local reference runtime, loaded from the packaged
//! artifact (the very bytes the endpoint serves, not the model file beside the spec,
//! which may have changed since it was packaged).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use modelport_compress::{EvalSet, GateReport, Goal};
use modelport_core::provider::{ArtifactRef, Reporter};
use modelport_core::spec::{EngineChoice, VerifySpec};
use modelport_core::state::Workspace;
use modelport_core::{Batch, PredictError, Predictor, failpoint};
use modelport_runtime::{RuntimeOptions, samples};
use modelport_verify::{CompareReport, LocalPredictor};

use crate::error::{DeployError, Result};

/// What a comparison of the pending revision found.
#[derive(Debug)]
pub enum Verdict {
    /// Every output is within the tolerances and every answer came from the revision.
    Passed(CompareReport),
    /// The revision answered wrongly, or an answer came from something else.
    Failed {
        report: Option<CompareReport>,
        reason: String,
    },
}

/// Compares a pending revision's endpoint with what it should answer.
#[async_trait::async_trait]
pub trait Verifier: Send + Sync {
    /// Runs the comparison, saying on `reporter` how far it is; an error means it
    /// could not run at all.
    async fn verify(&self, endpoint: &dyn Predictor, reporter: &dyn Reporter) -> Result<Verdict>;
}

/// The comparison `deploy` runs: the artifact's model on the local runtime is the
/// reference, the inputs are the spec's samples or generated from the signature.
#[derive(Debug, Clone)]
pub struct ReferenceVerifier {
    pub workspace: Workspace,
    pub artifact: ArtifactRef,
    /// How reports name the reference: the model path as the spec gives it.
    pub label: String,
    pub engine: EngineChoice,
    /// With `samples` resolved against the spec's directory.
    pub verify: VerifySpec,
    /// How many of the worst examples a report keeps.
    pub worst: usize,
    /// With `model.compress`: the endpoint is also held to the gate's goal against
    /// the original, uncompressed model.
    pub compression: Option<EndpointGate>,
}

/// The second hop of a compressed deploy: original → endpoint.
#[derive(Debug, Clone)]
pub struct EndpointGate {
    /// The original model (a copy taken before compressing).
    pub original: PathBuf,
    /// Empty: the default goal.
    pub goals: Vec<Goal>,
    /// The gate's inputs and labels.
    pub eval: EvalSet,
    /// What the last verification found, for the report.
    pub result: Arc<Mutex<Option<GateReport>>>,
}

impl EndpointGate {
    /// What the last verification found: original → endpoint.
    pub fn last(&self) -> Option<GateReport> {
        self.result.lock().ok().and_then(|r| r.clone())
    }

    /// Holds the endpoint's answers on the gate's inputs to the goal against the
    /// original model run here.
    async fn check(&self, endpoint: &dyn Predictor, engine: EngineChoice) -> Result<GateReport> {
        let answered = endpoint.predict(&self.eval.inputs).await.map_err(|e| {
            DeployError::Compare(Box::new(DeployError::other(format!(
                "the endpoint could not answer the gate's inputs: {e}"
            ))))
        })?;
        let (original, inputs) = (self.original.clone(), self.eval.inputs.clone());
        let (reference, specs) = tokio::task::spawn_blocking(move || -> Result<_> {
            let model = modelport_runtime::load(&original, engine, &RuntimeOptions::default())?;
            let out = modelport_compress::run_all(model.as_ref(), &inputs)?;
            Ok((out, model.signature().outputs.clone()))
        })
        .await
        .map_err(|e| DeployError::other(format!("running the original model stopped: {e}")))?
        .map_err(|e| DeployError::Compare(Box::new(e)))?;
        let goals = if self.goals.is_empty() {
            modelport_compress::default_goals()
        } else {
            self.goals.clone()
        };
        let report = modelport_compress::gate::evaluate(
            &answered.outputs,
            &reference,
            &specs,
            self.eval.labels.as_deref(),
            &goals,
        );
        if let Ok(mut last) = self.result.lock() {
            *last = Some(report.clone());
        }
        Ok(report)
    }
}

impl ReferenceVerifier {
    /// Loads the reference and the inputs. Blocking.
    fn load(&self) -> Result<(LocalPredictor, Batch)> {
        if failpoint::hit("verify.reference") == Some(failpoint::Action::Error) {
            return Err(DeployError::FailPoint("verify.reference".into()));
        }
        let (dir, manifest) = modelport_local::install(&self.workspace, &self.artifact)?;
        let model = dir.join(&manifest.model.file);
        let reference = LocalPredictor::load(
            &model,
            self.engine,
            &RuntimeOptions::default(),
            self.label.clone(),
            Some(format!("sha256:{}", self.artifact.model_digest)),
        )?;
        let signature = reference.model_signature().clone();
        let inputs = match &self.verify.samples {
            Some(path) => {
                let bad = |e: &dyn std::fmt::Display| DeployError::Other {
                    message: format!(
                        "the samples in {} do not fit the model: {e}",
                        path.display()
                    ),
                    hint: Some(
                        "`verify.samples` in modelport.yaml names the file; it must hold inputs \
                         the model takes (JSON, .npy or CSV; `modelport inspect` shows them)"
                            .into(),
                    ),
                };
                let batch =
                    modelport_verify::inputs::read_inputs(path, &signature).map_err(|e| bad(&e))?;
                // Checked here, so that the error names the file rather than the
                // endpoint that refused the rows.
                signature.check_inputs(&batch).map_err(|e| bad(&e))?;
                batch
            }
            None => samples::generate(&signature, self.verify.count as usize, self.verify.seed)?,
        };
        Ok((reference, inputs))
    }
}

#[async_trait::async_trait]
impl Verifier for ReferenceVerifier {
    async fn verify(&self, endpoint: &dyn Predictor, reporter: &dyn Reporter) -> Result<Verdict> {
        let this = self.clone();
        let (reference, inputs) = tokio::task::spawn_blocking(move || this.load())
            .await
            .map_err(|e| DeployError::other(format!("loading the reference stopped: {e}")))?
            .map_err(|e| DeployError::Compare(Box::new(e)))?;
        let result = modelport_verify::run::compare_reporting(
            endpoint,
            &reference,
            &inputs,
            &self.verify,
            self.worst,
            reporter,
        )
        .await;
        match result {
            Ok(report) if report.passed() => match &self.compression {
                None => Ok(Verdict::Passed(report)),
                Some(gate) => {
                    let g = gate.check(endpoint, self.engine).await?;
                    if g.passed {
                        Ok(Verdict::Passed(report))
                    } else {
                        Ok(Verdict::Failed {
                            reason: format!(
                                "the new revision misses the compression goal against the original model on {} samples",
                                g.samples
                            ),
                            report: Some(report),
                        })
                    }
                }
            },
            Ok(report) => Ok(Verdict::Failed {
                reason: format!(
                    "the new revision does not match the model on {} samples",
                    report.samples()
                ),
                report: Some(report),
            }),
            Err(e) => match &e.source {
                PredictError::Identity { message, .. } => Ok(Verdict::Failed {
                    report: None,
                    reason: message.clone(),
                }),
                _ => Err(DeployError::Compare(Box::new(e.into()))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use modelport_compress::{Options, Settings};
    use modelport_runtime::ModelInfo;

    use super::*;

    fn cnn() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cnn/model.onnx")
    }

    /// The second hop fails an endpoint whose answers are far from the original's,
    /// and passes one that answers like it; the report is kept for the CLI.
    #[tokio::test]
    async fn the_endpoint_is_held_to_the_goal_against_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let info = ModelInfo::from_path(&cnn()).unwrap();
        let eval = EvalSet::read(&cnn().with_file_name("samples.json"), &info.signature).unwrap();
        let goals: Vec<Goal> = vec!["sqnr=30".parse().unwrap()];
        // A candidate with nearly every weight pruned, written whatever the gate says.
        let pruned = dir.path().join("pruned.onnx");
        let opts = Options {
            settings: Settings {
                prune: Some(0.99),
                ..Settings::default()
            },
            goals: vec!["agreement=100%".parse().unwrap()],
            auto: false,
            engine: EngineChoice::Tract,
            runtime: RuntimeOptions::default(),
            measure: false,
        };
        assert!(
            modelport_compress::compress(&cnn(), &pruned, &eval, &opts)
                .unwrap()
                .passed()
        );
        let gate = EndpointGate {
            original: cnn(),
            goals,
            eval,
            result: Default::default(),
        };
        let endpoint = |p: &Path| {
            LocalPredictor::load(
                p,
                EngineChoice::Tract,
                &RuntimeOptions::default(),
                "endpoint",
                None,
            )
            .unwrap()
        };
        let bad = gate
            .check(&endpoint(&pruned), EngineChoice::Tract)
            .await
            .unwrap();
        assert!(!bad.passed, "{bad:?}");
        assert_eq!(gate.last(), Some(bad));
        let good = gate
            .check(&endpoint(&cnn()), EngineChoice::Tract)
            .await
            .unwrap();
        assert!(good.passed, "{good:?}");
        assert_eq!(good.samples, 8);
    }
}
