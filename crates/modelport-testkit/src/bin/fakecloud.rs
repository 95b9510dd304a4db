//! `fakecloud`: moto and the strict SageMaker fake on 127.0.0.1, for trying the
//! AWS provider by hand without a cloud. Prints the environment to export, then
//! runs until Ctrl-C and stops everything it started.
//!
//!     cargo build -p modelport-cli
//!     cargo run -p modelport-testkit --bin fakecloud
//!
//! Faults can be injected while it runs:
//!
//!     curl -X POST $MODELPORT_AWS_ENDPOINT_URL/_fake/faults \
//!          -d '{"operation": "CreateEndpoint", "kind": "ResourceLimitExceeded"}'
//!
//! With `--gcp` the strict Vertex AI fake runs too (faults the same way, with a
//! `method` such as `endpoints.deployModel`), and fake-gcs-server (from the test
//! venv, behind the testkit's Host-fixing proxy) with the bucket `--gcs-bucket`;
//! the Vertex fake reads `gs://` artifact URIs from it. `--gcs-upstream URL` uses a
//! running GCS emulator instead (no bucket is created there).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use modelport_testkit::sagemaker::{FakeConfig, FakeSageMaker};
use modelport_testkit::vertex::{FakeVertex, VertexConfig};
use modelport_testkit::{FakeGcs, Moto};

/// Runs local stand-ins for the clouds modelport deploys to.
#[derive(Debug, Parser)]
#[command(name = "fakecloud")]
struct Args {
    /// The `modelport` binary the SageMaker fake runs as each endpoint's server
    /// (default: `modelport` next to this program).
    #[arg(long)]
    server: Option<PathBuf>,

    /// The S3 bucket to create in moto.
    #[arg(long, default_value = "modelport-dev")]
    bucket: String,

    /// Seconds an endpoint stays Creating/Updating before its server starts.
    #[arg(long, default_value_t = 1.0)]
    create_delay: f64,

    /// Seconds an endpoint stays Deleting.
    #[arg(long, default_value_t = 1.0)]
    delete_delay: f64,

    /// Also run the strict Vertex AI fake.
    #[arg(long)]
    gcp: bool,

    /// A running GCS emulator's URL the Vertex fake reads `gs://` artifact URIs
    /// from, instead of starting fake-gcs-server.
    #[arg(long, requires = "gcp")]
    gcs_upstream: Option<String>,

    /// The GCS bucket to create in the fake-gcs-server started with `--gcp`.
    #[arg(long, default_value = "modelport-models")]
    gcs_bucket: String,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fakecloud: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let server = match args.server {
        Some(p) => p,
        None => modelport_testkit::modelport_exe()?,
    };
    let moto = Moto::start().context("cannot start moto")?;
    moto.create_bucket(&args.bucket)?;
    let mut config = FakeConfig::new(moto.url(), server.clone());
    config.create_delay = Duration::from_secs_f64(args.create_delay);
    config.delete_delay = Duration::from_secs_f64(args.delete_delay);
    let sagemaker = FakeSageMaker::start(config)?;
    let gcs = if args.gcp && args.gcs_upstream.is_none() {
        let gcs = FakeGcs::start().context("cannot start fake-gcs-server")?;
        gcs.create_bucket(&args.gcs_bucket)?;
        Some(gcs)
    } else {
        None
    };
    let gcs_url = args
        .gcs_upstream
        .clone()
        .or_else(|| gcs.as_ref().map(FakeGcs::url));
    let vertex = if args.gcp {
        let mut config = VertexConfig::new(server);
        config.operation_delay = Duration::from_secs_f64(args.create_delay);
        config.gcs_upstream = gcs_url.clone();
        Some(FakeVertex::start(config)?)
    } else {
        None
    };

    println!(
        "# AWS: SageMaker, SageMaker Runtime and S3 (bucket {}) at one URL",
        args.bucket
    );
    println!("export MODELPORT_AWS_ENDPOINT_URL={}", sagemaker.url());
    println!("export AWS_ACCESS_KEY_ID=testing");
    println!("export AWS_SECRET_ACCESS_KEY=testing");
    println!("export AWS_REGION=us-east-1");
    println!("export AWS_EC2_METADATA_DISABLED=true");
    println!(
        "# moto itself: {}; the fake's call log: {}/_fake/calls",
        moto.url(),
        sagemaker.url()
    );
    if let Some(vertex) = &vertex {
        println!("# GCP: Vertex AI (models, endpoints, predict) at one URL");
        println!("export MODELPORT_GCP_VERTEX_ENDPOINT={}", vertex.url());
        println!("# the Vertex fake's call log: {}/_fake/calls", vertex.url());
        if let Some(url) = &gcs_url {
            match &gcs {
                Some(gcs) => println!(
                    "# GCS: fake-gcs-server (bucket {}, pid {}) behind its proxy",
                    args.gcs_bucket,
                    gcs.pid()
                ),
                None => println!("# GCS: the emulator given with --gcs-upstream"),
            }
            println!("export MODELPORT_GCP_STORAGE_ENDPOINT={url}");
        }
    }
    eprintln!(
        "fakecloud: running; Ctrl-C (or SIGTERM) stops moto, fake-gcs-server, the fakes and every endpoint server"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    eprintln!("fakecloud: stopping");
    drop(vertex);
    drop(gcs);
    drop(sagemaker);
    drop(moto);
    Ok(())
}
