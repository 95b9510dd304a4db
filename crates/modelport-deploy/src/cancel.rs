//! SIGINT and SIGTERM during a rollout. The first one undoes what the rollout
//! started (the previous revision keeps the traffic); a second one during that
//! clean-up stops it, leaving the state that a re-run or `destroy` finishes from.

use std::sync::Arc;

use tokio::sync::watch;

/// Signals received so far, and the last one's name.
#[derive(Debug, Clone)]
pub struct Cancellation {
    rx: watch::Receiver<(u32, &'static str)>,
    // Keeps the channel open, also for cancellations that nothing will ever trigger.
    _tx: Arc<watch::Sender<(u32, &'static str)>>,
}

/// Triggers a [`Cancellation`] by hand (tests, embedders).
#[derive(Debug, Clone)]
pub struct CancelHandle(Arc<watch::Sender<(u32, &'static str)>>);

impl CancelHandle {
    /// Counts one more request to stop, named `why`.
    pub fn cancel(&self, why: &'static str) {
        self.0.send_modify(|(n, name)| {
            *n += 1;
            *name = why;
        });
    }
}

impl Cancellation {
    /// A cancellation that never happens.
    pub fn never() -> Cancellation {
        Cancellation::manual().1
    }

    /// A cancellation and the handle that triggers it.
    pub fn manual() -> (CancelHandle, Cancellation) {
        let (tx, rx) = watch::channel((0, ""));
        let tx = Arc::new(tx);
        (CancelHandle(tx.clone()), Cancellation { rx, _tx: tx })
    }

    /// Counts SIGINT and SIGTERM from now on (inside a tokio runtime). From this
    /// call on, those signals no longer end the process by themselves: the rollout
    /// decides.
    pub fn on_signals() -> std::io::Result<Cancellation> {
        use tokio::signal::unix::{SignalKind, signal};
        let (handle, cancellation) = Cancellation::manual();
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    s = int.recv() => s.map(|()| "SIGINT"),
                    s = term.recv() => s.map(|()| "SIGTERM"),
                };
                match name {
                    Some(name) => handle.cancel(name),
                    None => return,
                }
            }
        });
        Ok(cancellation)
    }

    /// How many stop requests arrived.
    pub fn count(&self) -> u32 {
        self.rx.borrow().0
    }

    /// The name of the last one (`SIGINT`, `SIGTERM`).
    pub fn last(&self) -> &'static str {
        self.rx.borrow().1
    }

    /// Resolves once more than `seen` stop requests have arrived.
    pub async fn after(&self, seen: u32) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|(n, _)| *n > seen).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
