//! Exact search: score every allowed row. The ground truth for any index.

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
        let qn = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        for r in 0..table.rows() {
            if !allow(r as u32) {
                continue;
            }
            let row = table.row(r);
            let dot = row.dot(query);
            let score = match metric {
                Metric::Dot => dot,
                Metric::Cosine => {
                    let n = row.norm();
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
