//! Edges of the public API: id blocks filled in one write, extreme timestamps, a
//! database opened twice, `keep_versions = 1`, explicit ratings through `sgd`, export
//! paths without an extension, users known only from attributes.

use recdb::{
    Config, Db, Error, EventKind, ItemRecord, Params, QueryOptions, TableFormat, TrainOptions,
    UserRecord,
};

#[test]
fn one_write_filling_several_id_blocks_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (items, users) = {
        let db = Db::open(&path).unwrap();
        // 9000 new items in one commit (three id blocks of 4096), 70 users (two buckets).
        let mut b = db.batch();
        for i in 0..9000 {
            b.push(
                &format!("u{}", i % 70),
                &format!("item-{i}"),
                EventKind::View,
                1.0,
                i,
            )
            .unwrap();
        }
        let r = b.commit().unwrap();
        assert_eq!((r.new_items, r.new_users), (9000, 70));
        // 5000 more items through attributes only.
        let recs: Vec<ItemRecord> = (0..5000)
            .map(|i| ItemRecord {
                id: format!("attr-{i}"),
                title: Some(format!("title {i}")),
                ..Default::default()
            })
            .collect();
        assert_eq!(db.put_items(&recs).unwrap().new_ids, 5000);
        (db.item_ids().unwrap(), db.user_ids().unwrap())
    };
    let db = Db::open(&path).unwrap();
    assert_eq!(db.item_ids().unwrap(), items);
    assert_eq!(db.user_ids().unwrap(), users);
    assert_eq!(db.item_ids().unwrap().len(), 14000);
    assert_eq!(
        db.item("attr-4999").unwrap().title.as_deref(),
        Some("title 4999")
    );
    // Events on attribute-only items reuse their ids.
    let mut b = db.batch();
    b.push("u1", "attr-4999", EventKind::View, 1.0, 1).unwrap();
    let r = b.commit().unwrap();
    assert_eq!((r.new_items, r.new_users), (0, 0));
    assert_eq!(db.stats().unwrap().items, 14000);
    assert_eq!(db.history("u69").unwrap().len(), 9000 / 70);
    db.check().unwrap();
}

#[test]
fn extreme_timestamps_keep_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let stamps = [0, i64::MAX, -1, i64::MIN, 1, i64::MIN + 1, i64::MAX - 1, -1];
    {
        let db = Db::open(&path).unwrap();
        for (n, ts) in stamps.iter().enumerate() {
            let mut b = db.batch();
            b.push("u", &format!("i{n}"), EventKind::Click, n as f32, *ts)
                .unwrap();
            b.commit().unwrap();
        }
    }
    let db = Db::open(&path).unwrap();
    let got: Vec<(i64, String)> = db
        .history("u")
        .unwrap()
        .into_iter()
        .map(|h| (h.timestamp, h.item))
        .collect();
    let mut want: Vec<(i64, usize)> = stamps.iter().copied().zip(0..).collect();
    want.sort(); // by time, ties in arrival order
    let want: Vec<(i64, String)> = want
        .into_iter()
        .map(|(t, n)| (t, format!("i{n}")))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn opening_an_open_database_again_is_an_error_not_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Db::open(&path).unwrap();
    let mut b = db.batch();
    b.push("u", "i", EventKind::View, 1.0, 0).unwrap();
    b.commit().unwrap();
    let second = std::panic::catch_unwind(|| Db::open(&path).map(|_| ()));
    match second {
        Ok(Err(_)) => {}
        Ok(Ok(())) => panic!("a second handle opened the same directory"),
        Err(_) => panic!("opening a database twice panicked"),
    }
    // The first handle is unaffected.
    let mut b = db.batch();
    b.push("u", "j", EventKind::View, 1.0, 1).unwrap();
    b.commit().unwrap();
    assert_eq!(db.history("u").unwrap().len(), 2);
}

#[test]
fn keep_one_version_still_serves_open_views() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(Config {
        keep_versions: 1,
        ..Config::new(dir.path().join("db"))
    })
    .unwrap();
    let mut b = db.batch();
    for u in 0..20 {
        for k in 0..3 {
            b.push(
                &format!("u{u}"),
                &format!("i{}", (u + k * 3) % 15),
                EventKind::View,
                1.0,
                0,
            )
            .unwrap();
        }
    }
    b.commit().unwrap();
    db.train("popular", &Params::new(), &TrainOptions::default())
        .unwrap();
    let old = db.table("popular.items").unwrap();
    let rows: Vec<Vec<f32>> = (0..old.rows()).map(|r| old.row(r).to_vec()).collect();
    let mut b = db.batch();
    for u in 0..20 {
        b.push(&format!("u{u}"), "i0", EventKind::View, 1.0, 1)
            .unwrap();
    }
    b.commit().unwrap();
    db.train("popular", &Params::new(), &TrainOptions::default())
        .unwrap();
    let new = db.table("popular.items").unwrap();
    assert!(new.version() > old.version());
    assert_ne!(new.row(0).to_vec(), rows[0]);
    assert_eq!(
        (0..old.rows())
            .map(|r| old.row(r).to_vec())
            .collect::<Vec<_>>(),
        rows
    );
    let info = db
        .tables()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "popular.items")
        .unwrap();
    assert_eq!(info.versions, vec![new.version()]);
    assert_eq!(db.check().unwrap().table_versions, 2);
    assert!(matches!(
        Db::open_with(Config {
            keep_versions: 0,
            ..Config::default()
        }),
        Err(Error::InvalidParameter { name, .. }) if name == "keep_versions"
    ));
}

#[test]
fn sgd_scores_are_its_predictions() {
    let db = Db::temporary().unwrap();
    let mut b = db.batch();
    for u in 0..60 {
        for k in 0..10 {
            let i = (u * 3 + k * 7) % 40;
            let rating = 1.0 + ((u + i) % 5) as f32;
            b.push(
                &format!("u{u}"),
                &format!("i{i}"),
                EventKind::Rating,
                rating,
                k as i64,
            )
            .unwrap();
        }
    }
    b.commit().unwrap();
    db.train(
        "sgd",
        &Params::new().set("factors", 4).set("epochs", 5),
        &TrainOptions::default(),
    )
    .unwrap();
    let hits = db
        .recommend("u3", &QueryOptions::model("sgd").k(10))
        .unwrap();
    assert_eq!(hits.len(), 10);
    for w in hits.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
    for h in &hits {
        let p = db.predict("u3", &h.id, "sgd").unwrap();
        assert!((p - h.score).abs() < 1e-4, "{p} vs {h:?}");
        // The global mean (about 3) is part of the score.
        assert!(p > 0.0 && p < 7.0, "{p}");
    }
}

#[test]
fn export_without_extension_and_attribute_only_users() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::temporary().unwrap();
    let mut b = db.batch();
    b.push("a", "x", EventKind::View, 1.0, 0).unwrap();
    b.push("b", "y", EventKind::View, 1.0, 0).unwrap();
    b.commit().unwrap();
    db.put_users(&[UserRecord {
        id: "quiet".into(),
        attrs: vec![("age".into(), "40".into())],
    }])
    .unwrap();
    assert!(db.history("quiet").unwrap().is_empty());
    db.train("popular", &Params::new(), &TrainOptions::default())
        .unwrap();
    let out = dir.path().join("out");
    assert_eq!(
        db.export_table("popular.users", TableFormat::F32, &out)
            .unwrap(),
        3
    );
    assert_eq!(std::fs::read(&out).unwrap().len(), 3 * 4);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.ids")).unwrap(),
        "a\nb\nquiet\n"
    );
    // A user with no events still gets (popular) recommendations.
    let hits = db
        .recommend("quiet", &QueryOptions::model("popular").k(2))
        .unwrap();
    assert_eq!(hits.len(), 2);
}

/// `.` and `..` name directories wherever a table name becomes a path: refused, and
/// nothing is published.
#[test]
fn dot_table_names_are_refused() {
    let db = Db::temporary().unwrap();
    for name in [".", ".."] {
        let r = db.put_table(name, recdb::RowSpace::Other, 2, &[1.0, 2.0], vec![]);
        assert!(
            matches!(&r, Err(Error::InvalidParameter { name: n, .. }) if n == "table"),
            "{name}: {r:?}"
        );
    }
    assert!(db.tables().unwrap().is_empty());
    assert!(db.jobs().unwrap().is_empty());
    db.put_table("a.b", recdb::RowSpace::Other, 2, &[1.0, 2.0], vec![])
        .unwrap();
}
