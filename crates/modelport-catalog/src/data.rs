//! The catalog files as types: what `providers/aws.yaml` and `providers/gcp.yaml` hold.
//!
//! Both files share one schema so that lookups, prices and fit checks are written once;
//! the `platform` field says which keys of `compute` in modelport.yaml the provider reads.
//! Every struct denies unknown fields, because a misspelt key in a price list would
//! silently drop a price.

use serde::{Deserialize, Serialize};

/// Which keys of `modelport.yaml`'s `compute` section a platform reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// SageMaker: `instance_type`, `instance_count` or `serverless`.
    Sagemaker,
    /// Vertex AI: `machine_type`, `accelerator`, `min_replicas`, `max_replicas`.
    Vertex,
}

impl Platform {
    /// The platform's name for people.
    pub fn title(self) -> &'static str {
        match self {
            Platform::Sagemaker => "SageMaker",
            Platform::Vertex => "Vertex AI",
        }
    }

    /// The modelport.yaml field that names the machine.
    pub fn machine_field(self) -> &'static str {
        match self {
            Platform::Sagemaker => "compute.instance_type",
            Platform::Vertex => "compute.machine_type",
        }
    }

    /// What the platform calls a machine.
    pub fn machine_word(self) -> &'static str {
        match self {
            Platform::Sagemaker => "instance type",
            Platform::Vertex => "machine type",
        }
    }
}

/// A list price with where and when it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// On-demand USD per hour in the catalog's region.
    pub usd_per_hour: f64,
    /// The day the price was valid, `YYYY-MM-DD`.
    pub date: String,
    /// The page the price comes from.
    pub source: String,
}

/// What kind of accelerator a machine carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceleratorKind {
    /// An NVIDIA GPU, usable by onnxruntime's CUDA provider.
    Gpu,
    /// AWS Inferentia: needs models compiled with the Neuron SDK.
    Inferentia,
}

/// The accelerators built into a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinAccelerator {
    pub kind: AcceleratorKind,
    /// The platform's accelerator type, when it has to be named (Vertex's
    /// `acceleratorType`, like `NVIDIA_L4`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub accelerator_type: Option<String>,
    /// The chip, like `NVIDIA T4`.
    pub model: String,
    pub count: u32,
    /// Memory of one device, GiB.
    pub memory_gib: f64,
}

/// One instance or machine type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// The platform's name, like `ml.m5.large` or `n1-standard-4`.
    pub name: String,
    /// The family it belongs to, like `ml.m5` or `n1-standard`.
    pub family: String,
    pub vcpu: u32,
    pub memory_gib: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<BuiltinAccelerator>,
    /// The machine's own NVMe instance storage, GB, when it has some. SageMaker
    /// keeps the model there and attaches no EBS volume (`VolumeSizeInGB` is not
    /// set for these machines); absent for EBS-only machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_storage_gb: Option<u32>,
    pub price: Price,
}

impl Machine {
    /// True when the machine carries NVIDIA GPUs.
    pub fn has_gpu(&self) -> bool {
        self.accelerator
            .as_ref()
            .is_some_and(|a| a.kind == AcceleratorKind::Gpu)
    }
}

/// Where an attachable accelerator may go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attach {
    /// Machine families it attaches to, like `n1-standard`.
    pub families: Vec<String>,
    /// The counts allowed per machine.
    pub counts: Vec<u32>,
}

/// An accelerator type as modelport.yaml's `compute.accelerator.type` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorType {
    /// The platform's name, like `NVIDIA_TESLA_T4`.
    pub name: String,
    pub model: String,
    /// Memory of one device, GiB.
    pub memory_gib: f64,
    /// Attachable to these machines at these counts; absent for built-in accelerators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<Attach>,
    /// Only comes built into machine types (a2, a3, g2 on Vertex AI).
    #[serde(default)]
    pub builtin: bool,
    /// Per device and hour, on top of the machine; absent for built-in accelerators,
    /// whose price is in the machine's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
}

/// Request size and time limits of a platform.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_payload_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_timeout_s: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverless_payload_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverless_timeout_s: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub async_payload_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub async_timeout_s: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_payload_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedicated_payload_bytes: Option<u64>,
}

/// The price of serverless capacity: per second of compute and GB of memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePrice {
    pub usd_per_gb_second: f64,
    pub date: String,
    pub source: String,
}

/// Serverless sizes and limits (SageMaker Serverless Inference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerlessOffer {
    /// The memory sizes allowed, MB.
    pub memory_mb: Vec<u32>,
    /// The most concurrent invocations of one endpoint.
    pub max_concurrency: u32,
    /// The default account quota over every serverless endpoint in a region.
    pub account_max_concurrency: u32,
    pub price: UsagePrice,
}

/// One provider's catalog file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The provider's `name()`, like `aws`.
    pub provider: String,
    pub platform: Platform,
    /// The region the prices are for.
    pub region: String,
    pub currency: String,
    pub limits: Limits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serverless: Option<ServerlessOffer>,
    pub machines: Vec<Machine>,
    #[serde(default)]
    pub accelerators: Vec<AcceleratorType>,
    /// Where the catalog was read from: `embedded` or a file path.
    #[serde(skip)]
    pub origin: String,
}
