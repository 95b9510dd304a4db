//! `modelport serve`: the serving process, as SageMaker and Vertex AI start it.

use std::time::Duration;

use modelport_serve::{PlatformEnv, ServeConfig};

use crate::cli::ServeArgs;
use crate::exit::Code;

pub fn run(args: ServeArgs) -> anyhow::Result<Code> {
    let platform = PlatformEnv::from_env();
    let mut config = ServeConfig::new(platform.model(args.model)?);
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
