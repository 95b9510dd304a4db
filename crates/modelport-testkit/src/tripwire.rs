//! A tripwire at the n-th distinct call a fake sees: the client is killed there, or
//! the call meets a fault (throttled, a server error, a dropped connection, an
//! answer that never comes). Crash and fault harnesses walk the wire along every
//! call of a command, one run per point.
//!
//! "Distinct" keeps the points the same from one run to the next although the
//! number of polls is not: every call that changes something is a point, and a
//! read is a point only the first time it is seen since the last change (the
//! second poll of an operation adds nothing a crash could observe). A harness
//! first runs the command with the wire unarmed to learn its points
//! ([`Tripwire::points`]), then once per point with [`Tripwire::arm`].
//!
//! Several fakes can share one wire (the Vertex AI fake and the Cloud Storage
//! proxy in front of fake-gcs-server), so the points of a command that talks to
//! both are counted in one sequence.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;

/// What happens at the armed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// The call is handled, then the client process is killed with SIGKILL before
    /// the answer is sent: the cloud did it, the client never learned.
    Kill,
    /// The call is refused as throttled (the service's own throttling error) and
    /// nothing is done.
    Throttle,
    /// The call is refused with a server error (500 or 503) and nothing is done.
    ServerError,
    /// The call is handled, then the connection is dropped without an answer.
    Reset,
    /// The call is handled, and the answer is held back for this long: longer
    /// than the client waits.
    Timeout(Duration),
}

impl Trip {
    /// True when the call is refused before anything is done.
    pub fn refuses(self) -> bool {
        matches!(self, Trip::Throttle | Trip::ServerError)
    }

    pub fn name(self) -> &'static str {
        match self {
            Trip::Kill => "kill",
            Trip::Throttle => "throttle",
            Trip::ServerError => "server error",
            Trip::Reset => "connection reset",
            Trip::Timeout(_) => "timeout",
        }
    }
}

/// One distinct call: its index (from 1), `OPERATION NAME`, and whether it changes
/// something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub index: usize,
    pub call: String,
    pub mutates: bool,
}

#[derive(Default)]
struct Inner {
    armed: Option<(usize, Trip)>,
    client: Option<u32>,
    points: Vec<Point>,
    reads_since_change: HashSet<String>,
    tripped: Option<(Point, Trip)>,
}

/// The shared wire; cheap to clone (clones share it).
#[derive(Clone, Default)]
pub struct Tripwire {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Tripwire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Tripwire")
            .field("armed", &inner.armed)
            .field("points", &inner.points.len())
            .field("tripped", &inner.tripped)
            .finish()
    }
}

/// What a fake does with one call, decided when the call arrives.
#[derive(Debug)]
#[must_use]
pub struct Decision {
    trip: Option<Trip>,
    wire: Tripwire,
}

impl Decision {
    /// The refusal to answer instead of handling the call, if any.
    pub fn refusal(&self) -> Option<Trip> {
        self.trip.filter(|t| t.refuses())
    }

    /// Gives the answer to a handled call: as it is, or after killing the client,
    /// after a long wait, or as a dropped connection.
    pub async fn finish(self, resp: Response) -> Response {
        match self.trip {
            Some(Trip::Kill) => {
                self.wire.kill_client().await;
                resp
            }
            Some(Trip::Timeout(d)) => {
                tracing::info!(delay = ?d, "tripwire: holding the answer back");
                tokio::time::sleep(d).await;
                resp
            }
            Some(Trip::Reset) => {
                tracing::info!("tripwire: dropping the connection");
                dropped()
            }
            _ => resp,
        }
    }
}

/// A response whose body fails before its first byte: hyper closes the
/// connection and the client reads no answer.
pub(crate) fn dropped() -> Response {
    let failed = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "tripwire: connection dropped",
        ))
    });
    Response::new(Body::from_stream(failed))
}

impl Tripwire {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the points seen and disarms: the next call is point 1.
    pub fn reset(&self) {
        *self.lock() = Inner::default();
    }

    /// Forgets the points seen and arms the wire at point `n` (from 1).
    pub fn arm(&self, n: usize, trip: Trip) {
        let mut inner = self.lock();
        *inner = Inner::default();
        inner.armed = Some((n, trip));
    }

    /// The process [`Trip::Kill`] kills (the command under test).
    pub fn client(&self, pid: u32) {
        self.lock().client = Some(pid);
    }

    /// The distinct calls seen since the last reset or arm.
    pub fn points(&self) -> Vec<Point> {
        self.lock().points.clone()
    }

    /// The point the wire tripped at, if it did.
    pub fn tripped(&self) -> Option<(Point, Trip)> {
        self.lock().tripped.clone()
    }

    /// Counts a call (`OPERATION NAME`) and decides what happens to it.
    pub fn on_call(&self, call: &str, mutates: bool) -> Decision {
        let mut inner = self.lock();
        let distinct = if mutates {
            inner.reads_since_change.clear();
            true
        } else {
            inner.reads_since_change.insert(call.to_string())
        };
        let mut trip = None;
        if distinct {
            let point = Point {
                index: inner.points.len() + 1,
                call: call.to_string(),
                mutates,
            };
            if let Some((n, t)) = inner.armed
                && n == point.index
            {
                tracing::info!(point = n, call, trip = t.name(), "tripwire: tripped");
                inner.armed = None;
                inner.tripped = Some((point.clone(), t));
                trip = Some(t);
            }
            inner.points.push(point);
        }
        Decision {
            trip,
            wire: self.clone(),
        }
    }

    /// Kills the client with SIGKILL once it is known (a harness names it right
    /// after spawning it) and waits until it is gone, so that no answer reaches it.
    async fn kill_client(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = self.lock().client {
                break Some(pid);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) else {
            tracing::error!("tripwire: no client process to kill was named");
            return;
        };
        tracing::info!(
            pid = pid.as_raw_nonzero().get(),
            "tripwire: killing the client"
        );
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        // The harness reaps it; until then it is a zombie, which runs no code.
        while Instant::now() < deadline && running(pid.as_raw_nonzero().get() as u32) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// True while `pid` exists and is not a zombie (which runs no code).
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(wire: &Tripwire, calls: &[(&str, bool)]) -> Vec<Option<Trip>> {
        calls
            .iter()
            .map(|(c, m)| wire.on_call(c, *m).trip)
            .collect()
    }

    #[test]
    fn repeated_reads_between_changes_are_one_point() {
        let wire = Tripwire::default();
        calls(
            &wire,
            &[
                ("DescribeEndpoint e", false),
                ("DescribeEndpoint e", false),
                ("CreateModel m", true),
                ("DescribeEndpoint e", false),
                ("GetOperation a", false),
                ("DescribeEndpoint e", false),
                ("GetOperation a", false),
                ("CreateModel m", true),
            ],
        );
        let points: Vec<String> = wire.points().into_iter().map(|p| p.call).collect();
        assert_eq!(
            points,
            [
                "DescribeEndpoint e",
                "CreateModel m",
                "DescribeEndpoint e",
                "GetOperation a",
                "CreateModel m"
            ]
        );
    }

    #[test]
    fn the_armed_point_trips_once() {
        let wire = Tripwire::default();
        wire.arm(2, Trip::Throttle);
        let trips = calls(
            &wire,
            &[
                ("Describe a", false),
                ("Describe a", false),
                ("Create b", true),
                ("Create b", true),
            ],
        );
        assert_eq!(trips, [None, None, Some(Trip::Throttle), None]);
        let (point, trip) = wire.tripped().unwrap();
        assert_eq!((point.index, point.call.as_str()), (2, "Create b"));
        assert_eq!(trip, Trip::Throttle);
        assert!(Trip::Throttle.refuses() && !Trip::Kill.refuses());
    }
}
