//! The data-plane processes a fake starts (`modelport serve`, one per endpoint
//! variant or deployed model): started detached with their output in a log,
//! recognised by a marker on their command line, stopped by pid (SIGTERM, grace,
//! SIGKILL) and reaped. Shared by the SageMaker and Vertex AI fakes.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use modelport_local::process::{spawn_detached, stop};

/// How long a server has between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The longest a stop waits for the requests on their way through a server.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

struct ServerProc {
    child: Child,
    marker: String,
    /// One clone per request in flight ([`Servers::hold`]).
    busy: Arc<()>,
}

/// A request on its way through a server: [`Servers::stop`] waits for it.
pub(crate) struct Hold {
    _busy: Arc<()>,
}

#[derive(Default)]
struct Inner {
    procs: HashMap<u32, ServerProc>,
    closing: bool,
}

/// The running servers of one fake, by pid.
#[derive(Default)]
pub(crate) struct Servers {
    inner: Mutex<Inner>,
}

impl Servers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `cmd` (its output to `log`) and records it; `marker` is a string of
    /// its command line. Refused once the fake is closing, so that nothing starts
    /// after [`Servers::stop_all`] has collected the pids.
    pub(crate) fn spawn(&self, cmd: Command, log: &Path, marker: String) -> Result<u32, String> {
        let mut inner = self.lock();
        if inner.closing {
            return Err("the fake is shutting down".into());
        }
        let program = cmd.get_program().to_string_lossy().to_string();
        let child = spawn_detached(cmd, log).map_err(|e| format!("cannot start {program}: {e}"))?;
        let pid = child.id();
        inner.procs.insert(
            pid,
            ServerProc {
                child,
                marker,
                busy: Arc::new(()),
            },
        );
        Ok(pid)
    }

    /// True when the server has exited (or is not one of ours).
    pub(crate) fn exited(&self, pid: u32) -> bool {
        self.lock()
            .procs
            .get_mut(&pid)
            .is_none_or(|s| !matches!(s.child.try_wait(), Ok(None)))
    }

    /// Marks a request on its way through the server `pid` until the hold is
    /// dropped (`None` when the server is not one of ours).
    pub(crate) fn hold(&self, pid: u32) -> Option<Hold> {
        self.lock().procs.get(&pid).map(|p| Hold {
            _busy: p.busy.clone(),
        })
    }

    /// Stops one server once the requests already on their way through it are
    /// answered (as SageMaker and Vertex AI drain the servers an update or an
    /// undeploy retires, so no request they accepted fails for it), and reaps it.
    pub(crate) async fn stop(&self, pid: u32) {
        let busy = self.lock().procs.get(&pid).map(|p| p.busy.clone());
        if let Some(busy) = busy {
            let deadline = Instant::now() + DRAIN_LIMIT;
            // Ours and the record's are not requests.
            while Arc::strong_count(&busy) > 2 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.stop_now(pid).await;
    }

    /// Stops one server and reaps it.
    async fn stop_now(&self, pid: u32) {
        let proc = self.lock().procs.remove(&pid);
        if let Some(mut proc) = proc {
            let how = stop(pid, &proc.marker, STOP_GRACE).await;
            // Still ours until reaped, so the pid cannot have been reused: make sure
            // it is gone and reap it.
            if matches!(proc.child.try_wait(), Ok(None)) {
                let _ = proc.child.kill();
                let _ = tokio::task::spawn_blocking(move || proc.child.wait()).await;
            }
            tracing::debug!(pid, ?how, "data plane stopped");
        }
    }

    /// Refuses new servers from now on.
    pub(crate) fn close(&self) {
        self.lock().closing = true;
    }

    /// Stops every server, without waiting for requests.
    pub(crate) async fn stop_all(&self) {
        for pid in self.pids() {
            self.stop_now(pid).await;
        }
    }

    /// The pids of the running servers, sorted.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.lock().procs.keys().copied().collect();
        pids.sort();
        pids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_waits_for_the_requests_on_their_way() {
        let servers = Arc::new(Servers::default());
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        let pid = servers
            .spawn(cmd, &dir.path().join("log"), "300".into())
            .unwrap();
        let hold = servers.hold(pid).expect("a server of ours");
        let stopping = tokio::spawn({
            let servers = servers.clone();
            async move { servers.stop(pid).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!stopping.is_finished(), "stopped under a request");
        assert!(!servers.exited(pid), "stopped under a request");
        drop(hold);
        stopping.await.unwrap();
        assert!(servers.exited(pid));
        assert!(servers.hold(pid).is_none());
    }
}
