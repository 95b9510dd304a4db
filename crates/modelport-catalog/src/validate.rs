//! Checking modelport.yaml's `compute` section against a catalog, and what it costs.
//!
//! Errors are [`SpecError`]s, the type modelport.yaml's own parse errors have: they name
//! the file, the line and the field (`compute.instance_type`) and suggest the nearest
//! valid values, by edit distance and by family, because most wrong names are typos or
//! a size that does not exist in a family that does.

use std::fmt;
use std::path::Path;

use modelport_core::spec::{
    DeploymentSpec, Flavour, SpecError, VERTEX_PUBLIC_MAX_BODY_BYTES, VOLUME_RANGE_GB,
    derived_volume_gb,
};
use serde::Serialize;

use crate::data::{AcceleratorType, BuiltinAccelerator, Catalog, Machine, Platform};
use crate::fit::Offer;
use crate::{HOURS_PER_MONTH, dollars};

/// What a deployment runs on, checked against the catalog and priced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Compute {
    /// Machines billed by the hour, between `min` and `max` of them.
    Nodes { offer: Offer, min: u32, max: u32 },
    /// Serverless capacity billed per second of use, nothing at rest.
    Serverless {
        memory_mb: u32,
        max_concurrency: u32,
        usd_per_gb_second: f64,
        price_date: String,
    },
    /// This machine; nothing is billed.
    Local,
}

/// The cost of a [`Compute`], per hour and per month of 730 hours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    /// False when nothing is billed (this machine).
    pub billable: bool,
    /// With the fewest machines running.
    pub usd_per_hour: f64,
    /// With the most machines running (autoscaling); equal to `usd_per_hour` otherwise.
    pub usd_per_hour_max: f64,
    pub usd_per_month: f64,
    pub usd_per_month_max: f64,
    /// How usage is billed on top, for serverless capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_use: Option<String>,
    /// The date of the list price used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_date: Option<String>,
}

impl Cost {
    /// Nothing billed.
    pub fn free() -> Cost {
        Cost {
            billable: false,
            usd_per_hour: 0.0,
            usd_per_hour_max: 0.0,
            usd_per_month: 0.0,
            usd_per_month_max: 0.0,
            per_use: None,
            price_date: None,
        }
    }

    /// `$0.115/h ($83.95/month)`, with a range when the machine count scales.
    pub fn describe(&self) -> String {
        let range = |a: f64, b: f64| {
            if (a - b).abs() < 1e-9 {
                dollars(a)
            } else {
                format!("{}–{}", dollars(a), dollars(b))
            }
        };
        let mut s = format!(
            "{}/h ({}/month)",
            range(self.usd_per_hour, self.usd_per_hour_max),
            range(self.usd_per_month, self.usd_per_month_max)
        );
        if let Some(u) = &self.per_use {
            s.push_str(&format!(" + {u}"));
        }
        s
    }
}

impl Compute {
    /// True when running it costs money at rest or in use.
    pub fn is_billable(&self) -> bool {
        !matches!(self, Compute::Local)
    }

    pub fn cost(&self) -> Cost {
        match self {
            Compute::Local => Cost::free(),
            Compute::Nodes { offer, min, max } => {
                let (lo, hi) = (
                    offer.usd_per_hour * f64::from(*min),
                    offer.usd_per_hour * f64::from(*max),
                );
                Cost {
                    billable: true,
                    usd_per_hour: lo,
                    usd_per_hour_max: hi,
                    usd_per_month: lo * HOURS_PER_MONTH,
                    usd_per_month_max: hi * HOURS_PER_MONTH,
                    per_use: None,
                    price_date: Some(offer.price_date.clone()),
                }
            }
            Compute::Serverless {
                memory_mb,
                usd_per_gb_second,
                price_date,
                ..
            } => {
                let per_second = usd_per_gb_second * f64::from(*memory_mb) / 1024.0;
                Cost {
                    billable: true,
                    per_use: Some(format!(
                        "${per_second:.7} per second of inference ({} per hour busy)",
                        dollars(per_second * 3600.0)
                    )),
                    price_date: Some(price_date.clone()),
                    ..Cost::free()
                }
            }
        }
    }

    /// `ml.m5.large × 1 (2 vCPU, 8 GiB)`, `serverless 2048 MB, up to 5 concurrent`.
    pub fn describe(&self) -> String {
        match self {
            Compute::Local => "this machine".into(),
            Compute::Nodes { offer, min, max } => {
                let count = if min == max {
                    format!("× {min}")
                } else {
                    format!("× {min}–{max}")
                };
                format!("{} {count} ({})", offer.name(), offer.resources())
            }
            Compute::Serverless {
                memory_mb,
                max_concurrency,
                ..
            } => format!("serverless {memory_mb} MB, up to {max_concurrency} concurrent"),
        }
    }
}

/// A warning about a deployment that is valid but probably not what the user wants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The modelport.yaml field it is about, like `compute.instance_type`.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The largest request body a deployment accepts, and which limit sets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayloadLimit {
    pub bytes: u64,
    pub reason: String,
}

impl Catalog {
    /// Checks the spec's `compute` section as this platform reads it and prices it.
    /// The error names the field and suggests the nearest valid values.
    pub fn compute(&self, spec: &DeploymentSpec) -> Result<Compute, Box<SpecError>> {
        let fail = |p: Problem| Err(p.into_error(&spec.file));
        match self.platform {
            Platform::Sagemaker => self.sagemaker(spec).or_else(fail),
            Platform::Vertex => self.vertex(spec).or_else(fail),
        }
    }

    fn sagemaker(&self, spec: &DeploymentSpec) -> Result<Compute, Problem> {
        let c = &spec.compute;
        if let Some(s) = &c.serverless {
            let offer = self.serverless.as_ref().ok_or_else(|| {
                Problem::new(
                    "compute.serverless",
                    format!(
                        "{} has no serverless offer in the catalog",
                        self.platform.title()
                    ),
                )
            })?;
            if !offer.memory_mb.contains(&s.memory_mb) {
                let below = offer.memory_mb.iter().rev().find(|&&m| m < s.memory_mb);
                let above = offer.memory_mb.iter().find(|&&m| m > s.memory_mb);
                let near: Vec<String> =
                    below.into_iter().chain(above).map(u32::to_string).collect();
                let all: Vec<String> = offer.memory_mb.iter().map(u32::to_string).collect();
                return Err(Problem::new(
                    "compute.serverless.memory_mb",
                    format!(
                        "{} MB is not a serverless memory size; {} accepts {} MB",
                        s.memory_mb,
                        self.platform.title(),
                        all.join(", ")
                    ),
                )
                .hint(format!("did you mean {}?", near.join(" or "))));
            }
            if !(1..=offer.max_concurrency).contains(&s.max_concurrency) {
                return Err(Problem::new(
                    "compute.serverless.max_concurrency",
                    format!(
                        "is {}; {} accepts 1 to {}",
                        s.max_concurrency,
                        self.platform.title(),
                        offer.max_concurrency
                    ),
                ));
            }
            return Ok(Compute::Serverless {
                memory_mb: s.memory_mb,
                max_concurrency: s.max_concurrency,
                usd_per_gb_second: offer.price.usd_per_gb_second,
                price_date: offer.price.date.clone(),
            });
        }
        let machine = self.machine_named(c.instance_type())?;
        let count = c.instance_count();
        Ok(Compute::Nodes {
            offer: Offer::of(machine, None),
            min: count,
            max: count,
        })
    }

    /// The ML storage volume, GB, a SageMaker deployment of a model asks for
    /// (`VolumeSizeInGB`): `compute.volume_size_gb`, else one sized to a large model
    /// ([`derived_volume_gb`]), else none (the platform's default). `model_bytes` is
    /// what the model's files weigh and `disk` what they take on the instance
    /// ([`modelport_core::spec::disk_bytes`]). Machines with instance storage take no
    /// volume: the model must fit their own disk. Refused, naming the field, when
    /// the model cannot fit.
    pub fn volume_gb(
        &self,
        spec: &DeploymentSpec,
        model_bytes: u64,
        disk: u64,
    ) -> Result<Option<u32>, Box<SpecError>> {
        self.volume(spec, model_bytes, disk)
            .map_err(|p| p.into_error(&spec.file))
    }

    fn volume(
        &self,
        spec: &DeploymentSpec,
        model_bytes: u64,
        disk: u64,
    ) -> Result<Option<u32>, Problem> {
        let c = &spec.compute;
        if self.platform != Platform::Sagemaker || c.serverless.is_some() {
            return Ok(None);
        }
        let instance = c.instance_type();
        let about = crate::fit::gib(disk);
        let store = self.machine(instance).and_then(|m| m.instance_storage_gb);
        if let Some(store) = store {
            if c.volume_size_gb.is_some() {
                return Err(Problem::new(
                    "compute.volume_size_gb",
                    format!(
                        "{instance} keeps the model on its {store} GB of instance storage \
                         (NVMe) and takes no EBS volume"
                    ),
                )
                .hint(
                    "remove volume_size_gb, or choose an instance type without instance storage",
                ));
            }
            let need = derived_volume_gb(model_bytes, disk).unwrap_or(0);
            if need > u64::from(store) {
                return Err(Problem::new(
                    "compute.instance_type",
                    format!(
                        "{instance} has {store} GB of instance storage; the model takes about \
                         {about} on the instance, {need} GB with room for the container"
                    ),
                )
                .hint(self.storage_hint(need)));
            }
            return Ok(None);
        }
        if let Some(v) = c.volume_size_gb {
            if u64::from(v) << 30 < disk {
                let need = derived_volume_gb(u64::MAX, disk).unwrap_or(0);
                return Err(Problem::new(
                    "compute.volume_size_gb",
                    format!("is {v} GB; the model takes about {about} on the instance"),
                )
                .hint(format!(
                    "set it to {need} or more, or leave it out for modelport to size it"
                )));
            }
            return Ok(Some(v));
        }
        match derived_volume_gb(model_bytes, disk) {
            None => Ok(None),
            Some(need) if need <= u64::from(*VOLUME_RANGE_GB.end()) => Ok(Some(need as u32)),
            Some(need) => Err(Problem::new(
                "compute.instance_type",
                format!(
                    "the model takes about {about} on the instance ({need} GB with room for the \
                     container), more than the {} GB SageMaker attaches to {instance}",
                    VOLUME_RANGE_GB.end()
                ),
            )
            .hint(self.storage_hint(need))),
        }
    }

    /// The cheapest machines whose instance storage holds `need` GB.
    fn storage_hint(&self, need: u64) -> String {
        let mut fits: Vec<&Machine> = self
            .machines
            .iter()
            .filter(|m| m.instance_storage_gb.is_some_and(|s| u64::from(s) >= need))
            .collect();
        fits.sort_by(|a, b| a.price.usd_per_hour.total_cmp(&b.price.usd_per_hour));
        match fits.first() {
            Some(m) => format!(
                "choose an instance type with enough instance storage; the cheapest is {} \
                 ({} GB, {}/h)",
                m.name,
                m.instance_storage_gb.unwrap_or(0),
                dollars(m.price.usd_per_hour)
            ),
            None => "no instance type in the catalog has that much storage: split the model or \
                     compress it (`model.compress`)"
                .into(),
        }
    }

    fn vertex(&self, spec: &DeploymentSpec) -> Result<Compute, Problem> {
        let c = &spec.compute;
        let machine = self.machine_named(c.machine_type())?;
        let attached = match (&c.accelerator, &machine.accelerator) {
            (None, None) => None,
            (None, Some(b)) => {
                let t = b.accelerator_type.as_deref().unwrap_or(&b.model);
                return Err(Problem::new(
                    "compute.machine_type",
                    format!(
                        "{} comes with {} {t}, and {} needs them named in `accelerator`",
                        machine.name,
                        b.count,
                        self.platform.title()
                    ),
                )
                .hint(format!(
                    "add `accelerator: {{ type: {t}, count: {} }}` under `compute`",
                    b.count
                )));
            }
            (Some(want), builtin) => {
                let acc = self.accelerator(&want.kind).ok_or_else(|| {
                    let names = self.accelerators.iter().map(|a| a.name.as_str());
                    let near = nearest(&want.kind, names);
                    let all: Vec<&str> =
                        self.accelerators.iter().map(|a| a.name.as_str()).collect();
                    let hint = match near.first() {
                        Some(n) => {
                            format!("did you mean `{n}`? accelerator types: {}", all.join(", "))
                        }
                        None => format!("accelerator types: {}", all.join(", ")),
                    };
                    Problem::new(
                        "compute.accelerator.type",
                        format!(
                            "`{}` is not a {} accelerator type",
                            want.kind,
                            self.platform.title()
                        ),
                    )
                    .hint(hint)
                })?;
                match builtin {
                    Some(b) => check_builtin(machine, b, acc, want.count)?,
                    None => Some(self.check_attach(machine, acc, want.count)?),
                }
            }
        };
        Ok(Compute::Nodes {
            offer: Offer::of(machine, attached),
            min: c.min_replicas,
            max: c.max_replicas(),
        })
    }

    fn check_attach(
        &self,
        machine: &Machine,
        acc: &AcceleratorType,
        count: u32,
    ) -> Result<(BuiltinAccelerator, f64), Problem> {
        let Some(attach) = &acc.attach else {
            // A built-in accelerator named for a machine without it.
            let hosts: Vec<&Machine> = self
                .machines
                .iter()
                .filter(|m| {
                    m.accelerator
                        .as_ref()
                        .and_then(|b| b.accelerator_type.as_deref())
                        == Some(acc.name.as_str())
                })
                .collect();
            let smallest = hosts
                .iter()
                .min_by(|a, b| a.price.usd_per_hour.total_cmp(&b.price.usd_per_hour));
            let families = unique(hosts.iter().map(|m| m.family.as_str()));
            return Err(Problem::new(
                "compute.accelerator.type",
                format!(
                    "{} cannot attach to {}: it only comes built into {} machines",
                    acc.name,
                    machine.name,
                    families.join(", ")
                ),
            )
            .hint(match smallest {
                Some(m) => format!(
                    "use `machine_type: {}` (the smallest with {}), or an accelerator that attaches to {}: {}",
                    m.name,
                    acc.name,
                    machine.family,
                    self.attachable_to(machine).join(", ")
                ),
                None => "remove `accelerator` or change `machine_type`".to_string(),
            }));
        };
        if !attach.families.contains(&machine.family) {
            let same_size = self
                .machines
                .iter()
                .filter(|m| attach.families.contains(&m.family) && m.vcpu >= machine.vcpu)
                .min_by(|a, b| a.price.usd_per_hour.total_cmp(&b.price.usd_per_hour));
            let others = self.attachable_to(machine);
            let mut hint = match same_size {
                Some(m) => format!(
                    "use `machine_type: {}` ({} vCPU, {} GiB)",
                    m.name, m.vcpu, m.memory_gib
                ),
                None => format!("use a {} machine type", attach.families.join(" or ")),
            };
            if !others.is_empty() {
                hint.push_str(&format!(", or on {}: {}", machine.name, others.join(", ")));
            } else {
                hint.push_str(&format!(
                    ", or remove `accelerator` ({} takes none)",
                    machine.name
                ));
            }
            return Err(Problem::new(
                "compute.accelerator.type",
                format!(
                    "{} cannot attach to {}: it attaches to {} machines",
                    acc.name,
                    machine.name,
                    attach
                        .families
                        .iter()
                        .map(|f| format!("{f}-*"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            )
            .hint(hint));
        }
        if !attach.counts.contains(&count) {
            let below = attach.counts.iter().rev().find(|&&n| n < count);
            let above = attach.counts.iter().find(|&&n| n > count);
            let near: Vec<String> = below.into_iter().chain(above).map(u32::to_string).collect();
            let all: Vec<String> = attach.counts.iter().map(u32::to_string).collect();
            return Err(Problem::new(
                "compute.accelerator.count",
                format!(
                    "{count} × {} is not allowed; the count is one of {}",
                    acc.name,
                    all.join(", ")
                ),
            )
            .hint(format!("did you mean {}?", near.join(" or "))));
        }
        let price = acc.price.as_ref().map_or(0.0, |p| p.usd_per_hour);
        Ok((
            BuiltinAccelerator {
                kind: crate::AcceleratorKind::Gpu,
                accelerator_type: Some(acc.name.clone()),
                model: acc.model.clone(),
                count,
                memory_gib: acc.memory_gib,
            },
            price * f64::from(count),
        ))
    }

    /// Accelerator types that attach to `machine`'s family.
    fn attachable_to(&self, machine: &Machine) -> Vec<String> {
        self.accelerators
            .iter()
            .filter(|a| {
                a.attach
                    .as_ref()
                    .is_some_and(|t| t.families.contains(&machine.family))
            })
            .map(|a| a.name.clone())
            .collect()
    }

    fn machine_named(&self, name: &str) -> Result<&Machine, Problem> {
        if let Some(m) = self.machine(name) {
            return Ok(m);
        }
        let field = self.platform.machine_field();
        let names = self.machines.iter().map(|m| m.name.as_str());
        let near = nearest(name, names);
        let family = self
            .machines
            .iter()
            .map(|m| m.family.as_str())
            .filter(|f| {
                name.strip_prefix(f)
                    .is_some_and(|rest| rest.starts_with(['.', '-']))
            })
            .max_by_key(|f| f.len());
        let mut hint = Vec::new();
        if let Some(n) = near.first() {
            hint.push(format!("did you mean `{n}`?"));
        }
        match family {
            Some(f) => {
                let sizes: Vec<&str> = self
                    .machines
                    .iter()
                    .filter(|m| m.family == f)
                    .map(|m| m.name.as_str())
                    .collect();
                hint.push(format!("{f} has {}", sizes.join(", ")));
            }
            None if near.len() > 1 => hint.push(format!("also near: {}", near[1..].join(", "))),
            None => {}
        }
        if hint.is_empty() {
            hint.push(format!(
                "`modelport catalog --provider {}` lists the {} {}s modelport knows",
                self.provider,
                self.machines.len(),
                self.platform.machine_word()
            ));
        }
        Err(Problem::new(
            field,
            format!(
                "`{name}` is not a {} {} (catalog: {})",
                self.platform.title(),
                self.platform.machine_word(),
                self.origin
            ),
        )
        .hint(hint.join("; ")))
    }

    /// The largest request the deployment accepts: the platform's limit, or
    /// `serving.max_body_bytes` when smaller.
    pub fn payload_limit(&self, spec: &DeploymentSpec) -> PayloadLimit {
        let l = &self.limits;
        let (platform, why) = match self.platform {
            Platform::Sagemaker if spec.compute.serverless.is_some() => {
                (l.serverless_payload_bytes, "SageMaker serverless limit")
            }
            Platform::Sagemaker => (l.realtime_payload_bytes, "SageMaker real-time limit"),
            Platform::Vertex
                if spec
                    .provider
                    .gcp
                    .as_ref()
                    .is_some_and(|g| g.dedicated_endpoint) =>
            {
                (
                    l.dedicated_payload_bytes,
                    "Vertex AI dedicated endpoint limit",
                )
            }
            Platform::Vertex => (
                l.public_payload_bytes,
                "Vertex AI shared public endpoint limit",
            ),
        };
        capped(spec.serving.max_body_bytes, platform, why)
    }

    /// A note when the spec deploys to another region than the catalog's prices are for.
    pub fn region_note(&self, spec: &DeploymentSpec) -> Option<Finding> {
        let (field, region) = match self.platform {
            Platform::Sagemaker => (
                "provider.aws.region",
                spec.provider.aws.as_ref()?.region.clone()?,
            ),
            Platform::Vertex => (
                "provider.gcp.region",
                spec.provider.gcp.as_ref()?.region.clone(),
            ),
        };
        (region != self.region).then(|| Finding {
            field: field.into(),
            message: format!(
                "prices are {}'s list prices; {region} may cost more or less",
                self.region
            ),
            hint: None,
        })
    }
}

/// The payload limit of a provider without a catalog (this machine): the server's
/// `serving.max_body_bytes`, and Vertex's limit when the local server mimics Vertex.
pub fn local_payload_limit(spec: &DeploymentSpec) -> PayloadLimit {
    match spec.provider.local.flavour {
        Flavour::Vertex => capped(
            spec.serving.max_body_bytes,
            Some(VERTEX_PUBLIC_MAX_BODY_BYTES),
            "Vertex AI shared public endpoint limit",
        ),
        Flavour::Sagemaker => capped(spec.serving.max_body_bytes, None, ""),
    }
}

fn capped(serving: u64, platform: Option<u64>, why: &str) -> PayloadLimit {
    match platform {
        Some(p) if p <= serving => PayloadLimit {
            bytes: p,
            reason: why.into(),
        },
        _ => PayloadLimit {
            bytes: serving,
            reason: "serving.max_body_bytes".into(),
        },
    }
}

fn check_builtin(
    machine: &Machine,
    builtin: &BuiltinAccelerator,
    acc: &AcceleratorType,
    count: u32,
) -> Result<Option<(BuiltinAccelerator, f64)>, Problem> {
    let t = builtin
        .accelerator_type
        .as_deref()
        .unwrap_or(&builtin.model);
    if acc.name != t {
        return Err(Problem::new(
            "compute.accelerator.type",
            format!(
                "{} comes with {} {t}; {} cannot be added to it",
                machine.name, builtin.count, acc.name
            ),
        )
        .hint(format!(
            "write `type: {t}`, or pick a machine type for {}",
            acc.name
        )));
    }
    if count != builtin.count {
        return Err(Problem::new(
            "compute.accelerator.count",
            format!(
                "{} comes with exactly {} {t}, not {count}",
                machine.name, builtin.count
            ),
        )
        .hint(format!(
            "write `count: {}`, or pick the {} size with {count} GPUs",
            builtin.count, machine.family
        )));
    }
    // Built in: already in the machine's price and resources.
    Ok(None)
}

/// Names within a small edit distance of `word`, nearest first (at most three).
fn nearest<'a>(word: &str, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (word.chars().count() / 3).max(3);
    let word = word.to_lowercase();
    // Ties go to names that contain what was typed (`m5.large` in `ml.m5.large`).
    let mut scored: Vec<(usize, bool, &str)> = names
        .map(|n| {
            let lower = n.to_lowercase();
            (
                strsim::levenshtein(&word, &lower),
                !lower.contains(&word),
                n,
            )
        })
        .filter(|(d, _, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, _, n)| n).collect()
}

fn unique<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// A broken rule before it is located in the file.
#[derive(Debug)]
struct Problem {
    field: &'static str,
    message: String,
    hint: Option<String>,
}

impl Problem {
    fn new(field: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            field,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    fn into_error(self, file: &Path) -> Box<SpecError> {
        let path: Vec<&str> = self.field.split('.').collect();
        let at = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| locate(&text, &path));
        Box::new(SpecError {
            file: file.to_path_buf(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            field: Some(self.field.to_string()),
            message: self.message,
            hint: self.hint,
        })
    }
}

/// The line and column (1-based) of the key at `path` in YAML `text`, for block
/// mappings and a last level written as a flow mapping (`accelerator: {type: X}`).
/// When the last key is absent (a default applies), its parent's position.
fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut best: Option<(usize, (usize, usize))> = None;
    for (i, line) in text.lines().enumerate() {
        let content = line.split(" #").next().unwrap_or(line);
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = content.len() - trimmed.len();
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches('"').to_string();
        while stack.last().is_some_and(|(n, _)| *n >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let depth = stack.len();
        if depth > path.len() || stack.iter().zip(path).any(|((_, k), p)| k != p) {
            continue;
        }
        if best.is_none_or(|(d, _)| depth > d) {
            best = Some((depth, (i + 1, indent + 1)));
        }
        if depth == path.len() {
            return Some((i + 1, indent + 1));
        }
        // The next key may sit inside a flow mapping on this line.
        let rest = value.trim_start();
        if depth == path.len() - 1 && rest.starts_with('{') {
            let needle = format!("{}:", path[depth]);
            if let Some(pos) = value.find(&needle) {
                let col = content.len() - value.len() + pos + 1;
                return Some((i + 1, col));
            }
        }
    }
    best.map(|(_, at)| at)
}

#[cfg(test)]
mod locate_tests {
    use super::locate;

    #[test]
    fn finds_block_and_flow_keys() {
        let text = "name: x\ncompute:\n  # c\n  instance_type: ml.m5.larg\n  accelerator: {type: T, count: 3}\nverify:\n  count: 1\n";
        assert_eq!(locate(text, &["compute", "instance_type"]), Some((4, 3)));
        assert_eq!(
            locate(text, &["compute", "accelerator", "count"]),
            Some((5, 26))
        );
        assert_eq!(locate(text, &["compute", "machine_type"]), Some((2, 1)));
        assert_eq!(locate(text, &["serving", "x"]), None);
    }
}
