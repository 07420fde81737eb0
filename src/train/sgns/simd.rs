//! The arithmetic of a training step, on raw pointers because one operand may be a row
//! of a Hogwild table (see [`super::hogwild`]; callers that race state it in a SAFETY
//! comment under `Hogwild::new`'s contract): AVX2+FMA kernels, chosen once at run
//! time, and their portable twins (plain loops in chunks of 8 that the compiler vectorises
//! for the baseline target), compared by the proptests below. `RECDB_NO_SIMD` forces the
//! portable twins. Safe wrappers for local slices are at the end.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Whether the AVX2+FMA kernels may run (detected once).
#[inline]
pub(crate) fn available() -> bool {
    crate::cpu::avx2_fma()
}

/// `a · b` over `n` floats.
///
/// # Safety
/// `a` and `b` are valid for reads of `n` floats.
/// No other thread writes these floats, or reads those written here, during the call
/// (Hogwild workers break this rule under the contract of `hogwild::Hogwild::new`).
#[inline]
pub(crate) unsafe fn dot(a: *const f32, b: *const f32, n: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2 and FMA were detected; the pointer contract is the caller's.
        return unsafe { dot_avx2(a, b, n) };
    }
    // SAFETY: the caller's contract.
    unsafe { portable::dot(a, b, n) }
}

/// `y += a · x` over `n` floats.
///
/// # Safety
/// `y` is valid for reads and writes and `x` for reads of `n` floats; they do not overlap.
/// No other thread writes these floats, or reads those written here, during the call
/// (Hogwild workers break this rule under the contract of `hogwild::Hogwild::new`).
#[inline]
pub(crate) unsafe fn axpy(y: *mut f32, a: f32, x: *const f32, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2 and FMA were detected; the pointer contract is the caller's.
        return unsafe { axpy_avx2(y, a, x, n) };
    }
    // SAFETY: the caller's contract.
    unsafe { portable::axpy(y, a, x, n) }
}

/// The output-row half of a negative-sampling step, one pass over the row:
/// `e += g · row`, then `row += g · h` (with the old row in `e`, as word2vec).
///
/// # Safety
/// `row` and `e` are valid for reads and writes and `h` for reads of `n` floats; none of
/// the three overlap.
/// No other thread writes these floats, or reads those written here, during the call
/// (Hogwild workers break this rule under the contract of `hogwild::Hogwild::new`).
#[inline]
pub(crate) unsafe fn step(row: *mut f32, e: *mut f32, h: *const f32, g: f32, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2 and FMA were detected; the pointer contract is the caller's.
        return unsafe { step_avx2(row, e, h, g, n) };
    }
    // SAFETY: the caller's contract.
    unsafe { portable::step(row, e, h, g, n) }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum4(s: __m128) -> f32 {
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY (whole body): every load reads floats i..i+8 with i + 8 <= n, or float i < n.
    unsafe {
        // Four chains: a 100-float row is 12 FMAs, so latency, not throughput, bounds it.
        let mut s = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, acc) in s.iter_mut().enumerate() {
                let j = i + 8 * k;
                *acc = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(j)), _mm256_loadu_ps(b.add(j)), *acc);
            }
            i += 32;
        }
        let mut k = 0;
        while i + 8 <= n {
            s[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)), s[k]);
            k += 1;
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
        let mut q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        if i + 4 <= n {
            q = _mm_fmadd_ps(_mm_loadu_ps(a.add(i)), _mm_loadu_ps(b.add(i)), q);
            i += 4;
        }
        let mut r = hsum4(q);
        while i < n {
            r += *a.add(i) * *b.add(i);
            i += 1;
        }
        r
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn axpy_avx2(y: *mut f32, a: f32, x: *const f32, n: usize) {
    // SAFETY (whole body): every access touches floats i..i+8 with i + 8 <= n, or i < n.
    unsafe {
        let av = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            let v = _mm256_fmadd_ps(av, _mm256_loadu_ps(x.add(i)), _mm256_loadu_ps(y.add(i)));
            _mm256_storeu_ps(y.add(i), v);
            i += 8;
        }
        if i + 4 <= n {
            let v = _mm_fmadd_ps(
                _mm_set1_ps(a),
                _mm_loadu_ps(x.add(i)),
                _mm_loadu_ps(y.add(i)),
            );
            _mm_storeu_ps(y.add(i), v);
            i += 4;
        }
        while i < n {
            *y.add(i) += a * *x.add(i);
            i += 1;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2(row: *mut f32, e: *mut f32, h: *const f32, g: f32, n: usize) {
    // SAFETY (whole body): every access touches floats i..i+8 with i + 8 <= n, or i < n.
    unsafe {
        let gv = _mm256_set1_ps(g);
        let mut i = 0;
        while i + 8 <= n {
            let r = _mm256_loadu_ps(row.add(i));
            _mm256_storeu_ps(e.add(i), _mm256_fmadd_ps(gv, r, _mm256_loadu_ps(e.add(i))));
            _mm256_storeu_ps(
                row.add(i),
                _mm256_fmadd_ps(gv, _mm256_loadu_ps(h.add(i)), r),
            );
            i += 8;
        }
        while i < n {
            let r = *row.add(i);
            *e.add(i) += g * r;
            *row.add(i) = r + g * *h.add(i);
            i += 1;
        }
    }
}

/// The portable twins: the same operations in plain loops over chunks of 8.
pub(crate) mod portable {
    /// # Safety
    /// As [`super::dot`].
    pub unsafe fn dot(a: *const f32, b: *const f32, n: usize) -> f32 {
        // SAFETY (whole body): indices stay below n.
        unsafe {
            let mut acc = [0f32; 8];
            let mut i = 0;
            while i + 8 <= n {
                for (k, s) in acc.iter_mut().enumerate() {
                    *s += *a.add(i + k) * *b.add(i + k);
                }
                i += 8;
            }
            let mut r =
                (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            while i < n {
                r += *a.add(i) * *b.add(i);
                i += 1;
            }
            r
        }
    }

    /// # Safety
    /// As [`super::axpy`].
    pub unsafe fn axpy(y: *mut f32, a: f32, x: *const f32, n: usize) {
        for i in 0..n {
            // SAFETY: i < n.
            unsafe { *y.add(i) += a * *x.add(i) };
        }
    }

    /// # Safety
    /// As [`super::step`].
    pub unsafe fn step(row: *mut f32, e: *mut f32, h: *const f32, g: f32, n: usize) {
        for i in 0..n {
            // SAFETY: i < n.
            unsafe {
                let r = *row.add(i);
                *e.add(i) += g * r;
                *row.add(i) = r + g * *h.add(i);
            }
        }
    }
}

/// `a · b` of two local slices (equal lengths).
#[inline]
pub(crate) fn dot_slices(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    // SAFETY: both slices hold `a.len()` floats.
    unsafe { dot(a.as_ptr(), b.as_ptr(), a.len()) }
}

/// `y += a · x` on local slices (equal lengths; `&mut` rules out overlap).
#[inline]
pub(crate) fn axpy_slices(y: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len());
    // SAFETY: both slices hold `y.len()` floats and cannot overlap.
    unsafe { axpy(y.as_mut_ptr(), a, x.as_ptr(), y.len()) }
}

/// `e += g · row`, then `row += g · h`, on local slices (equal lengths; `&mut` rules out
/// overlap of the two written).
#[inline]
pub(crate) fn step_slices(row: &mut [f32], e: &mut [f32], h: &[f32], g: f32) {
    assert!(row.len() == e.len() && row.len() == h.len());
    // SAFETY: the three slices hold `row.len()` floats; `row` and `e` are `&mut`, so no
    // slice overlaps another.
    unsafe { step(row.as_mut_ptr(), e.as_mut_ptr(), h.as_ptr(), g, row.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f32, b: f32, scale: f32) -> bool {
        (a - b).abs() <= 1e-5 * scale.max(1.0)
    }

    /// The slice wrappers at every length through two vector widths and the tails, against
    /// f64 arithmetic. Small enough for Miri, where it checks the portable kernels' bounds.
    #[test]
    fn slice_kernels_at_every_length() {
        for n in 0..=20usize {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!(
                close(dot_slices(&a, &b), exact as f32, n as f32),
                "dot, n {n}"
            );
            let mut y = b.clone();
            axpy_slices(&mut y, 0.5, &a);
            let (mut row, mut e) = (a.clone(), b.clone());
            step_slices(&mut row, &mut e, &y, -0.25);
            for k in 0..n {
                assert!(close(y[k], b[k] + 0.5 * a[k], 1.0), "axpy, n {n}");
                assert!(close(e[k], b[k] - 0.25 * a[k], 1.0), "step e, n {n}");
                assert!(close(row[k], a[k] - 0.25 * y[k], 1.0), "step row, n {n}");
            }
        }
    }

    proptest! {
        #[test]
        fn kernels_match_portable_twins(
            v in proptest::collection::vec((-2f32..2.0, -2f32..2.0, -2f32..2.0), 0..150),
            g in -1f32..1.0,
        ) {
            let a: Vec<f32> = v.iter().map(|t| t.0).collect();
            let b: Vec<f32> = v.iter().map(|t| t.1).collect();
            let c: Vec<f32> = v.iter().map(|t| t.2).collect();
            let n = a.len();
            let scale: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
            // SAFETY: every buffer holds n floats; outputs are distinct Vecs.
            unsafe {
                let (x, y) = (dot(a.as_ptr(), b.as_ptr(), n), portable::dot(a.as_ptr(), b.as_ptr(), n));
                prop_assert!(close(x, y, scale), "dot {x} vs {y}");
                let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
                prop_assert!(close(x, exact as f32, scale));

                let (mut y1, mut y2) = (c.clone(), c.clone());
                axpy(y1.as_mut_ptr(), g, a.as_ptr(), n);
                portable::axpy(y2.as_mut_ptr(), g, a.as_ptr(), n);
                for k in 0..n {
                    prop_assert!(close(y1[k], y2[k], 4.0));
                }

                let (mut r1, mut r2, mut e1, mut e2) = (a.clone(), a.clone(), c.clone(), c.clone());
                step(r1.as_mut_ptr(), e1.as_mut_ptr(), b.as_ptr(), g, n);
                portable::step(r2.as_mut_ptr(), e2.as_mut_ptr(), b.as_ptr(), g, n);
                for k in 0..n {
                    prop_assert!(close(r1[k], r2[k], 4.0) && close(e1[k], e2[k], 4.0));
                    prop_assert!(close(e2[k], c[k] + g * a[k], 4.0));
                    prop_assert!(close(r2[k], a[k] + g * b[k], 4.0));
                }
            }
        }
    }
}
