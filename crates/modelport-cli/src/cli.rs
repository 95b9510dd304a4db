//! Command-line arguments. Precedence: flag > environment variable > modelport.yaml > default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use modelport_core::env::{MODELPORT_ENGINE, MODELPORT_INTRA_THREADS};
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
