//! Dense events and vectors for big benchmarks and index tests.

use rayon::prelude::*;

use crate::synth::rng::{mix, Rng};

/// A fast stream of `(user, item, rating, timestamp)` with dense ids, for big benchmarks.
///
/// Users own contiguous, equal runs of events (event `j` belongs to user
/// `j · n_users / n_events`) with increasing timestamps. Items follow a power law; each
/// user belongs to one of up to 32 clusters and half of its events fall in the cluster's
/// block of items (rated 4-5), the other half anywhere (rated 1-5), so there is signal.
/// Deterministic for a seed, whatever the number of threads. Empty when any count is 0.
pub fn generate_dense(
    n_events: usize,
    n_users: usize,
    n_items: usize,
    seed: u64,
) -> Vec<(u32, u32, f32, i64)> {
    if n_events == 0 || n_users == 0 || n_items == 0 {
        return Vec::new();
    }
    const CHUNK: usize = 1 << 16;
    let clusters = n_items.clamp(1, 32);
    let block = n_items / clusters;
    let mut out = vec![(0u32, 0u32, 0f32, 0i64); n_events];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut rng = Rng::stream(seed, 0xD5E5_0000_0000 + c as u64);
            let first = c * CHUNK;
            for (k, slot) in chunk.iter_mut().enumerate() {
                let j = first + k;
                let user = ((j as u128 * n_users as u128) / n_events as u128) as usize;
                let cluster = (mix(user as u64 ^ seed) % clusters as u64) as usize;
                let u = rng.f64();
                let (item, rating) = if rng.next() & 1 == 0 {
                    let r = (u * u * block as f64) as usize;
                    (
                        cluster * block + r.min(block - 1),
                        4 + (rng.next() & 1) as u32,
                    )
                } else {
                    let r = (u * u * u * n_items as f64) as usize;
                    (r.min(n_items - 1), 1 + rng.below(5) as u32)
                };
                let ts = 1_600_000_000 + j as i64 * 7 + rng.below(7) as i64;
                *slot = (user as u32, item as u32, rating as f32, ts);
            }
        });
    out
}

/// Clustered unit vectors for index tests and benchmarks (the index benchmark data, docs/INDEX.md): `n`
/// rows of `dim` values, row-major. K = max(1, n/500) centres from N(0, I); cluster sizes
/// follow Zipf(1.5) (cluster of rank r with probability ∝ r^-1.5); each row is
/// `centre + 0.3·P·z + 0.6·e`, z ~ N(0, I_8), e ~ N(0, I_dim), P a fixed dim×8 Gaussian
/// matrix with entries N(0, 1/8) (so P·z has unit variance per coordinate); then
/// normalised to unit length. Deterministic for `seed`, in parallel. For queries from
/// the same distribution, generate `n + q` rows and split off the last `q`.
pub fn clustered_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let k = (n / 500).max(1);
    let mut r = Rng::stream(seed, u64::MAX);
    let centres: Vec<f64> = (0..k * dim).map(|_| r.normal()).collect();
    let proj: Vec<f64> = (0..dim * 8).map(|_| r.normal() / 8f64.sqrt()).collect();
    let mut cum = Vec::with_capacity(k);
    let mut acc = 0.0;
    for rank in 1..=k {
        acc += (rank as f64).powf(-1.5);
        cum.push(acc);
    }
    let mut out = vec![0f32; n * dim];
    out.par_chunks_mut(dim.max(1))
        .enumerate()
        .for_each(|(i, row)| {
            let mut r = Rng::stream(seed, i as u64);
            let c = r.pick_cum(&cum);
            let z: [f64; 8] = std::array::from_fn(|_| r.normal());
            let mut v: Vec<f64> = (0..dim)
                .map(|d| {
                    let pz: f64 = (0..8).map(|j| proj[d * 8 + j] * z[j]).sum();
                    centres[c * dim + d] + 0.3 * pz + 0.6 * r.normal()
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
            for (o, x) in row.iter_mut().zip(v) {
                *o = x as f32;
            }
        });
    out
}

/// Tight clusters of near-duplicates, the hard case of an index's rerank: `n` unit rows
/// of `dim` values, row-major, in `n/500` clusters of about 500 rows (row `i` in cluster
/// `i mod K`); each row is its centre (from N(0, I)) plus `spread`·N(0, I), normalised.
/// Deterministic for `seed`, in parallel.
pub fn near_duplicate_clusters(n: usize, dim: usize, spread: f32, seed: u64) -> Vec<f32> {
    let k = (n / 500).max(1);
    let mut r = Rng::stream(seed, u64::MAX);
    let centres: Vec<f64> = (0..k * dim).map(|_| r.normal()).collect();
    let mut out = vec![0f32; n * dim];
    out.par_chunks_mut(dim.max(1))
        .enumerate()
        .for_each(|(i, row)| {
            let mut r = Rng::stream(seed, i as u64);
            let c = &centres[(i % k) * dim..][..dim];
            let v: Vec<f64> = c.iter().map(|x| x + spread as f64 * r.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            for (o, x) in row.iter_mut().zip(v) {
                *o = (x / norm) as f32;
            }
        });
    out
}
