//! Measures in-process inference latency of one engine on one model, for `bench/run`.
//!
//!     cargo run --release -p modelport-runtime --example latency -- MODEL ENGINE BATCH ITERS THREADS [BODY]
//!
//! Prints one JSON line: median and p90 microseconds per `run` call, after warm-up.
//! With BODY (a `{"instances": [...]}` file of numbers for the model's one float
//! input), each call first decodes that body with the fastest JSON reader measured
//! here: serde_json streaming the numbers straight into a `Vec<f32>` (a visitor, no
//! tree) or modelport's own reader (`codec::decode_instances_fast`); the line then
//! also gives each reader's median.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use modelport_core::codec;
use modelport_core::{Batch, Tensor};
use modelport_runtime::{EngineChoice, ModelInfo, RuntimeOptions, open_engine, samples};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model, engine, batch, iters, threads, body) = match args.as_slice() {
        [m, e, b, i, t] => (m, e, b, i, t, None),
        [m, e, b, i, t, body] => (m, e, b, i, t, Some(body)),
        _ => {
            eprintln!("usage: latency MODEL ENGINE BATCH ITERS THREADS [BODY]");
            std::process::exit(2);
        }
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
    let warm = iters.div_ceil(10).max(3);
    let Some(body) = body else {
        for _ in 0..warm {
            loaded.run(&inputs).expect("run");
        }
        let times = timed(iters, || {
            loaded.run(&inputs).expect("run");
        });
        println!(
            "{{\"engine\": \"{}\", \"median_us\": {:.2}, \"p90_us\": {:.2}}}",
            loaded.engine(),
            times[times.len() / 2],
            times[times.len() * 9 / 10]
        );
        return;
    };

    let body = std::fs::read(body).expect("body");
    let specs = &info.signature.inputs;
    let [spec] = specs.as_slice() else {
        panic!("BODY needs a model of one input");
    };
    let serde_decode = || {
        let mut dims = Vec::new();
        let mut data = Vec::new();
        Instances {
            dims: &mut dims,
            data: &mut data,
        }
        .deserialize(&mut serde_json::Deserializer::from_slice(&body))
        .expect("serde_json reads the body");
        let dims: Vec<usize> = dims.into_iter().map(|d| d.expect("a length")).collect();
        let mut batch = Batch::new();
        batch
            .insert(
                spec.name.clone(),
                Tensor::new(dims, data).expect("rectangular"),
            )
            .expect("one tensor");
        batch
    };
    let scan_decode =
        || codec::decode_instances_fast(&body, specs).expect("modelport reads the body");
    assert_eq!(serde_decode(), scan_decode(), "the two readers disagree");
    for _ in 0..warm {
        serde_decode();
        scan_decode();
    }
    let serde_us = timed(iters, || drop(serde_decode()));
    let scan_us = timed(iters, || drop(scan_decode()));
    let (serde_median, scan_median) = (serde_us[iters / 2], scan_us[iters / 2]);
    let fastest: &dyn Fn() -> Batch = if serde_median <= scan_median {
        &serde_decode
    } else {
        &scan_decode
    };
    for _ in 0..warm {
        loaded.run(&fastest()).expect("run");
    }
    let times = timed(iters, || {
        loaded.run(&fastest()).expect("run");
    });
    println!(
        "{{\"engine\": \"{}\", \"median_us\": {:.2}, \"p90_us\": {:.2}, \"serde_json_decode_us\": {:.2}, \
         \"modelport_decode_us\": {:.2}, \"decoder\": \"{}\"}}",
        loaded.engine(),
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        serde_median,
        scan_median,
        if serde_median <= scan_median {
            "serde_json"
        } else {
            "modelport"
        },
    );
}

/// Microseconds of each of `iters` calls of `f`, sorted.
fn timed(iters: usize, mut f: impl FnMut()) -> Vec<f64> {
    let mut times: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// `{"instances": [...]}` read by serde_json straight into a flat `Vec<f32>` and its
/// shape: the fastest way serde_json has to read it (no `Value` tree, no nested `Vec`s).
struct Instances<'a> {
    dims: &'a mut Vec<Option<usize>>,
    data: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for Instances<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Instances<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("{\"instances\": [...]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<&str>()? {
            if key != "instances" {
                return Err(A::Error::custom(format!("unexpected key {key}")));
            }
            map.next_value_seed(Level {
                level: 0,
                dims: &mut *self.dims,
                data: &mut *self.data,
            })?;
        }
        Ok(())
    }
}

/// One nesting level of the rows: records its length the first time, pushes numbers.
struct Level<'a> {
    level: usize,
    dims: &'a mut Vec<Option<usize>>,
    data: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of numbers")
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.data.push(v as f32);
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.data.push(v as f32);
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.data.push(v as f32);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0;
        while seq
            .next_element_seed(Level {
                level: self.level + 1,
                dims: &mut *self.dims,
                data: &mut *self.data,
            })?
            .is_some()
        {
            n += 1;
        }
        // The deepest arrays end first: each level's length is set at its first end.
        if self.dims.len() <= self.level {
            self.dims.resize(self.level + 1, None);
        }
        self.dims[self.level].get_or_insert(n);
        Ok(())
    }
}
