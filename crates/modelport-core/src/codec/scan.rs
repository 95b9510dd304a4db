//! The commonest bodies read without a `serde_json::Value` tree: `{"instances": [...]}`
//! (or a bare array of rows) for a model of one numeric input, and `{"predictions":
//! [...]}` for a model of one numeric output. The numbers go straight from the bytes
//! into the tensor's element type, and the row shape is checked as they go.
//!
//! Anything this reader does not expect (a string, `null`, `"NaN"`, an object, an
//! empty array, a second key such as `parameters`, a number the element type cannot
//! hold, rows that are not alike) makes it give up with `None`, and the general
//! decoder reads the body instead: it accepts every other form and words every
//! error, so both live in one place. What this reader does accept, it decodes to
//! exactly the tensor the general decoder gives (the tests compare them).

use crate::signature::TensorSpec;
use crate::tensor::{Batch, DType, Tensor, TensorData};

/// `body` as `{"<key>": [rows]}` (or, for `instances`, a bare `[rows]`) for the one
/// tensor `specs` names, or `None` for the general decoder to read.
pub(super) fn rows(body: &[u8], key: &str, specs: &[TensorSpec]) -> Option<Batch> {
    let [spec] = specs else { return None };
    let mut scan = Scan { b: body, i: 0 };
    scan.ws();
    let wrapped = match scan.peek()? {
        b'{' => {
            scan.i += 1;
            scan.ws();
            scan.literal(b"\"")?;
            scan.literal(key.as_bytes())?;
            scan.literal(b"\"")?;
            scan.ws();
            scan.literal(b":")?;
            scan.ws();
            true
        }
        b'[' if key == "instances" => false,
        _ => return None,
    };
    let tensor = match spec.dtype {
        DType::F32 => scan.tensor(|s| s.float().map(|x| x as f32), TensorData::F32),
        DType::F64 => scan.tensor(Scan::float, TensorData::F64),
        DType::I64 => scan.tensor(|s| s.int(i64::MIN, i64::MAX), TensorData::I64),
        DType::I32 => scan.tensor(
            |s| s.int(i32::MIN.into(), i32::MAX.into()).map(|x| x as i32),
            TensorData::I32,
        ),
        DType::I8 => scan.tensor(
            |s| s.int(i8::MIN.into(), i8::MAX.into()).map(|x| x as i8),
            TensorData::I8,
        ),
        DType::U8 => scan.tensor(
            |s| s.int(0, u8::MAX.into()).map(|x| x as u8),
            TensorData::U8,
        ),
        DType::Bool | DType::String => None,
    }?;
    scan.ws();
    if wrapped {
        scan.literal(b"}")?;
        scan.ws();
    }
    if scan.i != body.len() {
        return None;
    }
    let mut batch = Batch::new();
    batch.insert(spec.name.clone(), tensor).ok()?;
    Some(batch)
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn literal(&mut self, text: &[u8]) -> Option<()> {
        let end = self.i.checked_add(text.len())?;
        (self.b.get(self.i..end)? == text).then(|| self.i = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// One JSON number (RFC 8259's grammar, nothing looser): its text, and whether
    /// it is an integer literal (no fraction, no exponent).
    fn number(&mut self) -> Option<(&str, bool)> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            integer = false;
        }
        // Only ASCII digits, signs, dots and exponents were taken.
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        Some((text, integer))
    }

    /// A float as serde_json reads it (with `float_roundtrip`): the correctly rounded
    /// nearest f64 of the literal, integers included (`-0` is -0.0 there too).
    /// A literal beyond f64's range, which serde_json refuses, is left to the general
    /// decoder.
    fn float(&mut self) -> Option<f64> {
        self.number()?
            .0
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
    }

    /// An integer literal within `min..=max`. `-0`, which serde_json reads as a
    /// float and so refuses for an integer tensor, is left to the general decoder.
    fn int(&mut self, min: i64, max: i64) -> Option<i64> {
        let (text, integer) = self.number()?;
        if !integer || text == "-0" {
            return None;
        }
        text.parse::<i64>().ok().filter(|x| (min..=max).contains(x))
    }

    /// The rows array: its elements read by `element` into one flat vector, its shape
    /// `[rows, ...row shape]` learned from the first row and required of every other.
    fn tensor<T>(
        &mut self,
        element: impl Fn(&mut Self) -> Option<T> + Copy,
        wrap: impl FnOnce(Vec<T>) -> TensorData,
    ) -> Option<Tensor> {
        let mut shape = Shape {
            dims: Vec::new(),
            leaf: None,
        };
        let mut out = Vec::new();
        self.array(0, &mut shape, &mut out, element)?;
        let leaf = shape.leaf?;
        let dims: Vec<usize> = shape.dims[..=leaf].iter().copied().collect::<Option<_>>()?;
        Tensor::new(dims, wrap(out)).ok()
    }

    fn array<T>(
        &mut self,
        level: usize,
        shape: &mut Shape,
        out: &mut Vec<T>,
        element: impl Fn(&mut Self) -> Option<T> + Copy,
    ) -> Option<()> {
        self.literal(b"[")?;
        let mut count = 0;
        loop {
            self.ws();
            if self.peek()? == b'[' {
                // Arrays only above the level the numbers are at.
                if shape.leaf.is_some_and(|leaf| leaf <= level) {
                    return None;
                }
                self.array(level + 1, shape, out, element)?;
            } else {
                match shape.leaf {
                    None => shape.leaf = Some(level),
                    Some(leaf) if leaf != level => return None,
                    Some(_) => {}
                }
                out.push(element(self)?);
            }
            count += 1;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        if shape.dims.len() <= level {
            shape.dims.resize(level + 1, None);
        }
        match shape.dims[level] {
            None => shape.dims[level] = Some(count),
            Some(known) if known != count => return None,
            Some(_) => {}
        }
        Some(())
    }
}

/// What the rows array has shown of its shape so far.
struct Shape {
    /// The length of the arrays at each nesting level (level 0: the rows).
    dims: Vec<Option<usize>>,
    /// The level whose arrays hold numbers.
    leaf: Option<usize>,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::signature::Dim;

    fn spec(dtype: DType) -> TensorSpec {
        TensorSpec::new("x", dtype, vec![Dim::Dynamic(None)])
    }

    /// Whether the fast reader took `body`; when it did, its tensor must be the
    /// general decoder's, down to the sign of zero (hence Debug, not `==`).
    fn fast(body: &str, key: &str, dtype: DType) -> bool {
        let specs = [spec(dtype)];
        let Some(fast) = rows(body.as_bytes(), key, &specs) else {
            return false;
        };
        let value: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("the fast reader took invalid JSON {body}: {e}"));
        let slow = if key == "instances" {
            super::super::decode_request(&value, &specs).map(|(b, _)| b)
        } else {
            super::super::decode_predictions(&value, Some(&specs))
        }
        .unwrap_or_else(|e| {
            panic!("the general decoder refused {body}, the fast one took it: {e}")
        });
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{body}");
        true
    }

    #[test]
    fn the_common_bodies_are_read_as_the_general_decoder_reads_them() {
        for (body, dtype) in [
            (r#"{"instances": [[5.1, 3.5, 1.4, 0.2]]}"#, DType::F32),
            (r#" { "instances" :[ [1,2] ,[3 , 4] ] } "#, DType::F32),
            ("[[1, 2], [3, 4]]", DType::F64),
            ("[1, 2, 3]", DType::F32),
            (r#"{"instances": [[[1, 2]], [[3, 4]]]}"#, DType::F32),
            (
                "[[-0, 0, -0.0, 1e5, 1E-5, 2.5e+3, 12345678901234567890, -9223372036854775809, 1e-400, 3.4e39]]",
                DType::F32,
            ),
            (
                "[[0.1, 16777217, 9007199254740993, 1.7976931348623157e308]]",
                DType::F64,
            ),
            (
                "[[1, -2, 9223372036854775807, -9223372036854775808]]",
                DType::I64,
            ),
            ("[[2147483647, -2147483648]]", DType::I32),
            ("[[-128, 127]]", DType::I8),
            ("[[0, 255]]", DType::U8),
        ] {
            assert!(fast(body, "instances", dtype), "not taken: {body}");
        }
        assert!(fast(
            r#"{"predictions": [[0.25, 0.75]]}"#,
            "predictions",
            DType::F32
        ));
        assert!(fast(
            r#"{"predictions": [1, 0]}"#,
            "predictions",
            DType::I64
        ));
    }

    #[test]
    fn anything_else_is_left_to_the_general_decoder() {
        for (body, dtype) in [
            (r#"{"instances": []}"#, DType::F32),
            ("[[]]", DType::F32),
            (r#"{"instances": [[1, 2], [3]]}"#, DType::F32),
            (r#"{"instances": [[1, 2], 3]}"#, DType::F32),
            (r#"{"instances": [[1, [2]]]}"#, DType::F32),
            (r#"{"instances": [[[1]], [2]]}"#, DType::F32),
            (r#"{"instances": [[1]], "parameters": {}}"#, DType::F32),
            (r#"{"parameters": {}, "instances": [[1]]}"#, DType::F32),
            (r#"{"instances": [{"x": [1]}]}"#, DType::F32),
            (r#"{"inputs": [[1]]}"#, DType::F32),
            (r#"[["a"]]"#, DType::F32),
            ("[[null]]", DType::F32),
            (r#"[["NaN"]]"#, DType::F32),
            ("[[true]]", DType::Bool),
            ("[[1e400]]", DType::F64),
            ("[[01]]", DType::F32),
            ("[[1.]]", DType::F32),
            ("[[.5]]", DType::F32),
            ("[[+1]]", DType::F32),
            ("[[1e]]", DType::F32),
            ("[[1,]]", DType::F32),
            ("[[1] ]x", DType::F32),
            (r#"{"instances": [[1]]"#, DType::F32),
            ("[[1.5]]", DType::I64),
            ("[[1e2]]", DType::I64),
            ("[[-0]]", DType::I64),
            ("[[9223372036854775808]]", DType::I64),
            ("[[200]]", DType::I8),
            ("[[-1]]", DType::U8),
            ("[[1]]", DType::String),
        ] {
            assert!(!fast(body, "instances", dtype), "taken: {body}");
        }
        // A bare array is a request form only.
        assert!(!fast("[[1]]", "predictions", DType::F32));
        // Two tensors: the general decoder's object rows.
        let two = [spec(DType::F32), TensorSpec::new("y", DType::F32, vec![])];
        assert!(rows(b"[[1]]", "instances", &two).is_none());
    }

    /// Random rectangular bodies, numbers written every way JSON allows, whitespace
    /// anywhere: the fast reader takes each and agrees with the general decoder.
    #[test]
    fn random_bodies_agree_with_the_general_decoder() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..500 {
            let rank = next(4) as usize;
            let dims: Vec<usize> = (0..rank).map(|_| 1 + next(4) as usize).collect();
            let rows = 1 + next(5) as usize;
            let dtype = [DType::F32, DType::F64, DType::I64][next(3) as usize];
            let mut body = String::new();
            let ws =
                |body: &mut String, r: u64| body.push_str([" ", "", "\n", "\t ", ""][r as usize]);
            fn write_array(
                body: &mut String,
                dims: &[usize],
                element: &mut dyn FnMut(&mut String),
            ) {
                match dims.split_first() {
                    None => element(body),
                    Some((&n, rest)) => {
                        body.push('[');
                        for i in 0..n {
                            if i > 0 {
                                body.push(',');
                            }
                            write_array(body, rest, element);
                        }
                        body.push(']');
                    }
                }
            }
            let wrapped = next(2) == 0;
            if wrapped {
                body.push_str("{\"instances\":");
            }
            ws(&mut body, next(5));
            let mut all = vec![rows];
            all.extend(&dims);
            write_array(&mut body, &all, &mut |b: &mut String| {
                let w = next(5);
                ws(b, w);
                let sign = if next(3) == 0 { "-" } else { "" };
                let mantissa = next(1_000_000_000);
                let text = match (dtype, next(5)) {
                    (DType::I64, _) | (_, 0) => format!("{sign}{mantissa}"),
                    (_, 1) => format!("{sign}{}", mantissa as f32 / 977.0),
                    (_, 2) => format!("{sign}{:e}", mantissa as f64 * 1.3e-12),
                    (_, 3) => format!("{sign}{}.{:03}E{}", mantissa % 10, next(1000), next(40)),
                    _ => format!("{sign}0.{mantissa:09}e-{}", next(300)),
                };
                b.push_str(if text == "-0" && dtype == DType::I64 {
                    "0"
                } else {
                    &text
                });
                let w = next(5);
                ws(b, w);
            });
            ws(&mut body, next(5));
            if wrapped {
                body.push('}');
            }
            assert!(fast(&body, "instances", dtype), "not taken: {body}");
        }
    }
}
