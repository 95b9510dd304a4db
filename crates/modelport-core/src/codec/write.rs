//! `{"predictions": [...]}` and `{"instances": [...]}` written straight to bytes: the
//! same bytes `serde_json::to_vec` of [`super::encode_predictions`] or
//! [`super::encode_instances`] gives (the tests compare them), without a
//! `serde_json::Value` per element.

use std::io::Write;

use crate::error::Result;
use crate::tensor::{Batch, Tensor, TensorData};

/// `{"<key>": [rows]}` for `batch`, as bytes.
pub(super) fn rows(key: &str, batch: &Batch) -> Result<Vec<u8>> {
    let n = batch.batch_size()?;
    let tensors: Vec<_> = batch.iter().collect();
    let single = tensors.len() == 1;
    let elements: usize = tensors.iter().map(|t| t.tensor.data().len()).sum();
    let mut out = Vec::with_capacity(24 + elements * 12);
    out.push(b'{');
    string(key, &mut out);
    out.extend_from_slice(b":[");
    for r in 0..n {
        if r > 0 {
            out.push(b',');
        }
        if single {
            row(&tensors[0].tensor, r, &mut out);
        } else {
            out.push(b'{');
            for (i, t) in tensors.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(&t.name, &mut out);
                out.push(b':');
                row(&t.tensor, r, &mut out);
            }
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// Row `r` of `t`: nested arrays, a scalar when the row shape is empty.
fn row(t: &Tensor, r: usize, out: &mut Vec<u8>) {
    nested(t.data(), r * t.row_len(), &t.shape()[1..], out);
}

fn nested(data: &TensorData, offset: usize, shape: &[usize], out: &mut Vec<u8>) {
    match shape.split_first() {
        None => element(data, offset, out),
        Some((&n, rest)) => {
            let stride: usize = rest.iter().product();
            out.push(b'[');
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                nested(data, offset + i * stride, rest, out);
            }
            out.push(b']');
        }
    }
}

fn element(data: &TensorData, i: usize, out: &mut Vec<u8>) {
    match data {
        TensorData::F32(v) => f32_number(v[i], out),
        TensorData::F64(v) => float(v[i], out),
        TensorData::I64(v) => number(v[i], out),
        TensorData::I32(v) => number(v[i], out),
        TensorData::I8(v) => number(v[i], out),
        TensorData::U8(v) => number(v[i], out),
        TensorData::Bool(v) => out.extend_from_slice(if v[i] { &b"true"[..] } else { b"false" }),
        TensorData::String(v) => string(&v[i], out),
    }
}

/// An integer or a finite f64 as serde_json writes it (itoa, ryu).
fn number(x: impl serde::Serialize, out: &mut Vec<u8>) {
    serde_json::to_writer(out, &x).expect("numbers always serialize");
}

fn string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(out, s).expect("strings always serialize");
}

/// How JSON carries a float that is not finite (see the module docs of `codec`).
pub(super) fn non_finite_name(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("NaN")
    } else if x.is_infinite() {
        Some(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        None
    }
}

fn float(x: f64, out: &mut Vec<u8>) {
    match non_finite_name(x) {
        Some(name) => string(name, out),
        None => number(x, out),
    }
}

fn f32_number(x: f32, out: &mut Vec<u8>) {
    float(widen_f32(x), out);
}

/// The f64 nearest the shortest decimal that reads back as `x`, not `x`'s exact
/// widening: what a client that parses the JSON as float32 gets back exactly.
pub(super) fn widen_f32(x: f32) -> f64 {
    if !x.is_finite() {
        return x as f64;
    }
    // f32's Display is the shortest round-tripping decimal, without an exponent: at
    // most 39 digits before the point and 45 after it.
    let mut text = [0u8; 96];
    let mut cursor = &mut text[..];
    write!(cursor, "{x}").expect("an f32 fits in 96 bytes");
    let written = 96 - cursor.len();
    std::str::from_utf8(&text[..written])
        .ok()
        .and_then(|decimal| decimal.parse::<f64>().ok())
        .unwrap_or(x as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(batch: &Batch) {
        let general =
            serde_json::to_vec(&super::super::encode_predictions(batch).unwrap()).unwrap();
        let direct = rows("predictions", batch).unwrap();
        let instances =
            serde_json::to_vec(&super::super::encode_instances(batch).unwrap()).unwrap();
        assert_eq!(rows("instances", batch).unwrap(), instances);
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(general).unwrap()
        );
    }

    #[test]
    fn predictions_are_the_bytes_of_the_general_encoder() {
        let floats = vec![
            0.5f32,
            -1.25,
            3.0e-7,
            1.0e10,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.1,
            f32::MAX,
            f32::MIN_POSITIVE,
            1.0e-45,
        ];
        let mut one = Batch::new();
        one.insert("p", Tensor::new(vec![4, 3], floats.clone()).unwrap())
            .unwrap();
        same(&one);
        let mut scalar = Batch::new();
        scalar
            .insert(
                "y",
                Tensor::new(vec![3], vec![i64::MIN, 0, i64::MAX]).unwrap(),
            )
            .unwrap();
        same(&scalar);
        let mut several = Batch::new();
        several
            .insert("label", Tensor::new(vec![2], vec![1i64, 2]).unwrap())
            .unwrap();
        several
            .insert(
                "prob\"ability",
                Tensor::new(vec![2, 1, 2], vec![0.1f64, 1e-300, f64::NAN, 7.0]).unwrap(),
            )
            .unwrap();
        several
            .insert(
                "name",
                Tensor::new(vec![2], vec!["a\"b\n".to_string(), "ü".into()]).unwrap(),
            )
            .unwrap();
        several
            .insert("ok", Tensor::new(vec![2], vec![true, false]).unwrap())
            .unwrap();
        several
            .insert("small", Tensor::new(vec![2], vec![-128i8, 127]).unwrap())
            .unwrap();
        several
            .insert("bytes", Tensor::new(vec![2], vec![0u8, 255]).unwrap())
            .unwrap();
        several
            .insert(
                "i32",
                Tensor::new(vec![2], vec![i32::MIN, i32::MAX]).unwrap(),
            )
            .unwrap();
        same(&several);
        let mut empty = Batch::new();
        empty
            .insert("p", Tensor::new(vec![0, 3], Vec::<f32>::new()).unwrap())
            .unwrap();
        same(&empty);
    }

    #[test]
    fn random_floats_are_the_bytes_of_the_general_encoder() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let floats: Vec<f32> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                f32::from_bits(state as u32)
            })
            .collect();
        let doubles: Vec<f64> = floats
            .iter()
            .enumerate()
            .map(|(i, &f)| f as f64 * (i as f64 + 0.5))
            .collect();
        let mut batch = Batch::new();
        batch
            .insert("f", Tensor::new(vec![10_000, 2], floats).unwrap())
            .unwrap();
        batch
            .insert("d", Tensor::new(vec![10_000, 2], doubles).unwrap())
            .unwrap();
        same(&batch);
    }
}
