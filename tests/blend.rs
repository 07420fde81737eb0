//! `blend` end to end on synthetic data: a blend of a model with itself ranks as the
//! model, parameter and component validation, serving (seen items, genre, batch), and a
//! retrained component changing the blend at once.

mod common;

use common::{als_params, grouped_db, ids, seen_items, user};
use recdb::{Params, QueryOptions, TrainOptions};

fn opts() -> TrainOptions {
    TrainOptions {
        seed: 1,
        threads: Some(2),
        ..Default::default()
    }
}

fn blend(models: &str, weights: &str) -> Params {
    Params::new().set("models", models).set("weights", weights)
}

#[test]
fn a_blend_of_a_model_with_itself_ranks_as_the_model() {
    let db = grouped_db();
    db.train("ease", &Params::new().set("lambda", 10), &opts())
        .unwrap();
    db.train("als", &als_params(), &opts()).unwrap();
    for (model, norm) in [
        ("ease", "z"),
        ("ease", "rank"),
        ("als", "z"),
        ("als", "log-softmax"),
    ] {
        let p = blend(&format!("{model},{model}"), "0.3,2").set("norm", norm);
        db.train("blend", &p, &opts()).unwrap();
        for u in [1, 5, 17] {
            let want = db
                .recommend(&user(u), &QueryOptions::model(model).k(10))
                .unwrap();
            let got = db
                .recommend(&user(u), &QueryOptions::model("blend").k(10))
                .unwrap();
            assert_eq!(ids(&got), ids(&want), "{model} {norm} user {u}");
        }
    }
}

#[test]
fn weights_and_components_are_validated() {
    let db = grouped_db();
    db.train("ease", &Params::new().set("lambda", 10), &opts())
        .unwrap();
    for (p, name) in [
        (blend("ease,als", "1,0"), "weights"),
        (blend("ease,als", "1,-2"), "weights"),
        (blend("ease,als", "1"), "weights"),
        (blend("ease", "1"), "models"),
        (blend("ease,blend", "1,1"), "models"),
    ] {
        let e = db.train("blend", &p, &opts()).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
    // A component that is not trained is named in the error, and nothing is published.
    let e = db
        .train("blend", &blend("ease,als", "1,1"), &opts())
        .unwrap_err();
    assert!(e.to_string().contains("`als`"), "{e}");
    assert!(db
        .recommend(&user(1), &QueryOptions::model("blend"))
        .is_err());
    // A blend is no component of another.
    db.train("als", &als_params(), &opts()).unwrap();
    db.train("blend", &blend("ease,als", "1,1"), &opts())
        .unwrap();
    let e = db
        .train("blend", &blend("blend,ease", "1,1"), &opts())
        .unwrap_err();
    assert!(e.to_string().contains("blend"), "{e}");
}

#[test]
fn serving_excludes_seen_filters_genre_batches_and_follows_retraining() {
    let db = grouped_db();
    db.train("ease", &Params::new().set("lambda", 10), &opts())
        .unwrap();
    db.train("als", &als_params(), &opts()).unwrap();
    db.train("blend", &blend("ease,als", "0.7,0.3"), &opts())
        .unwrap();
    let q = QueryOptions::model("blend").k(8);
    let seen = seen_items(&db, &user(3));
    let hits = db.recommend(&user(3), &q).unwrap();
    assert_eq!(hits.len(), 8);
    assert!(hits.iter().all(|h| !seen.contains(&h.id)), "{hits:?}");
    let mut g = q.clone();
    g.genre = Some("comedy".into());
    let hits = db.recommend(&user(6), &g).unwrap();
    assert!(
        hits.iter()
            .all(|h| h.id[1..].parse::<usize>().unwrap() % 4 == 1),
        "{hits:?}"
    );
    let users = [user(1), user(2), user(9)];
    let us: Vec<&str> = users.iter().map(String::as_str).collect();
    let batch = db.recommend_batch(&us, &q).unwrap();
    for (u, hits) in us.iter().zip(&batch) {
        assert_eq!(hits, &db.recommend(u, &q).unwrap());
    }
    // Retraining a component changes the blend without retraining the blend.
    let before = db.recommend(&user(1), &q).unwrap();
    db.train("ease", &Params::new().set("lambda", 5000), &opts())
        .unwrap();
    let after = db.recommend(&user(1), &q).unwrap();
    assert_ne!(before, after);
}
