//! `ai.onnx.ml` operators that tract lacks, added through tract's operator registry.
//!
//! The simple ones (`Scaler`, `ZipMap`) are [`Expansion`]s that rewrite themselves
//! into tract's core operators. The tree ensembles, SVMs and linear models are native
//! kernels (`crate::ml`) wrapped in one typed operator, [`Native`]: they replace
//! tract's own `TreeEnsembleClassifier` (slower, and wrong on binary labels),
//! `LinearClassifier` (another layout of binary scores, no `PROBIT`/`SOFTMAX_ZERO`),
//! `LinearRegressor` and `Normalizer` (`MAX` by magnitude). Their outputs are checked
//! against onnxruntime's in the tests (the survey of tests/fixtures/survey).

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_core::ops::cast::cast;
use tract_onnx::tract_core::ops::change_axes::wire_with_rank_broadcast;
use tract_onnx::tract_core::ops::math::{mul, sub};
use tract_onnx::tract_hir::internal::*;

use crate::ml;

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Scaler", scaler);
    reg.insert("ZipMap", zipmap);
    reg.insert("TreeEnsembleClassifier", |_, node| {
        native(
            node,
            ml::tree::TreeClassifier::from_node(node).map(Kernel::TreeClassifier),
        )
    });
    reg.insert("TreeEnsembleRegressor", |_, node| {
        native(
            node,
            ml::tree::TreeRegressor::from_node(node).map(Kernel::TreeRegressor),
        )
    });
    reg.insert("TreeEnsemble", |_, node| {
        native(
            node,
            ml::tree::TreeRegressor::from_v5(node).map(Kernel::TreeRegressor),
        )
    });
    reg.insert("SVMClassifier", |_, node| {
        native(
            node,
            ml::svm::SvmClassifier::from_node(node).map(Kernel::SvmClassifier),
        )
    });
    reg.insert("SVMRegressor", |_, node| {
        native(
            node,
            ml::svm::SvmRegressor::from_node(node).map(Kernel::SvmRegressor),
        )
    });
    reg.insert("LinearClassifier", |_, node| {
        native(
            node,
            ml::linear::LinearClassifier::from_node(node).map(Kernel::LinearClassifier),
        )
    });
    reg.insert("LinearRegressor", |_, node| {
        native(
            node,
            ml::linear::LinearRegressor::from_node(node).map(Kernel::LinearRegressor),
        )
    });
    for op in [
        "Binarizer",
        "Normalizer",
        "Imputer",
        "OneHotEncoder",
        "LabelEncoder",
        "ArrayFeatureExtractor",
        "FeatureVectorizer",
    ] {
        reg.insert(op, |_, node| {
            let k = ml::simple::Simple::from_node(node)
                .with_context(|| format!("{} node `{}`", node.op_type, node.name))?;
            Ok((expand(Pre(Arc::new(k))), vec![]))
        });
    }
}

/// A preprocessing kernel (`ml::simple`) as a tract operator with one output.
#[derive(Debug, Clone)]
struct Pre(Arc<ml::simple::Simple>);

impl PartialEq for Pre {
    fn eq(&self, other: &Pre) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

// Equality only merges identical nodes (see `Native`).
impl Eq for Pre {}

impl Expansion for Pre {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        if let Some(n) = self.0.n_inputs() {
            check_input_arity(inputs, n)?;
        }
        check_output_arity(outputs, 1)?;
        s.given(&inputs[0].datum_type, move |s, dt| {
            s.given_all(inputs.iter().map(|i| &i.shape), move |s, shapes| {
                let (odt, oshape) = self.0.output(dt, &shapes)?;
                s.equals(&outputs[0].datum_type, odt)?;
                s.equals(&outputs[0].shape, oshape)?;
                Ok(())
            })
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.clone(), inputs)
    }
}

impl Op for Pre {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    op_as_typed_op!();
}

impl EvalOp for Pre {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        Ok(tvec![self.0.eval(&inputs)?.into_tvalue()])
    }
}

impl TypedOp for Pre {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shapes: Vec<TVec<TDim>> = inputs
            .iter()
            .map(|f| f.shape.iter().cloned().collect())
            .collect();
        let (dt, shape) = self.0.output(inputs[0].datum_type, &shapes)?;
        Ok(tvec![dt.fact(shape)])
    }

    as_op!();
}

/// The native kernels, behind one operator.
#[derive(Debug, Clone, PartialEq)]
enum Kernel {
    TreeClassifier(ml::tree::TreeClassifier),
    TreeRegressor(ml::tree::TreeRegressor),
    SvmClassifier(ml::svm::SvmClassifier),
    SvmRegressor(ml::svm::SvmRegressor),
    LinearClassifier(ml::linear::LinearClassifier),
    LinearRegressor(ml::linear::LinearRegressor),
}

fn native(
    node: &NodeProto,
    kernel: anyhow::Result<Kernel>,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let kernel = kernel.with_context(|| format!("{} node `{}`", node.op_type, node.name))?;
    Ok((expand(Native(Arc::new(kernel))), vec![]))
}

/// A native `ai.onnx.ml` kernel as a tract operator: `[N, F]` (or `[F]`) in; a
/// classifier gives labels `[N]` and scores `[N, C]`, a regressor `[N, T]`.
#[derive(Debug, Clone)]
struct Native(Arc<Kernel>);

/// Two nodes are the same operator when they share the kernel or hold equal ones.
impl PartialEq for Native {
    fn eq(&self, other: &Native) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

// Kernels hold floats, but never NaN-valued parameters that are compared: equality
// is only used to merge identical nodes.
impl Eq for Native {}

impl Native {
    fn name(&self) -> &'static str {
        match &*self.0 {
            Kernel::TreeClassifier(_) => "TreeEnsembleClassifier",
            Kernel::TreeRegressor(r) if r.keeps_precision => "TreeEnsemble",
            Kernel::TreeRegressor(_) => "TreeEnsembleRegressor",
            Kernel::SvmClassifier(_) => "SVMClassifier",
            Kernel::SvmRegressor(_) => "SVMRegressor",
            Kernel::LinearClassifier(_) => "LinearClassifier",
            Kernel::LinearRegressor(_) => "LinearRegressor",
        }
    }

    /// The label dtype of a classifier.
    fn labels(&self) -> Option<&ml::Labels> {
        match &*self.0 {
            Kernel::TreeClassifier(k) => Some(&k.labels),
            Kernel::SvmClassifier(k) => Some(&k.labels),
            Kernel::LinearClassifier(k) => Some(&k.labels),
            _ => None,
        }
    }

    /// Columns of the score (or prediction) output.
    fn columns(&self) -> usize {
        match &*self.0 {
            Kernel::TreeClassifier(k) => k.n_scores(),
            Kernel::SvmClassifier(k) => k.n_scores(),
            Kernel::TreeRegressor(k) => k.forest.n_targets,
            Kernel::SvmRegressor(_) => 1,
            Kernel::LinearClassifier(k) => k.n_scores(),
            Kernel::LinearRegressor(k) => k.n_targets(),
        }
    }

    /// The dtypes and shapes of the outputs for an input of `dt` and `shape`.
    fn outputs(&self, dt: DatumType, shape: &[TDim]) -> TractResult<TVec<(DatumType, TVec<TDim>)>> {
        let n = match shape.len() {
            1 => TDim::from(1),
            2 => shape[0].clone(),
            r => bail!(
                "{} takes a matrix [N, features] or a vector, not rank {r}",
                self.name()
            ),
        };
        let scores_dt = match &*self.0 {
            Kernel::TreeRegressor(r) if r.keeps_precision && dt == DatumType::F64 => DatumType::F64,
            _ => DatumType::F32,
        };
        let scores = (scores_dt, tvec![n.clone(), self.columns().into()]);
        Ok(match self.labels() {
            Some(ml::Labels::Int(_)) => tvec![(DatumType::I64, tvec![n]), scores],
            Some(ml::Labels::Str(_)) => tvec![(DatumType::String, tvec![n]), scores],
            None => tvec![scores],
        })
    }
}

impl Expansion for Native {
    fn name(&self) -> StaticName {
        Native::name(self).into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(if self.labels().is_some() { 2 } else { 1 })
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        let want = if self.labels().is_some() { 2 } else { 1 };
        check_output_arity(outputs, want)?;
        s.given_2(
            &inputs[0].datum_type,
            &inputs[0].shape,
            move |s, dt, shape| {
                for (o, (dt, shape)) in outputs.iter().zip(self.outputs(dt, &shape)?) {
                    s.equals(&o.datum_type, dt)?;
                    s.equals(&o.shape, shape)?;
                }
                Ok(())
            },
        )
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.clone(), inputs)
    }
}

impl Op for Native {
    fn name(&self) -> StaticName {
        Native::name(self).into()
    }

    op_as_typed_op!();
}

impl EvalOp for Native {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        let (rows, width) = match shape.as_slice() {
            [f] => (1, *f),
            [n, f] => (*n, *f),
            _ => bail!("{} takes a matrix [N, features] or a vector", self.name()),
        };
        let double = input.datum_type() == DatumType::F64;
        // Thresholds compare in the input's precision, as in onnxruntime: f64 for
        // doubles, f32 for floats and integers. A float input is read in place.
        let cast = input.cast_to_dt(if double {
            DatumType::F64
        } else {
            DatumType::F32
        })?;
        let plain = cast.try_as_plain_ram()?;
        let (x32, x64): (&[f32], &[f64]) = if double {
            (&[], plain.as_slice::<f64>()?)
        } else {
            (plain.as_slice::<f32>()?, &[])
        };
        // The SVM and linear kernels compute in f32 whatever the input, as
        // onnxruntime's do.
        let f32_input = || -> std::borrow::Cow<'_, [f32]> {
            if double {
                x64.iter().map(|&v| v as f32).collect::<Vec<f32>>().into()
            } else {
                x32.into()
            }
        };
        let cols = self.columns();
        let matrix = |v: Vec<f32>| tract_ndarray::Array2::from_shape_vec((rows, cols), v);
        let picks_and_scores =
            |picks: Vec<ml::Pick>, scores: Vec<f32>| -> TractResult<TVec<TValue>> {
                let labels = match self.labels().expect("classifier") {
                    ml::Labels::Int(l) => {
                        tract_ndarray::Array1::from_iter(picks.iter().map(|p| match p {
                            ml::Pick::Class(k) => l.get(*k).copied().unwrap_or(0),
                            ml::Pick::Raw(b) => i64::from(*b),
                        }))
                        .into_tensor()
                    }
                    ml::Labels::Str(l) => {
                        tract_ndarray::Array1::from_iter(picks.iter().map(|p| match p {
                            ml::Pick::Class(k) => l.get(*k).cloned().unwrap_or_default(),
                            ml::Pick::Raw(b) => l.get(usize::from(*b)).cloned().unwrap_or_default(),
                        }))
                        .into_tensor()
                    }
                };
                Ok(tvec![
                    labels.into_tvalue(),
                    matrix(scores)?.into_tensor().into_tvalue()
                ])
            };
        match &*self.0 {
            Kernel::TreeClassifier(k) => {
                let (picks, scores) = if double {
                    k.eval(x64, width)?
                } else {
                    k.eval(x32, width)?
                };
                picks_and_scores(picks, scores)
            }
            Kernel::SvmClassifier(k) => {
                let x = f32_input();
                let (picks, scores) = k.eval(&x, width)?;
                picks_and_scores(picks, scores)
            }
            Kernel::TreeRegressor(k) => {
                if double {
                    let y = k.eval(x64, width)?;
                    let y = tract_ndarray::Array2::from_shape_vec((rows, cols), y)?;
                    Ok(tvec![
                        if k.keeps_precision {
                            y.into_tensor()
                        } else {
                            y.mapv(|v| v as f32).into_tensor()
                        }
                        .into_tvalue()
                    ])
                } else {
                    Ok(tvec![
                        matrix(k.eval(x32, width)?)?.into_tensor().into_tvalue()
                    ])
                }
            }
            Kernel::SvmRegressor(k) => {
                let x = f32_input();
                Ok(tvec![
                    matrix(k.eval(&x, width)?)?.into_tensor().into_tvalue()
                ])
            }
            Kernel::LinearClassifier(k) => {
                let x = f32_input();
                let (picks, scores) = k.eval(&x, width)?;
                picks_and_scores(picks, scores)
            }
            Kernel::LinearRegressor(k) => {
                let x = f32_input();
                Ok(tvec![
                    matrix(k.eval(&x, width)?)?.into_tensor().into_tvalue()
                ])
            }
        }
    }
}

impl TypedOp for Native {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        Ok(self
            .outputs(inputs[0].datum_type, &shape)?
            .into_iter()
            .map(|(dt, shape)| dt.fact(shape))
            .collect())
    }

    as_op!();
}

/// `Scaler`: `y = (x - offset) * scale`, per column (or one value for all), as f32.
#[derive(Debug, Clone)]
struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

fn scaler(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let offset: Vec<f32> = node
        .get_attr_opt_vec("offset")?
        .unwrap_or_else(|| vec![0.0]);
    let scale: Vec<f32> = node.get_attr_opt_vec("scale")?.unwrap_or_else(|| vec![1.0]);
    ensure!(
        !offset.is_empty() && !scale.is_empty(),
        "Scaler needs non-empty offset and scale"
    );
    Ok((expand(Scaler { offset, scale }), vec![]))
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "Scaler".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        same_shape_as_f32(s, inputs, outputs)
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let mut x = inputs[0];
        if model.outlet_fact(x)?.datum_type != f32::datum_type() {
            x = model.wire_node(format!("{prefix}.to_f32"), cast(f32::datum_type()), &[x])?[0];
        }
        let offset = model.add_const(format!("{prefix}.offset"), rctensor1(&self.offset))?;
        let scale = model.add_const(format!("{prefix}.scale"), rctensor1(&self.scale))?;
        let centered =
            wire_with_rank_broadcast(format!("{prefix}.sub"), model, sub(), &[x, offset])?[0];
        wire_with_rank_broadcast(format!("{prefix}.mul"), model, mul(), &[centered, scale])
    }
}

/// `ZipMap`: onnxruntime returns one `{label: probability}` map per example; modelport
/// reads that as the `f32 [N, C]` probability matrix with the class labels in the
/// signature, so on tract the operator passes its input through.
#[derive(Debug, Clone)]
struct ZipMap;

fn zipmap(
    _ctx: &ParsingContext,
    _node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand(ZipMap), vec![]))
}

impl Expansion for ZipMap {
    fn name(&self) -> StaticName {
        "ZipMap".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        same_shape_as_f32(s, inputs, outputs)
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let x = inputs[0];
        if model.outlet_fact(x)?.datum_type != f32::datum_type() {
            return model.wire_node(format!("{prefix}.to_f32"), cast(f32::datum_type()), &[x]);
        }
        Ok(tvec!(x))
    }
}

/// Type rules of a one-input operator whose output is its input's shape, as f32.
fn same_shape_as_f32<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
) -> InferenceResult {
    check_input_arity(inputs, 1)?;
    check_output_arity(outputs, 1)?;
    s.equals(&outputs[0].datum_type, DatumType::F32)?;
    s.equals(&inputs[0].shape, &outputs[0].shape)?;
    Ok(())
}
