//! An axum app served on its own thread and tokio runtime, so that synchronous
//! tests and the `fakecloud` binary can run fakes without a runtime of their own.

use std::future::Future;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

/// A server running in the background; stopped (gracefully, then its runtime
/// shut down) by [`Background::stop`] or on drop.
pub(crate) struct Background {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Serves `app` on `listener` (already bound, non-blocking) in a thread named
    /// `name`; `after` runs on the same runtime once serving has stopped (to stop
    /// what the server started).
    pub(crate) fn serve<F, Fut>(
        name: &'static str,
        listener: std::net::TcpListener,
        app: axum::Router,
        after: F,
    ) -> anyhow::Result<Background>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .with_context(|| format!("cannot build the tokio runtime of {name}"))?;
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                                let _ = rx.await;
                            });
                            if let Err(e) = served.await {
                                tracing::error!("{name} stopped: {e}");
                            }
                        }
                        Err(e) => tracing::error!("{name} cannot listen: {e}"),
                    }
                    after().await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Background {
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stops serving and waits for the thread; idempotent.
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Hop-by-hop and framing headers that proxies (the GCS proxy, the SageMaker
/// fake's S3 pass-through) forward neither way.
pub(crate) fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "expect"
            | "proxy-connection"
            | "proxy-authorization"
    )
}
