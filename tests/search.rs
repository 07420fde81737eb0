//! Search events end to end: pushed and imported, read back, refused with the line and
//! field, carried by dump/restore, kept across a reopen, and the synthetic searches.

use std::io::Write;

use recdb::testkit::{generate, generate_searches, SearchConfig, SynthConfig};
use recdb::{Db, Error, EventKind};

fn texts(db: &Db, user: &str) -> Vec<(String, i64)> {
    db.searches(user)
        .unwrap()
        .into_iter()
        .map(|s| (s.text, s.timestamp))
        .collect()
}

fn file(dir: &tempfile::TempDir, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    p
}

#[test]
fn pushed_searches_read_back_in_time_order_and_count() {
    let db = Db::temporary().unwrap();
    let mut b = db.batch();
    b.push("ann", "matrix", EventKind::View, 1.0, 10).unwrap();
    b.push_search("ann", "The Matrix (1999) sequel?", 20)
        .unwrap();
    b.push_search("ann", "keanu REEVES", 5).unwrap();
    // A user who only searched exists, with no history.
    b.push_search("sam", "jazz", 1).unwrap();
    let r = b.commit().unwrap();
    assert_eq!(
        (r.events, r.searches, r.new_users, r.new_items),
        (1, 3, 2, 1)
    );
    assert_eq!(
        texts(&db, "ann"),
        vec![
            ("keanu reeves".to_string(), 5),
            ("the matrix sequel".to_string(), 20)
        ]
    );
    assert_eq!(texts(&db, "sam"), vec![("jazz".to_string(), 1)]);
    assert!(db.history("sam").unwrap().is_empty());
    assert!(matches!(db.searches("nobody"), Err(Error::UnknownUser(_))));
    let st = db.stats().unwrap();
    assert_eq!((st.users, st.events, st.searches), (2, 1, 3));
    let c = db.check().unwrap();
    assert_eq!((c.events, c.searches), (1, 3));
    // A batch of searches only commits too.
    let mut b = db.batch();
    b.push_search("sam", "blue note", 2).unwrap();
    assert_eq!(b.commit().unwrap().searches, 1);
    assert_eq!(db.stats().unwrap().searches, 4);
}

#[test]
fn a_query_without_words_is_refused_and_the_batch_stays_usable() {
    let db = Db::temporary().unwrap();
    let mut b = db.batch();
    for bad in ["", "  ", "a 1 ?", "x"] {
        let err = b.push_search("ann", bad, 1).unwrap_err().to_string();
        assert!(err.contains("no word"), "{bad:?}: {err}");
    }
    assert!(b.push_search("", "jazz", 1).is_err());
    assert!(b
        .push_search("ann", &"word ".repeat(recdb::MAX_QUERY), 1)
        .is_err());
    assert!(b.is_empty());
    b.push_search("ann", "jazz", 1).unwrap();
    b.commit().unwrap();
    assert_eq!(db.stats().unwrap().searches, 1);
}

#[test]
fn imported_searches_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = "user\titem\tquery\tkind\ttimestamp\n\
               u1\ti1\t\tview\t100\n\
               u1\t\tSpace Opera\tsearch\t101\n\
               u2\t\tjazz 1959\t\t102\n";
    let csv = "user,item,query,ts\nu1,,\"red, dead\",5\nu1,i2,,6\n";
    let jsonl = "{\"user\":\"u1\",\"query\":\"noir\",\"timestamp\":7}\n\
                 {\"user\":\"u3\",\"item\":null,\"q\":\"western\",\"kind\":\"search\"}\n\
                 {\"user\":\"u1\",\"item\":\"i1\",\"kind\":\"click\",\"timestamp\":8}\n";
    let db = Db::temporary().unwrap();
    let r = db.import_events(&file(&dir, "a.tsv", tsv), None).unwrap();
    assert_eq!((r.events, r.searches), (1, 2));
    let r = db.import_events(&file(&dir, "b.csv", csv), None).unwrap();
    assert_eq!((r.events, r.searches), (1, 1));
    let r = db
        .import_events(&file(&dir, "c.jsonl", jsonl), None)
        .unwrap();
    assert_eq!((r.events, r.searches), (1, 2));
    assert_eq!(
        texts(&db, "u1"),
        vec![
            ("red dead".to_string(), 5),
            ("noir".to_string(), 7),
            ("space opera".to_string(), 101)
        ]
    );
    assert_eq!(texts(&db, "u2"), vec![("jazz".to_string(), 102)]);
    // Without a timestamp column a row's timestamp is its index.
    assert_eq!(texts(&db, "u3"), vec![("western".to_string(), 1)]);
    // read_events leaves searches out; parse_event_rows keeps them.
    assert_eq!(
        recdb::testkit::read_events(dir.path().join("a.tsv"), None)
            .unwrap()
            .len(),
        1
    );
    let rows = recdb::testkit::parse_event_rows("a.tsv", tsv.as_bytes(), None).unwrap();
    assert!(matches!(&rows[1], recdb::EventRow::Search(s) if s.text == "Space Opera"));
    db.check().unwrap();
}

#[test]
fn bad_search_rows_name_file_line_and_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::temporary().unwrap();
    db.import_events(
        &file(&dir, "ok.tsv", "user\titem\tquery\nu1\ti1\t\nu1\t\tjazz\n"),
        None,
    )
    .unwrap();
    let before = (db.stats().unwrap().searches, texts(&db, "u1"));
    let cases = [
        (
            "both.tsv",
            "user\titem\tquery\nu1\t\tok\nu1\ti2\tjazz\n",
            "both.tsv:3",
            "query",
        ),
        (
            "neither.tsv",
            "user\titem\tquery\nu1\t\tok\nu1\t\t\n",
            "neither.tsv:3",
            "item",
        ),
        (
            "noword.tsv",
            "user\titem\tquery\nu1\t\tok\nu1\t\t42 !\n",
            "noword.tsv:3",
            "query",
        ),
        (
            "kind.tsv",
            "user\titem\tquery\tkind\nu1\t\tok\t\nu1\t\tjazz\tview\n",
            "kind.tsv:3",
            "kind",
        ),
        (
            "searchkind.tsv",
            "user\titem\tquery\tkind\nu1\ti1\t\tsearch\n",
            "searchkind.tsv:2",
            "kind",
        ),
        (
            "both.jsonl",
            "{\"user\":\"u1\",\"q\":\"ok\"}\n{\"user\":\"u1\",\"item\":\"i\",\"q\":\"jazz\"}\n",
            "both.jsonl:2",
            "q",
        ),
        (
            "neither.csv",
            "user,item,query\nu1,,ok\nu9,,\n",
            "neither.csv:3",
            "item",
        ),
    ];
    for (name, body, at, field) in cases {
        let err = db.import_events(&file(&dir, name, body), None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(at) && msg.contains(field), "{name}: {msg}");
        match err {
            Error::Parse { field: f, .. } => assert_eq!(f, field, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(
            (db.stats().unwrap().searches, texts(&db, "u1")),
            before,
            "{name}"
        );
    }
    assert!(db.searches("u9").is_err(), "a rejected file adds no user");
}

#[test]
fn searches_survive_reopen_and_dump_restore() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Db::open(&path).unwrap();
        for c in 0..20 {
            let mut b = db.batch();
            for u in 0..70 {
                b.push(
                    &format!("u{u}"),
                    &format!("i{}", (u + c) % 9),
                    EventKind::View,
                    1.0,
                    c,
                )
                .unwrap();
                if (u + c) % 3 == 0 {
                    b.push_search(
                        &format!("u{u}"),
                        &format!("word{} query", ["a", "b", "c"][c as usize % 3]),
                        c,
                    )
                    .unwrap();
                }
            }
            b.commit().unwrap();
        }
    }
    let db = Db::open(&path).unwrap();
    let st = db.stats().unwrap();
    assert_eq!((st.events, st.users), (1400, 70));
    let n = st.searches;
    assert_eq!(
        n,
        (0..20)
            .map(|c| (0..70).filter(|u| (u + c) % 3 == 0).count() as u64)
            .sum::<u64>()
    );
    assert_eq!(db.check().unwrap().searches, n);
    let u5 = texts(&db, "u5");
    assert_eq!(u5.len(), 7);
    assert!(u5.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(u5[0], ("wordb query".to_string(), 1));
    // Dump, restore into a new database, dump again: the same bytes.
    let mut first = Vec::new();
    let report = db.dump(&mut first).unwrap();
    assert_eq!((report.events, report.searches), (1400, n));
    let copy = Db::temporary().unwrap();
    copy.restore(&mut &first[..], "first").unwrap();
    let mut second = Vec::new();
    copy.dump(&mut second).unwrap();
    assert!(first == second, "dump of the restored database differs");
    assert_eq!(texts(&copy, "u5"), u5);
    copy.check().unwrap();
}

/// sled with recdb's settings; retried, since the previous handle's background flusher
/// can hold the directory lock for a moment after it is dropped.
fn raw(dir: &std::path::Path) -> sled::Db {
    for _ in 0..50 {
        if let Ok(s) = sled::Config::new().path(dir).segment_size(8 << 20).open() {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sled::Config::new()
        .path(dir)
        .segment_size(8 << 20)
        .open()
        .unwrap()
}

#[test]
fn a_flipped_search_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Db::open(&path).unwrap();
        let mut b = db.batch();
        for u in 0..10 {
            b.push_search(&format!("u{u}"), "space opera tonight", u)
                .unwrap();
        }
        b.commit().unwrap();
    }
    // Every value is framed with a checksum: a flipped byte of the stored run (key
    // prefix `Q`) is caught by `check` and by a read, never a panic.
    {
        let raw = raw(&path);
        let (k, v) = raw
            .scan_prefix(b"Q")
            .next()
            .expect("a search segment is stored")
            .unwrap();
        let mut v = v.to_vec();
        let mid = v.len() / 2;
        v[mid] ^= 0x10;
        raw.insert(k, v).unwrap();
        raw.flush().unwrap();
    }
    let db = Db::open(&path).unwrap();
    assert!(matches!(db.check(), Err(Error::Corrupted { .. })));
    assert!(matches!(db.searches("u3"), Err(Error::Corrupted { .. })));
}

#[test]
fn synthetic_searches_name_what_users_pick_next() {
    let synth = generate(&SynthConfig {
        users: 60,
        items: 120,
        events_per_user: 15,
        ..SynthConfig::default()
    });
    let searches = generate_searches(&synth, &SearchConfig::default());
    let db = Db::temporary().unwrap();
    let mut b = db.batch();
    for e in &synth.events {
        b.push_raw(e).unwrap();
    }
    for s in &searches {
        b.push_search(&s.user, &s.text, s.timestamp).unwrap();
    }
    let r = b.commit().unwrap();
    assert_eq!(r.searches, searches.len() as u64);
    let u1 = db.searches("u1").unwrap();
    let want = searches.iter().filter(|s| s.user == "u1").count();
    assert_eq!(u1.len(), want);
}

const CHILD_ENV: &str = "RECDB_SEARCH_CRASH_CHILD";
const BATCH: usize = 600;
const USERS: usize = 100; // two buckets of each log
const TS_STRIDE: i64 = 1_000_000;

/// Child driver of `kill_mid_search_ingest`: commit batches `start..` (half events, half
/// searches, the batch number in every timestamp) forever, appending each acknowledged
/// number to `acked` (fsynced). Fails when run alone.
#[test]
#[ignore = "crash child of kill_mid_search_ingest: started by it, fails alone"]
fn crash_child_search_ingest() {
    let spec = std::env::var(CHILD_ENV).expect("started by kill_mid_search_ingest");
    let (dir, start) = spec.split_once('|').unwrap();
    let db = Db::open(std::path::Path::new(dir).join("db")).unwrap();
    let mut acked = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::path::Path::new(dir).join("acked"))
        .unwrap();
    let born = std::time::Instant::now();
    for n in start.parse::<u64>().unwrap().. {
        if born.elapsed() > std::time::Duration::from_secs(20) {
            return;
        }
        let mut b = db.batch();
        for j in 0..BATCH {
            let (user, ts) = (format!("u{}", j % USERS), n as i64 * TS_STRIDE + j as i64);
            if j % 2 == 0 {
                b.push(&user, &format!("i{}", j % 50), EventKind::View, 1.0, ts)
                    .unwrap();
            } else {
                b.push_search(
                    &user,
                    &format!("query number {}", ["one", "two"][j % 4 / 2]),
                    ts,
                )
                .unwrap();
            }
        }
        b.commit().unwrap();
        acked.write_all(format!("{n}\n").as_bytes()).unwrap();
        acked.sync_all().unwrap();
    }
}

/// Kill a process mid-ingest of events and searches: reopening gives every acknowledged
/// batch, events and searches together, and never a part of one.
#[test]
fn kill_mid_search_ingest() {
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut next = 0u64;
    for (round, ms) in [120u64, 60, 250, 90, 180].into_iter().enumerate() {
        let mut child = std::process::Command::new(&exe)
            .args([
                "crash_child_search_ingest",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}|{next}", dir.path().display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let exited = child.try_wait().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            exited.is_none(),
            "round {round}: the child exited by itself"
        );
        let text = std::fs::read_to_string(dir.path().join("acked")).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
        let acked: Vec<u64> = complete.lines().map(|l| l.parse().unwrap()).collect();
        let db = Db::open(dir.path().join("db")).unwrap();
        let (mut events, mut searches) = (BTreeMap::new(), BTreeMap::new());
        for u in 0..USERS {
            let u = format!("u{u}");
            let Ok(h) = db.history(&u) else { continue };
            for e in h {
                *events.entry(e.timestamp / TS_STRIDE).or_insert(0) += 1;
            }
            for s in db.searches(&u).unwrap() {
                *searches.entry(s.timestamp / TS_STRIDE).or_insert(0) += 1;
            }
        }
        assert_eq!(
            events.keys().collect::<Vec<_>>(),
            searches.keys().collect::<Vec<_>>(),
            "round {round}: events and searches of a batch commit together"
        );
        for (n, c) in events.iter().chain(searches.iter()) {
            assert_eq!(*c, BATCH / 2, "round {round}: batch {n} is partly present");
        }
        for n in &acked {
            assert!(
                events.contains_key(&(*n as i64)),
                "round {round}: acked {n} missing"
            );
        }
        let st = db.stats().unwrap();
        assert_eq!(st.searches, (searches.len() * BATCH / 2) as u64);
        assert_eq!(db.check().unwrap().searches, st.searches);
        next = events.len() as u64;
    }
    assert!(next > 0, "the child never committed a batch");
}
