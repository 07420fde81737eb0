//! The engine through its public API: reopen after every kind of write, a naive model
//! of the log, bad input leaving the database as it was, versions, queries, jobs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use recdb::{
    Db, Error, EventKind, ItemRecord, Params, QueryOptions, TableFormat, TrainOptions, UserRecord,
};

fn small(db: &Db) {
    let mut b = db.batch();
    for u in 0..40 {
        for k in 0..8 {
            let item = (u * 3 + k * 5) % 30;
            b.push(
                &format!("u{u}"),
                &format!("i{item}"),
                EventKind::Rating,
                1.0 + ((u + k) % 5) as f32,
                (k * 10) as i64,
            )
            .unwrap();
        }
    }
    b.commit().unwrap();
    let genres = |i: usize| {
        vec![if i.is_multiple_of(2) {
            "Even".to_string()
        } else {
            "Odd".to_string()
        }]
    };
    let items: Vec<ItemRecord> = (0..30)
        .map(|i| ItemRecord {
            id: format!("i{i}"),
            title: Some(format!("Item {i}")),
            genres: genres(i),
            ..Default::default()
        })
        .collect();
    db.put_items(&items).unwrap();
}

fn als() -> Params {
    Params::new().set("factors", 8).set("iterations", 3)
}

#[test]
fn every_kind_of_write_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (hist, rows, job) = {
        let db = Db::open(&path).unwrap();
        small(&db);
        db.put_users(&[UserRecord {
            id: "u1".into(),
            attrs: vec![("age".into(), "30".into())],
        }])
        .unwrap();
        let job = db.train("als", &als(), &TrainOptions::default()).unwrap();
        db.train("popular", &Params::new(), &TrainOptions::default())
            .unwrap();
        db.drop_table("popular.users").unwrap();
        let t = db.table("als.items").unwrap();
        let rows: Vec<Vec<f32>> = (0..t.rows()).map(|r| t.row(r).to_vec()).collect();
        (db.history("u3").unwrap(), rows, job)
    };
    let db = Db::open(&path).unwrap();
    assert_eq!(db.history("u3").unwrap(), hist);
    assert_eq!(db.item("i4").unwrap().title.as_deref(), Some("Item 4"));
    assert_eq!(
        db.user("u1").unwrap().attrs,
        vec![("age".to_string(), "30".to_string())]
    );
    let t = db.table("als.items").unwrap();
    assert_eq!(
        (0..t.rows()).map(|r| t.row(r).to_vec()).collect::<Vec<_>>(),
        rows
    );
    assert!(matches!(
        db.table("popular.users"),
        Err(Error::UnknownTable(_))
    ));
    assert!(db.table("popular.items").is_ok());
    let rec = db.job(job.id).unwrap();
    assert_eq!((rec.state, rec.watermark), (recdb::JobState::Done, 320));
    let s = db.stats().unwrap();
    assert_eq!((s.users, s.items, s.events), (40, 30, 320));
    db.check().unwrap();
}

#[test]
fn the_log_matches_a_naive_model_across_commits_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut model: BTreeMap<String, Vec<(i64, u64, String)>> = BTreeMap::new();
    let mut items = std::collections::BTreeSet::new();
    let mut seq = 0u64;
    let mut x: u64 = 7;
    let mut rand = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut db = Db::open(&path).unwrap();
    for commit in 0..30 {
        let mut b = db.batch();
        for _ in 0..(50 + rand(400)) {
            let (u, i, ts) = (
                format!("user{}", rand(200)),
                format!("item{}", rand(20_000)),
                rand(1000) as i64,
            );
            b.push(&u, &i, EventKind::View, 1.0, ts).unwrap();
            model.entry(u).or_default().push((ts, seq, i.clone()));
            items.insert(i);
            seq += 1;
        }
        b.commit().unwrap();
        if commit % 7 == 3 {
            drop(db);
            db = Db::open(&path).unwrap();
        }
    }
    let s = db.stats().unwrap();
    assert_eq!(
        (s.users as usize, s.items as usize, s.events),
        (model.len(), items.len(), seq)
    );
    assert!(items.len() > 4096, "several id blocks");
    for (u, evs) in &mut model {
        evs.sort();
        let got: Vec<String> = db.history(u).unwrap().into_iter().map(|e| e.item).collect();
        let want: Vec<String> = evs.iter().map(|e| e.2.clone()).collect();
        assert_eq!(got, want, "history of {u}");
    }
    db.check().unwrap();
}

#[test]
fn bad_input_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    small(&db);
    let before = db.stats().unwrap();
    let file = dir.path().join("bad.tsv");
    std::fs::write(
        &file,
        "user_id\titem_id\trating\ttimestamp\nu1\tnew1\t4\t5\nu2\tnew2\tNaN\t6\n",
    )
    .unwrap();
    match db.import_events(&file, None) {
        Err(Error::Parse { line, field, .. }) => assert_eq!((line, field.as_str()), (3, "rating")),
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert!(matches!(db.batch().commit(), Err(Error::Empty(_))));
    let mut b = db.batch();
    assert!(b.push("", "x", EventKind::View, 1.0, 0).is_err());
    assert!(b.push("u", "x", EventKind::View, f32::NAN, 0).is_err());
    assert!(
        matches!(db.train("als", &Params::new().set("factors", 0), &TrainOptions::default()), Err(Error::InvalidParameter { name, .. }) if name == "factors")
    );
    assert!(
        matches!(db.train("als", &Params::new().set("nonsense", 1), &TrainOptions::default()), Err(Error::InvalidParameter { name, .. }) if name == "nonsense")
    );
    assert!(
        matches!(db.train("bpr", &Params::new().set("learning_rate", "abc"), &TrainOptions::default()), Err(Error::InvalidParameter { name, .. }) if name == "learning_rate")
    );
    assert!(matches!(
        db.train("nope", &Params::new(), &TrainOptions::default()),
        Err(Error::UnknownModel { .. })
    ));
    let after = db.stats().unwrap();
    assert_eq!(
        (after.users, after.items, after.events, after.jobs),
        (before.users, before.items, before.events, before.jobs)
    );
    assert!(db.item_ids().unwrap().iter().all(|i| !i.starts_with("new")));
}

#[test]
fn foreign_and_non_directory_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign");
    {
        let s = sled::open(&foreign).unwrap();
        s.insert(b"k", b"v".to_vec()).unwrap();
        s.flush().unwrap();
    }
    let err = Db::open(&foreign).unwrap_err();
    assert!(matches!(err, Error::UnsupportedFormat { .. }), "{err:?}");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"hello").unwrap();
    assert!(Db::open(&file).is_err());
}

#[test]
fn readers_keep_their_version_across_publishes() {
    let db = Db::temporary().unwrap();
    small(&db);
    db.train(
        "als",
        &als(),
        &TrainOptions {
            seed: 1,
            threads: None,
            ..Default::default()
        },
    )
    .unwrap();
    let old = db.table("als.items").unwrap();
    let old_rows: Vec<Vec<f32>> = (0..old.rows()).map(|r| old.row(r).to_vec()).collect();
    for seed in 2..4 {
        db.train(
            "als",
            &als(),
            &TrainOptions {
                seed,
                threads: None,
                ..Default::default()
            },
        )
        .unwrap();
    }
    let new = db.table("als.items").unwrap();
    assert!(new.version() > old.version());
    assert_ne!(new.row(0).to_vec(), old_rows[0]);
    assert_eq!(
        (0..old.rows())
            .map(|r| old.row(r).to_vec())
            .collect::<Vec<_>>(),
        old_rows
    );
    let info = db
        .tables()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "als.items")
        .unwrap();
    assert_eq!(info.versions.len(), 2, "GC keeps two versions");
    db.check().unwrap();
}

#[test]
fn queries_answer_and_refuse_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("db")).unwrap();
    small(&db);
    assert!(matches!(
        db.recommend("u1", &QueryOptions::model("als")),
        Err(Error::UnknownTable(_))
    ));
    db.train("als", &als(), &TrainOptions::default()).unwrap();
    let q = QueryOptions::model("als").k(5);
    assert!(matches!(db.recommend("ghost", &q), Err(Error::UnknownUser(u)) if u == "ghost"));
    assert!(matches!(
        db.similar("ghost", &q),
        Err(Error::UnknownItem(_))
    ));
    assert!(
        matches!(db.recommend("u1", &q.clone().k(0)), Err(Error::InvalidParameter { name, .. }) if name == "k")
    );

    let seen: Vec<String> = db
        .history("u1")
        .unwrap()
        .into_iter()
        .map(|e| e.item)
        .collect();
    let recs = db.recommend("u1", &q).unwrap();
    assert_eq!(recs.len(), 5);
    assert!(recs.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(recs.iter().all(|h| !seen.contains(&h.id)));
    let all = db
        .recommend(
            "u1",
            &QueryOptions {
                include_seen: true,
                k: 30,
                ..q.clone()
            },
        )
        .unwrap();
    assert!(all.iter().any(|h| seen.contains(&h.id)));

    let even = db
        .recommend(
            "u1",
            &QueryOptions {
                genre: Some("even".into()),
                ..q.clone()
            },
        )
        .unwrap();
    assert!(
        !even.is_empty()
            && even
                .iter()
                .all(|h| h.id[1..].parse::<u32>().unwrap() % 2 == 0)
    );
    assert!(matches!(
        db.recommend(
            "u1",
            &QueryOptions {
                genre: Some("Jazz".into()),
                ..q.clone()
            }
        ),
        Err(Error::InvalidParameter { .. })
    ));

    let sim = db.similar("i4", &q).unwrap();
    assert_eq!(sim.len(), 5);
    assert!(sim.iter().all(|h| h.id != "i4"));
    assert!(sim.windows(2).all(|w| w[0].score >= w[1].score));

    let mut b = db.batch();
    b.push("latecomer", "i1", EventKind::View, 1.0, 0).unwrap();
    b.commit().unwrap();
    assert!(matches!(
        db.recommend("latecomer", &q),
        Err(Error::NotInModel { .. })
    ));

    let f32_path = dir.path().join("items.f32");
    let n = db
        .export_table("als.items", TableFormat::F32, &f32_path)
        .unwrap();
    let t = db.table("als.items").unwrap();
    assert_eq!(
        std::fs::metadata(&f32_path).unwrap().len(),
        (n as usize * t.dim() * 4) as u64
    );
    let ids = std::fs::read_to_string(dir.path().join("items.f32.ids")).unwrap();
    assert_eq!(ids.lines().count(), n as usize);
    let tsv_path = dir.path().join("items.tsv");
    db.export_table("als.items", TableFormat::Tsv, &tsv_path)
        .unwrap();
    let first = std::fs::read_to_string(&tsv_path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let values: Vec<f32> = first
        .split('\t')
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(values, t.row(0).to_vec());
}

#[test]
fn background_jobs_cancel_and_retrain_policies_fire() {
    let db = Db::temporary().unwrap();
    small(&db);
    let h = db
        .spawn_train(
            "bpr",
            &Params::new().set("epochs", 10_000),
            &TrainOptions::default(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    h.cancel();
    assert!(matches!(h.wait(), Err(Error::Cancelled)));
    assert_eq!(
        db.jobs().unwrap().last().unwrap().state,
        recdb::JobState::Cancelled
    );
    assert!(matches!(db.table("bpr.items"), Err(Error::UnknownTable(_))));

    db.set_retrain_policy("popular", &Params::new(), 100)
        .unwrap();
    let mut b = db.batch();
    for i in 0..120 {
        b.push(&format!("v{i}"), "i1", EventKind::View, 1.0, 0)
            .unwrap();
    }
    b.commit().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = db
            .jobs()
            .unwrap()
            .iter()
            .any(|j| j.model == "popular" && j.state == recdb::JobState::Done);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the retrain policy never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(db.table("popular.items").unwrap().rows(), 30);
}

#[test]
fn readers_never_fail_while_models_are_republished() {
    let db = Arc::new(Db::temporary().unwrap());
    small(&db);
    db.train("als", &als(), &TrainOptions::default()).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers that have answered at least one query: training starts once all three run,
    // so the republishes really overlap the queries (on a loaded machine a thread can
    // otherwise start only after the last publish).
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let (db, stop, running) = (db.clone(), stop.clone(), running.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let q = QueryOptions::model("als").k(5);
                    assert_eq!(
                        db.recommend(&format!("u{}", (n + t) % 40), &q)
                            .unwrap()
                            .len(),
                        5
                    );
                    assert_eq!(db.similar(&format!("i{}", n % 30), &q).unwrap().len(), 5);
                    if n == 0 {
                        running.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.load(std::sync::atomic::Ordering::Relaxed) < 3 {
        assert!(Instant::now() < deadline, "a reader never answered a query");
        std::thread::sleep(Duration::from_millis(1));
    }
    for seed in 0..4 {
        db.train(
            "als",
            &als(),
            &TrainOptions {
                seed,
                threads: None,
                ..Default::default()
            },
        )
        .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}
