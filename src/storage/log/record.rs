//! What a log holds: the interface that lets one log implementation (runs per bucket,
//! size-tiered merges, watermarks, checked-segment cache) store interactions and
//! searches alike, each in its own columnar segment format and key space.

use super::segment::{push_events, ArchivedSegment, Segment};
use crate::event::Event;
use crate::storage::codec::{self, Tag};
use crate::{Error, Result};

/// The rows of a columnar run that hold users in `[lo, hi)` (the run is sorted by
/// user), once every other column has the users' length: a run whose columns disagree
/// is `Corrupted`, whatever its checksum said.
pub(super) fn user_rows(
    users: &[rkyv::Archived<u32>],
    other_lens: &[usize],
    lo: u32,
    hi: u32,
    what: &dyn Fn() -> String,
) -> Result<std::ops::Range<usize>> {
    if other_lens.iter().any(|&l| l != users.len()) {
        return Err(Error::corrupted(format!(
            "{} (columns of different lengths)",
            what()
        )));
    }
    let start = users.partition_point(|u| u.to_native() < lo);
    let end = users.partition_point(|u| u.to_native() < hi);
    Ok(start..end)
}

pub(crate) trait Record: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// Key prefix of the runs (`keys::segment_in`).
    const SEGMENT: u8;
    /// Key prefix of the bucket manifests (`keys::manifest_in`).
    const MANIFEST: u8;
    /// What a segment is called in errors (`log segment`).
    const WHAT: &'static str;
    fn user(&self) -> u32;
    /// The order within a run: (user, timestamp, seq).
    fn order(&self) -> (u32, i64, u64);
    /// The framed value of one run of records sorted by [`Record::order`].
    fn encode_run(sorted: &[Self]) -> Vec<u8>;
    /// Decode the records of run value `v` for users in `[lo, hi)` whose seq is below
    /// `watermark`. `checked`: `v` is a held buffer whose checksum passed before.
    #[allow(clippy::too_many_arguments)] // why: the run's value and the filter, each needed
    fn decode_run(
        v: &[u8],
        checked: bool,
        lo: u32,
        hi: u32,
        watermark: u64,
        what: &dyn Fn() -> String,
        out: &mut Vec<Self>,
    ) -> Result<()>;
}

impl Record for Event {
    const SEGMENT: u8 = b'L';
    const MANIFEST: u8 = b'h';
    const WHAT: &'static str = "log segment";
    fn user(&self) -> u32 {
        self.user
    }
    fn order(&self) -> (u32, i64, u64) {
        (self.user, self.timestamp, self.seq)
    }
    fn encode_run(sorted: &[Self]) -> Vec<u8> {
        codec::encode(Tag::Segment, &Segment::from_sorted(sorted))
    }
    fn decode_run(
        v: &[u8],
        checked: bool,
        lo: u32,
        hi: u32,
        watermark: u64,
        what: &dyn Fn() -> String,
        out: &mut Vec<Self>,
    ) -> Result<()> {
        let seg: &ArchivedSegment = codec::access_maybe_checked(Tag::Segment, v, checked, what)?;
        push_events(seg, lo, hi, watermark, what, out)
    }
}
