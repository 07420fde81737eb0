//! The network both models train: a sparse first layer (I → d₁), dense layers, and a
//! dense last layer back to I, as a chain. The VAE's encoder ends in a layer whose
//! output is [mean, log-variance] of the latent Gaussian (`split`); the next layer reads
//! a sample from it in training and the mean at inference.

use rand::rngs::SmallRng;
use rand::Rng;
use rayon::prelude::*;

use crate::train::nn::dense::Dense;
use crate::train::nn::dropout::dropout_sparse;
use crate::train::nn::multinomial::multinomial_nll;
use crate::train::nn::sparse::{SparseLinear, SparseRows, Transposed};
use crate::train::nn::{Activation, Adam, Optimizer};

/// Which of Liang et al.'s two models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dae,
    Vae,
}

#[derive(Debug, Clone)]
pub(crate) struct Net {
    pub kind: Kind,
    pub first: SparseLinear,
    pub first_act: Activation,
    pub mid: Vec<Dense>,
    /// The chain layer (0 = first) whose output is [mean, log-variance] (VAE only).
    pub split: Option<usize>,
    pub last: Dense,
}

/// A standard normal draw (Box–Muller), so the generator is the only dependency.
// why: computed in f64 for the logarithm's tail, used in f32.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn normal(rng: &mut SmallRng) -> f32 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Xavier-uniform weights and N(0, 0.001²) biases, as Liang et al.'s code.
// why: the bound is a small positive number, f32 is its precision.
#[allow(clippy::cast_possible_truncation)]
fn init(n_in: usize, n_out: usize, rng: &mut SmallRng) -> (Vec<f32>, Vec<f32>) {
    let a = (6.0 / (n_in + n_out) as f64).sqrt() as f32;
    let w = (0..n_in * n_out)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * a)
        .collect();
    let b = (0..n_out).map(|_| 0.001 * normal(rng)).collect();
    (w, b)
}

impl Net {
    /// `hidden` = encoder widths after the input, the last being the code (DAE) or
    /// the latent size (VAE); the decoder mirrors them back to `n_items`.
    pub fn new(kind: Kind, n_items: usize, hidden: &[usize], rng: &mut SmallRng) -> Net {
        let k = hidden.len();
        let mut enc: Vec<usize> = std::iter::once(n_items)
            .chain(hidden.iter().copied())
            .collect();
        if kind == Kind::Vae {
            enc[k] *= 2;
        }
        let mut widths: Vec<(usize, usize, Activation)> = (0..k)
            .map(|j| {
                let act = if kind == Kind::Vae && j == k - 1 {
                    Activation::Identity
                } else {
                    Activation::Tanh
                };
                (enc[j], enc[j + 1], act)
            })
            .collect();
        let dec: Vec<usize> = hidden.iter().rev().copied().chain([n_items]).collect();
        for j in 0..k {
            let act = if j == k - 1 {
                Activation::Identity
            } else {
                Activation::Tanh
            };
            widths.push((dec[j], dec[j + 1], act));
        }
        let mut layers = widths.into_iter().map(|(i, o, act)| {
            let (w, b) = init(i, o, rng);
            Dense {
                n_in: i,
                n_out: o,
                w,
                b,
                act,
            }
        });
        let f = layers.next().expect("at least two layers");
        let mut rest: Vec<Dense> = layers.collect();
        let last = rest.pop().expect("at least two layers");
        Net {
            kind,
            first: SparseLinear {
                n_in: f.n_in,
                n_out: f.n_out,
                w: f.w,
                b: f.b,
            },
            first_act: f.act,
            mid: rest,
            split: (kind == Kind::Vae).then_some(k - 1),
            last,
        }
    }

    pub fn n_items(&self) -> usize {
        self.first.n_in
    }

    /// The last layer's input for each row of `x` (no dropout; the VAE's mean):
    /// rows × `last.n_in`.
    #[cfg(test)]
    pub fn encode(&self, x: &SparseRows) -> Vec<f32> {
        let mut h = vec![0f32; x.rows() * self.first.n_out];
        self.first.forward(x, &mut h);
        self.first_act.forward(&mut h);
        encode_rest(h, x.rows(), self.split, &self.mid)
    }

    /// Logits over all items for each row of `x` (rows × I).
    #[cfg(test)]
    pub fn scores(&self, x: &SparseRows) -> Vec<f32> {
        let h = self.encode(x);
        let mut z = vec![0f32; x.rows() * self.last.n_out];
        self.last.forward(x.rows(), &h, &mut z);
        z
    }
}

/// The first half of each row (the VAE's mean out of [mean, log-variance]).
fn mean_half(h: &[f32], rows: usize) -> Vec<f32> {
    let w = h.len() / rows.max(1);
    h.chunks(w.max(1))
        .flat_map(|r| &r[..w / 2])
        .copied()
        .collect()
}

/// From the first layer's output `h` (after its activation) to the last layer's input:
/// the middle layers, keeping the mean after the `split` layer. Serving runs this on
/// layers read back from the stored network.
pub(crate) fn encode_rest(
    mut h: Vec<f32>,
    rows: usize,
    split: Option<usize>,
    mid: &[Dense],
) -> Vec<f32> {
    if split == Some(0) {
        h = mean_half(&h, rows);
    }
    for (j, layer) in mid.iter().enumerate() {
        let mut y = vec![0f32; rows * layer.n_out];
        layer.forward(rows, &h, &mut y);
        h = if split == Some(j + 1) {
            mean_half(&y, rows)
        } else {
            y
        };
    }
    h
}

/// Elements per Adam block: the update is element-wise, so blocks of a tensor step in
/// parallel with the same result as one optimizer over the whole tensor.
const ADAM_BLOCK: usize = 1 << 16;

/// Hyperparameters of one training step.
pub(crate) struct StepParams {
    pub dropout: f32,
    /// The KL term's weight (annealed by the caller).
    pub beta: f32,
}

/// A network with its optimizer state and the buffers of one batch, sized once for
/// the largest batch: a step allocates nothing.
pub(crate) struct Trainer {
    pub net: Net,
    /// Adam per block of each weight tensor (see [`ADAM_BLOCK`]), and per bias.
    opt_w: Vec<Vec<Adam>>,
    opt_b: Vec<Adam>,
    x_raw: SparseRows,
    x_norm: SparseRows,
    x_in: SparseRows,
    /// Output of chain layer j (after its activation); the last one holds the logits,
    /// then their gradient.
    h: Vec<Vec<f32>>,
    /// dL/d(output) of chain layer j (all but the last).
    g: Vec<Vec<f32>>,
    z: Vec<f32>,
    dz: Vec<f32>,
    eps: Vec<f32>,
    dw: Vec<Vec<f32>>,
    db: Vec<Vec<f32>>,
    transposed: Transposed,
    row_loss: Vec<f64>,
}

impl Trainer {
    /// `reg`: L2 penalty reg·‖W‖² on weights (not biases), as Liang's code's `lam`.
    pub fn new(net: Net, batch: usize, lr: f32, reg: f32) -> Trainer {
        let n = net.mid.len() + 2;
        let shapes: Vec<(usize, usize)> = std::iter::once((net.first.n_in, net.first.n_out))
            .chain(net.mid.iter().chain([&net.last]).map(|d| (d.n_in, d.n_out)))
            .collect();
        let adam = |len: usize, wd: f32| {
            let mut a = Adam::new(len, lr);
            a.weight_decay = wd;
            a
        };
        let latent = net.split.map_or(0, |j| shapes[j].1 / 2);
        Trainer {
            opt_w: shapes
                .iter()
                .map(|&(i, o)| {
                    (0..i * o)
                        .step_by(ADAM_BLOCK)
                        .map(|s| adam(ADAM_BLOCK.min(i * o - s), 2.0 * reg))
                        .collect()
                })
                .collect(),
            opt_b: shapes.iter().map(|&(_, o)| adam(o, 0.0)).collect(),
            x_raw: SparseRows::default(),
            x_norm: SparseRows::default(),
            x_in: SparseRows::default(),
            h: shapes.iter().map(|&(_, o)| vec![0.0; batch * o]).collect(),
            g: shapes[..n - 1]
                .iter()
                .map(|&(_, o)| vec![0.0; batch * o])
                .collect(),
            z: vec![0.0; batch * latent],
            dz: vec![0.0; batch * latent],
            eps: vec![0.0; batch * latent],
            dw: shapes.iter().map(|&(i, o)| vec![0.0; i * o]).collect(),
            db: shapes.iter().map(|&(_, o)| vec![0.0; o]).collect(),
            transposed: Transposed::default(),
            row_loss: Vec::new(),
            net,
        }
    }

    /// One step of Adam on the rows `rows` (each a sorted item list); returns the
    /// batch's loss (mean negative log-likelihood + beta · mean KL).
    pub fn step<'a>(
        &mut self,
        rows: impl Iterator<Item = &'a [u32]>,
        p: &StepParams,
        rng: &mut SmallRng,
    ) -> f64 {
        let loss = self.gradients(rows, p, rng);
        self.update();
        loss
    }

    /// The batch's loss, leaving every parameter's gradient in `dw`/`db`.
    pub(super) fn gradients<'a>(
        &mut self,
        rows: impl Iterator<Item = &'a [u32]>,
        p: &StepParams,
        rng: &mut SmallRng,
    ) -> f64 {
        self.x_raw.clear();
        for r in rows {
            self.x_raw.push_uniform(r, 1.0);
        }
        let m = self.x_raw.rows();
        if m == 0 {
            return 0.0;
        }
        self.x_norm.clone_from(&self.x_raw);
        self.x_norm.l2_normalize();
        dropout_sparse(&self.x_norm, p.dropout, rng, &mut self.x_in);
        let kl = self.forward(m, rng);
        let n = self.h.len();
        let n_items = self.net.last.n_out;
        let nll = multinomial_nll(
            &mut self.h[n - 1][..m * n_items],
            n_items,
            &self.x_raw,
            1.0 / m as f32,
            &mut self.row_loss,
        );
        self.backward(m, p.beta);
        nll + f64::from(p.beta) * kl
    }

    /// The input of chain layer `j` ≥ 1: the previous output, or the latent sample.
    fn input(&self, j: usize, m: usize) -> &[f32] {
        if self.net.split == Some(j - 1) {
            &self.z[..m * self.latent()]
        } else {
            let w = self.width(j - 1);
            &self.h[j - 1][..m * w]
        }
    }

    fn latent(&self) -> usize {
        self.net.split.map_or(0, |j| self.width(j) / 2)
    }

    fn width(&self, j: usize) -> usize {
        if j == 0 {
            self.net.first.n_out
        } else if j <= self.net.mid.len() {
            self.net.mid[j - 1].n_out
        } else {
            self.net.last.n_out
        }
    }

    fn layer(&self, j: usize) -> &Dense {
        if j <= self.net.mid.len() {
            &self.net.mid[j - 1]
        } else {
            &self.net.last
        }
    }

    /// Forward through every layer; returns the mean KL (0 for the DAE).
    fn forward(&mut self, m: usize, rng: &mut SmallRng) -> f64 {
        let w0 = self.net.first.n_out;
        self.net.first.forward(&self.x_in, &mut self.h[0][..m * w0]);
        self.net.first_act.forward(&mut self.h[0][..m * w0]);
        let mut kl = 0.0;
        for j in 0..self.h.len() {
            if j > 0 {
                let mut out = std::mem::take(&mut self.h[j]);
                let w = self.width(j);
                self.layer(j)
                    .forward(m, self.input(j, m), &mut out[..m * w]);
                self.h[j] = out;
            }
            if self.net.split == Some(j) {
                kl = self.sample(j, m, rng);
            }
        }
        kl
    }

    /// z = μ + ε·exp(½ log σ²) from layer `j`'s output; returns the batch's mean KL
    /// divergence from N(0, I).
    fn sample(&mut self, j: usize, m: usize, rng: &mut SmallRng) -> f64 {
        let l = self.latent();
        let mut kl = 0f64;
        for r in 0..m {
            let row = &self.h[j][r * 2 * l..(r + 1) * 2 * l];
            let (mu, lv) = row.split_at(l);
            for t in 0..l {
                let e = normal(rng);
                self.eps[r * l + t] = e;
                self.z[r * l + t] = mu[t] + e * (0.5 * lv[t]).exp();
                kl += 0.5 * f64::from(-lv[t] + lv[t].exp() + mu[t] * mu[t] - 1.0);
            }
        }
        kl / m as f64
    }

    /// dL/d[μ, log σ²] of layer `j` from dL/dz and the KL term's weight.
    fn split_grad(&mut self, j: usize, m: usize, beta: f32) {
        let l = self.latent();
        let k = beta / m as f32;
        for r in 0..m {
            let row = &self.h[j][r * 2 * l..(r + 1) * 2 * l];
            let g = &mut self.g[j][r * 2 * l..(r + 1) * 2 * l];
            for t in 0..l {
                let (mu, lv) = (row[t], row[l + t]);
                let dz = self.dz[r * l + t];
                g[t] = dz + k * mu;
                g[l + t] =
                    dz * self.eps[r * l + t] * 0.5 * (0.5 * lv).exp() + k * 0.5 * (lv.exp() - 1.0);
            }
        }
    }

    fn backward(&mut self, m: usize, beta: f32) {
        let n = self.h.len();
        for j in (1..n).rev() {
            if self.net.split == Some(j) {
                self.split_grad(j, m, beta);
            }
            let (w_in, w_out) = (self.layer(j).n_in, self.width(j));
            let mut dy = if j == n - 1 {
                std::mem::take(&mut self.h[j])
            } else {
                std::mem::take(&mut self.g[j])
            };
            let mut dx = if self.net.split == Some(j - 1) {
                std::mem::take(&mut self.dz)
            } else {
                std::mem::take(&mut self.g[j - 1])
            };
            let (mut dw, mut db) = (
                std::mem::take(&mut self.dw[j]),
                std::mem::take(&mut self.db[j]),
            );
            // The last layer is linear: its backward never reads the output, which
            // holds the gradient in place.
            let y: &[f32] = if j == n - 1 {
                &[]
            } else {
                &self.h[j][..m * w_out]
            };
            self.layer(j).backward(
                m,
                self.input(j, m),
                y,
                &mut dy[..m * w_out],
                &mut dw,
                &mut db,
                Some(&mut dx[..m * w_in]),
            );
            if j == n - 1 {
                self.h[j] = dy;
            } else {
                self.g[j] = dy;
            }
            if self.net.split == Some(j - 1) {
                self.dz = dx;
            } else {
                self.g[j - 1] = dx;
            }
            self.dw[j] = dw;
            self.db[j] = db;
        }
        if self.net.split == Some(0) {
            self.split_grad(0, m, beta);
        }
        let w0 = self.net.first.n_out;
        let g0 = &mut self.g[0][..m * w0];
        self.net.first_act.backward(&self.h[0][..m * w0], g0);
        self.dw[0].par_iter_mut().for_each(|v| *v = 0.0);
        self.db[0].iter_mut().for_each(|v| *v = 0.0);
        self.net.first.backward(
            &self.x_in,
            g0,
            &mut self.dw[0],
            &mut self.db[0],
            &mut self.transposed,
        );
    }

    fn update(&mut self) {
        let net = &mut self.net;
        let params = std::iter::once((&mut net.first.w, &mut net.first.b)).chain(
            net.mid
                .iter_mut()
                .chain([&mut net.last])
                .map(|d| (&mut d.w, &mut d.b)),
        );
        for (j, (w, b)) in params.enumerate() {
            self.opt_w[j]
                .par_iter_mut()
                .zip(w.par_chunks_mut(ADAM_BLOCK))
                .zip(self.dw[j].par_chunks(ADAM_BLOCK))
                .for_each(|((opt, w), g)| opt.step(w, g));
            self.opt_b[j].step(b, &self.db[j]);
        }
    }
}

#[cfg(test)]
impl Trainer {
    pub fn x_in_for_tests(&self) -> SparseRows {
        self.x_in.clone()
    }
    pub fn eps_for_tests(&self) -> Vec<f32> {
        self.eps.clone()
    }
    /// Every gradient in the order of the parameters: per chain layer, W then b.
    pub fn gradients_for_tests(&self) -> Vec<f32> {
        self.dw
            .iter()
            .zip(&self.db)
            .flat_map(|(w, b)| w.iter().chain(b))
            .copied()
            .collect()
    }
}
