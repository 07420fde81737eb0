//! `recommend` for item-to-item models (EASE): no user table; the user's *current*
//! history in the log is folded through the item-item weights at query time, so events
//! logged after training count at once and a user who arrived after training gets
//! recommendations.
//!
//! A model is item-to-item when it published `<model>.item_item` (one row,
//! `positive_min`: which events count as positive, as in training) next to
//! `<model>.items`, a square table whose row j holds the weights into item j. User u's
//! score for item j is Xᵤ·B[:, j] = Σ over u's positive items i of row j's entry i: a
//! sparse row times the matrix, exact (no index is involved).

use super::{check_k, in_genre, seen_in, Queries, Source};
use crate::event::Event;
use crate::index::served::Served;
use crate::train::ease::{MARKER, POSITIVE_MIN};
use crate::{Error, Hit, QueryOptions, Result};

/// Does `model` answer `recommend` through item-item weights (it published the marker)?
pub(crate) fn is_item_item_model<S: Source + ?Sized>(db: &S, model: &str) -> bool {
    db.table(&format!("{model}.{MARKER}")).is_ok()
}

/// A model's weights and positive threshold, from one publish.
pub(super) struct ItemItem {
    weights: Served,
    positive_min: f32,
}

pub(super) fn load<S: Queries + ?Sized>(db: &S, model: &str) -> Result<ItemItem> {
    let (items, marker) = (format!("{model}.items"), format!("{model}.{MARKER}"));
    let mut v = db.tables_consistent(&[&items, &marker])?;
    let marker = v.pop().expect("two tables");
    let items = v.pop().expect("two tables");
    let positive_min = marker
        .row_of_id(POSITIVE_MIN)
        .filter(|_| marker.dim() == 1)
        .map(|r| marker.row(r as usize).get(0))
        .ok_or_else(|| {
            Error::corrupted(format!(
                "table `{}` (no `{POSITIVE_MIN}` row)",
                marker.name()
            ))
        })?;
    if items.dim() != items.rows() {
        return Err(Error::DimensionMismatch {
            expected: items.rows(),
            got: items.dim(),
        });
    }
    Ok(ItemItem {
        weights: db.served(items)?,
        positive_min,
    })
}

impl ItemItem {
    /// Items the weights cover.
    pub(super) fn rows(&self) -> usize {
        self.weights.rows()
    }

    /// Every item's score for a user with `history`, or `None` when none of the user's
    /// positive items is in the model (items newer than the model have no weights).
    pub(super) fn scores(&self, history: &[Event]) -> Option<Vec<f32>> {
        let view = self.weights.view();
        let n = view.rows();
        let mut pos: Vec<usize> = history
            .iter()
            .filter(|e| e.value >= self.positive_min && (e.item as usize) < n)
            .map(|e| e.item as usize)
            .collect();
        pos.sort_unstable();
        pos.dedup();
        if pos.is_empty() {
            return None;
        }
        let mut scores = vec![0f32; n];
        for (j, s) in scores.iter_mut().enumerate() {
            *s = match &self.weights.delta {
                // Rows put or deleted since publish (rare for this table): as served.
                Some(_) => self
                    .weights
                    .row(j)
                    .map_or(f32::NEG_INFINITY, |r| pos.iter().map(|&i| r[i]).sum()),
                None => {
                    let r = view.row(j);
                    pos.iter().map(|&i| r.get(i)).sum()
                }
            };
        }
        Some(scores)
    }
}

/// The `k` best items by score among those `allow` accepts, best first (ties by id).
pub(super) fn top_k(scores: &[f32], k: usize, allow: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
    // why: a table has at most u32::MAX rows.
    #[allow(clippy::cast_possible_truncation)]
    let mut hits: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .map(|(j, &s)| (j as u32, s))
        .filter(|&(j, s)| s.is_finite() && allow(j))
        .collect();
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if hits.len() > k {
        hits.select_nth_unstable_by(k - 1, order);
        hits.truncate(k);
    }
    hits.sort_unstable_by(order);
    hits
}

/// `recommend` for an item-to-item model, for each of `users` (answers in order); the
/// weights are read once, from one publish.
pub(crate) fn recommend_item_item<S: Queries + ?Sized>(
    db: &S,
    users: &[&str],
    opts: &QueryOptions,
) -> Result<Vec<Vec<Hit>>> {
    check_k(opts.k)?;
    let model = load(db, &opts.model)?;
    let genre = db.allowed_genre(&opts.genre)?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let uid = db.user_id(user)?;
        let history = db.history_dense(uid)?;
        let Some(scores) = model.scores(&history) else {
            return Err(Error::ZeroVector(format!(
                "user `{user}`: none of their events counts as positive (value >= {}) for an item model `{}` was trained on",
                model.positive_min, opts.model
            )));
        };
        let seen = seen_in(&history, opts.include_seen);
        let allow = |r: u32| seen.binary_search(&r).is_err() && in_genre(&genre, r);
        out.push(db.to_hits(top_k(&scores, opts.k, allow))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_is_best_first_ties_by_id_and_filtered() {
        let s = [0.5, 2.0, 2.0, f32::NEG_INFINITY, 1.0, 3.0];
        assert_eq!(top_k(&s, 3, |_| true), vec![(5, 3.0), (1, 2.0), (2, 2.0)]);
        assert_eq!(top_k(&s, 2, |j| j != 5), vec![(1, 2.0), (2, 2.0)]);
        assert_eq!(top_k(&s, 10, |j| j % 2 == 0).len(), 3);
    }
}
