//! `modelport catalog`: the instance and machine types modelport knows, with prices,
//! and the cheapest ones a model fits on.

use anyhow::Context;
use modelport_catalog::{Catalog, Catalogs, FitFilter, ModelFootprint, dollars};
use modelport_runtime::ModelInfo;
use serde_json::json;

use super::{human_bytes, print_json};
use crate::cli::{CatalogAction, CatalogArgs, OutputFormat};
use crate::exit::Code;

/// How to rebuild the prices: a script, because it needs the clouds' SDKs and credentials.
const REFRESH: &str = "\
Prices are rebuilt by a script, run by someone with access to the providers' price APIs:

  python3 -m pip install boto3 google-cloud-billing pyyaml
  scripts/refresh-prices --out providers/        # both providers
  scripts/refresh-prices --provider aws --out /tmp/catalog

AWS: the Price List API (pricing:GetProducts for AmazonSageMaker, us-east-1), with the
default AWS credentials. Google Cloud: the Cloud Billing Catalog API for the Vertex AI
service, with application default credentials. The script rewrites only the prices and
their dates and sources; machine specs and limits stay as reviewed.

Use the result without rebuilding modelport:

  MODELPORT_CATALOG_DIR=/tmp/catalog modelport plan -f modelport.yaml --provider aws
";

pub fn run(args: CatalogArgs, out: OutputFormat) -> anyhow::Result<Code> {
    if let Some(CatalogAction::Refresh) = args.action {
        print!("{REFRESH}");
        return Ok(Code::Success);
    }
    let catalogs = Catalogs::from_env()?;
    let chosen: Vec<&Catalog> = match &args.provider {
        None => catalogs.all().iter().collect(),
        Some(p) => vec![catalogs.get(p).with_context(|| {
            let known: Vec<&str> = catalogs.all().iter().map(|c| c.provider.as_str()).collect();
            format!(
                "no catalog for provider {p:?}: catalogs exist for {} (the local provider bills nothing)",
                known.join(", ")
            )
        })?],
    };
    let filter = FitFilter {
        gpu: args.gpu,
        max_usd_per_hour: args.max_price,
        family: args.family.clone(),
    };
    let chosen = match &filter.family {
        None => chosen,
        Some(family) => with_family(chosen, family)?,
    };
    match &args.fits {
        None if filter.is_empty() => list(&chosen, out)?,
        None => filtered(&chosen, &filter, out)?,
        Some(model) => {
            let info = ModelInfo::from_path(model)
                .with_context(|| format!("cannot load {}", model.display()))?;
            let footprint = ModelFootprint {
                file_bytes: info.size_bytes,
                parameters: info.parameters,
                weight_bytes: info.weight_bytes,
            };
            fits(&chosen, &footprint, &filter, args.limit, model, out)?;
        }
    }
    Ok(Code::Success)
}

/// The catalogs that have machines of `family` (a family is one provider's), or an
/// error that lists the families and the likely one.
fn with_family<'c>(chosen: Vec<&'c Catalog>, family: &str) -> anyhow::Result<Vec<&'c Catalog>> {
    let having: Vec<&Catalog> = chosen
        .iter()
        .copied()
        .filter(|c| c.families().contains(&family))
        .collect();
    if !having.is_empty() {
        return Ok(having);
    }
    let all: Vec<&str> = chosen.iter().flat_map(|c| c.families()).collect();
    let close: Vec<&str> = all
        .iter()
        .copied()
        .filter(|f| f.ends_with(&format!(".{family}")) || f.starts_with(&format!("{family}-")))
        .collect();
    let listing: Vec<String> = chosen
        .iter()
        .map(|c| format!("{}: {}", c.provider, c.families().join(", ")))
        .collect();
    let hint = match close.as_slice() {
        [one] => format!(
            "did you mean `--family {one}`? The families are {}",
            listing.join("; ")
        ),
        _ => format!("the families are {}", listing.join("; ")),
    };
    Err(modelport_core::provider::ProviderError::InvalidInput {
        message: format!("--family: no machine family `{family}` in the catalog"),
        hint: Some(hint),
    }
    .into())
}

/// The whole catalog through `filter`, cheapest first.
fn filtered(catalogs: &[&Catalog], filter: &FitFilter, out: OutputFormat) -> anyhow::Result<()> {
    let offers: Vec<(&Catalog, Vec<modelport_catalog::Offer>)> =
        catalogs.iter().map(|c| (*c, c.offers(filter))).collect();
    if out == OutputFormat::Json {
        return print_json(&json!({
            "gpu": filter.gpu,
            "max_usd_per_hour": filter.max_usd_per_hour,
            "family": filter.family,
            "providers": by_provider(&offers),
        }));
    }
    print_offers(&offers, filter, None);
    Ok(())
}

/// One table of offers per catalog, cheapest first; with a footprint, the memory the
/// model needs on each.
fn print_offers(
    offers: &[(&Catalog, Vec<modelport_catalog::Offer>)],
    filter: &FitFilter,
    footprint: Option<&ModelFootprint>,
) {
    for (i, (c, o)) in offers.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", heading(c));
        if o.is_empty() {
            let verb = if footprint.is_some() {
                "fits"
            } else {
                "matches"
            };
            println!("  nothing {verb}{}", nothing_because(filter));
            continue;
        }
        let rows: Vec<Vec<String>> = o
            .iter()
            .map(|o| {
                let mut row = vec![o.name(), o.resources()];
                if let Some(f) = footprint {
                    row.push(human_bytes(f.host_bytes(o.workers(filter.gpu))));
                }
                row.push(format!("{}/h", dollars(o.usd_per_hour)));
                row.push(format!("{}/month", dollars(o.usd_per_month)));
                row
            })
            .collect();
        let header: &[&str] = match footprint {
            Some(_) => &["TYPE", "RESOURCES", "NEEDS", "$/HOUR", "$/MONTH"],
            None => &["TYPE", "RESOURCES", "$/HOUR", "$/MONTH"],
        };
        print!("{}", table(header, &rows));
    }
}

/// `{"aws": {"region", "price_date", "offers"}, ...}`.
fn by_provider(
    offers: &[(&Catalog, Vec<modelport_catalog::Offer>)],
) -> serde_json::Map<String, serde_json::Value> {
    offers
        .iter()
        .map(|(c, o)| {
            let value = json!({
                "region": c.region,
                "price_date": c.price_date(),
                "offers": o,
            });
            (c.provider.clone(), value)
        })
        .collect()
}

/// ` at $0.010 per hour or less in family ml.g5`: why a provider lists nothing.
fn nothing_because(filter: &FitFilter) -> String {
    let mut s = String::new();
    if let Some(max) = filter.max_usd_per_hour {
        s.push_str(&format!(" at {} per hour or less", dollars(max)));
    }
    if let Some(f) = &filter.family {
        s.push_str(&format!(" in family {f}"));
    }
    s
}

fn list(catalogs: &[&Catalog], out: OutputFormat) -> anyhow::Result<()> {
    if out == OutputFormat::Json {
        return print_json(&json!({ "catalogs": catalogs }));
    }
    for (i, c) in catalogs.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", heading(c));
        let rows: Vec<Vec<String>> = c
            .machines
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.vcpu.to_string(),
                    format!("{} GiB", m.memory_gib),
                    m.accelerator.as_ref().map_or("-".into(), |a| {
                        format!("{} × {} {} GiB", a.count, a.model, a.memory_gib)
                    }),
                    format!("{}/h", dollars(m.price.usd_per_hour)),
                    format!(
                        "{}/month",
                        dollars(m.price.usd_per_hour * modelport_catalog::HOURS_PER_MONTH)
                    ),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["TYPE", "VCPU", "MEMORY", "ACCELERATOR", "$/HOUR", "$/MONTH"],
                &rows
            )
        );
        if !c.accelerators.is_empty() {
            println!("\naccelerators (compute.accelerator.type)");
            let rows: Vec<Vec<String>> = c
                .accelerators
                .iter()
                .map(|a| {
                    let (attach, price) = match (&a.attach, &a.price) {
                        (Some(t), Some(p)) => (
                            format!(
                                "{} × {}",
                                t.counts
                                    .iter()
                                    .map(u32::to_string)
                                    .collect::<Vec<_>>()
                                    .join("/"),
                                t.families.join(", ")
                            ),
                            format!("{}/h each", dollars(p.usd_per_hour)),
                        ),
                        _ => (
                            "built into its machine types".into(),
                            "in the machine's".into(),
                        ),
                    };
                    vec![
                        a.name.clone(),
                        format!("{} {} GiB", a.model, a.memory_gib),
                        attach,
                        price,
                    ]
                })
                .collect();
            print!("{}", table(&["TYPE", "GPU", "ATTACHES", "$/HOUR"], &rows));
        }
        if let Some(s) = &c.serverless {
            let sizes: Vec<String> = s.memory_mb.iter().map(u32::to_string).collect();
            println!(
                "\nserverless: {} MB, up to {} concurrent per endpoint ({} per account); ${} per GB-second of inference",
                sizes.join(", "),
                s.max_concurrency,
                s.account_max_concurrency,
                s.price.usd_per_gb_second
            );
        }
    }
    Ok(())
}

fn heading(c: &Catalog) -> String {
    format!(
        "{}: {} {}s, on-demand list prices in {} as of {} ({})",
        c.provider,
        c.platform.title(),
        c.platform.machine_word(),
        c.region,
        c.price_date(),
        c.origin
    )
}

fn fits(
    catalogs: &[&Catalog],
    footprint: &ModelFootprint,
    filter: &FitFilter,
    limit: usize,
    model: &std::path::Path,
    out: OutputFormat,
) -> anyhow::Result<()> {
    let offers: Vec<(&Catalog, Vec<modelport_catalog::Offer>)> = catalogs
        .iter()
        .map(|c| {
            (
                *c,
                c.cheapest_fits(footprint, filter)
                    .into_iter()
                    .take(limit)
                    .collect(),
            )
        })
        .collect();
    if out == OutputFormat::Json {
        return print_json(&json!({
            "model": model.display().to_string(),
            "footprint": footprint,
            "gpu": filter.gpu,
            "max_usd_per_hour": filter.max_usd_per_hour,
            "family": filter.family,
            "providers": by_provider(&offers),
        }));
    }
    println!(
        "{}: {} on disk, {} parameters ({} of weights)",
        model.display(),
        human_bytes(footprint.file_bytes),
        footprint.parameters,
        human_bytes(footprint.weight_bytes)
    );
    println!(
        "memory: the server holds one copy of the weights per engine session (one per vCPU, or per \
         GPU on GPU types) plus {} of base",
        human_bytes(modelport_catalog::BASE_BYTES)
    );
    println!();
    print_offers(&offers, filter, Some(footprint));
    Ok(())
}

/// Columns padded to their widest cell, two spaces apart, indented by two.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
