//! Corrupted bytes on disk: `Error::Corrupted` (or another error), never a panic.
//!
//! The test builds a small database, closes it, then edits its sled tree directly:
//! first plain byte flips (the checksum must catch them), then mutations with a
//! recomputed checksum (the structural validation must catch them, or the value must
//! still be usable).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use recdb::{Db, Error, Params, QueryOptions, TrainOptions};

const HEADER: usize = 5; // tag byte + crc32

fn build(dir: &Path) {
    let db = Db::open(dir).unwrap();
    load_synthetic(&db, 70, 60, 6, 31);
    put_genres(&db, 60);
    db.put_users(&[recdb::UserRecord {
        id: "u1".into(),
        attrs: vec![("age".into(), "20".into())],
    }])
    .unwrap();
    train_als(&db, 1);
    db.train("popular", &Params::new(), &TrainOptions::default())
        .unwrap();
    db.set_retrain_policy("popular", &Params::new(), 1_000_000)
        .unwrap();
    db.check().unwrap();
}

/// sled with recdb's settings; retried, since the previous handle's background flusher
/// can hold the directory lock for a moment after it is dropped.
fn raw(dir: &Path) -> sled::Db {
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

fn all_kv(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let s = raw(dir);
    s.iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

fn put(dir: &Path, k: &[u8], v: &[u8]) {
    let s = raw(dir);
    s.insert(k, v).unwrap();
    s.flush().unwrap();
}

/// Open and use the database everywhere a stored value is read. Returns the first error.
fn exercise(dir: &Path) -> recdb::Result<()> {
    let db = Db::open(dir)?;
    db.check()?;
    db.stats()?;
    for u in db.user_ids().unwrap() {
        db.history(&u)?;
        db.user(&u)?;
    }
    for i in db.item_ids().unwrap().iter().take(10) {
        db.item(i)?;
        db.similar(i, &QueryOptions::model("als").k(3))?;
    }
    db.recommend("u1", &QueryOptions::model("als").k(3))?;
    db.recommend(
        "u1",
        &QueryOptions {
            genre: Some("Action".into()),
            ..QueryOptions::model("popular").k(3)
        },
    )?;
    db.jobs()?;
    Ok(())
}

fn describe(k: &[u8]) -> String {
    format!("key {:?} ({})", String::from_utf8_lossy(&k[..1]), k.len())
}

#[test]
fn flipped_bytes_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    exercise(dir.path()).unwrap();
    let kv = all_kv(dir.path());
    assert!(kv.len() > 10);
    let mut rng = SmallRng::seed_from_u64(1);
    let mut tried = 0;
    for (k, v) in &kv {
        if k.as_slice() == b"F" {
            continue;
        }
        for _ in 0..2 {
            let mut bad = v.clone();
            let pos = rng.random_range(0..bad.len());
            bad[pos] ^= 1 << rng.random_range(0..8);
            put(dir.path(), k, &bad);
            let r = catch_unwind(AssertUnwindSafe(|| exercise(dir.path())));
            match r {
                Err(_) => panic!("panic with {} corrupted at byte {pos}", describe(k)),
                Ok(Ok(())) => panic!("{} corrupted at byte {pos} went unnoticed", describe(k)),
                Ok(Err(Error::Corrupted { .. })) => {}
                Ok(Err(e)) => panic!(
                    "{} corrupted at byte {pos}: expected Corrupted, got {e}",
                    describe(k)
                ),
            }
            put(dir.path(), k, v);
            tried += 1;
        }
    }
    exercise(dir.path()).unwrap();
    println!("{tried} corruptions detected");
}

#[test]
fn bad_format_marker() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    put(dir.path(), b"F", b"recdb\x63\0\0\0");
    assert!(matches!(
        Db::open(dir.path()),
        Err(Error::UnsupportedFormat { .. })
    ));
    put(dir.path(), b"F", b"nope");
    assert!(matches!(
        Db::open(dir.path()),
        Err(Error::UnsupportedFormat { .. })
    ));
}

#[test]
fn valid_checksum_garbage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let kv = all_kv(dir.path());
    let mut rng = SmallRng::seed_from_u64(2);
    let mut outcomes = [0usize; 2];
    for (k, v) in &kv {
        if k.as_slice() == b"F" || v.len() <= HEADER {
            continue;
        }
        for m in 0..3 {
            let mut bad = v.clone();
            match m {
                // truncate the payload
                0 => bad.truncate(HEADER + rng.random_range(0..v.len() - HEADER)),
                // overwrite a few bytes near the end (rkyv's root lives there)
                1 => {
                    for _ in 0..3 {
                        let pos =
                            rng.random_range(HEADER.max(bad.len().saturating_sub(16))..bad.len());
                        bad[pos] = rng.random();
                    }
                }
                // random bytes anywhere in the payload
                _ => {
                    for _ in 0..4 {
                        let pos = rng.random_range(HEADER..bad.len());
                        bad[pos] = rng.random();
                    }
                }
            }
            let crc = crc32fast::hash(&bad[HEADER..]).to_le_bytes();
            bad[1..HEADER].copy_from_slice(&crc);
            put(dir.path(), k, &bad);
            let r = catch_unwind(AssertUnwindSafe(|| exercise(dir.path())));
            match r {
                Err(_) => panic!("panic with {} mutated (kind {m})", describe(k)),
                Ok(r) => outcomes[r.is_err() as usize] += 1,
            }
            put(dir.path(), k, v);
        }
    }
    println!(
        "mutations: {} accepted, {} rejected",
        outcomes[0], outcomes[1]
    );
    assert!(outcomes[1] > 0);
    exercise(dir.path()).unwrap();
}
