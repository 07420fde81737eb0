//! Checks on the real data sets (run by `.ci/run` with `--ignored`), found in
//! `$RECDB_DATA`, else in `../shared/data` beside the crate (where CI keeps them). They
//! fail loudly when the data is missing.

use std::path::PathBuf;

use recdb::{evaluate_quiet, Db, EvalOptions, Params, Protocol};

fn ml100k() -> PathBuf {
    let dir = std::env::var_os("RECDB_DATA")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
            PathBuf::from,
        )
        .join("ml-100k");
    assert!(
        dir.join("ml-100k.inter").is_file(),
        "ML-100K is missing: expected {}/ml-100k.inter",
        dir.display()
    );
    dir
}

fn run(protocol: Protocol, model: &str) -> recdb::EvalReport {
    let report = evaluate_quiet(&EvalOptions {
        protocol,
        model: model.into(),
        data: Some(ml100k()),
        params: Params::new(),
        seed: 42,
        threads: None,
        rank: None,
        validation: false,
    })
    .unwrap();
    println!("{}", serde_json::to_string(&report).unwrap());
    report
}

#[test]
#[ignore = "needs the data sets in $RECDB_DATA"]
fn next_als_reaches_target() {
    let r = run(Protocol::Next, "als");
    assert_eq!(r.users, 943);
    assert!(
        r.metrics["hr@10"] >= 0.10,
        "ALS HR@10 {}",
        r.metrics["hr@10"]
    );
}

#[test]
#[ignore = "needs the data sets in $RECDB_DATA"]
fn next_bpr_reaches_target() {
    let r = run(Protocol::Next, "bpr");
    // The target (ALS or BPR >= 0.10) is met by ALS; BPR sits at 0.0997 here.
    assert!(
        r.metrics["hr@10"] >= 0.095,
        "BPR HR@10 {}",
        r.metrics["hr@10"]
    );
    let base = r.baseline.unwrap();
    assert!(
        (0.03..0.08).contains(&base["hr@10"]),
        "popular HR@10 {}",
        base["hr@10"]
    );
}

#[test]
#[ignore = "needs the data sets in $RECDB_DATA"]
fn rating_sgd_reaches_target() {
    let r = run(Protocol::Rating, "sgd");
    assert!(r.users > 15_000 && r.users < 25_000);
    assert!(r.metrics["rmse"] <= 0.91, "SGD RMSE {}", r.metrics["rmse"]);
}

#[test]
#[ignore = "needs the data sets in $RECDB_DATA"]
fn ml100k_imports_and_answers() {
    let dir = ml100k();
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path().join("db")).unwrap();
    assert_eq!(
        db.import_events(&dir.join("ml-100k.inter"), None)
            .unwrap()
            .events,
        100_000
    );
    assert_eq!(
        db.import_items(&dir.join("ml-100k.item"), None)
            .unwrap()
            .records,
        1682
    );
    assert_eq!(
        db.import_users(&dir.join("ml-100k.user"), None)
            .unwrap()
            .records,
        943
    );
    let s = db.stats().unwrap();
    assert_eq!((s.users, s.items, s.events), (943, 1682, 100_000));
    db.train("als", &Params::new(), &Default::default())
        .unwrap();
    let sim = db
        .similar("1", &recdb::QueryOptions::model("als").k(5))
        .unwrap();
    assert_eq!(sim.len(), 5);
    let recs = db
        .recommend(
            "1",
            &recdb::QueryOptions {
                genre: Some("Comedy".into()),
                ..recdb::QueryOptions::model("als")
            },
        )
        .unwrap();
    for h in &recs {
        assert!(db.item(&h.id).unwrap().genres.iter().any(|g| g == "Comedy"));
    }
    drop(db);
    let db = Db::open(tmp.path().join("db")).unwrap();
    db.check().unwrap();
    assert_eq!(db.history("1").unwrap().len(), 272);
}
