//! Row updates on an indexed table (`Db::upsert_rows` one row at a time, as an
//! application would): the latency of a single-row upsert as the version's delta grows
//! towards its compaction threshold, and the query cost of that delta: CPU QPS of the
//! index + delta, of the version before the updates (timed in turn, best of the passes; the
//! ratio of the two), and recall@10 against exact search of the same served rows.
//!
//! `cargo bench --bench updates` (RECDB_UPD_N rows, default 200000, × 64 dims, on disk
//! under a temporary directory; RECDB_UPD_STEPS delta sizes, default 0,500,1000,1900;
//! RECDB_UPD_PASSES timed passes, default 5). At the end, a compaction (the index
//! carried over to the new version) against a full rebuild of that version.

use std::collections::HashSet;
use std::time::Instant;

use recdb::testkit::clustered_vectors;
use recdb::{Config, Db, IndexOptions, Metric, RowSpace, SearchOptions};

mod common;
use common::{env, thread_cpu};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let n = env("RECDB_UPD_N", 200_000);
    let dim = 64;
    let nq = 500;
    let passes = env("RECDB_UPD_PASSES", 5).max(1);
    let steps: Vec<usize> = std::env::var("RECDB_UPD_STEPS")
        .unwrap_or_else(|_| "0,500,1000,1900".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let extra = steps.iter().copied().max().unwrap_or(0);
    let mut rows = clustered_vectors(n + extra + nq, dim, 7);
    let queries = rows.split_off((n + extra) * dim);
    let fresh = rows.split_off(n * dim);
    let dir = std::env::temp_dir().join(format!("recdb-bench-updates-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open_with(Config {
        path: Some(dir.clone()),
        auto_index_rows: 0,
        ..Config::default()
    })
    .expect("open");
    db.put_table("t", RowSpace::Other, dim, &rows, vec![])
        .expect("put_table");
    let info = db
        .build_index("t", &IndexOptions::default())
        .expect("build");
    println!(
        "table: {n} x {dim}, index {} lists, nprobe {}",
        info.lists, info.nprobe
    );
    // The version as published, before any update: timed in turn with each later state,
    // so the cost of the delta is a ratio that the machine's drift does not change.
    let before = db.searcher("t").expect("searcher");
    println!("delta rows  upsert p50 ms  upsert p99 ms  CPU-QPS  CPU-QPS before  ratio  recall@10");
    // CPU-QPS of `s`, of the version before the updates (timed in turn), and recall@10.
    let measure = |s: &recdb::TableSearcher| -> (f64, f64, f64) {
        let exact = SearchOptions {
            k: 10,
            metric: Metric::Cosine,
            exact: true,
            nprobe: None,
        };
        let truth: Vec<HashSet<u32>> = queries
            .chunks_exact(dim)
            .map(|q| s.search(q, &exact).unwrap().iter().map(|h| h.0).collect())
            .collect();
        let o = SearchOptions {
            exact: false,
            ..exact.clone()
        };
        let (mut best, mut best_before) = (f64::INFINITY, f64::INFINITY);
        let mut hits = 0;
        // A pass runs the query set ROUNDS times: the CPU clock may tick in 4 ms steps.
        const ROUNDS: usize = 4;
        for _ in 0..passes {
            hits = 0;
            let c0 = thread_cpu();
            for _ in 0..ROUNDS {
                hits = 0;
                for (q, tr) in queries.chunks_exact(dim).zip(&truth) {
                    let got = s.search(q, &o).unwrap();
                    hits += got.iter().filter(|h| tr.contains(&h.0)).count();
                }
            }
            let c1 = thread_cpu();
            for _ in 0..ROUNDS {
                for q in queries.chunks_exact(dim) {
                    std::hint::black_box(before.search(q, &o).unwrap());
                }
            }
            let c2 = thread_cpu();
            if let (Some(a), Some(b), Some(c)) = (c0, c1, c2) {
                best = best.min(b - a);
                best_before = best_before.min(c - b);
            }
        }
        (
            (ROUNDS * nq) as f64 / best,
            (ROUNDS * nq) as f64 / best_before,
            hits as f64 / (10 * nq) as f64,
        )
    };
    let mut done = 0usize;
    for &target in &steps {
        let mut lat = Vec::new();
        while done < target {
            // Alternate new rows and replacements of base rows.
            let (id, v) = if done.is_multiple_of(2) {
                (
                    format!("new{done}"),
                    fresh[done * dim..(done + 1) * dim].to_vec(),
                )
            } else {
                let r = (done * 7919) % n;
                (r.to_string(), fresh[done * dim..(done + 1) * dim].to_vec())
            };
            let t = Instant::now();
            db.upsert_rows("t", &[(id, v)]).expect("upsert");
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            done += 1;
        }
        let (qps, qps_before, recall) = measure(&db.searcher("t").expect("searcher"));
        let (p50, p99) = if lat.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99))
        };
        println!(
            "{target:>10}  {p50:>13.3}  {p99:>13.3}  {qps:>7.0}  {qps_before:>14.0}  {:>5.2}  {recall:>9.4}",
            qps / qps_before
        );
    }
    // The compaction folds the delta into a new version and carries the index over;
    // a full build of that version (what the index policy ran after every compaction
    // before) is timed next to it, and both are measured like the steps above.
    let t = Instant::now();
    let job = db.compact("t", &Default::default()).expect("compact");
    let compact_s = t.elapsed().as_secs_f64();
    let carried = db.index_info("t").expect("info");
    let (qps, qps_before, recall) = measure(&db.searcher("t").expect("searcher"));
    println!(
        "compaction: {compact_s:.2} s wall ({}); index of the new version: {}; recall@10 {recall:.4} at {qps:.0} CPU-QPS ({:.2} of the version before)",
        job.message,
        carried.map_or("none".into(), |i| format!(
            "nprobe {}, {} rows placed, carried over in {:.2} s",
            i.nprobe, i.placed, i.build_seconds
        )),
        qps / qps_before
    );
    let t = Instant::now();
    let rebuilt = db
        .build_index("t", &IndexOptions::default())
        .expect("rebuild");
    let rebuild_s = t.elapsed().as_secs_f64();
    let (qps, qps_before, recall) = measure(&db.searcher("t").expect("searcher"));
    println!(
        "full rebuild of that version: {rebuild_s:.2} s wall (nprobe {}); recall@10 {recall:.4} at {qps:.0} CPU-QPS ({:.2} of the version before)",
        rebuilt.nprobe,
        qps / qps_before
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
