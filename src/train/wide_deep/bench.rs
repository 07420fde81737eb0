//! One `wide-deep` training epoch on synthetic data of a chosen shape, for the criterion
//! bench (`recdb::testkit::WideDeepEpoch`): users with a gender, an age bracket and an
//! occupation, items with one to three of 18 genres and a year, ratings 1-5 leaning on
//! a gender × genre taste, items drawn with a popularity skew.

// why: synthetic ids are below `items` and `users`, dense u32 ids.
#![allow(clippy::cast_possible_truncation)]

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{WdParams, WideDeep};
use crate::event::{Event, EventKind};
use crate::jobs::{JobContext, NoProgress, Snapshot};
use crate::{Error, Params, Result};

/// A snapshot and a job whose `epochs` is 1 (validation off): each [`WideDeepEpoch::run`]
/// trains one epoch from scratch, its setup (encoding, examples) included.
pub struct WideDeepEpoch {
    snap: Snapshot,
    job: WideDeep,
}

impl WideDeepEpoch {
    /// `params` as `key=value` pairs over the defaults (e.g. `layers=64,32`).
    pub fn new(
        users: usize,
        items: usize,
        per_user: usize,
        params: &[(&str, &str)],
        seed: u64,
    ) -> Result<Self> {
        if items == 0 || users == 0 {
            return Err(Error::param("items", "must be at least 1"));
        }
        let mut p = Params::new().set("epochs", 1).set("validation", "off");
        for (k, v) in params {
            p.insert(k, v);
        }
        let params = WdParams::from_params(&p)?;
        let mut rng = SmallRng::seed_from_u64(seed);
        let genres: Vec<Vec<u32>> = (0..items)
            .map(|_| {
                (0..rng.random_range(1..=3))
                    .map(|_| rng.random_range(0..18))
                    .collect()
            })
            .collect();
        let mut events = Vec::with_capacity(users * per_user);
        for u in 0..users {
            for _ in 0..per_user {
                // Popularity skew: the square of a uniform draw favours low ids.
                let x: f64 = rng.random();
                let i = ((x * x) * items as f64) as usize % items;
                let likes = genres[i].iter().any(|g| (g + u as u32).is_multiple_of(3));
                let value = if likes { 4.0 } else { 2.0 } + f32::from(rng.random_range(0u8..2));
                events.push(Event {
                    user: u as u32,
                    item: i as u32,
                    kind: EventKind::Rating,
                    value,
                    timestamp: events.len() as i64,
                    group: u32::MAX,
                    seq: events.len() as u64,
                });
            }
        }
        let mut snap = Snapshot::of_events(users, items, events);
        snap.user_attrs = (0..users)
            .map(|u| {
                vec![
                    ("gender".into(), if u % 2 == 0 { "F" } else { "M" }.into()),
                    ("age".into(), (u % 7).to_string()),
                    ("occupation".into(), (u % 21).to_string()),
                ]
            })
            .collect();
        snap.item_attrs = genres
            .iter()
            .enumerate()
            .map(|(i, g)| {
                vec![
                    ("release_year".into(), (1930 + i % 70).to_string()),
                    (
                        "genres".into(),
                        g.iter()
                            .map(|g| format!("g{g}"))
                            .collect::<Vec<_>>()
                            .join("|"),
                    ),
                ]
            })
            .collect();
        Ok(WideDeepEpoch {
            snap,
            job: WideDeep {
                params,
                summary: std::sync::Mutex::default(),
            },
        })
    }

    /// Training examples per epoch.
    pub fn examples(&self) -> usize {
        self.snap.events.len()
    }

    /// Train one epoch on `pool`; the number of non-zero wide weights.
    pub fn run(&self, pool: &rayon::ThreadPool, seed: u64) -> Result<usize> {
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let ctx = JobContext::new(seed, &cancel, &NoProgress, pool);
        let (_, _, r) = self.job.train(&self.snap, &ctx)?;
        Ok(r.wide_nonzero)
    }
}
