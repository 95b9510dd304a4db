//! Measures in-process inference latency of one engine on one model, for `bench/run`.
//!
//!     cargo run --release -p modelport-runtime --example latency -- MODEL ENGINE BATCH ITERS THREADS
//!
//! Prints one JSON line: median and p90 microseconds per `run` call, after warm-up.

use std::path::PathBuf;
use std::time::Instant;

use modelport_runtime::{EngineChoice, ModelInfo, RuntimeOptions, open_engine, samples};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, engine, batch, iters, threads] = args.as_slice() else {
        eprintln!("usage: latency MODEL ENGINE BATCH ITERS THREADS");
        std::process::exit(2);
    };
    let engine: EngineChoice = engine.parse().expect("engine");
    let batch: usize = batch.parse().expect("batch");
    let iters: usize = iters.parse().expect("iters");
    let threads: usize = threads.parse().expect("threads");
    let info = ModelInfo::from_path(&PathBuf::from(model)).expect("model");
    let opts = RuntimeOptions {
        intra_threads: Some(threads),
    };
    let loaded = open_engine(engine, &opts)
        .expect("engine")
        .load(&info)
        .expect("load");
    let inputs = samples::generate(&info.signature, batch, 0).expect("samples");
    for _ in 0..iters.div_ceil(10).max(3) {
        loaded.run(&inputs).expect("run");
    }
    let mut times: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            loaded.run(&inputs).expect("run");
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"engine\": \"{}\", \"median_us\": {:.2}, \"p90_us\": {:.2}}}",
        loaded.engine(),
        times[times.len() / 2],
        times[times.len() * 9 / 10]
    );
}
