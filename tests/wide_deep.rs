//! The `wide-deep` ranker end to end on synthetic ratings: train, publish, predict a
//! probability, rank a list, attributes read live, embeddings of another model as
//! features (and a republished one refused), the CTR protocol on a data directory.

use recdb::{Db, Error, EventKind, ItemRecord, Params, RawEvent, TrainOptions, UserRecord};

fn opts() -> TrainOptions {
    TrainOptions {
        seed: 3,
        threads: Some(2),
        ..Default::default()
    }
}

/// 80 users (gender F/M) and 40 items (genres Drama/Comedy): a user rates 5 the items
/// of their gender's genre and 2 the others.
fn db() -> Db {
    let db = Db::temporary().unwrap();
    let items: Vec<ItemRecord> = (0..40)
        .map(|i| ItemRecord {
            id: format!("i{i}"),
            genres: vec![if i % 2 == 0 { "Drama" } else { "Comedy" }.to_string()],
            attrs: vec![("release_year".into(), (1980 + i % 20).to_string())],
            ..ItemRecord::default()
        })
        .collect();
    db.put_items(&items).unwrap();
    let mut events = Vec::new();
    for u in 0..80u32 {
        for t in 0..10u32 {
            let i = (u * 11 + t * 7) % 40;
            events.push(RawEvent {
                user: format!("u{u}"),
                item: format!("i{i}"),
                kind: EventKind::Rating,
                value: if u % 2 == i % 2 { 5.0 } else { 2.0 },
                timestamp: i64::from(t),
                group: None,
            });
        }
    }
    db.log_events(&events).unwrap();
    let users: Vec<UserRecord> = (0..81)
        .map(|u| UserRecord {
            id: format!("u{u}"),
            attrs: vec![
                (
                    "gender".into(),
                    if u % 2 == 0 { "F" } else { "M" }.to_string(),
                ),
                ("age".into(), "25".into()),
            ],
        })
        .collect();
    db.put_users(&users).unwrap();
    db
}

fn small() -> Params {
    Params::new()
        .set("epochs", 20)
        .set("layers", "32,16")
        .set("batch", 64)
        .set("validation", "off")
}

#[test]
fn trains_predicts_probabilities_and_ranks_lists() {
    let db = db();
    db.train("wide-deep", &small(), &opts()).unwrap();
    let like = db.predict("u0", "i2", "wide-deep").unwrap();
    let dislike = db.predict("u0", "i3", "wide-deep").unwrap();
    assert!((0.0..=1.0).contains(&like) && (0.0..=1.0).contains(&dislike));
    assert!(like > 0.7 && dislike < 0.3, "{like} {dislike}");
    let hits = db
        .rank("u1", &["i2", "i3", "i4", "i5"], "wide-deep")
        .unwrap();
    assert_eq!(hits.len(), 4);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    let top: Vec<&str> = hits[..2].iter().map(|h| h.id.as_str()).collect();
    assert!(top.contains(&"i3") && top.contains(&"i5"), "{hits:?}");
    // A user with attributes and no events is scored from them.
    let newcomer = db.predict("u80", "i2", "wide-deep").unwrap();
    assert!(newcomer > 0.5, "{newcomer}");
    // Unknown ids are errors, not guesses.
    assert!(matches!(
        db.rank("nobody", &["i1"], "wide-deep"),
        Err(Error::UnknownUser(_))
    ));
    assert!(matches!(
        db.rank("u1", &["nothing"], "wide-deep"),
        Err(Error::UnknownItem(_))
    ));
    assert!(db.rank("u1", &[], "wide-deep").unwrap().is_empty());
    // A list longer than one forward pass (4096 pairs): every pair scored as `predict`
    // scores it alone.
    let long: Vec<String> = (0..5000).map(|k| format!("i{}", k % 7)).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let hits = db.rank("u1", &long, "wide-deep").unwrap();
    assert_eq!(hits.len(), 5000);
    for h in &hits {
        let alone = db.predict("u1", &h.id, "wide-deep").unwrap();
        assert!(
            (h.score - alone).abs() < 1e-6,
            "{}: {} vs {alone}",
            h.id,
            h.score
        );
    }
}

#[test]
fn attributes_are_read_live() {
    let db = db();
    db.train(
        "wide-deep",
        &small().set("parts", "wide").set("wide", "gender*genres"),
        &opts(),
    )
    .unwrap();
    let before = db.predict("u80", "i2", "wide-deep").unwrap();
    db.put_users(&[UserRecord {
        id: "u80".into(),
        attrs: vec![("gender".into(), "M".into())],
    }])
    .unwrap();
    let after = db.predict("u80", "i2", "wide-deep").unwrap();
    assert!(before > 0.5 && after < 0.5, "{before} {after}");
}

#[test]
fn published_tables_feed_the_deep_part_and_a_republished_one_is_refused() {
    let db = db();
    db.train("als", &Params::new().set("factors", 8), &opts())
        .unwrap();
    let p = small()
        .set("parts", "deep")
        .set("features", "als.items,als.users");
    db.train("wide-deep", &p, &opts()).unwrap();
    let like = db.predict("u0", "i2", "wide-deep").unwrap();
    assert!(like > 0.5, "{like}");
    // als retrained: its vectors moved, the ranker refuses them until retrained.
    db.train(
        "als",
        &Params::new().set("factors", 8),
        &TrainOptions { seed: 9, ..opts() },
    )
    .unwrap();
    match db.predict("u0", "i2", "wide-deep") {
        Err(Error::InvalidInput(msg)) => assert!(
            msg.contains("als.items") && msg.contains("retrain"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    db.train("wide-deep", &p, &opts()).unwrap();
    assert!(db.predict("u0", "i2", "wide-deep").is_ok());
    // A table that does not exist fails before training.
    assert!(db
        .train("wide-deep", &small().set("features", "nope.items"), &opts())
        .is_err());
}

#[test]
fn ctr_protocol_reports_auc_and_log_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for u in 1..=120u32 {
        for t in 0..12u32 {
            let i = 1 + (u * 11 + t * 7) % 50;
            let r = if u % 2 == i % 2 { 5 } else { 2 };
            inter.push_str(&format!("{u}\t{i}\t{r}\t{t}\n"));
        }
    }
    std::fs::write(dir.path().join("x.inter"), inter).unwrap();
    let mut users = String::from("user_id:token\tgender:token\n");
    for u in 1..=120u32 {
        users.push_str(&format!("{u}\t{}\n", if u % 2 == 0 { "F" } else { "M" }));
    }
    std::fs::write(dir.path().join("x.user"), users).unwrap();
    let mut items =
        String::from("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n");
    for i in 1..=50u32 {
        let genre = if i % 2 == 0 { "Drama" } else { "Comedy" };
        items.push_str(&format!("{i}\tFilm {i}\t{}\t{genre}\n", 1980 + i % 20));
    }
    std::fs::write(dir.path().join("x.item"), items).unwrap();
    for model in ["wide-deep", "wide", "deep", "lr"] {
        let r = recdb::evaluate_quiet(&recdb::EvalOptions {
            protocol: recdb::Protocol::Ctr {
                drop_neutral: false,
            },
            model: model.into(),
            data: Some(dir.path().to_path_buf()),
            params: Params::new().set("epochs", 10).set("layers", "16"),
            seed: 1,
            threads: Some(2),
            rank: None,
            validation: false,
        })
        .unwrap();
        let auc = r.metrics["auc"];
        let ll = r.metrics["logloss"];
        assert!(r.metrics["test_examples"] > 100.0);
        assert!(ll.is_finite(), "{model}: {auc} {ll}");
        if model == "lr" {
            // gender × genre decides every label (an exclusive or of two parities): a
            // linear model without crosses cannot see it, so it stays near chance.
            assert!((0.3..0.7).contains(&auc), "{model}: {auc}");
        } else {
            assert!(auc > 0.8, "{model}: {auc}");
        }
    }
    // A `features=` table is trained first, on the training part.
    let r = recdb::evaluate_quiet(&recdb::EvalOptions {
        protocol: recdb::Protocol::Ctr {
            drop_neutral: false,
        },
        model: "deep".into(),
        data: Some(dir.path().to_path_buf()),
        params: Params::new()
            .set("epochs", 5)
            .set("layers", "16")
            .set("features", "als.items"),
        seed: 1,
        threads: Some(2),
        rank: None,
        validation: false,
    })
    .unwrap();
    assert!(r.metrics["auc"] > 0.5, "{:?}", r.metrics);
    assert_eq!(r.params["features"], "als.items");
}

/// Stored rankers of tiny trained models parse whole through the fuzz target's entry
/// (and not one value short). `RECDB_WRITE_SEEDS=$PWD/fuzz/seeds/wide_deep_ranker cargo
/// test --release --test wide_deep rankers` rewrites the target's seeds from them.
#[test]
fn trained_rankers_parse_through_the_fuzz_entry_and_are_its_seeds() {
    use recdb::testkit::fuzzing::{network_seed, wide_deep_ranker};
    let tiny = || small().set("layers", "4").set("dim", 2).set("epochs", 1);
    for (name, p) in [
        ("defaults", tiny()),
        ("wide", tiny().set("parts", "wide")),
        ("deep", tiny().set("parts", "deep")),
        ("fm", tiny().set("parts", "wide,deep,fm")),
    ] {
        let db = db();
        db.train("wide-deep", &p, &opts()).unwrap();
        let bytes = network_seed(&db.table("wide-deep.ranker").unwrap(), name);
        assert!(wide_deep_ranker(&bytes), "{name}");
        assert!(!wide_deep_ranker(&bytes[..bytes.len() - 4]), "{name}");
    }
}
