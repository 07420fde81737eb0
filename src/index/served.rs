//! What one table version serves — its rows, its index and its delta — and the public
//! searcher over it. A value never changes: a query that took one answers from one whole
//! version.

use std::sync::Arc;

use super::replay::Delta;
use super::serve::{check_query, search_view, SearchOptions};
use super::{exact_group, merge_hits, IvfIndex, Metric, Tail};
use crate::storage::tables::TableView;
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
    /// The stored version.
    pub fn view(&self) -> &TableView {
        &self.view
    }

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

/// One table version with its index and delta: cheap to clone, unchanged by later
/// publishes and row updates.
#[derive(Debug, Clone)]
pub struct TableSearcher {
    pub(crate) served: Served,
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
