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

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::examples::Example;
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
    weight: &dyn Fn(f32) -> f32,
    seed: u64,
    out: &mut Vec<Example>,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let n_items = u32::try_from(snap.n_items).unwrap_or(u32::MAX);
    if !snap.next_lists.is_empty() {
        return from_prefixes(snap, (negatives, random), weight, &mut rng, out);
    }
    let mut start = 0;
    while start < snap.events.len() {
        let user = snap.events[start].user;
        let end = start
            + snap.events[start..]
                .iter()
                .take_while(|e| e.user == user)
                .count();
        let events = &snap.events[start..end];
        start = end;
        let mut seen: Vec<u32> = events.iter().map(|e| e.item).collect();
        seen.sort_unstable();
        let list: &[(u32, f32)] = snap
            .candidates
            .get(user as usize)
            .map_or(&[], Vec::as_slice);
        let floor = list.iter().map(|c| c.1).fold(f32::INFINITY, f32::min);
        let floor = if floor.is_finite() { floor } else { 0.0 };
        let score_of = |i: u32| list.iter().find(|c| c.0 == i).map(|c| c.1);
        let shown: Vec<(u32, f32)> = list
            .iter()
            .copied()
            .filter(|c| seen.binary_search(&c.0).is_err())
            .collect();
        for e in events {
            let score = match score_of(e.item) {
                Some(s) => s,
                None if list.is_empty() => floor,
                None => continue,
            };
            out.push(Example {
                user,
                item: e.item,
                label: 1.0,
                weight: weight(e.value),
                score,
            });
            if !shown.is_empty() {
                for _ in 0..negatives {
                    let (item, score) = shown[rng.random_range(0..shown.len())];
                    out.push(neg(user, item, score));
                }
            }
            if (seen.len() as u64) < u64::from(n_items) {
                for _ in 0..random {
                    // Bounded: a user who has seen most items gets fewer negatives.
                    for _ in 0..32 {
                        let j = rng.random_range(0..n_items);
                        if seen.binary_search(&j).is_err() {
                            out.push(neg(user, j, score_of(j).unwrap_or(floor)));
                            break;
                        }
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
    weight: &dyn Fn(f32) -> f32,
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
        let Some(&(_, score)) = nl.list.iter().find(|c| c.0 == nl.target) else {
            continue;
        };
        let seen = logged.get(nl.user as usize).unwrap_or(&empty);
        let is_seen = |i: u32| seen.binary_search_by_key(&i, |x| x.0).is_ok();
        let value = seen
            .binary_search_by_key(&nl.target, |x| x.0)
            .map_or(1.0, |k| seen[k].1);
        out.push(Example {
            user: nl.user,
            item: nl.target,
            label: 1.0,
            weight: weight(value),
            score,
        });
        let shown: Vec<(u32, f32)> = nl.list.iter().copied().filter(|c| !is_seen(c.0)).collect();
        if !shown.is_empty() {
            for _ in 0..negatives {
                let (item, score) = shown[rng.random_range(0..shown.len())];
                out.push(neg(nl.user, item, score));
            }
        }
        let floor = nl.list.last().map_or(0.0, |c| c.1);
        if (seen.len() as u64) < u64::from(n_items) {
            for _ in 0..random {
                for _ in 0..32 {
                    let j = rng.random_range(0..n_items);
                    if !is_seen(j) {
                        let s = nl.list.iter().find(|c| c.0 == j).map_or(floor, |c| c.1);
                        out.push(neg(nl.user, j, s));
                        break;
                    }
                }
            }
        }
    }
}

fn neg(user: u32, item: u32, score: f32) -> Example {
    Example {
        user,
        item,
        label: 0.0,
        weight: 1.0,
        score,
    }
}
