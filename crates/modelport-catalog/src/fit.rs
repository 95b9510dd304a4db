//! Does the model fit, and what is the cheapest machine it fits on?
//!
//! The estimate is deliberately simple and written down here so that users can check
//! it: `modelport serve` holds the model file once while loading and one engine session
//! per worker, and runs one worker per vCPU by default; each session holds the weights
//! plus working memory; the process, the runtime library and the HTTP server need a
//! fixed base. On a GPU machine the estimate assumes one session per GPU, each holding
//! the weights plus the CUDA context and workspace on its device. Weights are counted in bytes of their stored dtypes (float16 weights
//! count half of float32 ones).

use serde::Serialize;

use crate::data::{AcceleratorKind, BuiltinAccelerator, Catalog, Machine};
use crate::validate::{Compute, Finding};
use crate::{HOURS_PER_MONTH, dollars};

const MIB: u64 = 1024 * 1024;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Memory of the process without the model: runtime library, HTTP server, container.
pub const BASE_BYTES: u64 = 512 * MIB;
/// Working memory of one engine session beyond its weights.
pub const SESSION_BYTES: u64 = 64 * MIB;
/// CUDA context and workspace of a GPU session.
pub const GPU_BASE_BYTES: u64 = 1024 * MIB;
/// Machines with at most this much memory are never called oversized: they are the
/// smallest sizes of their families.
pub const SMALL_GIB: f64 = 8.0;
/// Memory this many times the need is "grossly oversized".
pub const OVERSIZED_FACTOR: f64 = 8.0;

/// What the model weighs, measured by the caller (the CLI reads the ONNX file).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelFootprint {
    /// Size of the model file(s) on disk.
    pub file_bytes: u64,
    /// Elements of every initializer.
    pub parameters: u64,
    /// Bytes of initializer data in their stored dtypes.
    pub weight_bytes: u64,
}

impl ModelFootprint {
    /// Bytes of weights a session holds: the initializers' bytes, or 4 bytes per
    /// parameter when their data was not measured, but never less than the file.
    pub fn model_bytes(&self) -> u64 {
        let weights = if self.weight_bytes > 0 {
            self.weight_bytes
        } else {
            self.parameters.saturating_mul(4)
        };
        weights.max(self.file_bytes)
    }

    /// Host memory the serving process needs with `workers` sessions.
    pub fn host_bytes(&self, workers: u32) -> u64 {
        let m = self.model_bytes();
        BASE_BYTES + m + u64::from(workers.max(1)) * (m + SESSION_BYTES)
    }

    /// GPU memory one session needs on one device.
    pub fn gpu_bytes(&self) -> u64 {
        GPU_BASE_BYTES + self.model_bytes() + self.model_bytes() / 2
    }
}

/// One thing to rent: a machine, maybe with accelerators attached, and its price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    /// The machine type.
    pub machine: String,
    pub vcpu: u32,
    pub memory_gib: f64,
    /// Built in or attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<BuiltinAccelerator>,
    /// True when the accelerator is attached (and priced) on top of the machine.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attached: bool,
    /// Machine plus attached accelerators, per hour.
    pub usd_per_hour: f64,
    pub usd_per_month: f64,
    pub price_date: String,
}

impl Offer {
    /// `machine` alone, or with `attached` (an accelerator and its price for the count).
    pub(crate) fn of(machine: &Machine, attached: Option<(BuiltinAccelerator, f64)>) -> Offer {
        let (accelerator, extra, is_attached) = match attached {
            Some((a, price)) => (Some(a), price, true),
            None => (machine.accelerator.clone(), 0.0, false),
        };
        let usd_per_hour = machine.price.usd_per_hour + extra;
        Offer {
            machine: machine.name.clone(),
            vcpu: machine.vcpu,
            memory_gib: machine.memory_gib,
            accelerator,
            attached: is_attached,
            usd_per_hour,
            usd_per_month: usd_per_hour * HOURS_PER_MONTH,
            price_date: machine.price.date.clone(),
        }
    }

    /// `n1-standard-4 + 1 NVIDIA_TESLA_T4`, or the machine alone.
    pub fn name(&self) -> String {
        match &self.accelerator {
            Some(a) if self.attached => format!(
                "{} + {} {}",
                self.machine,
                a.count,
                a.accelerator_type.as_deref().unwrap_or(&a.model)
            ),
            _ => self.machine.clone(),
        }
    }

    /// `4 vCPU, 16 GiB, 1 × NVIDIA T4 16 GiB`.
    pub fn resources(&self) -> String {
        let mut s = format!("{} vCPU, {} GiB", self.vcpu, self.memory_gib);
        if let Some(a) = &self.accelerator {
            s.push_str(&format!(", {} × {} {} GiB", a.count, a.model, a.memory_gib));
        }
        s
    }

    /// Memory of one of its GPUs, when it has NVIDIA GPUs.
    pub fn gpu_memory_gib(&self) -> Option<f64> {
        self.accelerator
            .as_ref()
            .filter(|a| a.kind == AcceleratorKind::Gpu)
            .map(|a| a.memory_gib)
    }

    /// Engine sessions the server runs: one per GPU when it serves on GPUs, else one
    /// per vCPU (`modelport serve`'s default workers).
    pub fn workers(&self, on_gpu: bool) -> u32 {
        match &self.accelerator {
            Some(a) if on_gpu && a.kind == AcceleratorKind::Gpu => a.count,
            _ => self.vcpu,
        }
    }

    fn fits(&self, model: &ModelFootprint, on_gpu: bool) -> bool {
        let host_ok = self.memory_gib * GIB >= model.host_bytes(self.workers(on_gpu)) as f64;
        let gpu_ok = !on_gpu
            || self
                .gpu_memory_gib()
                .is_some_and(|g| g * GIB >= model.gpu_bytes() as f64);
        host_ok && gpu_ok
    }
}

/// Which offers [`Catalog::offers`] and [`Catalog::cheapest_fits`] consider.
#[derive(Debug, Clone, Default)]
pub struct FitFilter {
    /// Only offers with an NVIDIA GPU (built in, or attached where the platform
    /// attaches them; for a fit, its memory must hold the model too).
    pub gpu: bool,
    /// Only offers at most this many USD per hour.
    pub max_usd_per_hour: Option<f64>,
    /// Only machines of this family (`ml.g5`, `n1-standard`).
    pub family: Option<String>,
}

impl FitFilter {
    /// True when the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        !self.gpu && self.max_usd_per_hour.is_none() && self.family.is_none()
    }
}

pub(crate) fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB)
}

impl Catalog {
    /// Every offer the model fits on, cheapest first. Inferentia machines are left out
    /// (they need models compiled with the Neuron SDK); attachable accelerators are
    /// offered on each machine they attach to, at their smallest count.
    pub fn cheapest_fits(&self, model: &ModelFootprint, filter: &FitFilter) -> Vec<Offer> {
        let mut offers = self.matching(filter, false);
        offers.retain(|o| o.fits(model, filter.gpu));
        offers
    }

    /// Every offer `filter` lets through, whatever the model, cheapest first: each
    /// machine, and with `gpu` each machine with the GPUs that attach to it (at their
    /// smallest count).
    pub fn offers(&self, filter: &FitFilter) -> Vec<Offer> {
        self.matching(filter, true)
    }

    /// The families of the catalog's machines, in catalog order.
    pub fn families(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for m in &self.machines {
            if !out.contains(&m.family.as_str()) {
                out.push(&m.family);
            }
        }
        out
    }

    fn matching(&self, filter: &FitFilter, with_neuron: bool) -> Vec<Offer> {
        let mut offers: Vec<Offer> = Vec::new();
        for m in &self.machines {
            if filter.family.as_ref().is_some_and(|f| f != &m.family) {
                continue;
            }
            if !with_neuron
                && m.accelerator
                    .as_ref()
                    .is_some_and(|a| a.kind != AcceleratorKind::Gpu)
            {
                continue;
            }
            if !filter.gpu || m.has_gpu() {
                offers.push(Offer::of(m, None));
            }
            if filter.gpu && m.accelerator.is_none() {
                for a in &self.accelerators {
                    let (Some(attach), Some(price)) = (&a.attach, &a.price) else {
                        continue;
                    };
                    if !attach.families.contains(&m.family) {
                        continue;
                    }
                    let count = attach.counts.iter().copied().min().unwrap_or(1);
                    let acc = BuiltinAccelerator {
                        kind: AcceleratorKind::Gpu,
                        accelerator_type: Some(a.name.clone()),
                        model: a.model.clone(),
                        count,
                        memory_gib: a.memory_gib,
                    };
                    offers.push(Offer::of(
                        m,
                        Some((acc, price.usd_per_hour * f64::from(count))),
                    ));
                }
            }
        }
        offers.retain(|o| {
            filter
                .max_usd_per_hour
                .is_none_or(|max| o.usd_per_hour <= max)
        });
        offers.sort_by(|a, b| {
            a.usd_per_hour
                .total_cmp(&b.usd_per_hour)
                .then_with(|| a.name().cmp(&b.name()))
        });
        offers
    }

    /// Warnings when `compute` is too small for the model, or grossly oversized.
    pub fn fit(&self, compute: &Compute, model: &ModelFootprint) -> Vec<Finding> {
        let field = self.platform.machine_field();
        let mut out = Vec::new();
        match compute {
            Compute::Local => {}
            Compute::Serverless { memory_mb, .. } => {
                let need = model.host_bytes(1);
                if u64::from(*memory_mb) * MIB < need {
                    out.push(Finding {
                        field: "compute.serverless.memory_mb".into(),
                        message: format!(
                            "{memory_mb} MB is less than the model needs (about {})",
                            gib(need)
                        ),
                        hint: self
                            .serverless
                            .as_ref()
                            .and_then(|s| s.memory_mb.iter().find(|&&m| u64::from(m) * MIB >= need))
                            .map(|m| format!("use `memory_mb: {m}`"))
                            .or_else(|| {
                                Some(
                                    "the model is too large for serverless; use `instance_type`"
                                        .into(),
                                )
                            }),
                    });
                }
            }
            Compute::Nodes { offer, .. } => {
                let workers = offer.workers(true);
                let need = model.host_bytes(workers);
                let have = offer.memory_gib * GIB;
                let cheapest = |gpu: bool| {
                    self.cheapest_fits(
                        model,
                        &FitFilter {
                            gpu,
                            ..FitFilter::default()
                        },
                    )
                    .into_iter()
                    .next()
                };
                let suggest = |o: Option<Offer>| {
                    o.map(|o| {
                        format!(
                            "the cheapest that fits is {} ({}, {}/h)",
                            o.name(),
                            o.resources(),
                            dollars(o.usd_per_hour)
                        )
                    })
                };
                if have < need as f64 {
                    out.push(Finding {
                        field: field.into(),
                        message: format!(
                            "{} has {} GiB of memory; the model needs about {} with {workers} workers (one per {})",
                            offer.machine,
                            offer.memory_gib,
                            gib(need),
                            if offer.gpu_memory_gib().is_some() { "GPU" } else { "vCPU" }
                        ),
                        hint: suggest(cheapest(false)).map(|s| {
                            format!("{s}; or set MODELPORT_WORKERS in serving.env to run fewer sessions")
                        }),
                    });
                } else if have >= OVERSIZED_FACTOR * need as f64
                    && offer.memory_gib > SMALL_GIB
                    && offer.accelerator.is_none()
                {
                    let cheaper =
                        cheapest(false).filter(|c| c.usd_per_hour * 2.0 <= offer.usd_per_hour);
                    if let Some(c) = cheaper {
                        out.push(Finding {
                            field: field.into(),
                            message: format!(
                                "{} has {} GiB of memory, more than {}× the {} the model needs",
                                offer.machine,
                                offer.memory_gib,
                                OVERSIZED_FACTOR,
                                gib(need)
                            ),
                            hint: suggest(Some(c)),
                        });
                    }
                }
                if let Some(g) = offer.gpu_memory_gib() {
                    let gneed = model.gpu_bytes();
                    if g * GIB < gneed as f64 {
                        out.push(Finding {
                            field: field.into(),
                            message: format!(
                                "one GPU of {} has {g} GiB; the model needs about {} on a GPU",
                                offer.name(),
                                gib(gneed)
                            ),
                            hint: suggest(cheapest(true)),
                        });
                    } else if g * GIB >= OVERSIZED_FACTOR * gneed as f64 {
                        out.push(Finding {
                            field: field.into(),
                            message: format!(
                                "{} has {g} GiB of GPU memory, more than {}× the {} the model needs; a CPU may serve it",
                                offer.name(),
                                OVERSIZED_FACTOR,
                                gib(gneed)
                            ),
                            hint: suggest(cheapest(false)),
                        });
                    }
                }
            }
        }
        out
    }
}
