//! EASE fit speed on MovieLens 1M shapes: 3,706 items, 6,040 users. With
//! `$RECDB_DATA/ml-1m/ml-1m.inter` present, X is its ratings ≥ 4 (575,281 positives; the
//! columns are all 3,706 items of the file); without it, a synthetic X of the same shape
//! (95 positives per user, item popularity skewed like a Zipf law). λ = 1000, a pool of 2
//! threads; the fit is the job's (`recdb::testkit::ease_fit`): Gram, Cholesky, inverse,
//! B. Both float types are timed; the job runs f32.
//!
//! `cargo bench --bench ease` (RECDB_DATA, RECDB_EASE_THREADS).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use recdb::testkit::{ease_fit, EasePenalty, EasePrecision};
use recdb::{JobContext, NoProgress};

mod common;
use common::env;

/// (items, each user's sorted distinct positive items) and where they came from.
fn data() -> (usize, Vec<Vec<u32>>, &'static str) {
    if let Ok(dir) = std::env::var("RECDB_DATA") {
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/ml-1m/ml-1m.inter")) {
            let (mut items, mut users) = (HashMap::new(), HashMap::new());
            let mut rows: Vec<Vec<u32>> = Vec::new();
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split('\t').collect();
                let n = items.len() as u32;
                let i = *items.entry(f[1].to_owned()).or_insert(n);
                let n = users.len();
                let u = *users.entry(f[0].to_owned()).or_insert(n);
                if u == rows.len() {
                    rows.push(Vec::new());
                }
                if f[2].parse::<f32>().unwrap_or(0.0) >= 4.0 {
                    rows[u].push(i);
                }
            }
            for r in &mut rows {
                r.sort_unstable();
                r.dedup();
            }
            return (items.len(), rows, "ml-1m.inter, ratings >= 4");
        }
    }
    let (n, users, per_user) = (3706, 6040, 95);
    let mut rng = SmallRng::seed_from_u64(7);
    let rows = (0..users)
        .map(|_| {
            let mut r: Vec<u32> = (0..per_user)
                .map(|_| {
                    let x: f64 = rng.random();
                    ((x * x * x) * n as f64) as u32
                })
                .collect();
            r.sort_unstable();
            r.dedup();
            r
        })
        .collect();
    (n, rows, "synthetic")
}

fn bench(c: &mut Criterion) {
    let threads = env("RECDB_EASE_THREADS", 2);
    let (n, rows, source) = data();
    let positives: usize = rows.iter().map(Vec::len).sum();
    eprintln!(
        "ease fit: {n} items, {} users, {positives} positives ({source}), {threads} threads",
        rows.len()
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let cancel = AtomicBool::new(false);
    let ctx = JobContext::new(1, &cancel, &NoProgress, &pool);
    let mut g = c.benchmark_group("ease");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    for (name, precision) in [
        ("fit_f32", EasePrecision::F32),
        ("fit_f64", EasePrecision::F64),
    ] {
        g.bench_function(name, |b| {
            let penalty = EasePenalty {
                lambda: 1000.0,
                dropout: 0.0,
            };
            b.iter(|| ease_fit(n, &rows, penalty, precision, &ctx).expect("fit"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
