//! The ONNX model as protobuf, and what every transform needs from it: tensors read
//! as `f32`, external data, fresh names, consumers, and the element type of values.
//!
//! Models are decoded with tract's generated protobuf types, the ones the rest of
//! the workspace reads. Those types know tensor values only: the type of a sequence
//! or map output (ZipMap's list of `{label: probability}` maps) would be lost on the
//! way back to bytes. So the graph's outputs are kept as the file's own bytes and
//! written back as they were, after the rest of the graph (a protobuf parser merges
//! a repeated message field into the first one and appends its repeated fields).
//! A value of such a type anywhere else (a graph input) is refused.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use tract_onnx::pb;

use crate::error::{CompressError, Result};

pub const FLOAT: i32 = 1;
pub const UINT8: i32 = 2;
pub const INT8: i32 = 3;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;
pub const STRING: i32 = 8;
pub const BOOL: i32 = 9;
pub const FLOAT16: i32 = 10;
pub const DOUBLE: i32 = 11;

use modelport_runtime::external::EXTERNAL;

/// Tensors at least this large stay in external data when their source was there
/// (onnx's own `size_threshold`).
const EXTERNAL_THRESHOLD: usize = 1024;

/// External data offsets are aligned to pages, so that a runtime can map them.
const EXTERNAL_ALIGN: u64 = 4096;

/// A decoded model and where it came from.
#[derive(Debug, Clone)]
pub struct Model {
    pub proto: pb::ModelProto,
    /// The `.onnx` file.
    pub path: PathBuf,
    /// Initializers whose data lives in external files; their data is read into
    /// `raw_data` and written back to an external file by [`Model::write`].
    pub external: HashSet<String>,
    /// The encoded graph outputs as the file holds them, when one of their types is
    /// a sequence or a map; [`Model::write`] writes these instead.
    raw_outputs: Option<Vec<Vec<u8>>>,
}

impl Model {
    /// Reads `path` (an `.onnx` file), with its external data.
    pub fn read(path: &Path) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|e| CompressError::io(path, e))?;
        let invalid = |reason: String| CompressError::InvalidModel {
            path: path.to_path_buf(),
            reason,
        };
        let mut proto = pb::ModelProto::decode(bytes.as_slice())
            .map_err(|e| invalid(format!("the protobuf does not decode ({e})")))?;
        let graph = proto
            .graph
            .as_mut()
            .ok_or_else(|| invalid("the file holds no graph".into()))?;
        let lost = |v: &pb::ValueInfoProto| v.r#type.as_ref().is_some_and(|t| t.value.is_none());
        if let Some(v) = graph.input.iter().find(|v| lost(v)) {
            return Err(CompressError::Unsupported {
                reason: format!(
                    "input `{}` is a sequence or a map, which modelport does not take",
                    v.name
                ),
                hint: "export the model with tensor inputs".into(),
            });
        }
        // Declared types of intermediate values are optional: the ones these types
        // cannot hold are dropped.
        graph.value_info.retain(|v| !lost(v));
        let raw_outputs = if graph.output.iter().any(lost) {
            let outputs = raw_graph_outputs(&bytes)
                .ok_or_else(|| invalid("the graph's outputs do not decode".into()))?;
            if outputs.len() != graph.output.len() {
                return Err(invalid("the graph's outputs do not decode".into()));
            }
            Some(outputs)
        } else {
            None
        };
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut external = HashSet::new();
        for t in graph.initializer.iter_mut() {
            if t.data_location == Some(EXTERNAL) {
                t.raw_data = read_external(&dir, t)?;
                t.data_location = None;
                t.external_data.clear();
                external.insert(t.name.clone());
            }
        }
        Ok(Model {
            proto,
            path: path.to_path_buf(),
            external,
            raw_outputs,
        })
    }

    pub fn graph(&self) -> &pb::GraphProto {
        self.proto
            .graph
            .as_ref()
            .expect("Model::read checked the graph")
    }

    pub fn graph_mut(&mut self) -> &mut pb::GraphProto {
        self.proto
            .graph
            .as_mut()
            .expect("Model::read checked the graph")
    }

    /// The version of the default operator set.
    pub fn opset(&self) -> i64 {
        self.proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(0, |o| o.version)
    }

    /// Adds `tensor` as an initializer, kept external when `like` was.
    pub fn add_initializer(&mut self, tensor: pb::TensorProto, like: &str) {
        if self.external.contains(like) && tensor.raw_data.len() >= EXTERNAL_THRESHOLD {
            self.external.insert(tensor.name.clone());
        }
        self.graph_mut().initializer.push(tensor);
    }

    /// Marks every initializer of at least `min_bytes` to be written as external
    /// data (as `onnx.save_model(..., save_as_external_data=True)` does); returns
    /// how many.
    pub fn externalize(&mut self, min_bytes: usize) -> usize {
        let big: Vec<String> = self
            .graph()
            .initializer
            .iter()
            .filter(|t| t.raw_data.len() >= min_bytes)
            .map(|t| t.name.clone())
            .collect();
        let n = big.len();
        self.external.extend(big);
        n
    }

    /// Removes the initializer `name` (and its graph input, in models from before
    /// IR 4 that list initializers as inputs).
    pub fn remove_initializer(&mut self, name: &str) {
        let g = self.graph_mut();
        g.initializer.retain(|t| t.name != name);
        g.input.retain(|i| i.name != name);
        self.external.remove(name);
    }

    /// The encoded model; external initializers go to `<file name>.data` beside `out`.
    /// Returns the files written.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>> {
        let mut proto = self.proto.clone();
        let mut files = vec![out.to_path_buf()];
        let graph = proto.graph.as_mut().expect("checked");
        let externals: Vec<usize> = graph
            .initializer
            .iter()
            .enumerate()
            .filter(|(_, t)| self.external.contains(&t.name))
            .map(|(i, _)| i)
            .collect();
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| CompressError::io(parent, e))?;
        }
        if !externals.is_empty() {
            let name = format!(
                "{}.data",
                out.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("model.onnx")
            );
            let data_path = out.with_file_name(&name);
            let mut file =
                std::fs::File::create(&data_path).map_err(|e| CompressError::io(&data_path, e))?;
            let mut offset = 0u64;
            for i in externals {
                let t = &mut graph.initializer[i];
                let pad = (EXTERNAL_ALIGN - offset % EXTERNAL_ALIGN) % EXTERNAL_ALIGN;
                file.write_all(&vec![0u8; pad as usize])
                    .and_then(|()| file.write_all(&t.raw_data))
                    .map_err(|e| CompressError::io(&data_path, e))?;
                offset += pad;
                let entry = |key: &str, value: String| pb::StringStringEntryProto {
                    key: key.into(),
                    value,
                };
                t.external_data = vec![
                    entry("location", name.clone()),
                    entry("offset", offset.to_string()),
                    entry("length", t.raw_data.len().to_string()),
                ];
                offset += t.raw_data.len() as u64;
                t.raw_data = Vec::new();
                t.data_location = Some(EXTERNAL);
            }
            file.sync_all()
                .map_err(|e| CompressError::io(&data_path, e))?;
            files.push(data_path);
        }
        let bytes = match &self.raw_outputs {
            None => proto.encode_to_vec(),
            Some(raw) => {
                let names: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
                let original: Vec<&str> = self
                    .graph()
                    .output
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect();
                debug_assert_eq!(names, original, "transforms keep the graph's outputs");
                graph.output.clear();
                let mut fragment = Vec::new();
                for r in raw {
                    length_delimited(&mut fragment, GRAPH_OUTPUT, r);
                }
                let mut b = proto.encode_to_vec();
                length_delimited(&mut b, MODEL_GRAPH, &fragment);
                b
            }
        };
        std::fs::write(out, bytes).map_err(|e| CompressError::io(out, e))?;
        Ok(files)
    }
}

/// `ModelProto.graph` and `GraphProto.output`: the field numbers of onnx.proto.
const MODEL_GRAPH: u64 = 7;
const GRAPH_OUTPUT: u64 = 12;

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends field `field` (wire type 2) holding `data`.
fn length_delimited(buf: &mut Vec<u8>, field: u64, data: &[u8]) {
    varint(buf, field << 3 | 2);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// The fields of one encoded message: (number, wire type, the value's bytes).
fn fields(mut b: &[u8]) -> Option<Vec<(u64, u8, &[u8])>> {
    fn read_varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = read_varint(&mut b)?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        let len = match wire {
            0 => {
                let start = b;
                read_varint(&mut b)?;
                out.push((field, wire, &start[..start.len() - b.len()]));
                continue;
            }
            1 => 8,
            5 => 4,
            2 => usize::try_from(read_varint(&mut b)?).ok()?,
            _ => return None,
        };
        let value = b.get(..len)?;
        b = &b[len..];
        out.push((field, wire, value));
    }
    Some(out)
}

/// The encoded graph outputs of an encoded model, in order.
fn raw_graph_outputs(model: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut outputs = Vec::new();
    for (field, wire, graph) in fields(model)? {
        if field == MODEL_GRAPH && wire == 2 {
            for (f, w, value) in fields(graph)? {
                if f == GRAPH_OUTPUT && w == 2 {
                    outputs.push(value.to_vec());
                }
            }
        }
    }
    Some(outputs)
}

/// The bytes of an external initializer, checked by the runtime's rules (inside
/// `dir`, no symbolic link, no short file).
fn read_external(dir: &Path, t: &pb::TensorProto) -> Result<Vec<u8>> {
    let r =
        modelport_runtime::external::resolve(dir, t).map_err(|e| CompressError::ExternalData {
            tensor: e.tensor,
            reason: e.reason,
        })?;
    let mut file = std::fs::File::open(&r.path).map_err(|e| CompressError::io(&r.path, e))?;
    let mut buf = vec![0u8; r.length as usize];
    file.seek(SeekFrom::Start(r.offset))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| CompressError::io(&r.path, e))?;
    Ok(buf)
}

/// The number of elements a tensor's dims give.
/// The number of elements the tensor's dims hold; `None` when the product does
/// not fit in a `usize` (a hostile or broken model), never a wrapped or panicking one.
pub fn elements(t: &pb::TensorProto) -> Option<usize> {
    t.dims.iter().try_fold(1usize, |n, &d| {
        n.checked_mul(usize::try_from(d.max(0)).ok()?)
    })
}

/// The values of a float32 tensor (`None` for other element types).
pub fn f32_values(t: &pb::TensorProto) -> Result<Option<Vec<f32>>> {
    if t.data_type != FLOAT {
        return Ok(None);
    }
    let n = elements(t).ok_or_else(|| CompressError::InvalidTensor {
        tensor: t.name.clone(),
        reason: format!(
            "its dims {:?} hold more elements than any machine has memory for",
            t.dims
        ),
    })?;
    let values: Vec<f32> = if !t.raw_data.is_empty() {
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        t.float_data.clone()
    };
    if values.len() != n {
        return Err(CompressError::InvalidTensor {
            tensor: t.name.clone(),
            reason: format!("{} values for dims {:?}", values.len(), t.dims),
        });
    }
    Ok(Some(values))
}

fn tensor(name: &str, dims: &[i64], data_type: i32, raw_data: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type,
        raw_data,
        ..Default::default()
    }
}

pub fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> pb::TensorProto {
    tensor(
        name,
        dims,
        FLOAT,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

pub fn f16_tensor(name: &str, dims: &[i64], values: &[half::f16]) -> pb::TensorProto {
    tensor(
        name,
        dims,
        FLOAT16,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

pub fn i8_tensor(name: &str, dims: &[i64], values: &[i8]) -> pb::TensorProto {
    tensor(name, dims, INT8, values.iter().map(|&v| v as u8).collect())
}

pub fn u8_tensor(name: &str, dims: &[i64], values: &[u8]) -> pb::TensorProto {
    tensor(name, dims, UINT8, values.to_vec())
}

pub fn i64_tensor(name: &str, dims: &[i64], values: &[i64]) -> pb::TensorProto {
    tensor(
        name,
        dims,
        INT64,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// A node in the default domain.
pub fn node(
    op_type: &str,
    name: String,
    inputs: &[&str],
    outputs: &[&str],
    attributes: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op_type.into(),
        name,
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attributes,
        ..Default::default()
    }
}

/// `AttributeProto.AttributeType.INT`.
pub fn int_attr(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 2,
        i,
        ..Default::default()
    }
}

pub fn attr<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub fn attr_int(node: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

/// A float attribute (`AttributeType.FLOAT`), or `default` when absent.
pub fn attr_float(node: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name)
        .filter(|a| a.r#type == 1)
        .map_or(default, |a| a.f)
}

/// A row-major `[rows, cols]` matrix as `[cols, rows]`.
pub fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut v = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            v[c * rows + r] = values[r * cols + c];
        }
    }
    v
}

/// How a report names a node: its name, else its op type and first output.
pub fn node_label(node: &pb::NodeProto) -> String {
    if node.name.is_empty() {
        format!(
            "{}({})",
            node.op_type,
            node.output.first().map_or("", String::as_str)
        )
    } else {
        node.name.clone()
    }
}

/// Every name in use in the graph (values, nodes, initializers), to make fresh ones.
#[derive(Debug, Default)]
pub struct Names(HashSet<String>);

impl Names {
    pub fn of(graph: &pb::GraphProto) -> Names {
        let mut set = HashSet::new();
        collect_names(graph, &mut set);
        Names(set)
    }

    /// `base`, or `base_1`, `base_2`, ... when taken; recorded as used.
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 1;
        while self.0.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

fn collect_names(graph: &pb::GraphProto, set: &mut HashSet<String>) {
    for n in &graph.node {
        set.insert(n.name.clone());
        set.extend(n.input.iter().cloned());
        set.extend(n.output.iter().cloned());
        for g in n.attribute.iter().flat_map(|a| a.g.iter().chain(&a.graphs)) {
            collect_names(g, set);
        }
    }
    set.extend(graph.initializer.iter().map(|t| t.name.clone()));
    set.extend(graph.input.iter().map(|t| t.name.clone()));
    set.extend(graph.output.iter().map(|t| t.name.clone()));
}

/// The names that subgraphs (If, Loop, Scan bodies) read from the enclosing graph:
/// they must keep their type and name.
pub fn outer_references(graph: &pb::GraphProto) -> BTreeSet<String> {
    fn walk(g: &pb::GraphProto, out: &mut BTreeSet<String>) {
        let local: HashSet<&str> = g
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str))
            .chain(g.initializer.iter().map(|t| t.name.as_str()))
            .chain(g.input.iter().map(|t| t.name.as_str()))
            .collect();
        for n in &g.node {
            out.extend(
                n.input
                    .iter()
                    .filter(|i| !i.is_empty() && !local.contains(i.as_str()))
                    .cloned(),
            );
            for sub in n.attribute.iter().flat_map(|a| a.g.iter().chain(&a.graphs)) {
                walk(sub, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    for n in &graph.node {
        for sub in n.attribute.iter().flat_map(|a| a.g.iter().chain(&a.graphs)) {
            walk(sub, &mut out);
        }
    }
    out
}

/// The element type of every value of the graph that can be told: graph inputs,
/// initializers, declared value types, and node outputs by the operator's type rule.
/// Values of unknown type are absent.
pub fn value_types(graph: &pb::GraphProto) -> HashMap<String, i32> {
    let mut types = HashMap::new();
    let declared = |v: &pb::ValueInfoProto| match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) if t.elem_type != 0 => Some(t.elem_type),
        _ => None,
    };
    for v in graph
        .input
        .iter()
        .chain(&graph.value_info)
        .chain(&graph.output)
    {
        if let Some(t) = declared(v) {
            types.insert(v.name.clone(), t);
        }
    }
    for t in &graph.initializer {
        types.insert(t.name.clone(), t.data_type);
    }
    for n in &graph.node {
        let input = |i: usize| {
            n.input
                .get(i)
                .filter(|s| !s.is_empty())
                .and_then(|s| types.get(s))
                .copied()
        };
        let rule: Vec<Option<i32>> = output_types(n, input);
        for (name, t) in n.output.iter().zip(rule) {
            if let Some(t) = t {
                types.entry(name.clone()).or_insert(t);
            }
        }
    }
    types
}

/// The element type of each output of `n`, given its inputs' types.
fn output_types(n: &pb::NodeProto, input: impl Fn(usize) -> Option<i32>) -> Vec<Option<i32>> {
    let all = |t: Option<i32>| vec![t; n.output.len()];
    if !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return all(None);
    }
    match n.op_type.as_str() {
        "Shape" | "Size" | "ArgMax" | "ArgMin" | "NonZero" => all(Some(INT64)),
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "Not" | "And" | "Or"
        | "Xor" | "IsNaN" | "IsInf" => all(Some(BOOL)),
        "Cast" => all(attr(n, "to").map(|a| a.i as i32)),
        "CastLike" => all(input(1)),
        "Constant" => all(attr(n, "value").and_then(|a| a.t.as_ref()).map_or_else(
            || {
                if attr(n, "value_float").is_some() || attr(n, "value_floats").is_some() {
                    Some(FLOAT)
                } else if attr(n, "value_int").is_some() || attr(n, "value_ints").is_some() {
                    Some(INT64)
                } else {
                    None
                }
            },
            |t| Some(t.data_type),
        )),
        "ConstantOfShape" => all(Some(
            attr(n, "value")
                .and_then(|a| a.t.as_ref())
                .map_or(FLOAT, |t| t.data_type),
        )),
        "TopK" => vec![input(0), Some(INT64)],
        "MaxPool" => vec![input(0), Some(INT64)],
        "DynamicQuantizeLinear" => vec![Some(UINT8), Some(FLOAT), Some(UINT8)],
        "QuantizeLinear" => all(input(2).or(Some(UINT8))),
        "DequantizeLinear" => all(input(1)),
        "MatMulInteger" | "ConvInteger" => all(Some(INT32)),
        "Where" => all(input(1)),
        "EyeLike" | "RandomNormalLike" | "RandomUniformLike" => {
            all(attr(n, "dtype").map(|a| a.i as i32).or(input(0)))
        }
        "RandomNormal" | "RandomUniform" => {
            all(Some(attr(n, "dtype").map_or(FLOAT, |a| a.i as i32)))
        }
        "If" | "Loop" | "Scan" | "SequenceAt" | "SplitToSequence" | "SequenceConstruct" => {
            all(None)
        }
        // Everything else of the default domain keeps its first input's type.
        _ => all(input(0)),
    }
}

/// The nodes that read each value, by index.
pub fn consumers(graph: &pb::GraphProto) -> HashMap<String, Vec<usize>> {
    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in n.input.iter().filter(|s| !s.is_empty()) {
            map.entry(input.clone()).or_default().push(i);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dims whose product overflows (what the fuzzer found in the inspector's copy
    /// of this count) are refused by name, not multiplied past `usize`.
    #[test]
    fn dims_past_usize_are_refused_by_name() {
        let t = pb::TensorProto {
            name: "W".into(),
            dims: vec![i64::MAX, i64::MAX, 4],
            data_type: FLOAT,
            raw_data: vec![0; 16],
            ..Default::default()
        };
        assert_eq!(elements(&t), None);
        let err = f32_values(&t).unwrap_err().to_string();
        assert!(err.contains('W') && err.contains("dims"), "{err}");
        let ok = f32_tensor("b", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(elements(&ok), Some(4));
        assert_eq!(f32_values(&ok).unwrap().unwrap().len(), 4);
    }
}
