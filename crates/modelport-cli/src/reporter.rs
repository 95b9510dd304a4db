//! Progress from providers, rendered on stderr.

use std::time::Duration;

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

    /// Every status change, with the time waited and the deadline: a SageMaker
    /// endpoint takes minutes to come up, and one line every few minutes tells the
    /// user it is alive and how long it may still take.
    fn on_status(&self, what: &str, status: &str, elapsed: Duration, deadline: Duration) {
        if !self.quiet {
            eprintln!(
                "    {what}: {status} ({} of at most {})",
                clock(elapsed),
                clock(deadline)
            );
        }
    }
}

/// `42 s`, `3 min 05 s`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}
