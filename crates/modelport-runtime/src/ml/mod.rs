//! Native kernels of the `ai.onnx.ml` operators that scikit-learn, XGBoost and
//! LightGBM exports use, written to answer exactly as onnxruntime does.
//!
//! The kernels know nothing of tract: each reads its node's attributes into plain
//! arrays once, then evaluates whole batches. `tract_ops` registers them into tract.
//! Where the ONNX specification and onnxruntime disagree (the layout of binary
//! classifier scores, which post transforms a one-target regressor applies, the
//! label a two-class tree ensemble picks), the kernels follow onnxruntime; the
//! departures are listed in the README's engine table and pinned by the survey test.

pub(crate) mod attrs;
pub(crate) mod linear;
pub(crate) mod simple;
pub(crate) mod svm;
pub(crate) mod tree;

/// What a classifier's or regressor's raw scores pass through last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub(crate) fn parse(s: &str) -> anyhow::Result<PostTransform> {
        Ok(match s {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            other => anyhow::bail!("post_transform `{other}` is not one ONNX defines"),
        })
    }

    /// The node's `post_transform` attribute (`NONE` when absent).
    pub(crate) fn of(a: &attrs::Attrs) -> anyhow::Result<PostTransform> {
        PostTransform::parse(a.string("post_transform")?.as_deref().unwrap_or("NONE"))
    }

    /// onnxruntime's two columns for a two-class model that produced one score `sc`
    /// (its `write_binary_scores`): `second_class` says how the weights were signed
    /// (0/1: all positive, 2/3: mixed; -1: neither).
    pub(crate) fn binary_pair(self, second_class: i8, sc: f32) -> [f32; 2] {
        match (self, second_class) {
            (PostTransform::Probit, _) => [probit(sc), 0.0],
            (_, 0 | 1) => [1.0 - sc, sc],
            (PostTransform::Logistic, 2 | 3) => [logistic(-sc), logistic(sc)],
            (_, 2 | 3) => [-sc, sc],
            _ => [sc, 0.0],
        }
    }

    /// The opset-5 `TreeEnsemble` integer form, read as onnxruntime reads it: the
    /// ONNX text says 1 is `SOFTMAX` and 2 `LOGISTIC`, but onnxruntime casts the
    /// integer to its own enumeration, where 1 is `LOGISTIC` and 2 `SOFTMAX` (1.32,
    /// pinned by the survey's `tree-ensemble-v5-*` models).
    pub(crate) fn from_code(code: i64) -> anyhow::Result<PostTransform> {
        Ok(match code {
            0 => PostTransform::None,
            1 => PostTransform::Logistic,
            2 => PostTransform::Softmax,
            3 => PostTransform::SoftmaxZero,
            4 => PostTransform::Probit,
            other => anyhow::bail!("post_transform {other} is not one ONNX defines (0 to 4)"),
        })
    }

    /// Applies the transform to one row of two or more scores, in place.
    pub(crate) fn apply(self, row: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => row.iter_mut().for_each(|v| *v = logistic(*v)),
            PostTransform::Probit => row.iter_mut().for_each(|v| *v = probit(*v)),
            PostTransform::Softmax => softmax(row),
            PostTransform::SoftmaxZero => softmax_zero(row),
        }
    }
}

/// `1 / (1 + e^-x)`, computed on `|x|` as onnxruntime does.
pub(crate) fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 { 1.0 - v } else { v }
}

/// onnxruntime's probit: `√2 · erfinv(2x − 1)` with its closed-form erfinv
/// approximation (Winitzki's, constant 0.147), so the answers agree to the bit's
/// neighbourhood rather than to the exact inverse.
pub(crate) fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

pub(crate) fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(-f32::MAX, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

/// Softmax that leaves (near-)zero scores out of the sum, as onnxruntime's
/// `SOFTMAX_ZERO` does.
pub(crate) fn softmax_zero(row: &mut [f32]) {
    let max = row.iter().copied().fold(-f32::MAX, f32::max);
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0;
    for v in row.iter_mut() {
        if *v > 1e-7 || *v < -1e-7 {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v *= exp_neg_max;
        }
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

/// A classifier's labels: integers or strings, in class order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Labels {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl Labels {
    /// `classlabels_strings`, else the integer labels in attribute `ints`.
    pub(crate) fn of(a: &attrs::Attrs, ints: &str) -> anyhow::Result<Labels> {
        let strings = a.strings("classlabels_strings")?;
        Ok(if strings.is_empty() {
            Labels::Int(a.ints(ints))
        } else {
            Labels::Str(strings)
        })
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Labels::Int(v) => v.len(),
            Labels::Str(v) => v.len(),
        }
    }
}

/// The index of the first largest value (0 when empty), as `std::max_element` picks.
pub(crate) fn first_max<T: PartialOrd>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Which of a classifier's labels each example gets, or a fixed integer/string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// The label at this class index.
    Class(usize),
    /// onnxruntime's fallback for two-class models that are not "binary": `1` or
    /// `0` (`"1"`/`"0"` for string labels), whatever the labels are.
    Raw(bool),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_match_onnxruntime_on_known_values() {
        // Values onnxruntime 1.32 printed for the same inputs.
        assert!((logistic(0.3) - 0.574_442_5).abs() < 1e-6);
        assert!((logistic(-0.3) - 0.425_557_5).abs() < 1e-6);
        assert!((probit(0.3) - -0.524_445_9).abs() < 1e-6);
        assert!((probit(0.8) - 0.841_756_1).abs() < 1e-6);
        assert_eq!(probit(0.0), f32::NEG_INFINITY);
        let mut row = [0.0, 0.3];
        softmax(&mut row);
        assert!((row[0] - 0.425_557_46).abs() < 1e-6);
        let mut row = [0.0, 0.3];
        softmax_zero(&mut row);
        assert_eq!(row, [0.0, 1.0]);
    }
}
