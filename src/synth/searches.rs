//! Searches with signal: before some events a user searches for words of the genre of
//! the item they are about to pick (each genre has its own words, no word shared by two
//! genres), so a model that reads searches can learn what the next item will be.
//!
//! A search comes 1 s before the event it announces; events of a user are at least 20 s
//! apart, so every search falls between the user's previous event and the one it names.
//! Everything derives from the config's seed (one stream per user), so the output is the
//! same on every machine.

use rustc_hash::FxHashMap;

use super::rng::Rng;
use super::words::WORDS;
use super::Synth;

/// How to generate searches for a [`Synth`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchConfig {
    /// Probability that an event is preceded by a search naming its genre.
    pub rate: f64,
    /// Words per query (at least 1).
    pub words: usize,
    /// Probability that a word of a query is drawn from all genres' words instead
    /// (noise).
    pub noise: f64,
    /// Probability that a query is the item's title instead of genre words (an
    /// item-level signal: titles are word pairs shared by few items).
    pub title: f64,
    pub seed: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            rate: 0.3,
            words: 2,
            noise: 0.1,
            title: 0.0,
            seed: 7,
        }
    }
}

/// One generated search, with external ids (what `IngestBatch::push_search` takes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSearch {
    pub user: String,
    pub text: String,
    pub timestamp: i64,
}

/// The words of each genre of `genres`: disjoint slices of the shuffled word list while
/// it lasts, then made-up letter words (`zqab`), so no word names two genres.
pub fn genre_words(genres: usize, seed: u64) -> Vec<Vec<String>> {
    let mut words: Vec<&str> = WORDS.to_vec();
    let mut r = Rng::stream(seed, 3);
    for i in (1..words.len()).rev() {
        words.swap(i, r.below(i + 1));
    }
    let per = (words.len() / genres.max(1)).clamp(3, 8);
    (0..genres)
        .map(|g| {
            (0..per)
                .map(|j| {
                    let k = g * per + j;
                    words.get(k).map_or_else(|| made_up(k), |w| w.to_string())
                })
                .collect()
        })
        .collect()
}

/// A word of letters only (the tokenizer keeps ASCII letters), distinct per `k`.
fn made_up(mut k: usize) -> String {
    let mut s = String::from("zq");
    loop {
        s.push((b'a' + (k % 26) as u8) as char);
        k /= 26;
        if k == 0 {
            return s;
        }
    }
}

/// Searches for the users of `synth`, grouped by user and in time order within a user.
/// The same `synth` and config give the same searches.
pub fn generate_searches(synth: &Synth, cfg: &SearchConfig) -> Vec<SynthSearch> {
    let words = genre_words(synth.genres.len(), cfg.seed);
    let genre_of: FxHashMap<&str, usize> = synth
        .genres
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let items: FxHashMap<&str, (Option<usize>, Option<&str>)> = synth
        .items
        .iter()
        .map(|it| {
            let g = it
                .genres
                .first()
                .and_then(|g| genre_of.get(g.as_str()).copied());
            (it.id.as_str(), (g, it.title.as_deref()))
        })
        .collect();
    let all: Vec<&String> = words.iter().flatten().collect();
    let mut out = Vec::new();
    let mut r = Rng::stream(cfg.seed, 4);
    let mut user: Option<&str> = None;
    let mut users = 0u64;
    for e in &synth.events {
        if user != Some(e.user.as_str()) {
            user = Some(e.user.as_str());
            users += 1;
            r = Rng::stream(cfg.seed, 0x3_0000_0000 + users);
        }
        if r.f64() >= cfg.rate {
            continue;
        }
        let Some(&(genre, title)) = items.get(e.item.as_str()) else {
            continue;
        };
        let text = match (title, genre) {
            (Some(t), _) if r.f64() < cfg.title => t.to_string(),
            (_, Some(g)) => {
                let own = &words[g];
                (0..cfg.words.max(1))
                    .map(|_| {
                        if r.f64() < cfg.noise && !all.is_empty() {
                            all[r.below(all.len())].as_str()
                        } else {
                            own[r.below(own.len())].as_str()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            _ => continue,
        };
        out.push(SynthSearch {
            user: e.user.clone(),
            text,
            timestamp: e.timestamp - 1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{generate, SynthConfig};
    use super::*;

    #[test]
    fn searches_name_the_genre_of_the_next_item_and_are_deterministic() {
        let synth = generate(&SynthConfig {
            users: 50,
            items: 200,
            events_per_user: 20,
            ..SynthConfig::default()
        });
        let cfg = SearchConfig {
            noise: 0.0,
            ..SearchConfig::default()
        };
        let s = generate_searches(&synth, &cfg);
        assert_eq!(s, generate_searches(&synth, &cfg));
        assert!(s.len() > synth.events.len() / 5, "{}", s.len());
        let words = genre_words(synth.genres.len(), cfg.seed);
        for q in &s {
            let next = synth
                .events
                .iter()
                .find(|e| e.user == q.user && e.timestamp == q.timestamp + 1)
                .expect("a search precedes an event");
            let item = synth.items.iter().find(|i| i.id == next.item).unwrap();
            let g = synth
                .genres
                .iter()
                .position(|g| *g == item.genres[0])
                .unwrap();
            assert!(q.text.split(' ').all(|w| words[g].iter().any(|x| x == w)));
        }
        // No word names two genres.
        let mut seen = std::collections::HashSet::new();
        assert!(words.iter().flatten().all(|w| seen.insert(w)));
        assert!(genre_words(40, 1).iter().flatten().all(|w| w.len() >= 2));
    }
}
