//! Deterministic synthetic data for the demo, tests and benchmarks.
//!
//! [`generate`] builds a small world with a known structure, so models have something to
//! learn and tests have something to check:
//!
//! * every user has a taste: one or two favourite genres and a latent factor vector;
//! * every item has 1-3 genres, a latent factor vector, a hidden quality and a popularity
//!   that follows a power law (Zipf, exponent 1, over a random order of the items);
//! * a user picks item `i` with probability ∝ `popularity(i) · exp(2·genre_match + 0.7·factor_dot)`,
//!   never the same item twice, in sessions: each session leans towards one genre of the
//!   user's taste, events inside it are 20 s - 10 min apart, sessions are separated by more
//!   than `session_gap_secs`; `group` is the session id (`u17-s3`);
//! * the value is a 1-5 rating (kind [`EventKind::Rating`]) that grows with the genre
//!   match, the factor dot product and the item's quality, plus noise.
//!
//! Titles are word pairs ("Silent River", "The Last Harbor 2"), texts are a dozen words from
//! per-genre vocabularies, genres are real names (Action, Comedy, ...; `Genre 19` beyond
//! the list). Ids are `u1..` and `i1..`.
//!
//! Everything derives from the seed through a SplitMix64 generator written here (not
//! `rand`'s `SmallRng`, whose algorithm may change between versions), one stream per user
//! and per item, so the output is the same on every machine and with any number of threads.
//!
//! The dense and vector generators for big benchmarks and index tests are in the test kit.
//!
//! The demo generates its data with this module too: the `recdb` binary compiles these
//! files as its own module, so the library ships them only with the `testkit` feature.
//! Hence `super::` (the crate root here, the demo module there) for the record types.

// why: synthetic data of bounded, test-chosen sizes; the float-to-count casts are of values the generator keeps in range.
#![allow(clippy::cast_possible_truncation)]

pub(crate) mod rng;
pub(crate) mod searches;
mod words;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::{EventKind, ItemRecord, RawEvent, UserRecord};
use rng::Rng;
use words::{ADJECTIVES, GENRE_NAMES, NOUNS, OCCUPATIONS, WORDS};

/// What to generate. Zero `items` or `genres` are treated as 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    pub users: usize,
    pub items: usize,
    /// Mean events per user (log-normally spread, at least 3, at most `items`).
    pub events_per_user: usize,
    pub genres: usize,
    /// Dimension of the hidden latent factors of users and items.
    pub factors: usize,
    /// Sessions of one user are separated by more than this many seconds.
    pub session_gap_secs: i64,
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            users: 2000,
            items: 1000,
            events_per_user: 50,
            genres: 12,
            factors: 8,
            session_gap_secs: 1800,
            seed: 42,
        }
    }
}

/// A generated data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Synth {
    /// All events, user by user, each user's in time order.
    pub events: Vec<RawEvent>,
    pub items: Vec<ItemRecord>,
    pub users: Vec<UserRecord>,
    /// The genre names in use.
    pub genres: Vec<String>,
}

/// Generates a data set; the same config gives the same output.
pub fn generate(cfg: &SynthConfig) -> Synth {
    generate_with_truth(cfg).0
}

/// The hidden structure behind a [`Synth`], for tests that check the signal.
#[cfg_attr(not(test), allow(dead_code))] // read by the tests that check the signal
pub(crate) struct Truth {
    /// Each user's favourite genre (index into `Synth::genres`).
    pub favourite: Vec<usize>,
    /// Each item's genres (indices).
    pub item_genres: Vec<Vec<usize>>,
}

fn genre_name(g: usize) -> String {
    GENRE_NAMES
        .get(g)
        .map_or_else(|| format!("Genre {}", g + 1), |s| s.to_string())
}

struct ItemModel {
    genres: Vec<usize>,
    factors: Vec<f64>,
    quality: f64,
    popularity: f64,
}

struct UserModel {
    /// Genre affinity in [0, 1]: 1 for the favourite, 0.6 for a second favourite.
    taste: Vec<f64>,
    favourites: Vec<usize>,
    factors: Vec<f64>,
}

impl UserModel {
    /// Mean taste over the item's genres, in [0, 1].
    fn genre_match(&self, item: &ItemModel) -> f64 {
        item.genres.iter().map(|&g| self.taste[g]).sum::<f64>() / item.genres.len() as f64
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn generate_with_truth(cfg: &SynthConfig) -> (Synth, Truth) {
    let n_items = cfg.items.max(1);
    let n_genres = cfg.genres.max(1);
    let seed = cfg.seed;
    let genres: Vec<String> = (0..n_genres).map(genre_name).collect();
    // Factor components with variance 1/sqrt(f): the dot product has variance 1.
    let sd = (cfg.factors.max(1) as f64).powf(-0.25);

    // Genre vocabularies for item texts.
    let mut rng = Rng::stream(seed, 1);
    let vocab: Vec<Vec<&str>> = (0..n_genres)
        .map(|_| (0..10).map(|_| WORDS[rng.below(WORDS.len())]).collect())
        .collect();

    // Popularity: Zipf over a random order of the items.
    let mut order: Vec<usize> = (0..n_items).collect();
    for i in (1..n_items).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut rank = vec![0usize; n_items];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    // Primary genres are themselves skewed: some genres are common.
    let genre_weight: Vec<f64> = (0..n_genres)
        .map(|g| 1.0 / (g as f64 + 1.0).sqrt())
        .collect();

    let mut items_m = Vec::with_capacity(n_items);
    let mut items = Vec::with_capacity(n_items);
    let mut titles: FxHashMap<String, u32> = FxHashMap::default();
    for (i, &rank_i) in rank.iter().enumerate() {
        let mut r = Rng::stream(seed, 0x1_0000_0000 + i as u64);
        let mut g = vec![r.weighted(&genre_weight)];
        let extra = match r.f64() {
            x if x < 0.15 => 2,
            x if x < 0.55 => 1,
            _ => 0,
        };
        for _ in 0..extra.min(n_genres - 1) {
            loop {
                let x = r.below(n_genres);
                if !g.contains(&x) {
                    g.push(x);
                    break;
                }
            }
        }
        let m = ItemModel {
            factors: (0..cfg.factors).map(|_| r.normal() * sd).collect(),
            quality: r.normal(),
            popularity: 1.0 / (rank_i as f64 + 1.0),
            genres: g,
        };
        let base = format!(
            "{}{} {}",
            if r.f64() < 0.2 { "The " } else { "" },
            ADJECTIVES[r.below(ADJECTIVES.len())],
            NOUNS[r.below(NOUNS.len())]
        );
        let n = titles.entry(base.clone()).or_insert(0);
        *n += 1;
        let title = if *n == 1 { base } else { format!("{base} {n}") };
        let n_words = 10 + r.below(8);
        let mut text = format!("{title}.");
        for _ in 0..n_words {
            let w = if r.f64() < 0.7 {
                let gv = &vocab[m.genres[r.below(m.genres.len())]];
                gv[r.below(gv.len())]
            } else {
                WORDS[r.below(WORDS.len())]
            };
            text.push(' ');
            text.push_str(w);
        }
        items.push(ItemRecord {
            id: format!("i{}", i + 1),
            title: Some(title),
            genres: m.genres.iter().map(|&g| genres[g].clone()).collect(),
            text: Some(text),
            attrs: vec![("release_year".into(), (1950 + r.below(75)).to_string())],
        });
        items_m.push(m);
    }

    // Users: tastes, attributes, then their events (in parallel, one RNG stream per user).
    let per_user: Vec<(UserRecord, usize, Vec<RawEvent>)> = (0..cfg.users)
        .into_par_iter()
        .map(|u| {
            let mut r = Rng::stream(seed, 0x2_0000_0000 + u as u64);
            let fav = r.weighted(&genre_weight);
            let mut taste = vec![0.0; n_genres];
            taste[fav] = 1.0;
            let mut favourites = vec![fav];
            if n_genres > 1 && r.f64() < 0.5 {
                let second = (fav + 1 + r.below(n_genres - 1)) % n_genres;
                taste[second] = 0.6;
                favourites.push(second);
            }
            let model = UserModel {
                taste,
                favourites,
                factors: (0..cfg.factors).map(|_| r.normal() * sd).collect(),
            };
            let record = UserRecord {
                id: format!("u{}", u + 1),
                attrs: vec![
                    ("age".into(), (18 + r.below(48)).to_string()),
                    (
                        "gender".into(),
                        if r.f64() < 0.5 { "F" } else { "M" }.into(),
                    ),
                    (
                        "occupation".into(),
                        OCCUPATIONS[r.below(OCCUPATIONS.len())].into(),
                    ),
                ],
            };
            let events = user_events(cfg, u, &model, &items_m, &items, &mut r);
            (record, fav, events)
        })
        .collect();

    let mut users = Vec::with_capacity(per_user.len());
    let mut favourite = Vec::with_capacity(per_user.len());
    let mut events = Vec::with_capacity(per_user.iter().map(|p| p.2.len()).sum());
    for (rec, fav, ev) in per_user {
        users.push(rec);
        favourite.push(fav);
        events.extend(ev);
    }
    let truth = Truth {
        favourite,
        item_genres: items_m.iter().map(|m| m.genres.clone()).collect(),
    };
    (
        Synth {
            events,
            items,
            users,
            genres,
        },
        truth,
    )
}

fn user_events(
    cfg: &SynthConfig,
    u: usize,
    user: &UserModel,
    items_m: &[ItemModel],
    items: &[ItemRecord],
    r: &mut Rng,
) -> Vec<RawEvent> {
    let n_items = items_m.len();
    // Choice weights, cumulative.
    let mut cum = Vec::with_capacity(n_items);
    let mut total = 0.0;
    for m in items_m {
        total +=
            m.popularity * (2.0 * user.genre_match(m) + 0.7 * dot(&user.factors, &m.factors)).exp();
        cum.push(total);
    }
    let mean = cfg.events_per_user.max(1) as f64;
    let n = ((mean * (0.8 * r.normal() - 0.32).exp()).round() as usize)
        .max(3)
        .min(n_items);
    let mut seen = vec![false; n_items];
    let mut out = Vec::with_capacity(n);
    let mut t = 1_600_000_000 + r.below(365 * 86_400) as i64;
    let mut session = 0usize;
    while out.len() < n {
        session += 1;
        let group = format!("u{}-s{session}", u + 1);
        // The session's genre: mostly a favourite, sometimes anything.
        let sg = if r.f64() < 0.85 {
            user.favourites[r.below(user.favourites.len())]
        } else {
            r.below(user.taste.len())
        };
        let len = 1 + (-(1.0 - r.f64()).ln() * 4.0) as usize;
        for _ in 0..len.min(n - out.len()) {
            let lean = r.f64() < 0.6;
            let mut pick = None;
            for _ in 0..32 {
                let x = r.pick_cum(&cum);
                if !seen[x] && (!lean || items_m[x].genres.contains(&sg)) {
                    pick = Some(x);
                    break;
                }
            }
            let i = pick.unwrap_or_else(|| {
                // Dense users: take the first unseen item from a random start.
                let s = r.pick_cum(&cum);
                (0..n_items)
                    .map(|k| (s + k) % n_items)
                    .find(|&x| !seen[x])
                    .expect("n <= items")
            });
            seen[i] = true;
            let m = &items_m[i];
            let score = 1.5 * user.genre_match(m)
                + 0.5 * dot(&user.factors, &m.factors)
                + 0.6 * m.quality
                + 0.5 * r.normal();
            let rating = (3.6 + 0.9 * (score - 0.85)).round().clamp(1.0, 5.0) as f32;
            out.push(RawEvent {
                user: format!("u{}", u + 1),
                item: items[i].id.clone(),
                kind: EventKind::Rating,
                value: rating,
                timestamp: t,
                group: Some(group.clone()),
            });
            t += 20 + r.below(580) as i64;
        }
        t += cfg.session_gap_secs.max(0) + 1 + r.below(3 * 86_400) as i64;
    }
    out
}
