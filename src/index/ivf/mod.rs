//! `IvfIndex`: an inverted-file index with 4-bit residual codes (fast scan) and exact rerank.
//!
//! Build: rows (normalised for cosine; for inner product extended with the MIPS
//! coordinate `√(φ² − ‖x‖²)`, φ the largest norm, so that L2 neighbours in the extended
//! space are the largest inner products) are partitioned by k-means into `lists`
//! lists; each list stores its row ids and the 4-bit codes ([`Sq4`]) of the rows'
//! residuals to its centroid (one per dimension, or two for 8 bits), packed in 32-row
//! fast-scan blocks.
//!
//! Query: score the centroids, scan the `nprobe` best lists with the `pshufb` kernel
//! (the filter is applied inside the scan), keep the `rerank` best candidates, and
//! rescore them exactly from the f32 rows of the table; fewer than k rows from the
//! probed lists fall back to the exact scan. A selective filter (fewer than
//! [`SELECTIVE`] of a sample of rows pass) falls back to an exact scan of the allowed
//! rows; a milder one widens `nprobe` by the inverse of the passing fraction.

use super::kernels::{dot, dots_f32};
use super::sq4::Sq4;
use super::{ExactSearch, Metric, VectorSearch};
use crate::storage::tables::TableView;

mod batch;
mod build;
pub(crate) use build::{check_lists, indexable_rows};
mod carry;
mod persist;
mod search;
mod tune;
#[cfg(test)]
pub(crate) use tune::BUILT;
pub(crate) use tune::{Shortfall, RERANK_RANGE, TUNED};

/// Below this fraction of passing rows a filtered query is answered exactly.
pub(crate) const SELECTIVE: f32 = 0.02;
/// Rows sampled (evenly spaced) to estimate a filter's passing fraction.
const FILTER_SAMPLE: usize = 256;
/// Candidate entries reranked exactly for k = 10 (scaled with k) before tuning, and the
/// tuner's first depth (`ivf/tune.rs` goes deeper where the codes tie). Measured on the
/// benchmark data (docs/INDEX.md): without spilled rows 50 reached the recall of 100 within
/// 0.002 up to 0.99, at a lower cost (each candidate is a random 256-byte read of the
/// table); a spilled row can take two entries, and with 30 % of the rows spilled 65
/// entries (about 50 distinct rows) gave +0.006 recall over 50 at equal nprobe at 1M,
/// and 80 not enough more to pay for its reads (docs/HISTORY.md, index stop 15).
pub(crate) const RERANK: usize = 65;
/// How far ahead of a single query's scan its lists' codes are prefetched (into L2). At
/// 1M rows the codes (32 MB) are in memory, not cache, and a list is too short for the
/// hardware prefetcher to ramp up; leads of 8-64 KB measured alike (docs/HISTORY.md,
/// index stop 14).
const LEAD: usize = 16 << 10;
/// Progress of a build when k-means, the assignment, the spill, the encoding and the
/// tuning end.
const KMEANS_END: f64 = 0.4;
const ASSIGN_END: f64 = 0.5;
const SPILL_END: f64 = 0.53;

pub(crate) struct IvfIndex {
    pub metric: Metric,
    pub dim: usize,
    pub lists: usize,
    pub nprobe: usize,
    pub rerank: usize,
    pub phi: f32,
    pub seed: u64,
    pub target_recall: f32,
    pub recall: f32,
    pub build_seconds: f64,
    /// Rows placed in the lists by [`IvfIndex::carry_over`] since k-means ran.
    pub placed: usize,
    table_rows: usize,
    /// Distinct rows in the lists (a spilled row has two entries in `ids`).
    rows: usize,
    centroids: Vec<f32>,
    half: Vec<f32>,
    sq: Sq4,
    offsets: Vec<u32>,
    /// First fast-scan block of each list (`lists + 1`), derived from `offsets`.
    blocks: Vec<u32>,
    /// A dot index's centroid coordinates on the MIPS axis (empty for cosine), derived
    /// from `half` (‖c‖²/2 over the build's width) and `centroids` (the first `dim`).
    axis: Vec<f32>,
    ids: Vec<u32>,
    codes: Vec<u8>,
}

impl std::fmt::Debug for IvfIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvfIndex")
            .field("metric", &self.metric)
            .field("lists", &self.lists)
            .field("nprobe", &self.nprobe)
            .field("rows", &self.ids.len())
            .finish()
    }
}

/// The centroids' coordinates on the MIPS axis of a dot index (empty for cosine):
/// `half` is ‖c‖²/2 over the build's `dim + 1` coordinates, so the last one is
/// √(2·half − ‖c[..dim]‖²) (non-negative, as every row's is).
fn mips_axis(metric: Metric, centroids: &[f32], half: &[f32], dim: usize) -> Vec<f32> {
    if metric != Metric::Dot {
        return Vec::new();
    }
    centroids
        .chunks_exact(dim.max(1))
        .zip(half)
        .map(|(c, h)| (2.0 * h - dot(c, c)).max(0.0).sqrt())
        .collect()
}

/// Default number of lists: about 4·√N.
// why: a rounded count, clamped to 1..=n.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn default_lists(n: usize) -> usize {
    ((4.0 * (n as f64).sqrt()).round() as usize).clamp(1, n.max(1))
}
impl IvfIndex {
    /// Rows in the index.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Rows with a second entry (spilled, see `index::spill`).
    pub fn spilled(&self) -> usize {
        self.ids.len() - self.rows
    }

    /// Bits per dimension of the codes (4 or 8).
    pub fn bits(&self) -> u8 {
        self.sq.bits()
    }

    /// Bytes held in memory per indexed row (codes, ids, and the shared parts).
    pub fn bytes(&self) -> usize {
        self.codes.len()
            + 4 * (self.ids.len()
                + self.offsets.len()
                + self.blocks.len()
                + self.centroids.len()
                + self.half.len())
            + 8 * self.dim
    }

    /// Whether this index answers `metric` queries on `table` (built on its rows).
    pub fn serves(&self, table: &TableView, metric: Metric) -> bool {
        metric == self.metric && table.rows() == self.table_rows && table.dim() == self.dim
    }

    /// The list a new row `v` falls in, as the build would have placed it (for a dot
    /// index with the MIPS coordinate, taken as 0 past the norm φ); `None` for a zero row
    /// of a cosine index.
    // why: list numbers are below `lists`, a u32 in the stored header.
    #[allow(clippy::cast_possible_truncation)]
    pub fn place(&self, v: &[f32]) -> Option<u32> {
        let n2 = dot(v, v);
        let (x, extra) = match self.metric {
            Metric::Cosine if n2 == 0.0 => return None,
            Metric::Cosine => {
                let n = n2.sqrt();
                (v.iter().map(|a| a / n).collect(), 0.0)
            }
            Metric::Dot => (v.to_vec(), (self.phi * self.phi - n2).max(0.0).sqrt()),
        };
        let mut cs = vec![0f32; self.lists];
        dots_f32(&self.centroids, &x, &mut cs);
        let axis = |l: usize| self.axis.get(l).map_or(0.0, |a| extra * a);
        (0..self.lists)
            .map(|l| (cs[l] + axis(l) - self.half[l], l))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, l)| l as u32)
    }

    /// The lists of every indexed row (row → its one or two lists), for tests.
    #[cfg(test)]
    pub fn lists_of_rows(&self) -> std::collections::HashMap<u32, Vec<u32>> {
        let mut out: std::collections::HashMap<u32, Vec<u32>> = Default::default();
        for l in 0..self.lists {
            let (lo, hi) = (self.offsets[l] as usize, self.offsets[l + 1] as usize);
            for &r in &self.ids[lo..hi] {
                out.entry(r).or_default().push(l as u32);
            }
        }
        out
    }
}

impl VectorSearch for IvfIndex {
    fn search(
        &self,
        table: &TableView,
        query: &[f32],
        metric: Metric,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        if !self.serves(table, metric) {
            return ExactSearch.search(table, query, metric, k, allow);
        }
        self.search_with(table, query, k, allow, self.nprobe)
    }
}
