//! Logistic loss (binary cross-entropy from logits), the ranking models' loss.
//!
//! `ℓ(z, y) = softplus(z) − y·z = log(1 + eᶻ) − y·z`, written so that neither term
//! overflows for large |z| (no `log(sigmoid(z))`, which is `-inf` in f32 from z ≈ −104);
//! `dℓ/dz = sigmoid(z) − y`. Labels may be soft (any y in [0, 1]).

use super::activation::sigmoid;

/// `log(1 + eᶻ)` without overflow: `max(z, 0) + log(1 + e^(−|z|))`.
pub(crate) fn softplus(z: f32) -> f32 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// The loss of one logit `z` against label `y`.
pub(crate) fn logistic_loss(z: f32, y: f32) -> f32 {
    softplus(z) - y * z
}

/// Summed (optionally weighted) logistic loss of a batch, and its gradient with respect to
/// each logit written into `grad` (`wᵢ·(sigmoid(zᵢ) − yᵢ)`). The sum (not the mean) keeps
/// the caller's choice of scale explicit. `weights` gives each example's weight (the
/// weighted-logistic option: e.g. watch time on positives); `None` is weight 1.
///
/// Returned in f64: a batch's sum of f32 terms loses digits that the progress line shows.
pub(crate) fn logistic(
    logits: &[f32],
    labels: &[f32],
    weights: Option<&[f32]>,
    grad: &mut [f32],
) -> f64 {
    assert_eq!(labels.len(), logits.len(), "logistic: labels");
    assert_eq!(grad.len(), logits.len(), "logistic: gradient");
    if let Some(w) = weights {
        assert_eq!(w.len(), logits.len(), "logistic: weights");
    }
    let mut total = 0f64;
    for (i, (&z, &y)) in logits.iter().zip(labels).enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        total += f64::from(w * logistic_loss(z, y));
        grad[i] = w * (sigmoid(z) - y);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::gradcheck::{assert_close, numeric_gradient};

    /// The reference in f64, written the naive way (fine at the test's moderate logits).
    fn reference(z: &[f64], y: &[f64], w: &[f64]) -> f64 {
        z.iter()
            .zip(y)
            .zip(w)
            .map(|((z, y), w)| {
                let p = 1.0 / (1.0 + (-z).exp());
                -w * (y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            })
            .sum()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let z = [-3.0f32, -0.7, 0.0, 0.4, 2.5, 6.0];
        let y = [0.0f32, 1.0, 1.0, 0.0, 0.3, 1.0];
        let w = [1.0f32, 2.0, 0.5, 1.5, 1.0, 3.0];
        let mut grad = vec![0f32; z.len()];
        let loss = logistic(&z, &y, Some(&w), &mut grad);
        let z64: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
        let y64: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        let want = reference(&z64, &y64, &w64);
        assert!(
            (loss - want).abs() < 1e-5 * want.abs().max(1.0),
            "{loss} vs {want}"
        );
        let num = numeric_gradient(&z64, 1e-5, |z| reference(z, &y64, &w64));
        assert_close("dℓ/dz", &grad, &num, 1e-4);
    }

    #[test]
    fn extreme_logits_stay_finite_and_exact() {
        // Confident and right: loss ≈ 0; confident and wrong: loss ≈ |z|.
        assert!(logistic_loss(200.0, 1.0).abs() < 1e-6);
        assert!(logistic_loss(-200.0, 0.0).abs() < 1e-6);
        assert!((logistic_loss(-200.0, 1.0) - 200.0).abs() < 1e-3);
        assert!((logistic_loss(200.0, 0.0) - 200.0).abs() < 1e-3);
        let mut g = [0f32; 2];
        let l = logistic(&[1e30, -1e30], &[0.0, 0.0], None, &mut g);
        assert!(
            l.is_finite() && g.iter().all(|v| v.is_finite()),
            "{l} {g:?}"
        );
        assert_eq!(g, [1.0, 0.0]);
    }
}
