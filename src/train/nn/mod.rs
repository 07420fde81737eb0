//! The neural-network core the deep models train on: dense layers, a sparse input
//! layer, activations, dropout, losses and optimizers, each with an explicit backward
//! pass proven by a finite-difference check in f64 (no autograd: every model's backward
//! pass is a few products).
//!
//! Tensors are row-major `f32` slices; a batch is `rows × width`. Every product goes
//! through [`gemm::gemm`], so the backend is chosen in one place.

// Scaffolding while the models that use it are written; removed when they land.
#![allow(dead_code, unused_imports)]

pub(crate) mod activation;
pub(crate) mod dense;
pub(crate) mod dropout;
pub(crate) mod gemm;
pub(crate) mod multinomial;
pub(crate) mod optim;
pub(crate) mod sparse;

#[cfg(test)]
pub(crate) mod gradcheck;

pub(crate) use activation::Activation;
pub(crate) use optim::{Adam, Optimizer};
