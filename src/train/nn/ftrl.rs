//! FTRL-Proximal (McMahan et al., KDD 2013, "Ad Click Prediction: a View from the
//! Trenches", Algorithm 1), the wide part's optimizer: per coordinate it keeps `z` and
//! `n` (sum of squared gradients) and the weight is their closed form
//!
//! `w = 0` if `|z| ≤ λ₁`, else `w = −(z − sign(z)·λ₁) / ((β + √n)/α + λ₂)`,
//!
//! so with `λ₁ > 0` most weights are exactly zero (a sparse model), not merely small.
//! The update: `σ = (√(n + g²) − √n)/α; z += g − σ·w; n += g²`. The weights are a
//! function of the state: a tensor trained with FTRL starts at zero (`z = n = 0`), and
//! whatever it held before the first step is replaced by the closed form.

use super::optim::{row_range, Optimizer, RowGrad};
use crate::error::{Error, Result};

/// The paper's four settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FtrlParams {
    pub alpha: f32,
    pub beta: f32,
    pub l1: f32,
    pub l2: f32,
}

impl Default for FtrlParams {
    /// The paper's β = 1 (it reports β = 1 as usually good enough) with α = 0.05 and no
    /// regularisation; the caller sets λ₁ for sparsity.
    fn default() -> Self {
        FtrlParams {
            alpha: 0.05,
            beta: 1.0,
            l1: 0.0,
            l2: 0.0,
        }
    }
}

pub(crate) struct Ftrl {
    p: FtrlParams,
    z: Vec<f32>,
    n: Vec<f32>,
}

impl Ftrl {
    pub fn new(len: usize, p: FtrlParams) -> Result<Self> {
        let ok = |x: f32| x.is_finite() && x >= 0.0;
        if !(p.alpha.is_finite() && p.alpha > 0.0) {
            return Err(Error::param(
                "alpha",
                format!("FTRL's alpha must be > 0, got {}", p.alpha),
            ));
        }
        for (name, v) in [("beta", p.beta), ("l1", p.l1), ("l2", p.l2)] {
            if !ok(v) {
                return Err(Error::param(
                    name,
                    format!("FTRL's {name} must be ≥ 0, got {v}"),
                ));
            }
        }
        Ok(Ftrl {
            p,
            z: vec![0.0; len],
            n: vec![0.0; len],
        })
    }

    fn update(p: FtrlParams, w: &mut [f32], g: &[f32], z: &mut [f32], n: &mut [f32]) {
        for (((w, &g), z), n) in w.iter_mut().zip(g).zip(z).zip(n) {
            let n_new = *n + g * g;
            let sigma = (n_new.sqrt() - n.sqrt()) / p.alpha;
            *z += g - sigma * *w;
            *n = n_new;
            *w = if z.abs() <= p.l1 {
                0.0
            } else {
                -(*z - z.signum() * p.l1) / ((p.beta + n.sqrt()) / p.alpha + p.l2)
            };
        }
    }
}

impl Optimizer for Ftrl {
    fn step(&mut self, w: &mut [f32], g: &[f32]) {
        assert_eq!(w.len(), self.z.len(), "FTRL: tensor length changed");
        assert_eq!(g.len(), w.len(), "FTRL: gradient length");
        Self::update(self.p, w, g, &mut self.z, &mut self.n);
    }

    fn step_rows(&mut self, w: &mut [f32], g: &RowGrad) {
        assert_eq!(w.len(), self.z.len(), "FTRL: tensor length changed");
        for (r, gr) in g.iter() {
            let at = row_range(w.len(), g.dim(), r);
            Self::update(
                self.p,
                &mut w[at.clone()],
                gr,
                &mut self.z[at.clone()],
                &mut self.n[at],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logistic regression on a separable-ish toy set, 4 features of which only the
    /// first two carry signal; returns the trained weights.
    fn train(l1: f32) -> Vec<f32> {
        use crate::train::nn::logistic::logistic;
        // x = (a, b, c, d) with label = [a − b > 0]; c and d are noise in ±0.1.
        let xs: Vec<[f32; 4]> = (0..200)
            .map(|i| {
                let f = |k: u32| (((i * 7919 + k * 104_729) % 1000) as f32 / 500.0) - 1.0;
                [f(1), f(2), 0.1 * f(3), 0.1 * f(4)]
            })
            .collect();
        let mut w = vec![0f32; 4];
        let mut opt = Ftrl::new(
            4,
            FtrlParams {
                alpha: 0.5,
                beta: 1.0,
                l1,
                l2: 0.0,
            },
        )
        .unwrap();
        for _ in 0..20 {
            for x in &xs {
                let zlogit: f32 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
                let y = if x[0] - x[1] > 0.0 { 1.0 } else { 0.0 };
                let mut dz = [0f32];
                logistic(&[zlogit], &[y], None, &mut dz);
                let g: Vec<f32> = x.iter().map(|v| dz[0] * v).collect();
                opt.step(&mut w, &g);
            }
        }
        w
    }

    #[test]
    fn ftrl_minimises_a_quadratic() {
        let params = FtrlParams {
            alpha: 1.0,
            ..FtrlParams::default()
        };
        let mut opt = Ftrl::new(4, params).unwrap();
        crate::train::nn::optim::tests::assert_minimises_a_quadratic(&mut opt, 5000, 1e-2);
    }

    #[test]
    fn l1_gives_exact_zeros_on_the_noise_and_keeps_the_signal() {
        let dense = train(0.0);
        assert!(dense.iter().all(|&v| v != 0.0), "{dense:?}");
        let sparse = train(5.0);
        assert!(
            sparse[0] > 0.5 && sparse[1] < -0.5,
            "signal kept: {sparse:?}"
        );
        assert_eq!(&sparse[2..], &[0.0, 0.0], "noise exactly zero: {sparse:?}");
    }

    #[test]
    fn sparse_rows_match_dense_steps_on_the_rows_and_leave_the_rest() {
        let p = FtrlParams {
            l1: 1.0,
            l2: 0.5,
            ..FtrlParams::default()
        };
        let mut dense_w = vec![0f32; 6];
        let mut sparse_w = vec![0f32; 6];
        let (mut dense, mut sparse) = (Ftrl::new(6, p).unwrap(), Ftrl::new(6, p).unwrap());
        for step in 0..3 {
            let s = step as f32 + 1.0;
            let mut rg = RowGrad::new(2);
            rg.add(2, s, &[0.5, -1.0]);
            rg.add(0, s, &[2.0, 0.05]);
            dense.step(&mut dense_w, &[2.0 * s, 0.05 * s, 0.0, 0.0, 0.5 * s, -s]);
            sparse.step_rows(&mut sparse_w, &rg);
        }
        assert_eq!(dense_w, sparse_w);
        assert_eq!(sparse_w[1], 0.0, "|z| ≤ l1 gives an exact zero");
    }

    #[test]
    fn bad_settings_are_refused() {
        let p = FtrlParams::default();
        assert!(Ftrl::new(1, FtrlParams { alpha: 0.0, ..p }).is_err());
        assert!(Ftrl::new(1, FtrlParams { l1: -1.0, ..p }).is_err());
        assert!(Ftrl::new(
            1,
            FtrlParams {
                beta: f32::NAN,
                ..p
            }
        )
        .is_err());
    }
}
