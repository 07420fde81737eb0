//! The tower: input assembly (weighted means of embeddings, features, age), ReLU
//! layers to the user vector `u`, and the softmax over the output item table, with
//! every backward pass written out (checked against finite differences in tests.rs).
//!
//! Determinism: products go through `gemm` (fixed blocks); embedding gradients are
//! accumulated by one thread in batch order, so a seed gives the same bits on any
//! number of threads.

// why: sizes are validated far below 2^32 and f32 is the precision of every value.
#![allow(clippy::cast_possible_truncation)]

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::examples::{age_features, AgeScale, Examples};
use super::{ProposalKind, ServeAge, Softmax, YtParams};
use crate::features::{Encoded, Encoder};
use crate::jobs::memory;
use crate::train::nn::dense::Dense;
use crate::train::nn::gemm::gemm;
use crate::train::nn::optim::RowGrad;
use crate::train::nn::sampled_softmax::{
    exp_sum, lane_max, ItemTable, Proposal, SampledSoftmax, SoftmaxGrads,
};
use crate::train::nn::sparse::SparseRows;
use crate::train::nn::{Activation, Adam, Optimizer};
use crate::Result;

/// The sizes of a network.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    pub n_items: usize,
    pub n_tokens: usize,
    /// Width of the item and token input embeddings.
    pub dim: usize,
    pub feature_dim: usize,
    /// Vocabulary of each embedded feature slot.
    pub slot_vocab: Vec<usize>,
    pub n_numeric: usize,
    pub age: bool,
    pub serve_age: ServeAge,
    pub history: usize,
    pub recency: bool,
    /// The most recent items whose embeddings are inputs of their own, besides the mean.
    pub last: usize,
    pub layers: Vec<usize>,
}

impl Shape {
    pub fn new(p: &YtParams, n_items: usize, n_tokens: usize, enc: &Encoder) -> Shape {
        Shape {
            n_items,
            n_tokens,
            dim: p.dim,
            feature_dim: p.feature_dim,
            slot_vocab: enc.slots().iter().map(|s| s.vocab).collect(),
            n_numeric: enc.numeric_width(),
            age: p.example_age,
            serve_age: p.serve_age,
            history: p.history,
            recency: p.recency,
            last: p.last,
            layers: p.layers.clone(),
        }
    }

    /// Columns of the tower's input.
    pub fn input_width(&self) -> usize {
        self.search_at()
            + self.search_width()
            + self.slot_vocab.len() * self.feature_dim
            + self.dense_width()
    }

    /// Where the search-token mean starts: after the history mean and the last items.
    pub fn search_at(&self) -> usize {
        self.dim * (1 + self.last)
    }

    /// The search-token mean's columns: none when training saw no search (they would
    /// always be zero).
    pub fn search_width(&self) -> usize {
        if self.n_tokens > 0 {
            self.dim
        } else {
            0
        }
    }

    /// Numeric features then the age features.
    pub fn dense_width(&self) -> usize {
        self.n_numeric + if self.age { 3 } else { 0 }
    }

    /// Width of `u` and of the output item vectors.
    pub fn out_dim(&self) -> usize {
        self.layers.last().copied().unwrap_or(0)
    }

    /// The tower's weight count.
    pub fn tower_weights(&self) -> usize {
        let mut n_in = self.input_width();
        let mut total = 0;
        for &w in &self.layers {
            total += n_in * w + w;
            n_in = w;
        }
        total
    }

    /// Bytes training allocates: every parameter four times (value, gradient, Adam's
    /// moments), a batch's activations and gradients, and the batch's logits.
    pub fn training_bytes(&self, p: &YtParams) -> u128 {
        let params = self.n_items * (self.dim + self.out_dim() + 1)
            + self.n_tokens * self.dim
            + self.slot_vocab.iter().sum::<usize>() * self.feature_dim
            + self.tower_weights()
            + self.history;
        let widths = self.input_width() + self.layers.iter().sum::<usize>();
        let logits = match p.softmax.resolve(self.n_items, p.negatives) {
            Softmax::Full => self.n_items,
            Softmax::Sampled => p.negatives,
        };
        memory::bytes_of::<f32>(params, 4)
            + memory::bytes_of::<f32>(p.batch, 2 * widths + 2 * logits)
            + memory::bytes_of::<f32>(p.negatives, 2 * self.out_dim())
    }
}

/// One batch of inputs, sparse where they are: history items (weights: the mean, or
/// the recency softmax), search tokens, feature ids per slot, then the dense columns.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    pub rows: usize,
    pub hist: SparseRows,
    /// Per history entry: its position counted from the most recent (0).
    pub hist_pos: Vec<u32>,
    pub search: SparseRows,
    pub slots: Vec<SparseRows>,
    pub dense: Vec<f32>,
}

impl Inputs {
    pub fn clear(&mut self) {
        self.rows = 0;
        self.hist.clear();
        self.hist_pos.clear();
        self.search.clear();
        self.slots.iter_mut().for_each(SparseRows::clear);
        self.dense.clear();
    }

    /// Append `other`'s rows after these (the parts of a batch gathered in parallel).
    pub fn append(&mut self, other: &Inputs) {
        self.rows += other.rows;
        self.hist.append(&other.hist);
        self.hist_pos.extend_from_slice(&other.hist_pos);
        self.search.append(&other.search);
        if self.slots.len() < other.slots.len() {
            self.slots
                .resize_with(other.slots.len(), SparseRows::default);
        }
        for (a, b) in self.slots.iter_mut().zip(&other.slots) {
            a.append(b);
        }
        self.dense.extend_from_slice(&other.dense);
    }
}

/// Examples per parallel task when a batch's inputs are gathered: fixed, so the parts
/// (and the batch they make, in order) are the same on any number of threads.
const GATHER_CHUNK: usize = 64;

/// Rows from which the tower's input is built in parallel.
const PAR_ROWS: usize = 32;

/// Everything but the two item tables: what serving reads from the `.tower` table.
#[derive(Debug, Clone)]
pub(crate) struct Tower {
    pub shape: Shape,
    /// n_tokens × dim.
    pub tokens: Vec<f32>,
    /// Per slot: vocab × feature_dim.
    pub slots: Vec<Vec<f32>>,
    /// One weight per history position (recency), softmax-normalised over a history's
    /// positions.
    pub pos_w: Vec<f32>,
    pub layers: Vec<Dense>,
    pub encoder: Encoder,
    pub age: AgeScale,
}

/// A trained (or training) network.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    pub tower: Tower,
    /// Input item embeddings, n_items × dim.
    pub item_in: Vec<f32>,
    /// Output item vectors, n_items × D, and biases.
    pub out: Vec<f32>,
    pub out_b: Vec<f32>,
}

fn normal(rng: &mut SmallRng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Embedding rows N(0, std²).
fn embedding(rows: usize, dim: usize, std: f32, rng: &mut SmallRng) -> Vec<f32> {
    (0..rows * dim).map(|_| std * normal(rng)).collect()
}

/// PyTorch's `nn.Linear` default: weights and biases U(±1/√fan_in).
fn uniform(len: usize, fan_in: usize, rng: &mut SmallRng) -> Vec<f32> {
    let a = 1.0 / (fan_in.max(1) as f32).sqrt();
    (0..len)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * a)
        .collect()
}

impl Net {
    pub fn new(shape: Shape, encoder: Encoder, age: AgeScale, seed: u64) -> Net {
        let mut rng = SmallRng::seed_from_u64(seed);
        // Item and token rows small (N(0, 0.05²)), so an item seen rarely adds little
        // noise to a mean; feature rows N(0, 1) as PyTorch's default (a user has one id
        // per slot, nothing averages them down).
        let item_in = embedding(shape.n_items, shape.dim, 0.05, &mut rng);
        let tokens = embedding(shape.n_tokens, shape.dim, 0.05, &mut rng);
        let slots = shape
            .slot_vocab
            .iter()
            .map(|&v| embedding(v, shape.feature_dim, 1.0, &mut rng))
            .collect();
        let mut layers = Vec::with_capacity(shape.layers.len());
        let mut n_in = shape.input_width();
        for &n_out in &shape.layers {
            layers.push(Dense {
                n_in,
                n_out,
                w: uniform(n_in * n_out, n_in, &mut rng),
                b: uniform(n_out, n_in, &mut rng),
                act: Activation::Relu,
            });
            n_in = n_out;
        }
        let d = shape.out_dim();
        let out = embedding(shape.n_items, d, 0.05, &mut rng);
        let out_b = vec![0.0; shape.n_items];
        let pos_w = vec![0.0; if shape.recency { shape.history } else { 0 }];
        Net {
            tower: Tower {
                shape,
                tokens,
                slots,
                pos_w,
                layers,
                encoder,
                age,
            },
            item_in,
            out,
            out_b,
        }
    }
}

/// The full softmax cross-entropy of `labels` over rows of `n` logits: returns the
/// summed loss and replaces the logits by `scale` × its gradient, softmax − onehot.
fn softmax_xent(
    z: &mut [f32],
    n: usize,
    labels: &[u32],
    scale: f32,
    row_loss: &mut Vec<f64>,
) -> f64 {
    use rayon::prelude::*;
    row_loss.clear();
    row_loss.resize(labels.len(), 0.0);
    z.par_chunks_mut(n)
        .zip(row_loss.par_iter_mut())
        .zip(labels.par_iter())
        .for_each(|((zr, loss), &y)| {
            let max = lane_max(zr);
            let zy = zr[y as usize];
            let sum = exp_sum(zr, max);
            *loss = f64::from(max) + f64::from(sum).ln() - f64::from(zy);
            let k = scale / sum;
            zr.iter_mut().for_each(|v| *v *= k);
            zr[y as usize] -= scale;
        });
    row_loss.iter().sum()
}

/// Append a row of `cols`, each weighted 1/len (their mean).
fn push_mean(rows: &mut SparseRows, cols: impl Iterator<Item = u32>) {
    let start = rows.cols.len();
    rows.cols.extend(cols);
    let n = rows.cols.len() - start;
    rows.values
        .extend(std::iter::repeat_n(1.0 / n.max(1) as f32, n));
    rows.offsets.push(rows.cols.len());
}

impl Tower {
    /// Append one example (or query) to `inp`: `hist` oldest first (items outside the
    /// model are skipped, the last `history` kept), `searches` the tokens of each search
    /// (those outside the vocabulary skipped), the user's encoded features, its age.
    pub fn push(
        &self,
        inp: &mut Inputs,
        hist: &[u32],
        searches: &[&[u32]],
        features: &Encoded,
        age: f32,
    ) {
        let s = &self.shape;
        // No allocation in the common case (every item known): this runs per example.
        let owned: Vec<u32>;
        let known = if hist.iter().all(|&i| (i as usize) < s.n_items) {
            hist
        } else {
            owned = hist
                .iter()
                .copied()
                .filter(|&i| (i as usize) < s.n_items)
                .collect();
            &owned
        };
        let known = &known[known.len().saturating_sub(s.history)..];
        let n = known.len();
        // Recency: the softmax of the first n position weights; else the mean.
        let (max, sum) = if s.recency && n > 0 {
            let w = &self.pos_w[..n];
            let max = w.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            (max, w.iter().map(|v| (v - max).exp()).sum::<f32>())
        } else {
            (0.0, 0.0)
        };
        for (k, &item) in known.iter().enumerate() {
            let p = n - 1 - k;
            let weight = if s.recency {
                (self.pos_w[p] - max).exp() / sum
            } else {
                1.0 / n as f32
            };
            inp.hist.cols.push(item);
            inp.hist.values.push(weight);
            inp.hist_pos.push(p as u32);
        }
        inp.hist.offsets.push(inp.hist.cols.len());

        push_mean(
            &mut inp.search,
            searches
                .iter()
                .flat_map(|t| t.iter().copied())
                .filter(|&t| (t as usize) < s.n_tokens),
        );
        inp.slots
            .resize_with(s.slot_vocab.len(), SparseRows::default);
        for (j, (rows, &vocab)) in inp.slots.iter_mut().zip(&s.slot_vocab).enumerate() {
            let ids = features.ids.get(j).map_or(&[][..], |v| &v[..]);
            push_mean(rows, ids.iter().copied().filter(|&i| (i as usize) < vocab));
        }
        let start = inp.dense.len();
        inp.dense
            .extend(features.numeric.iter().take(s.n_numeric).copied());
        inp.dense.resize(start + s.n_numeric, 0.0);
        if s.age {
            inp.dense.extend(age_features(age));
        }
        inp.rows += 1;
    }

    /// The tower's input `x` (rows × input_width) of `inp`; `item_row(item, weight, out)`
    /// adds weight × the item's input embedding to `out`.
    pub fn input(
        &self,
        inp: &Inputs,
        item_row: impl Fn(u32, f32, &mut [f32]) + Sync,
        x: &mut Vec<f32>,
    ) {
        use rayon::prelude::*;
        let s = &self.shape;
        let (w, d, f, dw) = (s.input_width(), s.dim, s.feature_dim, s.dense_width());
        let (sw, sa) = (s.search_width(), s.search_at());
        x.clear();
        x.resize(inp.rows * w, 0.0);
        let row = |(r, xr): (usize, &mut [f32])| {
            let (items, weights) = inp.hist.row(r);
            let pos = &inp.hist_pos[inp.hist.offsets[r]..inp.hist.offsets[r + 1]];
            for ((&i, &a), &p) in items.iter().zip(weights).zip(pos) {
                item_row(i, a, &mut xr[..d]);
                let p = p as usize;
                if p < s.last {
                    item_row(i, 1.0, &mut xr[d * (1 + p)..d * (2 + p)]);
                }
            }
            let (toks, vals) = inp.search.row(r);
            for (&t, &v) in toks.iter().zip(vals) {
                let e = &self.tokens[t as usize * d..(t as usize + 1) * d];
                xr[sa..sa + sw]
                    .iter_mut()
                    .zip(e)
                    .for_each(|(x, e)| *x += v * e);
            }
            for (j, rows) in inp.slots.iter().enumerate() {
                let (ids, vals) = rows.row(r);
                let at = sa + sw + j * f;
                for (&id, &v) in ids.iter().zip(vals) {
                    let e = &self.slots[j][id as usize * f..(id as usize + 1) * f];
                    xr[at..at + f]
                        .iter_mut()
                        .zip(e)
                        .for_each(|(x, e)| *x += v * e);
                }
            }
            xr[w - dw..].copy_from_slice(&inp.dense[r * dw..(r + 1) * dw]);
        };
        // Rows are independent: a training batch builds them in parallel (each in a
        // fixed order); a few queries stay on the calling thread (no pool round trip).
        if inp.rows >= PAR_ROWS {
            x.par_chunks_mut(w).enumerate().for_each(row);
        } else {
            x.chunks_mut(w).enumerate().for_each(row);
        }
    }

    /// Run the layers on `acts[0]` (rows × input_width), each layer's output into the
    /// next buffer; the last is `u` (rows × D).
    pub fn forward(&self, rows: usize, acts: &mut Vec<Vec<f32>>) {
        acts.resize_with(self.layers.len() + 1, Vec::new);
        for (l, layer) in self.layers.iter().enumerate() {
            let (done, rest) = acts.split_at_mut(l + 1);
            rest[0].clear();
            rest[0].resize(rows * layer.n_out, 0.0);
            layer.forward(rows, &done[l], &mut rest[0]);
        }
    }

    /// The user vectors of a batch of queries (rows × D): one product per layer.
    pub fn user_vectors(
        &self,
        inp: &Inputs,
        item_row: impl Fn(u32, f32, &mut [f32]) + Sync,
    ) -> Vec<f32> {
        let mut acts = vec![Vec::new()];
        self.input(inp, item_row, &mut acts[0]);
        self.forward(inp.rows, &mut acts);
        acts.pop().unwrap_or_default()
    }

    /// The age a query is served with, given the user's last event time.
    pub fn serve_age(&self, last: Option<i64>) -> f32 {
        match (self.shape.serve_age, last) {
            (ServeAge::Last, Some(t)) => self.age.age(t),
            _ => 0.0,
        }
    }
}

/// Gradients of one batch, before the optimizers use them.
pub(crate) struct Grads {
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
    pub item_in: RowGrad,
    pub tokens: RowGrad,
    pub slots: Vec<RowGrad>,
    pub pos_w: Vec<f32>,
    /// Full softmax: dense gradients of the output table; sampled: rows.
    pub out: Vec<f32>,
    pub out_b: Vec<f32>,
    pub out_rows: RowGrad,
    pub out_b_rows: RowGrad,
    /// dL/du (rows × D).
    pub du: Vec<f32>,
}

impl Grads {
    pub fn new(net: &Net) -> Grads {
        let s = &net.tower.shape;
        Grads {
            layers: net
                .tower
                .layers
                .iter()
                .map(|l| (vec![0.0; l.w.len()], vec![0.0; l.b.len()]))
                .collect(),
            item_in: RowGrad::new(s.dim),
            tokens: RowGrad::new(s.dim),
            slots: (0..s.slot_vocab.len())
                .map(|_| RowGrad::new(s.feature_dim))
                .collect(),
            pos_w: vec![0.0; net.tower.pos_w.len()],
            out: Vec::new(),
            out_b: Vec::new(),
            out_rows: RowGrad::new(s.out_dim()),
            out_b_rows: RowGrad::new(1),
            du: Vec::new(),
        }
    }
}

/// The loss on the batch's user vectors `u`, summed over the examples; its gradient
/// goes to `g.du` and the output table's gradient to `g.out`/`g.out_b` (full) or
/// `g.out_rows`/`g.out_b_rows` (sampled), all for the mean over the batch.
pub(crate) enum Loss<'a> {
    Full {
        logits: &'a mut Vec<f32>,
        /// Kept per-row losses.
        row_loss: &'a mut Vec<f64>,
    },
    Sampled {
        softmax: &'a mut SampledSoftmax,
        proposal: &'a Proposal,
        negatives: &'a [u32],
    },
}

impl Net {
    /// Loss summed over the batch for user vectors `u` (rows × D) and `labels`.
    pub fn loss(&self, u: &[f32], labels: &[u32], loss: Loss<'_>, g: &mut Grads) -> Result<f64> {
        let (n, d, b) = (
            self.tower.shape.n_items,
            self.tower.shape.out_dim(),
            labels.len(),
        );
        let mean = 1.0 / b.max(1) as f32;
        g.du.clear();
        g.du.resize(b * d, 0.0);
        match loss {
            Loss::Full {
                logits,
                row_loss: x,
            } => {
                logits.clear();
                logits.resize(b * n, 0.0);
                for z in logits.chunks_mut(n) {
                    z.copy_from_slice(&self.out_b);
                }
                gemm(b, n, d, 1.0, u, false, &self.out, true, 1.0, logits);
                let total = softmax_xent(logits, n, labels, mean, x);
                // dZ is in `logits`: dV = dZᵀ·U, db = Σ_rows dZ, dU = dZ·V.
                g.out.resize(n * d, 0.0);
                gemm(n, d, b, 1.0, logits, true, u, false, 0.0, &mut g.out);
                g.out_b.clear();
                g.out_b.resize(n, 0.0);
                for z in logits.chunks(n) {
                    g.out_b.iter_mut().zip(z).for_each(|(g, z)| *g += z);
                }
                gemm(
                    b, d, n, 1.0, logits, false, &self.out, false, 0.0, &mut g.du,
                );
                Ok(total)
            }
            Loss::Sampled {
                softmax,
                proposal,
                negatives,
            } => {
                g.out_rows.clear();
                g.out_b_rows.clear();
                let total = softmax.loss(
                    ItemTable {
                        rows: &self.out,
                        bias: Some(&self.out_b),
                        dim: d,
                    },
                    u,
                    labels,
                    negatives,
                    proposal,
                    SoftmaxGrads {
                        queries: &mut g.du,
                        rows: &mut g.out_rows,
                        bias: Some(&mut g.out_b_rows),
                    },
                )?;
                g.du.iter_mut().for_each(|v| *v *= mean);
                g.out_rows.scale(mean);
                g.out_b_rows.scale(mean);
                Ok(total)
            }
        }
    }

    /// Backward from `g.du` through the layers to the embeddings: fills `g`'s layer,
    /// embedding and recency gradients. `acts` are the forward pass's buffers;
    /// `dacts` scratch.
    pub fn backward(
        &self,
        inp: &Inputs,
        acts: &[Vec<f32>],
        dacts: &mut Vec<Vec<f32>>,
        g: &mut Grads,
    ) {
        let t = &self.tower;
        let s = &t.shape;
        let rows = inp.rows;
        let nl = t.layers.len();
        dacts.resize_with(nl + 1, Vec::new);
        dacts[nl].clear();
        dacts[nl].extend_from_slice(&g.du);
        for l in (0..nl).rev() {
            let layer = &t.layers[l];
            let (lo, hi) = dacts.split_at_mut(l + 1);
            lo[l].clear();
            lo[l].resize(rows * layer.n_in, 0.0);
            let (gw, gb) = &mut g.layers[l];
            layer.backward(
                rows,
                &acts[l],
                &acts[l + 1],
                &mut hi[0],
                gw,
                gb,
                Some(&mut lo[l]),
            );
        }
        let dx = &dacts[0];
        let (w, d, f, sw) = (s.input_width(), s.dim, s.feature_dim, s.search_width());
        let sa = s.search_at();
        g.item_in.clear();
        g.tokens.clear();
        g.slots.iter_mut().for_each(RowGrad::clear);
        g.pos_w.iter_mut().for_each(|v| *v = 0.0);
        let mut da = Vec::new();
        for r in 0..rows {
            let gr = &dx[r * w..(r + 1) * w];
            let gh = &gr[..d];
            let (items, weights) = inp.hist.row(r);
            let pos = &inp.hist_pos[inp.hist.offsets[r]..inp.hist.offsets[r + 1]];
            da.clear();
            for ((&i, &a), &p) in items.iter().zip(weights).zip(pos) {
                g.item_in.add(i, a, gh);
                let p = p as usize;
                if p < s.last {
                    g.item_in.add(i, 1.0, &gr[d * (1 + p)..d * (2 + p)]);
                }
                if s.recency {
                    let e = &self.item_in[i as usize * d..(i as usize + 1) * d];
                    da.push(e.iter().zip(gh).map(|(e, g)| e * g).sum::<f32>());
                }
            }
            if s.recency {
                // Softmax backward: dw_p = a_p·(da_p − Σ_q a_q·da_q).
                let dot: f32 = weights.iter().zip(&da).map(|(a, d)| a * d).sum();
                for ((&p, &a), &dap) in pos.iter().zip(weights).zip(&da) {
                    g.pos_w[p as usize] += a * (dap - dot);
                }
            }
            let (toks, vals) = inp.search.row(r);
            for (&tk, &v) in toks.iter().zip(vals) {
                g.tokens.add(tk, v, &gr[sa..sa + sw]);
            }
            for (j, srows) in inp.slots.iter().enumerate() {
                let (ids, vals) = srows.row(r);
                let at = sa + sw + j * f;
                for (&id, &v) in ids.iter().zip(vals) {
                    g.slots[j].add(id, v, &gr[at..at + f]);
                }
            }
        }
    }
}

/// A network and its optimizers' state, with the batch buffers kept between batches.
pub(crate) struct Trainer {
    pub net: Net,
    softmax_kind: Softmax,
    n_negatives: usize,
    history: usize,
    age: bool,
    opt_layers: Vec<(Adam, Adam)>,
    opt_item_in: Adam,
    opt_tokens: Adam,
    opt_slots: Vec<Adam>,
    opt_pos: Adam,
    opt_out: Adam,
    opt_out_b: Adam,
    proposal: Option<Proposal>,
    sampled: SampledSoftmax,
    negatives: Vec<u32>,
    logits: Vec<f32>,
    row_loss: Vec<f64>,
    inputs: Inputs,
    acts: Vec<Vec<f32>>,
    dacts: Vec<Vec<f32>>,
    grads: Grads,
    labels: Vec<u32>,
    /// Per part of a batch gathered in parallel: its inputs and labels.
    parts: Vec<(Inputs, Vec<u32>)>,
    no_features: Encoded,
}

impl Trainer {
    pub fn new(net: Net, p: &YtParams, ex: &Examples) -> Result<Trainer> {
        let adam = |len: usize| {
            let mut a = Adam::new(len, p.learning_rate);
            a.weight_decay = p.reg;
            a
        };
        let t = &net.tower;
        let softmax_kind = p.softmax.resolve(t.shape.n_items, p.negatives);
        let proposal = match softmax_kind {
            Softmax::Full => None,
            Softmax::Sampled => Some(match p.proposal {
                ProposalKind::Uniform => Proposal::uniform(t.shape.n_items)?,
                ProposalKind::Popularity => Proposal::from_weights(
                    &ex.label_counts
                        .iter()
                        .map(|&c| f64::from(c))
                        .collect::<Vec<_>>(),
                )?,
            }),
        };
        Ok(Trainer {
            softmax_kind,
            n_negatives: p.negatives,
            history: p.history,
            age: p.example_age,
            opt_layers: t
                .layers
                .iter()
                .map(|l| (adam(l.w.len()), adam(l.b.len())))
                .collect(),
            opt_item_in: adam(net.item_in.len()),
            opt_tokens: adam(t.tokens.len()),
            opt_slots: t.slots.iter().map(|s| adam(s.len())).collect(),
            opt_pos: adam(t.pos_w.len()),
            opt_out: adam(net.out.len()),
            opt_out_b: adam(net.out_b.len()),
            proposal,
            sampled: SampledSoftmax::default(),
            negatives: Vec::new(),
            logits: Vec::new(),
            row_loss: Vec::new(),
            inputs: Inputs::default(),
            acts: Vec::new(),
            dacts: Vec::new(),
            grads: Grads::new(&net),
            labels: Vec::new(),
            parts: Vec::new(),
            no_features: t.encoder.encode(&[]),
            net,
        })
    }

    /// Build the inputs of examples `chunk` into the kept buffers: parts of
    /// `GATHER_CHUNK` examples in parallel, then joined in order.
    pub fn gather(&mut self, ex: &Examples, chunk: &[u32]) {
        use rayon::prelude::*;
        let n_parts = chunk.len().div_ceil(GATHER_CHUNK);
        if self.parts.len() < n_parts {
            self.parts.resize_with(n_parts, Default::default);
        }
        let (tower, history, use_age) = (&self.net.tower, self.history, self.age);
        let no_features = &self.no_features;
        self.parts[..n_parts]
            .par_iter_mut()
            .zip(chunk.par_chunks(GATHER_CHUNK))
            .for_each(|((inp, labels), part)| {
                inp.clear();
                labels.clear();
                for &k in part {
                    let (label, hist, user, when) = ex.get(k as usize, history);
                    let searches = ex.searches.before(user, when, history);
                    let features = ex.features.get(user as usize).unwrap_or(no_features);
                    let age = if use_age { ex.age(k as usize) } else { 0.0 };
                    tower.push(inp, hist, &searches, features, age);
                    labels.push(label);
                }
            });
        self.inputs.clear();
        self.labels.clear();
        for (inp, labels) in &self.parts[..n_parts] {
            self.inputs.append(inp);
            self.labels.extend_from_slice(labels);
        }
    }

    /// One update on examples `chunk`; returns the summed loss. `seed` draws the batch's
    /// negatives.
    pub fn step(&mut self, ex: &Examples, chunk: &[u32], seed: u64) -> Result<f64> {
        self.gather(ex, chunk);
        let net = &self.net;
        let d = net.tower.shape.dim;
        let item_in = &net.item_in;
        self.acts.resize_with(1, Vec::new);
        net.tower.input(
            &self.inputs,
            |i, a, out| {
                let e = &item_in[i as usize * d..(i as usize + 1) * d];
                out.iter_mut().zip(e).for_each(|(x, e)| *x += a * e);
            },
            &mut self.acts[0],
        );
        net.tower.forward(self.inputs.rows, &mut self.acts);
        let u = self.acts.last().map_or(&[][..], |v| &v[..]);
        let loss = match (&self.proposal, self.softmax_kind) {
            (Some(q), Softmax::Sampled) => {
                let mut rng = SmallRng::seed_from_u64(seed);
                q.sample_into(&mut rng, self.n_negatives, &mut self.negatives);
                Loss::Sampled {
                    softmax: &mut self.sampled,
                    proposal: q,
                    negatives: &self.negatives,
                }
            }
            _ => Loss::Full {
                logits: &mut self.logits,
                row_loss: &mut self.row_loss,
            },
        };
        let total = net.loss(u, &self.labels, loss, &mut self.grads)?;
        net.backward(&self.inputs, &self.acts, &mut self.dacts, &mut self.grads);
        self.apply();
        Ok(total)
    }

    fn apply(&mut self) {
        let (net, g) = (&mut self.net, &self.grads);
        for ((layer, (gw, gb)), (ow, ob)) in net
            .tower
            .layers
            .iter_mut()
            .zip(&g.layers)
            .zip(&mut self.opt_layers)
        {
            ow.step(&mut layer.w, gw);
            ob.step(&mut layer.b, gb);
        }
        self.opt_item_in.step_rows(&mut net.item_in, &g.item_in);
        if !g.tokens.is_empty() {
            self.opt_tokens.step_rows(&mut net.tower.tokens, &g.tokens);
        }
        for ((table, gs), o) in net
            .tower
            .slots
            .iter_mut()
            .zip(&g.slots)
            .zip(&mut self.opt_slots)
        {
            o.step_rows(table, gs);
        }
        if !net.tower.pos_w.is_empty() {
            self.opt_pos.step(&mut net.tower.pos_w, &g.pos_w);
        }
        match self.softmax_kind {
            Softmax::Full => {
                self.opt_out.step(&mut net.out, &g.out);
                self.opt_out_b.step(&mut net.out_b, &g.out_b);
            }
            Softmax::Sampled => {
                self.opt_out.step_rows(&mut net.out, &g.out_rows);
                self.opt_out_b.step_rows(&mut net.out_b, &g.out_b_rows);
            }
        }
    }
}
