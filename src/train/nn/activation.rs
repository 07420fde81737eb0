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
