//! `recommend` for a blend: every component scores every item from the user's current
//! history, each score vector is normalised per user, and the weighted sum is ranked.
//! The components are read when the query runs, so retraining one changes the blend.
//!
//! All models number items by the database's dense item ids, so the components share
//! the item space up to the smallest component's item count: an item newer than some
//! component has no score there and is not ranked.

use std::sync::Arc;

use super::{autoencoder, check_k, in_genre, item_item, seen_in, Queries, Source};
use crate::event::Event;
use crate::index::served::Served;
use crate::storage::tables::TableView;
use crate::train::autoencoder::stored::StoredNet;
use crate::train::blend::{Norm, MARKER, MODEL, NORM_ROW};
use crate::{Error, Hit, QueryOptions, Result};

/// Does `model` answer as a blend (it published the marker)?
pub(crate) fn is_blend<S: Source + ?Sized>(db: &S, model: &str) -> bool {
    db.table(&format!("{model}.{MARKER}")).is_ok()
}

/// Refuse `name` as a blend component unless it is a trained model that can score every
/// item from a user's history; the error names the component.
pub(crate) fn check_component<S: Queries + ?Sized>(db: &S, name: &str) -> Result<()> {
    if is_blend(db, name) {
        return Err(Error::param(
            "models",
            format!("`{name}` is a blend; a blend cannot contain a blend"),
        ));
    }
    Component::load(db, name).map(|_| ()).map_err(|e| {
        Error::param(
            "models",
            format!("component `{name}` is not a trained model that scores items ({e})"),
        )
    })
}

/// One component's published tables, from one publish.
enum Component {
    ItemItem(item_item::ItemItem),
    Autoencoder(Arc<StoredNet>, Arc<TableView>, Served),
    Factors(Served, Served),
}

impl Component {
    fn load<S: Queries + ?Sized>(db: &S, model: &str) -> Result<Component> {
        if model == MODEL || is_blend(db, model) {
            return Err(Error::param("models", "a blend cannot contain a blend"));
        }
        if item_item::is_item_item_model(db, model) {
            return Ok(Component::ItemItem(item_item::load(db, model)?));
        }
        if autoencoder::is_autoencoder(db, model) {
            let (net, enc, items) = autoencoder::load(db, model)?;
            return Ok(Component::Autoencoder(net, enc, items));
        }
        let (users, items) = db.factor_tables(model)?;
        Ok(Component::Factors(users, items))
    }

    fn items(&self) -> usize {
        match self {
            Component::ItemItem(m) => m.rows(),
            Component::Autoencoder(_, _, items) | Component::Factors(_, items) => items.rows(),
        }
    }

    /// Every item's score for `user` (dense id `uid`, current `history`), or `None` when
    /// the component has nothing to say about the user (no positive it knows; no factor
    /// row).
    fn scores<S: Queries + ?Sized>(
        &self,
        db: &S,
        user: &str,
        (uid, history): (u32, &[Event]),
        model: &str,
    ) -> Result<Option<Vec<f32>>> {
        Ok(match self {
            Component::ItemItem(m) => m.scores(history),
            Component::Autoencoder(net, enc, items) => {
                Some(dot_all(items, &autoencoder::query(net, enc, history), 0.0))
            }
            Component::Factors(users, items) => {
                if uid as usize >= users.rows() {
                    None
                } else {
                    let (_, q) = db.user_vector(users, user, model)?;
                    Some(dot_all(items, &q, items.view().offset()))
                }
            }
        })
    }
}

/// `q` · every served row, plus `offset`; a deleted row scores −∞ (never ranked).
fn dot_all(items: &Served, q: &[f32], offset: f32) -> Vec<f32> {
    let view = items.view();
    (0..items.rows())
        .map(|j| match &items.delta {
            Some(_) => items.row(j).map_or(f32::NEG_INFINITY, |r| {
                r.iter().zip(q).map(|(a, b)| a * b).sum::<f32>() + offset
            }),
            None => view.row(j).dot(q) + offset,
        })
        .collect()
}

/// Put one component's scores on a common scale, in place (see docs/BLEND.md). The sums
/// are in f64; the results are scores, stored back as f32 like every score.
#[allow(clippy::cast_possible_truncation)]
fn normalise(s: &mut [f32], norm: Norm) {
    let finite = || s.iter().copied().filter(|x| x.is_finite());
    match norm {
        Norm::ZScore => {
            let n = finite().count().max(1) as f64;
            let mean = finite().map(f64::from).sum::<f64>() / n;
            let var = finite().map(|x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
            // A constant vector carries no preference: it contributes zero.
            let sd = if var > 0.0 { var.sqrt() } else { f64::INFINITY };
            for x in s.iter_mut().filter(|x| x.is_finite()) {
                *x = ((f64::from(*x) - mean) / sd) as f32;
            }
        }
        Norm::LogSoftmax => {
            let max = finite().fold(f32::NEG_INFINITY, f32::max);
            let lse = f64::from(max)
                + finite()
                    .map(|x| (f64::from(x - max)).exp())
                    .sum::<f64>()
                    .ln();
            for x in s.iter_mut().filter(|x| x.is_finite()) {
                *x = (f64::from(*x) - lse) as f32;
            }
        }
        Norm::Rank => {
            // 1 for the best item down to 0 for the worst: only the order counts.
            let mut order: Vec<usize> = (0..s.len()).filter(|&j| s[j].is_finite()).collect();
            order.sort_unstable_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            let n = order.len().saturating_sub(1).max(1) as f32;
            for (r, &j) in order.iter().enumerate() {
                s[j] = 1.0 - r as f32 / n;
            }
        }
    }
}

/// `recommend` for a blend, for each of `users` (answers in order); the marker and every
/// component are read once.
pub(crate) fn recommend_blend<S: Queries + ?Sized>(
    db: &S,
    users: &[&str],
    opts: &QueryOptions,
) -> Result<Vec<Vec<Hit>>> {
    check_k(opts.k)?;
    let marker = db.table(&format!("{}.{MARKER}", opts.model))?;
    let mut norm = Norm::ZScore;
    let mut parts = Vec::new();
    for (r, id) in marker.row_ids().iter().enumerate() {
        let w = marker.row(r).get(0);
        if id == NORM_ROW {
            norm = Norm::from_code(w)?;
        } else {
            parts.push((Component::load(db, id)?, w, id.clone()));
        }
    }
    let n = parts.iter().map(|(c, _, _)| c.items()).min().unwrap_or(0);
    let genre = db.allowed_genre(&opts.genre)?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let uid = db.user_id(user)?;
        let history = db.history_dense(uid)?;
        let mut total = vec![0f32; n];
        let mut any = false;
        for (c, w, name) in &parts {
            let Some(mut s) = c.scores(db, user, (uid, &history), name)? else {
                continue;
            };
            any = true;
            s.truncate(n);
            normalise(&mut s, norm);
            for (t, x) in total.iter_mut().zip(&s) {
                *t += w * x;
            }
        }
        if !any {
            return Err(Error::ZeroVector(format!(
                "user `{user}`: no component of blend `{}` can score them",
                opts.model
            )));
        }
        let seen = seen_in(&history, opts.include_seen);
        let allow = |r: u32| seen.binary_search(&r).is_err() && in_genre(&genre, r);
        out.push(db.to_hits(item_item::top_k(&total, opts.k, allow))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisations_keep_the_order() {
        for norm in [Norm::ZScore, Norm::LogSoftmax, Norm::Rank] {
            let mut s = vec![3.0, -1.0, f32::NEG_INFINITY, 0.5];
            normalise(&mut s, norm);
            assert!(s[0] > s[3] && s[3] > s[1], "{norm:?} {s:?}");
            assert_eq!(s[2], f32::NEG_INFINITY);
        }
        let mut c = vec![2.0; 4];
        normalise(&mut c, Norm::ZScore);
        assert_eq!(c, vec![0.0; 4]);
    }
}
