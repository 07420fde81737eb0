//! Many queries at once on the calling thread. One query at 1M rows scans ~1.7 MB of
//! codes spread over 5 % of a 32 MB code array that does not stay in the L3 between
//! queries, so the scan waits on memory. A group of queries instead walks its probes
//! list by list, in storage order: each list's codes come from memory once per group
//! and are scanned for every query of the group that probes it while they are in L1.
//! The answers are those of [`IvfIndex::search_in`] for each query: the same lists, the
//! same candidates (their set does not depend on the order lists are offered in), the
//! same rerank.

use super::super::kernels::dots_multi;
use super::super::simd::{prefetch, Ahead};
use super::super::tail::Tail;
use super::super::topk::Candidates;
use super::super::TopK;
use super::*;

/// Queries sharing one walk over the lists. Their tables (1 KB each at 64 dims) and
/// candidate buffers stay in L2/L3 while the codes stream past; more queries per group
/// means more queries per list read.
const GROUP: usize = 1024;

/// Queries whose centroid scores are computed together, a [`TILE`] of centroids at a
/// time (their scores, 24 × 16 KB at 4000 lists, stay in L2).
const SCORED: usize = 24;
/// Centroids per tile: 256 × 64 floats are 64 KB.
const TILE: usize = 256;

/// A batch's filter: (query's position in the batch, row) → whether the row may be
/// returned to that query.
pub(crate) type BatchFilter<'a> = &'a dyn Fn(usize, u32) -> bool;

/// One query of a group in flight.
struct Live {
    /// Position in the group.
    at: usize,
    qn: f32,
    /// Scale of [`IvfIndex::probe_lists`].
    f: f32,
    lut: Vec<u8>,
    g: f32,
    cands: Candidates,
    tail_top: Option<TopK>,
}

impl IvfIndex {
    /// [`IvfIndex::search_in`] for every query of `qs` (answers in order), with one
    /// filter for all queries that is told which query asks.
    pub fn search_batch(
        &self,
        table: &TableView,
        tail: Option<(&Tail, BatchFilter)>,
        qs: &[&[f32]],
        k: usize,
        allow: BatchFilter,
        nprobe: usize,
    ) -> Vec<Vec<(u32, f32)>> {
        let mut out = Vec::with_capacity(qs.len());
        for (g, group) in qs.chunks(GROUP).enumerate() {
            out.extend(self.search_group(table, tail, group, g * GROUP, k, allow, nprobe));
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    // why: query numbers in a group are below the group size, a few hundred.
    #[allow(clippy::cast_possible_truncation)]
    fn search_group(
        &self,
        table: &TableView,
        tail: Option<(&Tail, BatchFilter)>,
        qs: &[&[f32]],
        first: usize,
        k: usize,
        allow: BatchFilter,
        nprobe: usize,
    ) -> Vec<Vec<(u32, f32)>> {
        let mut out = vec![Vec::new(); qs.len()];
        let mut live: Vec<Live> = Vec::new();
        // Scaled queries and their lists' counts, in `live` order.
        let mut scaled: Vec<(Vec<f32>, usize)> = Vec::new();
        for (at, q) in qs.iter().enumerate() {
            let j = first + at;
            let allow_j = |r: u32| allow(j, r);
            let Some((qn, np)) = self.probes_for(q, k, &allow_j, nprobe) else {
                // Answered exactly, as alone.
                out[at] = one_query(tail, allow, j, |tail_j, allow_j| {
                    self.exact_in(table, tail_j, q, k, allow_j)
                });
                continue;
            };
            let f = self.phi / qn;
            scaled.push((q.iter().map(|x| x * f).collect(), np));
            let (lut, g) = self.lut(q);
            live.push(Live {
                at,
                qn,
                f,
                lut,
                g,
                cands: self.candidates(k),
                tail_top: tail.map(|_| TopK::new(k)),
            });
        }
        // (list, live query, list score), grouped by list below.
        let mut probes: Vec<(u32, u32, f32)> = Vec::new();
        let mut cscore = vec![0f32; SCORED * self.lists];
        for (s, part) in scaled.chunks(SCORED).enumerate() {
            let sq: Vec<&[f32]> = part.iter().map(|p| &p.0[..]).collect();
            // A tile of centroids is scored for all queries of the part while it is in L1.
            for (t, tile) in self.centroids.chunks(TILE * self.dim.max(1)).enumerate() {
                dots_multi(tile, &sq, &mut cscore[t * TILE..], self.lists);
            }
            for (i, (_, np)) in part.iter().enumerate() {
                let w = (s * SCORED + i) as u32;
                let lists = self.select_lists(&mut cscore[i * self.lists..][..self.lists], *np);
                probes.extend(lists.iter().map(|&(cs, l)| (l, w, cs)));
            }
        }
        let probes = by_list(&probes, self.lists);
        let mut scores: Vec<u16> = Vec::new();
        for (i, &(l, w, cs)) in probes.iter().enumerate() {
            // The next probe's table comes from L2/L3 while this one scans.
            if let Some(&(_, next, _)) = probes.get(i + 1) {
                prefetch(&live[next as usize].lut);
            }
            let qy = &mut live[w as usize];
            let (q, j) = (qs[qy.at], first + qy.at);
            if let (Some((t, ta)), Some(top)) = (tail, qy.tail_top.as_mut()) {
                t.offer_list(l as usize, q, qy.qn, self.metric, top, &|r| ta(j, r));
            }
            let off = self.list_offset(cs, l, qy.f, qy.g);
            let allow_j = |r: u32| allow(j, r);
            self.scan_list(
                l as usize,
                &qy.lut,
                off,
                &mut scores,
                &mut qy.cands,
                &allow_j,
                &mut Ahead::default(),
            );
        }
        for qy in live {
            let q = qs[qy.at];
            out[qy.at] = one_query(tail, allow, first + qy.at, |tail_j, allow_j| {
                self.answer(table, tail_j, q, qy.qn, k, allow_j, qy.cands, qy.tail_top)
            });
        }
        out
    }
}

/// `f` given query `j`'s own filters of a batch (the tail's and the table's), as a
/// single query has them.
fn one_query<R>(
    tail: Option<(&Tail, BatchFilter)>,
    allow: BatchFilter,
    j: usize,
    f: impl FnOnce(Option<(&Tail, &dyn Fn(u32) -> bool)>, &dyn Fn(u32) -> bool) -> R,
) -> R {
    let tail_j = tail.map(|(t, ta)| (t, move |r: u32| ta(j, r)));
    let tail_j = tail_j
        .as_ref()
        .map(|(t, ta)| (*t, ta as &dyn Fn(u32) -> bool));
    f(tail_j, &|r| allow(j, r))
}

/// `probes` ordered by list (a counting sort; stable, so each list's queries keep their
/// order).
fn by_list(probes: &[(u32, u32, f32)], lists: usize) -> Vec<(u32, u32, f32)> {
    let mut start = vec![0usize; lists + 1];
    for p in probes {
        start[p.0 as usize + 1] += 1;
    }
    for l in 0..lists {
        start[l + 1] += start[l];
    }
    let mut out = vec![(0, 0, 0.0); probes.len()];
    for &p in probes {
        let s = &mut start[p.0 as usize];
        out[*s] = p;
        *s += 1;
    }
    out
}
