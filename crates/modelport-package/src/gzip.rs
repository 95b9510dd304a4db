//! One gzip stream compressed on every core, the way pigz does it.
//!
//! The input is cut into [`BLOCK`]-byte blocks at fixed offsets. Each block is
//! deflated on its own by a worker thread, primed with the last 32 KiB of the block
//! before it (the deflate window, so matches across the boundary are still found),
//! and ended with a sync flush, which closes it on a byte boundary; the last block
//! ends the deflate stream. Concatenated in order, the blocks form one deflate
//! stream inside one gzip member: `gzip -d`, `tar xzf`, Python's `tarfile` and
//! SageMaker read it like any other.
//!
//! The output depends only on the input bytes and the level, never on the number
//! of threads or their timing: block boundaries are offsets, and each block's
//! compression is a pure function of its bytes and its dictionary.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes of input per block. Large enough that the sync flush's five bytes and a
/// thread hand-off per block cost nothing measurable, small enough that every core
/// gets work on a model of a few MiB.
pub(crate) const BLOCK: usize = 1 << 20;

/// The deflate window: how much of the previous block primes the next.
const WINDOW: usize = 32 * 1024;

/// The gzip header's OS byte: 255, "unknown", so the output does not depend on
/// the machine that wrote it.
const OS_UNKNOWN: u8 = 255;

/// The most workers: past a few, the single thread that reads, frames and hashes
/// the input is the bottleneck.
const MAX_WORKERS: usize = 8;

struct Job {
    data: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
}

type Done = Result<Vec<u8>, String>;

struct Worker {
    jobs: Option<SyncSender<Job>>,
    done: Option<Receiver<Done>>,
    thread: Option<JoinHandle<()>>,
}

/// A gzip writer that compresses blocks on up to `workers` threads. Call
/// [`ParallelGz::finish`] to end the stream and get the inner writer back; a writer
/// dropped unfinished leaves a truncated stream.
pub(crate) struct ParallelGz<W: Write> {
    inner: Option<W>,
    workers: Vec<Worker>,
    block: Vec<u8>,
    dictionary: Vec<u8>,
    crc: Crc,
    /// Blocks handed to workers, and blocks written out, in order.
    sent: usize,
    written: usize,
}

impl<W: Write> ParallelGz<W> {
    /// Writes the gzip header (no name, mtime 0, OS unknown) and starts
    /// `workers` compression threads (at least 1).
    pub(crate) fn new(mut inner: W, level: u32, workers: usize) -> io::Result<Self> {
        // XFL says 2 for the slowest level and 4 for the fastest, as gzip writes it.
        let xfl = match level {
            9.. => 2,
            0 | 1 => 4,
            _ => 0,
        };
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, OS_UNKNOWN])?;
        let count = workers.clamp(1, MAX_WORKERS);
        let mut pool = Vec::with_capacity(count);
        for i in 0..count {
            let (jobs, inbox) = sync_channel::<Job>(2);
            let (outbox, done) = sync_channel::<Done>(2);
            let thread = std::thread::Builder::new()
                .name(format!("gzip-{i}"))
                .spawn(move || compress_blocks(level, &inbox, &outbox))?;
            pool.push(Worker {
                jobs: Some(jobs),
                done: Some(done),
                thread: Some(thread),
            });
        }
        Ok(ParallelGz {
            inner: Some(inner),
            workers: pool,
            block: Vec::with_capacity(BLOCK),
            dictionary: Vec::new(),
            crc: Crc::new(),
            sent: 0,
            written: 0,
        })
    }

    /// Hands the current block to its worker; block `i` goes to worker
    /// `i % workers`, whose answers therefore come back in block order.
    fn send(&mut self, last: bool) -> io::Result<()> {
        // At most two blocks queued per worker before the oldest is written out.
        while self.sent - self.written >= 2 * self.workers.len() {
            self.write_next()?;
        }
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let dictionary = std::mem::take(&mut self.dictionary);
        if !last {
            self.dictionary = data[data.len().saturating_sub(WINDOW)..].to_vec();
        }
        let worker = &self.workers[self.sent % self.workers.len()];
        let sent = worker.jobs.as_ref().map(|jobs| {
            jobs.send(Job {
                data,
                dictionary,
                last,
            })
        });
        if !matches!(sent, Some(Ok(()))) {
            return Err(stopped());
        }
        self.sent += 1;
        Ok(())
    }

    /// Writes the oldest block not yet written.
    fn write_next(&mut self) -> io::Result<()> {
        let worker = &self.workers[self.written % self.workers.len()];
        let bytes = match worker.done.as_ref().map(Receiver::recv) {
            Some(Ok(Ok(bytes))) => bytes,
            Some(Ok(Err(why))) => {
                return Err(io::Error::other(format!("gzip compression: {why}")));
            }
            _ => return Err(stopped()),
        };
        self.out()?.write_all(&bytes)?;
        self.written += 1;
        Ok(())
    }

    /// Ends the deflate stream, writes the gzip trailer and returns the inner
    /// writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.send(true)?;
        while self.written < self.sent {
            self.write_next()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.out()?.write_all(&trailer)?;
        self.stop();
        self.inner.take().ok_or_else(stopped)
    }

    /// The inner writer, there until `finish` returns it.
    fn out(&mut self) -> io::Result<&mut W> {
        self.inner.as_mut().ok_or_else(stopped)
    }

    /// Closes the queues both ways and waits for the workers to end: a worker
    /// ends when its queue is empty and closed, or when it finds nobody will take
    /// the block it compressed.
    fn stop(&mut self) {
        for worker in &mut self.workers {
            worker.jobs = None;
            worker.done = None;
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("a gzip compression thread stopped")
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        if self.block.len() == BLOCK {
            self.send(false)?;
        }
        Ok(n)
    }

    /// Flushes the inner writer only. The blocks still with the workers and a
    /// partial block stay where they are: cutting a block here would make the
    /// output depend on when flush was called.
    fn flush(&mut self) -> io::Result<()> {
        self.out()?.flush()
    }
}

impl<W: Write> Drop for ParallelGz<W> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A worker: deflates each job's block with its dictionary and sends the bytes back.
fn compress_blocks(level: u32, inbox: &Receiver<Job>, outbox: &SyncSender<Done>) {
    let mut deflate = Compress::new(Compression::new(level), false);
    while let Ok(job) = inbox.recv() {
        deflate.reset();
        let done = compress_block(&mut deflate, &job);
        if outbox.send(done).is_err() {
            return;
        }
    }
}

fn compress_block(deflate: &mut Compress, job: &Job) -> Done {
    if !job.dictionary.is_empty() {
        deflate
            .set_dictionary(&job.dictionary)
            .map_err(|e| e.to_string())?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Incompressible data grows by about 5 bytes per 16 KiB stored block.
    let mut out = Vec::with_capacity(job.data.len() + job.data.len() / 1024 + 64);
    let start = deflate.total_in();
    loop {
        let consumed = (deflate.total_in() - start) as usize;
        if out.len() == out.capacity() {
            out.reserve(64 * 1024);
        }
        let status = deflate
            .compress_vec(&job.data[consumed..], &mut out, flush)
            .map_err(|e| e.to_string())?;
        let consumed = (deflate.total_in() - start) as usize;
        let complete = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A sync flush is complete once all input is in and it left room unused.
            _ => consumed == job.data.len() && out.len() < out.capacity(),
        };
        if complete {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Bytes that compress a little, from a fixed xorshift sequence: a stand-in for
    /// float weights.
    fn noisy(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 4 == 3 { 0x3f } else { x as u8 }
            })
            .collect()
    }

    fn gzip(data: &[u8], workers: usize, chunk: usize) -> Vec<u8> {
        let mut gz = ParallelGz::new(Vec::new(), 6, workers).unwrap();
        for piece in data.chunks(chunk.max(1)) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut decoder = flate2::read::GzDecoder::new(bytes);
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).unwrap();
        // One member: nothing follows the first stream's trailer.
        assert_eq!(decoder.into_inner().len(), 0, "bytes after the gzip member");
        out
    }

    #[test]
    fn round_trips_at_every_block_edge() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            let data = noisy(len, len as u64);
            let bytes = gzip(&data, 2, 100_000);
            assert_eq!(gunzip(&bytes), data, "{len} bytes");
            assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
            assert_eq!(bytes[9], OS_UNKNOWN);
            let n = bytes.len();
            assert_eq!(
                u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()),
                len as u32
            );
        }
    }

    #[test]
    fn the_bytes_do_not_depend_on_threads_or_write_sizes() {
        let data = noisy(5 * BLOCK / 2, 7);
        let one = gzip(&data, 1, BLOCK);
        for (workers, chunk) in [(2, 4096), (3, 1), (8, BLOCK * 3)] {
            if chunk == 1 {
                // One byte at a time over 2.5 MiB is slow in debug; the first
                // block's worth is enough to cross no boundary differently.
                let small = &data[..BLOCK + 3];
                assert_eq!(gzip(small, workers, 1), gzip(small, 1, BLOCK));
                continue;
            }
            assert_eq!(gzip(&data, workers, chunk), one, "{workers} workers");
        }
    }

    #[test]
    fn blocks_see_the_previous_block_through_the_dictionary() {
        // 16 KiB of noise repeated: without the dictionary each block would start
        // with 16 KiB of literals; with it, the blocks compress as well as one
        // stream does.
        let unit = noisy(16 * 1024, 3);
        let data: Vec<u8> = unit.iter().copied().cycle().take(4 * BLOCK).collect();
        let bytes = gzip(&data, 2, BLOCK);
        assert_eq!(gunzip(&bytes), data);
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        one.write_all(&data).unwrap();
        let one = one.finish().unwrap();
        assert!(
            bytes.len() * 100 <= one.len() * 102,
            "{} bytes in blocks, {} in one stream",
            bytes.len(),
            one.len()
        );
    }

    #[test]
    fn a_failing_writer_stops_the_workers() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(ParallelGz::new(Full, 6, 2).is_err());
        struct After(usize);
        impl Write for After {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut gz = ParallelGz::new(After(10), 6, 2).unwrap();
        let data = noisy(8 * BLOCK, 5);
        let err = gz.write_all(&data).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        // Dropping it joins the workers rather than leaving them blocked.
        drop(gz);
    }
}
