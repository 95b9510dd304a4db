//! `--provider aws` end to end through the CLI, as a user runs it, against moto
//! (S3) and modelport's strict SageMaker fake (control plane validated against
//! botocore's service model, a real `modelport serve` as the data plane). Every
//! request is made by the official AWS SDK inside the CLI; only the far end is
//! an emulator.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Project, Run};
use modelport_testkit::Moto;
use modelport_testkit::sagemaker::{Call, FakeConfig, FakeSageMaker, Fault, FaultKind};

/// moto, the fake in front of it, and a project whose modelport.yaml deploys
/// `example` to AWS.
struct Cloud {
    fake: FakeSageMaker,
    _moto: Moto,
    project: Project,
}

impl Cloud {
    fn start(example: &str) -> Cloud {
        Cloud::with_config(example, |_| {})
    }

    fn with_config(example: &str, tweak: impl FnOnce(&mut FakeConfig)) -> Cloud {
        let moto = Moto::start().unwrap();
        moto.create_bucket("models").unwrap();
        let mut config = FakeConfig::new(moto.url(), env!("CARGO_BIN_EXE_modelport"));
        config.create_delay = Duration::from_millis(300);
        config.delete_delay = Duration::from_millis(300);
        tweak(&mut config);
        let fake = FakeSageMaker::start(config).unwrap();
        let project = Project::new().with_example(example);
        let spec = project.path().join(example).join("modelport.yaml");
        let yaml = std::fs::read_to_string(&spec).unwrap().replace(
            "provider:\n",
            "provider:\n  aws:\n    region: us-east-1\n    bucket: models\n    prefix: mp\n    \
             role_arn: arn:aws:iam::123456789012:role/SageMakerExecution\n    \
             image_uri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0\n    \
             deploy_timeout_s: 120\n",
        );
        std::fs::write(&spec, yaml).unwrap();
        Cloud {
            fake,
            _moto: moto,
            project,
        }
    }

    fn spec(&self) -> String {
        let dir = std::fs::read_dir(self.project.path())
            .unwrap()
            .flatten()
            .find(|e| e.path().join("modelport.yaml").exists())
            .unwrap();
        format!("{}/modelport.yaml", dir.file_name().to_string_lossy())
    }

    /// The CLI with the environment a user of the fake exports, and nothing from
    /// this machine's own AWS setup.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.project.cmd(args);
        let none = self.project.path().join("empty-aws-config");
        std::fs::write(&none, "").unwrap();
        cmd.env("MODELPORT_AWS_ENDPOINT_URL", self.fake.url())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &none)
            .env("AWS_SHARED_CREDENTIALS_FILE", &none)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL");
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd(args).output().unwrap())
    }

    fn calls_since(&self, n: usize) -> Vec<Call> {
        self.fake.calls().into_iter().skip(n).collect()
    }
}

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
fn a_deploy_killed_after_create_model_converges_on_rerun() {
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
    let calls = creates(&cloud.calls_since(before));
    assert!(
        !calls.iter().any(|c| c.starts_with("CreateModel")),
        "{calls:?}"
    );
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
}
