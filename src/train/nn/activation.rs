//! Element-wise activations and their derivatives, written in terms of the output
//! (what the backward pass keeps).

/// An element-wise activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    Identity,
    Tanh,
    Relu,
    Sigmoid,
}

impl Activation {
    /// A stable code for stored networks.
    pub fn code(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Tanh => 1,
            Activation::Relu => 2,
            Activation::Sigmoid => 3,
        }
    }

    pub fn from_code(c: u32) -> Option<Self> {
        match c {
            0 => Some(Activation::Identity),
            1 => Some(Activation::Tanh),
            2 => Some(Activation::Relu),
            3 => Some(Activation::Sigmoid),
            _ => None,
        }
    }

    // why: for the next deep models (candidate generation, Wide & Deep); tested here.

    #[allow(dead_code)]
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
        }
    }

    /// Apply in place.
    pub fn forward(self, x: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Sigmoid => x.iter_mut().for_each(|v| *v = sigmoid(*v)),
        }
    }

    /// Turn `grad` (dL/d output) into dL/d input, given the layer's output `y`.
    pub fn backward(self, y: &[f32], grad: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Tanh => grad.iter_mut().zip(y).for_each(|(g, y)| *g *= 1.0 - y * y),
            Activation::Relu => grad
                .iter_mut()
                .zip(y)
                .for_each(|(g, y)| *g = if *y > 0.0 { *g } else { 0.0 }),
            Activation::Sigmoid => grad
                .iter_mut()
                .zip(y)
                .for_each(|(g, y)| *g *= y * (1.0 - y)),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "identity" | "linear" => Ok(Activation::Identity),
            "tanh" => Ok(Activation::Tanh),
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            other => Err(format!(
                "`{other}`: expected tanh, relu, sigmoid or identity"
            )),
        }
    }
}

/// The logistic function, without overflow for large |x|.
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::gradcheck::{assert_close, numeric_gradient};

    /// The activation in f64, written independently of `forward`.
    fn reference(a: Activation, x: f64) -> f64 {
        match a {
            Activation::Identity => x,
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        // Points away from ReLU's kink at 0, where the derivative is not defined.
        let x: Vec<f32> = vec![-3.1, -1.2, -0.4, -0.05, 0.07, 0.5, 1.3, 2.9];
        // Weights on the outputs, so that the check sees dL/dx = w·f'(x), not only f'.
        let w: Vec<f64> = (0..x.len()).map(|i| 0.5 + i as f64 * 0.3).collect();
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        for a in [
            Activation::Identity,
            Activation::Tanh,
            Activation::Relu,
            Activation::Sigmoid,
        ] {
            let mut y = x.clone();
            a.forward(&mut y);
            for (got, &xi) in y.iter().zip(&x64) {
                assert!(
                    (f64::from(*got) - reference(a, xi)).abs() < 1e-6,
                    "{} forward",
                    a.name()
                );
            }
            let mut grad: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            a.backward(&y, &mut grad);
            let num = numeric_gradient(&x64, 1e-6, |x| {
                x.iter().zip(&w).map(|(x, w)| w * reference(a, *x)).sum()
            });
            assert_close(a.name(), &grad, &num, 1e-5);
        }
    }

    #[test]
    fn sigmoid_does_not_overflow() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn codes_and_names_round_trip() {
        for a in [
            Activation::Identity,
            Activation::Tanh,
            Activation::Relu,
            Activation::Sigmoid,
        ] {
            assert_eq!(Activation::from_code(a.code()), Some(a));
            assert_eq!(a.name().parse::<Activation>(), Ok(a));
        }
        assert!("softmax".parse::<Activation>().is_err());
    }
}
