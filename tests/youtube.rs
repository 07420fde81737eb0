//! The `youtube` candidate generator end to end on synthetic data: train, publish,
//! recommend from the user's current inputs (an event logged after training changes
//! the answer, a newcomer gets one), batches, similar, cancel, bad parameters.

mod common;

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::{grouped_db, item, user};
use recdb::{Db, Error, EventKind, JobControl, Params, QueryOptions, TrainOptions};

fn opts(seed: u64) -> TrainOptions {
    TrainOptions {
        seed,
        threads: Some(2),
        ..Default::default()
    }
}

fn small() -> Params {
    Params::new()
        .set("layers", "64,32")
        .set("dim", 32)
        .set("epochs", 20)
        .set("batch", 128)
        .set("learning_rate", 0.005)
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
fn trains_publishes_and_recommends_unseen_items_of_the_users_taste() {
    let db = grouped_db();
    db.train("youtube", &small(), &opts(1)).unwrap();
    let names: Vec<String> = db.tables().unwrap().into_iter().map(|t| t.name).collect();
    for t in ["items", "inputs", "tower"] {
        assert!(names.contains(&format!("youtube.{t}")), "{names:?}");
    }
    let q = QueryOptions::model("youtube").k(10);
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
        assert!(hits.iter().all(|h| !seen.contains(&h.id)), "a seen item");
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        share += group_share(&hits, u % 4) / 20.0;
    }
    // Chance is 1/4.
    assert!(share >= 0.7, "{share} of the hits in the user's group");
    // The batch (one tower pass) answers as one at a time.
    let users: Vec<String> = (0..6).map(user).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let batch = db.recommend_batch(&refs, &q).unwrap();
    for (u, hits) in refs.iter().zip(&batch) {
        let one = db.recommend(u, &q).unwrap();
        let ids = |h: &[recdb::Hit]| h.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(hits), ids(&one));
    }
    let sim = db.similar(&item(0), &q).unwrap();
    assert_eq!(sim.len(), 10);
    assert!(sim.iter().all(|h| h.id != item(0)));
    assert!(group_share(&sim, 0) >= 0.5, "{sim:?}");
}

#[test]
fn an_event_logged_after_training_changes_the_next_answer() {
    let db = grouped_db();
    db.train("youtube", &small(), &opts(2)).unwrap();
    let q = QueryOptions::model("youtube").k(10);
    let before = db.recommend(&user(1), &q).unwrap();
    assert!(group_share(&before, 1) >= 0.7, "{before:?}");
    // The last 10 items are the input: 10 items of group 3 move the list there.
    let group3: Vec<usize> = (0..10).map(|i| 4 * i + 3).collect();
    log(&db, &user(1), &group3, 1_000_000);
    let after = db.recommend(&user(1), &q).unwrap();
    assert_ne!(before, after);
    assert!(
        group_share(&after, 3) > group_share(&before, 3),
        "{after:?}"
    );
    // A user who arrived after training.
    log(&db, "newcomer", &[2, 6, 10, 14, 18, 22], 2_000_000);
    let hits = db.recommend("newcomer", &q).unwrap();
    assert_eq!(hits.len(), 10);
    assert!(group_share(&hits, 2) >= 0.6, "{hits:?}");
    // An item newer than the model is not an input, and is never recommended.
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
fn the_sampled_softmax_learns_the_tastes_too() {
    let db = grouped_db();
    let p = small().set("softmax", "sampled").set("negatives", 30);
    db.train("youtube", &p, &opts(3)).unwrap();
    let q = QueryOptions::model("youtube").k(10);
    let share: f64 = (0..20)
        .map(|u| group_share(&db.recommend(&user(u), &q).unwrap(), u % 4) / 20.0)
        .sum();
    assert!(share >= 0.6, "{share}");
}

#[test]
fn a_cancelled_retrain_leaves_the_previous_tables_served() {
    let db = grouped_db();
    db.train("youtube", &small(), &opts(3)).unwrap();
    let q = QueryOptions::model("youtube").k(10);
    let before = db.recommend(&user(5), &q).unwrap();
    let cancelled = TrainOptions {
        control: JobControl {
            cancel: Some(Arc::new(AtomicBool::new(true))),
            ..Default::default()
        },
        ..opts(4)
    };
    let r = db.train("youtube", &small(), &cancelled);
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(db.recommend(&user(5), &q).unwrap(), before);
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let db = grouped_db();
    for (k, v) in [
        ("layers", "0"),
        ("history", "0"),
        ("softmax", "x"),
        ("serve_age", "x"),
        ("nonsense", "1"),
    ] {
        let r = db.train("youtube", &Params::new().set(k, v), &opts(1));
        assert!(
            matches!(&r, Err(Error::InvalidParameter { name, .. }) if name == k),
            "{k}={v}: {r:?}"
        );
    }
    let o = TrainOptions {
        memory_limit: Some(1 << 30),
        ..opts(1)
    };
    let r = db.train("youtube", &Params::new().set("layers", "65536,65536"), &o);
    assert!(matches!(r, Err(Error::OutOfMemory { .. })), "{r:?}");
}

const TOPICS: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];

/// The grouped data with searches that carry the taste: every user searches their
/// group's word before their events.
fn db_with_searches() -> Db {
    let db = grouped_db();
    let mut b = db.batch();
    for u in 0..400 {
        b.push_search(&user(u), TOPICS[u % 4], (u * 1000) as i64)
            .unwrap();
    }
    b.commit().unwrap();
    db
}

#[test]
fn searches_are_inputs_and_a_search_logged_after_training_changes_the_answer() {
    let db = db_with_searches();
    db.train("youtube", &small(), &opts(5)).unwrap();
    let q = QueryOptions::model("youtube").k(10);
    // A user who only searched: the tower answers from the search alone.
    let mut b = db.batch();
    b.push_search("searcher", "charlie", 5_000_000).unwrap();
    b.commit().unwrap();
    let hits = db.recommend("searcher", &q).unwrap();
    assert_eq!(hits.len(), 10);
    assert!(group_share(&hits, 2) >= 0.6, "{hits:?}");
    // A search logged now changes the next answer, with no retrain.
    let before = db.recommend(&user(3), &q).unwrap();
    let mut b = db.batch();
    b.push_search(&user(3), "alpha alpha", 6_000_000).unwrap();
    b.commit().unwrap();
    let after = db.recommend(&user(3), &q).unwrap();
    assert_ne!(before, after);
}

/// `init=item2vec.items`: the input item embeddings start from the table's rows. With a
/// step too small to move them, the published inputs are those rows (`keep`, the
/// default), or the same directions at the random init's mean norm (`match`).
#[test]
fn init_starts_the_input_embeddings_from_a_published_items_table() {
    let db = grouped_db();
    db.train(
        "item2vec",
        &Params::new().set("dim", 32).set("epochs", 2),
        &opts(1),
    )
    .unwrap();
    let frozen = || {
        small()
            .set("epochs", 1)
            .set("learning_rate", 1e-9)
            .set("init", "item2vec.items")
    };
    let i2v = db.table("item2vec.items").unwrap();
    let rows = |t: &recdb::TableView| -> Vec<Vec<f32>> {
        (0..i2v.rows()).map(|r| t.row(r).to_vec()).collect()
    };
    let want = rows(&i2v);

    db.train("youtube", &frozen(), &opts(1)).unwrap();
    let got = rows(&db.table("youtube.inputs").unwrap());
    for (g, w) in got.iter().zip(&want) {
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    db.train("youtube", &frozen().set("init_scale", "match"), &opts(1))
        .unwrap();
    let got = rows(&db.table("youtube.inputs").unwrap());
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut mean = 0.0;
    for (g, w) in got.iter().zip(&want) {
        assert!(dot(g, w) / (norm(g) * norm(w)) > 0.999);
        mean += norm(g) / got.len() as f32;
    }
    // The random rows are N(0, 0.05²) in 32 dimensions: mean norm ≈ 0.05·√32 ≈ 0.28.
    assert!((0.2..0.36).contains(&mean), "{mean}");

    // And the start changes the trained model.
    db.train("youtube", &small().set("epochs", 1), &opts(1))
        .unwrap();
    let random = rows(&db.table("youtube.inputs").unwrap());
    assert_ne!(random, got);
}

#[test]
fn init_from_a_table_of_another_width_or_a_missing_one_is_refused() {
    let db = grouped_db();
    db.train(
        "item2vec",
        &Params::new().set("dim", 16).set("epochs", 1),
        &opts(1),
    )
    .unwrap();
    let p = small().set("init", "item2vec.items");
    let r = db.train("youtube", &p, &opts(1));
    assert!(
        matches!(
            r,
            Err(Error::DimensionMismatch {
                expected: 32,
                got: 16
            })
        ),
        "{r:?}"
    );
    let jobs = db.jobs().unwrap().len();
    let r = db.train("youtube", &small().set("init", "nope.items"), &opts(1));
    assert!(
        matches!(&r, Err(Error::UnknownTable(t)) if t == "nope.items"),
        "{r:?}"
    );
    assert_eq!(
        db.jobs().unwrap().len(),
        jobs,
        "a missing table leaves no record"
    );
    let r = db.train("youtube", &small().set("init", "Bad Name"), &opts(1));
    assert!(
        matches!(&r, Err(Error::InvalidParameter { name, .. }) if name == "init"),
        "{r:?}"
    );
}

/// The stored towers of tiny trained models parse whole through the fuzz target's entry
/// (and not one value short). `RECDB_WRITE_SEEDS=$PWD/fuzz/seeds/youtube_tower cargo test
/// --release --test youtube towers` rewrites the target's seeds from them.
#[test]
fn trained_towers_parse_through_the_fuzz_entry_and_are_its_seeds() {
    use recdb::testkit::fuzzing::{network_seed, youtube_tower};
    let tiny = || {
        Params::new()
            .set("layers", "4")
            .set("dim", 4)
            .set("feature_dim", 2)
            .set("epochs", 1)
            .set("negatives", 4)
            .set("max_examples", 2)
    };
    for (name, db, p) in [
        (
            "mean",
            grouped_db(),
            tiny().set("recency", "off").set("last", 0),
        ),
        ("defaults", grouped_db(), tiny().set("layers", "6,4")),
        ("searches", db_with_searches(), tiny()),
    ] {
        db.train("youtube", &p, &opts(1)).unwrap();
        let bytes = network_seed(&db.table("youtube.tower").unwrap(), name);
        assert!(youtube_tower(&bytes), "{name}");
        assert!(!youtube_tower(&bytes[..bytes.len() - 4]), "{name}");
    }
}
