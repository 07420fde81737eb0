//! What durability and disk space cost.
//!
//! 1. Durable commits: `RECDB_DUR_COMMITS` (default 300) commits of one event each on
//!    disk, each durable on return, with `Config::fsync` on (the default: the files sled
//!    wrote are `fsync`ed) and off (sled's flush alone); mean and percentiles per commit.
//! 2. Disk growth: the synthetic data set (2,000 users, 1,000 items, ~100k events), then
//!    `RECDB_DUR_RETRAINS` (default 100) ALS retrains at 128 factors (one iteration:
//!    the size of the tables is what matters), each in its own open and close, as
//!    separate `recdb train` commands run them, with `Config::auto_vacuum` off and on;
//!    the directory size every 10 retrains (the largest seen in between), then
//!    `Db::vacuum` and the size after it against the live data.
//!
//! `cargo bench --bench durability`

use std::path::Path;
use std::time::Instant;

use recdb::testkit::SynthConfig;
use recdb::{Config, Db, EventKind, Params, TrainOptions};

mod common;
use common::env;

#[path = "../tests/common/fs.rs"]
mod fs;
use fs::dir_bytes;

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn commits(dir: &Path, fsync: bool, n: usize) {
    let path = dir.join(format!("commits-{fsync}"));
    let db = Db::open_with(Config {
        fsync,
        ..Config::new(&path)
    })
    .unwrap();
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let mut batch = db.batch();
        batch
            .push(
                &format!("u{}", i % 50),
                &format!("i{i}"),
                EventKind::View,
                1.0,
                i as i64,
            )
            .unwrap();
        batch.commit().unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mean = ms.iter().sum::<f64>() / n as f64;
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((n - 1) as f64 * p).round() as usize];
    println!(
        "durable commit, fsync {fsync}: mean {mean:.2} ms, p50 {:.2} ms, p99 {:.2} ms ({n} commits)",
        pct(0.5),
        pct(0.99)
    );
}

fn growth(dir: &Path, retrains: usize, auto_vacuum: bool) {
    println!("auto_vacuum {auto_vacuum}:");
    let path = dir.join(format!("growth-{auto_vacuum}"));
    let open = || {
        Db::open_with(Config {
            auto_vacuum,
            ..Config::new(&path)
        })
        .unwrap()
    };
    let synth = recdb::testkit::generate(&SynthConfig::default());
    {
        let db = open();
        db.put_items(&synth.items).unwrap();
        db.put_users(&synth.users).unwrap();
        db.log_events(&synth.events).unwrap();
    }
    println!(
        "loaded {} events: {:.1} MiB",
        synth.events.len(),
        mib(dir_bytes(&path))
    );
    let params = Params::new().set("factors", 128).set("iterations", 1);
    let mut largest = 0;
    for i in 1..=retrains {
        let db = open();
        db.train("als", &params, &TrainOptions::default()).unwrap();
        drop(db);
        let now = dir_bytes(&path);
        largest = largest.max(now);
        if i % 10 == 0 || i == retrains {
            println!(
                "after {i} retrains: {:.1} MiB (largest so far {:.1} MiB)",
                mib(now),
                mib(largest)
            );
        }
    }
    let t = Instant::now();
    let r = Db::vacuum(&path).unwrap();
    println!(
        "vacuum: {:.1} MiB -> {:.1} MiB in {:.2} s ({} keys, {:.1} MiB of keys and values)",
        mib(r.bytes_before),
        mib(r.bytes_after),
        t.elapsed().as_secs_f64(),
        r.keys,
        mib(r.live_bytes)
    );
}

fn main() {
    let dir = std::env::temp_dir().join(format!("recdb-bench-durability-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let n = env("RECDB_DUR_COMMITS", 300).max(1);
    commits(&dir, false, n);
    commits(&dir, true, n);
    let retrains = env("RECDB_DUR_RETRAINS", 100);
    growth(&dir, retrains, false);
    growth(&dir, retrains, true);
    let _ = std::fs::remove_dir_all(&dir);
}
