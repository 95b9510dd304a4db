//! Tensors and named batches: the values that flow between a runtime, a server and a comparison.
//!
//! A [`Tensor`] owns its data in row-major order; the first dimension is the batch
//! (example) dimension whenever a tensor is part of a [`Batch`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The element types modelport moves across the wire.
///
/// The names follow the Open Inference Protocol v2 `datatype` strings, which are
/// also what `--output json` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F64,
    I64,
    I32,
    I8,
    U8,
    Bool,
    String,
}

impl DType {
    /// Every dtype, in a stable order.
    pub const ALL: [DType; 8] = [
        DType::F32,
        DType::F64,
        DType::I64,
        DType::I32,
        DType::I8,
        DType::U8,
        DType::Bool,
        DType::String,
    ];

    /// The Open Inference Protocol v2 datatype name (`FP32`, `INT64`, `BYTES`, ...).
    pub fn oip_name(self) -> &'static str {
        match self {
            DType::F32 => "FP32",
            DType::F64 => "FP64",
            DType::I64 => "INT64",
            DType::I32 => "INT32",
            DType::I8 => "INT8",
            DType::U8 => "UINT8",
            DType::Bool => "BOOL",
            DType::String => "BYTES",
        }
    }

    /// Parses an Open Inference Protocol v2 datatype name.
    pub fn from_oip_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.oip_name() == name)
    }

    /// modelport's short name (`f32`, `i64`, `string`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
            DType::String => "string",
        }
    }

    /// Bytes per element on the wire and in memory (strings count as their pointer).
    pub fn size_of(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::String => std::mem::size_of::<String>(),
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    pub fn is_integer(self) -> bool {
        matches!(self, DType::I64 | DType::I32 | DType::I8 | DType::U8)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The elements of a tensor, one vector variant per dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
    String(Vec<String>),
}

/// Calls `$body` with `$v` bound to the inner vector of any [`TensorData`] variant.
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::F32($v) => $body,
            TensorData::F64($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::Bool($v) => $body,
            TensorData::String($v) => $body,
        }
    };
}

/// Like `with_data!` but rebuilds the same variant from the expression's result.
macro_rules! map_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::F32($v) => TensorData::F32($body),
            TensorData::F64($v) => TensorData::F64($body),
            TensorData::I64($v) => TensorData::I64($body),
            TensorData::I32($v) => TensorData::I32($body),
            TensorData::I8($v) => TensorData::I8($body),
            TensorData::U8($v) => TensorData::U8($body),
            TensorData::Bool($v) => TensorData::Bool($body),
            TensorData::String($v) => TensorData::String($body),
        }
    };
}

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::I64(_) => DType::I64,
            TensorData::I32(_) => DType::I32,
            TensorData::I8(_) => DType::I8,
            TensorData::U8(_) => DType::U8,
            TensorData::Bool(_) => DType::Bool,
            TensorData::String(_) => DType::String,
        }
    }

    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty vector of the given dtype with room for `capacity` elements.
    pub fn with_capacity(dtype: DType, capacity: usize) -> TensorData {
        match dtype {
            DType::F32 => TensorData::F32(Vec::with_capacity(capacity)),
            DType::F64 => TensorData::F64(Vec::with_capacity(capacity)),
            DType::I64 => TensorData::I64(Vec::with_capacity(capacity)),
            DType::I32 => TensorData::I32(Vec::with_capacity(capacity)),
            DType::I8 => TensorData::I8(Vec::with_capacity(capacity)),
            DType::U8 => TensorData::U8(Vec::with_capacity(capacity)),
            DType::Bool => TensorData::Bool(Vec::with_capacity(capacity)),
            DType::String => TensorData::String(Vec::with_capacity(capacity)),
        }
    }

    fn slice(&self, start: usize, end: usize) -> TensorData {
        map_data!(self, v => v[start..end].to_vec())
    }

    fn extend_from(&mut self, other: &TensorData) -> Result<()> {
        match (self, other) {
            (TensorData::F32(a), TensorData::F32(b)) => a.extend_from_slice(b),
            (TensorData::F64(a), TensorData::F64(b)) => a.extend_from_slice(b),
            (TensorData::I64(a), TensorData::I64(b)) => a.extend_from_slice(b),
            (TensorData::I32(a), TensorData::I32(b)) => a.extend_from_slice(b),
            (TensorData::I8(a), TensorData::I8(b)) => a.extend_from_slice(b),
            (TensorData::U8(a), TensorData::U8(b)) => a.extend_from_slice(b),
            (TensorData::Bool(a), TensorData::Bool(b)) => a.extend_from_slice(b),
            (TensorData::String(a), TensorData::String(b)) => a.extend_from_slice(b),
            (a, b) => {
                return Err(Error::invalid(format!(
                    "cannot concatenate a {} tensor with a {} tensor",
                    a.dtype(),
                    b.dtype()
                )));
            }
        }
        Ok(())
    }

    /// The element at `i` as f64, for numeric comparison; `None` for strings.
    ///
    /// Booleans read as 0 and 1; integers convert exactly up to 2^53.
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        Some(match self {
            TensorData::F32(v) => v[i] as f64,
            TensorData::F64(v) => v[i],
            TensorData::I64(v) => v[i] as f64,
            TensorData::I32(v) => v[i] as f64,
            TensorData::I8(v) => v[i] as f64,
            TensorData::U8(v) => v[i] as f64,
            TensorData::Bool(v) => v[i] as u8 as f64,
            TensorData::String(_) => return None,
        })
    }

    /// The element at `i` rendered as text, for tables and error messages.
    pub fn display_at(&self, i: usize) -> String {
        match self {
            TensorData::String(v) => format!("{:?}", v[i]),
            TensorData::Bool(v) => v[i].to_string(),
            TensorData::F32(v) => format_float(v[i] as f64),
            TensorData::F64(v) => format_float(v[i]),
            other => other.get_f64(i).map(|x| format!("{x}")).unwrap_or_default(),
        }
    }
}

fn format_float(x: f64) -> String {
    if x.is_finite() && x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e6) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

macro_rules! impl_from_vec {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<Vec<$t>> for TensorData {
            fn from(v: Vec<$t>) -> Self {
                TensorData::$variant(v)
            }
        }
    )*};
}
impl_from_vec!(f32 => F32, f64 => F64, i64 => I64, i32 => I32, i8 => I8, u8 => U8, bool => Bool, String => String);

/// A dense, row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

/// How many elements `shape` holds; `None` when the product overflows (a shape sent
/// by a client may be anything).
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

impl Tensor {
    /// Builds a tensor, checking that the shape holds exactly `data.len()` elements.
    pub fn new(shape: Vec<usize>, data: impl Into<TensorData>) -> Result<Tensor> {
        let data = data.into();
        let Some(expected) = element_count(&shape) else {
            return Err(Error::invalid(format!(
                "shape {} holds more elements than can be counted, but {} were given",
                ShapeDisplay(&shape),
                data.len()
            )));
        };
        if expected != data.len() {
            return Err(Error::invalid(format!(
                "shape {} holds {expected} elements but {} were given",
                ShapeDisplay(&shape),
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &TensorData {
        &self.data
    }

    pub fn into_parts(self) -> (Vec<usize>, TensorData) {
        (self.shape, self.data)
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Size of the first dimension (1 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per row: the product of every dimension after the first.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Rows `start..end` along the first dimension.
    pub fn slice_rows(&self, start: usize, end: usize) -> Result<Tensor> {
        if self.shape.is_empty() {
            return Err(Error::invalid("cannot take rows of a scalar tensor"));
        }
        if start > end || end > self.rows() {
            return Err(Error::invalid(format!(
                "rows {start}..{end} are out of range for a tensor with {} rows",
                self.rows()
            )));
        }
        let row = self.row_len();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Ok(Tensor {
            shape,
            data: self.data.slice(start * row, end * row),
        })
    }

    /// Joins tensors along the first dimension; all must share dtype and row shape.
    pub fn concat_rows(parts: &[Tensor]) -> Result<Tensor> {
        let first = parts
            .first()
            .ok_or_else(|| Error::invalid("cannot concatenate zero tensors"))?;
        if first.shape.is_empty() {
            return Err(Error::invalid("cannot concatenate scalar tensors"));
        }
        let total = parts.iter().map(Tensor::len).sum();
        let mut data = TensorData::with_capacity(first.dtype(), total);
        let mut rows = 0;
        for part in parts {
            if part.shape.len() != first.shape.len() || part.shape[1..] != first.shape[1..] {
                return Err(Error::invalid(format!(
                    "cannot concatenate shapes {} and {}",
                    ShapeDisplay(&first.shape),
                    ShapeDisplay(&part.shape)
                )));
            }
            data.extend_from(&part.data)?;
            rows += part.rows();
        }
        let mut shape = first.shape.clone();
        shape[0] = rows;
        Ok(Tensor { shape, data })
    }

    /// Returns the same data under another shape with the same element count.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Tensor> {
        Tensor::new(shape, self.data)
    }
}

/// Formats a shape as `[2, 3]`.
pub struct ShapeDisplay<'a>(pub &'a [usize]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, self.0)
    }
}

/// Writes `[a, b, c]`.
pub(crate) fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_str("[")?;
    for (i, d) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{d}")?;
    }
    f.write_str("]")
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub tensor: Tensor,
}

/// An ordered set of named tensors: a model's inputs or outputs for some examples.
///
/// The order is the signature's order; names are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    tensors: Vec<NamedTensor>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a tensor; a name already present is an error.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) -> Result<()> {
        let name = name.into();
        if self.get(&name).is_some() {
            return Err(Error::invalid(format!("tensor `{name}` is given twice")));
        }
        self.tensors.push(NamedTensor { name, tensor });
        Ok(())
    }

    /// Builder form of [`Batch::insert`].
    pub fn with(mut self, name: impl Into<String>, tensor: Tensor) -> Result<Batch> {
        self.insert(name, tensor)?;
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .map(|t| &t.tensor)
    }

    pub fn iter(&self) -> impl Iterator<Item = &NamedTensor> {
        self.tensors.iter()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Number of examples: the first dimension shared by every tensor.
    pub fn batch_size(&self) -> Result<usize> {
        let mut size = None;
        for t in &self.tensors {
            if t.tensor.shape().is_empty() {
                return Err(Error::invalid(format!(
                    "tensor `{}` is a scalar and has no batch dimension",
                    t.name
                )));
            }
            let rows = t.tensor.rows();
            match size {
                None => size = Some(rows),
                Some(s) if s != rows => {
                    return Err(Error::invalid(format!(
                        "tensors disagree on the batch size: `{}` has {rows} rows, others have {s}",
                        t.name
                    )));
                }
                _ => {}
            }
        }
        Ok(size.unwrap_or(0))
    }

    /// Examples `start..end` of every tensor.
    pub fn slice_rows(&self, start: usize, end: usize) -> Result<Batch> {
        let mut out = Batch::new();
        for t in &self.tensors {
            out.insert(t.name.clone(), t.tensor.slice_rows(start, end)?)?;
        }
        Ok(out)
    }

    /// Joins batches example-wise; each must hold the same names.
    pub fn concat_rows(parts: &[Batch]) -> Result<Batch> {
        let Some(first) = parts.first() else {
            return Ok(Batch::new());
        };
        let mut out = Batch::new();
        for t in &first.tensors {
            let pieces = parts
                .iter()
                .map(|b| {
                    b.get(&t.name).cloned().ok_or_else(|| {
                        Error::invalid(format!("tensor `{}` is missing from a batch", t.name))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            out.insert(t.name.clone(), Tensor::concat_rows(&pieces)?)?;
        }
        Ok(out)
    }

    pub fn into_vec(self) -> Vec<NamedTensor> {
        self.tensors
    }
}

impl FromIterator<NamedTensor> for Batch {
    fn from_iter<I: IntoIterator<Item = NamedTensor>>(iter: I) -> Self {
        Batch {
            tensors: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_that_overflow_are_an_error_not_a_panic() {
        // What a client may send in an OIP request's `shape`.
        let err = Tensor::new(vec![usize::MAX, 2], vec![1f32])
            .unwrap_err()
            .to_string();
        assert!(err.contains("more elements than can be counted"), "{err}");
        assert_eq!(element_count(&[1 << 40, 1 << 40]), None);
        assert_eq!(element_count(&[]), Some(1));
        assert_eq!(element_count(&[3, 0, 7]), Some(0));
    }

    #[test]
    fn new_checks_element_count() {
        assert!(Tensor::new(vec![2, 3], vec![0f32; 6]).is_ok());
        let err = Tensor::new(vec![2, 3], vec![0f32; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input: shape [2, 3] holds 6 elements but 5 were given"
        );
    }

    #[test]
    fn slice_and_concat_round_trip() {
        let t = Tensor::new(vec![3, 2], vec![1i64, 2, 3, 4, 5, 6]).unwrap();
        let a = t.slice_rows(0, 1).unwrap();
        let b = t.slice_rows(1, 3).unwrap();
        assert_eq!(b.shape(), &[2, 2]);
        assert_eq!(Tensor::concat_rows(&[a, b]).unwrap(), t);
        assert!(t.slice_rows(2, 4).is_err());
    }

    #[test]
    fn concat_refuses_mixed_dtypes() {
        let a = Tensor::new(vec![1], vec![1i64]).unwrap();
        let b = Tensor::new(vec![1], vec![1f32]).unwrap();
        assert!(Tensor::concat_rows(&[a, b]).is_err());
    }

    #[test]
    fn batch_size_must_agree() {
        let b = Batch::new()
            .with("a", Tensor::new(vec![2, 1], vec![1f32, 2.0]).unwrap())
            .unwrap()
            .with("b", Tensor::new(vec![3], vec![1i64, 2, 3]).unwrap())
            .unwrap();
        assert!(b.batch_size().is_err());
        assert!(
            Batch::new()
                .with("x", Tensor::new(vec![1], vec![1u8]).unwrap())
                .unwrap()
                .insert("x", Tensor::new(vec![1], vec![1u8]).unwrap())
                .is_err()
        );
    }

    #[test]
    fn oip_names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_oip_name(d.oip_name()), Some(d));
        }
    }
}
