//! The JSON wire forms of a [`Batch`], in one place.
//!
//! Two families of bodies cross the wire:
//!
//! - **Row form** (TF-Serving, Vertex AI, SageMaker JSON): `{"instances": [...]}` in
//!   requests and `{"predictions": [...]}` in responses. One entry per example, row-major.
//!   A model with one input takes the example's value itself; a model with several
//!   inputs takes an object `{"input_name": value, ...}` per example. Responses use
//!   the same rule for outputs.
//! - **Open Inference Protocol v2** (KServe, Triton, MLServer): `{"inputs": [{"name",
//!   "shape", "datatype", "data"}]}` and `{"outputs": [...]}`, one flat row-major
//!   `data` array per tensor.
//!
//! JSON has no NaN or infinity; floats that are not finite travel as the strings
//! `"NaN"`, `"Infinity"` and `"-Infinity"`, which every decoder here accepts.
//! Decoding is typed by the signature when one is known, so `1` becomes an `f32`
//! for a float input and an `i64` for an integer one; without a signature the
//! dtype is inferred (bool, i64, f64 or string).

use serde_json::{Map, Value, json};

mod scan;
mod write;

use crate::error::{Error, Result};
use crate::signature::TensorSpec;
use crate::tensor::{Batch, DType, Tensor, TensorData};

/// Which wire form a request body used; responses answer in the same form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireForm {
    /// `{"instances": [...]}` or a bare JSON array of rows.
    Instances,
    /// Open Inference Protocol v2 `{"inputs": [...]}`.
    Oip,
}

/// Decodes a request body in any accepted form against the model's inputs.
///
/// Accepts `{"instances": [...]}` (with optional `"parameters"`), a bare array of
/// rows, and Open Inference Protocol v2 `{"inputs": [...]}`.
pub fn decode_request(body: &Value, inputs: &[TensorSpec]) -> Result<(Batch, WireForm)> {
    match body {
        Value::Object(map) if map.contains_key("instances") => {
            let instances = map
                .get("instances")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::decode("request", "`instances` must be an array"))?;
            Ok((
                decode_rows(instances, inputs, "instances")?,
                WireForm::Instances,
            ))
        }
        Value::Object(map) if map.contains_key("inputs") => Ok((
            decode_oip_tensors(body, "inputs", Some(inputs), None)?,
            WireForm::Oip,
        )),
        Value::Array(rows) => Ok((decode_rows(rows, inputs, "instances")?, WireForm::Instances)),
        Value::Object(map) => Err(Error::decode(
            "request",
            format!(
                "expected a body with `instances` or `inputs`, found keys: {}",
                map.keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        other => Err(Error::decode(
            "request",
            format!(
                "expected a JSON object with `instances` or `inputs`, found {}",
                kind(other)
            ),
        )),
    }
}

/// The request body `body`, still in bytes, when it is `{"instances": [...]}` or a bare
/// array of rows of numbers for a model of one numeric input: read straight into the
/// tensor, with no [`Value`] tree. `None` for any other body, which
/// [`decode_request`] then reads (and words the errors of); what this accepts, it
/// decodes exactly as [`decode_request`] would.
pub fn decode_instances_fast(body: &[u8], inputs: &[TensorSpec]) -> Option<Batch> {
    scan::rows(body, "instances", inputs)
}

/// [`decode_instances_fast`] for responses: `{"predictions": [...]}` of numbers for
/// one numeric output, or `None` for [`decode_predictions`] to read.
pub fn decode_predictions_fast(body: &[u8], outputs: &[TensorSpec]) -> Option<Batch> {
    scan::rows(body, "predictions", outputs)
}

/// `{"instances": [...]}` for a batch of inputs.
pub fn encode_instances(batch: &Batch) -> Result<Value> {
    Ok(json!({ "instances": encode_rows(batch)? }))
}

/// `{"predictions": [...]}` for a batch of outputs.
pub fn encode_predictions(batch: &Batch) -> Result<Value> {
    Ok(json!({ "predictions": encode_rows(batch)? }))
}

/// [`encode_instances`] as the bytes of its JSON, written without a [`Value`] tree.
pub fn encode_instances_bytes(batch: &Batch) -> Result<Vec<u8>> {
    write::rows("instances", batch)
}

/// [`encode_predictions`] as the bytes of its JSON, written without a [`Value`] tree.
pub fn encode_predictions_bytes(batch: &Batch) -> Result<Vec<u8>> {
    write::rows("predictions", batch)
}

/// Reads `{"predictions": [...]}`; `outputs` types the values when known.
///
/// With one expected output the predictions are that output's rows; with several,
/// each prediction is an object keyed by output name. Without a signature, a
/// prediction that is an object is read as named outputs, anything else as one
/// output named `predictions`.
pub fn decode_predictions(body: &Value, outputs: Option<&[TensorSpec]>) -> Result<Batch> {
    let rows = body
        .get("predictions")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Error::decode("response", "expected an object with a `predictions` array")
        })?;
    match outputs {
        Some(specs) => decode_rows(rows, specs, "predictions"),
        None => {
            let specs: Vec<TensorSpec> = match rows.first() {
                Some(Value::Object(first)) => first.keys().map(|k| untyped_spec(k)).collect(),
                _ => vec![untyped_spec("predictions")],
            };
            decode_rows_inner(rows, &specs, "predictions", false)
        }
    }
}

fn untyped_spec(name: &str) -> TensorSpec {
    TensorSpec::new(name, DType::String, vec![])
}

/// Open Inference Protocol v2 request: `{"inputs": [...]}`.
pub fn encode_oip_request(batch: &Batch) -> Result<Value> {
    Ok(json!({ "inputs": encode_oip_tensors(batch, &BinaryOutputs::None, &mut Vec::new()) }))
}

/// Open Inference Protocol v2 response: `{"model_name", "outputs": [...]}`.
pub fn encode_oip_response(model_name: &str, batch: &Batch) -> Result<Value> {
    let outputs = encode_oip_tensors(batch, &BinaryOutputs::None, &mut Vec::new());
    Ok(json!({ "model_name": model_name, "outputs": outputs }))
}

/// Reads the `inputs` of an OIP request (typed by `inputs` when given).
pub fn decode_oip_request(body: &Value, inputs: Option<&[TensorSpec]>) -> Result<Batch> {
    decode_oip_tensors(body, "inputs", inputs, None)
}

/// Reads the `outputs` of an OIP response.
pub fn decode_oip_response(body: &Value) -> Result<Batch> {
    decode_oip_tensors(body, "outputs", None, None)
}

/// The header that tells the JSON part of an Open Inference Protocol body from the
/// binary tensor data after it (Triton's and KServe's binary data extension).
pub const OIP_HEADER_LENGTH: &str = "inference-header-content-length";

/// Which outputs an OIP request asked to get as binary data: all of them
/// (`"parameters": {"binary_data_output": true}`), or those whose entry in
/// `"outputs"` says `"parameters": {"binary_data": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BinaryOutputs {
    #[default]
    None,
    All,
    Named(Vec<String>),
}

impl BinaryOutputs {
    fn wants(&self, name: &str) -> bool {
        match self {
            BinaryOutputs::None => false,
            BinaryOutputs::All => true,
            BinaryOutputs::Named(names) => names.iter().any(|n| n == name),
        }
    }

    /// What `request` (an OIP request's JSON) asks for.
    pub fn requested(request: &Value) -> BinaryOutputs {
        let flag = |v: Option<&Value>, key: &str| {
            v.and_then(|p| p.get(key)).and_then(Value::as_bool) == Some(true)
        };
        if flag(request.get("parameters"), "binary_data_output") {
            return BinaryOutputs::All;
        }
        let named: Vec<String> = request
            .get("outputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|o| flag(o.get("parameters"), "binary_data"))
            .filter_map(|o| o.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        if named.is_empty() {
            BinaryOutputs::None
        } else {
            BinaryOutputs::Named(named)
        }
    }
}

/// Reads an OIP request in the binary data extension's form: `json_len` bytes of
/// JSON, then the data of every input whose `parameters.binary_data_size` is set, in
/// the order of `inputs`, little-endian and row-major (`BYTES` elements each behind
/// a 4-byte little-endian length). Inputs may mix JSON `data` and binary data.
pub fn decode_oip_binary_request(
    body: &[u8],
    json_len: usize,
    inputs: Option<&[TensorSpec]>,
) -> Result<(Batch, BinaryOutputs)> {
    let (head, mut data) = body.split_at_checked(json_len).ok_or_else(|| {
        Error::decode(
            "request",
            format!(
                "Inference-Header-Content-Length is {json_len} but the body has {} bytes",
                body.len()
            ),
        )
    })?;
    let value: Value = serde_json::from_slice(head).map_err(|e| {
        Error::decode(
            "request",
            format!(
                "the first {json_len} bytes (Inference-Header-Content-Length) are not JSON: {e}"
            ),
        )
    })?;
    let batch = decode_oip_tensors(&value, "inputs", inputs, Some(&mut data))?;
    if !data.is_empty() {
        return Err(Error::decode(
            "request",
            format!(
                "{} bytes of binary data follow the last input's; each input's binary_data_size must count its bytes",
                data.len()
            ),
        ));
    }
    Ok((batch, BinaryOutputs::requested(&value)))
}

/// An OIP response with the outputs `binary` names as binary data after the JSON:
/// the body, and the JSON part's length for `Inference-Header-Content-Length`.
pub fn encode_oip_binary_response(
    model_name: &str,
    batch: &Batch,
    binary: &BinaryOutputs,
) -> Result<(Vec<u8>, usize)> {
    let mut tail = Vec::new();
    let outputs = encode_oip_tensors(batch, binary, &mut tail);
    let mut body = serde_json::to_vec(&json!({ "model_name": model_name, "outputs": outputs }))
        .map_err(|e| Error::invalid(format!("cannot encode the outputs: {e}")))?;
    let json_len = body.len();
    body.extend_from_slice(&tail);
    Ok((body, json_len))
}

/// A tensor's elements as the binary data extension lays them out: as `.npy` does,
/// and `BYTES` elements each behind a 4-byte little-endian length.
fn write_binary(data: &TensorData, out: &mut Vec<u8>) {
    match data {
        TensorData::String(v) => {
            for s in v {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        fixed => out.extend(crate::npy::to_le_bytes(fixed).unwrap_or_default()),
    }
}

/// `count` elements of `dtype` from the front of `data`, `size` bytes of it.
fn read_binary(data: &[u8], dtype: DType, count: usize, name: &str) -> Result<TensorData> {
    let bad = |m: String| Error::decode("request", format!("tensor `{name}`: {m}"));
    if dtype != DType::String {
        let width = dtype.size_of();
        if count.checked_mul(width) != Some(data.len()) {
            return Err(bad(format!(
                "binary_data_size is {} bytes but its shape holds {count} elements of {width} bytes",
                data.len()
            )));
        }
        return crate::npy::from_le_bytes(data.to_vec(), dtype)
            .ok_or_else(|| bad(format!("{dtype} has no fixed width")));
    }
    let mut rest = data;
    let mut items = Vec::new();
    while let Some((len, after)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        let (item, after) = after
            .split_at_checked(len)
            .ok_or_else(|| bad(format!("a BYTES element of {len} bytes runs past the data")))?;
        items.push(
            String::from_utf8(item.to_vec())
                .map_err(|_| bad("a BYTES element is not UTF-8".to_string()))?,
        );
        rest = after;
    }
    if !rest.is_empty() || items.len() != count {
        return Err(bad(format!(
            "the binary data holds {} BYTES elements (and {} stray bytes) where the shape holds {count}",
            items.len(),
            rest.len()
        )));
    }
    Ok(TensorData::String(items))
}

/// The OIP entries of `batch`; the outputs `binary` names get their bytes appended to
/// `tail` and a `binary_data_size` instead of `data`.
fn encode_oip_tensors(batch: &Batch, binary: &BinaryOutputs, tail: &mut Vec<u8>) -> Vec<Value> {
    batch
        .iter()
        .map(|t| {
            let data = t.tensor.data();
            let mut entry = json!({
                "name": t.name,
                "shape": t.tensor.shape(),
                "datatype": t.tensor.dtype().oip_name(),
            });
            if binary.wants(&t.name) {
                let before = tail.len();
                write_binary(data, tail);
                entry["parameters"] = json!({ "binary_data_size": tail.len() - before });
            } else {
                entry["data"] = (0..data.len()).map(|i| element_to_json(data, i)).collect();
            }
            entry
        })
        .collect()
}

/// `binary`, for a request in the binary data extension's form, is the data after
/// the JSON; each input with a `binary_data_size` takes its bytes from the front.
fn decode_oip_tensors(
    body: &Value,
    key: &'static str,
    specs: Option<&[TensorSpec]>,
    mut binary: Option<&mut &[u8]>,
) -> Result<Batch> {
    let what = if key == "inputs" {
        "request"
    } else {
        "response"
    };
    let list = body
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| Error::decode(what, format!("`{key}` must be an array of tensors")))?;
    let mut batch = Batch::new();
    for (i, item) in list.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| Error::decode(what, format!("`{key}[{i}]` must be an object")))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::decode(what, format!("`{key}[{i}]` has no `name`")))?;
        let field = |f: &str| {
            obj.get(f)
                .ok_or_else(|| Error::decode(what, format!("tensor `{name}` has no `{f}`")))
        };
        let shape: Vec<usize> = field("shape")?
            .as_array()
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect()
            })
            .ok_or_else(|| {
                Error::decode(
                    what,
                    format!("tensor `{name}`: `shape` must be an array of non-negative integers"),
                )
            })?;
        let datatype = field("datatype")?.as_str().unwrap_or_default();
        let dtype = DType::from_oip_name(datatype).ok_or_else(|| {
            Error::decode(
                what,
                format!(
                    "tensor `{name}`: unsupported datatype `{datatype}` (supported: {})",
                    DType::ALL.map(DType::oip_name).join(", ")
                ),
            )
        })?;
        if let Some(spec) = specs.and_then(|s| s.iter().find(|s| s.name == name))
            && spec.dtype != dtype
        {
            return Err(Error::invalid(format!(
                "input `{name}` has datatype {datatype} but the model expects {}",
                spec.dtype.oip_name()
            )));
        }
        let binary_size = obj
            .get("parameters")
            .and_then(|p| p.get("binary_data_size"));
        let data = match (binary_size, binary.as_deref_mut()) {
            (None, _) => {
                let mut flat = Vec::new();
                flatten(field("data")?, &mut flat);
                values_to_data(&flat, dtype, name)?
            }
            (Some(size), Some(rest)) => {
                let size = size.as_u64().ok_or_else(|| {
                    Error::decode(
                        what,
                        format!("tensor `{name}`: `binary_data_size` must be a byte count"),
                    )
                })? as usize;
                let (mine, after) = rest.split_at_checked(size).ok_or_else(|| {
                    Error::decode(
                        what,
                        format!(
                            "tensor `{name}`: binary_data_size is {size} but only {} bytes of binary data are left",
                            rest.len()
                        ),
                    )
                })?;
                *rest = after;
                let count = crate::tensor::element_count(&shape).ok_or_else(|| {
                    Error::invalid(format!(
                        "tensor `{name}`: shape {shape:?} holds too many elements"
                    ))
                })?;
                read_binary(mine, dtype, count, name)?
            }
            (Some(_), None) => {
                return Err(Error::decode(
                    what,
                    format!(
                        "tensor `{name}` has binary_data_size but the body has no binary data: \
                         send the JSON's length in the Inference-Header-Content-Length header"
                    ),
                ));
            }
        };
        let tensor = Tensor::new(shape, data)
            .map_err(|e| Error::invalid(format!("tensor `{name}`: {}", strip_prefix(&e))))?;
        batch.insert(name, tensor)?;
    }
    Ok(batch)
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

fn encode_rows(batch: &Batch) -> Result<Vec<Value>> {
    let n = batch.batch_size()?;
    let single = batch.len() == 1;
    let mut rows = Vec::with_capacity(n);
    for r in 0..n {
        if single {
            let t = &batch.iter().next().expect("one tensor").tensor;
            rows.push(row_to_json(t, r));
        } else {
            let mut obj = Map::new();
            for t in batch.iter() {
                obj.insert(t.name.clone(), row_to_json(&t.tensor, r));
            }
            rows.push(Value::Object(obj));
        }
    }
    Ok(rows)
}

/// Row `r` of a tensor as nested JSON arrays (a scalar when the row shape is empty).
fn row_to_json(t: &Tensor, r: usize) -> Value {
    let row_shape = &t.shape()[1..];
    let row_len = t.row_len();
    nested(t.data(), r * row_len, row_shape)
}

fn nested(data: &TensorData, offset: usize, shape: &[usize]) -> Value {
    match shape.split_first() {
        None => element_to_json(data, offset),
        Some((&n, rest)) => {
            let stride: usize = rest.iter().product();
            Value::Array(
                (0..n)
                    .map(|i| nested(data, offset + i * stride, rest))
                    .collect(),
            )
        }
    }
}

fn element_to_json(data: &TensorData, i: usize) -> Value {
    match data {
        TensorData::F32(v) => float_to_json(v[i] as f64, Some(v[i])),
        TensorData::F64(v) => float_to_json(v[i], None),
        TensorData::I64(v) => json!(v[i]),
        TensorData::I32(v) => json!(v[i]),
        TensorData::I8(v) => json!(v[i]),
        TensorData::U8(v) => json!(v[i]),
        TensorData::Bool(v) => json!(v[i]),
        TensorData::String(v) => json!(v[i]),
    }
}

fn float_to_json(x: f64, as_f32: Option<f32>) -> Value {
    match write::non_finite_name(x) {
        Some(name) => json!(name),
        // The shortest decimal that reads back as the same f32, not the f64 widening.
        None => json!(as_f32.map_or(x, write::widen_f32)),
    }
}

fn decode_rows(rows: &[Value], specs: &[TensorSpec], key: &'static str) -> Result<Batch> {
    decode_rows_inner(rows, specs, key, true)
}

fn decode_rows_inner(
    rows: &[Value],
    specs: &[TensorSpec],
    key: &'static str,
    typed: bool,
) -> Result<Batch> {
    let what = if key == "instances" {
        "request"
    } else {
        "response"
    };
    if specs.is_empty() {
        return Err(Error::decode(
            what,
            "the model declares no tensors to decode into",
        ));
    }
    let named = specs.len() > 1
        || rows.first().is_some_and(|r| {
            r.as_object()
                .is_some_and(|o| o.len() == 1 && o.contains_key(&specs[0].name))
        });
    let mut batch = Batch::new();
    for spec in specs {
        let mut per_row = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            if named {
                let obj = row.as_object().ok_or_else(|| {
                    Error::decode(
                        what,
                        format!(
                            "`{key}[{i}]` must be an object keyed by {} name ({}) because the model has several",
                            if key == "instances" { "input" } else { "output" },
                            specs.iter().map(|s| format!("`{}`", s.name)).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?;
                let v = obj.get(&spec.name).ok_or_else(|| {
                    Error::invalid(format!(
                        "input `{}` is missing from `{key}[{i}]`",
                        spec.name
                    ))
                })?;
                per_row.push(v);
            } else {
                per_row.push(row);
            }
        }
        if named
            && let Some(extra) = rows
                .iter()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys())
                .find(|k| !specs.iter().any(|s| &s.name == *k))
        {
            return Err(Error::invalid(format!(
                "input `{extra}` is not an input of this model (it expects {})",
                specs
                    .iter()
                    .map(|s| format!("`{}`", s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let dtype = typed.then_some(spec.dtype);
        batch.insert(
            spec.name.clone(),
            rows_to_tensor(&per_row, dtype, &spec.name)?,
        )?;
    }
    Ok(batch)
}

/// Builds a tensor from one JSON value per example; shape `[rows, ...row shape]`.
fn rows_to_tensor(rows: &[&Value], dtype: Option<DType>, name: &str) -> Result<Tensor> {
    let row_shape = match rows.first() {
        Some(first) => shape_of(first),
        None => Vec::new(),
    };
    let mut flat = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let before = flat.len();
        flatten(row, &mut flat);
        let s = shape_of(row);
        let count = flat.len() - before;
        if s != row_shape || Some(count) != crate::tensor::element_count(&row_shape) {
            return Err(Error::invalid(format!(
                "input `{name}`: example {i} has shape {} but example 0 has shape {} (rows must be rectangular and alike)",
                crate::tensor::ShapeDisplay(&s),
                crate::tensor::ShapeDisplay(&row_shape)
            )));
        }
    }
    let dtype = match dtype {
        Some(d) => d,
        None => infer_dtype(&flat),
    };
    let data = values_to_data(&flat, dtype, name)?;
    let mut shape = vec![rows.len()];
    shape.extend(row_shape);
    Tensor::new(shape, data)
}

fn shape_of(v: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut cur = v;
    while let Value::Array(items) = cur {
        shape.push(items.len());
        match items.first() {
            Some(first) => cur = first,
            None => break,
        }
    }
    shape
}

fn infer_dtype(values: &[&Value]) -> DType {
    if values.iter().all(|v| v.is_boolean()) && !values.is_empty() {
        DType::Bool
    } else if values.iter().all(|v| v.is_i64()) {
        DType::I64
    } else if values
        .iter()
        .all(|v| v.is_number() || special_float(v).is_some())
    {
        DType::F64
    } else {
        DType::String
    }
}

fn special_float(v: &Value) -> Option<f64> {
    match v.as_str()? {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn values_to_data(values: &[&Value], dtype: DType, name: &str) -> Result<TensorData> {
    let bad = |i: usize, v: &Value| {
        Error::invalid(format!(
            "input `{name}`: element {i} is {} ({}), which is not a valid {dtype}",
            kind(v),
            short(v)
        ))
    };
    let float = |i: usize, v: &Value| {
        v.as_f64()
            .or_else(|| special_float(v))
            .ok_or_else(|| bad(i, v))
    };
    let int = |i: usize, v: &Value, min: i64, max: i64| {
        v.as_i64()
            .filter(|x| (min..=max).contains(x))
            .ok_or_else(|| bad(i, v))
    };
    macro_rules! collect {
        ($f:expr) => {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| $f(i, *v))
                .collect::<Result<Vec<_>>>()?
        };
    }
    Ok(match dtype {
        DType::F32 => TensorData::F32(collect!(|i, v| float(i, v).map(|x| x as f32))),
        DType::F64 => TensorData::F64(collect!(float)),
        DType::I64 => TensorData::I64(collect!(|i, v| int(i, v, i64::MIN, i64::MAX))),
        DType::I32 => TensorData::I32(collect!(
            |i, v| int(i, v, i32::MIN as i64, i32::MAX as i64).map(|x| x as i32)
        )),
        DType::I8 => TensorData::I8(collect!(
            |i, v| int(i, v, i8::MIN as i64, i8::MAX as i64).map(|x| x as i8)
        )),
        DType::U8 => TensorData::U8(collect!(
            |i, v| int(i, v, 0, u8::MAX as i64).map(|x| x as u8)
        )),
        DType::Bool => TensorData::Bool(collect!(|i, v: &Value| v
            .as_bool()
            .ok_or_else(|| bad(i, v)))),
        DType::String => TensorData::String(collect!(|_i, v: &Value| Ok::<_, Error>(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }))),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `v` as JSON, cut to about 40 bytes for an error message (on a character
/// boundary: the value is the client's and may hold any text).
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..s.floor_char_boundary(37)])
    } else {
        s
    }
}

fn strip_prefix(e: &Error) -> String {
    match e {
        Error::InvalidInput(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::Dim;

    fn spec(name: &str, dtype: DType, row: &[usize]) -> TensorSpec {
        let mut shape = vec![Dim::Dynamic(Some("N".into()))];
        shape.extend(row.iter().map(|&d| Dim::Fixed(d)));
        TensorSpec::new(name, dtype, shape)
    }

    fn sample(dtype: DType) -> TensorData {
        match dtype {
            DType::F32 => vec![0.5f32, -1.25, 3.0e-7, 1.0e10, f32::NAN, f32::INFINITY].into(),
            DType::F64 => vec![0.1f64, -2.0, 1e-300, 7.0, f64::NEG_INFINITY, 0.0].into(),
            DType::I64 => vec![i64::MIN, -1, 0, 1, 2, i64::MAX].into(),
            DType::I32 => vec![i32::MIN, -1, 0, 1, 2, i32::MAX].into(),
            DType::I8 => vec![i8::MIN, -1, 0, 1, 2, i8::MAX].into(),
            DType::U8 => vec![0u8, 1, 2, 3, 254, 255].into(),
            DType::Bool => vec![true, false, true, true, false, false].into(),
            DType::String => vec!["a", "", "ü", "\"q\"", "1", "NaN"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
                .into(),
        }
    }

    /// Element-wise equality that treats NaN as equal to NaN.
    fn same(a: &Batch, b: &Batch) -> bool {
        a.len() == b.len()
            && a.iter().all(|t| {
                let Some(o) = b.get(&t.name) else {
                    return false;
                };
                o.shape() == t.tensor.shape()
                    && o.dtype() == t.tensor.dtype()
                    && (0..o.len()).all(|i| {
                        let (x, y) = (o.data().get_f64(i), t.tensor.data().get_f64(i));
                        match (x, y) {
                            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
                            _ => o.data().display_at(i) == t.tensor.data().display_at(i),
                        }
                    })
            })
    }

    #[test]
    fn instances_round_trip_every_dtype() {
        for dtype in DType::ALL {
            let t = Tensor::new(vec![3, 2], sample(dtype)).unwrap();
            let batch = Batch::new().with("x", t).unwrap();
            let body = encode_instances(&batch).unwrap();
            let (back, form) = decode_request(&body, &[spec("x", dtype, &[2])]).unwrap();
            assert_eq!(form, WireForm::Instances);
            assert!(same(&batch, &back), "{dtype}: {body}");
        }
    }

    #[test]
    fn oip_round_trip_every_dtype() {
        for dtype in DType::ALL {
            let t = Tensor::new(vec![2, 3], sample(dtype)).unwrap();
            let batch = Batch::new().with("x", t).unwrap();
            let body = encode_oip_request(&batch).unwrap();
            let (back, form) = decode_request(&body, &[spec("x", dtype, &[3])]).unwrap();
            assert_eq!(form, WireForm::Oip);
            assert!(same(&batch, &back), "{dtype}: {body}");
            let resp = encode_oip_response("m", &batch).unwrap();
            assert!(
                same(&batch, &decode_oip_response(&resp).unwrap()),
                "{dtype}"
            );
        }
    }

    #[test]
    fn multi_input_uses_named_rows() {
        let batch = Batch::new()
            .with(
                "a",
                Tensor::new(vec![2, 2], vec![1f32, 2., 3., 4.]).unwrap(),
            )
            .unwrap()
            .with(
                "b",
                Tensor::new(vec![2], vec!["x".to_string(), "y".to_string()]).unwrap(),
            )
            .unwrap();
        let body = encode_instances(&batch).unwrap();
        assert_eq!(
            body,
            json!({"instances": [{"a": [1.0, 2.0], "b": "x"}, {"a": [3.0, 4.0], "b": "y"}]})
        );
        let specs = [spec("a", DType::F32, &[2]), spec("b", DType::String, &[])];
        assert_eq!(decode_request(&body, &specs).unwrap().0, batch);
    }

    #[test]
    fn predictions_round_trip() {
        let out = Batch::new()
            .with("label", Tensor::new(vec![2], vec![1i64, 0]).unwrap())
            .unwrap()
            .with(
                "prob",
                Tensor::new(vec![2, 2], vec![0.25f32, 0.75, 0.5, 0.5]).unwrap(),
            )
            .unwrap();
        let body = encode_predictions(&out).unwrap();
        let specs = [
            spec("label", DType::I64, &[]),
            spec("prob", DType::F32, &[2]),
        ];
        assert_eq!(decode_predictions(&body, Some(&specs)).unwrap(), out);
        let untyped = decode_predictions(&body, None).unwrap();
        assert_eq!(untyped.get("label").unwrap().dtype(), DType::I64);
        assert_eq!(untyped.get("prob").unwrap().dtype(), DType::F64);
    }

    #[test]
    fn bare_array_is_instances() {
        let (b, _) =
            decode_request(&json!([[1, 2], [3, 4]]), &[spec("x", DType::F32, &[2])]).unwrap();
        assert_eq!(
            b.get("x").unwrap(),
            &Tensor::new(vec![2, 2], vec![1f32, 2., 3., 4.]).unwrap()
        );
    }

    fn err(body: Value, specs: &[TensorSpec]) -> String {
        decode_request(&body, specs).unwrap_err().to_string()
    }

    #[test]
    fn decode_errors_name_the_input() {
        let x = [spec("x", DType::I64, &[2])];
        assert_eq!(
            err(json!({"instances": [[1, 2.5]]}), &x),
            "invalid input: input `x`: element 1 is a float (2.5), which is not a valid i64"
        );
        assert_eq!(
            err(json!({"instances": [[1, 2], [3]]}), &x),
            "invalid input: input `x`: example 1 has shape [1] but example 0 has shape [2] (rows must be rectangular and alike)"
        );
        assert_eq!(
            err(json!({"instances": 3}), &x),
            "cannot decode request: `instances` must be an array"
        );
        assert_eq!(
            err(json!({"foo": 1}), &x),
            "cannot decode request: expected a body with `instances` or `inputs`, found keys: `foo`"
        );
        assert_eq!(
            err(
                json!({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}),
                &x
            ),
            "invalid input: input `x` has datatype FP32 but the model expects INT64"
        );
        assert_eq!(
            err(
                json!({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [1, 2]}]}),
                &x
            ),
            "invalid input: tensor `x`: shape [2, 2] holds 4 elements but 2 were given"
        );
        assert_eq!(
            err(
                json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP16", "data": [1]}]}),
                &x
            ),
            "cannot decode request: tensor `x`: unsupported datatype `FP16` (supported: FP32, FP64, INT64, INT32, INT8, UINT8, BOOL, BYTES)"
        );
        let two = [spec("a", DType::F32, &[]), spec("b", DType::F32, &[])];
        assert_eq!(
            err(json!({"instances": [{"a": 1}]}), &two),
            "invalid input: input `b` is missing from `instances[0]`"
        );
        assert_eq!(
            err(json!({"instances": [{"a": 1, "b": 2, "c": 3}]}), &two),
            "invalid input: input `c` is not an input of this model (it expects `a`, `b`)"
        );
    }

    /// Found by the `request_instances` fuzz target: an element quoted in an error
    /// was cut at byte 37, which may fall inside a character (a panic, so a
    /// client's bad request killed the connection instead of getting its 400).
    #[test]
    fn long_values_in_errors_are_cut_between_characters() {
        let x = [spec("x", DType::F32, &[2])];
        // `"` and 35 ASCII bytes put the two bytes of `é` at 36..38.
        let text = format!("{}é and more", "a".repeat(35));
        assert_eq!(
            err(json!({"instances": [[1.0, text]]}), &x),
            format!(
                "invalid input: input `x`: element 1 is a string (\"{}...), which is not a valid f32",
                "a".repeat(35)
            )
        );
    }

    #[test]
    fn nested_oip_data_is_accepted() {
        let body = json!({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4]]}]});
        let b = decode_oip_request(&body, None).unwrap();
        assert_eq!(b.get("x").unwrap().shape(), &[2, 2]);
    }

    /// Binary inputs of every kind beside a JSON one, and a response that puts the
    /// asked-for output in binary: what goes in comes back, byte for byte.
    #[test]
    fn binary_tensor_data_round_trips() {
        let words = ["a", "", "héllo"];
        let mut tail = Vec::new();
        [1.5f32, -2.0]
            .iter()
            .for_each(|x| tail.extend_from_slice(&x.to_le_bytes()));
        for w in words {
            tail.extend_from_slice(&(w.len() as u32).to_le_bytes());
            tail.extend_from_slice(w.as_bytes());
        }
        let head = json!({"inputs": [
            {"name": "f", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
            {"name": "j", "shape": [1], "datatype": "INT64", "data": [7]},
            {"name": "s", "shape": [3], "datatype": "BYTES", "parameters": {"binary_data_size": tail.len() - 8}},
        ], "parameters": {"binary_data_output": true}})
        .to_string();
        let mut body = head.clone().into_bytes();
        body.extend_from_slice(&tail);
        let (batch, wanted) = decode_oip_binary_request(&body, head.len(), None).unwrap();
        assert_eq!(wanted, BinaryOutputs::All);
        assert_eq!(
            batch.get("f").unwrap().data(),
            &TensorData::F32(vec![1.5, -2.0])
        );
        assert_eq!(batch.get("j").unwrap().data(), &TensorData::I64(vec![7]));
        assert_eq!(
            batch.get("s").unwrap().data(),
            &TensorData::String(words.map(str::to_string).to_vec())
        );

        let named = BinaryOutputs::Named(vec!["s".into()]);
        let (out, json_len) = encode_oip_binary_response("m", &batch, &named).unwrap();
        let answer: Value = serde_json::from_slice(&out[..json_len]).unwrap();
        assert_eq!(answer["outputs"][0]["data"], json!([1.5, -2.0]));
        assert_eq!(
            answer["outputs"][2]["parameters"]["binary_data_size"],
            tail.len() - 8
        );
        assert_eq!(&out[json_len..], &tail[8..]);
    }

    #[test]
    fn binary_tensor_data_that_does_not_add_up_is_refused() {
        let head = |size: usize| {
            json!({"inputs": [{"name": "f", "shape": [2], "datatype": "FP32",
                               "parameters": {"binary_data_size": size}}]})
            .to_string()
        };
        let body = |size: usize, data: usize| {
            let h = head(size);
            let mut b = h.clone().into_bytes();
            b.extend(std::iter::repeat_n(0u8, data));
            (b, h.len())
        };
        for (size, data, needle) in [
            (8, 4, "only 4 bytes"),
            (4, 4, "holds 2 elements"),
            (8, 12, "4 bytes of binary data follow"),
        ] {
            let (b, len) = body(size, data);
            let err = decode_oip_binary_request(&b, len, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{size}/{data}: {err}");
        }
        let (b, len) = body(8, 8);
        let err = decode_oip_binary_request(&b, len + 100, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Inference-Header-Content-Length"), "{err}");
        let err = decode_oip_request(&serde_json::from_str(&head(8)).unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Inference-Header-Content-Length"), "{err}");
    }
}
