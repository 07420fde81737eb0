//! What a training job gets from the runner: a seed, a cancel flag, a progress sink, a pool.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Result};

/// Receives progress from a running job: a fraction in [0, 1] and a short message.
pub trait ProgressSink: Send + Sync {
    fn report(&self, fraction: f64, message: &str);
}

/// A sink that drops everything.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _: f64, _: &str) {}
}

/// The context of one job run.
pub struct JobContext<'a> {
    /// Every random choice of the job derives from this seed.
    pub seed: u64,
    cancel: &'a AtomicBool,
    progress: &'a dyn ProgressSink,
    pool: &'a rayon::ThreadPool,
    /// Bytes the job's big buffers may take; `None`: no up-front check.
    memory: Option<u64>,
}

impl<'a> JobContext<'a> {
    pub fn new(
        seed: u64,
        cancel: &'a AtomicBool,
        progress: &'a dyn ProgressSink,
        pool: &'a rayon::ThreadPool,
    ) -> Self {
        JobContext {
            seed,
            cancel,
            progress,
            pool,
            memory: super::memory::available(),
        }
    }

    /// Replace the memory budget (by default what the machine has available).
    pub(crate) fn with_memory_limit(mut self, bytes: Option<u64>) -> Self {
        if bytes.is_some() {
            self.memory = bytes;
        }
        self
    }

    /// Refuse a job whose buffers (`needed` bytes) exceed the budget, naming the
    /// parameter that sized them; called before the job allocates them.
    pub(crate) fn check_memory(&self, param: &str, needed: u128) -> Result<()> {
        super::memory::check(param, needed, self.memory)
    }

    /// `Err(Error::Cancelled)` once the job has been asked to stop.
    pub fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn progress(&self, fraction: f64, message: &str) {
        self.progress.report(fraction.clamp(0.0, 1.0), message);
    }

    /// The database's own thread pool: run parallel work inside `pool().install(..)`.
    pub fn pool(&self) -> &rayon::ThreadPool {
        self.pool
    }

    /// A seed for the `i`-th independent stream (worker, epoch, ...) of this job.
    pub fn sub_seed(&self, i: u64) -> u64 {
        splitmix64(self.seed ^ splitmix64(i.wrapping_add(0x9E37_79B9_7F4A_7C15)))
    }
}

/// The SplitMix64 finaliser: a good 64-bit mix for deriving seeds.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
