//! Large segments whose checksum was verified, held in memory.

use std::collections::{HashMap, VecDeque};

use super::Manifest;
use crate::storage::backend::Value;

/// Large segments whose checksum was verified, held (the same immutable buffers) so
/// that a history lookup in a bucket with a heavy user does not checksum megabytes per
/// query: a bucket is 64 users, and one user with a million events made every lookup
/// of its 63 neighbours read and checksum a 33 MB value (`benches/recommend.rs`: p99
/// 2.9 ms against a p50 of 0.18). A run key is written once and never reused (a merge
/// writes a new run), and a run leaves the cache when its bucket's manifest drops it.
#[derive(Debug, Default)]
pub(super) struct CheckedRuns {
    pub(super) runs: HashMap<(u32, u64), Value>,
    /// Insertion order, for eviction when over [`CHECKED_BYTES`].
    order: VecDeque<(u32, u64)>,
    pub(super) bytes: usize,
}

/// Segments smaller than this are checksummed on every read (cheap).
pub(super) const CHECKED_MIN: usize = 256 << 10;
/// Bytes of checked segments held at most.
pub(super) const CHECKED_BYTES: usize = 128 << 20;

impl CheckedRuns {
    /// Small segments are cheap to checksum again, and not worth a lock and a clone.
    pub(super) fn worth_holding(v: &Value) -> bool {
        (CHECKED_MIN..=CHECKED_BYTES).contains(&v.len())
    }

    pub(super) fn get(&self, key: (u32, u64)) -> Option<Value> {
        self.runs.get(&key).cloned()
    }

    pub(super) fn insert(&mut self, key: (u32, u64), v: Value) {
        if !Self::worth_holding(&v) || self.runs.contains_key(&key) {
            return;
        }
        while self.bytes + v.len() > CHECKED_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(o) = self.runs.remove(&old) {
                self.bytes -= o.len();
            }
        }
        self.bytes += v.len();
        self.order.push_back(key);
        self.runs.insert(key, v);
    }

    /// Drop the runs of `bucket` that `keep` no longer lists.
    pub(super) fn retain(&mut self, bucket: u32, keep: &Manifest) {
        let gone: Vec<(u32, u64)> = self
            .runs
            .keys()
            .filter(|k| k.0 == bucket && !keep.runs.iter().any(|r| r.run == k.1))
            .copied()
            .collect();
        for k in gone {
            if let Some(o) = self.runs.remove(&k) {
                self.bytes -= o.len();
            }
            self.order.retain(|o| *o != k);
        }
    }
}
