//! Spilled assignment (after SOAR, Sun et al., NeurIPS 2023): the rows nearest to a list
//! boundary are placed in a second list as well, so a query that misses a row's first
//! list may still find it in the second.
//!
//! Which second list: a query misses row `x`'s first list (centroid `c₁`) when it lies
//! along the residual `r₁ = x − c₁`, where `q·x` is large but `q·c₁` is not. A second
//! list helps most when its residual `r₂ = x − c₂` is short and has little of `r₁` in
//! it, so the second list scores well exactly for those queries: the list that
//! minimises `‖r₂‖² + λ·(r̂₁·r₂)²` among the row's nearest centroids. Which rows: the
//! fraction whose best such loss exceeds `‖r₁‖²` least (the rows closest to a boundary
//! gain most per copy; measured against the loss relative to `‖r₁‖²`, which did worse).
//!
//! Measured on the benchmark data at 1M rows (docs/HISTORY.md, index stop 15): spilling
//! 30 % of the rows cut the rows a query scans for recall@10 0.95 by a quarter (52.8k →
//! 39.2k), for 11 bytes a row.

use rayon::prelude::*;

use super::kernels::dot;

/// Fraction of rows placed in a second list by a build.
pub(crate) const SPILL: f32 = 0.3;
/// Weight of the residuals' shared direction in the loss (SOAR's λ; 1 measured as well
/// as the others tried, 0 is plain second-nearest, which did a little worse).
const LAMBDA: f32 = 1.0;
/// Lists a row's second list is chosen from: its nearest centroids after the first
/// (the first list's nearest centroids instead lost a quarter of the gain at 1M rows).
pub(crate) const NEAR: usize = 24;

/// The second list of each row of `vecs` (row-major, `width` columns) for the
/// `fraction` of rows that gain most, `None` for the others. `near` holds each row's
/// `m` nearest centroids, nearest first (its first list, then the candidates; entries
/// past the centroids are `u32::MAX`), as [`kmeans::assign_m`] gives them.
/// Deterministic: ties go to the nearer candidate, then the lower row.
///
/// [`kmeans::assign_m`]: super::kmeans::assign_m
// why: `take` is clamped to n; row numbers are below the table's u32 row count.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn second_lists(
    vecs: &[f32],
    width: usize,
    centroids: &[f32],
    near: &[u32],
    m: usize,
    fraction: f32,
) -> Vec<Option<u32>> {
    let n = near.len() / m.max(1);
    let take = ((n as f64 * fraction.clamp(0.0, 1.0) as f64) as usize).min(n);
    if m < 2 || take == 0 {
        return vec![None; n];
    }
    let centroid = |l: u32| &centroids[l as usize * width..(l as usize + 1) * width];
    // (how much the loss exceeds ‖r₁‖², second list) per row.
    let best: Vec<(f32, u32)> = vecs
        .par_chunks(width.max(1))
        .zip(near.par_chunks(m))
        .map_init(
            || vec![0f32; width],
            |r1, (x, near)| {
                for ((e, a), c) in r1.iter_mut().zip(x).zip(centroid(near[0])) {
                    *e = a - c;
                }
                let r1n = dot(r1, r1);
                let mut best = (f32::INFINITY, u32::MAX);
                if r1n <= 0.0 {
                    // On its centroid: no query can prefer another list for it.
                    return best;
                }
                for &l in near[1..].iter().filter(|&&l| l != u32::MAX) {
                    let (mut r2n, mut along) = (0f32, 0f32);
                    for ((a, c), e) in x.iter().zip(centroid(l)).zip(r1.iter()) {
                        let r2 = a - c;
                        r2n += r2 * r2;
                        along += r2 * e;
                    }
                    let loss = r2n + LAMBDA * along * along / r1n - r1n;
                    if loss < best.0 {
                        best = (loss, l);
                    }
                }
                best
            },
        )
        .collect();
    let mut rank: Vec<(f32, u32)> = best
        .iter()
        .enumerate()
        .filter(|(_, b)| b.1 != u32::MAX)
        .map(|(i, b)| (b.0, i as u32))
        .collect();
    let by = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if take < rank.len() {
        rank.select_nth_unstable_by(take, by);
        rank.truncate(take);
    }
    let mut out = vec![None; n];
    for &(_, i) in &rank {
        out[i as usize] = Some(best[i as usize].1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kmeans;

    /// Rows, centroids, and each row's `NEAR` nearest centroids.
    fn setup(n: usize, dim: usize, lists: usize) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
        let x = crate::testkit::clustered_vectors(n, dim, 9);
        let c = kmeans::train(&x, dim, lists, 8, n, 1, &mut |_| true).unwrap();
        let near = kmeans::assign_m(&x, dim, &c, NEAR);
        (x, c, near)
    }

    /// How much the SOAR loss of row `x` in list `l` exceeds its first list's (`l1`), by
    /// the formula.
    fn loss(x: &[f32], c: &[f32], dim: usize, l1: usize, l: usize) -> f64 {
        let r1: Vec<f64> = (0..dim).map(|d| (x[d] - c[l1 * dim + d]) as f64).collect();
        let r2: Vec<f64> = (0..dim).map(|d| (x[d] - c[l * dim + d]) as f64).collect();
        let n1: f64 = r1.iter().map(|a| a * a).sum();
        let n2: f64 = r2.iter().map(|a| a * a).sum();
        let along: f64 = r1.iter().zip(&r2).map(|(a, b)| a * b).sum();
        n2 + LAMBDA as f64 * along * along / n1 - n1
    }

    #[test]
    fn second_lists_are_the_best_by_the_loss_for_the_chosen_fraction() {
        let (n, dim, lists) = (3000, 16, 60);
        let (x, c, near) = setup(n, dim, lists);
        let second = second_lists(&x, dim, &c, &near, NEAR, 0.3);
        assert_eq!(second.iter().flatten().count(), (n as f32 * 0.3) as usize);
        let mut agree = 0;
        let mut chosen = Vec::new();
        let mut all = Vec::new();
        for (i, s) in second.iter().enumerate() {
            let row = &x[i * dim..(i + 1) * dim];
            let l1 = near[i * NEAR] as usize;
            // Brute force over every other list.
            let (best, bl) = (0..lists)
                .filter(|&l| l != l1)
                .map(|l| (loss(row, &c, dim, l1, l), l))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap();
            all.push(best);
            if let Some(l) = *s {
                assert_ne!(l as usize, l1, "row {i}: second list is its first");
                chosen.push(best);
                agree += (l as usize == bl) as usize;
            }
        }
        // The row's nearest centroids almost always hold the best list.
        let spilled = chosen.len();
        assert!(agree * 100 >= spilled * 97, "{agree} of {spilled}");
        // The spilled rows are those with the smallest losses.
        all.sort_by(f64::total_cmp);
        let bar = all[spilled + spilled / 20];
        let above = chosen.iter().filter(|&&l| l > bar).count();
        assert!(above * 100 <= spilled, "{above} spilled rows above the bar");
    }

    #[test]
    fn no_spill_for_one_list_or_a_zero_fraction_and_the_same_every_time() {
        let (x, c, near) = setup(500, 8, 5);
        assert!(second_lists(&x, 8, &c, &near, NEAR, 0.0)
            .iter()
            .all(Option::is_none));
        let one = kmeans::train(&x, 8, 1, 3, 500, 1, &mut |_| true).unwrap();
        let alone = kmeans::assign_m(&x, 8, &one, NEAR);
        assert!(alone
            .chunks(NEAR)
            .all(|n| n[0] == 0 && n[1..].iter().all(|&l| l == u32::MAX)));
        assert!(second_lists(&x, 8, &one, &alone, NEAR, 0.5)
            .iter()
            .all(Option::is_none));
        let a = second_lists(&x, 8, &c, &near, NEAR, 1.0);
        assert_eq!(a.iter().flatten().count(), 500);
        assert_eq!(a, second_lists(&x, 8, &c, &near, NEAR, 1.0));
    }
}
