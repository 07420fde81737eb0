//! Training examples: one (user, item) pair each, with a label in [0, 1], a weight and
//! an extra dense score. Where they come from is the job's `labels=` parameter:
//!
//! - `rating` (the default): every event is an example, label 1 when its value is at
//!   least `positive` (4: a rating of 4 or 5 is a click), else 0;
//! - `implicit`: every event is a positive, and `negatives` items drawn uniformly per
//!   event are negatives (an item the user has logged is not drawn).
//!
//! With `weight=value` a positive's weight is its event's value (YouTube's ranking
//! model weights clicks by watch time, so the odds learn expected watch time);
//! negatives weigh 1. `score` is a dense input for a source that has one (a candidate
//! generator's score); these sources leave it 0.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::inputs::{Recent, HISTORY_INPUTS};
use super::{Labels, WdParams};
use crate::event::Event;
use crate::jobs::Snapshot;
use crate::storage::tables::TableView;
use crate::Result;

/// One training example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Example {
    /// Dense ids.
    pub user: u32,
    pub item: u32,
    pub label: f32,
    pub weight: f32,
    /// The extra dense feature (0 when the source has none).
    pub score: f32,
    /// The candidate's place in its list: its score's gap to the list's top score
    /// (≤ 0) and ln(1 + its rank), rank 0 the top (0, 0 when the source has none).
    pub list: [f32; 2],
    /// How like the user's items before the event the item is ([`Recent::inputs`];
    /// zeros without `history=`).
    pub history: [f32; HISTORY_INPUTS],
    /// The snapshot's event the example was made at: the user's items before it are
    /// its recent items (`recent=`; 0 where not read).
    pub at: usize,
}

/// The user's items logged before the snapshot's event `k`, most recent first (a
/// user's events are contiguous, oldest first).
pub(crate) fn items_before(events: &[Event], k: usize) -> impl Iterator<Item = u32> + '_ {
    let user = events.get(k).map(|e| e.user);
    events[..k.min(events.len())]
        .iter()
        .rev()
        .take_while(move |e| Some(e.user) == user)
        .map(|e| e.item)
}

/// A uniform item below `n_items` that `seen` rejects not, in at most 32 draws: a user
/// who has seen most items gets fewer negatives rather than a long loop.
pub(crate) fn unseen_item(
    rng: &mut SmallRng,
    n_items: u32,
    seen: impl Fn(u32) -> bool,
) -> Option<u32> {
    (0..32)
        .map(|_| rng.random_range(0..n_items))
        .find(|&j| !seen(j))
}

/// [`Example::list`] of the candidate at `rank` with `score` in a list topped by `top`.
// why: a rank is below MAX_CANDIDATES, exact in f32.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn list_place(score: f32, top: f32, rank: usize) -> [f32; 2] {
    [score - top, (1.0 + rank as f32).ln()]
}

/// The history inputs of the examples made at an event: the user's items logged before
/// it in the snapshot (a user's events are contiguous, oldest first), the latest
/// `history_len`; zeros without `history=`.
pub(crate) struct HistoryOf<'a> {
    view: Option<&'a TableView>,
    len: usize,
    events: &'a [Event],
}

/// [`HistoryOf::at`] one event: what every example made at it shares.
pub(crate) struct At<'a> {
    /// The history table and the user's latest items in it (without `history=`: none).
    recent: Option<(&'a TableView, Recent)>,
    event: usize,
}

impl<'a> HistoryOf<'a> {
    pub fn new(events: &'a [Event], view: Option<&'a TableView>, len: usize) -> HistoryOf<'a> {
        HistoryOf { view, len, events }
    }

    /// For examples at the snapshot's event `k`.
    pub fn at(&self, k: usize) -> At<'a> {
        At {
            recent: self
                .view
                .map(|v| (v, Recent::new(v, items_before(self.events, k), self.len))),
            event: k,
        }
    }
}

impl At<'_> {
    /// The event's index ([`Example::at`]).
    pub fn at(&self) -> usize {
        self.event
    }

    /// [`Example::history`] of `item`.
    pub fn of(&self, item: u32) -> [f32; HISTORY_INPUTS] {
        self.recent
            .as_ref()
            .map_or([0.0; HISTORY_INPUTS], |(v, r)| r.inputs(v, item))
    }
}

/// Examples per event the source makes at most (for the memory check).
pub(crate) fn per_event(p: &WdParams) -> usize {
    match p.labels {
        Labels::Rating { .. } => 1,
        Labels::Implicit { negatives } => 1 + negatives,
        Labels::Next {
            negatives, random, ..
        } => 1 + negatives + random,
    }
}

/// The examples of `snap` as `p.labels` says, in the snapshot's order; `history` is the
/// `history=` table's view when the ranker has one.
pub(crate) fn build(
    snap: &Snapshot,
    p: &WdParams,
    history: Option<&TableView>,
    seed: u64,
) -> Result<Vec<Example>> {
    let hist = HistoryOf::new(&snap.events, history, p.history_len);
    let weight = |v: f32| {
        if p.weight_by_value && v.is_finite() && v > 0.0 {
            v
        } else {
            1.0
        }
    };
    let mut out = Vec::new();
    out.try_reserve_exact(snap.events.len().saturating_mul(per_event(p)))
        .map_err(|_| crate::Error::param("negatives", "the examples do not fit in memory"))?;
    match p.labels {
        Labels::Next {
            negatives, random, ..
        } => {
            super::next_examples::build(snap, (negatives, random), (&weight, &hist), seed, &mut out)
        }
        Labels::Rating { positive } => {
            for (k, e) in snap.events.iter().enumerate() {
                let label = if e.value >= positive { 1.0 } else { 0.0 };
                out.push(Example {
                    user: e.user,
                    item: e.item,
                    label,
                    weight: if label > 0.0 { weight(e.value) } else { 1.0 },
                    score: 0.0,
                    list: [0.0; 2],
                    history: hist.at(k).of(e.item),
                    at: k,
                });
            }
        }
        Labels::Implicit { negatives } => {
            let mut rng = SmallRng::seed_from_u64(seed);
            let n_items = u32::try_from(snap.n_items).unwrap_or(u32::MAX);
            let mut start = 0;
            // A user's events are contiguous: their items are what negatives avoid.
            while start < snap.events.len() {
                let user = snap.events[start].user;
                let end = start
                    + snap.events[start..]
                        .iter()
                        .take_while(|e| e.user == user)
                        .count();
                let mut seen: Vec<u32> = snap.events[start..end].iter().map(|e| e.item).collect();
                seen.sort_unstable();
                for (k, e) in snap.events.iter().enumerate().take(end).skip(start) {
                    let at = hist.at(k);
                    out.push(Example {
                        user,
                        item: e.item,
                        label: 1.0,
                        weight: weight(e.value),
                        score: 0.0,
                        list: [0.0; 2],
                        history: at.of(e.item),
                        at: k,
                    });
                    if (seen.len() as u64) >= u64::from(n_items) {
                        continue;
                    }
                    for _ in 0..negatives {
                        let seen = |j: u32| seen.binary_search(&j).is_ok();
                        if let Some(j) = unseen_item(&mut rng, n_items, seen) {
                            out.push(Example {
                                user,
                                item: j,
                                label: 0.0,
                                weight: 1.0,
                                score: 0.0,
                                list: [0.0; 2],
                                history: at.of(j),
                                at: k,
                            });
                        }
                    }
                }
                start = end;
            }
        }
    }
    Ok(out)
}
