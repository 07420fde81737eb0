// why: synthetic item and user numbers are below `items` and `users`, dense u32 ids.
#![allow(clippy::cast_possible_truncation)]
//! Epochs of the autoencoders on synthetic data of a chosen shape, for the criterion
//! bench (`recdb::testkit::AutoencoderEpochs`).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::data::Histories;
use super::net::{Kind, Net, StepParams, Trainer};
use super::{AeParams, DAE};
use crate::{Error, Result};

/// A network with its trainer and users of about `per_user` distinct items each,
/// drawn with a popularity skew (item i with weight ∝ 1/(i+10)).
pub struct AutoencoderEpochs {
    trainer: Trainer,
    histories: Histories,
    params: AeParams,
    rng: SmallRng,
}

impl AutoencoderEpochs {
    /// `model`: `mult-dae` or `mult-vae` with its default hyperparameters.
    pub fn new(
        model: &str,
        users: usize,
        items: usize,
        per_user: usize,
        seed: u64,
    ) -> Result<Self> {
        if items == 0 || per_user > items {
            return Err(Error::param("per_user", "must be at most the items"));
        }
        let kind = if model == DAE { Kind::Dae } else { Kind::Vae };
        let params = AeParams::defaults(kind);
        let mut rng = SmallRng::seed_from_u64(seed);
        let cdf: Vec<f64> = (0..items)
            .scan(0.0, |s, i| {
                *s += 1.0 / (i as f64 + 10.0);
                Some(*s)
            })
            .collect();
        let total = cdf[items - 1];
        let mut h = Histories {
            users: Vec::new(),
            offsets: vec![0],
            items: Vec::new(),
        };
        for u in 0..users {
            let mut row: Vec<u32> = (0..per_user)
                .map(|_| {
                    let x = rng.random::<f64>() * total;
                    cdf.partition_point(|&c| c < x).min(items - 1) as u32
                })
                .collect();
            row.sort_unstable();
            row.dedup();
            h.users.push(u as u32);
            h.items.extend(row);
            h.offsets.push(h.items.len());
        }
        let net = Net::new(kind, items, &params.hidden, &mut rng);
        let trainer = Trainer::new(net, params.batch, params.learning_rate, params.reg);
        Ok(AutoencoderEpochs {
            trainer,
            histories: h,
            params,
            rng,
        })
    }

    /// Positives in all (≈ users × per_user, less duplicates).
    pub fn positives(&self) -> usize {
        self.histories.items.len()
    }

    /// One epoch over every user in order, on the current rayon pool; the mean loss.
    pub fn epoch(&mut self) -> f64 {
        let h = &self.histories;
        let sp = StepParams {
            dropout: self.params.dropout,
            beta: self.params.beta_cap,
        };
        let order: Vec<usize> = (0..h.len()).collect();
        let mut loss = 0.0;
        let chunks = order.chunks(self.params.batch);
        let n = chunks.len();
        for chunk in chunks {
            loss += self
                .trainer
                .step(chunk.iter().map(|&u| h.row(u)), &sp, &mut self.rng);
        }
        loss / n.max(1) as f64
    }
}
