//! Writes the seed inputs of every fuzz target, from the repository's examples and
//! fixtures plus a few hand-made cases no example covers (every dtype, external
//! data, nested package paths, non-finite floats).
//!
//!     cargo run -p modelport-fuzz --example seed -- OUT_DIR
//!
//! writes `OUT_DIR/<target>/<name>`. `fuzz/run --seed` runs it and merges the seeds
//! into `fuzz/corpus/`; fuzzing and `cargo fuzz cmin` take it from there.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use modelport_core::codec;
use modelport_core::spec::{DeploymentName, DeploymentSpec};
use modelport_core::state::{
    DeploymentState, EndpointRef, Phase, Protocol, Revision, Rollout, RolloutMode,
};
use modelport_core::{Batch, DType, Tensor, TensorData};
use modelport_package::{PackageOptions, package};
use modelport_runtime::ModelInfo;
use prost::Message;
use tract_onnx::pb;

const EXAMPLES: &[&str] = &[
    "iris",
    "mlp",
    "cnn",
    "forest",
    "text-classifier",
    "digits-cnn",
];

/// The most rows of an example's samples a seed keeps: seeds stay small, and a
/// few rows reach every branch many rows do.
const MAX_ROWS: usize = 3;

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: seed OUT_DIR"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let w = Writer { out };
    requests(&root, &w);
    responses(&root, &w);
    csv(&w);
    npy(&w);
    specs(&root, &w);
    states(&w);
    packages(&root, &w);
    models(&root, &w);
}

struct Writer {
    out: PathBuf,
}

impl Writer {
    fn put(&self, target: &str, name: &str, bytes: impl AsRef<[u8]>) {
        let dir = self.out.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    }

    fn json(&self, target: &str, name: &str, value: &serde_json::Value) {
        self.put(target, name, serde_json::to_vec(value).unwrap());
    }
}

/// The first rows of every tensor of `batch`.
fn head(batch: &Batch) -> Batch {
    let mut out = Batch::new();
    for t in batch.iter() {
        let rows = t.tensor.rows().min(MAX_ROWS);
        out.insert(t.name.clone(), t.tensor.slice_rows(0, rows).unwrap())
            .unwrap();
    }
    out
}

/// A batch of two rows holding one input of every dtype, with the awkward values.
fn every_dtype() -> Batch {
    let data: [(DType, TensorData); 8] = [
        (
            DType::F32,
            vec![0.5f32, f32::NAN, f32::INFINITY, -0.0].into(),
        ),
        (
            DType::F64,
            vec![1e-300f64, f64::NEG_INFINITY, 2.5, 7.0].into(),
        ),
        (DType::I64, vec![i64::MIN, -1, 0, i64::MAX].into()),
        (DType::I32, vec![i32::MIN, 1, 2, i32::MAX].into()),
        (DType::I8, vec![-128i8, 0, 1, 127].into()),
        (DType::U8, vec![0u8, 1, 254, 255].into()),
        (DType::Bool, vec![true, false, false, true].into()),
        (
            DType::String,
            vec!["a".to_string(), "é\"q".into(), "NaN".into(), "".into()].into(),
        ),
    ];
    let mut b = Batch::new();
    for (dtype, d) in data {
        b.insert(dtype.name(), Tensor::new(vec![2, 2], d).unwrap())
            .unwrap();
    }
    b
}

fn requests(root: &Path, w: &Writer) {
    let mut batches = vec![("every-dtype".to_string(), every_dtype())];
    for ex in EXAMPLES {
        let dir = root.join("examples").join(ex);
        let body: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("samples.json")).unwrap()).unwrap();
        let sig = ModelInfo::from_path(&dir.join("model.onnx"))
            .unwrap()
            .signature;
        let (batch, _) = codec::decode_request(&body, &sig.inputs).unwrap();
        batches.push((ex.to_string(), head(&batch)));
    }
    for (name, batch) in &batches {
        let rows = codec::encode_instances(batch).unwrap();
        w.json(
            "request_instances",
            &format!("{name}-instances.json"),
            &rows,
        );
        w.json(
            "request_instances",
            &format!("{name}-bare.json"),
            &rows["instances"],
        );
        let oip = codec::encode_oip_request(batch).unwrap();
        w.json("request_instances", &format!("{name}-oip.json"), &oip);
        w.json("request_oip", &format!("{name}.json"), &oip);
    }
    let hand = [
        (
            "params",
            r#"{"instances": [[1, 2, 3, 4]], "parameters": {"x": 1}}"#,
        ),
        ("named", r#"{"instances": [{"X": [5.1, 3.5, 1.4, 0.2]}]}"#),
        ("special", r#"[["NaN", "Infinity", "-Infinity", "inf"]]"#),
        (
            "nested-oip",
            r#"{"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [[1, 2, 3, 4]]}]}"#,
        ),
        ("empty", r#"{"instances": []}"#),
    ];
    for (name, text) in hand {
        w.put("request_instances", &format!("{name}.json"), text);
        w.put("request_oip", &format!("{name}.json"), text);
    }
}

fn responses(root: &Path, w: &Writer) {
    for ex in EXAMPLES {
        let dir = root.join("examples").join(ex);
        let expected: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let batch = head(&codec::decode_oip_response(&expected).unwrap());
        w.json(
            "response_predictions",
            &format!("{ex}-oip.json"),
            &codec::encode_oip_response(ex, &batch).unwrap(),
        );
        w.json(
            "response_predictions",
            &format!("{ex}-predictions.json"),
            &codec::encode_predictions(&batch).unwrap(),
        );
    }
    w.json(
        "response_predictions",
        "every-dtype.json",
        &codec::encode_predictions(&every_dtype()).unwrap(),
    );
}

fn csv(w: &Writer) {
    let files = [
        (
            "features",
            "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n",
        ),
        ("indexed", "X[3],X[1],X[0],X[2]\n0.2,3.5,5.1,1.4\n"),
        ("underscore", "X_0,X_1,X_2,X_3\nnan,inf,-inf,1e-3\n"),
        ("text", "text\n\"hello, world\"\n\"quoted \"\"word\"\"\"\n"),
        (
            "dtypes",
            "f32.0,f32.1,f64[0],f64[1],i64_0,i64_1,i32_0,i32_1,i8_0,i8_1,u8_0,u8_1,bool_0,bool_1,string_0,string_1\n1.5,NaN,-2,3,9223372036854775807,-1,2147483647,0,-128,127,0,255,true,0,a,\"b,c\"\n",
        ),
        ("pixels", "pixels\n7\n"),
        ("header-only", "X[0],X[1],X[2],X[3]\n"),
    ];
    for (name, text) in files {
        w.put("inputs_csv", &format!("{name}.csv"), text);
    }
}

fn npy(w: &Writer) {
    for t in every_dtype().iter() {
        if t.tensor.dtype() == DType::String {
            continue;
        }
        let mut bytes = Vec::new();
        modelport_core::npy::write(&t.tensor, &mut bytes).unwrap();
        w.put("npy", &format!("{}.npy", t.name), &bytes);
    }
    let shapes: [(&str, Vec<usize>); 3] = [
        ("scalar", vec![]),
        ("empty", vec![0, 3]),
        ("rank3", vec![2, 1, 2]),
    ];
    for (name, shape) in shapes {
        let n: usize = shape.iter().product();
        let t = Tensor::new(shape, vec![1.25f32; n]).unwrap();
        let mut bytes = Vec::new();
        modelport_core::npy::write(&t, &mut bytes).unwrap();
        w.put("npy", &format!("{name}.npy"), &bytes);
    }
    // Format version 2 (a 4-byte header length), as numpy writes for long headers.
    let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }\n";
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend((header.len() as u32).to_le_bytes());
    v2.extend(header.as_bytes());
    v2.extend(5i64.to_le_bytes());
    v2.extend((-6i64).to_le_bytes());
    w.put("npy", "v2.npy", &v2);
}

fn specs(root: &Path, w: &Writer) {
    for ex in EXAMPLES {
        w.put(
            "spec_yaml",
            &format!("{ex}.yaml"),
            fs::read(root.join("examples").join(ex).join("modelport.yaml")).unwrap(),
        );
    }
    w.put(
        "spec_yaml",
        "template.yaml",
        fs::read(root.join("templates/modelport.yaml")).unwrap(),
    );
    w.put(
        "spec_yaml",
        "docs.yaml",
        fs::read(root.join("docs/modelport.yaml")).unwrap(),
    );
    let spec = DeploymentSpec::new(DeploymentName::new("iris").unwrap(), "model.onnx");
    w.put("spec_yaml", "canonical.json", spec.canonical_json());
}

fn states(w: &Writer) {
    let revision = |port: u16| Revision {
        artifact_digest: "a".repeat(64),
        model_digest: "b".repeat(64),
        spec_hash: "c".repeat(64),
        endpoint: EndpointRef {
            predict_url: format!("http://127.0.0.1:{port}/invocations"),
            health_url: format!("http://127.0.0.1:{port}/ping"),
            protocol: Protocol::Oip,
            max_request_bytes: 6_291_456,
            timeout_s: 60,
        },
        verify: Default::default(),
        started_at: 1_700_000_000,
        resources: serde_json::json!({"pid": 42, "port": port, "arn": null, "names": ["a", "b"]}),
    };
    let mut s = DeploymentState::new("iris", "local", Path::new("/srv/iris/modelport.yaml"));
    w.put(
        "state_json",
        "new.json",
        serde_json::to_vec_pretty(&s).unwrap(),
    );
    s.active = Some(revision(8080));
    s.pending = Some(revision(8081));
    s.rollout = Some(Rollout {
        phase: Phase::MovingTraffic,
        mode: RolloutMode::AfterTraffic,
        verified: true,
        traffic_moved: false,
        started_at: 1_700_000_100,
    });
    w.put(
        "state_json",
        "rollout.json",
        serde_json::to_vec_pretty(&s).unwrap(),
    );
    w.put(
        "state_json",
        "other-format.json",
        r#"{"format": "modelport-state/v2", "revisions": {}}"#,
    );
}

/// The tar inside a `model.tar.gz` (the target compresses it again).
fn gunzip(path: &Path) -> Vec<u8> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(path).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    tar
}

fn packages(root: &Path, w: &Writer) {
    let tmp = tempfile::tempdir().unwrap();
    // Only the smallest model: unpacking does not read the model's bytes, and
    // every byte of a seed costs time on every execution.
    let model = root.join("examples/iris/model.onnx");
    let opts = PackageOptions {
        signature: Some(ModelInfo::from_path(&model).unwrap().signature),
        engine_hint: Some("onnxruntime".into()),
        ..PackageOptions::default()
    };
    let artifact = package(&model, &tmp.path().join("iris"), &opts).unwrap();
    w.put("package_unpack", "iris.tar", gunzip(&artifact.path));
    w.put(
        "package_unpack",
        "iris.tar.gz",
        fs::read(&artifact.path).unwrap(),
    );
    // A directory model: nested paths and an external data file.
    let dir = tmp.path().join("dir-model");
    fs::create_dir_all(dir.join("weights")).unwrap();
    fs::write(dir.join("model.onnx"), with_external(root, "weights/w.bin")).unwrap();
    fs::write(dir.join("weights/w.bin"), [7u8; 16]).unwrap();
    fs::write(dir.join("README"), "notes").unwrap();
    let opts = PackageOptions {
        data_files: vec!["weights/w.bin".into()],
        ..PackageOptions::default()
    };
    let artifact = package(&dir, &tmp.path().join("dir-out"), &opts).unwrap();
    w.put("package_unpack", "dir-model.tar", gunzip(&artifact.path));
}

/// The iris model with one extra initializer whose 16 bytes live in `location`.
fn with_external(root: &Path, location: &str) -> Vec<u8> {
    let bytes = fs::read(root.join("examples/iris/model.onnx")).unwrap();
    let mut model = pb::ModelProto::decode(bytes.as_slice()).unwrap();
    let kv = |k: &str, v: &str| pb::StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    };
    let graph = model.graph.as_mut().unwrap();
    graph.initializer.push(pb::TensorProto {
        name: "external_weights".into(),
        dims: vec![4],
        data_type: 1,
        data_location: Some(1),
        external_data: vec![
            kv("location", location),
            kv("offset", "0"),
            kv("length", "16"),
        ],
        ..Default::default()
    });
    model.encode_to_vec()
}

fn models(root: &Path, w: &Writer) {
    for ex in ["iris", "forest", "mlp", "cnn"] {
        w.put(
            "onnx_model",
            &format!("{ex}.onnx"),
            fs::read(root.join("examples").join(ex).join("model.onnx")).unwrap(),
        );
    }
    let survey = root.join("tests/fixtures/survey");
    let mut names: Vec<_> = fs::read_dir(&survey)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let model = survey.join(&name).join("model.onnx");
        if let Ok(bytes) = fs::read(&model)
            && bytes.len() < 16 * 1024
        {
            w.put(
                "onnx_model",
                &format!("survey-{}.onnx", name.to_string_lossy()),
                bytes,
            );
        }
    }
    for (name, location) in [
        ("external", "weights.bin"),
        ("external-sub", "./sub//w.bin"),
        ("external-link", "link.bin"),
        ("external-dir", "data"),
        ("external-parent", "../weights.bin"),
    ] {
        w.put(
            "onnx_model",
            &format!("{name}.onnx"),
            with_external(root, location),
        );
    }
}
