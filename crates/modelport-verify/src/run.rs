//! Running a comparison: both predictors on the same inputs, at the same time.

use std::time::Instant;

use modelport_core::provider::{Reporter, Silent, Unit};
use modelport_core::spec::VerifySpec;
use modelport_core::{Batch, PredictError, Predictor};

use crate::metrics;
use crate::report::CompareReport;

/// How many of the worst examples a report shows by default.
pub const DEFAULT_WORST: usize = 5;

/// A side of the comparison failed to produce outputs at all.
#[derive(Debug, thiserror::Error)]
#[error("{side} ({label}) could not answer: {source}")]
pub struct CompareError {
    /// `A` or `B`.
    pub side: char,
    pub label: String,
    #[source]
    pub source: PredictError,
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
    let pa = pa.map_err(|source| CompareError {
        side: 'A',
        label: a.target().label.clone(),
        source,
    })?;
    let pb = pb.map_err(|source| CompareError {
        side: 'B',
        label: b.target().label.clone(),
        source,
    })?;
    let outputs = b
        .signature()
        .or(a.signature())
        .map(|s| s.outputs.clone())
        .unwrap_or_default();
    let comparison = metrics::compare(&pa.outputs, &pb.outputs, inputs, &outputs, verify, worst_k);
    let plots = crate::plots::plots(&pa.outputs, &pb.outputs, verify);
    let mut ta = a.target().clone();
    let mut tb = b.target().clone();
    if !pa.served_by.is_empty() {
        ta.served_by = pa.served_by;
    }
    if !pb.served_by.is_empty() {
        tb.served_by = pb.served_by;
    }
    Ok(CompareReport {
        a: ta,
        b: tb,
        elapsed_ms: started.elapsed().as_millis() as u64,
        comparison,
        plots,
    })
}
