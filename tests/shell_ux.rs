//! What a new user meets: errors that name the right model, and the shell's commands
//! for finding items, searching any table and reading output.

mod common;

use common::{load_synthetic, put_genres, train_als};
use recdb::{Db, Error, Params, QueryOptions, TrainOptions};

/// 40 users, 24 items with titles, and `popular`, `als` and `item2vec` trained.
fn trained_db() -> Db {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 40, 24, 5, 7);
    put_genres(&db, 24);
    let opts = TrainOptions::default();
    db.train("popular", &Params::new(), &opts).unwrap();
    train_als(&db, 1);
    let p = Params::new().set("dim", 8).set("epochs", 1);
    db.train("item2vec", &p, &opts).unwrap();
    db
}

#[test]
fn similar_on_popular_is_an_error_naming_models_with_item_vectors() {
    let db = trained_db();
    let e = db
        .similar("i1", &QueryOptions::model("popular").k(5))
        .unwrap_err();
    match &e {
        Error::NoVectors {
            model,
            kind,
            models,
        } => {
            assert_eq!(model, "popular");
            assert_eq!(kind, "item");
            assert_eq!(models, &["als", "item2vec"]);
        }
        other => panic!("expected NoVectors, got {other:?}"),
    }
}

#[test]
fn predict_on_item2vec_says_it_has_no_user_vectors() {
    let db = trained_db();
    let e = db.predict("u1", "i1", "item2vec").unwrap_err();
    assert!(
        matches!(&e, Error::NoVectors { model, kind, models }
            if model == "item2vec" && kind == "user" && models == &["als", "popular"]),
        "{e:?}"
    );
    assert!(!e.to_string().contains("train a model first"), "{e}");
}

#[test]
fn a_misspelt_model_is_unknown_with_a_suggestion() {
    let db = trained_db();
    for e in [
        db.recommend("u1", &QueryOptions::model("alss"))
            .unwrap_err(),
        db.similar("i1", &QueryOptions::model("alss")).unwrap_err(),
        db.predict("u1", "i1", "alss").unwrap_err(),
        db.train("alss", &Params::new(), &TrainOptions::default())
            .unwrap_err(),
    ] {
        match &e {
            Error::UnknownModel {
                name,
                known,
                suggestion,
            } => {
                assert_eq!(name, "alss");
                assert!(known.iter().any(|k| k == "item2vec"), "{known:?}");
                assert_eq!(suggestion.as_deref(), Some("als"));
            }
            other => panic!("expected UnknownModel, got {other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.starts_with("unknown model `alss` (known: "), "{msg}");
        assert!(msg.ends_with("; did you mean `als`?)"), "{msg}");
    }
    // A known model not trained yet still says which table is missing.
    assert!(matches!(
        db.recommend("u1", &QueryOptions::model("bpr")),
        Err(Error::UnknownTable(t)) if t == "bpr.users"
    ));
}

#[test]
fn a_model_without_parameters_says_so() {
    let db = trained_db();
    let e = db
        .train(
            "popular",
            &Params::new().set("epochs", 3),
            &TrainOptions::default(),
        )
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`popular` takes no parameters"), "{msg}");
    assert!(!msg.contains("(known: )"), "{msg}");
}
