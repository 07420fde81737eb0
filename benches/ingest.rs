//! Ingest throughput: the Rust batch API (durable commits) and TSV import.
//!
//! `cargo bench --bench ingest` (set RECDB_BENCH_EVENTS to change the 10M default).

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use recdb::{Db, EventKind};

fn events_n() -> usize {
    std::env::var("RECDB_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000)
}

/// Deterministic synthetic events: 100k users, 50k items with a skewed popularity.
type Events = Vec<(u32, u32, f32, i64)>;

fn synthetic(n: usize) -> (Vec<String>, Vec<String>, Events) {
    let users: Vec<String> = (0..100_000).map(|u| format!("u{u}")).collect();
    let items: Vec<String> = (0..50_000).map(|i| format!("i{i}")).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let evs = (0..n)
        .map(|k| {
            let u = (next() % 100_000) as u32;
            let r = (next() % 1_000_000) as f64 / 1_000_000.0;
            let i = ((r * r * r) * 50_000.0) as u32;
            (u, i, 1.0 + (next() % 5) as f32, 1_600_000_000 + k as i64)
        })
        .collect();
    (users, items, evs)
}

fn batch_api(c: &mut Criterion) {
    let n = events_n();
    let (users, items, evs) = synthetic(n);
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(n as u64));
    for batch in [1_000_000usize, 2_500_000] {
        g.bench_with_input(
            BenchmarkId::new("batch_api_durable", format!("{n}ev_{batch}per_commit")),
            &batch,
            |b, &batch| {
                b.iter_with_setup(
                    || tempfile::tempdir().unwrap(),
                    |dir| {
                        let db = Db::open(dir.path().join("db")).unwrap();
                        for chunk in evs.chunks(batch) {
                            let mut w = db.batch();
                            for &(u, i, v, ts) in chunk {
                                w.push(
                                    &users[u as usize],
                                    &items[i as usize],
                                    EventKind::Rating,
                                    v,
                                    ts,
                                )
                                .unwrap();
                            }
                            w.commit().unwrap();
                        }
                        drop(db);
                        dir
                    },
                )
            },
        );
    }
    // The same API, pipelined: one thread fills batch N+1 while this one commits N.
    g.bench_function(
        BenchmarkId::new(
            "batch_api_durable_pipelined",
            format!("{n}ev_1000000per_commit"),
        ),
        |b| {
            b.iter_with_setup(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    let db = Db::open(dir.path().join("db")).unwrap();
                    std::thread::scope(|s| {
                        let (tx, rx) = std::sync::mpsc::sync_channel(1);
                        let (db, users, items, evs) = (&db, &users, &items, &evs);
                        s.spawn(move || {
                            for chunk in evs.chunks(1_000_000) {
                                let mut w = db.batch();
                                for &(u, i, v, ts) in chunk {
                                    w.push(
                                        &users[u as usize],
                                        &items[i as usize],
                                        EventKind::Rating,
                                        v,
                                        ts,
                                    )
                                    .unwrap();
                                }
                                tx.send(w).unwrap();
                            }
                        });
                        for w in rx {
                            w.commit().unwrap();
                        }
                    });
                    drop(db);
                    dir
                },
            )
        },
    );
    g.finish();
}

fn tsv_import(c: &mut Criterion) {
    let n = events_n();
    let (_, _, evs) = synthetic(n);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.tsv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, "user_id\titem_id\trating\ttimestamp").unwrap();
    for &(u, i, v, ts) in &evs {
        writeln!(f, "u{u}\ti{i}\t{v}\t{ts}").unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(n as u64));
    g.bench_function(
        BenchmarkId::new("tsv_import_durable", format!("{n}lines")),
        |b| {
            b.iter_with_setup(
                || tempfile::tempdir().unwrap(),
                |d| {
                    let db = Db::open(d.path().join("db")).unwrap();
                    db.import_events(&path, None).unwrap();
                    drop(db);
                    d
                },
            )
        },
    );
    g.bench_function(
        BenchmarkId::new("tsv_parse_only", format!("{n}lines")),
        |b| b.iter(|| recdb::testkit::read_events(&path, None).unwrap().len()),
    );
    g.finish();
}

criterion_group!(benches, batch_api, tsv_import);
criterion_main!(benches);
