//! `IvfIndex`: an inverted-file index with 4-bit residual codes (fast scan) and exact rerank.
//!
//! Build: rows (normalised for cosine; for inner product extended with the MIPS
//! coordinate `√(φ² − ‖x‖²)`, φ the largest norm, so that L2 neighbours in the extended
//! space are the largest inner products) are partitioned by k-means into `lists`
//! lists; each list stores its row ids and the 4-bit codes ([`Sq4`]) of the rows'
//! residuals to its centroid (one per dimension, or two for 8 bits), packed in 32-row
//! fast-scan blocks.
//!
//! Query: score the centroids, scan the `nprobe` best lists with the `pshufb` kernel
//! (the filter is applied inside the scan), keep the `rerank` best candidates, and
//! rescore them exactly from the f32 rows of the table; fewer than k rows from the
//! probed lists fall back to the exact scan. A selective filter (fewer than
//! [`SELECTIVE`] of a sample of rows pass) falls back to an exact scan of the allowed
//! rows; a milder one widens `nprobe` by the inverse of the passing fraction.

use super::fastscan;
use super::kernels::{dot, dot_norm2_le, dots_f32, dots_multi};
use super::kmeans;
use super::simd::{prefetch, Ahead};
use super::spill;
use super::sq4::{Sq4, LEVELS};
use super::tail::Tail;
use super::topk::{merge_hits, Candidates};
use super::{BuildHooks, ExactSearch, Metric, TopK, VectorSearch};
use crate::index::stored::{self as store, IndexHeader, INDEX_FORMAT};
use crate::storage::tables::TableView;
use crate::{Error, Result};

mod batch;
mod carry;
mod tune;
pub(crate) use carry::centroids_fresh;
#[cfg(test)]
pub(crate) use tune::BUILT;
pub(crate) use tune::{Shortfall, RERANK_RANGE, TUNED};

/// Below this fraction of passing rows a filtered query is answered exactly.
pub(crate) const SELECTIVE: f32 = 0.02;
/// Rows sampled (evenly spaced) to estimate a filter's passing fraction.
const FILTER_SAMPLE: usize = 256;
/// Candidate entries reranked exactly for k = 10 (scaled with k) before tuning, and the
/// tuner's first depth (`ivf/tune.rs` goes deeper where the codes tie). Measured on the
/// benchmark data (docs/INDEX.md): without spilled rows 50 reached the recall of 100 within
/// 0.002 up to 0.99, at a lower cost (each candidate is a random 256-byte read of the
/// table); a spilled row can take two entries, and with 30 % of the rows spilled 65
/// entries (about 50 distinct rows) gave +0.006 recall over 50 at equal nprobe at 1M,
/// and 80 not enough more to pay for its reads (docs/HISTORY.md, index stop 15).
pub(crate) const RERANK: usize = 65;
/// How far ahead of a single query's scan its lists' codes are prefetched (into L2). At
/// 1M rows the codes (32 MB) are in memory, not cache, and a list is too short for the
/// hardware prefetcher to ramp up; leads of 8-64 KB measured alike (docs/HISTORY.md,
/// index stop 14).
const LEAD: usize = 16 << 10;
/// Progress of a build when k-means, the assignment, the spill, the encoding and the
/// tuning end.
const KMEANS_END: f64 = 0.4;
const ASSIGN_END: f64 = 0.5;
const SPILL_END: f64 = 0.53;

pub(crate) struct IvfIndex {
    pub metric: Metric,
    pub dim: usize,
    pub lists: usize,
    pub nprobe: usize,
    pub rerank: usize,
    pub phi: f32,
    pub seed: u64,
    pub target_recall: f32,
    pub recall: f32,
    pub build_seconds: f64,
    /// Rows placed in the lists by [`IvfIndex::carry_over`] since k-means ran.
    pub placed: usize,
    table_rows: usize,
    /// Distinct rows in the lists (a spilled row has two entries in `ids`).
    rows: usize,
    centroids: Vec<f32>,
    half: Vec<f32>,
    sq: Sq4,
    offsets: Vec<u32>,
    /// First fast-scan block of each list (`lists + 1`), derived from `offsets`.
    blocks: Vec<u32>,
    /// A dot index's centroid coordinates on the MIPS axis (empty for cosine), derived
    /// from `half` (‖c‖²/2 over the build's width) and `centroids` (the first `dim`).
    axis: Vec<f32>,
    ids: Vec<u32>,
    codes: Vec<u8>,
}

impl std::fmt::Debug for IvfIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvfIndex")
            .field("metric", &self.metric)
            .field("lists", &self.lists)
            .field("nprobe", &self.nprobe)
            .field("rows", &self.ids.len())
            .finish()
    }
}

/// The centroids' coordinates on the MIPS axis of a dot index (empty for cosine):
/// `half` is ‖c‖²/2 over the build's `dim + 1` coordinates, so the last one is
/// √(2·half − ‖c[..dim]‖²) (non-negative, as every row's is).
fn mips_axis(metric: Metric, centroids: &[f32], half: &[f32], dim: usize) -> Vec<f32> {
    if metric != Metric::Dot {
        return Vec::new();
    }
    centroids
        .chunks_exact(dim.max(1))
        .zip(half)
        .map(|(c, h)| (2.0 * h - dot(c, c)).max(0.0).sqrt())
        .collect()
}

/// Default number of lists: about 4·√N.
pub(crate) fn default_lists(n: usize) -> usize {
    ((4.0 * (n as f64).sqrt()).round() as usize).clamp(1, n.max(1))
}

impl IvfIndex {
    /// Build on the current pool. Zero rows are left out of a cosine index (they never
    /// match, as in exact search). Reports progress up to [`BUILT`]; `Err(Cancelled)`
    /// as soon as `hooks` says so (checked before each k-means iteration and phase).
    /// `bits` per dimension: 4 (one code) or 8 (two, see [`Sq4`]); `spill`: the fraction
    /// of rows also placed in a second list (see `index::spill`).
    pub fn build(
        table: &TableView,
        metric: Metric,
        lists: Option<usize>,
        bits: u8,
        spill: f32,
        seed: u64,
        hooks: &dyn BuildHooks,
    ) -> Result<IvfIndex> {
        let stages = Sq4::stages_for(bits)?;
        let started = std::time::Instant::now();
        let (n, dim) = (table.rows(), table.dim());
        let norms: Vec<f32> = (0..n).map(|r| table.row(r).norm()).collect();
        let phi = match metric {
            Metric::Cosine => 1.0,
            Metric::Dot => norms.iter().fold(0f32, |m, &x| m.max(x)),
        };
        let width = if metric == Metric::Dot { dim + 1 } else { dim };
        let mut rows = Vec::new();
        let mut vecs = Vec::with_capacity(n * width);
        for (r, &nr) in norms.iter().enumerate() {
            let row = table.row(r);
            match metric {
                Metric::Cosine => {
                    if nr == 0.0 {
                        continue;
                    }
                    vecs.extend(row.iter().map(|x| x / nr));
                }
                Metric::Dot => {
                    vecs.extend(row.iter());
                    vecs.push((phi * phi - nr * nr).max(0.0).sqrt());
                }
            }
            rows.push(r as u32);
        }
        let m = rows.len();
        if m == 0 {
            return Err(Error::Empty(format!(
                "table `{}` has no non-zero rows to index",
                table.name()
            )));
        }
        let lists = lists.unwrap_or_else(|| default_lists(m));
        if lists == 0 || lists > m {
            return Err(Error::param(
                "lists",
                format!("must be between 1 and the {m} rows"),
            ));
        }
        let sample = (lists * 32).max(20_000).min(m);
        const ITERS: usize = 10;
        let mut go = |i: usize| {
            hooks.report(
                KMEANS_END * i as f64 / ITERS as f64,
                &format!(
                    "k-means iteration {}/{ITERS}: {lists} lists, {sample} sampled rows",
                    i + 1
                ),
            );
            !hooks.cancelled()
        };
        let full = kmeans::train(&vecs, width, lists, ITERS, sample, seed, &mut go)
            .ok_or(Error::Cancelled)?;
        hooks.report(KMEANS_END, &format!("assigning {m} rows to {lists} lists"));
        let (labels, second) = if spill > 0.0 {
            // Each row's nearest centroids after its own are the candidates for its
            // second list, found in the same pass.
            let nearest = kmeans::assign_m(&vecs, width, &full, spill::NEAR);
            let labels: Vec<u32> = nearest.iter().step_by(spill::NEAR).copied().collect();
            hooks.check()?;
            hooks.report(
                ASSIGN_END,
                &format!(
                    "placing {:.0} % of the rows in a second list",
                    100.0 * spill
                ),
            );
            let second = spill::second_lists(&vecs, width, &full, &nearest, spill::NEAR, spill);
            (labels, second)
        } else {
            (kmeans::assign(&vecs, width, &full), vec![None; m])
        };
        hooks.check()?;
        hooks.report(SPILL_END, "encoding residuals");
        let half = kmeans::half_norms(&full, width);
        let centroids: Vec<f32> = full
            .chunks_exact(width)
            .flat_map(|c| c[..dim].iter().copied())
            .collect();
        // Each row's entries: its first list and, if spilled, its second.
        let entries = |i: usize| std::iter::once(labels[i]).chain(second[i]);
        // Counting sort by list; rows stay in ascending order inside a list.
        let mut offsets = vec![0u32; lists + 1];
        for i in 0..m {
            for l in entries(i) {
                offsets[l as usize + 1] += 1;
            }
        }
        for l in 0..lists {
            offsets[l + 1] += offsets[l];
        }
        let total = offsets[lists] as usize;
        let mut fill: Vec<usize> = offsets[..lists].iter().map(|&o| o as usize).collect();
        let mut ids = vec![0u32; total];
        let mut order = vec![0usize; total];
        for (i, &r) in rows.iter().enumerate() {
            for l in entries(i) {
                let p = &mut fill[l as usize];
                ids[*p] = r;
                order[*p] = i;
                *p += 1;
            }
        }
        // Codes quantise the residual to the list's centroid (first `dim` coordinates):
        // q·x = q·c + q·(x − c), the first term is known per list, and residuals span a
        // much smaller range than the rows, so 4 bits go further.
        let mut resid = Vec::with_capacity(total * dim);
        for l in 0..lists {
            let c = &centroids[l * dim..][..dim];
            for &i in &order[offsets[l] as usize..offsets[l + 1] as usize] {
                resid.extend(
                    vecs[i * width..i * width + dim]
                        .iter()
                        .zip(c)
                        .map(|(x, c)| x - c),
                );
            }
        }
        let sq = Sq4::train(&resid, dim, stages);
        let mut c4 = Vec::with_capacity(m * sq.cols());
        for r in resid.chunks_exact(dim) {
            sq.encode(r, &mut c4);
        }
        drop(resid);
        hooks.check()?;
        let codes = fastscan::pack_lists(&c4, sq.cols(), &offsets);
        let blocks = fastscan::list_blocks(&offsets);
        let axis = mips_axis(metric, &centroids, &half, dim);
        Ok(IvfIndex {
            metric,
            dim,
            lists,
            nprobe: lists,
            rerank: RERANK,
            phi,
            seed,
            target_recall: 1.0,
            recall: 1.0,
            build_seconds: started.elapsed().as_secs_f64(),
            placed: 0,
            table_rows: n,
            rows: m,
            centroids,
            half,
            sq,
            offsets,
            blocks,
            axis,
            ids,
            codes,
        })
    }

    /// Rows in the index.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Rows with a second entry (spilled, see `index::spill`).
    pub fn spilled(&self) -> usize {
        self.ids.len() - self.rows
    }

    /// Bits per dimension of the codes (4 or 8).
    pub fn bits(&self) -> u8 {
        self.sq.bits()
    }

    /// Bytes held in memory per indexed row (codes, ids, and the shared parts).
    pub fn bytes(&self) -> usize {
        self.codes.len()
            + 4 * (self.ids.len()
                + self.offsets.len()
                + self.blocks.len()
                + self.centroids.len()
                + self.half.len())
            + 8 * self.dim
    }

    /// Estimated fraction of table rows that `allow` accepts (evenly spaced sample).
    fn pass_fraction(&self, allow: &dyn Fn(u32) -> bool) -> f32 {
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
    fn lut(&self, q: &[f32]) -> (Vec<u8>, f32) {
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

    /// Whether this index answers `metric` queries on `table` (built on its rows).
    pub fn serves(&self, table: &TableView, metric: Metric) -> bool {
        metric == self.metric && table.rows() == self.table_rows && table.dim() == self.dim
    }

    /// The list a new row `v` falls in, as the build would have placed it (for a dot
    /// index with the MIPS coordinate, taken as 0 past the norm φ); `None` for a zero row
    /// of a cosine index.
    pub fn place(&self, v: &[f32]) -> Option<u32> {
        let n2 = dot(v, v);
        let (x, extra) = match self.metric {
            Metric::Cosine if n2 == 0.0 => return None,
            Metric::Cosine => {
                let n = n2.sqrt();
                (v.iter().map(|a| a / n).collect(), 0.0)
            }
            Metric::Dot => (v.to_vec(), (self.phi * self.phi - n2).max(0.0).sqrt()),
        };
        let mut cs = vec![0f32; self.lists];
        dots_f32(&self.centroids, &x, &mut cs);
        let axis = |l: usize| self.axis.get(l).map_or(0.0, |a| extra * a);
        (0..self.lists)
            .map(|l| (cs[l] + axis(l) - self.half[l], l))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, l)| l as u32)
    }

    /// The lists of every indexed row (row → its one or two lists), for tests.
    #[cfg(test)]
    pub fn lists_of_rows(&self) -> std::collections::HashMap<u32, Vec<u32>> {
        let mut out: std::collections::HashMap<u32, Vec<u32>> = Default::default();
        for l in 0..self.lists {
            let (lo, hi) = (self.offsets[l] as usize, self.offsets[l + 1] as usize);
            for &r in &self.ids[lo..hi] {
                out.entry(r).or_default().push(l as u32);
            }
        }
        out
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
    fn answer(
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
    fn exact_in(
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
    fn probes_for(
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
    fn probe_lists(&self, q: &[f32], qn: f32, nprobe: usize) -> (Vec<(f32, u32)>, f32) {
        let f = self.phi / qn;
        let qs: Vec<f32> = q.iter().map(|x| x * f).collect();
        let mut cscore = vec![0f32; self.lists];
        dots_multi(&self.centroids, &[&qs], &mut cscore, self.lists);
        (self.select_lists(&mut cscore, nprobe), f)
    }

    /// The `nprobe` best lists by their centroid dots `cscore` with the scaled query
    /// (overwritten with the lists' scores).
    fn select_lists(&self, cscore: &mut [f32], nprobe: usize) -> Vec<(f32, u32)> {
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
    fn candidates(&self, k: usize) -> Candidates {
        Candidates::new(self.keep_for(k))
    }

    /// Candidate entries kept for `k` results: `rerank · k / 10`, at least `k`, and never
    /// more than the index's entries, whatever `k` the caller asked for.
    fn keep_for(&self, k: usize) -> usize {
        let keep = self.rerank.saturating_mul(k).div_ceil(10);
        keep.max(k).min(self.ids.len().max(1))
    }

    /// List `l`'s term q·c in table units (`cs` is its score from [`Self::probe_lists`],
    /// `f` that call's scale, `g` the query's table units per unit of q·x).
    fn list_offset(&self, cs: f32, l: u32, f: f32, g: f32) -> i32 {
        let qc = (cs + self.half[l as usize]) / f;
        (qc * g).round().clamp(-1e9, 1e9) as i32
    }

    /// List `l`'s packed codes.
    fn codes_of(&self, l: usize) -> &[u8] {
        let bb = fastscan::block_bytes(self.sq.cols());
        &self.codes[self.blocks[l] as usize * bb..self.blocks[l + 1] as usize * bb]
    }

    /// Scan list `l`'s codes with a query's table and offer its rows to `cands`,
    /// prefetching `ahead` (codes scanned next) meanwhile.
    #[allow(clippy::too_many_arguments)]
    fn scan_list(
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
    fn rerank(
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

    pub fn to_stored(&self) -> (IndexHeader, &[u32], &[u8]) {
        let block_lists = store::plan_blocks(&self.offsets, self.dim);
        (
            IndexHeader {
                format: INDEX_FORMAT,
                metric: self.metric.stored_byte(),
                dim: self.dim as u32,
                table_rows: self.table_rows as u32,
                lists: self.lists as u32,
                nprobe: self.nprobe as u32,
                rerank: self.rerank as u32,
                phi: self.phi,
                seed: self.seed,
                target_recall: self.target_recall,
                recall: self.recall,
                build_seconds: self.build_seconds,
                centroids: self.centroids.clone(),
                half_norms: self.half.clone(),
                levels: self.sq.levels.clone(),
                offsets: self.offsets.clone(),
                block_lists,
                code_bytes: self.codes.len() as u64,
                placed: self.placed as u32,
            },
            &self.ids,
            &self.codes,
        )
    }

    /// From validated stored parts (see [`store::load`], which checks the levels too).
    pub fn from_stored(loaded: store::Loaded) -> Result<IvfIndex> {
        let store::Loaded {
            header: h,
            ids,
            codes,
            rows,
        } = loaded;
        let metric = Metric::from_stored_byte(h.metric);
        let sq = Sq4::from_levels(h.levels, h.dim as usize)
            .ok_or_else(|| Error::corrupted("index header (code levels)"))?;
        let axis = mips_axis(metric, &h.centroids, &h.half_norms, h.dim as usize);
        Ok(IvfIndex {
            metric,
            dim: h.dim as usize,
            lists: h.lists as usize,
            nprobe: h.nprobe as usize,
            rerank: (h.rerank as usize).max(1),
            phi: h.phi,
            seed: h.seed,
            target_recall: h.target_recall,
            recall: h.recall,
            build_seconds: h.build_seconds,
            placed: h.placed as usize,
            rows,
            table_rows: h.table_rows as usize,
            centroids: h.centroids,
            half: h.half_norms,
            sq,
            blocks: fastscan::list_blocks(&h.offsets),
            axis,
            offsets: h.offsets,
            ids,
            codes,
        })
    }
}

impl VectorSearch for IvfIndex {
    fn search(
        &self,
        table: &TableView,
        query: &[f32],
        metric: Metric,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        if !self.serves(table, metric) {
            return ExactSearch.search(table, query, metric, k, allow);
        }
        self.search_with(table, query, k, allow, self.nprobe)
    }
}
