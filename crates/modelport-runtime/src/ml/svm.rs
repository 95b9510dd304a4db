//! `SVMClassifier` and `SVMRegressor`: libsvm's kernels, one-vs-one voting and
//! Platt-scaled pairwise probabilities, as onnxruntime computes them.

use anyhow::{Result, bail, ensure};
use tract_onnx::pb::NodeProto;

use super::attrs::Attrs;
use super::{Labels, Pick, PostTransform, first_max, logistic};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kernel {
    Linear,
    Poly { gamma: f32, coef0: f32, degree: f32 },
    Rbf { gamma: f32 },
    Sigmoid { gamma: f32, coef0: f32 },
}

impl Kernel {
    fn from_attrs(a: &Attrs) -> Result<Kernel> {
        let p = a.floats("kernel_params");
        let (gamma, coef0, degree) = (
            p.first().copied().unwrap_or(0.0),
            p.get(1).copied().unwrap_or(0.0),
            p.get(2).copied().unwrap_or(0.0),
        );
        Ok(
            match a.string("kernel_type")?.as_deref().unwrap_or("LINEAR") {
                "LINEAR" => Kernel::Linear,
                "POLY" => Kernel::Poly {
                    gamma,
                    coef0,
                    degree,
                },
                "RBF" => Kernel::Rbf { gamma },
                "SIGMOID" => Kernel::Sigmoid { gamma, coef0 },
                other => bail!("kernel_type `{other}` is not LINEAR, POLY, RBF or SIGMOID"),
            },
        )
    }

    fn eval(self, x: &[f32], y: &[f32]) -> f32 {
        let dot = || x.iter().zip(y).map(|(a, b)| a * b).sum::<f32>();
        match self {
            Kernel::Linear => dot(),
            Kernel::Poly {
                gamma,
                coef0,
                degree,
            } => (gamma * dot() + coef0).powf(degree),
            Kernel::Rbf { gamma } => {
                let d: f32 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
                (-gamma * d).exp()
            }
            Kernel::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
        }
    }
}

/// `SVMClassifier`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SvmClassifier {
    kernel: Kernel,
    pub(crate) labels: Labels,
    /// Support vectors per class (SVC mode) — empty in linear mode.
    per_class: Vec<usize>,
    starts: Vec<usize>,
    vectors: Vec<f32>,
    coefficients: Vec<f32>,
    rho: Vec<f32>,
    prob_a: Vec<f32>,
    prob_b: Vec<f32>,
    post: PostTransform,
    pub(crate) n_features: usize,
    all_positive: bool,
}

impl SvmClassifier {
    pub(crate) fn from_node(node: &NodeProto) -> Result<SvmClassifier> {
        let a = Attrs::new(node);
        let labels = Labels::of(&a, "classlabels_ints")?;
        ensure!(labels.len() >= 1, "the classifier declares no class labels");
        let per_class: Vec<usize> = a
            .ints("vectors_per_class")
            .into_iter()
            .map(|v| usize::try_from(v).map_err(|_| anyhow::anyhow!("vectors_per_class holds {v}")))
            .collect::<Result<_>>()?;
        let vectors = a.floats("support_vectors");
        let coefficients = a.floats("coefficients");
        let rho = a.floats("rho");
        let prob_a = a.floats("prob_a");
        let prob_b = a.floats("prob_b");
        ensure!(!coefficients.is_empty(), "coefficients is empty");
        ensure!(!rho.is_empty(), "rho is empty");
        ensure!(
            prob_a.len() == prob_b.len(),
            "prob_a and prob_b differ in length"
        );
        let c = labels.len();
        let v: usize = per_class.iter().sum();
        let mut kernel = Kernel::from_attrs(&a)?;
        let mut starts = Vec::with_capacity(per_class.len());
        let n_features = if v > 0 {
            ensure!(
                per_class.len() == c,
                "vectors_per_class has {} entries for {c} classes",
                per_class.len()
            );
            ensure!(
                vectors.len().is_multiple_of(v),
                "support_vectors does not hold {v} whole vectors"
            );
            let mut s = 0;
            for &n in &per_class {
                starts.push(s);
                s += n;
            }
            let pairs = c * (c - 1) / 2;
            ensure!(
                coefficients.len() >= (c - 1) * v,
                "coefficients holds {} values; {} classes of {v} vectors need {}",
                coefficients.len(),
                c,
                (c - 1) * v
            );
            ensure!(
                rho.len() >= pairs,
                "rho holds {} values for {pairs} class pairs",
                rho.len()
            );
            ensure!(
                prob_a.is_empty() || prob_a.len() >= pairs,
                "prob_a holds {} values for {pairs} class pairs",
                prob_a.len()
            );
            vectors.len() / v
        } else {
            kernel = Kernel::Linear;
            ensure!(
                coefficients.len().is_multiple_of(c),
                "coefficients does not split into {c} classes"
            );
            coefficients.len() / c
        };
        let all_positive = coefficients.iter().all(|&w| w >= 0.0);
        Ok(SvmClassifier {
            kernel,
            labels,
            per_class: if v > 0 { per_class } else { Vec::new() },
            starts,
            vectors,
            coefficients,
            rho,
            prob_a,
            prob_b,
            post: PostTransform::parse(
                &a.string("post_transform")?.unwrap_or_else(|| "NONE".into()),
            )?,
            n_features,
            all_positive,
        })
    }

    fn svc(&self) -> bool {
        !self.per_class.is_empty()
    }

    /// Score columns per example.
    pub(crate) fn n_scores(&self) -> usize {
        let c = self.labels.len();
        if self.prob_a.is_empty() && self.svc() {
            if c > 2 { c * (c - 1) / 2 } else { 2 }
        } else {
            c
        }
    }

    pub(crate) fn eval(&self, x: &[f32], width: usize) -> Result<(Vec<Pick>, Vec<f32>)> {
        ensure!(
            width == self.n_features,
            "the input has {width} features per example, but the SVM was fitted on {}",
            self.n_features
        );
        let c = self.labels.len();
        let cols = self.n_scores();
        let v: usize = self.per_class.iter().sum();
        let mut picks = Vec::new();
        let mut out = Vec::new();
        let mut kernels = vec![0f32; v];
        let mut scores: Vec<f32> = Vec::with_capacity(c * c);
        let mut votes = vec![0usize; c];
        for row in x.chunks_exact(width.max(1)) {
            scores.clear();
            votes.iter_mut().for_each(|v| *v = 0);
            if !self.svc() {
                for j in 0..c {
                    let w = &self.coefficients[j * width..(j + 1) * width];
                    scores.push(self.kernel.eval(row, w) + self.rho[0]);
                }
            } else {
                for (j, k) in kernels.iter_mut().enumerate() {
                    *k = self
                        .kernel
                        .eval(row, &self.vectors[j * width..(j + 1) * width]);
                }
                let mut pair = 0;
                for i in 0..c {
                    for j in i + 1..c {
                        let (si, sj) = (self.starts[i], self.starts[j]);
                        let (ni, nj) = (self.per_class[i], self.per_class[j]);
                        let ci = &self.coefficients[v * (j - 1) + si..][..ni];
                        let cj = &self.coefficients[v * i + sj..][..nj];
                        let mut sum = 0f64;
                        for (w, k) in ci.iter().zip(&kernels[si..si + ni]) {
                            sum += f64::from(w * k);
                        }
                        for (w, k) in cj.iter().zip(&kernels[sj..sj + nj]) {
                            sum += f64::from(w * k);
                        }
                        sum += f64::from(self.rho[pair]);
                        scores.push(sum as f32);
                        votes[if sum > 0.0 { i } else { j }] += 1;
                        pair += 1;
                    }
                }
            }
            if !self.prob_a.is_empty() && self.svc() {
                let mut r = vec![0f32; c * c];
                let mut k = 0;
                for i in 0..c {
                    for j in i + 1..c {
                        let p = (1.0 - logistic(scores[k] * self.prob_a[k] + self.prob_b[k]))
                            .clamp(1e-7, 1.0 - 1e-7);
                        r[i * c + j] = p;
                        r[j * c + i] = 1.0 - p;
                        k += 1;
                    }
                }
                let p = multiclass_probability(c, &r);
                scores.clear();
                scores.extend(p);
            }
            let (maxclass, max_weight) = if self.svc() {
                (first_max(&votes), 0.0)
            } else {
                let m = first_max(&scores);
                (m, scores[m])
            };
            let mut second_class = -1i8;
            let pick = if self.rho.len() == 1 {
                if c == 2 {
                    second_class = if self.post == PostTransform::None {
                        2
                    } else {
                        0
                    };
                    if !self.prob_a.is_empty() {
                        Pick::Class(maxclass)
                    } else if (self.all_positive && max_weight >= 0.5)
                        || (!self.all_positive && max_weight > 0.0)
                    {
                        Pick::Class(1)
                    } else {
                        Pick::Class(maxclass)
                    }
                } else {
                    Pick::Raw(max_weight > 0.0)
                }
            } else {
                Pick::Class(maxclass)
            };
            picks.push(pick);
            let start = out.len();
            if scores.len() == 1 {
                out.extend_from_slice(&self.post.binary_pair(second_class, scores[0]));
            } else {
                self.post.apply(&mut scores);
                out.extend_from_slice(&scores);
            }
            out.resize(start + cols, 0.0);
        }
        Ok((picks, out))
    }
}

/// Pairwise coupling of Wu, Lin and Weng (libsvm's `multiclass_probability`), in
/// f32 and with the same stopping rule as onnxruntime.
fn multiclass_probability(k: usize, r: &[f32]) -> Vec<f32> {
    let mut q = vec![0f32; k * k];
    let mut qp = vec![0f32; k];
    let mut p = vec![1.0 / k as f32; k];
    let eps = 0.005 / k as f32;
    for i in 0..k {
        for j in 0..i {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for j in i + 1..k {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    for _ in 0..100 {
        let mut pqp = 0f32;
        for i in 0..k {
            qp[i] = (0..k).map(|j| q[i * k + j] * p[j]).sum();
            pqp += p[i] * qp[i];
        }
        let max_error = qp.iter().map(|&v| (v - pqp).abs()).fold(0f32, f32::max);
        if max_error < eps {
            break;
        }
        for i in 0..k {
            let diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
    p
}

/// `SVMRegressor` (and one-class SVMs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SvmRegressor {
    kernel: Kernel,
    n_supports: usize,
    vectors: Vec<f32>,
    coefficients: Vec<f32>,
    rho: f32,
    one_class: bool,
    pub(crate) n_features: usize,
}

impl SvmRegressor {
    pub(crate) fn from_node(node: &NodeProto) -> Result<SvmRegressor> {
        let a = Attrs::new(node);
        let n_supports = usize::try_from(a.int("n_supports").unwrap_or(0))?;
        let vectors = a.floats("support_vectors");
        let coefficients = a.floats("coefficients");
        let rho = a.floats("rho");
        ensure!(!coefficients.is_empty(), "coefficients is empty");
        ensure!(
            rho.len() == 1,
            "rho holds {} values; a regressor has one",
            rho.len()
        );
        let (kernel, n_features) = if n_supports > 0 {
            ensure!(
                vectors.len().is_multiple_of(n_supports),
                "support_vectors does not hold {n_supports} whole vectors"
            );
            ensure!(
                coefficients.len() >= n_supports,
                "coefficients holds fewer values than n_supports"
            );
            (Kernel::from_attrs(&a)?, vectors.len() / n_supports)
        } else {
            (Kernel::Linear, coefficients.len())
        };
        Ok(SvmRegressor {
            kernel,
            n_supports,
            vectors,
            coefficients,
            rho: rho[0],
            one_class: a.int("one_class").unwrap_or(0) != 0,
            n_features,
        })
    }

    pub(crate) fn eval(&self, x: &[f32], width: usize) -> Result<Vec<f32>> {
        ensure!(
            width == self.n_features,
            "the input has {width} features per example, but the SVM was fitted on {}",
            self.n_features
        );
        Ok(x.chunks_exact(width.max(1))
            .map(|row| {
                let s = if self.n_supports > 0 {
                    let mut sum = 0f32;
                    for j in 0..self.n_supports {
                        sum += self.coefficients[j]
                            * self
                                .kernel
                                .eval(row, &self.vectors[j * width..(j + 1) * width]);
                    }
                    sum + self.rho
                } else {
                    self.kernel.eval(row, &self.coefficients) + self.rho
                };
                if self.one_class {
                    if s > 0.0 { 1.0 } else { -1.0 }
                } else {
                    s
                }
            })
            .collect())
    }
}
