//! Proves that two predictors answer alike: an endpoint against the local reference
//! runtime, two endpoints, or two engines.
//!
//! This crate compares any two [`modelport_core::Predictor`]s and knows nothing else
//! about them. [`metrics`] is pure arithmetic over batches already in memory, so every
//! rule about what counts as "the same" is tested without a network; [`report`] renders
//! the result as text, JSON or JUnit and [`html`] as a self-contained page with plots
//! ([`plots`] bounds what it draws); neither decides anything.

pub mod html;
pub mod http;
pub mod inputs;
pub mod local;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod run;

pub use html::render_html;
pub use http::{BatchPredictor, HttpPredictor, HttpTarget, Reply, Transport};
pub use local::LocalPredictor;
pub use metrics::{
    Comparison, FloatStats, LabelStats, OutputReport, RowPair, Status, WorstExample, compare,
};
pub use report::{CompareReport, render_junit, render_text};
pub use run::{CompareError, DEFAULT_WORST};
