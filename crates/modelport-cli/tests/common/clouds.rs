//! The clouds the end-to-end tests deploy to: moto and the SageMaker fake for
//! AWS, fake-gcs-server and the Vertex AI fake for Google Cloud, each with a
//! project whose modelport.yaml points at them and a command line that sees only
//! them.

use std::process::Command;
use std::time::Duration;

use super::{Project, Run};
use modelport_testkit::gcs::FakeGcs;
use modelport_testkit::sagemaker::{self, FakeConfig, FakeSageMaker};
use modelport_testkit::vertex::{self, FakeVertex, VertexConfig};
use modelport_testkit::{Moto, Tripwire};

/// moto, the fake in front of it, and a project whose modelport.yaml deploys
/// `example` to AWS.
pub struct Aws {
    pub fake: FakeSageMaker,
    pub moto: Moto,
    pub project: Project,
}

impl Aws {
    pub fn start(example: &str) -> Aws {
        Aws::with_config(example, |_| {})
    }

    pub fn with_config(example: &str, tweak: impl FnOnce(&mut FakeConfig)) -> Aws {
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
        Aws {
            fake,
            moto,
            project,
        }
    }

    pub fn spec(&self) -> String {
        self.project.spec()
    }

    /// The CLI with the environment a user of the fake exports, and nothing from
    /// this machine's own AWS setup.
    pub fn cmd(&self, args: &[&str]) -> Command {
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

    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd(args).output().unwrap())
    }

    pub fn calls_since(&self, n: usize) -> Vec<sagemaker::Call> {
        self.fake.calls().into_iter().skip(n).collect()
    }
}

/// fake-gcs-server, the Vertex fake reading from it, and a project whose
/// modelport.yaml deploys `example` to Google Cloud.
pub struct Gcp {
    pub fake: FakeVertex,
    pub gcs: FakeGcs,
    pub project: Project,
}

pub const BUCKET: &str = "models";

impl Gcp {
    pub fn start(example: &str) -> Gcp {
        Gcp::with_config(example, |_| {})
    }

    pub fn with_config(example: &str, tweak: impl FnOnce(&mut VertexConfig)) -> Gcp {
        Gcp::build(example, Tripwire::default(), tweak)
    }

    /// A cloud whose calls (to Vertex AI and to Cloud Storage) are counted on
    /// `tripwire`; the fake's own reads of the bucket are not.
    pub fn wired(example: &str, tripwire: Tripwire, tweak: impl FnOnce(&mut VertexConfig)) -> Gcp {
        Gcp::build(example, tripwire, tweak)
    }

    fn build(example: &str, tripwire: Tripwire, tweak: impl FnOnce(&mut VertexConfig)) -> Gcp {
        let gcs = FakeGcs::start_with(tripwire.clone()).unwrap();
        gcs.create_bucket(BUCKET).unwrap();
        let mut config = VertexConfig::new(env!("CARGO_BIN_EXE_modelport"));
        config.gcs_upstream = Some(gcs.internal_url());
        config.tripwire = tripwire;
        config.operation_delay = Duration::from_millis(300);
        tweak(&mut config);
        let fake = FakeVertex::start(config).unwrap();
        let project = Project::new().with_example(example);
        let spec = project.path().join(example).join("modelport.yaml");
        let yaml = std::fs::read_to_string(&spec).unwrap().replace(
            "provider:\n",
            "provider:\n  gcp:\n    project: test-project\n    region: us-central1\n    \
             bucket: models\n    prefix: mp\n    \
             image_uri: us-central1-docker.pkg.dev/test-project/modelport/modelport:0.1.0\n    \
             deploy_timeout_s: 120\n",
        );
        std::fs::write(&spec, yaml).unwrap();
        Gcp { fake, gcs, project }
    }

    pub fn spec(&self) -> String {
        self.project.spec()
    }

    /// The CLI with the environment a user of the fakes exports, and nothing from
    /// this machine's own Google Cloud setup. Any request that would leave the
    /// overrides goes to a closed loopback proxy instead of the internet.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.project.cmd(args);
        cmd.env("MODELPORT_GCP_VERTEX_ENDPOINT", self.fake.url())
            .env("MODELPORT_GCP_STORAGE_ENDPOINT", self.gcs.url())
            .env("MODELPORT_GCP_IAM_ENDPOINT", self.fake.url())
            .env("GCE_METADATA_HOST", "127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("CLOUDSDK_CONFIG", self.project.path().join("no-gcloud"))
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("GOOGLE_CLOUD_PROJECT");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd(args).output().unwrap())
    }

    pub fn calls_since(&self, n: usize) -> Vec<vertex::Call> {
        self.fake.calls().into_iter().skip(n).collect()
    }
}
