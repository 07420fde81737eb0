//! The inner loops of the index. Each entry point runs the AVX2 kernel of [`super::simd`]
//! when the CPU has it, else its portable twin here: plain safe loops over fixed-width
//! chunks that the compiler vectorises for the baseline target. The tests compare the
//! two, and both with an f64/i64 reference.

use super::simd;

/// Dot product of two f32 slices of the same length.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    simd::dot(a, b).unwrap_or_else(|| dot_portable(a, b))
}

/// `(x · q, ‖x‖²)` of a stored row (little-endian f32 bytes) with a query: the rerank and
/// the exact scan need both, and one pass reads the row once.
#[inline]
pub(crate) fn dot_norm2_le(x: &[u8], q: &[f32]) -> (f32, f32) {
    simd::dot_norm2_le(x, q).unwrap_or_else(|| dot_norm2_le_portable(x, q))
}

/// `out[i] = row_i · q` for a block of f32 rows of width `q.len()`.
pub(crate) fn dots_f32(rows: &[f32], q: &[f32], out: &mut [f32]) {
    if simd::dots_f32(rows, q, out).is_none() {
        for (r, o) in rows.chunks_exact(q.len().max(1)).zip(out.iter_mut()) {
            *o = dot_portable(r, q);
        }
    }
}

/// [`dot_norm2_le`] for every row of a block of stored rows.
pub(crate) fn scan_rows_le(rows: &[u8], q: &[f32], dots: &mut [f32], norms2: &mut [f32]) {
    if simd::scan_rows_le(rows, q, dots, norms2).is_none() {
        let w = q.len() * 4;
        for (i, r) in rows.chunks_exact(w.max(1)).enumerate().take(dots.len()) {
            (dots[i], norms2[i]) = dot_norm2_le_portable(r, q);
        }
    }
}

/// `out[j·stride + i] = row_i · qs[j]` for a block of stored rows and several queries,
/// bit-identical to the dots of [`scan_rows_le`] (the batched exact scan takes the norms
/// from one `scan_rows_le` call and the other queries' dots from here).
pub(crate) fn dots_multi_le(rows: &[u8], qs: &[&[f32]], out: &mut [f32], stride: usize) {
    if simd::dots_multi_le(rows, qs, out, stride).is_none() {
        dots_multi_le_portable(rows, qs, out, stride);
    }
}

/// [`dots_multi_le`] over f32 rows (the centroids), bit-identical to [`dot_norm2_le`] of
/// their bytes.
pub(crate) fn dots_multi(rows: &[f32], qs: &[&[f32]], out: &mut [f32], stride: usize) {
    if simd::dots_multi(rows, qs, out, stride).is_none() {
        dots_multi_portable(rows, qs, out, stride);
    }
}

/// The portable twin of [`dots_multi_le`], bit-identical to [`dot_norm2_le_portable`].
pub(crate) fn dots_multi_le_portable(rows: &[u8], qs: &[&[f32]], out: &mut [f32], stride: usize) {
    let w = qs.first().map_or(0, |q| q.len()) * 4;
    for (j, q) in qs.iter().enumerate() {
        for (i, r) in rows.chunks_exact(w.max(1)).enumerate() {
            out[j * stride + i] = dot_lanes_portable(|t| le_f32(r, t), q);
        }
    }
}

/// The portable twin of [`dots_multi`].
pub(crate) fn dots_multi_portable(rows: &[f32], qs: &[&[f32]], out: &mut [f32], stride: usize) {
    let w = qs.first().map_or(0, |q| q.len());
    for (j, q) in qs.iter().enumerate() {
        for (i, r) in rows.chunks_exact(w.max(1)).enumerate() {
            out[j * stride + i] = dot_lanes_portable(|t| r[t], q);
        }
    }
}

/// Value `t` of a row of little-endian f32 bytes.
#[inline]
fn le_f32(x: &[u8], t: usize) -> f32 {
    f32::from_le_bytes([x[4 * t], x[4 * t + 1], x[4 * t + 2], x[4 * t + 3]])
}

/// The dot of [`dot_norm2_le_portable`] (eight lanes, then the tail), for any row access.
#[inline]
fn dot_lanes_portable(x: impl Fn(usize) -> f32, q: &[f32]) -> f32 {
    let mut d = [0f32; 8];
    let body = q.len() / 8 * 8;
    for c in (0..body).step_by(8) {
        for (j, dj) in d.iter_mut().enumerate() {
            *dj += x(c + j) * q[c + j];
        }
    }
    let mut sd: f32 = d.iter().sum();
    for (t, &y) in q.iter().enumerate().skip(body) {
        sd += x(t) * y;
    }
    sd
}

pub(crate) fn dot_norm2_le_portable(x: &[u8], q: &[f32]) -> (f32, f32) {
    let (mut d, mut m) = ([0f32; 8], [0f32; 8]);
    let cx = x.chunks_exact(32);
    let rem = cx.remainder();
    for (c, qs) in cx.zip(q.chunks_exact(8)) {
        for j in 0..8 {
            let v = f32::from_le_bytes([c[4 * j], c[4 * j + 1], c[4 * j + 2], c[4 * j + 3]]);
            d[j] += v * qs[j];
            m[j] += v * v;
        }
    }
    let (mut sd, mut sm): (f32, f32) = (d.iter().sum(), m.iter().sum());
    let tail = q.len() - rem.len() / 4;
    for (c, &y) in rem.chunks_exact(4).zip(&q[tail..]) {
        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        sd += v * y;
        sm += v * v;
    }
    (sd, sm)
}

/// Portable dot product (16 independent accumulators, so the additions do not wait on
/// each other).
#[inline]
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
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

#[cfg(test)]
pub(crate) mod scalar {
    pub fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The multi-query dots equal the single-query kernels bit for bit (SIMD against
        /// SIMD, portable against portable), for any width, row count and query count
        /// (three at a time plus remainders), with outputs at a stride.
        #[test]
        fn multi_query_dots_equal_single_ones(
            dim in 1usize..80, rows in 1usize..23, nq in 1usize..8, seed in any::<u64>()
        ) {
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s % 2001) as f32 / 1000.0 - 1.0 };
            let block: Vec<f32> = (0..rows * dim).map(|_| next()).collect();
            let bytes: Vec<u8> = block.iter().flat_map(|x| x.to_le_bytes()).collect();
            let qv: Vec<Vec<f32>> = (0..nq).map(|_| (0..dim).map(|_| next()).collect()).collect();
            let qs: Vec<&[f32]> = qv.iter().map(|q| &q[..]).collect();
            let stride = rows + 3;
            let (mut a, mut b) = (vec![f32::NAN; nq * stride], vec![f32::NAN; nq * stride]);
            let (mut c, mut d) = (vec![f32::NAN; nq * stride], vec![f32::NAN; nq * stride]);
            dots_multi_le(&bytes, &qs, &mut a, stride);
            dots_multi(&block, &qs, &mut b, stride);
            dots_multi_le_portable(&bytes, &qs, &mut c, stride);
            dots_multi_portable(&block, &qs, &mut d, stride);
            for (j, q) in qs.iter().enumerate() {
                let (mut ds, mut ns) = (vec![0f32; rows], vec![0f32; rows]);
                scan_rows_le(&bytes, q, &mut ds, &mut ns);
                for (i, row) in bytes.chunks_exact(dim * 4).enumerate() {
                    let at = j * stride + i;
                    prop_assert_eq!(a[at].to_bits(), ds[i].to_bits());
                    prop_assert_eq!(b[at].to_bits(), ds[i].to_bits());
                    let p = dot_norm2_le_portable(row, q).0;
                    prop_assert_eq!(c[at].to_bits(), p.to_bits());
                    prop_assert_eq!(d[at].to_bits(), p.to_bits());
                }
                // Nothing written between the outputs.
                prop_assert!(a[j * stride + rows..(j + 1) * stride].iter().all(|x| x.is_nan()));
            }
        }
    }

    proptest! {
        #[test]
        fn kernels_match_their_scalar_twins(
            v in proptest::collection::vec((-10f32..10.0, -1f32..1.0), 0..200)
        ) {
            let a: Vec<f32> = v.iter().map(|t| t.0).collect();
            let b: Vec<f32> = v.iter().map(|t| t.1).collect();
            let want = scalar::dot(&a, &b);
            let tol = 1e-4 * (1.0 + want.abs() + a.len() as f64);
            prop_assert!((dot(&a, &b) as f64 - want).abs() <= tol);
            prop_assert!((dot_portable(&a, &b) as f64 - want).abs() <= tol);
            let bytes: Vec<u8> = a.iter().flat_map(|x| x.to_le_bytes()).collect();
            let want_n2 = scalar::dot(&a, &a);
            for (d, n2) in [dot_norm2_le(&bytes, &b), dot_norm2_le_portable(&bytes, &b)] {
                prop_assert!((d as f64 - want).abs() <= tol);
                prop_assert!((n2 as f64 - want_n2).abs() <= 1e-4 * (1.0 + want_n2));
            }
        }
    }

    proptest! {
        /// The AVX2 kernels against their portable twins on blocks of rows of any width.
        #[test]
        fn simd_matches_portable(dim in 1usize..150, rows in 1usize..20, seed in any::<u64>()) {
            let mut s = seed | 1;
            let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let a: Vec<f32> = (0..dim).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
            let b: Vec<f32> = (0..dim).map(|_| (next() % 2001) as f32 / 100.0 - 10.0).collect();
            let simd_ok = simd::dot(&a, &b).is_some();
            prop_assert_eq!(simd_ok, simd::available());
            if simd_ok {
                let (p, s) = (dot_portable(&a, &b), simd::dot(&a, &b).unwrap());
                prop_assert!((p - s).abs() <= 1e-4 * (1.0 + p.abs()));
                let bytes: Vec<u8> = a.iter().flat_map(|x| x.to_le_bytes()).collect();
                let (pd, pn) = dot_norm2_le_portable(&bytes, &b);
                let (sd, sn) = simd::dot_norm2_le(&bytes[..], &b).unwrap();
                prop_assert!((pd - sd).abs() <= 1e-4 * (1.0 + pd.abs()));
                prop_assert!((pn - sn).abs() <= 1e-4 * (1.0 + pn));
                // Distinct rows (row j is a·(j+1)), so a wrong row offset would show.
                let block: Vec<u8> = (0..rows)
                    .flat_map(|j| a.iter().flat_map(move |x| (x * (j + 1) as f32).to_le_bytes()))
                    .collect();
                let (mut ds, mut ns) = (vec![0f32; rows], vec![0f32; rows]);
                simd::scan_rows_le(&block, &b, &mut ds, &mut ns).unwrap();
                // The exact scan (rows four at a time) and the rerank (one row) must give
                // bit-identical scores: an index answer then differs from exact search
                // only by missing rows.
                for (j, row) in block.chunks_exact(dim * 4).enumerate() {
                    prop_assert_eq!((ds[j], ns[j]), simd::dot_norm2_le(row, &b).unwrap());
                    let (pj, nj) = dot_norm2_le_portable(row, &b);
                    prop_assert!((pj - ds[j]).abs() <= 1e-4 * (1.0 + pj.abs() * (j + 1) as f32));
                    prop_assert!((nj - ns[j]).abs() <= 1e-4 * (1.0 + nj));
                }
                let (mut ds, mut ns) = (vec![0f32; rows], vec![0f32; rows]);
                let same: Vec<u8> = (0..rows).flat_map(|_| bytes.iter().copied()).collect();
                simd::scan_rows_le(&same, &b, &mut ds, &mut ns).unwrap();
                // Distinct rows again: the eight-row kernel reduces its sums together, so
                // a row written to the wrong slot would show.
                let fblock: Vec<f32> = (0..rows)
                    .flat_map(|j| a.iter().map(move |x| x * (j + 1) as f32))
                    .collect();
                let mut fs = vec![0f32; rows];
                simd::dots_f32(&fblock, &b, &mut fs).unwrap();
                for (j, row) in fblock.chunks_exact(dim).enumerate() {
                    let want = dot_portable(row, &b);
                    prop_assert!((fs[j] - want).abs() <= 1e-4 * (1.0 + want.abs() * (j + 1) as f32));
                }
                prop_assert!(ds.iter().all(|&x| (x - pd).abs() <= 1e-4 * (1.0 + pd.abs())));
                prop_assert!(ns.iter().all(|&x| (x - pn).abs() <= 1e-4 * (1.0 + pn)));
            }
        }
    }
}
