//! `wide-deep` training speed on MovieLens 1M's CTR shape: 6,040 users × 133 events
//! (≈ 800k examples, the CTR protocol's training part), 3,706 items with genres and a
//! year, users with three attributes, on a pool of 2 threads; one epoch per iteration
//! (setup included), with the default network and with `layers=64,32`. After
//! criterion's wall-clock figures it prints the median seconds per epoch, wall and in
//! CPU-seconds of the pool / threads (the figure that moves least on a shared machine).
//!
//! `cargo bench --bench wide_deep` (RECDB_WD_USERS, RECDB_WD_ITEMS, RECDB_WD_PER_USER,
//! RECDB_WD_THREADS).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use recdb::testkit::{pool_cpu_seconds as pool_cpu, WideDeepEpoch};

mod common;
use common::env;

fn bench(c: &mut Criterion) {
    let threads = env("RECDB_WD_THREADS", 2);
    let (users, items, per_user) = (
        env("RECDB_WD_USERS", 6_040),
        env("RECDB_WD_ITEMS", 3_706),
        env("RECDB_WD_PER_USER", 133),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let mut g = c.benchmark_group("wide_deep");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30));
    let mut report = Vec::new();
    for layers in ["256,128,64", "64,32"] {
        let job =
            WideDeepEpoch::new(users, items, per_user, &[("layers", layers)], 7).expect("data");
        let mut runs = Vec::new();
        g.bench_function(format!("epoch layers {layers}"), |b| {
            b.iter(|| {
                let (t, c0) = (Instant::now(), pool_cpu(&pool));
                let nz = job.run(&pool, 7).expect("epoch");
                runs.push((
                    t.elapsed().as_secs_f64(),
                    (pool_cpu(&pool) - c0) / threads as f64,
                ));
                nz
            })
        });
        report.push((layers, job.examples(), runs));
    }
    g.finish();
    for (layers, examples, runs) in report {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        println!(
            "wide-deep layers {layers}: median {:.3} s/epoch wall, {:.3} s/epoch in CPU-seconds / {threads} ({} runs; {users} users, {items} items, {examples} examples, {threads} threads)",
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
            runs.len()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
