//! The stored format of a run: one bucket's events, column by column, and its decoder.

use rkyv::{Archive, Deserialize, Serialize};

use crate::event::{Event, EventKind};
use crate::{Error, Result};

/// Events of one bucket, column by column, sorted by (user, timestamp, seq).
#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct Segment {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub kinds: Vec<u8>,
    pub values: Vec<f32>,
    pub timestamps: Vec<i64>,
    pub groups: Vec<u32>,
    pub seqs: Vec<u64>,
}

impl Segment {
    pub(super) fn from_sorted(events: &[Event]) -> Segment {
        Segment {
            users: events.iter().map(|e| e.user).collect(),
            items: events.iter().map(|e| e.item).collect(),
            kinds: events.iter().map(|e| e.kind as u8).collect(),
            values: events.iter().map(|e| e.value).collect(),
            timestamps: events.iter().map(|e| e.timestamp).collect(),
            groups: events.iter().map(|e| e.group).collect(),
            seqs: events.iter().map(|e| e.seq).collect(),
        }
    }
}

#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct RunInfo {
    pub run: u64,
    pub events: u32,
}

/// The runs of one bucket, oldest first.
#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct Manifest {
    pub runs: Vec<RunInfo>,
}

/// Decode the events of `seg` for users in `[lo, hi)` whose seq is below `watermark`.
pub(super) fn push_events(
    seg: &ArchivedSegment,
    lo: u32,
    hi: u32,
    watermark: u64,
    what: &dyn Fn() -> String,
    out: &mut Vec<Event>,
) -> Result<()> {
    let lens = [
        seg.items.len(),
        seg.kinds.len(),
        seg.values.len(),
        seg.timestamps.len(),
        seg.groups.len(),
        seg.seqs.len(),
    ];
    let rows = super::record::user_rows(seg.users.as_slice(), &lens, lo, hi, what)?;
    for i in rows {
        let seq = seg.seqs[i].to_native();
        if seq >= watermark {
            continue;
        }
        let kind = EventKind::from_u8(seg.kinds[i])
            .ok_or_else(|| Error::corrupted(format!("{} (event kind {})", what(), seg.kinds[i])))?;
        out.push(Event {
            user: seg.users[i].to_native(),
            item: seg.items[i].to_native(),
            kind,
            value: seg.values[i].to_native(),
            timestamp: seg.timestamps[i].to_native(),
            group: seg.groups[i].to_native(),
            seq,
        });
    }
    Ok(())
}
