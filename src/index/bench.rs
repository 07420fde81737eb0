//! Measuring an index (`Db::bench_index`, `recdb index bench`): recall@k against exact
//! search and queries per second at several operating points (`nprobe` values).

use std::collections::HashSet;
use std::time::Instant;

use super::serve::check_query;
use super::served::Served;
use super::IvfIndex;
use crate::storage::tables::TableView;
use crate::{Error, Result};

/// What [`Db::bench_index`](crate::Db::bench_index) measures.
#[derive(Debug, Clone)]
pub struct IndexBenchOptions {
    pub k: usize,
    /// Query threads (each point is timed with all of them; QPS per thread is reported).
    pub threads: usize,
    /// `nprobe` values to measure; `None`: ½, 1, 1.5, 2 and 3 × the tuned value.
    pub nprobes: Option<Vec<usize>>,
}

impl Default for IndexBenchOptions {
    fn default() -> Self {
        IndexBenchOptions {
            k: 10,
            threads: 1,
            nprobes: None,
        }
    }
}

/// One operating point.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OperatingPoint {
    pub nprobe: u64,
    /// Recall@k against exact search of the same table version.
    pub recall: f64,
    /// Queries per second per query thread, from the threads' CPU time (Linux; wall
    /// time elsewhere).
    pub qps_cpu: f64,
    /// Queries per second per query thread, wall clock (approximate when threads
    /// repeated the set a different number of times).
    pub qps_wall: f64,
    pub us_per_query_cpu: f64,
    /// Queries per second per query thread from CPU time when each thread answers its
    /// share of the queries as one batch ([`crate::TableSearcher::search_batch`]: each
    /// list is read once for a group of queries); the same answers.
    pub qps_cpu_batched: f64,
    /// Whether the batched answers equal the single ones (they should, always).
    pub batched_same: bool,
}

/// The result of [`Db::bench_index`](crate::Db::bench_index).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexBench {
    pub table: String,
    pub version: u64,
    pub rows: u64,
    pub dim: u64,
    pub queries: u64,
    pub k: u64,
    pub threads: u64,
    pub metric: crate::Metric,
    pub lists: u64,
    /// The tuned `nprobe` (queries' default).
    pub nprobe: u64,
    pub build_seconds: f64,
    /// Resident bytes of the index per indexed vector.
    pub bytes_per_vector: f64,
    /// Exact scan, CPU milliseconds per query per thread.
    pub exact_ms_cpu: f64,
    /// Exact scan of the queries as one batch per thread, CPU milliseconds per query.
    pub exact_ms_cpu_batched: f64,
    /// Whether the batched exact answers equal the single ones (they should, always).
    pub exact_batched_same: bool,
    pub points: Vec<OperatingPoint>,
}

/// CPU seconds of the calling thread (Linux schedstat), `None` elsewhere.
fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Least wall time of one measurement: the schedstat clock advances at scheduler
/// ticks, so short runs are repeated until they are long enough to read.
const MIN_SECONDS: f64 = 0.3;

/// Run `f` over `queries` on `threads` threads, repeating the whole set until
/// [`MIN_SECONDS`] have passed: (results of the first pass in order, CPU seconds summed
/// over threads, wall seconds, passes).
fn timed<T: Send>(
    queries: &[&[f32]],
    threads: usize,
    f: &(dyn Fn(&[f32]) -> T + Sync),
) -> (Vec<T>, f64, f64, usize) {
    let t = Instant::now();
    let chunk = queries.len().div_ceil(threads).max(1);
    let parts: Vec<(Vec<T>, f64, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = queries
            .chunks(chunk)
            .map(|qs| {
                s.spawn(move || {
                    let (c0, w0) = (thread_cpu(), Instant::now());
                    let out: Vec<T> = qs.iter().map(|q| f(q)).collect();
                    let mut passes = 1;
                    while w0.elapsed().as_secs_f64() < MIN_SECONDS {
                        for q in qs {
                            std::hint::black_box(f(q));
                        }
                        passes += 1;
                    }
                    let cpu = c0
                        .zip(thread_cpu())
                        .map_or(w0.elapsed().as_secs_f64(), |(a, b)| b - a);
                    (out, cpu / passes as f64, passes)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Vec::new(), 0.0, 1)))
            .collect()
    });
    let passes = parts.iter().map(|p| p.2).min().unwrap_or(1);
    let wall = t.elapsed().as_secs_f64() / passes as f64;
    let cpu = parts.iter().map(|p| p.1).sum();
    (
        parts.into_iter().flat_map(|p| p.0).collect(),
        cpu,
        wall,
        passes,
    )
}

/// [`timed`] for a function of a whole share of the queries (one batch per thread):
/// (answers in order, CPU seconds summed over threads).
fn timed_batch<T: Send>(
    queries: &[&[f32]],
    threads: usize,
    f: &(dyn Fn(&[&[f32]]) -> Vec<T> + Sync),
) -> (Vec<T>, f64) {
    let chunk = queries.len().div_ceil(threads).max(1);
    let parts: Vec<(Vec<T>, f64)> = std::thread::scope(|s| {
        let hs: Vec<_> = queries
            .chunks(chunk)
            .map(|qs| {
                s.spawn(move || {
                    let (c0, w0) = (thread_cpu(), Instant::now());
                    let out = f(qs);
                    let mut passes = 1;
                    while w0.elapsed().as_secs_f64() < MIN_SECONDS {
                        std::hint::black_box(f(qs));
                        passes += 1;
                    }
                    let cpu = c0
                        .zip(thread_cpu())
                        .map_or(w0.elapsed().as_secs_f64(), |(a, b)| b - a);
                    (out, cpu / passes as f64)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Vec::new(), 0.0)))
            .collect()
    });
    let cpu = parts.iter().map(|p| p.1).sum();
    (parts.into_iter().flat_map(|p| p.0).collect(), cpu)
}

/// Measure `ix`, the index of `view`, through `served` with `queries` (row-major, the
/// table's dim): for each operating point, recall@k against exact search and per-thread
/// QPS.
// why: nprobe multiples, small positive floats rounded to a count.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn bench_index(
    view: &TableView,
    ix: &IvfIndex,
    served: &Served,
    queries: &[f32],
    opts: &IndexBenchOptions,
) -> Result<IndexBench> {
    let table = view.name();
    let dim = view.dim();
    if queries.is_empty() || !queries.len().is_multiple_of(dim) {
        return Err(Error::param(
            "queries",
            format!(
                "{} values is not a whole number of {dim}-dimensional queries",
                queries.len()
            ),
        ));
    }
    let qs: Vec<&[f32]> = queries.chunks_exact(dim).collect();
    for (i, q) in qs.iter().enumerate() {
        check_query(q, dim)
            .map_err(|e| Error::param("queries", format!("query {}: {e}", i + 1)))?;
    }
    let (k, metric, n) = (opts.k, ix.metric, qs.len() as f64);
    let all = |_: u32| true;
    let (truth, exact_cpu, _, _) = timed(&qs, opts.threads, &|q| {
        served
            .search(q, metric, k, true, None, &all)
            .into_iter()
            .map(|h| h.0)
            .collect::<HashSet<u32>>()
    });
    let all_batch = |_: usize, _: u32| true;
    let (batch_truth, exact_batch_cpu) = timed_batch(&qs, opts.threads, &|part| {
        served.search_batch(part, metric, k, true, None, &all_batch)
    });
    let exact_batched_same = batch_truth.len() == truth.len()
        && batch_truth
            .iter()
            .zip(&truth)
            .all(|(b, t)| b.len() == t.len() && b.iter().all(|h| t.contains(&h.0)));
    let mut nprobes = opts.nprobes.clone().unwrap_or_else(|| {
        [1.0, 2.0, 3.0, 4.0, 6.0]
            .iter()
            .map(|m| ((ix.nprobe as f64 * m / 2.0).round() as usize).max(1))
            .collect()
    });
    nprobes
        .iter_mut()
        .for_each(|p| *p = (*p).clamp(1, ix.lists));
    nprobes.sort_unstable();
    nprobes.dedup();
    let mut points = Vec::new();
    for np in nprobes {
        let (got, cpu, wall, _) = timed(&qs, opts.threads, &|q| {
            served.search(q, metric, k, false, Some(np), &all)
        });
        let hits: usize = got
            .iter()
            .zip(&truth)
            .map(|(g, t)| g.iter().filter(|h| t.contains(&h.0)).count())
            .sum();
        let want: usize = truth.iter().map(HashSet::len).sum();
        let (batched, batch_cpu) = timed_batch(&qs, opts.threads, &|part| {
            served.search_batch(part, metric, k, false, Some(np), &all_batch)
        });
        let per_thread_cpu = cpu / opts.threads as f64;
        points.push(OperatingPoint {
            nprobe: np as u64,
            recall: if want == 0 {
                1.0
            } else {
                hits as f64 / want as f64
            },
            qps_cpu: n / cpu.max(1e-12),
            qps_wall: n / (wall * opts.threads as f64).max(1e-12),
            us_per_query_cpu: per_thread_cpu * 1e6 / (n / opts.threads as f64),
            qps_cpu_batched: n / batch_cpu.max(1e-12),
            batched_same: batched == got,
        });
    }
    Ok(IndexBench {
        table: table.to_owned(),
        version: view.version(),
        rows: view.rows() as u64,
        dim: dim as u64,
        queries: qs.len() as u64,
        k: k as u64,
        threads: opts.threads as u64,
        metric,
        lists: ix.lists as u64,
        nprobe: ix.nprobe as u64,
        build_seconds: ix.build_seconds,
        bytes_per_vector: ix.bytes() as f64 / ix.len().max(1) as f64,
        exact_ms_cpu: exact_cpu * 1e3 / n,
        exact_ms_cpu_batched: exact_batch_cpu * 1e3 / n,
        exact_batched_same,
        points,
    })
}
