//! Keeping the k best (row, score) pairs of a scan.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(PartialEq)]
struct Entry(f32, u32);

impl Eq for Entry {}

impl Ord for Entry {
    // Reversed, so the heap's top is the worst kept entry; ties prefer the lower id.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The k highest scores seen, best first at the end.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

/// Entries a [`TopK`] reserves up front: a caller's `k` may be far larger than the rows
/// a scan will ever offer (the heap grows with the rows actually kept).
const RESERVE: usize = 1024;

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(RESERVE) + 1),
        }
    }

    /// Whether [`TopK::push`] would keep this pair (lets callers skip costly checks).
    #[inline]
    pub fn would_keep(&self, id: u32, score: f32) -> bool {
        if self.k == 0 || score.is_nan() {
            return false;
        }
        match self.heap.peek() {
            Some(top) if self.heap.len() >= self.k => {
                score > top.0 || (score == top.0 && id < top.1)
            }
            _ => true,
        }
    }

    pub fn push(&mut self, id: u32, score: f32) {
        if self.k == 0 || score.is_nan() {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Entry(score, id));
        } else if let Some(top) = self.heap.peek() {
            if score > top.0 || (score == top.0 && id < top.1) {
                self.heap.pop();
                self.heap.push(Entry(score, id));
            }
        }
    }

    /// Offer row `row` whose dot with the query is `d` (`n` = the row's norm, `qn` the
    /// query's) under `metric`, if `allow` accepts it; a zero row never matches cosine.
    #[inline]
    pub fn offer_scored(
        &mut self,
        row: u32,
        (d, n, qn): (f32, f32, f32),
        metric: super::Metric,
        allow: &dyn Fn(u32) -> bool,
    ) {
        let s = match metric {
            super::Metric::Dot => d,
            super::Metric::Cosine if n > 0.0 && qn > 0.0 => d / (n * qn),
            super::Metric::Cosine => return,
        };
        if self.would_keep(row, s) && allow(row) {
            self.push(row, s);
        }
    }

    /// Entries kept so far (at most `k`).
    pub fn kept(&self) -> usize {
        self.heap.len()
    }

    /// Best first; equal scores by ascending id.
    pub fn into_sorted(self) -> Vec<(u32, f32)> {
        let mut v: Vec<(u32, f32)> = self.heap.into_iter().map(|e| (e.1, e.0)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// The `k` best of two best-first answers over disjoint rows (same order as
/// [`TopK::into_sorted`]).
pub(crate) fn merge_hits(mut a: Vec<(u32, f32)>, b: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    a.extend(b);
    a.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    a.truncate(k);
    a
}

/// The `keep` highest integer scores of a list scan, in amortised O(1) per row: a row
/// whose score beats the threshold is appended without a branch; when the buffer is
/// full (2·keep) the filter is applied to the new rows, the `keep` best are selected,
/// and the threshold rises to the worst of them. (A binary heap cost ~100 ns per
/// admitted row, the largest share of a query after the scan.)
/// Bit `i` set when `s[i] > t` (the SIMD kernel, else its portable twin).
#[inline]
fn mask_gt(s: &[u16; 32], t: u16) -> u32 {
    super::simd::mask_gt_u16(s, t).unwrap_or_else(|| mask_gt_portable(s, t))
}

fn mask_gt_portable(s: &[u16; 32], t: u16) -> u32 {
    s.iter()
        .enumerate()
        .fold(0, |m, (i, &x)| m | (((x > t) as u32) << i))
}

pub(crate) struct Candidates {
    keep: usize,
    buf: Vec<(i32, u32)>,
    len: usize,
    /// `buf[..checked]` passed the filter.
    checked: usize,
    thr: i32,
}

impl Candidates {
    pub fn new(keep: usize) -> Self {
        let keep = keep.max(1);
        Candidates {
            keep,
            buf: vec![(0, 0); 2 * keep + 1],
            len: 0,
            checked: 0,
            thr: i32::MIN,
        }
    }

    /// Offer rows `ids[i]` with scores `off + scores[i]`; `scores` is padded to whole
    /// blocks of 32 (its tail past `ids.len()` is ignored). A block is first tested
    /// against the threshold as a whole (one SIMD compare), so the rows that cannot
    /// enter cost almost nothing.
    #[inline]
    pub fn offer(&mut self, ids: &[u32], scores: &[u16], off: i32, allow: &dyn Fn(u32) -> bool) {
        debug_assert!(scores.len() >= ids.len() && scores.len().is_multiple_of(32));
        for (block, ids) in scores.chunks_exact(32).zip(ids.chunks(32)) {
            let block: &[u16; 32] = block.try_into().expect("32 scores");
            let valid = if ids.len() == 32 {
                u32::MAX
            } else {
                (1u32 << ids.len()) - 1
            };
            // Rows at the threshold enter too: the kept set is then the `keep` best by
            // (score, id) whatever order the lists are offered in.
            let t = self.thr as i64 - off as i64 - 1;
            let mut mask = if t < 0 {
                valid
            } else if t >= u16::MAX as i64 {
                0
            } else {
                // why: 0 <= t < u16::MAX, checked by the branches above.
                #[allow(clippy::cast_possible_truncation)]
                let t = t as u16;
                mask_gt(block, t) & valid
            };
            while mask != 0 {
                let i = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let s = off + block[i] as i32;
                // The threshold may have risen since the mask was taken.
                if s >= self.thr {
                    self.buf[self.len] = (s, ids[i]);
                    self.len += 1;
                    if self.len == self.buf.len() {
                        self.compact(allow);
                    }
                }
            }
        }
    }

    fn compact(&mut self, allow: &dyn Fn(u32) -> bool) {
        let mut w = self.checked;
        for r in self.checked..self.len {
            let e = self.buf[r];
            if allow(e.1) {
                self.buf[w] = e;
                w += 1;
            }
        }
        self.len = w;
        if self.len > self.keep {
            // Best first; ties by ascending id so the kept set does not depend on order.
            self.buf[..self.len]
                .select_nth_unstable_by(self.keep - 1, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            self.len = self.keep;
            self.thr = self.buf[self.keep - 1].0;
        }
        self.checked = self.len;
    }

    /// The distinct ids of the (at most `keep`) best allowed entries, ascending (a
    /// spilled row may have been offered from two lists).
    pub fn into_ids(mut self, allow: &dyn Fn(u32) -> bool) -> Vec<u32> {
        self.compact(allow);
        let mut ids: Vec<u32> = self.buf[..self.len].iter().map(|e| e.1).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn mask_matches_its_twin(s in proptest::array::uniform32(any::<u16>()), t in any::<u16>(), pick in 0usize..32) {
            // Thresholds equal to a score half the time (the boundary case).
            let t = if pick % 2 == 0 { s[pick] } else { t };
            let want = mask_gt_portable(&s, t);
            prop_assert_eq!(mask_gt(&s, t), want);
            for (i, &x) in s.iter().enumerate() {
                prop_assert_eq!(want >> i & 1 == 1, x > t);
            }
        }

        #[test]
        fn candidates_are_the_best_allowed(
            rows in proptest::collection::vec((0u16..50, 0i32..3), 0..400),
            keep in 1usize..30,
        ) {
            let mut c = Candidates::new(keep);
            let allow = |id: u32| !id.is_multiple_of(3);
            // Rows offered in chunks with a per-chunk offset, as lists are.
            let mut all = Vec::new();
            for (chunk, part) in rows.chunks(37).enumerate() {
                let ids: Vec<u32> = (0..part.len()).map(|i| (chunk * 37 + i) as u32).collect();
                let mut scores: Vec<u16> = part.iter().map(|p| p.0).collect();
                // Padding past the rows, with scores that must be ignored.
                scores.resize(part.len().div_ceil(32) * 32, u16::MAX);
                let off = part.first().map_or(0, |p| p.1) * 10 - 5;
                c.offer(&ids, &scores, off, &allow);
                all.extend(ids.iter().zip(&scores[..ids.len()]).map(|(&id, &s)| (off + s as i32, id)));
            }
            let mut got = c.into_ids(&allow);
            got.sort_unstable();
            all.retain(|e| allow(e.1));
            all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            // The kept rows are the `keep` best by (score, lower id), whatever the order
            // of the chunks: a batch offers the lists in another order than one query.
            let mut want: Vec<u32> = all.iter().take(keep).map(|e| e.1).collect();
            want.sort_unstable();
            prop_assert_eq!(&got, &want);
            let mut c = Candidates::new(keep);
            for (chunk, part) in rows.chunks(37).enumerate().rev() {
                let ids: Vec<u32> = (0..part.len()).map(|i| (chunk * 37 + i) as u32).collect();
                let mut scores: Vec<u16> = part.iter().map(|p| p.0).collect();
                scores.resize(part.len().div_ceil(32) * 32, u16::MAX);
                c.offer(&ids, &scores, part.first().map_or(0, |p| p.1) * 10 - 5, &allow);
            }
            let mut reversed = c.into_ids(&allow);
            reversed.sort_unstable();
            prop_assert_eq!(reversed, want);
        }
    }

    proptest! {
        #[test]
        fn topk_matches_a_full_sort(scores in proptest::collection::vec(-100i32..100, 0..200), k in 0usize..20) {
            let mut t = TopK::new(k);
            for (i, &s) in scores.iter().enumerate() {
                t.push(i as u32, s as f32);
            }
            let mut all: Vec<(u32, f32)> = scores.iter().enumerate().map(|(i, &s)| (i as u32, s as f32)).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            prop_assert_eq!(t.into_sorted(), all);
        }
    }
}
