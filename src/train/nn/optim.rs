//! Optimizers: each owns the state of one parameter tensor and updates it in place
//! from that tensor's gradient.

/// Updates one parameter tensor from its gradient.
pub(crate) trait Optimizer: Send {
    /// One step: `w` and `g` have the tensor's length.
    fn step(&mut self, w: &mut [f32], g: &[f32]);
}

/// Adam (Kingma & Ba 2015), with bias correction, as PyTorch's default.
pub(crate) struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// L2 weight decay added to the gradient (PyTorch's `weight_decay`).
    pub weight_decay: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    pub fn new(len: usize, lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: 0,
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, w: &mut [f32], g: &[f32]) {
        assert_eq!(w.len(), self.m.len(), "Adam: tensor length changed");
        assert_eq!(g.len(), w.len(), "Adam: gradient length");
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta1, self.beta2);
        let step = self.lr * (1.0 - b2.powi(self.t)).sqrt() / (1.0 - b1.powi(self.t));
        let (eps, wd) = (self.eps * (1.0 - b2.powi(self.t)).sqrt(), self.weight_decay);
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
            let g = g + wd * *w;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *w -= step * *m / (v.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_minimises_a_quadratic() {
        // f(w) = Σ (w_i - i)²: Adam must reach the minimum.
        let mut w = vec![0f32; 4];
        let mut opt = Adam::new(4, 0.1);
        for _ in 0..2000 {
            let g: Vec<f32> = w
                .iter()
                .enumerate()
                .map(|(i, x)| 2.0 * (x - i as f32))
                .collect();
            opt.step(&mut w, &g);
        }
        for (i, x) in w.iter().enumerate() {
            assert!((x - i as f32).abs() < 1e-2, "w[{i}] = {x}");
        }
    }
}
