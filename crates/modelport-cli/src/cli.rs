//! Command-line arguments. Precedence: flag > environment variable > modelport.yaml > default.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use modelport_core::env::{
    MODELPORT_ENGINE, MODELPORT_HOST, MODELPORT_INTRA_THREADS, MODELPORT_MAX_BATCH_ROWS,
    MODELPORT_MAX_BODY_BYTES, MODELPORT_MODEL_NAME, MODELPORT_QUEUE_DEPTH, MODELPORT_TIMEOUT_S,
    MODELPORT_WORKERS,
};
use modelport_runtime::EngineChoice;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  error (the message and a hint are on stderr)
  2  usage error (bad flags or arguments)
  3  a comparison ran and found a mismatch

Environment:
  MODELPORT_ENGINE         default for --engine
  MODELPORT_INTRA_THREADS  threads per inference
  ORT_DYLIB_PATH           path of libonnxruntime for the onnxruntime engine
  MODELPORT_LOG            log filter, e.g. modelport=debug
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

fn parse_engine(s: &str) -> Result<EngineChoice, String> {
    s.parse::<EngineChoice>().map_err(|e| e.to_string())
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

    /// Write a deterministic model.tar.gz (model files + modelport.json manifest).
    #[command(
        after_help = "Examples:\n  modelport package examples/iris/model.onnx --out dist\n  modelport package model_dir/ --output json"
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

    /// Directory to write model.tar.gz into.
    #[arg(long, default_value = "dist")]
    pub out: PathBuf,
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
