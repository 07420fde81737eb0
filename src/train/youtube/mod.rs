//! The YouTube-style deep candidate generator (Covington, Adams and Sargin, RecSys
//! 2016) as the job `youtube`: a user's recent items, searches, attributes and the
//! example's age, concatenated and sent through a ReLU tower to a user vector `u`;
//! trained with a softmax over all items (full or sampled), served as a maximum inner
//! product search of `[u, 1]` over the output item table. See docs/YOUTUBE.md.

#[cfg(any(test, feature = "testkit"))]
pub(crate) mod bench;
pub(crate) mod examples;
pub(crate) mod net;
pub(crate) mod stored;
#[cfg(test)]
mod tests;

use crate::features::{Encoder, Schema};
use crate::jobs::{memory, Job, JobContext, Reads, Snapshot, TableOutput};
use crate::storage::tables::{RowSpace, TableView};
use crate::train::nn::{self, batches::Batches};
use crate::{Error, Params, Result};
use examples::Examples;
use net::{Net, Trainer};

/// The job name.
pub(crate) const MODEL: &str = "youtube";

/// Which softmax the loss uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Softmax {
    /// Over every item: exact, O(items) per example.
    Full,
    /// Over the true item and `negatives` shared draws, log-Q corrected.
    Sampled,
}

/// The `softmax` parameter: a kind, or `auto`, which picks by the catalogue's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SoftmaxChoice {
    /// Full when the catalogue has at most [`AUTO_FULL_RATIO`] × `negatives` items.
    Auto,
    Full,
    Sampled,
}

/// `softmax=auto` takes the full softmax up to this many times `negatives` items: there
/// its output layer costs at most this many times the sampled one's (an epoch ≈ 3× on
/// ML-1M's 3,706 items), and it measured better on both MovieLens sets (NEXT HR@10, the
/// item2vec start: ML-100K 0.183 against 0.160, 5 seeds; ML-1M 0.289 against 0.280,
/// 3 seeds).
pub(crate) const AUTO_FULL_RATIO: usize = 8;

impl SoftmaxChoice {
    /// The softmax training uses for a catalogue of `n_items`.
    pub fn resolve(self, n_items: usize, negatives: usize) -> Softmax {
        match self {
            SoftmaxChoice::Full => Softmax::Full,
            SoftmaxChoice::Sampled => Softmax::Sampled,
            SoftmaxChoice::Auto if n_items <= negatives.saturating_mul(AUTO_FULL_RATIO) => {
                Softmax::Full
            }
            SoftmaxChoice::Auto => Softmax::Sampled,
        }
    }
}

/// Where the sampled softmax draws its negatives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProposalKind {
    Uniform,
    /// Proportional to the item's count in the training events.
    Popularity,
}

/// The example age fed at serving time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServeAge {
    /// The paper's choice: every user is served at the end of the window.
    Zero,
    /// The age of the user's last event: under leave-last-out each user's "now" is
    /// their last event, not the window's end.
    Last,
}

impl ServeAge {
    pub fn code(self) -> u32 {
        match self {
            ServeAge::Zero => 0,
            ServeAge::Last => 1,
        }
    }
    pub fn from_code(c: u32) -> Option<ServeAge> {
        match c {
            0 => Some(ServeAge::Zero),
            1 => Some(ServeAge::Last),
            _ => None,
        }
    }
}

/// How `init=<table>` rows are scaled into the input item table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitScale {
    /// One factor for the whole table, so its mean row norm is the random init's:
    /// the rows keep their relative norms and directions, the tower sees inputs of
    /// the size it starts with.
    Match,
    /// The table's rows as they are (the default: on NEXT it beats `Match`, ML-100K
    /// HR@10 0.157 against 0.131, mean of seeds 1-3, docs/YOUTUBE.md).
    Keep,
}

/// Validated hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct YtParams {
    /// Width of the input item and search-token embeddings.
    pub dim: usize,
    /// Width of each feature slot's embedding.
    pub feature_dim: usize,
    /// Tower widths; the last is the width of `u` and of the output item vectors.
    pub layers: Vec<usize>,
    /// Items (and searches) of history an example sees.
    pub history: usize,
    /// Examples per user, the latest kept (0: all).
    pub max_examples: usize,
    /// Each user's last events left out of training (labels and history): the model
    /// as it was before them, whose lists a ranker can learn from without the leak.
    pub skip_last: usize,
    pub example_age: bool,
    pub serve_age: ServeAge,
    /// A learned weight per history position (softmax-normalised) instead of the mean.
    pub recency: bool,
    /// The most recent items whose embeddings enter the tower on their own, besides
    /// the mean of the history.
    pub last: usize,
    pub softmax: SoftmaxChoice,
    pub negatives: usize,
    pub proposal: ProposalKind,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f32,
    /// L2 weight decay on every parameter (Adam's `weight_decay`).
    pub reg: f32,
    /// A declared user-feature schema; empty: inferred from the attributes.
    pub features: String,
    /// A published items table whose rows start the input item embeddings (empty:
    /// random).
    pub init: String,
    pub init_scale: InitScale,
}

impl Default for YtParams {
    fn default() -> Self {
        YtParams {
            dim: 64,
            feature_dim: 8,
            layers: vec![256, 128, 64],
            history: 10,
            max_examples: 0,
            skip_last: 0,
            example_age: true,
            serve_age: ServeAge::Last,
            recency: true,
            last: 2,
            softmax: SoftmaxChoice::Auto,
            negatives: 512,
            proposal: ProposalKind::Uniform,
            epochs: 10,
            batch: 512,
            learning_rate: 1e-3,
            reg: 0.0,
            features: String::new(),
            init: String::new(),
            init_scale: InitScale::Keep,
        }
    }
}

fn on_off(p: &Params, key: &str, default: bool) -> Result<bool> {
    let s: String = p.get(key, if default { "on" } else { "off" }.to_string())?;
    match s.as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(Error::param(key, format!("`{s}`: expected on or off"))),
    }
}

impl YtParams {
    pub fn from_params(p: &Params) -> Result<YtParams> {
        let d = YtParams::default();
        let layers_s: String = p.get("layers", join(&d.layers))?;
        let layers = layers_s
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::param(
                    "layers",
                    format!("`{layers_s}`: expected widths like 256,128,64"),
                )
            })?;
        let serve_age = match p.get("serve_age", "last".to_string())?.as_str() {
            "zero" => ServeAge::Zero,
            "last" => ServeAge::Last,
            s => {
                return Err(Error::param(
                    "serve_age",
                    format!("`{s}`: expected zero or last"),
                ))
            }
        };
        let softmax = match p.get("softmax", "auto".to_string())?.as_str() {
            "auto" => SoftmaxChoice::Auto,
            "full" => SoftmaxChoice::Full,
            "sampled" => SoftmaxChoice::Sampled,
            s => {
                return Err(Error::param(
                    "softmax",
                    format!("`{s}`: expected auto, full or sampled"),
                ))
            }
        };
        let proposal = match p.get("proposal", "uniform".to_string())?.as_str() {
            "uniform" => ProposalKind::Uniform,
            "popularity" => ProposalKind::Popularity,
            s => {
                return Err(Error::param(
                    "proposal",
                    format!("`{s}`: expected uniform or popularity"),
                ))
            }
        };
        let init_scale = match p.get("init_scale", "keep".to_string())?.as_str() {
            "match" => InitScale::Match,
            "keep" => InitScale::Keep,
            s => {
                return Err(Error::param(
                    "init_scale",
                    format!("`{s}`: expected match or keep"),
                ))
            }
        };
        let y = YtParams {
            dim: p.get("dim", d.dim)?,
            feature_dim: p.get("feature_dim", d.feature_dim)?,
            layers,
            history: p.get("history", d.history)?,
            max_examples: p.get("max_examples", d.max_examples)?,
            skip_last: p.get("skip_last", d.skip_last)?,
            example_age: on_off(p, "example_age", d.example_age)?,
            serve_age,
            recency: on_off(p, "recency", d.recency)?,
            last: p.get("last", d.last)?,
            softmax,
            negatives: p.get("negatives", d.negatives)?,
            proposal,
            epochs: p.get("epochs", d.epochs)?,
            batch: p.get("batch", d.batch)?,
            learning_rate: p.get("learning_rate", d.learning_rate)?,
            reg: p.get("reg", d.reg)?,
            features: p.get("features", d.features)?,
            init: p.get("init", d.init)?,
            init_scale,
        };
        y.validate()?;
        Ok(y)
    }

    fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > 4096 {
            return Err(Error::param("dim", "must be in 1..=4096"));
        }
        if self.feature_dim == 0 || self.feature_dim > 4096 {
            return Err(Error::param("feature_dim", "must be in 1..=4096"));
        }
        if self.layers.is_empty() || self.layers.iter().any(|&h| h == 0 || h > 65_536) {
            return Err(Error::param("layers", "widths must be in 1..=65536"));
        }
        if self.layers.len() > 8 {
            return Err(Error::param("layers", "at most 8 layers"));
        }
        if self.history == 0 || self.history > 10_000 {
            return Err(Error::param("history", "must be in 1..=10000"));
        }
        if self.last > self.history {
            return Err(Error::param("last", "must be at most `history`"));
        }
        if self.skip_last > 100_000 {
            return Err(Error::param("skip_last", "must be in 0..=100000"));
        }
        if self.max_examples > u32::MAX as usize {
            return Err(Error::param("max_examples", "must be below 2³²"));
        }
        if self.negatives == 0 || self.negatives > 1 << 20 {
            return Err(Error::param("negatives", "must be in 1..=1048576"));
        }
        if self.epochs == 0 || self.epochs > 100_000 {
            return Err(Error::param("epochs", "must be in 1..=100000"));
        }
        if self.batch == 0 || self.batch > 1 << 20 {
            return Err(Error::param("batch", "must be in 1..=1048576"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::param("learning_rate", "must be positive"));
        }
        if !(self.reg >= 0.0 && self.reg.is_finite()) {
            return Err(Error::param("reg", "must be ≥ 0"));
        }
        if !self.features.is_empty() {
            self.features.parse::<Schema>()?;
        }
        if !self.init.is_empty() {
            crate::storage::tables::check_name(&self.init)
                .map_err(|_| Error::param("init", format!("`{}`: not a table name", self.init)))?;
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Value {
        let on = |b: bool| if b { "on" } else { "off" };
        serde_json::json!({
            "dim": self.dim,
            "feature_dim": self.feature_dim,
            "layers": join(&self.layers),
            "history": self.history,
            "max_examples": self.max_examples,
            "skip_last": self.skip_last,
            "example_age": on(self.example_age),
            "serve_age": match self.serve_age { ServeAge::Zero => "zero", ServeAge::Last => "last" },
            "recency": on(self.recency),
            "last": self.last,
            "softmax": match self.softmax {
                SoftmaxChoice::Auto => "auto",
                SoftmaxChoice::Full => "full",
                SoftmaxChoice::Sampled => "sampled",
            },
            "negatives": self.negatives,
            "proposal": match self.proposal { ProposalKind::Uniform => "uniform", ProposalKind::Popularity => "popularity" },
            "epochs": self.epochs,
            "batch": self.batch,
            "learning_rate": self.learning_rate,
            "reg": self.reg,
            "features": self.features,
            "init": self.init,
            "init_scale": match self.init_scale { InitScale::Match => "match", InitScale::Keep => "keep" },
        })
    }
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The job.
pub(crate) struct Youtube {
    pub params: YtParams,
}

impl Youtube {
    pub fn from_params(p: &Params) -> Result<Self> {
        let params = YtParams::from_params(p)?;
        p.finish(MODEL)?;
        Ok(Youtube { params })
    }

    /// The user-feature encoder, fitted on the snapshot's attributes.
    fn encoder(&self, snap: &Snapshot) -> Result<Encoder> {
        let schema = if self.params.features.is_empty() {
            Encoder::infer(&snap.user_attrs)
        } else {
            self.params.features.parse::<Schema>()?
        };
        Encoder::fit(&schema, &snap.user_attrs)
    }

    /// Train on `snap`, calling `after_epoch(epoch, net)` after each epoch.
    pub(crate) fn train(
        &self,
        snap: &Snapshot,
        ctx: &JobContext<'_>,
        mut after_epoch: impl FnMut(usize, &Net) + Send,
    ) -> Result<Net> {
        let p = &self.params;
        let encoder = self.encoder(snap)?;
        // Examples are index pairs into the snapshot (8 bytes per event at most), and the
        // users' encoded features a few ids each.
        ctx.check_memory(
            "max_examples",
            memory::bytes_of::<u32>(snap.events.len(), 3)
                + memory::bytes_of::<u32>(snap.searches.len(), 2)
                + memory::bytes_of::<u32>(snap.user_attrs.len(), 16),
        )?;
        let ex = Examples::build(snap, &encoder, p)?;
        if ex.len() == 0 {
            return Err(Error::NoEvents {
                what: "users with two or more events (an example needs a history)",
            });
        }
        let shape = net::Shape::new(p, snap.n_items, snap.n_tokens, &encoder);
        ctx.check_memory("layers", shape.training_bytes(p))?;
        let mut net = Net::new(shape, encoder, ex.age_scale(), ctx.sub_seed(0));
        if let Some(table) = snap.tables.first() {
            init_inputs(&mut net.item_in, p.dim, table, p.init_scale)?;
        }
        let mut trainer = Trainer::new(net, p, &ex)?;
        ctx.pool().install(|| -> Result<()> {
            for epoch in 0..p.epochs {
                let batches = Batches::new(ex.len(), p.batch, ctx.sub_seed(1), epoch as u64)?;
                let mut rng_seed = ctx.sub_seed(1_000_000 + epoch as u64);
                let (mut loss, mut n) = (0.0, 0usize);
                for chunk in batches.iter() {
                    ctx.check_cancel()?;
                    rng_seed = crate::jobs::splitmix64(rng_seed);
                    loss += trainer.step(&ex, chunk, rng_seed)?;
                    n += chunk.len();
                }
                let loss = loss / n.max(1) as f64;
                nn::end_epoch(ctx, MODEL, epoch + 1, p.epochs, loss)?;
                after_epoch(epoch + 1, &trainer.net);
            }
            Ok(())
        })?;
        Ok(trainer.net)
    }
}

/// Start the input item embeddings (`item_in`, `dim` per row, row = dense item id)
/// from a published items table: `init=item2vec.items` gives the mean of a history a
/// meaning from the first batch. Items newer than the table keep their random rows.
/// A table of another width is an error, not a projection: the user asked for these
/// vectors, and padding or cutting them would silently train something else.
fn init_inputs(item_in: &mut [f32], dim: usize, table: &TableView, scale: InitScale) -> Result<()> {
    if table.space() != RowSpace::Items {
        return Err(Error::param(
            "init",
            format!("`{}` is not an items table", table.name()),
        ));
    }
    if table.dim() != dim {
        return Err(Error::DimensionMismatch {
            expected: dim,
            got: table.dim(),
        });
    }
    let n = (item_in.len() / dim).min(table.rows());
    if n == 0 {
        return Ok(());
    }
    let norm = |row: &[f32]| row.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mean_norm = |rows: &[f32]| rows.chunks_exact(dim).map(norm).sum::<f32>() / n as f32;
    let before = mean_norm(&item_in[..n * dim]);
    for r in 0..n {
        let row = table.row(r);
        for (x, v) in item_in[r * dim..(r + 1) * dim].iter_mut().zip(row.iter()) {
            if !v.is_finite() {
                return Err(Error::param(
                    "init",
                    format!("`{}` row {r} is not finite", table.name()),
                ));
            }
            *x = v;
        }
    }
    if scale == InitScale::Match {
        let after = mean_norm(&item_in[..n * dim]);
        if after > 0.0 {
            let f = before / after;
            item_in[..n * dim].iter_mut().for_each(|x| *x *= f);
        }
    }
    Ok(())
}

impl Job for Youtube {
    fn model(&self) -> &str {
        MODEL
    }

    fn params_json(&self) -> String {
        self.params.to_json().to_string()
    }

    fn reads(&self) -> Reads {
        Reads {
            searches: true,
            user_attrs: true,
            item_attrs: false,
        }
    }

    fn input_tables(&self) -> Vec<String> {
        if self.params.init.is_empty() {
            Vec::new()
        } else {
            vec![self.params.init.clone()]
        }
    }

    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        let net = self.train(snap, ctx, |_, _| {})?;
        Ok(stored::to_tables(MODEL, &net))
    }
}
