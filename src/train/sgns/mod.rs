//! Skip-gram / CBOW / paragraph vectors with negative sampling (SGNS), trained Hogwild-style.
//! Shared by the item2vec and doc2vec jobs; see docs/W2V.md.

#[cfg(any(test, feature = "testkit"))]
mod bench;
// The tables and their AVX2 kernels: with the one block in `trainer::run` that makes the
// Hogwild handles, the module's only `unsafe` (each block with a SAFETY comment; the race
// model is in hogwild.rs).
#[allow(unsafe_code)]
mod hogwild;
mod sampling;
mod sigmoid;
#[allow(unsafe_code)]
mod simd;
#[cfg(test)]
mod tests;
mod trainer;

use std::ops::RangeInclusive;

use crate::jobs::memory;
use crate::jobs::JobContext;
use crate::train::params::{check_int, check_real, Real};
use crate::{Error, Params, Result};

#[cfg(any(test, feature = "testkit"))]
pub use bench::{pool_cpu_seconds, ZipfText};

#[allow(unused_imports)] // the API; jobs on other branches call it
pub(crate) use trainer::{infer, train, train_docs};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arch {
    SkipGram,
    Cbow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PvMode {
    Dm,
    Dbow { train_words: bool },
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

// Documented ranges of the shared hyperparameters (docs/SHELL.md has the table).
pub(crate) const DIM: RangeInclusive<u64> = 1..=65_536;
const WINDOW: RangeInclusive<u64> = 1..=1_000;
/// Negatives per positive: each costs a dot product per token, so 1e9 would never end.
const NEGATIVE: RangeInclusive<u64> = 1..=1_000;
pub(crate) const EPOCHS: RangeInclusive<u64> = 1..=10_000;
const ALPHA: Real = Real::above(0.0, 1.0);
const SAMPLE: Real = Real::closed(0.0, 1.0);
const NS_EXPONENT: Real = Real::closed(-10.0, 10.0);
/// Occurrences a token needs to be kept.
pub(crate) const MIN_COUNT: RangeInclusive<u64> = 1..=u32::MAX as u64;

impl SgnsConfig {
    /// The shared hyperparameters from `p`; missing ones keep `d`'s values. `arch` is
    /// `sg` (or `skipgram`) or `cbow`; CBOW's default learning rate is 0.05, as in word2vec.
    pub fn from_params(p: &Params, d: &SgnsConfig) -> Result<SgnsConfig> {
        let default_arch = if d.arch == Arch::Cbow { "cbow" } else { "sg" };
        let arch = match p.get::<String>("arch", default_arch.into())?.as_str() {
            "sg" | "skipgram" | "skip-gram" => Arch::SkipGram,
            "cbow" => Arch::Cbow,
            other => {
                return Err(Error::param(
                    "arch",
                    format!("`{other}`: expected sg or cbow"),
                ))
            }
        };
        let default_alpha = if arch == Arch::Cbow && d.arch != Arch::Cbow {
            0.05
        } else {
            d.alpha
        };
        Ok(SgnsConfig {
            arch,
            dim: p.get("dim", d.dim)?,
            window: p.get("window", d.window)?,
            negative: p.get("negative", d.negative)?,
            epochs: p.get("epochs", d.epochs)?,
            alpha: p.get("alpha", default_alpha)?,
            min_alpha: p.get("min_alpha", d.min_alpha)?,
            sample: p.get("sample", d.sample)?,
            ns_exponent: p.get("ns_exponent", d.ns_exponent)?,
            whole_window: d.whole_window,
        })
    }

    /// Every hyperparameter within its documented range (docs/SHELL.md).
    pub fn validate(&self) -> Result<()> {
        check_int("dim", self.dim as u64, DIM)?;
        check_int("window", self.window as u64, WINDOW)?;
        check_int("negative", self.negative as u64, NEGATIVE)?;
        check_int("epochs", self.epochs as u64, EPOCHS)?;
        check_real("alpha", f64::from(self.alpha), ALPHA)?;
        check_real(
            "min_alpha",
            f64::from(self.min_alpha),
            Real::closed(0.0, f64::from(self.alpha)),
        )?;
        check_real("sample", self.sample, SAMPLE)?;
        check_real("ns_exponent", self.ns_exponent, NS_EXPONENT)
    }

    /// Validate the config against a table of `rows` rows (words + docs): its input
    /// and output tables, and the copies a job publishes, must fit in the job's memory
    /// budget.
    pub(crate) fn check_rows(&self, rows: usize, ctx: &JobContext<'_>) -> Result<()> {
        if rows > u32::MAX as usize {
            return Err(Error::param("vocabulary", "more than u32::MAX tokens"));
        }
        ctx.check_memory("dim", 4 * memory::bytes_of::<f32>(rows, self.dim))
    }
}

/// Sentences of token ids, stored flat (CSR): no per-sentence Vec.
#[derive(Clone, Debug)]
pub(crate) struct Sentences {
    pub offsets: Vec<usize>,
    pub tokens: Vec<u32>,
}

impl Default for Sentences {
    fn default() -> Self {
        Self::new()
    }
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
        self.offsets.len().saturating_sub(1)
    }
    pub fn get(&self, i: usize) -> &[u32] {
        &self.tokens[self.offsets[i]..self.offsets[i + 1]]
    }
    pub fn total_tokens(&self) -> usize {
        self.tokens.len()
    }
}

/// Drop tokens seen fewer than `min_count` times: (raw id -> kept id, kept counts).
// why: kept.len() < u32::MAX, checked just before the cast.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn prune_vocab(counts: &[u64], min_count: u64) -> (Vec<Option<u32>>, Vec<u64>) {
    let mut map = Vec::with_capacity(counts.len());
    let mut kept = Vec::new();
    for &c in counts {
        if c >= min_count && kept.len() < u32::MAX as usize {
            map.push(Some(kept.len() as u32));
            kept.push(c);
        } else {
            map.push(None);
        }
    }
    (map, kept)
}

/// Input (word) and output (context) vectors, `rows × dim`, row-major.
#[derive(Clone, Debug)]
pub(crate) struct Embeddings {
    pub dim: usize,
    pub input: Vec<f32>,
    pub output: Vec<f32>,
}

impl Embeddings {
    pub fn input_row(&self, i: usize) -> &[f32] {
        &self.input[i * self.dim..(i + 1) * self.dim]
    }
    pub fn output_row(&self, i: usize) -> &[f32] {
        &self.output[i * self.dim..(i + 1) * self.dim]
    }
}

/// Check the corpus: ids in range, at least one token.
fn check_corpus(sentences: &Sentences, counts: &[u64]) -> Result<()> {
    if sentences.total_tokens() == 0 || counts.iter().all(|&c| c == 0) {
        return Err(Error::param("sentences", "the corpus has no tokens"));
    }
    if let Some(&t) = sentences
        .tokens
        .iter()
        .find(|&&t| t as usize >= counts.len())
    {
        return Err(Error::param(
            "sentences",
            format!("token id {t} >= vocabulary size {}", counts.len()),
        ));
    }
    Ok(())
}
