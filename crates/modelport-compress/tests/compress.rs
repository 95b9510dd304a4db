//! Compression end to end on the examples: every method on both engines, the gate,
//! exclusions, external data, refusals.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use modelport_compress::onnx::{self, Model};
use modelport_compress::{CompressError, EvalSet, Goal, Method, Options, Settings, compress};
use modelport_runtime::{EngineChoice, EngineKind, ModelInfo, RuntimeOptions, samples};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .join("model.onnx")
}

fn settings(to: Option<Method>, per_channel: bool, prune: Option<f64>) -> Settings {
    Settings {
        to,
        per_channel,
        prune,
        exclude: Vec::new(),
    }
}

fn options(settings: Settings, engine: EngineChoice) -> Options {
    Options {
        settings,
        goals: Vec::new(),
        auto: false,
        engine,
        runtime: RuntimeOptions::default(),
        measure: true,
    }
}

fn generated(model: &Path, count: usize) -> EvalSet {
    let info = ModelInfo::from_path(model).unwrap();
    EvalSet {
        inputs: samples::generate(&info.signature, count, 7).unwrap(),
        labels: None,
        source: "generated".into(),
    }
}

fn samples_of(name: &str) -> EvalSet {
    let model = example(name);
    let info = ModelInfo::from_path(&model).unwrap();
    EvalSet::read(&model.with_file_name("samples.json"), &info.signature).unwrap()
}

/// Both engines load the written model and run it.
fn runs_on_both(report: &modelport_compress::CompressReport) {
    assert_eq!(report.engines.len(), 2);
    for e in &report.engines {
        assert!(e.error.is_none(), "{:?}: {:?}", e.engine, e.error);
        assert!(e.latency_ms_after.is_some());
    }
}

#[test]
fn every_method_gives_a_model_both_engines_run_within_the_default_goal() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["cnn", "mlp"] {
        let model = example(name);
        let eval = if name == "cnn" {
            samples_of(name)
        } else {
            generated(&model, 64)
        };
        for (to, per_channel, expect_ratio) in [
            (Method::Fp16, false, 1.8),
            (Method::Int8, false, 3.0),
            (Method::Int8, true, 3.0),
            (Method::Int8Dynamic, false, 3.0),
            (Method::Int8Dynamic, true, 3.0),
        ] {
            let out = dir.path().join(format!("{name}-{to}-{per_channel}.onnx"));
            let mut opts = options(
                settings(Some(to), per_channel, None),
                EngineChoice::Onnxruntime,
            );
            if to == Method::Int8Dynamic && name == "mlp" {
                // Activations quantized per tensor at run time flip a few of the
                // generated (not digit-like, often ambiguous) inputs.
                opts.goals = vec!["agreement=10%".parse().unwrap()];
            }
            let report =
                compress(&model, &out, &eval, &opts).unwrap_or_else(|e| panic!("{name} {to}: {e}"));
            assert!(
                report.passed(),
                "{name} {to}: {}",
                modelport_compress::render_text(&report)
            );
            assert_eq!(report.written, vec![out.clone()]);
            runs_on_both(&report);
            let ratio = report.weights.before as f64 / report.weights.after as f64;
            assert!(
                ratio > expect_ratio,
                "{name} {to}: weights {:?}",
                report.weights
            );
            assert!(report.file.after < report.file.before);
            let artifact = report.artifact.unwrap();
            assert!(
                artifact.after < artifact.before,
                "{name} {to}: {artifact:?}"
            );
            // The signature does not change: inputs and outputs stay float32.
            let before = ModelInfo::from_path(&model).unwrap().signature;
            let after = ModelInfo::from_path(&out).unwrap().signature;
            assert_eq!(before, after, "{name} {to}");
            for o in &report.gate.outputs {
                if let Some(e) = o.max_abs_err {
                    assert!(
                        e > 0.0,
                        "{name} {to}: {} is unchanged: nothing was compressed",
                        o.name
                    );
                }
                assert_eq!(o.non_finite, 0);
            }
        }
    }
}

#[test]
fn fp16_runs_in_half_precision_with_casts_only_at_the_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn.fp16.onnx");
    let report = compress(
        &example("cnn"),
        &out,
        &samples_of("cnn"),
        &options(
            settings(Some(Method::Fp16), false, None),
            EngineChoice::Tract,
        ),
    )
    .unwrap();
    assert!(report.passed());
    let fp16 = report.transform.fp16.as_ref().unwrap();
    // One Cast in (image), one out (probabilities); every node in half precision.
    assert_eq!(fp16.casts, 2, "{fp16:?}");
    assert!(fp16.float32_nodes.is_empty(), "{fp16:?}");
    let m = Model::read(&out).unwrap();
    for t in &m.graph().initializer {
        if t.name != "flat" {
            assert_eq!(t.data_type, onnx::FLOAT16, "{}", t.name);
        }
    }
}

#[test]
fn per_channel_weights_have_one_scale_per_output_channel() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn.int8.onnx");
    compress(
        &example("cnn"),
        &out,
        &samples_of("cnn"),
        &options(
            settings(Some(Method::Int8), true, None),
            EngineChoice::Tract,
        ),
    )
    .unwrap();
    let m = Model::read(&out).unwrap();
    let dims = |n: &str| {
        m.graph()
            .initializer
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .dims
            .clone()
    };
    assert_eq!(dims("c1.w.int8"), vec![8, 1, 3, 3]);
    assert_eq!(dims("c1.w.scale"), vec![8]);
    assert_eq!(dims("c2.w.scale"), vec![16]);
    // fc.w is [784, 10]: one scale per output column.
    assert_eq!(dims("fc.w.scale"), vec![10]);
    let dq: Vec<_> = m
        .graph()
        .node
        .iter()
        .filter(|n| n.op_type == "DequantizeLinear")
        .collect();
    assert_eq!(dq.len(), 3);
    assert!(
        m.graph().initializer.iter().all(|t| t.name != "c1.w"),
        "the float32 weight is gone"
    );
}

#[test]
fn a_goal_the_setting_misses_fails_the_gate_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pruned.onnx");
    let model = example("mlp");
    let mut opts = options(settings(None, false, Some(0.95)), EngineChoice::Onnxruntime);
    opts.goals = vec!["agreement=1%".parse().unwrap(), "sqnr=20".parse().unwrap()];
    let report = compress(&model, &out, &generated(&model, 128), &opts).unwrap();
    assert!(
        !report.passed(),
        "{}",
        modelport_compress::render_text(&report)
    );
    assert!(report.written.is_empty() && !out.exists());
    let failed: Vec<_> = report.gate.goals.iter().filter(|g| !g.passed).collect();
    assert!(!failed.is_empty());
    let text = modelport_compress::render_text(&report);
    assert!(text.contains("FAIL"), "{text}");
    assert!(text.contains("latency does not change"), "{text}");
    let prune = report.transform.prune.as_ref().unwrap();
    assert!(
        prune.zeros_after as f64 >= 0.95 * prune.elements as f64 - 3.0,
        "{prune:?}"
    );
}

#[test]
fn auto_leaves_the_costliest_nodes_uncompressed_until_the_goal_is_met() {
    let dir = tempfile::tempdir().unwrap();
    let model = example("cnn");
    let eval = samples_of("cnn");
    let mut opts = options(
        settings(Some(Method::Int8), false, None),
        EngineChoice::Onnxruntime,
    );
    opts.measure = false;
    // The error with only the Convs, or only the MatMul, compressed.
    let error_with_only = |exclude: &str| {
        let mut o = opts.clone();
        o.settings.exclude = vec![exclude.to_string()];
        let r = compress(&model, &dir.path().join("x.onnx"), &eval, &o).unwrap();
        r.gate.outputs[0].max_abs_err.unwrap()
    };
    let least = error_with_only("Conv").min(error_with_only("MatMul"));
    // A goal that one group alone meets and all of them together miss.
    opts.goals = vec![format!("max_abs={}", least * 1.2).parse().unwrap()];
    let plain = compress(&model, &dir.path().join("a.onnx"), &eval, &opts).unwrap();
    assert!(
        !plain.passed(),
        "{}",
        modelport_compress::render_text(&plain)
    );
    opts.auto = true;
    let auto = compress(&model, &dir.path().join("b.onnx"), &eval, &opts).unwrap();
    let text = modelport_compress::render_text(&auto);
    assert!(auto.passed(), "{text}");
    assert!(
        !auto.excluded.is_empty() && auto.excluded.iter().all(|e| e.by == "auto"),
        "{text}"
    );
    assert!(
        auto.excluded.len() < 3,
        "some weight stays compressed: {text}"
    );
    assert!(
        auto.auto.as_deref().unwrap().starts_with("met the goal"),
        "{text}"
    );
    // An impossible goal is said to be impossible.
    opts.goals = vec!["sqnr=1000".parse().unwrap()];
    opts.settings = settings(Some(Method::Fp16), false, None);
    let never = compress(&model, &dir.path().join("c.onnx"), &eval, &opts).unwrap();
    assert!(!never.passed());
    assert!(
        never
            .auto
            .as_deref()
            .unwrap()
            .starts_with("cannot meet the goal"),
        "{:?}",
        never.auto
    );
}

#[test]
fn excluded_nodes_keep_their_float32_weights() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn.onnx");
    let mut s = settings(Some(Method::Int8), false, None);
    s.exclude = vec!["Conv".into()];
    let report = compress(
        &example("cnn"),
        &out,
        &samples_of("cnn"),
        &options(s, EngineChoice::Tract),
    )
    .unwrap();
    assert_eq!(report.excluded.len(), 2);
    assert_eq!(report.transform.int8.as_ref().unwrap().quantized_weights, 1);
    let m = Model::read(&out).unwrap();
    let c1 = m
        .graph()
        .initializer
        .iter()
        .find(|t| t.name == "c1.w")
        .unwrap();
    assert_eq!(c1.data_type, onnx::FLOAT);

    let mut s = settings(Some(Method::Int8), false, None);
    s.exclude = vec!["Convv".into()];
    let err = compress(
        &example("cnn"),
        &out,
        &samples_of("cnn"),
        &options(s, EngineChoice::Tract),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("\"Convv\" is neither a node name nor an operator type"),
        "{err}"
    );
    assert!(
        err.hint().unwrap().contains("Conv, MatMul"),
        "{:?}",
        err.hint()
    );
}

#[test]
fn external_data_stays_external_and_must_stay_inside_the_model_folder() {
    let dir = tempfile::tempdir().unwrap();
    // The CNN with every weight in an external file.
    let mut m = Model::read(&example("cnn")).unwrap();
    assert!(m.externalize(1024) > 0);
    let src = dir.path().join("src");
    let files = m.write(&src.join("model.onnx")).unwrap();
    assert_eq!(files.len(), 2);
    let out = dir.path().join("out").join("model.onnx");
    let report = compress(
        &src,
        &out,
        &generated(&src.join("model.onnx"), 8),
        &options(
            settings(Some(Method::Int8), true, None),
            EngineChoice::Tract,
        ),
    )
    .unwrap();
    assert!(report.passed());
    assert_eq!(
        report.written,
        vec![out.clone(), out.with_file_name("model.onnx.data")]
    );
    let back = Model::read(&out).unwrap();
    assert!(back.external.contains("fc.w.int8"), "{:?}", back.external);
    runs_on_both(&report);

    // A location that climbs out of the folder is refused, naming the tensor.
    let mut proto = m.proto.clone();
    for t in proto.graph.as_mut().unwrap().initializer.iter_mut() {
        t.data_location = Some(1);
        t.external_data = vec![tract_onnx::pb::StringStringEntryProto {
            key: "location".into(),
            value: "../../etc/passwd".into(),
        }];
        t.raw_data.clear();
    }
    let evil = dir.path().join("evil.onnx");
    std::fs::write(&evil, prost::Message::encode_to_vec(&proto)).unwrap();
    let err = Model::read(&evil).unwrap_err();
    assert!(matches!(err, CompressError::ExternalData { .. }), "{err}");
    assert!(
        err.to_string().contains("leaves the model's directory"),
        "{err}"
    );
}

#[test]
fn zipmap_outputs_are_written_back_as_they_were() {
    // The digits MLP as skl2onnx exports it by default: a list of maps as output.
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models/mlp-zipmap/model.onnx");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.onnx");
    let report = compress(
        &model,
        &out,
        &generated(&model, 32),
        &options(
            settings(Some(Method::Int8), true, None),
            EngineChoice::Onnxruntime,
        ),
    )
    .unwrap();
    assert!(
        report.passed(),
        "{}",
        modelport_compress::render_text(&report)
    );
    runs_on_both(&report);
    let before = ModelInfo::from_path(&model).unwrap();
    let after = ModelInfo::from_path(&out).unwrap();
    assert_eq!(before.signature, after.signature);
    assert!(after.uses("ZipMap") && after.uses("DequantizeLinear"));
    // The output's type is the file's own: a sequence of maps, byte for byte.
    let m = Model::read(&out).unwrap();
    assert!(
        m.graph()
            .output
            .iter()
            .any(|o| o.r#type.as_ref().is_some_and(|t| t.value.is_none()))
    );
}

#[test]
fn a_model_without_weights_to_compress_is_refused_with_the_reason() {
    for name in ["iris", "forest"] {
        let model = example(name);
        let err = compress(
            &model,
            Path::new("unused.onnx"),
            &generated(&model, 8),
            &options(
                settings(Some(Method::Int8), false, None),
                EngineChoice::Tract,
            ),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nothing in"), "{name}: {err}");
        assert!(
            err.hint().unwrap().contains("ai.onnx.ml"),
            "{name}: {:?}",
            err.hint()
        );
    }
}

#[test]
fn fp16_clamps_weights_beyond_its_range_and_counts_them() {
    let mut m = Model::read(&example("mlp")).unwrap();
    let baseline = modelport_compress::fp16::convert(&mut m.clone(), &HashSet::new()).unwrap();
    let g = m.graph_mut();
    let t = g
        .initializer
        .iter_mut()
        .find(|t| t.data_type == onnx::FLOAT && t.dims.len() == 2)
        .unwrap();
    let mut v = onnx::f32_values(t).unwrap().unwrap();
    let normal: Vec<usize> = (0..v.len())
        .filter(|&i| v[i].abs() > 1e-3)
        .take(3)
        .collect();
    v[normal[0]] = 1.0e6;
    v[normal[1]] = -7.0e4;
    v[normal[2]] = 1.0e-9;
    *t = onnx::f32_tensor(&t.name.clone(), &t.dims.clone(), &v);
    let stats = modelport_compress::fp16::convert(&mut m, &HashSet::new()).unwrap();
    assert_eq!(stats.clamped, baseline.clamped + 2);
    assert_eq!(stats.flushed_to_zero, baseline.flushed_to_zero + 1);
}

#[test]
fn goals_parse_as_written_and_refuse_what_is_not_a_goal() {
    let g: Goal = "accuracy=2%".parse().unwrap();
    assert!(g.relative && (g.value - 0.02).abs() < 1e-12);
    assert_eq!(g.to_string(), "accuracy=2%");
    let g: Goal = "agreement=1%".parse().unwrap();
    assert!(!g.relative && (g.value - 0.01).abs() < 1e-12);
    assert!("sqnr=30".parse::<Goal>().is_ok());
    for bad in [
        "sqnr=30%",
        "accuracy",
        "speed=1",
        "max_abs=-1",
        "mean_abs=x",
    ] {
        assert!(bad.parse::<Goal>().is_err(), "{bad}");
    }
}

#[test]
fn an_accuracy_goal_without_labels_is_refused_before_any_work() {
    let model = example("cnn");
    let mut opts = options(
        settings(Some(Method::Int8), false, None),
        EngineChoice::Tract,
    );
    opts.goals = vec!["accuracy=0.01".parse().unwrap()];
    let err = compress(&model, Path::new("unused.onnx"), &samples_of("cnn"), &opts).unwrap_err();
    assert!(err.to_string().contains("needs labels"), "{err}");
}

#[test]
fn int8_dynamic_refuses_models_older_than_its_operators() {
    let mut m = Model::read(&example("cnn")).unwrap();
    m.proto.opset_import[0].version = 10;
    let err = modelport_compress::int8::quantize(
        &mut m,
        &HashSet::new(),
        modelport_compress::int8::Mode::Dynamic,
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("operator set 10"), "{err}");
    assert!(err.hint().unwrap().contains("opset"));
    let _ = EngineKind::Tract;
}

#[test]
fn a_model_with_a_fixed_batch_size_is_gated_on_many_rows() {
    // The CNN exported for one image at a time, gated on the eight example images.
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models/cnn-batch1/model.onnx");
    let info = ModelInfo::from_path(&model).unwrap();
    let eval = EvalSet::read(
        &example("cnn").with_file_name("samples.json"),
        &info.signature,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = compress(
        &model,
        &dir.path().join("b1.onnx"),
        &eval,
        &options(
            settings(Some(Method::Int8), true, None),
            EngineChoice::Tract,
        ),
    )
    .unwrap();
    assert!(report.passed());
    assert_eq!(report.gate.samples, 8);
}
