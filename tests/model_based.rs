//! Model-based test: random sequences of operations on a database on disk, checked after
//! every step against a plain in-memory model (counts, per-user histories, table versions).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use recdb::{Db, EventKind, Params, QueryOptions, RawEvent, TrainOptions};

#[derive(Debug, Clone)]
enum Op {
    /// Events (user, item, timestamp); `bad` puts a NaN value at that position.
    Log(Vec<(u8, u8, i64)>, Option<usize>),
    Train(&'static str),
    Query(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::collection::vec((0u8..6, 0u8..8, -3i64..3), 1..6), prop::option::weighted(0.25, 0usize..6))
            .prop_map(|(evs, bad)| Op::Log(evs, bad)),
        1 => prop_oneof![Just("popular"), Just("als")].prop_map(Op::Train),
        2 => (0u8..7).prop_map(Op::Query),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    /// Per user: (timestamp, item) in the order logged.
    hist: BTreeMap<String, Vec<(i64, String)>>,
    items: BTreeSet<String>,
    events: u64,
    /// Table name -> current version.
    versions: BTreeMap<String, u64>,
    trained: BTreeSet<&'static str>,
}

fn check(db: &Db, m: &Model) {
    let st = db.stats().unwrap();
    assert_eq!(st.users, m.hist.len() as u64);
    assert_eq!(st.items, m.items.len() as u64);
    assert_eq!(st.events, m.events);
    for (u, h) in &m.hist {
        let got = db.history(u).unwrap();
        // Time order; events with equal timestamps keep the order they were logged in.
        let mut want = h.clone();
        want.sort_by_key(|(t, _)| *t);
        let got: Vec<(i64, String)> = got.into_iter().map(|e| (e.timestamp, e.item)).collect();
        assert_eq!(got, want, "history of {u}");
    }
    let tables: BTreeMap<String, u64> = db
        .tables()
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.version))
        .collect();
    assert_eq!(tables, m.versions);
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = Db::open(&path).unwrap();
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Log(evs, bad) => {
                let raw: Vec<RawEvent> = evs
                    .iter()
                    .enumerate()
                    .map(|(i, &(u, it, ts))| RawEvent {
                        user: format!("u{u}"),
                        item: format!("i{it}"),
                        kind: EventKind::View,
                        value: if bad == Some(i) { f32::NAN } else { 1.0 },
                        timestamp: ts,
                        group: None,
                    })
                    .collect();
                let invalid = bad.is_some_and(|b| b < evs.len());
                let r = db.log_events(&raw);
                assert_eq!(r.is_err(), invalid, "{r:?}");
                if !invalid {
                    for e in raw {
                        m.items.insert(e.item.clone());
                        m.hist
                            .entry(e.user)
                            .or_default()
                            .push((e.timestamp, e.item));
                        m.events += 1;
                    }
                }
            }
            Op::Train(model) => {
                let p = Params::new().set("factors", 4);
                let p = if model == "als" { p } else { Params::new() };
                let r = db.train(model, &p, &TrainOptions::default());
                if m.events == 0 {
                    assert!(r.is_err());
                } else {
                    let info = r.unwrap();
                    assert_eq!(info.watermark, m.events);
                    let mut next = 0;
                    for t in db.tables().unwrap() {
                        if info.tables.contains(&t.name) {
                            // Every table of one job is a new version, newer than any before.
                            let old = m.versions.get(&t.name).copied().unwrap_or(0);
                            assert!(t.version > old);
                            next = next.max(t.version);
                            m.versions.insert(t.name, t.version);
                        }
                    }
                    assert!(next > 0, "{info:?}");
                    m.trained.insert(model);
                }
            }
            Op::Query(u) => {
                let user = format!("u{u}");
                for &model in &["popular", "als"] {
                    let r = db.recommend(&user, &QueryOptions::model(model).k(3));
                    if !m.trained.contains(model) || !m.hist.contains_key(&user) {
                        assert!(r.is_err());
                        continue;
                    }
                    // Users added after the training may be unknown to the model: an error
                    // is fine, a wrong answer is not.
                    if let Ok(hits) = r {
                        assert!(hits.len() <= 3);
                        let ids: BTreeSet<&str> = hits.iter().map(|h| h.id.as_str()).collect();
                        assert_eq!(ids.len(), hits.len(), "duplicate hits");
                        assert!(ids.iter().all(|i| m.items.contains(*i)));
                    }
                }
            }
            Op::Reopen => {
                drop(db);
                db = Db::open(&path).unwrap();
            }
        }
        check(&db, &m);
    }
    db.check().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn matches_the_model(ops in prop::collection::vec(op(), 1..24)) {
        run(ops);
    }
}
