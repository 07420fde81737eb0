//! `recommend` and `similar` for the autoencoders (`mult-dae`, `mult-vae`): there is
//! no user table. The encoder runs on the user's history as the log holds it now, so
//! events logged after training count at once and a user who arrived after training
//! gets recommendations; the decoder's last layer is searched as a maximum inner
//! product. See docs/AUTOENCODERS.md.

use std::sync::Arc;

use super::parsed::parsed;
use super::{check_k, in_genre, search_for_users, seen_in, Queries, Source};
use crate::event::Event;
use crate::index::served::Served;
use crate::storage::tables::TableView;
use crate::train::autoencoder::data::positives;
use crate::train::autoencoder::net::encode_rest;
use crate::train::autoencoder::stored::StoredNet;
use crate::{Error, Hit, QueryOptions, Result};

/// Does `model` answer through an encoder (it published `<model>.enc`)?
pub(crate) fn is_autoencoder<S: Source + ?Sized>(db: &S, model: &str) -> bool {
    db.table(&format!("{model}.enc")).is_ok()
}

/// The network and the served item table, all from one publish. The network is parsed
/// by the first query of a published version and shared by the next ones.
pub(super) fn load<S: Source + ?Sized>(
    db: &S,
    model: &str,
) -> Result<(Arc<StoredNet>, Arc<TableView>, Served)> {
    let names = [
        format!("{model}.enc"),
        format!("{model}.net"),
        format!("{model}.items"),
    ];
    let v = db.tables_consistent(&[&names[0], &names[1], &names[2]])?;
    let net = parsed(db, &v, || StoredNet::read(&v[1], &v[0], &v[2]))?;
    let items = db.served(v[2].clone())?;
    Ok((net, v[0].clone(), items))
}

/// The query [h, 1] for a user's current `history`: the encoder on its positives (items
/// newer than the model are not inputs; no positive at all gives the encoder's answer
/// to an empty history).
pub(super) fn query(net: &StoredNet, enc: &TableView, history: &[Event]) -> Vec<f32> {
    let items = positives(history, net.positive_min, net.n_items);
    // The L2-normalised binary input: each positive weighs 1/√n.
    let x = 1.0 / (items.len().max(1) as f32).sqrt();
    let mut h = net.first_b.clone();
    for &i in &items {
        for (h, w) in h.iter_mut().zip(enc.row(i as usize).iter()) {
            *h += x * w;
        }
    }
    net.first_act.forward(&mut h);
    let mut q = encode_rest(h, 1, net.split, &net.mid);
    q.push(1.0);
    q
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

/// Every user's list (in order), the queries searched as one batch.
pub(crate) fn recommend_batch<S: Queries + ?Sized>(
    db: &S,
    users: &[&str],
    opts: &QueryOptions,
) -> Result<Vec<Vec<Hit>>> {
    check_k(opts.k)?;
    let (net, enc, items) = load(db, &opts.model)?;
    let mut queries = Vec::with_capacity(users.len());
    let mut seen = Vec::with_capacity(users.len());
    for user in users {
        let history = db.history_dense(db.user_id(user)?)?;
        queries.push(query(&net, &enc, &history));
        seen.push(seen_in(&history, opts.include_seen));
    }
    search_for_users(db, &items, &queries, &seen, opts)
}

/// Items most similar to `item` by cosine over the decoder's item vectors, the bias
/// column left out: the bias is the item's popularity in the softmax, not a direction,
/// and being one large coordinate it would pull popular items together. An exact scan
/// (the index ranks with the bias in), vectorised per row.
pub(crate) fn similar<S: Queries + ?Sized>(
    db: &S,
    item: &str,
    opts: &QueryOptions,
) -> Result<Vec<Hit>> {
    check_k(opts.k)?;
    let iid = db.item_id(item)?;
    // Only the item vectors: the network is not parsed.
    let view = db.table(&format!("{}.items", opts.model))?;
    let d = view.dim().saturating_sub(1);
    if iid as usize >= view.rows() {
        return Err(Error::NotInModel {
            kind: "item",
            id: item.to_owned(),
            model: opts.model.clone(),
        });
    }
    let row = view.row(iid as usize);
    let mut q: Vec<f32> = row.iter().take(d).collect();
    let qn = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    if qn == 0.0 {
        return Err(Error::ZeroVector(format!(
            "item `{item}` in table `{}`",
            view.name()
        )));
    }
    q.push(0.0);
    let genre = db.allowed_genre(&opts.genre)?;
    let mut hits: Vec<(u32, f32)> = (0..view.rows())
        .map_while(|r| u32::try_from(r).ok())
        .filter(|&r| r != iid && in_genre(&genre, r))
        .filter_map(|r| {
            let row = view.row(r as usize);
            let bias = row.get(d);
            let n = (row.norm().powi(2) - bias * bias).max(0.0).sqrt();
            (n > 0.0).then(|| (r, row.dot(&q) / (n * qn)))
        })
        .collect();
    hits.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits.truncate(opts.k);
    db.to_hits(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, EventKind, Params, TrainOptions};

    /// 120 users, 40 items in four taste groups (`i % 4`), 8 items each.
    fn db() -> Db {
        let db = Db::temporary().unwrap();
        let mut b = db.batch();
        for u in 0..120usize {
            for n in 0..8usize {
                let i = (u % 4) + 4 * ((u * 7 + n * 3) % 10);
                b.push(
                    &format!("u{u}"),
                    &format!("i{i}"),
                    EventKind::Interaction,
                    1.0,
                    n as i64,
                )
                .unwrap();
            }
        }
        b.commit().unwrap();
        db
    }

    fn train(db: &Db, model: &str, seed: u64) {
        let p = Params::new()
            .set("hidden", if model == "mult-vae" { "16,4" } else { "16" })
            .set("epochs", 2)
            .set("batch", 40);
        let o = TrainOptions {
            seed,
            threads: Some(1),
            ..Default::default()
        };
        db.train(model, &p, &o).unwrap();
    }

    fn opts(model: &str) -> QueryOptions {
        QueryOptions {
            model: model.to_owned(),
            k: 5,
            ..Default::default()
        }
    }

    #[test]
    fn the_network_is_parsed_once_per_published_version() {
        let db = db();
        train(&db, "mult-vae", 1);
        train(&db, "mult-dae", 1);
        let cache = &db.inner.parsed;
        let first = recommend(&db, "u1", &opts("mult-vae")).unwrap();
        assert_eq!(cache.parses(), 1);
        let (a, ..) = load(&db, "mult-vae").unwrap();
        let (b, ..) = load(&db, "mult-vae").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(recommend(&db, "u1", &opts("mult-vae")).unwrap(), first);
        recommend_batch(&db, &["u2", "u3"], &opts("mult-vae")).unwrap();
        assert_eq!(cache.parses(), 1);

        // Another model has its own entry.
        let (d, ..) = load(&db, "mult-dae").unwrap();
        assert_eq!(cache.parses(), 2);
        assert_eq!(cache.len(), 2);
        assert!(!Arc::ptr_eq(&a, &d));

        // A retrain publishes new versions: the next query parses them, the reader that
        // holds the old network keeps it.
        train(&db, "mult-vae", 2);
        let (c, ..) = load(&db, "mult-vae").unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(cache.parses(), 3);
        assert!(!a.first_b.is_empty());
        let (again, ..) = load(&db, "mult-vae").unwrap();
        assert!(Arc::ptr_eq(&c, &again));
        assert_eq!(cache.parses(), 3);

        // Dropping one of its tables frees the entry.
        db.drop_table("mult-vae.net").unwrap();
        assert_eq!(cache.len(), 1);
        assert!(recommend(&db, "u1", &opts("mult-vae")).is_err());
        assert_eq!(cache.len(), 1);
    }
}
