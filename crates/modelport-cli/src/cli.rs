//! Command-line arguments. Precedence: flag > environment variable > modelport.yaml > default.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use modelport_core::env::{
    MODELPORT_ENGINE, MODELPORT_HOME, MODELPORT_HOST, MODELPORT_IMAGE, MODELPORT_INTRA_THREADS,
    MODELPORT_MAX_BATCH_ROWS, MODELPORT_MAX_BODY_BYTES, MODELPORT_MODEL_NAME,
    MODELPORT_QUEUE_DEPTH, MODELPORT_REVISION, MODELPORT_TIMEOUT_S, MODELPORT_WORKERS,
};
use modelport_runtime::EngineChoice;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  error (the message and a hint are on stderr)
  2  usage error (bad flags or arguments)
  3  a comparison ran and found a mismatch, or an answer from another revision
  `plan` exits 2 when the plan has changes (see `modelport plan --help`)

Environment:
  MODELPORT_ENGINE         default for --engine
  MODELPORT_INTRA_THREADS  threads per inference
  ORT_DYLIB_PATH           path of libonnxruntime for the onnxruntime engine
  MODELPORT_LOG            log filter, e.g. modelport=debug
  MODELPORT_HOME           where state, artifacts and logs live (default ./.modelport)
  MODELPORT_CATALOG_DIR    a directory whose aws.yaml / gcp.yaml replace the built-in catalogs
";

/// Ship a model to a managed inference endpoint and prove it answers like the model does locally.
#[derive(Debug, Parser)]
#[command(name = "modelport", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format for data on stdout.
    #[arg(long, short = 'o', value_enum, global = true, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More logs on stderr (-v info, -vv debug, -vvv trace).
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Local inference engine: auto (onnxruntime when its library loads, else tract), onnxruntime or tract.
    #[arg(long, env = MODELPORT_ENGINE, default_value = "auto", value_parser = parse_engine)]
    pub engine: EngineChoice,

    /// Threads one inference may use (default: the engine's choice, all cores).
    #[arg(long, env = MODELPORT_INTRA_THREADS)]
    pub threads: Option<usize>,
}

/// A tolerance: a finite number, 0 or more (as `verify.atol` and `verify.rtol` in
/// modelport.yaml; `inf` would pass every finite mismatch).
fn parse_tolerance(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!(
            "{s} is not a tolerance: a finite number, 0 or more (values agree when |a - b| <= atol + rtol * |b|)"
        ));
    }
    Ok(v)
}

fn parse_price(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!(
            "{s} is not a price: a finite number of USD per hour, more than 0"
        ));
    }
    Ok(v)
}

fn parse_engine(s: &str) -> Result<EngineChoice, String> {
    s.parse::<EngineChoice>().map_err(|e| e.to_string())
}

const ALL_PROVIDERS: &[&str] = &["local", "aws", "gcp"];
const CLOUDS: &[&str] = &["aws", "gcp"];

/// A value parser that parses as `parser` does (so its errors read as before) and offers
/// `names` to shell completions, manual pages and `--help`. Provider names use it with a
/// plain string parser: the command itself names a wrong provider with a suggestion and exit
/// code 1, as it does for `provider:` in modelport.yaml.
#[derive(Debug, Clone)]
struct Offer<P> {
    names: Vec<&'static str>,
    parser: P,
}

impl<P> Offer<P> {
    fn new(names: impl IntoIterator<Item = &'static str>, parser: P) -> Offer<P> {
        Offer {
            names: names.into_iter().collect(),
            parser,
        }
    }
}

fn providers(names: &'static [&'static str]) -> Offer<clap::builder::StringValueParser> {
    Offer::new(
        names.iter().copied(),
        clap::builder::StringValueParser::new(),
    )
}

impl<P> clap::builder::TypedValueParser for Offer<P>
where
    P: clap::builder::TypedValueParser,
{
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<P::Value, clap::Error> {
        self.parser.parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            self.names
                .iter()
                .map(|name| clap::builder::PossibleValue::new(*name)),
        ))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a model's signature, opsets, operators, size and which engines can run it.
    #[command(
        after_help = "Examples:\n  modelport inspect examples/iris/model.onnx\n  modelport inspect model.onnx --output json"
    )]
    Inspect(InspectArgs),

    /// Run a model on this machine and print its outputs.
    #[command(
        after_help = "Examples:\n  modelport predict examples/iris/model.onnx --input examples/iris/samples.json\n  \
        echo '{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}' | modelport predict examples/iris/model.onnx --input -\n  \
        modelport predict model.onnx --input batch.npy --engine tract --output json\n  \
        modelport predict model.onnx --generate 8 --seed 1"
    )]
    Predict(PredictArgs),

    /// Write a deterministic model.tar.gz, or a model/ directory (model files + modelport.json manifest).
    #[command(
        after_help = "Examples:\n  modelport package examples/iris/model.onnx --out dist\n  modelport package model_dir/ --output json\n  modelport package large_model/ --layout dir --out dist"
    )]
    Package(PackageArgs),

    /// Write a commented modelport.yaml to start from.
    #[command(
        after_help = "Examples:\n  modelport init model.onnx\n  modelport init model.onnx --name fraud-scorer --file deploy/modelport.yaml"
    )]
    Init(InitArgs),

    /// Run the serving HTTP server: what every endpoint runs (SageMaker, Vertex AI and OIP v2 on one port).
    #[command(
        after_help = "The model is the argument, else $AIP_STORAGE_URI, else /opt/ml/model (where SageMaker \
        unpacks model.tar.gz). The port is --port, else $SAGEMAKER_BIND_TO_PORT, else $AIP_HTTP_PORT, else \
        8080. Vertex's $AIP_HEALTH_ROUTE and $AIP_PREDICT_ROUTE are served when set.\n\n\
        Routes:\n  GET  /ping, /v2/health/ready, /v2/health/live, $AIP_HEALTH_ROUTE\n  \
        POST /invocations, $AIP_PREDICT_ROUTE, /v1/models/NAME:predict   {\"instances\": [...]} or {\"inputs\": [...]}\n  \
        POST /v2/models/NAME/infer   Open Inference Protocol v2\n  GET  /v2/models/NAME   OIP model metadata\n\n\
        Examples:\n  modelport serve dist/model.tar.gz --port 8080\n  \
        SAGEMAKER_BIND_TO_PORT=8080 modelport serve /opt/ml/model\n  \
        modelport serve examples/iris/model.onnx --port 0 --host 127.0.0.1"
    )]
    Serve(ServeArgs),

    /// Package the model, start or update its endpoint, and compare it with the local runtime.
    #[command(
        after_help = "The new revision starts next to the old one and is compared with the packaged model on \
        this machine before any production request can reach it; only when it passes does the traffic move \
        to it and the old revision go. Otherwise it is removed and the old one never stopped serving \
        (exit code 3). When production traffic moves:\n  \
        local  the new server has a port of its own; a fixed provider.local.port is handed to it after it passes\n  \
        aws    an update adds it as a second production variant at weight 0, compared with TargetVariant; the \
        weights move after it passes (serverless: a short-lived endpoint of its own, then UpdateEndpoint); a \
        first deploy creates the endpoint with it as the only variant, compared before deploy reports success\n  \
        gcp    deployed with no traffic on the serving endpoint and alone on a short-lived verification \
        endpoint, where it is compared; the traffic split moves after it passes\n\
        verify.mode: after-traffic moves the traffic first and back on failure; --no-verify does not compare.\n\n\
        Without provider.aws.image_uri (or provider.gcp.image_uri) the serving image of this modelport is built \
        (no Docker needed), shown in the plan and pushed after it is accepted: to the account's ECR repository \
        `modelport` (created when missing) or the project's Artifact Registry repository `modelport`; the \
        endpoint runs it pinned by digest (`modelport image build --help`).\n\n\
        An error, SIGINT or SIGTERM removes the new revision (a second signal stops the clean-up); a crash \
        leaves state that a re-run or `modelport destroy` finishes. One command at a time changes a \
        deployment: another waits up to --wait-lock seconds. Re-running an unchanged deploy does nothing.\n\n\
        Examples:\n  modelport deploy --provider local -f examples/iris/modelport.yaml\n  \
        modelport deploy -f modelport.yaml --no-verify\n  modelport deploy -f modelport.yaml --junit compare.xml --report compare.html"
    )]
    Deploy(DeployArgs),

    /// Show what `deploy` would do and what it would cost, without changing anything.
    #[command(
        after_help = "Checks compute against the provider's catalog (a misspelt instance type, an \
        accelerator that cannot attach, a serverless size that does not exist are errors naming the \
        modelport.yaml field, with suggestions), packages the model, and prints each action with its \
        reason, the instance type and count, $/hour and $/month before and after (730 hours a month, \
        on-demand list prices with their date), the payload limit the comparison batches to, and \
        warnings when the model does not fit or the machine is grossly oversized. Cloud plans read the \
        live resources (and the state): nothing is created, uploaded or deleted.\n\n\
        Exit codes (like `terraform plan -detailed-exitcode`):\n  \
        0  no changes\n  1  error (the message and a hint are on stderr)\n  \
        2  the plan has changes (clap's usage errors also exit 2, with a usage message on stderr)\n\n\
        Examples:\n  modelport plan -f examples/iris/modelport.yaml --provider local\n  \
        modelport plan -f modelport.yaml --provider aws --output json"
    )]
    Plan(PlanArgs),

    /// List instance and machine types with prices, or the cheapest ones a model fits on.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Prices are on-demand list prices of one region (us-east-1 for aws, us-central1 \
        for gcp) as of the date printed; MODELPORT_CATALOG_DIR points at refreshed copies.\n\n\
        Examples:\n  modelport catalog --provider aws\n  \
        modelport catalog --fits examples/iris/model.onnx\n  \
        modelport catalog --fits model.onnx --provider gcp --gpu --max-price 2\n  \
        modelport catalog refresh"
    )]
    Catalog(CatalogArgs),

    /// Compare an endpoint with the local runtime, or any two targets, on the same inputs.
    #[command(
        after_help = "A target is a deployment name, a model file (run here; --engine-a/--engine-b choose \
        the engine), or the URL of a running server: http://HOST:PORT (SageMaker contract, POST /invocations), \
        .../v2/models/NAME (Open Inference Protocol v2), or any other predict URL taking {\"instances\": [...]}. \
        With one deployment name, B is the deployment's own model on the local runtime.\n\n\
        Exit codes: 0 the outputs match, 3 they do not, 1 an error.\n\n\
        Examples:\n  modelport compare iris\n  \
        modelport compare model.onnx model.onnx --engine-a tract --engine-b onnxruntime\n  \
        modelport compare http://127.0.0.1:8080 model.onnx --samples inputs.csv\n  \
        modelport compare iris --count 10000 --output json --junit compare.xml\n  \
        modelport compare iris --report compare.html"
    )]
    Compare(CompareArgs),

    /// Compress a model (float16, eight-bit weights, dynamic int8, pruning) and prove it
    /// against the original on the same inputs.
    #[command(
        after_help = "The gate runs the original and the compressed model on the evaluation inputs \
        (--eval, else --samples, else generated from the signature) and compares them: per output the \
        max and mean absolute error, SQNR and label/argmax agreement, with labels the accuracy of \
        both. The goal (--max-degradation METRIC=VALUE, repeatable) defaults to agreement=1% (at \
        least 99% of labels unchanged); NaN or infinity where the original is finite always fails. \
        Metrics: agreement (fraction of rows that may differ), accuracy (drop: 0.01 is one point, \
        2% is relative to the original's accuracy; needs labels), max_abs and mean_abs (absolute, or \
        N% of the output's largest magnitude), sqnr (least dB). --eval FILE is JSON \
        {\"instances\": [...], \"labels\": [...]} (labels optional), .npy or .csv.\n\n\
        Exit codes: 0 the goal is met and --out is written, 3 it is missed (nothing written), 1 an error.\n\n\
        Examples:\n  modelport compress model.onnx --to int8 --per-channel --out model.int8.onnx\n  \
        modelport compress model.onnx --to fp16 --eval eval.json --out model.fp16.onnx\n  \
        modelport compress model.onnx --to int8-dynamic --eval eval.json --max-degradation accuracy=0.01 --auto --out q.onnx\n  \
        modelport compress model.onnx --prune 0.5 --to int8 --out small.onnx --output json"
    )]
    Compress(CompressArgs),

    /// Show how deployments are doing: health, URL, digest, uptime.
    #[command(after_help = "Examples:\n  modelport status\n  modelport status iris --output json")]
    Status(StatusArgs),

    /// List the deployments recorded in .modelport.
    #[command(after_help = "Examples:\n  modelport list\n  modelport list --output json")]
    List(ListArgs),

    /// Print the least-privilege IAM policies a deployment needs, as JSON.
    #[command(
        name = "iam-policy",
        after_help = "Prints `user_policy` (for whoever runs modelport), `execution_role_policy` and \
        `execution_role_trust_policy` (for the role the endpoint runs as), scoped to the deployment's \
        bucket prefix and resource names.\n\n\
        Examples:\n  modelport iam-policy --provider aws -f modelport.yaml"
    )]
    IamPolicy(IamPolicyArgs),

    /// Build the serving image without Docker, or push it to a registry.
    #[command(subcommand)]
    Image(ImageCommand),

    /// Stop a deployment's endpoint and forget it.
    #[command(
        after_help = "A process or cloud resource that is already gone is not an error, nor is a missing state file.\n\n\
        Examples:\n  modelport destroy iris"
    )]
    Destroy(DestroyArgs),

    /// Check what can run here and what a deploy would need: engines, the spec, the model,
    /// credentials, region, bucket, role, the platform's API and the image registry.
    #[command(
        after_help = "Each check prints ok, warn or fail, with a hint for the last two. Nothing is created or \
        changed: the cloud calls are reads (AWS: GetCallerIdentity, GetBucketLocation, ListEndpoints, \
        GetAuthorizationToken; Google Cloud: an access token, the bucket's metadata, the region's endpoints).\n\n\
        Without --provider: local, plus aws and gcp when modelport.yaml has their section. Without -f: \
        ./modelport.yaml when it exists.\n\n\
        Exit codes: 0 no check failed (warnings allowed), 1 at least one failed.\n\n\
        Examples:\n  modelport doctor\n  modelport doctor -f examples/iris/modelport.yaml --provider aws\n  \
        modelport doctor --output json"
    )]
    Doctor(DoctorArgs),

    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "Install (the script is generated from this binary's own flags, so regenerate it after an upgrade):\n  \
        bash        modelport completions bash > ~/.local/share/bash-completion/completions/modelport\n  \
        zsh         modelport completions zsh > \"${fpath[1]}/_modelport\"\n  \
        fish        modelport completions fish > ~/.config/fish/completions/modelport.fish\n  \
        powershell  modelport completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),

    /// Write the manual pages (roff), one per command.
    #[command(
        after_help = "Without --out the page of `modelport` itself goes to stdout.\n\n\
        Examples:\n  modelport man | man -l -\n  \
        modelport man --out ~/.local/share/man/man1   # modelport.1, modelport-deploy.1, modelport-image-build.1, ..."
    )]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The deployment spec (default: ./modelport.yaml when it exists).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,

    /// Check only this provider.
    #[arg(long, short = 'p', value_parser = providers(ALL_PROVIDERS))]
    pub provider: Option<String>,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write modelport.1 and one page per command (modelport-COMMAND.1) into this directory,
    /// creating it when missing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct LockArgs {
    /// How long to wait when another modelport command is changing the same deployment.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub wait_lock: u64,
}

#[derive(Debug, Args, Clone)]
pub struct WorkspaceArgs {
    /// Where state, artifacts and server logs live.
    #[arg(long, env = MODELPORT_HOME, default_value = ".modelport", global = true)]
    pub home: PathBuf,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The deployment spec.
    #[arg(long, short = 'f', default_value = "modelport.yaml")]
    pub file: PathBuf,

    /// Where to deploy.
    #[arg(long, short = 'p', default_value = "local", value_parser = providers(ALL_PROVIDERS))]
    pub provider: String,

    /// Skip the comparison: the new revision takes the traffic unchecked.
    #[arg(long)]
    pub no_verify: bool,

    /// Write the comparison as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,

    /// Write the comparison as one self-contained HTML page with plots to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Do not ask before creating billed resources (never asked when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub engine: EngineArgs,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The deployment spec.
    #[arg(long, short = 'f', default_value = "modelport.yaml")]
    pub file: PathBuf,

    /// Where `deploy` would deploy.
    #[arg(long, short = 'p', default_value = "local", value_parser = providers(ALL_PROVIDERS))]
    pub provider: String,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub action: Option<CatalogAction>,

    /// Only this provider's catalog (default: both).
    #[arg(long, short = 'p', value_parser = providers(CLOUDS))]
    pub provider: Option<String>,

    /// List the cheapest types this model (.onnx) fits on, instead of every type.
    #[arg(long, value_name = "MODEL")]
    pub fits: Option<PathBuf>,

    /// Only types with an NVIDIA GPU, built in or attached (with --fits: whose memory holds the model).
    #[arg(long)]
    pub gpu: bool,

    /// Only types at most this many USD per hour.
    #[arg(long, value_name = "USD", value_parser = parse_price)]
    pub max_price: Option<f64>,

    /// Only types of this machine family, like ml.g5 or n1-standard.
    #[arg(long, value_name = "FAMILY")]
    pub family: Option<String>,

    /// With --fits: how many types to show per provider.
    #[arg(long, default_value_t = 5, requires = "fits")]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum CatalogAction {
    /// Print how to rebuild the prices from the providers' price APIs (scripts/refresh-prices).
    Refresh,
}

#[derive(Debug, Args)]
pub struct CompressArgs {
    /// The ONNX model (a file, or a directory holding one and its external data).
    pub model: PathBuf,

    /// What to compress to: fp16, int8 (weight-only) or int8-dynamic.
    #[arg(long, value_parser = Offer::new(
        modelport_compress::Method::ALL.map(modelport_compress::Method::as_str),
        |s: &str| s.parse::<modelport_compress::Method>(),
    ))]
    pub to: Option<modelport_compress::Method>,

    /// One scale per output channel instead of one per weight (int8, int8-dynamic).
    #[arg(long)]
    pub per_channel: bool,

    /// Zero this fraction of each MatMul, Gemm and Conv weight, smallest first (0 <= S < 1).
    #[arg(long, value_name = "SPARSITY")]
    pub prune: Option<f64>,

    /// Leave a node (by name) or every node of an operator type as it is; repeatable.
    #[arg(long, value_name = "NODE|OP_TYPE")]
    pub exclude: Vec<String>,

    /// The compressed model's file (external data, if any, goes beside it as FILE.data).
    #[arg(long)]
    pub out: PathBuf,

    /// Evaluation inputs, optionally with labels (JSON {"instances": [...], "labels": [...]}, .npy, .csv).
    #[arg(long, conflicts_with = "samples")]
    pub eval: Option<PathBuf>,

    /// Evaluation inputs without labels (any form `compare` reads).
    #[arg(long, short = 'i')]
    pub samples: Option<PathBuf>,

    /// Without --eval or --samples: generate this many inputs from the signature.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,

    /// Seed for generated inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// The goal, METRIC=VALUE; repeatable (default agreement=1%).
    #[arg(long, value_name = "METRIC=VALUE", value_parser = |s: &str| s.parse::<modelport_compress::Goal>())]
    pub max_degradation: Vec<modelport_compress::Goal>,

    /// When the goal is missed, leave the nodes that cost the most accuracy uncompressed until it is met.
    #[arg(long)]
    pub auto: bool,

    /// Skip the latency and artifact-size measurements.
    #[arg(long)]
    pub no_measure: bool,

    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A deployment name, a model file or a URL.
    pub a: String,

    /// The reference: a deployment name, a model file or a URL (default: A's own model, run here).
    pub b: Option<String>,

    /// Engine for A when A is a model file.
    #[arg(long, value_parser = parse_engine, default_value = "auto")]
    pub engine_a: EngineChoice,

    /// Engine for B when B is a model file (or the reference of a deployment).
    #[arg(long, value_parser = parse_engine, default_value = "auto", env = MODELPORT_ENGINE)]
    pub engine_b: EngineChoice,

    /// Inputs: JSON (either wire form), .npy or .csv with a header (default: the deployment's
    /// verify.samples, else generated).
    #[arg(long, short = 'i')]
    pub samples: Option<PathBuf>,

    /// Generate this many inputs from the signature (default: the deployment's verify.count, else 64).
    #[arg(long, conflicts_with = "samples", value_parser = clap::value_parser!(u32).range(1..))]
    pub count: Option<u32>,

    /// Seed for generated inputs.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Absolute tolerance for every output (default: the deployment's verify.atol, else 1e-5).
    #[arg(long, value_parser = parse_tolerance)]
    pub atol: Option<f64>,

    /// Relative tolerance for every output (default: the deployment's verify.rtol, else 1e-4).
    #[arg(long, value_parser = parse_tolerance)]
    pub rtol: Option<f64>,

    /// Write the result as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,

    /// Write the result as one self-contained HTML page with plots to this file: per
    /// output a scatter with the tolerance band and error histograms, label pairs, the
    /// worst examples, who A and B were.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Requests in flight per URL or deployment.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,

    /// Largest request body for a URL target, in bytes.
    #[arg(long, default_value_t = 6_291_456)]
    pub max_request_bytes: usize,

    /// How many of the worst examples to show.
    #[arg(long, default_value_t = 5)]
    pub worst: usize,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One deployment (default: all).
    pub name: Option<String>,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Also ask this provider for deployments by their tags, including ones with no
    /// local state (aws).
    #[arg(long)]
    pub provider: Option<String>,

    /// The modelport.yaml that says which account, region or emulator to ask.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The provider whose permissions to print.
    #[arg(long, default_value = "aws", value_parser = providers(CLOUDS))]
    pub provider: String,

    /// The deployment's modelport.yaml.
    #[arg(short = 'f', long = "file", default_value = "modelport.yaml")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The deployment to remove.
    pub name: String,

    /// Also delete the uploaded model artifacts: on S3 and Cloud Storage everything under
    /// the deployment's prefix (every revision it ever uploaded), locally the revisions'
    /// entries in the artifact store that no other deployment uses.
    #[arg(long)]
    pub purge: bool,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub workspace: WorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A directory unpacked from model.tar.gz (checked against its modelport.json), a
    /// model.tar.gz, or an .onnx file.
    pub model: Option<PathBuf>,

    /// Port to listen on; 0 picks a free one.
    #[arg(long)]
    pub port: Option<u16>,

    /// Address to listen on.
    #[arg(long, env = MODELPORT_HOST, default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Model name on the OIP and TF-Serving routes (default: the model file's stem).
    #[arg(long, env = MODELPORT_MODEL_NAME)]
    pub model_name: Option<String>,

    /// Largest request body in bytes; larger ones get 413 (default: SageMaker's 6 MB).
    #[arg(long, env = MODELPORT_MAX_BODY_BYTES, default_value_t = modelport_serve::config::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Seconds one request may take before it gets 504.
    #[arg(long, env = MODELPORT_TIMEOUT_S, default_value_t = 60)]
    pub timeout_s: u64,

    /// Inference workers, each with its own session (default: the number of cores).
    #[arg(long, env = MODELPORT_WORKERS)]
    pub workers: Option<usize>,

    /// Requests that may wait for a worker before new ones get 503 (default: 64 per worker).
    #[arg(long, env = MODELPORT_QUEUE_DEPTH)]
    pub queue_depth: Option<usize>,

    /// Rows that waiting requests may be merged into for one inference; 1 turns merging off.
    #[arg(long, env = MODELPORT_MAX_BATCH_ROWS, default_value_t = 64)]
    pub max_batch_rows: usize,

    /// Inference engine: auto, onnxruntime or tract.
    #[arg(long, env = MODELPORT_ENGINE, default_value = "auto", value_parser = parse_engine)]
    pub engine: EngineChoice,

    /// Threads per inference session (default 1: workers run side by side).
    #[arg(long, env = MODELPORT_INTRA_THREADS)]
    pub threads: Option<usize>,

    /// A name for the revision this process serves, sent back in the x-modelport-revision
    /// header (and SageMaker's custom attributes) of every answer.
    #[arg(long, env = MODELPORT_REVISION)]
    pub revision: Option<String>,

    /// The image this server runs in (REGISTRY/REPO@sha256:...), sent back in the
    /// x-modelport-image header; `deploy` sets it in the container's environment.
    #[arg(long, env = MODELPORT_IMAGE)]
    pub image: Option<String>,

    /// Also take this port when SIGUSR1 arrives (bound with SO_REUSEPORT, retried while
    /// a previous server still holds it): how `deploy --provider local` hands a fixed
    /// port to a new revision only after it passed its comparison.
    #[arg(long, value_name = "PORT")]
    pub handover_port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The .onnx file, or a directory holding one.
    pub model: PathBuf,

    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The .onnx file, or a directory holding one.
    pub model: PathBuf,

    /// Inputs: a JSON file in either wire form ({"instances": ...} or {"inputs": ...}), a .npy
    /// file (single-input models), or - for JSON on stdin.
    #[arg(
        long,
        short = 'i',
        required_unless_present = "generate",
        conflicts_with = "generate"
    )]
    pub input: Option<PathBuf>,

    /// Generate this many deterministic examples from the signature instead of reading inputs.
    #[arg(long)]
    pub generate: Option<usize>,

    /// Seed for --generate.
    #[arg(long, default_value_t = 0, requires = "generate")]
    pub seed: u64,

    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The .onnx file, or a directory holding exactly one .onnx plus its other files.
    pub model: PathBuf,

    /// Directory to write model.tar.gz (or model/) into.
    #[arg(long, default_value = "dist")]
    pub out: PathBuf,

    /// `archive`: one model.tar.gz; `dir`: the files and their manifest in OUT/model/,
    /// not compressed (for large models: SageMaker reads it as uncompressed model
    /// data, nothing is unpacked on the instance); `auto`: `dir` above 512 MB.
    #[arg(long, default_value = "auto", value_parser = ["auto", "archive", "dir"])]
    pub layout: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The model the deployment serves (written as model.path).
    #[arg(default_value = "model.onnx")]
    pub model: PathBuf,

    /// Deployment name (default: from the model's file name).
    #[arg(long)]
    pub name: Option<String>,

    /// Where to write the file.
    #[arg(long, short = 'f', default_value = "modelport.yaml")]
    pub file: PathBuf,

    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write an OCI image layout: this modelport, onnxruntime, their shared libraries and CA certificates.
    #[command(
        after_help = "No Docker engine is used. The image starts `modelport serve` on port 8080 and runs on \
        SageMaker and Vertex AI alike; the same files give the same manifest digest on every run (dates from \
        $SOURCE_DATE_EPOCH, else 1970). The manifest uses Docker's v2 schema 2 media types, which SageMaker \
        requires.\n\n\
        Examples:\n  modelport image build\n  modelport image build --engine tract --out dist/image-tract\n  \
        modelport image build --binary target/aarch64-unknown-linux-gnu/release/modelport \\\n    \
        --onnxruntime arm64/libonnxruntime.so.1.32.0 --platform linux/arm64"
    )]
    Build(ImageBuildArgs),

    /// Push an image layout to an OCI registry, skipping the blobs it already has.
    #[command(
        after_help = "Credentials: Amazon ECR (ACCOUNT.dkr.ecr.REGION.amazonaws.com) through the AWS \
        credentials, Artifact Registry (REGION-docker.pkg.dev) through Application Default Credentials, any \
        other registry through ~/.docker/config.json ($DOCKER_CONFIG), else anonymously. A registry on \
        127.0.0.1 or localhost is spoken to over HTTP, every other over HTTPS.\n\n\
        Examples:\n  modelport image push 123456789012.dkr.ecr.us-east-1.amazonaws.com/modelport:0.1.0\n  \
        modelport image push localhost:5000/modelport:dev --layout dist/image"
    )]
    Push(ImagePushArgs),
}

/// The engine an image serves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageEngine {
    Onnxruntime,
    Tract,
}

#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    /// Folder to write the OCI image layout into (replaced if it exists).
    #[arg(long, default_value = "dist/image")]
    pub out: PathBuf,

    /// The engine the image serves with: onnxruntime (its library is put in the image) or tract (nothing more).
    #[arg(long, value_enum, default_value = "onnxruntime")]
    pub engine: ImageEngine,

    /// The modelport executable to put in the image (default: the one running).
    #[arg(long)]
    pub binary: Option<PathBuf>,

    /// The libonnxruntime.so to put in the image (default: the one the engine finds on this machine).
    #[arg(long)]
    pub onnxruntime: Option<PathBuf>,

    /// linux/amd64 or linux/arm64; every file is checked against it (default: the binary's own).
    #[arg(long)]
    pub platform: Option<String>,

    /// The CA bundle to put in the image (default: this machine's).
    #[arg(long)]
    pub ca_certificates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImagePushArgs {
    /// Where to push: REGISTRY/REPOSITORY:TAG.
    pub reference: String,

    /// The image layout to push (written by `modelport image build`).
    #[arg(long, default_value = "dist/image")]
    pub layout: PathBuf,
}
