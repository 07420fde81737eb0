//! AdaGrad (Duchi, Hazan & Singer, JMLR 2011), as TensorFlow's `AdagradOptimizer` that
//! Wide & Deep trains its deep part with: per coordinate `n += g²; w −= lr·g/√n`, the
//! accumulator starting at 0.1 (TensorFlow's default; settable) so the first steps are
//! not huge.

use super::optim::{row_range, Optimizer, RowGrad};
use crate::error::{Error, Result};

pub(crate) struct AdaGrad {
    lr: f32,
    acc: Vec<f32>,
}

impl AdaGrad {
    /// TensorFlow's initial accumulator.
    pub const INITIAL_ACCUMULATOR: f32 = 0.1;

    pub fn new(len: usize, lr: f32) -> Result<Self> {
        Self::with_initial(len, lr, Self::INITIAL_ACCUMULATOR)
    }

    /// `initial` must be > 0: the first step divides by its square root.
    pub fn with_initial(len: usize, lr: f32, initial: f32) -> Result<Self> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::param(
                "lr",
                format!("AdaGrad's learning rate must be > 0, got {lr}"),
            ));
        }
        if !(initial.is_finite() && initial > 0.0) {
            return Err(Error::param(
                "initial_accumulator",
                format!("must be > 0 (the first step divides by its root), got {initial}"),
            ));
        }
        Ok(AdaGrad {
            lr,
            acc: vec![initial; len],
        })
    }

    fn update(lr: f32, w: &mut [f32], g: &[f32], acc: &mut [f32]) {
        for ((w, &g), n) in w.iter_mut().zip(g).zip(acc) {
            *n += g * g;
            *w -= lr * g / n.sqrt();
        }
    }
}

impl Optimizer for AdaGrad {
    fn step(&mut self, w: &mut [f32], g: &[f32]) {
        assert_eq!(w.len(), self.acc.len(), "AdaGrad: tensor length changed");
        assert_eq!(g.len(), w.len(), "AdaGrad: gradient length");
        Self::update(self.lr, w, g, &mut self.acc);
    }

    fn step_rows(&mut self, w: &mut [f32], g: &RowGrad) {
        assert_eq!(w.len(), self.acc.len(), "AdaGrad: tensor length changed");
        for (r, gr) in g.iter() {
            let at = row_range(w.len(), g.dim(), r);
            Self::update(self.lr, &mut w[at.clone()], gr, &mut self.acc[at]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(w) = Σ cᵢ (wᵢ − i)², an ill-conditioned bowl.
    fn grad(w: &[f32]) -> Vec<f32> {
        w.iter()
            .enumerate()
            .map(|(i, x)| 2.0 * (1.0 + 10.0 * i as f32) * (x - i as f32))
            .collect()
    }

    #[test]
    fn adagrad_minimises_a_quadratic() {
        let mut opt = AdaGrad::new(4, 0.5).unwrap();
        crate::train::nn::optim::tests::assert_minimises_a_quadratic(&mut opt, 3000, 1e-3);
    }

    #[test]
    fn sparse_rows_match_dense_steps_on_the_rows_and_leave_the_rest() {
        // A 3×2 table; rows 0 and 2 get gradients, row 1 none.
        let mut dense_w = vec![1f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut sparse_w = dense_w.clone();
        let mut dense = AdaGrad::new(6, 0.1).unwrap();
        let mut sparse = AdaGrad::new(6, 0.1).unwrap();
        let mut rg = RowGrad::new(2);
        rg.add(2, 1.0, &[0.5, -1.0]);
        rg.add(0, 1.0, &[2.0, 0.0]);
        rg.add(2, 1.0, &[0.5, 0.0]); // sums with the first
        dense.step(&mut dense_w, &[2.0, 0.0, 0.0, 0.0, 1.0, -1.0]);
        sparse.step_rows(&mut sparse_w, &rg);
        assert_eq!(dense_w, sparse_w);
        assert_eq!(&sparse_w[2..4], &[3.0, 4.0]);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(AdaGrad::new(1, 0.0).is_err());
        assert!(AdaGrad::with_initial(1, 0.1, 0.0).is_err());
    }
}
