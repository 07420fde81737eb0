//! A single-threaded SGNS with exactly the API of the shared core (`train::sgns`, branch
//! `w2v-core`), used by item2vec until that core is merged. Delete on merge.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::train::context::JobContext;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arch {
    SkipGram,
    Cbow,
}

#[derive(Clone, Debug)]
pub(crate) struct SgnsConfig {
    pub arch: Arch,
    pub dim: usize,
    pub window: usize,
    pub negative: usize,
    pub epochs: usize,
    pub alpha: f32,
    pub min_alpha: f32,
    pub sample: f64,
    pub ns_exponent: f64,
    pub whole_window: bool,
}

impl Default for SgnsConfig {
    fn default() -> Self {
        SgnsConfig {
            arch: Arch::SkipGram,
            dim: 100,
            window: 5,
            negative: 5,
            epochs: 5,
            alpha: 0.025,
            min_alpha: 0.0001,
            sample: 1e-3,
            ns_exponent: 0.75,
            whole_window: false,
        }
    }
}

impl SgnsConfig {
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &str, v: usize| {
            if v == 0 {
                Err(Error::param(name, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        pos("dim", self.dim)?;
        pos("window", self.window)?;
        pos("negative", self.negative)?;
        pos("epochs", self.epochs)?;
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::param("alpha", "must be a positive number"));
        }
        if !(self.min_alpha.is_finite() && self.min_alpha >= 0.0 && self.min_alpha <= self.alpha) {
            return Err(Error::param("min_alpha", "must be in [0, alpha]"));
        }
        if !(self.sample.is_finite() && self.sample >= 0.0) {
            return Err(Error::param("sample", "must be >= 0"));
        }
        if !self.ns_exponent.is_finite() {
            return Err(Error::param("ns_exponent", "must be a finite number"));
        }
        Ok(())
    }
}

/// Flat CSR sentences.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sentences {
    pub offsets: Vec<usize>,
    pub tokens: Vec<u32>,
}

impl Sentences {
    pub fn new() -> Self {
        Sentences {
            offsets: vec![0],
            tokens: Vec::new(),
        }
    }
    pub fn push(&mut self, s: &[u32]) {
        self.tokens.extend_from_slice(s);
        self.offsets.push(self.tokens.len());
    }
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    pub fn get(&self, i: usize) -> &[u32] {
        &self.tokens[self.offsets[i]..self.offsets[i + 1]]
    }
    pub fn total_tokens(&self) -> usize {
        self.tokens.len()
    }
}

pub(crate) fn prune_vocab(counts: &[u64], min_count: u64) -> (Vec<Option<u32>>, Vec<u64>) {
    let mut map = Vec::with_capacity(counts.len());
    let mut kept = Vec::new();
    for &c in counts {
        if c >= min_count.max(1) {
            map.push(Some(kept.len() as u32));
            kept.push(c);
        } else {
            map.push(None);
        }
    }
    (map, kept)
}

pub(crate) struct Embeddings {
    pub dim: usize,
    pub input: Vec<f32>,
    pub output: Vec<f32>,
}

impl Embeddings {
    #[allow(dead_code)]
    pub fn rows(&self) -> usize {
        self.input.len() / self.dim.max(1)
    }
    pub fn input_row(&self, i: usize) -> &[f32] {
        &self.input[i * self.dim..(i + 1) * self.dim]
    }
    pub fn output_row(&self, i: usize) -> &[f32] {
        &self.output[i * self.dim..(i + 1) * self.dim]
    }
}

/// Cumulative distribution over counts^e for negative sampling.
fn neg_cdf(counts: &[u64], e: f64) -> Vec<f64> {
    let mut acc = 0.0;
    counts
        .iter()
        .map(|&c| {
            acc += if c == 0 { 0.0 } else { (c as f64).powf(e) };
            acc
        })
        .collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-30.0, 30.0)).exp())
}

/// One (hidden -> target) logistic update; accumulates the gradient for `hidden` in `grad`.
fn update(h: &[f32], out: &mut [f32], label: f32, lr: f32, grad: &mut [f32]) {
    let dot: f32 = h.iter().zip(out.iter()).map(|(a, b)| a * b).sum();
    let g = (label - sigmoid(dot)) * lr;
    for ((gr, o), hv) in grad.iter_mut().zip(out.iter_mut()).zip(h) {
        *gr += g * *o;
        *o += g * hv;
    }
}

pub(crate) fn train(
    sentences: &Sentences,
    counts: &[u64],
    cfg: &SgnsConfig,
    ctx: &JobContext<'_>,
) -> Result<Embeddings> {
    cfg.validate()?;
    let (n, d) = (counts.len(), cfg.dim);
    if n == 0 || sentences.total_tokens() == 0 {
        return Err(Error::Empty("no tokens to train on".into()));
    }
    let mut rng = StdRng::seed_from_u64(ctx.sub_seed(0));
    let mut input: Vec<f32> = (0..n * d)
        .map(|_| (rng.random::<f32>() - 0.5) / d as f32)
        .collect();
    let mut output = vec![0f32; n * d];
    let cdf = neg_cdf(counts, cfg.ns_exponent);
    let total_w = *cdf.last().unwrap_or(&0.0);
    let total: u64 = counts.iter().sum();
    let keep_p: Vec<f64> = counts
        .iter()
        .map(|&c| {
            if cfg.sample <= 0.0 || c == 0 {
                1.0
            } else {
                let t = cfg.sample * total as f64;
                ((c as f64 / t).sqrt() + 1.0) * t / c as f64
            }
        })
        .collect();
    let all = (sentences.total_tokens() * cfg.epochs).max(1) as f64;
    let mut done = 0usize;
    let (mut h, mut grad, mut buf) = (vec![0f32; d], vec![0f32; d], Vec::new());
    for epoch in 0..cfg.epochs {
        let mut rng = StdRng::seed_from_u64(ctx.sub_seed(1 + epoch as u64));
        for si in 0..sentences.len() {
            if si % 1024 == 0 {
                ctx.check_cancel()?;
                ctx.progress(done as f64 / all, &format!("epoch {}", epoch + 1));
            }
            let s = sentences.get(si);
            done += s.len();
            buf.clear();
            buf.extend(s.iter().copied().filter(|&t| {
                keep_p[t as usize] >= 1.0 || rng.random::<f64>() < keep_p[t as usize]
            }));
            let lr = (cfg.alpha - (cfg.alpha - cfg.min_alpha) * (done as f64 / all) as f32)
                .max(cfg.min_alpha);
            for c in 0..buf.len() {
                let (lo, hi) = if cfg.whole_window {
                    (0, buf.len())
                } else {
                    let w = rng.random_range(1..=cfg.window);
                    (c.saturating_sub(w), (c + w + 1).min(buf.len()))
                };
                let centre = buf[c] as usize;
                let targets = |hid: &[f32], grad: &mut [f32], out: &mut [f32], rng: &mut StdRng| {
                    update(hid, &mut out[centre * d..(centre + 1) * d], 1.0, lr, grad);
                    for _ in 0..cfg.negative {
                        let x = rng.random::<f64>() * total_w;
                        let neg = cdf.partition_point(|&v| v <= x).min(n - 1);
                        if neg != centre {
                            update(hid, &mut out[neg * d..(neg + 1) * d], 0.0, lr, grad);
                        }
                    }
                };
                match cfg.arch {
                    Arch::SkipGram => {
                        for (j, &tok) in buf.iter().enumerate().take(hi).skip(lo) {
                            if j == c {
                                continue;
                            }
                            let ctxw = tok as usize;
                            h.copy_from_slice(&input[ctxw * d..(ctxw + 1) * d]);
                            grad.fill(0.0);
                            targets(&h, &mut grad, &mut output, &mut rng);
                            for (x, g) in input[ctxw * d..(ctxw + 1) * d].iter_mut().zip(&grad) {
                                *x += g;
                            }
                        }
                    }
                    Arch::Cbow => {
                        let m = hi - lo - 1;
                        if m == 0 {
                            continue;
                        }
                        h.fill(0.0);
                        for j in (lo..hi).filter(|&j| j != c) {
                            let w = buf[j] as usize;
                            for (a, b) in h.iter_mut().zip(&input[w * d..(w + 1) * d]) {
                                *a += b / m as f32;
                            }
                        }
                        grad.fill(0.0);
                        targets(&h, &mut grad, &mut output, &mut rng);
                        for j in (lo..hi).filter(|&j| j != c) {
                            let w = buf[j] as usize;
                            for (x, g) in input[w * d..(w + 1) * d].iter_mut().zip(&grad) {
                                *x += g;
                            }
                        }
                    }
                }
            }
        }
    }
    ctx.progress(1.0, "trained");
    Ok(Embeddings {
        dim: d,
        input,
        output,
    })
}
