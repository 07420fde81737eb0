//! Matrix products of the neural-network core on the autoencoder's shapes (batch 500,
//! 3,706 items as in MovieLens 1M, hidden 200 and 600): the three products of a dense
//! layer `in → out` with `W` stored in×out — forward `Y = X·W`, `dW = Xᵀ·dY`,
//! `dX = dY·Wᵀ` — on a pool of 2 threads, for each candidate backend:
//! - `ndarray`: ndarray's `general_mat_mul` (matrixmultiply), rows of C split over the pool;
//! - `faer-seq-rows`: faer's `matmul` single-threaded on fixed blocks of rows of C over the pool;
//! - `faer-par`: faer's `matmul` with its own rayon parallelism on the whole product;
//! - `recdb`: the crate's `gemm` as it is (whichever backend it uses).
//!
//! `cargo bench --bench nn` (RECDB_NN_THREADS, RECDB_NN_BATCH, RECDB_NN_ITEMS).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

mod common;
use common::env;
use recdb::testkit::pool_cpu_seconds as pool_cpu;

/// One product `C (m×n) = op(A)·op(B)`, `op(A)` m×k, `op(B)` k×n, row-major storage.
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    n: usize,
    k: usize,
    a_t: bool,
    b_t: bool,
}

fn nd_view(rows: usize, cols: usize, s: &[f32], t: bool) -> ArrayView2<'_, f32> {
    if t {
        ArrayView2::from_shape((cols, rows), s)
            .expect("sized")
            .reversed_axes()
    } else {
        ArrayView2::from_shape((rows, cols), s).expect("sized")
    }
}

fn faer_view(rows: usize, cols: usize, s: &[f32], t: bool) -> MatRef<'_, f32> {
    if t {
        MatRef::from_row_major_slice(s, cols, rows).transpose()
    } else {
        MatRef::from_row_major_slice(s, rows, cols)
    }
}

/// ndarray, rows of C split evenly over the pool's threads (the scaffold's gemm).
fn ndarray_rows(s: Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
    let Shape { m, n, k, a_t, b_t } = s;
    let bv = nd_view(k, n, b, b_t);
    let rows = m.div_ceil(rayon::current_num_threads()).max(32);
    c.par_chunks_mut(rows * n)
        .enumerate()
        .for_each(|(blk, cb)| {
            let (r0, mr) = (blk * rows, cb.len() / n);
            let av = nd_view(m, k, a, a_t);
            let av = av.slice_move(ndarray::s![r0..r0 + mr, ..]);
            let mut cv = ArrayViewMut2::from_shape((mr, n), cb).expect("sized");
            general_mat_mul(1.0, &av, &bv, 0.0, &mut cv);
        });
}

/// faer single-threaded on blocks of `rows` rows of C, the blocks over the pool.
fn faer_rows(s: Shape, rows: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let Shape { m, n, k, a_t, b_t } = s;
    let bv = faer_view(k, n, b, b_t);
    c.par_chunks_mut(rows * n)
        .enumerate()
        .for_each(|(blk, cb)| {
            let (r0, mr) = (blk * rows, cb.len() / n);
            let av = faer_view(m, k, a, a_t).subrows(r0, mr);
            let cv = MatMut::from_row_major_slice_mut(cb, mr, n);
            matmul(cv, Accum::Replace, av, bv, 1.0, Par::Seq);
        });
}

/// faer with its own parallelism (on the current rayon pool).
fn faer_par(s: Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
    let Shape { m, n, k, a_t, b_t } = s;
    let cv = MatMut::from_row_major_slice_mut(c, m, n);
    matmul(
        cv,
        Accum::Replace,
        faer_view(m, k, a, a_t),
        faer_view(k, n, b, b_t),
        1.0,
        Par::rayon(0),
    );
}

fn fill(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(seed)) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

/// The three products of a dense layer `din → dout` on a batch, W stored din × dout.
fn layer_products(batch: usize, din: usize, dout: usize) -> [(&'static str, Shape); 3] {
    [
        // Y (batch×out) = X (batch×in) · W (in×out)
        (
            "fwd",
            Shape {
                m: batch,
                n: dout,
                k: din,
                a_t: false,
                b_t: false,
            },
        ),
        // dW (in×out) = Xᵀ · dY, X stored batch×in
        (
            "dW",
            Shape {
                m: din,
                n: dout,
                k: batch,
                a_t: true,
                b_t: false,
            },
        ),
        // dX (batch×in) = dY (batch×out) · Wᵀ, W stored in×out
        (
            "dX",
            Shape {
                m: batch,
                n: din,
                k: dout,
                a_t: false,
                b_t: true,
            },
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let threads = env("RECDB_NN_THREADS", 2);
    let batch = env("RECDB_NN_BATCH", 500);
    let items = env("RECDB_NN_ITEMS", 3706);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    // Dense layers of Mult-DAE [I-200-I] and Mult-VAE [I-600-200-600-I]: in → out.
    let layers = [(200, items), (600, items), (600, 200)];
    let mut g = c.benchmark_group("nn-gemm");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (din, dout) in layers {
        let products = layer_products(batch, din, dout);
        for (what, s) in products {
            let a = fill(s.m * s.k, 1);
            let b = fill(s.k * s.n, 2);
            let mut out = vec![0f32; s.m * s.n];
            g.throughput(Throughput::Elements((2 * s.m * s.n * s.k) as u64));
            let id = format!("{din}x{dout}-{what}");
            g.bench_function(BenchmarkId::new("ndarray", &id), |bn| {
                bn.iter(|| pool.install(|| ndarray_rows(s, &a, &b, &mut out)))
            });
            for rows in [64, 128] {
                g.bench_function(
                    BenchmarkId::new(format!("faer-seq-rows{rows}"), &id),
                    |bn| bn.iter(|| pool.install(|| faer_rows(s, rows, &a, &b, &mut out))),
                );
            }
            g.bench_function(BenchmarkId::new("faer-par", &id), |bn| {
                bn.iter(|| pool.install(|| faer_par(s, &a, &b, &mut out)))
            });
            g.bench_function(BenchmarkId::new("recdb", &id), |bn| {
                bn.iter(|| {
                    pool.install(|| {
                        recdb::testkit::nn_gemm(
                            s.m, s.n, s.k, 1.0, &a, s.a_t, &b, s.b_t, 0.0, &mut out,
                        )
                    })
                })
            });
        }
    }
    g.finish();
}

/// Candidates measured in turn, round after round, so that a change of load on the
/// shared machine hits them alike; prints per product the median and the minimum of the
/// wall-clock time and the median CPU time of the pool's threads (which moves less with
/// the machine's load, though it counts rayon's spinning).
/// `RECDB_NN_ROUNDS=N cargo bench --bench nn -- --skip nn-gemm` (0, the default, skips it).
fn interleaved(_: &mut Criterion) {
    let rounds = env("RECDB_NN_ROUNDS", 0);
    if rounds == 0 {
        return;
    }
    let threads = env("RECDB_NN_THREADS", 2);
    let batch = env("RECDB_NN_BATCH", 500);
    let items = env("RECDB_NN_ITEMS", 3706);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    type Run = fn(Shape, &[f32], &[f32], &mut [f32]);
    let cands: [(&str, Run); 4] = [
        ("ndarray", ndarray_rows),
        ("faer-seq-rows128", |s, a, b, c| faer_rows(s, 128, a, b, c)),
        ("faer-par", faer_par),
        ("recdb", |s, a, b, c| {
            recdb::testkit::nn_gemm(s.m, s.n, s.k, 1.0, a, s.a_t, b, s.b_t, 0.0, c)
        }),
    ];
    println!(
        "interleaved, {threads} threads, {rounds} rounds: wall median (min) / CPU median, ms per product"
    );
    let mut sums = vec![[0f64; 3]; cands.len()];
    for (din, dout) in [(200, items), (600, items), (600, 200)] {
        for (what, s) in layer_products(batch, din, dout) {
            let a = fill(s.m * s.k, 1);
            let b = fill(s.k * s.n, 2);
            let mut out = vec![0f32; s.m * s.n];
            let mut wall = vec![Vec::new(); cands.len()];
            let mut cpu = vec![Vec::new(); cands.len()];
            for r in 0..rounds {
                for i in 0..cands.len() {
                    let i = (i + r) % cands.len();
                    let c0 = pool_cpu(&pool);
                    let t = std::time::Instant::now();
                    for _ in 0..3 {
                        pool.install(|| (cands[i].1)(s, &a, &b, &mut out));
                    }
                    wall[i].push(t.elapsed().as_secs_f64() * 1e3 / 3.0);
                    cpu[i].push((pool_cpu(&pool) - c0) * 1e3 / 3.0);
                }
            }
            let mut line = format!("{din}x{dout}-{what}:");
            for i in 0..cands.len() {
                wall[i].sort_by(f64::total_cmp);
                cpu[i].sort_by(f64::total_cmp);
                let (med, min, c) = (wall[i][rounds / 2], wall[i][0], cpu[i][rounds / 2]);
                sums[i][0] += med;
                sums[i][1] += min;
                sums[i][2] += c;
                line += &format!("  {} {med:.2} ({min:.2}) / {c:.2}", cands[i].0);
            }
            println!("{line}");
        }
    }
    let mut line = String::from("sum of the nine:");
    for (i, c) in cands.iter().enumerate() {
        let [med, min, cpu] = sums[i];
        line += &format!("  {} {med:.1} ({min:.1}) / {cpu:.1}", c.0);
    }
    println!("{line}");
}

criterion_group!(benches, bench, interleaved);
criterion_main!(benches);
