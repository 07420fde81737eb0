//! The one matrix product every layer uses: `C = alpha·op(A)·op(B) + beta·C` on
//! row-major slices, split by rows of C over the caller's rayon pool (the database's:
//! call it inside `pool.install`). Each block is an independent single-threaded
//! product, so the result does not depend on the number of threads.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Rows of C per parallel block: below this a split costs more than it saves.
const MIN_ROWS_PER_BLOCK: usize = 32;

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
    let threads = rayon::current_num_threads().max(1);
    let rows = m.div_ceil(threads).max(MIN_ROWS_PER_BLOCK);
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

    #[test]
    fn every_transpose_matches_the_naive_product() {
        let (m, n, k) = (77, 13, 29);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 89) as f32 / 89.0 - 0.5)
            .collect();
        for a_t in [false, true] {
            for b_t in [false, true] {
                let want = naive(m, n, k, &a, a_t, &b, b_t);
                let mut c = vec![1f32; m * n];
                gemm(m, n, k, 2.0, &a, a_t, &b, b_t, 0.5, &mut c);
                for (got, want) in c.iter().zip(&want) {
                    let want = 2.0 * want + 0.5;
                    assert!(
                        (f64::from(*got) - want).abs() < 1e-4,
                        "{a_t} {b_t}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
