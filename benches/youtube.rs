//! `youtube` training speed on MovieLens 1M's shape: 6,040 users × 165 events (≈ 1M
//! examples), 3,706 items with a popularity skew, the default tower (history 10,
//! 256-128-64, batch 512), on a pool of 2 threads; one epoch per iteration, with the
//! full and the sampled softmax. After criterion's wall-clock figures it prints the
//! median seconds per epoch, wall and in CPU-seconds of the pool / threads (the figure
//! that moves least on a shared machine).
//!
//! `cargo bench --bench youtube` (RECDB_YT_USERS, RECDB_YT_ITEMS, RECDB_YT_PER_USER,
//! RECDB_YT_THREADS).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use recdb::testkit::{pool_cpu_seconds as pool_cpu, YoutubeEpochs};

mod common;
use common::env;

fn bench(c: &mut Criterion) {
    let threads = env("RECDB_YT_THREADS", 2);
    let (users, items, per_user) = (
        env("RECDB_YT_USERS", 6_040),
        env("RECDB_YT_ITEMS", 3_706),
        env("RECDB_YT_PER_USER", 165),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let mut g = c.benchmark_group("youtube");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(60));
    let mut report = Vec::new();
    for softmax in ["full", "sampled"] {
        let mut job =
            YoutubeEpochs::new(users, items, per_user, &[("softmax", softmax)], 7).expect("data");
        let mut runs = Vec::new();
        g.bench_function(format!("{softmax} softmax epoch"), |b| {
            b.iter(|| {
                let (t, c0) = (Instant::now(), pool_cpu(&pool));
                let loss = pool.install(|| job.epoch()).expect("epoch");
                runs.push((
                    t.elapsed().as_secs_f64(),
                    (pool_cpu(&pool) - c0) / threads as f64,
                ));
                loss
            })
        });
        report.push((softmax, job.examples(), runs));
    }
    g.finish();
    for (softmax, examples, runs) in report {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        println!(
            "youtube {softmax} softmax: median {:.3} s/epoch wall, {:.3} s/epoch in CPU-seconds / {threads} ({} runs; {users} users, {items} items, {examples} examples, {threads} threads)",
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
            runs.len()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
