//! Fail points: named places where a test can make a debug build fail, crash or
//! pause, to prove that every step of a rollout can be interrupted and recovered
//! from. `MODELPORT_FAILPOINTS="rollout.verify=error,rollout.retire=abort"` arms them.
//!
//! Steps are the other half: [`step`] marks each side effect (a state file
//! written, a server started or signalled, a file stored) as it happens, so that a
//! harness can list them (`MODELPORT_STEPS`) and kill the process with SIGKILL
//! right after any one of them (`MODELPORT_CRASH_AT`).
//!
//! Release builds read nothing: [`check`] always returns `None` there and [`step`]
//! does nothing, so no environment variable can make a shipped binary misbehave.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::env::{MODELPORT_CRASH_AT, MODELPORT_FAILPOINTS, MODELPORT_STEPS};

/// What an armed fail point does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The step fails with an error naming the fail point.
    Error,
    /// The process aborts at once, as if killed: no clean-up code runs.
    Abort,
    /// The step waits this many milliseconds first (a window for a test's signal).
    Sleep(u64),
    /// The code at the fail point panics (where it is meant to survive one).
    Panic,
}

/// The action armed for `name`, if any (debug builds only).
pub fn check(name: &str) -> Option<Action> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let spec = std::env::var(MODELPORT_FAILPOINTS).ok()?;
    parse(&spec, name)
}

/// Aborts when `name` is armed with `abort`; returns the other actions.
pub fn hit(name: &str) -> Option<Action> {
    let action = check(name)?;
    if action == Action::Abort {
        eprintln!("modelport: fail point {name}: aborting");
        std::process::abort();
    }
    Some(action)
}

/// Marks a side effect that has just taken place (debug builds only): appends
/// `N NAME` to `MODELPORT_STEPS`, and kills the process with SIGKILL when `N` is
/// `MODELPORT_CRASH_AT`, before anything else can run.
pub fn step(name: &str) {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    if !cfg!(debug_assertions) {
        return;
    }
    let log = std::env::var_os(MODELPORT_STEPS);
    let crash_at: Option<usize> = std::env::var(MODELPORT_CRASH_AT)
        .ok()
        .and_then(|v| v.trim().parse().ok());
    if log.is_none() && crash_at.is_none() {
        return;
    }
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(log) = log
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(f, "{n} {name}");
    }
    if crash_at == Some(n) {
        eprintln!("modelport: crash point {n} ({name}): killing this process");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; nothing after this runs.
        std::process::abort();
    }
}

fn parse(spec: &str, name: &str) -> Option<Action> {
    spec.split(',').find_map(|item| {
        let (key, action) = item.trim().split_once('=')?;
        if key.trim() != name {
            return None;
        }
        match action.trim() {
            "error" => Some(Action::Error),
            "abort" => Some(Action::Abort),
            "panic" => Some(Action::Panic),
            other => other
                .strip_prefix("sleep(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|ms| ms.parse().ok())
                .map(Action::Sleep),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_action_by_name() {
        let spec = "a=error, b = abort ,c=sleep(250),d=bogus";
        assert_eq!(parse(spec, "a"), Some(Action::Error));
        assert_eq!(parse(spec, "b"), Some(Action::Abort));
        assert_eq!(parse(spec, "c"), Some(Action::Sleep(250)));
        assert_eq!(parse(spec, "d"), None);
        assert_eq!(parse(spec, "e"), None);
    }
}
