//! The delta of a table version: single rows put or deleted since the version was
//! published (`Db::upsert_rows`, `Db::delete_rows`), kept as an ordered log of operations
//! in one value next to the version's blocks, and deleted with the version.

use rkyv::{Archive, Deserialize, Serialize};

use super::backend::{Backend, WriteBatch};
use super::codec::{self, Tag};
use super::keys;
use crate::Result;

/// One put (`values` non-empty) or delete of the row `row`, whose external id is `id`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct DeltaOp {
    pub seq: u64,
    pub row: u32,
    pub id: String,
    pub values: Vec<f32>,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub(crate) struct StoredDelta {
    /// Sequence number of the next operation.
    pub next_seq: u64,
    /// Rows of the base that are dead and stay dead (carried over by a compaction that
    /// had to keep their position: rows of users and items tables are their dense ids).
    pub tombstones: Vec<u32>,
    pub ops: Vec<DeltaOp>,
}

/// `Y` name 0 version u64 0u32: the same shape as a table block key.
pub(crate) fn key(name: &str, version: u64) -> Vec<u8> {
    let mut k = keys::table_prefix(name, version);
    k[0] = b'Y';
    k.extend_from_slice(&0u32.to_be_bytes());
    k
}

/// (name, version) of a delta key.
pub(crate) fn parse_key(k: &[u8]) -> Option<(String, u64)> {
    let rest = k.strip_prefix(b"Y")?;
    let mut t = vec![b'T'];
    t.extend_from_slice(rest);
    let (name, version, _) = keys::parse_table_block(&t)?;
    Some((name.to_owned(), version))
}

pub(crate) fn load(b: &dyn Backend, name: &str, version: u64) -> Result<Option<StoredDelta>> {
    let what = || format!("delta of table `{name}` version {version}");
    match b.get(&key(name, version))? {
        None => Ok(None),
        Some(v) => Ok(Some(codec::decode(Tag::Delta, &v, &what)?)),
    }
}

pub(crate) fn put(batch: &mut WriteBatch, name: &str, version: u64, d: &StoredDelta) {
    batch.put(key(name, version), codec::encode(Tag::Delta, d));
}

pub(crate) fn delete(batch: &mut WriteBatch, name: &str, version: u64) {
    batch.delete(key(name, version));
}
