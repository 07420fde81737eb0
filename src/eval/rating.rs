//! The RATING protocol: a fixed 80/20 split on the data set's own numeric ids, RMSE of
//! the predicted ratings (clipped to 1-5) on the held-out fifth.

use std::collections::BTreeMap;
use std::time::Instant;

use super::metrics::{rating_split, EvalEvent, Metrics};
use super::{train_db, train_inputs_first, train_options, Catalog, EvalOptions, Outcome};
use crate::{Error, ProgressSink, RawEvent, Result};

// why: the f64 mean is a rating, as f32 like every prediction.
#[allow(clippy::cast_possible_truncation)]
pub(super) fn run(
    opts: &EvalOptions,
    keyed: &[(EvalEvent, &RawEvent)],
    catalog: &Catalog,
    sink: &dyn ProgressSink,
) -> Result<Outcome> {
    let (train, test) = rating_split(keyed, |(k, _)| (k.0 as u64, k.1 as u64));
    let raw_train: Vec<RawEvent> = train.iter().map(|(_, e)| (*e).clone()).collect();
    let db = train_db(catalog, &raw_train, opts.threads)?;
    let params = train_inputs_first(&db, opts, sink)?;
    let t = Instant::now();
    let info = db.train_reporting(&opts.model, &params, &train_options(opts), sink)?;
    let train_seconds = t.elapsed().as_secs_f64();
    let mean =
        raw_train.iter().map(|e| e.value as f64).sum::<f64>() / raw_train.len().max(1) as f64;
    let mut pairs = Vec::with_capacity(test.len());
    for (_, e) in &test {
        // Users or items never seen in training get the global mean.
        let p = match db.predict(&e.user, &e.item, &opts.model) {
            Ok(p) => p,
            Err(Error::UnknownUser(_) | Error::UnknownItem(_)) => mean as f32,
            Err(err) => return Err(err),
        };
        // Clipped to the rating scale, as rating libraries do.
        pairs.push((p.clamp(1.0, 5.0), e.value));
    }
    let m = Metrics::from_rmse(&pairs)?;
    Ok(Outcome {
        metrics: BTreeMap::from([("rmse".to_string(), m.rmse.unwrap_or(f64::NAN))]),
        baseline: None,
        users: m.n as u64,
        train_seconds,
        params: info.params,
        validation: None,
        heldout_users: None,
    })
}
