//! The one matrix product every layer uses: `C = alpha·op(A)·op(B) + beta·C` on
//! row-major slices, split by rows of C over the caller's rayon pool (the database's:
//! call it inside `pool.install`). Each block is an independent single-threaded
//! product (matrixmultiply through ndarray) whose every element sums over k in the same
//! order whatever the split, so the result does not depend on the number of threads (a
//! test). Chosen over faer's kernels on tiles by a whole autoencoder epoch (docs/NN.md).

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Rows of C per parallel block, fixed so the split (and so every rounding) is the same
/// on any number of threads; large enough that packing B per block costs little.
const ROWS_PER_BLOCK: usize = 128;

/// `C (m×n) = alpha · op(A) (m×k) · op(B) (k×n) + beta · C`. `op(A)` is `A` (m×k,
/// row-major) or, with `a_t`, the transpose of `A` stored k×m; the same for `B`.
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
    let b_view = if b_t {
        ArrayView2::from_shape((n, k), b)
            .expect("sized")
            .reversed_axes()
    } else {
        ArrayView2::from_shape((k, n), b).expect("sized")
    };
    let rows = ROWS_PER_BLOCK;
    c.par_chunks_mut(rows * n)
        .enumerate()
        .for_each(|(blk, c_blk)| {
            let r0 = blk * rows;
            let mr = c_blk.len() / n;
            let a_view = if a_t {
                // A stored k×m: the columns r0..r0+mr, transposed.
                let full = ArrayView2::from_shape((k, m), a).expect("sized");
                full.slice_move(ndarray::s![.., r0..r0 + mr])
                    .reversed_axes()
            } else {
                ArrayView2::from_shape((mr, k), &a[r0 * k..(r0 + mr) * k]).expect("sized")
            };
            let mut c_view = ArrayViewMut2::from_shape((mr, n), c_blk).expect("sized");
            general_mat_mul(alpha, &a_view, &b_view, beta, &mut c_view);
        });
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
