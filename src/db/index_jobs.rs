//! Building an index as a maintenance job (record, progress, cancel), and the policy
//! that rebuilds it when a table version is published.
//!
//! Policy: after a publish, a table gets a background index job when its last finished
//! `index` job asked for it (`IndexOptions::rebuild_on_publish`; the options are kept in
//! that job's record and reused) or when it has at least [`Config::auto_index_rows`](super::Config) rows (default
//! options). Until the job is done, queries on the new version scan exactly. A
//! compaction's version comes with its index carried over and is rebuilt only once a
//! tenth of its rows were placed without k-means.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use super::index::info_of;
use super::Db;
use crate::error::OrPoisoned;
use crate::index::stored as store;
use crate::index::{code_stages, BuildHooks, IvfIndex, Metric, Shortfall, TUNED};
use crate::jobs::policy::{self, IndexBuild};
use crate::jobs::record::{self as job_store, JobRecord, JobState};
use crate::jobs::runner::{self, JobSlot, RunSpec};
use crate::jobs::{JobContext, JobHandle, JobInfo};
use crate::storage::backend::WriteBatch;
use crate::storage::tables::{self, TableView};
use crate::{Error, IndexInfo, IndexOptions, Result};

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

// why: these were written from the options' own usize and f32 fields (a usize is
// 64-bit on the targets recdb builds for; f32 → f64 → f32 round-trips exactly).
#[allow(clippy::cast_possible_truncation)]
fn options_from(params: &str) -> Option<(String, IndexOptions)> {
    let v: serde_json::Value = serde_json::from_str(params).ok()?;
    let d = IndexOptions::default();
    let o = IndexOptions {
        metric: v.get("metric")?.as_str()?.parse().ok()?,
        lists: v.get("lists").and_then(|x| x.as_u64()).map(|x| x as usize),
        bits: v
            .get("bits")
            .and_then(|x| x.as_u64())
            // Out of range stays out of range (255), for the options' check to refuse.
            .map_or(d.bits, |b| u8::try_from(b).unwrap_or(u8::MAX)),
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
        control: Default::default(),
    };
    Some((v.get("table")?.as_str()?.to_owned(), o))
}

/// The job's side of a build: progress to the runner, cancel from the context.
struct JobHooks<'a, 'c> {
    ctx: &'a JobContext<'c>,
}

impl BuildHooks for JobHooks<'_, '_> {
    fn report(&self, fraction: f64, message: &str) {
        self.ctx.progress(fraction, message);
    }
    fn cancelled(&self) -> bool {
        self.ctx.check_cancel().is_err()
    }
}

impl Db {
    /// Build the index of the current version of `table` as an `index` job (recorded,
    /// with progress and cancel in `opts.control`): k-means, tune `nprobe` to reach
    /// `target_recall`, store it (replacing the version's previous index) and serve it.
    /// Durable on return. Later publishes of the table rebuild it with the same options.
    pub fn build_index(&self, table: &str, opts: &IndexOptions) -> Result<IndexInfo> {
        let (rec, pool, _slot) = self.prepare_index_job(table, opts, false)?;
        let cancel = runner::cancel_flag(&opts.control);
        self.run_index_job(table, opts, pool, cancel, rec)
            .map(|(info, _)| info)
    }

    /// [`Db::build_index`] on a background thread (cancel with [`JobHandle::cancel`] or
    /// [`Db::cancel_job`]).
    pub fn spawn_build_index(&self, table: &str, opts: &IndexOptions) -> Result<JobHandle> {
        self.spawn_index_job(table, opts, false)
    }

    /// Check the options and the table, take a place under the job cap, then record the
    /// job (a bad option, or no free place, leaves no record).
    fn prepare_index_job(
        &self,
        table: &str,
        opts: &IndexOptions,
        auto: bool,
    ) -> Result<(JobRecord, Option<rayon::ThreadPool>, JobSlot)> {
        let view = self.table(table)?;
        if auto {
            opts.validate()?;
        } else {
            // A user's build is refused before its record exists when it asks for more
            // lists than rows; an automatic rebuild's lists are chosen for the table.
            opts.validate_for(&view)?;
        }
        let slot = self.job_slot()?;
        let pool = opts.threads.map(super::thread_pool).transpose()?;
        let rec = self.start_record(&slot, "index", params_json(table, opts, auto), opts.seed)?;
        Ok((rec, pool, slot))
    }

    fn spawn_index_job(&self, table: &str, opts: &IndexOptions, auto: bool) -> Result<JobHandle> {
        let (rec, pool, slot) = self.prepare_index_job(table, opts, auto)?;
        let id = rec.id;
        let cancel = runner::cancel_flag(&opts.control);
        let (db, t, o, c) = (self.clone(), table.to_owned(), opts.clone(), cancel.clone());
        self.runner().spawn(id, cancel, move || {
            let _slot = slot;
            db.run_index_job(&t, &o, pool, c, rec).map(|(_, job)| job)
        })
    }

    /// Reads the table's current version; produces its index, stored and served.
    fn run_index_job(
        &self,
        table: &str,
        opts: &IndexOptions,
        pool: Option<rayon::ThreadPool>,
        cancel: Arc<AtomicBool>,
        rec: JobRecord,
    ) -> Result<(IndexInfo, JobInfo)> {
        let started = Instant::now();
        let spec = RunSpec {
            seed: opts.seed,
            pool,
            memory_limit: None,
            progress: opts.control.progress.as_deref(),
            cancel,
            activity: format!("index {table}"),
        };
        let work = |ctx: &JobContext<'_>| -> Result<(Arc<TableView>, IvfIndex, Option<Shortfall>)> {
            let hooks = JobHooks { ctx };
            let view = self.table(table)?;
            let pool = ctx.pool();
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
            ctx.check_cancel()?;
            ctx.progress(TUNED, "writing");
            Ok((view, ix, shortfall))
        };
        let publish = |(view, ix, shortfall): (Arc<TableView>, IvfIndex, Option<Shortfall>),
                       rec: &mut JobRecord|
         -> Result<IndexInfo> {
            let info = info_of(&view, &ix);
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
                // The index and the finished record in one batch.
                let (h, ids, codes) = ix.to_stored();
                let mut batch = WriteBatch::default();
                store::delete(b, table, view.version(), &mut batch)?;
                store::stage(&mut batch, table, view.version(), &h, ids, codes);
                job_store::put(&mut batch, rec);
                b.apply(batch)?;
                b.flush()?;
            }
            self.install_index(&view, Arc::new(ix));
            Ok(info)
        };
        self.runner().run(rec, spec, work, publish)
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
            self.inner.parsed.forget_table(name);
            // A compaction stores the new version with its index carried over.
            let carried = store::header(self.backend(), name, *version).ok().flatten();
            let Ok(remembered) = self.remembered_index(name) else {
                continue;
            };
            let rows = match &carried {
                Some(_) => 0,
                None => self.table(name).map_or(0, |v| v.rows()),
            };
            let decision = policy::index_after_publish(
                carried
                    .as_ref()
                    .map(|h| (h.placed as usize, h.table_rows as usize)),
                remembered.is_some(),
                rows,
                self.inner.config.auto_index_rows,
            );
            let opts = match (decision, remembered, &carried) {
                (IndexBuild::None, ..) => continue,
                (IndexBuild::Remembered, Some(o), _) => o,
                (IndexBuild::AsCarried, _, Some(h)) => IndexOptions {
                    metric: Metric::from_stored_byte(h.metric),
                    lists: Some(h.lists as usize),
                    // why: an index has at most 2 code stages (bits 4 or 8).
                    #[allow(clippy::cast_possible_truncation)]
                    bits: code_stages(&h.levels, h.dim as usize).map_or(4, |s| 4 * s as u8),
                    target_recall: h.target_recall,
                    seed: h.seed,
                    ..IndexOptions::default()
                },
                _ => IndexOptions::default(),
            };
            if let Ok(h) = self.spawn_index_job(name, &opts, true) {
                self.keep_maintenance(h);
            }
        }
    }

    /// Keep the handle of a maintenance job so [`Db::wait_maintenance`] can join it.
    pub(crate) fn keep_maintenance(&self, h: JobHandle) {
        self.inner.maintenance.lock().recover().push(h);
    }

    /// Wait for the maintenance jobs this handle started (index builds after publishes,
    /// compactions); returns how each ended. A process that exits earlier interrupts them
    /// (the next open marks them `interrupted`; the tables stay served by exact search).
    pub fn wait_maintenance(&self) -> Vec<Result<JobInfo>> {
        let mut out = Vec::new();
        loop {
            let hs: Vec<JobHandle> = std::mem::take(&mut *self.inner.maintenance.lock().recover());
            if hs.is_empty() {
                return out;
            }
            out.extend(hs.into_iter().map(JobHandle::wait));
        }
    }

    /// Maintenance jobs started by this handle and not yet joined.
    pub fn maintenance_pending(&self) -> usize {
        self.inner.maintenance.lock().recover().len()
    }
}
