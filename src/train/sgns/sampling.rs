//! Random numbers, negative sampling and frequent-token subsampling.

/// word2vec's 64-bit LCG: fast and good enough for sampling.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(crate::jobs::splitmix64(seed))
    }
    #[inline]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(25_214_903_917).wrapping_add(11);
        self.0 ^ (self.0 >> 29)
    }
    /// Uniform in 0..n (n >= 1).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 16) as u128 * n as u128) >> 48) as usize
    }
    #[inline]
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Negatives drawn with probability ∝ count^exponent by Walker's alias method: one
/// uniform draw and one 8-byte entry per vocabulary word, so the table stays in cache
/// (word2vec's 10⁸-entry lookup table costs a cache miss per negative) and is exact.
pub(crate) struct Unigram {
    /// (threshold scaled to 2^32, alias) per word: keep `i` if the low 32 bits < threshold.
    table: Vec<(u32, u32)>,
}

impl Unigram {
    // why: the vocabulary is capped at u32::MAX words (`prune_vocab`); thresholds are
    // clamped to u32::MAX before the cast.
    #[allow(clippy::cast_possible_truncation)]
    pub fn new(counts: &[u64], exponent: f64) -> Self {
        let n = counts.len().max(1);
        let w: Vec<f64> = counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    0.0
                } else {
                    (c as f64).powf(exponent)
                }
            })
            .collect();
        let total: f64 = w.iter().sum();
        let mut scaled: Vec<f64> = if total > 0.0 {
            w.iter().map(|&x| x * n as f64 / total).collect()
        } else {
            vec![1.0; n]
        };
        let mut table: Vec<(u32, u32)> = (0..n as u32).map(|i| (u32::MAX, i)).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            table[s] = (
                (scaled[s] * 4_294_967_296.0).min(u32::MAX as f64) as u32,
                l as u32,
            );
            scaled[l] += scaled[s] - 1.0;
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left has probability 1 up to rounding: entry (u32::MAX, itself).
        Unigram { table }
    }
    #[inline]
    // why: i < table.len(), the u32-capped vocabulary; `x as u32` takes the low bits.
    #[allow(clippy::cast_possible_truncation)]
    pub fn draw(&self, rng: &mut Rng) -> u32 {
        let x = rng.next();
        let i = (((x >> 32) * self.table.len() as u64) >> 32) as usize;
        let (thr, alias) = self.table[i];
        if (x as u32) < thr {
            i as u32
        } else {
            alias
        }
    }
}

/// Per-token keep probability scaled to u32 (word2vec's subsampling formula); all kept if sample = 0.
// why: p is clamped to 1, so the product is at most u32::MAX.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn keep_thresholds(counts: &[u64], sample: f64) -> Vec<u32> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if sample <= 0.0 || c == 0 {
                return u32::MAX;
            }
            let t = sample * total as f64;
            let p = ((c as f64 / t).sqrt() + 1.0) * t / c as f64;
            (p.min(1.0) * u32::MAX as f64) as u32
        })
        .collect()
}
