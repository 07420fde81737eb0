//! word2vec speed: skip-gram and CBOW on a Zipf(1) synthetic text of 1M words
//! over 50k types, sentences of 10 words (`recdb::testkit::ZipfText`), with 100 dims, window 5,
//! 5 negatives, subsampling 1e-3, 5 epochs, on a pool of 2 threads. Throughput counts
//! corpus words before subsampling, times the 5 epochs (as the job's words/s line).
//! After criterion's wall-clock figures it prints words per CPU-second of the pool,
//! scaled to 2 threads: on the shared machine that figure moves much less with load.
//!
//! `cargo bench --bench word2vec` (RECDB_W2V_WORDS, RECDB_W2V_SENT, RECDB_W2V_THREADS).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use recdb::testkit::ZipfText;
use recdb::{JobContext, NoProgress};

mod common;
use common::env;
use recdb::testkit::pool_cpu_seconds as pool_cpu;

fn bench(c: &mut Criterion) {
    let threads = env("RECDB_W2V_THREADS", 2);
    let text = ZipfText::new(
        env("RECDB_W2V_WORDS", 1_000_000),
        50_000,
        env("RECDB_W2V_SENT", 10),
        99,
    )
    .expect("text");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let cancel = AtomicBool::new(false);
    let ctx = JobContext::new(1, &cancel, &NoProgress, &pool);
    let mut g = c.benchmark_group("word2vec");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(text.words() as u64 * 5));
    let mut cpu = Vec::new();
    for (name, cbow) in [("skipgram", false), ("cbow", true)] {
        let mut runs = Vec::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                let (t, c0) = (Instant::now(), pool_cpu(&pool));
                let words = text.train(cbow, &ctx).expect("train") as f64;
                let (wall, secs) = (t.elapsed().as_secs_f64(), pool_cpu(&pool) - c0);
                runs.push((words / wall, words / (secs / threads as f64)));
            })
        });
        cpu.push((name, runs));
    }
    g.finish();
    for (name, mut runs) in cpu {
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let mut wall: Vec<f64> = runs.iter().map(|r| r.0).collect();
        runs.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut per_cpu: Vec<f64> = runs.iter().map(|r| r.1).collect();
        println!(
            "{name}: median {:.0} words/s wall, {:.0} words per {threads} CPU-seconds ({} runs, {} words, {} types, {threads} threads)",
            median(&mut wall),
            median(&mut per_cpu),
            runs.len(),
            text.words(),
            text.types(),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
