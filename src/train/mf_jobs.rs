//! Matrix factorization as jobs: `sgd` (explicit ratings), `als` and `bpr` (implicit).

use super::interactions::Interactions;
use super::mf::{als, bpr, sgd, MfModel};
use crate::jobs::memory;
use crate::jobs::JobContext;
use crate::jobs::TableOutput;
use crate::jobs::{Job, Snapshot};
use crate::storage::tables::RowSpace;
use crate::{Error, Params, Result};

enum Kind {
    Sgd(sgd::SgdParams),
    Als(als::AlsParams),
    Bpr(bpr::BprParams),
}

pub(crate) struct MfJob {
    model: String,
    kind: Kind,
}

impl MfJob {
    /// Parameters not given keep the defaults tuned on ML-100K.
    pub fn from_params(model: &str, p: &Params) -> Result<Self> {
        let kind = match model {
            "sgd" => {
                let d = sgd::SgdParams::default();
                let s = sgd::SgdParams {
                    factors: p.get("factors", d.factors)?,
                    epochs: p.get("epochs", d.epochs)?,
                    learning_rate: p.get("learning_rate", d.learning_rate)?,
                    reg: p.get("reg", d.reg)?,
                    bias_reg: p.get("bias_reg", d.bias_reg)?,
                    init_std: p.get("init_std", d.init_std)?,
                    lr_decay: p.get("lr_decay", d.lr_decay)?,
                };
                s.validate()?;
                Kind::Sgd(s)
            }
            "als" => {
                let d = als::AlsParams::default();
                let a = als::AlsParams {
                    factors: p.get("factors", d.factors)?,
                    iterations: p.get("iterations", d.iterations)?,
                    reg: p.get("reg", d.reg)?,
                    alpha: p.get("alpha", d.alpha)?,
                    cg_steps: p.get("cg_steps", d.cg_steps)?,
                    binarize: p.get("binarize", d.binarize)?,
                    init_std: p.get("init_std", d.init_std)?,
                };
                a.validate()?;
                Kind::Als(a)
            }
            "bpr" => {
                let d = bpr::BprParams::default();
                let b = bpr::BprParams {
                    factors: p.get("factors", d.factors)?,
                    epochs: p.get("epochs", d.epochs)?,
                    learning_rate: p.get("learning_rate", d.learning_rate)?,
                    reg: p.get("reg", d.reg)?,
                    bias_reg: p.get("bias_reg", d.bias_reg)?,
                    init_std: p.get("init_std", d.init_std)?,
                    lr_decay: p.get("lr_decay", d.lr_decay)?,
                    popular_negatives: p.get("popular_negatives", d.popular_negatives)?,
                };
                b.validate()?;
                Kind::Bpr(b)
            }
            other => {
                return Err(crate::model_names::unknown_model(
                    other,
                    vec!["sgd".into(), "als".into(), "bpr".into()],
                ))
            }
        };
        p.finish(model)?;
        Ok(MfJob {
            model: model.to_owned(),
            kind,
        })
    }
}

impl Job for MfJob {
    fn model(&self) -> &str {
        &self.model
    }

    fn params_json(&self) -> String {
        match &self.kind {
            Kind::Sgd(s) => serde_json::json!({
                "factors": s.factors, "epochs": s.epochs, "learning_rate": s.learning_rate, "reg": s.reg,
                "bias_reg": s.bias_reg, "init_std": s.init_std, "lr_decay": s.lr_decay,
            }),
            Kind::Als(a) => serde_json::json!({
                "factors": a.factors, "iterations": a.iterations, "reg": a.reg, "alpha": a.alpha,
                "cg_steps": a.cg_steps, "binarize": a.binarize, "init_std": a.init_std,
            }),
            Kind::Bpr(b) => serde_json::json!({
                "factors": b.factors, "epochs": b.epochs, "learning_rate": b.learning_rate, "reg": b.reg,
                "bias_reg": b.bias_reg, "init_std": b.init_std, "lr_decay": b.lr_decay,
                "popular_negatives": b.popular_negatives,
            }),
        }
        .to_string()
    }

    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        if snap.events.is_empty() {
            return Err(Error::NoEvents { what: "events" });
        }
        // Factors, their published copies (two more columns at most) and the tables' rows;
        // ALS also holds a factors x factors Gram matrix (YtY) per sweep.
        let (factors, gram) = match &self.kind {
            Kind::Sgd(p) => (p.factors, 0),
            Kind::Als(p) => (p.factors, p.factors),
            Kind::Bpr(p) => (p.factors, 0),
        };
        ctx.check_memory(
            "factors",
            3 * memory::bytes_of::<f32>(snap.n_users + snap.n_items, factors + 2)
                + memory::bytes_of::<f32>(gram, gram),
        )?;
        let data = Interactions::from_triples(snap.n_users, snap.n_items, &snap.triples())?;
        let model: MfModel = match &self.kind {
            Kind::Sgd(p) => sgd::train(&data, p, ctx)?,
            Kind::Als(p) => als::train(&data, p, ctx)?,
            Kind::Bpr(p) => bpr::train(&data, p, ctx)?,
        };
        let (users, items) = model.to_tables();
        let dim = users.ncols();
        Ok(vec![
            TableOutput {
                name: format!("{}.users", self.model),
                space: RowSpace::Users,
                dim,
                rows: users.iter().copied().collect(),
                offset: 0.0,
                row_ids: vec![],
            },
            TableOutput {
                name: format!("{}.items", self.model),
                space: RowSpace::Items,
                dim,
                rows: items.iter().copied().collect(),
                offset: model.global_bias,
                row_ids: vec![],
            },
        ])
    }
}
