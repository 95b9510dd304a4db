//! `modelport compress` as a user runs it: exit codes, the files it writes, the
//! report in both forms.

mod common;

use common::Project;

#[test]
fn compress_writes_a_gated_model_and_reports_it() {
    let p = Project::new().with_example("mlp");
    let run = p
        .run(&[
            "compress",
            "mlp/model.onnx",
            "--to",
            "int8",
            "--per-channel",
            "--samples",
            "mlp/samples.json",
            "--out",
            "mlp/model.int8.onnx",
            "--output",
            "json",
        ])
        .expect(0);
    let r: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(r["gate"]["passed"], true, "{r}");
    assert_eq!(r["gate"]["samples"], 16);
    assert_eq!(r["gate"]["goals"][0]["goal"], "agreement=1%", "{r}");
    assert!(
        r["weights"]["after"].as_u64().unwrap() * 3 < r["weights"]["before"].as_u64().unwrap(),
        "{r}"
    );
    assert!(
        r["artifact"]["after"].as_u64() < r["artifact"]["before"].as_u64(),
        "{r}"
    );
    let engines: Vec<&str> = r["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["engine"].as_str().unwrap())
        .collect();
    assert_eq!(engines, ["onnxruntime", "tract"]);
    assert!(
        r["engines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["error"].is_null()),
        "{r}"
    );
    assert!(p.path().join("mlp/model.int8.onnx").exists());
    // The written model is an ordinary model for every other command.
    let predict = p
        .run(&[
            "predict",
            "mlp/model.int8.onnx",
            "--input",
            "mlp/samples.json",
            "--engine",
            "tract",
        ])
        .expect(0);
    assert!(
        predict.stdout().contains("probabilities"),
        "{}",
        predict.stdout()
    );

    let text = p
        .run(&[
            "compress",
            "mlp/model.onnx",
            "--to",
            "fp16",
            "--out",
            "mlp/model.fp16.onnx",
            "--no-measure",
        ])
        .expect(0);
    let out = text.stdout();
    assert!(
        out.contains("fp16:") && out.contains("PASS: wrote"),
        "{out}"
    );
    assert!(
        out.contains("64 samples"),
        "generated inputs by default: {out}"
    );
}

#[test]
fn a_missed_goal_exits_3_and_writes_nothing() {
    let p = Project::new().with_example("mlp");
    let run = p
        .run(&[
            "compress",
            "mlp/model.onnx",
            "--prune",
            "0.97",
            "--samples",
            "mlp/samples.json",
            "--max-degradation",
            "agreement=0%",
            "--max-degradation",
            "sqnr=20",
            "--out",
            "mlp/bad.onnx",
        ])
        .expect(3);
    assert!(run.stdout().contains("FAIL"), "{}", run.stdout());
    assert!(
        run.stdout().contains("latency does not change"),
        "{}",
        run.stdout()
    );
    assert!(!p.path().join("mlp/bad.onnx").exists());
}

#[test]
fn bad_options_name_the_option_and_the_way_out() {
    let p = Project::new().with_example("mlp");
    let usage = p
        .run(&[
            "compress",
            "mlp/model.onnx",
            "--to",
            "int4",
            "--out",
            "x.onnx",
        ])
        .expect(2);
    assert!(
        usage
            .stderr()
            .contains("not one of fp16, int8, int8-dynamic"),
        "{}",
        usage.stderr()
    );
    let goal = p
        .run(&[
            "compress",
            "mlp/model.onnx",
            "--to",
            "int8",
            "--max-degradation",
            "speed=2",
            "--out",
            "x.onnx",
        ])
        .expect(2);
    assert!(
        goal.stderr().contains("unknown metric"),
        "{}",
        goal.stderr()
    );
    let pc = p
        .run(&[
            "compress",
            "mlp/model.onnx",
            "--to",
            "fp16",
            "--per-channel",
            "--out",
            "x.onnx",
        ])
        .expect(1);
    assert!(pc.stderr().contains("--per-channel"), "{}", pc.stderr());
    assert!(pc.stderr().contains("hint:"), "{}", pc.stderr());
    let nothing = p
        .run(&["compress", "mlp/model.onnx", "--out", "x.onnx"])
        .expect(1);
    assert!(
        nothing.stderr().contains("nothing to do"),
        "{}",
        nothing.stderr()
    );
    let zipmap = p
        .run(&[
            "compress",
            &common::root()
                .join("examples/iris/model.onnx")
                .display()
                .to_string(),
            "--to",
            "int8",
            "--out",
            "x.onnx",
        ])
        .expect(1);
    // scikit-learn's iris keeps its weights in operator attributes: nothing to do, said so.
    assert!(
        zipmap.stderr().contains("nothing in"),
        "{}",
        zipmap.stderr()
    );
    assert!(
        zipmap.stderr().contains("ai.onnx.ml"),
        "{}",
        zipmap.stderr()
    );
    let acc = p
        .run(&[
            "compress",
            "mlp/model.onnx",
            "--to",
            "int8",
            "--max-degradation",
            "accuracy=1%",
            "--out",
            "x.onnx",
        ])
        .expect(1);
    assert!(acc.stderr().contains("needs labels"), "{}", acc.stderr());
}

/// The example where it matters: per-tensor int8 collapses the BatchNorm-folded
/// MobileNet-style CNN, and the gate says so; per channel it passes, with the
/// accuracy of both models on the labels; `--auto` rescues per-tensor by leaving
/// the layers whose weights span orders of magnitude in float32.
#[test]
fn the_gate_refuses_per_tensor_int8_where_it_collapses_and_passes_per_channel() {
    let p = Project::new().with_example("digits-cnn");
    let base = [
        "compress",
        "digits-cnn/model.onnx",
        "--eval",
        "digits-cnn/eval.json",
        "--no-measure",
        "--output",
        "json",
    ];
    let args = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let bad = p
        .run(&args(&[
            "--to",
            "int8",
            "--out",
            "digits-cnn/t.onnx",
            "--max-degradation",
            "accuracy=0.01",
        ]))
        .expect(3);
    let bad: serde_json::Value = serde_json::from_str(&bad.stdout()).unwrap();
    let acc = &bad["gate"]["accuracy"];
    assert_eq!(bad["labelled"], true);
    assert!(acc["original"].as_f64().unwrap() > 0.95, "{acc}");
    assert!(
        acc["drop"].as_f64().unwrap() > 0.5,
        "per-tensor int8 collapses: {acc}"
    );
    assert_eq!(bad["gate"]["goals"][0]["passed"], false, "{bad}");
    assert!(!p.path().join("digits-cnn/t.onnx").exists());

    let good = p
        .run(&args(&[
            "--to",
            "int8",
            "--per-channel",
            "--out",
            "digits-cnn/c.onnx",
            "--max-degradation",
            "accuracy=0.01",
        ]))
        .expect(0);
    let good: serde_json::Value = serde_json::from_str(&good.stdout()).unwrap();
    assert!(
        good["gate"]["accuracy"]["drop"].as_f64().unwrap() <= 0.01,
        "{good}"
    );
    assert!(p.path().join("digits-cnn/c.onnx").exists());

    let auto = p
        .run(&args(&[
            "--to",
            "int8",
            "--out",
            "digits-cnn/a.onnx",
            "--max-degradation",
            "accuracy=0.01",
            "--auto",
        ]))
        .expect(0);
    let auto: serde_json::Value = serde_json::from_str(&auto.stdout()).unwrap();
    let left = auto["excluded"].as_array().unwrap();
    assert!(!left.is_empty() && left.len() < 9, "{auto}");
    assert!(left.iter().all(|e| e["by"] == "auto"), "{auto}");
    assert!(
        auto["weights"]["after"].as_u64() < auto["weights"]["before"].as_u64(),
        "{auto}"
    );
}

#[test]
fn the_transformer_compresses_on_both_engines() {
    let p = Project::new().with_example("text-classifier");
    for to in ["fp16", "int8", "int8-dynamic"] {
        let out = format!("text-classifier/{to}.onnx");
        let run = p
            .run(
                &[
                    "compress",
                    "text-classifier/model.onnx",
                    "--to",
                    to,
                    "--per-channel",
                    "--eval",
                    "text-classifier/eval.json",
                    "--out",
                    &out,
                    "--output",
                    "json",
                ]
                .into_iter()
                .filter(|a| !(to == "fp16" && *a == "--per-channel"))
                .collect::<Vec<_>>(),
            )
            .expect(0);
        let r: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
        assert_eq!(r["gate"]["passed"], true, "{to}: {r}");
        for e in r["engines"].as_array().unwrap() {
            assert!(e["error"].is_null(), "{to}: {e}");
        }
        assert!(
            r["file"]["after"].as_u64().unwrap() * 3 / 2 < r["file"]["before"].as_u64().unwrap(),
            "{to}: {r}"
        );
    }
}
