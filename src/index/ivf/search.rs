//! Answering queries: probe the best lists, scan their codes with the fast-scan
//! kernel (filter applied in the scan), rerank the best candidates exactly.

use super::super::fastscan;
use super::super::kernels::{dot, dot_norm2_le, dots_multi};
use super::super::simd::{prefetch, Ahead};
use super::super::sq4::LEVELS;
use super::super::tail::Tail;
use super::super::topk::{merge_hits, Candidates};
use super::super::{ExactSearch, Metric, TopK, VectorSearch};
use super::{IvfIndex, FILTER_SAMPLE, LEAD, SELECTIVE};
use crate::storage::tables::TableView;

impl IvfIndex {
    /// Estimated fraction of table rows that `allow` accepts (evenly spaced sample).
    // why: the sampled positions are below n, the table's u32 row count.
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn pass_fraction(&self, allow: &dyn Fn(u32) -> bool) -> f32 {
        let n = self.table_rows;
        let s = FILTER_SAMPLE.min(n).max(1);
        let passed = (0..s)
            .filter(|&i| allow(((i * n + n / 2) / s).min(n - 1) as u32))
            .count();
        passed as f32 / s as f32
    }

    /// The fast-scan table of a query: entry `16·c + h` is `q_d` times level `h` of
    /// code column `c` (a stage of dimension `d`), less the smallest such product (a
    /// per-query constant), times `g`, rounded; returns the table and `g` (table units
    /// per unit of q·x).
    // why: lookup entries are clamped to 0..=255 before the cast.
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn lut(&self, q: &[f32]) -> (Vec<u8>, f32) {
        let (cols, stages) = (self.sq.cols(), self.sq.stages);
        let levels = |c: usize| &self.sq.levels[c * LEVELS..(c + 1) * LEVELS];
        // Levels ascend: q_d times them spans q_d·(last − first).
        let span = (0..cols).fold(0f32, |m, c| {
            let l = levels(c);
            m.max((q[c / stages] * (l[LEVELS - 1] - l[0])).abs())
        });
        let g = if span > 0.0 {
            fastscan::lut_max(cols) as f32 / span
        } else {
            0.0
        };
        let mut lut = vec![0u8; fastscan::block_bytes(cols)];
        for c in 0..cols {
            let (l, qd) = (levels(c), q[c / stages]);
            let low = if qd >= 0.0 { l[0] } else { l[LEVELS - 1] };
            for h in 0..LEVELS {
                let v = qd * (l[h] - low) * g;
                lut[16 * c + h] = (v + 0.5).min(255.0) as u8;
            }
        }
        (lut, g)
    }

    /// Search with an explicit `nprobe` (the stored one is `self.nprobe`).
    pub fn search_with(
        &self,
        table: &TableView,
        q: &[f32],
        k: usize,
        allow: &dyn Fn(u32) -> bool,
        nprobe: usize,
    ) -> Vec<(u32, f32)> {
        self.search_in(table, None, q, k, allow, nprobe)
    }

    /// [`IvfIndex::search_with`] over the table's rows that `allow` accepts and, when
    /// given, the rows of a tail (a delta placed in the lists) that its filter accepts.
    pub fn search_in(
        &self,
        table: &TableView,
        tail: Option<(&Tail, &dyn Fn(u32) -> bool)>,
        q: &[f32],
        k: usize,
        allow: &dyn Fn(u32) -> bool,
        nprobe: usize,
    ) -> Vec<(u32, f32)> {
        let metric = self.metric;
        let Some((qn, nprobe)) = self.probes_for(q, k, allow, nprobe) else {
            return self.exact_in(table, tail, q, k, allow);
        };
        let (lists, f) = self.probe_lists(q, qn, nprobe);
        // Scan: integer scores from the 4-bit codes plus the list's term, filter applied
        // only to rows that would enter the candidate heap.
        let (lut, g) = self.lut(q);
        let mut cands = self.candidates(k);
        let mut scores: Vec<u16> = Vec::new();
        // Tail rows are scored exactly as their list comes up; the tail of the lists two
        // and one ahead is prefetched (header, then records) so that its few scattered
        // reads overlap the scan instead of stalling it.
        let mut tail_top = tail.map(|_| TopK::new(k));
        let codes = lists.iter().map(|&(_, l)| self.codes_of(l as usize));
        let mut stream = Ahead::new(codes.collect(), LEAD);
        for (i, &(cs, l)) in lists.iter().enumerate() {
            if let (Some((t, tail_allow)), Some(top)) = (tail, tail_top.as_mut()) {
                if let Some(&(_, ahead)) = lists.get(i + 2) {
                    t.prefetch_header(ahead as usize);
                }
                if let Some(&(_, next)) = lists.get(i + 1) {
                    t.prefetch_records(next as usize);
                }
                t.offer_list(l as usize, q, qn, metric, top, tail_allow);
            }
            self.scan_list(
                l as usize,
                &lut,
                self.list_offset(cs, l, f, g),
                &mut scores,
                &mut cands,
                allow,
                &mut stream,
            );
        }
        self.answer(table, tail, q, qn, k, allow, cands, tail_top)
    }

    /// A scanned query's answer: its candidates reranked exactly (with the tail's top-k),
    /// or the exact scan when the probed lists hold fewer than `k` rows that pass, so a
    /// query for `k` rows answers `k` whenever that many pass its filter. The rerank is
    /// skipped when the candidates cannot fill `k` (its row reads would be thrown away).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn answer(
        &self,
        table: &TableView,
        tail: Option<(&Tail, &dyn Fn(u32) -> bool)>,
        q: &[f32],
        qn: f32,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
        cands: Candidates,
        tail_top: Option<TopK>,
    ) -> Vec<(u32, f32)> {
        let cand = cands.into_ids(allow);
        if cand.len() + tail_top.as_ref().map_or(0, TopK::kept) >= k {
            let hits = self.rerank(table, &cand, q, qn, k, tail_top);
            if hits.len() >= k {
                return hits;
            }
        }
        self.exact_in(table, tail, q, k, allow)
    }

    /// The exact answer over the table's rows that `allow` accepts and the tail's rows
    /// its filter accepts.
    pub(super) fn exact_in(
        &self,
        table: &TableView,
        tail: Option<(&Tail, &dyn Fn(u32) -> bool)>,
        q: &[f32],
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let hits = ExactSearch.search(table, q, self.metric, k, allow);
        match tail {
            Some((t, tail_allow)) => {
                merge_hits(hits, t.scan_exact(q, self.metric, k, tail_allow), k)
            }
            None => hits,
        }
    }

    /// The query's norm and the lists it probes (`nprobe` widened by the inverse of the
    /// filter's passing fraction, and to lists enough to fill the candidate buffer of a
    /// large `k`), or `None` when the query is answered exactly: a zero or non-finite
    /// query, a selective filter, or every list probed (then the exact scan reads the
    /// same rows and cannot lose one to the 4-bit pre-ranking).
    // why: nprobe is clamped to `lists` (a u32 count) before the cast.
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn probes_for(
        &self,
        q: &[f32],
        k: usize,
        allow: &dyn Fn(u32) -> bool,
        nprobe: usize,
    ) -> Option<(f32, usize)> {
        let qn = dot(q, q).sqrt();
        if k == 0 || qn == 0.0 || !qn.is_finite() {
            return None;
        }
        let frac = self.pass_fraction(allow);
        if frac < SELECTIVE {
            return None;
        }
        let per_list = self.rows as f32 / self.lists as f32;
        let fill = self.keep_for(k) as f32 / (per_list * frac);
        let nprobe = (nprobe.max(1) as f32 / frac).max(fill).ceil();
        let nprobe = (nprobe.min(self.lists as f32) as usize).max(1);
        (nprobe < self.lists).then_some((qn, nprobe))
    }

    /// The `nprobe` lists whose centroids are nearest to `q` (norm `qn`) scaled to norm
    /// φ, as (score, list), and that scale.
    pub(super) fn probe_lists(&self, q: &[f32], qn: f32, nprobe: usize) -> (Vec<(f32, u32)>, f32) {
        let f = self.phi / qn;
        let qs: Vec<f32> = q.iter().map(|x| x * f).collect();
        let mut cscore = vec![0f32; self.lists];
        dots_multi(&self.centroids, &[&qs], &mut cscore, self.lists);
        (self.select_lists(&mut cscore, nprobe), f)
    }

    /// The `nprobe` best lists by their centroid dots `cscore` with the scaled query
    /// (overwritten with the lists' scores).
    // why: list numbers are below `lists`, a u32 in the stored header.
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn select_lists(&self, cscore: &mut [f32], nprobe: usize) -> Vec<(f32, u32)> {
        let n = cscore.len();
        for (c, h) in cscore.iter_mut().zip(&self.half) {
            *c -= h;
        }
        let cscore = &*cscore;
        let mut lists: Vec<(f32, u32)> = Vec::new();
        if n >= 1024 && nprobe * 16 <= n {
            // A bar from every 8th list, a little below its estimate of the nprobe-th best
            // score: only the ~1.5·nprobe lists above it go through `select_nth`. When at
            // least nprobe pass, the nprobe best are among them (they all score at least
            // the nprobe-th best, which is then at least the bar).
            let mut sample: Vec<f32> = cscore.iter().step_by(8).copied().collect();
            let rank = (nprobe * 3 / 16).clamp(4, sample.len() - 1);
            sample.select_nth_unstable_by(rank, |a, b| b.total_cmp(a));
            let bar = sample[rank];
            lists.reserve(2 * nprobe);
            for (l, &s) in cscore.iter().enumerate() {
                if s >= bar {
                    lists.push((s, l as u32));
                }
            }
            if lists.len() < nprobe {
                lists.clear();
            }
        }
        if lists.is_empty() {
            lists.extend(cscore.iter().enumerate().map(|(l, &s)| (s, l as u32)));
        }
        if nprobe < lists.len() {
            lists.select_nth_unstable_by(nprobe - 1, |a, b| b.0.total_cmp(&a.0));
            lists.truncate(nprobe);
        }
        // No sort: `select_nth` leaves the lists roughly best first, which raises the
        // candidate threshold early (sorting them cost more than it saved).
        lists
    }

    /// The candidate buffer of a query for `k` results.
    pub(super) fn candidates(&self, k: usize) -> Candidates {
        Candidates::new(self.keep_for(k))
    }

    /// Candidate entries kept for `k` results: `rerank · k / 10`, at least `k`, and never
    /// more than the index's entries, whatever `k` the caller asked for.
    pub(super) fn keep_for(&self, k: usize) -> usize {
        let keep = self.rerank.saturating_mul(k).div_ceil(10);
        keep.max(k).min(self.ids.len().max(1))
    }

    /// List `l`'s term q·c in table units (`cs` is its score from [`Self::probe_lists`],
    /// `f` that call's scale, `g` the query's table units per unit of q·x).
    // why: clamped to ±1e9, inside i32, before the cast.
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn list_offset(&self, cs: f32, l: u32, f: f32, g: f32) -> i32 {
        let qc = (cs + self.half[l as usize]) / f;
        (qc * g).round().clamp(-1e9, 1e9) as i32
    }

    /// List `l`'s packed codes.
    pub(super) fn codes_of(&self, l: usize) -> &[u8] {
        let bb = fastscan::block_bytes(self.sq.cols());
        &self.codes[self.blocks[l] as usize * bb..self.blocks[l + 1] as usize * bb]
    }

    /// Scan list `l`'s codes with a query's table and offer its rows to `cands`,
    /// prefetching `ahead` (codes scanned next) meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scan_list(
        &self,
        l: usize,
        lut: &[u8],
        off: i32,
        scores: &mut Vec<u16>,
        cands: &mut Candidates,
        allow: &dyn Fn(u32) -> bool,
        ahead: &mut Ahead,
    ) {
        let (lo, hi) = (self.offsets[l] as usize, self.offsets[l + 1] as usize);
        if lo == hi {
            return;
        }
        let blocks = (self.blocks[l + 1] - self.blocks[l]) as usize;
        scores.resize(blocks * fastscan::BLOCK, 0);
        fastscan::scan(self.codes_of(l), lut, self.sq.cols(), scores, ahead);
        cands.offer(&self.ids[lo..hi], scores, off, allow);
    }

    /// Rescore the candidates exactly from the table's f32 rows (the same scores as
    /// exact search) and merge the tail's exact top-k, if any.
    pub(super) fn rerank(
        &self,
        table: &TableView,
        cand: &[u32],
        q: &[f32],
        qn: f32,
        k: usize,
        tail_top: Option<TopK>,
    ) -> Vec<(u32, f32)> {
        // The rows are scattered, so each is prefetched a few candidates ahead.
        const AHEAD: usize = 6;
        for &id in cand.iter().take(AHEAD) {
            prefetch(table.row(id as usize).le_bytes());
        }
        let mut top = TopK::new(k);
        for (i, &id) in cand.iter().enumerate() {
            if let Some(&next) = cand.get(i + AHEAD) {
                prefetch(table.row(next as usize).le_bytes());
            }
            let (d, n2) = dot_norm2_le(table.row(id as usize).le_bytes(), q);
            let score = match self.metric {
                Metric::Dot => d,
                Metric::Cosine => {
                    let n = n2.sqrt();
                    if n == 0.0 {
                        continue;
                    }
                    d / (n * qn)
                }
            };
            top.push(id, score);
        }
        if let Some(t) = tail_top {
            for (id, s) in t.into_sorted() {
                top.push(id, s);
            }
        }
        top.into_sorted()
    }
}
