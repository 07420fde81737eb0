//! Rows written after an index was built (a table version's delta), placed in the
//! index's own lists: each row is assigned to its nearest centroid, and a query scores
//! exactly the tail rows of the lists it probes instead of every delta row. (Exactly,
//! not with 4-bit codes: a list holds a few tail rows, and a fast-scan block would be
//! padded to 32 rows. A list's tail is one buffer of records, so a probed list costs
//! one prefetched read and a dot per row, and its rows skip the rerank.) The stored
//! index stays immutable; a tail is derived from the delta, updated per row (append to
//! its list, or swap-remove from it) and shared by queries as one value.

use std::collections::HashMap;
use std::sync::Arc;

use super::kernels::dot;
use super::simd::prefetch;
use super::{IvfIndex, Metric, TopK};

/// The tail rows of one list: records of `dim + 2` floats (the row's number as f32 bits,
/// its norm, its values), in one buffer so that a query reads them in one stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct TailList {
    records: Vec<f32>,
}

impl TailList {
    fn rows(&self, dim: usize) -> impl Iterator<Item = (u32, f32, &[f32])> {
        self.records
            .chunks_exact(dim + 2)
            .map(|r| (r[0].to_bits(), r[1], &r[2..]))
    }
}

/// The delta rows of one (index, delta) pair, by list.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tail {
    dim: usize,
    lists: Vec<Arc<TailList>>,
    /// Row → its list.
    at: HashMap<u32, u32>,
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
        let w = t.dim + 2;
        for &(row, values) in ops {
            if let Some(l) = t.at.remove(&row) {
                let list = Arc::make_mut(&mut t.lists[l as usize]);
                let rec = &mut list.records;
                if let Some(i) = (0..rec.len() / w).find(|&i| rec[i * w].to_bits() == row) {
                    // Swap-remove: the last record takes its place.
                    let last = rec.len() / w - 1;
                    rec.copy_within(last * w..(last + 1) * w, i * w);
                    rec.truncate(last * w);
                }
            }
            let Some(v) = values else { continue };
            let Some(l) = ix.place(v) else { continue };
            let list = Arc::make_mut(&mut t.lists[l as usize]);
            list.records.push(f32::from_bits(row));
            list.records.push(dot(v, v).sqrt());
            list.records.extend_from_slice(v);
            t.at.insert(row, l);
        }
        t
    }

    /// The rows of list `l` (tests).
    #[cfg(test)]
    pub fn list_rows(&self, l: usize) -> Vec<u32> {
        self.lists[l].rows(self.dim).map(|r| r.0).collect()
    }

    /// The values of tail row `row` (tests).
    #[cfg(test)]
    pub fn row(&self, row: u32) -> Option<&[f32]> {
        let list = &self.lists[*self.at.get(&row)? as usize];
        list.rows(self.dim).find(|r| r.0 == row).map(|r| r.2)
    }

    /// Hint the CPU to fetch list `l`'s header (a step before its records: their
    /// address is in it).
    #[inline]
    pub fn prefetch_header(&self, l: usize) {
        if let Some(list) = self.lists.get(l) {
            prefetch(std::slice::from_ref(&**list));
        }
    }

    /// Hint the CPU to fetch list `l`'s records.
    #[inline]
    pub fn prefetch_records(&self, l: usize) {
        if let Some(list) = self.lists.get(l) {
            prefetch(&list.records);
        }
    }

    /// Offer the tail rows of list `l` that `allow` accepts to `top`, scored exactly
    /// (`qn` = ‖q‖).
    pub fn offer_list(
        &self,
        l: usize,
        q: &[f32],
        qn: f32,
        metric: Metric,
        top: &mut TopK,
        allow: &dyn Fn(u32) -> bool,
    ) {
        let Some(list) = self.lists.get(l) else {
            return;
        };
        for (row, n, v) in list.rows(self.dim) {
            top.offer_scored(row, (dot(v, q), n, qn), metric, allow);
        }
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
        let qn = dot(q, q).sqrt();
        for l in 0..self.lists.len() {
            self.offer_list(l, q, qn, metric, &mut top, allow);
        }
        top.into_sorted()
    }
}
