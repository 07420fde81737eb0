//! The key-value engine under recdb, behind a small trait so that tests can use a
//! plain in-memory model and another engine could replace sled.

use crate::error::OrPoisoned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub(crate) use sled::IVec as Value;

use super::durable::DiskSync;
use super::owner::{self, Owner, OwnerInfo};
use super::snapshot;
use crate::{Error, Result};

/// A set of writes applied atomically: after a crash either all or none are there.
#[derive(Default)]
pub(crate) struct WriteBatch {
    pub ops: Vec<(Vec<u8>, Option<Value>)>,
}

impl WriteBatch {
    pub fn put(&mut self, key: Vec<u8>, value: impl Into<Value>) {
        self.ops.push((key, Some(value.into())));
    }
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push((key, None));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
            .sum()
    }
}

/// An ordered key-value store with atomic batches and an explicit durability point.
pub(crate) trait Backend: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Value>>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Value, Value)>>;
    /// Keys only (values may still be read by the engine; callers must not rely on them).
    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Value>> {
        Ok(self
            .scan_prefix(prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
    /// At most `limit` keys from `start` on (inclusive), in key order, no values: a walk
    /// over the whole store in steps of bounded memory.
    fn keys_from(&self, start: &[u8], limit: usize) -> Result<Vec<Value>>;
    /// How many keys start with `prefix`, counted from key-only steps of
    /// [`Backend::keys_from`] (no value is read).
    fn count_prefix(&self, prefix: &[u8]) -> Result<u64> {
        const STEP: usize = 4096;
        let mut n = 0u64;
        let mut start = prefix.to_vec();
        loop {
            let keys = self.keys_from(&start, STEP)?;
            let full = keys.len() == STEP;
            let mut last = None;
            for k in &keys {
                if !k.starts_with(prefix) {
                    return Ok(n);
                }
                n += 1;
                last = Some(k);
            }
            match last {
                // The smallest key after `k` is `k` followed by a zero byte.
                Some(k) if full => {
                    start.clear();
                    start.extend_from_slice(k);
                    start.push(0);
                }
                _ => return Ok(n),
            }
        }
    }
    /// Apply all writes atomically (visible together, recovered together).
    fn apply(&self, batch: WriteBatch) -> Result<()>;
    /// Make every applied write durable.
    fn flush(&self) -> Result<()>;
    fn size_on_disk(&self) -> Result<u64>;
    /// Tell other processes what this one is doing with the database (see `owner`).
    fn note_activity(&self, _activity: &str, _now: bool) {}
}

/// sled 0.34: one tree, atomic `apply_batch`, durability at `flush`.
pub(crate) struct SledBackend {
    // Declared first so it is dropped first: the owner file goes before the lock.
    owner: Owner,
    db: sled::Db,
    sync: DiskSync,
}

/// How many times (20 ms apart) to retry a lock held by this process or by nobody known.
const LOCK_TRIES: u32 = 50;

impl SledBackend {
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            // Values (and sled leaf pages) over a quarter segment become one file each;
            // 8 MiB segments keep log segments and table blocks inside the log.
            .segment_size(8 << 20)
            // recdb decides when to be durable (commit, publish, flush); sled's own
            // background flusher stays on as a bound on how much an unflushed crash loses.
            .flush_every_ms(Some(1000));
        let db = match open_locked(path, &config) {
            Err(e @ sled::Error::Corruption { .. }) => {
                snapshot::reopen_without(path, e, || open_locked(path, &config))?
            }
            other => other?,
        };
        Ok(SledBackend {
            owner: Owner::claim(path),
            db,
            sync: DiskSync::new(path)?,
        })
    }

    /// Whether `flush` also syncs the files sled wrote (see `durable`).
    pub fn set_fsync(&mut self, on: bool) {
        self.sync.enabled = on;
    }

    /// Copy every pair into `dst` in key order, in batches of bounded size (not
    /// flushed). Returns (pairs, bytes of keys and values).
    pub fn copy_to(&self, dst: &SledBackend) -> Result<(u64, u64)> {
        let (mut pairs, mut bytes) = (0u64, 0u64);
        let mut batch = sled::Batch::default();
        let mut pending = 0usize;
        for kv in self.db.iter() {
            let (k, v) = kv?;
            pairs += 1;
            bytes += (k.len() + v.len()) as u64;
            pending += k.len() + v.len();
            batch.insert(k, v);
            if pending >= COPY_BATCH_BYTES {
                dst.db.apply_batch(std::mem::take(&mut batch))?;
                pending = 0;
            }
        }
        dst.db.apply_batch(batch)?;
        Ok((pairs, bytes))
    }
}

/// Bytes per batch of [`SledBackend::copy_to`]: bounds its memory.
const COPY_BATCH_BYTES: usize = 16 << 20;

/// Open, waiting briefly for a lock that a handle of this process dropped a moment ago
/// (its flusher thread may still hold it); a lock held by another live process fails
/// at once, naming it.
fn open_locked(path: &Path, config: &sled::Config) -> sled::Result<sled::Db> {
    let mut tries = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                let holder = owner::holder(path);
                let other = holder.as_ref().is_some_and(|h| h.pid != std::process::id());
                if other || tries >= LOCK_TRIES {
                    return Err(sled::Error::Io(std::io::Error::other(LockedBy {
                        path: path.to_owned(),
                        holder,
                    })));
                }
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Carried through sled's error type to [`locked_error`].
#[derive(Debug)]
struct LockedBy {
    path: PathBuf,
    holder: Option<OwnerInfo>,
}

impl std::fmt::Display for LockedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is locked", self.path.display())
    }
}

impl std::error::Error for LockedBy {}

// The sled conversion lives with sled (storage keeps the engine behind it, and the error
// module stays a leaf).
impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        if let Some(locked) = locked_error(&e) {
            return locked;
        }
        match e {
            sled::Error::Corruption { at, .. } => Error::Corrupted {
                what: format!("sled page at {at:?}"),
            },
            // sled refuses a directory written with another configuration: not ours.
            sled::Error::Unsupported(msg) => Error::UnsupportedFormat {
                found: format!("not a recdb database ({msg})"),
                supported: super::meta::FORMAT,
            },
            other => Error::Storage {
                kind: match &other {
                    sled::Error::Io(io) => Some(io.kind()),
                    _ => None,
                },
                source: other,
            },
        }
    }
}

/// The structured error for a lock failure of [`open_locked`], if `e` is one.
pub(crate) fn locked_error(e: &sled::Error) -> Option<Error> {
    let sled::Error::Io(io) = e else { return None };
    let by = io.get_ref()?.downcast_ref::<LockedBy>()?;
    let h = by.holder.as_ref();
    Some(Error::Locked {
        path: by.path.clone(),
        pid: h.map(|h| h.pid),
        program: h.map(|h| h.program.clone()),
        activity: h.map(|h| h.activity.clone()),
    })
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        Ok(self.db.get(key)?)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Value, Value)>> {
        self.db
            .scan_prefix(prefix)
            .map(|r| r.map_err(Into::into))
            .collect()
    }
    fn keys_from(&self, start: &[u8], limit: usize) -> Result<Vec<Value>> {
        self.db
            .range(start..)
            .keys()
            .take(limit)
            .map(|r| r.map_err(Into::into))
            .collect()
    }
    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        Ok(self.db.apply_batch(b)?)
    }
    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        self.sync.sync()
    }
    fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }
    fn note_activity(&self, activity: &str, now: bool) {
        self.owner.note(activity, now);
    }
}

/// The naive model: a BTreeMap. Used by tests and for throwaway databases.
#[derive(Default)]
pub(crate) struct MemBackend {
    map: RwLock<BTreeMap<Vec<u8>, Value>>,
}

impl Backend for MemBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        Ok(self
            .map
            .read()
            .or_poisoned("memory backend")?
            .get(key)
            .cloned())
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Value, Value)>> {
        let map = self.map.read().or_poisoned("memory backend")?;
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (Value::from(k.as_slice()), v.clone()))
            .collect())
    }
    fn keys_from(&self, start: &[u8], limit: usize) -> Result<Vec<Value>> {
        let map = self.map.read().or_poisoned("memory backend")?;
        Ok(map
            .range(start.to_vec()..)
            .take(limit)
            .map(|(k, _)| Value::from(k.as_slice()))
            .collect())
    }
    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let mut map = self.map.write().or_poisoned("memory backend")?;
        for (k, v) in batch.ops {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64> {
        let map = self.map.read().or_poisoned("memory backend")?;
        Ok(map.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(b: &dyn Backend) {
        let mut w = WriteBatch::default();
        w.put(b"a1".to_vec(), b"x".to_vec());
        w.put(b"a2".to_vec(), b"y".to_vec());
        w.put(b"b1".to_vec(), b"z".to_vec());
        b.apply(w).unwrap();
        let mut w = WriteBatch::default();
        w.delete(b"a1".to_vec());
        b.apply(w).unwrap();
        let got: Vec<_> = b
            .scan_prefix(b"a")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(got, vec![(b"a2".to_vec(), b"y".to_vec())]);
        assert_eq!(b.get(b"b1").unwrap().unwrap().as_ref(), b"z");
        assert!(b.get(b"a1").unwrap().is_none());
    }

    #[test]
    fn each_backend_gives_the_expected_answers() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&SledBackend::open(dir.path(), 1 << 20).unwrap());
        exercise(&MemBackend::default());
    }

    /// Every pair in the store, in key order.
    fn contents(b: &dyn Backend) -> Vec<(Vec<u8>, Vec<u8>)> {
        b.scan_prefix(b"")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    /// A key over a small alphabet (with 0x00 and 0xff, the edges of a prefix range), so
    /// that keys collide, nest and share prefixes.
    fn random_key(rng: &mut impl rand::Rng) -> Vec<u8> {
        const ALPHABET: [u8; 4] = [0x00, 0x01, b'a', 0xff];
        let len = rng.random_range(0..5);
        (0..len)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect()
    }

    /// The same seeded random batches (puts, deletes, a key written twice in one batch,
    /// empty batches, large values) go to sled and to the in-memory model; after every
    /// batch each answer of one is compared with the other's: a lookup, a prefix scan, a
    /// key listing, and the whole contents. Then sled is flushed, reopened and compared
    /// again. A bug in either backend shows as a difference.
    #[test]
    fn sled_and_memory_agree() {
        use rand::{Rng, SeedableRng};
        let dir = tempfile::tempdir().unwrap();
        let mem = MemBackend::default();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0xb4c6);
        let check = |sled: &SledBackend, rng: &mut rand::rngs::SmallRng, step: usize| {
            let k = random_key(rng);
            assert_eq!(
                sled.get(&k).unwrap().map(|v| v.to_vec()),
                mem.get(&k).unwrap().map(|v| v.to_vec()),
                "step {step}: get {k:?}"
            );
            let p = random_key(rng);
            let pairs = |b: &dyn Backend| -> Vec<(Vec<u8>, Vec<u8>)> {
                let s = b.scan_prefix(&p).unwrap();
                s.into_iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect()
            };
            assert_eq!(pairs(sled), pairs(&mem), "step {step}: scan {p:?}");
            let keys = |b: &dyn Backend| -> Vec<Vec<u8>> {
                let ks = b.keys_with_prefix(&p).unwrap();
                ks.into_iter().map(|k| k.to_vec()).collect()
            };
            assert_eq!(keys(sled), keys(&mem), "step {step}: keys {p:?}");
            assert_eq!(contents(sled), contents(&mem), "step {step}: contents");
        };
        {
            let sled = SledBackend::open(dir.path(), 1 << 20).unwrap();
            for step in 0..400 {
                let mut w = WriteBatch::default();
                for _ in 0..rng.random_range(0..6) {
                    let k = random_key(&mut rng);
                    if rng.random_bool(0.3) {
                        w.delete(k);
                    } else {
                        let len = if rng.random_bool(0.05) {
                            rng.random_range(1000..20_000)
                        } else {
                            rng.random_range(0..16)
                        };
                        let v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                        if rng.random_bool(0.1) {
                            // the same key twice in one batch: the later write wins
                            w.delete(k.clone());
                        }
                        w.put(k, v);
                    }
                }
                let ops = w.ops.clone();
                sled.apply(w).unwrap();
                mem.apply(WriteBatch { ops }).unwrap();
                check(&sled, &mut rng, step);
            }
            sled.flush().unwrap();
        }
        let sled = SledBackend::open(dir.path(), 1 << 20).unwrap();
        assert!(
            !contents(&mem).is_empty(),
            "the random batches left nothing"
        );
        check(&sled, &mut rng, 400);
    }
}
