//! A goal for how far a compressed model may depart from the original: the words of
//! `--max-degradation` and `model.compress.max_degradation`, parsed in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A metric a goal bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The fraction of rows whose label (or argmax) differs from the original's.
    Agreement,
    /// The drop in accuracy against the labels.
    Accuracy,
    /// The largest absolute error of any float output.
    MaxAbs,
    /// The mean absolute error of any float output.
    MeanAbs,
    /// The least SQNR (dB) of any float output: a floor, not a drop.
    Sqnr,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Agreement,
        Metric::Accuracy,
        Metric::MaxAbs,
        Metric::MeanAbs,
        Metric::Sqnr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Agreement => "agreement",
            Metric::Accuracy => "accuracy",
            Metric::MaxAbs => "max_abs",
            Metric::MeanAbs => "mean_abs",
            Metric::Sqnr => "sqnr",
        }
    }
}

/// One bound: `agreement=1%`, `accuracy=0.5%` (relative), `accuracy=0.01`
/// (absolute), `max_abs=0.05`, `max_abs=2%` (of the output's largest magnitude),
/// `sqnr=30` (dB, at least).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    pub metric: Metric,
    pub value: f64,
    /// `N%`: relative to the original (its accuracy, its largest magnitude).
    pub relative: bool,
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.relative || self.metric == Metric::Agreement {
            // Rounded, so that 0.07 prints as 7%, not 7.000000000000001%.
            let pct = (self.value * 100.0 * 1e9).round() / 1e9;
            write!(f, "{}={pct}%", self.metric.name())
        } else {
            write!(f, "{}={}", self.metric.name(), self.value)
        }
    }
}

impl FromStr for Goal {
    type Err = String;

    fn from_str(s: &str) -> Result<Goal, String> {
        let (name, value) = s.split_once('=').ok_or_else(|| {
            format!("{s:?} is not METRIC=VALUE (e.g. agreement=1%, accuracy=0.5%, max_abs=0.05, sqnr=30)")
        })?;
        let metric = Metric::ALL
            .into_iter()
            .find(|m| m.name() == name.trim())
            .ok_or_else(|| {
                format!(
                    "unknown metric {name:?}; the metrics are {}",
                    Metric::ALL.map(Metric::name).join(", ")
                )
            })?;
        let value = value.trim();
        let (number, relative) = match value.strip_suffix('%') {
            Some(n) => (n, true),
            None => (value, false),
        };
        let mut value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("{value:?} is not a number or a percentage"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("{value} is not a bound (a number ≥ 0)"));
        }
        if relative {
            value /= 100.0;
        }
        if metric == Metric::Sqnr && relative {
            return Err("sqnr is a floor in dB (sqnr=30), not a percentage".into());
        }
        // Agreement is a fraction of rows whichever way it is written.
        let relative = relative && metric != Metric::Agreement;
        Ok(Goal {
            metric,
            value,
            relative,
        })
    }
}

/// Serialized as it is written: `"agreement=1%"`.
impl Serialize for Goal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
