//! Vector indexes as the database serves them: what a version serves (its index and its
//! delta), searchers, and the per-table caches. Options and the search step live in
//! `index::serve`; building is a maintenance job (`index_jobs.rs`); rows put since
//! publish live in a delta (`delta.rs`). `Served` stays here while the delta it holds
//! is a `db` type.

use crate::error::OrPoisoned;
use std::sync::Arc;

use super::delta::Delta;
use super::Db;
use super::TailEntry;
pub(crate) use crate::index::serve::{check_query, info_of, search_view};
pub use crate::index::serve::{IndexInfo, IndexOptions, SearchOptions};
use crate::index::stored as store;
use crate::index::{exact_group, merge_hits, IvfIndex, Metric, Tail};
use crate::jobs::TableOutput;
use crate::storage::tables::{self, RowSpace, TableView};
use crate::{Error, Result};

/// What one table version serves: its rows, its index (if built) and its delta (rows
/// put or deleted since publish, if any). Held by value, it never changes: a query
/// that took one answers from one whole version.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub view: Arc<TableView>,
    pub index: Option<Arc<IvfIndex>>,
    pub delta: Option<Arc<Delta>>,
    /// The delta's rows placed in the index's lists (when both exist).
    pub tail: Option<Arc<Tail>>,
}

impl Served {
    /// Rows the version serves, counting rows appended by the delta.
    pub fn rows(&self) -> usize {
        self.delta
            .as_ref()
            .map_or(self.view.rows(), |d| d.logical_rows())
    }
    /// Row `r` as the version serves it; `None` when deleted or never written.
    pub fn row(&self, r: usize) -> Option<Vec<f32>> {
        if let Some(d) = &self.delta {
            // A position past u32 is no row of any table.
            let r32 = u32::try_from(r).ok()?;
            if let Some(v) = d.row(r32) {
                return Some(v.to_vec());
            }
            if d.hides(r32) {
                return None;
            }
        }
        (r < self.view.rows()).then(|| self.view.row(r).to_vec())
    }
    /// The `k` best live rows among those `allow` accepts: the base (index or exact, the
    /// delta's hidden rows filtered inside the scan) merged with an exact scan of the
    /// delta's rows. `k` is first cut to the rows served, so no size a caller passes is
    /// allocated.
    pub fn search(
        &self,
        q: &[f32],
        metric: Metric,
        k: usize,
        exact: bool,
        nprobe: Option<usize>,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let k = k.min(self.rows());
        let Some(d) = &self.delta else {
            return search_view(
                &self.view,
                self.index.as_deref(),
                q,
                metric,
                k,
                exact,
                nprobe,
                allow,
            );
        };
        let base_allow = |r: u32| !d.hides(r) && allow(r);
        if let (Some(ix), Some(t)) = (&self.index, &self.tail) {
            if !exact && ix.serves(&self.view, metric) {
                // The delta's rows are scanned with the lists they fall in.
                let np = nprobe.unwrap_or(ix.nprobe);
                return ix.search_in(&self.view, Some((&**t, allow)), q, k, &base_allow, np);
            }
        }
        let hits = search_view(
            &self.view,
            self.index.as_deref(),
            q,
            metric,
            k,
            exact,
            nprobe,
            &base_allow,
        );
        merge_hits(hits, d.scan(q, metric, k, allow), k)
    }
}

impl Served {
    /// [`Served::search`] for every query of `qs` (answers in order) on the calling
    /// thread; `allow(i, r)`: whether row `r` may be returned to query `i`. The index
    /// and the exact scan each walk their data once per group of queries instead of once
    /// per query (see `index::ivf::batch`), with the same answers as one at a time.
    pub fn search_batch(
        &self,
        qs: &[&[f32]],
        metric: Metric,
        k: usize,
        exact: bool,
        nprobe: Option<usize>,
        allow: &dyn Fn(usize, u32) -> bool,
    ) -> Vec<Vec<(u32, f32)>> {
        let k = k.min(self.rows());
        let index = self
            .index
            .as_ref()
            .filter(|ix| !exact && ix.serves(&self.view, metric));
        match (index, &self.delta, &self.tail) {
            (Some(ix), None, _) => {
                let np = nprobe.unwrap_or(ix.nprobe);
                ix.search_batch(&self.view, None, qs, k, allow, np)
            }
            (Some(ix), Some(d), Some(t)) => {
                let np = nprobe.unwrap_or(ix.nprobe);
                let base = |i: usize, r: u32| !d.hides(r) && allow(i, r);
                ix.search_batch(&self.view, Some((&**t, allow)), qs, k, &base, np)
            }
            (None, None, _) => exact_group(&self.view, qs, metric, k, allow),
            _ => qs
                .iter()
                .enumerate()
                .map(|(i, q)| self.search(q, metric, k, exact, nprobe, &|r| allow(i, r)))
                .collect(),
        }
    }
}

impl crate::index::bench::Searched for Served {
    fn search(
        &self,
        q: &[f32],
        metric: Metric,
        k: usize,
        exact: bool,
        nprobe: Option<usize>,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        Served::search(self, q, metric, k, exact, nprobe, allow)
    }
    fn search_batch(
        &self,
        qs: &[&[f32]],
        metric: Metric,
        k: usize,
        exact: bool,
        nprobe: Option<usize>,
        allow: &dyn Fn(usize, u32) -> bool,
    ) -> Vec<Vec<(u32, f32)>> {
        Served::search_batch(self, qs, metric, k, exact, nprobe, allow)
    }
}

/// One table version with its index and delta: cheap to clone, unchanged by later
/// publishes and row updates.
#[derive(Debug, Clone)]
pub struct TableSearcher {
    served: Served,
}

impl TableSearcher {
    /// The version's stored rows (without the delta; see [`TableSearcher::row`]).
    pub fn view(&self) -> &TableView {
        &self.served.view
    }
    /// The metric of the version's index, if it has one.
    pub fn index_metric(&self) -> Option<Metric> {
        self.served.index.as_ref().map(|i| i.metric)
    }
    /// Rows served, rows appended since publish included.
    pub fn rows(&self) -> usize {
        self.served.rows()
    }
    /// Row `r` as served (`None`: deleted).
    pub fn row(&self, r: usize) -> Option<Vec<f32>> {
        self.served.row(r)
    }
    /// Operations applied since publish (0 without a delta).
    pub fn delta_ops(&self) -> u64 {
        self.served.delta.as_ref().map_or(0, |d| d.ops())
    }
    /// The `k` best rows for `query` as (row, score), best first. Uses the index when the
    /// version has one for `opts.metric` and `opts.exact` is off.
    pub fn search(&self, query: &[f32], opts: &SearchOptions) -> Result<Vec<(u32, f32)>> {
        self.search_filtered(query, opts, &|_| true)
    }
    /// [`TableSearcher::search`] among the rows `allow` accepts.
    pub fn search_filtered(
        &self,
        query: &[f32],
        opts: &SearchOptions,
        allow: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, f32)>> {
        if opts.k == 0 {
            return Err(Error::param("k", "must be at least 1"));
        }
        check_query(query, self.served.view.dim())?;
        Ok(self
            .served
            .search(query, opts.metric, opts.k, opts.exact, opts.nprobe, allow))
    }
}

impl TableSearcher {
    /// [`TableSearcher::search`] for many queries at once on the calling thread, answers
    /// in order: the same answers, at a higher throughput (the index reads each list, and
    /// the exact scan each stretch of rows, once for a whole group of queries).
    pub fn search_batch(
        &self,
        queries: &[&[f32]],
        opts: &SearchOptions,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        self.search_batch_filtered(queries, opts, &|_, _| true)
    }
    /// [`TableSearcher::search_batch`] where `allow(i, r)` says whether row `r` may be
    /// returned to query `i`.
    pub fn search_batch_filtered(
        &self,
        queries: &[&[f32]],
        opts: &SearchOptions,
        allow: &dyn Fn(usize, u32) -> bool,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        if opts.k == 0 {
            return Err(Error::param("k", "must be at least 1"));
        }
        let dim = self.served.view.dim();
        for (i, q) in queries.iter().enumerate() {
            check_query(q, dim)
                .map_err(|e| Error::param("queries", format!("query {}: {e}", i + 1)))?;
        }
        Ok(self
            .served
            .search_batch(queries, opts.metric, opts.k, opts.exact, opts.nprobe, allow))
    }
}

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
        crate::train::params::check_threads(opts.threads)?;
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
