//! Explicit ratings: biased MF trained by SGD (Funk "SVD" as in Koren et al. 2009).
//!
//! `r(u,i) ~ mu + b_u + b_i + <p_u, q_i>`, minimising squared error plus L2 terms,
//! one sample at a time in an order shuffled per epoch. Sequential on purpose: on
//! ML-100K-sized data it takes well under a second per run and stays bit-for-bit
//! deterministic for a seed.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{
    check_count, check_f32, dot_slice, normal_matrix, MfModel, EPOCHS, FACTORS, INIT_STD,
    LEARNING_RATE, LR_DECAY, WEIGHT,
};
use crate::jobs::JobContext;
use crate::train::interactions::Interactions;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SgdParams {
    pub factors: usize,
    pub epochs: usize,
    /// Step size of the first epoch.
    pub learning_rate: f32,
    /// L2 weight on the factors.
    pub reg: f32,
    /// L2 weight on the biases (biases need less shrinkage than factors).
    pub bias_reg: f32,
    /// Factors start as N(0, init_std^2).
    pub init_std: f32,
    /// The step size is multiplied by this after each epoch (1 = constant).
    pub lr_decay: f32,
}

impl Default for SgdParams {
    /// Tuned on the RATING protocol of ML-100K (see `eval::metrics::ml100k::ml100k_targets`).
    fn default() -> Self {
        SgdParams {
            factors: 100,
            epochs: 60,
            learning_rate: 0.007,
            reg: 0.05,
            bias_reg: 0.01,
            init_std: 0.05,
            lr_decay: 0.97,
        }
    }
}

impl SgdParams {
    pub fn validate(&self) -> Result<()> {
        check_count("factors", self.factors, FACTORS)?;
        check_count("epochs", self.epochs, EPOCHS)?;
        check_f32("learning_rate", self.learning_rate, LEARNING_RATE)?;
        check_f32("reg", self.reg, WEIGHT)?;
        check_f32("bias_reg", self.bias_reg, WEIGHT)?;
        check_f32("init_std", self.init_std, INIT_STD)?;
        check_f32("lr_decay", self.lr_decay, LR_DECAY)?;
        Ok(())
    }
}

/// Trains on `data` (values are ratings).
pub(crate) fn train(data: &Interactions, params: &SgdParams, ctx: &JobContext) -> Result<MfModel> {
    train_traced(data, params, ctx).map(|(m, _)| m)
}

/// As [`train`], also returning the training RMSE seen during each epoch.
// why: user numbers are dense u32 ids and the log has at most u32::MAX events
// per training snapshot; the mean is kept in f64 and used as f32.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn train_traced(
    data: &Interactions,
    params: &SgdParams,
    ctx: &JobContext,
) -> Result<(MfModel, Vec<f64>)> {
    params.validate()?;
    if data.nnz() == 0 {
        return Err(Error::NoEvents { what: "ratings" });
    }
    let f = params.factors;
    let mu = (data.values.iter().map(|&v| v as f64).sum::<f64>() / data.nnz() as f64) as f32;
    let mut p = normal_matrix(data.n_users, f, params.init_std, ctx.sub_seed(0))?;
    let mut q = normal_matrix(data.n_items, f, params.init_std, ctx.sub_seed(1))?;
    let mut bu = vec![0f32; data.n_users];
    let mut bi = vec![0f32; data.n_items];
    // (user, position in the CSR arrays): the shuffled visiting order.
    let mut order: Vec<(u32, u32)> = (0..data.n_users)
        .flat_map(|u| (data.indptr[u]..data.indptr[u + 1]).map(move |k| (u as u32, k as u32)))
        .collect();
    let mut rng = SmallRng::seed_from_u64(ctx.sub_seed(2));
    let ps = p.as_slice_mut().expect("standard layout");
    let qs = q.as_slice_mut().expect("standard layout");
    let mut lr = params.learning_rate;
    let (reg, breg) = (params.reg, params.bias_reg);
    let mut trace = Vec::new();
    for epoch in 0..params.epochs {
        ctx.check_cancel()?;
        order.shuffle(&mut rng);
        let mut sse = 0f64;
        for &(u, k) in &order {
            let (u, k) = (u as usize, k as usize);
            let i = data.indices[k] as usize;
            let pu = &mut ps[u * f..(u + 1) * f];
            let qi = &mut qs[i * f..(i + 1) * f];
            let err = data.values[k] - (mu + bu[u] + bi[i] + dot_slice(pu, qi));
            sse += (err as f64) * (err as f64);
            bu[u] += lr * (err - breg * bu[u]);
            bi[i] += lr * (err - breg * bi[i]);
            for (x, y) in pu.iter_mut().zip(qi.iter_mut()) {
                let (px, qy) = (*x, *y);
                *x += lr * (err * qy - reg * px);
                *y += lr * (err * px - reg * qy);
            }
        }
        if !sse.is_finite() {
            return Err(Error::JobFailed(format!(
                "SGD diverged in epoch {epoch} (lower learning_rate)"
            )));
        }
        let rmse = (sse / order.len() as f64).sqrt();
        trace.push(rmse);
        lr *= params.lr_decay;
        ctx.progress(
            (epoch + 1) as f64 / params.epochs as f64,
            &format!(
                "epoch {}/{}: train rmse {rmse:.4}",
                epoch + 1,
                params.epochs
            ),
        );
    }
    let model = MfModel {
        user_factors: p,
        item_factors: q,
        user_bias: bu,
        item_bias: bi,
        global_bias: mu,
    };
    Ok((model, trace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::mf::normal_matrix;
    use crate::train::mf::test_util::with_ctx;

    /// A full, exactly rank-2 matrix with biases, on a 1-5-like scale, as triples.
    fn low_rank(nu: usize, ni: usize) -> Vec<(u32, u32, f32)> {
        let a = normal_matrix(nu, 2, 0.7, 11).unwrap();
        let b = normal_matrix(ni, 2, 0.7, 12).unwrap();
        let mut triples = Vec::new();
        for u in 0..nu {
            for i in 0..ni {
                let r = 3.0 + 0.3 * ((u % 3) as f32 - 1.0) + a.row(u).dot(&b.row(i));
                triples.push((u as u32, i as u32, r));
            }
        }
        triples
    }

    fn small_params() -> SgdParams {
        SgdParams {
            factors: 4,
            epochs: 300,
            learning_rate: 0.02,
            reg: 0.001,
            bias_reg: 0.001,
            init_std: 0.1,
            lr_decay: 0.995,
        }
    }

    #[test]
    fn recovers_low_rank_matrix_and_loss_decreases() {
        let triples = low_rank(30, 20);
        let data = Interactions::from_triples(30, 20, &triples).unwrap();
        let (m, trace) = with_ctx(1, 1, |ctx| train_traced(&data, &small_params(), ctx)).unwrap();
        assert!(trace[0] > 0.5, "start {}", trace[0]);
        assert!(trace.windows(10).all(|w| w[9] <= w[0]), "loss must go down");
        let sse: f64 = triples
            .iter()
            .map(|&(u, i, r)| ((m.predict(u as usize, i as usize) - r) as f64).powi(2))
            .sum();
        let rmse = (sse / triples.len() as f64).sqrt();
        assert!(rmse < 0.05, "rmse {rmse}");
    }

    #[test]
    fn same_seed_same_model() {
        let triples = low_rank(10, 8);
        let data = Interactions::from_triples(10, 8, &triples).unwrap();
        let p = SgdParams {
            epochs: 5,
            ..small_params()
        };
        let a = with_ctx(5, 1, |ctx| train(&data, &p, ctx)).unwrap();
        let b = with_ctx(5, 2, |ctx| train(&data, &p, ctx)).unwrap();
        let c = with_ctx(6, 1, |ctx| train(&data, &p, ctx)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn invalid_params_rejected() {
        let bad = [
            (
                "factors",
                SgdParams {
                    factors: 0,
                    ..Default::default()
                },
            ),
            (
                "epochs",
                SgdParams {
                    epochs: 0,
                    ..Default::default()
                },
            ),
            (
                "learning_rate",
                SgdParams {
                    learning_rate: f32::NAN,
                    ..Default::default()
                },
            ),
            (
                "learning_rate",
                SgdParams {
                    learning_rate: 0.0,
                    ..Default::default()
                },
            ),
            (
                "reg",
                SgdParams {
                    reg: -0.1,
                    ..Default::default()
                },
            ),
            (
                "bias_reg",
                SgdParams {
                    bias_reg: f32::INFINITY,
                    ..Default::default()
                },
            ),
            (
                "lr_decay",
                SgdParams {
                    lr_decay: 1.5,
                    ..Default::default()
                },
            ),
        ];
        for (name, p) in bad {
            match p.validate() {
                Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(SgdParams::default().validate().is_ok());
        let empty = Interactions::from_triples(2, 2, &[]).unwrap();
        let r = with_ctx(0, 1, |ctx| train(&empty, &SgdParams::default(), ctx));
        assert!(matches!(r, Err(Error::NoEvents { .. })));
    }
}
