//! The numbers behind a comparison: how far apart two sets of outputs are, output by
//! output, and which examples are furthest apart.
//!
//! This module is pure: it takes batches that are already in memory and returns a
//! [`Comparison`]. It does no I/O and prints nothing, so every rule about what counts as
//! "the same" lives here and is tested here, and the renderers only format.
//!
//! B is the reference (usually the local runtime) and A the candidate (usually the
//! endpoint). The tolerance test is numpy's `isclose` with B as the reference,
//! `|a - b| <= atol + rtol * |b|`; it is asymmetric on purpose, because the reference is
//! what the user trusts.
//!
//! Float outputs are compared element by element. Every other dtype (integers,
//! booleans, strings) is a label and is compared row by row, because a predicted class
//! is either right or wrong; a few wrong labels may be acceptable, which is what
//! `verify.min_label_agreement` says.
//!
//! Nothing here panics on malformed input: a missing output, a shape or dtype mismatch,
//! zero rows or an empty batch become a failed output or a note, never a crash.

use modelport_core::spec::VerifySpec;
use modelport_core::tensor::ShapeDisplay;
use modelport_core::{Batch, ClassLabels, DType, Tensor, TensorData, TensorSpec};
use serde::{Serialize, Serializer};

/// How many elements of one tensor row a worst example shows; longer rows end in `…`.
pub const ROW_PREVIEW: usize = 16;

/// The marker that ends a truncated row preview.
pub const ELLIPSIS: &str = "…";

/// The outcome of comparing A's outputs with B's.
///
/// Non-finite numbers (an infinite relative error when B is 0 and A is not, an
/// infinite score, a difference that overflows) serialize as the strings `"inf"`,
/// `"-inf"` and `"nan"`, because JSON has no infinity and `null` would lose the sign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Whether A matches B: at least one output was compared on at least one sample,
    /// and every output that is not skipped passed.
    pub passed: bool,
    /// The number of examples compared.
    pub samples: usize,
    /// The default absolute tolerance; an output may override it (see [`OutputReport`]).
    pub atol: f64,
    /// The default relative tolerance; an output may override it.
    pub rtol: f64,
    /// The fraction of label rows that must agree for a label output to pass.
    pub min_label_agreement: f64,
    /// One report per output of B, in B's order.
    pub outputs: Vec<OutputReport>,
    /// The examples that differ most, worst first.
    pub worst: Vec<WorstExample>,
    /// What the user should know that is not an output's result: outputs only A has,
    /// or why nothing was compared.
    pub notes: Vec<String>,
    /// The samples that could not be compared because a side stopped answering
    /// part-way; a comparison with any never passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<Unchecked>,
}

/// Samples a comparison could not check: a side answered only part of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unchecked {
    /// How many samples were not compared.
    pub samples: usize,
    /// How many there were in all.
    pub total: usize,
    /// The side that stopped answering.
    pub target: String,
    /// Why it stopped.
    pub reason: String,
}

impl Comparison {
    /// The outputs that failed, in B's order.
    pub fn failed_outputs(&self) -> impl Iterator<Item = &OutputReport> {
        self.outputs.iter().filter(|o| o.status == Status::Failed)
    }

    /// The outputs that were not skipped.
    pub fn checked_outputs(&self) -> impl Iterator<Item = &OutputReport> {
        self.outputs.iter().filter(|o| o.status != Status::Skipped)
    }
}

/// The result of one output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// Left out by `verify.outputs.<name>.skip`.
    Skipped,
}

/// How one output of B compares with the same output of A.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputReport {
    pub name: String,
    /// B's dtype.
    pub dtype: DType,
    /// B's shape.
    pub shape: Vec<usize>,
    pub status: Status,
    /// Why the output failed, in one line; absent when it passed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The absolute tolerance that applied to this output.
    pub atol: f64,
    /// The relative tolerance that applied to this output.
    pub rtol: f64,
    /// Present for float outputs that were compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<FloatStats>,
    /// Present for label outputs that were compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelStats>,
}

/// Element-wise error statistics of a float output.
///
/// The absolute and relative errors cover the elements where both sides are finite;
/// NaN and infinity are counted separately, because an error measured against them is
/// meaningless.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloatStats {
    pub elements: usize,
    #[serde(serialize_with = "serialize_float")]
    pub max_abs_err: f64,
    #[serde(serialize_with = "serialize_float")]
    pub mean_abs_err: f64,
    /// `|a - b| / |b|`; infinite where B is 0 and A is not.
    #[serde(serialize_with = "serialize_float")]
    pub max_rel_err: f64,
    /// Elements outside the tolerance, NaN and infinity mismatches included.
    pub out_of_tolerance: usize,
    /// The fraction of elements within the tolerance (1 when there are none).
    pub within_fraction: f64,
    /// Elements where exactly one side is NaN (NaN on both sides is a match).
    pub nan_mismatches: usize,
    /// Elements where one side is infinite and the other is not the same infinity.
    pub inf_mismatches: usize,
    /// For `[N, C]` outputs with at least two columns (class scores): the fraction of
    /// rows whose largest column is the same on both sides.
    ///
    /// Informational only, never a reason to fail: two scores that are equal within
    /// the tolerance can swap places, and then the argmax flips although both sides
    /// are right. The tolerance test above is the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argmax_agreement: Option<f64>,
}

/// Row-wise agreement of a label output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelStats {
    pub rows: usize,
    /// Rows in which at least one element differs.
    pub mismatched_rows: usize,
    /// The fraction of rows whose elements are all equal (1 when there are no rows).
    pub agreement: f64,
    /// The agreement this output needed to pass.
    pub min_agreement: f64,
}

/// One of the examples that differ most between A and B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstExample {
    /// The example's row in the inputs.
    pub index: usize,
    /// The largest error over the example's outputs, in units of the tolerance:
    /// `|a - b| / (atol + rtol * |b|)`, so above 1 is out of tolerance. It is infinite
    /// for a NaN or infinity mismatch, a differing label, or a difference where the
    /// tolerance is zero.
    #[serde(serialize_with = "serialize_float")]
    pub score: f64,
    /// The example's inputs by name, each element rendered as text.
    #[serde(serialize_with = "serialize_named")]
    pub inputs: Vec<(String, Vec<String>)>,
    /// The example's compared outputs by name, on both sides.
    #[serde(serialize_with = "serialize_named")]
    pub outputs: Vec<(String, RowPair)>,
}

/// One output row of an example on both sides, each element rendered as text.
///
/// At most [`ROW_PREVIEW`] elements are shown; a longer row ends in [`ELLIPSIS`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowPair {
    pub a: Vec<String>,
    pub b: Vec<String>,
    /// The class label of A's largest column, when the output carries class labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a_class: Option<String>,
    /// The class label of B's largest column, when the output carries class labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b_class: Option<String>,
}

/// Compares the candidate `a` with the reference `b`.
///
/// `inputs` are the examples both sides were given; they size the comparison and fill
/// the worst examples. `outputs` are the model's output specs when known (they supply
/// class labels; pass `&[]` otherwise). `worst_k` bounds [`Comparison::worst`].
pub fn compare(
    a: &Batch,
    b: &Batch,
    inputs: &Batch,
    outputs: &[TensorSpec],
    verify: &VerifySpec,
    worst_k: usize,
) -> Comparison {
    let samples = sample_count(inputs, b);
    let mut reports = Vec::new();
    let mut notes = Vec::new();
    let mut row_scores: Vec<f64> = Vec::new();
    // The outputs whose rows line up on both sides, for the worst examples.
    let mut comparable: Vec<&str> = Vec::new();

    for named in b.iter() {
        let name = named.name.as_str();
        let tb = &named.tensor;
        let (atol, rtol, skip) = verify.tolerance_for(name);
        let mut report = OutputReport {
            name: name.to_string(),
            dtype: tb.dtype(),
            shape: tb.shape().to_vec(),
            status: Status::Passed,
            reason: None,
            atol,
            rtol,
            stats: None,
            labels: None,
        };
        if skip {
            report.status = Status::Skipped;
            reports.push(report);
            continue;
        }
        let mismatch = match a.get(name) {
            None => Err("missing in A".to_string()),
            Some(ta) if ta.dtype() != tb.dtype() => {
                Err(format!("dtype {} in A vs {} in B", ta.dtype(), tb.dtype()))
            }
            Some(ta) if ta.shape() != tb.shape() => Err(format!(
                "shape {} in A vs {} in B",
                ShapeDisplay(ta.shape()),
                ShapeDisplay(tb.shape())
            )),
            // One row per input on both sides: rows dropped (or invented) by a side
            // are a failure even when both sides agree on them.
            Some(ta) if ta.rows() != samples => {
                Err(format!("{} rows for {samples} inputs", ta.rows()))
            }
            Some(ta) => Ok(ta),
        };
        let ta = match mismatch {
            Ok(ta) => ta,
            Err(reason) => {
                report.status = Status::Failed;
                report.reason = Some(reason);
                reports.push(report);
                continue;
            }
        };
        comparable.push(name);

        let scores = if tb.dtype().is_float() {
            let (stats, scores) = float_stats(ta, tb, atol, rtol);
            if stats.out_of_tolerance > 0 {
                report.status = Status::Failed;
                report.reason = Some(float_reason(&stats));
            }
            report.stats = Some(stats);
            scores
        } else {
            let (stats, scores) = label_stats(ta, tb, verify.min_label_agreement);
            if stats.agreement < stats.min_agreement {
                report.status = Status::Failed;
                report.reason = Some(format!(
                    "{} of {} rows differ ({} agree, {} required)",
                    stats.mismatched_rows,
                    stats.rows,
                    percent(stats.agreement),
                    percent(stats.min_agreement)
                ));
            }
            report.labels = Some(stats);
            scores
        };
        merge_scores(&mut row_scores, &scores);
        reports.push(report);
    }

    // An output only A returns is not the model's answer either: the two sides are
    // not the same model (skip it in `verify.outputs` when that is expected).
    for named in a.iter() {
        if b.get(&named.name).is_some() {
            continue;
        }
        let (atol, rtol, skip) = verify.tolerance_for(&named.name);
        reports.push(OutputReport {
            name: named.name.clone(),
            dtype: named.tensor.dtype(),
            shape: named.tensor.shape().to_vec(),
            status: if skip {
                Status::Skipped
            } else {
                Status::Failed
            },
            reason: (!skip).then(|| "missing in B".to_string()),
            atol,
            rtol,
            stats: None,
            labels: None,
        });
    }

    let checked = reports.iter().filter(|r| r.status != Status::Skipped);
    let any_checked = checked.clone().next().is_some();
    let all_passed = checked.clone().all(|r| r.status == Status::Passed);
    if b.is_empty() {
        notes.push("B returned no outputs, so nothing was compared".to_string());
    } else if b.iter().all(|t| a.get(&t.name).is_none()) {
        notes.push("A and B have no output in common".to_string());
    } else if !any_checked {
        notes.push("every output is skipped, so nothing was compared".to_string());
    }
    if samples == 0 {
        notes.push("there are no samples, so nothing was compared".to_string());
    }

    let worst = worst_examples(a, b, inputs, outputs, &comparable, &row_scores, worst_k);

    Comparison {
        passed: any_checked && all_passed && samples > 0,
        samples,
        atol: verify.atol,
        rtol: verify.rtol,
        min_label_agreement: verify.min_label_agreement,
        outputs: reports,
        worst,
        notes,
        unchecked: None,
    }
}

/// The number of examples: the inputs' batch size, or B's rows when the inputs cannot
/// say (no inputs, or inputs that disagree).
fn sample_count(inputs: &Batch, b: &Batch) -> usize {
    match inputs.batch_size() {
        Ok(n) if !inputs.is_empty() => n,
        _ => b.iter().map(|t| t.tensor.rows()).max().unwrap_or(0),
    }
}

/// One element pair of a float output, classified.
enum Pair {
    /// Both finite; the absolute difference.
    Finite(f64),
    /// Equal non-finite values: NaN on both sides or the same infinity.
    SpecialMatch,
    NanMismatch,
    InfMismatch,
}

fn classify(x: f64, y: f64) -> Pair {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => return Pair::SpecialMatch,
        (true, false) | (false, true) => return Pair::NanMismatch,
        (false, false) => {}
    }
    if x.is_infinite() || y.is_infinite() {
        return if x == y {
            Pair::SpecialMatch
        } else {
            Pair::InfMismatch
        };
    }
    Pair::Finite((x - y).abs())
}

/// Statistics of a float output and the score of each of its rows.
///
/// `a` and `b` have the same dtype and shape.
fn float_stats(a: &Tensor, b: &Tensor, atol: f64, rtol: f64) -> (FloatStats, Vec<f64>) {
    let (da, db) = (a.data(), b.data());
    let elements = da.len().min(db.len());
    let row_len = b.row_len().max(1);
    let mut scores: Vec<f64> = vec![0.0; b.rows()];
    let (mut max_abs, mut sum_abs, mut finite, mut max_rel) = (0.0f64, 0.0f64, 0usize, 0.0f64);
    let (mut out, mut nan, mut inf) = (0usize, 0usize, 0usize);

    for i in 0..elements {
        let x = da.get_f64(i).unwrap_or(f64::NAN);
        let y = db.get_f64(i).unwrap_or(f64::NAN);
        let score = match classify(x, y) {
            Pair::SpecialMatch => 0.0,
            Pair::NanMismatch => {
                nan += 1;
                out += 1;
                f64::INFINITY
            }
            Pair::InfMismatch => {
                inf += 1;
                out += 1;
                f64::INFINITY
            }
            Pair::Finite(abs) => {
                max_abs = max_abs.max(abs);
                sum_abs += abs;
                finite += 1;
                let rel = if y == 0.0 {
                    if abs == 0.0 { 0.0 } else { f64::INFINITY }
                } else {
                    abs / y.abs()
                };
                max_rel = max_rel.max(rel);
                let tolerance = atol + rtol * y.abs();
                // A difference that overflowed to infinity is out of tolerance, and so is
                // everything under a NaN tolerance.
                let within = abs <= tolerance;
                if !within {
                    out += 1;
                }
                if abs == 0.0 {
                    0.0
                } else if tolerance > 0.0 {
                    abs / tolerance
                } else {
                    f64::INFINITY
                }
            }
        };
        if let Some(s) = scores.get_mut(i / row_len) {
            *s = s.max(score);
        }
    }

    let stats = FloatStats {
        elements,
        max_abs_err: max_abs,
        mean_abs_err: if finite == 0 {
            0.0
        } else {
            sum_abs / finite as f64
        },
        max_rel_err: max_rel,
        out_of_tolerance: out,
        within_fraction: fraction(elements - out, elements),
        nan_mismatches: nan,
        inf_mismatches: inf,
        argmax_agreement: argmax_agreement(a, b),
    };
    (stats, scores)
}

fn float_reason(stats: &FloatStats) -> String {
    let mut reason = format!(
        "{} of {} elements out of tolerance",
        stats.out_of_tolerance, stats.elements
    );
    if stats.nan_mismatches > 0 {
        reason.push_str(&format!(", {} NaN mismatches", stats.nan_mismatches));
    }
    if stats.inf_mismatches > 0 {
        reason.push_str(&format!(", {} inf mismatches", stats.inf_mismatches));
    }
    reason
}

/// The fraction of rows of an `[N, C]` output (C ≥ 2) whose argmax agrees.
fn argmax_agreement(a: &Tensor, b: &Tensor) -> Option<f64> {
    let &[rows, columns] = b.shape() else {
        return None;
    };
    if columns < 2 || rows == 0 {
        return None;
    }
    let agree = (0..rows)
        .filter(|&r| row_argmax(a.data(), r, columns) == row_argmax(b.data(), r, columns))
        .count();
    Some(fraction(agree, rows))
}

/// The first column holding the row's largest value, ignoring NaN; `None` for a row
/// that is all NaN or out of range.
fn row_argmax(data: &TensorData, row: usize, columns: usize) -> Option<usize> {
    let start = row.checked_mul(columns)?;
    if start + columns > data.len() {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    for c in 0..columns {
        let v = data.get_f64(start + c)?;
        if !v.is_nan() && best.is_none_or(|(_, m)| v > m) {
            best = Some((c, v));
        }
    }
    best.map(|(c, _)| c)
}

/// Agreement of a label output and the score of each of its rows (0 or infinity).
///
/// `a` and `b` have the same dtype and shape.
fn label_stats(a: &Tensor, b: &Tensor, min_agreement: f64) -> (LabelStats, Vec<f64>) {
    let rows = b.rows();
    let row_len = b.row_len();
    let len = a.data().len().min(b.data().len());
    let scores: Vec<f64> = (0..rows)
        .map(|r| {
            let start = r * row_len;
            let end = (start + row_len).min(len);
            let same = (start..end).all(|i| element_eq(a.data(), b.data(), i));
            if same { 0.0 } else { f64::INFINITY }
        })
        .collect();
    let mismatched_rows = scores.iter().filter(|s| **s > 0.0).count();
    let stats = LabelStats {
        rows,
        mismatched_rows,
        agreement: fraction(rows - mismatched_rows, rows),
        min_agreement,
    };
    (stats, scores)
}

/// Exact equality of element `i` of two same-dtype vectors.
///
/// Integers are compared as integers, not through f64, so that large ids stay exact.
fn element_eq(a: &TensorData, b: &TensorData, i: usize) -> bool {
    fn at<T: PartialEq>(x: &[T], y: &[T], i: usize) -> bool {
        matches!((x.get(i), y.get(i)), (Some(p), Some(q)) if p == q)
    }
    match (a, b) {
        (TensorData::F32(x), TensorData::F32(y)) => at(x, y, i),
        (TensorData::F64(x), TensorData::F64(y)) => at(x, y, i),
        (TensorData::I64(x), TensorData::I64(y)) => at(x, y, i),
        (TensorData::I32(x), TensorData::I32(y)) => at(x, y, i),
        (TensorData::I8(x), TensorData::I8(y)) => at(x, y, i),
        (TensorData::U8(x), TensorData::U8(y)) => at(x, y, i),
        (TensorData::Bool(x), TensorData::Bool(y)) => at(x, y, i),
        (TensorData::String(x), TensorData::String(y)) => at(x, y, i),
        _ => false,
    }
}

/// Raises each row's overall score to this output's score for the row.
fn merge_scores(all: &mut Vec<f64>, scores: &[f64]) {
    if all.len() < scores.len() {
        all.resize(scores.len(), 0.0);
    }
    for (total, s) in all.iter_mut().zip(scores) {
        *total = total.max(*s);
    }
}

/// The `k` rows with the highest score above zero, worst first; ties keep index order.
fn worst_examples(
    a: &Batch,
    b: &Batch,
    inputs: &Batch,
    specs: &[TensorSpec],
    comparable: &[&str],
    row_scores: &[f64],
    k: usize,
) -> Vec<WorstExample> {
    let mut ranked: Vec<(usize, f64)> = row_scores
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, s)| *s > 0.0)
        .collect();
    // A stable sort on the score alone keeps tied rows in index order.
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
    ranked.truncate(k);

    ranked
        .into_iter()
        .map(|(index, score)| WorstExample {
            index,
            score,
            inputs: inputs
                .iter()
                .map(|t| (t.name.clone(), preview_row(&t.tensor, index)))
                .collect(),
            outputs: comparable
                .iter()
                .filter_map(|name| {
                    let (ta, tb) = (a.get(name)?, b.get(name)?);
                    let labels = specs
                        .iter()
                        .find(|s| s.name == *name)
                        .and_then(|s| s.class_labels.as_ref());
                    let pair = RowPair {
                        a: preview_row(ta, index),
                        b: preview_row(tb, index),
                        a_class: row_class(ta, index, labels),
                        b_class: row_class(tb, index, labels),
                    };
                    Some((name.to_string(), pair))
                })
                .collect(),
        })
        .collect()
}

/// Row `row` of a tensor rendered element by element, at most [`ROW_PREVIEW`] of them;
/// empty when the row does not exist.
fn preview_row(t: &Tensor, row: usize) -> Vec<String> {
    let row_len = t.row_len();
    if row >= t.rows() {
        return Vec::new();
    }
    let start = row * row_len;
    let end = (start + row_len).min(t.len());
    let shown = (end.saturating_sub(start)).min(ROW_PREVIEW);
    let mut values: Vec<String> = (start..start + shown)
        .map(|i| display_element(t.data(), i))
        .collect();
    if start + shown < end {
        values.push(ELLIPSIS.to_string());
    }
    values
}

/// Element `i` as text, as `TensorData::display_at` renders it, except that f32
/// values print at f32 precision (`0.7`, where `display_at` widens to f64 first and
/// prints `0.699999988079071`).
fn display_element(data: &TensorData, i: usize) -> String {
    match data {
        TensorData::F32(v) => match v.get(i) {
            Some(x) if x.is_finite() && *x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e6) => {
                format!("{x:e}")
            }
            Some(x) => format!("{x}"),
            None => String::new(),
        },
        other if i < other.len() => other.display_at(i),
        _ => String::new(),
    }
}

/// The class label of a probability row's largest column, when the output has labels
/// for exactly its columns.
fn row_class(t: &Tensor, row: usize, labels: Option<&ClassLabels>) -> Option<String> {
    let labels = labels?;
    let &[rows, columns] = t.shape() else {
        return None;
    };
    if !t.dtype().is_float() || row >= rows || labels.len() != columns {
        return None;
    }
    let c = row_argmax(t.data(), row, columns)?;
    Some(match labels {
        ClassLabels::Int64(v) => v[c].to_string(),
        ClassLabels::String(v) => v[c].clone(),
    })
}

/// `part / whole`, or 1 when there is nothing to measure.
fn fraction(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// A fraction as a percentage with one decimal; `100.0%` only ever means all of them.
pub(crate) fn percent(f: f64) -> String {
    let text = format!("{:.1}", f * 100.0);
    if f < 1.0 && text == "100.0" {
        "99.9%".to_string()
    } else {
        format!("{text}%")
    }
}

/// Serializes a float as a JSON number, or as `"inf"`, `"-inf"`, `"nan"`.
/// `f64` as JSON, with `"inf"`, `"-inf"` and `"nan"` for what JSON cannot hold.
pub fn serialize_float<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else if x.is_nan() {
        s.serialize_str("nan")
    } else if *x > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

/// Serializes named values as a JSON object in their order.
fn serialize_named<T: Serialize, S: Serializer>(
    v: &[(String, T)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, v)| (k, v)))
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use modelport_core::Dim;
    use modelport_core::spec::OutputTolerance;

    use super::*;

    fn tensor(shape: &[usize], data: impl Into<TensorData>) -> Tensor {
        Tensor::new(shape.to_vec(), data).unwrap()
    }

    fn f64s(values: &[f64]) -> Tensor {
        tensor(&[values.len()], values.to_vec())
    }

    fn batch(tensors: Vec<(&str, Tensor)>) -> Batch {
        let mut batch = Batch::new();
        for (name, t) in tensors {
            batch.insert(name, t).unwrap();
        }
        batch
    }

    /// One input `x` with `rows` rows holding the row index, so that worst examples
    /// show which row they came from.
    fn inputs(rows: usize) -> Batch {
        let values: Vec<f32> = (0..rows).map(|r| r as f32).collect();
        batch(vec![("x", tensor(&[rows, 1], values))])
    }

    /// The comparison in a few lines: the verdict, one line per output, the notes.
    fn summary(c: &Comparison) -> String {
        let mut text = format!("{}\n", if c.passed { "passed" } else { "failed" });
        for o in &c.outputs {
            let _ = write!(text, "{}: {:?}", o.name, o.status);
            if let Some(reason) = &o.reason {
                let _ = write!(text, " ({reason})");
            }
            if let Some(s) = &o.stats {
                let _ = write!(
                    text,
                    " abs={:.1e} rel={:.1e} within={} nan={} inf={}",
                    s.max_abs_err,
                    s.max_rel_err,
                    percent(s.within_fraction),
                    s.nan_mismatches,
                    s.inf_mismatches
                );
                if let Some(argmax) = s.argmax_agreement {
                    let _ = write!(text, " argmax={}", percent(argmax));
                }
            }
            if let Some(l) = &o.labels {
                let _ = write!(
                    text,
                    " agreement={} mismatched={}",
                    percent(l.agreement),
                    l.mismatched_rows
                );
            }
            text.push('\n');
        }
        for note in &c.notes {
            let _ = writeln!(text, "note: {note}");
        }
        text
    }

    #[track_caller]
    fn check_with(a: Batch, b: Batch, verify: &VerifySpec, expected: &str) -> Comparison {
        let rows = b.iter().map(|t| t.tensor.rows()).max().unwrap_or(0);
        let c = compare(&a, &b, &inputs(rows), &[], verify, 3);
        assert_eq!(summary(&c), expected);
        c
    }

    /// Compares one float output `y` of A with B under the default tolerances.
    #[track_caller]
    fn check(a: &[f64], b: &[f64], expected: &str) {
        let a = batch(vec![("y", f64s(a))]);
        let b = batch(vec![("y", f64s(b))]);
        check_with(a, b, &VerifySpec::default(), expected);
    }

    #[test]
    fn float_outputs() {
        check(
            &[1.0, 2.0, 3.0],
            &[1.0, 2.0, 3.0],
            "passed\ny: Passed abs=0.0e0 rel=0.0e0 within=100.0% nan=0 inf=0\n",
        );
        // Within the default tolerance: 5e-5 <= 1e-5 + 1e-4 * 1.
        check(
            &[1.00005, 2.0],
            &[1.0, 2.0],
            "passed\ny: Passed abs=5.0e-5 rel=5.0e-5 within=100.0% nan=0 inf=0\n",
        );
        check(
            &[1.001, 2.0],
            &[1.0, 2.0],
            "failed\ny: Failed (1 of 2 elements out of tolerance) abs=1.0e-3 rel=1.0e-3 within=50.0% nan=0 inf=0\n",
        );
        // B is the reference: the relative part of the tolerance scales with |b| only.
        check(
            &[100.0],
            &[100.015],
            "failed\ny: Failed (1 of 1 elements out of tolerance) abs=1.5e-2 rel=1.5e-4 within=0.0% nan=0 inf=0\n",
        );
        check(
            &[100.015],
            &[100.0],
            "failed\ny: Failed (1 of 1 elements out of tolerance) abs=1.5e-2 rel=1.5e-4 within=0.0% nan=0 inf=0\n",
        );
        // A zero reference makes any difference infinitely large relatively; only atol applies.
        check(
            &[1e-6, 0.0],
            &[0.0, 0.0],
            "passed\ny: Passed abs=1.0e-6 rel=inf within=100.0% nan=0 inf=0\n",
        );
    }

    #[test]
    fn nan_and_infinity() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        check(
            &[nan, 1.0],
            &[nan, 1.0],
            "passed\ny: Passed abs=0.0e0 rel=0.0e0 within=100.0% nan=0 inf=0\n",
        );
        check(
            &[nan, 1.0],
            &[0.5, 1.0],
            "failed\ny: Failed (1 of 2 elements out of tolerance, 1 NaN mismatches) abs=0.0e0 rel=0.0e0 within=50.0% nan=1 inf=0\n",
        );
        check(
            &[0.5],
            &[nan],
            "failed\ny: Failed (1 of 1 elements out of tolerance, 1 NaN mismatches) abs=0.0e0 rel=0.0e0 within=0.0% nan=1 inf=0\n",
        );
        check(
            &[inf, -inf],
            &[inf, -inf],
            "passed\ny: Passed abs=0.0e0 rel=0.0e0 within=100.0% nan=0 inf=0\n",
        );
        check(
            &[inf, 1.0, -inf],
            &[-inf, inf, 3.0],
            "failed\ny: Failed (3 of 3 elements out of tolerance, 3 inf mismatches) abs=0.0e0 rel=0.0e0 within=0.0% nan=0 inf=3\n",
        );
        // A difference too large for f64 is out of tolerance, not a crash or a NaN.
        check(
            &[f64::MAX],
            &[-f64::MAX],
            "failed\ny: Failed (1 of 1 elements out of tolerance) abs=inf rel=inf within=0.0% nan=0 inf=0\n",
        );
    }

    #[test]
    fn per_output_tolerance_and_skip() {
        let mut verify = VerifySpec::default();
        verify.outputs.insert(
            "loose".into(),
            OutputTolerance {
                atol: Some(1e-2),
                ..OutputTolerance::default()
            },
        );
        verify.outputs.insert(
            "ignored".into(),
            OutputTolerance {
                skip: true,
                ..OutputTolerance::default()
            },
        );
        let a = batch(vec![
            ("loose", f64s(&[1.001])),
            ("strict", f64s(&[1.001])),
            ("ignored", f64s(&[5.0])),
        ]);
        let b = batch(vec![
            ("loose", f64s(&[1.0])),
            ("strict", f64s(&[1.0])),
            ("ignored", f64s(&[1.0])),
        ]);
        let c = check_with(
            a,
            b,
            &verify,
            "failed\n\
             loose: Passed abs=1.0e-3 rel=1.0e-3 within=100.0% nan=0 inf=0\n\
             strict: Failed (1 of 1 elements out of tolerance) abs=1.0e-3 rel=1.0e-3 within=0.0% nan=0 inf=0\n\
             ignored: Skipped\n",
        );
        assert_eq!((c.outputs[0].atol, c.outputs[0].rtol), (1e-2, 1e-4));
        assert_eq!((c.outputs[1].atol, c.outputs[1].rtol), (1e-5, 1e-4));
    }

    #[test]
    fn every_output_skipped_is_not_a_pass() {
        let mut verify = VerifySpec::default();
        verify.outputs.insert(
            "y".into(),
            OutputTolerance {
                skip: true,
                ..OutputTolerance::default()
            },
        );
        check_with(
            batch(vec![("y", f64s(&[1.0]))]),
            batch(vec![("y", f64s(&[1.0]))]),
            &verify,
            "failed\ny: Skipped\nnote: every output is skipped, so nothing was compared\n",
        );
    }

    /// Compares one label output with `min_label_agreement` set.
    #[track_caller]
    fn check_labels(a: Tensor, b: Tensor, min: f64, expected: &str) {
        let verify = VerifySpec {
            min_label_agreement: min,
            ..VerifySpec::default()
        };
        check_with(
            batch(vec![("label", a)]),
            batch(vec![("label", b)]),
            &verify,
            expected,
        );
    }

    #[test]
    fn label_outputs() {
        let a = || tensor(&[4], vec![0i64, 1, 2, 1]);
        let b = || tensor(&[4], vec![0i64, 1, 2, 2]);
        check_labels(
            a(),
            a(),
            1.0,
            "passed\nlabel: Passed agreement=100.0% mismatched=0\n",
        );
        check_labels(
            a(),
            b(),
            1.0,
            "failed\nlabel: Failed (1 of 4 rows differ (75.0% agree, 100.0% required)) agreement=75.0% mismatched=1\n",
        );
        check_labels(
            a(),
            b(),
            0.7,
            "passed\nlabel: Passed agreement=75.0% mismatched=1\n",
        );

        let strings = |v: &[&str]| {
            tensor(
                &[v.len()],
                v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        check_labels(
            strings(&["setosa", "virginica"]),
            strings(&["setosa", "virginica"]),
            1.0,
            "passed\nlabel: Passed agreement=100.0% mismatched=0\n",
        );
        check_labels(
            strings(&["setosa", "virginica"]),
            strings(&["setosa", "Virginica"]),
            1.0,
            "failed\nlabel: Failed (1 of 2 rows differ (50.0% agree, 100.0% required)) agreement=50.0% mismatched=1\n",
        );
        check_labels(
            tensor(&[2], vec![true, false]),
            tensor(&[2], vec![true, true]),
            0.5,
            "passed\nlabel: Passed agreement=50.0% mismatched=1\n",
        );
        // A row is one label: one differing element makes the whole row differ.
        check_labels(
            tensor(&[2, 2], vec![1i32, 2, 3, 4]),
            tensor(&[2, 2], vec![1i32, 2, 3, 5]),
            1.0,
            "failed\nlabel: Failed (1 of 2 rows differ (50.0% agree, 100.0% required)) agreement=50.0% mismatched=1\n",
        );
        // Integers compare exactly, beyond what f64 can tell apart.
        check_labels(
            tensor(&[1], vec![i64::MAX]),
            tensor(&[1], vec![i64::MAX - 1]),
            1.0,
            "failed\nlabel: Failed (1 of 1 rows differ (0.0% agree, 100.0% required)) agreement=0.0% mismatched=1\n",
        );
    }

    #[test]
    fn structural_mismatches() {
        let verify = VerifySpec::default();
        check_with(
            batch(vec![("p", tensor(&[2, 3], vec![0f32; 6]))]),
            batch(vec![("p", tensor(&[2, 4], vec![0f32; 8]))]),
            &verify,
            "failed\np: Failed (shape [2, 3] in A vs [2, 4] in B)\n",
        );
        check_with(
            batch(vec![("p", tensor(&[2], vec![0f32; 2]))]),
            batch(vec![("p", tensor(&[2], vec![0f64; 2]))]),
            &verify,
            "failed\np: Failed (dtype f32 in A vs f64 in B)\n",
        );
        check_with(
            batch(vec![("p", f64s(&[1.0])), ("extra", f64s(&[1.0]))]),
            batch(vec![
                ("p", f64s(&[1.0])),
                ("label", tensor(&[1], vec![1i64])),
            ]),
            &verify,
            "failed\np: Passed abs=0.0e0 rel=0.0e0 within=100.0% nan=0 inf=0\nlabel: Failed (missing in A)\n\
             extra: Failed (missing in B)\n",
        );
        // An output only one side returns fails, whichever side: the two are not
        // the same model.
        check_with(
            batch(vec![("p", f64s(&[1.0])), ("extra", f64s(&[1.0]))]),
            batch(vec![("p", f64s(&[1.0]))]),
            &verify,
            "failed\np: Passed abs=0.0e0 rel=0.0e0 within=100.0% nan=0 inf=0\nextra: Failed (missing in B)\n",
        );
        // ... unless the spec skips it.
        let mut skipping = VerifySpec::default();
        skipping.outputs.insert(
            "extra".into(),
            modelport_core::spec::OutputTolerance {
                skip: true,
                ..Default::default()
            },
        );
        check_with(
            batch(vec![("p", f64s(&[1.0])), ("extra", f64s(&[1.0]))]),
            batch(vec![("p", f64s(&[1.0]))]),
            &skipping,
            "passed\np: Passed abs=0.0e0 rel=0.0e0 within=100.0% nan=0 inf=0\nextra: Skipped\n",
        );
        check_with(
            batch(vec![("other", f64s(&[1.0]))]),
            batch(vec![("p", f64s(&[1.0]))]),
            &verify,
            "failed\np: Failed (missing in A)\nother: Failed (missing in B)\n\
             note: A and B have no output in common\n",
        );
    }

    #[test]
    fn every_output_has_one_row_per_input() {
        // Both sides answer nothing for three inputs: they agree, and it fails.
        let empty = || batch(vec![("p", tensor(&[0], Vec::<f64>::new()))]);
        let c = compare(
            &empty(),
            &empty(),
            &inputs(3),
            &[],
            &VerifySpec::default(),
            3,
        );
        assert_eq!(summary(&c), "failed\np: Failed (0 rows for 3 inputs)\n");
        // Both sides answer two rows for three inputs.
        let two = || batch(vec![("p", f64s(&[1.0, 2.0]))]);
        let c = compare(&two(), &two(), &inputs(3), &[], &VerifySpec::default(), 3);
        assert_eq!(summary(&c), "failed\np: Failed (2 rows for 3 inputs)\n");
    }

    #[test]
    fn nothing_to_compare_is_not_a_pass() {
        let verify = VerifySpec::default();
        check_with(
            Batch::new(),
            Batch::new(),
            &verify,
            "failed\nnote: B returned no outputs, so nothing was compared\n\
             note: there are no samples, so nothing was compared\n",
        );
        check_with(
            batch(vec![
                ("p", tensor(&[0, 3], Vec::<f32>::new())),
                ("l", tensor(&[0], Vec::<i64>::new())),
            ]),
            batch(vec![
                ("p", tensor(&[0, 3], Vec::<f32>::new())),
                ("l", tensor(&[0], Vec::<i64>::new())),
            ]),
            &verify,
            "failed\n\
             p: Passed abs=0.0e0 rel=0.0e0 within=100.0% nan=0 inf=0\n\
             l: Passed agreement=100.0% mismatched=0\n\
             note: there are no samples, so nothing was compared\n",
        );
    }

    #[test]
    fn odd_shapes_never_panic() {
        let verify = VerifySpec::default();
        // Scalars, empty rows, and inputs with fewer rows than the outputs.
        let a = batch(vec![
            ("scalar", tensor(&[], vec![1.0f32])),
            ("empty_rows", tensor(&[3, 0], Vec::<f64>::new())),
            ("y", f64s(&[1.0, 2.0, 3.5])),
            ("label", tensor(&[3], vec![1u8, 2, 3])),
        ]);
        let b = batch(vec![
            ("scalar", tensor(&[], vec![2.0f32])),
            ("empty_rows", tensor(&[3, 0], Vec::<f64>::new())),
            ("y", f64s(&[1.0, 2.0, 3.0])),
            ("label", tensor(&[3], vec![1u8, 2, 4])),
        ]);
        // Fewer inputs than output rows: every output fails as such, none panics.
        let few_inputs = inputs(1);
        let c = compare(&a, &b, &few_inputs, &[], &verify, 10);
        assert!(!c.passed);
        assert_eq!(c.samples, 1);
        assert_eq!(
            summary(&c),
            "failed\nscalar: Failed (1 of 1 elements out of tolerance) abs=1.0e0 rel=5.0e-1 within=0.0% nan=0 inf=0\n\
             empty_rows: Failed (3 rows for 1 inputs)\ny: Failed (3 rows for 1 inputs)\n\
             label: Failed (3 rows for 1 inputs)\n"
        );
        for k in [0, 1, 10] {
            let c = compare(&a, &b, &inputs(3), &[], &verify, k);
            assert!(!c.passed);
            assert_eq!(c.samples, 3);
            // Only row 2 differs (in y and in label); the scalar is no row.
            assert_eq!(c.worst.len(), k.min(1));
        }
        let c = compare(&a, &b, &inputs(3), &[], &verify, 10);
        assert_eq!(c.worst.iter().map(|w| w.index).collect::<Vec<_>>(), [2]);
        // Inputs that disagree on their row count fall back to B's rows.
        let ragged = batch(vec![
            ("u", tensor(&[1], vec![1f32])),
            ("v", tensor(&[2], vec![1f32, 2.0])),
        ]);
        assert_eq!(compare(&a, &b, &ragged, &[], &verify, 3).samples, 3);
    }

    #[test]
    fn worst_examples_rank_rows_by_score() {
        let verify = VerifySpec {
            atol: 0.0,
            rtol: 0.1,
            ..VerifySpec::default()
        };
        // Row scores with tolerance 0.1 * |b| = 0.1: 0, 5, 0.5, inf (NaN), 5, 0 (in tolerance? 0.05/0.1).
        let a = batch(vec![("y", f64s(&[1.0, 1.5, 1.05, f64::NAN, 0.5, 1.0]))]);
        let b = batch(vec![("y", f64s(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]))]);
        let c = compare(&a, &b, &inputs(6), &[], &verify, 10);
        let ranked: Vec<(usize, String)> = c
            .worst
            .iter()
            .map(|w| (w.index, format!("{:.2}", w.score)))
            .collect();
        assert_eq!(
            ranked,
            [(3, "inf"), (1, "5.00"), (4, "5.00"), (2, "0.50")].map(|(i, s)| (i, s.to_string()))
        );
        let c = compare(&a, &b, &inputs(6), &[], &verify, 2);
        assert_eq!(c.worst.iter().map(|w| w.index).collect::<Vec<_>>(), [3, 1]);
        assert_eq!(
            c.worst[0].inputs,
            vec![("x".to_string(), vec!["3".to_string()])]
        );
        assert_eq!(c.worst[0].outputs[0].1.a, ["NaN"]);
        assert_eq!(c.worst[0].outputs[0].1.b, ["1"]);
        // With both tolerances zero any difference is infinitely bad.
        let exact = VerifySpec {
            atol: 0.0,
            rtol: 0.0,
            ..VerifySpec::default()
        };
        let c = compare(&a, &b, &inputs(6), &[], &exact, 10);
        assert_eq!(
            c.worst.iter().map(|w| w.index).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(c.worst.iter().all(|w| w.score == f64::INFINITY));
    }

    #[test]
    fn worst_examples_truncate_long_rows_and_name_classes() {
        let columns = ROW_PREVIEW + 4;
        let wide = |bump: f32| {
            let mut v = vec![0.5f32; columns];
            v[1] += bump;
            tensor(&[1, columns], v)
        };
        let probabilities = |v: Vec<f32>| tensor(&[1, 2], v);
        let a = batch(vec![
            ("wide", wide(1.0)),
            ("p", probabilities(vec![0.6, 0.4])),
        ]);
        let b = batch(vec![
            ("wide", wide(0.0)),
            ("p", probabilities(vec![0.4, 0.6])),
        ]);
        let mut spec = TensorSpec::new("p", DType::F32, vec![Dim::Dynamic(None), Dim::Fixed(2)]);
        spec.class_labels = Some(ClassLabels::String(vec!["cat".into(), "dog".into()]));
        let c = compare(&a, &b, &inputs(1), &[spec], &VerifySpec::default(), 5);
        let example = &c.worst[0];
        let (name, wide_row) = &example.outputs[0];
        assert_eq!(name, "wide");
        assert_eq!(wide_row.a.len(), ROW_PREVIEW + 1);
        assert_eq!(wide_row.a[1], "1.5");
        assert_eq!(wide_row.a.last().unwrap(), ELLIPSIS);
        assert_eq!(wide_row.a_class, None);
        let (_, p_row) = &example.outputs[1];
        assert_eq!(
            (p_row.a_class.as_deref(), p_row.b_class.as_deref()),
            (Some("cat"), Some("dog"))
        );
    }

    #[test]
    fn previews_render_f32_at_f32_precision() {
        let t = tensor(
            &[1, 5],
            vec![0.7f32, 1e-7, f32::NAN, f32::NEG_INFINITY, 0.0],
        );
        assert_eq!(preview_row(&t, 0), ["0.7", "1e-7", "NaN", "-inf", "0"]);
        let t = tensor(&[1, 2], vec![0.7f64, 1e-7]);
        assert_eq!(preview_row(&t, 0), ["0.7", "1e-7"]);
        assert!(preview_row(&t, 1).is_empty());
    }

    #[test]
    fn argmax_agreement_is_informational() {
        // Row 1 is a near-tie within tolerance whose argmax flips: the output still passes.
        let a = batch(vec![(
            "p",
            tensor(&[2, 2], vec![0.9f64, 0.1, 0.500001, 0.499999]),
        )]);
        let b = batch(vec![(
            "p",
            tensor(&[2, 2], vec![0.9f64, 0.1, 0.499999, 0.500001]),
        )]);
        check_with(
            a,
            b,
            &VerifySpec::default(),
            "passed\np: Passed abs=2.0e-6 rel=4.0e-6 within=100.0% nan=0 inf=0 argmax=50.0%\n",
        );
    }

    #[test]
    fn json_shape() {
        let a = batch(vec![
            ("y", f64s(&[1.0, 0.5])),
            ("label", tensor(&[2], vec![1i64, 3])),
        ]);
        let b = batch(vec![
            ("y", f64s(&[1.0, 0.0])),
            ("label", tensor(&[2], vec![1i64, 2])),
        ]);
        let c = compare(&a, &b, &inputs(2), &[], &VerifySpec::default(), 1);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "passed": false,
                "samples": 2,
                "atol": 1e-5,
                "rtol": 1e-4,
                "min_label_agreement": 1.0,
                "outputs": [
                    {
                        "name": "y", "dtype": "f64", "shape": [2], "status": "failed",
                        "reason": "1 of 2 elements out of tolerance",
                        "atol": 1e-5, "rtol": 1e-4,
                        "stats": {
                            "elements": 2, "max_abs_err": 0.5, "mean_abs_err": 0.25,
                            "max_rel_err": "inf", "out_of_tolerance": 1, "within_fraction": 0.5,
                            "nan_mismatches": 0, "inf_mismatches": 0
                        }
                    },
                    {
                        "name": "label", "dtype": "i64", "shape": [2], "status": "failed",
                        "reason": "1 of 2 rows differ (50.0% agree, 100.0% required)",
                        "atol": 1e-5, "rtol": 1e-4,
                        "labels": {"rows": 2, "mismatched_rows": 1, "agreement": 0.5, "min_agreement": 1.0}
                    }
                ],
                "worst": [
                    {
                        "index": 1, "score": "inf",
                        "inputs": {"x": ["1"]},
                        "outputs": {"y": {"a": ["0.5"], "b": ["0"]}, "label": {"a": ["3"], "b": ["2"]}}
                    }
                ],
                "notes": []
            })
        );
    }

    #[test]
    fn percentages_say_all_only_when_all() {
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(0.9999), "99.9%");
        assert_eq!(percent(0.29), "29.0%");
        assert_eq!(percent(0.0), "0.0%");
    }
}
