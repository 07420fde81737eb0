//! The training loop: contiguous sentence ranges per worker, one RNG per worker and epoch,
//! linear learning-rate decay over all epochs' tokens. One worker trains plain `&mut [f32]`
//! tables ([`Local`]: deterministic, no `unsafe`); several make Hogwild updates on
//! [`Shared`] tables through [`Hogwild`] handles (the one `unsafe` block, in `run`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rayon::prelude::*;

use super::hogwild::{Hogwild, Local, Rows, Shared};
use super::sampling::{keep_thresholds, Rng, Unigram};
use super::sigmoid::Sigmoid;
use super::simd::{axpy_slices as axpy, dot_slices as dot};
use super::{check_corpus, Arch, Embeddings, PvMode, Sentences, SgnsConfig};
use crate::jobs::memory;
use crate::jobs::JobContext;
use crate::{Error, Result};

/// What one pass over a sentence trains.
#[derive(Clone, Copy)]
enum Task {
    Words(Arch),
    Docs(PvMode),
}

/// One negative-sampling step: `h` predicts `target` (label 1) against `negs` (label 0).
/// Accumulates the input gradient (times lr) into `neu1e` and updates the output rows.
pub(super) fn ns_step(
    out: &mut impl Rows,
    sig: &Sigmoid,
    h: &[f32],
    target: u32,
    negs: &[u32],
    lr: f32,
    neu1e: &mut [f32],
) {
    for (k, &j) in std::iter::once(&target).chain(negs).enumerate() {
        let label = if k == 0 { 1.0 } else { 0.0 };
        let g = (label - sig.get(out.dot(j as usize, h))) * lr;
        out.step(j as usize, g, h, neu1e);
    }
}

/// The same step against frozen plain output weights (inference): only `neu1e` changes.
#[allow(clippy::too_many_arguments)]
fn ns_step_frozen(
    out: &[f32],
    dim: usize,
    sig: &Sigmoid,
    h: &[f32],
    target: u32,
    negs: &[u32],
    lr: f32,
    neu1e: &mut [f32],
) {
    for (k, &j) in std::iter::once(&target).chain(negs).enumerate() {
        let label = if k == 0 { 1.0 } else { 0.0 };
        let row = &out[j as usize * dim..(j as usize + 1) * dim];
        let g = (label - sig.get(dot(row, h))) * lr;
        axpy(neu1e, g, row);
    }
}

/// CBOW / PV-DM: the mean of input `rows` predicts `target` against `negs`; each row gets
/// the input gradient divided by the row count (the gradient of the mean). `h`, `neu1e`:
/// scratch of `dim` floats.
#[allow(clippy::too_many_arguments)]
pub(super) fn mean_update<T: Rows>(
    input: &mut T,
    output: &mut T,
    sig: &Sigmoid,
    rows: &[usize],
    target: u32,
    negs: &[u32],
    lr: f32,
    h: &mut [f32],
    neu1e: &mut [f32],
) {
    if rows.is_empty() {
        return;
    }
    let inv = 1.0 / rows.len() as f32;
    h.fill(0.0);
    for &r in rows {
        input.add_scaled_to(r, inv, h);
    }
    neu1e.fill(0.0);
    ns_step(output, sig, h, target, negs, lr, neu1e);
    for &r in rows {
        input.axpy(r, inv, neu1e);
    }
}

/// Skip-gram / PV-DBOW: input row `r` predicts `target` against `negs`.
#[allow(clippy::too_many_arguments)]
pub(super) fn pair_update<T: Rows>(
    input: &mut T,
    output: &mut T,
    sig: &Sigmoid,
    r: usize,
    target: u32,
    negs: &[u32],
    lr: f32,
    h: &mut [f32],
    neu1e: &mut [f32],
) {
    input.read(r, h);
    neu1e.fill(0.0);
    ns_step(output, sig, h, target, negs, lr, neu1e);
    input.axpy(r, 1.0, neu1e);
}

/// A worker's view of the input (word rows, then doc rows) and output tables.
struct Tables<T> {
    input: T,
    output: T,
}

struct Model<'a> {
    cfg: &'a SgnsConfig,
    n_words: usize,
    unigram: Unigram,
    keep: Vec<u32>,
    sig: Sigmoid,
}

/// Per-worker scratch space, reused across sentences: nothing is allocated per word.
struct Scratch {
    words: Vec<u32>,
    negs: Vec<u32>,
    ctx: Vec<usize>,
    h: Vec<f32>,
    neu1e: Vec<f32>,
}

impl Scratch {
    fn new(dim: usize) -> Self {
        Scratch {
            words: Vec::new(),
            negs: Vec::new(),
            ctx: Vec::new(),
            h: vec![0.0; dim],
            neu1e: vec![0.0; dim],
        }
    }
}

impl Model<'_> {
    fn draw_negs(&self, target: u32, rng: &mut Rng, negs: &mut Vec<u32>) {
        negs.clear();
        for _ in 0..self.cfg.negative {
            let n = self.unigram.draw(rng);
            if n != target {
                negs.push(n);
            }
        }
    }

    /// Context positions of centre `i` in a sentence of length `len`.
    fn context(&self, i: usize, len: usize, rng: &mut Rng, out: &mut Vec<usize>) {
        out.clear();
        let (lo, hi) = if self.cfg.whole_window {
            (0, len)
        } else {
            let reduce = self.cfg.window - rng.below(self.cfg.window);
            (i.saturating_sub(reduce), (i + reduce + 1).min(len))
        };
        out.extend((lo..hi).filter(|&j| j != i));
    }

    /// `rows` (by input row id) averaged predict `target`.
    fn mean_step<T: Rows>(
        &self,
        t: &mut Tables<T>,
        rows: &[usize],
        target: u32,
        lr: f32,
        rng: &mut Rng,
        s: &mut Scratch,
    ) {
        self.draw_negs(target, rng, &mut s.negs);
        let (h, e) = (&mut s.h, &mut s.neu1e);
        mean_update(
            &mut t.input,
            &mut t.output,
            &self.sig,
            rows,
            target,
            &s.negs,
            lr,
            h,
            e,
        );
    }

    /// Input row `r` predicts `target`.
    fn pair_step<T: Rows>(
        &self,
        t: &mut Tables<T>,
        r: usize,
        target: u32,
        lr: f32,
        rng: &mut Rng,
        s: &mut Scratch,
    ) {
        self.draw_negs(target, rng, &mut s.negs);
        let (h, e) = (&mut s.h, &mut s.neu1e);
        pair_update(
            &mut t.input,
            &mut t.output,
            &self.sig,
            r,
            target,
            &s.negs,
            lr,
            h,
            e,
        );
    }

    fn skipgram<T: Rows>(&self, t: &mut Tables<T>, lr: f32, rng: &mut Rng, s: &mut Scratch) {
        let mut ctx = std::mem::take(&mut s.ctx);
        for i in 0..s.words.len() {
            self.context(i, s.words.len(), rng, &mut ctx);
            for &j in &ctx {
                let (r, target) = (s.words[j] as usize, s.words[i]);
                self.pair_step(t, r, target, lr, rng, s);
            }
        }
        s.ctx = ctx;
    }

    #[allow(clippy::too_many_arguments)]
    fn sentence<T: Rows>(
        &self,
        t: &mut Tables<T>,
        task: Task,
        sent: &[u32],
        doc: usize,
        lr: f32,
        rng: &mut Rng,
        s: &mut Scratch,
    ) {
        s.words.clear();
        for &w in sent {
            let keep = self.keep[w as usize];
            if keep == u32::MAX || (rng.next() >> 32) as u32 <= keep {
                s.words.push(w);
            }
        }
        let doc_row = self.n_words + doc;
        match task {
            Task::Words(Arch::SkipGram) | Task::Docs(PvMode::Dbow { train_words: true }) => {
                self.skipgram(t, lr, rng, s)
            }
            _ => {}
        }
        match task {
            Task::Words(Arch::Cbow) | Task::Docs(PvMode::Dm) => {
                let with_doc = matches!(task, Task::Docs(_));
                let mut ctx = std::mem::take(&mut s.ctx);
                for i in 0..s.words.len() {
                    self.context(i, s.words.len(), rng, &mut ctx);
                    for c in ctx.iter_mut() {
                        *c = s.words[*c] as usize;
                    }
                    if with_doc {
                        ctx.push(doc_row);
                    }
                    let target = s.words[i];
                    self.mean_step(t, &ctx, target, lr, rng, s);
                }
                s.ctx = ctx;
            }
            Task::Docs(PvMode::Dbow { .. }) => {
                for i in 0..s.words.len() {
                    let target = s.words[i];
                    self.pair_step(t, doc_row, target, lr, rng, s);
                }
            }
            _ => {}
        }
    }
}

/// Contiguous sentence ranges of roughly equal token counts, one per worker.
fn split(sentences: &Sentences, parts: usize) -> Vec<(usize, usize)> {
    let total = sentences.total_tokens().max(1);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 1..=parts {
        let goal = total * p / parts;
        let mut end = start;
        while end < sentences.len() && (sentences.offsets[end + 1] <= goal || p == parts) {
            end += 1;
        }
        out.push((start, end));
        start = end;
    }
    out
}

fn init_rows(rows: usize, dim: usize, seed: u64) -> Result<Vec<f32>> {
    let mut rng = Rng::new(seed);
    let mut v = memory::filled(rows * dim, 0f32, "dim")?;
    v.fill_with(|| (rng.unit() - 0.5) / dim as f32);
    Ok(v)
}

/// What the workers of a run share besides the tables.
struct Pass<'a, 'c> {
    sentences: &'a Sentences,
    tags: Option<&'a [u32]>,
    task: Task,
    ctx: &'a JobContext<'c>,
    /// Corpus tokens done over all epochs (for the learning rate), and their total.
    done: AtomicU64,
    total: u64,
    threads: usize,
}

impl Model<'_> {
    /// Worker `worker`'s sentences `a..b` in epoch `epoch`.
    // why: the learning rate is computed in f64 and used as f32, on purpose.
    #[allow(clippy::cast_possible_truncation)]
    fn work<T: Rows>(
        &self,
        p: &Pass<'_, '_>,
        t: &mut Tables<T>,
        epoch: usize,
        worker: usize,
        (a, b): (usize, usize),
    ) -> Result<()> {
        let cfg = self.cfg;
        let mut rng = Rng::new(p.ctx.sub_seed((epoch * p.threads + worker) as u64));
        let mut s = Scratch::new(cfg.dim);
        for i in a..b {
            if i % 1024 == 0 {
                p.ctx.check_cancel()?;
            }
            let sent = p.sentences.get(i);
            let done = p.done.fetch_add(sent.len() as u64, Relaxed) as f64 / p.total as f64;
            let lr = (cfg.alpha - (cfg.alpha - cfg.min_alpha) * done as f32).max(cfg.min_alpha);
            let doc = p.tags.map_or(0, |t| t[i] as usize);
            self.sentence(t, p.task, sent, doc, lr, &mut rng, &mut s);
        }
        Ok(())
    }
}

fn run(
    sentences: &Sentences,
    tags: Option<&[u32]>,
    n_docs: usize,
    counts: &[u64],
    cfg: &SgnsConfig,
    task: Task,
    ctx: &JobContext<'_>,
) -> Result<(Embeddings, Vec<f32>)> {
    cfg.validate()?;
    check_corpus(sentences, counts)?;
    let n_words = counts.len();
    cfg.check_rows(
        n_words
            .checked_add(n_docs)
            .ok_or_else(|| Error::param("n_docs", "too large"))?,
        ctx,
    )?;
    let dim = cfg.dim;
    let mut input = init_rows(n_words + n_docs, dim, ctx.sub_seed(u64::MAX))?;
    let mut output = memory::filled(n_words * dim, 0.0, "dim")?;
    let model = Model {
        cfg,
        n_words,
        unigram: Unigram::new(counts, cfg.ns_exponent),
        keep: keep_thresholds(counts, cfg.sample),
        sig: Sigmoid::new(),
    };
    let threads = ctx.pool().current_num_threads().max(1);
    let pass = Pass {
        sentences,
        tags,
        task,
        ctx,
        done: AtomicU64::new(0),
        total: (sentences.total_tokens() as u64)
            .saturating_mul(cfg.epochs as u64)
            .max(1),
        threads,
    };
    let ranges = split(sentences, threads);
    let progress = |epoch: usize| {
        let msg = format!("epoch {}/{}", epoch + 1, cfg.epochs);
        ctx.progress((epoch + 1) as f64 / cfg.epochs as f64, &msg);
    };
    if threads == 1 {
        // One worker: it owns the tables, so there is no race and no `unsafe`, and the
        // result is bit-identical for a seed.
        let mut t = Tables {
            input: Local::new(dim, &mut input),
            output: Local::new(dim, &mut output),
        };
        for epoch in 0..cfg.epochs {
            ctx.check_cancel()?;
            ctx.pool()
                .install(|| model.work(&pass, &mut t, epoch, 0, ranges[0]))?;
            progress(epoch);
        }
    } else {
        let shared = Tables {
            input: Shared::from_vec(dim, input),
            output: Shared::from_vec(dim, output),
        };
        for epoch in 0..cfg.epochs {
            ctx.check_cancel()?;
            ctx.pool().install(|| {
                ranges
                    .par_iter()
                    .enumerate()
                    .try_for_each(|(worker, &range)| {
                        #[allow(unsafe_code)]
                        // SAFETY: Hogwild, as `Hogwild::new` describes: the workers of this
                        // call race on the two tables only through these handles (nothing
                        // else touches `shared` until the scoped call returns); rows are
                        // bounds-checked per access; lost and mixed updates are accepted.
                        let mut t = unsafe {
                            Tables {
                                input: Hogwild::new(&shared.input),
                                output: Hogwild::new(&shared.output),
                            }
                        };
                        model.work(&pass, &mut t, epoch, worker, range)
                    })
            })?;
            progress(epoch);
        }
        input = shared.input.into_vec();
        output = shared.output.into_vec();
    }
    let docs = input.split_off(n_words * dim);
    Ok((Embeddings { dim, input, output }, docs))
}

/// Word2vec (skip-gram or CBOW), negative sampling, Hogwild over ctx.pool().
pub(crate) fn train(
    sentences: &Sentences,
    counts: &[u64],
    cfg: &SgnsConfig,
    ctx: &JobContext<'_>,
) -> Result<Embeddings> {
    Ok(run(sentences, None, 0, counts, cfg, Task::Words(cfg.arch), ctx)?.0)
}

/// Paragraph vectors (PV-DM / PV-DBOW); returns word embeddings and n_docs × dim doc vectors.
pub(crate) fn train_docs(
    sentences: &Sentences,
    tags: &[u32],
    n_docs: usize,
    counts: &[u64],
    cfg: &SgnsConfig,
    mode: PvMode,
    ctx: &JobContext<'_>,
) -> Result<(Embeddings, Vec<f32>)> {
    if tags.len() != sentences.len() {
        return Err(Error::param(
            "tags",
            format!("{} tags for {} sentences", tags.len(), sentences.len()),
        ));
    }
    if n_docs == 0 {
        return Err(Error::param("n_docs", "must be at least 1"));
    }
    if let Some(&t) = tags.iter().find(|&&t| t as usize >= n_docs) {
        return Err(Error::param("tags", format!("tag {t} >= n_docs {n_docs}")));
    }
    run(
        sentences,
        Some(tags),
        n_docs,
        counts,
        cfg,
        Task::Docs(mode),
        ctx,
    )
}

/// A vector for an unseen document, word and output weights frozen. Deterministic for `seed`.
pub(crate) fn infer(
    emb: &Embeddings,
    counts: &[u64],
    words: &[u32],
    cfg: &SgnsConfig,
    mode: PvMode,
    epochs: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    cfg.validate()?;
    if epochs == 0 {
        return Err(Error::param("epochs", "must be at least 1"));
    }
    let dim = cfg.dim;
    if emb.dim != dim
        || emb.input.len() != counts.len() * dim
        || emb.output.len() != counts.len() * dim
    {
        return Err(Error::param(
            "dim",
            "embeddings do not match dim × vocabulary",
        ));
    }
    if let Some(&t) = words.iter().find(|&&t| t as usize >= counts.len()) {
        return Err(Error::param(
            "words",
            format!("token id {t} >= vocabulary size {}", counts.len()),
        ));
    }
    let unigram = Unigram::new(counts, cfg.ns_exponent);
    let sig = Sigmoid::new();
    let mut rng = Rng::new(seed);
    let mut doc = init_rows(1, dim, seed)?;
    let (mut h, mut neu1e, mut negs) = (vec![0.0; dim], vec![0.0; dim], Vec::new());
    let total = (words.len() * epochs).max(1) as f32;
    let mut step = 0usize;
    for _ in 0..epochs {
        for i in 0..words.len() {
            let lr = cfg.alpha - (cfg.alpha - cfg.min_alpha) * step as f32 / total;
            step += 1;
            let target = words[i];
            negs.clear();
            for _ in 0..cfg.negative {
                let n = unigram.draw(&mut rng);
                if n != target {
                    negs.push(n);
                }
            }
            neu1e.fill(0.0);
            match mode {
                PvMode::Dbow { .. } => {
                    ns_step_frozen(&emb.output, dim, &sig, &doc, target, &negs, lr, &mut neu1e);
                    axpy(&mut doc, 1.0, &neu1e);
                }
                PvMode::Dm => {
                    let (lo, hi) = if cfg.whole_window {
                        (0, words.len())
                    } else {
                        let r = cfg.window - rng.below(cfg.window);
                        (i.saturating_sub(r), (i + r + 1).min(words.len()))
                    };
                    h.copy_from_slice(&doc);
                    let mut n = 1usize;
                    for j in (lo..hi).filter(|&j| j != i) {
                        axpy(&mut h, 1.0, emb.input_row(words[j] as usize));
                        n += 1;
                    }
                    let inv = 1.0 / n as f32;
                    h.iter_mut().for_each(|x| *x *= inv);
                    ns_step_frozen(&emb.output, dim, &sig, &h, target, &negs, lr, &mut neu1e);
                    axpy(&mut doc, inv, &neu1e);
                }
            }
        }
    }
    Ok(doc)
}
