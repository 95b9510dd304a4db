//! Reads what an ONNX file declares: signature, opsets, operators, parameters.
//!
//! This is the `inspect` view of a model and the input to every engine. The
//! protobuf is decoded once; only the summary is kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use modelport_core::format::{self, ModelSource};
use modelport_core::{ClassLabels, DType, Dim, Signature, TensorSpec};
use prost::Message;
use serde::Serialize;
use tract_onnx::pb;

use crate::error::RuntimeError;
use crate::external::ExternalFile;

/// How many nodes of one operator a model has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorCount {
    /// `ai.onnx` for the default domain.
    pub domain: String,
    pub op_type: String,
    pub count: usize,
}

impl OperatorCount {
    /// `Scaler (ai.onnx.ml)`, or just `Conv` for the default domain.
    pub fn qualified(&self) -> String {
        if self.domain == "ai.onnx" {
            self.op_type.clone()
        } else {
            format!("{} ({})", self.op_type, self.domain)
        }
    }
}

/// The summary of one ONNX model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub ir_version: i64,
    pub producer: String,
    /// Operator set versions by domain.
    pub opsets: BTreeMap<String, i64>,
    pub operators: Vec<OperatorCount>,
    /// The signature as modelport exposes it: ZipMap outputs read as `f32 [N, C]`
    /// probability tensors carrying their class labels.
    pub signature: Signature,
    /// Number of weights (elements of every initializer).
    pub parameters: u64,
    /// Bytes of initializer data (inline and external).
    pub weight_bytes: u64,
    /// The external data files the model reads, each checked: inside the model's
    /// directory, reached through no symbolic link, holding every byte it should.
    pub external_data: Vec<ExternalFile>,
}

impl ModelInfo {
    /// Reads the model at `path` (an `.onnx` file or a directory holding one).
    ///
    /// Pickles, PyTorch, Keras and TensorFlow files are refused with the conversion route.
    pub fn from_path(path: &Path) -> Result<ModelInfo, RuntimeError> {
        let source = format::detect(path)?;
        let onnx = match &source {
            ModelSource::OnnxFile(p) => p.clone(),
            ModelSource::OnnxDir { model, .. } => model.clone(),
        };
        let invalid = |reason: String| RuntimeError::InvalidModel {
            path: onnx.clone(),
            reason,
        };
        // The summary needs no weight: their bytes are seeked past, never read.
        let bytes = match light::read_without_weights(&onnx) {
            Ok(bytes) => bytes,
            Err(light::ReadError::Io(e)) => return Err(modelport_core::Error::io(&onnx, e).into()),
            Err(light::ReadError::Wire(why)) => {
                return Err(invalid(format!("the protobuf does not decode ({why})")));
            }
        };
        let proto = light::Model::decode(bytes.as_slice())
            .map_err(|e| invalid(format!("the protobuf does not decode ({e})")))?;
        drop(bytes);
        let graph = proto
            .graph
            .map(light::Graph::into_pb)
            .ok_or_else(|| invalid("the file holds no graph".into()))?;
        let graph = &graph;
        if proto.ir_version <= 0 || proto.opset_import.is_empty() {
            return Err(invalid(format!(
                "ir_version {} and {} opset imports: this is not an ONNX model",
                proto.ir_version,
                proto.opset_import.len()
            )));
        }
        if graph.output.is_empty() {
            return Err(invalid("the graph declares no outputs".into()));
        }
        let opsets = proto
            .opset_import
            .iter()
            .map(|o| (domain_name(&o.domain), o.version))
            .collect();
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for node in &graph.node {
            *counts
                .entry((domain_name(&node.domain), node.op_type.clone()))
                .or_default() += 1;
        }
        let operators = counts
            .into_iter()
            .map(|((domain, op_type), count)| OperatorCount {
                domain,
                op_type,
                count,
            })
            .collect();
        // The dims are the file's word: a product past u64 is a broken model, not a count.
        let too_many = |t: &pb::TensorProto| {
            invalid(format!(
                "initializer `{}` has dims {:?}, more elements than can be counted",
                t.name, t.dims
            ))
        };
        let (mut parameters, mut weight_bytes) = (0u64, 0u64);
        for t in &graph.initializer {
            let n = t
                .dims
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d.max(0) as u64))
                .ok_or_else(|| too_many(t))?;
            let bytes = n
                .checked_mul(elem_size(t.data_type))
                .ok_or_else(|| too_many(t))?;
            parameters = parameters.checked_add(n).ok_or_else(|| too_many(t))?;
            weight_bytes = weight_bytes.checked_add(bytes).ok_or_else(|| too_many(t))?;
        }
        // scikit-learn exports keep their weights in node attributes (coefficients,
        // tree thresholds), not in initializers: count those too. The counts are of
        // decoded floats, so far below any overflow.
        let attribute_weights: u64 = graph
            .node
            .iter()
            .flat_map(|n| &n.attribute)
            .map(|a| a.floats.len() as u64)
            .sum();
        let (parameters, weight_bytes) = (
            parameters.saturating_add(attribute_weights),
            weight_bytes.saturating_add(4 * attribute_weights),
        );
        let signature = signature(graph).map_err(invalid)?;
        let model_dir = onnx.parent().unwrap_or(Path::new("."));
        let external_data = crate::external::check_all(model_dir, graph).map_err(|e| {
            RuntimeError::ExternalData {
                model: onnx.clone(),
                tensor: e.tensor,
                reason: e.reason,
            }
        })?;
        let size_bytes = match &source {
            ModelSource::OnnxFile(p) => {
                file_size(p) + external_data.iter().map(|f| f.size).sum::<u64>()
            }
            ModelSource::OnnxDir { dir, .. } => dir_size(dir),
        };
        Ok(ModelInfo {
            path: onnx,
            size_bytes,
            ir_version: proto.ir_version,
            producer: format!("{} {}", proto.producer_name, proto.producer_version)
                .trim()
                .to_string(),
            opsets,
            operators,
            signature,
            parameters,
            weight_bytes,
            external_data,
        })
    }

    /// The external data files' locations, relative to the model file's directory:
    /// what packaging must carry beside the model file.
    pub fn data_files(&self) -> Vec<String> {
        self.external_data
            .iter()
            .map(|f| f.location.clone())
            .collect()
    }

    pub fn uses(&self, op_type: &str) -> bool {
        self.operators.iter().any(|o| o.op_type == op_type)
    }
}

/// The parts of an ONNX model [`ModelInfo`] reads, as prost messages with the same
/// field numbers as `onnx.proto`. What is left out (the initializers' `raw_data`,
/// `float_data` and other payloads, doc strings, metadata) is skipped by the
/// decoder without being copied, so a model of 100 MB of weights decodes in the
/// time it takes to read its few hundred fields, not to copy 100 MB.
mod light {
    use std::io::{self, BufReader, Read};
    use std::path::Path;

    use tract_onnx::pb;

    pub(super) enum ReadError {
        Io(io::Error),
        Wire(String),
    }

    impl From<io::Error> for ReadError {
        fn from(e: io::Error) -> Self {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                ReadError::Wire("the file ends inside a field".into())
            } else {
                ReadError::Io(e)
            }
        }
    }

    /// Which message a run of fields belongs to.
    #[derive(Clone, Copy)]
    enum Level {
        Model,
        Graph,
        Tensor,
    }

    /// The file's ModelProto re-encoded without its initializers' data: each
    /// initializer's `float_data` (4), `int32_data` (5), `string_data` (6),
    /// `int64_data` (7), `raw_data` (9), `double_data` (10) and `uint64_data` (11)
    /// are seeked past, never read; every other field is copied as it is. A model of
    /// 100 MB of weights costs a few KiB of reads.
    pub(super) fn read_without_weights(path: &Path) -> Result<Vec<u8>, ReadError> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let mut src = BufReader::with_capacity(64 * 1024, file);
        let mut out = Vec::new();
        filter(&mut src, len, Level::Model, &mut out)?;
        Ok(out)
    }

    fn filter(
        src: &mut BufReader<std::fs::File>,
        mut left: u64,
        level: Level,
        out: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        while left > 0 {
            let (key, n) = varint(src)?;
            take(&mut left, n, || "a field key runs past its message".into())?;
            let (field, wire) = (key >> 3, key & 7);
            let payload = match wire {
                0 => None,
                1 => Some(8),
                5 => Some(4),
                2 => {
                    let (len, n) = varint(src)?;
                    take(&mut left, n, || {
                        "a field length runs past its message".into()
                    })?;
                    Some(len)
                }
                other => {
                    return Err(ReadError::Wire(format!(
                        "field {field} has wire type {other}, which no ONNX writer produces"
                    )));
                }
            };
            let Some(len) = payload else {
                let (value, n) = varint(src)?;
                take(&mut left, n, || "a varint runs past its message".into())?;
                put_varint(out, key);
                put_varint(out, value);
                continue;
            };
            take(&mut left, len, || {
                format!("field {field} announces {len} bytes, more than its message holds")
            })?;
            let nested = match (level, field, wire) {
                (Level::Model, 7, 2) => Some(Level::Graph),
                (Level::Graph, 5, 2) => Some(Level::Tensor),
                _ => None,
            };
            if let Some(inner) = nested {
                let mut sub = Vec::new();
                filter(src, len, inner, &mut sub)?;
                put_varint(out, key);
                put_varint(out, sub.len() as u64);
                out.extend_from_slice(&sub);
            } else if matches!(level, Level::Tensor) && matches!(field, 4..=7 | 9..=11) {
                skip(src, len)?;
            } else {
                put_varint(out, key);
                if wire == 2 {
                    put_varint(out, len);
                }
                let start = out.len();
                src.by_ref().take(len).read_to_end(out)?;
                if (out.len() - start) as u64 != len {
                    return Err(ReadError::Wire("the file ends inside a field".into()));
                }
            }
        }
        Ok(())
    }

    /// Counts `n` bytes of the message being read, which must hold them.
    fn take(left: &mut u64, n: u64, why: impl FnOnce() -> String) -> Result<(), ReadError> {
        *left = left.checked_sub(n).ok_or_else(|| ReadError::Wire(why()))?;
        Ok(())
    }

    /// Moves past `len` bytes. Every length was checked against its message and the
    /// outermost message is the file, so this stays inside the file; a file cut
    /// short meanwhile fails at the next read.
    fn skip(src: &mut BufReader<std::fs::File>, len: u64) -> Result<(), ReadError> {
        let len = i64::try_from(len).map_err(|_| ReadError::Wire("a field is too long".into()))?;
        src.seek_relative(len)?;
        Ok(())
    }

    /// A varint and the number of bytes it took.
    fn varint(src: &mut impl Read) -> Result<(u64, u64), ReadError> {
        let mut value = 0u64;
        for i in 0..10 {
            let mut b = [0u8];
            src.read_exact(&mut b)?;
            value |= u64::from(b[0] & 0x7f) << (7 * i);
            if b[0] < 0x80 {
                return Ok((value, i + 1));
            }
        }
        Err(ReadError::Wire("a varint longer than 10 bytes".into()))
    }

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Model {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<Graph>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<pb::OperatorSetIdProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Graph {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<pb::NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<Tensor>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<pb::ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<pb::ValueInfoProto>,
        #[prost(message, repeated, tag = "13")]
        pub value_info: Vec<pb::ValueInfoProto>,
        #[prost(message, repeated, tag = "15")]
        pub sparse_initializer: Vec<pb::SparseTensorProto>,
    }

    /// An initializer without its data.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Tensor {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(message, repeated, tag = "13")]
        pub external_data: Vec<pb::StringStringEntryProto>,
        #[prost(int32, optional, tag = "14")]
        pub data_location: Option<i32>,
    }

    impl Graph {
        /// tract's graph type, which the signature and external-data checks read;
        /// its initializers hold no data.
        pub(super) fn into_pb(self) -> pb::GraphProto {
            pb::GraphProto {
                node: self.node,
                name: self.name,
                initializer: self
                    .initializer
                    .into_iter()
                    .map(|t| pb::TensorProto {
                        dims: t.dims,
                        data_type: t.data_type,
                        name: t.name,
                        external_data: t.external_data,
                        data_location: t.data_location,
                        ..Default::default()
                    })
                    .collect(),
                input: self.input,
                output: self.output,
                value_info: self.value_info,
                sparse_initializer: self.sparse_initializer,
                ..Default::default()
            }
        }
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        file_size(&p)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn domain_name(d: &str) -> String {
    if d.is_empty() {
        "ai.onnx".into()
    } else {
        d.into()
    }
}

/// Bytes per element of an ONNX `TensorProto.DataType`.
fn elem_size(data_type: i32) -> u64 {
    match data_type {
        11 | 7 | 13 | 14 => 8, // double, int64, uint64, complex64
        1 | 6 | 12 => 4,       // float, int32, uint32
        10 | 16 | 5 | 4 => 2,  // float16, bfloat16, int16, uint16
        15 => 16,              // complex128
        _ => 1,
    }
}

/// modelport's dtype for an ONNX element type, if it carries it.
pub(crate) fn dtype_of(elem_type: i32) -> Option<DType> {
    Some(match elem_type {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        6 => DType::I32,
        7 => DType::I64,
        8 => DType::String,
        9 => DType::Bool,
        11 => DType::F64,
        _ => return None,
    })
}

fn onnx_type_name(elem_type: i32) -> &'static str {
    match elem_type {
        4 => "uint16",
        5 => "int16",
        10 => "float16",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        _ => "an unknown type",
    }
}

fn signature(graph: &pb::GraphProto) -> Result<Signature, String> {
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut inputs = Vec::new();
    for vi in graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
    {
        inputs.push(tensor_spec(vi, "input")?.ok_or_else(|| {
            format!(
                "input `{}` is not a tensor (sequence and map inputs are not supported)",
                vi.name
            )
        })?);
    }
    let mut outputs = Vec::new();
    for vo in &graph.output {
        let producer = graph.node.iter().find(|n| n.output.contains(&vo.name));
        let spec = match producer {
            Some(node) if node.op_type == "ZipMap" => {
                // ZipMap turns a probability matrix into a list of maps; modelport keeps the matrix.
                let labels = class_labels(node);
                let n = labels.as_ref().map(|l| l.len());
                let mut spec = TensorSpec::new(
                    vo.name.clone(),
                    DType::F32,
                    vec![
                        Dim::Dynamic(batch_symbol(graph)),
                        n.map_or(Dim::Dynamic(None), Dim::Fixed),
                    ],
                );
                spec.class_labels = labels;
                spec
            }
            _ => {
                let mut spec = tensor_spec(vo, "output")?.ok_or_else(|| {
                    format!("output `{}` is a sequence or map not produced by ZipMap, which modelport cannot read", vo.name)
                })?;
                if let Some(node) = producer
                    && is_classifier(&node.op_type)
                    && node.output.get(1) == Some(&vo.name)
                {
                    spec.class_labels = class_labels(node);
                }
                spec
            }
        };
        outputs.push(spec);
    }
    Ok(Signature { inputs, outputs })
}

fn is_classifier(op: &str) -> bool {
    matches!(
        op,
        "LinearClassifier" | "TreeEnsembleClassifier" | "SVMClassifier"
    )
}

fn batch_symbol(graph: &pb::GraphProto) -> Option<String> {
    let first = graph.input.first()?;
    match first.r#type.as_ref()?.value.as_ref()? {
        pb::type_proto::Value::TensorType(t) => {
            match t.shape.as_ref()?.dim.first()?.value.as_ref()? {
                pb::tensor_shape_proto::dimension::Value::DimParam(p) if !p.is_empty() => {
                    Some(p.clone())
                }
                _ => None,
            }
        }
    }
}

fn tensor_spec(vi: &pb::ValueInfoProto, what: &str) -> Result<Option<TensorSpec>, String> {
    let Some(pb::type_proto::Value::TensorType(t)) =
        vi.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(None);
    };
    let dtype = dtype_of(t.elem_type).ok_or_else(|| {
        format!(
            "{what} `{}` has element type {}, which modelport does not support yet",
            vi.name,
            onnx_type_name(t.elem_type)
        )
    })?;
    let shape = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => {
                        Dim::Fixed(*v as usize)
                    }
                    Some(pb::tensor_shape_proto::dimension::Value::DimParam(p))
                        if !p.is_empty() =>
                    {
                        Dim::Dynamic(Some(p.clone()))
                    }
                    _ => Dim::Dynamic(None),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(TensorSpec::new(vi.name.clone(), dtype, shape)))
}

fn attr<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// The class labels a classifier or ZipMap node declares.
pub(crate) fn class_labels(node: &pb::NodeProto) -> Option<ClassLabels> {
    for key in ["classlabels_int64s", "classlabels_ints"] {
        if let Some(a) = attr(node, key)
            && !a.ints.is_empty()
        {
            return Some(ClassLabels::Int64(a.ints.clone()));
        }
    }
    attr(node, "classlabels_strings")
        .filter(|a| !a.strings.is_empty())
        .map(|a| {
            ClassLabels::String(
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name)
            .join("model.onnx")
    }

    #[test]
    fn iris_signature_reads_zipmap_as_probabilities() {
        let info = ModelInfo::from_path(&example("iris")).unwrap();
        let sig = &info.signature;
        assert_eq!(sig.inputs.len(), 1);
        assert_eq!(sig.inputs[0].to_string(), "X: f32 [?, 4]");
        assert_eq!(sig.outputs[0].to_string(), "output_label: i64 [?]");
        assert_eq!(sig.outputs[1].to_string(), "output_probability: f32 [?, 3]");
        assert_eq!(
            sig.outputs[1].class_labels,
            Some(ClassLabels::Int64(vec![0, 1, 2]))
        );
        assert!(info.uses("Scaler") && info.uses("ZipMap"));
        assert_eq!(info.opsets.get("ai.onnx.ml"), Some(&1));
    }

    #[test]
    fn cnn_counts_parameters() {
        let info = ModelInfo::from_path(&example("cnn")).unwrap();
        // conv1 8*1*3*3+8, conv2 16*8*3*3+16, fc 784*10+10, the reshape target 2.
        assert_eq!(info.parameters, 80 + 1168 + 7850 + 2);
        assert_eq!(
            info.signature.inputs[0].to_string(),
            "image: f32 [N, 1, 28, 28]"
        );
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/models")
            .join(name)
    }

    /// Reading past the weights loses nothing the summary reads: the filtered bytes
    /// decode to what the whole file decodes to (prost skips the fields the light
    /// messages leave out), on every example, scikit-learn's and external data's too.
    #[test]
    fn seeking_past_the_weights_keeps_every_other_field() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let model = entry.unwrap().path().join("model.onnx");
            if !model.is_file() {
                continue;
            }
            let filtered = match light::read_without_weights(&model) {
                Ok(bytes) => bytes,
                Err(_) => panic!("{} does not read", model.display()),
            };
            let whole = std::fs::read(&model).unwrap();
            assert!(filtered.len() <= whole.len());
            assert_eq!(
                light::Model::decode(filtered.as_slice()).unwrap(),
                light::Model::decode(whole.as_slice()).unwrap(),
                "{}",
                model.display()
            );
            seen += 1;
        }
        assert!(seen >= 5, "{seen} examples");
    }

    #[test]
    fn a_truncated_model_is_refused_not_read_past() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(example("cnn")).unwrap();
        for cut in [1, 10, bytes.len() / 2, bytes.len() - 1] {
            let path = dir.path().join("model.onnx");
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let err = ModelInfo::from_path(&path).unwrap_err().to_string();
            assert!(
                err.contains("does not decode") || err.contains("not an ONNX model"),
                "{cut}: {err}"
            );
        }
    }

    /// Found by the `onnx_model` fuzz target: an initializer whose dims multiply
    /// past u64 overflowed the parameter count (a panic in a debug build, a wrong
    /// count in a release one); the model is now refused, naming the initializer.
    #[test]
    fn dims_past_u64_are_an_invalid_model() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(example("iris")).unwrap();
        let mut model = pb::ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = model.graph.as_mut().unwrap();
        graph.initializer.push(pb::TensorProto {
            name: "huge".into(),
            dims: vec![1 << 40, 1 << 40],
            data_type: 1,
            ..Default::default()
        });
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let err = ModelInfo::from_path(&path).unwrap_err();
        assert!(matches!(err, RuntimeError::InvalidModel { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("initializer `huge` has dims [1099511627776, 1099511627776], more elements than can be counted"),
            "{err}"
        );
    }

    #[test]
    fn broken_files_are_invalid_models() {
        for f in ["truncated.onnx", "random.onnx"] {
            let err = ModelInfo::from_path(&fixture(f)).unwrap_err();
            assert!(
                matches!(err, RuntimeError::InvalidModel { .. }),
                "{f}: {err}"
            );
        }
        let err = ModelInfo::from_path(&fixture("model.pkl")).unwrap_err();
        assert!(err.to_string().contains("pickle"), "{err}");
    }
}
