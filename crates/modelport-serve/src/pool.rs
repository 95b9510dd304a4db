//! Inference off the async executor: a fixed set of worker threads, each with its
//! own engine session, fed by one bounded queue.
//!
//! The queue is bounded so that overload turns into fast 503s instead of memory
//! growth and timeouts. A worker that takes a request also takes whatever else is
//! already waiting with the same input shapes, up to `max_batch_rows`, and runs it
//! as one inference: under load this trades a little latency for far fewer engine
//! calls, and when requests arrive one at a time nothing waits for company.
//!
//! An engine that panics fails the requests of that inference with an error (500),
//! not the server: the worker drops its session, which the panic may have left in
//! any state, and loads a new one. A worker that cannot load one stops; when no
//! worker is left, [`Pool::serving`] turns false and the health checks answer 503,
//! so the platform replaces the instance.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use modelport_core::failpoint::{self, Action};
use modelport_core::{Batch, DType};
use modelport_runtime::LoadedModel;
use tokio::sync::oneshot;

/// Why a request did not get outputs from the pool.
#[derive(Debug)]
pub enum PoolError {
    /// The queue is full.
    Busy,
    /// The engine failed on these inputs.
    Inference(String),
    /// The pool stopped (the server is shutting down).
    Closed,
}

struct Job {
    inputs: Batch,
    rows: usize,
    reply: oneshot::Sender<Result<Batch, String>>,
}

/// Loads a fresh engine session, for a worker whose session panicked.
pub type SessionFactory = Arc<dyn Fn() -> Result<Arc<dyn LoadedModel>, String> + Send + Sync>;

/// A handle to the workers; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    tx: Sender<Job>,
    alive: Arc<AtomicUsize>,
}

impl Pool {
    /// Starts one worker per model session; `factory` replaces a session after a panic.
    pub fn start(
        models: Vec<Arc<dyn LoadedModel>>,
        queue_depth: usize,
        max_batch_rows: usize,
        factory: SessionFactory,
    ) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(queue_depth.max(1));
        let alive = Arc::new(AtomicUsize::new(models.len()));
        for (i, model) in models.into_iter().enumerate() {
            let rx = rx.clone();
            let worker = Worker {
                model,
                rx,
                max_batch_rows: max_batch_rows.max(1),
                factory: factory.clone(),
                alive: alive.clone(),
            };
            thread::Builder::new()
                .name(format!("modelport-infer-{i}"))
                .spawn(move || worker.run())?;
        }
        Ok(Pool { tx, alive })
    }

    /// True while at least one worker can run inferences.
    pub fn serving(&self) -> bool {
        self.alive.load(Ordering::SeqCst) > 0
    }

    /// Queues `inputs` (already checked against the signature) and waits for the outputs.
    pub async fn run(&self, inputs: Batch) -> Result<Batch, PoolError> {
        let rows = inputs.batch_size().unwrap_or(0);
        let (reply, answer) = oneshot::channel();
        match self.tx.try_send(Job {
            inputs,
            rows,
            reply,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PoolError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(PoolError::Closed),
        }
        match answer.await {
            Ok(Ok(outputs)) => Ok(outputs),
            Ok(Err(message)) => Err(PoolError::Inference(message)),
            Err(_) => Err(PoolError::Closed),
        }
    }
}

/// One worker thread: its session and where it takes jobs from.
struct Worker {
    model: Arc<dyn LoadedModel>,
    rx: Receiver<Job>,
    max_batch_rows: usize,
    factory: SessionFactory,
    alive: Arc<AtomicUsize>,
}

impl Worker {
    fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut jobs = vec![first];
            let mut rows = jobs[0].rows;
            // Take what is already waiting; never wait for more.
            while rows < self.max_batch_rows {
                match self.rx.try_recv() {
                    Ok(job) => {
                        rows += job.rows;
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let mut panicked = false;
            for group in group_by_shape(jobs) {
                panicked |= run_group(self.model.as_ref(), group, self.max_batch_rows);
            }
            if panicked && !self.renew() {
                break;
            }
        }
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }

    /// Replaces the session after a panic; false when no new one can be loaded.
    fn renew(&mut self) -> bool {
        tracing::warn!("an inference panicked: loading a new session for this worker");
        match (self.factory)() {
            Ok(model) => {
                self.model = model;
                true
            }
            Err(e) => {
                tracing::error!("cannot load a new session, so this worker stops: {e}");
                false
            }
        }
    }
}

/// Why one inference gave no outputs.
enum RunError {
    Failed(String),
    Panicked(String),
}

impl RunError {
    fn message(self) -> String {
        match self {
            RunError::Failed(m) => m,
            RunError::Panicked(m) => format!("the inference engine panicked: {m}"),
        }
    }
}

/// Runs one inference, turning a panic of the engine into an error.
fn run_caught(model: &dyn LoadedModel, inputs: &Batch) -> Result<Batch, RunError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if failpoint::check("serve.inference") == Some(Action::Panic) {
            panic!("fail point serve.inference");
        }
        model.run(inputs)
    }));
    match result {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(RunError::Failed(e.to_string())),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string());
            Err(RunError::Panicked(message))
        }
    }
}

/// What must be equal for two requests to run as one: each input's name, dtype and row shape.
type ShapeKey = Vec<(String, DType, Vec<usize>)>;

/// Splits jobs into runs that can be concatenated: same input names, dtypes and row shapes.
fn group_by_shape(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut groups: Vec<(ShapeKey, Vec<Job>)> = Vec::new();
    for job in jobs {
        let key: Vec<_> = job
            .inputs
            .iter()
            .map(|t| {
                let shape = t.tensor.shape().get(1..).unwrap_or_default().to_vec();
                (t.name.clone(), t.tensor.dtype(), shape)
            })
            .collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(job),
            None => groups.push((key, vec![job])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Runs a group of jobs, merged when it can be; true when the engine panicked.
fn run_group(model: &dyn LoadedModel, mut jobs: Vec<Job>, max_batch_rows: usize) -> bool {
    // A client that gave up (timeout, closed connection) needs no answer.
    jobs.retain(|j| !j.reply.is_closed());
    if jobs.len() > 1
        && jobs.iter().map(|j| j.rows).sum::<usize>() <= max_batch_rows.max(jobs[0].rows)
    {
        let inputs: Vec<Batch> = jobs.iter().map(|j| j.inputs.clone()).collect();
        if let Ok(merged) = Batch::concat_rows(&inputs) {
            match run_caught(model, &merged) {
                Ok(out) => {
                    if let Some(outputs) = split(&out, &jobs) {
                        for (job, out) in jobs.into_iter().zip(outputs) {
                            let _ = job.reply.send(Ok(out));
                        }
                        return false;
                    }
                }
                Err(RunError::Panicked(m)) => {
                    let message = RunError::Panicked(m).message();
                    for job in jobs {
                        let _ = job.reply.send(Err(message.clone()));
                    }
                    return true;
                }
                Err(RunError::Failed(_)) => {}
            }
        }
        // The merged run failed or its outputs have no batch dimension to split
        // along: answer each request on its own so one cannot spoil another.
    }
    let mut panicked = false;
    for job in jobs {
        let result = if panicked {
            Err("the inference engine panicked on an earlier request; retry".to_string())
        } else {
            run_caught(model, &job.inputs).map_err(|e| {
                panicked = matches!(e, RunError::Panicked(_));
                e.message()
            })
        };
        let _ = job.reply.send(result);
    }
    panicked
}

/// Cuts merged outputs back into one batch per job, if every output has one row per input row.
fn split(outputs: &Batch, jobs: &[Job]) -> Option<Vec<Batch>> {
    let total: usize = jobs.iter().map(|j| j.rows).sum();
    if outputs
        .iter()
        .any(|t| t.tensor.shape().first() != Some(&total))
    {
        return None;
    }
    let mut start = 0;
    let mut parts = Vec::with_capacity(jobs.len());
    for job in jobs {
        parts.push(outputs.slice_rows(start, start + job.rows).ok()?);
        start += job.rows;
    }
    Some(parts)
}
