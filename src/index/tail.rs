//! Rows written after an index was built (a table version's delta), placed in the
//! index's own lists: each row is assigned to its nearest centroid and encoded with the
//! index's 4-bit levels, so a query scans it with the list it falls in instead of
//! scanning every delta row exactly. The stored index stays immutable; a tail is
//! derived from the delta, updated per row (append to its list, or swap-remove from it
//! and repack only that list) and shared by queries as one value.

use std::collections::HashMap;
use std::sync::Arc;

use super::fastscan;
use super::kernels::dot;
use super::{IvfIndex, Metric, TopK};

/// Marks a tail row in the candidate ids of a scan (table rows stay below 2³¹).
pub(crate) const TAIL_BIT: u32 = 1 << 31;

#[derive(Clone, Debug, Default)]
pub(crate) struct TailList {
    /// Table rows with [`TAIL_BIT`] set, as the scan offers them.
    pub ids: Vec<u32>,
    /// Packed fast-scan blocks of `raw`.
    pub codes: Vec<u8>,
    /// 4-bit codes, one a byte, `dim` a row.
    raw: Vec<u8>,
    /// The f32 rows, for the rerank.
    values: Vec<f32>,
}

/// The delta rows of one (index, delta) pair, by list.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tail {
    dim: usize,
    lists: Vec<Arc<TailList>>,
    /// Row → its list.
    at: HashMap<u32, u32>,
}

/// Remove chunk `i` (of `w` items) by moving the last chunk into its place.
fn swap_remove_chunk<T: Copy>(v: &mut Vec<T>, i: usize, w: usize) {
    let last = v.len() / w - 1;
    if i != last {
        v.copy_within(last * w..(last + 1) * w, i * w);
    }
    v.truncate(last * w);
}

impl Tail {
    /// Rows held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// This tail after `ops` in order: `(row, Some(values))` puts the row (replacing
    /// its earlier tail entry), `(row, None)` removes it. Rows of a cosine index with a
    /// zero norm are left out (they never match).
    pub fn apply(&self, ix: &IvfIndex, ops: &[(u32, Option<&[f32]>)]) -> Tail {
        let mut t = self.clone();
        if t.lists.len() != ix.lists {
            t.dim = ix.dim;
            // One shared empty list; `make_mut` copies a list when it is first written.
            let empty = Arc::new(TailList::default());
            t.lists = std::iter::repeat_n(empty, ix.lists).collect();
            t.at.clear();
        }
        let dim = t.dim;
        let mut dirty = Vec::new();
        for &(row, values) in ops {
            debug_assert!(row < TAIL_BIT);
            if let Some(l) = t.at.remove(&row) {
                let list = Arc::make_mut(&mut t.lists[l as usize]);
                if let Some(i) = list.ids.iter().position(|&id| id == row | TAIL_BIT) {
                    list.ids.swap_remove(i);
                    swap_remove_chunk(&mut list.raw, i, dim);
                    swap_remove_chunk(&mut list.values, i, dim);
                }
                dirty.push(l);
            }
            let Some(v) = values else { continue };
            let Some((l, code)) = ix.place(v) else {
                continue;
            };
            let list = Arc::make_mut(&mut t.lists[l as usize]);
            list.ids.push(row | TAIL_BIT);
            list.raw.extend_from_slice(&code);
            list.values.extend_from_slice(v);
            t.at.insert(row, l);
            dirty.push(l);
        }
        dirty.sort_unstable();
        dirty.dedup();
        for l in dirty {
            let list = Arc::make_mut(&mut t.lists[l as usize]);
            list.codes = fastscan::pack(&list.raw, dim);
        }
        t
    }

    /// The tail rows of list `l`.
    pub fn list(&self, l: usize) -> Option<&TailList> {
        self.lists
            .get(l)
            .map(|x| &**x)
            .filter(|x| !x.ids.is_empty())
    }

    /// The values of tail row `row` (without [`TAIL_BIT`]).
    pub fn row(&self, row: u32) -> Option<&[f32]> {
        let list = &self.lists[*self.at.get(&row)? as usize];
        let i = list.ids.iter().position(|&id| id == row | TAIL_BIT)?;
        Some(&list.values[i * self.dim..(i + 1) * self.dim])
    }

    /// Exact top-k over the tail's rows (the index's exact fallbacks).
    pub fn scan_exact(
        &self,
        q: &[f32],
        metric: Metric,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let mut top = TopK::new(k);
        for list in &self.lists {
            for (&id, v) in list.ids.iter().zip(list.values.chunks_exact(self.dim)) {
                if let Some(s) = score(metric, v, q) {
                    let row = id & !TAIL_BIT;
                    if top.would_keep(row, s) && allow(row) {
                        top.push(row, s);
                    }
                }
            }
        }
        top.into_sorted()
    }
}

/// The exact score of row `v` for query `q` (as exact search computes it), `None` for a
/// zero row under cosine.
pub(crate) fn score(metric: Metric, v: &[f32], q: &[f32]) -> Option<f32> {
    let d = dot(v, q);
    match metric {
        Metric::Dot => Some(d),
        Metric::Cosine => {
            let (n, qn) = (dot(v, v).sqrt(), dot(q, q).sqrt());
            (n > 0.0 && qn > 0.0).then(|| d / (n * qn))
        }
    }
}
