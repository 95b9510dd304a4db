//! `LinearClassifier` and `LinearRegressor`: `scores = x · Wᵀ + b` in f32 (whatever
//! the input type, as onnxruntime computes them), then onnxruntime's labels and post
//! transform.
//!
//! A classifier with one coefficient row and two labels is binary: its label is
//! `labels[1]` when the raw score is positive, and its two score columns are `[1 − v, v]`
//! with `v` the score after `LOGISTIC`, or the raw score under every other transform
//! (`NONE`, `SOFTMAX`, `SOFTMAX_ZERO`) — not the `[−s, s]` the ONNX text suggests.
//! Under `PROBIT`, onnxruntime writes the probits packed into the first half of the
//! score matrix and leaves the rest unwritten; modelport writes `[probit(s), 0]`.
//! A one-target regressor applies `PROBIT` only; several targets take every transform.

use anyhow::{Result, ensure};
use tract_onnx::pb::NodeProto;

use super::attrs::Attrs;
use super::{Labels, Pick, PostTransform, first_max, logistic, probit};

/// `W` (targets × features) and `b` of a linear model.
#[derive(Debug, Clone, PartialEq)]
struct Affine {
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    n_targets: usize,
    n_features: usize,
}

impl Affine {
    fn new(coefficients: Vec<f32>, intercepts: Vec<f32>, n_targets: usize) -> Result<Affine> {
        ensure!(!coefficients.is_empty(), "coefficients is empty");
        ensure!(n_targets > 0, "the model has no targets");
        ensure!(
            coefficients.len().is_multiple_of(n_targets),
            "{} coefficients do not split into {n_targets} rows",
            coefficients.len()
        );
        ensure!(
            intercepts.is_empty() || intercepts.len() == n_targets,
            "{} intercepts for {n_targets} coefficient rows",
            intercepts.len()
        );
        let n_features = coefficients.len() / n_targets;
        Ok(Affine {
            coefficients,
            intercepts,
            n_targets,
            n_features,
        })
    }

    /// The raw scores, `n_targets` per example.
    fn scores(&self, x: &[f32], width: usize) -> Result<Vec<f32>> {
        ensure!(
            width == self.n_features,
            "the input has {width} features per example, but the model has {} coefficients per target",
            self.n_features
        );
        let mut out = Vec::with_capacity(x.len() / width.max(1) * self.n_targets);
        for row in x.chunks_exact(width.max(1)) {
            for t in 0..self.n_targets {
                let w = &self.coefficients[t * width..(t + 1) * width];
                let dot: f32 = row.iter().zip(w).map(|(a, b)| a * b).sum();
                out.push(dot + self.intercepts.get(t).copied().unwrap_or(0.0));
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinearClassifier {
    affine: Affine,
    pub(crate) labels: Labels,
    post: PostTransform,
}

impl LinearClassifier {
    pub(crate) fn from_node(node: &NodeProto) -> Result<LinearClassifier> {
        let a = Attrs::new(node);
        let labels = Labels::of(&a, "classlabels_ints")?;
        ensure!(labels.len() >= 1, "the classifier declares no class labels");
        let intercepts = a.floats("intercepts");
        // onnxruntime counts the targets by the intercepts; without them, one
        // coefficient row per class.
        let coefficients = a.floats("coefficients");
        let n_targets = if intercepts.is_empty() {
            labels.len()
        } else {
            intercepts.len()
        };
        Ok(LinearClassifier {
            affine: Affine::new(coefficients, intercepts, n_targets)?,
            labels,
            post: PostTransform::of(&a)?,
        })
    }

    fn binary(&self) -> bool {
        self.affine.n_targets == 1 && self.labels.len() == 2
    }

    /// Columns of the score output.
    pub(crate) fn n_scores(&self) -> usize {
        if self.binary() {
            2
        } else {
            self.affine.n_targets
        }
    }

    pub(crate) fn eval(&self, x: &[f32], width: usize) -> Result<(Vec<Pick>, Vec<f32>)> {
        let raw = self.affine.scores(x, width)?;
        let t = self.affine.n_targets;
        let mut picks = Vec::with_capacity(raw.len() / t);
        let mut out = Vec::with_capacity(raw.len() / t * self.n_scores());
        for row in raw.chunks_exact(t) {
            if t == 1 {
                let positive = row[0] > 0.0;
                picks.push(if self.labels.len() == 2 {
                    Pick::Class(usize::from(positive))
                } else {
                    Pick::Raw(positive)
                });
                let s = row[0];
                if self.binary() {
                    out.extend_from_slice(&match self.post {
                        PostTransform::Probit => [probit(s), 0.0],
                        PostTransform::Logistic => {
                            let v = logistic(s);
                            [1.0 - v, v]
                        }
                        _ => [1.0 - s, s],
                    });
                } else {
                    out.push(if self.post == PostTransform::Probit {
                        probit(s)
                    } else {
                        s
                    });
                }
            } else {
                picks.push(Pick::Class(first_max(row)));
                let start = out.len();
                out.extend_from_slice(row);
                self.post.apply(&mut out[start..]);
            }
        }
        Ok((picks, out))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinearRegressor {
    affine: Affine,
    post: PostTransform,
}

impl LinearRegressor {
    pub(crate) fn from_node(node: &NodeProto) -> Result<LinearRegressor> {
        let a = Attrs::new(node);
        let n_targets = usize::try_from(a.int("targets").unwrap_or(1))
            .map_err(|_| anyhow::anyhow!("targets is negative"))?;
        Ok(LinearRegressor {
            affine: Affine::new(a.floats("coefficients"), a.floats("intercepts"), n_targets)?,
            post: PostTransform::of(&a)?,
        })
    }

    pub(crate) fn n_targets(&self) -> usize {
        self.affine.n_targets
    }

    pub(crate) fn eval(&self, x: &[f32], width: usize) -> Result<Vec<f32>> {
        let mut y = self.affine.scores(x, width)?;
        let t = self.affine.n_targets;
        if t == 1 {
            if self.post == PostTransform::Probit {
                y.iter_mut().for_each(|v| *v = probit(*v));
            }
        } else {
            y.chunks_exact_mut(t).for_each(|row| self.post.apply(row));
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier(
        coefficients: Vec<f32>,
        intercepts: Vec<f32>,
        post: PostTransform,
    ) -> LinearClassifier {
        let n_targets = intercepts.len();
        LinearClassifier {
            affine: Affine::new(coefficients, intercepts, n_targets).unwrap(),
            labels: Labels::Int(vec![0, 1]),
            post,
        }
    }

    /// onnxruntime 1.32 on coefficients [1, 0, -1], intercept 0.5, x = [0, 0, 1]
    /// (raw score −0.5): `[1 − s, s]` under NONE and SOFTMAX, `[1 − σ(s), σ(s)]`
    /// under LOGISTIC, label 0.
    #[test]
    fn a_binary_classifier_lays_out_its_scores_as_onnxruntime_does() {
        let x = [0.0, 0.0, 1.0];
        for (post, want) in [
            (PostTransform::None, [1.5, -0.5]),
            (PostTransform::Softmax, [1.5, -0.5]),
            (PostTransform::Logistic, [0.622_459_35, 0.377_540_65]),
        ] {
            let (picks, scores) = classifier(vec![1.0, 0.0, -1.0], vec![0.5], post)
                .eval(&x, 3)
                .unwrap();
            assert_eq!(picks, [Pick::Class(0)]);
            assert!(
                (scores[0] - want[0]).abs() < 1e-6 && (scores[1] - want[1]).abs() < 1e-6,
                "{post:?}: {scores:?}"
            );
        }
    }

    #[test]
    fn several_rows_pick_the_first_largest_raw_score() {
        let k = classifier(
            vec![1.0, -1.0, 1.0, -1.0],
            vec![0.0, 0.0],
            PostTransform::Softmax,
        );
        let (picks, scores) = k.eval(&[2.0, 1.0], 2).unwrap();
        assert_eq!(picks, [Pick::Class(0)]);
        assert_eq!(scores, [0.5, 0.5]);
        assert!(k.eval(&[1.0, 2.0, 3.0], 3).is_err());
    }
}
