//! Structure-aware mutations of ONNX models and of package tars, for the custom
//! mutators of `onnx_model` and `package_unpack`.
//!
//! Byte mutations of a protobuf rarely survive: every field sits inside messages
//! whose lengths prefix them, so changing a dimension's varint from one byte to
//! nine breaks every enclosing length. This decodes the model, changes one field
//! the inspector reads (a dimension, a type, an external-data entry, a classifier's
//! labels, ...) to a value chosen to hurt, and encodes it again. A tar is the same
//! story one level up: its headers carry sizes and checksums, and the manifest's
//! sizes must stay valid JSON numbers, so entries and manifest fields are changed
//! on the parsed archive and written back. libFuzzer's byte mutations still get the
//! other half of the turns.

use prost::Message;
use tract_onnx::pb;

/// Values that break arithmetic on dimensions and sizes.
const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    4,
    255,
    256,
    1 << 31,
    (1 << 32) + 1,
    1 << 40,
    1 << 62,
    i64::MAX,
    i64::MIN,
];

/// `location` values, relative to the fuzzed model's directory (see `onnx_model`).
const LOCATIONS: &[&str] = &[
    "weights.bin",
    "sub/w.bin",
    "./sub//w.bin",
    "link.bin",
    "data",
    "sub",
    "../weights.bin",
    "/etc/hostname",
    "",
    "weights.bin/x",
    "a\\b",
    "missing.bin",
];

/// `offset` and `length` values.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "16",
    "255",
    "256",
    "257",
    "18446744073709551615",
    "18446744073709551600",
    "-1",
    "1e3",
    "",
];

/// A small deterministic generator seeded by libFuzzer's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: fast, and every seed gives its own stream.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// `data` decoded as a model, changed in one field chosen by `seed`, encoded again;
/// `None` when `data` is not a model with a graph.
pub fn mutate_onnx(data: &[u8], seed: u32) -> Option<Vec<u8>> {
    let mut model = pb::ModelProto::decode(data).ok()?;
    let mut rng = Rng(u64::from(seed) | 1 << 32);
    let graph = model.graph.as_mut()?;
    match rng.below(9) {
        0 => {
            let t = initializer(graph, &mut rng);
            let value = *rng.pick(INTERESTING);
            let i = rng.below(t.dims.len() + 1);
            match t.dims.get_mut(i) {
                Some(d) => *d = value,
                None => t.dims.push(value),
            }
        }
        1 => initializer(graph, &mut rng).data_type = rng.below(25) as i32,
        2 => {
            let t = initializer(graph, &mut rng);
            t.data_location = Some(1);
            let key = *rng.pick(&["location", "offset", "length"]);
            let value = if key == "location" {
                rng.pick(LOCATIONS)
            } else {
                rng.pick(NUMBERS)
            };
            t.external_data.retain(|e| e.key != key);
            t.external_data.push(pb::StringStringEntryProto {
                key: key.into(),
                value: value.to_string(),
            });
        }
        3 => {
            let io = if rng.below(2) == 0 {
                &mut graph.input
            } else {
                &mut graph.output
            };
            let n = io.len();
            let vi = io.get_mut(rng.below(n))?;
            if let Some(pb::type_proto::Value::TensorType(t)) =
                vi.r#type.as_mut().and_then(|t| t.value.as_mut())
            {
                if rng.below(3) == 0 {
                    t.elem_type = rng.below(25) as i32;
                } else {
                    use pb::tensor_shape_proto::{Dimension, dimension::Value};
                    let shape = t.shape.get_or_insert_with(Default::default);
                    let value = match rng.below(3) {
                        0 => Some(Value::DimValue(*rng.pick(INTERESTING))),
                        1 => Some(Value::DimParam(rng.pick(&["N", "", "batch"]).to_string())),
                        _ => None,
                    };
                    let i = rng.below(shape.dim.len() + 1);
                    let dim = Dimension {
                        value,
                        ..Default::default()
                    };
                    match shape.dim.get_mut(i) {
                        Some(d) => *d = dim,
                        None => shape.dim.push(dim),
                    }
                }
            }
        }
        4 => {
            let n = graph.node.len();
            let node = graph.node.get_mut(rng.below(n))?;
            node.op_type = rng
                .pick(&[
                    "ZipMap",
                    "LinearClassifier",
                    "TreeEnsembleClassifier",
                    "SVMClassifier",
                ])
                .to_string();
            let name = *rng.pick(&[
                "classlabels_int64s",
                "classlabels_ints",
                "classlabels_strings",
            ]);
            node.attribute.retain(|a| a.name != name);
            let count = *rng.pick(&[0usize, 1, 3, 1000]);
            node.attribute.push(pb::AttributeProto {
                name: name.into(),
                ints: (0..count as i64).collect(),
                strings: (0..count).map(|i| vec![b'a' + (i % 26) as u8]).collect(),
                ..Default::default()
            });
        }
        5 => {
            model.ir_version = *rng.pick(INTERESTING);
        }
        6 => {
            // A copy of the graph as a subgraph attribute: external tensors in
            // subgraphs are checked too.
            let copy = graph.clone();
            let n = graph.node.len();
            let node = graph.node.get_mut(rng.below(n))?;
            node.attribute.push(pb::AttributeProto {
                name: "body".into(),
                g: Some(copy),
                ..Default::default()
            });
        }
        7 => {
            let which = rng.below(3);
            let list_len = match which {
                0 => graph.input.len(),
                1 => graph.output.len(),
                _ => graph.initializer.len(),
            };
            let i = rng.below(list_len);
            match which {
                0 if list_len > 0 => drop(graph.input.remove(i)),
                1 if list_len > 0 => drop(graph.output.remove(i)),
                _ if list_len > 0 => {
                    let copy = graph.initializer[i].clone();
                    graph.initializer.push(copy);
                }
                _ => return None,
            }
        }
        _ => {
            let t = initializer(graph, &mut rng);
            t.raw_data = vec![0; rng.below(64)];
        }
    }
    Some(model.encode_to_vec())
}

/// A random initializer of `graph`, a new one when it has none.
fn initializer<'a>(graph: &'a mut pb::GraphProto, rng: &mut Rng) -> &'a mut pb::TensorProto {
    if graph.initializer.is_empty() {
        graph.initializer.push(pb::TensorProto {
            name: "fuzz".into(),
            dims: vec![4],
            data_type: 1,
            ..Default::default()
        });
    }
    let i = rng.below(graph.initializer.len());
    &mut graph.initializer[i]
}

/// Entry paths that must never be extracted as given.
const ENTRY_PATHS: &[&str] = &[
    "../evil",
    "/abs",
    "a/../b",
    "./modelport.json",
    "modelport.json",
    "model.onnx/x",
    "modelport.json/x",
    "x\\y",
    "",
    ".",
    "a//b",
    "weights",
    "weights/w.bin/z",
    "C:x",
    "é",
];

/// Manifest sizes around the ones that matter: the file's, the default cap
/// (64 GiB) and u64's end.
const SIZES: &[u64] = &[
    0,
    1,
    765,
    766,
    (64 << 30) + 1,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

/// Tar entry types, `0` (regular) to the GNU and pax extensions.
const ENTRY_TYPES: &[u8] = b"01234567LKxgSVD\0";

/// One entry of a tar: its raw header fields of interest and its data.
struct Entry {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    data: Vec<u8>,
}

/// `data` read as a tar, changed in one entry or in the manifest, written again;
/// `None` when `data` is not a tar this can read (gzip, say).
pub fn mutate_tar(data: &[u8], seed: u32) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(data);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let name = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type().as_byte();
        let link = entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).ok()?;
        entries.push(Entry {
            name,
            kind,
            link,
            data: bytes,
        });
    }
    if entries.is_empty() {
        return None;
    }
    let mut rng = Rng(u64::from(seed) | 1 << 33);
    let i = rng.below(entries.len());
    match rng.below(10) {
        0..=2 => {
            // The manifest (the first entry named so, else any entry as JSON).
            let m = entries
                .iter()
                .position(|e| e.name == b"modelport.json")
                .unwrap_or(i);
            let mut json: serde_json::Value = serde_json::from_slice(&entries[m].data).ok()?;
            mutate_manifest(&mut json, &mut rng)?;
            entries[m].data = serde_json::to_vec_pretty(&json).ok()?;
        }
        3 => entries[i].name = rng.pick(ENTRY_PATHS).as_bytes().to_vec(),
        4 => {
            entries[i].kind = *rng.pick(ENTRY_TYPES);
            entries[i].link = rng
                .pick(&["model.onnx", "../../etc/passwd", "/etc", ""])
                .as_bytes()
                .to_vec();
        }
        5 => {
            let copy = Entry {
                name: entries[i].name.clone(),
                kind: entries[i].kind,
                link: entries[i].link.clone(),
                data: entries[i].data.clone(),
            };
            let at = rng.below(entries.len() + 1);
            entries.insert(at, copy);
        }
        6 => {
            let j = rng.below(entries.len());
            entries.swap(i, j);
        }
        7 => {
            let data = &mut entries[i].data;
            if rng.below(2) == 0 {
                let keep = rng.below(data.len() + 1);
                data.truncate(keep);
            } else {
                data.push(b'x');
            }
        }
        8 => drop(entries.remove(i)),
        _ => entries.push(Entry {
            name: rng.pick(ENTRY_PATHS).as_bytes().to_vec(),
            kind: b'0',
            link: Vec::new(),
            data: b"extra".to_vec(),
        }),
    }
    let mut builder = tar::Builder::new(Vec::new());
    for e in &entries {
        let mut header = tar::Header::new_gnu();
        let gnu = header.as_gnu_mut()?;
        let n = e.name.len().min(gnu.name.len());
        gnu.name[..n].copy_from_slice(&e.name[..n]);
        let n = e.link.len().min(gnu.linkname.len());
        gnu.linkname[..n].copy_from_slice(&e.link[..n]);
        header.set_entry_type(tar::EntryType::new(e.kind));
        header.set_mode(0o644);
        header.set_size(e.data.len() as u64);
        header.set_cksum();
        builder.append(&header, e.data.as_slice()).ok()?;
    }
    builder.into_inner().ok()
}

/// Changes one field of a manifest: a file's size, path or hash, the model file,
/// the format, or the list itself.
fn mutate_manifest(json: &mut serde_json::Value, rng: &mut Rng) -> Option<()> {
    use serde_json::json;
    let files = json.get_mut("files")?.as_array_mut()?;
    let n = files.len();
    match rng.below(6) {
        0 if n > 0 => files[rng.below(n)]["size"] = json!(*rng.pick(SIZES)),
        1 if n > 0 => files[rng.below(n)]["path"] = json!(*rng.pick(ENTRY_PATHS)),
        2 if n > 0 => files[rng.below(n)]["sha256"] = json!("0".repeat(64)),
        3 => files.push(json!({
            "path": *rng.pick(ENTRY_PATHS),
            "size": *rng.pick(SIZES),
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        })),
        4 => json["model"]["file"] = json!(*rng.pick(ENTRY_PATHS)),
        _ => json["format"] = json!(*rng.pick(&["modelport/v1", "modelport/v2", ""])),
    }
    Some(())
}
