//! The NEXT protocol: leave the last event of each user out, recommend 10 items from
//! the rest, report HR@10 and NDCG@10, with the `popular` baseline on the same split.
//! With a ranker ([`super::Rerank`]) the answer is two-stage: the model proposes
//! candidates, the ranker (trained after it on the same split) re-scores them; the
//! candidate model alone is reported beside it (`candidates_hr@10`, ...), with the
//! share of test items among the candidates (`candidates_recall`, the ceiling of any
//! ranker).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use super::metrics::{hr_ndcg_at_k, next_split, EvalEvent, Metrics};
use super::{train_db, train_inputs_first, train_options, Catalog, EvalOptions, Outcome};
use crate::{Db, Error, Params, ProgressSink, QueryOptions, RawEvent, Result};

pub(super) fn run(
    opts: &EvalOptions,
    keyed: &[(EvalEvent, &RawEvent)],
    catalog: &Catalog,
    sink: &dyn ProgressSink,
) -> Result<Outcome> {
    let train_opts = train_options(opts);
    let kept;
    let keyed = if opts.validation {
        kept = without_last_events(keyed);
        &kept[..]
    } else {
        keyed
    };
    let (train, test) = next_split(&keyed.iter().map(|(k, _)| *k).collect::<Vec<_>>());
    let by_key: BTreeMap<(u32, u32, i64), &RawEvent> =
        keyed.iter().map(|(k, e)| ((k.0, k.1, k.3), *e)).collect();
    let raw_train: Vec<RawEvent> = train
        .iter()
        .map(|t| by_key[&(t.0, t.1, t.3)].clone())
        .collect();
    let test_set: HashSet<(u32, u32)> = test.iter().copied().collect();
    let test_raw: Vec<RawEvent> = keyed
        .iter()
        .filter(|(k, _)| test_set.contains(&(k.0, k.1)))
        .map(|(_, e)| (*e).clone())
        .collect();
    let db = train_db(catalog, &raw_train, opts.threads)?;
    let params = train_inputs_first(&db, opts, sink)?;
    let t = Instant::now();
    let info = db.train_reporting(&opts.model, &params, &train_opts, sink)?;
    let train_seconds = t.elapsed().as_secs_f64();
    let trained: HashSet<&str> = raw_train.iter().map(|e| e.user.as_str()).collect();
    let mut params = info.params;
    let mut train_seconds = train_seconds;
    let mut metrics = BTreeMap::new();
    let query = match &opts.rank {
        None => QueryOptions::model(&opts.model).k(10),
        Some(r) => {
            let t = Instant::now();
            let youtube = crate::query::youtube::is_youtube(&db, &opts.model);
            let ri = db.train_reporting(
                &r.model,
                &ranker_params(r, &opts.model, youtube),
                &train_opts,
                sink,
            )?;
            train_seconds += t.elapsed().as_secs_f64();
            params = serde_json::json!({"candidates": params, "ranker": ri.params});
            // The candidate model alone, and how often the test item is a candidate.
            let n = r.candidates;
            let c = hr_ndcg(
                &db,
                &QueryOptions::model(&opts.model).k(n),
                &test_raw,
                &trained,
            )?;
            metrics.insert("candidates_hr@10".into(), c.hr.unwrap_or(0.0));
            metrics.insert("candidates_ndcg@10".into(), c.ndcg.unwrap_or(0.0));
            metrics.insert("candidates_recall".into(), c.recall);
            QueryOptions::model(&opts.model)
                .k(10)
                .candidates(n)
                .rank(&r.model)
        }
    };
    let m = hr_ndcg(&db, &query, &test_raw, &trained)?;
    metrics.insert("hr@10".to_string(), m.hr.unwrap_or(0.0));
    metrics.insert("ndcg@10".to_string(), m.ndcg.unwrap_or(0.0));
    let mut baseline = None;
    if opts.model != "popular" {
        db.train("popular", &Params::new(), &train_opts)?;
        let b = hr_ndcg(
            &db,
            &QueryOptions::model("popular").k(10),
            &test_raw,
            &trained,
        )?;
        baseline = Some(BTreeMap::from([
            ("hr@10".to_string(), b.hr.unwrap_or(0.0)),
            ("ndcg@10".to_string(), b.ndcg.unwrap_or(0.0)),
        ]));
    }
    Ok(Outcome {
        metrics,
        baseline,
        users: m.n as u64,
        train_seconds,
        params,
        validation: None,
        heldout_users: None,
    })
}

/// The events without each user's last (by time, then item, as [`next_split`]): the
/// validation split's data, whose own last events are the one before the test's.
fn without_last_events<'a>(keyed: &[(EvalEvent, &'a RawEvent)]) -> Vec<(EvalEvent, &'a RawEvent)> {
    let mut last: HashMap<u32, (i64, u32)> = HashMap::new();
    for (k, _) in keyed {
        let e = last.entry(k.0).or_insert((k.3, k.1));
        *e = (*e).max((k.3, k.1));
    }
    let mut dropped = HashSet::new();
    keyed
        .iter()
        .filter(|(k, _)| last[&k.0] != (k.3, k.1) || !dropped.insert(k.0))
        .cloned()
        .collect()
}

/// Each user's last events a `wide-deep` ranker of a `youtube` generator learns from
/// in evaluation (`last=`), unless set: the best of 5, 10, 20, 50 on ML-100K
/// (docs/TWO_STAGE.md).
pub(crate) const EVAL_LAST: usize = 20;

/// The user's latest items a `wide-deep` ranker of a `youtube` generator reads in
/// evaluation, as a field (`recent=`) and through the generator's item inputs'
/// cosines (`history=<generator>.inputs`), unless set (docs/TWO_STAGE.md).
pub(crate) const EVAL_RECENT: usize = 10;

/// The list negatives per positive of the `loss=list` ranker evaluation trains (a
/// softmax over 1 + 50 + `random` items of the list), unless set (docs/TWO_STAGE.md).
pub(crate) const EVAL_LIST_NEGATIVES: usize = 50;

/// The networks of the `wide-deep` ranker evaluation trains for a `youtube` generator
/// (`ensemble=`), unless set: their mean logit ranks (docs/TWO_STAGE.md).
pub(crate) const EVAL_ENSEMBLE: usize = 3;

/// The ranker's parameters: a `wide-deep` ranker learns next-item labels from this
/// model's candidates unless the user chose its labels; from a `youtube` generator
/// (which serves from a history) with clean labels, each user's last [`EVAL_LAST`]
/// events with the lists made before each, the list inputs, the user's latest items
/// ([`EVAL_RECENT`]), the list loss over [`EVAL_LIST_NEGATIVES`] list negatives and
/// [`EVAL_ENSEMBLE`] networks, unless set.
fn ranker_params(r: &super::Rerank, candidates: &str, youtube: bool) -> Params {
    let mut p = r.params.clone();
    let has = |p: &Params, key: &str| p.iter().any(|(k, _)| k == key);
    if r.model == "wide-deep" && !has(&p, "labels") {
        p.insert("labels", "next");
        if !has(&p, "candidates") {
            p.insert("candidates", format!("{candidates}:{}", r.candidates));
        }
        let generator = p
            .iter()
            .find(|(k, _)| *k == "candidates")
            .map(|(_, v)| v.split(':').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        if youtube && generator == candidates {
            if !has(&p, "last") {
                p.insert("last", EVAL_LAST.to_string());
            }
            if !has(&p, "list_inputs") {
                p.insert("list_inputs", "on");
            }
            if !has(&p, "recent") {
                p.insert("recent", EVAL_RECENT.to_string());
            }
            if !has(&p, "history") {
                p.insert("history", format!("{candidates}.inputs"));
            }
            if !has(&p, "ensemble") {
                p.insert("ensemble", EVAL_ENSEMBLE.to_string());
            }
            if !has(&p, "loss") {
                p.insert("loss", "list");
                if !has(&p, "negatives") {
                    p.insert("negatives", EVAL_LIST_NEGATIVES.to_string());
                }
            }
        }
    }
    p
}

/// HR@10 and NDCG@10 of the first 10 answers of `opts` (which may ask for more), and
/// the share of test users whose item is anywhere in the answer.
struct Scored {
    hr: Option<f64>,
    ndcg: Option<f64>,
    recall: f64,
    n: usize,
}

// why: j indexes the held-out test list, far fewer than u32::MAX entries.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn hr_ndcg(
    db: &Db,
    opts: &QueryOptions,
    test: &[RawEvent],
    trained: &HashSet<&str>,
) -> Result<Scored> {
    let mut found = 0usize;
    let mut pairs = Vec::with_capacity(test.len());
    let mut ranked = Vec::with_capacity(test.len());
    for (j, e) in test.iter().enumerate() {
        // A test user with no training events cannot be ranked for: a miss.
        let hits = match db.recommend(&e.user, opts) {
            Ok(h) => h,
            Err(Error::UnknownUser(_)) => Vec::new(),
            // Known from the `.user` file alone: a model that reads demographics answers
            // them; one that needs a history cannot, and that is a miss too.
            Err(_) if !trained.contains(e.user.as_str()) => Vec::new(),
            Err(err) => return Err(err),
        };
        pairs.push((j as u32, 0u32));
        found += usize::from(hits.iter().any(|h| h.id == e.item));
        // Relabel: the held-out item is 0, anything else 1.
        ranked.push(
            hits.iter()
                .take(10)
                .map(|h| u32::from(h.id != e.item))
                .collect::<Vec<u32>>(),
        );
    }
    let m: Metrics = hr_ndcg_at_k(&pairs, &ranked, 10)?;
    Ok(Scored {
        hr: m.hr,
        ndcg: m.ndcg,
        recall: found as f64 / test.len().max(1) as f64,
        n: m.n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rerank(params: Params) -> super::super::Rerank {
        super::super::Rerank {
            model: "wide-deep".into(),
            candidates: 200,
            params,
        }
    }

    fn get(p: &Params, key: &str) -> Option<String> {
        p.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_owned())
    }

    #[test]
    fn the_validation_split_drops_each_users_last_event_once() {
        let raw = RawEvent {
            user: "u".into(),
            item: "i".into(),
            kind: crate::event::EventKind::default(),
            value: 1.0,
            timestamp: 0,
            group: None,
        };
        let keyed = [
            ((0, 5, 1.0, 10), &raw),
            ((0, 9, 1.0, 30), &raw),
            ((0, 3, 1.0, 30), &raw),
            ((1, 1, 1.0, 7), &raw),
            ((2, 4, 1.0, 1), &raw),
            ((2, 4, 1.0, 1), &raw),
        ];
        let kept: Vec<EvalEvent> = without_last_events(&keyed)
            .iter()
            .map(|(k, _)| *k)
            .collect();
        // User 0's last is item 9 (same time as 3, higher id); a duplicate goes once.
        assert_eq!(kept, vec![(0, 5, 1.0, 10), (0, 3, 1.0, 30), (2, 4, 1.0, 1)]);
        let (_, test) = next_split(&kept);
        assert_eq!(test, vec![(0, 3), (2, 4)]);
    }

    #[test]
    fn two_stage_eval_ranker_defaults() {
        // A youtube generator: clean labels from the last 20 events, list inputs.
        let p = ranker_params(&rerank(Params::new()), "youtube", true);
        assert_eq!(get(&p, "labels").as_deref(), Some("next"));
        assert_eq!(get(&p, "candidates").as_deref(), Some("youtube:200"));
        assert_eq!(get(&p, "last"), Some(EVAL_LAST.to_string()));
        assert_eq!(get(&p, "list_inputs").as_deref(), Some("on"));
        assert_eq!(get(&p, "recent"), Some(EVAL_RECENT.to_string()));
        assert_eq!(get(&p, "history").as_deref(), Some("youtube.inputs"));
        assert_eq!(get(&p, "loss").as_deref(), Some("list"));
        assert_eq!(get(&p, "negatives"), Some(EVAL_LIST_NEGATIVES.to_string()));
        assert_eq!(get(&p, "ensemble"), Some(EVAL_ENSEMBLE.to_string()));
        // The logistic loss asked for: the job's own negatives.
        let p = ranker_params(
            &rerank(Params::new().set("loss", "logistic")),
            "youtube",
            true,
        );
        assert_eq!(get(&p, "negatives"), None);
        // Set by the user: kept.
        let p = ranker_params(
            &rerank(Params::new().set("last", 0).set("list_inputs", "off")),
            "youtube",
            true,
        );
        assert_eq!(get(&p, "last").as_deref(), Some("0"));
        assert_eq!(get(&p, "list_inputs").as_deref(), Some("off"));
        // Another generator: the lists from the whole history, as before.
        let p = ranker_params(&rerank(Params::new()), "ease", false);
        assert_eq!(get(&p, "last"), None);
        assert_eq!(get(&p, "list_inputs"), None);
        assert_eq!(get(&p, "recent"), None);
        assert_eq!(get(&p, "history"), None);
        assert_eq!(get(&p, "ensemble"), None);
        // Other labels: nothing added.
        let p = ranker_params(
            &rerank(Params::new().set("labels", "rating")),
            "youtube",
            true,
        );
        assert_eq!(get(&p, "last"), None);
    }
}
