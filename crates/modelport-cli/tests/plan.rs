//! `modelport plan`, `modelport catalog` and the cost column of `list`, as a user runs
//! them: exit codes 0/2/1, the JSON shape, validation errors with suggestions, a cloud
//! plan read from the live (emulated) project, and catalog overrides.

mod common;

use common::{Project, root};
use modelport_testkit::gcs::FakeGcs;
use modelport_testkit::vertex::{FakeVertex, VertexConfig};

/// fake-gcs-server and the Vertex AI fake, for plans of `--provider gcp`.
struct Gcp {
    gcs: FakeGcs,
    vertex: FakeVertex,
}

impl Gcp {
    fn start(bucket: &str) -> Gcp {
        let gcs = FakeGcs::start().unwrap();
        gcs.create_bucket(bucket).unwrap();
        let mut config = VertexConfig::new(env!("CARGO_BIN_EXE_modelport"));
        config.gcs_upstream = Some(gcs.url());
        let vertex = FakeVertex::start(config).unwrap();
        Gcp { gcs, vertex }
    }

    /// `modelport ARGS` in `p`, its Google Cloud calls sent to the fakes.
    fn cmd(&self, p: &Project, args: &[&str]) -> std::process::Command {
        let mut cmd = p.cmd(args);
        cmd.env("MODELPORT_GCP_VERTEX_ENDPOINT", self.vertex.url())
            .env("MODELPORT_GCP_STORAGE_ENDPOINT", self.gcs.url());
        cmd
    }

    fn transcript(&self, p: &Project, args: &[&str]) -> String {
        let r = common::Run(self.cmd(p, args).output().unwrap());
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            r.code(),
            r.stdout(),
            r.stderr()
        )
    }
}

/// `exit: N`, stdout and stderr of one run, for a snapshot.
fn transcript(p: &Project, args: &[&str]) -> String {
    let r = p.run(args);
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        r.code(),
        r.stdout(),
        r.stderr()
    )
}

/// The iris example with its `compute` section replaced by `compute`, and `providers`
/// added under `provider` next to `local`.
fn iris_with(compute: &str, providers: &str) -> Project {
    let p = Project::new().with_example("iris");
    let file = p.path().join("iris/modelport.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    let start = yaml.find("provider:").unwrap();
    let end = yaml.find("verify:").unwrap();
    let yaml = format!(
        "{}provider:\n  local:\n    flavour: sagemaker\n{providers}\ncompute:\n{compute}\n{}",
        &yaml[..start],
        &yaml[end..]
    );
    std::fs::write(&file, yaml).unwrap();
    p
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn plan_exit_codes_follow_terraform_detailed_exitcode() {
    let p = Project::new().with_example("iris");
    let spec = "iris/modelport.yaml";

    // Nothing deployed: one server to create, exit 2.
    let first = p.run(&["plan", "-f", spec]).expect(2);
    assert!(
        first
            .stdout()
            .contains("+ server (sagemaker contract)  new deployment of artifact"),
        "{}",
        first.stdout()
    );
    assert!(first.stdout().ends_with("1 change\n"), "{}", first.stdout());
    assert!(p.state("iris").is_none(), "plan must not create state");

    // Deployed and unchanged: exit 0. Not a terminal, so deploy never asks.
    p.run(&["deploy", "-f", spec]).expect(0);
    let same = p.run(&["plan", "-f", spec]).expect(0);
    assert!(same.stdout().contains("= server pid"), "{}", same.stdout());
    assert!(same.stdout().ends_with("no changes\n"), "{}", same.stdout());

    let v = json(
        &p.run(&["plan", "-f", spec, "--output", "json"])
            .expect(0)
            .stdout(),
    );
    assert_eq!(v["changes"], false);
    assert_eq!(v["actions"][0]["kind"], "keep");
    assert_eq!(v["compute"]["kind"], "local");
    assert_eq!(v["cost"]["after"]["billable"], false);
    assert_eq!(v["cost"]["before"]["usd_per_hour"], 0.0);
    assert_eq!(v["payload_limit"]["bytes"], 6_291_456);
    assert_eq!(v["warnings"], serde_json::json!([]));

    // A changed spec is a change again.
    let file = p.path().join(spec);
    let yaml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{yaml}\nserving:\n  timeout_s: 61\n")).unwrap();
    let changed = p.run(&["plan", "-f", spec]).expect(2);
    assert!(
        changed.stdout().contains("modelport.yaml changed"),
        "{}",
        changed.stdout()
    );

    // `list` prices what runs and says for how long.
    let list = p.run(&["list"]).expect(0);
    assert!(
        list.stdout().starts_with("NAME  PROVIDER  HEALTH      UP"),
        "{}",
        list.stdout()
    );
    assert!(list.stdout().contains("COST"), "{}", list.stdout());
    assert!(list.stdout().contains("$0/h"), "{}", list.stdout());
    let listed = json(&p.run(&["list", "--output", "json"]).expect(0).stdout());
    assert_eq!(listed[0]["usd_per_hour"], 0.0);
    assert!(listed[0]["started_at"].as_u64().is_some());

    // A deployment on one provider cannot be planned on another.
    let other = p.run(&["plan", "-f", spec, "--provider", "gcp"]).expect(1);
    assert!(
        other.stderr().contains("exists on provider \"local\""),
        "{}",
        other.stderr()
    );
    p.run(&["destroy", "iris"]).expect(0);
}

#[test]
fn a_gcp_plan_reads_the_live_project_and_prices_from_the_catalog() {
    let gcp = Gcp::start("models-1");
    let p = iris_with(
        "  machine_type: n1-standard-4\n  min_replicas: 1\n  max_replicas: 2\n  accelerator: {type: NVIDIA_TESLA_T4, count: 1}\n",
        "  gcp:\n    project: test-project\n    region: europe-west4\n    bucket: models-1\n    image_uri: europe-west4-docker.pkg.dev/test-project/modelport/modelport:0.1.0\n",
    );
    let filters = vec![
        (r"artifact [0-9a-f]{12}", "artifact [digest]"),
        (r"iris/[0-9a-f]{64}/", "iris/[digest]/"),
        (r"iris-[0-9a-f]{8}-[0-9a-f]{6}", "iris-[artifact8]-[spec6]"),
        (
            r"iris-verify-[0-9a-f]{8}-[0-9a-f]{6}",
            "iris-verify-[artifact8]-[spec6]",
        ),
        (r"deployed model [0-9]{10}", "deployed model [id]"),
        (r"\(\d+ B\)", "([size])"),
        // A transfer's time and rate differ from run to run.
        (
            r" in [0-9.]+ s \([0-9.]+ [kMG]?B/s\)",
            " in [time] ([rate])",
        ),
        (r" +\n", "\n"),
    ];
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!("plan_gcp_live", gcp.transcript(&p, &["plan", "-f", "iris/modelport.yaml", "--provider", "gcp"]));
    });
    let out = common::Run(
        gcp.cmd(
            &p,
            &[
                "plan",
                "-f",
                "iris/modelport.yaml",
                "--provider",
                "gcp",
                "-o",
                "json",
            ],
        )
        .output()
        .unwrap(),
    )
    .expect(2);
    let v = json(&out.stdout());
    assert_eq!(v["actions"][0]["kind"], "create");
    assert_eq!(v["compute"]["kind"], "nodes");
    assert_eq!(v["compute"]["offer"]["machine"], "n1-standard-4");
    assert_eq!(v["compute"]["max"], 2);
    let after = &v["cost"]["after"];
    assert!((after["usd_per_hour"].as_f64().unwrap() - (0.2188 + 0.4025)).abs() < 1e-9);
    assert!((after["usd_per_month_max"].as_f64().unwrap() - 2.0 * 730.0 * 0.6213).abs() < 1e-6);
    assert_eq!(after["price_date"], "2025-01-15");
    assert_eq!(v["cost"]["before"]["usd_per_hour"], 0.0);
    assert_eq!(v["payload_limit"]["bytes"], 1_500_000);
    assert_eq!(v["warnings"][0]["field"], "provider.gcp.region");
    // How the new revision is proved, and what the rollout costs at its peak: the
    // new model runs twice (serving endpoint and verification endpoint), at most 2
    // replicas each.
    assert_eq!(v["rollout"]["mode"], "before_traffic");
    assert!(
        v["rollout"]["verify_via"]
            .as_str()
            .unwrap()
            .contains("/endpoints/iris-verify-"),
        "{v}"
    );
    assert_eq!(
        v["rollout"]["stages"][0],
        serde_json::json!({"old": 1, "new": 2})
    );
    let peak = v["rollout_peak_usd_per_hour"].as_f64().unwrap();
    assert!(
        (peak - 2.0 * 2.0 * (0.2188 + 0.4025)).abs() < 1e-9,
        "{peak}"
    );
    assert!(p.state("iris").is_none(), "plan must not create state");
    assert!(
        gcp.vertex
            .calls()
            .iter()
            .all(|c| c.method.ends_with(".get") || c.method.ends_with(".list")),
        "plan only reads: {:?}",
        gcp.vertex.calls()
    );
    assert_eq!(
        gcp.gcs.list_objects("models-1", "").unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn catalog_dir_overrides_prices() {
    let gcp = Gcp::start("models");
    let p = iris_with(
        "  machine_type: n1-standard-2\n",
        "  gcp:\n    project: test-project\n    region: us-central1\n    bucket: models\n    image_uri: us-central1-docker.pkg.dev/test-project/modelport/modelport:0.1.0\n",
    );
    let dir = p.path().join("catalog");
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = std::fs::read_to_string(root().join("providers/gcp.yaml"))
        .unwrap()
        .replacen(
            "usd_per_hour: 0.1094, date: 2025-01-15",
            "usd_per_hour: 1.0, date: 2026-11-30",
            1,
        );
    std::fs::write(dir.join("gcp.yaml"), catalog).unwrap();
    let out = gcp
        .cmd(
            &p,
            &["plan", "-f", "iris/modelport.yaml", "--provider", "gcp"],
        )
        .env("MODELPORT_CATALOG_DIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("→ $1.00/h ($730.00/month) after"),
        "{stdout}"
    );
    assert!(
        stdout.contains("as of 2025-01-15"),
        "the oldest date is shown: {stdout}"
    );
    std::fs::write(dir.join("gcp.yaml"), "provider: gcp\n").unwrap();
    let out = gcp
        .cmd(
            &p,
            &["plan", "-f", "iris/modelport.yaml", "--provider", "gcp"],
        )
        .env("MODELPORT_CATALOG_DIR", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hint: fix the file, or unset MODELPORT_CATALOG_DIR"),
        "{stderr}"
    );
}

/// Each case: the compute section, the provider, and the snapshot of the refusal.
#[test]
fn invalid_compute_is_refused_before_anything_is_created() {
    for (name, compute, provider) in [
        (
            "plan_err_misspelt_instance",
            "  instance_type: ml.m5.larg\n",
            "aws",
        ),
        (
            "plan_err_accelerator_cannot_attach",
            "  machine_type: e2-standard-4\n  accelerator:\n    type: NVIDIA_TESLA_T4\n    count: 1\n",
            "gcp",
        ),
        (
            "plan_err_builtin_accelerator",
            "  machine_type: n1-standard-4\n  accelerator: {type: NVIDIA_L4, count: 1}\n",
            "gcp",
        ),
        (
            "plan_err_serverless_memory",
            "  serverless:\n    memory_mb: 1500\n",
            "aws",
        ),
    ] {
        let p = iris_with(compute, "");
        insta::assert_snapshot!(
            name,
            transcript(
                &p,
                &["plan", "-f", "iris/modelport.yaml", "--provider", provider]
            )
        );
        // deploy refuses the same way, before packaging or starting anything.
        let deploy = p
            .run(&[
                "deploy",
                "-f",
                "iris/modelport.yaml",
                "--provider",
                provider,
            ])
            .expect(1);
        assert!(
            !deploy.stderr().contains("packaging"),
            "{}",
            deploy.stderr()
        );
        assert!(!p.path().join(".modelport/state").exists());
    }
    let p = Project::new().with_example("iris");
    let r = p
        .run(&["plan", "-f", "iris/modelport.yaml", "--provider", "azure"])
        .expect(1);
    assert!(
        r.stderr().contains("unknown provider \"azure\""),
        "{}",
        r.stderr()
    );
}

#[test]
fn catalog_lists_types_and_cheapest_fits() {
    let p = Project::new().with_example("iris").with_example("cnn");
    let all = p.run(&["catalog"]).expect(0).stdout();
    assert!(all.contains(
        "aws: SageMaker instance types, on-demand list prices in us-east-1 as of 2025-01-15"
    ));
    let g5: Vec<&str> = all
        .lines()
        .find(|l| l.trim_start().starts_with("ml.g5.xlarge "))
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        g5,
        [
            "ml.g5.xlarge",
            "4",
            "16 GiB",
            "1 × NVIDIA A10G 24 GiB",
            "$1.41/h",
            "$1027.84/month"
        ]
    );
    assert!(all.contains("NVIDIA_TESLA_T4    NVIDIA T4 16 GiB"), "{all}");
    let aws = p.run(&["catalog", "--provider", "aws"]).expect(0).stdout();
    assert!(!aws.contains("n1-standard"), "{aws}");

    insta::assert_snapshot!(
        "catalog_fits_cnn",
        transcript(&p, &["catalog", "--fits", "cnn/model.onnx", "--limit", "3"])
    );
    let v = json(
        &p.run(&[
            "catalog",
            "--fits",
            "iris/model.onnx",
            "--provider",
            "gcp",
            "--gpu",
            "--max-price",
            "0.6",
            "-o",
            "json",
        ])
        .expect(0)
        .stdout(),
    );
    let offers = v["providers"]["gcp"]["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 2, "{v}");
    assert_eq!(offers[0]["machine"], "n1-standard-2");
    assert_eq!(offers[0]["accelerator"]["type"], "NVIDIA_TESLA_T4");
    assert_eq!(v["footprint"]["parameters"], 23);

    let none = p
        .run(&[
            "catalog",
            "--fits",
            "iris/model.onnx",
            "--provider",
            "aws",
            "--max-price",
            "0.01",
        ])
        .expect(0);
    assert!(
        none.stdout()
            .contains("nothing fits at $0.010 per hour or less"),
        "{}",
        none.stdout()
    );
    // The filters work on the whole catalog, without --fits (issue 13 #12).
    let gpu = json(
        &p.run(&[
            "catalog",
            "--provider",
            "aws",
            "--gpu",
            "--max-price",
            "2",
            "-o",
            "json",
        ])
        .expect(0)
        .stdout(),
    );
    let offers = gpu["providers"]["aws"]["offers"].as_array().unwrap();
    assert!(offers.len() >= 3, "{gpu}");
    for o in offers {
        assert_eq!(o["accelerator"]["kind"], "gpu", "{o}");
        assert!(o["usd_per_hour"].as_f64().unwrap() <= 2.0, "{o}");
    }
    assert_eq!(offers[0]["machine"], "ml.g4dn.xlarge");
    let family = p
        .run(&["catalog", "--family", "n1-standard", "--gpu"])
        .expect(0)
        .stdout();
    assert!(!family.contains("aws:"), "{family}");
    assert!(
        family.contains("n1-standard-2 + 1 NVIDIA_TESLA_T4"),
        "{family}"
    );
    assert!(
        family
            .lines()
            .skip(2)
            .all(|l| l.trim_start().starts_with("n1-standard-")),
        "{family}"
    );
    let unknown = p.run(&["catalog", "--family", "g5"]).expect(1);
    assert!(
        unknown.stderr().contains("no machine family `g5`")
            && unknown.stderr().contains("did you mean `--family ml.g5`?"),
        "{}",
        unknown.stderr()
    );
    p.run(&["catalog", "--max-price=0"]).expect(2);
    let local = p.run(&["catalog", "--provider", "local"]).expect(1);
    assert!(
        local.stderr().contains("catalogs exist for aws, gcp"),
        "{}",
        local.stderr()
    );
    let refresh = p.run(&["catalog", "refresh"]).expect(0);
    assert!(
        refresh.stdout().contains("scripts/refresh-prices"),
        "{}",
        refresh.stdout()
    );
    assert!(root().join("scripts/refresh-prices").exists());
}

#[test]
fn help_documents_plan_exit_codes() {
    let p = Project::new();
    let help = p.run(&["plan", "--help"]).expect(0).stdout();
    for line in ["0  no changes", "1  error", "2  the plan has changes"] {
        assert!(help.contains(line), "{line}: {help}");
    }
    let deploy = p.run(&["deploy", "--help"]).expect(0).stdout();
    assert!(deploy.contains("--yes"), "{deploy}");
}
