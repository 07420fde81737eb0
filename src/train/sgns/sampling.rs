//! Random numbers, negative sampling and frequent-token subsampling.

/// word2vec's 64-bit LCG: fast and good enough for sampling.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(crate::train::context::splitmix64(seed))
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

/// Negatives drawn with probability ∝ count^exponent, via a lookup table (as word2vec).
pub(crate) struct Unigram {
    table: Vec<u32>,
}

const TABLE_SIZE: usize = 10_000_000;

impl Unigram {
    pub fn new(counts: &[u64], exponent: f64) -> Self {
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
        let size = TABLE_SIZE.min(counts.len().saturating_mul(100).max(1000));
        let mut table = Vec::with_capacity(size);
        let mut acc = 0.0;
        let mut i = 0usize;
        for (k, &x) in w.iter().enumerate() {
            acc += x;
            let upto = ((acc / total) * size as f64).round() as usize;
            while i < upto.min(size) {
                table.push(k as u32);
                i += 1;
            }
        }
        let last = w.iter().rposition(|&x| x > 0.0).unwrap_or(0) as u32;
        table.resize(size, last);
        Unigram { table }
    }
    #[inline]
    pub fn draw(&self, rng: &mut Rng) -> u32 {
        self.table[rng.below(self.table.len())]
    }
}

/// Per-token keep probability scaled to u32 (word2vec's subsampling formula); all kept if sample = 0.
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
