//! The local reference runtime as a [`Predictor`].

use std::path::Path;
use std::sync::Arc;

use modelport_core::{
    Batch, PredictError, Prediction, Predictor, ServedBy, Signature, TargetInfo, TargetKind,
};
use modelport_runtime::{EngineChoice, LoadedModel, RuntimeOptions};

/// A model file run in this process by one of the local engines.
pub struct LocalPredictor {
    model: Arc<dyn LoadedModel>,
    target: TargetInfo,
}

impl LocalPredictor {
    /// Loads `path` with `engine`; `label` is how reports name it.
    pub fn load(
        path: &Path,
        engine: EngineChoice,
        opts: &RuntimeOptions,
        label: impl Into<String>,
        digest: Option<String>,
    ) -> Result<LocalPredictor, modelport_runtime::RuntimeError> {
        let model = modelport_runtime::load(path, engine, opts)?;
        let info = model.engine().clone();
        Ok(LocalPredictor {
            target: TargetInfo {
                label: label.into(),
                kind: TargetKind::Model,
                location: path.display().to_string(),
                served_by: ServedBy {
                    engine: Some(info.engine.name().to_string()),
                    engine_version: Some(info.version.clone()),
                    digest,
                    revision: None,
                    image: None,
                },
            },
            model,
        })
    }

    /// The signature the engine runs the model with.
    pub fn model_signature(&self) -> &Signature {
        self.model.signature()
    }
}

#[async_trait::async_trait]
impl Predictor for LocalPredictor {
    fn target(&self) -> &TargetInfo {
        &self.target
    }

    fn signature(&self) -> Option<&Signature> {
        Some(self.model.signature())
    }

    async fn predict(&self, inputs: &Batch) -> Result<Prediction, PredictError> {
        let model = self.model.clone();
        let batches = crate::http::fixed_batches(inputs, model.signature())?;
        // Inference never runs on the executor's threads.
        let outputs = tokio::task::spawn_blocking(move || {
            let parts = batches
                .iter()
                .map(|b| model.run(b))
                .collect::<Result<Vec<_>, _>>()?;
            match parts.len() {
                1 => Ok(parts.into_iter().next().expect("one part")),
                _ => Batch::concat_rows(&parts).map_err(modelport_runtime::RuntimeError::from),
            }
        })
        .await
        .map_err(|e| PredictError::Inference(e.to_string()))?
        .map_err(|e| match e {
            modelport_runtime::RuntimeError::Input(e) => PredictError::InvalidInput(e.to_string()),
            other => PredictError::Inference(other.to_string()),
        })?;
        Ok(Prediction {
            outputs,
            served_by: self.target.served_by.clone(),
        })
    }
}
