//! The embedded catalogs are sound, and modelport.yaml's `compute` is checked against
//! them with the right field, line and suggestion.

use std::path::Path;

use modelport_core::spec::DeploymentSpec;

use super::*;

const GIB: u64 = 1024 * 1024 * 1024;

fn catalogs() -> Catalogs {
    Catalogs::embedded()
}

#[test]
fn embedded_catalogs_are_sound() {
    let c = catalogs();
    for cat in c.all() {
        assert_eq!(cat.problems(), Vec::<String>::new(), "{}", cat.provider);
        assert_eq!(cat.currency, "USD");
        for m in &cat.machines {
            if m.has_gpu() {
                let a = m.accelerator.as_ref().unwrap();
                assert!(a.memory_gib > 0.0, "{} has no GPU memory", m.name);
            }
            assert!(is_date(&m.price.date), "{}", m.name);
        }
    }
    let aws = c.get("aws").unwrap();
    for family in [
        "ml.t2", "ml.m5", "ml.c5", "ml.c6i", "ml.r5", "ml.g4dn", "ml.g5", "ml.g6", "ml.p4d",
        "ml.p5", "ml.inf2",
    ] {
        assert!(aws.machines.iter().any(|m| m.family == family), "{family}");
    }
    let gcp = c.get("gcp").unwrap();
    for family in [
        "n1-standard",
        "n1-highmem",
        "e2-standard",
        "c2-standard",
        "a2-highgpu",
        "a2-ultragpu",
        "g2-standard",
        "a3-highgpu",
    ] {
        assert!(gcp.machines.iter().any(|m| m.family == family), "{family}");
    }
    for acc in [
        "NVIDIA_TESLA_T4",
        "NVIDIA_L4",
        "NVIDIA_TESLA_A100",
        "NVIDIA_A100_80GB",
        "NVIDIA_H100_80GB",
    ] {
        assert!(gcp.accelerator(acc).is_some(), "{acc}");
    }
    assert_eq!(aws.limits.realtime_payload_bytes, Some(6_291_456));
    assert_eq!(aws.limits.serverless_payload_bytes, Some(4_194_304));
    assert_eq!(aws.limits.async_payload_bytes, Some(1_073_741_824));
    assert_eq!(gcp.limits.public_payload_bytes, Some(1_500_000));
    assert_eq!(
        aws.serverless.as_ref().unwrap().memory_mb,
        modelport_core::spec::SERVERLESS_MEMORY_MB
    );
    assert_eq!(
        aws.serverless.as_ref().unwrap().max_concurrency,
        modelport_core::spec::SERVERLESS_MAX_CONCURRENCY
    );
    assert_eq!(
        aws.limits.realtime_payload_bytes,
        Some(modelport_core::spec::DEFAULT_MAX_BODY_BYTES)
    );
    assert_eq!(
        gcp.limits.public_payload_bytes,
        Some(modelport_core::spec::VERTEX_PUBLIC_MAX_BODY_BYTES)
    );
    assert!(c.get("local").is_none());
}

/// A catalog text broken by `edit` reports `expected` among its problems.
fn check_broken(edit: impl Fn(String) -> String, expected: &str) {
    let text = edit(include_str!("../../../providers/gcp.yaml").to_string());
    let err = Catalog::from_yaml(&text, "gcp.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains(expected), "expected {expected:?} in\n{err}");
}

#[test]
fn broken_catalogs_are_refused() {
    check_broken(
        |t| t.replacen("name: n1-standard-4,", "name: n1-standard-2,", 1),
        "machine n1-standard-2 is listed twice",
    );
    check_broken(
        |t| t.replacen("count: 1, memory_gib: 24}", "count: 1, memory_gib: 0}", 1),
        "machine g2-standard-4 has an accelerator without a count or memory",
    );
    check_broken(
        |t| t.replacen("date: 2025-01-15", "date: soon", 1),
        "n1-standard-2: the price's date \"soon\" is not YYYY-MM-DD",
    );
    check_broken(
        |t| t.replacen("usd_per_hour: 0.1094", "usd_per_hour: 0.1094, cost: 1", 1),
        "unknown field `cost`",
    );
    check_broken(
        |t| {
            t.replacen(
                "{name: NVIDIA_L4, model: NVIDIA L4, memory_gib: 24, builtin: true}",
                "{name: NVIDIA_L4, model: NVIDIA L4, memory_gib: 24}",
                1,
            )
        },
        "accelerator NVIDIA_L4 must have either `attach` and a `price`",
    );
    check_broken(
        |t| t.replacen("type: NVIDIA_L4,", "type: NVIDIA_L5,", 1),
        "machine g2-standard-4 names unknown accelerator NVIDIA_L5",
    );
}

/// `compute` (YAML lines under `compute:`) checked for `provider` gives `expected`:
/// `ok: <description> <cost>` or the error as the CLI prints it, with its hint.
fn check(provider: &str, compute: &str, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modelport.yaml");
    let text = format!("name: iris\nmodel: {{path: m.onnx}}\ncompute:\n{compute}");
    std::fs::write(&file, &text).unwrap();
    let spec = DeploymentSpec::from_str(&text, Path::new("modelport.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = DeploymentSpec { file, ..spec };
    let actual = match catalogs().get(provider).unwrap().compute(&spec) {
        Ok(c) => format!("ok: {} {}", c.describe(), c.cost().describe()),
        Err(e) => {
            let shown = e
                .to_string()
                .replace(&dir.path().display().to_string(), "dir");
            match &e.hint {
                Some(h) => format!("{shown}\nhint: {h}"),
                None => shown,
            }
        }
    };
    assert_eq!(actual, expected);
}

#[test]
fn sagemaker_compute() {
    check(
        "aws",
        "  instance_count: 1\n",
        "ok: ml.m5.large × 1 (2 vCPU, 8 GiB) $0.115/h ($83.95/month)",
    );
    check(
        "aws",
        "  instance_type: ml.g5.xlarge\n  instance_count: 2\n",
        "ok: ml.g5.xlarge × 2 (4 vCPU, 16 GiB, 1 × NVIDIA A10G 24 GiB) $2.82/h ($2055.68/month)",
    );
    check(
        "aws",
        "  instance_type: ml.m5.larg\n",
        "dir/modelport.yaml:4:3: compute.instance_type: `ml.m5.larg` is not a SageMaker instance type \
         (catalog: embedded providers/aws.yaml)\nhint: did you mean `ml.m5.large`?; ml.m5 has ml.m5.large, \
         ml.m5.xlarge, ml.m5.2xlarge, ml.m5.4xlarge, ml.m5.12xlarge, ml.m5.24xlarge",
    );
    check(
        "aws",
        "  instance_type: m5.large\n",
        "dir/modelport.yaml:4:3: compute.instance_type: `m5.large` is not a SageMaker instance type \
         (catalog: embedded providers/aws.yaml)\nhint: did you mean `ml.m5.large`?; also near: ml.c5.large, ml.r5.large",
    );
    check(
        "aws",
        "  instance_type: ml.x99.huge\n",
        "dir/modelport.yaml:4:3: compute.instance_type: `ml.x99.huge` is not a SageMaker instance type \
         (catalog: embedded providers/aws.yaml)\nhint: `modelport catalog --provider aws` lists the 59 instance types modelport knows",
    );
    check(
        "aws",
        "  serverless: {memory_mb: 3072, max_concurrency: 10}\n",
        "ok: serverless 3072 MB, up to 10 concurrent $0/h ($0/month) + $0.0000600 per second of inference ($0.216 per hour busy)",
    );
}

#[test]
fn vertex_compute() {
    check(
        "gcp",
        "  min_replicas: 1\n",
        "ok: n1-standard-2 × 1 (2 vCPU, 7.5 GiB) $0.109/h ($79.86/month)",
    );
    check(
        "gcp",
        "  machine_type: n1-standard-4\n  min_replicas: 1\n  max_replicas: 3\n  accelerator: {type: NVIDIA_TESLA_T4, count: 1}\n",
        "ok: n1-standard-4 + 1 NVIDIA_TESLA_T4 × 1–3 (4 vCPU, 15 GiB, 1 × NVIDIA T4 16 GiB) \
         $0.621–$1.86/h ($453.55–$1360.65/month)",
    );
    check(
        "gcp",
        "  machine_type: e2-standard-4\n  accelerator: {type: NVIDIA_TESLA_T4, count: 1}\n",
        "dir/modelport.yaml:5:17: compute.accelerator.type: NVIDIA_TESLA_T4 cannot attach to e2-standard-4: \
         it attaches to n1-standard-* and n1-highmem-* machines\nhint: use `machine_type: n1-standard-4` \
         (4 vCPU, 15 GiB), or remove `accelerator` (e2-standard-4 takes none)",
    );
    check(
        "gcp",
        "  machine_type: n1-standard-4\n  accelerator:\n    type: NVIDIA_TESLA_T4\n    count: 3\n",
        "dir/modelport.yaml:7:5: compute.accelerator.count: 3 × NVIDIA_TESLA_T4 is not allowed; the count is one of 1, 2, 4\n\
         hint: did you mean 2 or 4?",
    );
    check(
        "gcp",
        "  machine_type: n1-standard-4\n  accelerator: {type: NVIDIA_L4}\n",
        "dir/modelport.yaml:5:17: compute.accelerator.type: NVIDIA_L4 cannot attach to n1-standard-4: it only comes \
         built into g2-standard machines\nhint: use `machine_type: g2-standard-4` (the smallest with NVIDIA_L4), \
         or an accelerator that attaches to n1-standard: NVIDIA_TESLA_T4, NVIDIA_TESLA_V100, NVIDIA_TESLA_P4, NVIDIA_TESLA_P100",
    );
    check(
        "gcp",
        "  machine_type: g2-standard-4\n",
        "dir/modelport.yaml:4:3: compute.machine_type: g2-standard-4 comes with 1 NVIDIA_L4, and Vertex AI needs \
         them named in `accelerator`\nhint: add `accelerator: { type: NVIDIA_L4, count: 1 }` under `compute`",
    );
    check(
        "gcp",
        "  machine_type: g2-standard-4\n  accelerator: {type: NVIDIA_L4, count: 1}\n",
        "ok: g2-standard-4 × 1 (4 vCPU, 16 GiB, 1 × NVIDIA L4 24 GiB) $0.813/h ($593.34/month)",
    );
    check(
        "gcp",
        "  machine_type: a2-highgpu-1g\n  accelerator: {type: NVIDIA_TESLA_A100, count: 2}\n",
        "dir/modelport.yaml:5:42: compute.accelerator.count: a2-highgpu-1g comes with exactly 1 NVIDIA_TESLA_A100, not 2\n\
         hint: write `count: 1`, or pick the a2-highgpu size with 2 GPUs",
    );
    check(
        "gcp",
        "  machine_type: n1-standard-4\n  accelerator: {type: NVIDIA_TESLA_T5}\n",
        "dir/modelport.yaml:5:17: compute.accelerator.type: `NVIDIA_TESLA_T5` is not a Vertex AI accelerator type\n\
         hint: did you mean `NVIDIA_TESLA_T4`? accelerator types: NVIDIA_TESLA_T4, NVIDIA_TESLA_V100, NVIDIA_TESLA_P4, \
         NVIDIA_TESLA_P100, NVIDIA_TESLA_A100, NVIDIA_A100_80GB, NVIDIA_L4, NVIDIA_H100_80GB",
    );
    check(
        "gcp",
        "  machine_type: n1-standrad-4\n",
        "dir/modelport.yaml:4:3: compute.machine_type: `n1-standrad-4` is not a Vertex AI machine type \
         (catalog: embedded providers/gcp.yaml)\nhint: did you mean `n1-standard-4`?; also near: n1-standard-2, n1-standard-8",
    );
}

fn footprint(weight_mib: u64) -> ModelFootprint {
    ModelFootprint {
        file_bytes: weight_mib * 1024 * 1024 + 1000,
        parameters: weight_mib * 1024 * 1024 / 4,
        weight_bytes: weight_mib * 1024 * 1024,
    }
}

#[test]
fn cheapest_fits_by_memory_gpu_and_price() {
    let c = catalogs();
    let aws = c.get("aws").unwrap();
    let names = |offers: Vec<Offer>| offers.iter().take(3).map(Offer::name).collect::<Vec<_>>();
    let tiny = footprint(0);
    assert_eq!(
        names(aws.cheapest_fits(&tiny, &FitFilter::default())),
        ["ml.t2.medium", "ml.c5.large", "ml.c6i.large"]
    );
    // 2 GiB of weights: 3 copies on 2 vCPUs plus the base no longer fit in 4 GiB.
    let big = footprint(2048);
    assert!(big.host_bytes(2) > 4 * GIB);
    assert_eq!(
        names(aws.cheapest_fits(&big, &FitFilter::default())),
        ["ml.t2.large", "ml.m5.large", "ml.r5.large"]
    );
    let gpu = FitFilter {
        gpu: true,
        ..FitFilter::default()
    };
    assert_eq!(
        names(aws.cheapest_fits(&big, &gpu)),
        ["ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g6.xlarge"]
    );
    // 20 GiB of weights and the CUDA workspace need more than a 24 GiB GPU.
    let huge = footprint(20 * 1024);
    let first = aws.cheapest_fits(&huge, &gpu).into_iter().next().unwrap();
    assert_eq!(first.name(), "ml.p4d.24xlarge");
    let gcp = c.get("gcp").unwrap();
    assert_eq!(
        names(gcp.cheapest_fits(&big, &gpu)),
        [
            "n1-standard-2 + 1 NVIDIA_TESLA_T4",
            "n1-highmem-2 + 1 NVIDIA_TESLA_T4",
            "n1-standard-4 + 1 NVIDIA_TESLA_T4"
        ]
    );
    let capped = FitFilter {
        max_usd_per_hour: Some(0.06),
        ..FitFilter::default()
    };
    assert_eq!(names(aws.cheapest_fits(&tiny, &capped)), ["ml.t2.medium"]);
    assert!(aws.cheapest_fits(&huge, &capped).is_empty());
    for o in aws.cheapest_fits(&tiny, &FitFilter::default()) {
        assert!(
            !o.machine.starts_with("ml.inf2"),
            "Inferentia needs Neuron-compiled models"
        );
    }
}

/// Issue 13 #12: the filters work on the whole catalog, without a model.
#[test]
fn offers_filter_the_whole_catalog() {
    let c = catalogs();
    let aws = c.get("aws").unwrap();
    let all = aws.offers(&FitFilter::default());
    assert_eq!(all.len(), aws.machines.len());
    assert!(
        all.windows(2)
            .all(|w| w[0].usd_per_hour <= w[1].usd_per_hour)
    );
    let gpu = aws.offers(&FitFilter {
        gpu: true,
        ..FitFilter::default()
    });
    assert!(!gpu.is_empty());
    assert!(gpu.iter().all(|o| o.gpu_memory_gib().is_some()), "{gpu:?}");
    assert_eq!(
        gpu.len(),
        aws.machines.iter().filter(|m| m.has_gpu()).count()
    );
    let g5 = aws.offers(&FitFilter {
        family: Some("ml.g5".into()),
        max_usd_per_hour: Some(2.0),
        ..FitFilter::default()
    });
    assert!(!g5.is_empty());
    assert!(
        g5.iter()
            .all(|o| o.machine.starts_with("ml.g5.") && o.usd_per_hour <= 2.0),
        "{g5:?}"
    );
    assert!(aws.families().contains(&"ml.g5"));
    // On Vertex AI GPUs attach to N1 machines: each pairing is an offer.
    let gcp = c.get("gcp").unwrap();
    let attached = gcp.offers(&FitFilter {
        gpu: true,
        family: Some("n1-standard".into()),
        ..FitFilter::default()
    });
    assert!(
        attached
            .iter()
            .any(|o| o.name() == "n1-standard-4 + 1 NVIDIA_TESLA_T4"),
        "{:?}",
        attached.iter().map(Offer::name).collect::<Vec<_>>()
    );
}

/// Fit warnings for `compute` and a model of `weight_mib` MiB of weights.
fn check_fit(provider: &str, compute: &str, weight_mib: u64, expected: &[&str]) {
    let text = format!("name: iris\nmodel: {{path: m.onnx}}\ncompute:\n{compute}");
    let spec = DeploymentSpec::from_str(&text, Path::new("modelport.yaml")).unwrap();
    let cat = catalogs();
    let cat = cat.get(provider).unwrap();
    let compute = cat.compute(&spec).unwrap();
    let found: Vec<String> = cat
        .fit(&compute, &footprint(weight_mib))
        .iter()
        .map(|f| match &f.hint {
            Some(h) => format!("{f} (hint: {h})"),
            None => f.to_string(),
        })
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn fit_warnings() {
    check_fit("aws", "  instance_type: ml.m5.large\n", 10, &[]);
    check_fit(
        "aws",
        "  instance_type: ml.t2.medium\n",
        2048,
        &[
            "compute.instance_type: ml.t2.medium has 4 GiB of memory; the model needs about 6.6 GiB with 2 workers \
           (one per vCPU) (hint: the cheapest that fits is ml.t2.large (2 vCPU, 8 GiB, $0.111/h); or set \
           MODELPORT_WORKERS in serving.env to run fewer sessions)",
        ],
    );
    check_fit(
        "aws",
        "  instance_type: ml.r5.4xlarge\n",
        1,
        &[
            "compute.instance_type: ml.r5.4xlarge has 128 GiB of memory, more than 8× the 1.5 GiB the model needs \
           (hint: the cheapest that fits is ml.t2.medium (2 vCPU, 4 GiB, $0.056/h))",
        ],
    );
    check_fit(
        "aws",
        "  instance_type: ml.g4dn.xlarge\n",
        1,
        &[
            "compute.instance_type: ml.g4dn.xlarge has 16 GiB of GPU memory, more than 8× the 1.0 GiB the model \
           needs; a CPU may serve it (hint: the cheapest that fits is ml.t2.medium (2 vCPU, 4 GiB, $0.056/h))",
        ],
    );
    check_fit(
        "aws",
        "  serverless: {memory_mb: 1024}\n",
        1024,
        &[
            "compute.serverless.memory_mb: 1024 MB is less than the model needs (about 2.6 GiB) (hint: use `memory_mb: 3072`)",
        ],
    );
}

#[test]
fn payload_limits_follow_the_platform_and_the_spec() {
    let c = catalogs();
    let spec = |extra: &str| {
        DeploymentSpec::from_str(
            &format!("name: iris\nmodel: {{path: m.onnx}}\n{extra}"),
            Path::new("modelport.yaml"),
        )
        .unwrap()
    };
    let aws = c.get("aws").unwrap();
    let gcp = c.get("gcp").unwrap();
    let limit = |cat: &Catalog, extra: &str| {
        let l = cat.payload_limit(&spec(extra));
        format!("{} {}", l.bytes, l.reason)
    };
    assert_eq!(limit(aws, ""), "6291456 SageMaker real-time limit");
    assert_eq!(
        limit(aws, "compute: {serverless: {}}\n"),
        "4194304 SageMaker serverless limit"
    );
    assert_eq!(
        limit(aws, "serving: {max_body_bytes: 1000}\n"),
        "1000 serving.max_body_bytes"
    );
    assert_eq!(
        limit(gcp, ""),
        "1500000 Vertex AI shared public endpoint limit"
    );
    assert_eq!(
        limit(
            gcp,
            "provider: {gcp: {region: us-central1, bucket: b-1, dedicated_endpoint: true}}\n"
        ),
        "6291456 serving.max_body_bytes"
    );
    let local = validate::local_payload_limit(&spec("provider: {local: {flavour: vertex}}\n"));
    assert_eq!(local.bytes, 1_500_000);
}

#[test]
fn a_directory_overrides_the_embedded_catalogs() {
    let dir = tempfile::tempdir().unwrap();
    let aws = include_str!("../../../providers/aws.yaml").replacen(
        "usd_per_hour: 0.115,",
        "usd_per_hour: 0.2,",
        1,
    );
    std::fs::write(dir.path().join("aws.yaml"), aws).unwrap();
    let c = Catalogs::from_dir(dir.path()).unwrap();
    assert_eq!(
        c.get("aws")
            .unwrap()
            .machine("ml.m5.large")
            .unwrap()
            .price
            .usd_per_hour,
        0.2
    );
    assert!(c.get("aws").unwrap().origin.ends_with("aws.yaml"));
    assert_eq!(c.get("gcp").unwrap().origin, "embedded providers/gcp.yaml");
    std::fs::write(dir.path().join("gcp.yaml"), "provider: gcp\n").unwrap();
    let err = Catalogs::from_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("missing field"), "{err}");
    assert!(err.hint().unwrap().contains("MODELPORT_CATALOG_DIR"));
}

#[test]
fn dates_and_dollars() {
    for (text, ok) in [
        ("2025-01-15", true),
        ("2025-13-01", false),
        ("25-01-15", false),
        ("soon", false),
    ] {
        assert_eq!(is_date(text), ok, "{text}");
    }
    assert_eq!(dollars(0.0), "$0");
    assert_eq!(dollars(0.115), "$0.115");
    assert_eq!(dollars(37.688), "$37.69");
    assert_eq!(catalogs().get("aws").unwrap().price_date(), "2025-01-15");
}

/// The volume asked for with `compute` and a model of `model_bytes` taking `disk`
/// bytes on the instance: `none`, the size in GB, or the error with its hint.
fn check_volume(compute: &str, model_bytes: u64, disk: u64, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modelport.yaml");
    let text = format!("name: iris\nmodel: {{path: m.onnx}}\ncompute:\n{compute}");
    std::fs::write(&file, &text).unwrap();
    let spec = DeploymentSpec::from_str(&text, Path::new("modelport.yaml")).unwrap();
    let spec = DeploymentSpec { file, ..spec };
    let actual = match catalogs()
        .get("aws")
        .unwrap()
        .volume_gb(&spec, model_bytes, disk)
    {
        Ok(None) => "none".to_string(),
        Ok(Some(gb)) => gb.to_string(),
        Err(e) => {
            let shown = e
                .to_string()
                .replace(&dir.path().display().to_string(), "dir");
            format!("{shown}\nhint: {}", e.hint.clone().unwrap_or_default())
        }
    };
    assert_eq!(actual, expected, "{compute}");
}

#[test]
fn volumes_fit_the_model_and_the_machine() {
    let m5 = "  instance_type: ml.m5.large\n";
    // A small model keeps the platform's default volume; a large one gets one sized
    // to it, unless the spec sets one.
    check_volume(m5, 100_000_000, 100_000_000, "none");
    check_volume(m5, 3_000_000_000, 3_000_000_000, "8");
    check_volume(
        &format!("{m5}  volume_size_gb: 20\n"),
        3_000_000_000,
        3_000_000_000,
        "20",
    );
    check_volume(
        &format!("{m5}  volume_size_gb: 2\n"),
        3_000_000_000,
        3_000_000_000,
        "dir/modelport.yaml:5:3: compute.volume_size_gb: is 2 GB; the model takes about 2.8 GiB on the instance\n\
         hint: set it to 8 or more, or leave it out for modelport to size it",
    );
    check_volume(
        m5,
        600_000_000_000,
        600_000_000_000,
        "dir/modelport.yaml:4:3: compute.instance_type: the model takes about 558.8 GiB on the instance \
         (703 GB with room for the container), more than the 512 GB SageMaker attaches to ml.m5.large\n\
         hint: choose an instance type with enough instance storage; the cheapest is ml.g6.8xlarge (900 GB, $2.53/h)",
    );
    // Machines with instance storage take no volume, and the model must fit their disk.
    let g5 = "  instance_type: ml.g5.xlarge\n";
    check_volume(g5, 3_000_000_000, 3_000_000_000, "none");
    check_volume(
        &format!("{g5}  volume_size_gb: 20\n"),
        3_000_000_000,
        3_000_000_000,
        "dir/modelport.yaml:5:3: compute.volume_size_gb: ml.g5.xlarge keeps the model on its 250 GB of \
         instance storage (NVMe) and takes no EBS volume\n\
         hint: remove volume_size_gb, or choose an instance type without instance storage",
    );
    check_volume(
        "  instance_type: ml.g4dn.xlarge\n",
        200_000_000_000,
        200_000_000_000,
        "dir/modelport.yaml:4:3: compute.instance_type: ml.g4dn.xlarge has 125 GB of instance storage; \
         the model takes about 186.3 GiB on the instance, 237 GB with room for the container\n\
         hint: choose an instance type with enough instance storage; the cheapest is ml.g6.xlarge (250 GB, $1.01/h)",
    );
    // Serverless has no volume to size.
    check_volume(
        "  serverless: {memory_mb: 2048}\n",
        3_000_000_000,
        3_000_000_000,
        "none",
    );
}
