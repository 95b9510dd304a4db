//! The accuracy gate: how far a compressed model's answers are from the original's,
//! and whether that is within the user's goal.
//!
//! Pure arithmetic over batches in memory, like `modelport_verify::metrics`; the same
//! numbers prove the compressed model locally and, in a deploy, the endpoint against
//! the original model.
//!
//! Per output: the maximum and mean absolute error and the signal-to-quantization-
//! noise ratio `10·log10(Σb² / Σ(a−b)²)` of float outputs, the agreement of labels
//! (label outputs row by row, class-score outputs by their argmax), and values that
//! became NaN or infinite where the original's are finite. With labels, the accuracy
//! of both models and its drop.

use modelport_core::{Batch, ClassLabels, TensorSpec};
use serde::{Serialize, Serializer};

pub use modelport_core::goal::{Goal, Metric};

/// The goal when none is given: at most 1 % of labels differ. NaN and infinity are
/// refused whatever the goal.
pub fn default_goals() -> Vec<Goal> {
    vec![Goal {
        metric: Metric::Agreement,
        value: 0.01,
        relative: false,
    }]
}

/// How one output of the candidate compares with the original's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputGate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_float")]
    pub max_abs_err: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_float")]
    pub mean_abs_err: Option<f64>,
    /// The largest magnitude of the original's values, which relative goals scale by.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_float")]
    pub max_abs_original: Option<f64>,
    /// dB; infinite when the outputs are equal.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_float")]
    pub sqnr_db: Option<f64>,
    /// The fraction of rows whose label (or class-score argmax) is the original's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    /// Values NaN or infinite in the candidate where the original's are finite.
    pub non_finite: usize,
    /// Why the output could not be compared (missing, another shape or type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
}

/// Accuracy against labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    /// The output the labels are compared with.
    pub output: String,
    pub original: f64,
    pub candidate: f64,
    /// `original - candidate`, in fractions (0.01 is one point).
    pub drop: f64,
}

/// Whether one goal was met.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalResult {
    pub goal: Goal,
    pub passed: bool,
    /// What was measured, in the goal's terms.
    pub detail: String,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub samples: usize,
    pub outputs: Vec<OutputGate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
    pub goals: Vec<GoalResult>,
    pub passed: bool,
}

fn opt_float<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => modelport_verify::metrics::serialize_float(x, s),
        None => s.serialize_none(),
    }
}

/// The label of each row of a batch: a label output's values, or the class (label
/// or index) of a class-score output's largest column.
fn row_labels(batch: &Batch, name: &str, spec: Option<&TensorSpec>) -> Option<Vec<String>> {
    let t = batch.get(name)?;
    let rows = t.rows();
    let shape = t.shape();
    if !t.dtype().is_float() {
        if shape.len() > 1 && shape[1..].iter().product::<usize>() != 1 {
            return None;
        }
        return Some((0..rows).map(|i| t.data().display_at(i)).collect());
    }
    if shape.len() != 2 || shape[1] < 2 {
        return None;
    }
    let c = shape[1];
    let classes = spec.and_then(|s| s.class_labels.as_ref());
    Some(
        (0..rows)
            .map(|r| {
                let mut best = 0;
                let mut best_v = f64::NEG_INFINITY;
                for j in 0..c {
                    let v = t.data().get_f64(r * c + j).unwrap_or(f64::NAN);
                    if v > best_v {
                        best_v = v;
                        best = j;
                    }
                }
                match classes {
                    Some(ClassLabels::Int64(l)) if l.len() == c => l[best].to_string(),
                    Some(ClassLabels::String(l)) if l.len() == c => l[best].clone(),
                    _ => best.to_string(),
                }
            })
            .collect(),
    )
}

/// The output labels are compared with: the first label output, else the first
/// class-score output.
fn label_output<'a>(original: &'a Batch, specs: &[TensorSpec]) -> Option<&'a str> {
    let names: Vec<&str> = original.names().collect();
    names
        .iter()
        .find(|n| original.get(n).is_some_and(|t| !t.dtype().is_float()))
        .or_else(|| {
            names
                .iter()
                .find(|n| row_labels(original, n, specs.iter().find(|s| s.name == **n)).is_some())
        })
        .copied()
}

/// Compares `candidate` with `original` on the same inputs; `labels` are the true
/// labels of the rows when known.
pub fn evaluate(
    candidate: &Batch,
    original: &Batch,
    specs: &[TensorSpec],
    labels: Option<&[String]>,
    goals: &[Goal],
) -> GateReport {
    let samples = original.batch_size().unwrap_or(0);
    let mut outputs = Vec::new();
    for named in original.iter() {
        let name = named.name.as_str();
        let b = &named.tensor;
        let spec = specs.iter().find(|s| s.name == name);
        let mut out = OutputGate {
            name: name.to_string(),
            max_abs_err: None,
            mean_abs_err: None,
            max_abs_original: None,
            sqnr_db: None,
            agreement: None,
            non_finite: 0,
            mismatch: None,
        };
        let Some(a) = candidate.get(name) else {
            out.mismatch = Some("missing in the compressed model's outputs".into());
            outputs.push(out);
            continue;
        };
        if a.shape() != b.shape() || a.dtype().is_float() != b.dtype().is_float() {
            out.mismatch = Some(format!(
                "{} {:?} vs the original's {} {:?}",
                a.dtype(),
                a.shape(),
                b.dtype(),
                b.shape()
            ));
            outputs.push(out);
            continue;
        }
        if b.dtype().is_float() {
            let (mut max, mut sum, mut n, mut signal, mut noise, mut peak) =
                (0f64, 0f64, 0usize, 0f64, 0f64, 0f64);
            for i in 0..b.len() {
                let (Some(x), Some(y)) = (a.data().get_f64(i), b.data().get_f64(i)) else {
                    continue;
                };
                if !y.is_finite() {
                    continue;
                }
                if !x.is_finite() {
                    out.non_finite += 1;
                    continue;
                }
                let e = (x - y).abs();
                max = max.max(e);
                sum += e;
                n += 1;
                signal += y * y;
                noise += e * e;
                peak = peak.max(y.abs());
            }
            out.max_abs_err = Some(max);
            out.mean_abs_err = Some(if n == 0 { 0.0 } else { sum / n as f64 });
            out.max_abs_original = Some(peak);
            out.sqnr_db = Some(if noise == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (signal / noise).log10()
            });
        }
        if let (Some(la), Some(lb)) = (
            row_labels(candidate, name, spec),
            row_labels(original, name, spec),
        ) {
            let same = la.iter().zip(&lb).filter(|(x, y)| x == y).count();
            out.agreement = Some(if lb.is_empty() {
                1.0
            } else {
                same as f64 / lb.len() as f64
            });
        }
        outputs.push(out);
    }

    let accuracy = labels.and_then(|truth| {
        let name = label_output(original, specs)?;
        let spec = specs.iter().find(|s| s.name == name);
        let lb = row_labels(original, name, spec)?;
        let la = row_labels(candidate, name, spec)?;
        let score = |l: &[String]| {
            l.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len().max(1) as f64
        };
        let (original, candidate) = (score(&lb), score(&la));
        Some(Accuracy {
            output: name.to_string(),
            original,
            candidate,
            drop: original - candidate,
        })
    });

    let mut results = Vec::new();
    let non_finite: usize = outputs.iter().map(|o| o.non_finite).sum();
    let mismatched: Vec<&OutputGate> = outputs.iter().filter(|o| o.mismatch.is_some()).collect();
    for goal in goals {
        results.push(check(goal, &outputs, accuracy.as_ref()));
    }
    let passed =
        non_finite == 0 && mismatched.is_empty() && results.iter().all(|r| r.passed) && samples > 0;
    GateReport {
        samples,
        outputs,
        accuracy,
        goals: results,
        passed,
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn check(goal: &Goal, outputs: &[OutputGate], accuracy: Option<&Accuracy>) -> GoalResult {
    let result = |passed: bool, detail: String| GoalResult {
        goal: *goal,
        passed,
        detail,
    };
    match goal.metric {
        Metric::Agreement => {
            let worst = outputs
                .iter()
                .filter_map(|o| o.agreement.map(|a| (a, o.name.as_str())))
                .min_by(|x, y| x.0.total_cmp(&y.0));
            match worst {
                None => result(true, "no label or class-score output to agree on".into()),
                Some((a, name)) => result(
                    1.0 - a <= goal.value + 1e-12,
                    format!(
                        "{} of `{name}` agree ({} may differ)",
                        pct(a),
                        pct(goal.value)
                    ),
                ),
            }
        }
        Metric::Accuracy => match accuracy {
            None => result(
                false,
                "no labels to measure accuracy with (`--eval FILE` with \"labels\")".into(),
            ),
            Some(acc) => {
                let (drop, limit) = if goal.relative {
                    (acc.drop / acc.original.max(f64::MIN_POSITIVE), goal.value)
                } else {
                    (acc.drop, goal.value)
                };
                result(
                    drop <= limit + 1e-12,
                    format!(
                        "accuracy {} → {} on `{}` (drop {:.2} points{})",
                        pct(acc.original),
                        pct(acc.candidate),
                        acc.output,
                        acc.drop * 100.0,
                        if goal.relative {
                            format!(", {} relative", pct(drop))
                        } else {
                            String::new()
                        }
                    ),
                )
            }
        },
        Metric::MaxAbs | Metric::MeanAbs => {
            let measured = outputs
                .iter()
                .filter_map(|o| {
                    let e = if goal.metric == Metric::MaxAbs {
                        o.max_abs_err?
                    } else {
                        o.mean_abs_err?
                    };
                    let e = if goal.relative {
                        e / o.max_abs_original?.max(f64::MIN_POSITIVE)
                    } else {
                        e
                    };
                    Some((e, o.name.as_str()))
                })
                .max_by(|x, y| x.0.total_cmp(&y.0));
            match measured {
                None => result(true, "no float output".into()),
                Some((e, name)) => result(
                    e <= goal.value,
                    if goal.relative {
                        format!(
                            "{} of `{name}`'s largest magnitude (at most {})",
                            pct(e),
                            pct(goal.value)
                        )
                    } else {
                        format!("{e:.3e} on `{name}` (at most {})", goal.value)
                    },
                ),
            }
        }
        Metric::Sqnr => {
            let least = outputs
                .iter()
                .filter_map(|o| o.sqnr_db.map(|s| (s, o.name.as_str())))
                .min_by(|x, y| x.0.total_cmp(&y.0));
            match least {
                None => result(true, "no float output".into()),
                Some((s, name)) => result(
                    s >= goal.value,
                    format!("{s:.1} dB on `{name}` (at least {} dB)", goal.value),
                ),
            }
        }
    }
}

/// One number for how much a candidate departs from the original, to rank nodes:
/// the disagreement plus the mean absolute error relative to the output's magnitude.
pub fn departure(report: &GateReport) -> f64 {
    let mut score = 0.0;
    for o in &report.outputs {
        if o.mismatch.is_some() || o.non_finite > 0 {
            return f64::INFINITY;
        }
        if let Some(a) = o.agreement {
            score += 1.0 - a;
        }
        if let (Some(e), Some(p)) = (o.mean_abs_err, o.max_abs_original) {
            score += e / p.max(f64::MIN_POSITIVE);
        }
    }
    if let Some(acc) = &report.accuracy {
        score += acc.drop.max(0.0);
    }
    score
}

/// Reads `"labels"` of a JSON inputs file (numbers or strings, one per row).
pub fn labels_of(body: &serde_json::Value) -> Option<Result<Vec<String>, String>> {
    let labels = body.get("labels")?;
    let Some(list) = labels.as_array() else {
        return Some(Err(
            "\"labels\" must be a list with one label per row".into()
        ));
    };
    Some(
        list.iter()
            .enumerate()
            .map(|(i, v)| match v {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Number(n) => Ok(n
                    .as_i64()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| n.to_string())),
                other => Err(format!("labels[{i}] is {other}, not a number or a string")),
            })
            .collect(),
    )
}
