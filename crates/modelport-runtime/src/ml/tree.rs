//! Tree ensembles: `TreeEnsembleClassifier`, `TreeEnsembleRegressor` (ai.onnx.ml 1–3)
//! and `TreeEnsemble` (ai.onnx.ml 5), evaluated natively over the batch.
//!
//! Every form is read into one flat array of nodes per precision (f32 for float and
//! integer inputs, f64 for double inputs, as onnxruntime compares thresholds in the
//! input's precision); a leaf stores the range of its weights in a second flat array.
//! Evaluation walks each tree per example with no allocation per node or tree.

use std::collections::HashMap;

use anyhow::{Context, Result, bail, ensure};
use tract_onnx::pb::NodeProto;

use super::attrs::Attrs;
use super::{Labels, Pick, PostTransform};

const LEQ: u8 = 0;
const LT: u8 = 1;
const GTE: u8 = 2;
const GT: u8 = 3;
const EQ: u8 = 4;
const NEQ: u8 = 5;
const MEMBER: u8 = 6;
const LEAF: u8 = 7;
const MODE: u8 = 0x0f;
const MISSING_TRUE: u8 = 0x80;

/// f32 or f64: the precision a forest compares and accumulates in.
pub(crate) trait Float:
    Copy + PartialOrd + std::ops::Add<Output = Self> + Default + 'static
{
    fn from_f64(v: f64) -> Self;
    fn is_nan(self) -> bool;
    fn to_f32(self) -> f32;
    fn div_usize(self, n: usize) -> Self;
    fn trunc(self) -> Self;
    /// The forest's arrays in this precision.
    fn arrays(forest: &Forest) -> &Arrays<Self>;
}

impl Float for f32 {
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn div_usize(self, n: usize) -> f32 {
        self / n as f32
    }
    fn trunc(self) -> f32 {
        f32::trunc(self)
    }
    fn arrays(forest: &Forest) -> &Arrays<f32> {
        &forest.a32
    }
}

impl Float for f64 {
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn div_usize(self, n: usize) -> f64 {
        self / n as f64
    }
    fn trunc(self) -> f64 {
        f64::trunc(self)
    }
    fn arrays(forest: &Forest) -> &Arrays<f64> {
        &forest.a64
    }
}

/// One node. For a leaf, `t..f` is the range of its weights.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node<T> {
    value: T,
    feature: u32,
    t: u32,
    f: u32,
    mode: u8,
}

/// The nodes and leaf weights of a forest in one precision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arrays<T> {
    nodes: Vec<Node<T>>,
    weights: Vec<T>,
    /// The sorted members of each `BRANCH_MEMBER` node, by node index.
    members: HashMap<u32, Members<T>>,
}

/// A `BRANCH_MEMBER` set. onnxruntime tests a set whose members are all integers
/// from 0 to 63 exactly, but any other set on the input truncated toward zero
/// (`static_cast<int64_t>`): `-1.5` is in `{-1, 4}` and `4.5` in `{4, 70}`, while
/// `1.5` is not in `{1, 2, 5}`. modelport does the same (probed on onnxruntime 1.32).
#[derive(Debug, Clone, PartialEq)]
struct Members<T> {
    truncate: bool,
    sorted: Vec<T>,
}

impl<T: Float> Members<T> {
    fn new(set: &[f64]) -> Members<T> {
        let truncate = !set
            .iter()
            .all(|&v| v.fract() == 0.0 && (0.0..=63.0).contains(&v));
        let mut sorted: Vec<T> = set.iter().map(|&v| T::from_f64(v)).collect();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Members { truncate, sorted }
    }

    #[inline]
    fn contains(&self, x: T) -> bool {
        let x = if self.truncate { x.trunc() } else { x };
        self.sorted
            .binary_search_by(|m| m.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Less))
            .is_ok()
    }
}

/// How the trees' leaf values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

impl Aggregate {
    fn parse(s: &str) -> Result<Aggregate> {
        Ok(match s {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => bail!("aggregate_function `{other}` is not SUM, AVERAGE, MIN or MAX"),
        })
    }
}

/// A forest: the trees, flattened, in both precisions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Forest {
    a32: Arrays<f32>,
    a64: Arrays<f64>,
    /// Target (or class) of each weight.
    targets: Vec<u32>,
    roots: Vec<u32>,
    /// Features read: an input must have at least this many columns.
    pub(crate) n_features: usize,
    pub(crate) n_targets: usize,
    aggregate: Aggregate,
}

/// One node of the forest being built, in the tree ensemble's own terms.
struct RawNode {
    value: f64,
    feature: i64,
    mode: u8,
    missing_true: bool,
    t: u32,
    f: u32,
    /// The weights `(target, value)` of a leaf.
    weights: Vec<(u32, f64)>,
    members: Vec<f64>,
}

fn mode_code(s: &str) -> Result<u8> {
    Ok(match s {
        "BRANCH_LEQ" => LEQ,
        "BRANCH_LT" => LT,
        "BRANCH_GTE" => GTE,
        "BRANCH_GT" => GT,
        "BRANCH_EQ" => EQ,
        "BRANCH_NEQ" => NEQ,
        "LEAF" => LEAF,
        other => bail!("nodes_modes holds `{other}`, which is not a tree node mode"),
    })
}

impl Forest {
    fn build(
        raw: Vec<RawNode>,
        roots: Vec<u32>,
        n_targets: usize,
        aggregate: Aggregate,
    ) -> Result<Forest> {
        ensure!(!roots.is_empty(), "the ensemble has no trees");
        let n = raw.len();
        let mut a32 = Arrays::<f32> {
            nodes: Vec::with_capacity(n),
            weights: Vec::new(),
            members: HashMap::new(),
        };
        let mut a64 = Arrays::<f64> {
            nodes: Vec::with_capacity(n),
            weights: Vec::new(),
            members: HashMap::new(),
        };
        let mut targets = Vec::new();
        let mut n_features = 0;
        for (i, r) in raw.iter().enumerate() {
            let mode = r.mode | if r.missing_true { MISSING_TRUE } else { 0 };
            let (t, f, feature) = if r.mode == LEAF {
                let start = targets.len() as u32;
                for &(target, w) in &r.weights {
                    ensure!(
                        (target as usize) < n_targets,
                        "a leaf weight goes to target or class {target}, but there are {n_targets}"
                    );
                    targets.push(target);
                    a32.weights.push(w as f32);
                    a64.weights.push(w);
                }
                (start, targets.len() as u32, 0)
            } else {
                ensure!(
                    (r.t as usize) < n && (r.f as usize) < n,
                    "node {i} branches to a node that does not exist"
                );
                ensure!(
                    (0..1 << 24).contains(&r.feature),
                    "node {i} reads feature {}",
                    r.feature
                );
                n_features = n_features.max(r.feature as usize + 1);
                if r.mode == MEMBER {
                    a32.members.insert(i as u32, Members::new(&r.members));
                    a64.members.insert(i as u32, Members::new(&r.members));
                }
                (r.t, r.f, r.feature as u32)
            };
            a32.nodes.push(Node {
                value: r.value as f32,
                feature,
                t,
                f,
                mode,
            });
            a64.nodes.push(Node {
                value: r.value,
                feature,
                t,
                f,
                mode,
            });
        }
        let forest = Forest {
            a32,
            a64,
            targets,
            roots,
            n_features,
            n_targets,
            aggregate,
        };
        forest.check_acyclic()?;
        Ok(forest)
    }

    /// A walk from any root reaches a leaf: no branch loops back.
    fn check_acyclic(&self) -> Result<()> {
        let nodes = &self.a32.nodes;
        // 0 = unseen, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; nodes.len()];
        for &root in &self.roots {
            let mut stack = vec![(root as usize, false)];
            while let Some((i, leaving)) = stack.pop() {
                if leaving {
                    state[i] = 2;
                    continue;
                }
                match state[i] {
                    1 => bail!("the tree containing node {i} loops back on itself"),
                    2 => continue,
                    _ => {}
                }
                state[i] = 1;
                stack.push((i, true));
                let n = nodes[i];
                if n.mode & MODE != LEAF {
                    for c in [n.t as usize, n.f as usize] {
                        if state[c] == 1 {
                            bail!("the tree containing node {i} loops back on itself");
                        }
                        stack.push((c, false));
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the ai.onnx.ml 1–3 attributes: `nodes_*` and the `prefix_*` weights
    /// (`class` or `target`).
    fn from_classic(
        node: &NodeProto,
        prefix: &str,
        n_targets: usize,
        aggregate: Aggregate,
    ) -> Result<Forest> {
        let a = Attrs::new(node);
        let tree_ids = a.ints("nodes_treeids");
        let node_ids = a.ints("nodes_nodeids");
        let features = a.ints("nodes_featureids");
        let values = a.floats_or_tensor("nodes_values")?;
        let modes = a.strings("nodes_modes")?;
        let trues = a.ints("nodes_truenodeids");
        let falses = a.ints("nodes_falsenodeids");
        let missing = a.ints("nodes_missing_value_tracks_true");
        let n = tree_ids.len();
        ensure!(n > 0, "the ensemble has no nodes");
        for (name, len) in [
            ("nodes_nodeids", node_ids.len()),
            ("nodes_featureids", features.len()),
            ("nodes_modes", modes.len()),
            ("nodes_truenodeids", trues.len()),
            ("nodes_falsenodeids", falses.len()),
        ] {
            ensure!(len == n, "{name} has {len} entries, nodes_treeids {n}");
        }
        ensure!(
            values.len() == n || values.is_empty(),
            "nodes_values has {} entries, nodes_treeids {n}",
            values.len()
        );
        ensure!(
            missing.is_empty() || missing.len() == n,
            "nodes_missing_value_tracks_true has {} entries, nodes_treeids {n}",
            missing.len()
        );
        let mut index: HashMap<(i64, i64), u32> = HashMap::with_capacity(n);
        let mut roots = Vec::new();
        for i in 0..n {
            if index.insert((tree_ids[i], node_ids[i]), i as u32).is_some() {
                bail!("tree {} declares node {} twice", tree_ids[i], node_ids[i]);
            }
            if i == 0 || tree_ids[i] != tree_ids[i - 1] {
                roots.push(i as u32);
            }
        }
        let child = |i: usize, id: i64| -> Result<u32> {
            index.get(&(tree_ids[i], id)).copied().with_context(|| {
                format!(
                    "tree {} has no node {id}, which node {} branches to",
                    tree_ids[i], node_ids[i]
                )
            })
        };
        let mut raw = Vec::with_capacity(n);
        for i in 0..n {
            let mode = mode_code(&modes[i])?;
            let (t, f) = if mode == LEAF {
                (0, 0)
            } else {
                (child(i, trues[i])?, child(i, falses[i])?)
            };
            raw.push(RawNode {
                value: values.get(i).copied().unwrap_or(0.0),
                feature: features[i],
                mode,
                missing_true: missing.get(i).is_some_and(|&m| m != 0),
                t,
                f,
                weights: Vec::new(),
                members: Vec::new(),
            });
        }
        let w_trees = a.ints(&format!("{prefix}_treeids"));
        let w_nodes = a.ints(&format!("{prefix}_nodeids"));
        let w_ids = a.ints(&format!("{prefix}_ids"));
        let w_values = a.floats_or_tensor(&format!("{prefix}_weights"))?;
        let m = w_trees.len();
        ensure!(
            w_nodes.len() == m && w_ids.len() == m && w_values.len() == m,
            "{prefix}_treeids, {prefix}_nodeids, {prefix}_ids and {prefix}_weights differ in length"
        );
        for k in 0..m {
            let i = *index.get(&(w_trees[k], w_nodes[k])).with_context(|| {
                format!(
                    "{prefix} weight {k} names tree {} node {}, which does not exist",
                    w_trees[k], w_nodes[k]
                )
            })?;
            let r = &mut raw[i as usize];
            ensure!(
                r.mode == LEAF,
                "{prefix} weight {k} sits on node {i}, which is not a leaf"
            );
            ensure!(
                (0..n_targets as i64).contains(&w_ids[k]),
                "{prefix}_ids[{k}] = {} but there are {n_targets}",
                w_ids[k]
            );
            r.weights.push((w_ids[k] as u32, w_values[k]));
        }
        Forest::build(raw, roots, n_targets, aggregate)
    }

    /// Reads the ai.onnx.ml 5 `TreeEnsemble` attributes.
    fn from_v5(node: &NodeProto) -> Result<(Forest, PostTransform)> {
        let a = Attrs::new(node);
        let splits = a.tensor_f64("nodes_splits")?;
        let features = a.ints("nodes_featureids");
        let modes = a.tensor_i64("nodes_modes")?;
        let trues = a.ints("nodes_truenodeids");
        let falses = a.ints("nodes_falsenodeids");
        let true_leafs = a.ints("nodes_trueleafs");
        let false_leafs = a.ints("nodes_falseleafs");
        let missing = a.ints("nodes_missing_value_tracks_true");
        let leaf_targets = a.ints("leaf_targetids");
        let leaf_weights = a.tensor_f64("leaf_weights")?;
        let roots = a.ints("tree_roots");
        let members = a.tensor_f64("membership_values")?;
        let n_targets = a
            .int("n_targets")
            .context("attribute `n_targets` is required")?;
        ensure!(
            (1..1 << 20).contains(&n_targets),
            "n_targets is {n_targets}"
        );
        let aggregate = match a.int("aggregate_function").unwrap_or(1) {
            0 => Aggregate::Average,
            1 => Aggregate::Sum,
            2 => Aggregate::Min,
            3 => Aggregate::Max,
            other => bail!("aggregate_function {other} is not one ONNX defines (0 to 3)"),
        };
        let post = PostTransform::from_code(a.int("post_transform").unwrap_or(0))?;
        let n = splits.len();
        for (name, len) in [
            ("nodes_featureids", features.len()),
            ("nodes_modes", modes.len()),
            ("nodes_truenodeids", trues.len()),
            ("nodes_falsenodeids", falses.len()),
            ("nodes_trueleafs", true_leafs.len()),
            ("nodes_falseleafs", false_leafs.len()),
        ] {
            ensure!(len == n, "{name} has {len} entries, nodes_splits {n}");
        }
        ensure!(
            missing.is_empty() || missing.len() == n,
            "nodes_missing_value_tracks_true has {} entries, nodes_splits {n}",
            missing.len()
        );
        let l = leaf_weights.len();
        ensure!(
            leaf_targets.len() == l,
            "leaf_targetids has {} entries, leaf_weights {l}",
            leaf_targets.len()
        );
        // Interior nodes keep their indices; leaves follow them.
        let mut raw: Vec<RawNode> = Vec::with_capacity(n + l);
        let at = |leaf: bool, id: i64, what: &str| -> Result<u32> {
            let (limit, base) = if leaf { (l, n) } else { (n, 0) };
            ensure!(
                (0..limit as i64).contains(&id),
                "{what} {id} does not exist"
            );
            Ok((base + id as usize) as u32)
        };
        for i in 0..n {
            let mode = match modes[i] {
                m @ 0..=6 => m as u8,
                other => bail!("nodes_modes[{i}] = {other} is not a mode (0 to 6)"),
            };
            raw.push(RawNode {
                value: splits[i],
                feature: features[i],
                mode,
                missing_true: missing.get(i).is_some_and(|&m| m != 0),
                t: at(true_leafs[i] != 0, trues[i], "nodes_truenodeids")?,
                f: at(false_leafs[i] != 0, falses[i], "nodes_falsenodeids")?,
                weights: Vec::new(),
                members: Vec::new(),
            });
        }
        for k in 0..l {
            ensure!(
                (0..n_targets).contains(&leaf_targets[k]),
                "leaf_targetids[{k}] = {} but n_targets is {n_targets}",
                leaf_targets[k]
            );
            raw.push(RawNode {
                value: 0.0,
                feature: 0,
                mode: LEAF,
                missing_true: false,
                t: 0,
                f: 0,
                weights: vec![(leaf_targets[k] as u32, leaf_weights[k])],
                members: Vec::new(),
            });
        }
        // Set members are listed in the order the trees are built (true branch first),
        // each set ended by a NaN, as the reference implementation reads them.
        let mut sets = members.split(|v| v.is_nan()).map(<[f64]>::to_vec);
        let mut root_ids = Vec::with_capacity(roots.len());
        for &r in &roots {
            ensure!(
                (0..n as i64).contains(&r),
                "tree_roots holds {r}, but there are {n} nodes"
            );
            let r = r as usize;
            // A tree that is a single leaf: both branches name the same leaf.
            if true_leafs[r] != 0 && false_leafs[r] != 0 && trues[r] == falses[r] {
                root_ids.push(raw[r].t);
                continue;
            }
            root_ids.push(r as u32);
            let mut stack = vec![r];
            let mut guard = 0usize;
            while let Some(i) = stack.pop() {
                guard += 1;
                ensure!(
                    guard <= n + 1,
                    "a tree of the ensemble loops back on itself"
                );
                if raw[i].mode == MEMBER {
                    raw[i].members = sets.next().context(
                        "membership_values holds fewer sets than there are BRANCH_MEMBER nodes",
                    )?;
                }
                for c in [raw[i].f as usize, raw[i].t as usize] {
                    if c < n {
                        stack.push(c);
                    }
                }
            }
        }
        Ok((
            Forest::build(raw, root_ids, n_targets as usize, aggregate)?,
            post,
        ))
    }

    /// Scores of one example (`row`), aggregated over every tree: `scores` and
    /// `has` are `n_targets` long and reset here.
    #[inline]
    fn row<T: Float>(&self, a: &Arrays<T>, row: &[T], scores: &mut [T], has: &mut [bool]) {
        scores.iter_mut().for_each(|s| *s = T::default());
        has.iter_mut().for_each(|h| *h = false);
        let nodes = a.nodes.as_slice();
        for &root in &self.roots {
            let mut i = root as usize;
            let mut n = nodes[i];
            while n.mode & MODE != LEAF {
                let x = row[n.feature as usize];
                let v = n.value;
                let go = match n.mode & MODE {
                    LEQ => x <= v,
                    LT => x < v,
                    GTE => x >= v,
                    GT => x > v,
                    EQ => x == v,
                    NEQ => x != v,
                    _ => a.members[&(i as u32)].contains(x),
                } || (n.mode & MISSING_TRUE != 0 && x.is_nan());
                i = if go { n.t } else { n.f } as usize;
                n = nodes[i];
            }
            for k in n.t as usize..n.f as usize {
                let (t, w) = (self.targets[k] as usize, a.weights[k]);
                match self.aggregate {
                    Aggregate::Sum | Aggregate::Average => scores[t] = scores[t] + w,
                    Aggregate::Min => {
                        if !has[t] || w < scores[t] {
                            scores[t] = w
                        }
                    }
                    Aggregate::Max => {
                        if !has[t] || w > scores[t] {
                            scores[t] = w
                        }
                    }
                }
                has[t] = true;
            }
        }
    }

    /// Runs `each(example, scores, has)` for every example of `x` (`rows × width`).
    fn for_each_row<T: Float>(
        &self,
        x: &[T],
        width: usize,
        mut each: impl FnMut(usize, &mut [T], &mut [bool]),
    ) -> Result<()> {
        ensure!(
            width >= self.n_features,
            "the input has {width} features per example, but the tree ensemble reads feature {}",
            self.n_features - 1
        );
        let a = T::arrays(self);
        let mut scores = vec![T::default(); self.n_targets];
        let mut has = vec![false; self.n_targets];
        for (r, row) in x.chunks_exact(width.max(1)).enumerate() {
            self.row(a, row, &mut scores, &mut has);
            each(r, &mut scores, &mut has);
        }
        Ok(())
    }
}

/// `TreeEnsembleRegressor` and the opset-5 `TreeEnsemble`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeRegressor {
    pub(crate) forest: Forest,
    base_values: Vec<f64>,
    post: PostTransform,
    /// The opset-5 operator returns the input's precision; the older one f32.
    pub(crate) keeps_precision: bool,
}

impl TreeRegressor {
    pub(crate) fn from_node(node: &NodeProto) -> Result<TreeRegressor> {
        let a = Attrs::new(node);
        let n_targets = a.int("n_targets").unwrap_or(1);
        ensure!(
            (1..1 << 20).contains(&n_targets),
            "n_targets is {n_targets}"
        );
        let aggregate = Aggregate::parse(
            &a.string("aggregate_function")?
                .unwrap_or_else(|| "SUM".into()),
        )?;
        let post = PostTransform::of(&a)?;
        let base_values = a.floats_or_tensor("base_values")?;
        Ok(TreeRegressor {
            forest: Forest::from_classic(node, "target", n_targets as usize, aggregate)?,
            base_values,
            post,
            keeps_precision: false,
        })
    }

    pub(crate) fn from_v5(node: &NodeProto) -> Result<TreeRegressor> {
        let (forest, post) = Forest::from_v5(node)?;
        Ok(TreeRegressor {
            forest,
            base_values: Vec::new(),
            post,
            keeps_precision: true,
        })
    }

    /// `[rows, n_targets]` predictions for `x` (`rows × width`), in `T`.
    pub(crate) fn eval<T: Float>(&self, x: &[T], width: usize) -> Result<Vec<T>> {
        let f = &self.forest;
        let nt = f.n_targets;
        let n_trees = f.roots.len();
        let base: Vec<T> = self.base_values.iter().map(|&v| T::from_f64(v)).collect();
        // onnxruntime: one base value is an offset for a single target; n_targets
        // values are added per target; any other count is ignored.
        let origin = if base.len() == 1 {
            base[0]
        } else {
            T::default()
        };
        let use_base = base.len() == nt;
        let mut out = Vec::with_capacity(x.len() / width.max(1) * nt);
        let mut row_f32 = vec![0f32; nt];
        f.for_each_row(x, width, |_, scores, has| {
            if nt == 1 {
                let s = match f.aggregate {
                    Aggregate::Sum => scores[0] + origin,
                    Aggregate::Average => scores[0].div_usize(n_trees) + origin,
                    Aggregate::Min | Aggregate::Max => {
                        if has[0] {
                            scores[0] + origin
                        } else {
                            origin
                        }
                    }
                };
                // A single target takes PROBIT only; onnxruntime ignores the others.
                out.push(if self.post == PostTransform::Probit {
                    T::from_f64(f64::from(super::probit(s.to_f32())))
                } else {
                    s
                });
                return;
            }
            for j in 0..nt {
                let b = if use_base { base[j] } else { T::default() };
                scores[j] = match f.aggregate {
                    Aggregate::Sum => scores[j] + b,
                    Aggregate::Average => scores[j].div_usize(n_trees) + b,
                    Aggregate::Min | Aggregate::Max => {
                        b + if has[j] { scores[j] } else { T::default() }
                    }
                };
            }
            if self.post == PostTransform::None {
                out.extend_from_slice(scores);
            } else {
                for (o, s) in row_f32.iter_mut().zip(scores.iter()) {
                    *o = s.to_f32();
                }
                self.post.apply(&mut row_f32);
                out.extend(row_f32.iter().map(|&v| T::from_f64(f64::from(v))));
            }
        })?;
        Ok(out)
    }
}

/// `TreeEnsembleClassifier`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeClassifier {
    pub(crate) forest: Forest,
    pub(crate) labels: Labels,
    base_values: Vec<f64>,
    post: PostTransform,
    /// Two classes and every weight on the same class (how sklearn and the boosters
    /// write binary models).
    binary: bool,
    all_positive: bool,
}

impl TreeClassifier {
    pub(crate) fn from_node(node: &NodeProto) -> Result<TreeClassifier> {
        let a = Attrs::new(node);
        let labels = Labels::of(&a, "classlabels_int64s")?;
        let c = labels.len();
        ensure!(
            c >= 2,
            "the classifier declares {c} class labels; two or more are needed"
        );
        let post = PostTransform::of(&a)?;
        let base_values = a.floats_or_tensor("base_values")?;
        let forest = Forest::from_classic(node, "class", c, Aggregate::Sum)?;
        let ids: std::collections::BTreeSet<u32> = forest.targets.iter().copied().collect();
        let all_positive = forest.a64.weights.iter().all(|&w| w >= 0.0);
        Ok(TreeClassifier {
            forest,
            labels,
            base_values,
            post,
            binary: c == 2 && ids.len() == 1,
            all_positive,
        })
    }

    /// Score columns: two for two classes, else one per class.
    pub(crate) fn n_scores(&self) -> usize {
        self.labels.len()
    }

    /// The label picked and the `[rows, n_scores]` scores for `x`.
    pub(crate) fn eval<T: Float>(&self, x: &[T], width: usize) -> Result<(Vec<Pick>, Vec<f32>)> {
        let c = self.labels.len();
        let rows = x.len() / width.max(1);
        let mut picks = Vec::with_capacity(rows);
        let mut out = Vec::with_capacity(rows * c);
        let base: Vec<T> = self.base_values.iter().map(|&v| T::from_f64(v)).collect();
        let mut row = vec![0f32; c];
        self.forest.for_each_row(x, width, |_, scores, has| {
            if c > 2 {
                for k in 0..base.len().min(c) {
                    if has[k] {
                        scores[k] = scores[k] + base[k];
                    } else {
                        scores[k] = base[k];
                        has[k] = true;
                    }
                }
                let mut best: Option<usize> = None;
                for k in 0..c {
                    if has[k] && best.is_none_or(|b| scores[k] > scores[b]) {
                        best = Some(k);
                    }
                }
                picks.push(Pick::Class(best.unwrap_or(0)));
                for k in 0..c {
                    row[k] = if has[k] { scores[k].to_f32() } else { 0.0 };
                }
                self.post.apply(&mut row);
                out.extend_from_slice(&row);
            } else {
                let (pick, pair) = self.binary(scores, has, &base);
                picks.push(pick);
                out.extend_from_slice(&pair);
            }
        })?;
        Ok((picks, out))
    }

    /// onnxruntime's two-class rules, case by case (its `FinalizeScores` and
    /// `write_scores`): which scores survive, which label wins, and how one score
    /// becomes two columns.
    fn binary<T: Float>(&self, scores: &mut [T], has: &mut [bool], base: &[T]) -> (Pick, [f32; 2]) {
        let mut two = true; // false: the second score was dropped
        let mut second_class: i8 = -1;
        match base.len() {
            2 if has[1] => {
                scores[1] = base[1] + scores[0];
                scores[0] = T::from_f64(-f64::from(scores[1].to_f32()));
                has[1] = true;
            }
            2 => {
                scores[1] = scores[1] + base[1];
                scores[0] = scores[0] + base[0];
            }
            1 => {
                scores[0] = scores[0] + base[0];
                two = has[1];
            }
            0 => {
                second_class = 3;
                two = has[1];
            }
            _ => {}
        }
        let pos = if two && has[1] {
            scores[1]
        } else if has[0] {
            scores[0]
        } else {
            T::default()
        };
        let pos = pos.to_f32();
        let pick = if self.binary {
            if self.all_positive {
                second_class = if pos > 0.5 { 0 } else { 1 };
                Pick::Class(usize::from(pos > 0.5))
            } else {
                second_class = if pos > 0.0 { 2 } else { 3 };
                Pick::Class(usize::from(pos > 0.0))
            }
        } else {
            Pick::Raw(pos > 0.0)
        };
        let value = |k: usize| if has[k] { scores[k].to_f32() } else { 0.0 };
        let pair = if two {
            let mut pair = [value(0), value(1)];
            self.post.apply(&mut pair);
            pair
        } else {
            self.post.binary_pair(second_class, value(0))
        };
        (pick, pair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::AttributeProto;

    fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: v.to_vec(),
            ..Default::default()
        }
    }
    fn attr_floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            floats: v.to_vec(),
            ..Default::default()
        }
    }
    fn attr_strings(name: &str, v: &[&str]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    /// One stump on feature 0 at 0.5; leaf 1 (true) and leaf 2 (false) carry
    /// `weights` as `(leaf, class, weight)`.
    fn stump(weights: &[(i64, i64, f32)], extra: Vec<AttributeProto>) -> NodeProto {
        let mut attribute = vec![
            attr_ints("nodes_treeids", &[0, 0, 0]),
            attr_ints("nodes_nodeids", &[0, 1, 2]),
            attr_ints("nodes_featureids", &[0, 0, 0]),
            attr_floats("nodes_values", &[0.5, 0.0, 0.0]),
            attr_strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF"]),
            attr_ints("nodes_truenodeids", &[1, 0, 0]),
            attr_ints("nodes_falsenodeids", &[2, 0, 0]),
            attr_ints("class_treeids", &vec![0; weights.len()]),
            attr_ints(
                "class_nodeids",
                &weights.iter().map(|w| w.0).collect::<Vec<_>>(),
            ),
            attr_ints(
                "class_ids",
                &weights.iter().map(|w| w.1).collect::<Vec<_>>(),
            ),
            attr_floats(
                "class_weights",
                &weights.iter().map(|w| w.2).collect::<Vec<_>>(),
            ),
            attr_ints("classlabels_int64s", &[0, 1]),
        ];
        attribute.extend(extra);
        NodeProto {
            op_type: "TreeEnsembleClassifier".into(),
            attribute,
            ..Default::default()
        }
    }

    fn run(node: NodeProto) -> (Vec<Pick>, Vec<f32>) {
        TreeClassifier::from_node(&node)
            .unwrap()
            .eval(&[0f32, 1.0], 1)
            .unwrap()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() < 1e-6 || (x == y))
    }

    /// Each case's expected values were printed by onnxruntime 1.32 for the same node.
    #[test]
    fn binary_classifiers_answer_as_onnxruntime() {
        let post = |p: &str| {
            vec![AttributeProto {
                name: "post_transform".into(),
                s: p.as_bytes().to_vec(),
                ..Default::default()
            }]
        };
        let base = |v: &[f32]| vec![attr_floats("base_values", v)];
        let cases: Vec<(NodeProto, [usize; 2], [f32; 4])> = vec![
            (
                stump(&[(1, 1, 0.3), (2, 1, 0.8)], vec![]),
                [0, 1],
                [0.0, 0.3, 0.0, 0.8],
            ),
            (
                stump(&[(1, 1, 0.3), (2, 1, 0.8)], post("LOGISTIC")),
                [0, 1],
                [0.5, 0.574_442_5, 0.5, 0.689_974_5],
            ),
            (
                stump(&[(1, 0, -0.3), (2, 0, 0.8)], vec![]),
                [0, 1],
                [0.3, -0.3, -0.8, 0.8],
            ),
            (
                stump(&[(1, 0, -0.3), (2, 0, 0.8)], post("LOGISTIC")),
                [0, 1],
                [0.574_442_5, 0.425_557_5, 0.310_025_5, 0.689_974_5],
            ),
            (
                stump(&[(1, 0, 0.3), (2, 0, 0.8)], vec![]),
                [0, 1],
                [0.7, 0.3, 0.2, 0.8],
            ),
            (
                stump(&[(1, 1, -0.3), (2, 1, 0.8)], base(&[0.25, 0.5])),
                [1, 1],
                [0.0, 0.5, 0.0, 0.5],
            ),
            (
                stump(&[(1, 0, -0.3), (2, 0, 0.8)], base(&[0.25, 0.5])),
                [0, 1],
                [-0.05, 0.0, 1.05, 0.0],
            ),
            (stump(&[(2, 1, 0.8)], vec![]), [0, 1], [1.0, 0.0, 0.0, 0.8]),
            (
                stump(&[(1, 1, 0.3), (2, 1, 0.8)], post("SOFTMAX_ZERO")),
                [0, 1],
                [0.0, 1.0, 0.0, 1.0],
            ),
        ];
        for (i, (node, labels, scores)) in cases.into_iter().enumerate() {
            let (picks, got) = run(node);
            assert_eq!(picks, labels.map(Pick::Class).to_vec(), "case {i}");
            assert!(close(&got, &scores), "case {i}: {got:?} != {scores:?}");
        }
        // Weights on both classes: not "binary", so the label is 1 when class 1's
        // score is positive, whatever the other class scored.
        let (picks, got) = run(stump(
            &[(1, 0, 0.7), (1, 1, 0.3), (2, 0, 0.2), (2, 1, 0.8)],
            base(&[0.1, 0.2]),
        ));
        assert_eq!(picks, vec![Pick::Raw(true), Pick::Raw(true)]);
        assert!(close(&got, &[-0.9, 0.9, -0.4, 0.4]), "{got:?}");
    }

    #[test]
    fn malformed_trees_are_refused_with_the_reason() {
        let mut node = stump(&[(1, 1, 0.3)], vec![]);
        node.attribute[5] = attr_ints("nodes_truenodeids", &[0, 0, 0]);
        let err = TreeClassifier::from_node(&node).unwrap_err().to_string();
        assert!(err.contains("loops back"), "{err}");
        let node = stump(&[(0, 1, 0.3)], vec![]);
        let err = TreeClassifier::from_node(&node).unwrap_err().to_string();
        assert!(err.contains("not a leaf"), "{err}");
        let node = stump(&[(1, 3, 0.3)], vec![]);
        let err = TreeClassifier::from_node(&node).unwrap_err().to_string();
        assert!(err.contains("class_ids[0] = 3"), "{err}");
    }
}
