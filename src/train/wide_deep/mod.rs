//! Wide & Deep (Cheng et al., DLRS 2016) as the job `wide-deep`: a ranking model that
//! scores one (user, item) pair as a probability. Its logit is the sum of the parts
//! `parts=` chooses:
//!
//! - `wide`: a linear model over hashed sparse features and their crosses
//!   (`gender*genres`, ...), trained with FTRL-Proximal and L1, so most weights are
//!   exactly zero (`wide.rs`);
//! - `deep`: embeddings of the ids and categorical attributes, concatenated with the
//!   numeric attributes and any frozen published tables (`features=als.items`),
//!   through ReLU layers to one output (`deep.rs`);
//! - `fm`: the factorisation machine's pairwise term over the same embeddings.
//!
//! Trained jointly with (weighted) logistic loss, epochs with early stopping on a
//! validation tenth. Examples come from a pluggable source (`labels=`, `examples.rs`);
//! what a pair's inputs are is in `inputs.rs`, shared with serving; the published
//! network is one self-describing table (`stored.rs`). See docs/WIDE_DEEP.md.

#[cfg(any(test, feature = "testkit"))]
pub(crate) mod bench;
pub(crate) mod deep;
pub(crate) mod examples;
pub(crate) mod inputs;
pub(crate) mod next_examples;
pub(crate) mod stored;
#[cfg(test)]
mod tests;
pub(crate) mod units;
pub(crate) mod wide;

use crate::error::OrPoisoned;
use crate::features::{Encoder, Schema};
use crate::jobs::{memory, Job, JobContext, Reads, Snapshot, TableOutput};
use crate::storage::tables::RowSpace;
use crate::storage::tables::TableView;
use crate::train::nn::{self, batches::Batches};
use crate::{Error, Params, Result};
use deep::{Acts, Grads, Net, Shape, Trainer};
use examples::Example;
use inputs::{Batch, HistoryInput, InputTable, Side, Spec, TableRows};
use units::{Loss, Units};

/// The job name.
pub(crate) const MODEL: &str = "wide-deep";

/// The default wide features: the ids, each attribute, and the crosses of the user's
/// attributes with the item's genres and year.
pub(crate) const DEFAULT_WIDE: &str = "user,item,gender,age,occupation,genres,release_year,\
gender*genres,age*genres,occupation*genres,user*genres,age*release_year";

/// Which parts make the logit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parts {
    pub wide: bool,
    pub deep: bool,
    pub fm: bool,
}

impl Parts {
    fn parse(s: &str) -> Result<Parts> {
        let mut p = Parts {
            wide: false,
            deep: false,
            fm: false,
        };
        for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match t {
                "wide" => p.wide = true,
                "deep" => p.deep = true,
                "fm" => p.fm = true,
                _ => {
                    return Err(Error::param(
                        "parts",
                        format!("`{t}`: expected wide, deep or fm (e.g. parts=wide,deep)"),
                    ))
                }
            }
        }
        if !(p.wide || p.deep || p.fm) {
            return Err(Error::param("parts", "name at least one of wide, deep, fm"));
        }
        Ok(p)
    }

    pub fn name(self) -> String {
        let mut v = Vec::new();
        if self.wide {
            v.push("wide");
        }
        if self.deep {
            v.push("deep");
        }
        if self.fm {
            v.push("fm");
        }
        v.join(",")
    }

    /// Whether the embeddings exist (the deep and fm parts read them).
    pub fn embeds(self) -> bool {
        self.deep || self.fm
    }
}

/// Where the training examples come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Labels {
    /// Every event an example, label 1 when its value is at least `positive` (a rating
    /// of 4 or 5 is a click).
    Rating { positive: f32 },
    /// Every event a positive, plus `negatives` random items per event as negatives.
    Implicit { negatives: usize },
    /// Next-item labels for a second stage (`next_examples`): every event a positive,
    /// `negatives` items per event from the candidate model's top `candidates` list for
    /// the user and `random` uniform ones, the candidate score a dense input.
    Next {
        negatives: usize,
        random: usize,
        candidates: usize,
        /// The user's last `last` events are the positives, each with the list the
        /// candidate model makes from the history before it (0: every logged item in
        /// the list made from the whole history).
        last: usize,
    },
}

/// The deep part's optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeepOptimizer {
    AdaGrad,
    Adam,
}

/// Validated hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WdParams {
    pub parts: Parts,
    pub labels: Labels,
    /// The event's value as the example weight (weighted logistic regression).
    pub weight_by_value: bool,
    /// Width of every embedding.
    pub dim: usize,
    /// Hidden ReLU layers of the deep part (the output layer of width 1 is added).
    pub layers: Vec<usize>,
    /// The wide part's features: fields and `a*b` crosses.
    pub wide: String,
    pub wide_buckets: usize,
    /// Schemas of the user and item attributes (empty: inferred).
    pub user_features: String,
    pub item_features: String,
    /// Published tables read as frozen dense features.
    pub features: Vec<String>,
    pub epochs: usize,
    /// Epochs without a better validation loss before training stops (0: never stop
    /// early).
    pub patience: usize,
    pub batch: usize,
    pub learning_rate: f32,
    pub optimizer: DeepOptimizer,
    /// L2 on the embedding rows a batch touches (`½·emb_l2·‖e‖²` per row and batch).
    pub emb_l2: f32,
    /// FTRL's settings for the wide part.
    pub alpha: f32,
    pub beta: f32,
    pub l1: f32,
    pub l2: f32,
    /// Hold out the validation tenth for early stopping.
    pub validation: bool,
    /// With `labels=next`: the retrieval model whose candidates the ranker learns from.
    pub candidate_model: String,
    /// With `labels=next`: the candidate's place in its list (score gap to the top,
    /// ln(1 + rank)) as two more dense inputs.
    pub list_inputs: bool,
    /// An items table whose cosines compare the item with the user's latest
    /// `history_len` items (three more dense inputs); empty: none.
    pub history: String,
    pub history_len: usize,
    /// The training loss (`units.rs`): `list` with labels that draw negatives per
    /// positive.
    pub loss: Loss,
    /// The user's latest this many items before the example's event as one more
    /// embedded field (0: none).
    pub recent: usize,
    /// Networks trained from different seeds on the same examples; the model's logit is
    /// their mean (1: one network).
    pub ensemble: usize,
}

impl Default for WdParams {
    fn default() -> Self {
        WdParams {
            parts: Parts {
                wide: true,
                deep: true,
                fm: true,
            },
            labels: Labels::Rating { positive: 4.0 },
            weight_by_value: false,
            dim: 32,
            layers: vec![64, 32],
            wide: DEFAULT_WIDE.to_string(),
            wide_buckets: 1 << 20,
            user_features: String::new(),
            item_features: String::new(),
            features: Vec::new(),
            epochs: 10,
            patience: 1,
            batch: 512,
            learning_rate: 0.05,
            optimizer: DeepOptimizer::AdaGrad,
            emb_l2: 0.05,
            alpha: 0.05,
            beta: 1.0,
            l1: 1.0,
            l2: 0.0,
            validation: true,
            candidate_model: String::new(),
            list_inputs: false,
            history: String::new(),
            history_len: 10,
            loss: Loss::Logistic,
            recent: 0,
            ensemble: 1,
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

fn join(v: &[usize]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl WdParams {
    pub fn from_params(p: &Params) -> Result<WdParams> {
        let d = WdParams::default();
        let parts = Parts::parse(&p.get("parts", d.parts.name())?)?;
        let labels = match p.get("labels", "rating".to_string())?.as_str() {
            "rating" => Labels::Rating {
                positive: p.get("positive", 4.0f32)?,
            },
            "implicit" => Labels::Implicit {
                negatives: p.get("negatives", 4usize)?,
            },
            "next" => {
                let (_, n) = next_examples::parse_candidates(p)?;
                Labels::Next {
                    negatives: p.get("negatives", 4usize)?,
                    random: p.get("random", 1usize)?,
                    candidates: n,
                    last: p.get("last", 0usize)?,
                }
            }
            s => {
                return Err(Error::param(
                    "labels",
                    format!("`{s}`: expected rating, implicit or next"),
                ))
            }
        };
        let candidate_model = match labels {
            Labels::Next { .. } => next_examples::parse_candidates(p)?.0,
            _ => String::new(),
        };
        let weight_by_value = match p.get("weight", "one".to_string())?.as_str() {
            "one" => false,
            "value" => true,
            s => {
                return Err(Error::param(
                    "weight",
                    format!("`{s}`: expected one or value"),
                ))
            }
        };
        let layers_s: String = p.get("layers", join(&d.layers))?;
        let layers = layers_s
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::param(
                    "layers",
                    format!("`{layers_s}`: expected widths like 256,128,64"),
                )
            })?;
        let optimizer = match p.get("optimizer", "adagrad".to_string())?.as_str() {
            "adagrad" => DeepOptimizer::AdaGrad,
            "adam" => DeepOptimizer::Adam,
            s => {
                return Err(Error::param(
                    "optimizer",
                    format!("`{s}`: expected adagrad or adam"),
                ))
            }
        };
        let features: String = p.get("features", String::new())?;
        let w = WdParams {
            parts,
            labels,
            weight_by_value,
            dim: p.get("dim", d.dim)?,
            layers,
            wide: p.get("wide", d.wide)?,
            wide_buckets: p.get("wide_buckets", d.wide_buckets)?,
            user_features: p.get("user_features", d.user_features)?,
            item_features: p.get("item_features", d.item_features)?,
            features: features
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            epochs: p.get("epochs", d.epochs)?,
            patience: p.get("patience", d.patience)?,
            batch: p.get("batch", d.batch)?,
            learning_rate: p.get("learning_rate", d.learning_rate)?,
            optimizer,
            emb_l2: p.get("emb_l2", d.emb_l2)?,
            alpha: p.get("alpha", d.alpha)?,
            beta: p.get("beta", d.beta)?,
            l1: p.get("l1", d.l1)?,
            l2: p.get("l2", d.l2)?,
            validation: on_off(p, "validation", d.validation)?,
            candidate_model,
            list_inputs: on_off(p, "list_inputs", false)?,
            history: p.get("history", d.history)?.trim().to_owned(),
            history_len: p.get("history_len", d.history_len)?,
            loss: Loss::parse(&p.get("loss", d.loss.name().to_owned())?)?,
            recent: p.get("recent", d.recent)?,
            ensemble: p.get("ensemble", d.ensemble)?,
        };
        w.validate()?;
        Ok(w)
    }

    fn validate(&self) -> Result<()> {
        match self.labels {
            Labels::Rating { positive } if !positive.is_finite() => {
                return Err(Error::param("positive", "must be a finite number"))
            }
            Labels::Implicit { negatives } | Labels::Next { negatives, .. } if negatives > 1000 => {
                return Err(Error::param("negatives", "must be in 0..=1000"))
            }
            Labels::Next { random, .. } if random > 1000 => {
                return Err(Error::param("random", "must be in 0..=1000"))
            }
            Labels::Next { last, .. } if last > 1000 => {
                return Err(Error::param("last", "must be in 0..=1000"))
            }
            _ => {}
        }
        if self.list_inputs && !matches!(self.labels, Labels::Next { .. }) {
            return Err(Error::param(
                "list_inputs",
                "the candidate's place in a list is an input only with labels=next",
            ));
        }
        if self.loss == Loss::List && matches!(self.labels, Labels::Rating { .. }) {
            return Err(Error::param(
                "loss",
                "loss=list needs lists: labels=next or labels=implicit",
            ));
        }
        if self.recent > 1000 {
            return Err(Error::param("recent", "must be in 0..=1000"));
        }
        if self.ensemble == 0 || self.ensemble > MAX_ENSEMBLE {
            return Err(Error::param(
                "ensemble",
                format!("must be in 1..={MAX_ENSEMBLE}"),
            ));
        }
        if self.history_len == 0 || self.history_len > 1000 {
            return Err(Error::param("history_len", "must be in 1..=1000"));
        }
        if self.dim == 0 || self.dim > 1024 {
            return Err(Error::param("dim", "must be in 1..=1024"));
        }
        if self.layers.len() > 8 || self.layers.iter().any(|&h| h == 0 || h > 16_384) {
            return Err(Error::param(
                "layers",
                "at most 8 layers, widths in 1..=16384",
            ));
        }
        if self.parts.deep && self.layers.is_empty() {
            return Err(Error::param("layers", "the deep part needs a layer"));
        }
        if self.wide_buckets == 0 || self.wide_buckets > wide::MAX_BUCKETS {
            return Err(Error::param(
                "wide_buckets",
                format!("must be in 1..={}", wide::MAX_BUCKETS),
            ));
        }
        wide::WideSpec::parse(&self.wide, self.wide_buckets)?;
        for (name, s) in [
            ("user_features", &self.user_features),
            ("item_features", &self.item_features),
        ] {
            if !s.is_empty() {
                s.parse::<Schema>()
                    .map_err(|e| Error::param(name, e.to_string()))?;
            }
        }
        if self.features.len() > 16 {
            return Err(Error::param("features", "at most 16 tables"));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err(Error::param("epochs", "must be in 1..=10000"));
        }
        if self.batch == 0 || self.batch > 1 << 16 {
            return Err(Error::param("batch", "must be in 1..=65536"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::param("learning_rate", "must be positive"));
        }
        if !(self.emb_l2 >= 0.0 && self.emb_l2.is_finite()) {
            return Err(Error::param("emb_l2", "must be a finite number >= 0"));
        }
        // FTRL checks its own settings; building one here reports them before the job runs.
        crate::train::nn::ftrl::Ftrl::new(0, self.ftrl())?;
        Ok(())
    }

    pub fn ftrl(&self) -> crate::train::nn::ftrl::FtrlParams {
        crate::train::nn::ftrl::FtrlParams {
            alpha: self.alpha,
            beta: self.beta,
            l1: self.l1,
            l2: self.l2,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let mut j = serde_json::json!({
            "parts": self.parts.name(),
            "weight": if self.weight_by_value { "value" } else { "one" },
            "dim": self.dim,
            "layers": join(&self.layers),
            "wide": self.wide,
            "wide_buckets": self.wide_buckets,
            "user_features": self.user_features,
            "item_features": self.item_features,
            "features": self.features.join(","),
            "epochs": self.epochs,
            "patience": self.patience,
            "batch": self.batch,
            "learning_rate": self.learning_rate,
            "optimizer": match self.optimizer { DeepOptimizer::AdaGrad => "adagrad", DeepOptimizer::Adam => "adam" },
            "emb_l2": self.emb_l2,
            "alpha": self.alpha,
            "beta": self.beta,
            "l1": self.l1,
            "l2": self.l2,
            "validation": if self.validation { "on" } else { "off" },
        });
        if self.list_inputs {
            j["list_inputs"] = "on".into();
        }
        if self.loss != Loss::Logistic {
            j["loss"] = self.loss.name().into();
        }
        if self.recent > 0 {
            j["recent"] = self.recent.into();
        }
        if self.ensemble > 1 {
            j["ensemble"] = self.ensemble.into();
        }
        if !self.history.is_empty() {
            j["history"] = self.history.clone().into();
            j["history_len"] = self.history_len.into();
        }
        match self.labels {
            Labels::Rating { positive } => {
                j["labels"] = "rating".into();
                j["positive"] = positive.into();
            }
            Labels::Implicit { negatives } => {
                j["labels"] = "implicit".into();
                j["negatives"] = negatives.into();
            }
            Labels::Next {
                negatives,
                random,
                candidates,
                last,
            } => {
                j["labels"] = "next".into();
                j["negatives"] = negatives.into();
                j["random"] = random.into();
                j["last"] = last.into();
                j["candidates"] = format!("{}:{candidates}", self.candidate_model).into();
            }
        }
        j
    }
}

/// The most networks `ensemble=` trains (each costs a training run and a forward pass
/// per query).
pub(crate) const MAX_ENSEMBLE: usize = 16;

/// Pairs the validation loss is computed on at a time.
const VALID_BLOCK: usize = 4096;

/// The validation tenth: a training pair is held out for early stopping when
/// `mix64((user << 32) | item) % 10 == 0` (mix64 = SplitMix64's finaliser).
pub(crate) fn is_validation(user: u32, item: u32) -> bool {
    crate::storage::id_hash::splitmix64((u64::from(user) << 32) | u64::from(item))
        .is_multiple_of(10)
}

/// What a finished training run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrainReport {
    /// Epochs run by all networks together (early stopping may end each before
    /// `epochs`), and each network's best.
    pub epochs_run: usize,
    pub best_epochs: Vec<usize>,
    /// Each network's validation loss at its best epoch, and the model's (the mean
    /// logit's, for an ensemble).
    pub member_valid_loss: Vec<f64>,
    pub best_valid_loss: Option<f64>,
    /// Wide weights that are not exactly zero, of all.
    pub wide_nonzero: usize,
    pub wide_total: usize,
}

/// The job.
pub(crate) struct WideDeep {
    pub params: WdParams,
    /// The finished run's line for its job record.
    summary: std::sync::Mutex<Option<String>>,
}

impl WideDeep {
    pub fn from_params(p: &Params) -> Result<Self> {
        let params = WdParams::from_params(p)?;
        p.finish(MODEL)?;
        Ok(WideDeep {
            params,
            summary: std::sync::Mutex::default(),
        })
    }

    #[cfg(test)]
    pub fn with_params(params: WdParams) -> Self {
        WideDeep {
            params,
            summary: std::sync::Mutex::default(),
        }
    }

    /// The encoders, wide spec and input tables, fitted on the snapshot.
    fn spec(&self, snap: &Snapshot) -> Result<Spec> {
        let p = &self.params;
        let fit = |declared: &str, rows: &[Vec<(String, String)>]| -> Result<Encoder> {
            let schema = if declared.is_empty() {
                Encoder::infer(rows)
            } else {
                declared.parse::<Schema>()?
            };
            Encoder::fit(&schema, rows)
        };
        let mut tables = Vec::with_capacity(p.features.len());
        for (name, view) in p.features.iter().zip(&snap.tables) {
            let space = view.space();
            if !matches!(space, RowSpace::Users | RowSpace::Items) {
                return Err(Error::param(
                    "features",
                    format!("`{name}` is not a users or items table"),
                ));
            }
            tables.push(InputTable {
                name: name.clone(),
                users: space == RowSpace::Users,
                dim: view.dim(),
                version: view.version(),
            });
        }
        if tables.len() != p.features.len() {
            return Err(Error::param("features", "an input table was not read"));
        }
        let history = self.history_view(snap)?.map(|view| HistoryInput {
            table: InputTable {
                name: p.history.clone(),
                users: false,
                dim: view.dim(),
                version: view.version(),
            },
            len: p.history_len,
        });
        Ok(Spec {
            user_enc: fit(&p.user_features, &snap.user_attrs)?,
            item_enc: fit(&p.item_features, &snap.item_attrs)?,
            wide: wide::WideSpec::parse(&p.wide, p.wide_buckets)?,
            tables,
            list_inputs: p.list_inputs,
            history,
            recent: p.recent,
        })
    }

    /// The `history=` table's view (read after the `features=` tables), an items table.
    fn history_view<'s>(&self, snap: &'s Snapshot) -> Result<Option<&'s TableView>> {
        let p = &self.params;
        if p.history.is_empty() {
            return Ok(None);
        }
        let view = snap
            .tables
            .get(p.features.len())
            .ok_or_else(|| Error::param("history", "the table was not read"))?;
        if view.space() != RowSpace::Items {
            return Err(Error::param(
                "history",
                format!("`{}` is not an items table", p.history),
            ));
        }
        Ok(Some(view))
    }

    /// Train on `snap`: the `ensemble` networks, each the best by validation loss (the
    /// last one without validation), the spec their inputs are built by, and what the
    /// run measured.
    pub(crate) fn train(
        &self,
        snap: &Snapshot,
        ctx: &JobContext<'_>,
    ) -> Result<(Vec<Net>, Spec, TrainReport)> {
        let p = &self.params;
        let spec = self.spec(snap)?;
        ctx.check_memory(
            "negatives",
            memory::bytes_of::<Example>(snap.events.len(), examples::per_event(p)),
        )?;
        let all = examples::build(snap, p, self.history_view(snap)?, ctx.sub_seed(0))?;
        if all.is_empty() {
            return Err(Error::NoEvents {
                what: "events to make training examples of",
            });
        }
        let (train, valid) = units::split(all, p.loss, p.validation)?;
        let shape = Shape::new(p, snap.n_users, snap.n_items, &spec);
        // Validation runs in blocks of `VALID_BLOCK` pairs, whatever the batch.
        ctx.check_memory(
            "wide_buckets",
            shape.training_bytes(p.batch.max(VALID_BLOCK) + examples::per_event(p)),
        )?;
        // An ensemble also holds its finished networks while the next one trains.
        ctx.check_memory(
            "ensemble",
            shape.training_bytes(p.batch.max(VALID_BLOCK) + examples::per_event(p))
                + (p.ensemble as u128 - 1) * shape.network_bytes(),
        )?;
        let users: Vec<Side> = (0..snap.n_users)
            .map(|u| {
                let a = snap.user_attrs.get(u).map_or(&[][..], |a| &a[..]);
                // why: u < n_users, dense ids are u32.
                #[allow(clippy::cast_possible_truncation)]
                spec.user_side(Some(u as u32), a)
            })
            .collect();
        let items: Vec<Side> = (0..snap.n_items)
            .map(|i| {
                let a = snap.item_attrs.get(i).map_or(&[][..], |a| &a[..]);
                #[allow(clippy::cast_possible_truncation)]
                spec.item_side(Some(i as u32), a)
            })
            .collect();
        let rows = TableRows::new(
            &spec.tables,
            snap.tables[..spec.tables.len().min(snap.tables.len())].to_vec(),
        );
        let mut batch = Batch::default();
        let mut acts = Acts::default();
        let mut grads = Grads::default();
        let mut dz = Vec::new();
        let mut report = TrainReport::default();
        // A batch takes whole units; `offsets` cuts it into them.
        let mut offsets: Vec<u32> = Vec::new();
        let fill = |batch: &mut Batch,
                    offsets: &mut Vec<u32>,
                    set: &Units,
                    chunk: &mut dyn Iterator<Item = usize>| {
            batch.clear();
            offsets.clear();
            offsets.push(0);
            let mut recent: Vec<u32> = Vec::with_capacity(spec.recent);
            for k in chunk {
                for e in set.unit(k) {
                    let (u, i) = (&users[e.user as usize], &items[e.item as usize]);
                    recent.clear();
                    if spec.recent > 0 {
                        recent.extend(examples::items_before(&snap.events, e.at).take(spec.recent));
                    }
                    batch.push(&spec, (u, i), &rows, e, &recent);
                }
                // why: a batch holds at most 65,536 units of at most 2,001 examples.
                #[allow(clippy::cast_possible_truncation)]
                offsets.push(batch.n as u32);
            }
        };
        // Units per batch: about `batch` examples.
        let per_batch = match p.loss {
            Loss::Logistic => p.batch,
            Loss::List => (p.batch / examples::per_event(p)).max(1),
        };
        let mut nets = Vec::with_capacity(p.ensemble);
        // Progress counts the epochs of every network.
        let total_epochs = p.epochs * p.ensemble;
        ctx.pool().install(|| -> Result<()> {
            for member in 0..p.ensemble {
                // Member 0 draws what a single network draws; each other its own seeds.
                let seed = 2 * member as u64;
                let net = Net::new(shape.clone(), ctx.sub_seed(1 + seed));
                let mut trainer = Trainer::new(net, p)?;
                let mut best: Option<(f64, Net)> = None;
                let (mut since_best, mut best_epoch, mut epochs_run) = (0usize, 0usize, 0usize);
                for epoch in 0..p.epochs {
                    let batches =
                        Batches::new(train.len(), per_batch, ctx.sub_seed(2 + seed), epoch as u64)?;
                    let (mut loss, mut n) = (0.0, 0.0);
                    for chunk in batches.iter() {
                        ctx.check_cancel()?;
                        fill(
                            &mut batch,
                            &mut offsets,
                            &train,
                            &mut chunk.iter().map(|&k| k as usize),
                        );
                        trainer.net.forward(&batch, &mut acts);
                        dz.clear();
                        dz.resize(batch.n, 0.0);
                        let (l, w) = p.loss.of(
                            &acts.logits,
                            (&batch.labels, &batch.weights),
                            &offsets,
                            &mut dz,
                        );
                        trainer.net.backward(&batch, &mut acts, &dz, &mut grads);
                        trainer.apply(&mut grads);
                        loss += l;
                        n += w;
                    }
                    let loss = loss / n.max(1e-12);
                    epochs_run = epoch + 1;
                    report.epochs_run += 1;
                    let mut msg_loss = loss;
                    if !valid.is_empty() {
                        let vl = valid_loss(
                            (std::slice::from_ref(&trainer.net), p.loss),
                            &valid,
                            (&mut batch, &mut offsets, &mut acts),
                            fill,
                        );
                        msg_loss = vl;
                        if best.as_ref().is_none_or(|(b, _)| vl < *b) {
                            best = Some((vl, trainer.net.clone()));
                            best_epoch = epoch + 1;
                            since_best = 0;
                        } else {
                            since_best += 1;
                        }
                    }
                    nn::end_epoch(
                        ctx,
                        MODEL,
                        member * p.epochs + epoch + 1,
                        total_epochs,
                        msg_loss,
                    )?;
                    if p.patience > 0 && since_best >= p.patience {
                        break;
                    }
                }
                report.best_epochs.push(if best_epoch == 0 {
                    epochs_run
                } else {
                    best_epoch
                });
                if let Some((l, _)) = &best {
                    report.member_valid_loss.push(*l);
                }
                nets.push(best.map_or(trainer.net, |(_, n)| n));
            }
            if !valid.is_empty() {
                // One network's is the loss it was kept for; an ensemble's is measured.
                report.best_valid_loss = match &report.member_valid_loss[..] {
                    [alone] => Some(*alone),
                    _ => Some(valid_loss(
                        (&nets, p.loss),
                        &valid,
                        (&mut batch, &mut offsets, &mut acts),
                        fill,
                    )),
                };
            }
            Ok(())
        })?;
        let first = &nets[0];
        if first.shape.parts.wide {
            report.wide_total = first.wide.len();
            report.wide_nonzero = first.wide.iter().filter(|w| **w != 0.0).count();
        }
        Ok((nets, spec, report))
    }
}

/// Mean (weighted) loss of `nets`' mean logit on `set`, in blocks of about `VALID_BLOCK` examples.
fn valid_loss(
    (nets, loss_fn): (&[Net], Loss),
    set: &Units,
    (batch, offsets, acts): (&mut Batch, &mut Vec<u32>, &mut Acts),
    fill: impl Fn(&mut Batch, &mut Vec<u32>, &Units, &mut dyn Iterator<Item = usize>),
) -> f64 {
    let (mut loss, mut w) = (0.0f64, 0.0f64);
    let mut g = Vec::new();
    let per_block = (VALID_BLOCK * set.len() / set.ex.len().max(1)).max(1);
    for start in (0..set.len()).step_by(per_block) {
        let end = (start + per_block).min(set.len());
        fill(batch, offsets, set, &mut (start..end));
        deep::forward_mean(nets, batch, acts);
        g.clear();
        g.resize(batch.n, 0.0);
        let (l, n) = loss_fn.of(
            &acts.logits,
            (&batch.labels, &batch.weights),
            offsets,
            &mut g,
        );
        loss += l;
        w += n;
    }
    loss / w.max(1e-12)
}

impl Job for WideDeep {
    fn model(&self) -> &str {
        MODEL
    }

    fn params_json(&self) -> String {
        self.params.to_json().to_string()
    }

    fn reads(&self) -> Reads {
        Reads {
            searches: false,
            user_attrs: true,
            item_attrs: true,
        }
    }

    fn input_tables(&self) -> Vec<String> {
        let p = &self.params;
        let mut t = p.features.clone();
        if !p.history.is_empty() {
            t.push(p.history.clone());
        }
        t
    }

    fn candidates(&self) -> Option<(String, usize)> {
        match self.params.labels {
            Labels::Next { candidates, .. } => {
                Some((self.params.candidate_model.clone(), candidates))
            }
            _ => None,
        }
    }

    fn candidate_prefixes(&self) -> usize {
        match self.params.labels {
            Labels::Next { last, .. } => last,
            _ => 0,
        }
    }

    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        let (nets, spec, r) = self.train(snap, ctx)?;
        let mut line = format!("{} epochs (best {})", r.epochs_run, join(&r.best_epochs));
        if nets.len() > 1 {
            line.push_str(&format!(", {} networks", nets.len()));
        }
        if let Some(l) = r.best_valid_loss {
            line.push_str(&format!(", validation log-loss {l:.4}"));
            if nets.len() > 1 {
                let alone = r.member_valid_loss.iter().sum::<f64>()
                    / r.member_valid_loss.len().max(1) as f64;
                line.push_str(&format!(" (each alone {alone:.4} on average)"));
            }
        }
        if r.wide_total > 0 {
            line.push_str(&format!(
                ", wide weights non-zero {} of {} ({:.2} %)",
                r.wide_nonzero,
                r.wide_total,
                100.0 * r.wide_nonzero as f64 / r.wide_total as f64
            ));
        }
        *self.summary.lock().recover() = Some(line);
        Ok(vec![
            stored::to_table(MODEL, &nets, &spec),
            next_examples::marker(MODEL, &self.params),
        ])
    }

    fn summary(&self) -> Option<String> {
        self.summary.lock().recover().clone()
    }
}
