//! `recommend` and `similar` for the `youtube` candidate generator: there is no user
//! table. The tower runs on the user's inputs as the log holds them now (recent items,
//! searches, attributes), so an event or a search logged after training counts at
//! once, and a user with attributes but no history gets an answer; `[u, 1]` is searched
//! over `<model>.items` as a maximum inner product. See docs/YOUTUBE.md.

use std::sync::Arc;

use super::parsed::parsed;
use super::{check_k, search_for_users_dense, seen_in, Queries, Source};
use crate::event::{Event, SearchEvent};
use crate::features::Encoded;
use crate::index::served::Served;
use crate::storage::tables::TableView;
use crate::train::youtube::net::{Inputs, Tower};
use crate::train::youtube::stored;
use crate::{Hit, QueryOptions, Result};

/// Does `model` answer through a youtube tower (it published `<model>.tower`)?
pub(crate) fn is_youtube<S: Source + ?Sized>(db: &S, model: &str) -> bool {
    db.table(&format!("{model}.tower")).is_ok()
}

/// The tower (parsed once per published version), the input embeddings and the served
/// item table, all from one publish.
fn load<S: Source + ?Sized>(db: &S, model: &str) -> Result<(Arc<Tower>, Arc<TableView>, Served)> {
    let names = [
        format!("{model}.tower"),
        format!("{model}.inputs"),
        format!("{model}.items"),
    ];
    let v = db.tables_consistent(&[&names[0], &names[1], &names[2]])?;
    let tower = parsed(db, &v, || stored::read(&v[0], &v[1], &v[2]))?;
    let items = db.served(v[2].clone())?;
    Ok((tower, v[1].clone(), items))
}

/// Append `user`'s current inputs to `inp`; returns the items the user has seen.
fn push_user<S: Queries + ?Sized>(
    db: &S,
    tower: &Tower,
    inp: &mut Inputs,
    user: &str,
    include_seen: bool,
) -> Result<Vec<u32>> {
    let uid = db.user_id(user)?;
    let history = db.history_dense(uid)?;
    let searches: Vec<SearchEvent> = db.searches_dense(uid)?;
    let attrs = db.user_attrs_dense(uid)?;
    let n = tower.shape.history;
    let items: Vec<u32> = history.iter().map(|e| e.item).collect();
    let tokens: Vec<&[u32]> = searches[searches.len().saturating_sub(n)..]
        .iter()
        .map(|s| &s.tokens[..])
        .collect();
    let features = tower.encoder.encode(&attrs);
    let age = tower.serve_age(history.iter().map(|e| e.timestamp).max());
    tower.push(inp, &items, &tokens, &features, age);
    Ok(seen_in(&history, include_seen))
}

/// Per user: the query `[u, 1]` and the items seen.
type QueriesAndSeen = (Vec<Vec<f32>>, Vec<Vec<u32>>);

/// The user vectors `[u, 1]` of `users` (one tower pass for all) and their seen items.
fn queries<S: Queries + ?Sized>(
    db: &S,
    tower: &Tower,
    inputs: &TableView,
    users: &[&str],
    include_seen: bool,
) -> Result<QueriesAndSeen> {
    let mut inp = Inputs::default();
    let mut seen = Vec::with_capacity(users.len());
    for user in users {
        seen.push(push_user(db, tower, &mut inp, user, include_seen)?);
    }
    let u = tower.user_vectors(&inp, |i, a, out| {
        for (x, e) in out.iter_mut().zip(inputs.row(i as usize).iter()) {
            *x += a * e;
        }
    });
    let d = tower.shape.out_dim();
    let qs = u
        .chunks(d.max(1))
        .map(|u| {
            let mut q = u.to_vec();
            q.push(1.0);
            q
        })
        .collect();
    Ok((qs, seen))
}

pub(crate) fn recommend<S: Queries + ?Sized>(
    db: &S,
    user: &str,
    opts: &QueryOptions,
) -> Result<Vec<Hit>> {
    Ok(recommend_batch(db, &[user], opts)?
        .pop()
        .unwrap_or_default())
}

/// Every user's list (in order): the tower runs once on the batch (one product per
/// layer), the queries are searched as one batch.
pub(crate) fn recommend_batch<S: Queries + ?Sized>(
    db: &S,
    users: &[&str],
    opts: &QueryOptions,
) -> Result<Vec<Vec<Hit>>> {
    recommend_batch_dense(db, users, opts)?
        .into_iter()
        .map(|h| db.to_hits(h))
        .collect()
}

/// [`recommend_batch`] with dense item ids (a second stage names only its top k).
pub(crate) fn recommend_batch_dense<S: Queries + ?Sized>(
    db: &S,
    users: &[&str],
    opts: &QueryOptions,
) -> Result<Vec<Vec<(u32, f32)>>> {
    check_k(opts.k)?;
    let (tower, inputs, items) = load(db, &opts.model)?;
    let (queries, seen) = queries(db, &tower, &inputs, users, opts.include_seen)?;
    search_for_users_dense(db, &items, &queries, &seen, opts)
}

/// A past query of a user: the history before one of its events, and that event's
/// sequence number (the searches made before it count).
pub(crate) struct Prefix<'a> {
    pub user: u32,
    /// Oldest first.
    pub history: &'a [Event],
    pub before_seq: u64,
}

/// Each prefix's top `k` (dense ids) as the tower would have served it then: its inputs built from
/// the prefix's history and the searches made before it (the user's attributes as they
/// are now), the prefix's items left out as serving leaves out the seen ones. One tower
/// pass and one batch search for all. What a ranker learns next-item labels from
/// (`wide-deep`'s `labels=next` with `last=L`).
pub(crate) fn recommend_prefixes<S: Queries + ?Sized>(
    db: &S,
    model: &str,
    prefixes: &[Prefix<'_>],
    k: usize,
) -> Result<Vec<Vec<(u32, f32)>>> {
    check_k(k)?;
    if prefixes.is_empty() {
        return Ok(Vec::new());
    }
    let (tower, inputs, items) = load(db, model)?;
    let mut inp = Inputs::default();
    let mut seen = Vec::with_capacity(prefixes.len());
    // The user's searches and encoded attributes, read once per run of the user's
    // prefixes.
    type UserReads = (u32, Vec<SearchEvent>, Encoded);
    let mut cached: Option<UserReads> = None;
    for p in prefixes {
        if cached.as_ref().is_none_or(|c| c.0 != p.user) {
            let attrs = db.user_attrs_dense(p.user)?;
            cached = Some((
                p.user,
                db.searches_dense(p.user)?,
                tower.encoder.encode(&attrs),
            ));
        }
        let Some((_, searches, features)) = cached.as_ref() else {
            continue;
        };
        let n = tower.shape.history;
        let before: Vec<&SearchEvent> = searches.iter().filter(|s| s.seq < p.before_seq).collect();
        let tokens: Vec<&[u32]> = before[before.len().saturating_sub(n)..]
            .iter()
            .map(|s| &s.tokens[..])
            .collect();
        let hist: Vec<u32> = p.history.iter().map(|e| e.item).collect();
        let age = tower.serve_age(p.history.iter().map(|e| e.timestamp).max());
        tower.push(&mut inp, &hist, &tokens, features, age);
        seen.push(seen_in(p.history, false));
    }
    let u = tower.user_vectors(&inp, |i, a, out| {
        for (x, e) in out.iter_mut().zip(inputs.row(i as usize).iter()) {
            *x += a * e;
        }
    });
    let d = tower.shape.out_dim();
    let queries: Vec<Vec<f32>> = u
        .chunks(d.max(1))
        .map(|u| {
            let mut q = u.to_vec();
            q.push(1.0);
            q
        })
        .collect();
    search_for_users_dense(
        db,
        &items,
        &queries,
        &seen,
        &QueryOptions::model(model).k(k),
    )
}

/// Items most similar to `item` by cosine over the output item vectors, the bias left
/// out (it is the item's popularity, not a direction). An exact scan.
pub(crate) fn similar<S: Queries + ?Sized>(
    db: &S,
    item: &str,
    opts: &QueryOptions,
) -> Result<Vec<Hit>> {
    // The same layout as an autoencoder's items: D columns, then the bias.
    super::autoencoder::similar(db, item, opts)
}
