//! The CTR protocol: click-through prediction on ratings. A rating of 4 or more is a
//! click (label 1), less is not; an event is a test example when
//! `(user_id * 31 + item_id) % 5 == 0` on the data set's own ids (the RATING split),
//! else a training one. The model (a `wide-deep` ranker; `wide`, `deep` and `lr` are
//! `wide-deep` with parts chosen) trains on the training events with the users' and
//! items' attributes, and predicts each test pair's probability; the report holds the
//! AUC and log-loss over the test examples and the training seconds. With
//! `drop_neutral` every rating of 3 is left out of both parts first.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::metrics::{rating_split, EvalEvent};
use super::{train_db, train_inputs_first, train_options, Catalog, EvalOptions, Outcome};
use crate::{Error, Params, ProgressSink, RawEvent, Result};

/// The job and parameters an evaluated model name stands for: `wide`, `deep` and `lr`
/// (logistic regression on the ids and attributes, no crosses) are `wide-deep` parts.
pub(crate) fn job_for(model: &str, params: &Params) -> (String, Params) {
    let mut p = params.clone();
    let has = |k: &str| params.iter().any(|(key, _)| key == k);
    match model {
        "wide" | "deep" if !has("parts") => p.insert("parts", model),
        "lr" => {
            if !has("parts") {
                p.insert("parts", "wide");
            }
            if !has("wide") {
                p.insert(
                    "wide",
                    "user,item,gender,age,occupation,genres,release_year",
                );
            }
        }
        _ => {}
    }
    let job = match model {
        "wide" | "deep" | "lr" => crate::train::wide_deep::MODEL.to_string(),
        m => m.to_string(),
    };
    (job, p)
}

pub(super) fn run(
    opts: &EvalOptions,
    drop_neutral: bool,
    keyed: &[(EvalEvent, &RawEvent)],
    catalog: &Catalog,
    sink: &dyn ProgressSink,
) -> Result<Outcome> {
    let kept: Vec<(EvalEvent, &RawEvent)> = keyed
        .iter()
        .filter(|(k, _)| !(drop_neutral && k.2 == 3.0))
        .copied()
        .collect();
    let (train, test) = rating_split(&kept, |(k, _)| (u64::from(k.0), u64::from(k.1)));
    let raw_train: Vec<RawEvent> = train.iter().map(|(_, e)| (*e).clone()).collect();
    let db = train_db(catalog, &raw_train, opts.threads)?;
    let (job, params) = job_for(&opts.model, &opts.params);
    // The tables `features=` names (`als.items`) are trained first, on the same split.
    let job_opts = EvalOptions {
        model: job.clone(),
        params,
        ..opts.clone()
    };
    let params = train_inputs_first(&db, &job_opts, sink)?;
    let t = Instant::now();
    let info = db.train_reporting(&job, &params, &train_options(opts), sink)?;
    let train_seconds = t.elapsed().as_secs_f64();
    // One ranking call per user: the user's inputs are built once.
    let mut by_user: HashMap<&str, Vec<(&str, f32)>> = HashMap::new();
    for (_, e) in &test {
        by_user
            .entry(e.user.as_str())
            .or_default()
            .push((e.item.as_str(), e.value));
    }
    let mut users: Vec<&str> = by_user.keys().copied().collect();
    users.sort_unstable();
    let mut scored: Vec<(f32, bool)> = Vec::with_capacity(test.len());
    for user in users {
        let pairs = &by_user[user];
        let items: Vec<&str> = pairs.iter().map(|p| p.0).collect();
        let hits = db.rank(user, &items, &job)?;
        let p: HashMap<&str, f32> = hits.iter().map(|h| (h.id.as_str(), h.score)).collect();
        for (item, value) in pairs {
            let s = *p
                .get(item)
                .ok_or_else(|| Error::InvalidInput(format!("`{item}` was not scored")))?;
            scored.push((s, *value >= 4.0));
        }
    }
    let metrics = BTreeMap::from([
        ("auc".to_string(), auc(&scored)),
        ("logloss".to_string(), log_loss(&scored)),
        ("test_examples".to_string(), scored.len() as f64),
        ("train_examples".to_string(), raw_train.len() as f64),
    ]);
    let mut params = info.params;
    if !info.message.is_empty() {
        params["summary"] = info.message.clone().into();
        // Early stopping may end before `epochs`: the per-epoch figure uses the epochs run.
        if let Some(n) = epochs_run(&info.message) {
            params["epochs_run"] = n.into();
        }
    }
    Ok(Outcome {
        metrics,
        baseline: None,
        users: scored.len() as u64,
        train_seconds,
        params,
        validation: None,
        heldout_users: None,
    })
}

/// The epochs a `wide-deep` job ran, from its record's message (`… 6 epochs (best 5) …`).
fn epochs_run(message: &str) -> Option<u64> {
    let at = message.find(" epochs (best")?;
    message[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Area under the ROC curve: the probability that a random positive scores above a
/// random negative, ties counting one half (the rank-sum form, ties given their mean
/// rank). 0.5 when either class is empty.
pub(crate) fn auc(scored: &[(f32, bool)]) -> f64 {
    let mut v: Vec<(f32, bool)> = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut pos) = (0.0f64, 0u64);
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0.total_cmp(&v[i].0).is_eq() {
            j += 1;
        }
        // Ranks i+1..=j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        for x in &v[i..j] {
            if x.1 {
                rank_sum += mean_rank;
                pos += 1;
            }
        }
        i = j;
    }
    let neg = v.len() as u64 - pos;
    if pos == 0 || neg == 0 {
        return 0.5;
    }
    let (p, n) = (pos as f64, neg as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// Mean log-loss, probabilities clipped to [1e-7, 1 − 1e-7] as the usual libraries do.
pub(crate) fn log_loss(scored: &[(f32, bool)]) -> f64 {
    if scored.is_empty() {
        return f64::NAN;
    }
    let total: f64 = scored
        .iter()
        .map(|&(p, y)| {
            let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
            if y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    total / scored.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_is_the_pairwise_order_with_ties_half() {
        assert_eq!(auc(&[(0.9, true), (0.1, false)]), 1.0);
        assert_eq!(auc(&[(0.1, true), (0.9, false)]), 0.0);
        assert_eq!(auc(&[(0.5, true), (0.5, false)]), 0.5);
        // 2 positives, 2 negatives: pairs (p, n) ordered right 3 of 4.
        let v = [(0.8, true), (0.3, true), (0.5, false), (0.1, false)];
        assert!((auc(&v) - 0.75).abs() < 1e-12);
        assert_eq!(auc(&[(0.3, true)]), 0.5);
    }

    #[test]
    fn log_loss_is_the_mean_cross_entropy_clipped() {
        let v = [(0.8f32, true), (0.2, false)];
        assert!((log_loss(&v) - (-(0.8f64.ln()))).abs() < 1e-6);
        assert!(log_loss(&[(0.0, true)]).is_finite());
    }

    #[test]
    fn epochs_run_is_read_from_the_message() {
        assert_eq!(epochs_run("published; 6 epochs (best 5), x"), Some(6));
        assert_eq!(epochs_run("published"), None);
    }

    #[test]
    fn model_names_map_to_wide_deep_parts() {
        let (job, p) = job_for("deep", &Params::new());
        assert_eq!(job, "wide-deep");
        assert!(p.iter().any(|(k, v)| k == "parts" && v == "deep"));
        let (job, p) = job_for("lr", &Params::new().set("epochs", 2));
        assert_eq!(job, "wide-deep");
        assert!(p.iter().any(|(k, v)| k == "wide" && !v.contains('*')));
        let (job, _) = job_for("wide-deep", &Params::new());
        assert_eq!(job, "wide-deep");
    }
}
