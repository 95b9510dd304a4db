//! Eight-bit weights, and magnitude pruning.
//!
//! - **Weight-only** (`int8`): each weight of a MatMul, Gemm, Conv or Gather becomes
//!   an int8 initializer and a `DequantizeLinear` that gives the float32 weight back
//!   at load time: the file holds a quarter of the bytes, the arithmetic stays
//!   float32, and every engine that reads ONNX runs it.
//! - **Dynamic** (`int8-dynamic`): what onnxruntime's `quantize_dynamic` makes. The
//!   activation is quantized at run time by `DynamicQuantizeLinear` (uint8), the
//!   product is `MatMulInteger` or `ConvInteger` in int32, then scaled back to
//!   float32. `ConvInteger` takes uint8 weights (onnxruntime has no int8 kernel for
//!   it), stored as the int8 value + 128 with zero point 128: the same numbers.
//!
//! Quantization is symmetric (zero point 0, scale = max|w| / 127), per tensor or per
//! output channel (`per_channel`): axis 0 of a Conv weight `[M, C, kh, kw]`, the
//! output column of a MatMul weight `[K, N]`, the row of a Gather table.

use std::collections::{BTreeMap, HashMap, HashSet};

use tract_onnx::pb;

use crate::error::{CompressError, Result};
use crate::onnx::{self, FLOAT, Model, Names};

/// Which kind of eight-bit model to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    WeightOnly,
    Dynamic,
}

/// What [`quantize`] or [`prune`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Int8Stats {
    /// Weights stored in eight bits.
    pub quantized_weights: usize,
    /// Nodes that now compute in integers (`int8-dynamic`).
    pub integer_nodes: usize,
    /// Nodes with a weight left in float32, by operator type, and why.
    pub skipped: BTreeMap<String, String>,
}

/// Magnitude pruning's effect.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneStats {
    pub weights: usize,
    pub elements: usize,
    pub zeros_before: usize,
    pub zeros_after: usize,
}

/// A weight, and whether its reader needs it as ConvInteger's uint8 and turned
/// around (a Gemm with transB=1).
type WeightForm = (String, bool, bool);

/// An integer weight's initializer names (values, zero point) and its scales.
type IntWeight = (String, String, Vec<f32>);

/// A weight a node reads: the input slot, and the axis of its output channels.
struct WeightUse {
    slot: usize,
    axis: usize,
}

/// The weight of node `n` that [`quantize`] would store in eight bits, if any.
fn weight_of(
    n: &pb::NodeProto,
    inits: &HashMap<&str, &pb::TensorProto>,
    mode: Mode,
) -> Option<WeightUse> {
    if !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return None;
    }
    let (slot, axis) = match n.op_type.as_str() {
        "MatMul" => (1, None),
        "Gemm" => (
            1,
            Some(if onnx::attr_int(n, "transB", 0) != 0 {
                0
            } else {
                1
            }),
        ),
        "Conv" => (1, Some(0)),
        // Embedding tables: one scale per row (token).
        "Gather" if onnx::attr_int(n, "axis", 0) == 0 => (0, Some(0)),
        _ => return None,
    };
    let t = inits.get(n.input.get(slot)?.as_str())?;
    if t.data_type != FLOAT || t.dims.len() < 2 {
        return None;
    }
    let axis = axis.unwrap_or(t.dims.len() - 1);
    // Dynamic MatMulInteger reads a 2-D weight; batched weights stay weight-only.
    if mode == Mode::Dynamic && n.op_type == "MatMul" && t.dims.len() != 2 {
        return None;
    }
    Some(WeightUse { slot, axis })
}

/// Nodes whose weight [`quantize`] or [`prune`] (`prune_only`: no Gather tables)
/// would change, given `excluded`, with the weight each one reads.
fn weight_readers(
    model: &Model,
    excluded: &HashSet<usize>,
    mode: Mode,
    prune_only: bool,
) -> Vec<(usize, String)> {
    let g = model.graph();
    let inits: HashMap<&str, &pb::TensorProto> =
        g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    g.node
        .iter()
        .enumerate()
        .filter(|(i, _)| !excluded.contains(i))
        .filter(|(_, n)| !(prune_only && n.op_type == "Gather"))
        .filter_map(|(i, n)| weight_of(n, &inits, mode).map(|u| (i, n.input[u.slot].clone())))
        .collect()
}

/// Nodes whose weight [`quantize`] or [`prune`] would change, given `excluded`.
pub fn units(model: &Model, excluded: &HashSet<usize>, mode: Mode, prune_only: bool) -> Vec<usize> {
    weight_readers(model, excluded, mode, prune_only)
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

/// Symmetric int8 values and scales of `w` (dims `dims`) along `axis`, or per tensor.
fn quantize_values(w: &[f32], dims: &[i64], axis: Option<usize>) -> (Vec<i8>, Vec<f32>) {
    let dims: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
    let (channels, inner) = match axis {
        Some(a) => (dims[a], dims[a + 1..].iter().product::<usize>()),
        None => (1, w.len()),
    };
    let channel_of = |i: usize| {
        if channels == 1 {
            0
        } else {
            (i / inner) % channels
        }
    };
    let mut max = vec![0f32; channels];
    for (i, v) in w.iter().enumerate() {
        if v.is_finite() {
            let c = channel_of(i);
            max[c] = max[c].max(v.abs());
        }
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = scales[channel_of(i)];
            (v / s).round().clamp(-127.0, 127.0) as i8
        })
        .collect();
    (q, scales)
}

/// Quantizes the weights of `model` in place, except the nodes in `excluded`.
pub fn quantize(
    model: &mut Model,
    excluded: &HashSet<usize>,
    mode: Mode,
    per_channel: bool,
) -> Result<Int8Stats> {
    let opset = model.opset();
    let need = match mode {
        Mode::Dynamic => 11,
        Mode::WeightOnly if per_channel => 13,
        Mode::WeightOnly => 10,
    };
    if opset < need {
        return Err(CompressError::Unsupported {
            reason: format!(
                "this model imports operator set {opset}; {} needs {need} or later",
                match mode {
                    Mode::Dynamic => "DynamicQuantizeLinear",
                    Mode::WeightOnly if per_channel => "a per-channel DequantizeLinear",
                    Mode::WeightOnly => "DequantizeLinear",
                }
            ),
            hint: "re-export the model with a newer opset (torch.onnx.export(opset_version=17), \
                   skl2onnx target_opset=17)"
                .into(),
        });
    }
    let mut stats = Int8Stats::default();
    let graph = model.graph().clone();
    let mut names = Names::of(&graph);
    let inits: HashMap<&str, &pb::TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let types = onnx::value_types(&graph);
    let graph_outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();

    // Weight-only targets: each weight once, with the axis all its readers agree on.
    let mut weight_axis: BTreeMap<String, Option<usize>> = BTreeMap::new();
    let mut dynamic_nodes: Vec<usize> = Vec::new();
    for (i, n) in graph.node.iter().enumerate() {
        if excluded.contains(&i) {
            continue;
        }
        let Some(u) = weight_of(n, &inits, mode) else {
            continue;
        };
        let dynamic = mode == Mode::Dynamic
            && n.op_type != "Gather"
            && types.get(&n.input[0]) == Some(&FLOAT)
            && dynamic_ok(n, &inits, &mut stats);
        if dynamic {
            dynamic_nodes.push(i);
            continue;
        }
        if mode == Mode::Dynamic && n.op_type != "Gather" {
            // dynamic_ok said why; the weight stays float32.
            continue;
        }
        let axis = per_channel.then_some(u.axis);
        weight_axis
            .entry(n.input[u.slot].clone())
            .and_modify(|a| {
                if *a != axis {
                    *a = None;
                }
            })
            .or_insert(axis);
    }

    let mut front: Vec<pb::NodeProto> = Vec::new();
    for (w, axis) in &weight_axis {
        let t = inits[w.as_str()];
        let values = onnx::f32_values(t)?.expect("float");
        let (q, scales) = quantize_values(&values, &t.dims, *axis);
        let qn = names.fresh(&format!("{w}.int8"));
        let sn = names.fresh(&format!("{w}.scale"));
        let zn = names.fresh(&format!("{w}.zero_point"));
        let sdims: Vec<i64> = if axis.is_some() {
            vec![scales.len() as i64]
        } else {
            vec![]
        };
        model.add_initializer(onnx::i8_tensor(&qn, &t.dims, &q), w);
        model.add_initializer(onnx::f32_tensor(&sn, &sdims, &scales), w);
        model.add_initializer(onnx::i8_tensor(&zn, &sdims, &vec![0; scales.len()]), w);
        let mut attrs = Vec::new();
        if let Some(a) = axis {
            attrs.push(onnx::int_attr("axis", *a as i64));
        }
        front.push(onnx::node(
            "DequantizeLinear",
            names.fresh(&format!("{w}.dequantize")),
            &[&qn, &sn, &zn],
            &[w],
            attrs,
        ));
        model.remove_initializer(w);
        stats.quantized_weights += 1;
    }

    // Dynamic: one DynamicQuantizeLinear per activation, one integer weight per weight.
    let mut activation: HashMap<String, [String; 3]> = HashMap::new();
    let mut replaced: HashMap<usize, Vec<pb::NodeProto>> = HashMap::new();
    // By weight, and by the form each reader needs it in (ConvInteger's uint8, a
    // Gemm weight turned around).
    let mut int_weights: HashMap<WeightForm, IntWeight> = HashMap::new();
    for &i in &dynamic_nodes {
        let n = &graph.node[i];
        let mut out: Vec<pb::NodeProto> = Vec::new();
        let x = &n.input[0];
        let [xq, xs, xz] = activation
            .entry(x.clone())
            .or_insert_with(|| {
                let names3 = [
                    names.fresh(&format!("{x}.quantized")),
                    names.fresh(&format!("{x}.scale")),
                    names.fresh(&format!("{x}.zero_point")),
                ];
                out.push(onnx::node(
                    "DynamicQuantizeLinear",
                    names.fresh(&format!("{x}.dynamic_quantize")),
                    &[x],
                    &[&names3[0], &names3[1], &names3[2]],
                    vec![],
                ));
                names3
            })
            .clone();
        let w = &n.input[1];
        let t = inits[w.as_str()];
        let conv = n.op_type == "Conv";
        let transposed = n.op_type == "Gemm" && onnx::attr_int(n, "transB", 0) != 0;
        let form = (w.clone(), conv, transposed);
        if !int_weights.contains_key(&form) {
            let values = onnx::f32_values(t)?.expect("weight_of checked the type");
            // MatMulInteger wants [K, N]: a transposed Gemm weight is turned around.
            let (values, dims) = if transposed {
                let v = onnx::transpose(&values, t.dims[0] as usize, t.dims[1] as usize);
                (v, vec![t.dims[1], t.dims[0]])
            } else {
                (values, t.dims.clone())
            };
            let axis = per_channel.then_some(if conv { 0 } else { dims.len() - 1 });
            let (q, scales) = quantize_values(&values, &dims, axis);
            let qn = names.fresh(&format!("{w}.int8"));
            let zn = names.fresh(&format!("{w}.zero_point"));
            if conv {
                let u: Vec<u8> = q.iter().map(|&v| (i16::from(v) + 128) as u8).collect();
                model.add_initializer(onnx::u8_tensor(&qn, &dims, &u), w);
                model.add_initializer(onnx::u8_tensor(&zn, &[], &[128]), w);
            } else {
                model.add_initializer(onnx::i8_tensor(&qn, &dims, &q), w);
                model.add_initializer(onnx::i8_tensor(&zn, &[], &[0]), w);
            }
            stats.quantized_weights += 1;
            int_weights.insert(form.clone(), (qn, zn, scales));
        }
        let (wq, wz, scales) = int_weights[&form].clone();
        let y = &n.output[0];
        let yi = names.fresh(&format!("{y}.int32"));
        let yf = names.fresh(&format!("{y}.float"));
        let integer_op = if conv { "ConvInteger" } else { "MatMulInteger" };
        let attrs = if conv { n.attribute.clone() } else { vec![] };
        out.push(onnx::node(
            integer_op,
            names.fresh(&format!("{}.integer", onnx::node_label(n))),
            &[&xq, &wq, &xz, &wz],
            &[&yi],
            attrs,
        ));
        out.push(onnx::node(
            "Cast",
            names.fresh(&format!("{y}.cast")),
            &[&yi],
            &[&yf],
            vec![onnx::int_attr("to", i64::from(FLOAT))],
        ));
        // The weight's scale (times Gemm's alpha), shaped to broadcast over the output.
        let alpha = if n.op_type == "Gemm" {
            onnx::attr_float(n, "alpha", 1.0)
        } else {
            1.0
        };
        let scales: Vec<f32> = scales.iter().map(|s| s * alpha).collect();
        let sdims: Vec<i64> = match (scales.len(), conv) {
            (1, _) => vec![],
            (m, true) => channel_dims(m, t.dims.len()),
            (m, false) => vec![m as i64],
        };
        let wsn = names.fresh(&format!("{w}.scale"));
        model.add_initializer(onnx::f32_tensor(&wsn, &sdims, &scales), w);
        let sn = names.fresh(&format!("{y}.scale"));
        out.push(onnx::node(
            "Mul",
            names.fresh(&format!("{y}.scale_mul")),
            &[&xs, &wsn],
            &[&sn],
            vec![],
        ));
        let bias = match n.op_type.as_str() {
            "Conv" | "Gemm" => n.input.get(2).filter(|b| !b.is_empty()).cloned(),
            _ => None,
        };
        // The rescaled product is the output, or the bias is added to it.
        let rescaled = match &bias {
            None => y.clone(),
            Some(_) => names.fresh(&format!("{y}.unbiased")),
        };
        out.push(onnx::node(
            "Mul",
            names.fresh(&format!("{y}.rescale")),
            &[&yf, &sn],
            &[&rescaled],
            vec![],
        ));
        match bias {
            None => {}
            Some(b) => {
                let scaled = rescaled;
                let bt = inits[b.as_str()];
                let mut values = onnx::f32_values(bt)?.expect("dynamic_ok checked the bias");
                let beta = if n.op_type == "Gemm" {
                    onnx::attr_float(n, "beta", 1.0)
                } else {
                    1.0
                };
                values.iter_mut().for_each(|v| *v *= beta);
                let bdims: Vec<i64> = if conv {
                    channel_dims(values.len(), t.dims.len())
                } else {
                    bt.dims.clone()
                };
                let bn = names.fresh(&format!("{b}.broadcast"));
                model.add_initializer(onnx::f32_tensor(&bn, &bdims, &values), &b);
                out.push(onnx::node(
                    "Add",
                    names.fresh(&format!("{y}.bias")),
                    &[&scaled, &bn],
                    &[y],
                    vec![],
                ));
            }
        }
        stats.integer_nodes += 1;
        replaced.insert(i, out);
    }

    // The weights only dynamic nodes read are gone; biases they broadcast too.
    let mut still_read: HashSet<String> = HashSet::new();
    for (i, n) in graph.node.iter().enumerate() {
        if !replaced.contains_key(&i) {
            still_read.extend(n.input.iter().cloned());
        }
    }
    for &i in &dynamic_nodes {
        for w in graph.node[i].input.iter().skip(1) {
            if !still_read.contains(w)
                && !graph_outputs.contains(w.as_str())
                && inits.contains_key(w.as_str())
            {
                model.remove_initializer(w);
            }
        }
    }
    let mut ordered = front;
    for (i, n) in graph.node.iter().enumerate() {
        match replaced.remove(&i) {
            Some(nodes) => ordered.extend(nodes),
            None => ordered.push(n.clone()),
        }
    }
    let _ = std::mem::replace(&mut model.graph_mut().node, ordered);
    if mode == Mode::Dynamic && dynamic_nodes.is_empty() && weight_axis.is_empty() {
        return Err(CompressError::Unsupported {
            reason: "no MatMul, Gemm or Conv with a float32 weight initializer could be quantized dynamically".into(),
            hint: "`--to int8` stores weights in eight bits for any of them; `modelport inspect` lists the operators".into(),
        });
    }
    Ok(stats)
}

/// `[m, 1, 1]` for a rank-4 Conv weight: one value per output channel, shaped to
/// broadcast over a Conv output `[N, M, H, W]`.
fn channel_dims(m: usize, weight_rank: usize) -> Vec<i64> {
    std::iter::once(m as i64)
        .chain(std::iter::repeat_n(1, weight_rank - 2))
        .collect()
}

/// Whether the dynamic form can replace node `n`; records why not in `stats`.
fn dynamic_ok(
    n: &pb::NodeProto,
    inits: &HashMap<&str, &pb::TensorProto>,
    stats: &mut Int8Stats,
) -> bool {
    let why = match n.op_type.as_str() {
        "Gemm" if onnx::attr_int(n, "transA", 0) != 0 => Some("transA=1"),
        "Gemm" | "Conv" => match n.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) if inits.get(b.as_str()).is_none_or(|t| t.data_type != FLOAT) => {
                Some("its bias is not a float32 initializer")
            }
            Some(b)
                if n.op_type == "Gemm"
                    && inits[b.as_str()].dims.len() > 1
                    && inits[b.as_str()].dims[0] != 1 =>
            {
                Some("its bias is a matrix")
            }
            _ => None,
        },
        _ => None,
    };
    if let Some(why) = why {
        stats
            .skipped
            .insert(onnx::node_label(n), format!("{}: {why}", n.op_type));
        return false;
    }
    true
}

/// Zeroes the smallest `sparsity` fraction of each MatMul, Gemm and Conv weight.
pub fn prune(model: &mut Model, excluded: &HashSet<usize>, sparsity: f64) -> Result<PruneStats> {
    let mut stats = PruneStats::default();
    let targets: HashSet<String> = weight_readers(model, excluded, Mode::WeightOnly, true)
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    for t in model
        .graph_mut()
        .initializer
        .iter_mut()
        .filter(|t| targets.contains(&t.name))
    {
        let mut values = onnx::f32_values(t)?.expect("float");
        stats.weights += 1;
        stats.elements += values.len();
        stats.zeros_before += values.iter().filter(|v| **v == 0.0).count();
        let k = ((values.len() as f64) * sparsity).floor() as usize;
        if k > 0 {
            let mut order: Vec<usize> = (0..values.len()).collect();
            order.select_nth_unstable_by(k - 1, |&a, &b| {
                values[a].abs().total_cmp(&values[b].abs())
            });
            for &i in &order[..k] {
                values[i] = 0.0;
            }
        }
        stats.zeros_after += values.iter().filter(|v| **v == 0.0).count();
        *t = onnx::f32_tensor(&t.name, &t.dims, &values);
    }
    Ok(stats)
}
