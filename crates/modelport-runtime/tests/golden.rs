//! Golden tests: each engine reproduces onnxruntime's stored outputs (written by
//! `examples/make_models.py`) within 1e-5 wherever it supports the model, and fails
//! with the documented error where it does not.
//!
//! The onnxruntime engine needs its shared library; the README's test command
//! creates `.venv` with it, so a missing library fails these tests rather than
//! skipping them.

use std::path::{Path, PathBuf};

use modelport_core::codec;
use modelport_runtime::{EngineChoice, EngineKind, ModelInfo, RuntimeError, RuntimeOptions};

/// The fixtures (tests/fixtures/models) of classic-ML operators both engines run.
const ML_FIXTURES: [&str; 5] = [
    "svm",
    "forest-regressor",
    "forest-binary",
    "pipeline",
    "encoders",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Runs `dir/model.onnx` on `samples.json` with `engine` and compares with `expected.json`.
fn check_matches_reference(dir: &Path, engine: EngineChoice) {
    let info = ModelInfo::from_path(&dir.join("model.onnx")).unwrap();
    let model = modelport_runtime::open_engine(engine, &RuntimeOptions::default())
        .unwrap()
        .load(&info)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let (inputs, _) = codec::decode_request(
        &read_json(&dir.join("samples.json")),
        &info.signature.inputs,
    )
    .unwrap();
    let got = model.run(&inputs).unwrap();
    let expected = codec::decode_oip_response(&read_json(&dir.join("expected.json"))).unwrap();
    assert_eq!(got.len(), expected.len(), "{}", dir.display());
    for want in expected.iter() {
        let have = got
            .get(&want.name)
            .unwrap_or_else(|| panic!("output {} missing", want.name));
        assert_eq!(
            have.shape(),
            want.tensor.shape(),
            "{} {}",
            dir.display(),
            want.name
        );
        for i in 0..have.len() {
            let (a, b) = (
                have.data().get_f64(i).unwrap(),
                want.tensor.data().get_f64(i).unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-5 + 1e-6 * b.abs(),
                "{} on {}: output `{}`[{i}] = {a}, onnxruntime stored {b}",
                model.engine(),
                dir.display(),
                want.name
            );
        }
    }
}

#[test]
fn onnxruntime_reproduces_every_example() {
    for ex in [
        "iris",
        "forest",
        "mlp",
        "cnn",
        "digits-cnn",
        "text-classifier",
    ] {
        check_matches_reference(&root().join("examples").join(ex), EngineChoice::Onnxruntime);
    }
    for fx in ML_FIXTURES {
        check_matches_reference(
            &root().join("tests/fixtures/models").join(fx),
            EngineChoice::Onnxruntime,
        );
    }
}

#[test]
fn tract_reproduces_every_example() {
    for ex in [
        "iris",
        "forest",
        "mlp",
        "cnn",
        "digits-cnn",
        "text-classifier",
    ] {
        check_matches_reference(&root().join("examples").join(ex), EngineChoice::Tract);
    }
    // The tree ensembles and SVMs tract lacked or answered wrongly, and the pipeline
    // operators (Imputer, Binarizer, OneHotEncoder, ArrayFeatureExtractor, LabelEncoder,
    // FeatureVectorizer), now native.
    for fx in ML_FIXTURES {
        check_matches_reference(
            &root().join("tests/fixtures/models").join(fx),
            EngineChoice::Tract,
        );
    }
}

/// The known tract gap is pinned: refused with an error naming the operator, never
/// a wrong answer.
#[test]
fn tract_refuses_what_it_cannot_run_correctly() {
    let path = root().join("tests/fixtures/models/det/model.onnx");
    let err = modelport_runtime::load(&path, EngineChoice::Tract, &RuntimeOptions::default())
        .err()
        .expect("the det model loaded on tract");
    assert_eq!(
        err.to_string(),
        "the tract engine cannot run this model: unsupported operator Det"
    );
    match &err {
        RuntimeError::UnsupportedOperators {
            engine,
            other_engine_can,
            ..
        } => {
            assert_eq!(*engine, EngineKind::Tract);
            assert!(other_engine_can);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.hint().unwrap().contains("--engine onnxruntime"));
    check_matches_reference(
        &root().join("tests/fixtures/models/det"),
        EngineChoice::Onnxruntime,
    );
}

#[test]
fn inputs_are_checked_before_inference() {
    let path = root().join("examples/iris/model.onnx");
    let model =
        modelport_runtime::load(&path, EngineChoice::Tract, &RuntimeOptions::default()).unwrap();
    let bad = modelport_core::Batch::new()
        .with(
            "X",
            modelport_core::Tensor::new(vec![2, 3], vec![0f32; 6]).unwrap(),
        )
        .unwrap();
    assert_eq!(
        model.run(&bad).unwrap_err().to_string(),
        "invalid input: input `X` has shape [2, 3] but the model expects [?, 4]: axis 1 must be 4, not 3"
    );
}

#[test]
fn auto_prefers_onnxruntime() {
    let engine =
        modelport_runtime::open_engine(EngineChoice::Auto, &RuntimeOptions::default()).unwrap();
    assert_eq!(engine.info().engine, EngineKind::Onnxruntime);
    assert_eq!(engine.info().version, "1.32.0");
}

/// The native tree and SVM kernels against onnxruntime itself on generated
/// examples, a tenth of the features NaN (trees route missing values; an SVM
/// propagates them): labels equal, scores within 1e-5.
#[test]
fn tract_matches_onnxruntime_on_tree_ensembles_and_svms() {
    use modelport_core::{Tensor, TensorData};
    let opts = RuntimeOptions::default();
    let ort = modelport_runtime::open_engine(EngineChoice::Onnxruntime, &opts).unwrap();
    let tract = modelport_runtime::open_engine(EngineChoice::Tract, &opts).unwrap();
    for (dir, nan) in [
        ("bench/models/forest-100x8", true),
        ("bench/models/gbm-100x6", true),
        ("examples/forest", true),
        ("tests/fixtures/models/forest-binary", true),
        ("tests/fixtures/models/forest-regressor", true),
        ("tests/fixtures/models/svm", false),
    ] {
        let info = ModelInfo::from_path(&root().join(dir).join("model.onnx")).unwrap();
        let generated = modelport_runtime::samples::generate(&info.signature, 256, 7).unwrap();
        let mut inputs = modelport_core::Batch::new();
        for t in generated.iter() {
            let TensorData::F32(mut v) = t.tensor.data().clone() else {
                panic!("{dir}: float inputs expected")
            };
            if nan {
                v.iter_mut().step_by(10).for_each(|x| *x = f32::NAN);
            }
            inputs
                .insert(
                    t.name.clone(),
                    Tensor::new(t.tensor.shape().to_vec(), v).unwrap(),
                )
                .unwrap();
        }
        let want = ort.load(&info).unwrap().run(&inputs).unwrap();
        let got = tract.load(&info).unwrap().run(&inputs).unwrap();
        for w in want.iter() {
            let g = got.get(&w.name).unwrap();
            assert_eq!(g.shape(), w.tensor.shape(), "{dir} {}", w.name);
            for i in 0..g.len() {
                let (a, b) = (
                    g.data().get_f64(i).unwrap(),
                    w.tensor.data().get_f64(i).unwrap(),
                );
                assert!(
                    (a - b).abs() <= 1e-5 + 1e-5 * b.abs() || (a.is_nan() && b.is_nan()),
                    "{dir}: output `{}`[{i}] is {a} on tract, {b} on onnxruntime",
                    w.name
                );
            }
        }
    }
}
