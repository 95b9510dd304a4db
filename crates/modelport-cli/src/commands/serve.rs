//! `modelport serve`: the serving process, as SageMaker and Vertex AI start it.

use std::time::Duration;

use anyhow::Context;

use modelport_serve::{PlatformEnv, ServeConfig};

use crate::cli::ServeArgs;
use crate::exit::Code;

pub fn run(args: ServeArgs) -> anyhow::Result<Code> {
    let platform = PlatformEnv::from_env();
    // Vertex AI hands a custom container its model as a gs:// AIP_STORAGE_URI: the
    // files are fetched into a scratch directory (removed on exit) before the
    // server binds, so the health route answers only once the model is loaded.
    let mut _fetched: Option<tempfile::TempDir> = None;
    let model = match platform.gcs_model(args.model.as_deref()) {
        #[cfg(not(feature = "gcp"))]
        Some(uri) => {
            return Err(super::targets::not_built("gcp"))
                .with_context(|| format!("cannot fetch the model from AIP_STORAGE_URI={uri}"));
        }
        #[cfg(feature = "gcp")]
        Some(uri) => {
            let dir = tempfile::Builder::new()
                .prefix("modelport-model-")
                .tempdir()
                .context("cannot create a directory for the model")?;
            tracing::info!("downloading the model from {uri}");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(modelport_gcp::fetch_model(&uri, dir.path()))
                .with_context(|| format!("cannot fetch the model from AIP_STORAGE_URI={uri}"))?;
            let path = dir.path().to_path_buf();
            _fetched = Some(dir);
            path
        }
        None => platform.model(args.model)?,
    };
    let mut config = ServeConfig::new(model);
    config.port = platform.port(args.port)?;
    let (health, predict) = platform.vertex_routes()?;
    config.vertex_health_route = health;
    config.vertex_predict_route = predict;
    config.host = args.host;
    config.model_name = args.model_name;
    config.max_body_bytes = args.max_body_bytes;
    config.timeout = Duration::from_secs(args.timeout_s.max(1));
    config.engine = args.engine;
    config.intra_threads = Some(args.threads.unwrap_or(1));
    if let Some(w) = args.workers {
        config.workers = w.max(1);
        config.queue_depth = 64 * config.workers;
    }
    if let Some(q) = args.queue_depth {
        config.queue_depth = q.max(1);
    }
    config.max_batch_rows = args.max_batch_rows.max(1);
    config.revision = args.revision.filter(|r| !r.trim().is_empty());
    config.image = args.image.filter(|i| !i.trim().is_empty());
    config.handover_port = args.handover_port;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("modelport-http")
        .build()?;
    runtime.block_on(async move {
        let listener = modelport_serve::bind(&config).await?;
        modelport_serve::run(config, listener, modelport_serve::shutdown_signal()).await
    })?;
    Ok(Code::Success)
}
