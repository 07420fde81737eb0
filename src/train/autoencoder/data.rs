//! The autoencoders' input: each user's positive items, binarised (an item counts once
//! however many events name it), in CSR form.

use crate::event::Event;
use crate::jobs::Snapshot;

/// Users with at least one positive, and their sorted positive items.
pub(crate) struct Histories {
    pub users: Vec<u32>,
    pub offsets: Vec<usize>,
    pub items: Vec<u32>,
}

impl Histories {
    pub fn from_snapshot(snap: &Snapshot, positive_min: f32) -> Histories {
        let mut h = Histories {
            users: Vec::new(),
            offsets: vec![0],
            items: Vec::new(),
        };
        let mut start = 0;
        let ev = &snap.events;
        while start < ev.len() {
            let user = ev[start].user;
            let end = start + ev[start..].iter().take_while(|e| e.user == user).count();
            let row = positives(&ev[start..end], positive_min, snap.n_items);
            if !row.is_empty() {
                h.users.push(user);
                h.items.extend_from_slice(&row);
                h.offsets.push(h.items.len());
            }
            start = end;
        }
        h
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn row(&self, i: usize) -> &[u32] {
        &self.items[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// The distinct items among `events` with value ≥ `positive_min` and id below
/// `n_items` (items newer than a model are not its inputs), sorted.
pub(crate) fn positives(events: &[Event], positive_min: f32, n_items: usize) -> Vec<u32> {
    let mut row: Vec<u32> = events
        .iter()
        .filter(|e| e.value >= positive_min && (e.item as usize) < n_items)
        .map(|e| e.item)
        .collect();
    row.sort_unstable();
    row.dedup();
    row
}
