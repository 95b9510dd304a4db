//! `--provider aws` end to end through the CLI, as a user runs it, against moto
//! (S3) and modelport's strict SageMaker fake (control plane validated against
//! botocore's service model, a real `modelport serve` as the data plane). Every
//! request is made by the official AWS SDK inside the CLI; only the far end is
//! an emulator.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Run;
use common::clouds::Aws as Cloud;
use modelport_testkit::sagemaker::{Call, Fault, FaultKind};

fn creates(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| {
            c.operation.starts_with("Create")
                || c.operation.starts_with("Update")
                || c.operation.starts_with("Delete")
                || c.operation == "s3:PUT"
                || c.operation == "s3:POST"
        })
        .map(|c| format!("{} {}", c.operation, c.name.as_deref().unwrap_or("")))
        .collect()
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

#[test]
fn deploy_compare_redeploy_update_and_destroy() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();

    // plan reads the live account and changes nothing: 2 (changes) before, 0 after.
    let plan = cloud
        .run(&["plan", "--provider", "aws", "-f", &spec])
        .expect(2);
    assert!(
        plan.stdout().contains("SageMaker endpoint iris")
            || plan.stderr().contains("SageMaker endpoint iris"),
        "{}{}",
        plan.stdout(),
        plan.stderr()
    );
    assert!(cloud.project.state("iris").is_none(), "plan wrote state");
    assert!(
        !cloud
            .fake
            .calls()
            .iter()
            .any(|c| c.operation.starts_with("Create")),
        "plan created something: {:?}",
        cloud.fake.calls()
    );

    let first = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(first.stdout().contains("PASS"), "{}", first.stdout());
    assert!(
        first.stdout().contains("deployed iris"),
        "{}",
        first.stdout()
    );
    // Each status change of the endpoint is a line, with the time waited and the
    // deadline (provider.aws.deploy_timeout_s: 120).
    let stderr = first.stderr();
    for status in ["Creating", "InService"] {
        assert!(
            stderr.lines().any(|l| l.starts_with("    endpoint iris: ")
                && l.contains(status)
                && l.contains(" of at most 2 min 00 s)")),
            "no `{status}` line in\n{stderr}"
        );
    }
    // Off a terminal the transfers are plain lines with their size, time and rate,
    // and nothing on stderr is a terminal control code.
    for (what, unit) in [
        ("    hashing the model's files: ", " B in "),
        ("    writing model.tar.gz: ", " B in "),
        ("    uploading to s3://models: ", " B in "),
        ("    samples answered by A (iris)", " samples in "),
        ("    samples answered by B (", " samples in "),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(what) && l.contains(unit) && l.ends_with("/s)")),
            "no `{what}` line in\n{stderr}"
        );
    }
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    let state = cloud.project.state("iris").unwrap();
    assert_eq!(state["provider"], "aws");
    let resources = &state["active"]["resources"];
    assert_eq!(resources["endpoint_name"], "iris");
    let key = resources["key"].as_str().unwrap();
    assert!(
        key.starts_with("mp/iris/") && key.ends_with("/model.tar.gz"),
        "{key}"
    );

    let status = cloud.run(&["status", "iris", "--output", "json"]).expect(0);
    assert_eq!(
        json(&status)[0]["health"],
        "in_service",
        "{}",
        status.stdout()
    );

    // `list` prices what serves, from the recorded spec or, without that record,
    // from the spec file when it still says the same (issue 13 #8: the fallback
    // compared hashes of two different things, so it was always `?`).
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

    // compare goes through InvokeEndpoint, batching to the 6 MB limit.
    let compare = cloud.run(&["compare", "iris", "--count", "300"]).expect(0);
    assert!(compare.stdout().contains("PASS"), "{}", compare.stdout());

    // Unchanged: nothing is uploaded, created or updated.
    let before = cloud.fake.calls().len();
    let again = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());
    assert_eq!(creates(&cloud.calls_since(before)), Vec::<String>::new());
    cloud
        .run(&["plan", "--provider", "aws", "-f", &spec])
        .expect(0);

    // A changed spec makes a new model and endpoint config and updates the endpoint.
    let path = cloud.project.path().join(&spec);
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{yaml}\nserving:\n  timeout_s: 59\n")).unwrap();
    let before = cloud.fake.calls().len();
    let update = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(update.stdout().contains("PASS"), "{}", update.stdout());
    let calls = creates(&cloud.calls_since(before));
    for op in [
        "CreateModel",
        "CreateEndpointConfig",
        "UpdateEndpoint",
        "DeleteEndpointConfig",
        "DeleteModel",
    ] {
        assert!(
            calls.iter().any(|c| c.starts_with(op)),
            "{op} missing in {calls:?}"
        );
    }
    assert!(
        !calls.iter().any(|c| c.starts_with("CreateEndpoint ")),
        "{calls:?}"
    );
    let new_state = cloud.project.state("iris").unwrap();
    assert_ne!(
        new_state["active"]["resources"]["config_name"],
        state["active"]["resources"]["config_name"]
    );

    // Found by tag even without local state.
    std::fs::rename(
        cloud.project.path().join(".modelport/state/iris.json"),
        cloud.project.path().join("iris.json.bak"),
    )
    .unwrap();
    let listed = cloud
        .run(&["list", "--provider", "aws", "-f", &spec, "--output", "json"])
        .expect(0);
    let listed = json(&listed);
    assert_eq!(listed[0]["name"], "iris", "{listed}");
    assert!(
        listed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("no local state")
    );
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
    let listed = cloud
        .run(&["list", "--provider", "aws", "-f", &spec, "--output", "json"])
        .expect(0);
    assert_eq!(json(&listed), serde_json::json!([]));
    assert!(
        cloud.fake.server_pids().is_empty(),
        "{:?}",
        cloud.fake.server_pids()
    );
}

#[test]
fn an_update_that_answers_differently_is_rolled_back_with_exit_3() {
    let cloud = Cloud::start("mlp");
    let spec = cloud.spec();
    cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec, "-q"])
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
    let calls = cloud.fake.calls().len();
    let out = cloud
        .run(&[
            "deploy",
            "--provider",
            "aws",
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
    let updates: Vec<String> = creates(&cloud.calls_since(calls))
        .into_iter()
        .filter(|c| c.starts_with("UpdateEndpoint"))
        .collect();
    assert_eq!(
        updates.len(),
        2,
        "an update and the update back: {updates:?}"
    );
    let after = cloud.project.state("mlp").unwrap();
    assert_eq!(after["active"], before["active"]);
    assert!(after["pending"].is_null());
    let status = cloud.run(&["status", "mlp", "--output", "json"]).expect(0);
    let status = json(&status);
    assert_eq!(status[0]["health"], "in_service", "{status}");
    assert!(
        status[0]["detail"].as_str().unwrap().contains(
            before["active"]["resources"]["config_name"]
                .as_str()
                .unwrap()
        ),
        "{status}"
    );
    cloud.run(&["destroy", "mlp"]).expect(0);
}

#[test]
fn a_deploy_killed_after_create_model_is_undone_and_redone_by_a_rerun() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    cloud.fake.inject(Fault::new(
        "CreateEndpointConfig",
        FaultKind::Delay(Duration::from_secs(5)),
    ));
    let mut child = cloud
        .cmd(&["deploy", "--provider", "aws", "-f", &spec, "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !cloud
        .fake
        .calls()
        .iter()
        .any(|c| c.operation == "CreateModel" && c.status == 200)
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no CreateModel: {:?}",
            cloud.fake.calls()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the deploy ended before CreateModel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(rerun.stdout().contains("PASS"), "{}", rerun.stdout());
    // The interrupted rollout never passed a comparison: it is undone, then the
    // deploy runs again from a clean state.
    assert!(
        rerun
            .stderr()
            .contains("undoing the rollout an interrupted deploy left"),
        "{}",
        rerun.stderr()
    );
    let calls = creates(&cloud.calls_since(before));
    let deleted = calls.iter().position(|c| c.starts_with("DeleteModel"));
    let created = calls.iter().position(|c| c.starts_with("CreateModel"));
    assert!(deleted < created && deleted.is_some(), "{calls:?}");
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("CreateEndpoint "))
            .count(),
        1,
        "{calls:?}"
    );
    cloud.run(&["destroy", "iris"]).expect(0);
}

#[test]
fn throttling_on_every_call_is_retried() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    for op in [
        "DescribeEndpoint",
        "DescribeModel",
        "CreateModel",
        "DescribeEndpointConfig",
        "CreateEndpointConfig",
        "CreateEndpoint",
    ] {
        cloud
            .fake
            .inject(Fault::new(op, FaultKind::Throttling).times(2));
    }
    cloud
        .fake
        .inject(Fault::new("InvokeEndpoint", FaultKind::ModelNotReady).times(2));
    let out = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(out.stdout().contains("PASS"), "{}", out.stdout());
    let throttled = cloud
        .fake
        .calls()
        .iter()
        .filter(|c| c.status == 400 || c.status == 429)
        .count();
    assert!(throttled >= 14, "{:?}", cloud.fake.calls());
    cloud.run(&["destroy", "iris"]).expect(0);
}

#[test]
fn a_quota_error_names_the_quota_and_leaves_nothing() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    cloud.fake.inject(Fault::new(
        "CreateEndpoint",
        FaultKind::ResourceLimitExceeded,
    ));
    let out = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(1);
    let err = out.stderr();
    assert!(err.contains("ResourceLimitExceeded"), "{err}");
    assert!(err.contains("for endpoint usage"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("Service Quotas"),
        "{err}"
    );
    assert!(
        cloud.project.state("iris").is_none(),
        "a failed first deploy is forgotten"
    );
    let listed = cloud
        .run(&["list", "--provider", "aws", "-f", &spec, "--output", "json"])
        .expect(0);
    assert_eq!(json(&listed), serde_json::json!([]));
    let deletes = creates(&cloud.fake.calls());
    assert!(
        deletes.iter().any(|c| c.starts_with("DeleteModel")),
        "{deletes:?}"
    );
}

#[test]
fn a_server_that_never_answers_ping_fails_with_the_reason_and_no_orphan() {
    let cloud = Cloud::with_config("iris", |c| {
        c.default_startup_timeout = Duration::from_secs(3)
    });
    let spec = cloud.spec();
    cloud
        .fake
        .inject(Fault::new("CreateEndpoint", FaultKind::ServerNeverReady));
    let out = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(1);
    let err = out.stderr();
    assert!(err.contains("did not pass the ping health check"), "{err}");
    assert!(err.contains("hint:") && err.contains("GET /ping"), "{err}");
    let listed = cloud
        .run(&["list", "--provider", "aws", "-f", &spec, "--output", "json"])
        .expect(0);
    assert_eq!(
        json(&listed),
        serde_json::json!([]),
        "the failed endpoint was deleted"
    );
}

#[test]
fn missing_credentials_give_one_clear_error() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    let out = Run(cloud
        .cmd(&["deploy", "--provider", "aws", "-f", &spec])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap())
    .expect(1);
    let err = out.stderr();
    assert!(err.contains("no AWS credentials"), "{err}");
    assert!(
        err.contains("hint:") && err.contains("aws configure"),
        "{err}"
    );
    assert!(!err.contains("service error"), "{err}");
}

#[test]
fn iam_policy_is_scoped_to_the_deployment() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    let out = cloud
        .run(&["iam-policy", "--provider", "aws", "-f", &spec])
        .expect(0);
    let policy = json(&out);
    let role = policy["execution_role_policy"]["Statement"]
        .as_array()
        .unwrap();
    let read = role
        .iter()
        .find(|s| s["Sid"] == "ReadModelArtifact")
        .unwrap();
    assert_eq!(read["Action"], "s3:GetObject");
    assert_eq!(read["Resource"], "arn:aws:s3:::models/mp/iris/*");
    let user = policy["user_policy"]["Statement"].as_array().unwrap();
    let pass = user.iter().find(|s| s["Action"] == "iam:PassRole").unwrap();
    assert_eq!(
        pass["Resource"],
        "arn:aws:iam::123456789012:role/SageMakerExecution"
    );
    let sm = user
        .iter()
        .find(|s| s["Sid"] == "DeploymentResources")
        .unwrap();
    assert!(sm["Resource"].to_string().contains("endpoint/iris"), "{sm}");
    // What doctor reads: the role, and the explicit image's repository.
    let get_role = user
        .iter()
        .find(|s| s["Sid"] == "DoctorReadsTheRole")
        .unwrap();
    assert_eq!(get_role["Action"], "iam:GetRole");
    assert_eq!(get_role["Resource"], pass["Resource"]);
    let image = user
        .iter()
        .find(|s| s["Sid"] == "DoctorReadsTheImage")
        .unwrap();
    assert_eq!(image["Action"], "ecr:DescribeImages");
    assert_eq!(
        image["Resource"],
        "arn:aws:ecr:us-east-1:123456789012:repository/modelport"
    );
}

/// A production caller's InvokeEndpoint: no `TargetVariant`, so the variant weights
/// choose. (The fake reads the SigV4 scope and checks no signature.)
fn invoke(
    c: &reqwest::blocking::Client,
    fake: &str,
    endpoint: &str,
    body: &str,
) -> reqwest::blocking::RequestBuilder {
    c.post(format!("{fake}/endpoints/{endpoint}/invocations"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sagemaker/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// The first example of `example`'s samples, as one `{"instances"}` body.
fn one_row(cloud: &Cloud, example: &str) -> String {
    let text =
        std::fs::read_to_string(cloud.project.path().join(example).join("samples.json")).unwrap();
    let samples: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::json!({"instances": [samples["instances"][0]]}).to_string()
}

/// The variant and digest that answer a production request now.
fn serving(cloud: &Cloud, endpoint: &str, body: &str) -> (String, String) {
    let r = invoke(
        &reqwest::blocking::Client::new(),
        &cloud.fake.url(),
        endpoint,
        body,
    )
    .send()
    .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
    let variant = r.headers()["x-amzn-invoked-production-variant"]
        .to_str()
        .unwrap()
        .to_string();
    let custom = r.headers()["x-amzn-sagemaker-custom-attributes"]
        .to_str()
        .unwrap()
        .to_string();
    let digest = modelport_core::ServedBy::from_custom_attributes(&custom)
        .digest
        .unwrap();
    (variant, digest)
}

fn edit(cloud: &Cloud, spec: &str, f: impl FnOnce(String) -> String) {
    let path = cloud.project.path().join(spec);
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, f(yaml)).unwrap();
}

#[test]
fn no_production_request_reaches_the_new_variant_before_it_passes() {
    let cloud = Cloud::start("mlp");
    let spec = cloud.spec();
    let body = one_row(&cloud, "mlp");
    cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec, "-q"])
        .expect(0);

    // An update that passes (new serving settings: a new variant of the same model),
    // then one that cannot: tract in the endpoint, onnxruntime as the reference,
    // and no tolerance.
    for passes in [true, false] {
        edit(&cloud, &spec, |y| common::update(&y, passes, 59));
        let old = cloud.project.state("mlp").unwrap()["active"]["resources"]["variant"]
            .as_str()
            .unwrap()
            .to_string();
        let since = cloud.fake.calls().len();
        let traffic = {
            let (url, body) = (cloud.fake.url(), body.clone());
            common::Traffic::start(move |c| invoke(c, &url, "mlp", &body))
        };
        let cmd = cloud.cmd(&[
            "deploy",
            "--provider",
            "aws",
            "-f",
            &spec,
            "--engine",
            "onnxruntime",
        ]);
        let (out, answers) = common::deploy_under_traffic(cmd, traffic);
        common::assert_all_answered(&answers);
        let calls = cloud.fake.calls();
        let weights = calls
            .iter()
            .enumerate()
            .skip(since)
            .find(|(_, c)| c.operation == "UpdateEndpointWeightsAndCapacities")
            .map(|(i, _)| i);
        let invocations: Vec<_> = cloud
            .fake
            .invocations()
            .into_iter()
            .filter(|i| i.seq >= since)
            .collect();
        let production: Vec<_> = invocations
            .iter()
            .filter(|i| i.target_variant.is_none())
            .collect();
        assert!(
            production.len() > 50,
            "only {} production requests",
            production.len()
        );
        assert!(production.iter().all(|i| i.status == 200), "{production:?}");
        let verification: Vec<_> = invocations
            .iter()
            .filter(|i| i.target_variant.is_some())
            .collect();
        assert!(!verification.is_empty());
        assert!(
            verification
                .iter()
                .all(|i| i.variant == i.target_variant && i.variant.as_deref() != Some(&old)),
            "{verification:?}"
        );
        if passes {
            out.expect(0);
            let new = cloud.project.state("mlp").unwrap()["active"]["resources"]["variant"]
                .as_str()
                .unwrap()
                .to_string();
            assert_ne!(new, old);
            let weights = weights.expect("the weights were moved");
            let early: Vec<_> = production
                .iter()
                .filter(|i| i.seq < weights && i.variant.as_deref() != Some(&old))
                .collect();
            assert!(
                early.is_empty(),
                "{} production requests reached another variant before the comparison passed: {early:?}",
                early.len()
            );
            // Every verification request came before the traffic moved.
            assert!(verification.iter().all(|i| i.seq < weights));
            assert!(
                production
                    .iter()
                    .any(|i| i.variant.as_deref() == Some(&new))
            );
            assert_eq!(serving(&cloud, "mlp", &body).0, new);
        } else {
            out.expect(3);
            assert!(weights.is_none(), "the weights moved for a failed revision");
            assert!(
                production
                    .iter()
                    .all(|i| i.variant.as_deref() == Some(&old)),
                "{production:?}"
            );
            assert_eq!(serving(&cloud, "mlp", &body).0, old);
        }
    }
    cloud.run(&["destroy", "mlp"]).expect(0);
    assert!(cloud.fake.server_pids().is_empty());
}

#[test]
fn every_interruption_leaves_the_old_variant_serving_on_aws() {
    let mut cases: Vec<(common::Interruption, Vec<Fault>)> = common::Interruption::common()
        .into_iter()
        .map(|c| (c, vec![]))
        .collect();
    let base = cases[0].0.clone();
    cases.push((
        common::Interruption {
            what: "InvokeEndpoint keeps failing",
            args: &[],
            says: "InternalFailure",
            ..base.clone()
        },
        vec![Fault::new("InvokeEndpoint", FaultKind::InternalError).times(200)],
    ));
    cases.push((
        common::Interruption {
            what: "the answers carry no identity",
            args: &[],
            code: Some(3),
            says: "an answer carried no model digest",
            ..base
        },
        vec![Fault::new("InvokeEndpoint", FaultKind::DropIdentity).times(200)],
    ));
    for (case, faults) in cases {
        let cloud = Cloud::start("iris");
        let spec = cloud.spec();
        let body = one_row(&cloud, "iris");
        cloud
            .run(&["deploy", "--provider", "aws", "-f", &spec, "-q"])
            .expect(0);
        let (old_variant, old_digest) = serving(&cloud, "iris", &body);
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
        let cmd = cloud.cmd(&["deploy", "--provider", "aws", "-f", &spec]);
        case.run(&cloud.project, "iris", &spec, cmd);
        cloud.fake.clear_faults();
        let state = cloud.project.state("iris").unwrap();
        assert_eq!(
            state["active"]["resources"]["variant"],
            old_variant.as_str(),
            "{}",
            case.what
        );
        // The old variant answers production requests, unless the crash came once
        // the weights had moved to the verified new one.
        let now = serving(&cloud, "iris", &body);
        if case.failpoints.contains("rollout.retire") {
            assert_ne!(now.0, old_variant, "{}", case.what);
        } else {
            assert_eq!(
                now,
                (old_variant.clone(), old_digest.clone()),
                "{}",
                case.what
            );
        }
        if case.code.is_none() {
            // A re-run finishes what the crash left: undone, or finished when the
            // revision had passed.
            let rerun = cloud
                .run(&["deploy", "--provider", "aws", "-f", &spec])
                .expect(0);
            assert!(
                rerun.stderr().contains(case.rerun_says()),
                "{}: {}",
                case.what,
                rerun.stderr()
            );
            let (variant, digest) = serving(&cloud, "iris", &body);
            assert_ne!(variant, old_variant, "{}", case.what);
            assert_ne!(digest, old_digest, "{}", case.what);
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
fn a_serverless_revision_is_compared_on_a_short_lived_endpoint_first() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    edit(&cloud, &spec, |y| {
        y.replace(
            "  instance_type: ml.m5.large\n  instance_count: 1\n",
            "  serverless: {memory_mb: 2048, max_concurrency: 5}\n",
        )
    });
    let body = one_row(&cloud, "iris");
    let plan = cloud
        .run(&["plan", "--provider", "aws", "-f", &spec])
        .expect(2);
    assert!(
        plan.stdout().contains("short-lived endpoint iris-verify-"),
        "{}",
        plan.stdout()
    );
    let first = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(first.stdout().contains("PASS"), "{}", first.stdout());
    let (old_variant, _) = serving(&cloud, "iris", &body);

    std::fs::copy(
        common::root().join("tests/fixtures/models/svm/model.onnx"),
        cloud.project.path().join("iris/model.onnx"),
    )
    .unwrap();
    let since = cloud.fake.calls().len();
    let traffic = {
        let (url, body) = (cloud.fake.url(), body.clone());
        common::Traffic::start(move |c| invoke(c, &url, "iris", &body))
    };
    let update = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    let answers = traffic.stop();
    assert!(update.stdout().contains("PASS"), "{}", update.stdout());
    common::assert_all_answered(&answers);
    let calls: Vec<(usize, Call)> = cloud
        .fake
        .calls()
        .into_iter()
        .enumerate()
        .skip(since)
        .collect();
    let at = |op: &str, prefix: &str| {
        calls
            .iter()
            .find(|(_, c)| {
                c.operation == op
                    && c.status == 200
                    && c.name.as_deref().is_some_and(|n| n.starts_with(prefix))
            })
            .map(|(i, _)| *i)
            .unwrap_or_else(|| panic!("no {op} {prefix}: {calls:?}"))
    };
    let verify_created = at("CreateEndpoint", "iris-verify-");
    let moved = at("UpdateEndpoint", "iris");
    let verify_deleted = at("DeleteEndpoint", "iris-verify-");
    assert!(verify_created < moved && moved < verify_deleted);
    let invocations = cloud.fake.invocations();
    // The comparison ran on the verification endpoint, before the serving one moved.
    assert!(
        invocations
            .iter()
            .filter(|i| i.seq >= since && i.endpoint.starts_with("iris-verify-"))
            .all(|i| i.seq < moved)
    );
    let early: Vec<_> = invocations
        .iter()
        .filter(|i| {
            i.seq >= since
                && i.seq < moved
                && i.endpoint == "iris"
                && i.variant.as_deref() != Some(&old_variant)
        })
        .collect();
    assert!(early.is_empty(), "{early:?}");
    assert_ne!(serving(&cloud, "iris", &body).0, old_variant);
    let destroyed = cloud
        .run(&["destroy", "iris", "--output", "json"])
        .expect(0);
    assert_eq!(json(&destroyed)["leftover"], serde_json::json!([]));
}

/// A pseudo-terminal: the child's end (for its stdin) and ours (to type into it).
fn terminal() -> (std::fs::File, std::fs::File) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    (std::fs::File::from(master), slave)
}

/// A command started with a terminal on stdin; its stderr is collected as it comes.
struct Terminal {
    child: std::process::Child,
    keys: std::fs::File,
    err: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Terminal {
    /// Waits for the command's exit and for the last of its stderr: the reader
    /// thread may still hold bytes the command wrote just before it ended.
    fn finish(mut self) -> (Option<i32>, String) {
        let code = self.child.wait().unwrap().code();
        self.reader.join().unwrap();
        let text = self.err.lock().unwrap().clone();
        (code, text)
    }
}

fn with_terminal(mut cmd: Command) -> Terminal {
    let (master, slave) = terminal();
    let mut child = cmd
        .stdin(slave)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = err.clone();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Terminal {
        child,
        keys: master,
        err,
        reader,
    }
}

/// Runs `cmd` with a terminal on stderr, the way a person runs it; returns its
/// exit code and all it drew there.
fn on_terminal(mut cmd: Command) -> (Option<i32>, String) {
    use std::io::Read;
    let (mut master, slave) = terminal();
    // A wide terminal, so that no drawn line is cut to fit.
    rustix::termios::tcsetwinsize(
        &slave,
        rustix::termios::Winsize {
            ws_row: 50,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    let mut child = cmd
        .env("TERM", "xterm-256color")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(slave)
        .spawn()
        .unwrap();
    // Our copy of the child's end closes, so reading ends when the child's does.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut drawn = Vec::new();
        let mut buf = [0u8; 4096];
        // Linux ends a terminal whose other end closed with EIO, not with 0.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            drawn.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&drawn).into_owned()
    });
    let code = child.wait().unwrap().code();
    (code, reader.join().unwrap())
}

#[test]
fn a_deploy_on_a_terminal_draws_live_progress_and_keeps_every_line() {
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();
    let deploy = || cloud.cmd(&["deploy", "--provider", "aws", "-f", &spec, "--yes"]);

    let mut cmd = deploy();
    cmd.env_remove("NO_COLOR");
    let (code, drawn) = on_terminal(cmd);
    assert_eq!(code, Some(0), "{drawn}");
    // The wait is a spinner, redrawn in place (ESC[2K clears its line), with the
    // time waited counting up and the deadline; its colour is cyan.
    let spinner = ['⠁', '⠂', '⠄', '⡀', '⢀', '⠠', '⠐', '⠈'];
    // (indicatif pads each line to the terminal's width rather than ending it.)
    assert!(
        drawn.split(['\r', '\n']).any(|l| {
            let l = console::strip_ansi_codes(l);
            let l = l.trim();
            l.starts_with(spinner)
                && l.contains(" endpoint iris: Creating")
                && l.ends_with(" of at most 2 min 00 s)")
        }),
        "no spinner in {drawn:?}"
    );
    assert!(drawn.contains("\x1b[2K"), "{drawn:?}");
    assert!(drawn.contains("\x1b[36m"), "no colour in {drawn:?}");
    // Every line a log would hold is kept in the scrollback too.
    for line in [
        "    uploading to s3://models: ",
        "    endpoint iris: InService",
        "    samples answered by A (iris): 16 samples in ",
    ] {
        assert!(drawn.contains(line), "no {line:?} in {drawn:?}");
    }
    cloud.run(&["destroy", "iris"]).expect(0);

    // NO_COLOR: the same drawing without colour.
    let mut cmd = deploy();
    cmd.env("NO_COLOR", "1");
    let (code, drawn) = on_terminal(cmd);
    assert_eq!(code, Some(0), "{drawn}");
    assert!(drawn.contains("\x1b[2K"), "{drawn:?}");
    assert!(
        !drawn.contains("\x1b[36m") && !drawn.contains("\x1b[34m"),
        "colour despite NO_COLOR: {drawn:?}"
    );

    // --quiet: nothing is drawn at all, on a terminal or not.
    let mut cmd = cloud.cmd(&["destroy", "iris", "--quiet"]);
    cmd.env_remove("NO_COLOR");
    let (code, drawn) = on_terminal(cmd);
    assert_eq!(code, Some(0), "{drawn}");
    assert!(!drawn.contains('\x1b'), "{drawn:?}");
}

fn wait_for_text(text: &std::sync::Mutex<String>, what: &str, child: &mut std::process::Child) {
    let start = Instant::now();
    while !text.lock().unwrap().contains(what) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before {what:?}: {}",
            text.lock().unwrap()
        );
        assert!(start.elapsed() < Duration::from_secs(60), "no {what:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_deploy_asks_on_a_terminal_and_applies_nothing_that_changed_while_it_asked() {
    use std::io::Write;
    let cloud = Cloud::start("iris");
    let spec = cloud.spec();

    // No: nothing is created.
    let mut asking = with_terminal(cloud.cmd(&["deploy", "--provider", "aws", "-f", &spec]));
    wait_for_text(&asking.err, "deploy? [y/N]", &mut asking.child);
    asking.keys.write_all(b"n\n").unwrap();
    let (code, text) = asking.finish();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("cancelled: nothing was created"), "{text}");
    assert!(cloud.project.state("iris").is_none());
    assert!(
        !cloud
            .fake
            .calls()
            .iter()
            .any(|c| c.operation.starts_with("Create")),
        "{:?}",
        cloud.fake.calls()
    );

    // While one deploy waits for its answer it holds no lock: another deploy runs.
    // Answered yes afterwards, the first one reads the state again, finds that its
    // plan no longer holds, and does nothing.
    let mut asking = with_terminal(cloud.cmd(&["deploy", "--provider", "aws", "-f", &spec]));
    wait_for_text(&asking.err, "deploy? [y/N]", &mut asking.child);
    let other = cloud
        .run(&[
            "deploy",
            "--provider",
            "aws",
            "-f",
            &spec,
            "--wait-lock",
            "1",
        ])
        .expect(0);
    assert!(other.stdout().contains("PASS"), "{}", other.stdout());
    let before = cloud.fake.calls().len();
    asking.keys.write_all(b"y\n").unwrap();
    let (code, text) = asking.finish();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("changed while the plan was shown") && text.contains("nothing was done"),
        "{text}"
    );
    assert!(
        creates(&cloud.calls_since(before)).is_empty(),
        "{:?}",
        cloud.calls_since(before)
    );
    cloud.run(&["destroy", "iris"]).expect(0);
}

#[test]
fn a_deploy_without_image_uri_builds_and_pushes_its_own_image_to_ecr() {
    let registry = modelport_testkit::Registry::start().unwrap();
    let cloud = Cloud::with_config("iris", |c| {
        c.registry = Some(format!("http://{}", registry.host()))
    });
    let spec = cloud.spec();
    let path = cloud.project.path().join(&spec);
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "    image_uri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0\n",
        "",
    );
    assert!(!yaml.contains("image_uri"), "{yaml}");
    std::fs::write(&path, yaml).unwrap();
    let tag = format!(
        "{}/modelport:{}",
        registry.host(),
        env!("CARGO_PKG_VERSION")
    );

    // plan says what will be pushed, and pushes nothing.
    let plan = cloud
        .run(&["plan", "--provider", "aws", "-f", &spec])
        .expect(2);
    assert!(
        plan.stdout().contains(&format!("image     {tag}")),
        "{}",
        plan.stdout()
    );
    assert!(
        cloud.fake.repositories().is_empty(),
        "plan created a repository"
    );
    let policy = cloud
        .run(&["iam-policy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(
        policy.stdout().contains("ecr:PutImage"),
        "{}",
        policy.stdout()
    );
    assert!(
        policy
            .stdout()
            .contains("arn:aws:ecr:us-east-1:123456789012:repository/modelport"),
        "{}",
        policy.stdout()
    );

    let first = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(first.stdout().contains("PASS"), "{}", first.stdout());
    // The repository was created with scan-on-push and the deployment's tags.
    let repos = cloud.fake.repositories();
    assert_eq!(repos.len(), 1, "{repos:?}");
    assert_eq!(repos[0]["repositoryName"], "modelport");
    assert_eq!(repos[0]["imageScanningConfiguration"]["scanOnPush"], true);
    assert!(
        repos[0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["Key"] == "modelport:managed-by"),
        "{repos:?}"
    );
    // The registry holds the tag, and the model runs that image pinned by digest.
    let skopeo = modelport_testkit::registry::system_tool("skopeo").unwrap();
    let out = Command::new(skopeo)
        .args(["inspect", "--tls-verify=false", &format!("docker://{tag}")])
        .output()
        .unwrap();
    let inspected: serde_json::Value =
        serde_json::from_slice(&Run(out).expect(0).0.stdout).unwrap();
    let digest = inspected["Digest"].as_str().unwrap().to_string();
    let pinned = format!("{}/modelport@{digest}", registry.host());
    let compare = cloud
        .run(&["compare", "iris", "--output", "json"])
        .expect(0);
    assert_eq!(
        json(&compare)["a"]["served_by"]["image"],
        pinned.as_str(),
        "the endpoint names the image it runs: {}",
        compare.stdout()
    );

    // Unchanged: the same digest, nothing created and no blob sent again.
    let before = cloud.fake.calls().len();
    let stored = registry.stored_bytes();
    let again = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(0);
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());
    assert!(
        again.stderr().contains("0 blob(s) sent"),
        "{}",
        again.stderr()
    );
    assert_eq!(creates(&cloud.calls_since(before)), Vec::<String>::new());
    assert!(registry.stored_bytes() <= stored + 4096);

    // destroy removes the endpoint, never the shared image.
    cloud.run(&["destroy", "iris"]).expect(0);
    let out = Command::new(modelport_testkit::registry::system_tool("skopeo").unwrap())
        .args(["inspect", "--tls-verify=false", &format!("docker://{tag}")])
        .output()
        .unwrap();
    Run(out).expect(0);
}

/// `model.compress`: the artifact is the compressed model, the endpoint is proved
/// against it and against the original, and a setting that misses its goal
/// creates nothing.
#[test]
fn a_compressed_deploy_is_proved_against_the_original_model() {
    let cloud = Cloud::start("cnn");
    let spec = cloud.spec();
    edit(&cloud, &spec, |y| {
        y.replace(
            "  path: model.onnx\n",
            "  path: model.onnx\n  compress:\n    to: int8\n    per_channel: true\n",
        )
    });
    let plan = cloud
        .run(&["plan", "--provider", "aws", "-f", &spec])
        .expect(2);
    assert!(
        plan.stdout().contains("compress  int8 per channel: file"),
        "{}",
        plan.stdout()
    );
    assert!(plan.stdout().contains("gate PASS"), "{}", plan.stdout());
    assert!(
        plan.stdout()
            .contains("fits      the compressed model on ml."),
        "{}",
        plan.stdout()
    );

    let deploy = cloud
        .run(&[
            "deploy",
            "--provider",
            "aws",
            "-f",
            &spec,
            "--output",
            "json",
        ])
        .expect(0);
    let body = json(&deploy);
    assert_eq!(body["passed"], true, "{body}");
    let hops = &body["compression"];
    assert_eq!(hops["local"]["gate"]["passed"], true, "{hops}");
    assert_eq!(hops["endpoint"]["passed"], true, "{hops}");
    assert_eq!(hops["endpoint"]["samples"], 8, "{hops}");
    let file = &hops["local"]["file"];
    assert!(file["after"].as_u64() < file["before"].as_u64(), "{file}");
    // The endpoint serves the compressed model: what `compare` runs is its artifact.
    let compare = cloud.run(&["compare", "cnn", "--output", "json"]).expect(0);
    let compare = json(&compare);
    let model = compare["b"]["location"].as_str().unwrap().to_string();
    let info = cloud
        .run(&["inspect", &model, "--output", "json"])
        .expect(0);
    assert!(
        info.stdout().contains("DequantizeLinear"),
        "{}",
        info.stdout()
    );

    // Far too much pruning: the gate fails before anything is uploaded or created.
    edit(&cloud, &spec, |y| {
        y.replace(
            "    per_channel: true\n",
            "    per_channel: true\n    prune: 0.99\n",
        )
    });
    let since = cloud.fake.calls().len();
    let bad = cloud
        .run(&["deploy", "--provider", "aws", "-f", &spec])
        .expect(3);
    assert!(
        bad.stdout().contains("nothing was created"),
        "{}",
        bad.stdout()
    );
    assert!(bad.stdout().contains("FAIL"), "{}", bad.stdout());
    assert_eq!(creates(&cloud.calls_since(since)), Vec::<String>::new());

    let destroyed = cloud.run(&["destroy", "cnn", "--output", "json"]).expect(0);
    assert_eq!(json(&destroyed)["leftover"], serde_json::json!([]));
}

/// The trust policy SageMaker needs of an execution role.
const SAGEMAKER_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// `doctor --provider aws` asks the account with reads only: identity, bucket and its
/// region, the role (it exists and trusts SageMaker), SageMaker, the image (its tag
/// is in ECR) or the registry a deploy would push to. A missing bucket, a role of
/// another account, a missing role, a role SageMaker may not assume and a missing
/// image tag are each named with the fix.
#[test]
fn doctor_checks_the_account_with_reads_only() {
    let registry = modelport_testkit::Registry::start().unwrap();
    let cloud = Cloud::with_config("iris", |c| {
        c.registry = Some(format!("http://{}", registry.host()));
    });
    // What the account holds: the role, and the image tag the spec names.
    cloud
        .moto
        .create_role("SageMakerExecution", SAGEMAKER_TRUST)
        .unwrap();
    cloud
        .moto
        .create_role("Ec2Only", &SAGEMAKER_TRUST.replace("sagemaker", "ec2"))
        .unwrap();
    cloud.fake.create_repository("modelport").unwrap();
    cloud
        .project
        .push_small_image(&format!("{}/modelport:0.1.0", registry.host()));
    let spec = cloud.spec();
    let path = cloud.project.path().join(&spec);
    let yaml = std::fs::read_to_string(&path).unwrap();

    let good = cloud
        .run(&[
            "doctor",
            "--provider",
            "aws",
            "-f",
            &spec,
            "--output",
            "json",
        ])
        .expect(0);
    let checks = good.doctor_checks();
    for what in [
        "aws region",
        "aws credentials",
        "aws bucket",
        "aws execution role",
        "aws SageMaker",
        "aws image",
        "engine tract",
        "spec model",
    ] {
        assert_eq!(checks[what].0, "ok", "{what}: {checks:?}");
    }
    assert!(
        checks["aws credentials"].1.contains("123456789012")
            && checks["aws credentials"]
                .1
                .contains("environment variables"),
        "{checks:?}"
    );
    assert!(
        checks["aws bucket"]
            .1
            .contains("s3://models is in us-east-1")
    );
    assert!(
        checks["aws execution role"]
            .1
            .contains("exists and trusts sagemaker.amazonaws.com"),
        "{checks:?}"
    );
    assert!(
        checks["aws image"].1.contains("is in ECR (sha256:"),
        "{checks:?}"
    );
    assert!(!checks.keys().any(|k| k.starts_with("local")), "{checks:?}");

    // Without image_uri: the registry deploy would push to accepts the credentials.
    std::fs::write(
        &path,
        yaml.replace(
            "    image_uri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0\n",
            "",
        ),
    )
    .unwrap();
    let own = cloud
        .run(&[
            "doctor",
            "--provider",
            "aws",
            "-f",
            &spec,
            "--output",
            "json",
        ])
        .expect(0)
        .doctor_checks();
    assert!(
        own["aws image"].1.contains("pushes it to") && own["aws image"].1.contains("/modelport"),
        "{own:?}"
    );

    // A bucket that does not exist, and a role of another account.
    std::fs::write(
        &path,
        yaml.replace("bucket: models", "bucket: no-such-bucket")
            .replace("arn:aws:iam::123456789012:", "arn:aws:iam::210987654321:"),
    )
    .unwrap();
    let bad = cloud
        .run(&["doctor", "--provider", "aws", "-f", &spec])
        .expect(1);
    let text = bad.stdout();
    assert!(
        text.contains("fail  aws bucket") && text.contains("`no-such-bucket` does not exist"),
        "{text}"
    );
    assert!(text.contains("hint: create it in us-east-1"), "{text}");
    assert!(
        text.contains("warn  aws execution role") && text.contains("account 210987654321"),
        "{text}"
    );
    assert!(text.contains("1 failure"), "{text}");

    // A role that does not exist, then one that does not trust SageMaker; a tag
    // that was never pushed.
    for (role, says) in [
        (
            "NoSuchRole",
            "role/NoSuchRole does not exist in account 123456789012",
        ),
        (
            "Ec2Only",
            "its trust policy does not let sagemaker.amazonaws.com assume it",
        ),
    ] {
        std::fs::write(
            &path,
            yaml.replace("role/SageMakerExecution", &format!("role/{role}"))
                .replace("/modelport:0.1.0", "/modelport:0.9.9"),
        )
        .unwrap();
        let text = cloud
            .run(&["doctor", "--provider", "aws", "-f", &spec])
            .expect(1)
            .stdout();
        assert!(
            text.contains("fail  aws execution role") && text.contains(says),
            "{text}"
        );
        assert!(
            text.contains("fail  aws image")
                && text.contains("the repository modelport has no such image")
                && text.contains("modelport image push"),
            "{text}"
        );
        assert!(text.contains("2 failures"), "{text}");
    }

    // Reads only: nothing created, updated or deleted, no state. The identity is
    // asked of STS (moto, behind the fake).
    let calls = cloud.fake.calls();
    assert_eq!(creates(&calls), Vec::<String>::new());
    assert!(calls.iter().any(|c| c.operation == "sts:POST"), "{calls:?}");
    assert!(cloud.project.state("iris").is_none());
}

/// The weights added to the test's large model: a few hundred MB, made here.
const LARGE_WEIGHTS: usize = 256 << 20;

/// A model of a few hundred MB, its weights in an external data file, through the
/// whole local and AWS flow in both layouts: as one model.tar.gz (`ModelDataUrl`),
/// and as a directory of uncompressed files under a prefix that SageMaker lays out
/// under /opt/ml/model (`ModelDataSource` with `S3Prefix`, `CompressionType: None`),
/// with no archive beside them. Each deploy is compared, each destroy purges what
/// it uploaded.
#[test]
fn a_large_model_goes_through_both_layouts_locally_and_on_aws() {
    let cloud = Cloud::start("mlp");
    let spec = cloud.spec();
    common::add_weights(&cloud.project.path().join("mlp/model.onnx"), LARGE_WEIGHTS);
    let data = cloud.project.path().join("mlp/model.onnx.data");
    assert!(std::fs::metadata(&data).unwrap().len() >= LARGE_WEIGHTS as u64);
    // A window and a volume set in the spec are what the model gets (and what plan
    // shows); a package over 512 MB gets derived ones where none is set.
    edit(&cloud, &spec, |y| {
        y.replace(
            "compute:\n",
            "compute:\n  startup_timeout_s: 900\n  volume_size_gb: 3\n",
        )
    });

    for layout in ["archive", "dir"] {
        edit(&cloud, &spec, |y| {
            let y = y.replace("  layout: archive\n", "");
            y.replace(
                "  path: model.onnx\n",
                &format!("  path: model.onnx\n  layout: {layout}\n"),
            )
        });
        let local = cloud
            .run(&[
                "deploy",
                "--provider",
                "local",
                "-f",
                &spec,
                "--output",
                "json",
            ])
            .expect(0);
        assert_eq!(json(&local)["passed"], true, "{layout}: {}", local.stdout());
        cloud.run(&["compare", "mlp", "--count", "16"]).expect(0);
        cloud.run(&["destroy", "mlp", "--purge"]).expect(0);

        let plan = cloud
            .run(&["plan", "--provider", "aws", "-f", &spec])
            .expect(2);
        let text = plan.stdout();
        assert!(text.contains(", start-up window 900 s"), "{text}");
        assert!(!text.contains("model download window"), "{text}");
        assert!(text.contains(", volume 3 GB"), "{text}");
        if layout == "dir" {
            assert!(
                text.contains("/mp/mlp/") && text.contains("/  upload "),
                "{text}"
            );
            assert!(
                text.contains("uncompressed: SageMaker places the files"),
                "{text}"
            );
        } else {
            assert!(text.contains("/model.tar.gz  upload "), "{text}");
        }
        let deploy = cloud
            .run(&[
                "deploy",
                "--provider",
                "aws",
                "-f",
                &spec,
                "--output",
                "json",
            ])
            .expect(0);
        assert_eq!(
            json(&deploy)["passed"],
            true,
            "{layout}: {}",
            deploy.stdout()
        );
        let keys = cloud.moto.keys("models", "mp/mlp/").unwrap();
        let names: Vec<&str> = keys
            .iter()
            .map(|k| k.rsplit_once('/').map_or(k.as_str(), |(_, n)| n))
            .collect();
        let models = cloud.fake.models();
        assert_eq!(models.len(), 1, "{models:?}");
        let container = &models[0]["PrimaryContainer"];
        let configs = cloud.fake.configs();
        assert_eq!(
            configs[0]["ProductionVariants"][0]["ContainerStartupHealthCheckTimeoutInSeconds"], 900,
            "{configs:?}"
        );
        assert_eq!(
            configs[0]["ProductionVariants"][0]["VolumeSizeInGB"], 3,
            "{configs:?}"
        );
        if layout == "archive" {
            assert_eq!(names, ["model.tar.gz"], "{keys:?}");
            assert!(
                container["ModelDataUrl"]
                    .as_str()
                    .unwrap()
                    .ends_with("/model.tar.gz")
            );
            assert!(container.get("ModelDataSource").is_none(), "{container}");
        } else {
            assert_eq!(
                names,
                ["model.onnx", "model.onnx.data", "modelport.json"],
                "{keys:?}"
            );
            let source = &container["ModelDataSource"]["S3DataSource"];
            let uri = source["S3Uri"].as_str().unwrap();
            let prefix = keys[0].rsplit_once('/').unwrap().0;
            assert_eq!(uri, format!("s3://models/{prefix}/"), "{container}");
            assert_eq!(source["S3DataType"], "S3Prefix", "{container}");
            assert_eq!(source["CompressionType"], "None", "{container}");
            assert!(container.get("ModelDataUrl").is_none(), "{container}");
        }
        let compare = cloud.run(&["compare", "mlp", "--count", "16"]).expect(0);
        assert!(compare.stdout().contains("PASS"), "{}", compare.stdout());
        let destroyed = cloud
            .run(&["destroy", "mlp", "--purge", "--output", "json"])
            .expect(0);
        assert_eq!(json(&destroyed)["leftover"], serde_json::json!([]));
        assert_eq!(
            cloud.moto.keys("models", "mp/").unwrap(),
            Vec::<String>::new()
        );
    }
}
