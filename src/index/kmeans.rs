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

/// The nearest centroid of each point of `xs` (at most [`TILE`] points).
fn nearest_block(xs: &[f32], centroids: &[f32], half: &[f32], dim: usize, out: &mut Vec<u32>) {
    let np = xs.len() / dim.max(1);
    let mut best = [(f32::NEG_INFINITY, 0u32); TILE];
    score_tiles(xs, centroids, half, dim, |p, c, s| {
        // Ascending centroid order and a strict `>`: ties go to the lowest index.
        if s > best[p].0 {
            best[p] = (s, c);
        }
    });
    out.extend(best[..np].iter().map(|b| b.1));
}

/// `f(point, centroid, x·c − ‖c‖²/2)` for every point of `xs` (at most [`TILE`]) and
/// every centroid, the centroids of each point in ascending order. Centroid tiles are
/// the outer loop so each is read from memory once per point block, not once per
/// point: the assignment is bound by cache bandwidth, not arithmetic (docs/INDEX.md).
#[inline(always)]
// why: centroid numbers are below the list count, a u32 in the stored header.
#[allow(clippy::cast_possible_truncation)]
fn score_tiles(
    xs: &[f32],
    centroids: &[f32],
    half: &[f32],
    dim: usize,
    mut f: impl FnMut(usize, u32, f32),
) {
    let mut buf = [0f32; TILE];
    for (j, (cs, hs)) in centroids
        .chunks(TILE * dim.max(1))
        .zip(half.chunks(TILE))
        .enumerate()
    {
        let scores = &mut buf[..hs.len()];
        for (p, x) in xs.chunks_exact(dim.max(1)).enumerate() {
            dots_f32(cs, x, scores);
            for (i, (&d, h)) in scores.iter().zip(hs).enumerate() {
                f(p, (j * TILE + i) as u32, d - h);
            }
        }
    }
}

/// The `m` nearest centroids of each point of `xs` (at most [`TILE`] points), nearest
/// first (ties to the lower index, as in [`nearest_block`]), appended to `out`.
// why: a rank key keeps the centroid number in its low 32 bits: the cast takes them.
#[allow(clippy::cast_possible_truncation)]
fn nearest_m_block(
    xs: &[f32],
    centroids: &[f32],
    half: &[f32],
    dim: usize,
    m: usize,
    out: &mut Vec<u32>,
) {
    let np = xs.len() / dim.max(1);
    // Per point: a buffer of up to 2·m scores above its bar; when full, the m best are
    // kept and the bar rises to the worst of them (amortised O(1) a score, against
    // O(m) for replacing the worst one each time). Entries are `rank_key`s, so the
    // selection compares integers.
    let mut kept: Vec<Vec<u64>> = (0..np).map(|_| Vec::with_capacity(2 * m)).collect();
    let mut bar = vec![f32::NEG_INFINITY; np];
    score_tiles(xs, centroids, half, dim, |p, c, s| {
        // Centroids come in ascending order: a strict `>` keeps the lower of ties.
        if s > bar[p] {
            let top = &mut kept[p];
            top.push(rank_key(s, c));
            if top.len() == 2 * m {
                top.select_nth_unstable(m - 1);
                top.truncate(m);
                bar[p] = key_score(top[m - 1]);
            }
        }
    });
    for top in &mut kept {
        top.sort_unstable();
        top.truncate(m);
        out.extend(top.iter().map(|&k| k as u32));
        out.extend(std::iter::repeat_n(u32::MAX, m - top.len().min(m)));
    }
}

/// A key that sorts (score, centroid) best first, ties to the lower centroid: the
/// score's bits made order-preserving as an unsigned integer, inverted, then the index.
fn rank_key(score: f32, centroid: u32) -> u64 {
    let b = score.to_bits();
    let ordered = if b >> 31 == 1 { !b } else { b | 1 << 31 };
    ((!ordered as u64) << 32) | centroid as u64
}

/// The score of a [`rank_key`].
fn key_score(key: u64) -> f32 {
    let ordered = !((key >> 32) as u32);
    f32::from_bits(if ordered >> 31 == 1 {
        ordered & !(1 << 31)
    } else {
        !ordered
    })
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

/// The `m` nearest centroids (L2) of every row of `data`, nearest first (`n · m`
/// entries; `u32::MAX` past the number of centroids), in parallel on the current pool.
/// The first of each row is what [`assign`] gives.
pub(crate) fn assign_m(data: &[f32], dim: usize, centroids: &[f32], m: usize) -> Vec<u32> {
    let half = half_norms(centroids, dim);
    data.par_chunks(dim.max(1) * TILE * 4)
        .flat_map_iter(|block| {
            let mut out = Vec::with_capacity(TILE * 4 * m);
            for xs in block.chunks(dim.max(1) * TILE) {
                nearest_m_block(xs, centroids, &half, dim, m.max(1), &mut out);
            }
            out
        })
        .collect()
}

/// Train `k` centroids on at most `sample` rows of `data` (row-major, `dim` columns)
/// with `iters` Lloyd iterations. Initial centroids are distinct sampled rows; an
/// empty cluster takes half of the largest one. `go(i)` is asked before iteration `i`;
/// `false` stops the training (`None`).
// why: centroid means are computed in f64 and stored as f32, on purpose.
#[allow(clippy::cast_possible_truncation)]
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

    #[test]
    fn rank_keys_sort_best_first_and_give_the_score_back() {
        let scores = [3.5f32, -0.0, 0.0, -2.25, f32::MIN, 1e-30, -1e-30, 7.0, 3.5];
        let mut keys: Vec<u64> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| rank_key(s, i as u32))
            .collect();
        for (&k, &s) in keys.iter().zip(&scores) {
            assert_eq!(key_score(k).to_bits(), s.to_bits());
        }
        keys.sort_unstable();
        let got: Vec<u32> = keys.iter().map(|&k| k as u32).collect();
        let mut want: Vec<(f32, u32)> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, i as u32))
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(got, want.iter().map(|e| e.1).collect::<Vec<_>>());
    }

    /// The m nearest of every point, against sorting all centroids by distance; the
    /// first is `assign`'s, ties included (every centroid appears twice).
    #[test]
    fn assign_m_is_the_m_nearest_by_brute_force() {
        let data = crate::testkit::clustered_vectors(700, 8, 4);
        let mut c = train(&data, 8, 37, 5, 700, 1, &mut |_| true).unwrap();
        c.extend_from_within(..8 * 37);
        for m in [1, 5, 80] {
            let near = assign_m(&data, 8, &c, m);
            assert_eq!(near.len(), 700 * m);
            let first: Vec<u32> = near.iter().step_by(m).copied().collect();
            assert_eq!(first, assign(&data, 8, &c), "m = {m}");
            let half = half_norms(&c, 8);
            for (x, got) in data.chunks_exact(8).zip(near.chunks_exact(m)) {
                // Scored tile by tile as the kernel does (a row's rounding depends on
                // where it sits in the block, and ties must come out the same).
                let mut dots = vec![0f32; 74];
                for (t, cs) in c.chunks(8 * TILE).enumerate() {
                    dots_f32(cs, x, &mut dots[t * TILE..t * TILE + cs.len() / 8]);
                }
                let mut all: Vec<(f32, u32)> =
                    (0..74).map(|i| (dots[i] - half[i], i as u32)).collect();
                all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                let mut want: Vec<u32> = all.iter().take(m).map(|e| e.1).collect();
                want.resize(m, u32::MAX);
                assert_eq!(got, &want[..], "m = {m}");
            }
        }
    }
}
