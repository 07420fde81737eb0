//! Exact search: score every allowed row. The ground truth for any index.

use super::kernels::{dots_multi_le, scan_rows_le};
use super::{Metric, TopK, VectorSearch};
use crate::storage::tables::TableView;

pub(crate) struct ExactSearch;

impl VectorSearch for ExactSearch {
    // why: row numbers are below the table's row count, a u32 in the stored format
    // (proven once by the table, not per row).
    #[allow(clippy::cast_possible_truncation)]
    fn search(
        &self,
        table: &TableView,
        query: &[f32],
        metric: Metric,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut top = TopK::new(k);
        let qn = super::kernels::dot(query, query).sqrt();
        if metric == Metric::Cosine && qn == 0.0 {
            return Vec::new();
        }
        let (mut dots, mut norms2) = (Vec::new(), Vec::new());
        // Block by block: one SIMD call scores a whole stored block (dot and norm in
        // one pass over each row), then the scores go through the filter and the top-k.
        for (first, bytes) in table.blocks_le() {
            let count = bytes.len() / (4 * query.len()).max(1);
            dots.resize(count, 0.0);
            norms2.resize(count, 0.0);
            scan_rows_le(bytes, query, &mut dots, &mut norms2);
            if metric == Metric::Cosine {
                // One pass the compiler vectorises; sqrt and division are exactly
                // rounded, so the scores equal the index rerank's per-row ones.
                for (d, &n2) in dots.iter_mut().zip(&norms2) {
                    *d /= n2.sqrt() * qn;
                }
            }
            for (i, (&score, &n2)) in dots.iter().zip(&norms2).enumerate() {
                let r = (first + i) as u32;
                // Zero rows never match a cosine query.
                if top.would_keep(r, score) && !(metric == Metric::Cosine && n2 == 0.0) && allow(r)
                {
                    top.push(r, score);
                }
            }
        }
        top.into_sorted()
    }
}

/// Rows per chunk of [`exact_group`]: 512 rows of 64 floats are 128 KB, which stay in L2
/// while every query of a group scores them.
const BATCH_CHUNK: usize = 512;
/// Queries sharing one pass over the table in [`exact_batch`] (the tuning sample, in
/// parallel: small groups keep both threads busy).
const BATCH_QUERIES: usize = 16;

/// [`ExactSearch`] for many queries at once (the index's tuning sample), with the same
/// scores and answers, in parallel on the current pool. `skip[i]` is a row query `i`
/// must not return (its own row), if any.
pub(crate) fn exact_batch(
    table: &TableView,
    queries: &[&[f32]],
    skip: &[Option<u32>],
    metric: Metric,
    k: usize,
) -> Vec<Vec<(u32, f32)>> {
    use rayon::prelude::*;
    queries
        .par_chunks(BATCH_QUERIES)
        .zip(skip.par_chunks(BATCH_QUERIES))
        .flat_map_iter(|(qs, sk)| exact_group(table, qs, metric, k, &|i, r| sk[i] != Some(r)))
        .collect()
}

/// [`ExactSearch`] for every query of `queries` on the calling thread, with the same
/// scores and answers; `allow(i, r)`: whether row `r` may be returned to query `i`. The
/// group walks the table once, chunk by chunk, instead of once per query: one pass over
/// 100k × 64 rows is 25.6 MB, more than the L2, and a single-query scan waits on memory.
// why: row numbers are below the table's row count, a u32 in the stored format
// (proven once by the table, not per row).
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn exact_group(
    table: &TableView,
    queries: &[&[f32]],
    metric: Metric,
    k: usize,
    allow: &dyn Fn(usize, u32) -> bool,
) -> Vec<Vec<(u32, f32)>> {
    let dim = table.dim();
    let qn: Vec<f32> = queries
        .iter()
        .map(|q| super::kernels::dot(q, q).sqrt())
        .collect();
    let mut tops: Vec<TopK> = queries.iter().map(|_| TopK::new(k)).collect();
    // The queries that can match (a zero query never matches cosine).
    let live: Vec<usize> = (0..queries.len())
        .filter(|&i| !(metric == Metric::Cosine && qn[i] == 0.0))
        .collect();
    let Some((&lead, rest)) = live.split_first() else {
        return tops.into_iter().map(TopK::into_sorted).collect();
    };
    let rest_qs: Vec<&[f32]> = rest.iter().map(|&i| queries[i]).collect();
    let (mut norms2, mut dots) = (Vec::new(), Vec::new());
    for (first, bytes) in table.blocks_le() {
        for (c, chunk) in bytes.chunks(BATCH_CHUNK * dim * 4).enumerate() {
            let first = first + c * BATCH_CHUNK;
            let count = chunk.len() / (4 * dim).max(1);
            // The first query's pass gives the norms too; the others share each row load
            // (the same sums as a single query's scan, bit for bit).
            dots.resize(count * live.len(), 0.0);
            norms2.resize(count, 0.0);
            let (lead_dots, rest_dots) = dots.split_at_mut(count);
            scan_rows_le(chunk, queries[lead], lead_dots, &mut norms2);
            dots_multi_le(chunk, &rest_qs, rest_dots, count);
            for (&i, d) in live.iter().zip(dots.chunks_exact_mut(count)) {
                if metric == Metric::Cosine {
                    // As in `ExactSearch::search`: one vectorised pass, exactly rounded.
                    for (d, &n2) in d.iter_mut().zip(&norms2) {
                        *d /= n2.sqrt() * qn[i];
                    }
                }
                let top = &mut tops[i];
                for (j, (&score, &n2)) in d.iter().zip(&norms2).enumerate() {
                    let r = (first + j) as u32;
                    if top.would_keep(r, score)
                        && !(metric == Metric::Cosine && n2 == 0.0)
                        && allow(i, r)
                    {
                        top.push(r, score);
                    }
                }
            }
        }
    }
    tops.into_iter().map(TopK::into_sorted).collect()
}

/// Exact inner-product search with norm pruning: rows visited by descending norm, and
/// the scan stops once `‖q‖·‖x‖` (Cauchy-Schwarz bound of every row left) cannot beat
/// the k-th best score. The baseline an inner-product index must beat on unnormalised
/// rows (MF factors), where a few long rows hold most top results. Test and
/// measurement only for now: serving it needs the order stored with the table version.
#[cfg(test)]
pub(crate) struct NormOrdered {
    /// Rows by descending norm, with their norms.
    order: Vec<(f32, u32)>,
}

#[cfg(test)]
impl NormOrdered {
    pub fn build(table: &TableView) -> NormOrdered {
        let mut order: Vec<(f32, u32)> = (0..table.rows())
            .map(|r| (table.row(r).norm(), r as u32))
            .collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        NormOrdered { order }
    }

    /// The `k` best rows by inner product among those `allow` accepts (the same
    /// answer as [`ExactSearch`] with `Metric::Dot`).
    pub fn search(
        &self,
        table: &TableView,
        q: &[f32],
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let qn = super::kernels::dot(q, q).sqrt();
        let mut top = TopK::new(k);
        for &(norm, r) in &self.order {
            // Rows further on have norms ≤ `norm`, so scores ≤ qn·norm (with a little
            // slack for rounding).
            if !top.would_keep(0, qn * norm * (1.0 + 1e-5) + 1e-30) {
                break;
            }
            let (d, _) = super::kernels::dot_norm2_le(table.row(r as usize).le_bytes(), q);
            if top.would_keep(r, d) && allow(r) {
                top.push(r, d);
            }
        }
        top.into_sorted()
    }
}
