//! The one life cycle of every job: record → context (pool, cancel, progress) → run
//! under `catch_unwind` → publish → the record's end state.
//!
//! The caller allocates the record (its id and watermark come from the database's
//! state) and says what the job does ([`Runner::run`]'s `work`) and how its outputs go
//! live (`publish`, which writes the finished record in the same batch as the outputs).
//! Everything else is here, once: a job that panics, is cancelled, or fails ends
//! `failed` / `cancelled` with its message and publishes nothing; a process that dies
//! before publish leaves the record `running`, which the next open marks `interrupted`.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::context::{JobContext, JobControl, ProgressSink};
use super::record::{self, JobRecord, JobState};
use crate::error::OrPoisoned;
use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::meta;
use crate::{Error, Result};

/// A job as `recdb jobs` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobInfo {
    pub id: u64,
    /// The model trained, or the kind of work (`index`, `compact`, `import`, ...).
    pub model: String,
    /// The validated parameters (a JSON object).
    pub params: serde_json::Value,
    pub state: JobState,
    pub progress: f64,
    pub message: String,
    pub created_unix: i64,
    pub seconds: f64,
    pub error: String,
    /// Events the job read (the log up to this sequence number).
    pub watermark: u64,
    pub seed: u64,
    pub tables: Vec<String>,
}

impl JobInfo {
    pub(crate) fn from_record(r: &JobRecord) -> JobInfo {
        let state = JobState::from_u8(r.state);
        // A running job's record holds no duration yet: show the time since its start.
        let seconds = if state == JobState::Running {
            (meta::now_unix() - r.started_unix).max(0) as f64
        } else {
            r.seconds
        };
        JobInfo {
            id: r.id,
            model: r.model.clone(),
            // Records hold the JSON text; one that does not parse is shown as a string.
            params: serde_json::from_str(&r.params)
                .unwrap_or_else(|_| serde_json::Value::String(r.params.clone())),
            state,
            progress: r.progress as f64,
            message: r.message.clone(),
            created_unix: r.created_unix,
            seconds,
            error: r.error.clone(),
            watermark: r.watermark,
            seed: r.seed,
            tables: r.tables.clone(),
        }
    }
}

/// A job running in the background.
pub struct JobHandle {
    pub id: u64,
    cancel: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<JobInfo>>,
}

impl JobHandle {
    /// Ask the job to stop; it ends as `cancelled` and publishes nothing.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
    /// Wait for the job to end.
    pub fn wait(self) -> Result<JobInfo> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(Error::JobFailed("job thread panicked".into())))
    }
}

/// A job that runs now: what `jobs` shows of it and how `cancel_job` stops it.
pub(crate) struct RunningJob {
    pub cancel: Arc<AtomicBool>,
    pub progress: Arc<Mutex<(f64, String)>>,
}

/// The jobs running in this process, by id.
pub(crate) type Running = Mutex<HashMap<u64, RunningJob>>;

/// The cap on jobs running at once in one database ([`crate::Config::max_jobs`]): each
/// job has a thread (its own, in the background) and may have its own pool, so without
/// a cap a caller could start threads without end.
pub(crate) struct JobSlots {
    used: AtomicUsize,
    limit: usize,
}

/// One job's place under the cap: taken before its record is written, given back when
/// it is dropped (with the job's thread, for a background job).
pub(crate) struct JobSlot(Arc<JobSlots>);

impl JobSlots {
    pub fn new(limit: usize) -> Arc<JobSlots> {
        Arc::new(JobSlots {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// A place for one more job, or [`Error::Busy`] at the cap.
    pub fn take(self: &Arc<Self>) -> Result<JobSlot> {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .map(|_| JobSlot(self.clone()))
            .map_err(|_| Error::Busy {
                what: "jobs running".into(),
                limit: self.limit as u64,
            })
    }
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The cancel flag of a job: the caller's, or a new one.
pub(crate) fn cancel_flag(control: &JobControl) -> Arc<AtomicBool> {
    control.cancel.clone().unwrap_or_default()
}

/// A new record of a job that starts now, reading the log up to `watermark`.
pub(crate) fn new_record(
    id: u64,
    model: &str,
    params: String,
    seed: u64,
    watermark: u64,
) -> JobRecord {
    JobRecord {
        id,
        model: model.to_owned(),
        params,
        state: JobState::Running as u8,
        created_unix: meta::now_unix(),
        started_unix: meta::now_unix(),
        watermark,
        seed,
        message: "starting".into(),
        ..JobRecord::default()
    }
}

/// Write a record on its own, durably.
pub(crate) fn put_record(b: &dyn Backend, rec: &JobRecord) -> Result<()> {
    let mut batch = WriteBatch::default();
    record::put(&mut batch, rec);
    b.apply(batch)?;
    b.flush()
}

/// Record how a job ended when it did not publish.
pub(crate) fn fail_record(b: &dyn Backend, rec: &mut JobRecord, e: &Error) -> Result<()> {
    rec.state = if matches!(e, Error::Cancelled) {
        JobState::Cancelled
    } else {
        JobState::Failed
    } as u8;
    rec.error = e.to_string();
    rec.message = rec.error.clone();
    rec.tables.clear();
    put_record(b, rec)
}

pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// How one job runs.
pub(crate) struct RunSpec<'a> {
    /// Every random choice of the job derives from this seed.
    pub seed: u64,
    /// A pool of the job's own (its `threads` option); `None`: the database's.
    pub pool: Option<rayon::ThreadPool>,
    /// Bytes the job's buffers may take; `None`: what the machine has available.
    pub memory_limit: Option<u64>,
    /// The caller's progress sink (`JobControl::progress`).
    pub progress: Option<&'a dyn ProgressSink>,
    /// The job's cancel flag ([`cancel_flag`] of `control`, shared with its handle).
    pub cancel: Arc<AtomicBool>,
    /// What the owner file shows while the job runs (with its percentage), for other
    /// processes that find the database locked; e.g. `train als`.
    pub activity: String,
}

/// Progress goes to the caller's sink, to `jobs` (live), and to the owner file.
struct Tee<'a> {
    user: Option<&'a dyn ProgressSink>,
    shared: Arc<Mutex<(f64, String)>>,
    backend: &'a dyn Backend,
    activity: &'a str,
}

impl Tee<'_> {
    fn fraction(&self) -> f64 {
        self.shared.lock().recover().0
    }
}

impl ProgressSink for Tee<'_> {
    fn report(&self, fraction: f64, message: &str) {
        *self.shared.lock().recover() = (fraction, message.to_owned());
        self.backend
            .note_activity(&activity(self.activity, fraction), false);
        if let Some(u) = self.user {
            u.report(fraction, message);
        }
    }
}

fn activity(what: &str, fraction: f64) -> String {
    format!("{what} {:.0} %", fraction.clamp(0.0, 1.0) * 100.0)
}

/// Where jobs run: the store of their records, the database's pool, and the registry
/// of running jobs.
pub(crate) struct Runner<'a> {
    pub backend: &'a dyn Backend,
    pub pool: &'a rayon::ThreadPool,
    pub running: &'a Running,
}

impl Runner<'_> {
    /// Make a job visible to `jobs` (live progress) and `cancel_job`.
    pub fn register(&self, id: u64, cancel: &Arc<AtomicBool>) -> Arc<Mutex<(f64, String)>> {
        let mut running = self.running.lock().recover();
        running
            .entry(id)
            .or_insert_with(|| RunningJob {
                cancel: cancel.clone(),
                progress: Arc::new(Mutex::new((0.0, String::new()))),
            })
            .progress
            .clone()
    }

    /// Run `job` (the whole life cycle, [`Runner::run`] included) on its own thread. The
    /// job is visible to `jobs` and `cancel_job` from now, not only once the thread runs.
    pub fn spawn(
        &self,
        id: u64,
        cancel: Arc<AtomicBool>,
        job: impl FnOnce() -> Result<JobInfo> + Send + 'static,
    ) -> Result<JobHandle> {
        self.register(id, &cancel);
        match std::thread::Builder::new()
            .name(format!("recdb-job-{id}"))
            .spawn(job)
        {
            Ok(thread) => Ok(JobHandle { id, cancel, thread }),
            Err(e) => {
                let e = Error::system("cannot start a job thread", e);
                self.running.lock().recover().remove(&id);
                let mut rec = record::get(self.backend, id)?.unwrap_or_default();
                fail_record(self.backend, &mut rec, &e)?;
                Err(e)
            }
        }
    }

    /// Run one job to its end state. `work` computes the outputs (reading its snapshot
    /// through the context); `publish` makes them live and must write `rec` (already
    /// marked done, with its duration) in the same atomic batch. A panic in either, an
    /// error, or a cancel before publish ends the record failed or cancelled with the
    /// message, keeping how far the job got; nothing is published then.
    // why: a progress fraction in [0, 1]; f32 keeps enough of it.
    #[allow(clippy::cast_possible_truncation)]
    pub fn run<T, R>(
        &self,
        mut rec: JobRecord,
        spec: RunSpec<'_>,
        work: impl FnOnce(&JobContext<'_>) -> Result<T>,
        publish: impl FnOnce(T, &mut JobRecord) -> Result<R>,
    ) -> Result<(R, JobInfo)> {
        let started = Instant::now();
        let shared = self.register(rec.id, &spec.cancel);
        self.backend
            .note_activity(&activity(&spec.activity, 0.0), true);
        let tee = Tee {
            user: spec.progress,
            shared,
            backend: self.backend,
            activity: &spec.activity,
        };
        let pool = spec.pool.as_ref().unwrap_or(self.pool);
        let ctx = JobContext::new(spec.seed, &spec.cancel, &tee, pool)
            .with_memory_limit(spec.memory_limit);
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<R> {
            ctx.check_cancel()?;
            let out = work(&ctx)?;
            // The last point where the job can stop: after it, its outputs go live.
            tee.report(tee.fraction(), "publishing");
            ctx.check_cancel()?;
            rec.state = JobState::Done as u8;
            rec.progress = 1.0;
            rec.message = "published".into();
            rec.seconds = started.elapsed().as_secs_f64();
            rec.finished_unix = meta::now_unix();
            publish(out, &mut rec)
        }))
        .unwrap_or_else(|p| {
            Err(Error::JobFailed(format!(
                "panic in job: {}",
                panic_message(p)
            )))
        });
        self.running.lock().recover().remove(&rec.id);
        self.backend.note_activity("", true);
        match outcome {
            Ok(r) => Ok((r, JobInfo::from_record(&rec))),
            Err(e) => {
                // A cancelled or failed job keeps how far it got.
                rec.progress = tee.fraction() as f32;
                rec.seconds = started.elapsed().as_secs_f64();
                rec.finished_unix = meta::now_unix();
                fail_record(self.backend, &mut rec, &e)?;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::backend::MemBackend;

    /// A runner over an in-memory store: the life cycle needs no database.
    fn with_runner(f: impl FnOnce(&Runner<'_>)) {
        let backend = MemBackend::default();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let running = Running::default();
        f(&Runner {
            backend: &backend,
            pool: &pool,
            running: &running,
        });
        assert!(
            running.lock().unwrap().is_empty(),
            "a finished job stays registered"
        );
    }

    fn spec(cancel: Arc<AtomicBool>) -> RunSpec<'static> {
        RunSpec {
            seed: 1,
            pool: None,
            memory_limit: None,
            progress: None,
            cancel,
            activity: "test".into(),
        }
    }

    fn stored(r: &Runner<'_>, id: u64) -> JobRecord {
        record::get(r.backend, id).unwrap().unwrap()
    }

    #[test]
    fn job_slots_stop_at_the_limit_and_come_back_when_dropped() {
        let slots = JobSlots::new(2);
        let a = slots.take().unwrap();
        let b = slots.take().unwrap();
        match slots.take() {
            Err(Error::Busy { what, limit }) => {
                assert_eq!((what.as_str(), limit), ("jobs running", 2))
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a third slot under a limit of 2"),
        }
        drop(a);
        let c = slots.take().unwrap();
        assert!(slots.take().is_err());
        drop((b, c));
        assert_eq!(slots.used.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_published_job_ends_done_with_the_record_its_publish_wrote() {
        with_runner(|r| {
            let rec = new_record(1, "t", "{}".into(), 1, 0);
            let (n, info) = r
                .run(
                    rec,
                    spec(Arc::default()),
                    |ctx| {
                        ctx.progress(0.5, "half");
                        Ok(2)
                    },
                    |n, rec| {
                        put_record(r.backend, rec)?;
                        Ok(n * 2)
                    },
                )
                .unwrap();
            assert_eq!((n, info.state), (4, JobState::Done));
            assert_eq!(JobState::from_u8(stored(r, 1).state), JobState::Done);
        });
    }

    #[test]
    fn panic_error_and_cancel_publish_nothing() {
        with_runner(|r| {
            let published = std::cell::Cell::new(false);
            let publish = |_: (), _: &mut JobRecord| -> Result<()> {
                published.set(true);
                Ok(())
            };
            let rec = new_record(1, "t", "{}".into(), 1, 0);
            let e = r
                .run(rec, spec(Arc::default()), |_| panic!("boom"), publish)
                .unwrap_err();
            assert!(
                matches!(&e, Error::JobFailed(m) if m.contains("boom")),
                "{e}"
            );
            let rec = new_record(2, "t", "{}".into(), 1, 0);
            r.run(
                rec,
                spec(Arc::default()),
                |_| Err(Error::Empty("x".into())),
                publish,
            )
            .unwrap_err();
            // Cancelled after the work: the last check before publish stops it.
            let cancel = Arc::new(AtomicBool::new(false));
            let c = cancel.clone();
            let rec = new_record(3, "t", "{}".into(), 1, 0);
            let work = move |_: &JobContext<'_>| {
                c.store(true, Ordering::Relaxed);
                Ok(())
            };
            assert!(matches!(
                r.run(rec, spec(cancel), work, publish),
                Err(Error::Cancelled)
            ));
            assert!(!published.get());
            let states: Vec<_> = (1..=3)
                .map(|i| JobState::from_u8(stored(r, i).state))
                .collect();
            assert_eq!(
                states,
                [JobState::Failed, JobState::Failed, JobState::Cancelled]
            );
            assert!(stored(r, 1).error.contains("boom"));
        });
    }
}
