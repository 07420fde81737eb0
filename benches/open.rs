//! The cost of opening: open a database of N distinct ids, answer one `recommend`
//! (popularity model) and close, as one shell command does.
//!
//! `cargo bench --bench open` (RECDB_BENCH_IDS: comma-separated id counts, default
//! `1000000,10000000`). Each database is built once, in commits of 1M events of two
//! new ids each (a user and an item), and trained (`popular`), before its measurement.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use recdb::{Config, Db, EventKind, Params, QueryOptions};

fn sizes() -> Vec<usize> {
    std::env::var("RECDB_BENCH_IDS")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// A database with `ids` distinct ids: `ids / 2` events, each a new user and item.
/// No index is built on publish: the figure is the cost of opening, not of a search.
fn build(path: &std::path::Path, ids: usize) {
    let db = Db::open_with(Config {
        auto_index_rows: 0,
        ..Config::new(path)
    })
    .unwrap();
    let events = ids / 2;
    for start in (0..events).step_by(1 << 20) {
        let mut batch = db.batch();
        for e in start..(start + (1 << 20)).min(events) {
            let (user, item) = (format!("user-{e:09}"), format!("item-{e:09}"));
            batch
                .push(&user, &item, EventKind::Rating, 4.0, e as i64)
                .unwrap();
        }
        batch.commit().unwrap();
    }
    db.train("popular", &Params::new(), &Default::default())
        .unwrap();
}

fn open_and_query(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let opts = QueryOptions {
        model: "popular".into(),
        ..Default::default()
    };
    for ids in sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        build(&path, ids);
        g.bench_with_input(
            BenchmarkId::new("open_recommend_close", ids),
            &path,
            |b, path| {
                b.iter(|| {
                    let db = Db::open(path).unwrap();
                    let hits = db.recommend("user-000000007", &opts).unwrap();
                    assert_eq!(hits.len(), 10);
                    let users = db.stats().unwrap().users;
                    assert_eq!(users, ids as u64 / 2);
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, open_and_query);
criterion_main!(benches);
