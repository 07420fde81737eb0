//! What a caller asks of an index and learns from it: build options (checked before a
//! job exists), the built index's description, search options, and the one search
//! step every served version takes (index or exact scan).

use super::{ExactSearch, IvfIndex, Metric, VectorSearch};
use crate::storage::tables::TableView;
use crate::{Error, Result};

/// How to build an index ([`Db::build_index`](crate::Db::build_index)).
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
    /// Progress sink and cancel flag of the build.
    #[serde(skip)]
    pub control: crate::jobs::JobControl,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            metric: Metric::Cosine,
            lists: None,
            bits: 4,
            spill: super::SPILL,
            target_recall: 0.95,
            rerank: None,
            seed: 42,
            threads: None,
            rebuild_on_publish: false,
            control: crate::jobs::JobControl::default(),
        }
    }
}

impl IndexOptions {
    /// The rerank depths [`IndexOptions::rerank`] accepts.
    pub const RERANK_RANGE: std::ops::RangeInclusive<usize> = super::RERANK_RANGE;

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
        super::code_stages_for(self.bits)?;
        if !(0.0..=1.0).contains(&self.spill) {
            return Err(Error::param("spill", "must be in [0, 1]"));
        }
        if self.lists == Some(0) {
            return Err(Error::param("lists", "must be at least 1"));
        }
        if let Some(n) = self.threads {
            crate::jobs::check_threads(n)?;
        }
        Ok(())
    }

    /// [`IndexOptions::validate`], and fixed `lists` within the rows the index of
    /// `view` would hold: a user's build is refused before its job is recorded.
    pub(crate) fn validate_for(&self, view: &TableView) -> Result<()> {
        self.validate()?;
        if let Some(lists) = self.lists {
            super::check_lists(lists, super::indexable_rows(view, self.metric))?;
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

/// A search over one table version; see [`Db::searcher`](crate::Db::searcher).
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
