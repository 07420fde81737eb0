//! The `Db` facade: opening, the shared state and caches, and reads that are not
//! queries. The sibling files hold thin `impl Db` methods that delegate to the feature
//! modules (`ingest`, `query`, `backup`, `storage`, ...).

mod backup;
mod compact;
mod delta;
mod derived;
mod docs;
mod find;
mod imports;
mod index;
mod index_jobs;
mod ingest;
mod jobs;
#[cfg(test)]
mod open_tests;
#[cfg(feature = "parquet")]
mod parquet;
mod recommend;
mod restore;
mod searches;
mod served;
mod stats;
mod tables;
mod text_query;
mod vacuum;
mod vectors;

use crate::error::OrPoisoned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub use crate::backup::DumpReport;
pub use crate::index::bench::{IndexBench, IndexBenchOptions, OperatingPoint};
pub use crate::ingest::{CommitReceipt, ImportReport, IngestBatch};
pub use crate::jobs::{JobHandle, JobInfo};
pub(crate) use crate::storage::state::State;
pub use crate::storage::vacuum::VacuumReport;
pub use compact::CompactOptions;
pub use delta::DeltaReport;
pub(crate) use index::Served;
pub use index::{IndexInfo, IndexOptions, SearchOptions, TableSearcher};
pub use jobs::TrainOptions;
#[cfg(feature = "parquet")]
pub use parquet::{LogExportReport, PARQUET_ROWS_PER_FILE};
pub use searches::SearchEntry;
pub use stats::{CheckReport, Stats};
pub use tables::{TableFormat, TableInfo};
pub use vectors::{TableImport, TableImportReport};

use crate::event::{Event, ItemRecord, UserRecord};
use crate::jobs::record as job_store;
use crate::storage::attrs;
use crate::storage::backend::{Backend, MemBackend, SledBackend, WriteBatch};
use crate::storage::meta;
use crate::storage::tables::TableView;
use crate::{Error, Result};

/// How to open a database.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database lives; `None` keeps it in memory (gone when dropped).
    pub path: Option<PathBuf>,
    /// Threads of the database's own pool (training, parallel ingest). 0 = all cores.
    pub threads: usize,
    /// Page cache of the storage engine, in bytes.
    pub cache_bytes: u64,
    /// How many versions of each table to keep (the current one included).
    pub keep_versions: usize,
    /// A published table with at least this many rows gets an index built in the
    /// background even if it never had one (0: only tables that had one). See
    /// `docs/INDEX.md`, "Life cycle and commands".
    pub auto_index_rows: usize,
    /// Durable calls `fsync` what sled wrote, so they survive a power loss (not only a
    /// process crash). `false` keeps only the process-crash promise, for speed (see
    /// `docs/BENCHMARKS.md`, "Durable writes").
    pub fsync: bool,
    /// Vacuum at open when the directory has grown well past its size after the last
    /// vacuum (see [`Db::vacuum`]): bounds the space kept by old table versions.
    pub auto_vacuum: bool,
    /// Jobs (training, index builds, compactions, table imports) running at once, in
    /// the foreground or the background; one more is refused with [`Error::Busy`], and
    /// a maintenance job due then (a retrain policy's, a compaction) waits for the next
    /// write that makes it due. At least 1.
    pub max_jobs: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: None,
            threads: 0,
            cache_bytes: 256 << 20,
            keep_versions: 2,
            auto_index_rows: 100_000,
            fsync: true,
            auto_vacuum: true,
            max_jobs: crate::jobs::MAX_JOBS,
        }
    }
}

impl Config {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Config {
            path: Some(path.into()),
            ..Config::default()
        }
    }
}

pub(crate) type IndexCache = HashMap<String, (u64, Option<Arc<crate::index::IvfIndex>>)>;

pub(crate) type DeltaCache = HashMap<String, (u64, Option<Arc<crate::index::replay::Delta>>)>;

/// The delta rows of a table version placed in its index's lists, for the (index, delta)
/// pair it was derived from.
pub(crate) struct TailEntry {
    pub version: u64,
    pub index: Arc<crate::index::IvfIndex>,
    pub delta: Arc<crate::index::replay::Delta>,
    pub tail: Arc<crate::index::Tail>,
}

pub(crate) struct Inner {
    pub backend: Box<dyn Backend>,
    /// Serialises writers: commits, publishes, job records.
    pub write: Mutex<()>,
    pub state: RwLock<State>,
    pub views: Mutex<HashMap<String, Arc<TableView>>>,
    /// The index of the cached version of each table (`None`: that version has none).
    pub indexes: Mutex<IndexCache>,
    /// The delta of the cached version of each table (`None`: that version has none).
    pub deltas: Mutex<DeltaCache>,
    /// The tail of the cached version of each table that has both an index and a delta.
    pub tails: Mutex<HashMap<String, TailEntry>>,
    /// Networks parsed from stored tables, per published version.
    pub parsed: crate::query::parsed::ParsedCache,
    /// Background maintenance jobs (index builds, compactions) not yet joined.
    pub maintenance: Mutex<Vec<JobHandle>>,
    pub genres: RwLock<Option<Arc<tables::GenreIndex>>>,
    pub pool: rayon::ThreadPool,
    pub running: crate::jobs::runner::Running,
    pub job_slots: Arc<crate::jobs::runner::JobSlots>,
    pub config: Config,
}

/// An open recdb database. Cheap to clone; every clone is the same database.
///
/// Durability: [`IngestBatch::commit`], [`Db::log_events`], the `import_*` calls, a
/// finished training job and [`Db::flush`] are durable when they return: synced to the
/// disk (they survive a power loss), or with [`Config::fsync`] off only flushed to the
/// operating system (they survive a process crash). Nothing else writes.
///
/// One process opens a database at a time; another gets [`Error::Locked`] naming it.
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.config.path)
            .finish()
    }
}

/// One event of a user's history, with external ids.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    pub item: String,
    pub kind: crate::EventKind,
    pub value: f32,
    pub timestamp: i64,
}

impl Db {
    /// Open (or create) the database at `path` with default settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(Config::new(path.as_ref()))
    }

    /// A database that lives in memory only.
    pub fn temporary() -> Result<Db> {
        Db::open_with(Config::default())
    }

    pub fn open_with(config: Config) -> Result<Db> {
        if config.keep_versions == 0 {
            return Err(Error::param("keep_versions", "must be at least 1"));
        }
        if config.max_jobs == 0 {
            return Err(Error::param("max_jobs", "must be at least 1"));
        }
        let backend: Box<dyn Backend> = match &config.path {
            Some(p) => {
                if p.exists() && !p.is_dir() {
                    return Err(Error::UnsupportedFormat {
                        found: format!("{} is a file, not a recdb database directory", p.display()),
                        supported: meta::FORMAT,
                    });
                }
                crate::storage::vacuum::before_open(p)?;
                if config.auto_vacuum {
                    crate::storage::vacuum::auto(p);
                }
                let mut backend = SledBackend::open(p, config.cache_bytes)?;
                backend.set_fsync(config.fsync);
                crate::storage::vacuum::after_open(p)?;
                Box::new(backend)
            }
            None => Box::new(MemBackend::default()),
        };
        Db::with_backend(backend, config)
    }

    pub(crate) fn with_backend(backend: Box<dyn Backend>, config: Config) -> Result<Db> {
        meta::check_or_init_format(backend.as_ref())?;
        let state = State::load(backend.as_ref())?;
        let threads = if config.threads == 0 {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(crate::MAX_THREADS)
        } else {
            config.threads
        };
        let pool = thread_pool(threads)?;
        let inner = Inner {
            backend,
            write: Mutex::new(()),
            state: RwLock::new(state),
            views: Mutex::new(HashMap::new()),
            indexes: Mutex::new(HashMap::new()),
            deltas: Mutex::new(HashMap::new()),
            tails: Mutex::new(HashMap::new()),
            parsed: Default::default(),
            maintenance: Mutex::new(Vec::new()),
            genres: RwLock::new(None),
            pool,
            running: Mutex::new(HashMap::new()),
            job_slots: crate::jobs::runner::JobSlots::new(config.max_jobs),
            config,
        };
        let db = Db {
            inner: Arc::new(inner),
        };
        db.recover()?;
        Ok(db)
    }

    /// After a crash: jobs that were running are marked interrupted, and table blocks
    /// that no catalog entry names (a publish that never flipped) are removed. Reads no
    /// id and no log segment.
    fn recover(&self) -> Result<()> {
        let _w = self.lock_write();
        let b = self.backend();
        let mut batch = WriteBatch::default();
        for mut rec in job_store::all(b)? {
            let state = job_store::JobState::from_u8(rec.state);
            if !state.is_finished() {
                rec.state = job_store::JobState::Interrupted as u8;
                rec.message = "the process stopped while the job ran".into();
                job_store::put(&mut batch, &rec);
            }
        }
        // Log segments need no such pass: a commit writes them with their manifest in
        // one batch, so no crash leaves one unnamed (`check` reports any that are).
        crate::storage::tables::collect_orphans(b, &mut batch)?;
        if !batch.is_empty() {
            b.apply(batch)?;
            b.flush()?;
        }
        Ok(())
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    /// The in-memory state, or [`Error::LockPoisoned`] if a writer panicked mid-update.
    pub(crate) fn state(&self) -> Result<std::sync::RwLockReadGuard<'_, State>> {
        self.inner.state.read().or_poisoned("database state")
    }

    pub(crate) fn state_mut(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>> {
        self.inner.state.write().or_poisoned("database state")
    }

    /// The writer lock guards no data (only who writes), so a panic cannot leave it
    /// half-updated: its poison is ignored.
    pub(crate) fn lock_write(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner.write.lock().recover()
    }

    /// Where the database lives (`None` for a temporary one).
    pub fn path(&self) -> Option<&Path> {
        self.inner.config.path.as_deref()
    }

    /// Make every write so far durable (synced to the disk unless [`Config::fsync`] is off).
    pub fn flush(&self) -> Result<()> {
        self.backend().flush()
    }

    pub(crate) fn user_id(&self, user: &str) -> Result<u32> {
        self.state()?
            .users
            .get(self.backend(), user)?
            .ok_or_else(|| Error::UnknownUser(user.to_owned()))
    }

    pub(crate) fn item_id(&self, item: &str) -> Result<u32> {
        self.state()?
            .items
            .get(self.backend(), item)?
            .ok_or_else(|| Error::UnknownItem(item.to_owned()))
    }

    /// The external id of a dense id (`#N` if it has none: a row past the map).
    pub(crate) fn item_name(&self, item: u32) -> Result<String> {
        let name = self.state()?.items.name(self.backend(), item)?;
        Ok(name.unwrap_or_else(|| format!("#{item}")))
    }

    pub(crate) fn user_name(&self, user: u32) -> Result<String> {
        let name = self.state()?.users.name(self.backend(), user)?;
        Ok(name.unwrap_or_else(|| format!("#{user}")))
    }

    /// A user's events in time order (dense ids), for queries and jobs.
    pub(crate) fn history_dense(&self, user: u32) -> Result<Vec<Event>> {
        let st = self.state()?;
        st.log.history(self.backend(), user)
    }

    /// A user's events in time order.
    pub fn history(&self, user: &str) -> Result<Vec<HistoryEntry>> {
        let st = self.state()?;
        let uid = st
            .users
            .get(self.backend(), user)?
            .ok_or_else(|| Error::UnknownUser(user.to_owned()))?;
        let evs = st.log.history(self.backend(), uid)?;
        evs.into_iter()
            .map(|e| {
                Ok(HistoryEntry {
                    item: st
                        .items
                        .name(self.backend(), e.item)?
                        .unwrap_or_else(|| "?".to_owned()),
                    kind: e.kind,
                    value: e.value,
                    timestamp: e.timestamp,
                })
            })
            .collect()
    }

    /// The attributes of an item (an item known only from events has empty ones).
    pub fn item(&self, id: &str) -> Result<ItemRecord> {
        let iid = self.item_id(id)?;
        Ok(
            attrs::get_item(self.backend(), iid, id)?.unwrap_or_else(|| ItemRecord {
                id: id.to_owned(),
                ..Default::default()
            }),
        )
    }

    /// The attributes of a user.
    pub fn user(&self, id: &str) -> Result<UserRecord> {
        let uid = self.user_id(id)?;
        Ok(
            attrs::get_user(self.backend(), uid, id)?.unwrap_or_else(|| UserRecord {
                id: id.to_owned(),
                ..Default::default()
            }),
        )
    }

    /// The dense id (the row in a users or items table) of external id `id` in
    /// `space`: one bucket of the id map is read, not the map. `None` for an unknown
    /// id, and for [`RowSpace::Other`](crate::RowSpace::Other) (its rows are named by the table).
    pub fn dense_id(&self, space: crate::RowSpace, id: &str) -> Result<Option<u32>> {
        let st = self.state()?;
        match space {
            crate::RowSpace::Items => st.items.get(self.backend(), id),
            crate::RowSpace::Users => st.users.get(self.backend(), id),
            crate::RowSpace::Other => Ok(None),
        }
    }

    /// External ids of all items, by dense id (reads the whole map).
    pub fn item_ids(&self) -> Result<Vec<String>> {
        self.state()?.items.all_names(self.backend())
    }

    /// External ids of all users, by dense id (reads the whole map).
    pub fn user_ids(&self) -> Result<Vec<String>> {
        self.state()?.users.all_names(self.backend())
    }
}

/// A pool of `n` named threads: the database's own, or one job's (`threads` option).
pub(crate) fn thread_pool(n: usize) -> Result<rayon::ThreadPool> {
    crate::jobs::check_threads(n)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("recdb-{i}"))
        .build()
        .map_err(|e| Error::system("thread pool", std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::meta::write_format;

    #[test]
    fn newer_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(Db::open(&path).unwrap());
        {
            let b = SledBackend::open(&path, 1 << 20).unwrap();
            write_format(&b, meta::FORMAT + 1).unwrap();
            b.flush().unwrap();
        }
        match Db::open(&path) {
            Err(Error::UnsupportedFormat { found, supported }) => {
                assert_eq!(found, format!("format {}", meta::FORMAT + 1));
                assert_eq!(supported, meta::FORMAT);
            }
            other => panic!("expected UnsupportedFormat, got {other:?}"),
        }
    }

    #[test]
    fn interrupted_jobs_and_orphan_blocks_are_cleaned_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = Db::open(&path).unwrap();
            let mut batch = db.batch();
            batch
                .push("u", "i", crate::EventKind::View, 1.0, 0)
                .unwrap();
            batch.commit().unwrap();
            // A job that "crashed": its record says running, its blocks never got a catalog entry.
            let mut batch = WriteBatch::default();
            job_store::put(
                &mut batch,
                &job_store::JobRecord {
                    id: 77,
                    model: "als".into(),
                    state: 1,
                    ..Default::default()
                },
            );
            db.backend().apply(batch).unwrap();
            crate::storage::tables::write_blocks(db.backend(), "als.items", 99, 2, &[1.0, 2.0])
                .unwrap();
            let mut orphan = WriteBatch::default();
            orphan.put(
                crate::storage::keys::index_block("als.items", 99, 0),
                vec![1u8],
            );
            db.backend().apply(orphan).unwrap();
            db.flush().unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.job(77).unwrap().state, crate::JobState::Interrupted);
        assert!(db.backend().keys_with_prefix(b"T").unwrap().is_empty());
        assert!(db.backend().keys_with_prefix(b"X").unwrap().is_empty());
        db.check().unwrap();
    }

    /// Flip one byte in every stored value, one at a time: reopening and checking must
    /// report it (never panic, never pass).
    #[test]
    fn every_corrupted_value_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = Db::open(&path).unwrap();
            let mut batch = db.batch();
            for u in 0..70 {
                for i in 0..5 {
                    batch
                        .push(
                            &format!("u{u}"),
                            &format!("i{}", (u + i) % 9),
                            crate::EventKind::Rating,
                            3.0,
                            i as i64,
                        )
                        .unwrap();
                }
            }
            batch.commit().unwrap();
            db.put_items(&[crate::ItemRecord {
                id: "i1".into(),
                title: Some("One".into()),
                ..Default::default()
            }])
            .unwrap();
            db.put_users(&[crate::UserRecord {
                id: "u1".into(),
                attrs: vec![("age".into(), "3".into())],
            }])
            .unwrap();
            db.train("popular", &crate::Params::new(), &Default::default())
                .unwrap();
        }
        let keys: Vec<Vec<u8>> = {
            let b = SledBackend::open(&path, 1 << 20).unwrap();
            b.scan_prefix(b"")
                .unwrap()
                .into_iter()
                .map(|(k, _)| k.to_vec())
                .collect()
        };
        assert!(keys.len() > 10);
        for key in keys {
            let original = {
                let b = SledBackend::open(&path, 1 << 20).unwrap();
                let v = b.get(&key).unwrap().unwrap();
                let mut bad = v.to_vec();
                let at = bad.len() / 2;
                bad[at] ^= 0x10;
                let mut w = WriteBatch::default();
                w.put(key.clone(), bad);
                b.apply(w).unwrap();
                b.flush().unwrap();
                v
            };
            let outcome = Db::open(&path).and_then(|db| db.check().map(|_| ()));
            match outcome {
                Err(Error::Corrupted { .. } | Error::UnsupportedFormat { .. }) => {}
                other => panic!(
                    "flipped byte in key {:?} gave {other:?}",
                    String::from_utf8_lossy(&key)
                ),
            }
            let b = SledBackend::open(&path, 1 << 20).unwrap();
            let mut w = WriteBatch::default();
            w.put(key, original);
            b.apply(w).unwrap();
            b.flush().unwrap();
        }
        Db::open(&path).unwrap().check().unwrap();
    }
}
