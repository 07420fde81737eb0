//! Softmax cross-entropy over lists (the listwise loss of a ranker that picks one item
//! of a few): the logits come in groups, each a list the ranker chooses from; a group's
//! loss is `w · Σⱼ yⱼ · (logsumexp(z) − zⱼ)` with `w` its first example's weight, and its
//! gradient `w · (softmax(z) · Σy − y)`. Only how the logits within a group differ
//! counts: what a user's inputs add to every candidate alike cancels.

/// Summed loss of the groups `offsets` cuts `logits` into (`offsets[g]..offsets[g + 1]`,
/// starting at 0, ending at `logits.len()`), the gradient with respect to each logit
/// written into `grad`. A group without a positive label costs nothing.
///
/// Returned in f64, as [`super::logistic::logistic`].
pub(crate) fn list_softmax(
    logits: &[f32],
    labels: &[f32],
    weights: &[f32],
    offsets: &[u32],
    grad: &mut [f32],
) -> f64 {
    assert_eq!(labels.len(), logits.len(), "list_softmax: labels");
    assert_eq!(weights.len(), logits.len(), "list_softmax: weights");
    assert_eq!(grad.len(), logits.len(), "list_softmax: gradient");
    assert_eq!(
        offsets.last().map_or(0, |&e| e as usize),
        logits.len(),
        "list_softmax: offsets"
    );
    let mut total = 0f64;
    for g in offsets.windows(2) {
        let (a, b) = (g[0] as usize, g[1] as usize);
        let (z, y) = (&logits[a..b], &labels[a..b]);
        let sy: f32 = y.iter().sum();
        if a == b || sy <= 0.0 {
            grad[a..b].iter_mut().for_each(|d| *d = 0.0);
            continue;
        }
        let w = weights[a];
        let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f32 = z.iter().map(|&v| (v - max).exp()).sum();
        let lse = f64::from(max) + f64::from(sum).ln();
        let yz: f64 = z.iter().zip(y).map(|(&v, &t)| f64::from(v * t)).sum();
        total += f64::from(w) * (f64::from(sy) * lse - yz);
        for ((d, &v), &t) in grad[a..b].iter_mut().zip(z).zip(y) {
            *d = w * ((v - max).exp() / sum * sy - t);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::gradcheck::{assert_close, numeric_gradient};

    /// The reference in f64, the naive way.
    fn reference(z: &[f64], y: &[f64], w: &[f64], off: &[u32]) -> f64 {
        off.windows(2)
            .map(|g| {
                let (a, b) = (g[0] as usize, g[1] as usize);
                let lse = z[a..b].iter().map(|v| v.exp()).sum::<f64>().ln();
                (a..b).map(|j| w[a] * y[j] * (lse - z[j])).sum::<f64>()
            })
            .sum()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let z = [-3.0f32, -0.7, 0.0, 0.4, 2.5, 6.0, 1.0, -1.0, 0.3];
        let y = [1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let w = [2.0f32, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0];
        // Three lists: the third has no positive.
        let off = [0u32, 4, 7, 9];
        let mut grad = vec![9f32; z.len()];
        let loss = list_softmax(&z, &y, &w, &off, &mut grad);
        let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let (z64, y64, w64) = (to64(&z), to64(&y), to64(&w));
        let want = reference(&z64, &y64, &w64, &off);
        assert!(
            (loss - want).abs() < 1e-5 * want.abs().max(1.0),
            "{loss} vs {want}"
        );
        let num = numeric_gradient(&z64, 1e-5, |z| reference(z, &y64, &w64, &off));
        assert_close("dℓ/dz", &grad, &num, 1e-4);
        assert_eq!(&grad[7..], &[0.0, 0.0], "a list without a positive");
        // Adding a constant to a list's logits changes nothing.
        let shifted: Vec<f32> = z
            .iter()
            .enumerate()
            .map(|(j, v)| if j < 4 { v + 5.0 } else { *v })
            .collect();
        let mut g2 = vec![0f32; z.len()];
        let l2 = list_softmax(&shifted, &y, &w, &off, &mut g2);
        assert!((l2 - loss).abs() < 1e-4, "{l2} vs {loss}");
    }
}
