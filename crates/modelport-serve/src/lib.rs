//! `modelport serve`: the process that runs inside every endpoint.
//!
//! One port speaks three contracts, so one image runs on SageMaker, on Vertex AI and
//! behind any Open Inference Protocol client:
//!
//! | contract | health | predict |
//! |---|---|---|
//! | SageMaker | `GET /ping` | `POST /invocations` |
//! | Vertex AI | `GET $AIP_HEALTH_ROUTE` | `POST $AIP_PREDICT_ROUTE` |
//! | OIP v2 | `GET /v2/health/ready`, `/v2/health/live` | `POST /v2/models/{name}/infer` |
//! | TF-Serving REST | `GET /v1/models/{name}` | `POST /v1/models/{name}:predict` |
//!
//! The server listens at once and answers health checks with 503 until the model is
//! verified against its manifest, loaded into every worker and has run one warm-up
//! inference; only then do health checks turn 200. Inference runs on worker threads
//! (see [`pool`]), never on the async executor.
//!
//! A server started with a handover port ([`ServeConfig::handover_port`]) takes that
//! port too when it receives SIGUSR1: the local provider starts each new revision on
//! a port of its own, compares it there, and only then hands it the port production
//! clients use. The port is bound with `SO_REUSEPORT`, so that a later revision can
//! take it over while this one still listens (no refused connections in between);
//! while an older server that bound it without that option still holds it, the bind
//! is retried until the port is free.

pub mod config;
pub mod error;
pub mod model;
pub mod pool;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelport_runtime::{RuntimeOptions, samples};
use tokio::net::{TcpListener, TcpSocket};

pub use config::{PlatformEnv, ServeConfig};
pub use error::ServeError;
pub use routes::router;

use crate::pool::Pool;
use crate::routes::{AppState, Loaded};

/// Binds the configured address; separate from [`run`] so that callers learn the
/// port (useful with port 0) before the model loads.
pub async fn bind(config: &ServeConfig) -> Result<TcpListener, ServeError> {
    let addr = SocketAddr::new(config.host, config.port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
/// finish for up to `shutdown_grace`, and returns.
///
/// Health checks answer 503 while the model loads. A model that fails its checks or
/// its warm-up ends the server with the error: an endpoint that cannot answer
/// correctly must not look healthy.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().ok();
    let state = Arc::new(AppState::new(&config));
    let app = router(state.clone());
    if let Some(addr) = addr {
        tracing::info!("listening on http://{addr}");
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown({
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    });
    let server = tokio::spawn(async move { server.await });
    let handover = config.handover_port.map(|port| {
        tokio::spawn(take_over_on_signal(
            SocketAddr::new(config.host, port),
            router(state.clone()),
            stop_rx.clone(),
        ))
    });

    // Load in the background so that health checks answer 503 meanwhile.
    let loading = tokio::task::spawn_blocking({
        let config = config.clone();
        move || load(&config)
    });
    let stop_tx = Arc::new(stop_tx);
    tokio::spawn({
        let stop_tx = stop_tx.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = stop_tx.send(true);
        }
    });

    let mut stop_watch = stop_rx.clone();
    let loaded = tokio::select! {
        loaded = loading => loaded.map_err(|e| ServeError::WarmUp(e.to_string()))?,
        _ = stop_watch.wait_for(|stop| *stop) => {
            tracing::info!("stopped before the model was ready");
            return Ok(());
        }
    };
    match loaded {
        Ok(l) => state.set_ready(l),
        Err(e) => {
            let _ = stop_tx.send(true);
            return Err(e);
        }
    }

    // After the shutdown signal, wait at most `shutdown_grace` for requests in flight.
    let grace = config.shutdown_grace;
    let mut stop_watch = stop_rx.clone();
    let deadline = async move {
        let _ = stop_watch.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    let servers = async move {
        if let Ok(Err(e)) = server.await {
            tracing::warn!("server error: {e}");
        }
        if let Some(h) = handover {
            let _ = h.await;
        }
    };
    tokio::select! {
        _ = servers => {}
        _ = deadline => tracing::warn!("requests still running after {} s; exiting anyway", grace.as_secs()),
    }
    Ok(())
}

/// Waits for SIGUSR1, then binds `addr` (retrying while another process holds it
/// without `SO_REUSEPORT`) and serves there too, until the shutdown signal.
async fn take_over_on_signal(
    addr: SocketAddr,
    app: axum::Router,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut usr1 = match signal(SignalKind::user_defined1()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(
                "cannot listen for SIGUSR1, so port {} cannot be handed over: {e}",
                addr.port()
            );
            return;
        }
    };
    let mut stopping = stop.clone();
    tokio::select! {
        _ = usr1.recv() => {}
        _ = stopping.wait_for(|s| *s) => return,
    }
    tracing::info!("taking over port {}", addr.port());
    let started = Instant::now();
    let listener = loop {
        match bind_shared(addr) {
            Ok(l) => break l,
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && started.elapsed() < HANDOVER_WAIT =>
            {
                if *stop.borrow() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                tracing::error!("cannot take over {addr}: {e}");
                return;
            }
        }
    };
    tracing::info!(
        "listening on http://{addr} too (took {} ms)",
        started.elapsed().as_millis()
    );
    let mut rx = stop;
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = rx.wait_for(|s| *s).await;
    });
    if let Err(e) = server.await {
        tracing::warn!("server error on {addr}: {e}");
    }
}

/// How long a handover waits for the previous server to release the port.
const HANDOVER_WAIT: Duration = Duration::from_secs(60);

/// A listener that other processes of the same user may bind beside (`SO_REUSEPORT`).
fn bind_shared(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Resolves once SIGTERM or SIGINT arrives: how SageMaker, Vertex and a terminal stop us.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// New sessions of the same model, for workers whose session panicked.
fn session_factory(
    engine: std::sync::Arc<dyn modelport_runtime::Engine>,
    info: modelport_runtime::ModelInfo,
) -> pool::SessionFactory {
    let info = Arc::new(info);
    Arc::new(move || {
        if modelport_core::failpoint::check("serve.session")
            == Some(modelport_core::failpoint::Action::Error)
        {
            return Err("fail point serve.session".to_string());
        }
        engine.load(&info).map_err(|e| e.to_string())
    })
}

type Sessions = (
    std::sync::Arc<dyn modelport_runtime::Engine>,
    modelport_runtime::ModelInfo,
    Vec<std::sync::Arc<dyn modelport_runtime::LoadedModel>>,
);

/// Reads the model and loads one session per worker, in parallel.
fn load_sessions(
    config: &ServeConfig,
    source: &model::ModelSource,
    workers: usize,
    started: Instant,
) -> Result<Sessions, ServeError> {
    let info = modelport_runtime::ModelInfo::from_path(&source.model_file)?;
    tracing::debug!("model read in {} ms", started.elapsed().as_millis());
    let opts = RuntimeOptions {
        intra_threads: config.intra_threads,
    };
    let engine = modelport_runtime::open_engine(config.engine, &opts)?;
    let models = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| s.spawn(|| engine.load(&info)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| ServeError::WarmUp("loading the model panicked".into()))?
                    .map_err(ServeError::from)
            })
            .collect::<Result<Vec<_>, ServeError>>()
    })?;
    Ok((engine, info, models))
}

/// Verifies and loads the model into every worker and runs one warm-up inference on
/// each. Blocking: call it off the executor.
fn load(config: &ServeConfig) -> Result<Loaded, ServeError> {
    let started = Instant::now();
    let source = model::resolve(&config.model)?;
    if !source.verified {
        tracing::warn!(
            "{} has no modelport.json: serving it without a manifest check",
            source.model_file.display()
        );
    }
    let workers = config.workers.max(1);
    // The files are hashed while the engine loads them: start-up time matters to
    // every autoscaler, and reading gigabytes twice in a row doubles it. Nothing is
    // served unless both succeed; a file that differs is the error shown, since it
    // is also the likely reason a load failed.
    let (checked, loaded) = std::thread::scope(|s| {
        let check = s.spawn(|| {
            let result = source.check_contents();
            tracing::debug!("model files hashed in {} ms", started.elapsed().as_millis());
            result
        });
        let loaded = load_sessions(config, &source, workers, started);
        (check.join(), loaded)
    });
    checked.map_err(|_| ServeError::WarmUp("checking the model's files panicked".into()))??;
    let (engine, info, models) = loaded?;
    tracing::debug!("sessions loaded in {} ms", started.elapsed().as_millis());
    let signature = models[0].signature().clone();
    let engine_info = models[0].engine().clone();
    let warm =
        samples::generate(&signature, 1, 0).map_err(|e| ServeError::WarmUp(e.to_string()))?;
    for m in &models {
        m.run(&warm)
            .map_err(|e| ServeError::WarmUp(e.to_string()))?;
    }
    let name = config.model_name.clone().unwrap_or_else(|| {
        source
            .model_file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string()
    });
    tracing::info!(
        "ready in {} ms: model {name:?} ({}), {engine_info}, {} worker(s), digest {}",
        started.elapsed().as_millis(),
        source.model_file.display(),
        workers,
        source.digest
    );
    Ok(Loaded {
        name,
        signature,
        engine: engine_info,
        digest: source.digest.clone(),
        pool: Pool::start(
            models,
            config.queue_depth,
            config.max_batch_rows,
            session_factory(engine, info),
        )
        .map_err(ServeError::Workers)?,
        _source: source,
    })
}
