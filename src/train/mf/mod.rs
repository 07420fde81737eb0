//! Matrix factorization: one model type, three trainers (explicit SGD, implicit ALS, BPR).

pub(crate) mod als;
pub(crate) mod bpr;
pub(crate) mod sgd;

use ndarray::{Array2, ArrayView1, Axis, Slice};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use std::ops::RangeInclusive;

use crate::train::params::{check_int, check_real, Real};
use crate::{Error, Result};

/// A factorization `r(u, i) ~ global_bias + user_bias[u] + item_bias[i] + <p_u, q_i>`.
///
/// Implicit models leave a bias vector empty (it then counts as 0) and `global_bias` at 0.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MfModel {
    pub user_factors: Array2<f32>,
    pub item_factors: Array2<f32>,
    pub user_bias: Vec<f32>,
    pub item_bias: Vec<f32>,
    pub global_bias: f32,
}

impl MfModel {
    #[cfg(test)]
    pub fn predict(&self, u: usize, i: usize) -> f32 {
        let ub = self.user_bias.get(u).copied().unwrap_or(0.0);
        let ib = self.item_bias.get(i).copied().unwrap_or(0.0);
        self.global_bias + ub + ib + dot(self.user_factors.row(u), self.item_factors.row(i))
    }

    /// User and item tables whose row dot product is `predict(u, i) - global_bias`,
    /// so an inner-product index over them ranks items exactly like the model.
    ///
    /// A non-empty item bias adds a column `1` to users and `b_i` to items; a non-empty
    /// user bias then adds `b_u` to users and `1` to items (biased model: users get
    /// `[p_u, 1, b_u]`, items `[q_i, b_i, 1]`).
    pub fn to_tables(&self) -> (Array2<f32>, Array2<f32>) {
        let f = self.user_factors.ncols();
        let extra =
            usize::from(!self.item_bias.is_empty()) + usize::from(!self.user_bias.is_empty());
        // (ndarray's `s!` macro expands to `allow(unsafe_code)`, which the crate forbids.)
        let (nu, ni) = (self.user_factors.nrows(), self.item_factors.nrows());
        let mut users = Array2::<f32>::zeros((nu, f + extra));
        let mut items = Array2::<f32>::zeros((ni, f + extra));
        users
            .slice_axis_mut(Axis(1), Slice::from(..f))
            .assign(&self.user_factors);
        items
            .slice_axis_mut(Axis(1), Slice::from(..f))
            .assign(&self.item_factors);
        let mut col = f;
        if !self.item_bias.is_empty() {
            users.column_mut(col).fill(1.0);
            items
                .column_mut(col)
                .assign(&ArrayView1::from(&self.item_bias[..]));
            col += 1;
        }
        if !self.user_bias.is_empty() {
            users
                .column_mut(col)
                .assign(&ArrayView1::from(&self.user_bias[..]));
            items.column_mut(col).fill(1.0);
        }
        (users, items)
    }
}

#[cfg(test)]
pub(crate) fn dot(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f32 {
    a.dot(&b)
}

/// Slice dot product (the hot loops work on contiguous rows).
#[inline]
pub(crate) fn dot_slice(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A `rows x cols` matrix of N(0, std^2) draws from a seeded RNG (Box-Muller: rand 0.9
/// alone has no normal distribution), allocated fallibly: `factors` sized it.
// why: draws are made in f64 and stored as f32, on purpose.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn normal_matrix(rows: usize, cols: usize, std: f32, seed: u64) -> Result<Array2<f32>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut v = crate::jobs::memory::filled(rows.saturating_mul(cols), 0f32, "factors")?;
    v.fill_with(|| {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
        let u2: f64 = rng.random::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (z * std as f64) as f32
    });
    Array2::from_shape_vec((rows, cols), v).map_err(|e| Error::InvalidInput(e.to_string()))
}

// Parameter ranges shared by the trainers (docs/SHELL.md has the table); each check
// names the offending parameter.

/// Factor counts are bounded so that a typo fails validation, not an allocation.
pub(crate) const FACTORS: RangeInclusive<u64> = 1..=4096;
/// Epochs (SGD, BPR) and sweeps (ALS): bounded so a typo cannot run for days.
pub(crate) const EPOCHS: RangeInclusive<u64> = 1..=10_000;
pub(crate) const CG_STEPS: RangeInclusive<u64> = 1..=100;
pub(crate) const LEARNING_RATE: Real = Real::above(0.0, 10.0);
/// Regularisation weights and ALS's confidence slope.
pub(crate) const WEIGHT: Real = Real::closed(0.0, 1e6);
pub(crate) const INIT_STD: Real = Real::closed(0.0, 10.0);
pub(crate) const LR_DECAY: Real = Real::above(0.0, 1.0);
pub(crate) const FRACTION: Real = Real::closed(0.0, 1.0);

pub(crate) fn check_count(name: &str, v: usize, range: RangeInclusive<u64>) -> Result<()> {
    check_int(name, v as u64, range)
}

pub(crate) fn check_f32(name: &str, v: f32, range: Real) -> Result<()> {
    check_real(name, f64::from(v), range)
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::sync::atomic::AtomicBool;

    use crate::jobs::{JobContext, NoProgress};

    /// Runs `f` with a job context over a private pool of `threads` threads.
    pub fn with_ctx<T>(seed: u64, threads: usize, f: impl FnOnce(&JobContext) -> T) -> T {
        let cancel = AtomicBool::new(false);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let ctx = JobContext::new(seed, &cancel, &NoProgress, &pool);
        f(&ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn tables_reproduce_predictions_biased_and_implicit() {
        let mut m = MfModel {
            user_factors: array![[0.5, -1.0], [2.0, 0.25]],
            item_factors: array![[1.0, 3.0], [-0.5, 0.5], [0.0, 2.0]],
            user_bias: vec![0.1, -0.2],
            item_bias: vec![0.3, 0.0, -0.4],
            global_bias: 3.5,
        };
        for biased in [true, false] {
            if !biased {
                m.user_bias.clear();
                m.item_bias.clear();
                m.global_bias = 0.0;
            }
            let (us, is) = m.to_tables();
            assert_eq!(us.ncols(), if biased { 4 } else { 2 });
            for u in 0..2 {
                for i in 0..3 {
                    let d = us.row(u).dot(&is.row(i));
                    assert!((d - (m.predict(u, i) - m.global_bias)).abs() < 1e-6);
                }
            }
        }
    }

    #[test]
    fn normal_matrix_is_seeded_and_scaled() {
        let a = normal_matrix(200, 50, 0.1, 7).unwrap();
        assert_eq!(a, normal_matrix(200, 50, 0.1, 7).unwrap());
        assert_ne!(a, normal_matrix(200, 50, 0.1, 8).unwrap());
        let n = a.len() as f32;
        let mean = a.sum() / n;
        let std = (a.mapv(|x| x * x).sum() / n - mean * mean).sqrt();
        assert!(
            mean.abs() < 0.01 && (std - 0.1).abs() < 0.01,
            "{mean} {std}"
        );
    }
}
