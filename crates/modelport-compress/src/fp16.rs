//! Half precision: float32 weights and computation to float16, with Casts at the
//! boundaries.
//!
//! What onnxconverter-common's `convert_float_to_float16(keep_io_types=True)` does,
//! with one difference in approach: an operator runs in float16 only when it is on
//! [`HALF_OPS`], the operators known to take float16 and to give their input's type
//! back; every other node (and every node of another domain, such as `ai.onnx.ml`)
//! stays float32, with Casts around it. onnxconverter-common converts everything
//! except a block list; an allow list cannot produce a model whose types do not line
//! up. The block list it keeps by default (`Resize`, `Range`, `TopK`, `CumSum`,
//! `Min`, `Max`, `NonMaxSuppression`, `RoiAlign`, `Upsample`, the ML operators) is
//! absent from [`HALF_OPS`], and so stays float32 here too.
//!
//! Graph inputs and outputs keep float32: modelport's wire codecs carry float32, and
//! the endpoint's contract does not change with the weights. Weights beyond the
//! float16 range are clamped to ±65504 and counted; those below its smallest
//! subnormal become 0 and are counted too.

use std::collections::{BTreeMap, HashMap, HashSet};

use half::f16;
use tract_onnx::pb;

use crate::error::Result;
use crate::onnx::{self, FLOAT, FLOAT16, Model, Names};

/// Operators that run in float16 (default domain).
pub const HALF_OPS: &[&str] = &[
    "Abs",
    "Add",
    "ArgMax",
    "ArgMin",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Cos",
    "DepthToSpace",
    "Div",
    "Dropout",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "InstanceNormalization",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "Log",
    "LogSoftmax",
    "MatMul",
    "MaxPool",
    "Mish",
    "Mul",
    "Neg",
    "Pad",
    "Pow",
    "PRelu",
    "Reciprocal",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Round",
    "Selu",
    "Shape",
    "Sigmoid",
    "Sign",
    "Sin",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// The float16 limit; larger weights are clamped to it.
const F16_MAX: f32 = 65504.0;

/// What [`convert`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Fp16Stats {
    /// Nodes that now run in float16.
    pub half_nodes: usize,
    /// Nodes left in float32 by operator type (not safe or not known in half
    /// precision, or excluded).
    pub float32_nodes: BTreeMap<String, usize>,
    /// Weights converted to float16.
    pub converted_weights: usize,
    /// Weight values beyond ±65504, clamped.
    pub clamped: usize,
    /// Non-zero weight values below float16's smallest subnormal, now 0.
    pub flushed_to_zero: usize,
    /// Cast nodes added at float16/float32 boundaries.
    pub casts: usize,
}

/// Whether node `n` can run in float16.
pub fn is_half_op(n: &pb::NodeProto) -> bool {
    let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
    let has_subgraph = n
        .attribute
        .iter()
        .any(|a| a.g.is_some() || !a.graphs.is_empty());
    let constant_ok =
        n.op_type != "Constant" || onnx::attr(n, "value").is_some_and(|a| a.t.is_some());
    default_domain && !has_subgraph && constant_ok && HALF_OPS.contains(&n.op_type.as_str())
}

/// Nodes [`convert`] would run in float16, given `excluded` node indices.
pub fn units(model: &Model, excluded: &HashSet<usize>) -> Vec<usize> {
    model
        .graph()
        .node
        .iter()
        .enumerate()
        .filter(|(i, n)| !excluded.contains(i) && is_half_op(n))
        .map(|(i, _)| i)
        .collect()
}

fn to_half(values: &[f32], stats: &mut Fp16Stats) -> Vec<f16> {
    values
        .iter()
        .map(|&v| {
            let clamped = if v.is_finite() && v.abs() > F16_MAX {
                stats.clamped += 1;
                v.signum() * F16_MAX
            } else {
                v
            };
            let h = f16::from_f32(clamped);
            if clamped != 0.0 && clamped.is_finite() && h.to_f32() == 0.0 {
                stats.flushed_to_zero += 1;
            }
            h
        })
        .collect()
}

/// A float32 tensor as float16, same name and dims; `None` for other types.
fn half_tensor(
    t: &pb::TensorProto,
    name: &str,
    stats: &mut Fp16Stats,
) -> Result<Option<pb::TensorProto>> {
    Ok(onnx::f32_values(t)?.map(|v| onnx::f16_tensor(name, &t.dims, &to_half(&v, stats))))
}

/// Rewrites each float16 `Gemm` as `MatMul` (+ `Add` for its bias): tract's Gemm
/// multiplies by float32 `alpha`/`beta` constants and cannot run it in half
/// precision. A Gemm the rewrite cannot express (transA, alpha or beta not 1, a
/// transposed weight that is not an initializer) stays float32. Returns the
/// float16 flag of each node of the rewritten graph.
fn gemm_as_matmul(
    graph: &mut pb::GraphProto,
    half: Vec<bool>,
    names: &mut Names,
) -> Result<Vec<bool>> {
    let readers = onnx::consumers(graph);
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut flags = Vec::with_capacity(graph.node.len());
    let old = std::mem::take(&mut graph.node);
    for (i, n) in old.into_iter().enumerate() {
        if !half[i] || n.op_type != "Gemm" {
            nodes.push(n);
            flags.push(half[i]);
            continue;
        }
        let one = |name: &str| onnx::attr_float(&n, name, 1.0) == 1.0;
        let trans_b = onnx::attr_int(&n, "transB", 0) != 0;
        let b = n.input[1].clone();
        let b_init = graph
            .initializer
            .iter()
            .position(|t| t.name == b && t.data_type == FLOAT && t.dims.len() == 2);
        if onnx::attr_int(&n, "transA", 0) != 0
            || !one("alpha")
            || !one("beta")
            || (trans_b && b_init.is_none())
        {
            nodes.push(n);
            flags.push(false);
            continue;
        }
        let mut weight = b.clone();
        if trans_b {
            let t = &graph.initializer[b_init.expect("checked")];
            let values = onnx::f32_values(t)?.expect("float");
            let v = onnx::transpose(&values, t.dims[0] as usize, t.dims[1] as usize);
            let only_here = readers.get(&b).is_some_and(|r| r.len() == 1);
            weight = if only_here {
                b.clone()
            } else {
                names.fresh(&format!("{b}.transposed"))
            };
            let transposed = onnx::f32_tensor(&weight, &[t.dims[1], t.dims[0]], &v);
            if only_here {
                graph.initializer[b_init.expect("checked")] = transposed;
            } else {
                graph.initializer.push(transposed);
            }
        }
        let label = onnx::node_label(&n);
        match n.input.get(2).filter(|c| !c.is_empty()) {
            None => {
                nodes.push(onnx::node(
                    "MatMul",
                    n.name.clone(),
                    &[&n.input[0], &weight],
                    &[&n.output[0]],
                    vec![],
                ));
                flags.push(true);
            }
            Some(c) => {
                let product = names.fresh(&format!("{label}.product"));
                nodes.push(onnx::node(
                    "MatMul",
                    n.name.clone(),
                    &[&n.input[0], &weight],
                    &[&product],
                    vec![],
                ));
                nodes.push(onnx::node(
                    "Add",
                    names.fresh(&format!("{label}.bias")),
                    &[&product, c],
                    &[&n.output[0]],
                    vec![],
                ));
                flags.extend([true, true]);
            }
        }
    }
    graph.node = nodes;
    Ok(flags)
}

/// Converts `model` to float16 in place, except the nodes in `excluded`.
pub fn convert(model: &mut Model, excluded: &HashSet<usize>) -> Result<Fp16Stats> {
    let mut stats = Fp16Stats::default();
    let mut graph = model.graph().clone();
    let mut names = Names::of(&graph);
    let half: Vec<bool> = (0..graph.node.len())
        .map(|i| !excluded.contains(&i) && is_half_op(&graph.node[i]))
        .collect();
    let half = gemm_as_matmul(&mut graph, half, &mut names)?;
    let types = onnx::value_types(&graph);
    let consumers = onnx::consumers(&graph);
    // Values whose name and float32 type must stay: the graph's outputs and what
    // subgraphs read from this graph.
    let mut pinned: HashSet<String> = onnx::outer_references(&graph).into_iter().collect();
    pinned.extend(graph.output.iter().map(|o| o.name.clone()));
    let is_float = |name: &str| types.get(name) == Some(&FLOAT);

    // For each float32 value: the names under which it exists as float32 and float16.
    let mut available: HashMap<String, HashMap<i32, String>> = HashMap::new();
    for input in &graph.input {
        available
            .entry(input.name.clone())
            .or_default()
            .insert(FLOAT, input.name.clone());
    }
    // Initializers: float16 when only float16 nodes read them, both when mixed.
    let mut initializers = Vec::with_capacity(graph.initializer.len());
    for t in &graph.initializer {
        let readers = consumers.get(&t.name).map(Vec::as_slice).unwrap_or(&[]);
        let any_half = readers.iter().any(|&i| half[i]);
        let all_half =
            !readers.is_empty() && readers.iter().all(|&i| half[i]) && !pinned.contains(&t.name);
        let entry = available.entry(t.name.clone()).or_default();
        if t.data_type != FLOAT || !any_half {
            entry.insert(t.data_type, t.name.clone());
            initializers.push(t.clone());
            continue;
        }
        stats.converted_weights += 1;
        if all_half {
            initializers.push(half_tensor(t, &t.name, &mut stats)?.expect("float"));
            entry.insert(FLOAT16, t.name.clone());
        } else {
            let name = names.fresh(&format!("{}.fp16", t.name));
            initializers.push(t.clone());
            initializers.push(half_tensor(t, &name, &mut stats)?.expect("float"));
            entry.insert(FLOAT, t.name.clone());
            entry.insert(FLOAT16, name);
        }
    }
    let external_like: Vec<(String, String)> = available
        .iter()
        .filter_map(|(orig, m)| {
            m.get(&FLOAT16)
                .filter(|n| *n != orig)
                .map(|n| (n.clone(), orig.clone()))
        })
        .collect();

    let mut front: Vec<pb::NodeProto> = Vec::new();
    let mut after: HashMap<usize, Vec<pb::NodeProto>> = HashMap::new();
    let mut producer: HashMap<String, usize> = HashMap::new();
    let mut nodes = graph.node.clone();
    // Values stored as float16 under their own name, for value_info.
    let mut now_half: HashSet<String> = HashSet::new();
    for (t, m) in &available {
        if m.get(&FLOAT16) == Some(t) {
            now_half.insert(t.clone());
        }
    }

    for i in 0..nodes.len() {
        let need_half = half[i];
        for slot in 0..nodes[i].input.len() {
            let x = nodes[i].input[slot].clone();
            if x.is_empty() || !is_float(&x) {
                continue;
            }
            let need = if need_half { FLOAT16 } else { FLOAT };
            let have = available.entry(x.clone()).or_default();
            let name = match have.get(&need) {
                Some(n) => n.clone(),
                None => {
                    let Some((&from, source)) = have.iter().next().map(|(k, v)| (k, v.clone()))
                    else {
                        // Produced by nothing this pass knows (an outer value): as is.
                        continue;
                    };
                    debug_assert_ne!(from, need);
                    let suffix = if need == FLOAT16 { "fp16" } else { "fp32" };
                    let cast_out = names.fresh(&format!("{x}.{suffix}"));
                    let cast = onnx::node(
                        "Cast",
                        names.fresh(&format!("{x}.cast_{suffix}")),
                        &[&source],
                        &[&cast_out],
                        vec![onnx::int_attr("to", i64::from(need))],
                    );
                    stats.casts += 1;
                    match producer.get(&x) {
                        Some(&p) => after.entry(p).or_default().push(cast),
                        None => front.push(cast),
                    }
                    have.insert(need, cast_out.clone());
                    cast_out
                }
            };
            nodes[i].input[slot] = name;
        }
        let node = &mut nodes[i];
        if need_half {
            stats.half_nodes += 1;
            match node.op_type.as_str() {
                "Cast" => {
                    for a in node
                        .attribute
                        .iter_mut()
                        .filter(|a| a.name == "to" && a.i == i64::from(FLOAT))
                    {
                        a.i = i64::from(FLOAT16);
                    }
                }
                "Constant" | "ConstantOfShape" => {
                    let mut has_value = false;
                    for a in node.attribute.iter_mut().filter(|a| a.name == "value") {
                        has_value = true;
                        if let Some(t) = a.t.as_ref()
                            && let Some(h) = half_tensor(t, &t.name, &mut stats)?
                        {
                            stats.converted_weights += 1;
                            a.t = Some(h);
                        }
                    }
                    if !has_value && node.op_type == "ConstantOfShape" {
                        // The default value is float32 0.
                        node.attribute.push(pb::AttributeProto {
                            name: "value".into(),
                            r#type: 4,
                            t: Some(onnx::f16_tensor("", &[1], &[f16::ZERO])),
                            ..Default::default()
                        });
                    }
                }
                _ => {}
            }
        } else {
            *stats.float32_nodes.entry(node.op_type.clone()).or_default() += 1;
        }
        for slot in 0..node.output.len() {
            let y = node.output[slot].clone();
            if y.is_empty() {
                continue;
            }
            producer.insert(y.clone(), i);
            let t = types.get(&y).copied();
            if !need_half || t != Some(FLOAT) {
                if let Some(t) = t {
                    available.entry(y.clone()).or_default().insert(t, y.clone());
                }
                continue;
            }
            if pinned.contains(&y) {
                let renamed = names.fresh(&format!("{y}.fp16"));
                node.output[slot] = renamed.clone();
                let cast = onnx::node(
                    "Cast",
                    names.fresh(&format!("{y}.cast_fp32")),
                    &[&renamed],
                    &[&y],
                    vec![onnx::int_attr("to", i64::from(FLOAT))],
                );
                stats.casts += 1;
                after.entry(i).or_default().push(cast);
                let entry = available.entry(y.clone()).or_default();
                entry.insert(FLOAT16, renamed);
                entry.insert(FLOAT, y);
            } else {
                available
                    .entry(y.clone())
                    .or_default()
                    .insert(FLOAT16, y.clone());
                now_half.insert(y);
            }
        }
    }

    let mut ordered = front;
    for (i, n) in nodes.into_iter().enumerate() {
        ordered.push(n);
        ordered.extend(after.remove(&i).unwrap_or_default());
    }
    let g = model.graph_mut();
    g.node = ordered;
    g.initializer = initializers;
    for v in g
        .value_info
        .iter_mut()
        .filter(|v| now_half.contains(&v.name))
    {
        if let Some(pb::type_proto::Value::TensorType(t)) =
            v.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            t.elem_type = FLOAT16;
        }
    }
    for (name, orig) in external_like {
        if model.external.contains(&orig)
            && let Some(t) = model.graph().initializer.iter().find(|t| t.name == name)
            && t.raw_data.len() >= 1024
        {
            model.external.insert(name);
        }
    }
    Ok(stats)
}
