//! The one rollout: package → plan → create the pending revision → verify it before
//! any production request reaches it → move the traffic → retire the previous
//! revision, or roll back. It works over `&dyn Provider`; each provider implements
//! the steps and this crate owns their order, the state recorded before each one,
//! what an error, a failed comparison or a signal undoes, and how a later command
//! finishes what a crashed one left.
//!
//! The CLI only calls it: `plan` runs [`prepare`]; `deploy` runs the same steps
//! ([`check_compute`], [`package_in`], [`plan`]) with [`Deployer::recover`] first and
//! [`Deployer::run`] last, under the deployment's lock
//! ([`modelport_core::state::Workspace::lock`]).

pub mod cancel;
pub mod error;
pub mod prepare;
pub mod rollout;
pub mod verify;

pub use cancel::{CancelHandle, Cancellation};
pub use error::{DeployError, Result};
pub use prepare::{
    Compression, Packaged, Planned, Scratch, check_compute, hourly, package_in, plan, prepare,
    record_deployed, recorded_state,
};
pub use rollout::{Deployer, Outcome};
pub use verify::{EndpointGate, ReferenceVerifier, Verdict, Verifier};
