//! Tests of the generators: determinism, the shape of the data, and its signal.

use rustc_hash::FxHashMap;

use crate::synth::*;
use crate::testkit::generate_dense;
use crate::{EventKind, RawEvent};

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
