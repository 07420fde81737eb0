//! Autoencoder training speed on MovieLens 1M's shapes under protocol STRONG: 4,840
//! train users, 3,706 items, ~100 positives per user (synthetic, popularity-skewed),
//! batch 500, on a pool of 2 threads; one epoch per iteration, `mult-dae` [I-200-I]
//! and `mult-vae` [I-600-200-600-I] with their default hyperparameters. After
//! criterion's wall-clock figures it prints the median seconds per epoch, wall and in
//! CPU-seconds of the pool / threads (the figure that moves least on a shared machine).
//!
//! Then serving: `recommend` on a trained `mult-vae` (default layers, one epoch on
//! RECDB_AE_SERVE_USERS users), the median over 200 queries with the network parsed
//! once per published version (cached) and parsed on every query (the cache cleared
//! before each, as every query did before the cache).
//!
//! `cargo bench --bench autoencoder` (RECDB_AE_USERS, RECDB_AE_ITEMS, RECDB_AE_PER_USER,
//! RECDB_AE_THREADS, RECDB_AE_SERVE_USERS); `-- serve` skips the epochs.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use recdb::testkit::{forget_parsed_models, pool_cpu_seconds as pool_cpu, AutoencoderEpochs};
use recdb::{Db, EventKind, Params, QueryOptions, TrainOptions};

mod common;
use common::env;

fn bench(c: &mut Criterion) {
    let threads = env("RECDB_AE_THREADS", 2);
    let (users, items, per_user) = (
        env("RECDB_AE_USERS", 4_840),
        env("RECDB_AE_ITEMS", 3_706),
        env("RECDB_AE_PER_USER", 100),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let mut g = c.benchmark_group("autoencoder");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(20));
    let mut report = Vec::new();
    for model in ["mult-dae", "mult-vae"] {
        let mut job = AutoencoderEpochs::new(model, users, items, per_user, 7).expect("data");
        let mut runs = Vec::new();
        g.bench_function(format!("{model} epoch"), |b| {
            b.iter(|| {
                let (t, c0) = (Instant::now(), pool_cpu(&pool));
                let loss = pool.install(|| job.epoch());
                runs.push((
                    t.elapsed().as_secs_f64(),
                    (pool_cpu(&pool) - c0) / threads as f64,
                ));
                loss
            })
        });
        report.push((model, job.positives(), runs));
    }
    g.finish();
    for (model, positives, runs) in report {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        println!(
            "{model}: median {:.3} s/epoch wall, {:.3} s/epoch in CPU-seconds / {threads} ({} runs; {users} users, {items} items, {positives} positives, {threads} threads)",
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
            runs.len(),
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn serve(_: &mut Criterion) {
    let (users, items, per_user) = (
        env("RECDB_AE_SERVE_USERS", 1_000),
        env("RECDB_AE_ITEMS", 3_706),
        env("RECDB_AE_PER_USER", 100),
    );
    let db = Db::temporary().expect("db");
    let mut b = db.batch();
    for u in 0..users {
        for n in 0..per_user.min(items) {
            // Skewed to low ids, distinct per user.
            let i = (u * 31 + n * n * 7 + n) % items;
            b.push(
                &format!("u{u}"),
                &format!("i{i}"),
                EventKind::Interaction,
                1.0,
                n as i64,
            )
            .expect("push");
        }
    }
    b.commit().expect("commit");
    let o = TrainOptions {
        seed: 7,
        threads: Some(2),
        ..Default::default()
    };
    db.train("mult-vae", &Params::new().set("epochs", 1), &o)
        .expect("train");
    let opts = QueryOptions {
        model: "mult-vae".into(),
        k: 10,
        ..Default::default()
    };
    let timed = |forget: bool| {
        let mut t = Vec::new();
        for q in 0..200 {
            if forget {
                forget_parsed_models(&db);
            }
            let user = format!("u{}", q % users);
            let s = Instant::now();
            db.recommend(&user, &opts).expect("recommend");
            t.push(s.elapsed().as_secs_f64() * 1e3);
        }
        median(t)
    };
    timed(false);
    let (parsed_each, cached) = (timed(true), timed(false));
    println!(
        "mult-vae recommend (k 10, {items} items, {users} users): median {parsed_each:.3} ms parsing the network per query, {cached:.3} ms cached (200 queries each, wall)"
    );
}

criterion_group!(benches, bench, serve);
criterion_main!(benches);
