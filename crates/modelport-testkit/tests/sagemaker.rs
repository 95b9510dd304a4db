//! The SageMaker fake through the official SDK crates: strict validation, AWS's
//! messages, the endpoint status machine with a real `modelport serve` behind it,
//! faults, tags, lists and the S3 pass-through to moto.

mod common;

use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use aws_sdk_sagemaker::primitives::Blob;
use aws_sdk_sagemaker::types::{
    ContainerDefinition, DesiredWeightAndCapacity, EndpointStatus, ProductionVariant,
    ProductionVariantInstanceType, ProductionVariantServerlessConfig, Tag,
};
use common::{Cloud, iris_samples};
use modelport_testkit::sagemaker::{Fault, FaultKind};
use serde_json::Value;
use std::time::Duration;

const ARN: &str = "arn:aws:sagemaker:us-east-1:123456789012";

/// One raw request and the message it must be refused with.
async fn check(cloud: &Cloud, operation: &str, body: &str, code: &str, message: &str) {
    let (status, answer) = cloud.raw(operation, body).await;
    assert_eq!(status, 400, "{operation} {body}: {answer}");
    assert_eq!(answer["__type"], code, "{operation} {body}: {answer}");
    let got = answer["message"].as_str().unwrap_or_default();
    assert_eq!(got, message, "{operation} {body}");
}

#[tokio::test]
async fn requests_are_validated_against_the_service_model() {
    let cloud = Cloud::start().await;
    let model = cloud.fake.service_model();
    assert!(model.checked_patterns() > 200, "{model:?}");
    eprintln!(
        "{} patterns checked, {} skipped: {:?}",
        model.checked_patterns(),
        model.skipped_patterns().len(),
        model.skipped_patterns()
    );

    check(
        &cloud,
        "CreateEndpoint",
        r#"{"EndpointConfigName": "c"}"#,
        "ValidationException",
        "1 validation error detected: Value null at 'endpointName' failed to satisfy constraint: Member must not be null",
    )
    .await;
    check(
        &cloud,
        "CreateEndpoint",
        r#"{"EndpointName": "e", "EndpointConfigName": "c", "Color": "red"}"#,
        "ValidationException",
        "1 validation error detected: Unknown parameter 'Color' at 'color': must be one of: DeploymentConfig, EndpointConfigName, EndpointName, Tags",
    )
    .await;
    check(
        &cloud,
        "CreateEndpoint",
        r#"{"EndpointName": "bad_name", "EndpointConfigName": "c"}"#,
        "ValidationException",
        "1 validation error detected: Value 'bad_name' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
    )
    .await;
    check(
        &cloud,
        "CreateEndpoint",
        &format!(r#"{{"EndpointName": "{}", "EndpointConfigName": "c"}}"#, "a".repeat(64)),
        "ValidationException",
        &format!(
            "2 validation errors detected: Value '{a}' at 'endpointName' failed to satisfy constraint: Member must have length less than or equal to 63; \
             Value '{a}' at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}",
            a = "a".repeat(64)
        ),
    )
    .await;
    check(
        &cloud,
        "ListEndpoints",
        r#"{"MaxResults": 101, "StatusEquals": "Sleeping"}"#,
        "ValidationException",
        "2 validation errors detected: Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100; Value 'Sleeping' at 'statusEquals' failed to satisfy constraint: Member must satisfy enum value set: [OutOfService, Creating, Updating, SystemUpdating, RollingBack, InService, Deleting, Failed, UpdateRollbackFailed]",
    )
    .await;
    check(
        &cloud,
        "ListEndpoints",
        r#"{"MaxResults": "10"}"#,
        "ValidationException",
        "1 validation error detected: Value '10' at 'maxResults' failed to satisfy constraint: Member must be of type integer",
    )
    .await;
    check(
        &cloud,
        "ListEndpoints",
        r#"{"CreationTimeAfter": "2026-01-01T00:00:00Z"}"#,
        "ValidationException",
        "1 validation error detected: Value '2026-01-01T00:00:00Z' at 'creationTimeAfter' failed to satisfy constraint: Member must be a timestamp in epoch seconds (a number)",
    )
    .await;
    check(
        &cloud,
        "CreateEndpoint",
        "{",
        "SerializationException",
        "The request body is not valid JSON: EOF while parsing an object at line 1 column 1",
    )
    .await;
    check(
        &cloud,
        "CreateTrainingJob",
        "{}",
        "UnknownOperationException",
        "The fake SageMaker does not implement CreateTrainingJob",
    )
    .await;

    // The SDK's own requests, with values the service refuses.
    let err = cloud
        .sm()
        .create_endpoint_config()
        .endpoint_config_name("c")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("m")
                .serverless_config(
                    ProductionVariantServerlessConfig::builder()
                        .memory_size_in_mb(1000)
                        .max_concurrency(201)
                        .build(),
                )
                .container_startup_health_check_timeout_in_seconds(10)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
    assert_eq!(
        err.message(),
        Some(
            "3 validation errors detected: \
             Value '1000' at 'productionVariants.1.member.serverlessConfig.memorySizeInMB' failed to satisfy constraint: Member must have value greater than or equal to 1024; \
             Value '201' at 'productionVariants.1.member.serverlessConfig.maxConcurrency' failed to satisfy constraint: Member must have value less than or equal to 200; \
             Value '10' at 'productionVariants.1.member.containerStartupHealthCheckTimeoutInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 60"
        )
    );
    let err = cloud
        .sm()
        .create_endpoint_config()
        .endpoint_config_name("c")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("m")
                .instance_type(ProductionVariantInstanceType::from("ml.warp.drive"))
                .initial_instance_count(1)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let message = err.message().unwrap_or_default();
    assert!(
        message.starts_with("1 validation error detected: Value 'ml.warp.drive' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [ml.t2.medium,"),
        "{message}"
    );
    // Nothing was created by refused requests.
    assert!(cloud.fake.calls().iter().all(|c| c.status == 400));
}

#[tokio::test]
async fn names_are_unique_references_checked_and_missing_things_reported_like_aws() {
    let cloud = Cloud::start().await;
    let sm = cloud.sm();
    let url = "s3://models/nowhere/model.tar.gz";
    cloud.create_model("Iris-Model", url).await;
    let described = sm
        .describe_model()
        .model_name("iris-model")
        .send()
        .await
        .unwrap();
    assert_eq!(described.model_name(), Some("Iris-Model"));
    assert_eq!(
        described.model_arn(),
        Some(&*format!("{ARN}:model/iris-model"))
    );
    assert_eq!(
        described
            .primary_container()
            .and_then(|c| c.model_data_url()),
        Some(url)
    );
    assert!(described.creation_time().is_some());

    let err = sm
        .create_model()
        .model_name("iris-model")
        .primary_container(ContainerDefinition::builder().model_data_url(url).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
    assert_eq!(
        err.message(),
        Some(&*format!(
            "Cannot create already existing model \"{ARN}:model/iris-model\"."
        ))
    );

    let err = sm
        .create_endpoint_config()
        .endpoint_config_name("cfg")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("ghost")
                .instance_type(ProductionVariantInstanceType::MlM5Large)
                .initial_instance_count(1)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(&*format!("Could not find model \"{ARN}:model/ghost\"."))
    );

    cloud.create_config("cfg", "Iris-Model").await;
    let err = sm
        .create_endpoint_config()
        .endpoint_config_name("CFG")
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name("Iris-Model")
                .instance_type(ProductionVariantInstanceType::MlM5Large)
                .initial_instance_count(1)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(&*format!(
            "Cannot create already existing endpoint configuration \"{ARN}:endpoint-config/cfg\"."
        ))
    );
    let err = sm
        .create_endpoint()
        .endpoint_name("ep")
        .endpoint_config_name("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(&*format!(
            "Could not find endpoint configuration \"{ARN}:endpoint-config/ghost\"."
        ))
    );
    for err in [
        sm.describe_endpoint()
            .endpoint_name("ghost")
            .send()
            .await
            .unwrap_err()
            .into_service_error()
            .meta()
            .clone(),
        sm.delete_endpoint()
            .endpoint_name("ghost")
            .send()
            .await
            .unwrap_err()
            .into_service_error()
            .meta()
            .clone(),
    ] {
        assert_eq!(err.code(), Some("ValidationException"));
        assert_eq!(
            err.message(),
            Some(&*format!(
                "Could not find endpoint \"{ARN}:endpoint/ghost\"."
            ))
        );
    }
    let err = sm
        .update_endpoint()
        .endpoint_name("ghost")
        .endpoint_config_name("cfg")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(&*format!(
            "Could not find endpoint \"{ARN}:endpoint/ghost\"."
        ))
    );

    // Lists: filters, order and pages.
    for i in 0..3 {
        cloud.create_model(&format!("other-{i}"), url).await;
    }
    let page = sm
        .list_models()
        .name_contains("other")
        .max_results(2)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = page
        .models()
        .iter()
        .filter_map(|m| m.model_name())
        .collect();
    assert_eq!(names, ["other-2", "other-1"]);
    let token = page.next_token().expect("a second page").to_string();
    let page = sm
        .list_models()
        .name_contains("other")
        .max_results(2)
        .next_token(token)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = page
        .models()
        .iter()
        .filter_map(|m| m.model_name())
        .collect();
    assert_eq!(names, ["other-0"]);
    assert!(page.next_token().is_none());
    let all = sm
        .list_models()
        .sort_by(aws_sdk_sagemaker::types::ModelSortKey::Name)
        .sort_order(aws_sdk_sagemaker::types::OrderKey::Ascending)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = all.models().iter().filter_map(|m| m.model_name()).collect();
    assert_eq!(names, ["Iris-Model", "other-0", "other-1", "other-2"]);

    // Tags given at creation, then added and deleted.
    let arn = format!("{ARN}:model/iris-model");
    let tags = sm.list_tags().resource_arn(&arn).send().await.unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].key(), Some("modelport-deployment"));
    sm.add_tags()
        .resource_arn(&arn)
        .tags(Tag::builder().key("modelport-digest").value("abc").build())
        .tags(
            Tag::builder()
                .key("modelport-deployment")
                .value("iris2")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tags = sm.list_tags().resource_arn(&arn).send().await.unwrap();
    let pairs: Vec<(&str, &str)> = tags
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("modelport-deployment", "iris2"),
            ("modelport-digest", "abc")
        ]
    );
    sm.delete_tags()
        .resource_arn(&arn)
        .tag_keys("modelport-deployment")
        .send()
        .await
        .unwrap();
    let tags = sm.list_tags().resource_arn(&arn).send().await.unwrap();
    assert_eq!(tags.tags().len(), 1);
    let err = sm
        .list_tags()
        .resource_arn(format!("{ARN}:model/ghost"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));

    sm.delete_model()
        .model_name("Iris-Model")
        .send()
        .await
        .unwrap();
    let err = sm
        .describe_model()
        .model_name("Iris-Model")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(&*format!(
            "Could not find model \"{ARN}:model/iris-model\"."
        ))
    );
    sm.delete_endpoint_config()
        .endpoint_config_name("cfg")
        .send()
        .await
        .unwrap();
    let err = sm
        .describe_endpoint_config()
        .endpoint_config_name("cfg")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(&*format!(
            "Could not find endpoint configuration \"{ARN}:endpoint-config/cfg\"."
        ))
    );
}

#[tokio::test]
async fn an_endpoint_is_created_served_updated_rolled_back_and_deleted() {
    let cloud = Cloud::with(|c| c.default_startup_timeout = Duration::from_secs(3)).await;
    let sm = cloud.sm();
    let url = cloud.upload_iris().await;
    cloud.create_model("iris-a", &url).await;
    cloud.create_config("iris-a", "iris-a").await;
    cloud.create_model("iris-b", &url).await;
    cloud.create_config("iris-b", "iris-b").await;

    let created = sm
        .create_endpoint()
        .endpoint_name("iris")
        .endpoint_config_name("iris-a")
        .tags(
            Tag::builder()
                .key("modelport-deployment")
                .value("iris")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.endpoint_arn(),
        Some(&*format!("{ARN}:endpoint/iris"))
    );
    let first = sm
        .describe_endpoint()
        .endpoint_name("iris")
        .send()
        .await
        .unwrap();
    assert_eq!(first.endpoint_status(), Some(&EndpointStatus::Creating));
    let err = sm
        .update_endpoint()
        .endpoint_name("iris")
        .endpoint_config_name("iris-b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(&*format!(
            "Cannot update in-progress endpoint \"{ARN}:endpoint/iris\"."
        ))
    );
    let err = cloud
        .runtime()
        .invoke_endpoint()
        .endpoint_name("iris")
        .content_type("application/json")
        .body(Blob::new(iris_samples()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");

    let ready = cloud.wait_status("iris", "InService").await;
    assert_eq!(ready.endpoint_config_name(), Some("iris-a"));
    let variant = &ready.production_variants()[0];
    assert_eq!(variant.variant_name(), Some("AllTraffic"));
    assert_eq!(variant.current_instance_count(), Some(1));
    assert_eq!(variant.desired_instance_count(), Some(1));
    assert_eq!(variant.deployed_images().len(), 1);
    assert_eq!(cloud.fake.server_pids().len(), 1);
    let first_pid = cloud.fake.server_pids()[0];

    // The data plane is the real server.
    let rt = cloud.runtime();
    let answer = rt
        .invoke_endpoint()
        .endpoint_name("iris")
        .content_type("application/json")
        .accept("application/json")
        .body(Blob::new(iris_samples()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.content_type(), Some("application/json"));
    assert_eq!(answer.invoked_production_variant(), Some("AllTraffic"));
    let body: Value =
        serde_json::from_slice(answer.body().map(|b| b.as_ref()).unwrap_or_default()).unwrap();
    let samples: Value = serde_json::from_slice(&iris_samples()).unwrap();
    assert_eq!(
        body["predictions"].as_array().map(Vec::len),
        samples["instances"].as_array().map(Vec::len),
        "{body}"
    );
    if let Some(attributes) = answer.custom_attributes() {
        assert!(attributes.contains("modelport-"), "{attributes}");
    }

    // Only SageMaker's own headers come back.
    let raw = reqwest::Client::new()
        .post(format!("{}/endpoints/iris/invocations", cloud.fake.url()))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0")
        .header("content-type", "application/json")
        .body(iris_samples())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    for (name, _) in raw.headers() {
        let name = name.as_str();
        assert!(
            [
                "content-type",
                "content-length",
                "date",
                "x-amzn-invoked-production-variant",
                "x-amzn-sagemaker-custom-attributes"
            ]
            .contains(&name),
            "header {name} passed through"
        );
    }

    // A container error is a ModelError (424) with the container's answer.
    let err = rt
        .invoke_endpoint()
        .endpoint_name("iris")
        .content_type("application/json")
        .body(Blob::new(&b"{\"instances\": [[1, 2]]}"[..]))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match &err {
        aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError::ModelError(
            e,
        ) => {
            assert_eq!(e.original_status_code(), Some(400));
            assert!(
                e.message()
                    .unwrap_or_default()
                    .starts_with("Received client error (400) from primary with message \""),
                "{e:?}"
            );
            assert!(e.original_message().is_some_and(|m| !m.is_empty()));
            assert_eq!(
                e.log_stream_arn(),
                Some("arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/iris")
            );
        }
        other => panic!("expected ModelError, got {other:?}"),
    }
    // Too large for SageMaker: refused before the container sees it.
    let err = rt
        .invoke_endpoint()
        .endpoint_name("iris")
        .content_type("application/json")
        .body(Blob::new(vec![b' '; 6_291_457]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(413),
        "{err:?}"
    );
    let err = rt
        .invoke_endpoint()
        .endpoint_name("ghost")
        .body(Blob::new(iris_samples()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"));
    assert_eq!(
        err.message(),
        Some("Endpoint ghost of account 123456789012 not found.")
    );
    cloud
        .fake
        .inject(Fault::new("InvokeEndpoint", FaultKind::ModelNotReady));
    let err = rt
        .invoke_endpoint()
        .endpoint_name("iris")
        .content_type("application/json")
        .body(Blob::new(iris_samples()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ModelNotReadyException"), "{err:?}");

    // Blue/green update: the new config's server replaces the old one.
    sm.update_endpoint()
        .endpoint_name("iris")
        .endpoint_config_name("iris-b")
        .send()
        .await
        .unwrap();
    let updating = sm
        .describe_endpoint()
        .endpoint_name("iris")
        .send()
        .await
        .unwrap();
    assert_eq!(updating.endpoint_status(), Some(&EndpointStatus::Updating));
    assert_eq!(updating.endpoint_config_name(), Some("iris-a"));
    assert_eq!(
        updating
            .pending_deployment_summary()
            .and_then(|p| p.endpoint_config_name()),
        Some("iris-b")
    );
    let updated = cloud.wait_status("iris", "InService").await;
    assert_eq!(updated.endpoint_config_name(), Some("iris-b"));
    assert!(updated.failure_reason().is_none());
    assert!(updated.pending_deployment_summary().is_none());
    let pids = cloud.fake.server_pids();
    assert_eq!(pids.len(), 1);
    assert_ne!(pids[0], first_pid, "the old server was replaced");

    // A failed update rolls back to the config that was serving.
    cloud
        .fake
        .inject(Fault::new("UpdateEndpoint", FaultKind::ServerNeverReady));
    sm.update_endpoint()
        .endpoint_name("iris")
        .endpoint_config_name("iris-a")
        .send()
        .await
        .unwrap();
    cloud.wait_status("iris", "RollingBack").await;
    let rolled = cloud.wait_status("iris", "InService").await;
    assert_eq!(rolled.endpoint_config_name(), Some("iris-b"));
    assert_eq!(
        rolled.failure_reason(),
        Some(
            "The primary container for production variant AllTraffic did not pass the ping health check. Please check CloudWatch logs for this endpoint."
        )
    );
    assert_eq!(cloud.fake.server_pids(), pids);
    rt.invoke_endpoint()
        .endpoint_name("iris")
        .content_type("application/json")
        .body(Blob::new(iris_samples()))
        .send()
        .await
        .unwrap();

    // Lists and tags of endpoints.
    let listed = sm
        .list_endpoints()
        .name_contains("IRI")
        .status_equals(EndpointStatus::InService)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.endpoints().len(), 1);
    assert_eq!(listed.endpoints()[0].endpoint_name(), Some("iris"));
    let tags = sm
        .list_tags()
        .resource_arn(format!("{ARN}:endpoint/iris"))
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags()[0].value(), Some("iris"));

    // Delete: Deleting, then gone, and its server stopped.
    sm.delete_endpoint()
        .endpoint_name("iris")
        .send()
        .await
        .unwrap();
    let deleting = sm
        .describe_endpoint()
        .endpoint_name("iris")
        .send()
        .await
        .unwrap();
    assert_eq!(deleting.endpoint_status(), Some(&EndpointStatus::Deleting));
    let message = cloud.wait_gone("iris").await;
    assert_eq!(
        message,
        format!("Could not find endpoint \"{ARN}:endpoint/iris\".")
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !cloud.fake.server_pids().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "servers still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stopped means gone, not a zombie: /proc has no command line for it.
    while std::fs::read(format!("/proc/{}/cmdline", pids[0])).is_ok_and(|c| !c.is_empty()) {
        assert!(
            std::time::Instant::now() < deadline,
            "server {} still runs",
            pids[0]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The call log: one CreateEndpoint, two UpdateEndpoints, the invocations.
    let calls = cloud.fake.calls();
    let count = |op: &str| {
        calls
            .iter()
            .filter(|c| c.operation == op && c.status == 200)
            .count()
    };
    assert_eq!(count("CreateEndpoint"), 1);
    assert_eq!(count("UpdateEndpoint"), 2);
    assert_eq!(count("InvokeEndpoint"), 3);
    assert!(calls.iter().any(|c| c.operation == "s3:PUT"));
}

#[tokio::test]
async fn endpoints_fail_like_sagemaker() {
    let cloud = Cloud::with(|c| c.default_startup_timeout = Duration::from_secs(2)).await;
    let sm = cloud.sm();
    // Model data that is not in S3.
    cloud
        .create_model("missing", "s3://models/missing/model.tar.gz")
        .await;
    cloud.create_config("missing", "missing").await;
    sm.create_endpoint()
        .endpoint_name("missing")
        .endpoint_config_name("missing")
        .send()
        .await
        .unwrap();
    let failed = cloud.wait_status("missing", "Failed").await;
    assert_eq!(
        failed.failure_reason(),
        Some(
            "Failed to download model data for container \"container_1\" from URL: \"s3://models/missing/model.tar.gz\". Please ensure that there is an object located at the URL and that the role passed to CreateModel has permissions to download the object."
        )
    );

    // A server that never answers its ping.
    let url = cloud.upload_iris().await;
    cloud.create_model("iris", &url).await;
    cloud.create_config("iris", "iris").await;
    cloud
        .fake
        .inject(Fault::new("CreateEndpoint", FaultKind::ServerNeverReady));
    sm.create_endpoint()
        .endpoint_name("never")
        .endpoint_config_name("iris")
        .send()
        .await
        .unwrap();
    let failed = cloud.wait_status("never", "Failed").await;
    assert_eq!(
        failed.failure_reason(),
        Some(
            "The primary container for production variant AllTraffic did not pass the ping health check. Please check CloudWatch logs for this endpoint."
        )
    );
    assert!(cloud.fake.server_pids().is_empty());
    // A Failed endpoint can be updated, and then serves.
    sm.update_endpoint()
        .endpoint_name("never")
        .endpoint_config_name("iris")
        .send()
        .await
        .unwrap();
    let fixed = cloud.wait_status("never", "InService").await;
    assert!(fixed.failure_reason().is_none());
    sm.delete_endpoint()
        .endpoint_name("never")
        .send()
        .await
        .unwrap();
    cloud.wait_gone("never").await;
}

#[tokio::test]
async fn injected_faults_reach_the_sdk() {
    let cloud = Cloud::start().await;
    let url = "s3://models/nowhere/model.tar.gz";
    cloud.create_model("m", url).await;
    cloud.create_config("c", "m").await;
    let sm = cloud.sm_no_retry().await;

    cloud.fake.inject(Fault::new(
        "CreateEndpoint",
        FaultKind::ResourceLimitExceeded,
    ));
    let err = sm
        .create_endpoint()
        .endpoint_name("e")
        .endpoint_config_name("c")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ResourceLimitExceeded"));
    assert_eq!(
        err.message(),
        Some(
            "The account-level service limit 'ml.m5.large for endpoint usage' is 1 Instances, with current utilization of 1 Instances and a request delta of 1 Instances. Please use AWS Service Quotas to request an increase for this quota."
        )
    );
    cloud.fake.inject(Fault::new("*", FaultKind::Throttling));
    let err = sm
        .describe_model()
        .model_name("m")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(err.message(), Some("Rate exceeded"));
    cloud
        .fake
        .inject(Fault::new("DescribeModel", FaultKind::InternalError));
    let err = sm
        .describe_model()
        .model_name("m")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InternalFailure"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));

    // With the SDK's standard retries, a throttled call succeeds on a retry, and the
    // call log shows both attempts.
    cloud
        .fake
        .inject(Fault::new("DescribeEndpointConfig", FaultKind::Throttling));
    cloud
        .sm()
        .describe_endpoint_config()
        .endpoint_config_name("c")
        .send()
        .await
        .unwrap();
    let statuses: Vec<u16> = cloud
        .fake
        .calls()
        .iter()
        .filter(|c| c.operation == "DescribeEndpointConfig")
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [400, 200]);

    // Faults over HTTP, as the standalone binary takes them.
    let answer = reqwest::Client::new()
        .post(format!("{}/_fake/faults", cloud.fake.url()))
        .body(r#"{"operation": "ListModels", "kind": "Delay", "delay_ms": 200, "times": 2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    for _ in 0..2 {
        sm.list_models().send().await.unwrap();
    }
    let bad = reqwest::Client::new()
        .post(format!("{}/_fake/faults", cloud.fake.url()))
        .body(r#"{"operation": "ListModels", "kind": "Lightning"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let calls = reqwest::get(format!("{}/_fake/calls", cloud.fake.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let calls: Vec<Value> = serde_json::from_str(&calls).unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["operation"] == "ListModels" && c["status"] == 200)
    );
}

#[tokio::test]
async fn s3_requests_pass_through_to_moto() {
    let cloud = Cloud::start().await;
    let s3 = cloud.s3();
    s3.create_bucket().bucket("pass").send().await.unwrap();
    s3.put_object()
        .bucket("pass")
        .key("a/b.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"hello through the fake",
        ))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("pass")
        .key("a/b.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(22));
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], b"hello through the fake");
    let head = s3
        .head_object()
        .bucket("pass")
        .key("a/b.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(22));
    let err = s3
        .get_object()
        .bucket("pass")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_key());
    // moto holds it: a plain GET to moto finds the object.
    let direct = reqwest::Client::new()
        .get(format!("{}/pass/a/b.txt", cloud.moto.url()))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0")
        .send()
        .await
        .unwrap();
    assert_eq!(direct.text().await.unwrap(), "hello through the fake");
    let ops: Vec<String> = cloud
        .fake
        .calls()
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert!(
        ops.contains(&"s3:PUT".to_string()) && ops.contains(&"s3:HEAD".to_string()),
        "{ops:?}"
    );
}

/// A variant of model `model` on one ml.m5.large, with `weight`.
fn variant(name: &str, model: &str, weight: f32) -> ProductionVariant {
    ProductionVariant::builder()
        .variant_name(name)
        .model_name(model)
        .instance_type(ProductionVariantInstanceType::MlM5Large)
        .initial_instance_count(1)
        .initial_variant_weight(weight)
        .build()
}

#[tokio::test]
async fn variants_take_traffic_by_weight_and_target_variant_reaches_any_of_them() {
    let cloud = Cloud::start().await;
    let sm = cloud.sm();
    let url = cloud.upload_iris().await;
    cloud.create_model("iris-a", &url).await;
    cloud.create_model("iris-b", &url).await;

    // A serverless configuration takes one variant only.
    let serverless = |name: &str, model: &str| {
        ProductionVariant::builder()
            .variant_name(name)
            .model_name(model)
            .serverless_config(
                ProductionVariantServerlessConfig::builder()
                    .memory_size_in_mb(2048)
                    .max_concurrency(5)
                    .build(),
            )
    };
    let err = sm
        .create_endpoint_config()
        .endpoint_config_name("both-serverless")
        .production_variants(serverless("a", "iris-a").build())
        .production_variants(serverless("b", "iris-b").build())
        .send()
        .await
        .unwrap_err();
    assert!(
        err.message()
            .is_some_and(|m| m.contains("does not support multiple production variants")),
        "{err:?}"
    );
    // A storage volume only for instance types without instance storage.
    let with_volume = |instance: ProductionVariantInstanceType| {
        ProductionVariant::builder()
            .variant_name("a")
            .model_name("iris-a")
            .instance_type(instance)
            .initial_instance_count(1)
            .volume_size_in_gb(20)
            .build()
    };
    let err = sm
        .create_endpoint_config()
        .endpoint_config_name("nvme-volume")
        .production_variants(with_volume(ProductionVariantInstanceType::MlG5Xlarge))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.message()
            .is_some_and(|m| m.contains("instance type ml.g5.xlarge uses its instance storage")),
        "{err:?}"
    );
    let err = sm
        .create_endpoint_config()
        .endpoint_config_name("serverless-volume")
        .production_variants(serverless("a", "iris-a").volume_size_in_gb(20).build())
        .send()
        .await
        .unwrap_err();
    assert!(
        err.message()
            .is_some_and(|m| m.contains("not supported for serverless")),
        "{err:?}"
    );
    sm.create_endpoint_config()
        .endpoint_config_name("ebs-volume")
        .production_variants(with_volume(ProductionVariantInstanceType::MlM5Large))
        .send()
        .await
        .unwrap();
    let err = sm
        .create_endpoint_config()
        .endpoint_config_name("twice")
        .production_variants(variant("a", "iris-a", 1.0))
        .production_variants(variant("a", "iris-b", 0.0))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.message()
            .is_some_and(|m| m.contains("used more than once"))
    );

    sm.create_endpoint_config()
        .endpoint_config_name("ab")
        .production_variants(variant("a", "iris-a", 1.0))
        .production_variants(variant("b", "iris-b", 0.0))
        .send()
        .await
        .unwrap();
    sm.create_endpoint()
        .endpoint_name("iris")
        .endpoint_config_name("ab")
        .send()
        .await
        .unwrap();
    let ready = cloud.wait_status("iris", "InService").await;
    let weights: Vec<(Option<&str>, Option<f32>)> = ready
        .production_variants()
        .iter()
        .map(|v| (v.variant_name(), v.current_weight()))
        .collect();
    assert_eq!(weights, [(Some("a"), Some(1.0)), (Some("b"), Some(0.0))]);

    let invoke = |target: Option<&'static str>| {
        let runtime = cloud.runtime();
        async move {
            runtime
                .invoke_endpoint()
                .endpoint_name("iris")
                .content_type("application/json")
                .set_target_variant(target.map(str::to_string))
                .body(Blob::new(iris_samples()))
                .send()
                .await
                .unwrap()
                .invoked_production_variant()
                .map(str::to_string)
        }
    };
    // Weight 0 takes no production request, but TargetVariant reaches it.
    for _ in 0..20 {
        assert_eq!(invoke(None).await.as_deref(), Some("a"));
    }
    assert_eq!(invoke(Some("b")).await.as_deref(), Some("b"));

    // Weights move without a new fleet: Updating, then InService with the new weights.
    let pids = cloud.fake.server_pids();
    let err = sm
        .update_endpoint_weights_and_capacities()
        .endpoint_name("iris")
        .desired_weights_and_capacities(
            DesiredWeightAndCapacity::builder()
                .variant_name("c")
                .desired_weight(1.0)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        err.message()
            .is_some_and(|m| m.contains("\"[c]\" is/are not present")),
        "{err:?}"
    );
    sm.update_endpoint_weights_and_capacities()
        .endpoint_name("iris")
        .desired_weights_and_capacities(
            DesiredWeightAndCapacity::builder()
                .variant_name("a")
                .desired_weight(0.0)
                .build(),
        )
        .desired_weights_and_capacities(
            DesiredWeightAndCapacity::builder()
                .variant_name("b")
                .desired_weight(1.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let updating = sm
        .describe_endpoint()
        .endpoint_name("iris")
        .send()
        .await
        .unwrap();
    assert_eq!(updating.endpoint_status(), Some(&EndpointStatus::Updating));
    let b = &updating.production_variants()[1];
    assert_eq!(
        (b.current_weight(), b.desired_weight()),
        (Some(0.0), Some(1.0))
    );
    // Production still reaches the old variant while the weights are Updating.
    assert_eq!(invoke(None).await.as_deref(), Some("a"));
    let done = cloud.wait_status("iris", "InService").await;
    let b = &done.production_variants()[1];
    assert_eq!(
        (b.current_weight(), b.desired_weight()),
        (Some(1.0), Some(1.0))
    );
    for _ in 0..20 {
        assert_eq!(invoke(None).await.as_deref(), Some("b"));
    }
    assert_eq!(cloud.fake.server_pids(), pids, "no new fleet");

    // Every invocation is logged with what was asked and what answered.
    let log = cloud.fake.invocations();
    let targeted: Vec<_> = log.iter().filter(|i| i.target_variant.is_some()).collect();
    assert_eq!(targeted.len(), 1);
    assert_eq!(targeted[0].variant.as_deref(), Some("b"));
    assert!(log.iter().all(|i| {
        i.digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:"))
    }));
    let calls = cloud.fake.calls();
    let weights_call = calls
        .iter()
        .position(|c| c.operation == "UpdateEndpointWeightsAndCapacities" && c.status == 200)
        .unwrap();
    assert!(
        log.iter()
            .filter(|i| i.target_variant.is_none() && i.seq < weights_call)
            .all(|i| i.variant.as_deref() == Some("a"))
    );

    // A container answer stripped of its identity, once.
    cloud
        .fake
        .inject(Fault::new("InvokeEndpoint", FaultKind::DropIdentity));
    let out = cloud
        .runtime()
        .invoke_endpoint()
        .endpoint_name("iris")
        .content_type("application/json")
        .body(Blob::new(iris_samples()))
        .send()
        .await
        .unwrap();
    assert!(out.custom_attributes().is_none());
    assert!(cloud.fake.invocations().last().unwrap().digest.is_some());
    sm.delete_endpoint()
        .endpoint_name("iris")
        .send()
        .await
        .unwrap();
    cloud.wait_gone("iris").await;
}
