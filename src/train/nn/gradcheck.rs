//! Finite differences in f64: the reference every backward pass is checked against.

/// Central differences of `f` at `x` (step `h`), one coordinate at a time.
pub(crate) fn numeric_gradient(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let keep = x[i];
            x[i] = keep + h;
            let up = f(&x);
            x[i] = keep - h;
            let down = f(&x);
            x[i] = keep;
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// Panic naming the first coordinate where `analytic` (from an f32 backward pass) and
/// `numeric` differ by more than `tol` relative to their scale.
pub(crate) fn assert_close(what: &str, analytic: &[f32], numeric: &[f64], tol: f64) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: gradient lengths");
    let scale = numeric.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        let err = (f64::from(*a) - n).abs() / scale;
        assert!(
            err < tol,
            "{what}[{i}]: analytic {a} vs numeric {n} (relative error {err:.2e})"
        );
    }
}

/// `a` in f64, the reference the f32 layers are checked against.
pub(crate) fn act64(a: super::Activation, v: f64) -> f64 {
    match a {
        super::Activation::Identity => v,
        super::Activation::Tanh => v.tanh(),
        super::Activation::Relu => v.max(0.0),
        super::Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
    }
}
