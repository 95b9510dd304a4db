//! `modelport image build|push` without a Docker engine: the layout is
//! byte-reproducible, a real registry (Debian's docker-registry) takes it, an
//! independent client (skopeo) reads back the same digest, and the image, unpacked
//! with umoci, runs under runc as SageMaker and Vertex AI run it and passes a
//! `modelport compare`.
//!
//! These tests need docker-registry, skopeo, umoci and runc (Debian packages that
//! `.ci/run` installs) and root for runc; they fail, never skip, without them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, Run, free_port, root};
use modelport_testkit::registry::{Registry, system_tool};
use serde_json::Value;

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

fn build(p: &Project, out: &str, extra: &[&str]) -> Value {
    let mut args = vec!["image", "build", "--out", out, "--output", "json"];
    args.extend_from_slice(extra);
    json(&p.run(&args).expect(0))
}

fn blob(dir: &Path, digest: &str) -> Value {
    let p = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn config_of(p: &Project, layout: &str, built: &Value) -> Value {
    blob(
        &p.path().join(layout),
        built["config"]["digest"].as_str().unwrap(),
    )
}

fn env_of(config: &Value) -> Vec<String> {
    config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_builds_give_one_digest_and_the_image_runs_modelport_serve() {
    let p = Project::new();
    let a = build(&p, "a", &[]);
    let b = build(&p, "b", &[]);
    assert_eq!(a["manifest"], b["manifest"], "two builds, two manifests");
    for layout in ["a", "b"] {
        assert!(p.path().join(layout).join("oci-layout").is_file());
    }
    let la = std::fs::read(p.path().join("a/index.json")).unwrap();
    let lb = std::fs::read(p.path().join("b/index.json")).unwrap();
    assert_eq!(la, lb);

    let config = config_of(&p, "a", &a);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["modelport"])
    );
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["serve"]));
    assert!(
        config["config"]["ExposedPorts"]["8080/tcp"].is_object(),
        "{config}"
    );
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    let env = env_of(&config);
    assert!(
        env.contains(&"MODELPORT_ENGINE=onnxruntime".to_string()),
        "{env:?}"
    );
    assert!(
        env.iter()
            .any(|e| e.starts_with("ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so.")),
        "{env:?}"
    );
    let labels = &config["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        labels["io.modelport.onnxruntime.version"].is_string(),
        "{labels}"
    );
    let files: Vec<&str> = a["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for needed in [
        "/usr/local/bin/modelport",
        "/usr/local/lib/libc.so.6",
        "/usr/local/lib/libstdc++.so.6",
    ] {
        assert!(files.contains(&needed), "{needed} missing from {files:?}");
    }
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("/usr/local/lib/libonnxruntime.so.")),
        "{files:?}"
    );

    // The dates come from SOURCE_DATE_EPOCH: another date, another digest.
    let out = p
        .cmd(&["image", "build", "--out", "c", "--output", "json"])
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .unwrap();
    let c: Value = serde_json::from_slice(&Run(out).expect(0).0.stdout).unwrap();
    assert_ne!(c["manifest"]["digest"], a["manifest"]["digest"]);
    assert_eq!(config_of(&p, "c", &c)["created"], "2026-01-01T00:00:00Z");

    // tract: nothing of onnxruntime, and libstdc++ only if the binary itself needs it.
    let t = build(&p, "t", &["--engine", "tract"]);
    let files: Vec<&str> = t["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        !files.iter().any(|f| f.contains("onnxruntime")),
        "{files:?}"
    );
    let env = env_of(&config_of(&p, "t", &t));
    assert!(
        env.contains(&"MODELPORT_ENGINE=tract".to_string()),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|e| e.starts_with("ORT_DYLIB_PATH=")),
        "{env:?}"
    );
    assert_ne!(t["manifest"]["digest"], a["manifest"]["digest"]);
}

#[test]
fn files_that_cannot_run_on_the_platform_are_refused_before_anything_is_written() {
    let p = Project::new();
    let other = if cfg!(target_arch = "x86_64") {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let run = p
        .run(&["image", "build", "--out", "x", "--platform", other])
        .expect(1);
    assert!(
        run.stderr().contains(&format!("cannot run on {other}")),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("hint: "), "{}", run.stderr());
    assert!(run.stderr().contains("--target"), "{}", run.stderr());
    assert!(!p.path().join("x").exists());

    std::fs::write(p.path().join("modelport"), "#!/bin/sh\n").unwrap();
    let run = p
        .run(&["image", "build", "--out", "x", "--binary", "modelport"])
        .expect(1);
    assert!(run.stderr().contains("not an ELF file"), "{}", run.stderr());

    let run = p
        .run(&["image", "build", "--platform", "linux/riscv64"])
        .expect(1);
    assert!(run.stderr().contains("linux/arm64"), "{}", run.stderr());

    let run = p
        .run(&[
            "image",
            "build",
            "--engine",
            "tract",
            "--onnxruntime",
            "lib.so",
        ])
        .expect(1);
    assert!(run.stderr().contains("--onnxruntime"), "{}", run.stderr());
}

#[test]
fn the_dockerfile_and_image_build_agree_on_entrypoint_port_and_environment() {
    let dockerfile = std::fs::read_to_string(root().join("templates/Dockerfile")).unwrap();
    let p = Project::new();
    let built = build(&p, "a", &[]);
    let config = config_of(&p, "a", &built);
    let env = env_of(&config);
    let mut seen = 0;
    for line in dockerfile.lines() {
        if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            let v: Value = serde_json::from_str(rest).unwrap();
            assert_eq!(v, config["config"]["Entrypoint"]);
            seen += 1;
        } else if let Some(rest) = line.strip_prefix("CMD ") {
            let v: Value = serde_json::from_str(rest).unwrap();
            assert_eq!(v, config["config"]["Cmd"]);
            seen += 1;
        } else if let Some(rest) = line.strip_prefix("EXPOSE ") {
            assert!(
                config["config"]["ExposedPorts"][format!("{}/tcp", rest.trim())].is_object(),
                "EXPOSE {rest}: {config}"
            );
            seen += 1;
        } else if let Some(rest) = line.strip_prefix("ENV ") {
            let (key, value) = rest.split_once('=').unwrap();
            let ours = env
                .iter()
                .find_map(|e| e.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("the image has no {key}: {env:?}"));
            if key == "ORT_DYLIB_PATH" {
                // The same place; the version is the one each found.
                let dir = |p: &str| Path::new(p).parent().unwrap().to_path_buf();
                assert_eq!(dir(ours), dir(value), "{key}");
                assert!(ours.contains("libonnxruntime.so."), "{ours}");
            } else {
                assert_eq!(ours, value, "{key}");
            }
            seen += 1;
        }
    }
    assert!(
        seen >= 5,
        "the Dockerfile lost its ENTRYPOINT, CMD, EXPOSE or ENV lines"
    );
}

/// A container run by runc (as root), with its state in a folder of its own;
/// killed and deleted on drop.
struct Container {
    runc: PathBuf,
    state: PathBuf,
    id: String,
    log: PathBuf,
}

impl Container {
    /// Runs the bundle at `bundle` with `edit` applied to the runtime config that
    /// umoci wrote: the host's network (the platforms publish the port; this test
    /// calls it on 127.0.0.1), no terminal.
    fn run(bundle: &Path, id: &str, edit: impl FnOnce(&mut Value)) -> Container {
        let runc = system_tool("runc").unwrap();
        let config_path = bundle.join("config.json");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        let ns = config["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        edit(&mut config);
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let state = bundle.parent().unwrap().join(format!("runc-{id}"));
        let log = bundle.parent().unwrap().join(format!("{id}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let status = Command::new(&runc)
            .arg("--root")
            .arg(&state)
            .args(["run", "--detach", id])
            .current_dir(bundle)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        let c = Container {
            runc,
            state,
            id: id.into(),
            log,
        };
        assert!(status.success(), "runc run failed: {}", c.log());
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn runc(&self, args: &[&str]) {
        let _ = Command::new(&self.runc)
            .arg("--root")
            .arg(&self.state)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.runc(&["kill", &self.id, "KILL"]);
        self.runc(&["delete", "--force", &self.id]);
    }
}

fn wait_ready(url: &str, container: &Container) -> reqwest::blocking::Response {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(url).send()
            && r.status() == 200
        {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{url} did not answer 200 within 60 s; the container's output:\n{}",
            container.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tool(name: &str, args: &[&str], dir: &Path) -> Run {
    let exe = system_tool(name).unwrap();
    Run(Command::new(exe)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap())
}

#[test]
fn the_pushed_image_runs_under_runc_as_sagemaker_and_vertex_run_it() {
    let registry = Registry::start().unwrap();
    let p = Project::new().with_example("iris");
    let built = build(&p, "image", &[]);
    let reference = format!("{}/modelport:test", registry.host());

    let pushed = json(
        &p.run(&[
            "image", "push", &reference, "--layout", "image", "--output", "json",
        ])
        .expect(0),
    );
    assert_eq!(pushed["digest"], built["manifest"]["digest"]);
    assert_eq!(pushed["blobs_sent"], 2, "{pushed}");
    let stored = registry.stored_bytes();
    // A second push of the same image sends no blob.
    let again = json(
        &p.run(&[
            "image", "push", &reference, "--layout", "image", "--output", "json",
        ])
        .expect(0),
    );
    assert_eq!(again["blobs_sent"], 0, "{again}");
    assert_eq!(again["bytes_sent"], 0, "{again}");
    assert_eq!(again["blobs_skipped"], 2, "{again}");
    assert!(
        registry.stored_bytes() <= stored + 4096,
        "a re-push stored blobs again"
    );

    // An independent client reads back the same digest.
    let inspect = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
        p.path(),
    )
    .expect(0);
    let inspected: Value = serde_json::from_str(&inspect.stdout()).unwrap();
    assert_eq!(inspected["Digest"], built["manifest"]["digest"]);
    let arch = if cfg!(target_arch = "x86_64") {
        "amd64"
    } else {
        "arm64"
    };
    assert_eq!(inspected["Architecture"], arch);

    // What the platforms pull, unpacked as a runtime bundle.
    tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            "oci:pulled:test",
        ],
        p.path(),
    )
    .expect(0);
    tool(
        "umoci",
        &["unpack", "--image", "pulled:test", "bundle"],
        p.path(),
    )
    .expect(0);
    p.run(&["package", "iris/model.onnx", "--out", "dist"])
        .expect(0);
    let model = p.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    let untar = Command::new("tar")
        .arg("xzf")
        .arg(p.path().join("dist/model.tar.gz"))
        .arg("-C")
        .arg(&model)
        .status()
        .unwrap();
    assert!(untar.success());
    let pinned = pushed["pinned"].as_str().unwrap().to_string();

    // SageMaker: `docker run IMAGE serve`, the model unpacked read-only in
    // /opt/ml/model, port 8080.
    assert!(
        modelport_local::process::port_is_free(8080),
        "port 8080 is taken: SageMaker's contract needs it for this test"
    );
    {
        let c = Container::run(&p.path().join("bundle"), "sagemaker", |config| {
            config["process"]["args"] = serde_json::json!(["modelport", "serve"]);
            config["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(Value::String(format!("MODELPORT_IMAGE={pinned}")));
            config["mounts"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "destination": "/opt/ml/model",
                    "type": "bind",
                    "source": model,
                    "options": ["rbind", "ro"],
                }));
        });
        let ping = wait_ready("http://127.0.0.1:8080/ping", &c);
        assert_eq!(
            ping.headers()["x-modelport-image"].to_str().unwrap(),
            pinned,
            "the server names the image it runs in"
        );
        let samples = std::fs::read(p.path().join("iris/samples.json")).unwrap();
        let answer = reqwest::blocking::Client::new()
            .post("http://127.0.0.1:8080/invocations")
            .header("content-type", "application/json")
            .body(samples)
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", c.log());
        let compare = p
            .run(&[
                "compare",
                "iris/model.onnx",
                "http://127.0.0.1:8080",
                "--output",
                "json",
            ])
            .expect(0);
        let report: Value = serde_json::from_str(&compare.stdout()).unwrap();
        assert_eq!(report["passed"], true, "{report}");
        assert_eq!(
            report["b"]["served_by"]["image"],
            pinned.as_str(),
            "{report}"
        );
    }

    // Vertex AI: the image's own entry point, AIP_* variables, its routes on AIP_HTTP_PORT.
    let port = free_port();
    let health = "/v1/endpoints/1/deployedModels/2";
    let predict = "/v1/endpoints/1/deployedModels/2:predict";
    let c = Container::run(&p.path().join("bundle"), "vertex", |config| {
        let env = config["process"]["env"].as_array_mut().unwrap();
        for (k, v) in [
            ("AIP_HTTP_PORT", port.to_string()),
            ("AIP_HEALTH_ROUTE", health.to_string()),
            ("AIP_PREDICT_ROUTE", predict.to_string()),
            ("AIP_STORAGE_URI", "/model".to_string()),
            ("AIP_MODE", "PREDICTION".to_string()),
        ] {
            env.push(Value::String(format!("{k}={v}")));
        }
        config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "destination": "/model",
                "type": "bind",
                "source": model,
                "options": ["rbind", "ro"],
            }));
    });
    wait_ready(&format!("http://127.0.0.1:{port}{health}"), &c);
    let samples = std::fs::read(p.path().join("iris/samples.json")).unwrap();
    let answer = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}{predict}"))
        .header("content-type", "application/json")
        .body(samples)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", c.log());
    let body: Value = answer.json().unwrap();
    assert!(body["predictions"].is_array(), "{body}");
    p.run(&[
        "compare",
        "iris/model.onnx",
        &format!("http://127.0.0.1:{port}"),
    ])
    .expect(0);
}

#[test]
fn a_push_that_fails_names_the_registry_and_what_to_do() {
    let p = Project::new();
    build(&p, "image", &["--engine", "tract"]);
    // Nothing listens on port 9 of 127.0.0.1.
    let run = p
        .run(&[
            "image",
            "push",
            "127.0.0.1:9/modelport:x",
            "--layout",
            "image",
        ])
        .expect(1);
    assert!(
        run.stderr().contains("127.0.0.1:9/modelport"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("hint: "), "{}", run.stderr());

    let run = p
        .run(&[
            "image",
            "push",
            "127.0.0.1:9/modelport:x",
            "--layout",
            "nowhere",
        ])
        .expect(1);
    assert!(run.stderr().contains("nowhere"), "{}", run.stderr());
    let run = p
        .run(&["image", "push", "Not A Reference", "--layout", "image"])
        .expect(1);
    assert!(
        run.stderr().contains("REGISTRY/REPOSITORY:TAG"),
        "{}",
        run.stderr()
    );
}
