//! Progress from providers, rendered on stderr.

use modelport_core::provider::Reporter;

/// Prints each step on stderr; progress within a step only at debug level.
pub struct StderrReporter {
    quiet: bool,
}

impl StderrReporter {
    pub fn new(quiet: bool) -> StderrReporter {
        StderrReporter { quiet }
    }

    /// True when nothing is printed (`--quiet`, `--output json`).
    pub fn is_silent(&self) -> bool {
        self.quiet
    }
}

impl Reporter for StderrReporter {
    fn on_start(&self, step: &str) {
        if !self.quiet {
            eprintln!("  {step}");
        }
    }

    fn on_progress(&self, message: &str) {
        tracing::debug!("{message}");
    }

    fn on_finish(&self, step: &str) {
        if !self.quiet {
            eprintln!("  {step}");
        }
    }
}
