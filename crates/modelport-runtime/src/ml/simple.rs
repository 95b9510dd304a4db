//! The preprocessing operators of scikit-learn pipelines: `Binarizer`, `Imputer`,
//! `Normalizer`, `OneHotEncoder`, `LabelEncoder`, `ArrayFeatureExtractor`,
//! `FeatureVectorizer`, with onnxruntime's shapes (a vector into
//! `ArrayFeatureExtractor` gives one row).

use anyhow::{Result, bail, ensure};
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;

use super::attrs::Attrs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Norm {
    Max,
    L1,
    L2,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Simple {
    Binarizer {
        threshold: f32,
    },
    /// As onnxruntime computes it: `MAX` divides each row by its largest value (not
    /// its largest magnitude), `L1` by the sum of magnitudes, `L2` by the Euclidean
    /// norm; a row whose divisor is 0 is copied.
    Normalizer {
        norm: Norm,
    },
    Imputer {
        floats: Vec<f32>,
        replaced_float: f32,
        ints: Vec<i64>,
        replaced_int: i64,
    },
    OneHot {
        ints: Vec<i64>,
        strings: Vec<String>,
        zeros: bool,
    },
    LabelEncoder {
        keys: Values,
        values: Values,
        default: Values,
    },
    ArrayFeatureExtractor,
    FeatureVectorizer {
        dims: Vec<usize>,
    },
}

/// One column of keys or values of a `LabelEncoder`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    Int(Vec<i64>),
    Str(Vec<String>),
    Float(Vec<f32>),
}

impl Values {
    fn dt(&self) -> DatumType {
        match self {
            Values::Int(_) => DatumType::I64,
            Values::Str(_) => DatumType::String,
            Values::Float(_) => DatumType::F32,
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Str(v) => v.len(),
            Values::Float(v) => v.len(),
        }
    }
}

/// One row of `Normalizer`, as onnxruntime computes it: the largest value found the
/// way `std::max_element` finds it (a NaN first wins, later NaNs are passed over), and
/// `L2` as `sign(x)·√(x²/Σx²)`.
fn normalize(norm: Norm, row: &mut [f32]) {
    match norm {
        Norm::Max => {
            let max = row
                .iter()
                .copied()
                .reduce(|m, v| if m < v { v } else { m })
                .unwrap_or(0.0);
            if max != 0.0 {
                row.iter_mut().for_each(|v| *v /= max);
            }
        }
        Norm::L1 => {
            let sum: f32 = row.iter().map(|v| v.abs()).sum();
            if sum != 0.0 {
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
        Norm::L2 => {
            let sum: f32 = row.iter().map(|v| v * v).sum();
            if sum != 0.0 {
                for v in row.iter_mut() {
                    let r = (*v * *v / sum).sqrt();
                    *v = if *v < 0.0 { -r } else { r };
                }
            }
        }
    }
}

impl Simple {
    pub(crate) fn from_node(node: &NodeProto) -> Result<Simple> {
        let a = Attrs::new(node);
        Ok(match node.op_type.as_str() {
            "Binarizer" => Simple::Binarizer {
                threshold: a
                    .floats("threshold")
                    .first()
                    .copied()
                    .or_else(|| {
                        node.attribute
                            .iter()
                            .find(|x| x.name == "threshold")
                            .map(|x| x.f)
                    })
                    .unwrap_or(0.0),
            },
            "Normalizer" => Simple::Normalizer {
                norm: match a.string("norm")?.as_deref().unwrap_or("MAX") {
                    "MAX" => Norm::Max,
                    "L1" => Norm::L1,
                    "L2" => Norm::L2,
                    other => bail!("norm `{other}` is not MAX, L1 or L2"),
                },
            },
            "Imputer" => {
                let attr_f = |n: &str| node.attribute.iter().find(|x| x.name == n).map(|x| x.f);
                let floats = a.floats("imputed_value_floats");
                let ints = a.ints("imputed_value_int64s");
                ensure!(
                    !floats.is_empty() || !ints.is_empty(),
                    "neither imputed_value_floats nor imputed_value_int64s is set"
                );
                Simple::Imputer {
                    floats,
                    replaced_float: attr_f("replaced_value_float").unwrap_or(0.0),
                    ints,
                    replaced_int: a.int("replaced_value_int64").unwrap_or(0),
                }
            }
            "OneHotEncoder" => {
                let ints = a.ints("cats_int64s");
                let strings = a.strings("cats_strings")?;
                ensure!(
                    !ints.is_empty() || !strings.is_empty(),
                    "neither cats_int64s nor cats_strings is set"
                );
                Simple::OneHot {
                    ints,
                    strings,
                    zeros: a.int("zeros").unwrap_or(1) != 0,
                }
            }
            "LabelEncoder" => {
                let pick = |kind: &str| -> Result<Option<Values>> {
                    let ints = a.ints(&format!("{kind}_int64s"));
                    let strings = a.strings(&format!("{kind}_strings"))?;
                    let floats = a.floats(&format!("{kind}_floats"));
                    Ok(if !ints.is_empty() {
                        Some(Values::Int(ints))
                    } else if !strings.is_empty() {
                        Some(Values::Str(strings))
                    } else if !floats.is_empty() {
                        Some(Values::Float(floats))
                    } else {
                        None
                    })
                };
                let (Some(keys), Some(values)) = (pick("keys")?, pick("values")?) else {
                    bail!(
                        "LabelEncoder needs keys_* and values_* attributes (ai.onnx.ml 2 or later)"
                    );
                };
                ensure!(
                    keys.len() == values.len(),
                    "{} keys for {} values",
                    keys.len(),
                    values.len()
                );
                let default = match values {
                    Values::Int(_) => Values::Int(vec![a.int("default_int64").unwrap_or(-1)]),
                    Values::Str(_) => Values::Str(vec![
                        a.string("default_string")?
                            .unwrap_or_else(|| "_Unused".into()),
                    ]),
                    Values::Float(_) => Values::Float(vec![
                        node.attribute
                            .iter()
                            .find(|x| x.name == "default_float")
                            .map(|x| x.f)
                            .unwrap_or(-0.0),
                    ]),
                };
                Simple::LabelEncoder {
                    keys,
                    values,
                    default,
                }
            }
            "ArrayFeatureExtractor" => Simple::ArrayFeatureExtractor,
            "FeatureVectorizer" => Simple::FeatureVectorizer {
                dims: a
                    .ints("inputdimensions")
                    .into_iter()
                    .map(|d| {
                        usize::try_from(d).map_err(|_| anyhow::anyhow!("inputdimensions holds {d}"))
                    })
                    .collect::<Result<_>>()?,
            },
            other => bail!("{other} is not a preprocessing operator"),
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Simple::Binarizer { .. } => "Binarizer",
            Simple::Normalizer { .. } => "Normalizer",
            Simple::Imputer { .. } => "Imputer",
            Simple::OneHot { .. } => "OneHotEncoder",
            Simple::LabelEncoder { .. } => "LabelEncoder",
            Simple::ArrayFeatureExtractor => "ArrayFeatureExtractor",
            Simple::FeatureVectorizer { .. } => "FeatureVectorizer",
        }
    }

    pub(crate) fn n_inputs(&self) -> Option<usize> {
        match self {
            Simple::ArrayFeatureExtractor => Some(2),
            Simple::FeatureVectorizer { dims } => Some(dims.len()),
            _ => Some(1),
        }
    }

    /// The output's dtype and shape.
    pub(crate) fn output(
        &self,
        dt: DatumType,
        shapes: &[TVec<TDim>],
    ) -> Result<(DatumType, TVec<TDim>)> {
        let s0 = &shapes[0];
        Ok(match self {
            Simple::Binarizer { .. } if dt == DatumType::F64 => (dt, s0.clone()),
            Simple::Binarizer { .. } => (DatumType::F32, s0.clone()),
            Simple::Normalizer { .. } => (DatumType::F32, s0.clone()),
            Simple::Imputer { .. } if dt == DatumType::I64 => (dt, s0.clone()),
            Simple::Imputer { .. } => (DatumType::F32, s0.clone()),
            Simple::LabelEncoder { values, .. } => (values.dt(), s0.clone()),
            Simple::OneHot { ints, strings, .. } => {
                let mut s = s0.clone();
                s.push(ints.len().max(strings.len()).into());
                (DatumType::F32, s)
            }
            Simple::ArrayFeatureExtractor => {
                let k: TDim = shapes[1].iter().fold(TDim::from(1), |a, b| a * b.clone());
                let mut s: TVec<TDim> = if s0.len() == 1 {
                    tvec![1.into()]
                } else {
                    s0[..s0.len() - 1].into()
                };
                s.push(k);
                (dt, s)
            }
            Simple::FeatureVectorizer { dims } => {
                let n = if s0.len() >= 2 {
                    s0[0].clone()
                } else {
                    1.into()
                };
                (DatumType::F32, tvec![n, dims.iter().sum::<usize>().into()])
            }
        })
    }

    pub(crate) fn eval(&self, inputs: &[TValue]) -> Result<Tensor> {
        let x = &inputs[0];
        let shape = x.shape().to_vec();
        match self {
            Simple::Binarizer { threshold } => {
                let t = *threshold;
                Ok(match x.datum_type() {
                    DatumType::F64 => x
                        .to_plain_array_view::<f64>()?
                        .mapv(|v| if v > f64::from(t) { 1.0f64 } else { 0.0 })
                        .into_tensor(),
                    _ => x
                        .cast_to::<f32>()?
                        .to_plain_array_view::<f32>()?
                        .mapv(|v| if v > t { 1.0f32 } else { 0.0 })
                        .into_tensor(),
                })
            }
            Simple::Normalizer { norm } => {
                let mut v = x.cast_to::<f32>()?.to_plain_array_view::<f32>()?.to_owned();
                let width = (*shape.last().unwrap_or(&1)).max(1);
                let flat = v.as_slice_mut().expect("an owned array is contiguous");
                for row in flat.chunks_mut(width) {
                    normalize(*norm, row);
                }
                Ok(v.into_tensor())
            }
            Simple::Imputer {
                floats,
                replaced_float,
                ints,
                replaced_int,
            } => {
                let width = *shape.last().unwrap_or(&1);
                match x.datum_type() {
                    DatumType::I64 => {
                        ensure!(
                            !ints.is_empty(),
                            "the input is int64 but imputed_value_int64s is empty"
                        );
                        ensure!(
                            ints.len() == 1 || ints.len() == width,
                            "{} imputed values for {width} columns",
                            ints.len()
                        );
                        let mut v = x.to_plain_array_view::<i64>()?.to_owned();
                        for (i, e) in v.iter_mut().enumerate() {
                            if *e == *replaced_int {
                                *e = ints[if ints.len() == 1 { 0 } else { i % width }];
                            }
                        }
                        Ok(v.into_tensor())
                    }
                    _ => {
                        ensure!(
                            !floats.is_empty(),
                            "the input is float but imputed_value_floats is empty"
                        );
                        ensure!(
                            floats.len() == 1 || floats.len() == width,
                            "{} imputed values for {width} columns",
                            floats.len()
                        );
                        let mut v = x.cast_to::<f32>()?.to_plain_array_view::<f32>()?.to_owned();
                        let r = *replaced_float;
                        for (i, e) in v.iter_mut().enumerate() {
                            if *e == r || (r.is_nan() && e.is_nan()) {
                                *e = floats[if floats.len() == 1 { 0 } else { i % width }];
                            }
                        }
                        Ok(v.into_tensor())
                    }
                }
            }
            Simple::OneHot {
                ints,
                strings,
                zeros,
            } => {
                let k = ints.len().max(strings.len());
                let idx: Vec<Option<usize>> = if x.datum_type() == DatumType::String {
                    ensure!(
                        !strings.is_empty(),
                        "the input holds strings but cats_strings is empty"
                    );
                    x.to_plain_array_view::<String>()?
                        .iter()
                        .map(|s| strings.iter().position(|c| c == s))
                        .collect()
                } else {
                    ensure!(
                        !ints.is_empty(),
                        "the input holds numbers but cats_int64s is empty"
                    );
                    x.cast_to::<f64>()?
                        .to_plain_array_view::<f64>()?
                        .iter()
                        .map(|&v| ints.iter().position(|&c| c as f64 == v.trunc()))
                        .collect()
                };
                let mut out = vec![0f32; idx.len() * k];
                for (i, j) in idx.iter().enumerate() {
                    match j {
                        Some(j) => out[i * k + j] = 1.0,
                        None if !zeros => bail!(
                            "OneHotEncoder: a value is not one of the categories and `zeros` is 0"
                        ),
                        None => {}
                    }
                }
                let mut s = shape.clone();
                s.push(k);
                Ok(tract_ndarray::ArrayD::from_shape_vec(s, out)?.into_tensor())
            }
            Simple::LabelEncoder {
                keys,
                values,
                default,
            } => encode(x, keys, values, default),
            Simple::ArrayFeatureExtractor => {
                let idx: Vec<i64> = inputs[1]
                    .cast_to::<i64>()?
                    .to_plain_array_view::<i64>()?
                    .iter()
                    .copied()
                    .collect();
                let width = *shape.last().unwrap_or(&0);
                for &i in &idx {
                    ensure!(
                        (0..width as i64).contains(&i),
                        "ArrayFeatureExtractor: index {i} is outside the last axis ({width})"
                    );
                }
                let rows = x.len().checked_div(width).unwrap_or(0);
                let mut s: Vec<usize> = if shape.len() == 1 {
                    vec![1]
                } else {
                    shape[..shape.len() - 1].to_vec()
                };
                s.push(idx.len());
                macro_rules! gather {
                    ($t:ty) => {{
                        let v = x.to_plain_array_view::<$t>()?;
                        let flat: Vec<$t> = v.iter().cloned().collect();
                        let mut out = Vec::with_capacity(rows * idx.len());
                        for r in 0..rows {
                            for &i in &idx {
                                out.push(flat[r * width + i as usize].clone());
                            }
                        }
                        tract_ndarray::ArrayD::from_shape_vec(s, out)?.into_tensor()
                    }};
                }
                Ok(match x.datum_type() {
                    DatumType::F32 => gather!(f32),
                    DatumType::F64 => gather!(f64),
                    DatumType::I64 => gather!(i64),
                    DatumType::I32 => gather!(i32),
                    DatumType::String => gather!(String),
                    other => bail!("ArrayFeatureExtractor does not take {other:?}"),
                })
            }
            Simple::FeatureVectorizer { dims } => {
                let n = if shape.len() >= 2 { shape[0] } else { 1 };
                let total: usize = dims.iter().sum();
                let mut out = vec![0f32; n * total];
                let mut offset = 0;
                for (input, &d) in inputs.iter().zip(dims) {
                    let v: Vec<f32> = input
                        .cast_to::<f32>()?
                        .to_plain_array_view::<f32>()?
                        .iter()
                        .copied()
                        .collect();
                    let per = v.len().checked_div(n).unwrap_or(0);
                    for r in 0..n {
                        for c in 0..d.min(per) {
                            out[r * total + offset + c] = v[r * per + c];
                        }
                    }
                    offset += d;
                }
                Ok(tract_ndarray::Array2::from_shape_vec((n, total), out)?.into_tensor())
            }
        }
    }
}

fn encode(x: &TValue, keys: &Values, values: &Values, default: &Values) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    // Index of each element's key, or None.
    let idx: Vec<Option<usize>> = match keys {
        Values::Str(k) => {
            ensure!(
                x.datum_type() == DatumType::String,
                "LabelEncoder: the keys are strings, the input is not"
            );
            let map: std::collections::HashMap<&str, usize> =
                k.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
            x.to_plain_array_view::<String>()?
                .iter()
                .map(|s| map.get(s.as_str()).copied())
                .collect()
        }
        Values::Int(k) => {
            let map: std::collections::HashMap<i64, usize> =
                k.iter().enumerate().map(|(i, &v)| (v, i)).collect();
            x.cast_to::<i64>()?
                .to_plain_array_view::<i64>()?
                .iter()
                .map(|v| map.get(v).copied())
                .collect()
        }
        Values::Float(k) => x
            .cast_to::<f32>()?
            .to_plain_array_view::<f32>()?
            .iter()
            .map(|v| k.iter().position(|c| c == v || (c.is_nan() && v.is_nan())))
            .collect(),
    };
    Ok(match (values, default) {
        (Values::Int(v), Values::Int(d)) => tract_ndarray::ArrayD::from_shape_vec(
            shape,
            idx.iter().map(|i| i.map_or(d[0], |i| v[i])).collect(),
        )?
        .into_tensor(),
        (Values::Str(v), Values::Str(d)) => tract_ndarray::ArrayD::from_shape_vec(
            shape,
            idx.iter()
                .map(|i| i.map_or_else(|| d[0].clone(), |i| v[i].clone()))
                .collect(),
        )?
        .into_tensor(),
        (Values::Float(v), Values::Float(d)) => tract_ndarray::ArrayD::from_shape_vec(
            shape,
            idx.iter().map(|i| i.map_or(d[0], |i| v[i])).collect(),
        )?
        .into_tensor(),
        _ => unreachable!("the default has the values' type"),
    })
}
