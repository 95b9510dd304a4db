//! Reads an ONNX node's attributes, with errors naming the node and attribute.

use anyhow::{Context, Result, bail};
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

/// The attributes of one node.
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(node: &'a NodeProto) -> Attrs<'a> {
        Attrs { node }
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub(crate) fn ints(&self, name: &str) -> Vec<i64> {
        self.get(name).map(|a| a.ints.clone()).unwrap_or_default()
    }

    pub(crate) fn floats(&self, name: &str) -> Vec<f32> {
        self.get(name).map(|a| a.floats.clone()).unwrap_or_default()
    }

    pub(crate) fn strings(&self, name: &str) -> Result<Vec<String>> {
        self.get(name)
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8(s.clone()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .with_context(|| format!("attribute `{name}` holds a string that is not UTF-8"))
            .map(Option::unwrap_or_default)
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>> {
        self.get(name)
            .map(|a| String::from_utf8(a.s.clone()))
            .transpose()
            .with_context(|| format!("attribute `{name}` is not UTF-8"))
    }

    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        self.get(name).map(|a| a.i)
    }

    pub(crate) fn tensor(&self, name: &str) -> Option<&'a TensorProto> {
        self.get(name).and_then(|a| a.t.as_ref())
    }

    /// A float attribute `name` or its double-precision `{name}_as_tensor` twin,
    /// widened to f64 (the tensor wins when both are set, as in onnxruntime).
    pub(crate) fn floats_or_tensor(&self, name: &str) -> Result<Vec<f64>> {
        match self.tensor(&format!("{name}_as_tensor")) {
            Some(t) => tensor_f64(t).with_context(|| format!("attribute `{name}_as_tensor`")),
            None => Ok(self.floats(name).into_iter().map(f64::from).collect()),
        }
    }

    /// A tensor attribute as f64 values (empty when absent).
    pub(crate) fn tensor_f64(&self, name: &str) -> Result<Vec<f64>> {
        self.tensor(name)
            .map(|t| tensor_f64(t).with_context(|| format!("attribute `{name}`")))
            .unwrap_or(Ok(Vec::new()))
    }

    /// A tensor attribute as i64 values (empty when absent).
    pub(crate) fn tensor_i64(&self, name: &str) -> Result<Vec<i64>> {
        self.tensor(name)
            .map(|t| tensor_i64(t).with_context(|| format!("attribute `{name}`")))
            .unwrap_or(Ok(Vec::new()))
    }
}

const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const UINT16: i32 = 4;
const INT16: i32 = 5;
const INT32: i32 = 6;
const INT64: i32 = 7;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;

fn element_count(t: &TensorProto) -> usize {
    t.dims.iter().map(|&d| d.max(0) as usize).product()
}

fn raw<const N: usize, T>(t: &TensorProto, from: fn([u8; N]) -> T) -> Result<Vec<T>> {
    if !t.raw_data.len().is_multiple_of(N) {
        bail!(
            "{} bytes of raw data is not a whole number of elements",
            t.raw_data.len()
        );
    }
    Ok(t.raw_data
        .chunks_exact(N)
        .map(|c| from(c.try_into().expect("chunks of N")))
        .collect())
}

fn tensor_f64(t: &TensorProto) -> Result<Vec<f64>> {
    let raw_data = !t.raw_data.is_empty();
    let v: Vec<f64> = match t.data_type {
        FLOAT if raw_data => raw(t, f32::from_le_bytes)?
            .into_iter()
            .map(f64::from)
            .collect(),
        FLOAT => t.float_data.iter().map(|&v| f64::from(v)).collect(),
        DOUBLE if raw_data => raw(t, f64::from_le_bytes)?,
        DOUBLE => t.double_data.clone(),
        FLOAT16 if raw_data => raw(t, |b: [u8; 2]| f16_to_f32(u16::from_le_bytes(b)))?
            .into_iter()
            .map(f64::from)
            .collect(),
        FLOAT16 => t
            .int32_data
            .iter()
            .map(|&v| f64::from(f16_to_f32(v as u16)))
            .collect(),
        _ => tensor_i64(t)?.into_iter().map(|v| v as f64).collect(),
    };
    check_count(t, v.len())?;
    Ok(v)
}

fn tensor_i64(t: &TensorProto) -> Result<Vec<i64>> {
    let raw_data = !t.raw_data.is_empty();
    let v: Vec<i64> = match t.data_type {
        INT64 if raw_data => raw(t, i64::from_le_bytes)?,
        INT64 => t.int64_data.clone(),
        UINT8 if raw_data => t.raw_data.iter().map(|&b| i64::from(b)).collect(),
        INT8 if raw_data => t.raw_data.iter().map(|&b| i64::from(b as i8)).collect(),
        INT32 if raw_data => raw(t, i32::from_le_bytes)?
            .into_iter()
            .map(i64::from)
            .collect(),
        UINT16 if raw_data => raw(t, u16::from_le_bytes)?
            .into_iter()
            .map(i64::from)
            .collect(),
        INT16 if raw_data => raw(t, i16::from_le_bytes)?
            .into_iter()
            .map(i64::from)
            .collect(),
        UINT8 | INT8 | INT32 | UINT16 | INT16 => {
            t.int32_data.iter().map(|&v| i64::from(v)).collect()
        }
        other => bail!("tensors of ONNX data type {other} are not read here"),
    };
    check_count(t, v.len())?;
    Ok(v)
}

fn check_count(t: &TensorProto, n: usize) -> Result<()> {
    let want = element_count(t);
    if want != n {
        bail!("the tensor declares {want} elements but holds {n}");
    }
    Ok(())
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: renormalise.
            let shift = f.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | ((f << (shift + 1)) & 0x3ff) << 13
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_widen_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
