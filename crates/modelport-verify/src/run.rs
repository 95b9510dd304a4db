//! Running a comparison: both predictors on the same inputs, at the same time.

use std::ops::Range;
use std::time::Instant;

use modelport_core::provider::{Reporter, Silent, Unit};
use modelport_core::spec::VerifySpec;
use modelport_core::{Batch, PredictError, Prediction, Predictor};

use crate::metrics;
use crate::report::CompareReport;

/// How many of the worst examples a report shows by default.
pub const DEFAULT_WORST: usize = 5;

/// A side of the comparison failed to produce outputs, or stopped part-way.
#[derive(Debug, thiserror::Error)]
#[error("{side} ({label}) could not answer: {source}")]
pub struct CompareError {
    /// `A` or `B`.
    pub side: char,
    pub label: String,
    #[source]
    pub source: PredictError,
    /// When the side stopped part-way ([`PredictError::Incomplete`]): the
    /// comparison of the samples both sides answered, which says how many could
    /// not be checked. It never passes.
    pub report: Option<Box<CompareReport>>,
}

impl CompareError {
    pub fn hint(&self) -> Option<String> {
        self.source.hint()
    }
}

/// Sends `inputs` to `a` and to `b` concurrently and compares the answers; `b` is
/// the reference (`|a - b| <= atol + rtol * |b|`).
///
/// A mismatch is a report with `passed() == false`, not an error: errors are for a
/// side that could not answer.
pub async fn compare(
    a: &dyn Predictor,
    b: &dyn Predictor,
    inputs: &Batch,
    verify: &VerifySpec,
    worst_k: usize,
) -> Result<CompareReport, CompareError> {
    compare_reporting(a, b, inputs, verify, worst_k, &Silent).await
}

/// [`compare`], telling `reporter` how many samples each side has answered as the
/// answers arrive (`samples answered by A (endpoint iris)`).
pub async fn compare_reporting(
    a: &dyn Predictor,
    b: &dyn Predictor,
    inputs: &Batch,
    verify: &VerifySpec,
    worst_k: usize,
    reporter: &dyn Reporter,
) -> Result<CompareReport, CompareError> {
    let started = Instant::now();
    let total = inputs.batch_size().unwrap_or(0) as u64;
    let side = |name: char, p: &dyn Predictor| {
        let what = format!("samples answered by {name} ({})", p.target().label);
        reporter.on_amount(&what, 0, total, Unit::Samples);
        move |n: u64| reporter.on_amount(&what, n.min(total), total, Unit::Samples)
    };
    let (answered_a, answered_b) = (side('A', a), side('B', b));
    let (pa, pb) = tokio::join!(
        a.predict_counted(inputs, &answered_a),
        b.predict_counted(inputs, &answered_b)
    );
    let total = inputs.batch_size().unwrap_or(0);
    let failed = |side: char, p: &dyn Predictor, source: PredictError| CompareError {
        side,
        label: p.target().label.clone(),
        source,
        report: None,
    };
    // Each side's answer as the rows it covers; a side that stopped part-way
    // keeps what it answered, and its error.
    let (rows_a, pa, stop_a) = covered(pa, total).map_err(|e| failed('A', a, e))?;
    let (rows_b, pb, stop_b) = covered(pb, total).map_err(|e| failed('B', b, e))?;
    let rows = intersect(&rows_a, &rows_b);
    let outputs = b
        .signature()
        .or(a.signature())
        .map(|s| s.outputs.clone())
        .unwrap_or_default();
    let pick = |batch: &Batch, have: &[Range<usize>]| {
        pick_rows(batch, have, &rows).map_err(|e| {
            failed(
                'A',
                a,
                PredictError::Decode {
                    target: a.target().label.clone(),
                    message: e.to_string(),
                },
            )
        })
    };
    let (out_a, out_b, picked_inputs) = (
        pick(&pa.outputs, &rows_a)?,
        pick(&pb.outputs, &rows_b)?,
        pick(inputs, std::slice::from_ref(&(0..total)))?,
    );
    let mut comparison =
        metrics::compare(&out_a, &out_b, &picked_inputs, &outputs, verify, worst_k);
    let plots = crate::plots::plots(&out_a, &out_b, verify);
    let mut ta = a.target().clone();
    let mut tb = b.target().clone();
    if !pa.served_by.is_empty() {
        ta.served_by = pa.served_by;
    }
    if !pb.served_by.is_empty() {
        tb.served_by = pb.served_by;
    }
    let stopped = match (stop_a, stop_b) {
        (Some(e), _) => Some(('A', ta.label.clone(), e)),
        (None, Some(e)) => Some(('B', tb.label.clone(), e)),
        (None, None) => None,
    };
    if let Some((_, label, e)) = &stopped {
        let checked: usize = rows.iter().map(|r| r.len()).sum();
        comparison.passed = false;
        comparison.notes.push(format!(
            "{} of {} samples could not be compared: {e}",
            total - checked,
            total
        ));
        comparison.unchecked = Some(metrics::Unchecked {
            samples: total - checked,
            total,
            target: label.clone(),
            reason: e.to_string(),
        });
    }
    let report = CompareReport {
        a: ta,
        b: tb,
        elapsed_ms: started.elapsed().as_millis() as u64,
        comparison,
        plots,
    };
    match stopped {
        None => Ok(report),
        Some((side, label, source)) => Err(CompareError {
            side,
            label,
            source,
            report: Some(Box::new(report)),
        }),
    }
}

/// What one side answered: the input rows it covers, its prediction of them,
/// and why it stopped part-way (when it did).
type Covered = (Vec<Range<usize>>, Prediction, Option<PredictError>);

/// A side's answer as the rows it covers; an error when it answered nothing usable.
fn covered(
    answer: Result<Prediction, PredictError>,
    total: usize,
) -> Result<Covered, PredictError> {
    match answer {
        Ok(p) => Ok((std::iter::once(0..total).collect(), p, None)),
        // The answered outputs move to the comparison; the error keeps the rest.
        Err(mut stop) => {
            let PredictError::Incomplete { partial, .. } = &mut stop else {
                return Err(stop);
            };
            let prediction = Prediction {
                outputs: std::mem::take(&mut partial.prediction.outputs),
                served_by: partial.prediction.served_by.clone(),
            };
            Ok((partial.rows.clone(), prediction, Some(stop)))
        }
    }
}

/// The rows both range lists cover (both sorted and disjoint).
fn intersect(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(start..end);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The rows `want` of a batch that holds the rows `have`, in order (every range
/// of `want` lies inside one of `have`).
fn pick_rows(
    batch: &Batch,
    have: &[Range<usize>],
    want: &[Range<usize>],
) -> modelport_core::Result<Batch> {
    if have == want {
        return Ok(batch.clone());
    }
    let mut parts = Vec::with_capacity(want.len());
    for w in want {
        let mut offset = 0;
        for h in have {
            if h.start <= w.start && w.end <= h.end {
                let start = offset + (w.start - h.start);
                parts.push(batch.slice_rows(start, start + w.len())?);
                break;
            }
            offset += h.len();
        }
    }
    if parts.is_empty() {
        return batch.slice_rows(0, 0);
    }
    Batch::concat_rows(&parts)
}

#[cfg(test)]
// Lists of row ranges with one range in them are what these tests mean.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use modelport_core::{Tensor, TensorData};

    use super::*;

    fn rows(values: &[f32]) -> Batch {
        let t = Tensor::new(vec![values.len()], TensorData::F32(values.to_vec())).unwrap();
        Batch::new().with("x", t).unwrap()
    }

    #[test]
    fn the_rows_both_sides_answered_are_picked_in_order() {
        assert_eq!(intersect(&[0..10], &[0..10]), vec![0..10]);
        assert_eq!(intersect(&[0..4, 6..10], &[2..8]), vec![2..4, 6..8]);
        assert_eq!(intersect(&[0..3], &[3..6]), Vec::<Range<usize>>::new());
        // A side that answered rows 0..2 and 5..8 holds five rows, in that order.
        let side = rows(&[0.0, 1.0, 5.0, 6.0, 7.0]);
        let picked = pick_rows(&side, &[0..2, 5..8], &[1..2, 6..8]).unwrap();
        assert_eq!(picked, rows(&[1.0, 6.0, 7.0]));
        let none = pick_rows(&side, &[0..2, 5..8], &[]).unwrap();
        assert_eq!(none.batch_size().unwrap_or(0), 0);
    }
}
