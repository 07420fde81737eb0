//! Exact search: score every allowed row. The ground truth for any index.

use super::kernels::dot_norm2_le;
use super::{Metric, TopK, VectorSearch};
use crate::storage::tables::TableView;

pub(crate) struct ExactSearch;

impl VectorSearch for ExactSearch {
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
        for r in 0..table.rows() {
            if !allow(r as u32) {
                continue;
            }
            // One pass over the row gives both its dot with q and its norm (SIMD kernel).
            let (dot, n2) = dot_norm2_le(table.row(r).le_bytes(), query);
            let score = match metric {
                Metric::Dot => dot,
                Metric::Cosine => {
                    let n = n2.sqrt();
                    if n == 0.0 || qn == 0.0 {
                        continue;
                    }
                    dot / (n * qn)
                }
            };
            top.push(r as u32, score);
        }
        top.into_sorted()
    }
}
