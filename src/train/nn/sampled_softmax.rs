//! Sampled softmax with log-Q correction: the softmax over all items approximated by
//! a candidate set — each example's true item plus `S` negatives drawn from a proposal
//! `Q` (Bengio & Senécal 2008; Jean et al. 2015), shared by the batch as in Yi et al.
//! (RecSys 2019) and TensorFlow's `sampled_softmax_loss`.
//!
//! Logit of candidate `j` for query `u`: `sⱼ = u·vⱼ + bⱼ − log Q(j)`. Subtracting
//! `log Q` (for the true item too) corrects for popular items being sampled more often:
//! without it the model learns `log p − log Q` instead of `log p`. A negative equal to
//! the example's true item (an "accidental hit") is left out of that example's softmax,
//! or the model would be pushed away from its own label. Loss per example:
//! `logsumexp(s) − s_true`. Its gradient is sparse in the table: with `cⱼ = pⱼ − [j is
//! the true item]`, `∂/∂vⱼ = cⱼ·u`, `∂/∂bⱼ = cⱼ`, `∂/∂u = Σ cⱼ·vⱼ` — only the
//! candidates' rows move (see [`RowGrad`]).
//!
//! With uniform `Q` and every item drawn exactly once this is the full softmax (a test).

// why: log-probabilities go from f64 to the f32 logits on purpose, and item indices
// fit u32 (a proposal refuses more than 2³² items).
#![allow(clippy::cast_possible_truncation)]

use rand::Rng;
use rayon::prelude::*;

use super::gemm::gemm;
use super::optim::RowGrad;
use crate::error::{Error, Result};

/// `log Q` is floored here so an item of zero weight (never sampled) can still be a
/// true item without an infinite logit.
const MIN_LOG_Q: f32 = -69.0; // ≈ ln(1e-30)

/// The proposal distribution over `n` items that negatives are drawn from.
#[derive(Debug, Clone)]
pub(crate) struct Proposal {
    /// Cumulative weights (empty for the uniform proposal, sampled directly).
    cum: Vec<f64>,
    log_q: Vec<f32>,
}

impl Proposal {
    /// Every item equally likely.
    pub fn uniform(n: usize) -> Result<Self> {
        if n == 0 || n > u32::MAX as usize {
            return Err(Error::param(
                "items",
                format!("a proposal needs 1 to 2³² items, got {n}"),
            ));
        }
        Ok(Proposal {
            cum: Vec::new(),
            log_q: vec![-(n as f64).ln() as f32; n],
        })
    }

    /// The log-uniform (Zipfian) proposal of TensorFlow's candidate sampler, for ids
    /// numbered by decreasing popularity: `Q(k) = ln((k + 2)/(k + 1)) / ln(n + 1)`.
    pub fn log_uniform(n: usize) -> Result<Self> {
        let w: Vec<f64> = (0..n)
            .map(|k| ((k as f64 + 2.0) / (k as f64 + 1.0)).ln())
            .collect();
        Self::from_weights(&w)
    }

    /// `Q(i) ∝ weights[i]` (e.g. an item's count raised to 0.75, or to 1: popularity).
    pub fn from_weights(weights: &[f64]) -> Result<Self> {
        if weights.is_empty() || weights.len() > u32::MAX as usize {
            return Err(Error::param(
                "items",
                format!("a proposal needs 1 to 2³² items, got {}", weights.len()),
            ));
        }
        if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(Error::param(
                "proposal",
                format!(
                    "weight of item {i} is {}: weights must be finite and ≥ 0",
                    weights[i]
                ),
            ));
        }
        let mut cum = Vec::with_capacity(weights.len());
        let mut total = 0f64;
        for w in weights {
            total += w;
            cum.push(total);
        }
        if total <= 0.0 {
            return Err(Error::param("proposal", "every weight is zero"));
        }
        let log_q = weights
            .iter()
            .map(|w| ((w / total).ln() as f32).max(MIN_LOG_Q))
            .collect();
        Ok(Proposal { cum, log_q })
    }

    pub fn len(&self) -> usize {
        self.log_q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log_q.is_empty()
    }

    /// `log Q(item)` (floored at ≈ ln 1e-30).
    pub fn log_q(&self, item: u32) -> f32 {
        self.log_q[item as usize]
    }

    /// One draw.
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        let n = self.log_q.len();
        if self.cum.is_empty() {
            return rng.random_range(0..n) as u32;
        }
        let total = self.cum[n - 1];
        let u = rng.random::<f64>() * total;
        // First item whose cumulative weight exceeds u: zero-weight items are skipped.
        self.cum.partition_point(|&c| c <= u).min(n - 1) as u32
    }

    /// `s` draws with replacement into `out` (cleared first).
    pub fn sample_into(&self, rng: &mut impl Rng, s: usize, out: &mut Vec<u32>) {
        out.clear();
        out.extend((0..s).map(|_| self.sample(rng)));
    }
}

/// The output side of the softmax: a table of `dim`-wide item rows and optional biases.
#[derive(Clone, Copy)]
pub(crate) struct ItemTable<'a> {
    pub rows: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub dim: usize,
}

/// Where the gradients of the summed loss are added (the caller clears them).
pub(crate) struct SoftmaxGrads<'a> {
    /// `batch × dim`, one row per query.
    pub queries: &'a mut [f32],
    /// Rows of the item table (`dim` wide).
    pub rows: &'a mut RowGrad,
    /// The candidates' biases (1 wide); ignored without biases.
    pub bias: Option<&'a mut RowGrad>,
}

/// Scratch buffers kept between batches.
#[derive(Default)]
pub(crate) struct SampledSoftmax {
    negs: Vec<f32>,
    logits: Vec<f32>,
    dnegs: Vec<f32>,
    coef_true: Vec<f32>,
    row_loss: Vec<f64>,
    shift: Vec<f32>,
    col: Vec<f32>,
}

impl SampledSoftmax {
    /// Loss summed over the batch (in f64) for queries `queries` (`batch × dim`), true
    /// items `positives` and shared negatives `negatives` drawn from `q`; adds the
    /// gradients of that sum into `grads`. Runs its products on the current rayon pool.
    pub fn loss(
        &mut self,
        items: ItemTable<'_>,
        queries: &[f32],
        positives: &[u32],
        negatives: &[u32],
        q: &Proposal,
        grads: SoftmaxGrads<'_>,
    ) -> Result<f64> {
        let d = items.dim;
        let b = positives.len();
        let s = negatives.len();
        let n = items.rows.len().checked_div(d).unwrap_or(0);
        check(d == 0 || items.rows.len() == n * d, n * d, items.rows.len())?;
        check(queries.len() == b * d, b * d, queries.len())?;
        check(grads.queries.len() == b * d, b * d, grads.queries.len())?;
        check(grads.rows.dim() == d, d, grads.rows.dim())?;
        check(q.len() == n, n, q.len())?;
        if let Some(bias) = items.bias {
            check(bias.len() == n, n, bias.len())?;
        }
        for (what, ids) in [("positives", positives), ("negatives", negatives)] {
            if let Some(&bad) = ids.iter().find(|&&i| i as usize >= n) {
                return Err(Error::param(
                    what,
                    format!("item {bad} outside a table of {n} rows"),
                ));
            }
        }
        if b == 0 {
            return Ok(0.0);
        }
        let row = |i: u32| &items.rows[i as usize * d..(i as usize + 1) * d];
        let bias = |i: u32| items.bias.map_or(0.0, |bv| bv[i as usize]);

        // Logits of the shared negatives: L (b×s) = U · V_Nᵀ, then + b − log Q.
        self.negs.clear();
        for &j in negatives {
            self.negs.extend_from_slice(row(j));
        }
        self.logits.clear();
        self.logits.resize(b * s, 0.0);
        gemm(
            b,
            s,
            d,
            1.0,
            queries,
            false,
            &self.negs,
            true,
            0.0,
            &mut self.logits,
        );
        self.shift.clear();
        self.shift
            .extend(negatives.iter().map(|&j| bias(j) - q.log_q(j)));

        // Per example (in parallel: rows are independent, and the losses are summed
        // afterwards in batch order, so any number of threads gives the same bits):
        // softmax over {true item} ∪ negatives minus accidental hits; the logits become
        // the coefficients c = p − [true].
        self.coef_true.clear();
        self.coef_true.resize(b, 0.0);
        self.row_loss.clear();
        self.row_loss.resize(b, 0.0);
        let shift = &self.shift;
        self.logits
            .par_chunks_mut(s)
            .zip(self.coef_true.par_iter_mut())
            .zip(self.row_loss.par_iter_mut())
            .zip(positives.par_iter())
            .enumerate()
            .for_each(|(i, (((li, ct), loss), &pos))| {
                let u = &queries[i * d..(i + 1) * d];
                let s_true = dot(u, row(pos)) + bias(pos) - q.log_q(pos);
                for ((l, &sh), &j) in li.iter_mut().zip(shift).zip(negatives) {
                    *l = if j == pos { f32::NEG_INFINITY } else { *l + sh };
                }
                let max = lane_max(li).max(s_true);
                let e_true = exp(s_true - max);
                // masked: exp(−inf) = 0
                let sum = f64::from(e_true) + f64::from(exp_sum(li, max));
                *loss = sum.ln() + f64::from(max - s_true);
                let inv = (1.0 / sum) as f32;
                li.iter_mut().for_each(|l| *l *= inv);
                *ct = e_true * inv - 1.0;
            });
        let total: f64 = self.row_loss.iter().sum();

        // ∂/∂U = C · V_N + c_true · v_true.
        gemm(
            b,
            d,
            s,
            1.0,
            &self.logits,
            false,
            &self.negs,
            false,
            1.0,
            grads.queries,
        );
        for (i, &pos) in positives.iter().enumerate() {
            let c = self.coef_true[i];
            let gq = &mut grads.queries[i * d..(i + 1) * d];
            gq.iter_mut().zip(row(pos)).for_each(|(g, v)| *g += c * v);
        }
        // ∂/∂V_N = Cᵀ · U (one row per draw; a row drawn twice sums), ∂/∂v_true = c·u.
        self.dnegs.clear();
        self.dnegs.resize(s * d, 0.0);
        gemm(
            s,
            d,
            b,
            1.0,
            &self.logits,
            true,
            queries,
            false,
            0.0,
            &mut self.dnegs,
        );
        for (k, &j) in negatives.iter().enumerate() {
            grads.rows.add(j, 1.0, &self.dnegs[k * d..(k + 1) * d]);
        }
        for (i, &pos) in positives.iter().enumerate() {
            grads
                .rows
                .add(pos, self.coef_true[i], &queries[i * d..(i + 1) * d]);
        }
        if let (Some(gb), Some(_)) = (grads.bias, items.bias) {
            // Column sums of C, row by row (contiguous reads; the same order per column).
            self.col.clear();
            self.col.resize(s, 0.0);
            for li in self.logits.chunks_exact(s) {
                self.col.iter_mut().zip(li).for_each(|(c, l)| *c += l);
            }
            for (&c, &j) in self.col.iter().zip(negatives) {
                gb.row_mut(j)[0] += c;
            }
            for (i, &pos) in positives.iter().enumerate() {
                gb.row_mut(pos)[0] += self.coef_true[i];
            }
        }
        Ok(total)
    }
}

fn check(ok: bool, expected: usize, got: usize) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::DimensionMismatch { expected, got })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Independent accumulators of the row reductions: a row's max and sum are not one
/// long dependency chain (and vectorise), in a fixed order.
const LANES: usize = 8;

/// The largest value of `x` (−inf when empty).
pub(crate) fn lane_max(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, &v) in m.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    chunks
        .remainder()
        .iter()
        .chain(&m)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
}

/// Replaces each `v` of `x` by `exp(v − max)` and returns their sum.
pub(crate) fn exp_sum(x: &mut [f32], max: f32) -> f32 {
    let mut s = [0f32; LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (s, v) in s.iter_mut().zip(c) {
            *v = exp(*v - max);
            *s += *v;
        }
    }
    let mut sum: f32 = s.iter().sum();
    for v in chunks.into_remainder() {
        *v = exp(*v - max);
        sum += *v;
    }
    sum
}

/// `e^x` within about 2 ulp (Cephes' `expf`: `2^n · e^r` with `|r| ≤ ln2/2` and a
/// degree-6 polynomial), 0 below −87 (so a masked −inf logit is exactly 0). Written
/// without calls or branches so a loop over a row vectorises: the libm call was the
/// largest cost of a softmax row.
#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Rounds to the nearest integer by the float adder (no SSE4.1 `round` needed).
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³
    let xc = x.clamp(-87.0, 88.0);
    let n = (xc * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let y = p * r * r + r + 1.0;
    // why: n is an integer in [−126, 127] after the clamp, so 127 + n is a valid
    // biased exponent.
    #[allow(clippy::cast_sign_loss)]
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < -87.0 {
        0.0
    } else {
        y * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::gradcheck::{assert_close, numeric_gradient};
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    const D: usize = 3;
    const N: usize = 7;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0) * 0.8)
            .collect()
    }

    /// The reference, in f64 and written per example without shared buffers.
    fn reference(
        u: &[f64],
        v: &[f64],
        bias: &[f64],
        pos: &[u32],
        negs: &[u32],
        q: &Proposal,
    ) -> f64 {
        let mut total = 0.0;
        for (i, &p) in pos.iter().enumerate() {
            let ui = &u[i * D..(i + 1) * D];
            let logit = |j: u32| {
                let vj = &v[j as usize * D..(j as usize + 1) * D];
                ui.iter().zip(vj).map(|(a, b)| a * b).sum::<f64>() + bias[j as usize]
                    - f64::from(q.log_q(j))
            };
            let mut z: Vec<f64> = vec![logit(p)];
            z.extend(negs.iter().filter(|&&j| j != p).map(|&j| logit(j)));
            let lse = z.iter().map(|x| x.exp()).sum::<f64>().ln();
            total += lse - z[0];
        }
        total
    }

    fn run(
        u: &[f32],
        v: &[f32],
        bias: &[f32],
        pos: &[u32],
        negs: &[u32],
        q: &Proposal,
    ) -> (f64, Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut gq = vec![0f32; u.len()];
        let mut rows = RowGrad::new(D);
        let mut gb = RowGrad::new(1);
        let loss = SampledSoftmax::default()
            .loss(
                ItemTable {
                    rows: v,
                    bias: Some(bias),
                    dim: D,
                },
                u,
                pos,
                negs,
                q,
                SoftmaxGrads {
                    queries: &mut gq,
                    rows: &mut rows,
                    bias: Some(&mut gb),
                },
            )
            .unwrap();
        // Scatter the sparse gradients to dense tables for the comparison.
        let mut gv = vec![0f32; N * D];
        for (r, g) in rows.iter() {
            gv[r as usize * D..(r as usize + 1) * D].copy_from_slice(g);
        }
        let mut gbias = vec![0f32; N];
        for (r, g) in gb.iter() {
            gbias[r as usize] = g[0];
        }
        (loss, gq, gv, gbias)
    }

    fn to64(x: &[f32]) -> Vec<f64> {
        x.iter().map(|&v| f64::from(v)).collect()
    }

    #[test]
    fn exp_is_close_to_libm_and_zero_far_below() {
        let mut x = -90.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x), f64::from(x).exp());
            if x < -87.0 {
                assert_eq!(got, 0.0);
            } else {
                let rel = (f64::from(got) - want).abs() / want;
                assert!(rel < 1e-6, "exp({x}) = {got}, want {want}");
            }
            x += 0.0137;
        }
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn gradients_match_finite_differences() {
        // 3 queries, a non-uniform proposal, negatives with a repeat (4 twice) and an
        // accidental hit of the first example's true item (2).
        let q = Proposal::from_weights(&[5.0, 1.0, 3.0, 0.5, 2.0, 1.0, 0.25]).unwrap();
        let (u, v, bias) = (values(3 * D, 1), values(N * D, 2), values(N, 3));
        let pos = [2u32, 5, 0];
        let negs = [4u32, 2, 1, 4, 6];
        let (loss, gq, gv, gb) = run(&u, &v, &bias, &pos, &negs, &q);
        let (u64_, v64, b64) = (to64(&u), to64(&v), to64(&bias));
        let want = reference(&u64_, &v64, &b64, &pos, &negs, &q);
        assert!((loss - want).abs() < 1e-5, "loss {loss} vs {want}");
        let h = 1e-5;
        let nu = numeric_gradient(&u64_, h, |x| reference(x, &v64, &b64, &pos, &negs, &q));
        assert_close("∂/∂u", &gq, &nu, 1e-4);
        let nv = numeric_gradient(&v64, h, |x| reference(&u64_, x, &b64, &pos, &negs, &q));
        assert_close("∂/∂v", &gv, &nv, 1e-4);
        let nb = numeric_gradient(&b64, h, |x| reference(&u64_, &v64, x, &pos, &negs, &q));
        assert_close("∂/∂b", &gb, &nb, 1e-4);
        // Item 3 is no candidate: its row gets no gradient at all.
        assert!(gv[3 * D..4 * D].iter().all(|&g| g == 0.0));
    }

    #[test]
    fn an_accidental_hit_is_masked() {
        let q = Proposal::uniform(N).unwrap();
        let (u, v, bias) = (values(D, 4), values(N * D, 5), values(N, 6));
        let (with_hit, gq1, ..) = run(&u, &v, &bias, &[3], &[1, 3, 6], &q);
        let (without, gq2, ..) = run(&u, &v, &bias, &[3], &[1, 6], &q);
        assert!((with_hit - without).abs() < 1e-6, "{with_hit} vs {without}");
        assert_close("∂/∂u", &gq1, &to64(&gq2), 1e-5);
    }

    #[test]
    fn every_item_once_under_a_uniform_proposal_is_the_full_softmax() {
        let q = Proposal::uniform(N).unwrap();
        let (u, v, bias) = (values(2 * D, 7), values(N * D, 8), values(N, 9));
        let pos = [4u32, 1];
        let all: Vec<u32> = (0..N as u32).collect();
        let (loss, ..) = run(&u, &v, &bias, &pos, &all, &q);
        let mut full = 0f64;
        for (i, &p) in pos.iter().enumerate() {
            let z: Vec<f64> = (0..N)
                .map(|j| {
                    (0..D)
                        .map(|k| f64::from(u[i * D + k]) * f64::from(v[j * D + k]))
                        .sum::<f64>()
                        + f64::from(bias[j])
                })
                .collect();
            full += z.iter().map(|x| x.exp()).sum::<f64>().ln() - z[p as usize];
        }
        assert!((loss - full).abs() < 1e-5, "{loss} vs {full}");
    }

    #[test]
    fn proposals_sample_in_proportion_and_from_the_seed() {
        let q = Proposal::from_weights(&[1.0, 0.0, 3.0]).unwrap();
        let mut rng = SmallRng::seed_from_u64(5);
        let mut counts = [0usize; 3];
        let mut draws = Vec::new();
        q.sample_into(&mut rng, 40_000, &mut draws);
        draws.iter().for_each(|&j| counts[j as usize] += 1);
        assert_eq!(counts[1], 0, "a zero weight is never drawn");
        assert!(
            (counts[2] as f64 / counts[0] as f64 - 3.0).abs() < 0.15,
            "{counts:?}"
        );
        let mut again = Vec::new();
        q.sample_into(&mut SmallRng::seed_from_u64(5), 40_000, &mut again);
        assert_eq!(draws, again);
        let lu = Proposal::log_uniform(1000).unwrap();
        let p0 = f64::from(lu.log_q(0)).exp();
        assert!((p0 - 2f64.ln() / 1001f64.ln()).abs() < 1e-6, "{p0}");
        assert!(Proposal::from_weights(&[0.0, 0.0]).is_err());
        assert!(Proposal::from_weights(&[1.0, f64::NAN]).is_err());
        assert!(Proposal::uniform(0).is_err());
    }

    #[test]
    fn bad_ids_and_shapes_are_errors() {
        let q = Proposal::uniform(N).unwrap();
        let (u, v) = (values(D, 1), values(N * D, 2));
        let mut gq = vec![0f32; D];
        let mut rows = RowGrad::new(D);
        let mut ss = SampledSoftmax::default();
        let items = ItemTable {
            rows: &v,
            bias: None,
            dim: D,
        };
        let mut go = |pos: &[u32], negs: &[u32]| {
            ss.loss(
                items,
                &u,
                pos,
                negs,
                &q,
                SoftmaxGrads {
                    queries: &mut gq,
                    rows: &mut rows,
                    bias: None,
                },
            )
        };
        assert!(go(&[N as u32], &[0]).is_err());
        assert!(go(&[0], &[N as u32 + 5]).is_err());
        assert!(go(&[0, 1], &[2]).is_err(), "2 positives for 1 query");
        assert!(go(&[0], &[2]).is_ok());
    }
}
