//! What opening a database reads: nothing of the id maps, whatever their size.

use std::sync::{Arc, Mutex};

use super::*;
use crate::storage::backend::Value;
use crate::storage::keys;

/// A shared in-memory store that records the keys (or prefixes) read through it.
struct Counting {
    store: Arc<MemBackend>,
    reads: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Backend for Counting {
    fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        self.reads.lock().unwrap().push(key.to_vec());
        self.store.get(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Value, Value)>> {
        self.reads.lock().unwrap().push(prefix.to_vec());
        self.store.scan_prefix(prefix)
    }
    fn keys_from(&self, start: &[u8], limit: usize) -> Result<Vec<Value>> {
        self.reads.lock().unwrap().push(start.to_vec());
        self.store.keys_from(start, limit)
    }
    fn apply(&self, batch: WriteBatch) -> Result<()> {
        self.store.apply(batch)
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64> {
        self.store.size_on_disk()
    }
}

type Reads = Arc<Mutex<Vec<Vec<u8>>>>;

fn open(store: &Arc<MemBackend>) -> (Db, Reads) {
    let reads = Reads::default();
    let b = Counting {
        store: store.clone(),
        reads: reads.clone(),
    };
    let db = Db::with_backend(Box::new(b), Config::default()).unwrap();
    (db, reads)
}

/// Reads of id blocks (`U`/`I`/`G`, or a scan of them) and id buckets (`N`).
fn id_reads(reads: &Reads) -> (usize, usize) {
    let r = reads.lock().unwrap();
    let blocks = r
        .iter()
        .filter(|k| matches!(k.first(), Some(b'U' | b'I' | b'G')));
    let buckets = r.iter().filter(|k| k.first() == Some(&b'N'));
    (blocks.count(), buckets.count())
}

const USERS: usize = 30_000;

fn build(store: &Arc<MemBackend>) {
    let (db, _) = open(store);
    let mut batch = db.batch();
    for u in 0..USERS {
        let item = format!("i{}", u % 20_000);
        batch
            .push(&format!("u{u}"), &item, crate::EventKind::Rating, 4.0, 0)
            .unwrap();
    }
    batch.commit().unwrap();
    db.train("popular", &crate::Params::new(), &Default::default())
        .unwrap();
}

#[test]
fn opening_reads_no_id_and_a_query_reads_a_few() {
    let store = Arc::new(MemBackend::default());
    build(&store);
    let (db, reads) = open(&store);
    assert_eq!(id_reads(&reads), (0, 0), "open read the id maps");
    let stats = db.stats().unwrap();
    assert_eq!((stats.users, stats.items), (USERS as u64, 20_000));
    assert_eq!(id_reads(&reads), (0, 0), "stats read the id maps");

    let opts = crate::QueryOptions {
        model: "popular".into(),
        k: 5,
        ..Default::default()
    };
    let hits = db.recommend("u12345", &opts).unwrap();
    assert_eq!(hits.len(), 5);
    let (blocks, buckets) = id_reads(&reads);
    // One bucket for the user; the block of each item named (5 hits, at most 5 blocks).
    assert_eq!(buckets, 1);
    assert!((1..=5).contains(&blocks), "{blocks} id blocks read");
    assert_eq!(db.history("u12345").unwrap()[0].item, "i12345");
    assert!(matches!(db.user_id("nobody"), Err(Error::UnknownUser(_))));
}

#[test]
fn a_commit_rewrites_only_the_buckets_of_its_new_ids() {
    let store = Arc::new(MemBackend::default());
    build(&store);
    let (db, reads) = open(&store);
    let before = store.scan_prefix(b"N").unwrap();
    let mut batch = db.batch();
    batch
        .push("u-new", "i7", crate::EventKind::View, 1.0, 1)
        .unwrap();
    let receipt = batch.commit().unwrap();
    assert_eq!((receipt.new_users, receipt.new_items), (1, 0));
    let after = store.scan_prefix(b"N").unwrap();
    let changed = after.iter().filter(|kv| !before.contains(kv)).count();
    // The new id's bucket, plus the two halves of a split when the count crosses one.
    assert!((1..=3).contains(&changed), "{changed} buckets rewritten");
    let (blocks, buckets) = id_reads(&reads);
    assert!(
        blocks <= 1 && buckets <= 4,
        "{blocks} blocks, {buckets} buckets"
    );
    db.check().unwrap();
    let (again, _) = open(&store);
    assert_eq!(again.user_id("u-new").unwrap(), USERS as u32);
}

#[test]
fn a_database_without_id_buckets_is_upgraded_at_open() {
    let store = Arc::new(MemBackend::default());
    build(&store);
    let expected = open(&store).0.user_ids().unwrap();
    // Format 1: the same database without its `N` keys.
    let mut old = WriteBatch::default();
    for k in store.keys_with_prefix(b"N").unwrap() {
        old.delete(k.to_vec());
    }
    store.apply(old).unwrap();
    meta::write_format(store.as_ref(), 1).unwrap();
    let (db, _) = open(&store);
    db.check().unwrap();
    assert_eq!(db.user_ids().unwrap(), expected);
    assert_eq!(db.user_id("u777").unwrap(), 777);
    assert_eq!(db.stats().unwrap().format, meta::FORMAT);
}

#[test]
fn a_corrupted_id_bucket_is_named() {
    let store = Arc::new(MemBackend::default());
    build(&store);
    let db = open(&store).0;
    let bucket = crate::storage::id_hash::address(
        crate::storage::id_hash::hash("u5"),
        crate::storage::id_hash::bucket_count(USERS as u32),
    );
    let key = keys::id_bucket(b'U', bucket);
    let mut v = store.get(&key).unwrap().unwrap().to_vec();
    let at = v.len() / 2;
    v[at] ^= 0x20;
    let mut w = WriteBatch::default();
    w.put(key, v);
    store.apply(w).unwrap();
    drop(db);
    let (db, _) = open(&store);
    let want = format!("user id bucket {bucket}");
    for err in [db.user_id("u5").unwrap_err(), db.check().unwrap_err()] {
        match err {
            Error::Corrupted { what } => assert!(what.contains(&want), "{what}"),
            other => panic!("expected Corrupted, got {other:?}"),
        }
    }
}
