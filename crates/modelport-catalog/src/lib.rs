//! What the clouds sell, what it costs, and whether a deployment asks for something real.
//!
//! The catalogs are data (`providers/aws.yaml`, `providers/gcp.yaml`), embedded in the
//! binary at build time so that `plan` works offline, and replaceable by files
//! (`MODELPORT_CATALOG_DIR`) because prices go stale faster than releases ship.
//!
//! This crate is deliberately light: no cloud SDK, no ONNX parsing, no I/O beyond
//! reading catalog files and the spec being checked. The caller measures the model
//! ([`ModelFootprint`]) and names the provider; providers are looked up by their
//! `name()` string, so nothing here matches on which provider is in use.
//!
//! Prices are list prices with a date each; every output that shows a price can show
//! its date.

mod data;
mod fit;
mod validate;

use std::path::{Path, PathBuf};

pub use data::{
    AcceleratorKind, AcceleratorType, Attach, BuiltinAccelerator, Catalog, Limits, Machine,
    Platform, Price, ServerlessOffer, UsagePrice,
};
pub use fit::{BASE_BYTES, FitFilter, ModelFootprint, Offer};
pub use validate::{Compute, Cost, Finding, PayloadLimit, local_payload_limit};

/// Hours in a month for monthly prices, as the clouds' calculators count them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The embedded catalog files, by provider name.
const EMBEDDED: [(&str, &str); 2] = [
    ("aws", include_str!("../../../providers/aws.yaml")),
    ("gcp", include_str!("../../../providers/gcp.yaml")),
];

/// Why a catalog could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A catalog file does not parse or breaks the schema's rules.
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CatalogError {
    /// A likely fix, printed by the CLI as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            CatalogError::Invalid { .. } => Some(format!(
                "fix the file, or unset {} to use the catalogs built into modelport",
                modelport_core::env::MODELPORT_CATALOG_DIR
            )),
            CatalogError::Io { .. } => None,
        }
    }
}

/// Every provider's catalog.
#[derive(Debug, Clone)]
pub struct Catalogs {
    catalogs: Vec<Catalog>,
}

impl Catalogs {
    /// The catalogs built into the binary.
    pub fn embedded() -> Catalogs {
        let catalogs = EMBEDDED
            .iter()
            .map(|(name, text)| {
                // The embedded files are checked by this crate's tests.
                Catalog::from_yaml(text, &format!("embedded providers/{name}.yaml"))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        Catalogs { catalogs }
    }

    /// The embedded catalogs, with each `<provider>.yaml` found in `dir` replacing its
    /// embedded one.
    pub fn from_dir(dir: &Path) -> Result<Catalogs, CatalogError> {
        let mut catalogs = Catalogs::embedded();
        for c in &mut catalogs.catalogs {
            let path = dir.join(format!("{}.yaml", c.provider));
            match std::fs::read_to_string(&path) {
                Ok(text) => *c = Catalog::from_yaml(&text, &path.display().to_string())?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CatalogError::Io { path, source: e }),
            }
        }
        Ok(catalogs)
    }

    /// `MODELPORT_CATALOG_DIR` when set, else the embedded catalogs.
    pub fn from_env() -> Result<Catalogs, CatalogError> {
        match std::env::var_os(modelport_core::env::MODELPORT_CATALOG_DIR) {
            Some(dir) if !dir.is_empty() => Catalogs::from_dir(Path::new(&dir)),
            _ => Ok(Catalogs::embedded()),
        }
    }

    /// The catalog of the provider whose `name()` is `provider`; `None` for providers
    /// that bill nothing (`local`).
    pub fn get(&self, provider: &str) -> Option<&Catalog> {
        self.catalogs.iter().find(|c| c.provider == provider)
    }

    /// Every catalog, in a fixed order.
    pub fn all(&self) -> &[Catalog] {
        &self.catalogs
    }
}

impl Catalog {
    /// Parses and checks a catalog file; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let invalid = |message: String| CatalogError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let mut catalog: Catalog =
            serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        catalog.origin = origin.to_string();
        let problems = catalog.problems();
        if !problems.is_empty() {
            return Err(invalid(problems.join("; ")));
        }
        Ok(catalog)
    }

    /// The instance or machine type called `name`.
    pub fn machine(&self, name: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.name == name)
    }

    /// The accelerator type called `name`.
    pub fn accelerator(&self, name: &str) -> Option<&AcceleratorType> {
        self.accelerators.iter().find(|a| a.name == name)
    }

    /// The date of the oldest price in the catalog: what `plan` prints as "prices as of".
    pub fn price_date(&self) -> &str {
        self.machines
            .iter()
            .map(|m| m.price.date.as_str())
            .chain(
                self.accelerators
                    .iter()
                    .filter_map(|a| a.price.as_ref())
                    .map(|p| p.date.as_str()),
            )
            .chain(self.serverless.iter().map(|s| s.price.date.as_str()))
            .min()
            .unwrap_or("unknown")
    }

    /// Rules the file format cannot express: unique names, GPU memory on every GPU
    /// machine, a dated price with a source on everything sold, accelerators that
    /// exist. Empty when the catalog is sound.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for m in &self.machines {
            if !seen.insert(m.name.as_str()) {
                out.push(format!("machine {} is listed twice", m.name));
            }
            if !m.name.starts_with(&m.family) {
                out.push(format!(
                    "machine {} is not in its family {}",
                    m.name, m.family
                ));
            }
            if m.vcpu == 0 || m.memory_gib <= 0.0 {
                out.push(format!("machine {} has no vCPU or memory", m.name));
            }
            check_price(
                &mut out,
                &m.name,
                m.price.usd_per_hour,
                &m.price.date,
                &m.price.source,
            );
            if let Some(a) = &m.accelerator {
                if a.count == 0 || a.memory_gib <= 0.0 {
                    out.push(format!(
                        "machine {} has an accelerator without a count or memory",
                        m.name
                    ));
                }
                if let Some(t) = &a.accelerator_type {
                    match self.accelerator(t) {
                        None => {
                            out.push(format!("machine {} names unknown accelerator {t}", m.name))
                        }
                        Some(acc) if acc.memory_gib != a.memory_gib => out.push(format!(
                            "machine {} says {t} has {} GiB, the accelerator list says {}",
                            m.name, a.memory_gib, acc.memory_gib
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        for a in &self.accelerators {
            if !seen.insert(a.name.as_str()) {
                out.push(format!("accelerator {} is listed twice", a.name));
            }
            if a.memory_gib <= 0.0 {
                out.push(format!("accelerator {} has no memory", a.name));
            }
            match (&a.attach, a.builtin, &a.price) {
                (Some(attach), false, Some(p)) => {
                    check_price(&mut out, &a.name, p.usd_per_hour, &p.date, &p.source);
                    if attach.counts.is_empty() || attach.families.is_empty() {
                        out.push(format!("accelerator {} attaches to nothing", a.name));
                    }
                    for f in &attach.families {
                        if !self.machines.iter().any(|m| &m.family == f) {
                            out.push(format!("accelerator {} attaches to unknown family {f}", a.name));
                        }
                    }
                }
                (None, true, None) => {
                    if !self.machines.iter().any(|m| {
                        m.accelerator.as_ref().and_then(|b| b.accelerator_type.as_deref())
                            == Some(a.name.as_str())
                    }) {
                        out.push(format!("built-in accelerator {} is in no machine", a.name));
                    }
                }
                _ => out.push(format!(
                    "accelerator {} must have either `attach` and a `price`, or `builtin: true` and neither",
                    a.name
                )),
            }
        }
        if let Some(s) = &self.serverless {
            check_price(
                &mut out,
                "serverless",
                s.price.usd_per_gb_second,
                &s.price.date,
                &s.price.source,
            );
            if s.memory_mb.is_empty() || s.max_concurrency == 0 {
                out.push("serverless has no memory sizes or concurrency".into());
            }
        }
        if self.machines.is_empty() {
            out.push("the catalog lists no machines".into());
        }
        out
    }
}

fn check_price(out: &mut Vec<String>, what: &str, amount: f64, date: &str, source: &str) {
    if !(amount.is_finite() && amount > 0.0) {
        out.push(format!(
            "{what}: the price {amount} is not a positive number"
        ));
    }
    if !is_date(date) {
        out.push(format!(
            "{what}: the price's date {date:?} is not YYYY-MM-DD"
        ));
    }
    if !source.starts_with("https://") {
        out.push(format!(
            "{what}: the price's source {source:?} is not an https:// URL"
        ));
    }
}

/// `YYYY-MM-DD` with a plausible month and day.
fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let num = |p: &str, len: usize| p.len() == len && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3 || !num(parts[0], 4) || !num(parts[1], 2) || !num(parts[2], 2) {
        return false;
    }
    let (month, day): (u32, u32) = (parts[1].parse().unwrap_or(0), parts[2].parse().unwrap_or(0));
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// `$0.115`, `$1.41`, `$37.69`: dollars with enough digits to tell prices apart.
pub fn dollars(amount: f64) -> String {
    if amount == 0.0 {
        "$0".into()
    } else if amount < 1.0 {
        format!("${amount:.3}")
    } else {
        format!("${amount:.2}")
    }
}

#[cfg(test)]
mod tests;
