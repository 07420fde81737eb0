//! The one matrix product every layer uses: `C = alpha·op(A)·op(B) + beta·C` on
//! row-major slices, on the caller's rayon pool (the database's: call it inside
//! `pool.install`).
//!
//! Backend: faer's `matmul` (the `gemm` kernels of sarah-ek, pure Rust, runtime-chosen
//! AVX2/AVX-512 kernels), single-threaded on tiles of C that rayon spreads over the pool.
//! Measured against ndarray's `general_mat_mul` (matrixmultiply) and faer's own
//! parallelism on the autoencoder's shapes: see "Matrix products" in docs/NN.md.
//!
//! The tiles are cut from the shape alone (halving the longer side until a tile is at
//! most `TILE_ROWS × TILE_COLS`), never from the number of threads, and each tile is an
//! independent sequential product: the result is bit-for-bit the same on any pool.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Largest tile of C computed as one sequential product. Big enough that packing B per
/// tile is amortised, small enough that the autoencoder's products (500 × 3,706) make
/// 8 tiles to balance over the threads.
const TILE_ROWS: usize = 256;
const TILE_COLS: usize = 1024;

/// `C (m×n) = alpha · op(A) (m×k) · op(B) (k×n) + beta · C`. `op(A)` is `A` (m×k,
/// row-major) or, with `a_t`, the transpose of `A` stored k×m; the same for `B`.
/// `beta = 0` overwrites C (whatever it held, NaN included).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    beta: f32,
    c: &mut [f32],
) {
    assert_eq!(a.len(), m * k, "gemm: A is not {m}×{k}");
    assert_eq!(b.len(), k * n, "gemm: B is not {k}×{n}");
    assert_eq!(c.len(), m * n, "gemm: C is not {m}×{n}");
    if m == 0 || n == 0 {
        return;
    }
    let a = view(m, k, a, a_t);
    let b = view(k, n, b, b_t);
    let c = MatMut::from_row_major_slice_mut(c, m, n);
    tile(alpha, a, b, beta, c);
}

/// `op(X)` as an `rows × cols` view of row-major storage (stored `cols × rows` if `t`).
fn view(rows: usize, cols: usize, s: &[f32], t: bool) -> MatRef<'_, f32> {
    if t {
        MatRef::from_row_major_slice(s, cols, rows).transpose()
    } else {
        MatRef::from_row_major_slice(s, rows, cols)
    }
}

fn tile(alpha: f32, a: MatRef<'_, f32>, b: MatRef<'_, f32>, beta: f32, mut c: MatMut<'_, f32>) {
    let (m, n) = (c.nrows(), c.ncols());
    if m > TILE_ROWS && m * TILE_COLS >= n * TILE_ROWS {
        let h = m / 2;
        let (top, bottom) = c.split_at_row_mut(h);
        let (a0, a1) = a.split_at_row(h);
        rayon::join(
            || tile(alpha, a0, b, beta, top),
            || tile(alpha, a1, b, beta, bottom),
        );
    } else if n > TILE_COLS {
        let h = n / 2;
        let (left, right) = c.split_at_col_mut(h);
        let (b0, b1) = b.split_at_col(h);
        rayon::join(
            || tile(alpha, a, b0, beta, left),
            || tile(alpha, a, b1, beta, right),
        );
    } else if beta == 0.0 {
        matmul(c, Accum::Replace, a, b, alpha, Par::Seq);
    } else {
        if beta != 1.0 {
            for j in 0..n {
                for i in 0..m {
                    c[(i, j)] *= beta;
                }
            }
        }
        matmul(c, Accum::Add, a, b, alpha, Par::Seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], a_t: bool, b: &[f32], b_t: bool) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let x = if a_t { a[p * m + i] } else { a[i * k + p] };
                    let y = if b_t { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += f64::from(x) * f64::from(y);
                }
            }
        }
        c
    }

    /// Large enough to be cut into tiles both ways (rows and columns).
    #[test]
    fn one_and_two_threads_give_the_same_bits() {
        let (m, n, k) = (700, 2300, 90);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 997) as f32 / 997.0 - 0.5)
            .collect();
        let run = |threads: usize, a_t: bool, b_t: bool| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![0.25f32; m * n];
            pool.install(|| gemm(m, n, k, 1.5, &a, a_t, &b, b_t, 0.5, &mut c));
            c
        };
        for (a_t, b_t) in [(false, false), (true, false), (false, true)] {
            let one = run(1, a_t, b_t);
            assert!(one == run(2, a_t, b_t), "{a_t} {b_t}: 1 vs 2 threads");
            assert!(one == run(3, a_t, b_t), "{a_t} {b_t}: 1 vs 3 threads");
        }
    }

    #[test]
    fn every_transpose_matches_the_naive_product() {
        // One shape below a tile, one cut into tiles both ways.
        for (m, n, k) in [(77, 13, 29), (300, 1100, 17)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104_729) % 89) as f32 / 89.0 - 0.5)
                .collect();
            for a_t in [false, true] {
                for b_t in [false, true] {
                    let want = naive(m, n, k, &a, a_t, &b, b_t);
                    for (alpha, beta) in [(2.0, 0.5), (1.0, 0.0), (-1.0, 1.0)] {
                        let mut c = vec![1f32; m * n];
                        gemm(m, n, k, alpha, &a, a_t, &b, b_t, beta, &mut c);
                        for (got, want) in c.iter().zip(&want) {
                            let want = f64::from(alpha) * want + f64::from(beta);
                            assert!(
                                (f64::from(*got) - want).abs() < 1e-4,
                                "{m}×{n}×{k} {a_t} {b_t} α {alpha} β {beta}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn beta_zero_overwrites_nan_and_empty_shapes_are_fine() {
        let mut c = vec![f32::NAN; 4];
        gemm(
            2,
            2,
            1,
            1.0,
            &[1.0, 2.0],
            false,
            &[3.0, 4.0],
            false,
            0.0,
            &mut c,
        );
        assert_eq!(c, [3.0, 4.0, 6.0, 8.0]);
        // k = 0: C = beta·C.
        let mut c = vec![2f32; 4];
        gemm(2, 2, 0, 1.0, &[], false, &[], false, 0.5, &mut c);
        assert_eq!(c, [1.0; 4]);
        gemm(0, 3, 2, 1.0, &[], false, &[0.0; 6], false, 0.0, &mut []);
    }
}
