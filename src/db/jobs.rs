//! Training jobs and the retrain policy, on the one job runner ([`crate::jobs`]); the
//! job list (`jobs`, `job`, `cancel_job`) of every kind.

use std::sync::atomic::Ordering;

use super::Db;
use crate::error::OrPoisoned;
use crate::jobs::record::{self as job_store, JobRecord, JobState, Policy};
use crate::jobs::runner::{self, JobSlot, RunSpec, Runner};
use crate::jobs::{
    policy, Job, JobControl, JobHandle, JobInfo, ProgressSink, Snapshot, TableOutput,
};
use crate::storage::backend::WriteBatch;
use crate::{Error, Params, Result};

/// Attributes by dense id, as a [`Snapshot`] carries them.
type AttrRows = Vec<Vec<(String, String)>>;

/// A training job ready to run: checked, recorded, with its place under the cap.
struct Prepared {
    job: Box<dyn Job>,
    /// Its own pool (`TrainOptions::threads`); `None`: the database's.
    pool: Option<rayon::ThreadPool>,
    rec: JobRecord,
    /// Held until the job ends.
    slot: JobSlot,
}

/// Options of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Every random choice of the job derives from this seed.
    pub seed: u64,
    /// Threads for this job (at most [`crate::MAX_THREADS`]); `None` uses the
    /// database's pool.
    pub threads: Option<usize>,
    /// Bytes the job's buffers may take; `None`: what the machine has available
    /// (`MemAvailable` on Linux). A job that needs more fails before allocating.
    pub memory_limit: Option<u64>,
    /// Progress sink and cancel flag.
    pub control: JobControl,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 42,
            threads: None,
            memory_limit: None,
            control: JobControl::default(),
        }
    }
}

impl Db {
    /// The runner of this database's jobs.
    pub(crate) fn runner(&self) -> Runner<'_> {
        Runner {
            backend: self.backend(),
            pool: &self.inner.pool,
            running: &self.inner.running,
        }
    }

    /// A place for one more running job ([`crate::Config::max_jobs`]), or
    /// [`Error::Busy`]: taken before the job builds its pool or writes its record, and
    /// held until the job ends.
    pub(crate) fn job_slot(&self) -> Result<JobSlot> {
        self.inner.job_slots.take()
    }

    /// Register a job: allocate its id and record it as running at the current watermark.
    /// `_slot` is the job's place under the cap: no record without one.
    pub(crate) fn start_record(
        &self,
        _slot: &JobSlot,
        model: &str,
        params: String,
        seed: u64,
    ) -> Result<JobRecord> {
        let _w = self.lock_write();
        let mut st = self.state_mut()?;
        let id = st.meta.next_job;
        st.meta.next_job += 1;
        let rec = runner::new_record(id, model, params, seed, st.meta.events);
        let mut batch = WriteBatch::default();
        st.meta.put(&mut batch);
        job_store::put(&mut batch, &rec);
        self.backend().apply(batch)?;
        drop(st);
        self.backend().flush()?;
        Ok(rec)
    }

    /// Publish `out` as a job of its own (`import`, `concat`): recorded like any job.
    pub(crate) fn publish_job(&self, model: &str, params: String, out: TableOutput) -> Result<()> {
        let slot = self.job_slot()?;
        let rec = self.start_record(&slot, model, params, 0)?;
        let spec = RunSpec {
            seed: 0,
            pool: None,
            memory_limit: None,
            cancel: Default::default(),
            progress: None,
            activity: format!("{model} {}", out.name),
        };
        self.runner()
            .run(
                rec,
                spec,
                |_| Ok(out),
                |out, rec| self.publish(std::slice::from_ref(&out), rec),
            )
            .map(|_| ())
    }

    /// Run a training job to its end state: snapshot at the record's watermark, train,
    /// publish its tables.
    fn run_training(
        &self,
        job: &dyn Job,
        opts: &TrainOptions,
        pool: Option<rayon::ThreadPool>,
        rec: JobRecord,
        cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
        sink: Option<&dyn ProgressSink>,
    ) -> Result<JobInfo> {
        let watermark = rec.watermark;
        let spec = RunSpec {
            seed: opts.seed,
            pool,
            memory_limit: opts.memory_limit,
            progress: sink.or(opts.control.progress.as_deref()),
            cancel,
            activity: format!("train {}", job.model()),
        };
        let work = |ctx: &crate::JobContext<'_>| {
            let snapshot = {
                let st = self.state()?;
                let mut snap = Snapshot::of_events(
                    st.users.len() as usize,
                    st.items.len() as usize,
                    ctx.pool()
                        .install(|| st.log.snapshot(self.backend(), watermark))?,
                );
                // Searches share the events' sequence numbers: the same watermark.
                if job.reads().searches {
                    snap.searches = ctx
                        .pool()
                        .install(|| st.searches.snapshot(self.backend(), watermark))?;
                    snap.n_tokens = st.tokens.len() as usize;
                }
                snap
            };
            let (user_attrs, item_attrs) = self.attrs_for(job.reads(), &snapshot)?;
            let inputs = job.input_tables();
            let names: Vec<&str> = inputs.iter().map(String::as_str).collect();
            let snapshot = Snapshot {
                texts: self.texts_for(job.text_input())?,
                user_attrs,
                item_attrs,
                tables: self.tables_consistent(&names)?,
                candidates: match job.candidates() {
                    Some((model, n)) if job.candidate_prefixes() == 0 => {
                        self.candidates_for(&model, n, snapshot.n_users, ctx)?
                    }
                    _ => Vec::new(),
                },
                next_lists: match job.candidates() {
                    Some((model, n)) if job.candidate_prefixes() > 0 => self.prefix_lists_for(
                        &model,
                        (n, job.candidate_prefixes()),
                        &snapshot.events,
                        ctx,
                    )?,
                    _ => Vec::new(),
                },
                ..snapshot
            };
            ctx.check_cancel()?;
            job.run(&snapshot, ctx)
        };
        let publish = |outputs: Vec<TableOutput>, rec: &mut JobRecord| {
            if let Some(s) = job.summary() {
                rec.message = format!("published; {s}");
            }
            self.publish(&outputs, rec)
        };
        self.runner()
            .run(rec, spec, work, publish)
            .map(|(_, info)| info)
    }

    /// Each of the first `n_users` users' top `n` items of `model` (their own items
    /// included: a ranker learns from where the logged items fall in the list), by
    /// dense id. Users go through `candidates_dense` in chunks; a chunk that fails (a
    /// user the model cannot answer) is redone one user at a time, such a user's list
    /// left empty.
    fn candidates_for(
        &self,
        model: &str,
        n: usize,
        n_users: usize,
        ctx: &crate::JobContext<'_>,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        ctx.check_memory(
            "candidates",
            (n_users as u128)
                .saturating_mul(n as u128)
                .saturating_mul(8),
        )?;
        use crate::query::Queries;
        let names = self.user_ids()?;
        let opts = crate::QueryOptions {
            include_seen: true,
            ..crate::QueryOptions::model(model).k(n)
        };
        let users: Vec<&str> = names.iter().take(n_users).map(String::as_str).collect();
        let mut out = Vec::with_capacity(users.len());
        for chunk in users.chunks(256) {
            ctx.check_cancel()?;
            match self.candidates_dense(chunk, &opts) {
                Ok(lists) => out.extend(lists),
                Err(_) => {
                    for u in chunk {
                        let mut one = self.candidates_dense(&[u], &opts).unwrap_or_default();
                        out.push(one.pop().unwrap_or_default());
                    }
                }
            }
        }
        Ok(out)
    }

    /// For each user and each of the user's last `last` events (one with at least one
    /// event before it), `model`'s top `n` as it would have served from the history
    /// before that event ([`crate::query::youtube::recommend_prefixes`]), by dense id.
    /// `events` are grouped by user, oldest first.
    fn prefix_lists_for(
        &self,
        model: &str,
        (n, last): (usize, usize),
        events: &[crate::event::Event],
        ctx: &crate::JobContext<'_>,
    ) -> Result<Vec<crate::jobs::NextList>> {
        use crate::query::youtube::{recommend_prefixes, Prefix};
        let mut prefixes = Vec::new();
        let mut targets = Vec::new();
        let mut start = 0;
        while start < events.len() {
            let user = events[start].user;
            let len = events[start..]
                .iter()
                .take_while(|e| e.user == user)
                .count();
            let evs = &events[start..start + len];
            for j in len.saturating_sub(last).max(1)..len {
                prefixes.push(Prefix {
                    user,
                    history: &evs[..j],
                    before_seq: evs[j].seq,
                });
                targets.push((evs[j].item, start + j));
            }
            start += len;
        }
        ctx.check_memory(
            "last",
            (prefixes.len() as u128)
                .saturating_mul(n as u128)
                .saturating_mul(8),
        )?;
        let mut out = Vec::with_capacity(prefixes.len());
        for (chunk, targets) in prefixes.chunks(256).zip(targets.chunks(256)) {
            ctx.check_cancel()?;
            let lists = recommend_prefixes(self, model, chunk, n)?;
            for ((p, &(target, at)), list) in chunk.iter().zip(targets).zip(lists) {
                out.push(crate::jobs::NextList {
                    user: p.user,
                    target,
                    at,
                    list,
                });
            }
        }
        Ok(out)
    }

    /// The user and item attributes a job asked for, by dense id (empty for an entity
    /// without any; none at all when not asked). Each kind is read in one scan. An
    /// entity added after the snapshot's id count is left out: the events the job
    /// trains on cannot name it.
    fn attrs_for(
        &self,
        reads: crate::jobs::Reads,
        snap: &Snapshot,
    ) -> Result<(AttrRows, AttrRows)> {
        let b = self.backend();
        let mut users = Vec::new();
        if reads.user_attrs {
            users.resize_with(snap.n_users, Vec::new);
            for (u, a) in crate::storage::attrs::all_users(b)? {
                if let Some(slot) = users.get_mut(u as usize) {
                    *slot = a.into_pairs();
                }
            }
        }
        let mut items = Vec::new();
        if reads.item_attrs {
            items.resize_with(snap.n_items, Vec::new);
            for (i, a) in crate::storage::attrs::all_items(b)? {
                if let Some(slot) = items.get_mut(i as usize) {
                    *slot = crate::features::item_fields(&a.into_record());
                }
            }
        }
        Ok((users, items))
    }

    /// The job, its own pool, its record and its place under the cap, once the options
    /// are checked (a bad option, or no free place, leaves no record).
    fn prepare_training(
        &self,
        model: &str,
        params: &Params,
        opts: &TrainOptions,
    ) -> Result<Prepared> {
        let job = crate::train::make_job(model, params)?;
        for m in job.requires_models() {
            crate::query::check_blend_component(self, &m)?;
        }
        if let Some((m, _)) = job.candidates() {
            if self.table(&format!("{m}.items")).is_err() {
                return Err(Error::param(
                    "candidates",
                    format!("`{m}` must be trained before a ranker learns from its candidates"),
                ));
            }
            if job.candidate_prefixes() > 0 && !crate::query::youtube::is_youtube(self, &m) {
                return Err(Error::param(
                    "last",
                    format!(
                        "`{m}` cannot serve from a past history: last=L needs a youtube candidate model (or last=0)"
                    ),
                ));
            }
        }
        // A missing input table fails here, before the job leaves a record.
        let inputs = job.input_tables();
        self.tables_consistent(&inputs.iter().map(String::as_str).collect::<Vec<_>>())?;
        let slot = self.job_slot()?;
        let pool = opts.threads.map(super::thread_pool).transpose()?;
        let rec = self.start_record(&slot, job.model(), job.params_json(), opts.seed)?;
        Ok(Prepared {
            job,
            pool,
            rec,
            slot,
        })
    }

    /// Train `model` in the foreground and publish its tables. Durable on return.
    /// Progress and cancel go through `opts.control`.
    pub fn train(&self, model: &str, params: &Params, opts: &TrainOptions) -> Result<JobInfo> {
        self.train_in_foreground(model, params, opts, None)
    }

    /// [`Db::train`] reporting to a borrowed sink, for the crate's own drivers (the
    /// evaluation protocols) whose sink is not shared.
    pub(crate) fn train_reporting(
        &self,
        model: &str,
        params: &Params,
        opts: &TrainOptions,
        sink: &dyn ProgressSink,
    ) -> Result<JobInfo> {
        self.train_in_foreground(model, params, opts, Some(sink))
    }

    /// The job's slot is held until it returns.
    fn train_in_foreground(
        &self,
        model: &str,
        params: &Params,
        opts: &TrainOptions,
        sink: Option<&dyn ProgressSink>,
    ) -> Result<JobInfo> {
        let Prepared {
            job,
            pool,
            rec,
            slot: _slot,
        } = self.prepare_training(model, params, opts)?;
        let cancel = runner::cancel_flag(&opts.control);
        self.run_training(job.as_ref(), opts, pool, rec, cancel, sink)
    }

    /// [`Db::train`] on a background thread; parallel work still runs on the pool.
    pub fn spawn_train(
        &self,
        model: &str,
        params: &Params,
        opts: &TrainOptions,
    ) -> Result<JobHandle> {
        let Prepared {
            job,
            pool,
            rec,
            slot,
        } = self.prepare_training(model, params, opts)?;
        let id = rec.id;
        let cancel = runner::cancel_flag(&opts.control);
        let (db, opts, c) = (self.clone(), opts.clone(), cancel.clone());
        self.runner().spawn(id, cancel, move || {
            let _slot = slot;
            db.run_training(job.as_ref(), &opts, pool, rec, c, None)
        })
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
            let runs = records
                .iter()
                .filter(|r| r.model == p.model)
                .map(|r| (JobState::from_u8(r.state), r.watermark));
            if policy::retrain_due(events, p.every_events, runs) {
                let mut params = Params::new();
                for kv in p.params.lines().filter(|l| !l.is_empty()) {
                    params.insert_kv(kv)?;
                }
                match self.spawn_train(&p.model, &params, &TrainOptions::default()) {
                    Ok(h) => started.push(h),
                    // At the cap: the retrain stays due and starts after a later commit;
                    // the commit itself is durable and not the job's.
                    Err(Error::Busy { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;
    use crate::jobs::JobContext;
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
        let rec = db
            .start_record(&db.job_slot().unwrap(), "fake", "{}".into(), 1)
            .unwrap();
        db.run_training(
            &Fake(what),
            &TrainOptions::default(),
            None,
            rec,
            cancel,
            None,
        )
    }

    /// A fake job spinning in the background until cancelled, started as `spawn_train`
    /// starts a real one (its place under the cap taken first, held by its thread).
    fn spawn_spinner(db: &Db) -> Result<(JobHandle, Arc<AtomicBool>)> {
        let slot = db.job_slot()?;
        let rec = db.start_record(&slot, "fake", "{}".into(), 1)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let (d, c) = (db.clone(), cancel.clone());
        let h = db.runner().spawn(rec.id, cancel.clone(), move || {
            let _slot = slot;
            d.run_training(&Fake("spin"), &TrainOptions::default(), None, rec, c, None)
        })?;
        Ok((h, cancel))
    }

    #[test]
    fn jobs_past_the_cap_are_refused_busy_and_leave_no_record() {
        assert!(matches!(
            Db::open_with(crate::Config {
                max_jobs: 0,
                ..crate::Config::default()
            }),
            Err(Error::InvalidParameter { name, .. }) if name == "max_jobs"
        ));
        let db = Db::open_with(crate::Config {
            max_jobs: 2,
            ..crate::Config::default()
        })
        .unwrap();
        let mut b = db.batch();
        b.push("u", "i", EventKind::View, 1.0, 0).unwrap();
        b.commit().unwrap();
        let (first, stop_first) = spawn_spinner(&db).unwrap();
        let (second, stop_second) = spawn_spinner(&db).unwrap();
        let busy = |r: Result<()>| match r {
            Err(Error::Busy { what, limit }) => {
                assert_eq!((what.as_str(), limit), ("jobs running", 2));
                true
            }
            _ => false,
        };
        let none = Params::new();
        let opts = TrainOptions::default();
        assert!(busy(db.spawn_train("popular", &none, &opts).map(drop)));
        assert!(busy(db.train("popular", &none, &opts).map(drop)));
        assert!(busy(spawn_spinner(&db).map(drop)));
        assert_eq!(db.jobs().unwrap().len(), 2, "a refused job left a record");
        // A retrain policy due at the cap: the commit succeeds, the retrain waits.
        db.set_retrain_policy("popular", &none, 1).unwrap();
        let mut b = db.batch();
        b.push("u", "j", EventKind::View, 1.0, 1).unwrap();
        b.commit().unwrap();
        assert_eq!(db.jobs().unwrap().len(), 2);
        // One ends: its place is free again, and the next commit starts the retrain.
        stop_first.store(true, Ordering::Relaxed);
        assert!(matches!(first.wait(), Err(Error::Cancelled)));
        let mut b = db.batch();
        b.push("u", "k", EventKind::View, 1.0, 2).unwrap();
        b.commit().unwrap();
        let models: Vec<String> = db.jobs().unwrap().into_iter().map(|j| j.model).collect();
        assert_eq!(models, ["fake", "fake", "popular"]);
        stop_second.store(true, Ordering::Relaxed);
        assert!(matches!(second.wait(), Err(Error::Cancelled)));
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
        assert_eq!(jobs[0].state, JobState::Failed);
        assert!(db.tables().unwrap().is_empty());
        // The database still works.
        assert_eq!(
            run(&db, "ok", Arc::new(AtomicBool::new(false)))
                .unwrap()
                .state,
            JobState::Done
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
        assert_eq!(db.jobs().unwrap()[0].state, JobState::Cancelled);
        assert!(db.tables().unwrap().is_empty());
    }

    /// A job that asks for attributes and keeps what its snapshot carried.
    #[derive(Default)]
    struct Attrs(std::sync::Mutex<Vec<AttrRows>>);

    impl Job for Attrs {
        fn model(&self) -> &str {
            "attrs"
        }
        fn params_json(&self) -> String {
            "{}".into()
        }
        fn reads(&self) -> crate::jobs::Reads {
            crate::jobs::Reads {
                user_attrs: true,
                item_attrs: true,
                ..Default::default()
            }
        }
        fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
            *self.0.lock().unwrap() = vec![snap.user_attrs.clone(), snap.item_attrs.clone()];
            Fake("ok").run(snap, ctx)
        }
    }

    #[test]
    fn the_snapshot_carries_attributes_when_the_job_asks() {
        let db = db_with_events();
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        db.put_users(&[crate::UserRecord {
            id: "u".into(),
            attrs: vec![pair("gender", "F"), pair("age", "25")],
        }])
        .unwrap();
        db.put_items(&[crate::ItemRecord {
            id: "j".into(),
            title: Some("A title".into()),
            genres: vec!["Comedy".into(), "Drama".into()],
            attrs: vec![pair("year", "1995")],
            ..Default::default()
        }])
        .unwrap();
        let job = Attrs::default();
        let rec = db
            .start_record(&db.job_slot().unwrap(), "attrs", "{}".into(), 1)
            .unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        db.run_training(&job, &TrainOptions::default(), None, rec, flag, None)
            .unwrap();
        let got = job.0.lock().unwrap().clone();
        let (u, i, j) = (
            db.user_id("u").unwrap() as usize,
            db.item_id("i").unwrap() as usize,
            db.item_id("j").unwrap() as usize,
        );
        assert_eq!(got[0].len(), 1);
        assert_eq!(got[0][u], vec![pair("gender", "F"), pair("age", "25")]);
        assert_eq!(got[1].len(), 2);
        assert!(got[1][i].is_empty());
        assert_eq!(
            got[1][j],
            vec![pair("year", "1995"), pair("genres", "Comedy|Drama")]
        );
    }

    /// A job that names input tables and keeps (name, version, rows, dim) of each.
    struct Inputs(
        Vec<String>,
        std::sync::Mutex<Vec<(String, u64, usize, usize)>>,
    );

    impl Job for Inputs {
        fn model(&self) -> &str {
            "inputs"
        }
        fn params_json(&self) -> String {
            "{}".into()
        }
        fn input_tables(&self) -> Vec<String> {
            self.0.clone()
        }
        fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
            *self.1.lock().unwrap() = snap
                .tables
                .iter()
                .map(|t| (t.name().to_owned(), t.version(), t.rows(), t.dim()))
                .collect();
            Fake("ok").run(snap, ctx)
        }
    }

    #[test]
    fn the_snapshot_carries_the_input_tables_the_job_names() {
        let db = db_with_events();
        let flag = || Arc::new(AtomicBool::new(false));
        let rec = db
            .start_record(&db.job_slot().unwrap(), "fake", "{}".into(), 1)
            .unwrap();
        db.run_training(
            &Fake("ok"),
            &TrainOptions::default(),
            None,
            rec,
            flag(),
            None,
        )
        .unwrap();
        let published = db.table("fake.items").unwrap();
        let job = Inputs(vec!["fake.items".into()], Default::default());
        let rec = db
            .start_record(&db.job_slot().unwrap(), "inputs", "{}".into(), 1)
            .unwrap();
        db.run_training(&job, &TrainOptions::default(), None, rec, flag(), None)
            .unwrap();
        let got = job.1.lock().unwrap().clone();
        let want = (
            "fake.items".to_owned(),
            published.version(),
            published.rows(),
            published.dim(),
        );
        assert_eq!(got, vec![want]);

        let missing = Inputs(vec!["nope.items".into()], Default::default());
        let rec = db
            .start_record(&db.job_slot().unwrap(), "inputs", "{}".into(), 1)
            .unwrap();
        let err = db.run_training(&missing, &TrainOptions::default(), None, rec, flag(), None);
        assert!(matches!(err, Err(Error::UnknownTable(t)) if t == "nope.items"));
    }

    #[test]
    fn a_user_known_only_from_put_users_is_known_with_live_attributes() {
        use crate::query::Source;
        let db = db_with_events();
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        db.put_users(&[crate::UserRecord {
            id: "newcomer".into(),
            attrs: vec![pair("gender", "M")],
        }])
        .unwrap();
        let id = db.user_id("newcomer").unwrap();
        assert!(db.history_dense(id).unwrap().is_empty());
        assert_eq!(
            Source::user_attrs_dense(&db, id).unwrap(),
            vec![pair("gender", "M")]
        );
        // Attributes put again replace the old ones, seen at once.
        db.put_users(&[crate::UserRecord {
            id: "newcomer".into(),
            attrs: vec![pair("gender", "F")],
        }])
        .unwrap();
        assert_eq!(
            Source::user_attrs_dense(&db, id).unwrap(),
            vec![pair("gender", "F")]
        );
        let u = db.user_id("u").unwrap();
        assert!(Source::user_attrs_dense(&db, u).unwrap().is_empty());
    }

    /// Records what the snapshot held of the search log.
    struct SeesSearches(std::sync::Mutex<Vec<(usize, usize)>>);

    impl Job for SeesSearches {
        fn model(&self) -> &str {
            "fake"
        }
        fn params_json(&self) -> String {
            "{}".into()
        }
        fn reads(&self) -> crate::jobs::Reads {
            crate::jobs::Reads {
                searches: true,
                ..Default::default()
            }
        }
        fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
            self.0
                .lock()
                .unwrap()
                .push((snap.searches.len(), snap.n_tokens));
            assert!(snap
                .searches
                .iter()
                .flat_map(|s| &s.tokens)
                .all(|&t| (t as usize) < snap.n_tokens));
            Fake("ok").run(snap, ctx)
        }
    }

    /// A job's snapshot holds exactly the searches committed before it started: those of
    /// a commit after its record was taken are past its watermark.
    #[test]
    fn a_job_sees_the_searches_below_its_watermark() {
        let db = db_with_events();
        let mut b = db.batch();
        b.push_search("u", "space opera", 5).unwrap();
        b.push_search("w", "jazz", 6).unwrap();
        b.commit().unwrap();
        let rec = db
            .start_record(&db.job_slot().unwrap(), "fake", "{}".into(), 1)
            .unwrap();
        let mut b = db.batch();
        b.push_search("u", "late night noir", 7).unwrap();
        b.commit().unwrap();
        let job = SeesSearches(Default::default());
        let cancel = Arc::new(AtomicBool::new(false));
        db.run_training(
            &job,
            &TrainOptions::default(),
            None,
            rec,
            cancel.clone(),
            None,
        )
        .unwrap();
        let rec = db
            .start_record(&db.job_slot().unwrap(), "fake", "{}".into(), 1)
            .unwrap();
        db.run_training(&job, &TrainOptions::default(), None, rec, cancel, None)
            .unwrap();
        // n_tokens is the vocabulary when the job ran: ids below it.
        assert_eq!(*job.0.lock().unwrap(), vec![(2, 6), (3, 6)]);
    }
}
