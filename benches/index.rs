//! The vector index on the synthetic benchmark data of docs/INDEX.md (unit vectors
//! around Zipf-sized clusters; see `recdb::testkit::clustered_vectors`): exact scan time per
//! query, build seconds, and single-thread QPS and recall@10 at several `nprobe`
//! values, for queries one at a time and for the same queries as one batch
//! (`TableSearcher::search_batch`).
//!
//! `cargo bench --bench index` (RECDB_INDEX_N rows, default 100000; RECDB_INDEX_DIM,
//! default 64; RECDB_INDEX_QUERIES, default 1000; RECDB_INDEX_METRIC cosine|dot; RECDB_INDEX_LISTS,
//! default about 4·√N; RECDB_INDEX_BITS, 4 or 8, default 4; RECDB_INDEX_PROBES, a comma list
//! of nprobe values; RECDB_INDEX_REPEAT, timed passes per point, default 3;
//! RECDB_INDEX_SPILL, the fraction of rows in a second list, default 0.3;
//! RECDB_INDEX_RERANK, the rerank depth, default tuned). RECDB_INDEX_SPREAD=S replaces
//! the data by tight clusters of ~500 near-duplicates (`recdb::testkit::near_duplicate_clusters`
//! with spread S, e.g. 0.05), the hard case of the rerank.

use std::collections::HashSet;
use std::time::Instant;

use recdb::testkit::{clustered_vectors, near_duplicate_clusters};
use recdb::{Config, Db, IndexOptions, Metric, RowSpace, SearchOptions};

mod common;
use common::{env, thread_cpu};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 1-minute load average (the machine is shared; every figure needs it).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Median CPU seconds of `repeat` runs of `f` over all `queries` as one batch, and the
/// answers of the last run.
fn batched<T>(queries: &[&[f32]], f: impl Fn(&[&[f32]]) -> T, repeat: usize) -> (f64, T) {
    let mut cpus = Vec::new();
    let mut out = None;
    for _ in 0..repeat.max(1) {
        let (t, c0) = (Instant::now(), thread_cpu());
        out = Some(f(queries));
        cpus.push(
            c0.zip(thread_cpu())
                .map_or(t.elapsed().as_secs_f64(), |(a, b)| b - a),
        );
    }
    (
        median(&mut cpus) / queries.len() as f64,
        out.expect("one run"),
    )
}

fn main() {
    let n = env("RECDB_INDEX_N", 100_000);
    let dim = env("RECDB_INDEX_DIM", 64);
    let nq = env("RECDB_INDEX_QUERIES", 1000);
    let metric: Metric = std::env::var("RECDB_INDEX_METRIC")
        .unwrap_or_else(|_| "cosine".into())
        .parse()
        .expect("metric");
    let t = Instant::now();
    let spread: Option<f32> = std::env::var("RECDB_INDEX_SPREAD")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut rows = match spread {
        // Queries from the same clusters: rows past `n` continue the cluster cycle.
        Some(s) => near_duplicate_clusters(n + nq, dim, s, 42),
        None => clustered_vectors(n + nq, dim, 42),
    };
    let queries = rows.split_off(n * dim);
    let queries: Vec<&[f32]> = queries.chunks_exact(dim).collect();
    // No automatic index build after the put: it would run on both cores while the
    // exact scan is timed (the bench builds its own index below).
    let db = Db::open_with(Config {
        auto_index_rows: 0,
        ..Config::default()
    })
    .expect("db");
    db.put_table("bench", RowSpace::Other, dim, &rows, vec![])
        .expect("put_table");
    drop(rows);
    println!(
        "data: {n} x {dim}, {nq} queries, metric {metric:?} ({:.1} s to generate and load)",
        t.elapsed().as_secs_f64()
    );

    let s = db.searcher("bench").expect("searcher");
    let exact = SearchOptions {
        k: 10,
        metric,
        exact: true,
        nprobe: None,
    };
    let t = Instant::now();
    let c0 = thread_cpu();
    let truth: Vec<HashSet<u32>> = queries
        .iter()
        .map(|q| s.search(q, &exact).unwrap().iter().map(|h| h.0).collect())
        .collect();
    let exact_ms = t.elapsed().as_secs_f64() * 1e3 / nq as f64;
    let exact_cpu_ms = c0
        .zip(thread_cpu())
        .map_or(f64::NAN, |(a, b)| (b - a) * 1e3 / nq as f64);
    println!("exact scan: {exact_ms:.3} ms/query wall, {exact_cpu_ms:.3} ms/query CPU (1 thread)");
    // The same queries as one batch (`search_batch`): each stretch of rows is read once
    // for a group of queries.
    let (exact_batch_ms, batch_truth) =
        batched(&queries, |qs| s.search_batch(qs, &exact).unwrap(), 1);
    assert!(
        batch_truth
            .iter()
            .zip(&truth)
            .all(|(b, t)| b.iter().all(|h| t.contains(&h.0))),
        "batched exact answers differ"
    );
    println!(
        "exact scan, batched: {:.3} ms/query CPU (1 thread)",
        exact_batch_ms * 1e3
    );

    let lists = std::env::var("RECDB_INDEX_LISTS")
        .ok()
        .and_then(|s| s.parse().ok());
    let opts = IndexOptions {
        metric,
        lists,
        bits: env("RECDB_INDEX_BITS", 4) as u8,
        spill: std::env::var("RECDB_INDEX_SPILL")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(IndexOptions::default().spill),
        rerank: std::env::var("RECDB_INDEX_RERANK")
            .ok()
            .and_then(|s| s.parse().ok()),
        ..IndexOptions::default()
    };
    let info = db.build_index("bench", &opts).expect("build");
    println!(
        "build: {:.2} s ({} lists, {}-bit codes, {} rows spilled, tuned nprobe {} and rerank {} for recall {:.3} on the table's rows{}, {:.1} bytes/vector)",
        info.build_seconds,
        info.lists,
        info.bits,
        info.spilled,
        info.nprobe,
        info.rerank,
        info.recall,
        if info.exhaustive {
            ": every list probed, target not reached below"
        } else {
            ""
        },
        info.bytes as f64 / info.rows as f64
    );

    let s = db.searcher("bench").expect("searcher");
    let tuned = info.nprobe as usize;
    // RECDB_INDEX_PROBES=a,b,c overrides the default points around the tuned value.
    let mut probes: Vec<usize> = match std::env::var("RECDB_INDEX_PROBES") {
        Ok(v) => v.split(',').filter_map(|p| p.trim().parse().ok()).collect(),
        Err(_) => vec![tuned / 2, tuned, tuned * 3 / 2, tuned * 2, tuned * 3],
    };
    probes.retain(|&p| p >= 1 && p <= info.lists as usize);
    probes.dedup();
    let mut points = Vec::new();
    let repeat = env("RECDB_INDEX_REPEAT", 3).max(1);
    println!("load average: {}", loadavg());
    println!("nprobe  recall@10      QPS  us/query  CPU-QPS(median)  CPU-QPS(best of {repeat})  batched(median)");
    for np in probes {
        let o = SearchOptions {
            nprobe: Some(np),
            ..exact.clone()
        };
        let o = SearchOptions { exact: false, ..o };
        // One warm-up pass, then `repeat` timed ones: the median and the best CPU time
        // (the best is the least disturbed by the other processes on the machine).
        for q in queries.iter().take(100) {
            std::hint::black_box(s.search(q, &o).unwrap());
        }
        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        let mut hits = 0usize;
        for _ in 0..repeat {
            let t = Instant::now();
            let c0 = thread_cpu();
            hits = 0;
            for (q, tr) in queries.iter().zip(&truth) {
                let got = s.search(q, &o).unwrap();
                hits += got.iter().filter(|h| tr.contains(&h.0)).count();
            }
            walls.push(t.elapsed().as_secs_f64());
            cpus.push(c0.zip(thread_cpu()).map_or(f64::NAN, |(a, b)| b - a));
        }
        let (batch_secs, got) = batched(&queries, |qs| s.search_batch(qs, &o).unwrap(), repeat);
        let batch_hits: usize = got
            .iter()
            .zip(&truth)
            .map(|(g, t)| g.iter().filter(|h| t.contains(&h.0)).count())
            .sum();
        assert_eq!(batch_hits, hits, "batched answers differ from single ones");
        let batch_qps = 1.0 / batch_secs;
        let secs = median(&mut walls);
        let cpu_med = median(&mut cpus);
        let cpu_best = cpus.iter().copied().fold(f64::INFINITY, f64::min);
        let cpu_qps = nq as f64 / cpu_med;
        let best_qps = nq as f64 / cpu_best;
        let recall = hits as f64 / (10 * nq) as f64;
        let qps = nq as f64 / secs;
        println!(
            "{np:>6}  {recall:>9.4}  {qps:>7.0}  {:>8.1}  {cpu_qps:>15.0}  {best_qps:>15.0}  {batch_qps:>13.0}",
            secs * 1e6 / nq as f64
        );
        points.push(
            serde_json::json!({"nprobe": np, "recall": recall, "qps": qps,
            "cpu_qps": cpu_qps, "cpu_qps_best": best_qps, "cpu_qps_batched": batch_qps}),
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "n": n, "dim": dim, "queries": nq, "metric": format!("{metric:?}"),
            "exact_ms_per_query": exact_ms, "exact_cpu_ms_per_query": exact_cpu_ms,
            "exact_cpu_ms_per_query_batched": exact_batch_ms * 1e3, "build_seconds": info.build_seconds,
            "lists": info.lists, "tuned_nprobe": info.nprobe, "tuned_rerank": info.rerank,
            "spread": spread, "load_average": loadavg(),
            "bytes_per_vector": info.bytes as f64 / info.rows as f64, "points": points,
        })
    );
}
