//! Inference off the async executor: a fixed set of worker threads, each with its
//! own engine session, fed by one bounded queue.
//!
//! The queue is bounded so that overload turns into fast 503s instead of memory
//! growth and timeouts. A worker that takes a request also takes whatever else is
//! already waiting with the same input shapes, up to `max_batch_rows`, and runs it
//! as one inference: under load this trades a little latency for far fewer engine
//! calls, and when requests arrive one at a time nothing waits for company.

use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender, TrySendError};
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

/// A handle to the workers; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    tx: Sender<Job>,
}

impl Pool {
    /// Starts one worker per model session.
    pub fn start(
        models: Vec<Arc<dyn LoadedModel>>,
        queue_depth: usize,
        max_batch_rows: usize,
    ) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(queue_depth.max(1));
        for (i, model) in models.into_iter().enumerate() {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("modelport-infer-{i}"))
                .spawn(move || worker(model, rx, max_batch_rows.max(1)))?;
        }
        Ok(Pool { tx })
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

fn worker(model: Arc<dyn LoadedModel>, rx: Receiver<Job>, max_batch_rows: usize) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut rows = jobs[0].rows;
        // Take what is already waiting; never wait for more.
        while rows < max_batch_rows {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.rows;
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        for group in group_by_shape(jobs) {
            run_group(model.as_ref(), group, max_batch_rows);
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

fn run_group(model: &dyn LoadedModel, mut jobs: Vec<Job>, max_batch_rows: usize) {
    // A client that gave up (timeout, closed connection) needs no answer.
    jobs.retain(|j| !j.reply.is_closed());
    if jobs.len() > 1
        && jobs.iter().map(|j| j.rows).sum::<usize>() <= max_batch_rows.max(jobs[0].rows)
    {
        let inputs: Vec<Batch> = jobs.iter().map(|j| j.inputs.clone()).collect();
        if let Some(outputs) = Batch::concat_rows(&inputs)
            .ok()
            .and_then(|merged| model.run(&merged).ok())
            .and_then(|out| split(&out, &jobs))
        {
            for (job, out) in jobs.into_iter().zip(outputs) {
                let _ = job.reply.send(Ok(out));
            }
            return;
        }
        // The merged run failed or its outputs have no batch dimension to split
        // along: answer each request on its own so one cannot spoil another.
    }
    for job in jobs {
        let result = model.run(&job.inputs).map_err(|e| e.to_string());
        let _ = job.reply.send(result);
    }
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
