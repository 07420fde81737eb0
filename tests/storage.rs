//! Storage: reopening after every kind of write, a naive model of the log, atomicity of
//! bad input, table versions, and the format check.

mod common;

use std::collections::BTreeMap;

use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use recdb::{
    Db, Error, EventKind, HistoryEntry, ItemRecord, Params, RawEvent, TrainOptions, UserRecord,
};

fn all_histories(db: &Db) -> BTreeMap<String, Vec<HistoryEntry>> {
    db.user_ids()
        .unwrap()
        .into_iter()
        .map(|u| (u.clone(), db.history(&u).unwrap()))
        .collect()
}

#[test]
fn reopen_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (hist, users, items, events) = {
        let db = Db::open(dir.path()).unwrap();
        load_synthetic(&db, 100, 200, 10, 1);
        let r = db
            .log_events(&[RawEvent {
                user: "late".into(),
                item: "i3".into(),
                kind: EventKind::Rating,
                value: 4.5,
                timestamp: -7,
                group: Some("s1".into()),
            }])
            .unwrap();
        assert_eq!(r.events, 1);
        assert_eq!(r.new_users, 1);
        assert_eq!(r.total_events, 1001);
        let s = db.stats().unwrap();
        (all_histories(&db), s.users, s.items, s.events)
    };
    assert_eq!((users, events), (101, 1001));
    let db = Db::open(dir.path()).unwrap();
    let s = db.stats().unwrap();
    assert_eq!((s.users, s.items, s.events), (users, items, events));
    assert_eq!(all_histories(&db), hist);
    let late = db.history("late").unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].kind, late[0].value, late[0].timestamp),
        (EventKind::Rating, 4.5, -7)
    );
    let rep = db.check().unwrap();
    assert_eq!(rep.events, 1001);
}

#[test]
fn reopen_after_put_items_and_users() {
    let dir = tempfile::tempdir().unwrap();
    let item_rec = ItemRecord {
        id: "movie-1".into(),
        title: Some("Heat".into()),
        genres: vec!["Crime".into(), "Thriller".into()],
        text: Some("a heist".into()),
        attrs: vec![("release_year".into(), "1995".into())],
    };
    let user_rec = UserRecord {
        id: "alice".into(),
        attrs: vec![("age".into(), "31".into()), ("zip".into(), "02139".into())],
    };
    {
        let db = Db::open(dir.path()).unwrap();
        let rep = db.put_items(std::slice::from_ref(&item_rec)).unwrap();
        assert_eq!(rep.new_ids, 1);
        db.put_users(std::slice::from_ref(&user_rec)).unwrap();
        // Overwrite keeps the id and replaces the attributes.
        let mut newer = item_rec.clone();
        newer.title = Some("Heat (1995)".into());
        let rep = db.put_items(&[newer]).unwrap();
        assert_eq!(rep.new_ids, 0);
    }
    let db = Db::open(dir.path()).unwrap();
    let got = db.item("movie-1").unwrap();
    assert_eq!(got.title.as_deref(), Some("Heat (1995)"));
    assert_eq!(got.genres, item_rec.genres);
    assert_eq!(got.text, item_rec.text);
    assert_eq!(got.attrs, item_rec.attrs);
    assert_eq!(db.user("alice").unwrap(), user_rec);
    let s = db.stats().unwrap();
    assert_eq!((s.users, s.items, s.events), (1, 1, 0));
    assert!(matches!(db.item("nope"), Err(Error::UnknownItem(_))));
    assert!(matches!(db.user("nope"), Err(Error::UnknownUser(_))));
    db.check().unwrap();
}

#[test]
fn reopen_after_train_drop_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (als_users, als_items, pop_items, job_ids) = {
        let db = Db::open(dir.path()).unwrap();
        load_synthetic(&db, 80, 120, 8, 2);
        put_genres(&db, 120);
        train_als(&db, 7);
        db.train("popular", &Params::new(), &TrainOptions::default())
            .unwrap();
        let jobs: Vec<u64> = db.jobs().unwrap().iter().map(|j| j.id).collect();
        (
            table_rows(&db, "als.users"),
            table_rows(&db, "als.items"),
            table_rows(&db, "popular.items"),
            jobs,
        )
    };
    assert_eq!(als_users.1.len(), 80);
    assert_eq!(als_items.1.len(), 120);
    assert_eq!(job_ids.len(), 2);
    {
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(table_rows(&db, "als.users"), als_users);
        assert_eq!(table_rows(&db, "als.items"), als_items);
        assert_eq!(table_rows(&db, "popular.items"), pop_items);
        let jobs = db.jobs().unwrap();
        assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), job_ids);
        for j in &jobs {
            assert_eq!(j.state, recdb::JobState::Done, "{j:?}");
            assert_eq!(j.watermark, 640);
        }
        assert_eq!(jobs[0].model, "als");
        assert_eq!(
            jobs[0].tables,
            vec!["als.users".to_string(), "als.items".to_string()]
        );
        let names: Vec<String> = db.tables().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        db.drop_table("als.items").unwrap();
        assert!(matches!(db.table("als.items"), Err(Error::UnknownTable(_))));
        assert!(matches!(
            db.drop_table("als.items"),
            Err(Error::UnknownTable(_))
        ));
    }
    let db = Db::open(dir.path()).unwrap();
    assert!(matches!(db.table("als.items"), Err(Error::UnknownTable(_))));
    assert_eq!(table_rows(&db, "als.users"), als_users);
    assert_eq!(db.tables().unwrap().len(), 3);
    let rep = db.check().unwrap();
    assert_eq!(rep.table_versions, 3);
    // A model whose item table is gone answers with UnknownTable, not a panic.
    assert!(matches!(
        db.recommend("u1", &recdb::QueryOptions::model("als")),
        Err(Error::UnknownTable(_))
    ));
}

/// (arrival seq, item, kind, value, timestamp)
type ModelEvent = (u64, String, EventKind, f32, i64);

/// The model: per user, events in arrival order; history sorts by (timestamp, arrival).
#[derive(Default)]
struct Model {
    log: BTreeMap<String, Vec<ModelEvent>>,
    items: std::collections::BTreeSet<String>,
    seq: u64,
}

impl Model {
    fn expected(&self, user: &str) -> Vec<HistoryEntry> {
        let mut evs = self.log[user].clone();
        evs.sort_by_key(|e| (e.4, e.0));
        evs.into_iter()
            .map(|(_, item, kind, value, timestamp)| HistoryEntry {
                item,
                kind,
                value,
                timestamp,
            })
            .collect()
    }
}

fn compare(db: &Db, m: &Model) {
    let s = db.stats().unwrap();
    assert_eq!(s.events, m.seq);
    assert_eq!(s.users, m.log.len() as u64);
    assert_eq!(s.items, m.items.len() as u64);
    for u in m.log.keys() {
        assert_eq!(db.history(u).unwrap(), m.expected(u), "history of {u}");
    }
}

#[test]
fn random_commits_match_naive_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SmallRng::seed_from_u64(0xdb);
    let mut m = Model::default();
    let mut db = Db::open(dir.path()).unwrap();
    let kinds = EventKind::ALL;
    for round in 0..120 {
        // Mostly small batches, a few large ones; >64 users, >4096 items.
        let n = if round % 15 == 0 {
            rng.random_range(2000..5000)
        } else {
            rng.random_range(1..60)
        };
        let mut b = db.batch();
        for _ in 0..n {
            let u = format!("user-{}", rng.random_range(0..300u32));
            let i = format!("item-{}", rng.random_range(0..6000u32));
            let kind = kinds[rng.random_range(0..kinds.len())];
            let value = rng.random_range(0..10) as f32 * 0.5;
            // out-of-order timestamps, with ties
            let ts = rng.random_range(-50..1000i64);
            b.push(&u, &i, kind, value, ts).unwrap();
            m.log
                .entry(u)
                .or_default()
                .push((m.seq, i.clone(), kind, value, ts));
            m.items.insert(i);
            m.seq += 1;
        }
        let r = b.commit().unwrap();
        assert_eq!(r.total_events, m.seq);
        if round % 20 == 7 {
            compare(&db, &m);
        }
        if round % 40 == 39 {
            drop(db);
            db = Db::open(dir.path()).unwrap();
            compare(&db, &m);
        }
    }
    assert!(m.items.len() > 4096 && m.log.len() > 64);
    compare(&db, &m);
    let rep = db.check().unwrap();
    assert_eq!(rep.events, m.seq);
}

#[test]
fn bad_input_leaves_db_unchanged() {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 10, 40, 5, 3);
    let snapshot = |db: &Db| {
        let s = db.stats().unwrap();
        (s.events, s.users, s.items, s.groups, all_histories(db))
    };
    let before = snapshot(&db);

    let mut b = db.batch();
    b.push("u1", "i1", EventKind::View, 1.0, 5).unwrap();
    assert!(matches!(
        b.push("", "i1", EventKind::View, 1.0, 5),
        Err(Error::InvalidEvent { index: 1, .. })
    ));
    assert!(matches!(
        b.push("u1", "", EventKind::View, 1.0, 5),
        Err(Error::InvalidEvent { index: 1, .. })
    ));
    assert!(b.push("u1", "i2", EventKind::Rating, f32::NAN, 5).is_err());
    assert!(b
        .push("u1", "i2", EventKind::Rating, f32::INFINITY, 5)
        .is_err());
    assert!(b
        .push_in_group("u1", "i2", EventKind::View, 1.0, 5, Some(""))
        .is_err());
    assert_eq!(b.len(), 1, "rejected events must not enter the batch");
    drop(b); // never committed
    assert!(matches!(db.batch().commit(), Err(Error::Empty(_))));

    // log_events with one bad event rejects all of them
    let good = RawEvent {
        user: "newbie".into(),
        item: "brand-new".into(),
        kind: EventKind::Click,
        value: 1.0,
        timestamp: 1,
        group: None,
    };
    let bad = RawEvent {
        value: f32::NAN,
        ..good.clone()
    };
    assert!(db.log_events(&[good.clone(), bad]).is_err());
    assert!(matches!(db.log_events(&[]), Err(Error::Empty(_))));
    assert!(matches!(db.put_items(&[]), Err(Error::Empty(_))));
    assert!(db
        .put_items(&[ItemRecord {
            id: String::new(),
            ..Default::default()
        }])
        .is_err());
    assert!(db
        .put_users(&[UserRecord {
            id: String::new(),
            attrs: vec![]
        }])
        .is_err());

    assert_eq!(snapshot(&db), before);
    assert!(matches!(db.history("newbie"), Err(Error::UnknownUser(_))));
    assert!(matches!(db.item("brand-new"), Err(Error::UnknownItem(_))));
    assert_eq!(before.1, 10);
    db.check().unwrap();
}

#[test]
fn table_versions_and_held_views() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    load_synthetic(&db, 60, 100, 8, 4);
    train_als(&db, 1);
    let v1 = db.table("als.items").unwrap();
    let rows1: Vec<Vec<f32>> = (0..v1.rows()).map(|r| v1.row(r).to_vec()).collect();
    train_als(&db, 2);
    let v2 = db.table("als.items").unwrap();
    assert!(v2.version() > v1.version());
    let rows2: Vec<Vec<f32>> = (0..v2.rows()).map(|r| v2.row(r).to_vec()).collect();
    assert_ne!(rows1, rows2, "a different seed must give different vectors");
    let info = db
        .tables()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "als.items")
        .unwrap();
    assert_eq!(info.versions, vec![v1.version(), v2.version()]);
    // third publish: v1 is garbage-collected on disk, but the held view still reads it
    train_als(&db, 3);
    let v3 = db.table("als.items").unwrap();
    assert!(v3.version() > v2.version());
    let info = db
        .tables()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "als.items")
        .unwrap();
    assert_eq!(
        info.versions,
        vec![v2.version(), v3.version()],
        "keeps 2 versions"
    );
    assert_eq!(
        (0..v1.rows())
            .map(|r| v1.row(r).to_vec())
            .collect::<Vec<_>>(),
        rows1
    );
    assert_eq!(
        (0..v2.rows())
            .map(|r| v2.row(r).to_vec())
            .collect::<Vec<_>>(),
        rows2
    );
    let rep = db.check().unwrap();
    assert_eq!(rep.table_versions, 4, "2 versions of 2 tables");
    drop((v1, v2, v3));
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.check().unwrap().table_versions, 4);
}

#[test]
fn foreign_sled_database_is_unsupported_format() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = sled::open(dir.path()).unwrap();
        s.insert(b"hello", b"world").unwrap();
        s.flush().unwrap();
    }
    match Db::open(dir.path()) {
        Err(Error::UnsupportedFormat { .. }) => {}
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    // and it did not write its own marker into the foreign database
    let s = sled::open(dir.path()).unwrap();
    assert_eq!(s.len(), 1);
}

#[test]
fn opening_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("plain.txt");
    std::fs::write(&f, b"not a database").unwrap();
    assert!(Db::open(&f).is_err());
    assert_eq!(std::fs::read(&f).unwrap(), b"not a database");
}

#[test]
fn export_table_formats() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 20, 40, 5, 5);
    train_als(&db, 1);
    let t = db.table("als.items").unwrap();
    let p = dir.path().join("items.f32");
    assert_eq!(
        db.export_table("als.items", recdb::TableFormat::F32, &p)
            .unwrap(),
        t.rows() as u64
    );
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes.len(), t.rows() * t.dim() * 4);
    let first: Vec<f32> = bytes[..t.dim() * 4]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(first, t.row(0).to_vec());
    let ids = std::fs::read_to_string(dir.path().join("items.f32.ids")).unwrap();
    assert_eq!(ids.lines().collect::<Vec<_>>(), db.item_ids().unwrap());
    let tsv = dir.path().join("items.tsv");
    db.export_table("als.items", recdb::TableFormat::Tsv, &tsv)
        .unwrap();
    let text = std::fs::read_to_string(&tsv).unwrap();
    let line: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    assert_eq!(line[0], db.item_ids().unwrap()[0]);
    assert_eq!(line.len(), t.dim() + 1);
    assert!(matches!(
        db.export_table("nope", recdb::TableFormat::Tsv, &tsv),
        Err(Error::UnknownTable(_))
    ));
}

#[test]
fn second_open_of_same_path_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let r = std::panic::catch_unwind(|| Db::open(dir.path()).map(|_| ()));
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
    drop(db);
    Db::open(dir.path()).unwrap();
}

#[test]
fn id_limits_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path()).unwrap();
        let long = "x".repeat(1024);
        let too_long = "x".repeat(1025);
        let mut b = db.batch();
        b.push(&long, &long, EventKind::View, 1.0, 1).unwrap();
        assert!(b.push(&too_long, "i", EventKind::View, 1.0, 1).is_err());
        assert!(b.push("u", &too_long, EventKind::View, 1.0, 1).is_err());
        b.push_in_group("u", "i", EventKind::Cart, 2.0, 2, Some("basket-1"))
            .unwrap();
        b.push_in_group("u", "j", EventKind::Purchase, 3.0, 3, Some("basket-1"))
            .unwrap();
        b.push_in_group("v", "j", EventKind::Purchase, f32::MAX, 3, Some("basket-2"))
            .unwrap();
        assert_eq!(b.commit().unwrap().events, 4);
        assert_eq!(db.stats().unwrap().groups, 2);
        db.flush().unwrap();
    }
    let db = Db::open(dir.path()).unwrap();
    let s = db.stats().unwrap();
    assert_eq!((s.users, s.items, s.events, s.groups), (3, 3, 4, 2));
    assert_eq!(db.history(&"x".repeat(1024)).unwrap().len(), 1);
    assert_eq!(db.history("v").unwrap()[0].value, f32::MAX);
    let u = db.history("u").unwrap();
    assert_eq!(
        u.iter()
            .map(|e| (e.item.as_str(), e.kind))
            .collect::<Vec<_>>(),
        vec![("i", EventKind::Cart), ("j", EventKind::Purchase)]
    );
    db.check().unwrap();
}

#[test]
fn garbage_files_in_the_directory_are_an_error_not_a_panic() {
    for files in [
        &[("conf", &b"garbage"[..])][..],
        &[("db", &[0xffu8; 4096][..])][..],
        &[
            (
                "conf",
                &b"segment_size: 524288\nuse_compression: false\nversion: 0.34\n"[..],
            ),
            ("db", &[7u8; 100_000][..]),
        ][..],
        &[("snap.0000000000000000", &[1u8; 64][..])][..],
    ] {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let names: Vec<_> = files.iter().map(|f| f.0).collect();
        let r = std::panic::catch_unwind(|| Db::open(dir.path()).map(|_| ()));
        match r {
            Err(_) => panic!("panic opening a directory with garbage {names:?}"),
            Ok(Ok(())) => {
                // sled may start afresh when it finds nothing it recognises; then the
                // database must at least be a usable, empty recdb database
                let db = Db::open(dir.path()).unwrap();
                assert_eq!(db.stats().unwrap().events, 0, "{names:?}");
            }
            Ok(Err(_)) => {}
        }
    }
}
