//! mult-dae and mult-vae end to end on synthetic data: train, publish, recommend from
//! the user's current history (new events, new users), similar, cancel.

mod common;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::{item, load_synthetic, user};
use recdb::{Db, Error, EventKind, JobControl, Params, QueryOptions, TrainOptions};

fn opts(seed: u64) -> TrainOptions {
    TrainOptions {
        seed,
        threads: Some(1),
        ..Default::default()
    }
}

fn small() -> Params {
    Params::new()
        .set("hidden", "32")
        .set("epochs", 40)
        .set("batch", 100)
        .set("learning_rate", 0.005)
}

/// 400 users, 80 items in four taste groups (`i % 4`), 12 items each.
fn grouped_db() -> Db {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 400, 80, 12, 7);
    db
}

fn group_share(hits: &[recdb::Hit], group: usize) -> f64 {
    let same = hits
        .iter()
        .filter(|h| h.id[1..].parse::<usize>().unwrap() % 4 == group)
        .count();
    same as f64 / hits.len() as f64
}

fn log(db: &Db, u: &str, items: &[usize], ts: i64) {
    let mut b = db.batch();
    for (n, &i) in items.iter().enumerate() {
        b.push(u, &item(i), EventKind::Interaction, 1.0, ts + n as i64)
            .unwrap();
    }
    b.commit().unwrap();
}

#[test]
fn both_models_train_publish_and_recommend_unseen_items_of_the_users_taste() {
    let db = grouped_db();
    for model in ["mult-dae", "mult-vae"] {
        let p = if model == "mult-vae" {
            small().set("hidden", "32,8").set("anneal_steps", 100)
        } else {
            small()
        };
        db.train(model, &p, &opts(1)).unwrap();
        let names: Vec<String> = db.tables().unwrap().into_iter().map(|t| t.name).collect();
        for t in ["items", "enc", "net"] {
            assert!(names.contains(&format!("{model}.{t}")), "{names:?}");
        }
        let q = QueryOptions::model(model).k(10);
        let mut share = 0.0;
        for u in 0..20 {
            let seen: HashSet<String> = db
                .history(&user(u))
                .unwrap()
                .into_iter()
                .map(|e| e.item)
                .collect();
            let hits = db.recommend(&user(u), &q).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(
                hits.iter().all(|h| !seen.contains(&h.id)),
                "{model}: a seen item"
            );
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
            share += group_share(&hits, u % 4) / 20.0;
        }
        // Chance is 1/4.
        assert!(
            share >= 0.7,
            "{model}: {share} of the hits in the user's group"
        );
        // The batch answers as one at a time.
        let users: Vec<String> = (0..5).map(user).collect();
        let refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let batch = db.recommend_batch(&refs, &q).unwrap();
        for (u, hits) in refs.iter().zip(&batch) {
            assert_eq!(hits, &db.recommend(u, &q).unwrap());
        }
        let sim = db.similar(&item(0), &q).unwrap();
        assert_eq!(sim.len(), 10);
        assert!(sim.iter().all(|h| h.id != item(0)));
    }
}

#[test]
fn new_events_and_new_users_count_without_a_retrain() {
    let db = grouped_db();
    db.train("mult-dae", &small(), &opts(2)).unwrap();
    let q = QueryOptions::model("mult-dae").k(10);
    // u1 likes group 1; after 30 events in group 3 the list follows.
    let before = db.recommend(&user(1), &q).unwrap();
    assert!(group_share(&before, 1) >= 0.7, "{before:?}");
    let group3: Vec<usize> = (0..20).map(|i| 4 * i + 3).take(16).collect();
    log(&db, &user(1), &group3, 1_000_000);
    let after = db.recommend(&user(1), &q).unwrap();
    assert_ne!(before, after);
    assert!(
        group_share(&after, 3) > group_share(&before, 3),
        "{after:?}"
    );
    // A user who arrived after training, with a taste for group 2.
    log(&db, "newcomer", &[2, 6, 10, 14, 18, 22], 2_000_000);
    let hits = db.recommend("newcomer", &q).unwrap();
    assert_eq!(hits.len(), 10);
    assert!(group_share(&hits, 2) >= 0.6, "{hits:?}");
    // An item newer than the model is not an input, and is never recommended.
    log(&db, "newcomer", &[0], 3_000_000);
    log(&db, "other", &[0], 3_000_001);
    let mut b = db.batch();
    b.push(
        "newcomer",
        "brand-new",
        EventKind::Interaction,
        1.0,
        4_000_000,
    )
    .unwrap();
    b.commit().unwrap();
    let hits = db.recommend("newcomer", &q).unwrap();
    assert!(hits.iter().all(|h| h.id != "brand-new"));
}

#[test]
fn a_cancelled_retrain_leaves_the_previous_tables_served() {
    let db = grouped_db();
    db.train("mult-vae", &small().set("hidden", "32,8"), &opts(3))
        .unwrap();
    let q = QueryOptions::model("mult-vae").k(10);
    let before = db.recommend(&user(5), &q).unwrap();
    let flag = Arc::new(AtomicBool::new(true));
    let cancelled = TrainOptions {
        control: JobControl {
            cancel: Some(flag),
            ..Default::default()
        },
        ..opts(4)
    };
    let r = db.train("mult-vae", &small().set("hidden", "32,8"), &cancelled);
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(db.recommend(&user(5), &q).unwrap(), before);
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let db = grouped_db();
    for (k, v) in [("hidden", "0"), ("dropout", "1.5"), ("beta_cap", "-1")] {
        let r = db.train("mult-vae", &Params::new().set(k, v), &opts(1));
        assert!(
            matches!(&r, Err(Error::InvalidParameter { name, .. }) if name == k),
            "{k}={v}: {r:?}"
        );
    }
    // Only events with value ≥ positive_min are inputs: none here.
    let r = db.train("mult-dae", &Params::new().set("positive_min", 2), &opts(1));
    assert!(matches!(r, Err(Error::NoEvents { .. })), "{r:?}");
}

#[test]
fn a_batch_too_large_for_memory_is_refused_before_allocating() {
    // Few items, so the per-item buffers are small: the batch's activations (2^20 users ×
    // 65,536 wide, about a terabyte) are what must be refused, naming the parameter.
    let db = grouped_db();
    let params = Params::new()
        .set("hidden", 65536)
        .set("batch", 1 << 20)
        .set("epochs", 1);
    let o = TrainOptions {
        memory_limit: Some(8 << 30),
        ..opts(1)
    };
    match db.train("mult-dae", &params, &o) {
        Err(Error::OutOfMemory { param, .. }) => assert_eq!(param, "hidden"),
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
}
