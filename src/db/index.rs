//! Vector indexes as the database serves them: options, what a version serves (its
//! index and its delta), searchers, and the per-table caches. Building is a
//! maintenance job (`index_jobs.rs`); rows put since publish live in a delta (`delta.rs`).

use std::sync::Arc;

use super::delta::Delta;
use super::tables::TableOutput;
use super::Db;
use super::TailEntry;
use crate::index::stored as store;
use crate::index::{exact_group, merge_hits, ExactSearch, IvfIndex, Metric, Tail, VectorSearch};
use crate::storage::jobs::JobState;
use crate::storage::tables::{self, RowSpace, TableView};
use crate::{Error, Result};

/// How to build an index ([`Db::build_index`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexOptions {
    /// Cosine serves `similar`; Dot (inner product, MIPS) serves `recommend`.
    pub metric: Metric,
    /// Coarse lists; default about 4·√N.
    pub lists: Option<usize>,
    /// Bits per dimension of the residual codes: 4 (one fast-scan code, the default) or
    /// 8 (two: the second codes the first one's error; twice the bytes and scan time,
    /// for more exact candidate scores).
    pub bits: u8,
    /// Fraction of the rows (those nearest a list boundary) also placed in a second list:
    /// fewer lists scanned for the same recall, for one more code and id per such row
    /// (docs/INDEX.md, "Spilled rows"). 0 places every row once.
    pub spill: f32,
    /// Recall@10 the tuned `nprobe` must reach on a held-out sample of the table's rows.
    pub target_recall: f32,
    /// Candidate entries reranked exactly for k = 10 (scaled with k), in
    /// [`RERANK_RANGE`](Self::RERANK_RANGE); `None`: tuned with `nprobe`, deeper only
    /// where the codes cannot tell rows apart (docs/INDEX.md, "Tuning").
    pub rerank: Option<usize>,
    /// Seeds the k-means sample, its initial centroids and the tuning sample.
    pub seed: u64,
    /// Threads for this build; `None` uses the database's pool.
    pub threads: Option<usize>,
    /// Remember these options for the table: every later publish of it rebuilds its
    /// index in the background with them (the shell's `index build` sets it).
    pub rebuild_on_publish: bool,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            metric: Metric::Cosine,
            lists: None,
            bits: 4,
            spill: crate::index::SPILL,
            target_recall: 0.95,
            rerank: None,
            seed: 42,
            threads: None,
            rebuild_on_publish: false,
        }
    }
}

impl IndexOptions {
    /// The rerank depths [`IndexOptions::rerank`] accepts.
    pub const RERANK_RANGE: std::ops::RangeInclusive<usize> = crate::index::RERANK_RANGE;

    /// Checked before a job record exists, so a bad option leaves no trace.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(r) = self.rerank {
            if !Self::RERANK_RANGE.contains(&r) {
                return Err(Error::param(
                    "rerank",
                    format!(
                        "{r}: must be between {} and {}",
                        Self::RERANK_RANGE.start(),
                        Self::RERANK_RANGE.end()
                    ),
                ));
            }
        }
        if !(self.target_recall > 0.0 && self.target_recall <= 1.0) {
            return Err(Error::param("target_recall", "must be in (0, 1]"));
        }
        crate::index::code_stages_for(self.bits)?;
        if !(0.0..=1.0).contains(&self.spill) {
            return Err(Error::param("spill", "must be in [0, 1]"));
        }
        if self.lists == Some(0) {
            return Err(Error::param("lists", "must be at least 1"));
        }
        if let Some(n) = self.threads {
            crate::train::params::check_threads(n)?;
        }
        Ok(())
    }

    /// [`IndexOptions::validate`], and fixed `lists` within the rows the index of
    /// `view` would hold: a user's build is refused before its job is recorded.
    pub(crate) fn validate_for(&self, view: &TableView) -> Result<()> {
        self.validate()?;
        if let Some(lists) = self.lists {
            crate::index::check_lists(lists, crate::index::indexable_rows(view, self.metric))?;
        }
        Ok(())
    }
}

/// What an index holds and how it was tuned.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexInfo {
    pub table: String,
    pub version: u64,
    pub metric: Metric,
    pub rows: u64,
    /// Rows also placed in a second list (near a list boundary; see docs/INDEX.md).
    pub spilled: u64,
    pub lists: u64,
    /// Bits per dimension of the codes (4 or 8).
    pub bits: u8,
    /// Lists scanned per query (tuned).
    pub nprobe: u64,
    /// Candidates reranked exactly for k = 10.
    pub rerank: u64,
    pub target_recall: f32,
    /// Recall@10 at `nprobe` on the tuning sample.
    pub recall: f32,
    /// Every list is probed (`nprobe` = `lists`): queries scan every row exactly, as no
    /// operating point below that reached `target_recall` (or there is one list).
    pub exhaustive: bool,
    pub build_seconds: f64,
    /// Bytes of the in-memory index (codes, ids, centroids).
    pub bytes: u64,
    /// Rows placed in the lists by compactions since k-means trained the centroids (0
    /// after a build; a rebuild follows once they are a tenth of the rows).
    pub placed: u64,
}

/// A search over one table version; see [`Db::searcher`].
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub k: usize,
    pub metric: Metric,
    /// Ignore the index and scan every row.
    pub exact: bool,
    /// Lists to scan instead of the tuned number.
    pub nprobe: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            k: 10,
            metric: Metric::Cosine,
            exact: false,
            nprobe: None,
        }
    }
}

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
            if let Some(v) = d.row(r as u32) {
                return Some(v.to_vec());
            }
            if d.hides(r as u32) {
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

pub(crate) fn check_query(query: &[f32], dim: usize) -> Result<()> {
    if query.len() != dim {
        return Err(Error::DimensionMismatch {
            expected: dim,
            got: query.len(),
        });
    }
    if query.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidInput("query has a non-finite value".into()));
    }
    if query.iter().all(|&x| x == 0.0) {
        return Err(Error::ZeroVector("the query".into()));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn search_view(
    view: &TableView,
    index: Option<&IvfIndex>,
    q: &[f32],
    metric: Metric,
    k: usize,
    exact: bool,
    nprobe: Option<usize>,
    allow: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    match index {
        Some(ix) if !exact && ix.metric == metric => match nprobe {
            Some(np) => ix.search_with(view, q, k, allow, np),
            None => ix.search(view, q, metric, k, allow),
        },
        _ => ExactSearch.search(view, q, metric, k, allow),
    }
}

pub(crate) fn info_of(view: &TableView, ix: &IvfIndex) -> IndexInfo {
    IndexInfo {
        table: view.name().to_owned(),
        version: view.version(),
        metric: ix.metric,
        rows: ix.len() as u64,
        spilled: ix.spilled() as u64,
        lists: ix.lists as u64,
        bits: ix.bits(),
        nprobe: ix.nprobe as u64,
        rerank: ix.rerank as u64,
        target_recall: ix.target_recall,
        recall: ix.recall,
        exhaustive: ix.nprobe >= ix.lists,
        build_seconds: ix.build_seconds,
        bytes: ix.bytes() as u64,
        placed: ix.placed as u64,
    }
}

impl Db {
    /// The index of a table version, loaded (and validated) on first use and cached.
    pub(crate) fn index_of(&self, view: &TableView) -> Result<Option<Arc<IvfIndex>>> {
        let mut cache = self.inner.indexes.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut cache = self.inner.indexes.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut cache = self.inner.tails.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut cache = self.inner.tails.lock().unwrap_or_else(|e| e.into_inner());
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
            return Err(Error::Empty(format!("no rows for table `{name}`")));
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
        let mut rec = self.start_record_named("import", params, 0)?;
        let out = TableOutput {
            name: name.to_owned(),
            space,
            dim,
            rows: rows.to_vec(),
            offset: 0.0,
            row_ids,
        };
        rec.state = JobState::Done as u8;
        rec.progress = 1.0;
        rec.message = "published".into();
        rec.finished_unix = crate::storage::meta::now_unix();
        match self.publish(std::slice::from_ref(&out), &mut rec) {
            Ok(()) => Ok(self.table(name)?.version()),
            Err(e) => {
                self.fail_record(&mut rec, &e)?;
                Err(e)
            }
        }
    }
}
