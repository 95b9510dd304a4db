//! The tract engine: pure Rust, compiled in, needs nothing installed.
//!
//! modelport registers the `ai.onnx.ml` operators tract lacks or gets wrong (see
//! `tract_ops` and `ml`: tree ensembles, SVMs, Scaler, ZipMap) and refuses, with an
//! error naming them, the operators it still cannot run, so it never returns a
//! known-wrong answer.

use std::sync::Arc;

use modelport_core::{Batch, DType, Dim, Signature, Tensor, TensorData};
use tract_onnx::prelude::*;

use crate::error::RuntimeError;
use crate::model::ModelInfo;
use crate::{Engine, EngineInfo, EngineKind, LoadedModel, RuntimeOptions};

/// tract's version, as the Cargo.lock pins it.
const TRACT_VERSION: &str = "0.23.9";

pub struct TractEngine {
    info: EngineInfo,
}

impl TractEngine {
    pub fn new(_opts: &RuntimeOptions) -> TractEngine {
        TractEngine {
            info: EngineInfo {
                engine: EngineKind::Tract,
                version: TRACT_VERSION.into(),
            },
        }
    }

    fn framework() -> tract_onnx::Onnx {
        let mut onnx = tract_onnx::onnx();
        crate::tract_ops::register(&mut onnx.op_register);
        onnx
    }
}

impl Engine for TractEngine {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    fn unsupported_operators(&self, model: &ModelInfo) -> Vec<String> {
        let registry = Self::framework().op_register;
        model
            .operators
            .iter()
            .filter(|op| !registry.0.contains_key(&op.op_type))
            .map(|op| op.qualified())
            .collect()
    }

    fn load(&self, model: &ModelInfo) -> Result<Arc<dyn LoadedModel>, RuntimeError> {
        let unsupported = self.unsupported_operators(model);
        if !unsupported.is_empty() {
            return Err(RuntimeError::UnsupportedOperators {
                engine: EngineKind::Tract,
                operators: unsupported,
                // onnxruntime implements every standard and ai.onnx.ml operator.
                other_engine_can: true,
            });
        }
        let fail = |e: TractError| RuntimeError::Inference {
            engine: EngineKind::Tract,
            message: format!("loading {}: {e:#}", model.path.display()),
        };
        let mut m = Self::framework()
            .model_for_path(&model.path)
            .map_err(fail)?;
        for (i, spec) in model.signature.inputs.iter().enumerate() {
            let dims: TVec<TDim> = spec
                .shape
                .iter()
                .enumerate()
                .map(|(axis, d)| match d {
                    Dim::Fixed(n) => TDim::from(*n as i64),
                    Dim::Dynamic(Some(name)) => m.sym(name).into(),
                    Dim::Dynamic(None) if axis == 0 => m.sym("N").into(),
                    Dim::Dynamic(None) => m.sym(&format!("{}_{axis}", sanitize(&spec.name))).into(),
                })
                .collect();
            let fact = InferenceFact::dt_shape(datum_type(spec.dtype), dims);
            m.set_input_fact(i, fact).map_err(fail)?;
        }
        let plan = m
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(fail)?;
        Ok(Arc::new(TractModel {
            plan,
            signature: model.signature.clone(),
            info: self.info.clone(),
        }))
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn datum_type(d: DType) -> DatumType {
    match d {
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
        DType::I64 => DatumType::I64,
        DType::I32 => DatumType::I32,
        DType::I8 => DatumType::I8,
        DType::U8 => DatumType::U8,
        DType::Bool => DatumType::Bool,
        DType::String => DatumType::String,
    }
}

struct TractModel {
    plan: Arc<TypedRunnableModel>,
    signature: Signature,
    info: EngineInfo,
}

impl LoadedModel for TractModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn engine(&self) -> &EngineInfo {
        &self.info
    }

    fn run(&self, inputs: &Batch) -> Result<Batch, RuntimeError> {
        self.signature.check_inputs(inputs)?;
        let fail = |e: String| RuntimeError::Inference {
            engine: EngineKind::Tract,
            message: e,
        };
        let mut values: TVec<TValue> = TVec::new();
        for spec in &self.signature.inputs {
            let t = inputs.get(&spec.name).expect("checked above");
            values.push(
                to_tract(t)
                    .map_err(|e| fail(format!("input `{}`: {e}", spec.name)))?
                    .into_tvalue(),
            );
        }
        let outputs = self.plan.run(values).map_err(|e| fail(format!("{e:#}")))?;
        let mut batch = Batch::new();
        for (spec, value) in self.signature.outputs.iter().zip(outputs.iter()) {
            let t = from_tract(value, spec.dtype)
                .map_err(|e| fail(format!("output `{}`: {e:#}", spec.name)))?;
            batch.insert(spec.name.clone(), t)?;
        }
        Ok(batch)
    }
}

fn to_tract(t: &Tensor) -> TractResult<tract_onnx::prelude::Tensor> {
    let shape = t.shape();
    Ok(match t.data() {
        TensorData::F32(v) => tract_onnx::prelude::Tensor::from_shape(shape, v)?,
        TensorData::F64(v) => tract_onnx::prelude::Tensor::from_shape(shape, v)?,
        TensorData::I64(v) => tract_onnx::prelude::Tensor::from_shape(shape, v)?,
        TensorData::I32(v) => tract_onnx::prelude::Tensor::from_shape(shape, v)?,
        TensorData::I8(v) => tract_onnx::prelude::Tensor::from_shape(shape, v)?,
        TensorData::U8(v) => tract_onnx::prelude::Tensor::from_shape(shape, v)?,
        TensorData::Bool(v) => tract_onnx::prelude::Tensor::from_shape(shape, v)?,
        TensorData::String(v) => {
            tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), v.clone())?.into_tensor()
        }
    })
}

fn from_tract(value: &tract_onnx::prelude::Tensor, want: DType) -> TractResult<Tensor> {
    // Labels sometimes come back as symbolic dimensions (TDim) or another integer
    // width; cast to the dtype the signature declares.
    let value = if value.datum_type() != datum_type(want) {
        value.cast_to_dt(datum_type(want))?
    } else {
        std::borrow::Cow::Borrowed(value)
    };
    let shape = value.shape().to_vec();
    macro_rules! plain {
        ($t:ty) => {
            value
                .to_plain_array_view::<$t>()?
                .iter()
                .cloned()
                .collect::<Vec<$t>>()
                .into()
        };
    }
    let data: TensorData = match want {
        DType::F32 => plain!(f32),
        DType::F64 => plain!(f64),
        DType::I64 => plain!(i64),
        DType::I32 => plain!(i32),
        DType::I8 => plain!(i8),
        DType::U8 => plain!(u8),
        DType::Bool => plain!(bool),
        DType::String => plain!(String),
    };
    Ok(Tensor::new(shape, data)?)
}
