//! Kill a process mid-ingest: reopening gives every acknowledged batch and never a
//! part of one.
//!
//! The test re-executes its own binary to run one ignored child driver,
//! `crash_child_ingest`, with `RECDB_CRASH_CHILD` set; the child commits batches forever,
//! appending each acknowledged batch number to a file (fsynced) after `commit` returns.
//! The parent kills it with SIGKILL at seeded random times and checks the database after
//! each kill. The other `kill_mid_*` tests work the same way with their own children.
//!
//! Child drivers (`crash_child_*`) are `#[ignore]`d and panic when their parent's
//! environment variable is missing, so they never pass on their own: `cargo test` skips
//! them, and a run by name with `--ignored` fails. `.ci/run` passes
//! `--skip crash_child_` to its `--ignored` run for that reason.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use recdb::{Db, EventKind};

mod common;
use common::KillOnDrop;

const CHILD_ENV: &str = "RECDB_CRASH_CHILD";
const BATCH: usize = 2000;
const USERS: usize = 100; // two buckets of the log
const TS_STRIDE: i64 = 1_000_000;
/// A child gives up on its own after this long, in case the parent died.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

/// Run the ignored child driver `child` of this binary with `env` = `spec`, let it work
/// `ms` milliseconds, then SIGKILL it; a child that exited by itself (or a name that
/// matches no test) fails the test with its stderr (`round` names the attempt).
fn kill_child_after(exe: &Path, child: &str, env: &str, spec: String, ms: u64, round: usize) {
    let mut c = KillOnDrop(
        Command::new(exe)
            .args([
                child,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(env, spec)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(ms));
    if let Some(status) = c.0.try_wait().unwrap() {
        let mut err = String::new();
        std::io::Read::read_to_string(c.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!("child exited by itself ({status}) in round {round}: {err}");
    }
    c.0.kill().unwrap();
    c.0.wait().unwrap();
}

/// What the parent passed a child driver in `env`. Panics when it is missing: a driver
/// run on its own must fail, not pass without testing anything.
fn child_env(env: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| {
        panic!("a crash-test child driver: started by its parent test, which sets {env}; it fails when run alone")
    })
}

/// In a child (`env` = "dir|start"): the database under dir, its append-only file of
/// acknowledged numbers, and the first number to write.
fn child_start(env: &str) -> (Db, std::fs::File, u64) {
    let spec = child_env(env);
    let (dir, start) = spec.split_once('|').unwrap();
    let start: u64 = start.parse().unwrap();
    let db = Db::open(Path::new(dir).join("db")).unwrap();
    let acked = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(dir).join("acked"))
        .unwrap();
    (db, acked, start)
}

/// In a child: run `step` for numbers `start..`, acknowledging (fsynced) each one after
/// it returns, until killed (or, if the parent is gone, after CHILD_LIFETIME).
fn child_loop(env: &str, mut step: impl FnMut(&Db, u64)) {
    let (db, mut acked, start) = child_start(env);
    let born = Instant::now();
    for n in start.. {
        if born.elapsed() > CHILD_LIFETIME {
            return;
        }
        step(&db, n);
        // One write: `writeln!` on a File writes the number and the newline separately, and
        // a kill between them glued this number to the next child's first ("32173218").
        acked.write_all(format!("{n}\n").as_bytes()).unwrap();
        acked.sync_all().unwrap();
    }
}

/// Child driver of `kill_mid_ingest`: commit batches `start..` forever.
#[test]
#[ignore = "crash child of kill_mid_ingest: started by it, fails alone"]
fn crash_child_ingest() {
    child_loop(CHILD_ENV, |db, n| {
        let mut b = db.batch();
        for j in 0..BATCH {
            // the batch number is in the timestamp and in the value
            let ts = n as i64 * TS_STRIDE + j as i64;
            b.push(
                &format!("u{}", j % USERS),
                &format!("i{}", (j * 7 + n as usize) % 5000),
                EventKind::View,
                n as f32,
                ts,
            )
            .unwrap();
        }
        b.commit().unwrap();
    });
}

/// One round of a crash test: run `child` from update `next` on the database under
/// `dir`, kill it after `ms`, and reopen: the acknowledged updates, and the database.
fn kill_and_reopen(
    exe: &Path,
    dir: &Path,
    (child, env): (&str, &str),
    next: u64,
    ms: u64,
    round: usize,
) -> (BTreeSet<u64>, Db) {
    let spec = format!("{}|{next}", dir.display());
    kill_child_after(exe, child, env, spec, ms, round);
    (
        read_acked(&dir.join("acked")),
        Db::open(dir.join("db")).unwrap(),
    )
}

fn read_acked(path: &Path) -> BTreeSet<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // a line cut by the kill has no newline: ignore it
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete.lines().map(|l| l.parse().unwrap()).collect()
}

/// Events per batch number, from every user's history.
fn batches_present(db: &Db) -> BTreeMap<u64, usize> {
    let mut per: BTreeMap<u64, usize> = BTreeMap::new();
    for u in db.user_ids().unwrap() {
        for e in db.history(&u).unwrap() {
            let n = (e.timestamp / TS_STRIDE) as u64;
            assert_eq!(
                e.value, n as f32,
                "value and timestamp disagree on the batch"
            );
            *per.entry(n).or_default() += 1;
        }
    }
    per
}

#[test]
fn kill_mid_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let started = Instant::now();
    let mut next = 0u64;
    let mut kills = 0;
    let mut max_acked_total = 0;
    for round in 0..15 {
        if started.elapsed() > Duration::from_secs(25) {
            break;
        }
        let ms = rng.random_range(50..400);
        let child = ("crash_child_ingest", CHILD_ENV);
        let (acked, db) = kill_and_reopen(&exe, dir.path(), child, next, ms, round);
        kills += 1;
        let present = batches_present(&db);
        for (n, count) in &present {
            assert_eq!(
                *count, BATCH,
                "round {round}: batch {n} is partly present ({count} of {BATCH} events)"
            );
        }
        for n in &acked {
            assert!(
                present.contains_key(n),
                "round {round}: acknowledged batch {n} is missing"
            );
        }
        // batches are committed one after another: what is present is a prefix
        let expect: Vec<u64> = (0..present.len() as u64).collect();
        assert_eq!(
            present.keys().copied().collect::<Vec<_>>(),
            expect,
            "round {round}: a gap in the batches"
        );
        let stats = db.stats().unwrap();
        assert_eq!(stats.events, (present.len() * BATCH) as u64);
        let rep = db.check().unwrap();
        assert_eq!(rep.events, stats.events);
        max_acked_total = max_acked_total.max(acked.len());
        next = present.len() as u64;
        eprintln!(
            "round {round}: killed after {ms} ms, {} batches acked, {} present",
            acked.len(),
            present.len()
        );
    }
    println!(
        "kill points tried: {kills}; batches present at the end: {next}; acked {max_acked_total}"
    );
    assert!(kills >= 5, "only {kills} kill points in the time budget");
    assert!(next > 0, "the child never committed a batch");
}

const TRAIN_CHILD_ENV: &str = "RECDB_CRASH_TRAIN_CHILD";

/// Child driver of `kill_mid_training`: retrain `als` forever (each run publishes both
/// tables).
#[test]
#[ignore = "crash child of kill_mid_training: started by it, fails alone"]
fn crash_child_train() {
    let dir = child_env(TRAIN_CHILD_ENV);
    let db = Db::open(Path::new(&dir)).unwrap();
    let p = recdb::Params::new().set("factors", 16).set("iterations", 6);
    let born = Instant::now();
    for seed in 0.. {
        if born.elapsed() > CHILD_LIFETIME {
            return;
        }
        db.train(
            "als",
            &p,
            &recdb::TrainOptions {
                seed,
                threads: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    }
}

#[test]
fn kill_mid_training() {
    let dir = tempfile::tempdir().unwrap();
    let (users, items) = {
        let db = Db::open(dir.path()).unwrap();
        let mut b = db.batch();
        for u in 0..300 {
            for k in 0..20 {
                b.push(
                    &format!("u{u}"),
                    &format!("i{}", (u * 31 + k * 17) % 700),
                    EventKind::Click,
                    1.0,
                    k,
                )
                .unwrap();
            }
        }
        b.commit().unwrap();
        db.train(
            "als",
            &recdb::Params::new().set("factors", 16).set("iterations", 2),
            &recdb::TrainOptions::default(),
        )
        .unwrap();
        let s = db.stats().unwrap();
        (s.users as usize, s.items as usize)
    };
    let exe = std::env::current_exe().unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut interrupted_seen = 0;
    let mut kills = 0;
    for round in 0..8 {
        let ms = rng.random_range(50..350);
        let spec = dir.path().display().to_string();
        kill_child_after(&exe, "crash_child_train", TRAIN_CHILD_ENV, spec, ms, round);
        kills += 1;
        let db = Db::open(dir.path()).unwrap();
        db.check()
            .unwrap_or_else(|e| panic!("round {round}: check: {e}"));
        let jobs = db.jobs().unwrap();
        for j in &jobs {
            assert!(
                [recdb::JobState::Done, recdb::JobState::Interrupted].contains(&j.state),
                "round {round}: job {} is {}",
                j.id,
                j.state
            );
        }
        interrupted_seen = jobs
            .iter()
            .filter(|j| j.state == recdb::JobState::Interrupted)
            .count();
        let (uv, iv) = (
            db.table("als.users").unwrap(),
            db.table("als.items").unwrap(),
        );
        assert_eq!((uv.rows(), iv.rows()), (users, items));
        assert_eq!(
            uv.version() + 1,
            iv.version(),
            "round {round}: users and items tables from different publishes"
        );
        let last_done = jobs
            .iter()
            .filter(|j| j.state == recdb::JobState::Done)
            .map(|j| j.id)
            .max()
            .unwrap();
        let info = db
            .tables()
            .unwrap()
            .into_iter()
            .find(|t| t.name == "als.items")
            .unwrap();
        assert_eq!(
            info.job, last_done,
            "round {round}: the served table is the last finished job's"
        );
        assert_eq!(
            db.recommend("u3", &recdb::QueryOptions::model("als").k(5))
                .unwrap()
                .len(),
            5
        );
    }
    let done = Db::open(dir.path())
        .unwrap()
        .jobs()
        .unwrap()
        .iter()
        .filter(|j| j.state == recdb::JobState::Done)
        .count();
    println!("training kill points tried: {kills}; interrupted jobs: {interrupted_seen}; finished jobs: {done}");
    assert!(interrupted_seen > 0, "no kill landed inside a job");
}

const GC_CHILD_ENV: &str = "RECDB_CRASH_GC_CHILD";
const GC_ROWS: usize = 2000;
const GC_DIM: usize = 32;

/// Child driver of `kill_mid_gc_and_index_build`: republish `big` forever (each publish
/// garbage-collects the version beyond `keep_versions`), drop and recreate `tmp`, and
/// build an index on `big`.
#[test]
#[ignore = "crash child of kill_mid_gc_and_index_build: started by it, fails alone"]
fn crash_child_gc() {
    let dir = child_env(GC_CHILD_ENV);
    let db = Db::open(Path::new(&dir)).unwrap();
    let born = Instant::now();
    // Continue from the served version's number so every publish is distinguishable.
    let start = db.table("big").map_or(1, |t| t.row(0).get(0) as u32 + 1);
    for k in start.. {
        if born.elapsed() > CHILD_LIFETIME {
            return;
        }
        // Row r of version k holds gc_value(k, r, c): a reader can tell a whole version
        // from a mix.
        let rows: Vec<f32> = (0..GC_ROWS * GC_DIM)
            .map(|i| gc_value(k, i / GC_DIM, i % GC_DIM))
            .collect();
        db.put_table("big", recdb::RowSpace::Other, GC_DIM, &rows, vec![])
            .unwrap();
        let _ = db.drop_table("tmp");
        db.put_table(
            "tmp",
            recdb::RowSpace::Other,
            GC_DIM,
            &rows[..GC_DIM * 100],
            vec![],
        )
        .unwrap();
        if k % 2 == 1 {
            db.build_index("big", &recdb::IndexOptions::default())
                .unwrap();
        }
    }
}

fn gc_value(k: u32, r: usize, c: usize) -> f32 {
    k as f32 + ((r * 7 + c * 13) % 100) as f32 / 128.0
}

#[test]
fn kill_mid_gc_and_index_build() {
    let dir = tempfile::tempdir().unwrap();
    drop(Db::open(dir.path()).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut rng = SmallRng::seed_from_u64(11);
    let mut kills = 0;
    let mut seen = BTreeSet::new();
    let mut indexed = 0;
    for round in 0..10 {
        let ms = rng.random_range(200..1200);
        let spec = dir.path().display().to_string();
        kill_child_after(&exe, "crash_child_gc", GC_CHILD_ENV, spec, ms, round);
        kills += 1;
        let db = Db::open(dir.path()).unwrap();
        db.check()
            .unwrap_or_else(|e| panic!("round {round}: check: {e}"));
        let Ok(big) = db.table("big") else { continue };
        assert_eq!((big.rows(), big.dim()), (GC_ROWS, GC_DIM));
        let k = big.row(0).get(0) as u32;
        for r in (0..GC_ROWS).step_by(97) {
            let want: Vec<f32> = (0..GC_DIM).map(|c| gc_value(k, r, c)).collect();
            assert_eq!(
                big.row(r).to_vec(),
                want,
                "round {round}: row {r} mixes versions"
            );
        }
        seen.insert(k);
        let info = db.tables().unwrap();
        let big_info = info.iter().find(|t| t.name == "big").unwrap();
        assert!(big_info.versions.len() <= 2, "round {round}: {big_info:?}");
        if db.index_info("big").unwrap().is_some() {
            // An index that survived belongs to the served version and answers from it.
            indexed += 1;
            let s = db.searcher("big").unwrap();
            assert_eq!(s.view().version(), big.version());
            let hits = s
                .search(&[1.0; GC_DIM], &recdb::SearchOptions::default())
                .unwrap();
            assert!(
                !hits.is_empty(),
                "round {round}: indexed search found nothing"
            );
        }
    }
    println!(
        "gc/index kill points tried: {kills}; distinct versions served: {}; with an index: {indexed}",
        seen.len()
    );
    assert!(seen.len() > 1, "the child never got past its first publish");
}

const UPSERT_CHILD_ENV: &str = "RECDB_CRASH_UPSERT_CHILD";
const UPSERT_BASE: usize = 100;

/// Child driver of `kill_mid_upserts`: single-row upserts `start..` forever on table `t` (one new row
/// `n{n}` and a replacement of base row `n % 100`, both valued n), each acknowledged
/// (fsynced) after `upsert_rows` returns. Compactions start on their own past 1024
/// operations and are killed too.
#[test]
#[ignore = "crash child of kill_mid_upserts: started by it, fails alone"]
fn crash_child_upsert() {
    child_loop(UPSERT_CHILD_ENV, |db, n| {
        let v = vec![n as f32; 4];
        let base = (n as usize % UPSERT_BASE).to_string();
        db.upsert_rows("t", &[(format!("n{n}"), v.clone()), (base, v)])
            .unwrap();
    });
}

/// Kill a process mid-upserts (and mid-compaction): every acknowledged update is served
/// after a reopen, an update is all there or not at all, and `check` passes.
#[test]
fn kill_mid_upserts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path().join("db")).unwrap();
        let rows: Vec<f32> = (0..UPSERT_BASE * 4).map(|i| -1.0 - i as f32).collect();
        db.put_table("t", recdb::RowSpace::Other, 4, &rows, vec![])
            .unwrap();
        // Indexed: each compaction publishes its version with the index carried over.
        let opts = recdb::IndexOptions {
            lists: Some(8),
            ..recdb::IndexOptions::default()
        };
        db.build_index("t", &opts).unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let mut rng = SmallRng::seed_from_u64(0xde17a);
    let started = Instant::now();
    let (mut next, mut kills) = (0u64, 0);
    for round in 0..40 {
        // At least 5 kills, and past the first compaction (1024 operations) unless the
        // machine is very slow.
        let t = started.elapsed();
        if kills >= 5 && (next > 1100 || t > Duration::from_secs(40)) {
            break;
        }
        let ms = rng.random_range(200..1200);
        let child = ("crash_child_upsert", UPSERT_CHILD_ENV);
        let (acked, db) = kill_and_reopen(&exe, dir.path(), child, next, ms, round);
        kills += 1;
        db.check().unwrap();
        // The index is published with each compacted version, never after it.
        let info = db.index_info("t").unwrap();
        assert!(
            info.is_some(),
            "round {round}: the served version has no index"
        );
        let s = db.searcher("t").unwrap();
        let mut by_id = BTreeMap::new();
        for r in 0..s.rows() {
            if let Some(v) = s.row(r) {
                by_id.insert(db.searcher_row_id(&s, r), v);
            }
        }
        // New rows present: a prefix 0..m of the updates, each with its value.
        let news: BTreeSet<u64> = by_id
            .keys()
            .filter_map(|id| id.strip_prefix('n')?.parse().ok())
            .collect();
        let m = news.len() as u64;
        assert_eq!(
            news,
            (0..m).collect(),
            "round {round}: a gap in the updates"
        );
        for n in &acked {
            assert!(
                news.contains(n),
                "round {round}: acknowledged update {n} is missing"
            );
        }
        for n in 0..m {
            assert_eq!(
                by_id[&format!("n{n}")],
                vec![n as f32; 4],
                "round {round}: row n{n}"
            );
        }
        // Each base row holds the value of the last update that replaced it, or its own.
        for b in 0..UPSERT_BASE as u64 {
            let last = (0..m).rev().find(|n| n % UPSERT_BASE as u64 == b);
            let want = match last {
                Some(n) => vec![n as f32; 4],
                None => (0..4).map(|j| -1.0 - (b * 4 + j) as f32).collect(),
            };
            assert_eq!(by_id[&b.to_string()], want, "round {round}: base row {b}");
        }
        next = m;
        eprintln!(
            "round {round}: killed after {ms} ms, {} acked, {m} present",
            acked.len()
        );
    }
    println!("kill points tried: {kills}; updates present at the end: {next}");
    assert!(kills >= 5, "only {kills} kill points in the time budget");
    assert!(
        next > 1100,
        "the updates never passed a compaction ({next})"
    );
}

const RESTORE_CHILD_ENV: &str = "RECDB_CRASH_RESTORE_CHILD";

/// Child driver of `kill_mid_restore`: restore `dir/dump.jsonl` into `dir/db`, then wait
/// to be killed.
#[test]
#[ignore = "crash child of kill_mid_restore: started by it, fails alone"]
fn crash_child_restore() {
    let dir = child_env(RESTORE_CHILD_ENV);
    let dir = Path::new(&dir);
    let db = Db::open(dir.join("db")).unwrap();
    let f = std::fs::File::open(dir.join("dump.jsonl")).unwrap();
    db.restore(&mut std::io::BufReader::new(f), "dump.jsonl")
        .unwrap();
    std::thread::sleep(CHILD_LIFETIME);
}

fn dump_of(db: &Db) -> Vec<u8> {
    let mut out = Vec::new();
    db.dump(&mut out).unwrap();
    out
}

/// Kill a process mid-restore: after every kill the database is empty, or complete, or
/// says it holds an incomplete restore (`check` fails with it); restoring again (in the
/// next child, or here) gives the whole database.
#[test]
fn kill_mid_restore() {
    let dir = tempfile::tempdir().unwrap();
    let dump = {
        let src = Db::temporary().unwrap();
        let mut b = src.batch();
        for (u, i, r, t) in recdb::testkit::generate_dense(400_000, 6000, 3000, 5) {
            b.push(&format!("u{u}"), &format!("i{i}"), EventKind::Rating, r, t)
                .unwrap();
        }
        b.commit().unwrap();
        let p = recdb::Params::new().set("factors", 8).set("iterations", 1);
        src.train("als", &p, &recdb::TrainOptions::default())
            .unwrap();
        src.set_retrain_policy("popular", &recdb::Params::new(), 1000)
            .unwrap();
        dump_of(&src)
    };
    let dump_path = dir.path().join("dump.jsonl");
    std::fs::write(&dump_path, &dump).unwrap();
    let db_path = dir.path().join("db");
    let restore_here = || {
        let db = Db::open(&db_path).unwrap();
        let f = std::fs::File::open(&dump_path).unwrap();
        db.restore(&mut std::io::BufReader::new(f), "dump.jsonl")
            .unwrap();
        db.check().unwrap();
        assert!(dump_of(&db) == dump, "a restore that differs from its dump");
    };
    let t0 = Instant::now();
    restore_here();
    let took = t0.elapsed().as_millis() as u64;
    std::fs::remove_dir_all(&db_path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = SmallRng::seed_from_u64(0x7e57);
    let (mut empty, mut partial, mut complete) = (0, 0, 0);
    for round in 0..12 {
        // Process start and open, then anywhere in the restore (or just past it).
        let ms = rng.random_range(30..60 + took * 5 / 4);
        let spec = dir.path().display().to_string();
        kill_child_after(
            &exe,
            "crash_child_restore",
            RESTORE_CHILD_ENV,
            spec,
            ms,
            round,
        );
        let db = Db::open(&db_path).unwrap();
        let s = db.stats().unwrap();
        let state = if let Some(from) = db.incomplete_restore().unwrap() {
            assert_eq!(from, "dump.jsonl");
            assert_eq!(s.incomplete_restore.as_deref(), Some("dump.jsonl"));
            let e = db.check().unwrap_err();
            assert!(
                matches!(e, recdb::Error::IncompleteRestore { .. }),
                "round {round}: {e}"
            );
            partial += 1;
            "incomplete"
        } else if (s.users, s.items, s.events, s.tables.len()) == (0, 0, 0, 0) {
            db.check()
                .unwrap_or_else(|e| panic!("round {round}: check: {e}"));
            empty += 1;
            "empty"
        } else {
            db.check()
                .unwrap_or_else(|e| panic!("round {round}: check: {e}"));
            assert!(
                dump_of(&db) == dump,
                "round {round}: a database that is neither empty, complete nor marked"
            );
            complete += 1;
            "complete"
        };
        drop(db);
        eprintln!("round {round}: killed after {ms} ms (restore takes {took} ms): {state}");
        // Every other incomplete restore is left to the next child to retry (and be
        // killed during its wipe); the others are restored here.
        if state != "incomplete" || round % 2 == 1 {
            if state != "complete" {
                restore_here();
            }
            std::fs::remove_dir_all(&db_path).unwrap();
        }
    }
    if db_path.exists() {
        restore_here();
    }
    println!("restore kill points: 12 (empty {empty}, incomplete {partial}, complete {complete})");
    assert!(partial > 0, "no kill landed inside a restore");
}
