//! Limits: one very long history, huge external ids, a large table. Each at two sizes
//! (10×) so a quadratic blow-up shows as a 100× time ratio instead of 10×.
//! 10M-event ingest is `benches/ingest.rs`; peak RSS is in docs/RELIABILITY.md.
//!
//! `cargo bench --bench limits`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use recdb::{Db, EventKind, RowSpace};

/// One user with `n` events: commit them, then read the whole history.
fn long_history(c: &mut Criterion) {
    let mut g = c.benchmark_group("long_history");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for n in [10_000usize, 100_000] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("ingest", n), &n, |b, &n| {
            b.iter(|| {
                let db = Db::temporary().unwrap();
                let mut batch = db.batch();
                for i in 0..n {
                    let item = format!("i{}", i % 5000);
                    batch
                        .push("one", &item, EventKind::View, 1.0, i as i64)
                        .unwrap();
                }
                batch.commit().unwrap();
            })
        });
        let db = Db::temporary().unwrap();
        let mut batch = db.batch();
        for i in 0..n {
            let item = format!("i{}", i % 5000);
            batch
                .push("one", &item, EventKind::View, 1.0, (n - i) as i64)
                .unwrap();
        }
        batch.commit().unwrap();
        g.bench_with_input(BenchmarkId::new("history", n), &n, |b, &n| {
            b.iter(|| assert_eq!(db.history("one").unwrap().len(), n))
        });
    }
    g.finish();
}

/// `n` users and items with 1 KiB ids (the maximum), one event each.
fn huge_ids(c: &mut Criterion) {
    let mut g = c.benchmark_group("huge_ids");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let pad = "x".repeat(1010);
    for n in [2_000usize, 20_000] {
        let users: Vec<String> = (0..n).map(|i| format!("{pad}u{i:08}")).collect();
        let items: Vec<String> = (0..n).map(|i| format!("{pad}i{i:08}")).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("ingest", n), &n, |b, _| {
            b.iter(|| {
                let db = Db::temporary().unwrap();
                let mut batch = db.batch();
                for (u, i) in users.iter().zip(&items) {
                    batch.push(u, i, EventKind::View, 1.0, 0).unwrap();
                }
                batch.commit().unwrap();
                assert_eq!(db.stats().unwrap().users, users.len() as u64);
            })
        });
    }
    g.finish();
}

/// `put_table` of n × 128, then a full scan (sum of norms).
fn big_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("table_x128");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for n in [100_000usize, 1_000_000] {
        let rows: Vec<f32> = (0..n * 128).map(|i| (i % 97) as f32 / 97.0).collect();
        g.throughput(Throughput::Elements(n as u64));
        let db = Db::temporary().unwrap();
        g.bench_with_input(BenchmarkId::new("put_table", n), &n, |b, _| {
            b.iter(|| {
                db.put_table("t", RowSpace::Other, 128, &rows, vec![])
                    .unwrap()
            })
        });
        let view = db.table("t").unwrap();
        g.bench_with_input(BenchmarkId::new("scan", n), &n, |b, _| {
            b.iter(|| (0..view.rows()).map(|r| view.row(r).norm()).sum::<f32>())
        });
    }
    g.finish();
}

criterion_group!(benches, long_history, huge_ids, big_table);
criterion_main!(benches);
