//! The whole flow through the CLI, as a user runs it: deploy locally, compare,
//! re-deploy (a no-op), change the model (blue/green), destroy.

mod common;

use common::{Project, alive, root, wait_gone};

/// Every example goes through the full life cycle.
#[test]
fn every_example_deploys_compares_updates_and_is_destroyed() {
    for example in ["iris", "forest", "mlp", "cnn"] {
        let p = Project::new().with_example(example);
        let spec = format!("{example}/modelport.yaml");

        let first = p
            .run(&["deploy", "--provider", "local", "-f", &spec])
            .expect(0);
        assert!(
            first.stdout().contains("PASS"),
            "{example}: {}",
            first.stdout()
        );
        assert!(first.stdout().contains(&format!("deployed {example}")));
        let pid = p.pid(example);
        assert!(alive(pid), "{example}: server {pid} is not running");

        // Unchanged: nothing happens, and the same server keeps running.
        let again = p.run(&["deploy", "-f", &spec]).expect(0);
        assert!(again.stdout().contains("up to date"), "{}", again.stdout());
        assert_eq!(p.pid(example), pid);

        let status = p.run(&["status", example, "--output", "json"]).expect(0);
        let status: serde_json::Value = serde_json::from_str(&status.stdout()).unwrap();
        assert_eq!(status[0]["health"], "in_service", "{status}");

        let compare = p.run(&["compare", example, "--count", "50"]).expect(0);
        assert!(compare.stdout().contains("PASS"), "{}", compare.stdout());

        // A changed spec starts a new server, checks it, switches, stops the old one.
        let yaml = std::fs::read_to_string(p.path().join(&spec)).unwrap();
        std::fs::write(
            p.path().join(&spec),
            format!("{yaml}\nserving:\n  timeout_s: 61\n"),
        )
        .unwrap();
        let update = p.run(&["deploy", "-f", &spec]).expect(0);
        assert!(update.stdout().contains("PASS"), "{}", update.stdout());
        let new_pid = p.pid(example);
        assert_ne!(
            new_pid, pid,
            "{example}: the update did not start a new server"
        );
        assert!(wait_gone(pid), "{example}: the old server {pid} still runs");
        assert!(alive(new_pid));

        p.run(&["destroy", example]).expect(0);
        assert!(
            wait_gone(new_pid),
            "{example}: destroy left server {new_pid} running"
        );
        assert!(p.state(example).is_none(), "{example}: destroy left state");
        let list = p.run(&["list"]).expect(0);
        assert!(
            list.stdout().contains("no deployments"),
            "{}",
            list.stdout()
        );
    }
}

/// A new model behind the same name is a blue/green update too; the endpoint then
/// reports the new digest.
#[test]
fn a_changed_model_is_rolled_out_blue_green() {
    let p = Project::new().with_example("iris");
    p.run(&["deploy", "-f", "iris/modelport.yaml"]).expect(0);
    let old = p.state("iris").unwrap();
    let pid = p.pid("iris");
    std::fs::copy(
        root().join("tests/fixtures/models/svm/model.onnx"),
        p.path().join("iris/model.onnx"),
    )
    .unwrap();
    // The stored samples' expected values belong to the old model, but the
    // comparison is endpoint against the local model, so it passes.
    let out = p.run(&["deploy", "-f", "iris/modelport.yaml"]).expect(0);
    assert!(out.stderr().contains("new artifact"), "{}", out.stderr());
    let new = p.state("iris").unwrap();
    assert_ne!(
        old["active"]["artifact_digest"],
        new["active"]["artifact_digest"]
    );
    assert!(wait_gone(pid));
    let status = p.run(&["status", "iris", "--output", "json"]).expect(0);
    assert!(
        status
            .stdout()
            .contains(new["active"]["model_digest"].as_str().unwrap())
    );
    p.run(&["destroy", "iris"]).expect(0);
}

/// A comparison with a different model fails with exit code 3 and shows the worst examples.
#[test]
fn comparing_with_a_different_model_fails_with_exit_3() {
    let p = Project::new().with_example("iris");
    p.run(&["deploy", "-f", "iris/modelport.yaml", "-q"])
        .expect(0);
    let svm = root().join("tests/fixtures/models/svm/model.onnx");
    let junit = p.path().join("compare.xml");
    let out = p
        .run(&[
            "compare",
            "iris",
            svm.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ])
        .expect(3);
    assert!(out.stdout().contains("FAIL"), "{}", out.stdout());
    assert!(out.stdout().contains("worst examples"), "{}", out.stdout());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure"), "{xml}");

    let json = p
        .run(&["compare", "iris", svm.to_str().unwrap(), "--output", "json"])
        .expect(3);
    let report: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(report["a"]["kind"], "deployment");
    assert_eq!(report["a"]["served_by"]["engine"], "onnxruntime");
    assert!(!report["worst"].as_array().unwrap().is_empty());
    p.run(&["destroy", "iris"]).expect(0);
}

/// An update whose comparison fails is removed; the previous server keeps serving.
#[test]
fn a_failed_comparison_keeps_the_old_server() {
    let p = Project::new().with_example("mlp");
    p.run(&["deploy", "-f", "mlp/modelport.yaml", "-q"])
        .expect(0);
    let pid = p.pid("mlp");
    let before = p.state("mlp").unwrap();
    // tract inside the server against onnxruntime as reference, with zero
    // tolerance: float rounding differs between the engines (runtime skew).
    let yaml = std::fs::read_to_string(p.path().join("mlp/modelport.yaml"))
        .unwrap()
        .replace("atol: 1.0e-5", "atol: 0.0")
        .replace("rtol: 1.0e-4", "rtol: 0.0");
    std::fs::write(
        p.path().join("mlp/modelport.yaml"),
        format!("{yaml}\nserving:\n  engine: tract\n"),
    )
    .unwrap();
    let page = p.path().join("rollout.html");
    let out = p
        .run(&[
            "deploy",
            "-f",
            "mlp/modelport.yaml",
            "--engine",
            "onnxruntime",
            "--report",
            page.to_str().unwrap(),
        ])
        .expect(3);
    assert!(out.stdout().contains("worst examples"), "{}", out.stdout());
    // The page shows the comparison that decided the rollout: the new revision
    // (a deployment served by tract) failed against the packaged model.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<h1 id=\"verdict\" class=\"fail\">FAIL</h1>"),
        "{html}"
    );
    assert!(html.contains("tract") && html.contains("id=\"worst\""));
    assert!(
        out.stdout().contains("previous one keeps serving"),
        "{}",
        out.stdout()
    );
    let after = p.state("mlp").unwrap();
    assert_eq!(
        after["active"], before["active"],
        "the active revision changed"
    );
    assert!(after["pending"].is_null());
    assert!(alive(pid));
    let status = p.run(&["status", "mlp", "--output", "json"]).expect(0);
    assert!(
        status.stdout().contains("in_service"),
        "{}",
        status.stdout()
    );
    p.run(&["destroy", "mlp"]).expect(0);
    assert!(wait_gone(pid));
}

/// A server that cannot start fails the deploy with the end of its log.
#[test]
fn a_server_that_cannot_start_shows_its_log() {
    let p = Project::new().with_example("iris");
    let yaml = std::fs::read_to_string(p.path().join("iris/modelport.yaml")).unwrap();
    std::fs::write(
        p.path().join("iris/modelport.yaml"),
        format!("{yaml}\nserving:\n  env:\n    MODELPORT_WORKERS: many\n"),
    )
    .unwrap();
    let out = p.run(&["deploy", "-f", "iris/modelport.yaml"]).expect(1);
    let err = out.stderr();
    assert!(err.contains("exited during start-up"), "{err}");
    assert!(err.contains("last lines of the server log"), "{err}");
    assert!(
        err.contains("MODELPORT_WORKERS") || err.contains("many"),
        "{err}"
    );
    assert!(
        p.state("iris").is_none(),
        "a failed first deploy left state"
    );
}

/// Lost state and dead servers are handled, not errors.
#[test]
fn destroy_tolerates_a_dead_server_and_missing_state() {
    let p = Project::new().with_example("iris");
    p.run(&["deploy", "-f", "iris/modelport.yaml", "-q"])
        .expect(0);
    let pid = p.pid("iris");
    common::kill(pid);
    assert!(wait_gone(pid));
    let status = p.run(&["status", "iris", "--output", "json"]).expect(0);
    assert!(status.stdout().contains("stopped"), "{}", status.stdout());
    // A re-run notices the dead server and starts a new one.
    let out = p.run(&["deploy", "-f", "iris/modelport.yaml"]).expect(0);
    assert!(out.stderr().contains("not running"), "{}", out.stderr());
    p.run(&["destroy", "iris"]).expect(0);
    let again = p.run(&["destroy", "iris"]).expect(0);
    assert!(again.stdout().contains("nothing to destroy"));
}

/// The local runtime's two engines compared on one model: runtime skew.
#[test]
fn two_engines_on_one_model() {
    let p = Project::new();
    let model = root().join("examples/forest/model.onnx");
    let m = model.to_str().unwrap();
    let out = p
        .run(&[
            "compare",
            m,
            m,
            "--engine-a",
            "tract",
            "--engine-b",
            "onnxruntime",
            "--count",
            "40",
        ])
        .expect(0);
    assert!(out.stdout().contains("tract"), "{}", out.stdout());
    assert!(out.stdout().contains("onnxruntime"), "{}", out.stdout());
}

/// The Vertex flavour runs the server under AIP_* variables and predicts on AIP_PREDICT_ROUTE.
#[test]
fn the_vertex_flavour_uses_vertex_routes() {
    let p = Project::new().with_example("iris");
    let yaml = std::fs::read_to_string(p.path().join("iris/modelport.yaml"))
        .unwrap()
        .replace("flavour: sagemaker", "flavour: vertex");
    std::fs::write(p.path().join("iris/modelport.yaml"), yaml).unwrap();
    let out = p.run(&["deploy", "-f", "iris/modelport.yaml"]).expect(0);
    assert!(out.stdout().contains("PASS"), "{}", out.stdout());
    let url = p.predict_url("iris");
    assert!(
        url.contains("/v1/endpoints/iris/deployedModels/") && url.ends_with(":predict"),
        "{url}"
    );
    // The model directory is in the server's environment, not on its command line:
    // destroy must still recognise and stop it.
    let pid = p.pid("iris");
    assert!(alive(pid));
    p.run(&["destroy", "iris"]).expect(0);
    assert!(
        wait_gone(pid),
        "the vertex-flavour server {pid} survived destroy"
    );
}

/// A deploy interrupted after recording its pending server is finished by the next run.
#[test]
fn a_rerun_cleans_up_after_an_interrupted_deploy() {
    let p = Project::new().with_example("iris");
    p.run(&["deploy", "-f", "iris/modelport.yaml", "-q"])
        .expect(0);
    let pid = p.pid("iris");
    // What a crash between starting a server and switching to it leaves behind.
    let mut state = p.state("iris").unwrap();
    let mut pending = state["active"].clone();
    pending["resources"]["pid"] = serde_json::json!(u32::MAX / 2);
    state["pending"] = pending;
    let path = p.path().join(".modelport/state/iris.json");
    std::fs::write(&path, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    let status = p.run(&["status", "iris"]).expect(0);
    assert!(status.stdout().contains("pending"), "{}", status.stdout());

    let out = p.run(&["deploy", "-f", "iris/modelport.yaml"]).expect(0);
    assert!(
        out.stdout().contains("interrupted deploy"),
        "{}",
        out.stdout()
    );
    assert!(p.state("iris").unwrap()["pending"].is_null());
    assert_eq!(p.pid("iris"), pid);
    assert!(alive(pid));
    p.run(&["destroy", "iris"]).expect(0);
    assert!(wait_gone(pid));
}

/// `model.compress` on this machine: the text report shows both hops of the
/// proof, and `compare` afterwards runs the compressed model that serves.
#[test]
fn a_compressed_deploy_shows_both_hops_of_its_proof() {
    let p = Project::new().with_example("cnn");
    let spec = "cnn/modelport.yaml";
    let path = p.path().join(spec);
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        yaml.replace(
            "  path: model.onnx\n",
            "  path: model.onnx\n  compress:\n    to: int8-dynamic\n    max_degradation: {agreement: 0%, sqnr: 10}\n",
        ),
    )
    .unwrap();
    let first = p
        .run(&["deploy", "--provider", "local", "-f", spec])
        .expect(0);
    let out = first.stdout();
    assert!(out.contains("compression  int8-dynamic: file"), "{out}");
    assert!(
        out.contains("original → compressed (this machine) on 8 samples"),
        "{out}"
    );
    assert!(out.contains("original → endpoint on 8 samples"), "{out}");
    assert!(out.contains("ok   sqnr=10"), "{out}");
    assert!(out.contains("deployed cnn"), "{out}");
    let compare = p.run(&["compare", "cnn"]).expect(0);
    assert!(compare.stdout().contains("PASS"), "{}", compare.stdout());
    p.run(&["destroy", "cnn"]).expect(0);
}

/// `doctor` on this machine: both engines, the spec, the model on each engine, the
/// state folder and a fixed port; a missing model and a taken port fail with the
/// fix, and nothing is created.
#[test]
fn doctor_checks_engines_spec_model_and_this_machine() {
    let project = Project::new().with_example("iris");
    let good = project
        .run(&["doctor", "-f", "iris/modelport.yaml", "--output", "json"])
        .expect(0);
    let checks = good.doctor_checks();
    for what in [
        "engine tract",
        "engine onnxruntime",
        "spec iris/modelport.yaml",
        "spec model",
        "local state",
        "local server",
    ] {
        assert_eq!(checks[what].0, "ok", "{what}: {checks:?}");
    }
    assert!(
        checks["spec model"].1.contains("loads on onnxruntime")
            && checks["spec model"].1.contains("and tract"),
        "{checks:?}"
    );
    assert!(
        checks["local state"].1.contains("does not exist yet"),
        "{checks:?}"
    );
    // No provider section: only local is checked; nothing was created.
    assert!(
        !checks
            .keys()
            .any(|k| k.starts_with("aws") || k.starts_with("gcp"))
    );
    assert!(!project.path().join(".modelport").exists());

    // Without -f and without ./modelport.yaml: this machine only, a warning.
    let bare = project.run(&["doctor"]).expect(0);
    assert!(
        bare.stdout().contains("warn  spec modelport.yaml") && bare.stdout().contains("0 failures"),
        "{}",
        bare.stdout()
    );

    // A model that is not there, and a fixed port something else holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let spec = project.path().join("iris/modelport.yaml");
    let yaml = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("path: model.onnx", "path: missing.onnx")
        .replace(
            "    flavour: sagemaker\n",
            &format!("    flavour: sagemaker\n    port: {port}\n"),
        );
    std::fs::write(&spec, yaml).unwrap();
    let bad = project
        .run(&["doctor", "-f", "iris/modelport.yaml"])
        .expect(1);
    let text = bad.stdout();
    assert!(
        text.contains("fail  spec model") && text.contains("missing.onnx"),
        "{text}"
    );
    assert!(
        text.contains("fail  local port") && text.contains("provider.local.port: 0"),
        "{text}"
    );
    assert!(text.contains("2 failures"), "{text}");

    // A provider this build does not know is named with a suggestion.
    let typo = project
        .run(&["doctor", "-f", "iris/modelport.yaml", "--provider", "awz"])
        .expect(1);
    assert!(
        typo.stderr().contains("did you mean \"aws\""),
        "{}",
        typo.stderr()
    );
}

/// Rewrites `model` with every initializer of at least 1 KiB in `model.onnx.data`
/// beside it (as `onnx.save_model(..., save_as_external_data=True)` does).
fn externalize(model: &std::path::Path) {
    let mut m = modelport_compress::onnx::Model::read(model).unwrap();
    assert!(m.externalize(1024) > 0);
    assert_eq!(m.write(model).unwrap().len(), 2);
}

/// A model file whose weights are external data: inspected, packaged with its data
/// file (hashed in the manifest), deployed, served and compared on both engines. A
/// `location` that leaves the model's folder, a data file reached through a symbolic
/// link and a truncated data file are each refused before anything is written,
/// naming the tensor and the file.
#[test]
fn a_model_with_external_data_goes_through_the_whole_flow() {
    let p = Project::new().with_example("cnn");
    let model = p.path().join("cnn/model.onnx");
    externalize(&model);
    let data = p.path().join("cnn/model.onnx.data");
    let data_size = std::fs::metadata(&data).unwrap().len();
    assert!(data_size > 30_000, "{data_size}");

    let inspect = p
        .run(&["inspect", "cnn/model.onnx", "--output", "json"])
        .expect(0);
    let info: serde_json::Value = serde_json::from_str(&inspect.stdout()).unwrap();
    assert_eq!(info["external_data"][0]["location"], "model.onnx.data");
    assert_eq!(info["external_data"][0]["size"], data_size);
    let text = p.run(&["inspect", "cnn/model.onnx"]).expect(0).stdout();
    assert!(text.contains("data        model.onnx.data ("), "{text}");

    let package = p
        .run(&[
            "package",
            "cnn/model.onnx",
            "--out",
            "dist",
            "--output",
            "json",
        ])
        .expect(0);
    let artifact: serde_json::Value = serde_json::from_str(&package.stdout()).unwrap();
    let files: Vec<(&str, u64)> = artifact["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        files.iter().map(|f| f.0).collect::<Vec<_>>(),
        ["model.onnx", "model.onnx.data"],
        "{artifact}"
    );
    assert_eq!(files[1].1, data_size);

    for engine in ["tract", "onnxruntime"] {
        let out = p
            .run(&[
                "predict",
                "cnn/model.onnx",
                "--input",
                "cnn/samples.json",
                "--engine",
                engine,
            ])
            .expect(0);
        assert!(
            out.stdout().contains("probabilities"),
            "{engine}: {}",
            out.stdout()
        );
    }
    let deploy = p
        .run(&["deploy", "--provider", "local", "-f", "cnn/modelport.yaml"])
        .expect(0);
    assert!(deploy.stdout().contains("PASS"), "{}", deploy.stdout());
    let compare = p.run(&["compare", "cnn", "--count", "20"]).expect(0);
    assert!(compare.stdout().contains("PASS"), "{}", compare.stdout());
    p.run(&["destroy", "cnn"]).expect(0);

    // Hostile or broken external data: refused by inspect, package and deploy alike.
    let proto = std::fs::read(&model).unwrap();
    let relocate = |to: &str| {
        let text = proto.clone();
        let from = b"model.onnx.data";
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        // Same length, so the protobuf's length prefixes stay right.
        assert_eq!(to.len(), from.len());
        while i < text.len() {
            if text[i..].starts_with(from) {
                out.extend_from_slice(to.as_bytes());
                i += from.len();
            } else {
                out.push(text[i]);
                i += 1;
            }
        }
        std::fs::write(&model, out).unwrap();
    };
    std::fs::copy(&data, p.path().join("outside.bin")).unwrap();
    let refused = |says: &str| {
        for args in [
            &["inspect", "cnn/model.onnx"][..],
            &["package", "cnn/model.onnx", "--out", "dist2"],
            &["deploy", "--provider", "local", "-f", "cnn/modelport.yaml"],
        ] {
            let run = p.run(args);
            assert_ne!(run.code(), 0, "{args:?}: {}", run.stdout());
            let err = run.stderr();
            assert!(
                err.contains("model.onnx: tensor `") && err.contains(says),
                "{args:?}: {err}"
            );
            assert!(err.contains("hint: external data files must be"), "{err}");
        }
        assert!(!p.path().join("dist2").exists());
        assert!(p.state("cnn").is_none());
    };
    relocate("../outside.bin.");
    refused("leaves the model's directory");
    relocate("/etc/passwd.bin");
    refused("leaves the model's directory");
    #[cfg(unix)]
    {
        relocate("model.onnx.data");
        std::fs::rename(&data, p.path().join("cnn/real.data")).unwrap();
        std::os::unix::fs::symlink("../outside.bin", &data).unwrap();
        refused("goes through a symbolic link");
        std::fs::remove_file(&data).unwrap();
        std::fs::rename(p.path().join("cnn/real.data"), &data).unwrap();
    }
    relocate("model.onnx.data");
    std::fs::File::options()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(data_size - 100)
        .unwrap();
    refused("\"model.onnx.data\" is truncated");
}
