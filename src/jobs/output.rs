//! What a job produces, before the runner publishes it.

use crate::storage::tables::RowSpace;

/// A table produced by a job, before it is published.
#[derive(Debug, Clone)]
pub(crate) struct TableOutput {
    pub name: String,
    pub space: RowSpace,
    pub dim: usize,
    /// Row-major, `dim` columns.
    pub rows: Vec<f32>,
    pub offset: f32,
    pub row_ids: Vec<String>,
}
