//! The NEXT protocol: leave the last event of each user out, recommend 10 items from
//! the rest, report HR@10 and NDCG@10, with the `popular` baseline on the same split.

use std::collections::{BTreeMap, HashSet};
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
    let m = hr_ndcg(&db, &opts.model, &test_raw, &trained)?;
    let metrics = BTreeMap::from([
        ("hr@10".to_string(), m.hr.unwrap_or(0.0)),
        ("ndcg@10".to_string(), m.ndcg.unwrap_or(0.0)),
    ]);
    let mut baseline = None;
    if opts.model != "popular" {
        db.train("popular", &Params::new(), &train_opts)?;
        let b = hr_ndcg(&db, "popular", &test_raw, &trained)?;
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
        params: info.params,
        validation: None,
        heldout_users: None,
    })
}

// why: j indexes the held-out test list, far fewer than u32::MAX entries.
#[allow(clippy::cast_possible_truncation)]
fn hr_ndcg(db: &Db, model: &str, test: &[RawEvent], trained: &HashSet<&str>) -> Result<Metrics> {
    let opts = QueryOptions::model(model).k(10);
    let mut pairs = Vec::with_capacity(test.len());
    let mut ranked = Vec::with_capacity(test.len());
    for (j, e) in test.iter().enumerate() {
        // A test user with no training events cannot be ranked for: a miss.
        let hits = match db.recommend(&e.user, &opts) {
            Ok(h) => h,
            Err(Error::UnknownUser(_)) => Vec::new(),
            // Known from the `.user` file alone: a model that reads demographics answers
            // them; one that needs a history cannot, and that is a miss too.
            Err(_) if !trained.contains(e.user.as_str()) => Vec::new(),
            Err(err) => return Err(err),
        };
        pairs.push((j as u32, 0u32));
        // Relabel: the held-out item is 0, anything else 1.
        ranked.push(
            hits.iter()
                .map(|h| u32::from(h.id != e.item))
                .collect::<Vec<u32>>(),
        );
    }
    hr_ndcg_at_k(&pairs, &ranked, 10)
}
