//! Serving a `wide-deep` ranker: the probability of a (user, item) pair, and a list of
//! items scored and sorted for one user. The inputs are built as training built them
//! (`train::wide_deep::inputs`), from the attributes the database holds now: a user or
//! item whose attributes changed since training is scored with the new ones (values
//! the encoders never saw go to the unknown bucket); one added since training has no
//! id embedding of its own (the unknown row) but its attributes count.
//!
//! Input tables (`features=als.items`) are read at their current version, which must be
//! the version the ranker trained on: a republished table's vectors live in another
//! space, so scoring with them would be silently wrong. Such a query fails naming the
//! table; retraining the ranker fixes it. So is the `history=` table, whose cosines
//! compare a candidate with the user's latest logged items (as training compared it
//! with the items before each example's event).

use std::sync::Arc;

use super::parsed::parsed;
use super::{Hit, Queries, Source};
use crate::storage::tables::TableView;
use crate::train::nn::activation::sigmoid;
use crate::train::wide_deep::deep::{forward_mean, Acts, Net};
use crate::train::wide_deep::examples::{list_place, Example};
use crate::train::wide_deep::inputs::{Batch, InputTable, Recent, Spec, TableRows, HISTORY_INPUTS};
use crate::train::wide_deep::stored;
use crate::{Error, Result};

/// A parsed ranker: one network, or an ensemble whose logit is the mean of theirs.
pub(crate) struct Ranker {
    pub nets: Vec<Net>,
    pub spec: Spec,
}

fn table_name(model: &str) -> String {
    format!("{model}.{}", stored::SUFFIX)
}

/// Does `model` answer as a wide-deep ranker (it published `<model>.ranker`)?
pub(crate) fn is_wide_deep<S: Source + ?Sized>(db: &S, model: &str) -> bool {
    db.table(&table_name(model)).is_ok()
}

/// The ranker (parsed once per published version), its input tables' views and its
/// history table's.
fn load<S: Source + ?Sized>(
    db: &S,
    model: &str,
) -> Result<(Arc<Ranker>, TableRows, Option<Arc<TableView>>)> {
    let name = table_name(model);
    let views = db.tables_consistent(&[&name])?;
    let ranker = parsed(db, &views, || {
        let (nets, spec) = stored::read(&views[0])?;
        Ok(Ranker { nets, spec })
    })?;
    let current = |t: &InputTable| -> Result<Arc<TableView>> {
        let view = db.table(&t.name)?;
        if view.version() != t.version || view.dim() != t.dim {
            return Err(Error::InvalidInput(format!(
                "`{}` was republished after `{model}` trained on it: retrain `{model}`",
                t.name
            )));
        }
        Ok(view)
    };
    let inputs = ranker
        .spec
        .tables
        .iter()
        .map(current)
        .collect::<Result<Vec<_>>>()?;
    let history = match &ranker.spec.history {
        Some(h) => Some(current(&h.table)?),
        None => None,
    };
    let rows = TableRows::new(&ranker.spec.tables, inputs);
    Ok((ranker, rows, history))
}

/// The probabilities (not logits) that `user` clicks each of `items` (dense ids, in
/// order), with `candidate_scores` (one per item) as the extra dense input a ranker
/// trained on a candidate generator's scores reads; `None` feeds 0.
pub(crate) fn score<S: Source + ?Sized>(
    db: &S,
    model: &str,
    user: u32,
    items: &[u32],
    candidate_scores: Option<&[f32]>,
) -> Result<Vec<f32>> {
    if let Some(s) = candidate_scores {
        if s.len() != items.len() {
            return Err(Error::DimensionMismatch {
                expected: items.len(),
                got: s.len(),
            });
        }
    }
    let (ranker, rows, history) = load(db, model)?;
    let (nets, spec) = (&ranker.nets, &ranker.spec);
    let Some(net) = nets.first() else {
        return Err(Error::corrupted(format!("`{model}` holds no network")));
    };
    // The user's latest items, as many as an input reads: the history cosines skip items
    // without a row until they have `len` (as training does), so they may read them all.
    let want = if spec.history.is_some() {
        usize::MAX
    } else {
        spec.recent
    };
    let latest: Vec<u32> = if want > 0 {
        let h = db.history_dense(user)?;
        h.iter().rev().map(|e| e.item).take(want).collect()
    } else {
        Vec::new()
    };
    let recent = match (&history, &spec.history) {
        (Some(view), Some(h)) => Some((view, Recent::new(view, latest.iter().copied(), h.len))),
        _ => None,
    };
    // The recent items' field (an item newer than the network reads its unknown row).
    let recent_field = &latest[..latest.len().min(spec.recent)];
    // A dense id the network has no row for reads as unknown.
    let known = |id: u32, rows: usize| ((id as usize) + 1 < rows).then_some(id);
    let user_rows = net.shape.vocab[0];
    let item_rows = net.shape.vocab[1];
    let u = spec.user_side(known(user, user_rows), &db.user_attrs_dense(user)?);
    // In blocks: a caller's list of any length costs one block's activations at a time,
    // and the user's side and latest items are read once.
    let mut out = Vec::with_capacity(items.len());
    let mut batch = Batch::default();
    let mut acts = Acts::default();
    for (b, block) in items.chunks(RANK_BLOCK).enumerate() {
        batch.clear();
        for (j, &item) in block.iter().enumerate() {
            let k = b * RANK_BLOCK + j;
            let i = spec.item_side(known(item, item_rows), &db.item_attrs_dense(item)?);
            let e = Example {
                user,
                item,
                label: 0.0,
                weight: 1.0,
                score: candidate_scores.map_or(0.0, |s| s[k]),
                // The candidates come best first: the top is the first, k the rank.
                list: candidate_scores.map_or([0.0; 2], |s| list_place(s[k], s[0], k)),
                history: recent
                    .as_ref()
                    .map_or([0.0; HISTORY_INPUTS], |(v, r)| r.inputs(v, item)),
                at: 0,
            };
            batch.push(spec, (&u, &i), &rows, &e, recent_field);
        }
        forward_mean(nets, &batch, &mut acts);
        out.extend(acts.logits.iter().map(|&z| sigmoid(z)));
    }
    Ok(out)
}

/// The probability that `user` clicks `item`.
pub(crate) fn predict<S: Queries + ?Sized>(
    db: &S,
    user: &str,
    item: &str,
    model: &str,
) -> Result<f32> {
    let (uid, iid) = (db.user_id(user)?, db.item_id(item)?);
    Ok(score(db, model, uid, &[iid], None)?
        .first()
        .copied()
        .unwrap_or(f32::NAN))
}

/// Items scored in one forward pass.
const RANK_BLOCK: usize = 4096;

/// `items` scored for `user`, best first (ties by the order given).
pub(crate) fn rank<S: Queries + ?Sized>(
    db: &S,
    user: &str,
    items: &[&str],
    model: &str,
) -> Result<Vec<Hit>> {
    let uid = db.user_id(user)?;
    let ids = items
        .iter()
        .map(|i| db.item_id(i))
        .collect::<Result<Vec<u32>>>()?;
    let scores = score(db, model, uid, &ids, None)?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .map(|k| {
            Ok(Hit {
                id: db.item_name(ids[k])?,
                score: scores[k],
            })
        })
        .collect()
}
