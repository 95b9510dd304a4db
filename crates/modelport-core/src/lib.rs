//! modelport's vocabulary: what a model takes and returns, how those values look on the
//! wire, and what a deployment asks for.
//!
//! This crate knows no cloud, no HTTP and no terminal; it reads files and nothing else.
//! Every other crate speaks in its types.

pub mod codec;
pub mod env;
pub mod error;
pub mod failpoint;
pub mod format;
pub mod goal;
pub mod lock;
pub mod npy;
pub mod predictor;
pub mod provider;
pub mod signature;
pub mod spec;
pub mod state;
pub mod tensor;
pub mod time;
pub mod units;

pub use error::{Error, Result};
pub use predictor::{
    Expected, Partial, PredictError, Prediction, Predictor, ServedBy, TargetInfo, TargetKind,
};
pub use signature::{ClassLabels, Dim, Signature, TensorSpec};
pub use tensor::{Batch, DType, NamedTensor, Tensor, TensorData};
