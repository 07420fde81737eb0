//! Maintenance jobs: training, index builds, compactions and the jobs that follow.
//!
//! One runner ([`runner`]) owns the life cycle of every job: the record (with the
//! watermark it reads up to), the pool, cancel, progress (to the caller, to `jobs`,
//! and to the owner file other processes read), panic capture, publish, and the
//! record's end state. A job only says what it reads and what it produces ([`Job`]
//! for training; index builds and compactions hand the runner their work and their
//! publish step). The decisions of when to start a job are pure functions in
//! [`policy`].

mod context;
mod job;
pub(crate) mod memory;
mod output;
pub(crate) mod policy;
pub(crate) mod record;
pub(crate) mod runner;

pub use context::{splitmix64, JobContext, JobControl, NoProgress, ProgressSink};
pub(crate) use job::{Job, NextList, Reads, Snapshot, Summary, TextInput};
pub(crate) use output::TableOutput;
pub use record::JobState;
pub use runner::{JobHandle, JobInfo};

/// Threads of a pool (the database's, a job's, an index build's): at least 1, at most
/// this. More than a few per core only adds start-up time and memory.
pub const MAX_THREADS: usize = 256;

/// Jobs running at once in one database by default ([`crate::Config::max_jobs`]).
pub const MAX_JOBS: usize = 16;

/// `n` threads is a pool size a job may ask for.
pub(crate) fn check_threads(n: usize) -> crate::Result<()> {
    if (1..=MAX_THREADS).contains(&n) {
        return Ok(());
    }
    Err(crate::Error::param(
        "threads",
        format!("{n} is outside 1..={MAX_THREADS}"),
    ))
}
