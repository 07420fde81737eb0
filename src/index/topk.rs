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

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
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

    /// Best first; equal scores by ascending id.
    pub fn into_sorted(self) -> Vec<(u32, f32)> {
        let mut v: Vec<(u32, f32)> = self.heap.into_iter().map(|e| (e.1, e.0)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
