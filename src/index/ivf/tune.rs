//! Tuning an index's operating point: the lists probed (`nprobe`) and the candidate
//! entries reranked exactly (`rerank`, for k = 10) that reach a target recall@10 at the
//! lowest estimated cost.
//!
//! Why the rerank depth is tuned and not fixed: on tight clusters of near-duplicates
//! (hundreds of rows within the codes' resolution of each other) the 4-bit scores of a
//! cluster's rows tie or nearly tie, so which of them enter a fixed candidate buffer is
//! decided by quantisation noise, not by their true scores. Probing more lists then only
//! brings more of the same cluster's rows (from the lists it was split over, and spilled
//! ones) to compete for the same buffer, and recall falls as nprobe grows. Only a buffer
//! deeper than the cluster lets the exact rerank find the true top 10.

use rayon::prelude::*;

use super::super::exact::exact_batch;
use super::super::kmeans::SplitMix;
use super::super::BuildHooks;
use super::{IvfIndex, RERANK};
use crate::storage::tables::TableView;
use crate::Result;

/// Progress of a build when the index is built (before tuning) and tuned.
pub(crate) const BUILT: f64 = 0.6;
pub(crate) const TUNED: f64 = 0.95;
/// Queries of the held-out sample that tunes the operating point.
const TUNE_QUERIES: usize = 500;
/// Tuning aims this much above the target: with 4-bit residual codes, recall on the
/// table's own rows and on fresh queries agree within about 0.002 (docs/INDEX.md).
const TUNE_MARGIN: f32 = 0.005;
/// Rerank depths a caller may set (candidate entries for k = 10); the tuner tries
/// [`RERANK`], then doubles it up to the end of this range.
pub(crate) const RERANK_RANGE: std::ops::RangeInclusive<usize> = 10..=10_000;
/// The cost of reranking one candidate (a random row read), in code entries scanned. The
/// one profile of the query phase (docs/HISTORY.md, "Where the time goes": `perf record
/// -e cpu-clock`, 100k × 64, nprobe 100, ~7,900 entries scanned, no spilled rows) spent
/// 38 % in the scan and 14 % in the rerank, of 100 candidates then: about 29 entries a
/// candidate, or 58 if the rerank was already at 50. A round value in that range, not
/// measured at today's operating points.
const RERANK_COST: f64 = 50.0;

/// The tuner found no operating point below every list that reaches the target: the
/// index probes every list (queries scan every row exactly), and this is the closest
/// point it measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shortfall {
    pub recall: f32,
    pub nprobe: usize,
    pub rerank: usize,
}

impl IvfIndex {
    /// Pick the cheapest (`nprobe`, `rerank`) whose recall@10 on a seeded sample of the
    /// table's own rows (each query excludes itself; truth from exact search) reaches
    /// `target` plus [`TUNE_MARGIN`]: for each rerank depth (`rerank` if given, else
    /// [`RERANK`] doubling while a deeper rerank can still be cheaper) the smallest such
    /// nprobe below every list. When none does, every list is probed and the closest
    /// point is returned. Reports progress from [`BUILT`] to [`TUNED`]; `Err(Cancelled)`
    /// as soon as `hooks` says so, checked before each probe; the index is then left
    /// as it was.
    pub fn tune(
        &mut self,
        table: &TableView,
        target: f32,
        rerank: Option<usize>,
        hooks: &dyn BuildHooks,
    ) -> Result<Option<Shortfall>> {
        // Each probe searches at its depth through `self.rerank`; only the end result
        // may change it.
        let before = self.rerank;
        let out = self.tune_points(table, target, rerank, hooks);
        if out.is_err() {
            self.rerank = before;
        }
        out
    }

    fn tune_points(
        &mut self,
        table: &TableView,
        target: f32,
        rerank: Option<usize>,
        hooks: &dyn BuildHooks,
    ) -> Result<Option<Shortfall>> {
        let k = 10;
        let aim = (target + TUNE_MARGIN).min(1.0);
        let mut rng = SplitMix(self.seed ^ 0x7475_6E65);
        // Sampled among the distinct rows: sampling entries would pick spilled rows (two
        // entries each, near a boundary) twice as often as the others.
        let mut rows = self.ids.clone();
        rows.sort_unstable();
        rows.dedup();
        let picks = rng.sample(rows.len(), TUNE_QUERIES);
        let queries: Vec<(u32, Vec<f32>)> = picks
            .iter()
            .map(|&i| (rows[i], table.row(rows[i] as usize).to_vec()))
            .collect();
        let qs: Vec<&[f32]> = queries.iter().map(|(_, q)| &q[..]).collect();
        let skip: Vec<Option<u32>> = queries.iter().map(|(id, _)| Some(*id)).collect();
        hooks.report(
            BUILT,
            &format!("tuning: exact top-{k} of {} sampled rows", qs.len()),
        );
        let truth: Vec<Vec<u32>> = exact_batch(table, &qs, &skip, self.metric, k)
            .into_iter()
            .map(|hits| hits.into_iter().map(|h| h.0).collect())
            .collect();
        let want: usize = truth.iter().map(Vec::len).sum();
        let recall_at = |ix: &IvfIndex, nprobe: usize| -> f32 {
            let hits: usize = queries
                .par_iter()
                .zip(&truth)
                .map(|((id, q), t)| {
                    let allow = |r: u32| r != *id;
                    let got = ix.search_with(table, q, k, &allow, nprobe);
                    got.iter().filter(|h| t.contains(&h.0)).count()
                })
                .sum();
            if want == 0 {
                1.0
            } else {
                hits as f32 / want as f32
            }
        };
        let steps = self.nprobe_steps();
        let depths = self.rerank_depths(rerank);
        let per_list = self.ids.len() as f64 / self.lists as f64;
        let cost =
            |nprobe: usize, rerank: usize| nprobe as f64 * per_list + rerank as f64 * RERANK_COST;
        let probes = depths.len() as f64 * ((steps.len() as f64).log2().ceil() + 1.0);
        let mut done = 0f64;
        // (nprobe, rerank, recall) of the cheapest point that reaches the aim.
        let mut best: Option<(usize, usize, f32)> = None;
        let mut closest: Option<Shortfall> = None;
        for &r in &depths {
            let bar = best.map_or(f64::INFINITY, |(n, r, _)| cost(n, r));
            if cost(1, r) >= bar {
                break;
            }
            self.rerank = r;
            // Only the nprobe steps cheaper than the best point so far.
            let cheaper: Vec<usize> = steps
                .iter()
                .copied()
                .filter(|&s| cost(s, r) < bar)
                .collect();
            // Recall grows with nprobe: binary search over the steps.
            let (mut lo, mut hi) = (0usize, cheaper.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                let nprobe = cheaper[mid];
                hooks.check()?;
                hooks.report(
                    BUILT + (TUNED - BUILT) * (done / probes).min(1.0),
                    &format!("tuning: recall@10 at nprobe {nprobe}, rerank {r}"),
                );
                done += 1.0;
                let recall = recall_at(self, nprobe);
                if closest.is_none_or(|c| recall > c.recall) {
                    closest = Some(Shortfall {
                        recall,
                        nprobe,
                        rerank: r,
                    });
                }
                if recall >= aim {
                    best = Some((nprobe, r, recall));
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        }
        self.target_recall = target;
        Ok(match best {
            Some((nprobe, rerank, recall)) => {
                self.nprobe = nprobe;
                self.rerank = rerank;
                self.recall = recall;
                None
            }
            None => {
                // Every list probed: queries scan every row exactly.
                self.nprobe = self.lists;
                self.rerank = depths[0];
                self.recall = 1.0;
                closest
            }
        })
    }

    /// The nprobe values the tuner tries, below every list: fine steps first, then
    /// growing by an eighth.
    fn nprobe_steps(&self) -> Vec<usize> {
        let mut steps: Vec<usize> = vec![
            1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64,
        ];
        let mut s = 80;
        while s < self.lists {
            steps.push(s);
            s = s * 9 / 8;
        }
        steps.retain(|&s| s < self.lists);
        steps
    }

    /// The rerank depths the tuner tries: `fixed` alone, else [`RERANK`] doubling up to
    /// the end of [`RERANK_RANGE`] or until the buffer holds every entry.
    fn rerank_depths(&self, fixed: Option<usize>) -> Vec<usize> {
        if let Some(r) = fixed {
            return vec![r];
        }
        let mut depths = vec![RERANK];
        let mut r = RERANK;
        while r < *RERANK_RANGE.end() && r < self.ids.len() {
            r = (2 * r).min(*RERANK_RANGE.end());
            depths.push(r);
        }
        depths
    }
}
