//! Building an index as a maintenance job (record, progress, cancel), and the policy
//! that rebuilds it when a table version is published.
//!
//! Policy: after a publish, a table gets a background index job when its last finished
//! `index` job asked for it (`IndexOptions::rebuild_on_publish`; the options are kept in
//! that job's record and reused) or when it has at least [`Config::auto_index_rows`](super::Config) rows (default
//! options). Until the job is done, queries on the new version scan exactly. A
//! compaction's version comes with its index carried over and is rebuilt only once a
//! tenth of its rows were placed without k-means.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::index::info_of;
use super::{Db, JobHandle, RunningJob};
use crate::index::stored as store;
use crate::index::{centroids_fresh, code_stages, BuildHooks, IvfIndex, Metric, Shortfall, TUNED};
use crate::storage::jobs::{self as job_store, JobRecord, JobState};
use crate::storage::tables;
use crate::train::context::{NoProgress, ProgressSink};
use crate::{Error, IndexInfo, IndexOptions, JobInfo, Result};

fn metric_str(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "cosine",
        Metric::Dot => "dot",
    }
}

/// The job record's params: the table and every option, so a later publish can rebuild
/// with the same ones.
fn params_json(table: &str, o: &IndexOptions, auto: bool) -> String {
    serde_json::json!({
        "table": table, "metric": metric_str(o.metric), "lists": o.lists, "bits": o.bits,
        "spill": o.spill, "target_recall": o.target_recall, "rerank": o.rerank, "seed": o.seed, "threads": o.threads, "auto": auto,
        "rebuild_on_publish": o.rebuild_on_publish,
    })
    .to_string()
}

fn options_from(params: &str) -> Option<(String, IndexOptions)> {
    let v: serde_json::Value = serde_json::from_str(params).ok()?;
    let d = IndexOptions::default();
    let o = IndexOptions {
        metric: v.get("metric")?.as_str()?.parse().ok()?,
        lists: v.get("lists").and_then(|x| x.as_u64()).map(|x| x as usize),
        bits: v
            .get("bits")
            .and_then(|x| x.as_u64())
            .map_or(d.bits, |b| b as u8),
        spill: v
            .get("spill")
            .and_then(|x| x.as_f64())
            .map_or(d.spill, |x| x as f32),
        target_recall: v
            .get("target_recall")
            .and_then(|x| x.as_f64())
            .map_or(d.target_recall, |x| x as f32),
        rerank: v.get("rerank").and_then(|x| x.as_u64()).map(|x| x as usize),
        seed: v.get("seed").and_then(|x| x.as_u64()).unwrap_or(d.seed),
        threads: v
            .get("threads")
            .and_then(|x| x.as_u64())
            .map(|x| x as usize),
        rebuild_on_publish: v.get("rebuild_on_publish")?.as_bool()?,
    };
    Some((v.get("table")?.as_str()?.to_owned(), o))
}

struct Shared<'a> {
    user: &'a dyn ProgressSink,
    shared: Arc<Mutex<(f64, String)>>,
}

impl Shared<'_> {
    fn report(&self, f: f64, m: &str) {
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = (f, m.to_owned());
        self.user.report(f, m);
    }
}

/// The job's side of a build: progress to the record and the caller, cancel from the flag.
struct JobHooks<'a> {
    progress: &'a Shared<'a>,
    cancel: &'a AtomicBool,
}

impl BuildHooks for JobHooks<'_> {
    fn report(&self, fraction: f64, message: &str) {
        self.progress.report(fraction, message);
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl Db {
    /// Build the index of the current version of `table` as an `index` job (recorded,
    /// with progress and cancel): k-means, tune `nprobe` to reach `target_recall`, store
    /// it (replacing the version's previous index) and serve it. Durable on return.
    /// Later publishes of the table rebuild it with the same options.
    pub fn build_index(&self, table: &str, opts: &IndexOptions) -> Result<IndexInfo> {
        self.build_index_with_progress(table, opts, &NoProgress)
    }

    /// [`Db::build_index`] with a progress sink.
    pub fn build_index_with_progress(
        &self,
        table: &str,
        opts: &IndexOptions,
        sink: &dyn ProgressSink,
    ) -> Result<IndexInfo> {
        opts.validate_for(&*self.table(table)?)?;
        let rec = self.start_record_named("index", params_json(table, opts, false), opts.seed)?;
        let cancel = Arc::new(AtomicBool::new(false));
        self.run_index_job(table, opts, sink, cancel, rec)
            .map(|(info, _)| info)
    }

    /// [`Db::build_index`] on a background thread (cancel with [`JobHandle::cancel`] or
    /// [`Db::cancel_job`]).
    pub fn spawn_build_index(&self, table: &str, opts: &IndexOptions) -> Result<JobHandle> {
        opts.validate_for(&*self.table(table)?)?;
        self.spawn_index_job(table, opts, false)
    }

    fn spawn_index_job(&self, table: &str, opts: &IndexOptions, auto: bool) -> Result<JobHandle> {
        opts.validate()?;
        self.table(table)?;
        let rec = self.start_record_named("index", params_json(table, opts, auto), opts.seed)?;
        let id = rec.id;
        let cancel = Arc::new(AtomicBool::new(false));
        self.register_running(id, &cancel);
        let (db, t, o, c) = (self.clone(), table.to_owned(), opts.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name(format!("recdb-job-{id}"))
            .spawn(move || {
                db.run_index_job(&t, &o, &NoProgress, c, rec)
                    .map(|(_, job)| job)
            })
            .map_err(|e| Error::Storage(format!("cannot start a job thread: {e}")))?;
        Ok(JobHandle::new(id, cancel, thread))
    }

    fn run_index_job(
        &self,
        table: &str,
        opts: &IndexOptions,
        sink: &dyn ProgressSink,
        cancel: Arc<AtomicBool>,
        mut rec: JobRecord,
    ) -> Result<(IndexInfo, JobInfo)> {
        let started = Instant::now();
        let shared = self.register_running(rec.id, &cancel);
        let progress = Shared { user: sink, shared };
        let hooks = JobHooks {
            progress: &progress,
            cancel: &cancel,
        };
        let outcome = catch_unwind(AssertUnwindSafe(
            || -> Result<(IndexInfo, Option<Shortfall>)> {
                let view = self.table(table)?;
                let own = opts.threads.map(super::thread_pool).transpose()?;
                let pool = own.as_ref().unwrap_or(&self.inner.pool);
                hooks.check()?;
                let mut ix = pool.install(|| {
                    IvfIndex::build(
                        &view,
                        opts.metric,
                        opts.lists,
                        opts.bits,
                        opts.spill,
                        opts.seed,
                        &hooks,
                    )
                })?;
                let shortfall =
                    pool.install(|| ix.tune(&view, opts.target_recall, opts.rerank, &hooks))?;
                ix.build_seconds = started.elapsed().as_secs_f64();
                hooks.check()?;
                progress.report(TUNED, "writing");
                {
                    let _w = self.lock_write();
                    let b = self.backend();
                    // The version may have been collected while we built.
                    let live = tables::get_entry(b, table)?
                        .is_some_and(|e| e.versions.iter().any(|v| v.version == view.version()));
                    if !live {
                        return Err(Error::InvalidInput(format!(
                            "table `{table}` version {} was replaced while its index was built",
                            view.version()
                        )));
                    }
                    let (h, ids, codes) = ix.to_stored();
                    store::write(b, table, view.version(), &h, ids, codes)?;
                    b.flush()?;
                }
                let info = info_of(&view, &ix);
                self.install_index(&view, Arc::new(ix));
                Ok((info, shortfall))
            },
        ))
        .unwrap_or_else(|p| {
            Err(Error::JobFailed(format!(
                "panic in index build: {}",
                super::jobs::panic_message(p)
            )))
        });
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&rec.id);
        rec.seconds = started.elapsed().as_secs_f64();
        rec.finished_unix = crate::storage::meta::now_unix();
        match outcome {
            Ok((info, shortfall)) => {
                rec.state = JobState::Done as u8;
                rec.progress = 1.0;
                rec.message = format!(
                    "indexed version {}: {} lists, nprobe {}, rerank {}, recall@10 {:.3}",
                    info.version, info.lists, info.nprobe, info.rerank, info.recall
                );
                if let Some(f) = shortfall {
                    rec.message += &format!(
                        "; target recall {} not reached below every list (best {:.3} at nprobe {}, rerank {}): queries scan every row",
                        info.target_recall, f.recall, f.nprobe, f.rerank
                    );
                }
                rec.tables = vec![table.to_owned()];
                self.put_job_record(&rec)?;
                Ok((info, JobInfo::from_record(&rec)))
            }
            Err(e) => {
                self.fail_record(&mut rec, &e)?;
                Err(e)
            }
        }
    }

    /// Make a job visible to `jobs` (live progress) and `cancel_job` before it starts.
    fn register_running(&self, id: u64, cancel: &Arc<AtomicBool>) -> Arc<Mutex<(f64, String)>> {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .entry(id)
            .or_insert_with(|| RunningJob {
                cancel: cancel.clone(),
                progress: Arc::new(Mutex::new((0.0, String::new()))),
            })
            .progress
            .clone()
    }

    /// The options of the last finished `index` job of `table`, if they asked to be
    /// rebuilt on publish.
    fn remembered_index(&self, table: &str) -> Result<Option<IndexOptions>> {
        Ok(job_store::all(self.backend())?
            .iter()
            .rev()
            .filter(|r| r.model == "index" && JobState::from_u8(r.state) == JobState::Done)
            .filter_map(|r| options_from(&r.params))
            .find(|(t, _)| t == table)
            .map(|(_, o)| o)
            .filter(|o| o.rebuild_on_publish))
    }

    /// The index policy, after a publish: start background builds for the tables that
    /// had an index or are large. Errors are not the publish's: they end up in the job
    /// record, or (if no job could start) are dropped.
    pub(crate) fn after_publish(&self, published: &[(String, u64)]) {
        for (name, version) in published {
            // A compaction stores the new version with its index carried over: rebuilt
            // only once a tenth of its rows were placed without k-means, with the
            // remembered options, else the ones it was built with.
            let carried = store::header(self.backend(), name, *version).ok().flatten();
            if let Some(h) = &carried {
                if centroids_fresh(h.placed as usize, h.table_rows as usize) {
                    continue;
                }
            }
            let opts = match (self.remembered_index(name), &carried) {
                (Ok(Some(o)), _) => o,
                (Ok(None), Some(h)) => IndexOptions {
                    metric: Metric::from_stored_byte(h.metric),
                    lists: Some(h.lists as usize),
                    bits: code_stages(&h.levels, h.dim as usize).map_or(4, |s| 4 * s as u8),
                    target_recall: h.target_recall,
                    seed: h.seed,
                    ..IndexOptions::default()
                },
                (Ok(None), None) => {
                    let big = self.table(name).is_ok_and(|v| {
                        let min = self.inner.config.auto_index_rows;
                        min > 0 && v.rows() >= min
                    });
                    if !big {
                        continue;
                    }
                    IndexOptions::default()
                }
                (Err(_), _) => continue,
            };
            if let Ok(h) = self.spawn_index_job(name, &opts, true) {
                self.keep_maintenance(h);
            }
        }
    }

    /// Keep the handle of a maintenance job so [`Db::wait_maintenance`] can join it.
    pub(crate) fn keep_maintenance(&self, h: JobHandle) {
        self.inner
            .maintenance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h);
    }

    /// Wait for the maintenance jobs this handle started (index builds after publishes,
    /// compactions); returns how each ended. A process that exits earlier interrupts them
    /// (the next open marks them `interrupted`; the tables stay served by exact search).
    pub fn wait_maintenance(&self) -> Vec<Result<JobInfo>> {
        let mut out = Vec::new();
        loop {
            let hs: Vec<JobHandle> = std::mem::take(
                &mut *self
                    .inner
                    .maintenance
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            if hs.is_empty() {
                return out;
            }
            out.extend(hs.into_iter().map(JobHandle::wait));
        }
    }

    /// Maintenance jobs started by this handle and not yet joined.
    pub fn maintenance_pending(&self) -> usize {
        self.inner
            .maintenance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}
