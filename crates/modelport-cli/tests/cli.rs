//! Whole-command snapshots: stdout, stderr and exit code of `modelport`, run from the
//! repository root so paths in the output are relative and stable.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn modelport(args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("modelport").unwrap();
    cmd.current_dir(root())
        .args(args)
        .env_remove("MODELPORT_ENGINE")
        .env_remove("MODELPORT_LOG");
    cmd
}

/// `exit: N`, stdout and stderr of one run, in one text for a snapshot.
fn run(args: &[&str]) -> String {
    let out = modelport(args).output().unwrap();
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

macro_rules! snap {
    ($name:literal, $args:expr) => {
        insta::with_settings!({filters => vec![
            (r"sha256:[0-9a-f]{64}", "sha256:[digest]"),
            (r"/tmp/[^ \n]*", "[tmp]"),
        ]}, {
            insta::assert_snapshot!($name, run($args));
        });
    };
}

#[test]
fn inspect_every_example() {
    snap!("inspect_iris", &["inspect", "examples/iris/model.onnx"]);
    snap!("inspect_forest", &["inspect", "examples/forest/model.onnx"]);
    snap!("inspect_mlp", &["inspect", "examples/mlp/model.onnx"]);
    snap!("inspect_cnn", &["inspect", "examples/cnn/model.onnx"]);
    snap!(
        "inspect_svm",
        &["inspect", "tests/fixtures/models/svm/model.onnx"]
    );
}

#[test]
fn inspect_json_is_a_documented_shape() {
    let out = modelport(&["inspect", "examples/iris/model.onnx", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signature"]["inputs"][0]["name"], "X");
    assert_eq!(
        v["signature"]["outputs"][1]["class_labels"],
        serde_json::json!([0, 1, 2])
    );
    assert_eq!(v["engines"][1]["engine"], "tract");
    assert_eq!(v["engines"][1]["runs"], true);
}

#[test]
fn predict_on_both_engines() {
    for engine in ["onnxruntime", "tract"] {
        for ex in [
            "iris",
            "forest",
            "mlp",
            "cnn",
            "digits-cnn",
            "text-classifier",
        ] {
            let samples = format!("examples/{ex}/samples.json");
            let model = format!("examples/{ex}/model.onnx");
            let out = modelport(&[
                "predict", &model, "--input", &samples, "--engine", engine, "-o", "json",
            ])
            .output()
            .unwrap();
            assert!(
                out.status.success(),
                "{ex} on {engine}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["engine"]["engine"], engine);
        }
    }
    snap!(
        "predict_iris_tract",
        &[
            "predict",
            "examples/iris/model.onnx",
            "-i",
            "examples/iris/samples.json",
            "--engine",
            "tract"
        ]
    );
}

#[test]
fn predict_reads_stdin_and_npy() {
    let mut child = modelport(&[
        "predict",
        "examples/iris/model.onnx",
        "--input",
        "-",
        "--engine",
        "tract",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("output_label: i64 [1]\n  0\n"));

    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("x.npy");
    let t = modelport_core::Tensor::new(vec![1, 4], vec![6.7f32, 3.0, 5.2, 2.3]).unwrap();
    modelport_core::npy::write(&t, std::fs::File::create(&npy).unwrap()).unwrap();
    let out = modelport(&[
        "predict",
        "examples/iris/model.onnx",
        "-i",
        npy.to_str().unwrap(),
        "--engine",
        "tract",
    ])
    .output()
    .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("output_label: i64 [1]\n  2\n"));
}

#[test]
fn bad_inputs_give_their_documented_errors() {
    snap!(
        "err_truncated",
        &["inspect", "tests/fixtures/models/truncated.onnx"]
    );
    snap!(
        "err_random",
        &["inspect", "tests/fixtures/models/random.onnx"]
    );
    snap!(
        "err_pickle",
        &[
            "package",
            "tests/fixtures/models/model.pkl",
            "--out",
            "/tmp/modelport-never-written"
        ]
    );
    snap!(
        "err_tract_det",
        &[
            "predict",
            "tests/fixtures/models/det/model.onnx",
            "--generate",
            "2",
            "--engine",
            "tract"
        ]
    );
    snap!("err_usage", &["predict", "examples/iris/model.onnx"]);
    snap!(
        "err_engine",
        &[
            "predict",
            "examples/iris/model.onnx",
            "--generate",
            "1",
            "--engine",
            "gpu"
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    let shape = dir.path().join("shape.json");
    std::fs::write(&shape, r#"{"instances": [[1.0, 2.0, 3.0]]}"#).unwrap();
    let out = run(&[
        "predict",
        "examples/iris/model.onnx",
        "-i",
        shape.to_str().unwrap(),
        "--engine",
        "tract",
    ]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(
        out.contains(
            "input `X` has shape [1, 3] but the model expects [?, 4]: axis 1 must be 4, not 3"
        ),
        "{out}"
    );
    assert!(!Path::new("/tmp/modelport-never-written/model.tar.gz").exists());
}

#[test]
fn yaml_typo_names_line_field_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modelport.yaml");
    let out = modelport(&[
        "init",
        "examples/iris/model.onnx",
        "--file",
        file.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let spec = modelport_core::spec::DeploymentSpec::from_file(&file).unwrap();
    assert_eq!(spec.name.as_str(), "iris");
    assert!(
        spec.model_path().exists(),
        "model.path must resolve from the YAML's folder"
    );
    std::fs::write(&file, text.replacen("model:", "modle:", 1)).unwrap();
    let err = modelport_core::spec::DeploymentSpec::from_file(&file).unwrap_err();
    assert!(err.to_string().contains("modle"), "{err}");
    assert_eq!(err.hint().as_deref(), Some("did you mean `model`?"));
    // init refuses to overwrite.
    let again = run(&[
        "init",
        "examples/iris/model.onnx",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(
        again.starts_with("exit: 1\n") && again.contains("--force"),
        "{again}"
    );
}

#[test]
fn package_is_deterministic_through_the_cli() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let digest = |dir: &Path| {
        let out = modelport(&[
            "package",
            "examples/forest/model.onnx",
            "--out",
            dir.to_str().unwrap(),
            "-o",
            "json",
        ])
        .output()
        .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["digest"].as_str().unwrap().to_string()
    };
    assert_eq!(digest(a.path()), digest(b.path()));
    assert_eq!(
        std::fs::read(a.path().join("model.tar.gz")).unwrap(),
        std::fs::read(b.path().join("model.tar.gz")).unwrap()
    );
}

#[test]
fn help_lists_exit_codes() {
    let out = run(&["--help"]);
    assert!(
        out.contains("3  a comparison ran and found a mismatch"),
        "{out}"
    );
    for cmd in ["inspect", "predict", "package", "init"] {
        let out = run(&[cmd, "--help"]);
        assert!(out.contains("Examples:"), "{cmd}: {out}");
    }
}

/// A reader that closes the pipe early (`modelport catalog | head -1`) ends the
/// command quietly instead of with a panic message.
#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    use assert_cmd::cargo::CommandCargoExt;
    let mut child = std::process::Command::cargo_bin("modelport")
        .unwrap()
        .args(["catalog", "--provider", "aws"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Tolerances and counts from the command line are checked as the YAML's are: `inf`
/// would pass every finite mismatch, and a count beyond u32 was cut silently.
#[test]
fn compare_flags_are_validated() {
    let model = "examples/iris/model.onnx";
    for (flag, value, says) in [
        ("--atol", "inf", "not a tolerance"),
        ("--atol=-1e-3", "", "not a tolerance"),
        ("--rtol", "NaN", "not a tolerance"),
        ("--rtol", "x", "not a number"),
        ("--count", "0", "0 is not in 1.."),
        ("--count", "4294967297", "4294967297 is not in 1.."),
    ] {
        let mut args = vec!["compare", model, model, flag];
        if !value.is_empty() {
            args.push(value);
        }
        let out = modelport(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
    let out = modelport(&["compare", model, model, "--atol", "0", "--count", "3"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A model exported for one image at a time still gets `--count` generated inputs,
/// run in batches of its fixed size, on both engines (it used to get one, silently).
#[test]
fn generated_inputs_honour_count_for_a_fixed_batch_model() {
    let model = "tests/fixtures/models/cnn-batch1/model.onnx";
    let out = modelport(&[
        "compare",
        model,
        model,
        "--engine-a",
        "tract",
        "--engine-b",
        "onnxruntime",
        "--count",
        "12",
        "--atol",
        "1e-4",
        "--output",
        "json",
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["samples"], 12, "{v}");
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([12, 10]));
}

/// A checkout's `.venv` is not a source of native code: running modelport inside an
/// untrusted directory must not dlopen a library planted there (issue 13 #4).
#[test]
fn onnxruntime_is_never_loaded_from_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let planted = dir
        .path()
        .join(".venv/lib/python3.12/site-packages/onnxruntime/capi/libonnxruntime.so.9.99.0");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, b"not a library").unwrap();
    let model = root().join("examples/iris/model.onnx");
    let out = modelport(&["inspect", model.to_str().unwrap(), "-vv"])
        .current_dir(dir.path())
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(dir.path().to_str().unwrap()),
        "a library under the working directory was considered:\n{stderr}"
    );
    // With the variable set, the debug log names where the library came from.
    let out = modelport(&["inspect", model.to_str().unwrap(), "-vv"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        assert!(
            stderr.contains("found onnxruntime source=ORT_DYLIB_PATH"),
            "{stderr}"
        );
    }
}
