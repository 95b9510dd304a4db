//! A bare hyper server for bench/run's baseline: it reads each POST's body and
//! answers 200 with the same fixed bytes, on `WORKERS` threads. What `modelport
//! serve` does beyond this (decoding, inference, encoding) is its overhead.
//!
//! `cargo run --release -p modelport-serve --example echo -- PORT RESPONSE_FILE WORKERS`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, file, workers] = args.as_slice() else {
        return Err("usage: echo PORT RESPONSE_FILE WORKERS".into());
    };
    let answer = Bytes::from(std::fs::read(file)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.parse()?)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port.parse()?));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let answer = Arc::new(answer);
        loop {
            let (stream, _) = listener.accept().await?;
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let answer = answer.clone();
                    async move {
                        // Read the body as a server that uses it must.
                        let _ = req.into_body().collect().await;
                        let mut response = Response::new(Full::new(Bytes::clone(&answer)));
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
