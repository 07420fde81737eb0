//! Implicit feedback: Bayesian Personalised Ranking (Rendle et al. 2009).
//!
//! SGD on `ln sigmoid(x_ui - x_uj)` for a sampled positive (u, i) and an item j the user
//! has not interacted with (uniform, or by popularity for a `popular_negatives` share).
//! Scores are `<p_u, q_i> + b_i`: the item bias (stored in `MfModel::item_bias`)
//! carries popularity, which uniform negatives reward. Runs sequentially, so a seed
//! gives the same model on any pool; at ML-100K scale an epoch takes about 25 ms.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::sgd::SgdParams;
use super::{check_f32, dot_slice, normal_matrix, MfModel, FRACTION};
use crate::jobs::JobContext;
use crate::train::interactions::Interactions;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BprParams {
    pub factors: usize,
    /// Each epoch draws `nnz` (user, positive, negative) samples.
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 weight on factors.
    pub reg: f32,
    /// L2 weight on the item bias.
    pub bias_reg: f32,
    /// Factors start as N(0, init_std^2).
    pub init_std: f32,
    /// The step size is multiplied by this after each epoch (1 = constant).
    pub lr_decay: f32,
    /// Share of negatives drawn in proportion to item popularity (a random stored
    /// entry's item, as the `implicit` library does) instead of uniformly: popular
    /// negatives teach finer distinctions among popular items.
    pub popular_negatives: f32,
}

impl Default for BprParams {
    /// Tuned on the NEXT protocol of ML-100K (see `eval::metrics::ml100k::ml100k_targets`).
    fn default() -> Self {
        BprParams {
            factors: 64,
            epochs: 150,
            learning_rate: 0.05,
            reg: 0.01,
            bias_reg: 0.01,
            init_std: 0.1,
            lr_decay: 1.0,
            popular_negatives: 0.25,
        }
    }
}

impl BprParams {
    /// SGD's checks (BPR steps through the same schedule with the same L2 terms), then
    /// `popular_negatives`.
    pub fn validate(&self) -> Result<()> {
        SgdParams {
            factors: self.factors,
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            reg: self.reg,
            bias_reg: self.bias_reg,
            init_std: self.init_std,
            lr_decay: self.lr_decay,
        }
        .validate()?;
        check_f32("popular_negatives", self.popular_negatives, FRACTION)
    }
}

/// Trains on `data` (CSR by user; every stored entry is a positive, values are ignored).
pub(crate) fn train(data: &Interactions, params: &BprParams, ctx: &JobContext) -> Result<MfModel> {
    train_traced(data, params, ctx).map(|(m, _)| m)
}

/// As [`train`], also returning the mean sampled BPR loss `-ln sigmoid(x_uij)` per epoch.
// why: user and item numbers are dense u32 ids.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn train_traced(
    data: &Interactions,
    params: &BprParams,
    ctx: &JobContext,
) -> Result<(MfModel, Vec<f64>)> {
    params.validate()?;
    if data.nnz() == 0 {
        return Err(Error::NoEvents {
            what: "interactions",
        });
    }
    let f = params.factors;
    let mut p = normal_matrix(data.n_users, f, params.init_std, ctx.sub_seed(0))?;
    let mut q = normal_matrix(data.n_items, f, params.init_std, ctx.sub_seed(1))?;
    let mut bi = vec![0f32; data.n_items];
    // owner[k]: the user of CSR entry k, so a positive is one uniform draw over entries.
    let owner: Vec<u32> = (0..data.n_users)
        .flat_map(|u| std::iter::repeat_n(u as u32, data.indptr[u + 1] - data.indptr[u]))
        .collect();
    let mut rng = SmallRng::seed_from_u64(ctx.sub_seed(2));
    let ps = p.as_slice_mut().expect("standard layout");
    let qs = q.as_slice_mut().expect("standard layout");
    let mut diff = vec![0f32; f];
    let mut lr = params.learning_rate;
    let (reg, breg, pop_neg) = (params.reg, params.bias_reg, params.popular_negatives);
    let mut trace = Vec::new();
    for epoch in 0..params.epochs {
        ctx.check_cancel()?;
        let mut loss = 0f64;
        let mut drawn = 0usize;
        for _ in 0..data.nnz() {
            let k = rng.random_range(0..data.nnz());
            let u = owner[k] as usize;
            let i = data.indices[k] as usize;
            let (seen, _) = data.row(u);
            if seen.len() >= data.n_items {
                continue; // a user who has every item has no negative
            }
            let j = loop {
                let j = if pop_neg > 0.0 && rng.random::<f32>() < pop_neg {
                    data.indices[rng.random_range(0..data.nnz())]
                } else {
                    rng.random_range(0..data.n_items as u32)
                };
                if seen.binary_search(&j).is_err() {
                    break j as usize;
                }
            };
            let pu = &mut ps[u * f..(u + 1) * f];
            let (qi, qj) = two_rows(qs, f, i, j);
            diff.iter_mut()
                .zip(qi.iter().zip(qj.iter()))
                .for_each(|(d, (a, b))| *d = a - b);
            let x = dot_slice(pu, &diff) + bi[i] - bi[j];
            // d/dx ln sigmoid(x) = sigmoid(-x)
            let g = 1.0 / (1.0 + x.exp());
            loss += softplus(-x) as f64;
            drawn += 1;
            bi[i] += lr * (g - breg * bi[i]);
            bi[j] += lr * (-g - breg * bi[j]);
            for a in 0..f {
                let pa = pu[a];
                pu[a] += lr * (g * diff[a] - reg * pa);
                qi[a] += lr * (g * pa - reg * qi[a]);
                qj[a] += lr * (-g * pa - reg * qj[a]);
            }
        }
        let mean = loss / drawn.max(1) as f64;
        if !mean.is_finite() {
            return Err(Error::JobFailed(format!(
                "BPR diverged in epoch {epoch} (lower learning_rate)"
            )));
        }
        trace.push(mean);
        lr *= params.lr_decay;
        ctx.progress(
            (epoch + 1) as f64 / params.epochs as f64,
            &format!("epoch {}/{}: bpr loss {mean:.4}", epoch + 1, params.epochs),
        );
    }
    let model = MfModel {
        user_factors: p,
        item_factors: q,
        user_bias: Vec::new(),
        item_bias: bi,
        global_bias: 0.0,
    };
    Ok((model, trace))
}

/// Mutable rows `i` and `j` (i != j) of a row-major matrix with `f` columns.
fn two_rows(m: &mut [f32], f: usize, i: usize, j: usize) -> (&mut [f32], &mut [f32]) {
    debug_assert_ne!(i, j);
    if i < j {
        let (a, b) = m.split_at_mut(j * f);
        (&mut a[i * f..(i + 1) * f], &mut b[..f])
    } else {
        let (a, b) = m.split_at_mut(i * f);
        (&mut b[..f], &mut a[j * f..(j + 1) * f])
    }
}

/// ln(1 + e^x) without overflow.
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::mf::test_util::with_ctx;

    /// Two communities; user u skips in-block item `u % 8` (planted, held out).
    fn toy() -> Interactions {
        let mut t = Vec::new();
        for u in 0..40u32 {
            for i in 0..16u32 {
                if (u < 20) == (i < 8) && i % 8 != u % 8 {
                    t.push((u, i, 1.0));
                }
            }
        }
        Interactions::from_triples(40, 16, &t).unwrap()
    }

    fn params() -> BprParams {
        BprParams {
            factors: 4,
            epochs: 100,
            learning_rate: 0.05,
            reg: 0.01,
            ..Default::default()
        }
    }

    #[test]
    fn planted_positive_ranks_above_negatives_and_loss_decreases() {
        let data = toy();
        let (m, trace) = with_ctx(3, 1, |ctx| train_traced(&data, &params(), ctx)).unwrap();
        assert!(trace[0] > 0.6 && *trace.last().unwrap() < 0.3, "{trace:?}");
        for u in 0..40usize {
            let planted = if u < 20 { u % 8 } else { 8 + u % 8 };
            let other_block = if u < 20 { 8..16 } else { 0..8 };
            for j in other_block {
                assert!(m.predict(u, planted) > m.predict(u, j), "user {u} item {j}");
            }
        }
    }

    #[test]
    fn same_seed_same_model() {
        let data = toy();
        let p = BprParams {
            epochs: 3,
            ..params()
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
                BprParams {
                    factors: 0,
                    ..Default::default()
                },
            ),
            (
                "epochs",
                BprParams {
                    epochs: 0,
                    ..Default::default()
                },
            ),
            (
                "learning_rate",
                BprParams {
                    learning_rate: -0.1,
                    ..Default::default()
                },
            ),
            (
                "reg",
                BprParams {
                    reg: f32::NAN,
                    ..Default::default()
                },
            ),
            (
                "lr_decay",
                BprParams {
                    lr_decay: 0.0,
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
    }

    #[test]
    fn two_rows_are_the_right_rows() {
        let mut m: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let (a, b) = two_rows(&mut m, 3, 3, 1);
        assert_eq!(
            (&a[..], &b[..]),
            (&[9.0, 10.0, 11.0][..], &[3.0, 4.0, 5.0][..])
        );
    }
}
