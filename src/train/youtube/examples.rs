//! Training examples from a snapshot, as compact indices: example = (the event whose
//! item is the label, the first event of its user). Its inputs — the `history` items
//! before it, the user's searches before it, the user's features, its age — are read
//! from the snapshot when its batch is built, so nothing is copied per example.

use super::YtParams;
use crate::features::{Encoded, Encoder};
use crate::jobs::Snapshot;
use crate::{Error, Result};

/// How example ages are normalised: age = (end − timestamp) / span, with `end` the
/// last timestamp of the training window and `span` its length (at least 1), so ages
/// fall in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AgeScale {
    pub end: f64,
    pub span: f64,
}

impl AgeScale {
    /// The normalised age of a time (0 for anything at or after the window's end).
    pub fn age(&self, timestamp: i64) -> f32 {
        // why: an age in [0, 1] needs no more than f32.
        #[allow(clippy::cast_possible_truncation)]
        let a = ((self.end - timestamp as f64) / self.span).max(0.0) as f32;
        a
    }
}

/// The three age inputs the paper feeds: the age, its square and its square root.
pub(crate) fn age_features(a: f32) -> [f32; 3] {
    [a, a * a, a.sqrt()]
}

/// Searches grouped by user, tokens flattened.
#[derive(Debug, Default)]
pub(crate) struct SearchLog {
    /// Per user: the range of its searches.
    by_user: Vec<(u32, u32)>,
    /// Per search: (timestamp, seq) and the range of its tokens.
    when: Vec<(i64, u64)>,
    token_off: Vec<u32>,
    tokens: Vec<u32>,
}

impl SearchLog {
    fn build(snap: &Snapshot) -> Result<SearchLog> {
        let too_many = || Error::param("history", "more than 2³² searches or tokens");
        let mut log = SearchLog {
            by_user: vec![(0, 0); snap.n_users],
            token_off: vec![0],
            ..Default::default()
        };
        let mut prev: Option<u32> = None;
        for (k, s) in snap.searches.iter().enumerate() {
            let k = u32::try_from(k).map_err(|_| too_many())?;
            let u = s.user as usize;
            if u >= snap.n_users {
                continue;
            }
            if prev != Some(s.user) {
                log.by_user[u].0 = k;
                prev = Some(s.user);
            }
            log.by_user[u].1 = k + 1;
            log.when.push((s.timestamp, s.seq));
            log.tokens.extend(
                s.tokens
                    .iter()
                    .copied()
                    .filter(|&t| (t as usize) < snap.n_tokens),
            );
            log.token_off
                .push(u32::try_from(log.tokens.len()).map_err(|_| too_many())?);
        }
        // Users whose searches were not contiguous in the snapshot have no searches
        // rather than somebody else's.
        for r in &mut log.by_user {
            if r.1 < r.0 {
                *r = (0, 0);
            }
        }
        Ok(log)
    }

    /// Tokens of `user`'s last `n` searches strictly before (timestamp, seq), one slice
    /// per search.
    pub fn before(&self, user: u32, when: (i64, u64), n: usize) -> Vec<&[u32]> {
        let Some(&(lo, hi)) = self.by_user.get(user as usize) else {
            return Vec::new();
        };
        let (lo, hi) = (lo as usize, hi as usize);
        let end = lo + self.when[lo..hi].partition_point(|w| *w < when);
        (end.saturating_sub(n).max(lo)..end)
            .map(|s| &self.tokens[self.token_off[s] as usize..self.token_off[s + 1] as usize])
            .collect()
    }
}

/// Every example of a snapshot, and what their inputs are read from.
pub(crate) struct Examples {
    /// (label event, first event of its user's run), in the snapshot's order.
    pub pairs: Vec<[u32; 2]>,
    pub items: Vec<u32>,
    pub users: Vec<u32>,
    pub when: Vec<(i64, u64)>,
    pub searches: SearchLog,
    /// Features of each user, by dense id.
    pub features: Vec<Encoded>,
    age: AgeScale,
    /// Per item: how many examples have it as their label (the popularity proposal).
    pub label_counts: Vec<u32>,
}

impl Examples {
    pub fn build(snap: &Snapshot, encoder: &Encoder, p: &YtParams) -> Result<Examples> {
        let n = u32::try_from(snap.events.len())
            .map_err(|_| Error::param("max_examples", "more than 2³² events"))?;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for e in &snap.events {
            lo = lo.min(e.timestamp);
            hi = hi.max(e.timestamp);
        }
        let age = if n == 0 {
            AgeScale {
                end: 0.0,
                span: 1.0,
            }
        } else {
            AgeScale {
                end: hi as f64,
                span: ((hi as f64) - (lo as f64)).max(1.0),
            }
        };
        let mut pairs = Vec::new();
        let mut label_counts = vec![0u32; snap.n_items];
        let mut start = 0u32;
        // Runs of one user: every position is an example (the first has an empty
        // history and teaches the tower to answer from features alone); with
        // `max_examples` only the latest positions (before the `skip_last` ones).
        for i in 0..=n {
            let boundary = i == n
                || (i > start && snap.events[i as usize].user != snap.events[start as usize].user);
            if !boundary {
                continue;
            }
            // `skip_last`: the user's last events are neither labels nor (being the
            // latest) anyone's history.
            let end = start.max(i.saturating_sub(u32::try_from(p.skip_last).unwrap_or(u32::MAX)));
            let first = if p.max_examples == 0 {
                start
            } else {
                start.max(end.saturating_sub(u32::try_from(p.max_examples).unwrap_or(u32::MAX)))
            };
            for t in first..end {
                let item = snap.events[t as usize].item;
                if let Some(c) = label_counts.get_mut(item as usize) {
                    *c += 1;
                    pairs.push([t, start]);
                }
            }
            start = i;
        }
        let features = snap.user_attrs.iter().map(|a| encoder.encode(a)).collect();
        Ok(Examples {
            pairs,
            items: snap.events.iter().map(|e| e.item).collect(),
            users: snap.events.iter().map(|e| e.user).collect(),
            when: snap.events.iter().map(|e| (e.timestamp, e.seq)).collect(),
            searches: SearchLog::build(snap)?,
            features,
            age,
            label_counts,
        })
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn age_scale(&self) -> AgeScale {
        self.age
    }

    /// Example `k`: its label, the items before it (at most `history`, oldest first),
    /// its user and its (timestamp, seq).
    pub fn get(&self, k: usize, history: usize) -> (u32, &[u32], u32, (i64, u64)) {
        let [t, start] = self.pairs[k];
        let (t, start) = (t as usize, start as usize);
        let from = t.saturating_sub(history).max(start);
        (
            self.items[t],
            &self.items[from..t],
            self.users[t],
            self.when[t],
        )
    }

    /// The age of example `k`'s event.
    pub fn age(&self, k: usize) -> f32 {
        self.age.age(self.when[self.pairs[k][0] as usize].0)
    }
}
