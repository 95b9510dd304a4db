//! `--provider gcp` end to end through the CLI, as a user runs it, against
//! fake-gcs-server (Cloud Storage) and modelport's strict Vertex AI fake (every
//! request validated against the official discovery document, a real
//! `modelport serve` as the data plane, fetching its model from the emulator).
//! Every request is made by Google's official crates inside the CLI; only the far
//! end is an emulator.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Run;
use common::clouds::{BUCKET, Gcp as Cloud};
use modelport_testkit::vertex::{Call, Fault, FaultKind};

/// The calls that change something, as `method name`.
fn changes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| {
            c.status == 200
                && matches!(
                    c.method.as_str(),
                    "models.upload"
                        | "models.delete"
                        | "endpoints.create"
                        | "endpoints.delete"
                        | "endpoints.patch"
                        | "endpoints.deployModel"
                        | "endpoints.undeployModel"
                )
        })
        .map(|c| format!("{} {}", c.method, c.name.as_deref().unwrap_or("")))
        .collect()
}

fn count(calls: &[String], method: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.starts_with(&format!("{method} ")))
        .count()
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

#[test]
fn deploy_compare_redeploy_update_and_destroy() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();

    // plan reads the live project and changes nothing: 2 (changes) before, 0 after.
    let plan = cloud
        .run(&["plan", "--provider", "gcp", "-f", &spec])
        .expect(2);
    let text = format!("{}{}", plan.stdout(), plan.stderr());
    assert!(text.contains("Vertex AI endpoint"), "{text}");
    assert!(cloud.project.state("iris").is_none(), "plan wrote state");
    assert_eq!(changes(&cloud.fake.calls()), Vec::<String>::new());

    let first = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    assert!(first.stdout().contains("PASS"), "{}", first.stdout());
    // The deployment stages are lines with the time waited and the deadline
    // (provider.gcp.deploy_timeout_s: 120).
    assert!(
        first
            .stderr()
            .lines()
            .any(|l| l.contains(": deployment stage ") && l.contains(" of at most 2 min 00 s)")),
        "{}",
        first.stderr()
    );
    // Each file uploaded to Cloud Storage is a line with its size, time and rate.
    assert!(
        first
            .stderr()
            .lines()
            .any(|l| l.starts_with("    uploading [")
                && l.contains("] model.onnx to gs://")
                && l.contains(" B in ")
                && l.ends_with("/s)")),
        "{}",
        first.stderr()
    );
    assert!(
        first.stdout().contains("deployed iris"),
        "{}",
        first.stdout()
    );
    let err = first.stderr();
    assert!(
        err.contains("PREPARING_MODEL") || err.contains("STARTING_MODEL_SERVER"),
        "{err}"
    );
    let state = cloud.project.state("iris").unwrap();
    assert_eq!(state["provider"], "gcp");
    let resources = &state["active"]["resources"];
    assert_eq!(
        resources["endpoint_name"],
        "projects/test-project/locations/us-central1/endpoints/iris"
    );
    let dir = resources["dir"].as_str().unwrap();
    assert!(dir.starts_with("mp/iris/"), "{dir}");
    // The unpacked files, the manifest and the archive.
    let objects = cloud.gcs.list_objects(BUCKET, dir).unwrap();
    for name in ["model.onnx", "modelport.json", "model.tar.gz"] {
        assert!(
            objects.iter().any(|o| o == &format!("{dir}/{name}")),
            "{name} missing in {objects:?}"
        );
    }

    let status = cloud.run(&["status", "iris", "--output", "json"]).expect(0);
    assert_eq!(
        json(&status)[0]["health"],
        "in_service",
        "{}",
        status.stdout()
    );

    // `list` prices what serves, with or without the recorded spec (issue 13 #8).
    let price = |cloud: &Cloud| {
        let listed = cloud.run(&["list", "--output", "json"]).expect(0);
        json(&listed)[0]["usd_per_hour"].clone()
    };
    let recorded = price(&cloud);
    assert!(recorded.as_f64().is_some_and(|p| p > 0.0), "{recorded}");
    std::fs::remove_file(
        cloud
            .project
            .path()
            .join(".modelport/deployments/iris/deployed-spec.json"),
    )
    .unwrap();
    assert_eq!(price(&cloud), recorded);

    // compare goes through :predict, batching to the 1.5 MB limit.
    let compare = cloud.run(&["compare", "iris", "--count", "300"]).expect(0);
    assert!(compare.stdout().contains("PASS"), "{}", compare.stdout());

    // Unchanged: nothing is uploaded, created or deployed.
    let before = cloud.fake.calls().len();
    let again = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());
    assert_eq!(changes(&cloud.calls_since(before)), Vec::<String>::new());
    cloud
        .run(&["plan", "--provider", "gcp", "-f", &spec])
        .expect(0);

    // A changed spec: a new model deployed next to the old one at 0 % and, at the
    // same time, alone on a short-lived verification endpoint where it is compared;
    // then the traffic moved, the verification endpoint and the old model removed;
    // the same serving endpoint throughout, and the unchanged files are not
    // uploaded again.
    let path = cloud.project.path().join(&spec);
    let yaml = std::fs::read_to_string(&path).unwrap();
    // (startup_timeout_s also sends a deployment timeout and a startup probe, which
    // the fake checks against the discovery document.)
    let yaml = yaml.replace("compute:\n", "compute:\n  startup_timeout_s: 120\n");
    std::fs::write(&path, format!("{yaml}\nserving:\n  timeout_s: 59\n")).unwrap();
    let before = cloud.fake.calls().len();
    let update = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    assert!(update.stdout().contains("PASS"), "{}", update.stdout());
    assert!(
        update.stderr().contains("0 objects uploaded"),
        "{}",
        update.stderr()
    );
    let calls = changes(&cloud.calls_since(before));
    for (method, n) in [
        ("models.upload", 1),
        ("endpoints.deployModel", 2),
        ("endpoints.patch", 1),
        ("endpoints.undeployModel", 2),
        ("models.delete", 1),
        ("endpoints.create", 1),
        ("endpoints.delete", 1),
    ] {
        assert_eq!(count(&calls, method), n, "{method} in {calls:?}");
    }
    assert!(
        calls
            .iter()
            .filter(|c| c.starts_with("endpoints.create") || c.starts_with("endpoints.delete"))
            .all(|c| c.contains("/endpoints/iris-verify-") || c.ends_with("us-central1")),
        "only the verification endpoint comes and goes: {calls:?}"
    );
    let new_state = cloud.project.state("iris").unwrap();
    assert_ne!(
        new_state["active"]["resources"]["deployed_model_id"],
        state["active"]["resources"]["deployed_model_id"]
    );

    // Found by label even without local state.
    std::fs::rename(
        cloud.project.path().join(".modelport/state/iris.json"),
        cloud.project.path().join("iris.json.bak"),
    )
    .unwrap();
    let listed = cloud
        .run(&["list", "--provider", "gcp", "-f", &spec, "--output", "json"])
        .expect(0);
    let listed = json(&listed);
    assert_eq!(listed[0]["name"], "iris", "{listed}");
    std::fs::rename(
        cloud.project.path().join("iris.json.bak"),
        cloud.project.path().join(".modelport/state/iris.json"),
    )
    .unwrap();

    let destroyed = cloud
        .run(&["destroy", "iris", "--purge", "--output", "json"])
        .expect(0);
    let destroyed = json(&destroyed);
    assert_eq!(destroyed["leftover"], serde_json::json!([]), "{destroyed}");
    assert!(cloud.project.state("iris").is_none());
    assert_eq!(
        cloud.gcs.list_objects(BUCKET, "mp/iris/").unwrap(),
        Vec::<String>::new()
    );
    let listed = cloud
        .run(&["list", "--provider", "gcp", "-f", &spec, "--output", "json"])
        .expect(0);
    assert_eq!(json(&listed), serde_json::json!([]));
    assert!(
        cloud.fake.server_pids().is_empty(),
        "{:?}",
        cloud.fake.server_pids()
    );
}

#[test]
fn an_update_that_answers_differently_is_undeployed_with_exit_3() {
    let cloud = Cloud::start("mlp");
    let spec = cloud.spec();
    cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec, "-q"])
        .expect(0);
    let before = cloud.project.state("mlp").unwrap();
    // tract in the endpoint, onnxruntime as the reference, zero tolerance: the
    // engines round differently (runtime skew), so the comparison fails.
    let path = cloud.project.path().join(&spec);
    let yaml = std::fs::read_to_string(&path)
        .unwrap()
        .replace("atol: 1.0e-5", "atol: 0.0")
        .replace("rtol: 1.0e-4", "rtol: 0.0");
    std::fs::write(&path, format!("{yaml}\nserving:\n  engine: tract\n")).unwrap();
    let n = cloud.fake.calls().len();
    let out = cloud
        .run(&[
            "deploy",
            "--provider",
            "gcp",
            "-f",
            &spec,
            "--engine",
            "onnxruntime",
        ])
        .expect(3);
    assert!(out.stdout().contains("FAIL"), "{}", out.stdout());
    assert!(
        out.stdout().contains("previous one keeps serving"),
        "{}",
        out.stdout()
    );
    let calls = changes(&cloud.calls_since(n));
    for (method, n) in [
        // On the serving endpoint at 0 %, and alone on the verification endpoint.
        ("endpoints.deployModel", 2),
        // The comparison failed on the verification endpoint: the serving
        // endpoint's traffic never moved.
        ("endpoints.patch", 0),
        ("endpoints.undeployModel", 2),
        ("endpoints.delete", 1),
        ("models.delete", 1),
    ] {
        assert_eq!(count(&calls, method), n, "{method} in {calls:?}");
    }
    let after = cloud.project.state("mlp").unwrap();
    assert_eq!(after["active"], before["active"]);
    assert!(after["pending"].is_null());
    let status = cloud.run(&["status", "mlp", "--output", "json"]).expect(0);
    let status = json(&status);
    assert_eq!(status[0]["health"], "in_service", "{status}");
    let old_id = before["active"]["resources"]["deployed_model_id"]
        .as_str()
        .unwrap();
    assert!(
        status[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{old_id}: 100%")),
        "{status}"
    );
    cloud.run(&["destroy", "mlp"]).expect(0);
}

#[test]
fn a_deploy_killed_after_the_model_upload_is_undone_and_redone_by_a_rerun() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    cloud.fake.inject(Fault::new(
        "endpoints.create",
        FaultKind::Delay(Duration::from_secs(5)),
    ));
    let mut child = cloud
        .cmd(&["deploy", "--provider", "gcp", "-f", &spec, "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !cloud
        .fake
        .calls()
        .iter()
        .any(|c| c.method == "models.upload" && c.status == 200)
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no models.upload: {:?}",
            cloud.fake.calls()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the deploy ended before models.upload"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The upload operation finishes (0.3 s) and is polled (1 s); then the CLI
    // waits in endpoints.create, which the fault holds for 5 s.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the deploy ended early"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let state = cloud
        .project
        .state("iris")
        .expect("the pending revision is recorded");
    assert!(state["pending"].is_object(), "{state}");
    assert!(state["active"].is_null());

    let before = cloud.fake.calls().len();
    let rerun = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    assert!(rerun.stdout().contains("PASS"), "{}", rerun.stdout());
    // The interrupted rollout never passed a comparison: it is undone (the model it
    // uploaded deleted), then the deploy runs again from a clean state.
    assert!(
        rerun
            .stderr()
            .contains("undoing the rollout an interrupted deploy left"),
        "{}",
        rerun.stderr()
    );
    let calls = changes(&cloud.calls_since(before));
    assert!(calls[0].starts_with("models.delete"), "{calls:?}");
    assert_eq!(count(&calls, "models.upload"), 1, "{calls:?}");
    assert_eq!(count(&calls, "endpoints.deployModel"), 2, "{calls:?}");
    cloud.run(&["destroy", "iris"]).expect(0);
}

#[test]
fn rate_limits_on_every_call_are_retried() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    for method in [
        "models.get",
        "models.upload",
        "endpoints.get",
        "endpoints.create",
        "endpoints.deployModel",
        "endpoints.predict",
        "operations.get",
    ] {
        cloud
            .fake
            .inject(Fault::new(method, FaultKind::TooManyRequests).times(2));
    }
    cloud
        .fake
        .inject(Fault::new("endpoints.predict", FaultKind::Unavailable));
    let out = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    assert!(out.stdout().contains("PASS"), "{}", out.stdout());
    let refused = cloud
        .fake
        .calls()
        .iter()
        .filter(|c| c.status == 429 || c.status == 503)
        .count();
    assert!(refused >= 15, "{:?}", cloud.fake.calls());
    cloud.run(&["destroy", "iris"]).expect(0);
}

#[test]
fn a_quota_error_names_the_quota_and_leaves_no_orphan_endpoint() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    cloud.fake.inject(Fault::new(
        "endpoints.deployModel",
        FaultKind::QuotaExceeded,
    ));
    let out = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(1);
    let err = out.stderr();
    assert!(err.contains("RESOURCE_EXHAUSTED"), "{err}");
    assert!(err.contains("custom_model_serving_cpus"), "{err}");
    assert!(err.contains("hint:") && err.contains("Quotas"), "{err}");
    assert!(
        cloud.project.state("iris").is_none(),
        "a failed first deploy is forgotten"
    );
    let listed = cloud
        .run(&["list", "--provider", "gcp", "-f", &spec, "--output", "json"])
        .expect(0);
    assert_eq!(json(&listed), serde_json::json!([]));
    // Both endpoints this deploy created (the serving one and the verification
    // one) are deleted, and the model.
    let calls = changes(&cloud.fake.calls());
    assert_eq!(count(&calls, "endpoints.delete"), 2, "{calls:?}");
    assert_eq!(count(&calls, "models.delete"), 1, "{calls:?}");
}

#[test]
fn a_server_that_never_becomes_ready_fails_with_the_reason_and_no_orphan() {
    let cloud = Cloud::with_config("iris", |c| c.startup_timeout = Duration::from_secs(3));
    let spec = cloud.spec();
    cloud.fake.inject(Fault::new(
        "endpoints.deployModel",
        FaultKind::ServerNeverReady,
    ));
    let out = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(1);
    let err = out.stderr();
    assert!(err.contains("never became ready"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("AIP_HEALTH_ROUTE"),
        "{err}"
    );
    let listed = cloud
        .run(&["list", "--provider", "gcp", "-f", &spec, "--output", "json"])
        .expect(0);
    assert_eq!(
        json(&listed),
        serde_json::json!([]),
        "the endpoint was deleted"
    );
}

#[test]
fn missing_application_default_credentials_give_one_clear_error() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    // No overrides: the real Google endpoints, which the loopback proxy and the
    // closed metadata server keep this test from ever reaching.
    let out = Run(cloud
        .cmd(&["deploy", "--provider", "gcp", "-f", &spec])
        .env_remove("MODELPORT_GCP_VERTEX_ENDPOINT")
        .env_remove("MODELPORT_GCP_STORAGE_ENDPOINT")
        .output()
        .unwrap())
    .expect(1);
    let err = out.stderr();
    assert!(
        err.contains("hint:") && err.contains("gcloud auth application-default login"),
        "{err}"
    );
    assert!(
        cloud
            .project
            .state("iris")
            .is_none_or(|s| s["active"].is_null()),
        "nothing recorded as deployed"
    );
}

#[test]
fn iam_policy_names_the_roles_scoped_to_the_deployment() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    let out = cloud
        .run(&["iam-policy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    let policy = json(&out);
    let deployer = policy["deployer"]["bindings"].as_array().unwrap();
    assert!(
        deployer
            .iter()
            .any(|b| b["role"] == "roles/aiplatform.user"),
        "{policy}"
    );
    let serving = policy["serving"]["bindings"].as_array().unwrap();
    let read = serving
        .iter()
        .find(|b| b["role"] == "roles/storage.objectViewer")
        .unwrap();
    assert_eq!(
        read["condition"],
        "resource.name.startsWith(\"projects/_/buckets/models/objects/mp/iris/\")"
    );
    assert!(
        serving
            .iter()
            .any(|b| b["role"] == "roles/artifactregistry.reader"),
        "{policy}"
    );
    // doctor reads the explicit image from its repository.
    let permissions = policy["deployer"]["permissions"].as_array().unwrap();
    assert!(
        permissions
            .iter()
            .any(|p| p == "artifactregistry.repositories.downloadArtifacts"),
        "{policy}"
    );
    assert!(
        deployer
            .iter()
            .any(|b| b["role"] == "roles/artifactregistry.reader"
                && b["resource"]
                    == "projects/test-project/locations/us-central1/repositories/modelport"),
        "{policy}"
    );
}

const ENDPOINTS: &str = "projects/test-project/locations/us-central1/endpoints";

/// A production caller's `:predict` on the serving endpoint: the traffic split chooses.
fn predict(
    c: &reqwest::blocking::Client,
    fake: &str,
    endpoint: &str,
    body: &str,
) -> reqwest::blocking::RequestBuilder {
    c.post(format!("{fake}/v1/{ENDPOINTS}/{endpoint}:predict"))
        .header("content-type", "application/json")
        .body(body.to_string())
}

fn one_row(cloud: &Cloud, example: &str) -> String {
    let text =
        std::fs::read_to_string(cloud.project.path().join(example).join("samples.json")).unwrap();
    let samples: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::json!({"instances": [samples["instances"][0]]}).to_string()
}

/// The deployed model that answers a production request now.
fn serving(cloud: &Cloud, endpoint: &str, body: &str) -> String {
    let r = predict(
        &reqwest::blocking::Client::new(),
        &cloud.fake.url(),
        endpoint,
        body,
    )
    .send()
    .unwrap();
    let v: serde_json::Value = r.json().unwrap();
    v["deployedModelId"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

fn edit(cloud: &Cloud, spec: &str, f: impl FnOnce(String) -> String) {
    let path = cloud.project.path().join(spec);
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, f(yaml)).unwrap();
}

fn active_deployed(cloud: &Cloud, name: &str) -> String {
    cloud.project.state(name).unwrap()["active"]["resources"]["deployed_model_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn no_production_request_reaches_the_new_deployed_model_before_it_passes() {
    let cloud = Cloud::start("mlp");
    let spec = cloud.spec();
    let body = one_row(&cloud, "mlp");
    // A first deploy: the serving endpoint gets its model with no traffic while a
    // copy on the verification endpoint is compared.
    let first = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    assert!(first.stdout().contains("PASS"), "{}", first.stdout());
    let predictions = cloud.fake.predictions();
    let patch = cloud
        .fake
        .calls()
        .iter()
        .position(|c| c.method == "endpoints.patch")
        .expect("the traffic was given to the new model");
    assert!(
        predictions
            .iter()
            .filter(|p| p.endpoint == format!("{ENDPOINTS}/mlp"))
            .all(|p| p.seq > patch),
        "the serving endpoint answered before its model passed: {predictions:?}"
    );

    for passes in [true, false] {
        edit(&cloud, &spec, |y| common::update(&y, passes, 59));
        let old = active_deployed(&cloud, "mlp");
        let since = cloud.fake.calls().len();
        let traffic = {
            let (url, body) = (cloud.fake.url(), body.clone());
            common::Traffic::start(move |c| predict(c, &url, "mlp", &body))
        };
        let cmd = cloud.cmd(&[
            "deploy",
            "--provider",
            "gcp",
            "-f",
            &spec,
            "--engine",
            "onnxruntime",
        ]);
        let (out, answers) = common::deploy_under_traffic(cmd, traffic);
        common::assert_all_answered(&answers);
        let calls = cloud.fake.calls();
        let moved = calls
            .iter()
            .enumerate()
            .skip(since)
            .find(|(_, c)| {
                c.method == "endpoints.patch"
                    && c.name.as_deref() == Some(&format!("{ENDPOINTS}/mlp"))
            })
            .map(|(i, _)| i);
        let predictions: Vec<_> = cloud
            .fake
            .predictions()
            .into_iter()
            .filter(|p| p.seq >= since)
            .collect();
        let production: Vec<_> = predictions
            .iter()
            .filter(|p| p.endpoint == format!("{ENDPOINTS}/mlp"))
            .collect();
        assert!(
            production.len() > 50,
            "only {} production requests",
            production.len()
        );
        let verification: Vec<_> = predictions
            .iter()
            .filter(|p| p.endpoint.contains("/mlp-verify-"))
            .collect();
        assert!(!verification.is_empty(), "{predictions:?}");
        if passes {
            out.expect(0);
            let moved = moved.expect("the traffic moved");
            let new = active_deployed(&cloud, "mlp");
            assert_ne!(new, old);
            let early: Vec<_> = production
                .iter()
                .filter(|p| p.seq < moved && p.deployed_model_id != old)
                .collect();
            assert!(
                early.is_empty(),
                "{} production requests reached another deployed model before the comparison passed: {early:?}",
                early.len()
            );
            assert!(verification.iter().all(|p| p.seq < moved));
            assert_eq!(serving(&cloud, "mlp", &body), new);
        } else {
            out.expect(3);
            assert!(moved.is_none(), "the traffic moved for a failed revision");
            assert!(
                production.iter().all(|p| p.deployed_model_id == old),
                "{production:?}"
            );
            assert_eq!(serving(&cloud, "mlp", &body), old);
        }
    }
    let destroyed = cloud.run(&["destroy", "mlp", "--output", "json"]).expect(0);
    assert_eq!(json(&destroyed)["leftover"], serde_json::json!([]));
    assert!(cloud.fake.server_pids().is_empty());
}

#[test]
fn every_interruption_leaves_the_old_deployed_model_serving_on_gcp() {
    let mut cases: Vec<(common::Interruption, Vec<Fault>)> = common::Interruption::common()
        .into_iter()
        .map(|c| (c, vec![]))
        .collect();
    let base = cases[0].0.clone();
    cases.push((
        common::Interruption {
            what: "an answer names another deployed model",
            args: &[],
            code: Some(3),
            says: "an answer came from deployed model 1000000001",
            ..base.clone()
        },
        vec![Fault::new("endpoints.predict", FaultKind::ForeignAnswer)],
    ));
    cases.push((
        common::Interruption {
            what: "predictions keep failing",
            args: &[],
            says: "UNAVAILABLE",
            ..base
        },
        vec![Fault::new("endpoints.predict", FaultKind::Unavailable).times(200)],
    ));
    for (case, faults) in cases {
        let cloud = Cloud::start("iris");
        let spec = cloud.spec();
        let body = one_row(&cloud, "iris");
        cloud
            .run(&["deploy", "--provider", "gcp", "-f", &spec, "-q"])
            .expect(0);
        let old = active_deployed(&cloud, "iris");
        std::fs::copy(
            common::root()
                .join("tests/fixtures/models")
                .join(case.model)
                .join("model.onnx"),
            cloud.project.path().join("iris/model.onnx"),
        )
        .unwrap();
        for f in faults {
            cloud.fake.inject(f);
        }
        let cmd = cloud.cmd(&["deploy", "--provider", "gcp", "-f", &spec]);
        case.run(&cloud.project, "iris", &spec, cmd);
        cloud.fake.clear_faults();
        assert_eq!(active_deployed(&cloud, "iris"), old, "{}", case.what);
        if case.finished_later && case.failpoints.contains("retire") {
            // Retiring had begun: the new model has all the traffic already.
            assert_ne!(serving(&cloud, "iris", &body), old, "{}", case.what);
        } else {
            assert_eq!(serving(&cloud, "iris", &body), old, "{}", case.what);
        }
        if case.code.is_none() {
            let rerun = cloud
                .run(&["deploy", "--provider", "gcp", "-f", &spec])
                .expect(0);
            assert!(
                rerun.stderr().contains(case.rerun_says()),
                "{}: {}",
                case.what,
                rerun.stderr()
            );
            assert_ne!(serving(&cloud, "iris", &body), old, "{}", case.what);
        }
        let destroyed = cloud
            .run(&["destroy", "iris", "--output", "json"])
            .expect(0);
        assert_eq!(
            json(&destroyed)["leftover"],
            serde_json::json!([]),
            "{}",
            case.what
        );
        assert!(cloud.fake.server_pids().is_empty(), "{}", case.what);
    }
}

#[test]
fn a_deploy_without_image_uri_builds_and_pushes_its_own_image_to_artifact_registry() {
    let registry = modelport_testkit::Registry::start().unwrap();
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    let path = cloud.project.path().join(&spec);
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "    image_uri: us-central1-docker.pkg.dev/test-project/modelport/modelport:0.1.0\n",
        "",
    );
    assert!(!yaml.contains("image_uri"), "{yaml}");
    std::fs::write(&path, yaml).unwrap();
    // Artifact Registry's layout, REGION-docker.pkg.dev/PROJECT/modelport/modelport,
    // on a local registry.
    let repository = format!("{}/test-project/modelport/modelport", registry.host());
    let tag = format!("{repository}:{}", env!("CARGO_PKG_VERSION"));
    let run = |args: &[&str]| {
        Run(cloud
            .cmd(args)
            .env("MODELPORT_GCP_REGISTRY", registry.host())
            .output()
            .unwrap())
    };

    let plan = run(&["plan", "--provider", "gcp", "-f", &spec]).expect(2);
    assert!(
        plan.stdout().contains(&format!("image     {tag}")),
        "{}",
        plan.stdout()
    );
    assert_eq!(registry.stored_bytes(), 0, "plan pushed something");
    let policy = run(&["iam-policy", "--provider", "gcp", "-f", &spec]).expect(0);
    assert!(
        policy.stdout().contains("roles/artifactregistry.writer")
            && policy
                .stdout()
                .contains("projects/test-project/locations/us-central1/repositories/modelport"),
        "{}",
        policy.stdout()
    );

    let first = run(&["deploy", "--provider", "gcp", "-f", &spec]).expect(0);
    assert!(first.stdout().contains("PASS"), "{}", first.stdout());
    let skopeo = modelport_testkit::registry::system_tool("skopeo").unwrap();
    let out = Command::new(&skopeo)
        .args(["inspect", "--tls-verify=false", &format!("docker://{tag}")])
        .output()
        .unwrap();
    let inspected: serde_json::Value =
        serde_json::from_slice(&Run(out).expect(0).0.stdout).unwrap();
    let pinned = format!("{repository}@{}", inspected["Digest"].as_str().unwrap());
    let uploads: Vec<_> = cloud
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "models.upload" && c.status == 200)
        .collect();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let recorded = std::fs::read_to_string(
        cloud
            .project
            .path()
            .join(".modelport/deployments/iris/deployed-spec.json"),
    )
    .unwrap();
    assert!(
        recorded.contains(&pinned),
        "the model runs {pinned}: {recorded}"
    );

    // Unchanged: nothing new on Vertex, no blob sent again.
    let before = cloud.fake.calls().len();
    let again = run(&["deploy", "--provider", "gcp", "-f", &spec]).expect(0);
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());
    assert!(
        again.stderr().contains("0 blob(s) sent"),
        "{}",
        again.stderr()
    );
    assert_eq!(changes(&cloud.calls_since(before)), Vec::<String>::new());
    run(&["destroy", "iris"]).expect(0);
}

/// `model.compress` on Vertex AI: the deployed model is the compressed one, proved
/// against it and against the original before any traffic; a setting that misses
/// its goal creates nothing.
#[test]
fn a_compressed_deploy_is_proved_against_the_original_model_on_vertex() {
    let cloud = Cloud::start("cnn");
    let spec = cloud.spec();
    edit(&cloud, &spec, |y| {
        y.replace(
            "  path: model.onnx\n",
            "  path: model.onnx\n  compress:\n    to: fp16\n",
        )
    });
    let deploy = cloud
        .run(&[
            "deploy",
            "--provider",
            "gcp",
            "-f",
            &spec,
            "--output",
            "json",
        ])
        .expect(0);
    let body = json(&deploy);
    assert_eq!(body["passed"], true, "{body}");
    assert_eq!(
        body["compression"]["local"]["gate"]["passed"], true,
        "{body}"
    );
    assert_eq!(body["compression"]["endpoint"]["passed"], true, "{body}");
    let text = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    assert!(text.stdout().contains("up to date"), "{}", text.stdout());

    edit(&cloud, &spec, |y| {
        y.replace("    to: fp16\n", "    to: fp16\n    prune: 0.99\n")
    });
    let since = cloud.fake.calls().len();
    let bad = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(3);
    assert!(
        bad.stdout().contains("nothing was created"),
        "{}",
        bad.stdout()
    );
    assert_eq!(changes(&cloud.calls_since(since)), Vec::<String>::new());

    let destroyed = cloud.run(&["destroy", "cnn", "--output", "json"]).expect(0);
    assert_eq!(json(&destroyed)["leftover"], serde_json::json!([]));
}

/// `doctor --provider gcp` asks the project with reads only: the bucket and its
/// location, the region's endpoints, the service account (it exists and is
/// enabled), the image (its tag is in the registry) or the registry a deploy would
/// push to. A missing bucket, service account or tag and a disabled account fail
/// with the fix; no service account is a warning, not a failure.
#[test]
fn doctor_checks_the_project_with_reads_only() {
    let registry = modelport_testkit::Registry::start().unwrap();
    let cloud = Cloud::with_config("iris", |c| {
        c.service_accounts = vec![
            ("serving@test-project.iam.gserviceaccount.com".into(), false),
            ("retired@test-project.iam.gserviceaccount.com".into(), true),
        ];
    });
    cloud.project.push_small_image(&format!(
        "{}/test-project/modelport/modelport:0.1.0",
        registry.host()
    ));
    let spec = cloud.spec();
    let path = cloud.project.path().join(&spec);
    let yaml = std::fs::read_to_string(&path).unwrap();
    let doctor = |code: i32, json_out: bool| {
        let mut args = vec!["doctor", "--provider", "gcp", "-f", &spec];
        if json_out {
            args.extend(["--output", "json"]);
        }
        let out = cloud
            .cmd(&args)
            .env("MODELPORT_GCP_REGISTRY", registry.host())
            .output()
            .unwrap();
        Run(out).expect(code)
    };

    let checks = doctor(0, true).doctor_checks();
    for what in [
        "gcp project",
        "gcp credentials",
        "gcp bucket",
        "gcp Vertex AI",
        "gcp image",
    ] {
        assert_eq!(checks[what].0, "ok", "{what}: {checks:?}");
    }
    assert!(
        checks["gcp project"]
            .1
            .contains("test-project from provider.gcp.project")
    );
    assert!(
        checks["gcp credentials"].1.contains("none sent"),
        "{checks:?}"
    );
    assert!(
        checks["gcp Vertex AI"]
            .1
            .contains("projects/test-project/locations/us-central1 answers"),
        "{checks:?}"
    );
    assert!(
        checks["gcp image"]
            .1
            .contains("is in the registry (sha256:"),
        "{checks:?}"
    );
    assert_eq!(checks["gcp service account"].0, "warn", "{checks:?}");

    // Without image_uri: the Artifact Registry repository deploy would push to;
    // a service account that exists.
    std::fs::write(
        &path,
        yaml.replace(
            "    image_uri: us-central1-docker.pkg.dev/test-project/modelport/modelport:0.1.0\n",
            "    service_account: serving@test-project.iam.gserviceaccount.com\n",
        ),
    )
    .unwrap();
    let own = doctor(0, true).doctor_checks();
    assert!(
        own["gcp image"].1.contains(&format!(
            "pushes it to {}/test-project/modelport/modelport",
            registry.host()
        )),
        "{own:?}"
    );
    assert_eq!(own["gcp service account"].0, "ok", "{own:?}");
    assert!(
        own["gcp service account"]
            .1
            .contains("enabled, in project test-project"),
        "{own:?}"
    );
    // The deployer's policy grants that read.
    let policy = json(
        &cloud
            .run(&["iam-policy", "--provider", "gcp", "-f", &spec])
            .expect(0),
    );
    let permissions = policy["deployer"]["permissions"].as_array().unwrap();
    for wanted in ["iam.serviceAccounts.actAs", "iam.serviceAccounts.get"] {
        assert!(permissions.iter().any(|p| p == wanted), "{policy}");
    }

    // A service account that does not exist, one that is disabled; a tag never pushed.
    for (account, says, hint) in [
        (
            "nobody@test-project.iam.gserviceaccount.com",
            "nobody@test-project.iam.gserviceaccount.com does not exist",
            "gcloud iam service-accounts create nobody --project test-project",
        ),
        (
            "retired@test-project.iam.gserviceaccount.com",
            "retired@test-project.iam.gserviceaccount.com is disabled",
            "gcloud iam service-accounts enable retired@test-project.iam.gserviceaccount.com",
        ),
    ] {
        std::fs::write(
            &path,
            yaml.replace(
                "    image_uri: us-central1-docker.pkg.dev/test-project/modelport/modelport:0.1.0\n",
                &format!(
                    "    image_uri: us-central1-docker.pkg.dev/test-project/modelport/modelport:0.9.9\n    \
                     service_account: {account}\n"
                ),
            ),
        )
        .unwrap();
        let text = doctor(1, false).stdout();
        assert!(
            text.contains("fail  gcp service account") && text.contains(says),
            "{text}"
        );
        assert!(text.contains(hint), "{text}");
        assert!(
            text.contains("fail  gcp image")
                && text.contains("modelport:0.9.9 is not in the registry")
                && text.contains("modelport image push"),
            "{text}"
        );
    }

    // A bucket that does not exist.
    std::fs::write(
        &path,
        yaml.replace("bucket: models", "bucket: no-such-bucket"),
    )
    .unwrap();
    let text = doctor(1, false).stdout();
    assert!(
        text.contains("fail  gcp bucket") && text.contains("no-such-bucket"),
        "{text}"
    );
    assert!(text.contains("hint: "), "{text}");

    assert_eq!(changes(&cloud.fake.calls()), Vec::<String>::new());
    assert!(cloud.project.state("iris").is_none());
}

/// A package laid out as a directory goes to Cloud Storage as it is, the only copy:
/// the model's files and the manifest, no model.tar.gz beside them; Vertex serves it
/// and the comparison passes; `plan` afterwards sees it uploaded.
#[test]
fn a_directory_package_is_the_only_copy_in_cloud_storage() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    let path = cloud.project.path().join(&spec);
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        yaml.replace(
            "  path: model.onnx\n",
            "  path: model.onnx\n  layout: dir\n",
        ),
    )
    .unwrap();
    let plan = cloud
        .run(&["plan", "--provider", "gcp", "-f", &spec])
        .expect(2);
    let text = format!("{}{}", plan.stdout(), plan.stderr());
    assert!(text.contains("upload the model files ("), "{text}");
    assert!(!text.contains("model.tar.gz"), "{text}");

    let deploy = cloud
        .run(&["deploy", "--provider", "gcp", "-f", &spec])
        .expect(0);
    assert!(deploy.stdout().contains("PASS"), "{}", deploy.stdout());
    let state = cloud.project.state("iris").unwrap();
    let dir = state["active"]["resources"]["dir"]
        .as_str()
        .unwrap()
        .to_string();
    let mut objects = cloud.gcs.list_objects(BUCKET, &dir).unwrap();
    objects.sort();
    assert_eq!(
        objects,
        [format!("{dir}/model.onnx"), format!("{dir}/modelport.json")],
        "{objects:?}"
    );
    let compare = cloud.run(&["compare", "iris"]).expect(0);
    assert!(compare.stdout().contains("PASS"), "{}", compare.stdout());
    cloud.run(&["destroy", "iris", "--purge"]).expect(0);
    assert_eq!(
        cloud.gcs.list_objects(BUCKET, "mp/iris/").unwrap(),
        Vec::<String>::new()
    );
}
