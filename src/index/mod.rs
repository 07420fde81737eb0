//! Vector search over a table: exact search (the ground truth) and the IVF index with
//! 4-bit residual codes and exact rerank (see `docs/INDEX.md`). Both implement [`VectorSearch`].
pub(crate) mod bench;
pub(crate) mod delta;
mod exact;
mod fastscan;
mod ivf;
mod kernels;
mod kmeans;
pub(crate) mod replay;
pub(crate) mod serve;
pub(crate) mod served;
// The one module with `unsafe` (AVX2 intrinsics, each block with a SAFETY comment).
#[allow(unsafe_code)]
mod simd;
mod spill;
mod sq4;
pub(crate) mod stored;
mod tail;
mod topk;

#[cfg(test)]
pub(crate) use exact::NormOrdered;
pub(crate) use exact::{exact_group, ExactSearch};
#[cfg(test)]
pub(crate) use ivf::BUILT;
pub(crate) use ivf::{check_lists, indexable_rows, IvfIndex, Shortfall, RERANK_RANGE, TUNED};
pub(crate) use kernels::dot;
pub(crate) use spill::SPILL;
pub(crate) use tail::Tail;
pub(crate) use topk::{merge_hits, TopK};

/// 4-bit codes per dimension (1 or 2) of a `dim`-dimensional index with these stored
/// levels, or `None` when the levels are unusable (the stored format checks this on
/// load).
pub(crate) fn code_stages(levels: &[f32], dim: usize) -> Option<usize> {
    sq4::Sq4::stages_of(levels, dim)
}

/// The stages of `bits` per dimension, else a parameter error (options are checked
/// with it before a job exists).
pub(crate) fn code_stages_for(bits: u8) -> crate::Result<usize> {
    sq4::Sq4::stages_for(bits)
}

/// Bytes of the packed codes of an index with these list offsets and `cols` code
/// columns per row (the stored format checks this on load).
pub(crate) fn code_bytes(offsets: &[u32], cols: usize) -> usize {
    fastscan::list_blocks(offsets)
        .last()
        .map_or(0, |&b| b as usize)
        * fastscan::block_bytes(cols)
}

use crate::storage::tables::TableView;

/// What a long index build tells its job and asks of it: progress, and whether to stop
/// (checked between k-means iterations, build phases and tuning probes).
pub(crate) trait BuildHooks {
    /// `fraction` (0..1) of the build done, and what it is doing.
    fn report(&self, fraction: f64, message: &str);
    /// Whether the job was asked to stop.
    fn cancelled(&self) -> bool;
    /// `Err(Cancelled)` once the job was asked to stop.
    fn check(&self) -> crate::Result<()> {
        if self.cancelled() {
            Err(crate::Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// No progress, never cancelled.
#[cfg(test)]
pub(crate) struct NoHooks;

#[cfg(test)]
impl BuildHooks for NoHooks {
    fn report(&self, _: f64, _: &str) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// How query and rows are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity (rows with zero norm never match).
    Cosine,
    /// Inner product (user → item scoring).
    Dot,
}

impl Metric {
    /// The metric's byte in a stored index header.
    pub(crate) fn stored_byte(self) -> u8 {
        match self {
            Metric::Cosine => 0,
            Metric::Dot => 1,
        }
    }

    /// The metric of a stored header's byte (validated ≤ 1 on load).
    pub(crate) fn from_stored_byte(b: u8) -> Metric {
        if b == 1 {
            Metric::Dot
        } else {
            Metric::Cosine
        }
    }
}

impl std::str::FromStr for Metric {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "dot" => Ok(Metric::Dot),
            _ => Err(crate::Error::param(
                "metric",
                format!("`{s}`: expected cosine or dot"),
            )),
        }
    }
}

/// Finds the `k` best rows of a table for a query, among the rows `allow` accepts.
pub(crate) trait VectorSearch: Send + Sync {
    fn search(
        &self,
        table: &TableView,
        query: &[f32],
        metric: Metric,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)>;
}

#[cfg(test)]
mod tests;
