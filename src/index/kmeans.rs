//! k-means for the coarse partition: Lloyd iterations on a seeded sample, parallel
//! assignment (rayon), deterministic for a seed whatever the number of threads (every
//! point is assigned independently; sums are taken in point order).

use rayon::prelude::*;

use super::kernels::{dot, dots_f32};

/// A small deterministic generator (splitmix64): the index must not change when a
/// dependency changes its RNG.
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }
    /// `m` distinct indices of `0..n`, in a seeded order.
    pub fn sample(&mut self, n: usize, m: usize) -> Vec<usize> {
        let m = m.min(n);
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..m {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(m);
        idx
    }
}

/// `‖c‖² / 2` of every centroid: the nearest centroid maximises `x·c − ‖c‖²/2`.
pub(crate) fn half_norms(centroids: &[f32], dim: usize) -> Vec<f32> {
    centroids
        .chunks_exact(dim)
        .map(|c| 0.5 * dot(c, c))
        .collect()
}

/// Points and centroids per cache block of [`nearest_block`]: 32 rows of 64 floats are
/// 8 KB, so a block of each stays in L1 while every pair is scored.
const TILE: usize = 32;

/// The nearest centroid of each point of `xs` (at most [`TILE`] points). Centroid tiles
/// are the outer loop so each is read from memory once per point block, not once per
/// point: the assignment is bound by cache bandwidth, not arithmetic (docs/INDEX.md).
fn nearest_block(xs: &[f32], centroids: &[f32], half: &[f32], dim: usize, out: &mut Vec<u32>) {
    let np = xs.len() / dim.max(1);
    let mut best = [(f32::NEG_INFINITY, 0u32); TILE];
    let mut buf = [0f32; TILE];
    for (j, (cs, hs)) in centroids
        .chunks(TILE * dim.max(1))
        .zip(half.chunks(TILE))
        .enumerate()
    {
        let scores = &mut buf[..hs.len()];
        for (x, b) in xs.chunks_exact(dim.max(1)).zip(best.iter_mut()) {
            dots_f32(cs, x, scores);
            for (i, (&d, h)) in scores.iter().zip(hs).enumerate() {
                // Ascending centroid order and a strict `>`: ties go to the lowest index.
                let s = d - h;
                if s > b.0 {
                    *b = (s, (j * TILE + i) as u32);
                }
            }
        }
    }
    out.extend(best[..np].iter().map(|b| b.1));
}

/// The nearest centroid (L2) of every row of `data`, in parallel on the current pool.
pub(crate) fn assign(data: &[f32], dim: usize, centroids: &[f32]) -> Vec<u32> {
    let half = half_norms(centroids, dim);
    data.par_chunks(dim.max(1) * TILE * 4)
        .flat_map_iter(|block| {
            let mut out = Vec::with_capacity(TILE * 4);
            for xs in block.chunks(dim.max(1) * TILE) {
                nearest_block(xs, centroids, &half, dim, &mut out);
            }
            out
        })
        .collect()
}

/// Train `k` centroids on at most `sample` rows of `data` (row-major, `dim` columns)
/// with `iters` Lloyd iterations. Initial centroids are distinct sampled rows; an
/// empty cluster takes half of the largest one. `go(i)` is asked before iteration `i`;
/// `false` stops the training (`None`).
pub(crate) fn train(
    data: &[f32],
    dim: usize,
    k: usize,
    iters: usize,
    sample: usize,
    seed: u64,
    go: &mut dyn FnMut(usize) -> bool,
) -> Option<Vec<f32>> {
    let n = data.len() / dim;
    assert!(k >= 1 && k <= n, "k-means needs 1 <= k <= rows");
    let mut rng = SplitMix(seed ^ 0x6B6D_6561_6E73);
    let picked = rng.sample(n, sample.max(k));
    let mut xs = Vec::with_capacity(picked.len() * dim);
    for &i in &picked {
        xs.extend_from_slice(&data[i * dim..(i + 1) * dim]);
    }
    let mut centroids: Vec<f32> = Vec::with_capacity(k * dim);
    for i in 0..k {
        centroids.extend_from_slice(&xs[i * dim..(i + 1) * dim]);
    }
    let mut sums = vec![0f64; k * dim];
    let mut counts = vec![0usize; k];
    for it in 0..iters {
        if !go(it) {
            return None;
        }
        let labels = assign(&xs, dim, &centroids);
        sums.iter_mut().for_each(|s| *s = 0.0);
        counts.iter_mut().for_each(|c| *c = 0);
        for (x, &l) in xs.chunks_exact(dim).zip(&labels) {
            let l = l as usize;
            counts[l] += 1;
            for (s, &v) in sums[l * dim..(l + 1) * dim].iter_mut().zip(x) {
                *s += v as f64;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                let inv = 1.0 / counts[c] as f64;
                for d in 0..dim {
                    centroids[c * dim + d] = (sums[c * dim + d] * inv) as f32;
                }
            }
        }
        // Empty clusters: split the largest cluster in two along a seeded direction.
        for c in 0..k {
            if counts[c] > 0 {
                continue;
            }
            let big = (0..k)
                .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            for d in 0..dim {
                let eps = if rng.next_u64() & 1 == 0 { 1e-3 } else { -1e-3 };
                let v = centroids[big * dim + d];
                centroids[c * dim + d] = v * (1.0 + eps) + eps * 1e-3;
                centroids[big * dim + d] = v * (1.0 - eps) - eps * 1e-3;
            }
            counts[c] = counts[big] / 2;
            counts[big] -= counts[c];
        }
    }
    Some(centroids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(seed: u64) -> Vec<f32> {
        let mut r = SplitMix(seed);
        let mut v = Vec::new();
        for i in 0..3000 {
            let c = (i % 5) as f32 * 10.0;
            for _ in 0..4 {
                v.push(c + (r.below(1000) as f32 / 1000.0 - 0.5));
            }
        }
        v
    }

    #[test]
    fn deterministic_for_a_seed_and_on_any_pool() {
        let data = blobs(1);
        let a = train(&data, 4, 5, 8, 1000, 7, &mut |_| true).unwrap();
        let b = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| train(&data, 4, 5, 8, 1000, 7, &mut |_| true).unwrap());
        assert_eq!(a, b);
        let c = train(&data, 4, 5, 8, 1000, 8, &mut |_| true).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn asks_before_every_iteration_and_stops_when_told() {
        let data = blobs(3);
        let mut asked = Vec::new();
        let done = train(&data, 4, 5, 6, 1000, 7, &mut |i| {
            asked.push(i);
            true
        });
        assert!(done.is_some());
        assert_eq!(asked, (0..6).collect::<Vec<_>>());
        let stopped = train(&data, 4, 5, 6, 1000, 7, &mut |i| i < 2);
        assert!(stopped.is_none());
    }

    #[test]
    fn finds_well_separated_blobs() {
        let data = blobs(2);
        let c = train(&data, 4, 5, 15, 3000, 3, &mut |_| true).unwrap();
        let mut firsts: Vec<i32> = c
            .chunks_exact(4)
            .map(|x| (x[0] / 10.0).round() as i32)
            .collect();
        firsts.sort();
        // Every blob gets a centroid (random init may put two in one blob; allow one miss).
        firsts.dedup();
        assert!(firsts.len() >= 4, "{c:?}");
        let labels = assign(&data, 4, &c);
        assert_eq!(labels.len(), 3000);
    }
}
