//! The multinomial log-likelihood over all items (Liang et al. 2018): for logits z and
//! a bag x, −Σᵢ xᵢ log softmax(z)ᵢ, whose gradient is softmax(z)·Σx − x. The softmax
//! runs in place on the output product's buffer, one row per task, and the gradient
//! replaces the logits there: no second I-wide buffer per batch.

use rayon::prelude::*;

use super::sparse::SparseRows;

/// `z` holds rows × n logits; `x` the rows' bags (sparse, its columns below n). Returns
/// `scale` · Σ_rows −Σᵢ xᵢ log softmax(z)ᵢ and replaces `z` by its gradient, `scale` ·
/// (softmax(z)·Σx − x). `row_loss` is a kept buffer (rows are summed in order, so the
/// loss does not depend on the threads).
pub(crate) fn multinomial_nll(
    z: &mut [f32],
    n: usize,
    x: &SparseRows,
    scale: f32,
    row_loss: &mut Vec<f64>,
) -> f64 {
    assert_eq!(z.len(), x.rows() * n, "multinomial: logits size");
    row_loss.clear();
    row_loss.resize(x.rows(), 0.0);
    z.par_chunks_mut(n)
        .zip(row_loss.par_iter_mut())
        .enumerate()
        .for_each(|(r, (zr, loss))| {
            let (cols, vals) = x.row(r);
            let mut xz = 0f64;
            let mut sx = 0f32;
            for (&c, &v) in cols.iter().zip(vals) {
                xz += f64::from(v) * f64::from(zr[c as usize]);
                sx += v;
            }
            let max = zr.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut sum = 0f32;
            for v in zr.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            let lse = f64::from(max) + f64::from(sum).ln();
            *loss = f64::from(sx) * lse - xz;
            let k = scale * sx / sum;
            zr.iter_mut().for_each(|v| *v *= k);
            for (&c, &v) in cols.iter().zip(vals) {
                zr[c as usize] -= scale * v;
            }
        });
    f64::from(scale) * row_loss.iter().sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::gradcheck::{assert_close, numeric_gradient};

    #[test]
    fn gradient_matches_finite_differences() {
        let n = 6;
        let mut x = SparseRows::default();
        x.push_uniform(&[0, 4], 1.0);
        x.push_uniform(&[], 1.0);
        x.push_uniform(&[1, 2, 5], 1.0);
        x.values[3] = 2.0;
        let z0: Vec<f32> = (0..3 * n).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let scale = 1.0 / 3.0;
        let f = |z: &[f64]| {
            let mut s = 0.0;
            for r in 0..3 {
                let zr = &z[r * n..(r + 1) * n];
                let lse = zr.iter().map(|v| v.exp()).sum::<f64>().ln();
                let (cols, vals) = x.row(r);
                for (&c, &v) in cols.iter().zip(vals) {
                    s -= f64::from(v) * (zr[c as usize] - lse);
                }
            }
            s * f64::from(scale)
        };
        let z64: Vec<f64> = z0.iter().map(|&v| v.into()).collect();
        let mut z = z0.clone();
        let loss = multinomial_nll(&mut z, n, &x, scale, &mut Vec::new());
        assert!((loss - f(&z64)).abs() < 1e-5, "{loss} vs {}", f(&z64));
        assert_close("dz", &z, &numeric_gradient(&z64, 1e-5, f), 1e-4);
    }

    #[test]
    fn huge_logits_do_not_overflow() {
        let mut x = SparseRows::default();
        x.push_uniform(&[1], 1.0);
        let mut z = vec![1000.0, 2000.0, -3000.0];
        let loss = multinomial_nll(&mut z, 3, &x, 1.0, &mut Vec::new());
        assert!(loss.is_finite() && loss.abs() < 1e-6, "{loss}");
        assert!(z.iter().all(|v| v.is_finite()));
    }
}
