//! The entry point of the word2vec speed benchmark (benches/word2vec.rs, via `recdb::testkit`): a
//! Zipf-distributed synthetic text and SGNS training on it in the setting of
//! docs/BENCHMARKS.md, without going through a database.

use super::sampling::Rng;
use super::{train, Arch, Sentences, SgnsConfig};
use crate::jobs::JobContext;
use crate::{Error, Result};

/// A synthetic text: word ranks drawn from Zipf(1) over `vocab` word types, cut into
/// sentences of a fixed length. Every word type is a token id (no min-count pruning).
pub struct ZipfText {
    sentences: Sentences,
    counts: Vec<u64>,
}

impl ZipfText {
    /// `words` tokens over `vocab` types, `sentence_len` tokens a sentence, from `seed`.
    // why: synthetic bench text: word numbers are below `vocab`, a small parameter.
    #[allow(clippy::cast_possible_truncation)]
    pub fn new(words: usize, vocab: usize, sentence_len: usize, seed: u64) -> Result<ZipfText> {
        if words == 0 || vocab == 0 || sentence_len == 0 {
            return Err(Error::param(
                "words",
                "words, vocab and sentence_len must be at least 1",
            ));
        }
        let vocab = vocab.min(u32::MAX as usize);
        let cdf: Vec<f64> = (1..=vocab)
            .scan(0.0, |a, r| {
                *a += 1.0 / r as f64;
                Some(*a)
            })
            .collect();
        let total = cdf[vocab - 1];
        let mut rng = Rng::new(seed);
        let mut sentences = Sentences::new();
        let mut counts = vec![0u64; vocab];
        let mut sent = Vec::with_capacity(sentence_len);
        let mut left = words;
        while left > 0 {
            sent.clear();
            for _ in 0..sentence_len.min(left) {
                let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
                let w = cdf.partition_point(|&c| c < u).min(vocab - 1);
                counts[w] += 1;
                sent.push(w as u32);
            }
            left -= sent.len();
            sentences.push(&sent);
        }
        Ok(ZipfText { sentences, counts })
    }

    /// Tokens in the text (the corpus words, counted before subsampling).
    pub fn words(&self) -> usize {
        self.sentences.total_tokens()
    }

    /// Word types that occur at least once.
    pub fn types(&self) -> usize {
        self.counts.iter().filter(|&&c| c > 0).count()
    }

    /// Train skip-gram (or CBOW) with 100 dims, window 5, 5 negatives, subsampling 1e-3
    /// and 5 epochs on `ctx.pool()`, the tables dropped. Returns the corpus words
    /// processed: `words() × epochs`.
    pub fn train(&self, cbow: bool, ctx: &JobContext<'_>) -> Result<u64> {
        let cfg = SgnsConfig {
            arch: if cbow { Arch::Cbow } else { Arch::SkipGram },
            alpha: if cbow { 0.05 } else { 0.025 },
            ..SgnsConfig::default()
        };
        train(&self.sentences, &self.counts, &cfg, ctx)?;
        Ok(self.words() as u64 * cfg.epochs as u64)
    }
}

/// CPU seconds the threads of `pool` have run so far (Linux schedstat; 0 elsewhere): the
/// speed figure that moves least with other processes on a shared machine.
pub fn pool_cpu_seconds(pool: &rayon::ThreadPool) -> f64 {
    pool.broadcast(|_| {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e9
    })
    .iter()
    .sum()
}
