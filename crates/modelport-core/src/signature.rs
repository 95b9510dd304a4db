//! A model's signature: the named inputs and outputs with dtype and shape.
//!
//! Dimensions may be dynamic (a batch axis named `N`, or unnamed); validation of a
//! [`Batch`] against a signature happens here so that every runtime and server gives
//! the same error for the same mistake.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::{Batch, DType, ShapeDisplay};

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    Fixed(usize),
    /// A dimension chosen at run time; the name is the model's symbol when it has one.
    Dynamic(Option<String>),
}

impl Dim {
    pub fn fixed(&self) -> Option<usize> {
        match self {
            Dim::Fixed(n) => Some(*n),
            Dim::Dynamic(_) => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Dynamic(Some(s)) => f.write_str(s),
            Dim::Dynamic(None) => f.write_str("?"),
        }
    }
}

// On the wire a dimension is a number, a symbol name, or null.
impl Serialize for Dim {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Dim::Fixed(n) => s.serialize_u64(*n as u64),
            Dim::Dynamic(Some(name)) => s.serialize_str(name),
            Dim::Dynamic(None) => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Dim, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
            Null(()),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::N(n) => Dim::Fixed(n as usize),
            Raw::S(s) => Dim::Dynamic(Some(s)),
            Raw::Null(()) => Dim::Dynamic(None),
        })
    }
}

/// Formats a declared shape as `[N, 4]`.
pub struct DimsDisplay<'a>(pub &'a [Dim]);

impl fmt::Display for DimsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::tensor::write_list(f, self.0)
    }
}

/// Class labels attached to a classifier's probability output (from ZipMap or the
/// classifier's `classlabels_*` attribute): column `i` of the probabilities is the
/// probability of `labels[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassLabels {
    Int64(Vec<i64>),
    String(Vec<String>),
}

impl ClassLabels {
    pub fn len(&self) -> usize {
        match self {
            ClassLabels::Int64(v) => v.len(),
            ClassLabels::String(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named tensor's declared dtype and shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<Dim>,
    /// Set on a classifier's probability output: the label of each column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_labels: Option<ClassLabels>,
}

impl TensorSpec {
    pub fn new(name: impl Into<String>, dtype: DType, shape: Vec<Dim>) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype,
            shape,
            class_labels: None,
        }
    }

    /// The shape of one example: every dimension after the batch dimension.
    pub fn row_shape(&self) -> &[Dim] {
        self.shape.get(1..).unwrap_or(&[])
    }

    /// Whether `shape` fits this declaration (same rank, fixed dimensions equal).
    pub fn accepts_shape(&self, shape: &[usize]) -> bool {
        shape.len() == self.shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(d, n)| d.fixed().is_none_or(|f| f == *n))
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {}",
            self.name,
            self.dtype,
            DimsDisplay(&self.shape)
        )
    }
}

/// The inputs and outputs of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Signature {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

impl Signature {
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|t| t.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&TensorSpec> {
        self.outputs.iter().find(|t| t.name == name)
    }

    /// Checks a batch of inputs before inference.
    ///
    /// Every mistake is reported with the input's name: a missing or unexpected
    /// input, a wrong dtype, a wrong rank, a fixed dimension of the wrong size, or
    /// inputs that disagree on the number of examples.
    /// The batch size the model was exported with, when its first axis is fixed
    /// (the same on every input): inputs of more rows are run in batches of it.
    pub fn fixed_batch(&self) -> Option<usize> {
        let mut sizes = self.inputs.iter().map(|i| match i.shape.first() {
            Some(Dim::Fixed(n)) if *n > 0 => Some(*n),
            _ => None,
        });
        let first = sizes.next()??;
        sizes.all(|s| s == Some(first)).then_some(first)
    }

    pub fn check_inputs(&self, batch: &Batch) -> Result<()> {
        for spec in &self.inputs {
            let Some(t) = batch.get(&spec.name) else {
                let given: Vec<_> = batch.names().collect();
                return Err(Error::invalid(format!(
                    "input `{}` is missing (the model expects {}; given: {})",
                    spec.name,
                    self.input_list(),
                    if given.is_empty() {
                        "none".to_string()
                    } else {
                        given.join(", ")
                    }
                )));
            };
            if t.dtype() != spec.dtype {
                return Err(Error::invalid(format!(
                    "input `{}` has dtype {} but the model expects {}",
                    spec.name,
                    t.dtype(),
                    spec.dtype
                )));
            }
            if t.shape().len() != spec.shape.len() {
                return Err(Error::invalid(format!(
                    "input `{}` has rank {} (shape {}) but the model expects rank {} (shape {})",
                    spec.name,
                    t.shape().len(),
                    ShapeDisplay(t.shape()),
                    spec.shape.len(),
                    DimsDisplay(&spec.shape)
                )));
            }
            for (axis, (d, n)) in spec.shape.iter().zip(t.shape()).enumerate() {
                if let Some(f) = d.fixed()
                    && f != *n
                {
                    return Err(Error::invalid(format!(
                        "input `{}` has shape {} but the model expects {}: axis {axis} must be {f}, not {n}",
                        spec.name,
                        ShapeDisplay(t.shape()),
                        DimsDisplay(&spec.shape)
                    )));
                }
            }
        }
        for name in batch.names() {
            if self.input(name).is_none() {
                return Err(Error::invalid(format!(
                    "input `{name}` is not an input of this model (it expects {})",
                    self.input_list()
                )));
            }
        }
        if self.inputs.iter().all(|s| !s.shape.is_empty()) {
            batch.batch_size()?;
        }
        Ok(())
    }

    fn input_list(&self) -> String {
        self.inputs
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn sig() -> Signature {
        Signature {
            inputs: vec![TensorSpec::new(
                "x",
                DType::F32,
                vec![Dim::Dynamic(Some("N".into())), Dim::Fixed(4)],
            )],
            outputs: vec![],
        }
    }

    fn check(batch: Batch, expected: &str) {
        let got = sig().check_inputs(&batch).err().map(|e| e.to_string());
        assert_eq!(got.as_deref().unwrap_or("ok"), expected);
    }

    fn one(name: &str, t: Tensor) -> Batch {
        Batch::new().with(name, t).unwrap()
    }

    #[test]
    fn input_checks_name_the_input() {
        check(
            one("x", Tensor::new(vec![2, 4], vec![0f32; 8]).unwrap()),
            "ok",
        );
        check(
            one("x", Tensor::new(vec![2, 4], vec![0f64; 8]).unwrap()),
            "invalid input: input `x` has dtype f64 but the model expects f32",
        );
        check(
            one("x", Tensor::new(vec![8], vec![0f32; 8]).unwrap()),
            "invalid input: input `x` has rank 1 (shape [8]) but the model expects rank 2 (shape [N, 4])",
        );
        check(
            one("x", Tensor::new(vec![2, 3], vec![0f32; 6]).unwrap()),
            "invalid input: input `x` has shape [2, 3] but the model expects [N, 4]: axis 1 must be 4, not 3",
        );
        check(
            one("y", Tensor::new(vec![2, 4], vec![0f32; 8]).unwrap()),
            "invalid input: input `x` is missing (the model expects `x: f32 [N, 4]`; given: y)",
        );
        check(
            one("x", Tensor::new(vec![2, 4], vec![0f32; 8]).unwrap())
                .with("z", Tensor::new(vec![2], vec![1i64, 2]).unwrap())
                .unwrap(),
            "invalid input: input `z` is not an input of this model (it expects `x: f32 [N, 4]`)",
        );
    }

    #[test]
    fn dims_serialize_as_number_symbol_or_null() {
        let dims = vec![
            Dim::Dynamic(Some("N".into())),
            Dim::Fixed(3),
            Dim::Dynamic(None),
        ];
        let json = serde_json::to_string(&dims).unwrap();
        assert_eq!(json, r#"["N",3,null]"#);
        let back: Vec<Dim> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, dims);
    }
}
