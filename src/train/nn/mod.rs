//! The neural-network core the deep models train on: dense layers, a sparse input
//! layer, activations, dropout, losses and optimizers, each with an explicit backward
//! pass proven by a finite-difference check in f64 (no autograd: every model's backward
//! pass is a few products).
//!
//! Tensors are row-major `f32` slices; a batch is `rows × width`. Every product goes
//! through [`gemm::gemm`], so the backend is chosen in one place.

pub(crate) mod activation;
// why: built and tested ahead of the models that train with it (candidate generation,
// Wide & Deep); nothing in the crate calls it yet.
#[allow(dead_code)]
pub(crate) mod adagrad;
// why: built and tested ahead of the models that train with it (candidate generation,
// Wide & Deep); nothing in the crate calls it yet.
#[allow(dead_code)]
pub(crate) mod batches;
pub(crate) mod dense;
pub(crate) mod dropout;
// why: built and tested ahead of the models that train with it (candidate generation,
// Wide & Deep); nothing in the crate calls it yet.
#[allow(dead_code)]
pub(crate) mod ftrl;
pub(crate) mod gemm;
pub(crate) mod listwise;
// why: built and tested ahead of the models that train with it (candidate generation,
// Wide & Deep); nothing in the crate calls it yet.
#[allow(dead_code)]
pub(crate) mod logistic;
pub(crate) mod multinomial;
pub(crate) mod optim;
// why: built and tested ahead of the models that train with it (candidate generation,
// Wide & Deep); nothing in the crate calls it yet.
#[allow(dead_code)]
pub(crate) mod sampled_softmax;
pub(crate) mod sparse;
pub(crate) mod stored;

#[cfg(test)]
pub(crate) mod gradcheck;

pub(crate) use activation::Activation;
pub(crate) use optim::{Adam, Optimizer};

/// The end of an epoch of a network's training: a non-finite mean loss fails the job
/// (naming the model and the parameter to lower), else progress `epoch N/M loss X`.
pub(crate) fn end_epoch(
    ctx: &crate::JobContext<'_>,
    model: &str,
    epoch: usize,
    epochs: usize,
    loss: f64,
) -> crate::Result<()> {
    if !loss.is_finite() {
        return Err(crate::Error::JobFailed(format!(
            "{model} loss is {loss} at epoch {epoch} (lower learning_rate)"
        )));
    }
    ctx.progress(
        epoch as f64 / epochs as f64,
        &format!("epoch {epoch}/{epochs} loss {loss:.4}"),
    );
    Ok(())
}
