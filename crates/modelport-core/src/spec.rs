//! The deployment spec: what `modelport.yaml` asks for, read, checked and explained.
//!
//! The file is parsed in two passes. The first reads it as plain YAML, so a syntax
//! error is reported as such and an empty file gets its own message. The second
//! deserializes it into [`DeploymentSpec`] through `serde_path_to_error`, so a wrong
//! key or value is reported with its field path (`verify.atol`) and serde_yaml's
//! line and column. Every struct denies unknown fields, because a misspelt key that
//! is silently ignored deploys something other than what the user wrote.
//!
//! Rules that serde cannot express (ranges, combinations, name syntax) are checked
//! after parsing by [`DeploymentSpec::validate`]. Those errors carry a field path
//! too, and a small indentation-based locator finds the key in the text to give
//! them a line and column.
//!
//! Errors suggest the nearest valid key or value, because most mistakes in a
//! config file are typos.
//!
//! Relative paths in the file (`model.path`, `verify.samples`) are relative to the
//! directory of the file, not to the working directory, so a spec means the same
//! thing wherever the CLI is started from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file name `modelport` looks for when no `-f` is given.
pub const DEFAULT_FILE_NAME: &str = "modelport.yaml";

/// The starter file `modelport init` writes, with `{{name}}` and `{{model_path}}`
/// placeholders; fill them with [`render_template`].
pub const INIT_TEMPLATE: &str = include_str!("../../../templates/modelport.yaml");

/// The AWS instance type used when `compute.instance_type` is not set.
pub const DEFAULT_INSTANCE_TYPE: &str = "ml.m5.large";

/// The Google Cloud machine type used when `compute.machine_type` is not set.
pub const DEFAULT_MACHINE_TYPE: &str = "n1-standard-2";

/// The memory sizes, in MB, a SageMaker serverless endpoint accepts.
pub const SERVERLESS_MEMORY_MB: [u32; 6] = [1024, 2048, 3072, 4096, 5120, 6144];

/// The most concurrent invocations a SageMaker serverless endpoint accepts.
pub const SERVERLESS_MAX_CONCURRENCY: u32 = 200;

/// SageMaker's real-time payload limit, the default `serving.max_body_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 6_291_456;

/// Vertex AI's request limit on shared public endpoints (1.5 MB).
pub const VERTEX_PUBLIC_MAX_BODY_BYTES: u64 = 1_500_000;

/// The longest deployment name, SageMaker's limit for endpoint names.
pub const MAX_NAME_LEN: usize = 63;

/// The range SageMaker accepts for the container startup and model download windows.
pub const TIMEOUT_RANGE_S: std::ops::RangeInclusive<u32> = 60..=3600;

/// The download and start-up windows for a model whose package weighs `bytes`,
/// used where `compute.model_download_timeout_s` and `compute.startup_timeout_s`
/// are not set: `None` up to [`DIR_LAYOUT_ABOVE_BYTES`] (the platforms' defaults
/// fit a model that size), then 600 s plus the time to fetch the bytes at 20 MB/s
/// (download) and to read them at 50 MB/s (start-up), each at most 3600 s.
pub fn derived_windows(bytes: u64) -> Option<Windows> {
    if bytes <= DIR_LAYOUT_ABOVE_BYTES {
        return None;
    }
    let window =
        |rate: u64| (600 + bytes.div_ceil(rate)).min(u64::from(*TIMEOUT_RANGE_S.end())) as u32;
    Some(Windows {
        download_s: window(20_000_000),
        startup_s: window(50_000_000),
    })
}

/// The sizes SageMaker accepts for a hosting instance's ML storage volume, GB
/// (`ProductionVariant.VolumeSizeInGB`).
pub const VOLUME_RANGE_GB: std::ops::RangeInclusive<u32> = 1..=512;

/// Space beyond the model's files that a serving instance's volume keeps free: the
/// container's scratch files and logs.
pub const VOLUME_HEADROOM_BYTES: u64 = 4 << 30;

/// Bytes a model takes on the disk of the machine that serves it: its files, plus
/// the archive they came in when there is one (the platform downloads the archive
/// and unpacks it beside itself).
pub fn disk_bytes(file_bytes: u64, archive_bytes: Option<u64>) -> u64 {
    file_bytes + archive_bytes.unwrap_or(0)
}

/// The storage volume, in GiB, for a model whose files weigh `model_bytes` and take
/// `disk` bytes on the instance, used where `compute.volume_size_gb` is not set:
/// `None` up to [`DIR_LAYOUT_ABOVE_BYTES`] (the platform's default volume holds a
/// model that size), then a quarter more than `disk` plus [`VOLUME_HEADROOM_BYTES`],
/// rounded up. The caller checks it against [`VOLUME_RANGE_GB`]: a model that needs
/// more has to run on a machine with instance storage.
pub fn derived_volume_gb(model_bytes: u64, disk: u64) -> Option<u64> {
    if model_bytes <= DIR_LAYOUT_ABOVE_BYTES {
        return None;
    }
    Some((disk + disk / 4 + VOLUME_HEADROOM_BYTES).div_ceil(1 << 30))
}

/// How long a platform may take to fetch a model and to start serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Windows {
    pub download_s: u32,
    pub startup_s: u32,
}

// ---------------------------------------------------------------------------------
// Deployment name
// ---------------------------------------------------------------------------------

/// A deployment name that every supported platform accepts.
///
/// The rule is SageMaker's, the strictest of the platforms: 1 to 63 ASCII letters,
/// digits and hyphens, starting and ending with a letter or digit
/// (`[a-zA-Z0-9](-*[a-zA-Z0-9])*`). A value of this type always satisfies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeploymentName(String);

impl DeploymentName {
    /// Checks `name` against the rule; the error explains what is wrong and what is allowed.
    pub fn new(name: impl Into<String>) -> Result<DeploymentName, String> {
        let name = name.into();
        let len = name.chars().count();
        let problem = if name.is_empty() {
            "it is empty".to_owned()
        } else if len > MAX_NAME_LEN {
            format!("it is {len} characters long")
        } else if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            format!("it contains `{c}`")
        } else if name.starts_with('-') {
            "it starts with `-`".to_owned()
        } else if name.ends_with('-') {
            "it ends with `-`".to_owned()
        } else {
            return Ok(DeploymentName(name));
        };
        Err(format!(
            "invalid deployment name `{name}`: {problem}; a name is 1 to {MAX_NAME_LEN} letters, \
             digits and hyphens, starting and ending with a letter or digit"
        ))
    }

    /// The nearest valid name: lowercased, other characters replaced by `-`, runs of `-`
    /// collapsed, cut to 63 characters. `None` when `raw` has no letter or digit at all.
    pub fn sanitize(raw: &str) -> Option<DeploymentName> {
        let mut out = String::with_capacity(raw.len());
        for c in raw.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        // Only ASCII is pushed, so byte and character lengths agree.
        out.truncate(MAX_NAME_LEN);
        while out.ends_with('-') {
            out.pop();
        }
        DeploymentName::new(out).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeploymentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DeploymentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeploymentName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeploymentName::new(s)
    }
}

impl TryFrom<String> for DeploymentName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        DeploymentName::new(s)
    }
}

impl From<DeploymentName> for String {
    fn from(name: DeploymentName) -> String {
        name.0
    }
}

// ---------------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------------

/// Everything `modelport.yaml` says about one deployment.
///
/// Only `name` and `model` are required; every other section has defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// The deployment name; cloud resource names are derived from it.
    pub name: DeploymentName,
    /// The model to deploy.
    pub model: ModelSpec,
    /// Settings per provider; `--provider` on the command line picks one.
    #[serde(default)]
    pub provider: ProviderSettings,
    /// What the endpoint runs on.
    #[serde(default)]
    pub compute: ComputeSpec,
    /// How the serving container behaves.
    #[serde(default)]
    pub serving: ServingSpec,
    /// How `modelport compare` checks the endpoint against the local reference.
    #[serde(default)]
    pub verify: VerifySpec,
    /// The file the spec was read from. Not part of the spec's content (it is neither
    /// read from the YAML nor in [`DeploymentSpec::canonical_json`]); relative paths
    /// resolve against its directory.
    #[serde(skip)]
    pub file: PathBuf,
}

/// The model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The model file, relative to the directory of `modelport.yaml`. Required.
    pub path: PathBuf,
    /// The model format. Default: `onnx`, the only one for now.
    #[serde(default)]
    pub format: ModelFormat,
    /// Compress the model before packaging it; the endpoint is then proved against
    /// the original, uncompressed model within the gate's goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<CompressSpec>,
    /// How the packaged model is laid out: `archive` (one `model.tar.gz`), `dir`
    /// (the model's files and their manifest, uncompressed) or `auto` (`dir` when
    /// the model's files weigh more than [`DIR_LAYOUT_ABOVE_BYTES`], except on a
    /// SageMaker serverless endpoint, which reads archives only). Default: `auto`.
    #[serde(default, skip_serializing_if = "LayoutChoice::is_auto")]
    pub layout: LayoutChoice,
}

/// Above this many bytes of model files, `model.layout: auto` packages a directory.
pub const DIR_LAYOUT_ABOVE_BYTES: u64 = 512_000_000;

/// How a packaged model is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactLayout {
    /// One deterministic `model.tar.gz`, the manifest first.
    Archive,
    /// The model's files as they are plus `modelport.json`, not compressed: what
    /// large models need (their weights do not compress, and unpacking gigabytes
    /// on the instance takes minutes).
    Dir,
}

impl ArtifactLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactLayout::Archive => "archive",
            ArtifactLayout::Dir => "dir",
        }
    }
}

impl fmt::Display for ArtifactLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `model.layout` and `package --layout`: a layout, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutChoice {
    #[default]
    Auto,
    Archive,
    Dir,
}

impl LayoutChoice {
    pub fn is_auto(&self) -> bool {
        *self == LayoutChoice::Auto
    }

    /// The layout for a model whose files weigh `model_bytes`; `archive_only` when
    /// the target reads nothing else (then `auto` never picks `dir`).
    pub fn resolve(self, model_bytes: u64, archive_only: bool) -> ArtifactLayout {
        match self {
            LayoutChoice::Archive => ArtifactLayout::Archive,
            LayoutChoice::Dir => ArtifactLayout::Dir,
            LayoutChoice::Auto if !archive_only && model_bytes > DIR_LAYOUT_ABOVE_BYTES => {
                ArtifactLayout::Dir
            }
            LayoutChoice::Auto => ArtifactLayout::Archive,
        }
    }
}

impl FromStr for LayoutChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(LayoutChoice::Auto),
            "archive" => Ok(LayoutChoice::Archive),
            "dir" => Ok(LayoutChoice::Dir),
            other => Err(format!(
                "`{other}` is not a layout: use `auto`, `archive` or `dir`"
            )),
        }
    }
}

/// `model.compress`: what `modelport compress` does, as part of a deploy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressSpec {
    /// `fp16`, `int8` (weight-only) or `int8-dynamic`; absent with `prune` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<CompressTo>,
    /// One scale per output channel (int8, int8-dynamic).
    #[serde(default, skip_serializing_if = "is_false")]
    pub per_channel: bool,
    /// Zero this fraction of each weight, smallest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<f64>,
    /// Node names or operator types left as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// The goal, metric by metric, as `--max-degradation` writes it:
    /// `{agreement: 1%, accuracy: 0.01, max_abs: 0.05, sqnr: 30}`. Default: agreement 1%.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_degradation: BTreeMap<String, GoalBound>,
    /// Leave the costliest nodes uncompressed until the goal is met.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto: bool,
    /// The gate's inputs, optionally labelled (default: `verify.samples`, else generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<PathBuf>,
}

impl CompressSpec {
    /// The goals as `--max-degradation` writes them: `agreement=1%`.
    pub fn goals(&self) -> Vec<String> {
        self.max_degradation
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// What `model.compress.to` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CompressTo {
    #[serde(rename = "fp16")]
    Fp16,
    #[serde(rename = "int8")]
    Int8,
    #[serde(rename = "int8-dynamic")]
    Int8Dynamic,
}

impl CompressTo {
    pub const ALL: [CompressTo; 3] = [CompressTo::Fp16, CompressTo::Int8, CompressTo::Int8Dynamic];

    pub fn as_str(self) -> &'static str {
        match self {
            CompressTo::Fp16 => "fp16",
            CompressTo::Int8 => "int8",
            CompressTo::Int8Dynamic => "int8-dynamic",
        }
    }
}

impl fmt::Display for CompressTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompressTo {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<CompressTo, String> {
        CompressTo::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not one of fp16, int8, int8-dynamic"))
    }
}

/// A bound in `max_degradation`: a number, or a percentage such as `1%`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GoalBound {
    Number(f64),
    Text(String),
}

impl fmt::Display for GoalBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoalBound::Number(n) => write!(f, "{n}"),
            GoalBound::Text(t) => f.write_str(t),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The model formats modelport packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    #[default]
    Onnx,
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelFormat::Onnx => "onnx",
        })
    }
}

/// Settings per provider. A section is only read by its provider.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSettings {
    /// The local provider. Default: all of [`LocalSettings`]'s defaults.
    pub local: LocalSettings,
    /// AWS (S3 + SageMaker). Default: absent; `--provider aws` then fails with a hint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSettings>,
    /// Google Cloud (GCS + Vertex AI). Default: absent; `--provider gcp` then fails with a hint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpSettings>,
}

/// Which platform's container contract a local deployment mimics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// `/ping` and `/invocations` on port 8080, model in `/opt/ml/model`.
    #[default]
    Sagemaker,
    /// `AIP_*` environment variables, `{"instances": [...]}` bodies.
    Vertex,
}

impl Flavour {
    pub const ALL: [Flavour; 2] = [Flavour::Sagemaker, Flavour::Vertex];

    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Sagemaker => "sagemaker",
            Flavour::Vertex => "vertex",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flavour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_choice(s, "flavour", &Flavour::ALL, |f| f.as_str())
    }
}

/// The local provider: the serving process on this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalSettings {
    /// Which platform contract the local server mimics. Default: `sagemaker`.
    pub flavour: Flavour,
    /// The port to listen on; 0 picks a free one. Default: 0.
    pub port: u16,
    /// How long the server may take to answer its health check, in seconds. Default: 60.
    pub startup_timeout_s: u32,
}

impl Default for LocalSettings {
    fn default() -> Self {
        LocalSettings {
            flavour: Flavour::Sagemaker,
            port: 0,
            startup_timeout_s: 60,
        }
    }
}

/// AWS: the model artifact goes to S3, the endpoint runs on SageMaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// The region. Default: the AWS default chain (`AWS_REGION`, the profile's region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The named profile for credentials. Default: the AWS default chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The S3 bucket for model artifacts (a name, not an `s3://` URL). Required.
    pub bucket: String,
    /// The key prefix for artifacts inside the bucket. Default: `modelport`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The IAM role SageMaker assumes to read the artifact and pull the image. Required.
    pub role_arn: String,
    /// The serving image in ECR. Default: `serving.image`; one of them is required to deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
    /// A KMS key for the endpoint's storage volume and the artifact. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Run the endpoint inside a VPC. Default: none (SageMaker's own network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<VpcConfig>,
    /// Cut the container off from the network. Default: false.
    #[serde(default)]
    pub network_isolation: bool,
    /// Send every AWS call to this URL instead of AWS (an emulator). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Extra tags on every resource modelport creates. Default: none.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// How long to wait for the endpoint to be created, updated or deleted, in
    /// seconds. Default: 3600.
    #[serde(default = "default_deploy_timeout_s")]
    pub deploy_timeout_s: u32,
}

fn default_deploy_timeout_s() -> u32 {
    3600
}

/// The VPC a SageMaker endpoint runs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcConfig {
    /// Subnet ids (`subnet-...`), at least one.
    pub subnets: Vec<String>,
    /// Security group ids (`sg-...`), at least one.
    pub security_groups: Vec<String>,
}

/// Google Cloud: the model artifact goes to GCS, the endpoint runs on Vertex AI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpSettings {
    /// The project id. Default: the project of the application default credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The Vertex AI region, like `us-central1`. Required.
    pub region: String,
    /// The GCS bucket for model artifacts (a name, not a `gs://` URL). Required.
    pub bucket: String,
    /// The object prefix for artifacts inside the bucket. Default: `modelport`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The serving image in Artifact Registry. Default: `serving.image`; one of them is
    /// required to deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
    /// The service account the serving container runs as. Default: Vertex AI's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// A Cloud KMS key for the model and endpoint. Default: none (Google-managed keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_name: Option<String>,
    /// Extra labels on every resource modelport creates. Default: none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Use a dedicated endpoint, which lifts the shared endpoints' 1.5 MB payload limit.
    /// Default: false.
    #[serde(default)]
    pub dedicated_endpoint: bool,
    /// Send Vertex AI calls to this URL instead of Google (a fake). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Send GCS calls to this URL instead of Google (fake-gcs-server). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_endpoint_url: Option<String>,
    /// How long to wait for each Vertex AI operation (model upload, deployment,
    /// undeployment), in seconds. Default: 3600.
    #[serde(default = "default_deploy_timeout_s")]
    pub deploy_timeout_s: u32,
}

fn default_prefix() -> String {
    "modelport".to_owned()
}

/// What the endpoint runs on. AWS reads the `instance_*` and `serverless` keys, Google
/// Cloud the `machine_type`, `*_replicas` and `accelerator` keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeSpec {
    /// The SageMaker instance type. Default: `ml.m5.large` unless `serverless` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// The number of SageMaker instances. Default: 1 unless `serverless` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<u32>,
    /// The Vertex AI machine type. Default: `n1-standard-2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_type: Option<String>,
    /// The fewest Vertex AI replicas. Default: 1.
    pub min_replicas: u32,
    /// The most Vertex AI replicas. Default: `min_replicas`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u32>,
    /// A GPU per Vertex AI replica. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<Accelerator>,
    /// Run on SageMaker Serverless Inference instead of instances. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverless: Option<Serverless>,
    /// How long the container may take to pass its first health check, in seconds
    /// (60 to 3600). Default: the platform's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_timeout_s: Option<u32>,
    /// How long the platform may take to download the model, in seconds (60 to 3600).
    /// Default: the platform's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_download_timeout_s: Option<u32>,
    /// The SageMaker instance's ML storage volume in GB (1 to 512), which holds the
    /// model's files. Default: the platform's for a model up to 512 MB, else sized
    /// to the model; never set on instance types with instance storage (NVMe), whose
    /// disk is fixed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_size_gb: Option<u32>,
}

impl Default for ComputeSpec {
    fn default() -> Self {
        ComputeSpec {
            instance_type: None,
            instance_count: None,
            machine_type: None,
            min_replicas: 1,
            max_replicas: None,
            accelerator: None,
            serverless: None,
            startup_timeout_s: None,
            model_download_timeout_s: None,
            volume_size_gb: None,
        }
    }
}

impl ComputeSpec {
    /// The SageMaker instance type, defaulted.
    pub fn instance_type(&self) -> &str {
        self.instance_type
            .as_deref()
            .unwrap_or(DEFAULT_INSTANCE_TYPE)
    }

    /// The number of SageMaker instances, defaulted.
    pub fn instance_count(&self) -> u32 {
        self.instance_count.unwrap_or(1)
    }

    /// The Vertex AI machine type, defaulted.
    pub fn machine_type(&self) -> &str {
        self.machine_type.as_deref().unwrap_or(DEFAULT_MACHINE_TYPE)
    }

    /// The most Vertex AI replicas, defaulted to `min_replicas`.
    pub fn max_replicas(&self) -> u32 {
        self.max_replicas.unwrap_or(self.min_replicas)
    }
}

/// A GPU attached to each Vertex AI replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    /// The accelerator type, like `NVIDIA_TESLA_T4`. Required. Written `type` in YAML.
    #[serde(rename = "type")]
    pub kind: String,
    /// How many per replica. Default: 1.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// SageMaker Serverless Inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Serverless {
    /// Memory in MB: 1024, 2048, 3072, 4096, 5120 or 6144. Default: 2048.
    pub memory_mb: u32,
    /// The most concurrent invocations, 1 to 200. Default: 5.
    pub max_concurrency: u32,
}

impl Default for Serverless {
    fn default() -> Self {
        Serverless {
            memory_mb: 2048,
            max_concurrency: 5,
        }
    }
}

/// How the serving container behaves, on every provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServingSpec {
    /// A serving image for every provider; `provider.*.image_uri` overrides it.
    /// Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Extra environment variables for the serving process. Default: none.
    pub env: BTreeMap<String, String>,
    /// The inference engine inside the server. Default: `auto`.
    pub engine: EngineChoice,
    /// The largest request body the server accepts, in bytes. Default: 6291456
    /// (SageMaker's real-time limit).
    pub max_body_bytes: u64,
    /// How long one request may take, in seconds. Default: 60 (SageMaker's limit).
    pub timeout_s: u32,
}

impl Default for ServingSpec {
    fn default() -> Self {
        ServingSpec {
            image: None,
            env: BTreeMap::new(),
            engine: EngineChoice::Auto,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            timeout_s: 60,
        }
    }
}

/// Which inference engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// onnxruntime when its shared library is found, tract otherwise.
    #[default]
    Auto,
    /// onnxruntime, the reference implementation of ONNX.
    Onnxruntime,
    /// tract, pure Rust, needs nothing installed.
    Tract,
}

impl EngineChoice {
    pub const ALL: [EngineChoice; 3] = [
        EngineChoice::Auto,
        EngineChoice::Onnxruntime,
        EngineChoice::Tract,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EngineChoice::Auto => "auto",
            EngineChoice::Onnxruntime => "onnxruntime",
            EngineChoice::Tract => "tract",
        }
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EngineChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_choice(s, "engine", &EngineChoice::ALL, |e| e.as_str())
    }
}

fn parse_choice<T: Copy>(
    s: &str,
    what: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, String> {
    let names: Vec<&str> = all.iter().map(|&t| name(t)).collect();
    if let Some(&t) = all.iter().find(|&&t| name(t).eq_ignore_ascii_case(s)) {
        return Ok(t);
    }
    let mut message = format!("unknown {what} `{s}`, expected one of {}", quoted(&names));
    if let Some(near) = closest(s, names.iter().copied()) {
        message.push_str(&format!(" (did you mean `{near}`?)"));
    }
    Err(message)
}

/// How `modelport compare` checks the endpoint.
///
/// Two numbers agree when `|endpoint - reference| <= atol + rtol * |reference|`, as in
/// `numpy.allclose`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifySpec {
    /// A file of sample inputs, relative to the directory of `modelport.yaml`.
    /// Default: none; `count` samples are generated from the model's signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<PathBuf>,
    /// How many samples to generate when there is no file. Default: 64.
    pub count: u32,
    /// The seed for generated samples. Default: 0.
    pub seed: u64,
    /// Absolute tolerance. Default: 1e-5.
    pub atol: f64,
    /// Relative tolerance. Default: 1e-4.
    pub rtol: f64,
    /// Settings per output, by output name. Default: none; every output is compared
    /// with `atol` and `rtol`.
    pub outputs: BTreeMap<String, OutputTolerance>,
    /// The fraction (0 to 1) of rows whose label outputs (integer, bool or string)
    /// must agree. Argmax agreement of probability outputs is reported, not required:
    /// near-ties within tolerance may flip it. Default: 1.0.
    pub min_label_agreement: f64,
    /// When `deploy` compares a new revision: before any production request can
    /// reach it (the default), or after the traffic has moved to it (faster on some
    /// platforms, but users are served by an unproven model meanwhile).
    #[serde(skip_serializing_if = "VerifyMode::is_default")]
    pub mode: VerifyMode,
}

/// When a deploy's comparison runs relative to the production traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// The new revision is compared while no production request can reach it; the
    /// traffic moves only when the comparison passes.
    #[default]
    BeforeTraffic,
    /// The traffic moves to the new revision first, then it is compared; a failed
    /// comparison moves the traffic back.
    AfterTraffic,
}

impl VerifyMode {
    pub const ALL: [VerifyMode; 2] = [VerifyMode::BeforeTraffic, VerifyMode::AfterTraffic];

    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::BeforeTraffic => "before-traffic",
            VerifyMode::AfterTraffic => "after-traffic",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == VerifyMode::BeforeTraffic
    }
}

impl fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Default for VerifySpec {
    fn default() -> Self {
        VerifySpec {
            samples: None,
            count: 64,
            seed: 0,
            atol: 1e-5,
            rtol: 1e-4,
            outputs: BTreeMap::new(),
            min_label_agreement: 1.0,
            mode: VerifyMode::BeforeTraffic,
        }
    }
}

impl VerifySpec {
    /// The `(atol, rtol, skip)` that apply to one output.
    pub fn tolerance_for(&self, output: &str) -> (f64, f64, bool) {
        match self.outputs.get(output) {
            Some(o) => (
                o.atol.unwrap_or(self.atol),
                o.rtol.unwrap_or(self.rtol),
                o.skip,
            ),
            None => (self.atol, self.rtol, false),
        }
    }
}

/// Settings for one output.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputTolerance {
    /// Absolute tolerance for this output. Default: `verify.atol`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atol: Option<f64>,
    /// Relative tolerance for this output. Default: `verify.rtol`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// Leave this output out of the comparison. Default: false.
    pub skip: bool,
}

impl DeploymentSpec {
    /// A spec with every default, as if read from `./modelport.yaml`.
    pub fn new(name: DeploymentName, model_path: impl Into<PathBuf>) -> DeploymentSpec {
        DeploymentSpec {
            name,
            model: ModelSpec {
                compress: None,
                path: model_path.into(),
                format: ModelFormat::Onnx,
                layout: LayoutChoice::Auto,
            },
            provider: ProviderSettings::default(),
            compute: ComputeSpec::default(),
            serving: ServingSpec::default(),
            verify: VerifySpec::default(),
            file: PathBuf::from(DEFAULT_FILE_NAME),
        }
    }

    /// Reads and checks a spec file.
    pub fn from_file(path: &Path) -> Result<DeploymentSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        DeploymentSpec::from_str(&text, path)
    }

    /// Parses and checks spec text; `file` names it in errors and anchors relative paths.
    pub fn from_str(text: &str, file: &Path) -> Result<DeploymentSpec> {
        let fail = |p: Problem| Error::Spec(Box::new(p.into_error(file, Some(text))));
        let value: serde_yaml::Value = serde_yaml::from_str(text)
            .map_err(|e| Error::Spec(Box::new(yaml_syntax_error(&e, text, file))))?;
        if value.is_null() {
            return Err(fail(Problem::new(&[], "the file is empty").hint(
                "run `modelport init`, or write at least `name:` and `model:` with `path:`",
            )));
        }
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let mut spec: DeploymentSpec = serde_path_to_error::deserialize(deserializer)
            .map_err(|e| Error::Spec(Box::new(serde_error(e, text, file, &value))))?;
        spec.file = file.to_path_buf();
        spec.check().map_err(fail)?;
        Ok(spec)
    }

    /// Checks the rules serde cannot express, for a spec built or changed in code
    /// (say, by command-line flags). Errors name the field but no line.
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|p| Error::Spec(Box::new(p.into_error(&self.file, None))))
    }

    /// The directory relative paths in the spec resolve against.
    pub fn base_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new(""))
    }

    /// `p` relative to the spec file's directory, or `p` itself when absolute.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir().join(p)
        }
    }

    /// How the model is packaged when its files weigh `model_bytes`: `model.layout`,
    /// resolved (`auto` never picks `dir` for a serverless endpoint).
    pub fn artifact_layout(&self, model_bytes: u64) -> ArtifactLayout {
        self.model
            .layout
            .resolve(model_bytes, self.compute.serverless.is_some())
    }

    /// The model file, resolved.
    pub fn model_path(&self) -> PathBuf {
        self.resolve_path(&self.model.path)
    }

    /// The samples file, resolved, when the spec names one.
    pub fn samples_path(&self) -> Option<PathBuf> {
        self.verify.samples.as_deref().map(|p| self.resolve_path(p))
    }

    /// The serving image for AWS: `provider.aws.image_uri`, else `serving.image`.
    pub fn aws_image(&self) -> Option<&str> {
        let aws = self
            .provider
            .aws
            .as_ref()
            .and_then(|a| a.image_uri.as_deref());
        aws.or(self.serving.image.as_deref())
    }

    /// The serving image for Google Cloud: `provider.gcp.image_uri`, else `serving.image`.
    pub fn gcp_image(&self) -> Option<&str> {
        let gcp = self
            .provider
            .gcp
            .as_ref()
            .and_then(|g| g.image_uri.as_deref());
        gcp.or(self.serving.image.as_deref())
    }

    /// The spec as JSON with object keys sorted and no whitespace: equal specs give
    /// equal strings, so callers hash it to tell whether a deployment is up to date.
    /// Absent optional keys are left out, so adding an optional key to the schema
    /// does not change the hash of specs that do not use it.
    ///
    /// # Panics
    ///
    /// When code has put a path that is not UTF-8 into the spec (JSON cannot hold it).
    pub fn canonical_json(&self) -> String {
        let value = serde_json::to_value(self).expect("spec paths are UTF-8");
        serde_json::to_string(&sort_keys(value)).expect("a JSON value always serializes")
    }

    fn check(&self) -> Result<(), Problem> {
        if self.model.path.as_os_str().is_empty() {
            return Err(Problem::new(&["model", "path"], "the model path is empty")
                .hint("set it to the ONNX file, relative to this file"));
        }
        self.check_local()?;
        if let Some(aws) = &self.provider.aws {
            check_aws(aws)?;
        }
        if let Some(gcp) = &self.provider.gcp {
            check_gcp(gcp)?;
        }
        check_compute(&self.compute)?;
        if self.model.layout == LayoutChoice::Dir && self.compute.serverless.is_some() {
            return Err(Problem::new(
                &["model", "layout"],
                "`dir` cannot be used with `compute.serverless`: SageMaker Serverless \
                 Inference reads only a model.tar.gz (ModelDataSource is not supported there)",
            )
            .hint("set `layout: archive` (or leave it out), or run on instances"));
        }
        check_serving(&self.serving)?;
        if let Some(c) = &self.model.compress {
            check_compress(c)?;
        }
        check_verify(&self.verify)
    }

    fn check_local(&self) -> Result<(), Problem> {
        if self.provider.local.startup_timeout_s == 0 {
            return Err(Problem::new(
                &["provider", "local", "startup_timeout_s"],
                "must be at least 1 second",
            ));
        }
        Ok(())
    }
}

fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------
// Semantic checks
// ---------------------------------------------------------------------------------

fn check_aws(aws: &AwsSettings) -> Result<(), Problem> {
    check_bucket(&["provider", "aws", "bucket"], &aws.bucket, "s3://", false)?;
    check_prefix(&["provider", "aws", "prefix"], &aws.prefix)?;
    if !(aws.role_arn.starts_with("arn:") && aws.role_arn.contains(":role/")) {
        return Err(Problem::new(
            &["provider", "aws", "role_arn"],
            format!("`{}` is not an IAM role ARN", aws.role_arn),
        )
        .hint("use the ARN of the role SageMaker assumes, like `arn:aws:iam::123456789012:role/SageMakerExecution`"));
    }
    if let Some(vpc) = &aws.vpc {
        if vpc.subnets.is_empty() {
            return Err(Problem::new(
                &["provider", "aws", "vpc", "subnets"],
                "a VPC needs at least one subnet",
            ));
        }
        if vpc.security_groups.is_empty() {
            return Err(Problem::new(
                &["provider", "aws", "vpc", "security_groups"],
                "a VPC needs at least one security group",
            ));
        }
    }
    if let Some(url) = &aws.endpoint_url {
        check_url(&["provider", "aws", "endpoint_url"], url)?;
    }
    for (key, value) in &aws.tags {
        let path = ["provider", "aws", "tags", key.as_str()];
        if key.is_empty() || key.chars().count() > 128 {
            return Err(Problem::new(&path, "a tag key is 1 to 128 characters"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(Problem::new(
                &path,
                "tag keys starting with `aws:` are reserved by AWS",
            ));
        }
        if value.chars().count() > 256 {
            return Err(Problem::new(&path, "a tag value is at most 256 characters"));
        }
    }
    Ok(())
}

fn check_gcp(gcp: &GcpSettings) -> Result<(), Problem> {
    if gcp.region.is_empty() {
        return Err(
            Problem::new(&["provider", "gcp", "region"], "the region is empty")
                .hint("use a Vertex AI region, like `us-central1`"),
        );
    }
    check_bucket(&["provider", "gcp", "bucket"], &gcp.bucket, "gs://", true)?;
    check_prefix(&["provider", "gcp", "prefix"], &gcp.prefix)?;
    for (key, url) in [
        ("endpoint_url", &gcp.endpoint_url),
        ("storage_endpoint_url", &gcp.storage_endpoint_url),
    ] {
        if let Some(url) = url {
            check_url(&["provider", "gcp", key], url)?;
        }
    }
    for (key, value) in &gcp.labels {
        let path = ["provider", "gcp", "labels", key.as_str()];
        let label_char = |c: char| c.is_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
        let key_ok = key.chars().count() <= 63
            && key.chars().next().is_some_and(char::is_lowercase)
            && key.chars().all(label_char);
        if !key_ok {
            return Err(Problem::new(
                &path,
                format!("`{key}` is not a valid label key: it must start with a lowercase letter and hold at most 63 lowercase letters, digits, `_` and `-`"),
            )
            .hint(format!("try `{}`", label_sanitize(key))));
        }
        if value.chars().count() > 63 || !value.chars().all(label_char) {
            return Err(Problem::new(
                &path,
                format!("`{value}` is not a valid label value: it holds at most 63 lowercase letters, digits, `_` and `-`"),
            )
            .hint(format!("try `{}`", label_sanitize(value))));
        }
    }
    Ok(())
}

fn label_sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    if out.is_empty() {
        out.push('x');
    }
    out
}

fn check_bucket(path: &[&str], bucket: &str, scheme: &str, gcs: bool) -> Result<(), Problem> {
    if let Some(rest) = bucket.strip_prefix(scheme) {
        let name = rest.split('/').next().unwrap_or(rest);
        return Err(
            Problem::new(path, format!("`{bucket}` is a URL, not a bucket name")).hint(format!(
                "write the bucket name alone: `{name}`; use `prefix` for a folder"
            )),
        );
    }
    let ok_char = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || (gcs && c == '_')
    };
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let max = if gcs { 222 } else { 63 };
    if bucket.len() < 3
        || bucket.len() > max
        || !bucket.chars().all(ok_char)
        || !ends_ok(bucket.chars().next())
        || !ends_ok(bucket.chars().last())
    {
        let allowed = if gcs {
            "lowercase letters, digits, `-`, `_` and `.`"
        } else {
            "lowercase letters, digits, `-` and `.`"
        };
        return Err(Problem::new(
            path,
            format!(
                "`{bucket}` is not a valid bucket name: it must be 3 to {max} {allowed}, starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

fn check_prefix(path: &[&str], prefix: &str) -> Result<(), Problem> {
    if prefix.starts_with('/') || prefix.ends_with('/') {
        return Err(
            Problem::new(path, format!("`{prefix}` starts or ends with `/`")).hint(format!(
                "write `{}`; modelport adds the separators",
                prefix.trim_matches('/')
            )),
        );
    }
    Ok(())
}

fn check_url(path: &[&str], url: &str) -> Result<(), Problem> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(
            Problem::new(path, format!("`{url}` is not an http:// or https:// URL"))
                .hint("write the emulator's base URL, like `http://127.0.0.1:5000`"),
        );
    }
    Ok(())
}

fn check_compute(c: &ComputeSpec) -> Result<(), Problem> {
    if c.instance_count == Some(0) {
        return Err(
            Problem::new(&["compute", "instance_count"], "must be at least 1")
                .hint("to run without instances, use `serverless` instead"),
        );
    }
    if c.min_replicas == 0 {
        return Err(Problem::new(
            &["compute", "min_replicas"],
            "must be at least 1",
        ));
    }
    if let Some(max) = c.max_replicas
        && max < c.min_replicas
    {
        return Err(Problem::new(
            &["compute", "max_replicas"],
            format!("is {max}, fewer than min_replicas ({})", c.min_replicas),
        )
        .hint(format!("set max_replicas to at least {}", c.min_replicas)));
    }
    if let Some(acc) = &c.accelerator {
        if acc.kind.is_empty() {
            return Err(
                Problem::new(&["compute", "accelerator", "type"], "is empty")
                    .hint("use a Vertex AI accelerator type, like `NVIDIA_TESLA_T4`"),
            );
        }
        if acc.count == 0 {
            return Err(
                Problem::new(&["compute", "accelerator", "count"], "must be at least 1")
                    .hint("to run without a GPU, remove `accelerator`"),
            );
        }
    }
    if let Some(s) = &c.serverless {
        if !SERVERLESS_MEMORY_MB.contains(&s.memory_mb) {
            let sizes: Vec<String> = SERVERLESS_MEMORY_MB.iter().map(u32::to_string).collect();
            let below = SERVERLESS_MEMORY_MB
                .iter()
                .rev()
                .find(|&&m| m < s.memory_mb);
            let above = SERVERLESS_MEMORY_MB.iter().find(|&&m| m > s.memory_mb);
            let hint = match (below, above) {
                (Some(b), Some(a)) => format!("did you mean {b} or {a}?"),
                (Some(m), None) | (None, Some(m)) => format!("did you mean {m}?"),
                (None, None) => unreachable!("the list of sizes is not empty"),
            };
            return Err(Problem::new(
                &["compute", "serverless", "memory_mb"],
                format!(
                    "{} MB is not a serverless memory size; SageMaker accepts {} MB",
                    s.memory_mb,
                    or_list(&sizes)
                ),
            )
            .hint(hint));
        }
        if !(1..=SERVERLESS_MAX_CONCURRENCY).contains(&s.max_concurrency) {
            return Err(Problem::new(
                &["compute", "serverless", "max_concurrency"],
                format!(
                    "is {}; SageMaker accepts 1 to {SERVERLESS_MAX_CONCURRENCY}",
                    s.max_concurrency
                ),
            ));
        }
        let conflicting: Vec<&str> = [
            c.instance_type.as_ref().map(|_| "instance_type"),
            c.instance_count.map(|_| "instance_count"),
            c.volume_size_gb.map(|_| "volume_size_gb"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !conflicting.is_empty() {
            let keys = conflicting
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" and ");
            return Err(Problem::new(
                &["compute", "serverless"],
                format!("`serverless` cannot be combined with {keys}"),
            )
            .hint(
                "a SageMaker endpoint runs either on instances you choose (`instance_type`, \
                 `instance_count`) or on serverless capacity (`serverless`); remove one of them",
            ));
        }
    }
    for (key, value) in [
        ("startup_timeout_s", c.startup_timeout_s),
        ("model_download_timeout_s", c.model_download_timeout_s),
    ] {
        if let Some(v) = value
            && !TIMEOUT_RANGE_S.contains(&v)
        {
            return Err(Problem::new(
                &["compute", key],
                format!(
                    "is {v} seconds; SageMaker accepts {} to {}",
                    TIMEOUT_RANGE_S.start(),
                    TIMEOUT_RANGE_S.end()
                ),
            ));
        }
    }
    if let Some(v) = c.volume_size_gb
        && !VOLUME_RANGE_GB.contains(&v)
    {
        return Err(Problem::new(
            &["compute", "volume_size_gb"],
            format!(
                "is {v} GB; SageMaker attaches volumes of {} to {} GB",
                VOLUME_RANGE_GB.start(),
                VOLUME_RANGE_GB.end()
            ),
        )
        .hint(
            "for a model that needs more, choose an instance type with instance storage \
             (like ml.g5.xlarge) and leave volume_size_gb out",
        ));
    }
    Ok(())
}

fn check_serving(s: &ServingSpec) -> Result<(), Problem> {
    for key in s.env.keys() {
        let mut chars = key.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Problem::new(
                &["serving", "env", key],
                format!("`{key}` is not a valid environment variable name"),
            )
            .hint("use letters, digits and `_`, not starting with a digit"));
        }
    }
    if s.max_body_bytes == 0 {
        return Err(
            Problem::new(&["serving", "max_body_bytes"], "must be at least 1").hint(format!(
                "SageMaker's real-time limit is {DEFAULT_MAX_BODY_BYTES}"
            )),
        );
    }
    if s.timeout_s == 0 {
        return Err(Problem::new(
            &["serving", "timeout_s"],
            "must be at least 1 second",
        ));
    }
    Ok(())
}

fn check_compress(c: &CompressSpec) -> Result<(), Problem> {
    if c.to.is_none() && c.prune.is_none() {
        return Err(
            Problem::new(&["model", "compress"], "says neither `to` nor `prune`")
                .hint("`to: int8` (or fp16, int8-dynamic), `prune: 0.5`, or both"),
        );
    }
    if let Some(p) = c.prune
        && !(0.0..1.0).contains(&p)
    {
        return Err(Problem::new(
            &["model", "compress", "prune"],
            format!("is {p}; a sparsity is a fraction in [0, 1)"),
        )
        .hint("0.5 zeroes the smallest half of each weight"));
    }
    if c.per_channel && !matches!(c.to, Some(CompressTo::Int8 | CompressTo::Int8Dynamic)) {
        return Err(Problem::new(
            &["model", "compress", "per_channel"],
            "per-channel scales are for eight-bit weights",
        )
        .hint("use it with `to: int8` or `to: int8-dynamic`"));
    }
    for (metric, bound) in &c.max_degradation {
        if let Err(e) = format!("{metric}={bound}").parse::<crate::goal::Goal>() {
            return Err(Problem::new(&["model", "compress", "max_degradation", metric.as_str()], e)
                .hint("a metric and a bound: `agreement: 1%`, `accuracy: 0.01`, `max_abs: 0.05`, `sqnr: 30` (dB)"));
        }
    }
    Ok(())
}

fn check_verify(v: &VerifySpec) -> Result<(), Problem> {
    if v.count == 0 {
        return Err(Problem::new(&["verify", "count"], "must be at least 1")
            .hint("to compare on your own inputs instead, set `samples` to a file"));
    }
    check_tolerance(&["verify", "atol"], v.atol)?;
    check_tolerance(&["verify", "rtol"], v.rtol)?;
    for (name, o) in &v.outputs {
        if let Some(atol) = o.atol {
            check_tolerance(&["verify", "outputs", name, "atol"], atol)?;
        }
        if let Some(rtol) = o.rtol {
            check_tolerance(&["verify", "outputs", name, "rtol"], rtol)?;
        }
    }
    let agreement = v.min_label_agreement;
    if !(0.0..=1.0).contains(&agreement) {
        return Err(Problem::new(
            &["verify", "min_label_agreement"],
            format!("is {agreement}; it is a fraction from 0 to 1"),
        )
        .hint("1.0 requires every label to agree, 0.99 allows one in a hundred to differ"));
    }
    Ok(())
}

fn check_tolerance(path: &[&str], value: f64) -> Result<(), Problem> {
    if !value.is_finite() || value < 0.0 {
        return Err(Problem::new(
            path,
            format!("is {value}; a tolerance is a finite number, 0 or more"),
        )
        .hint(
            "values agree when |endpoint - reference| <= atol + rtol * |reference|; \
             0 asks for exact equality",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

/// An error in `modelport.yaml`, located by file, line, column and field.
///
/// Displayed as `file:line:column: field: message`, leaving out the parts that are
/// unknown; the CLI prints `hint` on its own line.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub column: Option<usize>,
    /// The dotted path of the field, like `verify.atol`.
    pub field: Option<String>,
    pub message: String,
    /// A likely fix.
    pub hint: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// A rule broken by a parsed spec, before it is located in the text.
#[derive(Debug)]
struct Problem {
    path: Vec<String>,
    message: String,
    hint: Option<String>,
}

impl Problem {
    fn new(path: &[&str], message: impl Into<String>) -> Problem {
        Problem {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    fn into_error(self, file: &Path, text: Option<&str>) -> SpecError {
        let at = text.and_then(|t| locate(t, &self.path, false));
        SpecError {
            file: file.to_path_buf(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            field: (!self.path.is_empty()).then(|| self.path.join(".")),
            message: self.message,
            hint: self.hint,
        }
    }
}

fn yaml_syntax_error(e: &serde_yaml::Error, text: &str, file: &Path) -> SpecError {
    let location = e.location().map(|l| (l.line(), l.column()));
    let display = e.to_string();
    // serde_yaml finds repeated keys while building the document, before it knows
    // the typed path: it prefixes the parent path and points at the parent mapping.
    // Point at the repeat instead.
    if let Some((parent, rest)) = display.split_once("duplicate entry with key \"")
        && let Some((key, _)) = rest.split_once('"')
    {
        let mut path: Vec<String> = match parent.strip_suffix(": ") {
            Some(parent) => parent.split('.').map(str::to_owned).collect(),
            None => Vec::new(),
        };
        path.push(key.to_owned());
        let at = locate(text, &path, true);
        return SpecError {
            file: file.to_path_buf(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            field: Some(path.join(".")),
            message: format!("`{key}` is given twice"),
            hint: Some("remove one of them".to_owned()),
        };
    }
    // The problem's own position is given as line and column; drop it from the text.
    let message = match location {
        Some((line, column)) => {
            display.replacen(&format!(" at line {line} column {column}"), "", 1)
        }
        None => display,
    };
    let hint = if message.contains("cannot start any token") {
        "YAML does not allow tabs for indentation; indent with spaces"
    } else {
        "keys of one mapping line up in one column, and nested keys are indented under their parent"
    };
    SpecError {
        file: file.to_path_buf(),
        line: location.map(|l| l.0),
        column: location.map(|l| l.1),
        field: None,
        message: format!("invalid YAML: {message}"),
        hint: Some(hint.to_owned()),
    }
}

fn serde_error(
    err: serde_path_to_error::Error<serde_yaml::Error>,
    text: &str,
    file: &Path,
    value: &serde_yaml::Value,
) -> SpecError {
    use serde_path_to_error::Segment;

    let mut path: Vec<String> = Vec::new();
    for segment in err.path().iter() {
        match segment {
            Segment::Map { key } => path.push(key.clone()),
            Segment::Enum { variant } => path.push(variant.clone()),
            Segment::Seq { index } => match path.last_mut() {
                Some(last) => last.push_str(&format!("[{index}]")),
                None => path.push(format!("[{index}]")),
            },
            Segment::Unknown => path.push("?".to_owned()),
        }
    }
    let inner = err.into_inner();
    let display = inner.to_string();
    let (message, marked) = strip_mark(&display, &path);
    let mut at = if marked {
        inner.location().map(|l| (l.line(), l.column()))
    } else {
        None
    };

    let key = path.last().cloned().unwrap_or_default();
    let (message, hint) = if let Some(rest) = message.strip_prefix("unknown field ") {
        let names = backticked(rest);
        let unknown = names.first().copied().unwrap_or(key.as_str()).to_owned();
        let expected = names.get(1..).unwrap_or_default();
        let hint = match closest(&unknown, expected.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None if expected.is_empty() => "this mapping takes no keys".to_owned(),
            None => format!("valid keys here: {}", quoted(expected)),
        };
        (format!("unknown field `{unknown}`"), Some(hint))
    } else if let Some(rest) = message.strip_prefix("unknown variant ") {
        let names = backticked(rest);
        let unknown = names.first().copied().unwrap_or_default().to_owned();
        let expected = names.get(1..).unwrap_or_default();
        let choices = format!("one of {}", quoted(expected));
        let mut hint = match closest(&unknown, expected.iter().copied()) {
            Some(near) => format!("did you mean `{near}`? ({key} is {choices})"),
            None => format!("{key} is {choices}"),
        };
        if path == ["model", "format"] {
            hint = "modelport deploys ONNX models only for now; export the model to ONNX \
                    (torch.onnx.export, tf2onnx, skl2onnx) and write `format: onnx`"
                .to_owned();
        }
        (format!("unknown value `{unknown}`"), Some(hint))
    } else if let Some(rest) = message.strip_prefix("missing field ") {
        let missing = backticked(rest)
            .first()
            .copied()
            .unwrap_or_default()
            .to_owned();
        let hint = if path.is_empty() {
            format!("add a top-level `{missing}:` key")
        } else {
            format!("add `{missing}:` under `{}`", key)
        };
        path.push(missing.clone());
        if at.is_none() {
            at = locate(text, &path[..path.len() - 1], false);
        }
        (format!("missing field `{missing}`"), Some(hint))
    } else if let Some(rest) = message.strip_prefix("duplicate field ") {
        let dup = backticked(rest)
            .first()
            .copied()
            .unwrap_or_default()
            .to_owned();
        path.push(dup.clone());
        at = locate(text, &path, true).or(at);
        (
            format!("`{dup}` is given twice"),
            Some("remove one of them".to_owned()),
        )
    } else if let Some((kind, rest)) = message
        .strip_prefix("invalid type: ")
        .map(|r| ("invalid type", r))
        .or_else(|| {
            message
                .strip_prefix("invalid value: ")
                .map(|r| ("invalid value", r))
        })
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        let hint = type_hint(&key, found, expected);
        (
            format!(
                "{kind}: expected {}, found {found}",
                humanize_expected(expected)
            ),
            hint,
        )
    } else {
        // A message of our own, like an invalid deployment name.
        let hint = if path == ["name"] {
            value
                .get("name")
                .and_then(name_text)
                .and_then(|raw| DeploymentName::sanitize(&raw))
                .map(|n| {
                    format!(
                        "try `{n}` (names follow SageMaker's rule, the strictest of the platforms)"
                    )
                })
        } else {
            None
        };
        (message, hint)
    };

    if at.is_none() && !path.iter().any(|s| s == "?") {
        at = locate(text, &path, false);
    }
    if at.is_none() && marked {
        at = inner.location().map(|l| (l.line(), l.column()));
    }
    let field = (!path.is_empty() && !path.iter().any(|s| s == "?")).then(|| path.join("."));
    SpecError {
        file: file.to_path_buf(),
        line: at.map(|a| a.0),
        column: at.map(|a| a.1),
        field,
        message,
        hint,
    }
}

fn name_text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Splits serde_yaml's display into the bare message and whether it carried a
/// position: it reads `path: message at line L column C`.
fn strip_mark(display: &str, path: &[String]) -> (String, bool) {
    let mut message = display;
    let mut marked = false;
    if let Some((head, tail)) = display.rsplit_once(" at line ")
        && let Some((line, column)) = tail.split_once(" column ")
        && !line.is_empty()
        && line.chars().all(|c| c.is_ascii_digit())
        && !column.is_empty()
        && column.chars().all(|c| c.is_ascii_digit())
    {
        message = head;
        marked = true;
    }
    // serde_yaml prefixes the path it was at, which is our path or a parent of it.
    for n in (1..=path.len()).rev() {
        let prefix = format!("{}: ", path[..n].join("."));
        if let Some(rest) = message.strip_prefix(prefix.as_str()) {
            return (rest.to_owned(), marked);
        }
    }
    (message.to_owned(), marked)
}

/// Every `quoted` name in a serde message, in order.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn or_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&word, &candidate.to_lowercase());
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn humanize_expected(expected: &str) -> String {
    match expected {
        "u8" => "a whole number from 0 to 255".to_owned(),
        "u16" => "a whole number from 0 to 65535".to_owned(),
        "u32" => "a whole number from 0 to 4294967295".to_owned(),
        "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" => "`true` or `false`".to_owned(),
        "a map" => "a mapping of `key: value` pairs".to_owned(),
        "a sequence" => "a list".to_owned(),
        "path string" => "a path".to_owned(),
        e if e.starts_with("struct ") => "a mapping of `key: value` pairs".to_owned(),
        e => e.to_owned(),
    }
}

fn type_hint(key: &str, found: &str, expected: &str) -> Option<String> {
    let numeric = matches!(
        expected,
        "u8" | "u16"
            | "u32"
            | "u64"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "isize"
            | "f32"
            | "f64"
    );
    let quoted_text = found
        .strip_prefix("string \"")
        .and_then(|s| s.strip_suffix('"'));
    if let Some(s) = quoted_text {
        if numeric && s.trim().parse::<f64>().is_ok() {
            return Some(format!("remove the quotes: `{key}: {}`", s.trim()));
        }
        if expected == "a boolean" {
            return Some(format!("write `{key}: true` or `{key}: false`"));
        }
    }
    if expected.starts_with("struct ") {
        if key.is_empty() {
            return Some(
                "the file is a mapping of top-level keys, like `name:` and `model:`".to_owned(),
            );
        }
        return Some(format!(
            "`{key}` is a section; put its keys on the following lines, indented"
        ));
    }
    if expected.starts_with('u') && found.starts_with("integer `-") {
        return Some(format!("`{key}` cannot be negative"));
    }
    None
}

// ---------------------------------------------------------------------------------
// Locator
// ---------------------------------------------------------------------------------

/// Finds where the key at `path` is written in block-style YAML, as a 1-based
/// (line, column); `last` picks the last of repeated keys. Best effort: it follows
/// indentation and understands a flow mapping (`{ a: 1 }`) at the end of the path,
/// but not sequences, anchors or multi-line scalars that look like keys.
fn locate(text: &str, path: &[String], last: bool) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut parent_indent: Option<usize> = None;
    for (depth, key) in path.iter().enumerate() {
        let final_key = depth + 1 == path.len();
        let mut child_indent = None;
        let mut found = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let body = line.trim_start_matches(' ');
            let indent = line.len() - body.len();
            if body.is_empty()
                || body.starts_with('#')
                || (indent == 0 && (body.starts_with("---") || body.starts_with("...")))
            {
                continue;
            }
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            if indent != *child_indent.get_or_insert(indent) {
                continue;
            }
            if let Some(after) = key_prefix(body, key) {
                found = Some((i, indent, indent + after));
                if !(final_key && last) {
                    break;
                }
            }
        }
        let (i, indent, after) = found?;
        if final_key {
            return Some((i + 1, indent + 1));
        }
        if lines[i][after..].trim_start().starts_with('{') {
            return locate_flow(&lines, i, after, &path[depth + 1..]);
        }
        from = i + 1;
        parent_indent = Some(indent);
    }
    None
}

/// The length of `key:` (plain or quoted) at the start of `body`, colon included.
fn key_prefix(body: &str, key: &str) -> Option<usize> {
    for (form, tight) in [
        (key.to_owned(), false),
        (format!("\"{key}\""), true),
        (format!("'{key}'"), true),
    ] {
        let Some(rest) = body.strip_prefix(form.as_str()) else {
            continue;
        };
        let Some(after) = rest.trim_start_matches(' ').strip_prefix(':') else {
            continue;
        };
        if tight || after.is_empty() || after.starts_with([' ', '\t']) {
            return Some(body.len() - after.len());
        }
    }
    None
}

/// Follows `path` inside a flow mapping that starts at `lines[line][byte..]`.
fn locate_flow(
    lines: &[&str],
    mut line: usize,
    mut byte: usize,
    path: &[String],
) -> Option<(usize, usize)> {
    let mut at = None;
    for key in path {
        let (l, b, after) = find_flow_key(lines, line, byte, key)?;
        at = Some((l, b));
        (line, byte) = (l, after);
    }
    at.map(|(l, b)| (l + 1, lines[l][..b].chars().count() + 1))
}

fn find_flow_key(
    lines: &[&str],
    line: usize,
    byte: usize,
    key: &str,
) -> Option<(usize, usize, usize)> {
    for (l, text) in lines.iter().enumerate().skip(line) {
        let start = if l == line { byte } else { 0 };
        let mut previous = if start == 0 {
            None
        } else {
            text[..start].chars().next_back()
        };
        for (pos, c) in text[start..].char_indices() {
            let pos = start + pos;
            let boundary = previous.is_none_or(|p| matches!(p, '{' | ',' | ' ' | '\t'));
            if boundary && let Some(len) = key_prefix(&text[pos..], key) {
                return Some((l, pos, pos + len));
            }
            previous = Some(c);
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Template
// ---------------------------------------------------------------------------------

/// Fills a `modelport init` template: `{{name}}` and `{{model_path}}` become YAML
/// scalars, quoted when YAML would otherwise read them as something else.
pub fn render_template(template: &str, name: &DeploymentName, model_path: &str) -> String {
    template
        .replace("{{name}}", &yaml_scalar(name.as_str()))
        .replace("{{model_path}}", &yaml_scalar(model_path))
}

fn yaml_scalar(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_'))
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-'))
        && matches!(
            serde_yaml::from_str::<serde_yaml::Value>(s),
            Ok(serde_yaml::Value::String(ref v)) if v == s
        );
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "modelport.yaml";

    /// Parses `yaml` and renders the outcome: `ok`, or the error and its hint as the
    /// CLI prints them.
    fn render(yaml: &str) -> String {
        match DeploymentSpec::from_str(yaml, Path::new(FILE)) {
            Ok(_) => "ok".to_owned(),
            Err(e) => match e.hint() {
                Some(hint) => format!("{e}\nhint: {hint}"),
                None => e.to_string(),
            },
        }
    }

    #[track_caller]
    fn check(yaml: &str, expected: &str) {
        let actual = render(yaml);
        assert_eq!(actual, expected.trim(), "for YAML:\n{yaml}");
    }

    fn parse(yaml: &str) -> DeploymentSpec {
        DeploymentSpec::from_str(yaml, Path::new("dir/modelport.yaml")).unwrap()
    }

    const MINIMAL: &str = "name: iris\nmodel:\n  path: model.onnx\n";

    const FULL: &str = r#"
name: iris
model:
  path: models/iris.onnx
  format: onnx
provider:
  local:
    flavour: vertex
    port: 8088
    startup_timeout_s: 30
  aws:
    region: eu-west-1
    profile: ml
    bucket: my-models
    prefix: modelport
    role_arn: arn:aws:iam::123456789012:role/SageMakerExecution
    image_uri: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelport:0.1.0
    kms_key_id: null
    vpc: { subnets: [subnet-1], security_groups: [sg-1] }
    network_isolation: true
    endpoint_url: http://127.0.0.1:5000
    tags: {team: ml}
  gcp:
    project: my-project
    region: us-central1
    bucket: my-models
    labels: {team: ml}
    dedicated_endpoint: true
compute:
  machine_type: n1-standard-4
  min_replicas: 2
  max_replicas: 3
  accelerator: { type: NVIDIA_TESLA_T4 }
  serverless: { memory_mb: 3072, max_concurrency: 10 }
  startup_timeout_s: 600
serving:
  env: {OMP_NUM_THREADS: "1"}
  engine: tract
  timeout_s: 30
verify:
  samples: samples.json
  seed: 7
  atol: 1.0e-4
  rtol: 1e-3
  outputs:
    output_probability: { atol: 1.0e-3 }
    output_label:
      skip: true
  min_label_agreement: 0.99
"#;

    #[test]
    fn minimal_spec_takes_every_default() {
        let spec = parse(MINIMAL);
        assert_eq!(spec.name.as_str(), "iris");
        assert_eq!(spec.model_path(), Path::new("dir/model.onnx"));
        assert_eq!(spec.model.format, ModelFormat::Onnx);
        assert_eq!(spec.provider.local, LocalSettings::default());
        assert!(spec.provider.aws.is_none() && spec.provider.gcp.is_none());
        assert_eq!(spec.compute.instance_type(), "ml.m5.large");
        assert_eq!(spec.compute.instance_count(), 1);
        assert_eq!(spec.compute.machine_type(), "n1-standard-2");
        assert_eq!(spec.compute.max_replicas(), 1);
        assert_eq!(spec.serving, ServingSpec::default());
        assert_eq!(spec.verify, VerifySpec::default());
        assert_eq!(spec.samples_path(), None);
        assert_eq!(spec, {
            let mut s = DeploymentSpec::new(DeploymentName::new("iris").unwrap(), "model.onnx");
            s.file = PathBuf::from("dir/modelport.yaml");
            s
        });
    }

    #[test]
    fn full_spec_reads_every_section() {
        let spec = parse(FULL);
        assert_eq!(spec.provider.local.flavour, Flavour::Vertex);
        assert_eq!(spec.provider.local.port, 8088);
        let aws = spec.provider.aws.as_ref().unwrap();
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(aws.vpc.as_ref().unwrap().subnets, ["subnet-1"]);
        assert_eq!(aws.tags["team"], "ml");
        let gcp = spec.provider.gcp.as_ref().unwrap();
        assert_eq!(gcp.prefix, "modelport");
        assert!(gcp.image_uri.is_none());
        assert_eq!(spec.aws_image(), aws.image_uri.as_deref());
        assert_eq!(spec.gcp_image(), None);
        assert_eq!(spec.compute.max_replicas(), 3);
        assert_eq!(spec.compute.accelerator.as_ref().unwrap().count, 1);
        assert_eq!(spec.compute.serverless.as_ref().unwrap().memory_mb, 3072);
        assert_eq!(spec.serving.engine, EngineChoice::Tract);
        assert_eq!(spec.serving.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(spec.samples_path(), Some(PathBuf::from("dir/samples.json")));
        assert_eq!(spec.verify.count, 64);
        assert_eq!(
            spec.verify.tolerance_for("output_probability"),
            (1e-3, 1e-3, false)
        );
        assert_eq!(
            spec.verify.tolerance_for("output_label"),
            (1e-4, 1e-3, true)
        );
        assert_eq!(spec.verify.tolerance_for("other"), (1e-4, 1e-3, false));
    }

    #[test]
    fn absolute_paths_are_kept() {
        let spec = parse("name: a\nmodel:\n  path: /models/a.onnx\n");
        assert_eq!(spec.model_path(), Path::new("/models/a.onnx"));
    }

    #[test]
    fn empty_sections_take_defaults() {
        check(
            "name: iris\nmodel:\n  path: m.onnx\nprovider:\ncompute:\nserving:\n  env:\nverify:\n",
            "ok",
        );
    }

    #[test]
    fn canonical_json_is_stable_and_sorted() {
        let a = parse(FULL);
        let b = parse(FULL);
        assert_eq!(a.canonical_json(), b.canonical_json());
        let json = parse(MINIMAL).canonical_json();
        assert!(json.starts_with(r#"{"compute":{"min_replicas":1},"model":{"format":"onnx","path":"model.onnx"},"name":"iris","provider":{"local":"#), "{json}");
        let mut c = parse(MINIMAL);
        c.verify.atol = 1e-3;
        assert_ne!(c.canonical_json(), json);
    }

    #[test]
    fn syntax_and_shape_errors() {
        check(
            "",
            "modelport.yaml: the file is empty\n\
             hint: run `modelport init`, or write at least `name:` and `model:` with `path:`",
        );
        check(
            "# nothing yet\n",
            "modelport.yaml: the file is empty\n\
             hint: run `modelport init`, or write at least `name:` and `model:` with `path:`",
        );
        check(
            "name: iris\n  model: x\n",
            "modelport.yaml:2:8: invalid YAML: mapping values are not allowed in this context\n\
             hint: keys of one mapping line up in one column, and nested keys are indented under their parent",
        );
        check(
            "name: iris\nmodel:\n\tpath: m.onnx\n",
            "modelport.yaml:3:1: invalid YAML: found character that cannot start any token, while scanning for the next token\n\
             hint: YAML does not allow tabs for indentation; indent with spaces",
        );
        check(
            "- iris\n",
            "modelport.yaml: invalid type: expected a mapping of `key: value` pairs, found sequence\n\
             hint: the file is a mapping of top-level keys, like `name:` and `model:`",
        );
        check(
            "name: iris\n",
            "modelport.yaml: model: missing field `model`\nhint: add a top-level `model:` key",
        );
        check(
            "name: iris\nmodel:\n  format: onnx\n",
            "modelport.yaml:3:3: model.path: missing field `path`\nhint: add `path:` under `model`",
        );
        check(
            "name: iris\nname: rose\nmodel: {path: m.onnx}\n",
            "modelport.yaml:2:1: name: `name` is given twice\nhint: remove one of them",
        );
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        check(
            "name: iris\nmodle:\n  path: m.onnx\n",
            "modelport.yaml:2:1: modle: unknown field `modle`\nhint: did you mean `model`?",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nverify:\n  count: 8\n  atoll: 1.0e-5\n",
            "modelport.yaml:5:3: verify.atoll: unknown field `atoll`\nhint: did you mean `atol`?",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nservng: {}\n",
            "modelport.yaml:3:1: servng: unknown field `servng`\nhint: did you mean `serving`?",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nwhatever: 1\n",
            "modelport.yaml:3:1: whatever: unknown field `whatever`\n\
             hint: valid keys here: `name`, `model`, `provider`, `compute`, `serving`, `verify`",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\ncompute:\n  accelerator: {type: T4, cnt: 1}\n",
            "modelport.yaml:4:27: compute.accelerator.cnt: unknown field `cnt`\nhint: valid keys here: `type`, `count`",
        );
    }

    #[test]
    fn unknown_values_suggest_the_nearest() {
        check(
            "name: iris\nmodel: {path: m.onnx}\nprovider:\n  local:\n    flavour: sagemakr\n",
            "modelport.yaml:5:14: provider.local.flavour: unknown value `sagemakr`\n\
             hint: did you mean `sagemaker`? (flavour is one of `sagemaker`, `vertex`)",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nserving:\n  engine: ort\n",
            "modelport.yaml:4:11: serving.engine: unknown value `ort`\n\
             hint: engine is one of `auto`, `onnxruntime`, `tract`",
        );
        check(
            "name: iris\nmodel:\n  path: m.pt\n  format: pytorch\n",
            "modelport.yaml:4:11: model.format: unknown value `pytorch`\n\
             hint: modelport deploys ONNX models only for now; export the model to ONNX \
             (torch.onnx.export, tf2onnx, skl2onnx) and write `format: onnx`",
        );
    }

    #[test]
    fn wrong_types_say_what_is_expected() {
        check(
            "name: iris\nmodel: {path: m.onnx}\nverify:\n  count: many\n",
            "modelport.yaml:4:10: verify.count: invalid type: expected a whole number from 0 to 4294967295, found string \"many\"",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nverify:\n  atol: \"1e-5\"\n",
            "modelport.yaml:4:9: verify.atol: invalid type: expected a number, found string \"1e-5\"\n\
             hint: remove the quotes: `atol: 1e-5`",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nverify:\n  count: -1\n",
            "modelport.yaml:4:10: verify.count: invalid type: expected a whole number from 0 to 4294967295, found integer `-1`\n\
             hint: `count` cannot be negative",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nprovider:\n  local:\n    port: 70000\n",
            "modelport.yaml:5:11: provider.local.port: invalid value: expected a whole number from 0 to 65535, found integer `70000`",
        );
        check(
            "name: iris\nmodel: m.onnx\n",
            "modelport.yaml:2:8: model: invalid type: expected a mapping of `key: value` pairs, found string \"m.onnx\"\n\
             hint: `model` is a section; put its keys on the following lines, indented",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nprovider:\n  aws:\n    network_isolation: \"yes\"\n",
            "modelport.yaml:5:24: provider.aws.network_isolation: invalid type: expected `true` or `false`, found string \"yes\"\n\
             hint: write `network_isolation: true` or `network_isolation: false`",
        );
    }

    #[test]
    fn bad_names_are_explained() {
        check(
            "name: My_Model!\nmodel: {path: m.onnx}\n",
            "modelport.yaml:1:1: name: invalid deployment name `My_Model!`: it contains `_`; \
             a name is 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit\n\
             hint: try `my-model` (names follow SageMaker's rule, the strictest of the platforms)",
        );
        let long = "a".repeat(64);
        check(
            &format!("model: {{path: m.onnx}}\nname: {long}\n"),
            &format!(
                "modelport.yaml:2:1: name: invalid deployment name `{long}`: it is 64 characters long; \
                 a name is 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit\n\
                 hint: try `{}` (names follow SageMaker's rule, the strictest of the platforms)",
                &long[..63]
            ),
        );
        check(
            "name: -iris\nmodel: {path: m.onnx}\n",
            "modelport.yaml:1:1: name: invalid deployment name `-iris`: it starts with `-`; \
             a name is 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit\n\
             hint: try `iris` (names follow SageMaker's rule, the strictest of the platforms)",
        );
        check(
            "name: \"\"\nmodel: {path: m.onnx}\n",
            "modelport.yaml:1:1: name: invalid deployment name ``: it is empty; \
             a name is 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit",
        );
        check("name: 2024\nmodel: {path: m.onnx}\n", "ok");
    }

    #[test]
    fn deployment_names() {
        for ok in ["a", "iris", "Iris-2", "a--b", "0"] {
            assert_eq!(DeploymentName::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", "é", &"x".repeat(64)] {
            assert!(DeploymentName::new(bad).is_err(), "{bad}");
        }
        let sanitized = |s: &str| DeploymentName::sanitize(s).map(|n| n.to_string());
        assert_eq!(sanitized("My_Model!").as_deref(), Some("my-model"));
        assert_eq!(sanitized("--a__b--").as_deref(), Some("a-b"));
        assert_eq!(
            sanitized(&format!("{}-b", "a".repeat(62))).as_deref(),
            Some(&*"a".repeat(62))
        );
        assert_eq!(sanitized("!!!"), None);
        let json = serde_json::to_string(&DeploymentName::new("iris").unwrap()).unwrap();
        assert_eq!(json, "\"iris\"");
        assert!(serde_json::from_str::<DeploymentName>("\"a_b\"").is_err());
    }

    #[test]
    fn compute_rules() {
        let base = "name: iris\nmodel: {path: m.onnx}\ncompute:\n";
        check(
            &format!("{base}  serverless:\n    memory_mb: 1500\n"),
            "modelport.yaml:5:5: compute.serverless.memory_mb: 1500 MB is not a serverless memory size; \
             SageMaker accepts 1024, 2048, 3072, 4096, 5120 or 6144 MB\nhint: did you mean 1024 or 2048?",
        );
        check(
            &format!("{base}  serverless: {{ memory_mb: 8192 }}\n"),
            "modelport.yaml:4:17: compute.serverless.memory_mb: 8192 MB is not a serverless memory size; \
             SageMaker accepts 1024, 2048, 3072, 4096, 5120 or 6144 MB\nhint: did you mean 6144?",
        );
        check(
            &format!("{base}  serverless: {{ max_concurrency: 201 }}\n"),
            "modelport.yaml:4:17: compute.serverless.max_concurrency: is 201; SageMaker accepts 1 to 200",
        );
        check(
            &format!("{base}  instance_type: ml.c5.xlarge\n  serverless: {{}}\n"),
            "modelport.yaml:5:3: compute.serverless: `serverless` cannot be combined with `instance_type`\n\
             hint: a SageMaker endpoint runs either on instances you choose (`instance_type`, \
             `instance_count`) or on serverless capacity (`serverless`); remove one of them",
        );
        check(
            &format!("{base}  instance_count: 0\n"),
            "modelport.yaml:4:3: compute.instance_count: must be at least 1\n\
             hint: to run without instances, use `serverless` instead",
        );
        check(
            &format!("{base}  min_replicas: 3\n  max_replicas: 2\n"),
            "modelport.yaml:5:3: compute.max_replicas: is 2, fewer than min_replicas (3)\n\
             hint: set max_replicas to at least 3",
        );
        check(&format!("{base}  min_replicas: 3\n"), "ok");
        check(
            &format!("{base}  min_replicas: 0\n"),
            "modelport.yaml:4:3: compute.min_replicas: must be at least 1",
        );
        check(
            &format!("{base}  accelerator:\n    type: NVIDIA_TESLA_T4\n    count: 0\n"),
            "modelport.yaml:6:5: compute.accelerator.count: must be at least 1\n\
             hint: to run without a GPU, remove `accelerator`",
        );
        check(
            &format!("{base}  startup_timeout_s: 30\n"),
            "modelport.yaml:4:3: compute.startup_timeout_s: is 30 seconds; SageMaker accepts 60 to 3600",
        );
        check(
            &format!("{base}  volume_size_gb: 600\n"),
            "modelport.yaml:4:3: compute.volume_size_gb: is 600 GB; SageMaker attaches volumes of 1 to 512 GB\n\
             hint: for a model that needs more, choose an instance type with instance storage \
             (like ml.g5.xlarge) and leave volume_size_gb out",
        );
        check(&format!("{base}  volume_size_gb: 512\n"), "ok");
        check(
            &format!("{base}  volume_size_gb: 20\n  serverless: {{}}\n"),
            "modelport.yaml:5:3: compute.serverless: `serverless` cannot be combined with `volume_size_gb`\n\
             hint: a SageMaker endpoint runs either on instances you choose (`instance_type`, \
             `instance_count`) or on serverless capacity (`serverless`); remove one of them",
        );
    }

    #[test]
    fn verify_rules() {
        let base = "name: iris\nmodel: {path: m.onnx}\nverify:\n";
        check(
            &format!("{base}  rtol: -0.1\n"),
            "modelport.yaml:4:3: verify.rtol: is -0.1; a tolerance is a finite number, 0 or more\n\
             hint: values agree when |endpoint - reference| <= atol + rtol * |reference|; 0 asks for exact equality",
        );
        check(
            &format!("{base}  atol: .nan\n"),
            "modelport.yaml:4:3: verify.atol: is NaN; a tolerance is a finite number, 0 or more\n\
             hint: values agree when |endpoint - reference| <= atol + rtol * |reference|; 0 asks for exact equality",
        );
        check(
            &format!("{base}  outputs:\n    \"probs:0\": {{ rtol: -1 }}\n"),
            "modelport.yaml:5:18: verify.outputs.probs:0.rtol: is -1; a tolerance is a finite number, 0 or more\n\
             hint: values agree when |endpoint - reference| <= atol + rtol * |reference|; 0 asks for exact equality",
        );
        check(
            &format!("{base}  count: 0\n"),
            "modelport.yaml:4:3: verify.count: must be at least 1\n\
             hint: to compare on your own inputs instead, set `samples` to a file",
        );
        check(
            &format!("{base}  min_label_agreement: 1.5\n"),
            "modelport.yaml:4:3: verify.min_label_agreement: is 1.5; it is a fraction from 0 to 1\n\
             hint: 1.0 requires every label to agree, 0.99 allows one in a hundred to differ",
        );
    }

    #[test]
    fn provider_rules() {
        let aws = "name: iris\nmodel: {path: m.onnx}\nprovider:\n  aws:\n    role_arn: arn:aws:iam::1:role/r\n";
        check(
            &format!("{aws}    bucket: s3://my-models/models\n"),
            "modelport.yaml:6:5: provider.aws.bucket: `s3://my-models/models` is a URL, not a bucket name\n\
             hint: write the bucket name alone: `my-models`; use `prefix` for a folder",
        );
        check(
            &format!("{aws}    bucket: My_Models\n"),
            "modelport.yaml:6:5: provider.aws.bucket: `My_Models` is not a valid bucket name: it must be \
             3 to 63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit",
        );
        check(
            &format!("{aws}    bucket: b-1\n    endpoint_url: localhost:5000\n"),
            "modelport.yaml:7:5: provider.aws.endpoint_url: `localhost:5000` is not an http:// or https:// URL\n\
             hint: write the emulator's base URL, like `http://127.0.0.1:5000`",
        );
        check(
            "name: iris\nmodel: {path: m.onnx}\nprovider:\n  aws:\n    bucket: b-1\n",
            "modelport.yaml:5:5: provider.aws.role_arn: missing field `role_arn`\nhint: add `role_arn:` under `aws`",
        );
        let gcp = "name: iris\nmodel: {path: m.onnx}\nprovider:\n  gcp:\n    region: us-central1\n    bucket: my_models\n";
        check(
            &format!("{gcp}    labels:\n      Team: ml\n"),
            "modelport.yaml:8:7: provider.gcp.labels.Team: `Team` is not a valid label key: it must start \
             with a lowercase letter and hold at most 63 lowercase letters, digits, `_` and `-`\nhint: try `team`",
        );
        check(
            &format!("{gcp}    storage_endpoint_url: 127.0.0.1:4443\n"),
            "modelport.yaml:7:5: provider.gcp.storage_endpoint_url: `127.0.0.1:4443` is not an http:// or https:// URL\n\
             hint: write the emulator's base URL, like `http://127.0.0.1:5000`",
        );
    }

    #[test]
    fn layouts_and_windows_follow_the_model_size() {
        let big = DIR_LAYOUT_ABOVE_BYTES + 1;
        assert_eq!(LayoutChoice::Auto.resolve(big, false), ArtifactLayout::Dir);
        assert_eq!(
            LayoutChoice::Auto.resolve(big, true),
            ArtifactLayout::Archive
        );
        assert_eq!(
            LayoutChoice::Auto.resolve(1000, false),
            ArtifactLayout::Archive
        );
        assert_eq!(LayoutChoice::Dir.resolve(1000, false), ArtifactLayout::Dir);
        assert_eq!(
            LayoutChoice::Archive.resolve(big, false),
            ArtifactLayout::Archive
        );
        assert_eq!("dir".parse::<LayoutChoice>(), Ok(LayoutChoice::Dir));
        assert!(
            "tgz"
                .parse::<LayoutChoice>()
                .unwrap_err()
                .contains("`auto`, `archive` or `dir`")
        );
        assert_eq!(derived_windows(DIR_LAYOUT_ABOVE_BYTES), None);
        let w = derived_windows(3_000_000_000).unwrap();
        assert_eq!((w.download_s, w.startup_s), (750, 660));
        let w = derived_windows(500_000_000_000).unwrap();
        assert_eq!((w.download_s, w.startup_s), (3600, 3600));
        // The volume: none for a small model; a quarter more than the disk plus 4 GiB.
        assert_eq!(derived_volume_gb(DIR_LAYOUT_ABOVE_BYTES, 1 << 40), None);
        assert_eq!(disk_bytes(3 << 30, None), 3 << 30);
        assert_eq!(disk_bytes(3 << 30, Some(1 << 30)), 4 << 30);
        assert_eq!(derived_volume_gb(3_000_000_000, 4 << 30), Some(9));
        assert_eq!(derived_volume_gb(3_000_000_000, (4 << 30) + 1), Some(10));

        let text = MINIMAL.replace(
            "  path: model.onnx\n",
            "  path: model.onnx\n  layout: dir\n",
        );
        let spec = parse(&text);
        assert_eq!(spec.model.layout, LayoutChoice::Dir);
        let serverless = text.clone() + "compute:\n  serverless:\n    memory_mb: 2048\n";
        let err = DeploymentSpec::from_str(&serverless, Path::new("modelport.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.layout: `dir` cannot be used with `compute.serverless`"),
            "{err}"
        );
    }

    #[test]
    fn validate_without_text_names_the_field() {
        let mut spec = parse(MINIMAL);
        spec.verify.count = 0;
        let err = spec.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "dir/modelport.yaml: verify.count: must be at least 1"
        );
    }

    #[test]
    fn from_file_reads_and_anchors_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("modelport.yaml");
        std::fs::write(&file, MINIMAL).unwrap();
        let spec = DeploymentSpec::from_file(&file).unwrap();
        assert_eq!(spec.model_path(), dir.path().join("model.onnx"));
        let missing = DeploymentSpec::from_file(&dir.path().join("nope.yaml")).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }));
    }

    #[test]
    fn engine_and_flavour_parse_from_flags() {
        assert_eq!("tract".parse::<EngineChoice>(), Ok(EngineChoice::Tract));
        assert_eq!(
            "ONNXRuntime".parse::<EngineChoice>(),
            Ok(EngineChoice::Onnxruntime)
        );
        assert_eq!(
            "onnxrt".parse::<EngineChoice>(),
            Err("unknown engine `onnxrt`, expected one of `auto`, `onnxruntime`, `tract` (did you mean `onnxruntime`?)".to_owned())
        );
        for e in EngineChoice::ALL {
            assert_eq!(e.to_string().parse::<EngineChoice>(), Ok(e));
        }
        assert_eq!("vertex".parse::<Flavour>(), Ok(Flavour::Vertex));
    }

    #[test]
    fn repeated_keys_are_found() {
        check(
            "name: iris\nmodel: {path: m.onnx}\nverify:\n  atol: 1.0\n  rtol: 1.0\n  outputs:\n    a: {atol: 1}\n  atol: 2.0\n",
            "modelport.yaml:8:3: verify.atol: `atol` is given twice\nhint: remove one of them",
        );
    }

    #[test]
    fn locator_finds_keys() {
        let text = "a:\n  b: 1\n  c:\n    # note\n    d: 2\n  e: {f: 1, g: {h: 2}}\nc:\n  d: 3\n";
        let at = |p: &[&str]| {
            let p: Vec<String> = p.iter().map(|s| (*s).to_owned()).collect();
            locate(text, &p, false)
        };
        assert_eq!(at(&["a"]), Some((1, 1)));
        assert_eq!(at(&["a", "c", "d"]), Some((5, 5)));
        assert_eq!(at(&["c", "d"]), Some((8, 3)));
        assert_eq!(at(&["a", "e", "g", "h"]), Some((6, 17)));
        assert_eq!(at(&["a", "d"]), None);
        assert_eq!(at(&["x"]), None);
    }

    #[test]
    fn compress_is_checked_field_by_field() {
        let base = "name: m\nmodel:\n  path: m.onnx\n  compress:\n";
        let parse = |extra: &str| {
            DeploymentSpec::from_str(&format!("{base}{extra}"), Path::new("modelport.yaml"))
        };
        let ok = parse("    to: int8\n    per_channel: true\n    max_degradation: {agreement: 1%, accuracy: 0.01, sqnr: 30}\n").unwrap();
        let c = ok.model.compress.unwrap();
        assert_eq!(c.to, Some(CompressTo::Int8));
        assert_eq!(c.goals(), vec!["accuracy=0.01", "agreement=1%", "sqnr=30"]);
        for (extra, field) in [
            ("    per_channel: true\n", "model.compress"),
            (
                "    to: fp16\n    per_channel: true\n",
                "model.compress.per_channel",
            ),
            ("    prune: 1.5\n", "model.compress.prune"),
            (
                "    to: int8\n    max_degradation: {speed: 1}\n",
                "model.compress.max_degradation.speed",
            ),
            (
                "    to: int8\n    max_degradation: {sqnr: 30%}\n",
                "model.compress.max_degradation.sqnr",
            ),
            (
                "    to: int8\n    max_degradation: {accuracy: lots}\n",
                "model.compress.max_degradation.accuracy",
            ),
        ] {
            let err = parse(extra).unwrap_err().to_string();
            assert!(err.contains(field), "{extra}: {err}");
        }
        let err = parse("    to: int4\n").unwrap_err().to_string();
        assert!(err.contains("int4"), "{err}");
        // A spec without compress hashes as before: the key is left out.
        let plain = DeploymentSpec::from_str(
            "name: m\nmodel:\n  path: m.onnx\n",
            Path::new("modelport.yaml"),
        )
        .unwrap();
        assert!(!plain.canonical_json().contains("compress"));
    }

    #[test]
    fn reference_doc_parses() {
        let text = include_str!("../../../docs/modelport.yaml");
        let spec = DeploymentSpec::from_str(text, Path::new("docs/modelport.yaml"))
            .unwrap_or_else(|e| panic!("{e}\nhint: {:?}", e.hint()));
        assert!(spec.provider.aws.is_some() && spec.provider.gcp.is_some());
    }

    #[test]
    fn init_template_parses_once_filled() {
        let name = DeploymentName::new("iris").unwrap();
        let text = render_template(INIT_TEMPLATE, &name, "model.onnx");
        assert!(!text.contains("{{"), "{text}");
        let spec = DeploymentSpec::from_str(&text, Path::new(FILE))
            .unwrap_or_else(|e| panic!("{e}\nhint: {:?}", e.hint()));
        assert_eq!(spec.name, name);
        assert_eq!(spec.model.path, Path::new("model.onnx"));
        assert!(spec.provider.aws.is_none() && spec.provider.gcp.is_none());

        let odd = render_template(INIT_TEMPLATE, &name, "my models/it's #1.onnx");
        let spec = DeploymentSpec::from_str(&odd, Path::new(FILE)).unwrap();
        assert_eq!(spec.model.path, Path::new("my models/it's #1.onnx"));
        let numeric = render_template(INIT_TEMPLATE, &DeploymentName::new("2024").unwrap(), "1.5");
        let spec = DeploymentSpec::from_str(&numeric, Path::new(FILE)).unwrap();
        assert_eq!(
            (spec.name.as_str(), spec.model.path.as_path()),
            ("2024", Path::new("1.5"))
        );
    }
}
