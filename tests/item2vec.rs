//! item2vec end to end on synthetic data: sentences, job, similar, recommend, errors.

mod common;

use common::{item, load_synthetic, put_genres, table_rows, user};
use recdb::testkit::SynthConfig;
use recdb::{
    Db, Error, EventKind, Params, QueryOptions, RawEvent, SequenceQuery, SequenceScoring,
    TrainOptions,
};

fn opts(seed: u64) -> TrainOptions {
    TrainOptions {
        seed,
        threads: Some(1),
        ..Default::default()
    }
}

fn small() -> Params {
    Params::new()
        .set("dim", 16)
        .set("epochs", 15)
        .set("sample", 0)
}

/// 400 users, 80 items in four taste groups (`i % 4`), 12 items each.
fn grouped_db() -> Db {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 400, 80, 12, 7);
    put_genres(&db, 80);
    db
}

#[test]
fn similar_items_come_from_the_same_group() {
    let db = grouped_db();
    db.train("item2vec", &small(), &opts(1)).unwrap();
    let (mut same, mut all) = (0, 0);
    for i in 0..20 {
        for h in db
            .similar(&item(i), &QueryOptions::model("item2vec").k(5))
            .unwrap()
        {
            let j: usize = h.id[1..].parse().unwrap();
            same += usize::from(j % 4 == i % 4);
            all += 1;
        }
    }
    // Chance is 1/4.
    assert!(same * 10 >= all * 7, "{same} of {all} in the same group");
}

#[test]
fn recommend_excludes_seen_honours_k_and_genre() {
    let db = grouped_db();
    db.train("item2vec", &small(), &opts(1)).unwrap();
    let seen: std::collections::HashSet<String> = db
        .history(&user(3))
        .unwrap()
        .into_iter()
        .map(|e| e.item)
        .collect();
    assert!(!seen.is_empty());
    let hits = db
        .recommend(&user(3), &QueryOptions::model("item2vec").k(7))
        .unwrap();
    assert_eq!(hits.len(), 7);
    assert!(hits.iter().all(|h| !seen.contains(&h.id)));
    let mut q = QueryOptions::model("item2vec").k(4);
    q.genre = Some("comedy".into());
    let hits = db.recommend(&user(3), &q).unwrap();
    assert_eq!(hits.len(), 4);
    assert!(hits
        .iter()
        .all(|h| h.id[1..].parse::<usize>().unwrap() % 4 == 1));
    // Over the whole history (the last few items may be off-taste), the user's taste
    // group (3 % 4) dominates both scorings.
    for scoring in [SequenceScoring::InputOutput, SequenceScoring::InputInput] {
        let sq = SequenceQuery {
            scoring,
            last: 100,
            decay: 1.0,
        };
        let hits = db
            .recommend_sequence(&user(3), &QueryOptions::model("item2vec").k(10), &sq)
            .unwrap();
        let mine = hits
            .iter()
            .filter(|h| h.id[1..].parse::<usize>().unwrap() % 4 == 3)
            .count();
        assert!(mine >= 6, "{scoring:?}: {mine} of 10 from the user's group");
        assert!(hits.iter().all(|h| !seen.contains(&h.id)));
    }
}

#[test]
fn tables_have_one_row_per_item_and_zero_rows_for_rare_ones() {
    let db = grouped_db();
    // An item seen once: below min_count=2.
    db.log_events(&[RawEvent {
        user: user(0),
        item: "rare".into(),
        kind: EventKind::Interaction,
        value: 1.0,
        timestamp: 999_999,
        group: None,
    }])
    .unwrap();
    db.train("item2vec", &small().set("min_count", 2), &opts(1))
        .unwrap();
    let (_, rows) = table_rows(&db, "item2vec.items");
    let (_, out) = table_rows(&db, "item2vec.out");
    assert_eq!((rows.len(), out.len()), (81, 81));
    assert!(rows[80].iter().all(|&x| x == 0.0));
    let err = db
        .similar("rare", &QueryOptions::model("item2vec"))
        .unwrap_err();
    assert!(matches!(err, Error::ZeroVector(_)), "{err}");
    assert!(err.to_string().contains("too rare"), "{err}");
}

#[test]
fn same_seed_one_thread_gives_identical_tables_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let db = Db::open(dir.path()).unwrap();
        load_synthetic(&db, 100, 40, 8, 3);
        db.train("item2vec", &small(), &opts(9)).unwrap();
        before = (
            table_rows(&db, "item2vec.items").1,
            db.recommend(&user(1), &QueryOptions::model("item2vec"))
                .unwrap(),
            db.similar(&item(2), &QueryOptions::model("item2vec"))
                .unwrap(),
        );
        db.train("item2vec", &small(), &opts(9)).unwrap();
        assert_eq!(table_rows(&db, "item2vec.items").1, before.0);
    }
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(table_rows(&db, "item2vec.items").1, before.0);
    assert_eq!(
        db.recommend(&user(1), &QueryOptions::model("item2vec"))
            .unwrap(),
        before.1
    );
    assert_eq!(
        db.similar(&item(2), &QueryOptions::model("item2vec"))
            .unwrap(),
        before.2
    );
}

#[test]
fn session_and_basket_modes_train_on_synthetic_sessions() {
    let s = recdb::testkit::generate(&SynthConfig {
        users: 150,
        items: 120,
        events_per_user: 20,
        ..SynthConfig::default()
    });
    let db = Db::temporary().unwrap();
    db.put_items(&s.items).unwrap();
    db.log_events(&s.events).unwrap();
    for mode in ["session", "basket"] {
        let p = small().set("mode", mode).set("session_gap", 600);
        let info = db.train("item2vec", &p, &opts(2)).unwrap();
        assert_eq!(info.state, recdb::JobState::Done, "{mode}");
        assert!(info.params.to_string().contains(mode));
        let hits = db.similar(&s.events[0].item, &QueryOptions::model("item2vec").k(3));
        assert!(
            matches!(
                hits.as_ref().map(Vec::len),
                Ok(3) | Err(Error::ZeroVector(_))
            ),
            "{mode}: {hits:?}"
        );
    }
}

#[test]
fn bad_params_and_data_give_clear_errors() {
    let db = grouped_db();
    for (k, v) in [
        ("window", "0"),
        ("dim", "0"),
        ("mode", "bag"),
        ("arch", "rnn"),
        ("negative", "0"),
        ("min_count", "0"),
        ("alpha", "-1"),
    ] {
        let err = db
            .train("item2vec", &Params::new().set(k, v), &opts(1))
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidParameter { name, .. } if name == k),
            "{k}: {err}"
        );
    }
    let err = db
        .train("item2vec", &Params::new().set("factors", 3), &opts(1))
        .unwrap_err();
    assert!(err.to_string().contains("factors"), "{err}");
    // No group ids were imported: basket mode cannot work.
    let err = db
        .train("item2vec", &small().set("mode", "basket"), &opts(1))
        .unwrap_err();
    assert!(err.to_string().contains("basket"), "{err}");
    let empty = Db::temporary().unwrap();
    assert!(matches!(
        empty.train("item2vec", &small(), &opts(1)),
        Err(Error::NoEvents { .. })
    ));
}
