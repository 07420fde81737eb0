//! The network: the wide weights, the embeddings, the deep tower and the
//! factorisation-machine term, with an explicit forward and backward pass on a batch.
//!
//! `logit = wide + deep + fm`, each present when its part is:
//! - wide: `w₀ + Σ w[b]` over the pair's buckets;
//! - deep: the ReLU tower on `x = [e₁, …, e_F, dense]`, `e_f` the mean of field f's
//!   embedding rows, ending in one linear output;
//! - fm: `½ Σ_d ((Σ_f e_fd)² − Σ_f e_fd²)`, every pair of fields' dot product.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::inputs::{Batch, Spec};
use super::{DeepOptimizer, Parts, WdParams};
use crate::train::nn::adagrad::AdaGrad;
use crate::train::nn::dense::Dense;
use crate::train::nn::ftrl::Ftrl;
use crate::train::nn::optim::RowGrad;
use crate::train::nn::{Activation, Adam, Optimizer};
use crate::Result;

/// Sizes of a network.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    pub parts: Parts,
    pub dim: usize,
    /// Rows of each field's embedding table: user ids + 1, item ids + 1, then the
    /// encoders' vocabularies, then item ids + 1 again for the recent items' field.
    pub vocab: Vec<usize>,
    pub n_dense: usize,
    /// Hidden widths; the output layer of width 1 follows.
    pub layers: Vec<usize>,
    /// Wide weights: the bias and the buckets.
    pub wide_len: usize,
}

impl Shape {
    pub fn new(p: &WdParams, n_users: usize, n_items: usize, spec: &Spec) -> Shape {
        let mut vocab = vec![n_users + 1, n_items + 1];
        vocab.extend(spec.user_enc.slots().iter().map(|s| s.vocab));
        vocab.extend(spec.item_enc.slots().iter().map(|s| s.vocab));
        if spec.recent > 0 {
            vocab.push(n_items + 1);
        }
        Shape {
            parts: p.parts,
            dim: p.dim,
            vocab,
            n_dense: spec.dims().n_dense,
            layers: if p.parts.deep {
                p.layers.clone()
            } else {
                Vec::new()
            },
            wide_len: if p.parts.wide { p.wide_buckets + 1 } else { 0 },
        }
    }

    pub fn n_fields(&self) -> usize {
        self.vocab.len()
    }

    pub fn input_width(&self) -> usize {
        self.n_fields() * self.dim + self.n_dense
    }

    /// Weights of the tower (the output layer included).
    fn tower_weights(&self) -> u128 {
        let mut n_in = self.input_width() as u128;
        let mut total = 0u128;
        for &h in self.layers.iter().chain(std::iter::once(&1)) {
            total += n_in * h as u128 + h as u128;
            n_in = h as u128;
        }
        total
    }

    /// Bytes of one network's weights.
    pub fn network_bytes(&self) -> u128 {
        let emb: u128 = if self.parts.embeds() {
            self.vocab
                .iter()
                .map(|&v| v as u128 * self.dim as u128)
                .sum()
        } else {
            0
        };
        4 * (self.wide_len as u128 + emb + self.tower_weights())
    }

    /// Bytes training holds: every weight with its optimizer state (three copies with
    /// FTRL or Adam), a best copy, and a batch's activations.
    pub fn training_bytes(&self, batch: usize) -> u128 {
        let acts: u128 = batch as u128
            * (2 * self.input_width() + 2 * self.layers.iter().sum::<usize>() + 4) as u128;
        4 * self.network_bytes() + 4 * acts
    }
}

/// The trained parameters.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    pub shape: Shape,
    /// `wide_len` weights, bias first (empty without the wide part).
    pub wide: Vec<f32>,
    /// Per field, `vocab × dim` (empty without the deep and fm parts).
    pub emb: Vec<Vec<f32>>,
    /// The tower, the output layer last (empty without the deep part).
    pub layers: Vec<Dense>,
}

impl Net {
    /// A fresh network: small random embeddings, He-uniform ReLU layers, wide at 0.
    pub fn new(shape: Shape, seed: u64) -> Net {
        let mut rng = SmallRng::seed_from_u64(seed);
        let emb = if shape.parts.embeds() {
            shape
                .vocab
                .iter()
                .map(|&v| {
                    (0..v * shape.dim)
                        .map(|_| rng.random_range(-0.05f32..0.05))
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut layers = Vec::new();
        if shape.parts.deep {
            let mut n_in = shape.input_width();
            let n = shape.layers.len();
            for (k, &h) in shape.layers.iter().chain(std::iter::once(&1)).enumerate() {
                let last = k == n;
                // He-uniform for the ReLU layers; the output layer smaller.
                let bound = if last {
                    (1.0 / n_in as f32).sqrt()
                } else {
                    (6.0 / n_in as f32).sqrt()
                };
                layers.push(Dense {
                    n_in,
                    n_out: h,
                    w: (0..n_in * h)
                        .map(|_| rng.random_range(-bound..bound))
                        .collect(),
                    b: vec![0.0; h],
                    act: if last {
                        Activation::Identity
                    } else {
                        Activation::Relu
                    },
                });
                n_in = h;
            }
        }
        Net {
            wide: vec![0.0; shape.wide_len],
            shape,
            emb,
            layers,
        }
    }

    /// The logits of a batch (in `acts.logits`), keeping what backward needs.
    pub fn forward(&self, b: &Batch, acts: &mut Acts) {
        let s = &self.shape;
        let (n, d, nf) = (b.n, s.dim, s.n_fields());
        acts.logits.clear();
        acts.logits.resize(n, 0.0);
        if s.parts.wide {
            for (r, z) in acts.logits.iter_mut().enumerate() {
                *z += b
                    .buckets(r)
                    .iter()
                    .map(|&k| self.wide.get(k as usize).copied().unwrap_or(0.0))
                    .sum::<f32>();
            }
        }
        if !s.parts.embeds() {
            return;
        }
        let width = s.input_width();
        acts.x.clear();
        acts.x.resize(n * width, 0.0);
        for r in 0..n {
            let row = &mut acts.x[r * width..(r + 1) * width];
            for f in 0..nf {
                let ids = b.field(nf, r, f);
                let out = &mut row[f * d..(f + 1) * d];
                let scale = 1.0 / ids.len().max(1) as f32;
                let table = &self.emb[f];
                for &id in ids {
                    let at = id as usize * d;
                    // An id past the table (a vocabulary grown since) reads as unknown.
                    let e = table.get(at..at + d).unwrap_or(&table[..d]);
                    for (o, v) in out.iter_mut().zip(e) {
                        *o += scale * v;
                    }
                }
            }
            row[nf * d..].copy_from_slice(&b.dense[r * s.n_dense..(r + 1) * s.n_dense]);
        }
        if s.parts.deep {
            acts.h.resize(self.layers.len(), Vec::new());
            for (k, layer) in self.layers.iter().enumerate() {
                let (before, rest) = acts.h.split_at_mut(k);
                let input = if k == 0 { &acts.x } else { &before[k - 1] };
                let out = &mut rest[0];
                out.clear();
                out.resize(n * layer.n_out, 0.0);
                layer.forward(n, input, out);
            }
            if let Some(last) = acts.h.last() {
                for (z, y) in acts.logits.iter_mut().zip(last) {
                    *z += y;
                }
            }
        }
        if s.parts.fm {
            acts.fm_sum.clear();
            acts.fm_sum.resize(n * d, 0.0);
            for r in 0..n {
                let row = &acts.x[r * width..r * width + nf * d];
                let sum = &mut acts.fm_sum[r * d..(r + 1) * d];
                let mut sq = 0.0f32;
                for e in row.chunks_exact(d) {
                    for (s, v) in sum.iter_mut().zip(e) {
                        *s += v;
                        sq += v * v;
                    }
                }
                let total: f32 = sum.iter().map(|v| v * v).sum();
                acts.logits[r] += 0.5 * (total - sq);
            }
        }
    }

    /// Gradients of `Σ dz·logit` into `g` (cleared first), after [`Net::forward`] on
    /// the same batch.
    pub fn backward(&self, b: &Batch, acts: &mut Acts, dz: &[f32], g: &mut Grads) {
        let s = &self.shape;
        let (n, d, nf) = (b.n, s.dim, s.n_fields());
        g.reset(self);
        if let (true, Some(gw)) = (s.parts.wide, g.wide.as_mut()) {
            for (r, &dzr) in dz.iter().enumerate().take(n) {
                for &k in b.buckets(r) {
                    if (k as usize) < self.wide.len() {
                        gw.row_mut(k)[0] += dzr;
                    }
                }
            }
        }
        if !s.parts.embeds() {
            return;
        }
        let width = s.input_width();
        g.dx.clear();
        g.dx.resize(n * width, 0.0);
        if s.parts.deep {
            let mut dy = dz[..n].to_vec();
            for k in (0..self.layers.len()).rev() {
                let layer = &self.layers[k];
                let input = if k == 0 { &acts.x } else { &acts.h[k - 1] };
                let mut dprev = vec![0f32; n * layer.n_in];
                layer.backward(
                    n,
                    input,
                    &acts.h[k],
                    &mut dy,
                    &mut g.dw[k],
                    &mut g.db[k],
                    Some(&mut dprev),
                );
                dy = dprev;
            }
            g.dx.copy_from_slice(&dy);
        }
        if s.parts.fm {
            for (r, &dzr) in dz.iter().enumerate().take(n) {
                let sum = &acts.fm_sum[r * d..(r + 1) * d];
                let x = &acts.x[r * width..r * width + nf * d];
                let gx = &mut g.dx[r * width..r * width + nf * d];
                for (ge, e) in gx.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                    for ((gv, sv), v) in ge.iter_mut().zip(sum).zip(e) {
                        *gv += dzr * (sv - v);
                    }
                }
            }
        }
        for r in 0..n {
            for f in 0..nf {
                let ids = b.field(nf, r, f);
                let scale = 1.0 / ids.len().max(1) as f32;
                let gx = &g.dx[r * width + f * d..r * width + (f + 1) * d];
                let rows = self.emb[f].len() / d.max(1);
                for &id in ids {
                    let id = if (id as usize) < rows { id } else { 0 };
                    g.emb[f].add(id, scale, gx);
                }
            }
        }
    }
}

/// The mean logit of `nets` (an ensemble of the same shape) over a batch, in
/// `acts.logits`; one network's forward pass when there is one.
// why: at most `MAX_ENSEMBLE` networks are averaged.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn forward_mean(nets: &[Net], b: &Batch, acts: &mut Acts) {
    let Some((first, rest)) = nets.split_first() else {
        acts.logits.clear();
        acts.logits.resize(b.n, 0.0);
        return;
    };
    first.forward(b, acts);
    if rest.is_empty() {
        return;
    }
    // The sum lives in the activations' own buffer: no allocation once it has grown.
    let mut sum = std::mem::take(&mut acts.sum);
    sum.clear();
    sum.extend_from_slice(&acts.logits);
    for net in rest {
        net.forward(b, acts);
        for (s, z) in sum.iter_mut().zip(&acts.logits) {
            *s += z;
        }
    }
    let n = nets.len() as f32;
    for (z, s) in acts.logits.iter_mut().zip(&sum) {
        *z = s / n;
    }
    acts.sum = sum;
}

/// A batch's activations.
#[derive(Debug, Default)]
pub(crate) struct Acts {
    pub logits: Vec<f32>,
    /// `n × input_width`: the field means then the dense values.
    pub x: Vec<f32>,
    /// Each layer's output.
    pub h: Vec<Vec<f32>>,
    /// `n × dim`: Σ_f e_f per pair (fm).
    pub fm_sum: Vec<f32>,
    /// An ensemble's logits summed ([`forward_mean`]).
    sum: Vec<f32>,
}

/// A batch's gradients.
#[derive(Debug, Default)]
pub(crate) struct Grads {
    pub wide: Option<RowGrad>,
    pub emb: Vec<RowGrad>,
    pub dw: Vec<Vec<f32>>,
    pub db: Vec<Vec<f32>>,
    pub dx: Vec<f32>,
}

impl Grads {
    fn reset(&mut self, net: &Net) {
        let wide = self.wide.get_or_insert_with(|| RowGrad::new(1));
        wide.clear();
        self.emb
            .resize_with(net.emb.len(), || RowGrad::new(net.shape.dim));
        for e in &mut self.emb {
            e.clear();
        }
        self.dw.resize(net.layers.len(), Vec::new());
        self.db.resize(net.layers.len(), Vec::new());
        for (k, l) in net.layers.iter().enumerate() {
            self.dw[k].resize(l.w.len(), 0.0);
            self.db[k].resize(l.b.len(), 0.0);
        }
    }
}

/// The network and its optimizers: FTRL for the wide weights, AdaGrad (or Adam) for
/// the rest, sparse rows for the embeddings.
pub(crate) struct Trainer {
    pub net: Net,
    wide: Ftrl,
    emb: Vec<Box<dyn Optimizer>>,
    layers: Vec<(Box<dyn Optimizer>, Box<dyn Optimizer>)>,
    emb_l2: f32,
}

impl Trainer {
    pub fn new(net: Net, p: &WdParams) -> Result<Trainer> {
        let opt = |len: usize| -> Result<Box<dyn Optimizer>> {
            Ok(match p.optimizer {
                DeepOptimizer::AdaGrad => Box::new(AdaGrad::new(len, p.learning_rate)?),
                DeepOptimizer::Adam => Box::new(Adam::new(len, p.learning_rate)),
            })
        };
        let emb = net
            .emb
            .iter()
            .map(|t| opt(t.len()))
            .collect::<Result<Vec<_>>>()?;
        let layers = net
            .layers
            .iter()
            .map(|l| Ok((opt(l.w.len())?, opt(l.b.len())?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Trainer {
            wide: Ftrl::new(net.wide.len(), p.ftrl())?,
            emb,
            layers,
            net,
            emb_l2: p.emb_l2,
        })
    }

    /// One step of every optimizer on a batch's gradients (the embeddings' L2 added to
    /// their rows' gradients first).
    pub fn apply(&mut self, g: &mut Grads) {
        let net = &mut self.net;
        if let Some(w) = g.wide.as_ref() {
            if !net.wide.is_empty() {
                self.wide.step_rows(&mut net.wide, w);
            }
        }
        for ((table, opt), ge) in net.emb.iter_mut().zip(&mut self.emb).zip(&mut g.emb) {
            if self.emb_l2 > 0.0 {
                ge.add_l2(table, self.emb_l2);
            }
            opt.step_rows(table, ge);
        }
        for (k, (l, (ow, ob))) in net.layers.iter_mut().zip(&mut self.layers).enumerate() {
            ow.step(&mut l.w, &g.dw[k]);
            ob.step(&mut l.b, &g.db[k]);
        }
    }
}
