//! Exact search: score every allowed row. The ground truth for any index.

use super::kernels::scan_rows_le;
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
        let (mut dots, mut norms2) = (Vec::new(), Vec::new());
        // Block by block: one SIMD call scores a whole stored block (dot and norm in
        // one pass over each row), then the scores go through the filter and the top-k.
        for (first, bytes) in table.blocks_le() {
            let count = bytes.len() / (4 * query.len()).max(1);
            dots.resize(count, 0.0);
            norms2.resize(count, 0.0);
            scan_rows_le(bytes, query, &mut dots, &mut norms2);
            for (i, (&dot, &n2)) in dots.iter().zip(&norms2).enumerate() {
                let r = (first + i) as u32;
                let score = match metric {
                    Metric::Dot => dot,
                    Metric::Cosine => {
                        if n2 == 0.0 || qn == 0.0 {
                            continue;
                        }
                        dot / (n2.sqrt() * qn)
                    }
                };
                if top.would_keep(r, score) && allow(r) {
                    top.push(r, score);
                }
            }
        }
        top.into_sorted()
    }
}
