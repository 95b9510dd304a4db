//! The provider conformance suite (modelport-testkit's `conformance`), run against
//! every provider this build has: the same code, the same checks.

mod common;

use std::time::Duration;

use aws_credential_types::Credentials;
use modelport_aws::AwsProvider;
use modelport_core::spec::{AwsSettings, DeploymentSpec, GcpSettings};
use modelport_core::state::Workspace;
use modelport_gcp::GcpProvider;
use modelport_local::LocalProvider;
use modelport_testkit::Moto;
use modelport_testkit::conformance;
use modelport_testkit::gcs::FakeGcs;
use modelport_testkit::sagemaker::{FakeConfig, FakeSageMaker};
use modelport_testkit::vertex::{FakeVertex, VertexConfig};

/// `examples/iris` as the spec, and the same with other serving settings as the change.
fn specs(
    project: &common::Project,
    tweak: impl Fn(&mut DeploymentSpec),
) -> (DeploymentSpec, DeploymentSpec) {
    let mut spec = DeploymentSpec::from_file(&project.path().join("iris/modelport.yaml")).unwrap();
    tweak(&mut spec);
    let mut changed = spec.clone();
    changed.serving.timeout_s = 59;
    (spec, changed)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn local_provider_conforms() {
    let project = common::Project::new().with_example("iris");
    let ws = Workspace::new(project.path().join(".modelport"));
    let provider = LocalProvider::new(ws.clone(), env!("CARGO_BIN_EXE_modelport"))
        .with_stop_grace(Duration::from_secs(5));
    let (spec, changed) = specs(&project, |_| {});
    runtime()
        .block_on(conformance::lifecycle(&provider, &ws, &spec, &changed))
        .unwrap();
}

#[test]
fn aws_provider_conforms_against_moto_and_the_sagemaker_fake() {
    let moto = Moto::start().unwrap();
    moto.create_bucket("models").unwrap();
    let mut config = FakeConfig::new(moto.url(), env!("CARGO_BIN_EXE_modelport"));
    config.create_delay = Duration::from_millis(300);
    config.delete_delay = Duration::from_millis(300);
    let fake = FakeSageMaker::start(config).unwrap();
    let project = common::Project::new().with_example("iris");
    let ws = Workspace::new(project.path().join(".modelport"));
    let provider = AwsProvider::new(ws.clone())
        .with_credentials(Credentials::new("testing", "testing", None, None, "test"));
    let (spec, changed) = specs(&project, |s| {
        s.provider.aws = Some(AwsSettings {
            region: Some("us-east-1".into()),
            profile: None,
            bucket: "models".into(),
            prefix: "conformance".into(),
            role_arn: "arn:aws:iam::123456789012:role/SageMakerExecution".into(),
            image_uri: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0".into()),
            kms_key_id: None,
            vpc: None,
            network_isolation: false,
            endpoint_url: Some(fake.url()),
            tags: Default::default(),
            deploy_timeout_s: 120,
        });
    });
    runtime()
        .block_on(conformance::lifecycle(&provider, &ws, &spec, &changed))
        .unwrap();
    assert!(fake.server_pids().is_empty(), "{:?}", fake.server_pids());
}

#[test]
fn gcp_provider_conforms_against_fake_gcs_server_and_the_vertex_fake() {
    let gcs = FakeGcs::start().unwrap();
    gcs.create_bucket("models").unwrap();
    let mut config = VertexConfig::new(env!("CARGO_BIN_EXE_modelport"));
    config.gcs_upstream = Some(gcs.url());
    config.operation_delay = Duration::from_millis(300);
    let fake = FakeVertex::start(config).unwrap();
    let project = common::Project::new().with_example("iris");
    let ws = Workspace::new(project.path().join(".modelport"));
    let provider = GcpProvider::new(ws.clone());
    let (spec, changed) = specs(&project, |s| {
        s.provider.gcp = Some(GcpSettings {
            project: Some("test-project".into()),
            region: "us-central1".into(),
            bucket: "models".into(),
            prefix: "conformance".into(),
            image_uri: Some(
                "us-central1-docker.pkg.dev/test-project/modelport/modelport:0.1.0".into(),
            ),
            service_account: None,
            kms_key_name: None,
            labels: Default::default(),
            dedicated_endpoint: false,
            endpoint_url: Some(fake.url()),
            storage_endpoint_url: Some(gcs.url()),
            deploy_timeout_s: 120,
        });
    });
    runtime()
        .block_on(conformance::lifecycle(&provider, &ws, &spec, &changed))
        .unwrap();
    assert!(fake.server_pids().is_empty(), "{:?}", fake.server_pids());
}
