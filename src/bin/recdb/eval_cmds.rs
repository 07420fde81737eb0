//! `eval`: a model on a protocol, trained on a fresh temporary database (or a database's
//! own log with --db), with the thresholds that make it fail.

use anyhow::{bail, Context as _, Result};

use recdb::{EvalOptions, EvalReport, Params, Protocol, Rerank};

use crate::grammar::EvalArgs;
use crate::output::{short_floats, Output};
use crate::progress::Bar;
use crate::session::{open_db, Session};

/// `eval --protocol P --model M (--data DIR | --db PATH)`.
pub fn eval(s: &mut Session, a: EvalArgs) -> Result<()> {
    let mut protocol: Protocol = a.protocol.parse()?;
    match (&mut protocol, a.heldout_users) {
        (Protocol::Strong { heldout_users }, n) => *heldout_users = n,
        (_, Some(_)) => bail!("--heldout-users: only --protocol strong holds users out"),
        (_, None) => {}
    }
    match (&mut protocol, a.drop_neutral) {
        (Protocol::Ctr { drop_neutral }, d) => *drop_neutral = d,
        (_, true) => bail!("--drop-neutral: only --protocol ctr drops ratings"),
        (_, false) => {}
    }
    let model = a.kind.resolve(&a.model)?;
    let opts = EvalOptions {
        protocol,
        model: model.clone(),
        data: a.data.clone(),
        params: a.params.to_params()?,
        seed: a.seed.seed,
        threads: a.threads.threads.or(s.threads),
        rank: match &a.rank {
            Some(r) => {
                let mut params = Params::new();
                for kv in &a.rank_params {
                    params.insert_kv(kv)?;
                }
                Some(Rerank {
                    model: r.clone(),
                    params,
                    candidates: a.candidates,
                })
            }
            None => None,
        },
        validation: a.validation,
    };
    let bar = Bar::new(&format!("eval {model}"));
    let r = match &a.db {
        None => recdb::evaluate(&opts, &bar),
        // The session's own database is already open (and locked) in this process.
        Some(p) if s.db_path.as_deref() == Some(p.as_path()) => {
            recdb::evaluate_db(s.db()?, &opts, &bar)
        }
        Some(p) => recdb::evaluate_db(&open_db(p, s.threads)?, &opts, &bar),
    };
    bar.finish();
    let mut report = r?;
    report.params = short_floats(report.params);
    let out =
        Output::text(report.to_string(), serde_json::to_value(&report)?).with_mode(a.format.format);
    s.print(&out);
    if let Some(min) = a.min_hr {
        let hr = *report
            .metrics
            .get("hr@10")
            .context("--min-hr: the report has no hr@10 (use --protocol next)")?;
        if hr < min {
            bail!("hr@10 {hr:.4} is below --min-hr {min}");
        }
    }
    if let Some(min) = a.min_auc {
        let auc = *report
            .metrics
            .get("auc")
            .context("--min-auc: the report has no auc (use --protocol ctr)")?;
        if auc < min {
            bail!("auc {auc:.4} is below --min-auc {min}");
        }
    }
    if let Some(max) = a.max_rmse {
        let rmse = *report
            .metrics
            .get("rmse")
            .context("--max-rmse: the report has no rmse (use --protocol rating)")?;
        if rmse > max {
            bail!("rmse {rmse:.4} is above --max-rmse {max}");
        }
    }
    if let Some(min) = a.min_ndcg {
        let ndcg = *report
            .metrics
            .get("ndcg@100")
            .context("--min-ndcg: the report has no ndcg@100 (use --protocol strong)")?;
        if ndcg < min {
            bail!("ndcg@100 {ndcg:.4} is below --min-ndcg {min}");
        }
    }
    check_lee(&report, &a)?;
    Ok(())
}

/// `--min-r`, `--min-r-inferred`, `--min-self-nearest`: fail when the report falls short.
pub fn check_lee(report: &EvalReport, a: &EvalArgs) -> Result<()> {
    let checks = [
        ("pearson", a.min_r, "--min-r"),
        ("pearson_inferred", a.min_r_inferred, "--min-r-inferred"),
        ("self_nearest", a.min_self_nearest, "--min-self-nearest"),
    ];
    for (metric, min, flag) in checks {
        let Some(min) = min else { continue };
        let Some(&v) = report.metrics.get(metric) else {
            bail!("{flag}: the report has no {metric} (use --protocol lee)");
        };
        if v < min {
            bail!("{metric} {v:.4} is below {flag} {min}");
        }
    }
    Ok(())
}
