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
//! [`generate_dense`] is the fast generator for big benchmarks: dense ids, no strings.
// why: test and bench support; its sizes are small parameters, and its floats are
// sampled in f64 and stored as f32 on purpose.
#![allow(clippy::cast_possible_truncation)]

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::{EventKind, ItemRecord, RawEvent, UserRecord};

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

/// A fast stream of `(user, item, rating, timestamp)` with dense ids, for big benchmarks.
///
/// Users own contiguous, equal runs of events (event `j` belongs to user
/// `j · n_users / n_events`) with increasing timestamps. Items follow a power law; each
/// user belongs to one of up to 32 clusters and half of its events fall in the cluster's
/// block of items (rated 4-5), the other half anywhere (rated 1-5), so there is signal.
/// Deterministic for a seed, whatever the number of threads. Empty when any count is 0.
pub fn generate_dense(
    n_events: usize,
    n_users: usize,
    n_items: usize,
    seed: u64,
) -> Vec<(u32, u32, f32, i64)> {
    if n_events == 0 || n_users == 0 || n_items == 0 {
        return Vec::new();
    }
    const CHUNK: usize = 1 << 16;
    let clusters = n_items.clamp(1, 32);
    let block = n_items / clusters;
    let mut out = vec![(0u32, 0u32, 0f32, 0i64); n_events];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut rng = Rng::stream(seed, 0xD5E5_0000_0000 + c as u64);
            let first = c * CHUNK;
            for (k, slot) in chunk.iter_mut().enumerate() {
                let j = first + k;
                let user = ((j as u128 * n_users as u128) / n_events as u128) as usize;
                let cluster = (mix(user as u64 ^ seed) % clusters as u64) as usize;
                let u = rng.f64();
                let (item, rating) = if rng.next() & 1 == 0 {
                    let r = (u * u * block as f64) as usize;
                    (
                        cluster * block + r.min(block - 1),
                        4 + (rng.next() & 1) as u32,
                    )
                } else {
                    let r = (u * u * u * n_items as f64) as usize;
                    (r.min(n_items - 1), 1 + rng.below(5) as u32)
                };
                let ts = 1_600_000_000 + j as i64 * 7 + rng.below(7) as i64;
                *slot = (user as u32, item as u32, rating as f32, ts);
            }
        });
    out
}

/// The hidden structure behind a [`Synth`], for tests that check the signal.
#[cfg_attr(not(test), allow(dead_code))] // read by the tests that check the signal
pub(crate) struct Truth {
    /// Each user's favourite genre (index into `Synth::genres`).
    pub favourite: Vec<usize>,
    /// Each item's genres (indices).
    pub item_genres: Vec<Vec<usize>>,
}

const GENRE_NAMES: [&str; 18] = [
    "Action",
    "Comedy",
    "Drama",
    "Thriller",
    "Romance",
    "Sci-Fi",
    "Horror",
    "Animation",
    "Documentary",
    "Adventure",
    "Fantasy",
    "Crime",
    "Mystery",
    "Musical",
    "Western",
    "War",
    "Family",
    "Noir",
];

const ADJECTIVES: [&str; 32] = [
    "Silent",
    "Crimson",
    "Hidden",
    "Last",
    "Broken",
    "Golden",
    "Distant",
    "Wild",
    "Frozen",
    "Burning",
    "Secret",
    "Lonely",
    "Electric",
    "Midnight",
    "Forgotten",
    "Endless",
    "Iron",
    "Velvet",
    "Hollow",
    "Bright",
    "Savage",
    "Quiet",
    "Lost",
    "Northern",
    "Shattered",
    "Gentle",
    "Scarlet",
    "Restless",
    "Sacred",
    "Paper",
    "Glass",
    "Stolen",
];

const NOUNS: [&str; 32] = [
    "River", "Empire", "Garden", "Harbor", "Kingdom", "Signal", "Mirror", "Horizon", "Station",
    "Orchard", "Frontier", "Winter", "Voyage", "Echo", "Crown", "Shadow", "Island", "Machine",
    "Letter", "Storm", "Valley", "Promise", "Circus", "Tower", "Summer", "Witness", "Planet",
    "Lantern", "Desert", "Melody", "Bridge", "Heart",
];

const WORDS: [&str; 96] = [
    "love",
    "war",
    "city",
    "family",
    "secret",
    "murder",
    "space",
    "ship",
    "ghost",
    "house",
    "detective",
    "robot",
    "heist",
    "song",
    "dance",
    "horse",
    "town",
    "soldier",
    "battle",
    "village",
    "dragon",
    "magic",
    "spell",
    "kingdom",
    "school",
    "friend",
    "wedding",
    "journey",
    "island",
    "treasure",
    "monster",
    "night",
    "blood",
    "police",
    "gang",
    "money",
    "alien",
    "planet",
    "future",
    "time",
    "machine",
    "queen",
    "king",
    "prince",
    "sword",
    "forest",
    "river",
    "train",
    "escape",
    "prison",
    "court",
    "lawyer",
    "doctor",
    "hospital",
    "storm",
    "sea",
    "desert",
    "ranch",
    "sheriff",
    "outlaw",
    "gun",
    "spy",
    "agent",
    "mission",
    "bomb",
    "virus",
    "zombie",
    "curse",
    "witch",
    "vampire",
    "nature",
    "history",
    "truth",
    "music",
    "band",
    "stage",
    "star",
    "dream",
    "child",
    "dog",
    "cat",
    "holiday",
    "summer",
    "winter",
    "revenge",
    "betrayal",
    "hero",
    "villain",
    "chase",
    "crash",
    "mystery",
    "clue",
    "letter",
    "memory",
    "road",
    "home",
];

const OCCUPATIONS: [&str; 12] = [
    "student",
    "engineer",
    "artist",
    "doctor",
    "teacher",
    "writer",
    "programmer",
    "lawyer",
    "retired",
    "scientist",
    "salesman",
    "other",
];

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

/// Clustered unit vectors for index tests and benchmarks (the index benchmark data, docs/INDEX.md): `n`
/// rows of `dim` values, row-major. K = max(1, n/500) centres from N(0, I); cluster sizes
/// follow Zipf(1.5) (cluster of rank r with probability ∝ r^-1.5); each row is
/// `centre + 0.3·P·z + 0.6·e`, z ~ N(0, I_8), e ~ N(0, I_dim), P a fixed dim×8 Gaussian
/// matrix with entries N(0, 1/8) (so P·z has unit variance per coordinate); then
/// normalised to unit length. Deterministic for `seed`, in parallel. For queries from
/// the same distribution, generate `n + q` rows and split off the last `q`.
pub fn clustered_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let k = (n / 500).max(1);
    let mut r = Rng::stream(seed, u64::MAX);
    let centres: Vec<f64> = (0..k * dim).map(|_| r.normal()).collect();
    let proj: Vec<f64> = (0..dim * 8).map(|_| r.normal() / 8f64.sqrt()).collect();
    let mut cum = Vec::with_capacity(k);
    let mut acc = 0.0;
    for rank in 1..=k {
        acc += (rank as f64).powf(-1.5);
        cum.push(acc);
    }
    let mut out = vec![0f32; n * dim];
    out.par_chunks_mut(dim.max(1))
        .enumerate()
        .for_each(|(i, row)| {
            let mut r = Rng::stream(seed, i as u64);
            let c = r.pick_cum(&cum);
            let z: [f64; 8] = std::array::from_fn(|_| r.normal());
            let mut v: Vec<f64> = (0..dim)
                .map(|d| {
                    let pz: f64 = (0..8).map(|j| proj[d * 8 + j] * z[j]).sum();
                    centres[c * dim + d] + 0.3 * pz + 0.6 * r.normal()
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
            for (o, x) in row.iter_mut().zip(v) {
                *o = x as f32;
            }
        });
    out
}

/// Tight clusters of near-duplicates, the hard case of an index's rerank: `n` unit rows
/// of `dim` values, row-major, in `n/500` clusters of about 500 rows (row `i` in cluster
/// `i mod K`); each row is its centre (from N(0, I)) plus `spread`·N(0, I), normalised.
/// Deterministic for `seed`, in parallel.
pub fn near_duplicate_clusters(n: usize, dim: usize, spread: f32, seed: u64) -> Vec<f32> {
    let k = (n / 500).max(1);
    let mut r = Rng::stream(seed, u64::MAX);
    let centres: Vec<f64> = (0..k * dim).map(|_| r.normal()).collect();
    let mut out = vec![0f32; n * dim];
    out.par_chunks_mut(dim.max(1))
        .enumerate()
        .for_each(|(i, row)| {
            let mut r = Rng::stream(seed, i as u64);
            let c = &centres[(i % k) * dim..][..dim];
            let v: Vec<f64> = c.iter().map(|x| x + spread as f64 * r.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            for (o, x) in row.iter_mut().zip(v) {
                *o = (x / norm) as f32;
            }
        });
    out
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: tiny, fast, and fixed forever (unlike library RNGs across versions).
struct Rng(u64);

impl Rng {
    /// An independent stream for `(seed, stream)`.
    fn stream(seed: u64, stream: u64) -> Rng {
        Rng(mix(seed ^ mix(stream.wrapping_add(0x9E37_79B9_7F4A_7C15))))
    }

    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    #[inline]
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n); n > 0.
    #[inline]
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// An index with probability proportional to `w`.
    fn weighted(&mut self, w: &[f64]) -> usize {
        let total: f64 = w.iter().sum();
        let mut x = self.f64() * total;
        for (i, &wi) in w.iter().enumerate() {
            if x < wi {
                return i;
            }
            x -= wi;
        }
        w.len() - 1
    }

    /// An index drawn from cumulative weights.
    fn pick_cum(&mut self, cum: &[f64]) -> usize {
        let x = self.f64() * cum[cum.len() - 1];
        cum.partition_point(|&c| c <= x).min(cum.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthConfig {
        SynthConfig {
            users: 400,
            items: 300,
            events_per_user: 30,
            seed: 7,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn same_seed_same_output_different_seed_different() {
        let a = generate(&small());
        let b = generate(&small());
        assert_eq!(a, b);
        let c = generate(&SynthConfig { seed: 8, ..small() });
        assert_ne!(a.events, c.events);
        assert_ne!(a.items, c.items);
        let d = generate_dense(100_000, 1000, 500, 3);
        assert_eq!(d, generate_dense(100_000, 1000, 500, 3));
        assert_ne!(d, generate_dense(100_000, 1000, 500, 4));
    }

    #[test]
    fn shape_of_the_data() {
        let cfg = small();
        let s = generate(&cfg);
        assert_eq!(s.users.len(), cfg.users);
        assert_eq!(s.items.len(), cfg.items);
        assert_eq!(s.genres[0], "Action");
        let mean = s.events.len() as f64 / cfg.users as f64;
        assert!(
            (0.7 * 30.0..1.3 * 30.0).contains(&mean),
            "mean events/user {mean}"
        );
        for it in &s.items {
            assert!((1..=3).contains(&it.genres.len()));
            assert!(it
                .title
                .as_deref()
                .unwrap()
                .chars()
                .next()
                .unwrap()
                .is_uppercase());
        }
        // Per user: time ordered, no repeats, sessions separated by more than the gap.
        let mut by_user: FxHashMap<&str, Vec<&RawEvent>> = FxHashMap::default();
        for e in &s.events {
            assert_eq!(e.kind, EventKind::Rating);
            assert!((1.0..=5.0).contains(&e.value) && e.value.fract() == 0.0);
            by_user.entry(&e.user).or_default().push(e);
        }
        for evs in by_user.values() {
            let mut items: Vec<&str> = evs.iter().map(|e| e.item.as_str()).collect();
            items.sort_unstable();
            items.dedup();
            assert_eq!(items.len(), evs.len(), "a user rated an item twice");
            for w in evs.windows(2) {
                let gap = w[1].timestamp - w[0].timestamp;
                assert!(gap > 0);
                if w[0].group == w[1].group {
                    assert!(gap <= 600);
                } else {
                    assert!(gap > cfg.session_gap_secs);
                }
            }
        }
        // Power-law popularity: the top 10% of items get far more than 10% of events.
        let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
        for e in &s.events {
            *counts.entry(&e.item).or_default() += 1;
        }
        let mut c: Vec<usize> = counts.into_values().collect();
        c.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = c[..cfg.items / 10].iter().sum();
        assert!(
            top as f64 > 0.25 * s.events.len() as f64,
            "top 10% items have {top} of {} events",
            s.events.len()
        );
    }

    #[test]
    fn taste_drives_choices_and_ratings() {
        let cfg = small();
        let (s, truth) = generate_with_truth(&cfg);
        let item_index = |id: &str| id[1..].parse::<usize>().unwrap() - 1;
        let user_index = |id: &str| id[1..].parse::<usize>().unwrap() - 1;
        let g = cfg.genres;
        // hits[genre][is_fan]: events on items of `genre` by users whose favourite is / is not it.
        let mut hits = vec![[0usize; 2]; g];
        let mut fan_totals = vec![0usize; g];
        let (mut in_taste, mut off_taste) = ((0.0, 0usize), (0.0, 0usize));
        for e in &s.events {
            let fav = truth.favourite[user_index(&e.user)];
            let genres = &truth.item_genres[item_index(&e.item)];
            fan_totals[fav] += 1;
            for gg in 0..g {
                if genres.contains(&gg) {
                    hits[gg][(fav == gg) as usize] += 1;
                }
            }
            if genres.contains(&fav) {
                in_taste.0 += e.value as f64;
                in_taste.1 += 1;
            } else {
                off_taste.0 += e.value as f64;
                off_taste.1 += 1;
            }
        }
        let total = s.events.len();
        let mut checked = 0;
        for gg in 0..g {
            let fans = fan_totals[gg];
            if fans < 200 || total - fans < 200 {
                continue;
            }
            let fan_share = hits[gg][1] as f64 / fans as f64;
            let other_share = hits[gg][0] as f64 / (total - fans) as f64;
            assert!(
                fan_share > 2.0 * other_share,
                "genre {}: fans pick it {fan_share:.3}, others {other_share:.3}",
                s.genres[gg]
            );
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} genres had enough fans");
        let r_in = in_taste.0 / in_taste.1 as f64;
        let r_off = off_taste.0 / off_taste.1 as f64;
        assert!(
            r_in > r_off + 0.3,
            "in-taste mean rating {r_in:.2}, off-taste {r_off:.2}"
        );
    }

    #[test]
    fn dense_generator_ranges_and_signal() {
        let (n, users, items) = (200_000, 2_000, 5_000);
        let d = generate_dense(n, users, items, 1);
        assert_eq!(d.len(), n);
        assert!(d.iter().all(|&(u, i, r, _)| (u as usize) < users
            && (i as usize) < items
            && (1.0..=5.0).contains(&r)));
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].3 < w[1].3));
        assert_eq!(d.last().unwrap().0 as usize, users - 1);
        assert!(generate_dense(10, 0, 5, 1).is_empty());
    }
}
