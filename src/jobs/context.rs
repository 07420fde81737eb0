//! What a job gets from the runner (a seed, a cancel flag, a progress sink, a pool, a
//! memory budget), and what its caller gives it (`JobControl`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use crate::storage::id_hash::splitmix64;
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
            memory: crate::jobs::memory::available(),
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
        crate::jobs::memory::check(param, needed, self.memory)
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

/// How the caller follows and stops one job; part of every job's options
/// (`TrainOptions`, `IndexOptions`, `CompactOptions`).
#[derive(Clone, Default)]
pub struct JobControl {
    /// Receives the job's progress (the shell draws a bar from it).
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// Set it to stop the job: it ends as `cancelled` and publishes nothing. A
    /// background job's [`JobHandle::cancel`](crate::JobHandle::cancel) sets the same
    /// flag.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for JobControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobControl")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// Two controls are equal when they share their sink and flag.
impl PartialEq for JobControl {
    fn eq(&self, o: &Self) -> bool {
        let sink = match (&self.progress, &o.progress) {
            (Some(a), Some(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            (a, b) => a.is_none() && b.is_none(),
        };
        let flag = match (&self.cancel, &o.cancel) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        sink && flag
    }
}
