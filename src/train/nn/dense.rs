//! A dense layer `y = act(x·W + b)` with its backward pass, every product through
//! [`gemm`]: dW = Xᵀ·dY, db = Σ dY, dX = dY·Wᵀ.

use super::gemm::gemm;
use rayon::prelude::*;

use super::Activation;

/// Elements per parallel task of an element-wise activation.
const ACT_CHUNK: usize = 1 << 14;

/// `act` on `x` in place, in parallel chunks (element-wise: the same result on any
/// number of threads).
pub(crate) fn activate(act: Activation, x: &mut [f32]) {
    if act != Activation::Identity {
        x.par_chunks_mut(ACT_CHUNK).for_each(|c| act.forward(c));
    }
}

/// W is n_in × n_out, row-major.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub n_in: usize,
    pub n_out: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub act: Activation,
}

impl Dense {
    /// `y` (rows × n_out) = act(x·W + b) for `x` (rows × n_in).
    pub fn forward(&self, rows: usize, x: &[f32], y: &mut [f32]) {
        y.par_chunks_mut(self.n_out)
            .for_each(|yr| yr.copy_from_slice(&self.b));
        gemm(
            rows, self.n_out, self.n_in, 1.0, x, false, &self.w, false, 1.0, y,
        );
        activate(self.act, y);
    }

    /// Backward from `dy` = dL/d(output): turns `dy` into dL/d(pre-activation) in
    /// place (from the output `y`), writes `dw` = xᵀ·dy and `db` = Σ_rows dy
    /// (overwriting both), and `dx` = dy·Wᵀ when asked.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        rows: usize,
        x: &[f32],
        y: &[f32],
        dy: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        if self.act != Activation::Identity {
            dy.par_chunks_mut(ACT_CHUNK)
                .zip(y.par_chunks(ACT_CHUNK))
                .for_each(|(g, y)| self.act.backward(y, g));
        }
        gemm(n_in, n_out, rows, 1.0, x, true, dy, false, 0.0, dw);
        db.iter_mut().for_each(|d| *d = 0.0);
        for g in dy.chunks(n_out) {
            db.iter_mut().zip(g).for_each(|(d, g)| *d += g);
        }
        if let Some(dx) = dx {
            gemm(rows, n_in, n_out, 1.0, dy, false, &self.w, true, 0.0, dx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::gradcheck::{act64, assert_close, numeric_gradient};

    /// Loss Σ y ⊙ c; W, b and x checked against central differences in f64.
    #[test]
    fn gradients_match_finite_differences() {
        let (rows, n_in, n_out) = (4, 5, 3);
        for act in [Activation::Identity, Activation::Tanh, Activation::Sigmoid] {
            let layer = Dense {
                n_in,
                n_out,
                w: (0..n_in * n_out).map(|i| (i as f32 * 0.37).sin()).collect(),
                b: vec![0.1, -0.2, 0.3],
                act,
            };
            let x: Vec<f32> = (0..rows * n_in).map(|i| (i as f32 * 0.53).cos()).collect();
            let c: Vec<f32> = (0..rows * n_out).map(|i| (i as f32 * 0.29).sin()).collect();
            let f = |x: &[f64], w: &[f64], b: &[f64]| {
                let mut s = 0.0;
                for r in 0..rows {
                    for j in 0..n_out {
                        let mut y = b[j];
                        for p in 0..n_in {
                            y += x[r * n_in + p] * w[p * n_out + j];
                        }
                        s += act64(act, y) * f64::from(c[r * n_out + j]);
                    }
                }
                s
            };
            let to64 = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
            let (x64, w64, b64) = (to64(&x), to64(&layer.w), to64(&layer.b));
            let mut y = vec![0f32; rows * n_out];
            layer.forward(rows, &x, &mut y);
            let mut dy = c.clone();
            let (mut dw, mut db, mut dx) = (
                vec![9f32; n_in * n_out],
                vec![9f32; n_out],
                vec![0f32; rows * n_in],
            );
            layer.backward(rows, &x, &y, &mut dy, &mut dw, &mut db, Some(&mut dx));
            let name = act.name();
            let num = numeric_gradient(&w64, 1e-5, |w| f(&x64, w, &b64));
            assert_close(&format!("{name} dW"), &dw, &num, 1e-3);
            let num = numeric_gradient(&b64, 1e-5, |b| f(&x64, &w64, b));
            assert_close(&format!("{name} db"), &db, &num, 1e-3);
            let num = numeric_gradient(&x64, 1e-5, |x| f(x, &w64, &b64));
            assert_close(&format!("{name} dX"), &dx, &num, 1e-3);
        }
    }
}
