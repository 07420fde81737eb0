//! The delta of a table version: single rows put or deleted since the version was
//! published (`Db::upsert_rows`, `Db::delete_rows`), kept as an ordered log of operations
//! next to the version's blocks, and deleted with the version (the storage layer deletes
//! its key range with the version's blocks).
//!
//! The log is a run of segments, one value each: segment 0 is written with the version
//! (a compaction's carried-over operations and tombstones), and every later update
//! appends one segment holding only its own operations, so an update writes what it
//! changed, not the whole log. Loading concatenates the segments in key order.

use rkyv::{Archive, Deserialize, Serialize};

use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::codec::{self, Tag};
use crate::storage::keys;
use crate::Result;

/// One put (`values` non-empty) or delete of the row `row`, whose external id is `id`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct DeltaOp {
    pub seq: u64,
    pub row: u32,
    pub id: String,
    pub values: Vec<f32>,
}

/// One segment of a delta; [`load`] returns them merged (all operations, the last
/// segment's `next_seq`, segment 0's tombstones).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub(crate) struct StoredDelta {
    /// Sequence number of the next operation (after this segment's).
    pub next_seq: u64,
    /// Rows of the base that are dead and stay dead (carried over by a compaction that
    /// had to keep their position: rows of users and items tables are their dense ids).
    pub tombstones: Vec<u32>,
    pub ops: Vec<DeltaOp>,
}

/// `Y` name 0 version u64: the prefix of a version's segments.
fn prefix(name: &str, version: u64) -> Vec<u8> {
    keys::delta_prefix(name, version)
}

/// `Y` name 0 version u64 segment u32: the same shape as a table block key.
pub(crate) fn key(name: &str, version: u64, segment: u32) -> Vec<u8> {
    let mut k = prefix(name, version);
    k.extend_from_slice(&segment.to_be_bytes());
    k
}

/// The merged delta of a version and its number of segments (`None`: no segment).
/// Segments must be numbered 0, 1, 2, … without a gap, and each must continue the
/// sequence numbers of the one before.
pub(crate) fn load(
    b: &dyn Backend,
    name: &str,
    version: u64,
) -> Result<Option<(StoredDelta, u32)>> {
    let mut merged: Option<StoredDelta> = None;
    let mut segments = 0u32;
    for (k, v) in b.scan_prefix(&prefix(name, version))? {
        let what = || format!("delta of table `{name}` version {version}, segment {segments}");
        if k.as_ref() != key(name, version, segments).as_slice() {
            return Err(crate::Error::corrupted(format!(
                "{}: missing or misnamed segment",
                what()
            )));
        }
        let seg: StoredDelta = codec::decode(Tag::Delta, &v, &what)?;
        match &mut merged {
            None => merged = Some(seg),
            Some(m) => {
                if !seg.tombstones.is_empty()
                    || seg.ops.first().is_some_and(|o| o.seq < m.next_seq)
                    || seg.next_seq < m.next_seq
                {
                    return Err(crate::Error::corrupted(format!(
                        "{}: does not continue the segment before",
                        what()
                    )));
                }
                m.next_seq = seg.next_seq;
                m.ops.extend(seg.ops);
            }
        }
        segments += 1;
    }
    Ok(merged.map(|m| (m, segments)))
}

/// Write segment `segment` of a version's delta (0: with the version; later: one update).
pub(crate) fn put(batch: &mut WriteBatch, name: &str, version: u64, segment: u32, d: &StoredDelta) {
    batch.put(key(name, version, segment), codec::encode(Tag::Delta, d));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::backend::MemBackend;

    fn op(seq: u64, row: u32) -> DeltaOp {
        DeltaOp {
            seq,
            row,
            id: row.to_string(),
            values: vec![seq as f32; 3],
        }
    }

    fn segment(ops: std::ops::Range<u64>, tombstones: Vec<u32>) -> StoredDelta {
        StoredDelta {
            next_seq: ops.end,
            tombstones,
            ops: ops.map(|s| op(s, s as u32 * 2)).collect(),
        }
    }

    /// Segments load as one log (and only this version's); a missing or out-of-order
    /// segment is corruption; deleting the version's blocks removes every segment.
    #[test]
    fn segments_merge_in_order_and_gaps_are_corruption() {
        let b = MemBackend::default();
        let mut batch = WriteBatch::default();
        put(&mut batch, "t", 7, 0, &segment(0..2, vec![5]));
        put(&mut batch, "t", 7, 1, &segment(2..3, vec![]));
        put(&mut batch, "t", 7, 2, &segment(3..6, vec![]));
        put(&mut batch, "t", 8, 0, &segment(0..1, vec![]));
        put(&mut batch, "tt", 7, 0, &segment(0..1, vec![]));
        b.apply(batch).unwrap();
        let (d, n) = load(&b, "t", 7).unwrap().unwrap();
        assert_eq!(n, 3);
        assert_eq!(d.next_seq, 6);
        assert_eq!(d.tombstones, vec![5]);
        assert_eq!(
            d.ops,
            (0..6).map(|s| op(s, s as u32 * 2)).collect::<Vec<_>>()
        );
        assert!(load(&b, "t", 9).unwrap().is_none());
        assert_eq!(
            keys::parse_delta_key(&key("t", 7, 2)),
            Some(("t".to_owned(), 7))
        );

        // A segment that restarts the sequence, or a gap in the numbering.
        let mut batch = WriteBatch::default();
        put(&mut batch, "t", 7, 3, &segment(4..7, vec![]));
        b.apply(batch).unwrap();
        assert!(matches!(
            load(&b, "t", 7),
            Err(crate::Error::Corrupted { .. })
        ));
        let mut batch = WriteBatch::default();
        batch.delete(key("t", 7, 3));
        batch.delete(key("t", 7, 1));
        b.apply(batch).unwrap();
        assert!(matches!(
            load(&b, "t", 7),
            Err(crate::Error::Corrupted { .. })
        ));

        let mut batch = WriteBatch::default();
        crate::storage::tables::delete_blocks(&b, "t", 7, &mut batch).unwrap();
        b.apply(batch).unwrap();
        assert!(load(&b, "t", 7).unwrap().is_none());
        assert!(load(&b, "t", 8).unwrap().is_some());
        assert!(load(&b, "tt", 7).unwrap().is_some());
    }
}
