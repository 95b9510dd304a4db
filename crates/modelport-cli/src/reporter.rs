//! Progress from providers, rendered on stderr.
//!
//! On a terminal, transfers (packaging, uploads, samples answered) are live bars
//! with their rate and the wait for an endpoint a spinner with the time waited and
//! the deadline; elsewhere (a pipe, a CI log) the same facts are plain lines: a
//! transfer's total and rate when it ends (and a line every 10 s while a long one
//! runs), each status change. Both print every step, every status change and every
//! finished transfer as a line, so a terminal's scrollback reads like a CI log.
//! `--quiet` and `--output json` print none of it; `NO_COLOR` keeps the bars but
//! drops their colour.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use modelport_core::provider::{Reporter, Unit};

/// How often a plain-line transfer says how far it is.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Prints each step on stderr; progress within a step only at debug level.
pub struct StderrReporter {
    quiet: bool,
    live: Option<Live>,
    /// Transfers under way: when each began and when it last printed a line.
    amounts: Mutex<HashMap<String, (Instant, Instant)>>,
}

/// The bars of a terminal.
struct Live {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// The spinner of the wait under way, if any.
    wait: Mutex<Option<ProgressBar>>,
    color: bool,
}

impl StderrReporter {
    /// Live bars when stderr is a terminal (and `TERM` is not `dumb`), plain lines
    /// otherwise, nothing when `quiet`.
    pub fn new(quiet: bool) -> StderrReporter {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        let live = (!quiet && terminal).then(|| Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
            wait: Mutex::new(None),
            color: console::colors_enabled_stderr(),
        });
        StderrReporter {
            quiet,
            live,
            amounts: Mutex::new(HashMap::new()),
        }
    }

    /// True when nothing is printed (`--quiet`, `--output json`).
    pub fn is_silent(&self) -> bool {
        self.quiet
    }

    /// Prints a line, above the bars on a terminal.
    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.live {
            Some(live) => {
                let _ = live.multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// Ends the wait spinner, if one turns.
    fn end_wait(&self) {
        if let Some(live) = &self.live
            && let Some(spinner) = lock(&live.wait).take()
        {
            spinner.finish_and_clear();
            live.multi.remove(&spinner);
        }
    }
}

impl Drop for StderrReporter {
    fn drop(&mut self) {
        self.end_wait();
        if let Some(live) = &self.live {
            for (_, bar) in lock(&live.bars).drain() {
                bar.finish_and_clear();
            }
        }
    }
}

impl Reporter for StderrReporter {
    fn on_start(&self, step: &str) {
        self.end_wait();
        self.line(&format!("  {step}"));
    }

    fn on_progress(&self, message: &str) {
        tracing::debug!("{message}");
    }

    fn on_finish(&self, step: &str) {
        self.end_wait();
        self.line(&format!("  {step}"));
    }

    /// Every status change, with the time waited and the deadline: a SageMaker
    /// endpoint takes minutes to come up, and one line every few minutes tells the
    /// user it is alive and how long it may still take. On a terminal a spinner
    /// keeps counting between changes.
    fn on_status(&self, what: &str, status: &str, elapsed: Duration, deadline: Duration) {
        if self.quiet {
            return;
        }
        self.end_wait();
        self.line(&format!(
            "    {what}: {status} ({} of at most {})",
            clock(elapsed),
            clock(deadline)
        ));
        let Some(live) = &self.live else { return };
        let bar = ProgressBar::new_spinner()
            .with_style(spinner_style(deadline, live.color))
            .with_elapsed(elapsed)
            .with_message(format!("{what}: {status}"));
        let bar = live.multi.add(bar);
        bar.enable_steady_tick(Duration::from_millis(120));
        *lock(&live.wait) = Some(bar);
    }

    fn on_amount(&self, what: &str, done: u64, total: u64, unit: Unit) {
        if self.quiet || total == 0 {
            return;
        }
        let now = Instant::now();
        let mut amounts = lock(&self.amounts);
        let (began, printed) = amounts.entry(what.to_string()).or_insert((now, now));
        let (began, last) = (*began, *printed);
        let rate = rate(done, now - began, unit);
        if done >= total {
            amounts.remove(what);
            drop(amounts);
            if let Some(live) = &self.live
                && let Some(bar) = lock(&live.bars).remove(what)
            {
                bar.finish_and_clear();
                live.multi.remove(&bar);
            }
            self.line(&format!(
                "    {what}: {} in {} ({rate})",
                unit.format(total),
                seconds(now - began)
            ));
            return;
        }
        match &self.live {
            Some(live) => {
                drop(amounts);
                let mut bars = lock(&live.bars);
                let bar = bars.entry(what.to_string()).or_insert_with(|| {
                    let bar = ProgressBar::new(total)
                        .with_style(bar_style(unit, live.color))
                        .with_message(what.to_string());
                    live.multi.add(bar)
                });
                bar.set_length(total);
                bar.set_position(done);
            }
            None => {
                if now - last >= PLAIN_EVERY {
                    amounts.insert(what.to_string(), (began, now));
                    drop(amounts);
                    self.line(&format!(
                        "    {what}: {} of {} ({rate})",
                        unit.format(done),
                        unit.format(total)
                    ));
                }
            }
        }
    }
}

/// A reporter's own lock: a panic elsewhere while it was held leaves nothing half
/// done that matters for printing, so the poison is ignored rather than spread.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A transfer's bar: what, the bar, how far, the rate and the time left.
fn bar_style(unit: Unit, color: bool) -> ProgressStyle {
    let bar = if color {
        "{bar:30.cyan/blue}"
    } else {
        "{bar:30}"
    };
    let amounts = match unit {
        Unit::Bytes => "{decimal_bytes} of {decimal_total_bytes} ({decimal_bytes_per_sec})",
        Unit::Samples => "{pos} of {len} samples ({per_sec})",
    };
    ProgressStyle::with_template(&format!("    {{msg}} {bar} {amounts}, {{eta}} left"))
        .expect("a valid template")
        .progress_chars("=> ")
}

/// A wait's spinner: what, its status, the time waited (counting on between
/// changes) and the deadline.
fn spinner_style(deadline: Duration, color: bool) -> ProgressStyle {
    let spinner = if color {
        "{spinner:.cyan}"
    } else {
        "{spinner}"
    };
    ProgressStyle::with_template(&format!(
        "    {spinner} {{msg}} ({{waited}} of at most {})",
        clock(deadline)
    ))
    .expect("a valid template")
    .with_key(
        "waited",
        |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}", clock(s.elapsed()));
        },
    )
}

/// `12.5 MB/s`, `830 samples/s`; `-` before anything has moved.
fn rate(done: u64, took: Duration, unit: Unit) -> String {
    let secs = took.as_secs_f64();
    if secs <= 0.0 || done == 0 {
        return match unit {
            Unit::Bytes => "- B/s".into(),
            Unit::Samples => "- samples/s".into(),
        };
    }
    let per_sec = (done as f64 / secs) as u64;
    format!("{}/s", unit.format(per_sec))
}

/// `0.3 s`, `12.0 s`, `2 min 05 s`.
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        clock(d)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_times_read_as_people_write_them() {
        assert_eq!(
            rate(5_000_000, Duration::from_secs(2), Unit::Bytes),
            "2.5 MB/s"
        );
        assert_eq!(
            rate(900, Duration::from_millis(500), Unit::Samples),
            "1800 samples/s"
        );
        assert_eq!(rate(0, Duration::ZERO, Unit::Bytes), "- B/s");
        assert_eq!(seconds(Duration::from_millis(340)), "0.3 s");
        assert_eq!(seconds(Duration::from_secs(125)), "2 min 05 s");
        assert_eq!(clock(Duration::from_secs(42)), "42 s");
    }

    #[test]
    fn every_bar_style_is_a_valid_template() {
        for unit in [Unit::Bytes, Unit::Samples] {
            for color in [true, false] {
                bar_style(unit, color);
            }
        }
        for color in [true, false] {
            spinner_style(Duration::from_secs(120), color);
        }
    }
}
