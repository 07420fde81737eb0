//! How recdb's own ALS grows with the log: the figures of docs/SCALE.md.
//!
//! `cargo bench --bench scale` (a measuring tool, not criterion: one run of each step,
//! big sizes take minutes). Environment:
//! `RECDB_SCALE_EVENTS` (default 1M), `RECDB_SCALE_USERS` (default events / 100),
//! `RECDB_SCALE_ITEMS` (default users / 2), `RECDB_SCALE_ITERATIONS` (ALS sweeps,
//! default 5), `RECDB_SCALE_THREADS` (default 2), `RECDB_SCALE_PARQUET=1` to time the
//! Parquet export too, `RECDB_SCALE_DIR` (where the database goes; default a temporary
//! directory). Prints one JSON line: seconds and peak resident memory (VmHWM, reset
//! before each step through /proc/self/clear_refs) of ingest, training and export.

use std::time::Instant;

use recdb::{Config, Db, EventKind, Params, TrainOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Peak resident memory of this process since the last reset, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn current_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Reset the peak to the current resident size (Linux: "5" to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let n = env("RECDB_SCALE_EVENTS", 1_000_000);
    let users = env("RECDB_SCALE_USERS", (n / 100).max(1));
    let items = env("RECDB_SCALE_ITEMS", (users / 2).max(1));
    let iterations = env("RECDB_SCALE_ITERATIONS", 5);
    let threads = env("RECDB_SCALE_THREADS", 2);
    let tmp = tempfile::tempdir_in(std::env::var("RECDB_SCALE_DIR").unwrap_or_else(|_| ".".into()))
        .expect("a temporary directory");
    let db = Db::open_with(Config {
        path: Some(tmp.path().join("db")),
        threads,
        ..Config::default()
    })
    .expect("open");

    // The ingest bench's generator, streamed: uniform users, items skewed (cube of a
    // uniform draw, so low ids are popular), ratings 1-5, one event a second.
    reset_peak();
    let t = Instant::now();
    let user_names: Vec<String> = (0..users).map(|u| format!("u{u}")).collect();
    let item_names: Vec<String> = (0..items).map(|i| format!("i{i}")).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut left = n;
    let mut k = 0i64;
    while left > 0 {
        let step = left.min(1_000_000);
        let mut w = db.batch();
        for _ in 0..step {
            let u = (next() % users as u64) as usize;
            let r = (next() % 1_000_000) as f64 / 1_000_000.0;
            let i = (((r * r * r) * items as f64) as usize).min(items - 1);
            let v = 1.0 + (next() % 5) as f32;
            w.push(
                &user_names[u],
                &item_names[i],
                EventKind::Rating,
                v,
                1_600_000_000 + k,
            )
            .expect("push");
            k += 1;
        }
        w.commit().expect("commit");
        left -= step;
    }
    drop(user_names);
    drop(item_names);
    let ingest_s = t.elapsed().as_secs_f64();
    let ingest_peak = peak_mb();

    let base = current_mb();
    reset_peak();
    let t = Instant::now();
    let params = Params::new().set("iterations", iterations);
    let opts = TrainOptions {
        threads: Some(threads),
        ..TrainOptions::default()
    };
    db.train("als", &params, &opts).expect("train als");
    let train_s = t.elapsed().as_secs_f64();
    let train_peak = peak_mb();

    let mut export = serde_json::Value::Null;
    if std::env::var("RECDB_SCALE_PARQUET").is_ok_and(|v| v == "1") {
        reset_peak();
        let t = Instant::now();
        let r = db
            .export_log_parquet(&tmp.path().join("log"), recdb::PARQUET_ROWS_PER_FILE)
            .expect("export");
        let bytes: u64 = std::fs::read_dir(tmp.path().join("log"))
            .expect("log dir")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        export = serde_json::json!({
            "seconds": t.elapsed().as_secs_f64(),
            "peak_mb": peak_mb(),
            "files": r.files,
            "bytes": bytes,
        });
    }
    let db_bytes: u64 = walk(&tmp.path().join("db"));
    println!(
        "{}",
        serde_json::json!({
            "events": n, "users": users, "items": items, "threads": threads,
            "iterations": iterations,
            "ingest_seconds": ingest_s, "ingest_peak_mb": ingest_peak,
            "rss_before_train_mb": base,
            "train_seconds": train_s, "train_seconds_per_iteration": train_s / iterations as f64,
            "train_peak_mb": train_peak,
            "db_bytes": db_bytes,
            "parquet_export": export,
        })
    );
}

fn walk(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return std::fs::metadata(p).map_or(0, |m| m.len());
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}
