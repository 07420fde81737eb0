//! Vector search over a table. Today: exact search. The quantized index plugs in here
//! by implementing [`VectorSearch`].
mod exact;
mod topk;

pub(crate) use exact::ExactSearch;
pub(crate) use topk::TopK;

use crate::storage::tables::TableView;

/// How query and rows are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Cosine similarity (rows with zero norm never match).
    Cosine,
    /// Inner product (user → item scoring).
    Dot,
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
