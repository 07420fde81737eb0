//! Next-item labels (`labels=next`) for a ranker that re-scores a retrieval model's
//! candidates (two-stage recommend). The database fills [`Snapshot::candidates`] with
//! each user's top `n` of the retrieval model (`candidates=MODEL:N`, trained first) as
//! it serves when the job starts, the user's own items included.
//!
//! - positives: the user's logged items that are in that list (what the ranker sees at
//!   serving is only ever the list); a user without a list has every event a positive;
//! - per positive, `negatives` items drawn from the list's items the user never
//!   logged (what the generator would have shown instead) and `random` uniform items
//!   the user never logged;
//! - the dense input `score` is the item's retrieval score in the list; an item outside
//!   it (a random negative) gets the list's lowest score: it ranks below all of it.
//!
//! The ranker's inputs (ids, attributes, frozen tables) hold nothing from the user's
//! later events, so a label item's inputs come only from before it. The retrieval
//! scores do: the generator was trained on the same events, so a logged item scores
//! higher in its list than an unseen one of equal appeal (docs/TWO_STAGE.md).
//!
//! With `last=L` (a `youtube` generator, which serves from a history) the labels are
//! clean the way the test is: the database fills [`Snapshot::next_lists`] instead, one
//! list per each user's last `L` events, made from the history before that event with
//! that history's items left out (as serving leaves out the seen items). The positive
//! is the event's item when the list holds it; the negatives are drawn from the same
//! list (items the user never logged) and uniformly. The generator itself still
//! trained on the positive: a milder leak.
//!
//! `list_inputs=on` adds each candidate's place in its list (score gap to the top,
//! ln(1 + rank)) as two more dense inputs: the raw score's level differs per user.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::examples::{list_place, unseen_item, At, Example, HistoryOf};
use super::WdParams;
use crate::jobs::{Snapshot, TableOutput};
use crate::query::MAX_CANDIDATES;
use crate::storage::tables::RowSpace;
use crate::{Error, Params, Result};

/// `candidates=MODEL[:N]` (N default [`crate::query::DEFAULT_CANDIDATES`]).
pub(crate) fn parse_candidates(p: &Params) -> Result<(String, usize)> {
    let s: String = p.get("candidates", String::new())?;
    let (model, n) = match s.split_once(':') {
        Some((m, n)) => (
            m.trim(),
            n.trim().parse::<usize>().map_err(|_| {
                Error::param(
                    "candidates",
                    format!("`{s}`: expected MODEL:N, as youtube:200"),
                )
            })?,
        ),
        None => (s.trim(), crate::query::DEFAULT_CANDIDATES),
    };
    if model.is_empty() {
        return Err(Error::param(
            "candidates",
            "labels=next needs the retrieval model, as candidates=youtube:200",
        ));
    }
    if n == 0 || n > MAX_CANDIDATES {
        return Err(Error::param(
            "candidates",
            format!("N must be in 1..={MAX_CANDIDATES}"),
        ));
    }
    Ok((model.to_owned(), n))
}

/// The one-row table `<model>.candidates` naming the retrieval model whose scores the
/// ranker reads (`-` when it was trained without them), so that two-stage serving feeds
/// those scores only to a ranker that learned them, and only from that model.
pub(crate) fn marker(model: &str, p: &WdParams) -> TableOutput {
    let (id, n) = match p.labels {
        super::Labels::Next { candidates, .. } => (p.candidate_model.clone(), candidates),
        _ => ("-".to_owned(), 0),
    };
    TableOutput {
        name: format!("{model}.candidates"),
        space: RowSpace::Other,
        dim: 1,
        // why: n ≤ MAX_CANDIDATES, exact in f32.
        #[allow(clippy::cast_precision_loss)]
        rows: vec![n as f32],
        offset: 0.0,
        row_ids: vec![id],
    }
}

/// Append the next-item examples of `snap` to `out` (users in the snapshot's order).
pub(crate) fn build(
    snap: &Snapshot,
    (negatives, random): (usize, usize),
    (weight, hist): (&dyn Fn(f32) -> f32, &HistoryOf<'_>),
    seed: u64,
    out: &mut Vec<Example>,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let n_items = u32::try_from(snap.n_items).unwrap_or(u32::MAX);
    if !snap.next_lists.is_empty() {
        return from_prefixes(snap, (negatives, random), (weight, hist), &mut rng, out);
    }
    let mut start = 0;
    while start < snap.events.len() {
        let user = snap.events[start].user;
        let end = start
            + snap.events[start..]
                .iter()
                .take_while(|e| e.user == user)
                .count();
        let (first, events) = (start, &snap.events[start..end]);
        start = end;
        let mut seen: Vec<u32> = events.iter().map(|e| e.item).collect();
        seen.sort_unstable();
        let list: &[(u32, f32)] = snap
            .candidates
            .get(user as usize)
            .map_or(&[], Vec::as_slice);
        let places = Places::new(list);
        let shown = places.shown(|i| seen.binary_search(&i).is_ok());
        for (k, e) in events.iter().enumerate() {
            let (score, place) = match places.of(e.item) {
                Some(p) => p,
                None if list.is_empty() => places.outside,
                None => continue,
            };
            let h = hist.at(first + k);
            out.push(Example {
                user,
                item: e.item,
                label: 1.0,
                weight: weight(e.value),
                score,
                list: place,
                history: h.of(e.item),
                at: h.at(),
            });
            if !shown.is_empty() {
                for _ in 0..negatives {
                    let (item, p) = shown[rng.random_range(0..shown.len())];
                    out.push(neg(user, item, p, &h));
                }
            }
            if (seen.len() as u64) < u64::from(n_items) {
                for _ in 0..random {
                    let seen = |j: u32| seen.binary_search(&j).is_ok();
                    if let Some(j) = unseen_item(&mut rng, n_items, seen) {
                        out.push(neg(user, j, places.of_or_outside(j), &h));
                    }
                }
            }
        }
    }
}

/// `last=L`: one positive per list of [`Snapshot::next_lists`], its target, when the
/// list holds it (serving only shows the ranker the list); `negatives` items of the same
/// list the user never logged, and `random` uniform items the user never logged (the
/// list's lowest score).
fn from_prefixes(
    snap: &Snapshot,
    (negatives, random): (usize, usize),
    (weight, hist): (&dyn Fn(f32) -> f32, &HistoryOf<'_>),
    rng: &mut SmallRng,
    out: &mut Vec<Example>,
) {
    let n_items = u32::try_from(snap.n_items).unwrap_or(u32::MAX);
    // Each user's logged (item, value), sorted by item.
    let mut logged: Vec<Vec<(u32, f32)>> = vec![Vec::new(); snap.n_users];
    for e in &snap.events {
        if let Some(l) = logged.get_mut(e.user as usize) {
            l.push((e.item, e.value));
        }
    }
    for l in &mut logged {
        l.sort_unstable_by_key(|x| x.0);
    }
    let empty = Vec::new();
    for nl in &snap.next_lists {
        let places = Places::new(&nl.list);
        let Some((score, at)) = places.of(nl.target) else {
            continue;
        };
        let seen = logged.get(nl.user as usize).unwrap_or(&empty);
        let is_seen = |i: u32| seen.binary_search_by_key(&i, |x| x.0).is_ok();
        let value = seen
            .binary_search_by_key(&nl.target, |x| x.0)
            .map_or(1.0, |k| seen[k].1);
        let h = hist.at(nl.at);
        out.push(Example {
            user: nl.user,
            item: nl.target,
            label: 1.0,
            weight: weight(value),
            score,
            list: at,
            history: h.of(nl.target),
            at: h.at(),
        });
        let shown = places.shown(is_seen);
        if !shown.is_empty() {
            for _ in 0..negatives {
                let (item, p) = shown[rng.random_range(0..shown.len())];
                out.push(neg(nl.user, item, p, &h));
            }
        }
        if (seen.len() as u64) < u64::from(n_items) {
            for _ in 0..random {
                if let Some(j) = unseen_item(rng, n_items, is_seen) {
                    out.push(neg(nl.user, j, places.of_or_outside(j), &h));
                }
            }
        }
    }
}

/// A candidate's retrieval score and [`Example::list`] place.
type Place = (f32, [f32; 2]);

/// Where items stand in one candidate list (best first): found by a sorted index, not
/// a scan of the list per lookup; an item outside it gets the lowest score, ranked
/// last.
struct Places<'a> {
    list: &'a [(u32, f32)],
    top: f32,
    outside: Place,
    /// (item, rank), sorted.
    by_item: Vec<(u32, u32)>,
}

impl<'a> Places<'a> {
    // why: a list holds at most MAX_CANDIDATES items, so its ranks fit u32.
    #[allow(clippy::cast_possible_truncation)]
    fn new(list: &'a [(u32, f32)]) -> Places<'a> {
        let floor = list.iter().map(|c| c.1).fold(f32::INFINITY, f32::min);
        let floor = if floor.is_finite() { floor } else { 0.0 };
        let top = list.first().map_or(floor, |c| c.1);
        let mut by_item: Vec<(u32, u32)> = list
            .iter()
            .enumerate()
            .map(|(r, c)| (c.0, r as u32))
            .collect();
        by_item.sort_unstable();
        Places {
            list,
            top,
            outside: (floor, list_place(floor, top, list.len())),
            by_item,
        }
    }

    fn at(&self, r: usize) -> Place {
        let score = self.list[r].1;
        (score, list_place(score, self.top, r))
    }

    /// The item's place when the list holds it (its first, best, place).
    fn of(&self, item: u32) -> Option<Place> {
        let k = self.by_item.partition_point(|x| x.0 < item);
        let &(i, r) = self.by_item.get(k)?;
        (i == item).then(|| self.at(r as usize))
    }

    fn of_or_outside(&self, item: u32) -> Place {
        self.of(item).unwrap_or(self.outside)
    }

    /// The list's items `seen` rejects not, with their places, best first.
    fn shown(&self, seen: impl Fn(u32) -> bool) -> Vec<(u32, Place)> {
        (0..self.list.len())
            .filter(|&r| !seen(self.list[r].0))
            .map(|r| (self.list[r].0, self.at(r)))
            .collect()
    }
}

fn neg(user: u32, item: u32, (score, list): (f32, [f32; 2]), history: &At<'_>) -> Example {
    Example {
        user,
        item,
        label: 0.0,
        weight: 1.0,
        score,
        list,
        history: history.of(item),
        at: history.at(),
    }
}
