//! The inner loops of the index, written as plain safe loops over fixed-width chunks so
//! that the compiler vectorises them (no `std::arch`: the crate forbids `unsafe`). Each
//! kernel has a scalar twin that the tests compare it with.

/// Dot product of two f32 slices of the same length (16 independent accumulators, so
/// the additions do not wait on each other).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..16 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Dot product of u8 codes with an i16 query, accumulated in i32. The caller bounds the
/// query so that `255 · max|q| · len < 2^31` (see [`quantize_query`]).
#[inline]
pub(crate) fn dot_u8_i16(codes: &[u8], q: &[i16]) -> i32 {
    debug_assert_eq!(codes.len(), q.len());
    let mut acc = [0i32; 32];
    let cc = codes.chunks_exact(32);
    let cq = q.chunks_exact(32);
    let (rc, rq) = (cc.remainder(), cq.remainder());
    for (c, y) in cc.zip(cq) {
        for j in 0..32 {
            acc[j] += c[j] as i32 * y[j] as i32;
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (&c, &y) in rc.iter().zip(rq) {
        s += c as i32 * y as i32;
    }
    s
}

/// Scale a real vector to i16 so that integer dot products with u8 codes of length
/// `len` cannot overflow i32; returns the factor applied (0 for a zero vector).
pub(crate) fn quantize_query(q: &[f32], out: &mut Vec<i16>) -> f32 {
    out.clear();
    let max = q.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        out.resize(q.len(), 0);
        return 0.0;
    }
    let limit = ((i32::MAX as f64) / (255.0 * q.len().max(1) as f64))
        .min(32767.0)
        .floor() as f32;
    let f = limit / max;
    out.extend(q.iter().map(|x| (x * f).round() as i16));
    f
}

#[cfg(test)]
pub(crate) mod scalar {
    pub fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }
    pub fn dot_u8_i16(c: &[u8], q: &[i16]) -> i64 {
        c.iter().zip(q).map(|(&c, &y)| c as i64 * y as i64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn kernels_match_their_scalar_twins(
            v in proptest::collection::vec((-10f32..10.0, 0u8..=255, -1f32..1.0), 0..200)
        ) {
            let a: Vec<f32> = v.iter().map(|t| t.0).collect();
            let b: Vec<f32> = v.iter().map(|t| t.2).collect();
            let c: Vec<u8> = v.iter().map(|t| t.1).collect();
            let want = scalar::dot(&a, &b);
            prop_assert!((dot(&a, &b) as f64 - want).abs() <= 1e-4 * (1.0 + want.abs() + a.len() as f64));
            let mut qi = Vec::new();
            let f = quantize_query(&b, &mut qi);
            prop_assert!(qi.iter().all(|&x| (x as i32).abs() <= 32767));
            prop_assert_eq!(dot_u8_i16(&c, &qi) as i64, scalar::dot_u8_i16(&c, &qi));
            if f > 0.0 {
                let back: f64 = c.iter().zip(&qi).map(|(&c, &q)| c as f64 * q as f64 / f as f64).sum();
                let real: f64 = c.iter().zip(&b).map(|(&c, &q)| c as f64 * q as f64).sum();
                prop_assert!((back - real).abs() <= 1e-2 * (1.0 + a.len() as f64));
            }
        }
    }

    #[test]
    fn no_overflow_at_the_extremes() {
        for len in [1usize, 64, 300, 1000] {
            let q = vec![-1.0f32; len];
            let mut qi = Vec::new();
            quantize_query(&q, &mut qi);
            let c = vec![255u8; len];
            assert_eq!(dot_u8_i16(&c, &qi) as i64, scalar::dot_u8_i16(&c, &qi));
        }
    }
}
