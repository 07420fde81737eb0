//! Running jobs: foreground or background, with records that survive a restart.

use crate::error::OrPoisoned;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Db, RunningJob};
use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::jobs::{self as job_store, JobRecord, JobState, Policy};
use crate::storage::meta;
use crate::train::context::{JobContext, NoProgress, ProgressSink};
use crate::train::job::{Job, Snapshot};
use crate::{Error, Params, Result};

/// A job as `recdb jobs` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobInfo {
    pub id: u64,
    pub model: String,
    pub params: String,
    pub state: &'static str,
    pub progress: f64,
    pub message: String,
    pub created_unix: i64,
    pub seconds: f64,
    pub error: String,
    /// Events the job trained on (the log up to this sequence number).
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
            params: r.params.clone(),
            state: state.as_str(),
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

/// Options of one training run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Every random choice of the job derives from this seed.
    pub seed: u64,
    /// Threads for this job (at most [`crate::MAX_THREADS`]); `None` uses the
    /// database's pool.
    pub threads: Option<usize>,
    /// Bytes the job's buffers may take; `None`: what the machine has available
    /// (`MemAvailable` on Linux). A job that needs more fails before allocating.
    pub memory_limit: Option<u64>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 42,
            threads: None,
            memory_limit: None,
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
    pub(crate) fn new(
        id: u64,
        cancel: Arc<AtomicBool>,
        thread: std::thread::JoinHandle<Result<JobInfo>>,
    ) -> JobHandle {
        JobHandle { id, cancel, thread }
    }
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

struct Tee<'a> {
    user: &'a dyn ProgressSink,
    shared: Arc<Mutex<(f64, String)>>,
    /// Progress also goes to the owner file, for other processes (`Error::Locked`).
    backend: &'a dyn Backend,
    model: &'a str,
}

impl ProgressSink for Tee<'_> {
    fn report(&self, fraction: f64, message: &str) {
        *self.shared.lock().recover() = (fraction, message.to_owned());
        self.backend
            .note_activity(&training_activity(self.model, fraction), false);
        self.user.report(fraction, message);
    }
}

fn training_activity(model: &str, fraction: f64) -> String {
    format!("train {model} {:.0} %", fraction.clamp(0.0, 1.0) * 100.0)
}

/// Checked before a job record exists, so a bad option leaves no trace.
fn check_threads(opts: &TrainOptions) -> Result<()> {
    opts.threads
        .map_or(Ok(()), crate::train::params::check_threads)
}

pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

impl Db {
    pub(crate) fn put_job_record(&self, rec: &JobRecord) -> Result<()> {
        self.put_record(rec)
    }

    fn put_record(&self, rec: &JobRecord) -> Result<()> {
        let mut batch = WriteBatch::default();
        job_store::put(&mut batch, rec);
        self.backend().apply(batch)?;
        self.backend().flush()
    }

    /// Record how a job ended when it did not publish.
    pub(crate) fn fail_record(&self, rec: &mut JobRecord, e: &Error) -> Result<()> {
        rec.state = if matches!(e, Error::Cancelled) {
            JobState::Cancelled
        } else {
            JobState::Failed
        } as u8;
        rec.error = e.to_string();
        rec.message = rec.error.clone();
        rec.tables.clear();
        self.put_record(rec)
    }

    /// Register a job: allocate its id and record it as running at the current watermark.
    fn start_record(&self, job: &dyn Job, seed: u64) -> Result<JobRecord> {
        self.start_record_named(job.model(), job.params_json(), seed)
    }

    /// [`Db::start_record`] for work that is not a training job (e.g. `import`).
    pub(crate) fn start_record_named(
        &self,
        model: &str,
        params: String,
        seed: u64,
    ) -> Result<JobRecord> {
        let _w = self.lock_write();
        let mut st = self.state_mut()?;
        let id = st.meta.next_job;
        st.meta.next_job += 1;
        let rec = JobRecord {
            id,
            model: model.to_owned(),
            params,
            state: JobState::Running as u8,
            created_unix: meta::now_unix(),
            started_unix: meta::now_unix(),
            watermark: st.meta.events,
            seed,
            message: "starting".into(),
            ..JobRecord::default()
        };
        let mut batch = WriteBatch::default();
        st.meta.put(&mut batch);
        job_store::put(&mut batch, &rec);
        self.backend().apply(batch)?;
        drop(st);
        self.backend().flush()?;
        Ok(rec)
    }

    fn run_job(
        &self,
        job: Box<dyn Job>,
        opts: &TrainOptions,
        sink: &dyn ProgressSink,
        cancel: Arc<AtomicBool>,
        mut rec: JobRecord,
    ) -> Result<JobInfo> {
        let started = Instant::now();
        let shared = Arc::new(Mutex::new((0.0, String::new())));
        self.inner
            .running
            .lock()
            .or_poisoned("running jobs")?
            .insert(
                rec.id,
                RunningJob {
                    cancel: cancel.clone(),
                    progress: shared.clone(),
                },
            );
        self.backend()
            .note_activity(&training_activity(job.model(), 0.0), true);
        let tee = Tee {
            user: sink,
            shared,
            backend: self.backend(),
            model: job.model(),
        };
        let own_pool = opts.threads.map(super::thread_pool).transpose()?;
        let pool = own_pool.as_ref().unwrap_or(&self.inner.pool);
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<_> {
            let snapshot = {
                let st = self.state()?;
                Snapshot {
                    n_users: st.users.len() as usize,
                    n_items: st.items.len() as usize,
                    events: pool.install(|| st.log.snapshot(self.backend(), rec.watermark))?,
                    texts: Vec::new(),
                }
            };
            let snapshot = Snapshot {
                texts: self.texts_for(job.text_input())?,
                ..snapshot
            };
            let ctx = JobContext::new(opts.seed, &cancel, &tee, pool)
                .with_memory_limit(opts.memory_limit);
            ctx.check_cancel()?;
            job.run(&snapshot, &ctx)
        }))
        .unwrap_or_else(|p| {
            Err(Error::JobFailed(format!(
                "panic in job: {}",
                panic_message(p)
            )))
        });
        self.inner
            .running
            .lock()
            .or_poisoned("running jobs")?
            .remove(&rec.id);
        self.backend().note_activity("", true);
        rec.seconds = started.elapsed().as_secs_f64();
        rec.finished_unix = meta::now_unix();
        let result = outcome.and_then(|outputs| {
            rec.state = JobState::Done as u8;
            rec.progress = 1.0;
            rec.message = match job.summary() {
                Some(s) => format!("published; {s}"),
                None => "published".into(),
            };
            self.publish(&outputs, &mut rec)
        });
        match result {
            Ok(()) => Ok(JobInfo::from_record(&rec)),
            Err(e) => {
                // A cancelled or failed job keeps how far it got.
                // why: a fraction in [0, 1]; f32 keeps enough of it.
                #[allow(clippy::cast_possible_truncation)]
                let progress = tee.shared.lock().or_poisoned("job progress")?.0 as f32;
                rec.progress = progress;
                self.fail_record(&mut rec, &e)?;
                Err(e)
            }
        }
    }

    /// Train `model` in the foreground and publish its tables. Durable on return.
    pub fn train(&self, model: &str, params: &Params, opts: &TrainOptions) -> Result<JobInfo> {
        self.train_with_progress(model, params, opts, &NoProgress)
    }

    /// [`Db::train`] with a progress sink (the shell draws a bar from it).
    pub fn train_with_progress(
        &self,
        model: &str,
        params: &Params,
        opts: &TrainOptions,
        sink: &dyn ProgressSink,
    ) -> Result<JobInfo> {
        let job = crate::train::make_job(model, params)?;
        check_threads(opts)?;
        let rec = self.start_record(job.as_ref(), opts.seed)?;
        self.run_job(job, opts, sink, Arc::new(AtomicBool::new(false)), rec)
    }

    /// Train `model` on a background thread; parallel work still runs on the pool.
    pub fn spawn_train(
        &self,
        model: &str,
        params: &Params,
        opts: &TrainOptions,
    ) -> Result<JobHandle> {
        let job = crate::train::make_job(model, params)?;
        check_threads(opts)?;
        let rec = self.start_record(job.as_ref(), opts.seed)?;
        let id = rec.id;
        let cancel = Arc::new(AtomicBool::new(false));
        let (db, opts, c) = (self.clone(), opts.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name(format!("recdb-job-{id}"))
            .spawn(move || db.run_job(job, &opts, &NoProgress, c, rec))
            .map_err(|e| Error::system("cannot start a job thread", e))?;
        Ok(JobHandle { id, cancel, thread })
    }

    /// Every job ever run, oldest first, with live progress for running ones.
    pub fn jobs(&self) -> Result<Vec<JobInfo>> {
        let running = self.inner.running.lock().or_poisoned("running jobs")?;
        Ok(job_store::all(self.backend())?
            .iter()
            .map(|r| {
                let mut info = JobInfo::from_record(r);
                if let Some(j) = running.get(&r.id) {
                    let (p, m) = j.progress.lock().recover().clone();
                    info.progress = p;
                    info.message = m;
                }
                info
            })
            .collect())
    }

    pub fn job(&self, id: u64) -> Result<JobInfo> {
        let rec = job_store::get(self.backend(), id)?.ok_or(Error::UnknownJob(id))?;
        let mut info = JobInfo::from_record(&rec);
        if let Some(j) = self
            .inner
            .running
            .lock()
            .or_poisoned("running jobs")?
            .get(&id)
        {
            let (p, m) = j.progress.lock().or_poisoned("job progress")?.clone();
            info.progress = p;
            info.message = m;
        }
        Ok(info)
    }

    /// Ask a running job to stop.
    pub fn cancel_job(&self, id: u64) -> Result<()> {
        match self
            .inner
            .running
            .lock()
            .or_poisoned("running jobs")?
            .get(&id)
        {
            Some(j) => {
                j.cancel.store(true, Ordering::Relaxed);
                Ok(())
            }
            None => Err(Error::UnknownJob(id)),
        }
    }

    /// Rerun `model` in the background whenever `every_events` events have arrived since
    /// the watermark of its last finished run. Durable on return.
    pub fn set_retrain_policy(
        &self,
        model: &str,
        params: &Params,
        every_events: u64,
    ) -> Result<()> {
        if every_events == 0 {
            return Err(Error::param("every_events", "must be at least 1"));
        }
        crate::train::make_job(model, params)?;
        let encoded = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n");
        let _w = self.lock_write();
        let mut batch = WriteBatch::default();
        job_store::put_policy(
            &mut batch,
            &Policy {
                model: model.to_owned(),
                params: encoded,
                every_events,
            },
        );
        self.backend().apply(batch)?;
        self.backend().flush()
    }

    /// Start the retrain jobs whose policy is due. Returns the started handles.
    pub(crate) fn after_commit(&self) -> Result<Vec<JobHandle>> {
        let policies = job_store::policies(self.backend())?;
        if policies.is_empty() {
            return Ok(Vec::new());
        }
        let events = self.state()?.meta.events;
        let records = job_store::all(self.backend())?;
        let mut started = Vec::new();
        for p in policies {
            let mine = records.iter().filter(|r| r.model == p.model);
            if mine
                .clone()
                .any(|r| JobState::from_u8(r.state) == JobState::Running)
            {
                continue;
            }
            let last = mine
                .filter(|r| JobState::from_u8(r.state) == JobState::Done)
                .map(|r| r.watermark)
                .max()
                .unwrap_or(0);
            if events.saturating_sub(last) >= p.every_events {
                let mut params = Params::new();
                for kv in p.params.lines().filter(|l| !l.is_empty()) {
                    params.insert_kv(kv)?;
                }
                started.push(self.spawn_train(&p.model, &params, &TrainOptions::default())?);
            }
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::TableOutput;
    use crate::storage::tables::RowSpace;
    use crate::EventKind;

    /// A fake job: panics, fails, or publishes a 1-column table, as told.
    struct Fake(&'static str);

    impl Job for Fake {
        fn model(&self) -> &str {
            "fake"
        }
        fn params_json(&self) -> String {
            "{}".into()
        }
        fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
            match self.0 {
                "panic" => panic!("boom"),
                "nan" => Ok(vec![TableOutput {
                    name: "fake.items".into(),
                    space: RowSpace::Items,
                    dim: 1,
                    rows: vec![f32::NAN; snap.n_items],
                    offset: 0.0,
                    row_ids: vec![],
                }]),
                "spin" => loop {
                    ctx.check_cancel()?;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                },
                _ => Ok(vec![TableOutput {
                    name: "fake.items".into(),
                    space: RowSpace::Items,
                    dim: 1,
                    rows: vec![1.0; snap.n_items],
                    offset: 0.0,
                    row_ids: vec![],
                }]),
            }
        }
    }

    fn db_with_events() -> Db {
        let db = Db::temporary().unwrap();
        let mut b = db.batch();
        b.push("u", "i", EventKind::View, 1.0, 0).unwrap();
        b.push("u", "j", EventKind::View, 1.0, 1).unwrap();
        b.commit().unwrap();
        db
    }

    fn run(db: &Db, what: &'static str, cancel: Arc<AtomicBool>) -> Result<JobInfo> {
        let rec = db.start_record(&Fake(what), 1).unwrap();
        db.run_job(
            Box::new(Fake(what)),
            &TrainOptions::default(),
            &NoProgress,
            cancel,
            rec,
        )
    }

    #[test]
    fn a_panicking_job_fails_alone() {
        let db = db_with_events();
        let err = run(&db, "panic", Arc::new(AtomicBool::new(false))).unwrap_err();
        assert!(
            matches!(&err, Error::JobFailed(m) if m.contains("boom")),
            "{err}"
        );
        let jobs = db.jobs().unwrap();
        assert_eq!(jobs[0].state, "failed");
        assert!(db.tables().unwrap().is_empty());
        // The database still works.
        assert_eq!(
            run(&db, "ok", Arc::new(AtomicBool::new(false)))
                .unwrap()
                .state,
            "done"
        );
        assert_eq!(db.table("fake.items").unwrap().rows(), 2);
    }

    #[test]
    fn non_finite_output_is_never_published() {
        let db = db_with_events();
        assert!(run(&db, "nan", Arc::new(AtomicBool::new(false))).is_err());
        assert!(matches!(
            db.table("fake.items"),
            Err(Error::UnknownTable(_))
        ));
    }

    #[test]
    fn cancel_ends_the_job_as_cancelled() {
        let db = db_with_events();
        let cancel = Arc::new(AtomicBool::new(false));
        let c = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            c.store(true, Ordering::Relaxed);
        });
        assert!(matches!(run(&db, "spin", cancel), Err(Error::Cancelled)));
        t.join().unwrap();
        assert_eq!(db.jobs().unwrap()[0].state, "cancelled");
        assert!(db.tables().unwrap().is_empty());
    }
}
