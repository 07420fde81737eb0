//! Vector indexes as the database serves them: build (tuned to a target recall),
//! persistence tied to a table version, the per-table cache, and searchers.

use std::sync::Arc;

use super::tables::TableOutput;
use super::Db;
use crate::index::{ExactSearch, IvfIndex, Metric, VectorSearch};
use crate::storage::index as store;
use crate::storage::jobs::JobState;
use crate::storage::tables::{self, RowSpace, TableView};
use crate::{Error, Result};

/// How to build an index ([`Db::build_index`]).
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Cosine serves `similar`; Dot (inner product, MIPS) serves `recommend`.
    pub metric: Metric,
    /// Coarse lists; default about 4·√N.
    pub lists: Option<usize>,
    /// Recall@10 the tuned `nprobe` must reach on a held-out sample of the table's rows.
    pub target_recall: f32,
    /// Seeds the k-means sample, its initial centroids and the tuning sample.
    pub seed: u64,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            metric: Metric::Cosine,
            lists: None,
            target_recall: 0.95,
            seed: 42,
        }
    }
}

/// What an index holds and how it was tuned.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexInfo {
    pub table: String,
    pub version: u64,
    pub metric: Metric,
    pub rows: u64,
    pub lists: u64,
    /// Lists scanned per query (tuned).
    pub nprobe: u64,
    /// Candidates reranked exactly for k = 10.
    pub rerank: u64,
    pub target_recall: f32,
    /// Recall@10 at `nprobe` on the tuning sample.
    pub recall: f32,
    pub build_seconds: f64,
    /// Bytes of the in-memory index (codes, ids, centroids).
    pub bytes: u64,
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

/// One table version with its index (if it has one): cheap to clone, unchanged by
/// later publishes.
#[derive(Debug, Clone)]
pub struct TableSearcher {
    view: Arc<TableView>,
    index: Option<Arc<IvfIndex>>,
}

impl TableSearcher {
    pub fn view(&self) -> &TableView {
        &self.view
    }
    /// The metric of the version's index, if it has one.
    pub fn index_metric(&self) -> Option<Metric> {
        self.index.as_ref().map(|i| i.metric)
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
        if query.len() != self.view.dim() {
            return Err(Error::DimensionMismatch {
                expected: self.view.dim(),
                got: query.len(),
            });
        }
        if query.iter().any(|x| !x.is_finite()) {
            return Err(Error::InvalidInput("query has a non-finite value".into()));
        }
        if query.iter().all(|&x| x == 0.0) {
            return Err(Error::ZeroVector("the query".into()));
        }
        Ok(search_view(
            &self.view,
            self.index.as_deref(),
            query,
            opts.metric,
            opts.k,
            opts.exact,
            opts.nprobe,
            allow,
        ))
    }
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

fn info_of(view: &TableView, ix: &IvfIndex) -> IndexInfo {
    IndexInfo {
        table: view.name().to_owned(),
        version: view.version(),
        metric: ix.metric,
        rows: ix.len() as u64,
        lists: ix.lists as u64,
        nprobe: ix.nprobe as u64,
        rerank: ix.rerank as u64,
        target_recall: ix.target_recall,
        recall: ix.recall,
        build_seconds: ix.build_seconds,
        bytes: ix.bytes() as u64,
    }
}

impl Db {
    /// Build the index of the current version of `table`, tune `nprobe` to reach
    /// `target_recall`, store it (replacing the version's previous index) and serve it.
    /// Durable on return. Runs on the database's pool.
    pub fn build_index(&self, table: &str, opts: &IndexOptions) -> Result<IndexInfo> {
        if !(opts.target_recall > 0.0 && opts.target_recall <= 1.0) {
            return Err(Error::param("target_recall", "must be in (0, 1]"));
        }
        let view = self.table(table)?;
        let started = std::time::Instant::now();
        let mut ix = self.inner.pool.install(|| -> Result<IvfIndex> {
            let mut ix = IvfIndex::build(&view, opts.metric, opts.lists, opts.seed)?;
            ix.tune(&view, opts.target_recall);
            Ok(ix)
        })?;
        ix.build_seconds = started.elapsed().as_secs_f64();
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
        self.inner
            .indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(table.to_owned(), (view.version(), Some(Arc::new(ix))));
        Ok(info)
    }

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
        .map(|(h, ids, codes)| Arc::new(IvfIndex::from_stored(h, ids, codes)));
        cache.insert(view.name().to_owned(), (view.version(), ix.clone()));
        Ok(ix)
    }

    /// The index of the current version of `table`, if it has one.
    pub fn index_info(&self, table: &str) -> Result<Option<IndexInfo>> {
        let view = self.table(table)?;
        Ok(self.index_of(&view)?.map(|ix| info_of(&view, &ix)))
    }

    /// The current version of `table` with its index, for raw-vector queries.
    pub fn searcher(&self, table: &str) -> Result<TableSearcher> {
        let view = self.table(table)?;
        let index = self.index_of(&view)?;
        Ok(TableSearcher { view, index })
    }

    /// Publish vectors trained elsewhere as a new version of `name` (a job record with
    /// model `import`). `rows` is row-major with `dim` columns. `row_ids` name the rows
    /// of a `RowSpace::Other` table (empty: `0..N`); users and items tables are indexed
    /// by dense id and take none. Returns the new version. Durable on return.
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
