//! Liang et al.'s collaborative autoencoders (WWW 2018) as jobs: `mult-dae` (a
//! denoising autoencoder) and `mult-vae` (a variational one), both with a multinomial
//! likelihood over all items, trained on each user's binarised positives. See
//! docs/AUTOENCODERS.md.

#[cfg(any(test, feature = "testkit"))]
pub(crate) mod bench;
pub(crate) mod data;
#[cfg(test)]
mod harness;
pub(crate) mod net;
pub(crate) mod stored;
#[cfg(test)]
mod tests;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::jobs::{memory, Job, JobContext, Snapshot, TableOutput};
use crate::train::nn;
use crate::{Error, Params, Result};
use data::Histories;
use net::{Kind, Net, StepParams, Trainer};

/// The job names.
pub(crate) const DAE: &str = "mult-dae";
pub(crate) const VAE: &str = "mult-vae";

/// Validated hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AeParams {
    /// Encoder widths after the input; the last is the code (DAE) or latent size (VAE).
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f32,
    /// Dropout on the L2-normalised input.
    pub dropout: f32,
    /// VAE: the KL weight's cap and the steps (batches) of its linear rise.
    pub beta_cap: f32,
    pub anneal_steps: usize,
    /// L2 penalty reg·‖W‖² on the weights.
    pub reg: f32,
    /// Events with value ≥ this count as positive.
    pub positive_min: f32,
}

impl AeParams {
    pub fn defaults(kind: Kind) -> AeParams {
        match kind {
            Kind::Dae => AeParams {
                hidden: vec![200],
                epochs: 100,
                batch: 500,
                learning_rate: 1e-3,
                dropout: 0.5,
                beta_cap: 0.0,
                anneal_steps: 0,
                // Liang et al.'s lam = 0.01 / batch size.
                reg: 0.01 / 500.0,
                positive_min: 0.0,
            },
            Kind::Vae => AeParams {
                hidden: vec![600, 200],
                epochs: 100,
                batch: 500,
                learning_rate: 1e-3,
                dropout: 0.5,
                beta_cap: 0.2,
                anneal_steps: 200_000,
                reg: 0.0,
                positive_min: 0.0,
            },
        }
    }

    fn from_params(kind: Kind, p: &Params) -> Result<AeParams> {
        let d = AeParams::defaults(kind);
        let default_hidden = d
            .hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let hidden_s: String = p.get("hidden", default_hidden)?;
        let hidden = hidden_s
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::param(
                    "hidden",
                    format!("`{hidden_s}`: expected widths like 600,200"),
                )
            })?;
        let (beta_cap, anneal_steps) = match kind {
            Kind::Vae => (
                p.get("beta_cap", d.beta_cap)?,
                p.get("anneal_steps", d.anneal_steps)?,
            ),
            Kind::Dae => (0.0, 0),
        };
        let a = AeParams {
            hidden,
            epochs: p.get("epochs", d.epochs)?,
            batch: p.get("batch", d.batch)?,
            learning_rate: p.get("learning_rate", d.learning_rate)?,
            dropout: p.get("dropout", d.dropout)?,
            beta_cap,
            anneal_steps,
            reg: p.get("reg", d.reg)?,
            positive_min: p.get("positive_min", d.positive_min)?,
        };
        a.validate()?;
        Ok(a)
    }

    fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() || self.hidden.iter().any(|&h| h == 0 || h > 65_536) {
            return Err(Error::param("hidden", "widths must be in 1..=65536"));
        }
        if self.hidden.len() > 8 {
            return Err(Error::param("hidden", "at most 8 layers"));
        }
        if self.epochs == 0 {
            return Err(Error::param("epochs", "must be at least 1"));
        }
        if self.batch == 0 || self.batch > 1 << 20 {
            return Err(Error::param("batch", "must be in 1..=1048576"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::param("learning_rate", "must be positive"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::param("dropout", "must be in [0, 1)"));
        }
        if !(self.beta_cap >= 0.0 && self.beta_cap.is_finite()) {
            return Err(Error::param("beta_cap", "must be ≥ 0"));
        }
        if !(self.reg >= 0.0 && self.reg.is_finite()) {
            return Err(Error::param("reg", "must be ≥ 0"));
        }
        if !self.positive_min.is_finite() {
            return Err(Error::param("positive_min", "must be a number"));
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "hidden": self.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
            "epochs": self.epochs, "batch": self.batch, "learning_rate": self.learning_rate,
            "dropout": self.dropout, "reg": self.reg, "positive_min": self.positive_min,
        });
        if self.anneal_steps > 0 || self.beta_cap > 0.0 {
            v["beta_cap"] = self.beta_cap.into();
            v["anneal_steps"] = self.anneal_steps.into();
        }
        v
    }

    /// The KL weight at update `step` (counted from 0): linear to the cap over
    /// `anneal_steps` (0: the cap from the start), as Liang et al.'s code.
    fn beta(&self, step: usize) -> f32 {
        if self.anneal_steps == 0 {
            self.beta_cap
        } else {
            self.beta_cap.min(step as f32 / self.anneal_steps as f32)
        }
    }
}

/// `mult-dae` or `mult-vae`.
pub(crate) struct Autoencoder {
    kind: Kind,
    pub params: AeParams,
}

impl Autoencoder {
    pub fn from_params(model: &str, p: &Params) -> Result<Self> {
        let kind = if model == VAE { Kind::Vae } else { Kind::Dae };
        let params = AeParams::from_params(kind, p)?;
        p.finish(model)?;
        Ok(Autoencoder { kind, params })
    }

    /// Train on `h` (n_items columns), reporting and cancelling through `ctx`; calls
    /// `after_epoch(epoch, net)` after each epoch (the tuning harness scores there).
    pub(crate) fn train(
        &self,
        h: &Histories,
        n_items: usize,
        ctx: &JobContext<'_>,
        mut after_epoch: impl FnMut(usize, &Net) + Send,
    ) -> Result<Net> {
        let p = &self.params;
        let mut rng = SmallRng::seed_from_u64(ctx.sub_seed(0));
        let net = Net::new(self.kind, n_items, &p.hidden, &mut rng);
        let batch = p.batch.min(h.len()).max(1);
        let mut trainer = Trainer::new(net, batch, p.learning_rate, p.reg);
        let mut order: Vec<usize> = (0..h.len()).collect();
        let mut update = 0usize;
        ctx.pool().install(|| -> Result<()> {
            for epoch in 0..p.epochs {
                let mut rng = SmallRng::seed_from_u64(ctx.sub_seed(1 + epoch as u64));
                order.shuffle(&mut rng);
                let (mut loss, mut batches) = (0.0, 0);
                for chunk in order.chunks(batch) {
                    ctx.check_cancel()?;
                    let sp = StepParams {
                        dropout: p.dropout,
                        beta: p.beta(update),
                    };
                    loss += trainer.step(chunk.iter().map(|&u| h.row(u)), &sp, &mut rng);
                    batches += 1;
                    update += 1;
                }
                let loss = loss / batches.max(1) as f64;
                nn::end_epoch(ctx, self.model(), epoch + 1, p.epochs, loss)?;
                after_epoch(epoch + 1, &trainer.net);
            }
            Ok(())
        })?;
        Ok(trainer.net)
    }

    /// Bytes per item of training: the first and last layers' weights (d₁ + D + 1
    /// floats) four times (weights, gradient, Adam's two moments), a batch of logits,
    /// and the batch transpose's column start.
    pub(crate) fn bytes_per_item(&self) -> u128 {
        let p = &self.params;
        let d1 = if self.kind == Kind::Vae && p.hidden.len() == 1 {
            2 * p.hidden[0]
        } else {
            p.hidden[0]
        };
        let d_last = p.hidden[0];
        (16 * (d1 + d_last + 1) + 4 * p.batch + 8) as u128
    }
}

impl Job for Autoencoder {
    fn model(&self) -> &str {
        match self.kind {
            Kind::Dae => DAE,
            Kind::Vae => VAE,
        }
    }

    fn params_json(&self) -> String {
        self.params.to_json().to_string()
    }

    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        let h = Histories::from_snapshot(snap, self.params.positive_min);
        if h.len() == 0 {
            return Err(Error::NoEvents {
                what: "positive events (value ≥ positive_min)",
            });
        }
        // The item-wide buffers dominate; the middle layers, a batch's activations (each
        // layer of encoder and decoder: outputs and gradients, VAE noise; 8 floats per
        // width bounds them) and the users' rows (4 bytes per positive) are counted too,
        // so a large `batch` × `hidden` is refused rather than aborting the allocation.
        let mid: usize = self.params.hidden.iter().map(|w| w * w).sum();
        let widths: usize = self.params.hidden.iter().sum();
        ctx.check_memory(
            "hidden",
            self.bytes_per_item() * snap.n_items as u128
                + memory::bytes_of::<f32>(mid, 64)
                + memory::bytes_of::<f32>(self.params.batch, 8 * widths)
                + memory::bytes_of::<u32>(h.items.len(), 2),
        )?;
        let net = self.train(&h, snap.n_items, ctx, |_, _| {})?;
        Ok(stored::to_tables(
            self.model(),
            &net,
            self.params.positive_min,
        ))
    }
}
