//! Epochs of the `youtube` job on synthetic data of a chosen shape, for the criterion
//! bench (`recdb::testkit::YoutubeEpochs`).

// why: synthetic ids are below `items` and `users`, dense u32 ids.
#![allow(clippy::cast_possible_truncation)]

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::examples::Examples;
use super::net::{Net, Shape, Trainer};
use super::YtParams;
use crate::event::{Event, EventKind};
use crate::features::{Encoder, Schema};
use crate::jobs::{splitmix64, Snapshot};
use crate::train::nn::batches::Batches;
use crate::{Error, Params, Result};

/// A network with its trainer and `users` sequences of `per_user` events drawn with a
/// popularity skew (item i with weight ∝ 1/(i+10)).
pub struct YoutubeEpochs {
    trainer: Trainer,
    examples: Examples,
    params: YtParams,
    epoch: u64,
}

impl YoutubeEpochs {
    /// `params` as `key=value` pairs over the defaults (e.g. `softmax=sampled`).
    pub fn new(
        users: usize,
        items: usize,
        per_user: usize,
        params: &[(&str, &str)],
        seed: u64,
    ) -> Result<Self> {
        if items == 0 || users == 0 {
            return Err(Error::param("items", "must be at least 1"));
        }
        let mut p = Params::new();
        for (k, v) in params {
            p.insert(k, v);
        }
        let params = YtParams::from_params(&p)?;
        let mut rng = SmallRng::seed_from_u64(seed);
        let cdf: Vec<f64> = (0..items)
            .scan(0.0, |s, i| {
                *s += 1.0 / (i as f64 + 10.0);
                Some(*s)
            })
            .collect();
        let total = cdf[items - 1];
        let mut events = Vec::with_capacity(users * per_user);
        for u in 0..users {
            for t in 0..per_user {
                let x = rng.random::<f64>() * total;
                events.push(Event {
                    user: u as u32,
                    item: cdf.partition_point(|&c| c < x).min(items - 1) as u32,
                    kind: EventKind::Interaction,
                    value: 1.0,
                    timestamp: t as i64,
                    group: u32::MAX,
                    seq: events.len() as u64,
                });
            }
        }
        let snap = Snapshot::of_events(users, items, events);
        let encoder = Encoder::fit(&Schema::default(), &snap.user_attrs)?;
        let examples = Examples::build(&snap, &encoder, &params)?;
        let shape = Shape::new(&params, items, 0, &encoder);
        let net = Net::new(shape, encoder, examples.age_scale(), seed);
        let trainer = Trainer::new(net, &params, &examples)?;
        Ok(YoutubeEpochs {
            trainer,
            examples,
            params,
            epoch: 0,
        })
    }

    /// Training examples per epoch.
    pub fn examples(&self) -> usize {
        self.examples.len()
    }

    /// One epoch, shuffled, on the current rayon pool; the mean loss.
    pub fn epoch(&mut self) -> Result<f64> {
        let b = Batches::new(self.examples.len(), self.params.batch, 1, self.epoch)?;
        self.epoch += 1;
        let mut seed = self.epoch;
        let mut loss = 0.0;
        for chunk in b.iter() {
            seed = splitmix64(seed);
            loss += self.trainer.step(&self.examples, chunk, seed)?;
        }
        Ok(loss / self.examples.len().max(1) as f64)
    }
}
