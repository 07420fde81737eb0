//! Shared helpers for the integration tests: small deterministic data sets.
#![allow(dead_code)]

pub mod cli;
pub mod fs;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use recdb::{Db, EventKind, ItemRecord, Params, TrainOptions};

pub const GENRES: [&str; 4] = ["Action", "Comedy", "Drama", "Horror"];

pub fn user(u: usize) -> String {
    format!("u{u}")
}

pub fn item(i: usize) -> String {
    format!("i{i}")
}

/// Users with a taste for one of four item groups (`i % 4`); every user sees
/// `per_user` distinct items, mostly from their group. Returns the events committed,
/// as (user, item) pairs.
pub fn load_synthetic(
    db: &Db,
    users: usize,
    items: usize,
    per_user: usize,
    seed: u64,
) -> Vec<(usize, usize)> {
    assert!(items >= 8 && per_user < items / 4);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut batch = db.batch();
    for u in 0..users {
        let taste = u % 4;
        let mut seen = std::collections::HashSet::new();
        while seen.len() < per_user {
            let i = if rng.random_bool(0.85) {
                // an item of the user's group, skewed to popular ones
                let r: f64 = rng.random();
                let idx = ((r * r) * (items / 4) as f64) as usize;
                (idx * 4 + taste).min(items - 1)
            } else {
                rng.random_range(0..items)
            };
            if seen.insert(i) {
                let ts = (u * 1000 + seen.len()) as i64;
                batch
                    .push(&user(u), &item(i), EventKind::Interaction, 1.0, ts)
                    .unwrap();
                out.push((u, i));
            }
        }
    }
    batch.commit().unwrap();
    out
}

/// Item records with one genre per item (`GENRES[i % 4]`) and titles.
pub fn put_genres(db: &Db, items: usize) {
    let recs: Vec<ItemRecord> = (0..items)
        .map(|i| ItemRecord {
            id: item(i),
            title: Some(format!("Title {i}")),
            genres: vec![GENRES[i % 4].to_string()],
            ..Default::default()
        })
        .collect();
    db.put_items(&recs).unwrap();
}

/// 400 users of 4 taste groups over 80 items with genres: the serving tests' database.
pub fn grouped_db() -> Db {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 400, 80, 12, 7);
    put_genres(&db, 80);
    db
}

/// The ids of `hits`, in order.
pub fn ids(hits: &[recdb::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.id.clone()).collect()
}

/// The items `user` has any event with.
pub fn seen_items(db: &Db, user: &str) -> std::collections::HashSet<String> {
    db.history(user)
        .unwrap()
        .into_iter()
        .map(|e| e.item)
        .collect()
}

pub fn als_params() -> Params {
    Params::new().set("factors", 8).set("iterations", 4)
}

pub fn train_als(db: &Db, seed: u64) {
    let opts = TrainOptions {
        seed,
        threads: None,
        ..Default::default()
    };
    let info = db.train("als", &als_params(), &opts).unwrap();
    assert_eq!(info.state, recdb::JobState::Done);
}

/// All rows of a table, copied.
pub fn table_rows(db: &Db, name: &str) -> (u64, Vec<Vec<f32>>) {
    let t = db.table(name).unwrap();
    (
        t.version(),
        (0..t.rows()).map(|r| t.row(r).to_vec()).collect(),
    )
}

/// Kills the child when dropped, so a failing test never leaves one behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
