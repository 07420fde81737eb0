//! Dropout, seeded by the caller's generator: on sparse input rows it drops non-zeros
//! (and so the W rows they would touch), on dense activations it keeps a mask for the
//! backward pass. Survivors are scaled by 1/(1-p) so the expected input is unchanged.

use rand::rngs::SmallRng;
use rand::Rng;

use super::sparse::SparseRows;

/// Copy `src` into `dst` keeping each non-zero with probability 1-p, scaled by 1/(1-p).
pub(crate) fn dropout_sparse(src: &SparseRows, p: f32, rng: &mut SmallRng, dst: &mut SparseRows) {
    dst.clear();
    let scale = 1.0 / (1.0 - p);
    for r in 0..src.rows() {
        let (cols, vals) = src.row(r);
        for (&c, &v) in cols.iter().zip(vals) {
            if p == 0.0 || rng.random::<f32>() >= p {
                dst.cols.push(c);
                dst.values.push(v * scale);
            }
        }
        dst.offsets.push(dst.cols.len());
    }
}

/// Dense dropout in place; `mask` (same length) records the factor each value got, for
/// [`dropout_backward`].
pub(crate) fn dropout_dense(x: &mut [f32], p: f32, rng: &mut SmallRng, mask: &mut [f32]) {
    let scale = 1.0 / (1.0 - p);
    for (x, m) in x.iter_mut().zip(mask.iter_mut()) {
        *m = if p == 0.0 || rng.random::<f32>() >= p {
            scale
        } else {
            0.0
        };
        *x *= *m;
    }
}

/// The gradient through [`dropout_dense`]: the same mask.
pub(crate) fn dropout_backward(grad: &mut [f32], mask: &[f32]) {
    grad.iter_mut().zip(mask).for_each(|(g, m)| *g *= m);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::gradcheck::{assert_close, numeric_gradient};
    use rand::SeedableRng;

    #[test]
    fn sparse_dropout_keeps_about_1_minus_p_scaled_and_is_seeded() {
        let mut src = SparseRows::default();
        for _ in 0..100 {
            src.push_uniform(&(0..100).collect::<Vec<u32>>(), 1.0);
        }
        let run = |seed| {
            let mut dst = SparseRows::default();
            dropout_sparse(&src, 0.5, &mut SmallRng::seed_from_u64(seed), &mut dst);
            dst
        };
        let a = run(7);
        assert!((4500..5500).contains(&a.nnz()), "{}", a.nnz());
        assert!(a.values.iter().all(|&v| v == 2.0));
        assert_eq!(a.rows(), 100);
        assert_eq!(run(7).cols, a.cols);
        assert_ne!(run(8).cols, a.cols);
    }

    #[test]
    fn dense_dropout_gradient_is_its_mask() {
        let x0: Vec<f32> = (0..20).map(|i| i as f32 * 0.1 - 1.0).collect();
        let mut mask = vec![0f32; 20];
        let mut x = x0.clone();
        dropout_dense(&mut x, 0.3, &mut SmallRng::seed_from_u64(3), &mut mask);
        // With the mask fixed, L = Σ c ⊙ dropout(x) is linear in x.
        let c: Vec<f32> = (0..20).map(|i| (i as f32).sin()).collect();
        let mut g = c.clone();
        dropout_backward(&mut g, &mask);
        let x64: Vec<f64> = x0.iter().map(|&v| v.into()).collect();
        let num = numeric_gradient(&x64, 1e-4, |x| {
            x.iter()
                .zip(&mask)
                .zip(&c)
                .map(|((x, m), c)| x * f64::from(*m) * f64::from(*c))
                .sum()
        });
        assert_close("dropout dX", &g, &num, 1e-4);
    }
}
