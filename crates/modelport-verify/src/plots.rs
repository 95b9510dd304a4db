//! What the HTML report draws, taken from both sides' outputs at a bounded size: a
//! comparison of any number of samples gives at most [`MAX_POINTS`] points (plus the
//! out-of-tolerance ones, up to [`MAX_OUTLIERS`]) and fixed histograms per output,
//! so that a report of 100 000 samples stays small.
//!
//! Like [`crate::metrics`], nothing here decides anything: the verdict is the
//! comparison's, the plots only show it.

use std::collections::BTreeMap;

use modelport_core::Batch;
use modelport_core::spec::VerifySpec;
use modelport_core::tensor::Tensor;

/// Evenly spaced points drawn per output.
pub const MAX_POINTS: usize = 2000;
/// Out-of-tolerance points drawn per output on top of the evenly spaced ones.
pub const MAX_OUTLIERS: usize = 500;
/// Distinct label pairs kept per output; the rest are counted together.
pub const MAX_LABEL_PAIRS: usize = 400;
/// Decades of the error histograms: 1e-12 .. 1e6, with one bin below and one above.
pub const LOWEST_DECADE: i32 = -12;
pub const HIGHEST_DECADE: i32 = 6;

/// The drawing of one output both sides returned in the same dtype and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPlot {
    pub name: String,
    pub kind: PlotKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlotKind {
    Float(FloatPlot),
    Labels(LabelPlot),
}

/// A float output: A against B per element, and how the errors are distributed.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatPlot {
    pub atol: f64,
    pub rtol: f64,
    /// Every element compared.
    pub elements: usize,
    /// The elements drawn: every `stride`-th finite pair, then out-of-tolerance ones.
    pub points: Vec<Point>,
    /// Out-of-tolerance elements that were not drawn (beyond [`MAX_OUTLIERS`]).
    pub outliers_not_drawn: usize,
    /// |a - b| per element.
    pub abs_errors: Histogram,
    /// |a - b| / |b| per element (b = 0 with a ≠ b counts as non-finite).
    pub rel_errors: Histogram,
}

/// One element: B (the reference) and A (the candidate) side by side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub b: f64,
    pub a: f64,
    /// `|a - b| <= atol + rtol * |b|`.
    pub within: bool,
    /// The element's row (the sample).
    pub row: usize,
}

/// Counts by decade of a non-negative error.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// Exactly 0.
    pub zero: usize,
    /// Below 10^LOWEST_DECADE.
    pub below: usize,
    /// `decades[k]` counts errors in [10^(LOWEST_DECADE + k), 10^(LOWEST_DECADE + k + 1)).
    pub decades: Vec<usize>,
    /// 10^(HIGHEST_DECADE + 1) or more.
    pub above: usize,
    /// NaN or infinite (a NaN or infinity on one side only).
    pub non_finite: usize,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            decades: vec![0; (HIGHEST_DECADE - LOWEST_DECADE + 1) as usize],
            ..Histogram::default()
        }
    }

    fn add(&mut self, err: f64) {
        if !err.is_finite() {
            self.non_finite += 1;
        } else if err == 0.0 {
            self.zero += 1;
        } else {
            let decade = err.log10().floor() as i32;
            if decade < LOWEST_DECADE {
                self.below += 1;
            } else if decade > HIGHEST_DECADE {
                self.above += 1;
            } else {
                self.decades[(decade - LOWEST_DECADE) as usize] += 1;
            }
        }
    }

    pub fn total(&self) -> usize {
        self.zero + self.below + self.decades.iter().sum::<usize>() + self.above + self.non_finite
    }
}

/// A label (integer or string) output: how often A said x where B said y.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelPlot {
    pub elements: usize,
    /// `(a, b, count)`, most frequent first; at most [`MAX_LABEL_PAIRS`].
    pub pairs: Vec<(String, String, usize)>,
    /// Elements whose pair is not among `pairs`.
    pub other: usize,
}

/// The plots of every output compared: those both sides returned in one dtype and
/// shape, not skipped by `verify.outputs`.
pub fn plots(a: &Batch, b: &Batch, verify: &VerifySpec) -> Vec<OutputPlot> {
    let mut out = Vec::new();
    for named in b.iter() {
        let tb = &named.tensor;
        let (atol, rtol, skip) = verify.tolerance_for(&named.name);
        let Some(ta) = a.get(&named.name) else {
            continue;
        };
        if skip || ta.dtype() != tb.dtype() || ta.shape() != tb.shape() {
            continue;
        }
        let kind = if tb.dtype().is_float() {
            PlotKind::Float(float_plot(ta, tb, atol, rtol))
        } else {
            PlotKind::Labels(label_plot(ta, tb))
        };
        out.push(OutputPlot {
            name: named.name.clone(),
            kind,
        });
    }
    out
}

fn float_plot(a: &Tensor, b: &Tensor, atol: f64, rtol: f64) -> FloatPlot {
    let (da, db) = (a.data(), b.data());
    let elements = da.len().min(db.len());
    let row_len = b.row_len().max(1);
    let stride = elements.div_ceil(MAX_POINTS).max(1);
    let mut plot = FloatPlot {
        atol,
        rtol,
        elements,
        points: Vec::with_capacity(elements.min(MAX_POINTS + MAX_OUTLIERS)),
        outliers_not_drawn: 0,
        abs_errors: Histogram::new(),
        rel_errors: Histogram::new(),
    };
    let mut outliers = 0usize;
    for i in 0..elements {
        let x = da.get_f64(i).unwrap_or(f64::NAN);
        let y = db.get_f64(i).unwrap_or(f64::NAN);
        let same_special = (x.is_nan() && y.is_nan()) || (x.is_infinite() && x == y);
        let abs = if same_special { 0.0 } else { (x - y).abs() };
        let rel = if abs == 0.0 {
            0.0
        } else if y == 0.0 {
            f64::INFINITY
        } else {
            abs / y.abs()
        };
        plot.abs_errors
            .add(if abs.is_nan() { f64::INFINITY } else { abs });
        plot.rel_errors
            .add(if rel.is_nan() { f64::INFINITY } else { rel });
        let within = same_special || abs <= atol + rtol * y.abs();
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let point = Point {
            b: y,
            a: x,
            within,
            row: i / row_len,
        };
        if i % stride == 0 {
            plot.points.push(point);
        } else if !within {
            if outliers < MAX_OUTLIERS {
                plot.points.push(point);
                outliers += 1;
            } else {
                plot.outliers_not_drawn += 1;
            }
        }
    }
    plot
}

fn label_plot(a: &Tensor, b: &Tensor) -> LabelPlot {
    let (da, db) = (a.data(), b.data());
    let elements = da.len().min(db.len());
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in 0..elements {
        *counts
            .entry((da.display_at(i), db.display_at(i)))
            .or_default() += 1;
    }
    let mut pairs: Vec<(String, String, usize)> =
        counts.into_iter().map(|((x, y), n)| (x, y, n)).collect();
    // Most frequent first; ties in label order, so the same run draws the same table.
    pairs.sort_by(|p, q| q.2.cmp(&p.2).then_with(|| (&p.0, &p.1).cmp(&(&q.0, &q.1))));
    let other = pairs.iter().skip(MAX_LABEL_PAIRS).map(|p| p.2).sum();
    pairs.truncate(MAX_LABEL_PAIRS);
    LabelPlot {
        elements,
        pairs,
        other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelport_core::tensor::TensorData;

    fn batch(name: &str, t: Tensor) -> Batch {
        let mut b = Batch::new();
        b.insert(name, t).unwrap();
        b
    }

    #[test]
    fn a_large_comparison_is_drawn_at_a_bounded_size() {
        let n = 100_000;
        let b: Vec<f32> = (0..n * 3).map(|i| (i % 97) as f32 / 97.0).collect();
        let mut a = b.clone();
        // Every 50th element is off by 0.1: 6000 outliers, 500 of them drawn.
        for x in a.iter_mut().step_by(50) {
            *x += 0.1;
        }
        let t = |v: Vec<f32>| Tensor::new(vec![n, 3], TensorData::F32(v)).unwrap();
        let verify = VerifySpec::default();
        let plots = plots(&batch("p", t(a)), &batch("p", t(b)), &verify);
        let PlotKind::Float(p) = &plots[0].kind else {
            panic!("{plots:?}")
        };
        assert_eq!(p.elements, 300_000);
        assert!(
            p.points.len() <= MAX_POINTS + MAX_OUTLIERS,
            "{}",
            p.points.len()
        );
        assert_eq!(
            p.points.iter().filter(|p| !p.within).count() + p.outliers_not_drawn,
            6000
        );
        assert_eq!(p.abs_errors.total(), 300_000);
        assert_eq!(p.abs_errors.zero, 300_000 - 6000);
        // 0.1 (as float32 arithmetic leaves it) is in the decade [0.01, 0.1) or [0.1, 1).
        let tenth = p.abs_errors.decades[(-1 - LOWEST_DECADE) as usize]
            + p.abs_errors.decades[(-2 - LOWEST_DECADE) as usize];
        assert_eq!(tenth, 6000);
    }

    #[test]
    fn labels_are_counted_by_pair_most_frequent_first() {
        let t = |v: Vec<i64>| Tensor::new(vec![v.len()], TensorData::I64(v)).unwrap();
        let plots = plots(
            &batch("label", t(vec![0, 1, 1, 2, 2, 2])),
            &batch("label", t(vec![0, 1, 2, 2, 2, 1])),
            &VerifySpec::default(),
        );
        let PlotKind::Labels(l) = &plots[0].kind else {
            panic!("{plots:?}")
        };
        assert_eq!(l.elements, 6);
        assert_eq!(l.pairs[0], ("2".into(), "2".into(), 2));
        assert_eq!(l.pairs.len(), 5); // 0→0, 1→1, 1→2, 2→2, 2→1
        assert_eq!(l.other, 0);
    }

    #[test]
    fn nan_on_one_side_is_non_finite_and_not_drawn() {
        let t = |v: Vec<f64>| Tensor::new(vec![v.len()], TensorData::F64(v)).unwrap();
        let plots = plots(
            &batch("y", t(vec![f64::NAN, 1.0, f64::NAN])),
            &batch("y", t(vec![0.5, 1.0, f64::NAN])),
            &VerifySpec::default(),
        );
        let PlotKind::Float(p) = &plots[0].kind else {
            panic!()
        };
        assert_eq!(p.abs_errors.non_finite, 1);
        assert_eq!(p.abs_errors.zero, 2);
        assert_eq!(p.points.len(), 1);
    }
}
