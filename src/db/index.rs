//! Vector indexes as the database serves them: the per-table caches of indexes, deltas
//! and tails, and the `Db` methods over `index::served` (what a version serves and its
//! searcher). Options and the search step live in `index::serve`; building is a
//! maintenance job (`index_jobs.rs`); row updates are `delta.rs`.

use crate::error::OrPoisoned;
use std::sync::Arc;

use super::Db;
use super::TailEntry;
use crate::index::replay::Delta;
pub(crate) use crate::index::serve::info_of;
pub use crate::index::serve::{IndexInfo, IndexOptions, SearchOptions};
pub(crate) use crate::index::served::Served;
pub use crate::index::served::TableSearcher;
use crate::index::stored as store;
use crate::index::{IvfIndex, Tail};
use crate::jobs::TableOutput;
use crate::storage::tables::{self, RowSpace, TableView};
use crate::{Error, Result};

impl Db {
    /// Measure the index of `table` with `queries` (row-major, the table's dim): for each
    /// operating point, recall@k against exact search and per-thread QPS. The table's
    /// delta (rows written since publish) takes part like in any query.
    pub fn bench_index(
        &self,
        table: &str,
        queries: &[f32],
        opts: &crate::IndexBenchOptions,
    ) -> Result<crate::IndexBench> {
        if opts.k == 0 {
            return Err(Error::param("k", "must be at least 1"));
        }
        crate::jobs::check_threads(opts.threads)?;
        let view = self.table(table)?;
        let served = self.served(view.clone())?;
        let Some(ix) = served.index.clone() else {
            return Err(Error::InvalidInput(format!(
                "table `{table}` version {} has no index (run `index build {table}` first)",
                view.version()
            )));
        };
        crate::index::bench::bench_index(&view, &ix, &served, queries, opts)
    }

    /// The index of a table version, loaded (and validated) on first use and cached.
    pub(crate) fn index_of(&self, view: &TableView) -> Result<Option<Arc<IvfIndex>>> {
        let mut cache = self.inner.indexes.lock().or_poisoned("index cache")?;
        if let Some((v, ix)) = cache.get(view.name()) {
            if *v == view.version() {
                return Ok(ix.clone());
            }
        }
        let ix = store::load(
            self.backend(),
            view.name(),
            view.version(),
            view.rows(),
            view.dim(),
        )?
        .map(|l| IvfIndex::from_stored(l).map(Arc::new))
        .transpose()?;
        // An older version (a reader that started before a publish) does not evict the
        // current one.
        if cache
            .get(view.name())
            .is_none_or(|(v, _)| *v < view.version())
        {
            cache.insert(view.name().to_owned(), (view.version(), ix.clone()));
        }
        Ok(ix)
    }

    /// Serve a freshly built index of `view` (after it was stored).
    pub(crate) fn install_index(&self, view: &TableView, ix: Arc<IvfIndex>) {
        self.install_if(view, ix, |cached| cached <= view.version());
    }

    /// [`Db::install_index`] unless `view`'s version is cached already: a compaction's
    /// carried index must not replace a rebuild of the same version that finished first
    /// (or the stored index a query loaded meanwhile, which is the same one).
    pub(crate) fn install_index_if_absent(&self, view: &TableView, ix: Arc<IvfIndex>) {
        self.install_if(view, ix, |cached| cached < view.version());
    }

    fn install_if(&self, view: &TableView, ix: Arc<IvfIndex>, over: impl Fn(u64) -> bool) {
        let mut cache = self.inner.indexes.lock().recover();
        if cache.get(view.name()).is_none_or(|(v, _)| over(*v)) {
            cache.insert(view.name().to_owned(), (view.version(), Some(ix)));
        }
    }

    /// A table version with its index and delta.
    pub(crate) fn served(&self, view: Arc<TableView>) -> Result<Served> {
        let index = self.index_of(&view)?;
        let delta = self.delta_of(&view)?;
        let tail = match (&index, &delta) {
            (Some(ix), Some(d)) => Some(self.tail_of(&view, ix, d)),
            _ => None,
        };
        Ok(Served {
            view,
            index,
            delta,
            tail,
        })
    }

    /// The tail of (`ix`, `d`), the index and delta of `view`: cached, else placed from
    /// the delta's rows (the first query after an open or a build pays for it).
    fn tail_of(&self, view: &TableView, ix: &Arc<IvfIndex>, d: &Arc<Delta>) -> Arc<Tail> {
        let mut cache = self.inner.tails.lock().recover();
        if let Some(e) = cache.get(view.name()) {
            if e.version == view.version() && Arc::ptr_eq(&e.index, ix) && Arc::ptr_eq(&e.delta, d)
            {
                return e.tail.clone();
            }
        }
        let tail = Arc::new(Tail::default().apply(ix, &d.put_rows()));
        if cache
            .get(view.name())
            .is_none_or(|e| e.version < view.version() || d.ops() >= e.delta.ops())
        {
            cache.insert(
                view.name().to_owned(),
                TailEntry {
                    version: view.version(),
                    index: ix.clone(),
                    delta: d.clone(),
                    tail: tail.clone(),
                },
            );
        }
        tail
    }

    /// After an update turned delta `old` into `new`: carry the cached tail over by
    /// applying only the update's operations (`ops`), so updates cost their own rows.
    pub(crate) fn advance_tail(
        &self,
        view: &TableView,
        old: Option<&Arc<Delta>>,
        new: &Arc<Delta>,
        ops: &[(u32, Option<&[f32]>)],
    ) {
        let mut cache = self.inner.tails.lock().recover();
        let Some(e) = cache.get_mut(view.name()) else {
            return;
        };
        if e.version != view.version() || !old.is_some_and(|o| Arc::ptr_eq(o, &e.delta)) {
            return;
        }
        e.tail = Arc::new(e.tail.apply(&e.index, ops));
        e.delta = new.clone();
    }

    /// The index of the current version of `table`, if it has one.
    pub fn index_info(&self, table: &str) -> Result<Option<IndexInfo>> {
        let view = self.table(table)?;
        Ok(self.index_of(&view)?.map(|ix| info_of(&view, &ix)))
    }

    /// The current version of `table` with its index and delta, for raw-vector queries.
    pub fn searcher(&self, table: &str) -> Result<TableSearcher> {
        let view = self.table(table)?;
        Ok(TableSearcher {
            served: self.served(view)?,
        })
    }

    /// The external id of row `r` as `searcher` serves it (rows appended since publish
    /// included).
    pub fn searcher_row_id(&self, s: &TableSearcher, r: usize) -> String {
        self.served_row_id(&s.served, r)
    }

    /// Publish vectors trained elsewhere as a new version of `name` (a job record with
    /// model `import`). `rows` is row-major with `dim` columns. `row_ids` name the rows
    /// of a `RowSpace::Other` table (empty: `0..N`); users and items tables are indexed
    /// by dense id and take none. Returns the new version. Durable on return. The
    /// index policy of `docs/INDEX.md` may start a background index build.
    pub fn put_table(
        &self,
        name: &str,
        space: RowSpace,
        dim: usize,
        rows: &[f32],
        row_ids: Vec<String>,
    ) -> Result<u64> {
        tables::check_name(name)?;
        if dim == 0 {
            return Err(Error::param("dim", "must be at least 1"));
        }
        if rows.is_empty() {
            return Err(Error::EmptyTable {
                table: name.to_owned(),
                what: "rows",
            });
        }
        if !rows.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: rows.len() % dim,
            });
        }
        let n = rows.len() / dim;
        if !row_ids.is_empty() && (space != RowSpace::Other || row_ids.len() != n) {
            return Err(Error::param(
                "row_ids",
                format!("only an `other` table takes ids, one per row ({n})"),
            ));
        }
        let params = serde_json::json!({ "table": name, "dim": dim, "rows": n }).to_string();
        let out = TableOutput {
            name: name.to_owned(),
            space,
            dim,
            rows: rows.to_vec(),
            offset: 0.0,
            row_ids,
        };
        self.publish_job("import", params, out)?;
        Ok(self.table(name)?.version())
    }
}
