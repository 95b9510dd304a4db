//! The strict Vertex AI fake, driven with plain JSON calls shaped like the
//! official crate's (camelCase bodies, `$alt=json;enum-encoding=int`, operations
//! polled at `/ui/{name}`): request checks against the discovery document,
//! operation lifecycles, a real `modelport serve` behind deployModel and predict,
//! and injected faults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modelport_testkit::vertex::{FakeVertex, Fault, FaultKind, VertexConfig};
use serde_json::{Value, json};

const PARENT: &str = "projects/modelport-test/locations/us-central1";
const ALT: &str = "%24alt=json%3Benum-encoding%3Dint";
const IRIS_ROW: &str = r#"{"instances": [[5.1, 3.5, 1.4, 0.2]]}"#;

struct Harness {
    fake: FakeVertex,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    iris: PathBuf,
}

impl Harness {
    fn start(adjust: impl FnOnce(&mut VertexConfig)) -> Harness {
        let server = modelport_testkit::modelport_exe().expect("the modelport binary is needed");
        let mut config = VertexConfig::new(server);
        config.operation_delay = Duration::from_millis(300);
        adjust(&mut config);
        let fake = FakeVertex::start(config).expect("the fake starts");
        let dir = tempfile::tempdir().unwrap();
        let iris = iris_dir(dir.path());
        Harness {
            fake,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _dir: dir,
            iris,
        }
    }

    /// A JSON call at `/v1/{path}`; returns the status and the body.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}/v1/{path}{sep}{ALT}", self.fake.url());
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Polls an operation at `/ui/{name}` (as the official crate does) until
    /// done; returns it and the deployment stages seen, in order, without repeats.
    async fn wait(&self, op: &Value) -> (Value, Vec<Value>) {
        let name = op["name"].as_str().expect("an operation name").to_string();
        let mut stages: Vec<Value> = Vec::new();
        let mut seen = |op: &Value| {
            if let Some(s) = op["metadata"]
                .get("deploymentStage")
                .filter(|s| stages.last() != Some(*s))
            {
                stages.push(s.clone());
            }
        };
        seen(op);
        loop {
            let url = format!("{}/ui/{name}?{ALT}", self.fake.url());
            let resp = self.http.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let op: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            seen(&op);
            if op["done"] == json!(true) {
                return (op, stages);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn upload(&self, labels: Value) -> String {
        let (status, op) = self
            .post(
                &format!("{PARENT}/models:upload"),
                json!({"model": {
                    "displayName": "iris",
                    "artifactUri": self.iris.display().to_string(),
                    "labels": labels,
                    "containerSpec": {
                        "imageUri": "us-central1-docker.pkg.dev/p/r/modelport:0.1.0",
                        "args": ["serve"],
                        "env": [{"name": "MODELPORT_WORKERS", "value": "1"}],
                        "ports": [{"containerPort": 8080}],
                    },
                }}),
            )
            .await;
        assert_eq!(status, 200, "{op}");
        let (done, _) = self.wait(&op).await;
        done["response"]["model"].as_str().unwrap().to_string()
    }

    async fn create_endpoint(&self, labels: Value) -> String {
        let (status, op) = self
            .post(
                &format!("{PARENT}/endpoints"),
                json!({"displayName": "iris", "labels": labels}),
            )
            .await;
        assert_eq!(status, 200, "{op}");
        let (done, _) = self.wait(&op).await;
        done["response"]["name"].as_str().unwrap().to_string()
    }

    /// Starts a deployModel and returns its operation.
    async fn deploy(&self, endpoint: &str, model: &str, split: Value) -> (u16, Value) {
        self.post(
            &format!("{endpoint}:deployModel"),
            json!({
                "deployedModel": {
                    "model": model,
                    "displayName": "iris",
                    "dedicatedResources": {
                        "machineSpec": {"machineType": "n1-standard-2"},
                        "minReplicaCount": 1,
                        "maxReplicaCount": 1,
                    },
                },
                "trafficSplit": split,
            }),
        )
        .await
    }
}

/// `examples/iris/model.onnx`, packaged and unpacked into a directory, as
/// Vertex would hand the container its model files.
fn iris_dir(dir: &Path) -> PathBuf {
    let model = modelport_testkit::repo_root().join("examples/iris/model.onnx");
    let artifact =
        modelport_package::package(&model, dir, &modelport_package::PackageOptions::default())
            .unwrap();
    let manifest = modelport_package::read_manifest(&artifact.path).unwrap();
    let ws = modelport_core::state::Workspace::new(dir.join("ws"));
    modelport_local::unpack_model(&ws, &artifact.path, &manifest.digest())
        .unwrap()
        .0
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_are_checked_against_the_discovery_document() {
    let h = Harness::start(|_| {});
    let upload = format!("{PARENT}/models:upload");
    let container = json!({"imageUri": "img"});
    let cases = [
        (
            json!({"model": {"displayName": "m", "containerSpec": container, "x": 1}}),
            "Invalid JSON payload received. Unknown name \"x\" at 'model': Cannot find field.",
        ),
        (
            json!({"model": {"displayName": "m", "containerSpec": {"imageUri": "i", "healthroute": "/h"}}}),
            "Invalid JSON payload received. Unknown name \"healthroute\" at 'model.container_spec': Cannot find field.",
        ),
        (
            json!({"modle": {}}),
            "Invalid JSON payload received. Unknown name \"modle\": Cannot find field.",
        ),
        (
            json!({"model": {"containerSpec": container}}),
            "List of found errors:\t1.Field: model.display_name; Message: Required field is not set.\t",
        ),
        (
            json!({"model": {"displayName": "m", "containerSpec": {"env": [{"name": "A"}]}}}),
            "List of found errors:\t1.Field: model.container_spec.env[0].value; Message: Required field is not set.\t2.Field: model.container_spec.image_uri; Message: Required field is not set.\t",
        ),
        (
            json!({"model": {"displayName": 7, "containerSpec": container}}),
            "Invalid JSON payload received. Invalid value at 'model.display_name' (TYPE_STRING), 7",
        ),
        (
            json!({"model": {"displayName": "m", "containerSpec": container, "labels": {"a": 1}}}),
            "Invalid JSON payload received. Invalid value at 'model.labels[a]' (TYPE_STRING), 1",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = h.post(&upload, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{answer}");
        assert_eq!(answer["error"]["code"], 400);
        assert_eq!(message(&answer), expected, "{body}");
    }

    // Enums: names and proto numbers are taken, other names are not; snake_case
    // names are accepted like Google's JSON parser does.
    let endpoint = h.create_endpoint(json!({})).await;
    let model = h.upload(json!({})).await;
    let deploy = |accel: Value| {
        json!({"deployed_model": {
            "model": model,
            "dedicatedResources": {
                "machineSpec": {"machineType": "n1-standard-4", "acceleratorType": accel, "acceleratorCount": 1},
                "minReplicaCount": "1",
            },
        }})
    };
    let (status, answer) = h
        .post(
            &format!("{endpoint}:deployModel"),
            deploy(json!("NVIDIA_TESLA_X9")),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        message(&answer),
        "Invalid JSON payload received. Invalid value at \
         'deployed_model.dedicated_resources.machine_spec.accelerator_type' (TYPE_ENUM), \"NVIDIA_TESLA_X9\""
    );
    for accel in [json!("NVIDIA_TESLA_T4"), json!(5)] {
        h.fake.inject(Fault::new(
            "endpoints.deployModel",
            FaultKind::QuotaExceeded,
        ));
        let (status, answer) = h
            .post(&format!("{endpoint}:deployModel"), deploy(accel.clone()))
            .await;
        // The body passed the checks; the injected quota fault answers.
        assert_eq!(status, 429, "{accel}: {answer}");
    }
    let (status, answer) = h
        .post(
            &format!("{endpoint}:deployModel"),
            json!({"deployedModel": {"model": model, "dedicatedResources": {"machineSpec": {"machineType": "n1-standard-2"}, "minReplicaCount": 1, "maxReplicaCount": "two"}}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        message(&answer),
        "Invalid JSON payload received. Invalid value at \
         'deployed_model.dedicated_resources.max_replica_count' (TYPE_INT32), \"two\""
    );
    // Vertex's own rules after the schema: replicas and traffic percentages.
    let (status, answer) = h.deploy(&endpoint, &model, json!({"0": 60})).await;
    assert_eq!(status, 400);
    assert_eq!(
        message(&answer),
        "The traffic split percentages must add up to 100, got 60."
    );
    let (status, answer) = h
        .post(&format!("{endpoint}:predict"), json!({"parameters": {}}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        message(&answer),
        "List of found errors:\t1.Field: instances; Message: Required field is not set.\t"
    );
    let (status, answer) = h.get(&format!("{PARENT}/models/404")).await;
    assert_eq!(status, 404);
    assert_eq!(answer["error"]["status"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_is_uploaded_deployed_served_split_undeployed_and_deleted() {
    let h = Harness::start(|_| {});
    let labels = json!({"modelport-deployment": "iris", "modelport-digest": "abc123"});

    // models:upload is an operation nested under the model; the model appears
    // when it is done.
    let (status, op) = h
        .post(
            &format!("{PARENT}/models:upload"),
            json!({"model": {"displayName": "iris", "artifactUri": h.iris.display().to_string(),
                   "labels": labels, "containerSpec": {"imageUri": "img"}}}),
        )
        .await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["done"], false);
    assert_eq!(
        op["metadata"]["@type"],
        "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelOperationMetadata"
    );
    let op_name = op["name"].as_str().unwrap();
    assert!(op_name.starts_with(&format!("{PARENT}/models/")) && op_name.contains("/operations/"));
    let (done, _) = h.wait(&op).await;
    assert_eq!(
        done["response"]["@type"],
        "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse"
    );
    let model = done["response"]["model"].as_str().unwrap().to_string();
    // The operation is also served at /v1/{name}.
    let (status, again) = h.get(op_name).await;
    assert_eq!((status, &again["done"]), (200, &json!(true)));
    let (status, got) = h.get(&model).await;
    assert_eq!(status, 200);
    assert_eq!(got["labels"], labels);
    assert_eq!(got["containerSpec"]["imageUri"], "img");

    // Lists filter by label.
    let (_, listed) = h
        .get(&format!(
            "{PARENT}/models?filter=labels.modelport-deployment%3Diris"
        ))
        .await;
    assert_eq!(listed["models"].as_array().map(Vec::len), Some(1));
    let (_, listed) = h
        .get(&format!(
            "{PARENT}/models?filter=labels.modelport-deployment%3D%22other%22"
        ))
        .await;
    assert_eq!(listed, json!({}));

    let endpoint = h.create_endpoint(labels.clone()).await;
    let (_, listed) = h
        .get(&format!(
            "{PARENT}/endpoints?filter=labels.modelport-digest%3Dabc123"
        ))
        .await;
    assert_eq!(listed["endpoints"][0]["name"], json!(endpoint));

    // deployModel: the stages advance, then the server answers its health route.
    let (status, op) = h.deploy(&endpoint, &model, json!({"0": 100})).await;
    assert_eq!(status, 200, "{op}");
    assert!(
        op["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{endpoint}/operations/"))
    );
    // The integer enum encoding the crate asks for: PREPARING_MODEL is 6.
    assert_eq!(op["metadata"]["deploymentStage"], 6);
    let (done, stages) = h.wait(&op).await;
    assert!(done.get("error").is_none(), "{done}");
    assert_eq!(stages.first(), Some(&json!(6)), "{stages:?}");
    let order = [6, 3, 4];
    let positions: Vec<usize> = stages
        .iter()
        .map(|s| {
            order
                .iter()
                .position(|o| json!(o) == *s)
                .expect("a known stage")
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{stages:?}");
    let first = done["response"]["deployedModel"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(h.fake.server_pids().len(), 1);

    let (_, ep) = h.get(&endpoint).await;
    assert_eq!(ep["trafficSplit"], json!({ &first: 100 }));
    assert_eq!(ep["deployedModels"][0]["model"], json!(model));
    let (_, got) = h.get(&model).await;
    assert_eq!(got["deployedModels"][0]["deployedModelId"], json!(first));

    // predict through the real server.
    let (status, answer) = h
        .post(
            &format!("{endpoint}:predict"),
            serde_json::from_str(IRIS_ROW).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["predictions"][0]["output_label"], 0);
    assert_eq!(answer["deployedModelId"], json!(first));
    assert_eq!(answer["model"], json!(model));
    assert_eq!(answer["modelVersionId"], "1");

    // rawPredict passes the body through and names the deployed model in a header.
    let resp = h
        .http
        .post(format!("{}/v1/{endpoint}:rawPredict", h.fake.url()))
        .header("content-type", "application/json")
        .body(IRIS_ROW)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-vertex-ai-deployed-model-id"]
            .to_str()
            .unwrap(),
        first
    );
    let raw: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(raw["predictions"][0]["output_label"], 0);
    assert!(raw.get("deployedModelId").is_none());

    // The endpoint cannot be deleted while a model is deployed, nor the model.
    let (status, answer) = h.delete(&endpoint).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["status"], "FAILED_PRECONDITION");
    let (status, answer) = h.delete(&model).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["status"], "FAILED_PRECONDITION");

    // A second model with 0 % traffic (a canary), then a 90/10 split decided by
    // a counter: 10 of every 100 predictions reach the new one.
    let (status, op) = h
        .deploy(&endpoint, &model, json!({"0": 0, &first: 100}))
        .await;
    assert_eq!(status, 200, "{op}");
    let (done, _) = h.wait(&op).await;
    let second = done["response"]["deployedModel"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, ep) = h.get(&endpoint).await;
    assert_eq!(ep["trafficSplit"], json!({ &first: 100 }));
    let resp = h
        .http
        .patch(format!(
            "{}/v1/{endpoint}?updateMask=traffic_split&{ALT}",
            h.fake.url()
        ))
        .body(json!({"trafficSplit": {&first: 90, &second: 10}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut by_model = std::collections::HashMap::<String, u32>::new();
    for _ in 0..100 {
        let (status, answer) = h
            .post(
                &format!("{endpoint}:predict"),
                serde_json::from_str(IRIS_ROW).unwrap(),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        *by_model
            .entry(answer["deployedModelId"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(by_model.get(&first), Some(&90));
    assert_eq!(by_model.get(&second), Some(&10));

    // Undeploying a model that receives traffic needs a split for the rest.
    let (status, answer) = h
        .post(
            &format!("{endpoint}:undeployModel"),
            json!({"deployedModelId": first}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["status"], "FAILED_PRECONDITION");
    let (status, op) = h
        .post(
            &format!("{endpoint}:undeployModel"),
            json!({"deployedModelId": first, "trafficSplit": {&second: 100}}),
        )
        .await;
    assert_eq!(status, 200, "{op}");
    let (done, _) = h.wait(&op).await;
    assert!(done.get("error").is_none(), "{done}");
    let (_, ep) = h.get(&endpoint).await;
    assert_eq!(ep["trafficSplit"], json!({ &second: 100 }));
    assert_eq!(ep["deployedModels"].as_array().map(Vec::len), Some(1));
    assert_eq!(h.fake.server_pids().len(), 1);
    let (status, op) = h
        .post(
            &format!("{endpoint}:undeployModel"),
            json!({"deployedModelId": second}),
        )
        .await;
    assert_eq!(status, 200, "{op}");
    h.wait(&op).await;
    assert!(h.fake.server_pids().is_empty());
    let (status, answer) = h
        .post(
            &format!("{endpoint}:predict"),
            serde_json::from_str(IRIS_ROW).unwrap(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");

    // Now both go.
    let (status, op) = h.delete(&endpoint).await;
    assert_eq!(status, 200, "{op}");
    h.wait(&op).await;
    let (status, _) = h.get(&endpoint).await;
    assert_eq!(status, 404);
    let (status, op) = h.delete(&model).await;
    assert_eq!(status, 200, "{op}");
    h.wait(&op).await;
    let (_, listed) = h
        .get(&format!(
            "{PARENT}/models?filter=labels.modelport-deployment%3Diris"
        ))
        .await;
    assert_eq!(listed, json!({}));

    let calls = h.fake.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.method == "endpoints.deployModel" && c.status == 200)
    );
    assert!(calls.iter().any(|c| c.method == "operations.get"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_answer_like_vertex() {
    let h = Harness::start(|c| c.startup_timeout = Duration::from_millis(1500));
    let model = h.upload(json!({})).await;
    let endpoint = h.create_endpoint(json!({})).await;

    // Quota: deployModel is refused at once.
    h.fake.inject(Fault::new(
        "endpoints.deployModel",
        FaultKind::QuotaExceeded,
    ));
    let (status, answer) = h.deploy(&endpoint, &model, json!({})).await;
    assert_eq!(status, 429);
    assert_eq!(answer["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(
        message(&answer).starts_with(
            "The following quota metrics exceed quota limits: \
             aiplatform.googleapis.com/custom_model_serving_cpus"
        ),
        "{answer}"
    );

    // A server that never becomes ready fails the operation, through the fake's
    // HTTP API this time.
    let resp = h
        .http
        .post(format!("{}/_fake/faults", h.fake.url()))
        .body(r#"{"method": "endpoints.deployModel", "kind": "ServerNeverReady"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, op) = h.deploy(&endpoint, &model, json!({})).await;
    assert_eq!(status, 200);
    // While a model is being deployed the endpoint cannot be deleted (the
    // deployment takes at least the operation delay plus the startup timeout).
    let (status, answer) = h.delete(&endpoint).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["status"], "FAILED_PRECONDITION");
    let (done, _) = h.wait(&op).await;
    assert_eq!(done["error"]["code"], 9, "{done}");
    assert!(
        done["error"]["message"].as_str().unwrap().starts_with(
            "Model server never became ready. Please validate that your model file or \
             container configuration are valid."
        ),
        "{done}"
    );
    let (_, ep) = h.get(&endpoint).await;
    assert!(ep.get("deployedModels").is_none(), "{ep}");
    assert!(h.fake.server_pids().is_empty());

    // A real deployment with an empty split: as the discovery document says, the
    // endpoint's split is not updated, so the endpoint takes no traffic at all until
    // a split names the model.
    let (_, op) = h.deploy(&endpoint, &model, json!({})).await;
    let (done, _) = h.wait(&op).await;
    assert!(done.get("error").is_none(), "{done}");
    let id = done["response"]["deployedModel"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, ep) = h.get(&endpoint).await;
    assert!(ep.get("trafficSplit").is_none(), "{ep}");
    let (status, answer) = h
        .post(
            &format!("{endpoint}:predict"),
            serde_json::from_str(IRIS_ROW).unwrap(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["status"], "FAILED_PRECONDITION");
    let resp = h
        .http
        .patch(format!(
            "{}/v1/{endpoint}?updateMask=traffic_split&{ALT}",
            h.fake.url()
        ))
        .body(json!({"trafficSplit": {&id: 100}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // An answer that names another deployed model, once.
    h.fake
        .inject(Fault::new("endpoints.predict", FaultKind::ForeignAnswer));
    let (status, answer) = h
        .post(
            &format!("{endpoint}:predict"),
            serde_json::from_str(IRIS_ROW).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["deployedModelId"], json!(id), "{answer}");
    assert!(
        answer.get("__modelportFakeAnsweredBy").is_none(),
        "{answer}"
    );
    let logged = h.fake.predictions();
    assert_eq!(logged.last().unwrap().deployed_model_id, id, "{logged:?}");
    // Then 429s on predict, twice.
    h.fake
        .inject(Fault::new("endpoints.predict", FaultKind::TooManyRequests).times(2));
    for _ in 0..2 {
        let (status, answer) = h
            .post(
                &format!("{endpoint}:predict"),
                serde_json::from_str(IRIS_ROW).unwrap(),
            )
            .await;
        assert_eq!(status, 429);
        assert_eq!(answer["error"]["status"], "RESOURCE_EXHAUSTED");
    }
    let (status, _) = h
        .post(
            &format!("{endpoint}:predict"),
            serde_json::from_str(IRIS_ROW).unwrap(),
        )
        .await;
    assert_eq!(status, 200);

    // What the fake does not implement says so.
    let (status, answer) = h
        .post(
            &format!("{endpoint}:mutateDeployedModel"),
            json!({"deployedModel": {"id": "1"}, "updateMask": "dedicatedResources"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["status"].as_str()),
        (501, Some("UNIMPLEMENTED"))
    );
    let (status, _) = h.get(&format!("{PARENT}/featurestores")).await;
    assert_eq!(status, 404);

    // The call log, also over HTTP.
    let log = h
        .http
        .get(format!("{}/_fake/calls", h.fake.url()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let log: Value = serde_json::from_slice(&log).unwrap();
    let statuses: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["method"] == "endpoints.predict")
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    // No traffic yet, the foreign answer, the two 429s, then an answer.
    assert_eq!(statuses, vec![400, 200, 429, 429, 200]);
}

/// Every file under `dir`, as (path relative to `dir` with `/`, bytes).
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gs_artifacts_are_fetched_by_the_server_from_the_gcs_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let iris = iris_dir(dir.path());
    let gcs = modelport_testkit::FakeGcs::start().unwrap();
    gcs.create_bucket("models").unwrap();
    let mut objects: Vec<(String, Vec<u8>)> = files_under(&iris)
        .into_iter()
        .map(|(rel, b)| (format!("iris/v1/{rel}"), b))
        .collect();
    // A sibling prefix that must not be read.
    objects.push(("iris/v10/model.onnx".into(), b"not a model".to_vec()));
    let http = reqwest::Client::new();
    for (name, bytes) in objects {
        let r = http
            .post(format!(
                "{}/upload/storage/v1/b/models/o?uploadType=media&name={}",
                gcs.url(),
                modelport_testkit::gcs::encode(&name)
            ))
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{name}: {}", r.status());
    }
    let h = Harness::start(|c| c.gcs_upstream = Some(gcs.url()));
    let endpoint = h.create_endpoint(json!({})).await;
    for (uri, ok) in [
        ("gs://models/iris/v1", true),
        ("gs://models/iris/none", false),
    ] {
        let (status, op) = h
            .post(
                &format!("{PARENT}/models:upload"),
                json!({"model": {"displayName": "iris", "artifactUri": uri,
                       "containerSpec": {"imageUri": "img"}}}),
            )
            .await;
        assert_eq!(status, 200, "{op}");
        let (done, _) = h.wait(&op).await;
        let model = done["response"]["model"].as_str().unwrap().to_string();
        let (_, op) = h.deploy(&endpoint, &model, json!({"0": 100})).await;
        let (done, _) = h.wait(&op).await;
        if ok {
            assert!(done.get("error").is_none(), "{done}");
            let (status, answer) = h
                .post(
                    &format!("{endpoint}:predict"),
                    serde_json::from_str(IRIS_ROW).unwrap(),
                )
                .await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["predictions"][0]["output_label"], 0);
        } else {
            assert_eq!(done["error"]["code"], 9, "{done}");
            assert!(
                done["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("gs://models/iris/none"),
                "{done}"
            );
        }
    }
    drop(h);
}
