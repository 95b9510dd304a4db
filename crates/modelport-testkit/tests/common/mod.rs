//! Shared set-up for the fake's tests: moto, the fake, and SDK clients pointed at it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sagemaker::config::Credentials;
use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use aws_sdk_sagemaker::types::{
    ContainerDefinition, ProductionVariant, ProductionVariantInstanceType, Tag,
};
use modelport_testkit::Moto;
use modelport_testkit::sagemaker::{FakeConfig, FakeSageMaker};
use serde_json::Value;

pub const BUCKET: &str = "models";

/// moto plus the fake, and an SDK config for the fake's URL.
pub struct Cloud {
    pub fake: FakeSageMaker,
    pub moto: Moto,
    pub conf: SdkConfig,
}

impl Cloud {
    pub async fn start() -> Cloud {
        Cloud::with(|_| {}).await
    }

    /// Starts moto and the fake with short transitions, after `adjust` has changed
    /// the fake's configuration.
    pub async fn with(adjust: impl FnOnce(&mut FakeConfig)) -> Cloud {
        let moto = Moto::start().expect("moto must be installed for these tests");
        let server = modelport_testkit::modelport_exe().expect("the modelport binary is needed");
        let mut config = FakeConfig::new(moto.url(), server);
        config.create_delay = Duration::from_millis(300);
        config.delete_delay = Duration::from_millis(300);
        adjust(&mut config);
        let fake = FakeSageMaker::start(config).expect("the fake starts");
        let conf = sdk_config(&fake.url(), RetryConfig::standard()).await;
        Cloud { fake, moto, conf }
    }

    pub fn sm(&self) -> aws_sdk_sagemaker::Client {
        aws_sdk_sagemaker::Client::new(&self.conf)
    }

    /// A SageMaker client that does not retry, so injected faults reach the caller.
    pub async fn sm_no_retry(&self) -> aws_sdk_sagemaker::Client {
        let conf = sdk_config(&self.fake.url(), RetryConfig::disabled()).await;
        aws_sdk_sagemaker::Client::new(&conf)
    }

    pub fn runtime(&self) -> aws_sdk_sagemakerruntime::Client {
        aws_sdk_sagemakerruntime::Client::new(&self.conf)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.conf)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Packages `examples/iris/model.onnx`, uploads it through the fake's S3
    /// pass-through and returns its `s3://` URL.
    pub async fn upload_iris(&self) -> String {
        let s3 = self.s3();
        let _ = s3.create_bucket().bucket(BUCKET).send().await;
        let dir = tempfile::tempdir().unwrap();
        let model = modelport_testkit::repo_root().join("examples/iris/model.onnx");
        let artifact = modelport_package::package(
            &model,
            dir.path(),
            &modelport_package::PackageOptions::default(),
        )
        .unwrap();
        let key = format!("iris/{}/model.tar.gz", artifact.digest);
        let body = aws_sdk_s3::primitives::ByteStream::from_path(&artifact.path)
            .await
            .unwrap();
        s3.put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(body)
            .send()
            .await
            .unwrap();
        format!("s3://{BUCKET}/{key}")
    }

    pub async fn create_model(&self, name: &str, data_url: &str) {
        self.sm()
            .create_model()
            .model_name(name)
            .execution_role_arn("arn:aws:iam::123456789012:role/modelport")
            .primary_container(
                ContainerDefinition::builder()
                    .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0")
                    .model_data_url(data_url)
                    .environment("MODELPORT_WORKERS", "1")
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key("modelport-deployment")
                    .value("iris")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    pub async fn create_config(&self, name: &str, model: &str) {
        self.sm()
            .create_endpoint_config()
            .endpoint_config_name(name)
            .production_variants(
                ProductionVariant::builder()
                    .variant_name("AllTraffic")
                    .model_name(model)
                    .instance_type(ProductionVariantInstanceType::MlM5Large)
                    .initial_instance_count(1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Polls DescribeEndpoint until its status is `want` (generous deadline; the
    /// test asserts the sequence, not the time).
    pub async fn wait_status(
        &self,
        endpoint: &str,
        want: &str,
    ) -> aws_sdk_sagemaker::operation::describe_endpoint::DescribeEndpointOutput {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = self
                .sm()
                .describe_endpoint()
                .endpoint_name(endpoint)
                .send()
                .await
                .unwrap();
            let status = out
                .endpoint_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if status == want {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "{endpoint} is still {status} (waiting for {want}): {out:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until DescribeEndpoint says the endpoint does not exist.
    pub async fn wait_gone(&self, endpoint: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match self
                .sm()
                .describe_endpoint()
                .endpoint_name(endpoint)
                .send()
                .await
            {
                Ok(out) => assert!(
                    Instant::now() < deadline,
                    "{endpoint} is still there: {out:?}"
                ),
                Err(e) => {
                    assert_eq!(e.code(), Some("ValidationException"), "{e:?}");
                    return e.message().unwrap_or_default().to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A control-plane request sent as raw JSON (what the SDK's types cannot send),
    /// signed with a dummy SigV4 header: (status, body).
    pub async fn raw(&self, operation: &str, body: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(self.fake.url())
            .header("x-amz-target", format!("SageMaker.{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

pub async fn sdk_config(url: &str, retry: RetryConfig) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "modelport-tests",
        ))
        .retry_config(retry)
        .load()
        .await
}

/// The iris sample inputs.
pub fn iris_samples() -> Vec<u8> {
    std::fs::read(iris_dir().join("samples.json")).unwrap()
}

pub fn iris_dir() -> PathBuf {
    modelport_testkit::repo_root().join("examples/iris")
}
