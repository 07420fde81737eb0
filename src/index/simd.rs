//! x86_64 AVX2/FMA versions of the index kernels: the crate's one module with `unsafe`
//! (intrinsics). Each public function returns `None` when the CPU lacks AVX2+FMA (checked
//! once at run time), and the callers in [`super::kernels`] then use the portable twin;
//! the tests compare every kernel here with that twin.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Whether the AVX2+FMA kernels may run (detected once).
pub(crate) fn available() -> bool {
    crate::cpu::avx2_fma()
}

/// `a · b` for f32 slices of equal length.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> Option<f32> {
    assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2 and FMA were detected; the kernel reads `a.len()` floats from each
        // slice (lengths checked equal above), unaligned loads.
        return Some(unsafe { dot_avx2(a.as_ptr(), b.as_ptr(), a.len()) });
    }
    None
}

/// `(x · q, x · x)` where `x` is little-endian f32 bytes (a stored row, any alignment).
pub(crate) fn dot_norm2_le(x: &[u8], q: &[f32]) -> Option<(f32, f32)> {
    assert_eq!(x.len(), q.len() * 4);
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2/FMA detected; x86_64 is little-endian so the bytes are native f32s;
        // `q.len()` floats are read from each (length checked above), unaligned loads.
        return Some(unsafe { dot_norm2_avx2(x.as_ptr() as *const f32, q.as_ptr(), q.len()) });
    }
    None
}

/// `out[i] = rows[i·dim..(i+1)·dim] · q` for a block of f32 rows (`dim = q.len()`).
pub(crate) fn dots_f32(rows: &[f32], q: &[f32], out: &mut [f32]) -> Option<()> {
    let dim = q.len();
    assert_eq!(rows.len(), dim * out.len());
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2/FMA detected; `rows` holds `out.len()` rows of `dim` floats.
        unsafe { dots_f32_avx2(rows.as_ptr(), q.as_ptr(), dim, out) };
        return Some(());
    }
    None
}

/// For each row of a block of stored rows (little-endian f32 bytes, `q.len()` values
/// each): `dots[i] = row_i · q`, `norms2[i] = ‖row_i‖²`.
pub(crate) fn scan_rows_le(
    rows: &[u8],
    q: &[f32],
    dots: &mut [f32],
    norms2: &mut [f32],
) -> Option<()> {
    let dim = q.len();
    assert!(rows.len() == dim * 4 * dots.len() && dots.len() == norms2.len());
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2/FMA detected; little-endian bytes are native f32s; `rows` holds
        // `dots.len()` rows of `dim` floats (checked above), read with unaligned loads.
        unsafe { scan_rows_avx2(rows.as_ptr() as *const f32, q.as_ptr(), dim, dots, norms2) };
        return Some(());
    }
    None
}

/// `out[j·stride + i] = row_i · qs[j]` for a block of stored rows (little-endian f32
/// bytes, any alignment) and several queries of equal width. One 8-lane FMA chain per
/// (row, query), reduced with `hsum`, as `scan_rows_le` and `dot_norm2_le` sum their
/// dots: the results are bit-identical to theirs.
pub(crate) fn dots_multi_le(
    rows: &[u8],
    qs: &[&[f32]],
    out: &mut [f32],
    stride: usize,
) -> Option<()> {
    assert!(rows.len().is_multiple_of(4), "whole f32s");
    // SAFETY: the pointer covers `rows.len() / 4` floats; on x86_64 little-endian bytes
    // are native f32s, and the kernel reads them with unaligned loads.
    unsafe { dots_multi_ptr(rows.as_ptr() as *const f32, rows.len() / 4, qs, out, stride) }
}

/// [`dots_multi_le`] over f32 rows.
pub(crate) fn dots_multi(
    rows: &[f32],
    qs: &[&[f32]],
    out: &mut [f32],
    stride: usize,
) -> Option<()> {
    // SAFETY: the slice holds `rows.len()` floats.
    unsafe { dots_multi_ptr(rows.as_ptr(), rows.len(), qs, out, stride) }
}

/// The multi-query dots of `floats` values at `rows`, three queries at a time.
///
/// # Safety
/// `rows` must be valid for reading `floats` f32s (any alignment).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
unsafe fn dots_multi_ptr(
    rows: *const f32,
    floats: usize,
    qs: &[&[f32]],
    out: &mut [f32],
    stride: usize,
) -> Option<()> {
    if qs.is_empty() {
        return Some(());
    }
    let dim = qs[0].len();
    let n = floats / dim.max(1);
    check_multi(floats, dim, n, qs, out.len(), stride);
    #[cfg(target_arch = "x86_64")]
    if available() {
        let mut j = 0;
        while j < qs.len() {
            let o = out.as_mut_ptr().add(j * stride);
            let q = |t: usize| qs[j + t].as_ptr();
            // SAFETY (all three): AVX2/FMA detected; `rows` holds `n` rows of `dim`
            // floats (the caller's contract) and query `j + t` writes `n` values at
            // `o + t·stride`, inside `out`; every query is `dim` long (all checked above).
            match qs.len() - j {
                1 => dots_multi_avx2::<1>(rows, n, dim, [q(0)], [o]),
                2 => dots_multi_avx2::<2>(rows, n, dim, [q(0), q(1)], [o, o.add(stride)]),
                _ => dots_multi_avx2::<3>(
                    rows,
                    n,
                    dim,
                    [q(0), q(1), q(2)],
                    [o, o.add(stride), o.add(2 * stride)],
                ),
            }
            j += 3;
        }
        return Some(());
    }
    None
}

/// The shapes of a multi-query dot call: whole rows, equal query widths, outputs inside
/// `out`.
fn check_multi(len: usize, row: usize, n: usize, qs: &[&[f32]], out: usize, stride: usize) {
    assert!(row == 0 || len == n * row, "whole rows");
    assert!(
        qs.iter().all(|q| q.len() == qs[0].len()),
        "equal query widths"
    );
    assert!(stride >= n && out >= (qs.len() - 1) * stride + n);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_multi_avx2<const Q: usize>(
    rows: *const f32,
    n: usize,
    dim: usize,
    qs: [*const f32; Q],
    out: [*mut f32; Q],
) {
    let body = dim / 8 * 8;
    let mut r = 0;
    // Four rows × Q ≤ 3 queries: 4·Q independent chains, each row chunk loaded once for
    // the Q queries and each query chunk once for the four rows.
    while r + 4 <= n {
        let base = rows.add(r * dim);
        let mut d = [[_mm256_setzero_ps(); Q]; 4];
        let mut i = 0;
        while i < body {
            let mut qv = [_mm256_setzero_ps(); Q];
            for (v, q) in qv.iter_mut().zip(&qs) {
                *v = _mm256_loadu_ps(q.add(i));
            }
            for (j, dj) in d.iter_mut().enumerate() {
                let v = _mm256_loadu_ps(base.add(j * dim + i));
                for (acc, qv) in dj.iter_mut().zip(&qv) {
                    *acc = _mm256_fmadd_ps(v, *qv, *acc);
                }
            }
            i += 8;
        }
        for (j, dj) in d.iter().enumerate() {
            for t in 0..Q {
                let mut s = hsum(dj[t]);
                for c in body..dim {
                    s += base.add(j * dim + c).read_unaligned() * *qs[t].add(c);
                }
                *out[t].add(r + j) = s;
            }
        }
        r += 4;
    }
    while r < n {
        for t in 0..Q {
            *out[t].add(r) = dot_norm2_avx2(rows.add(r * dim), qs[t], dim).0;
        }
        r += 1;
    }
}

// The loops over rows live inside `target_feature` functions so the per-row kernels
// inline into them and the CPU overlaps consecutive rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_f32_avx2(rows: *const f32, q: *const f32, dim: usize, out: &mut [f32]) {
    let n = out.len();
    let body = dim / 8 * 8;
    let mut r = 0;
    // Eight rows at a time: eight independent FMA chains cover the FMA latency, each
    // query chunk is loaded once for the eight, and the eight sums are reduced together
    // (three rounds of `hadd`) instead of one horizontal sum per row.
    while r + 8 <= n {
        let base = rows.add(r * dim);
        let mut d = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i < body {
            let qv = _mm256_loadu_ps(q.add(i));
            for (j, dj) in d.iter_mut().enumerate() {
                *dj = _mm256_fmadd_ps(_mm256_loadu_ps(base.add(j * dim + i)), qv, *dj);
            }
            i += 8;
        }
        let t0 = _mm256_hadd_ps(d[0], d[1]);
        let t1 = _mm256_hadd_ps(d[2], d[3]);
        let t2 = _mm256_hadd_ps(d[4], d[5]);
        let t3 = _mm256_hadd_ps(d[6], d[7]);
        // u0 lane 0: partial sums of rows 0-3 over lanes 0-3 of each row; lane 1: over
        // lanes 4-7. u1 the same for rows 4-7.
        let u0 = _mm256_hadd_ps(t0, t1);
        let u1 = _mm256_hadd_ps(t2, t3);
        let mut s = _mm256_add_ps(
            _mm256_permute2f128_ps(u0, u1, 0x20),
            _mm256_permute2f128_ps(u0, u1, 0x31),
        );
        if body < dim {
            let mut tail = [0f32; 8];
            for (j, t) in tail.iter_mut().enumerate() {
                for c in body..dim {
                    *t += *base.add(j * dim + c) * *q.add(c);
                }
            }
            s = _mm256_add_ps(s, _mm256_loadu_ps(tail.as_ptr()));
        }
        _mm256_storeu_ps(out.as_mut_ptr().add(r), s);
        r += 8;
    }
    while r < n {
        out[r] = dot_avx2(rows.add(r * dim), q, dim);
        r += 1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_rows_avx2(
    rows: *const f32,
    q: *const f32,
    dim: usize,
    dots: &mut [f32],
    norms2: &mut [f32],
) {
    let n = dots.len();
    let body = dim / 8 * 8;
    let mut r = 0;
    // Four rows at a time: eight independent FMA chains (a dot and a norm per row)
    // hide the FMA latency, and each query chunk is loaded once for four rows.
    while r + 4 <= n {
        let mut d = [_mm256_setzero_ps(); 4];
        let mut m = [_mm256_setzero_ps(); 4];
        let base = rows.add(r * dim);
        let mut i = 0;
        while i < body {
            let qv = _mm256_loadu_ps(q.add(i));
            for j in 0..4 {
                let v = _mm256_loadu_ps(base.add(j * dim + i));
                d[j] = _mm256_fmadd_ps(v, qv, d[j]);
                m[j] = _mm256_fmadd_ps(v, v, m[j]);
            }
            i += 8;
        }
        for j in 0..4 {
            let (mut sd, mut sm) = (hsum(d[j]), hsum(m[j]));
            for t in body..dim {
                let v = base.add(j * dim + t).read_unaligned();
                sd += v * *q.add(t);
                sm += v * v;
            }
            dots[r + j] = sd;
            norms2[r + j] = sm;
        }
        r += 4;
    }
    while r < n {
        (dots[r], norms2[r]) = dot_norm2_avx2(rows.add(r * dim), q, dim);
        r += 1;
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: *const f32, b: *const f32, n: usize) -> f32 {
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // Two accumulators: FMA latency is 4-5 cycles, two chains keep the unit busier.
    while i + 16 <= n {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)), s0);
        s1 = _mm256_fmadd_ps(
            _mm256_loadu_ps(a.add(i + 8)),
            _mm256_loadu_ps(b.add(i + 8)),
            s1,
        );
        i += 16;
    }
    if i + 8 <= n {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)), s0);
        i += 8;
    }
    let mut s = hsum(_mm256_add_ps(s0, s1));
    while i < n {
        s += *a.add(i) * *b.add(i);
        i += 1;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_norm2_avx2(x: *const f32, q: *const f32, n: usize) -> (f32, f32) {
    let (mut d, mut m) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 8 <= n {
        let v = _mm256_loadu_ps(x.add(i));
        d = _mm256_fmadd_ps(v, _mm256_loadu_ps(q.add(i)), d);
        m = _mm256_fmadd_ps(v, v, m);
        i += 8;
    }
    let (mut sd, mut sm) = (hsum(d), hsum(m));
    while i < n {
        let v = x.add(i).read_unaligned();
        sd += v * *q.add(i);
        sm += v * v;
        i += 1;
    }
    (sd, sm)
}

/// 4-bit fast scan (see `fastscan`): `out[32·b + i]` = Σ_d `lut[16·d + code]` for
/// every packed block `b`. `blocks` holds whole blocks of `lut.len()` bytes each. Each
/// block scanned moves `ahead` (what the caller scans next) on by a block.
pub(crate) fn fs4_scan(
    blocks: &[u8],
    lut: &[u8],
    out: &mut [u16],
    ahead: &mut Ahead,
) -> Option<()> {
    let bb = lut.len();
    assert!(
        bb.is_multiple_of(32)
            && blocks.len().is_multiple_of(bb)
            && out.len() == blocks.len() / bb * 32
    );
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2 detected; `blocks` holds `out.len() / 32` blocks of `bb` bytes
        // and `lut` holds `bb` bytes, `bb` a multiple of 32 (all checked above);
        // unaligned loads and stores only; `ahead` is only prefetched.
        unsafe { fs4_scan_avx2(blocks.as_ptr(), lut.as_ptr(), bb, out, ahead) };
        return Some(());
    }
    None
}

/// The byte ranges a scan reads next, in order, fetched a fixed distance ahead of it:
/// the scan of one list runs at about the machine's memory bandwidth in cache, so the
/// next lists' codes must be on their way while it runs. Prefetching whole lists at
/// once fills the miss buffers; this keeps a steady stream instead.
#[derive(Default)]
pub(crate) struct Ahead<'a> {
    ranges: Vec<&'a [u8]>,
    at: usize,
    off: usize,
}

impl<'a> Ahead<'a> {
    /// A stream over `ranges`, whose first `lead` bytes are prefetched now.
    pub fn new(ranges: Vec<&'a [u8]>, lead: usize) -> Ahead<'a> {
        let mut a = Ahead {
            ranges,
            at: 0,
            off: 0,
        };
        a.advance(lead);
        a
    }

    /// Bytes of the stream prefetched so far (tests).
    #[cfg(test)]
    pub fn issued(&self) -> usize {
        self.ranges[..self.at]
            .iter()
            .map(|r| r.len())
            .sum::<usize>()
            + self.off
    }

    /// Prefetch the next `n` bytes of the stream.
    #[inline]
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(r) = self.ranges.get(self.at) else {
                return;
            };
            let take = (r.len() - self.off).min(n);
            prefetch_l2(&r[self.off..self.off + take]);
            n -= take;
            self.off += take;
            if self.off == r.len() {
                self.at += 1;
                self.off = 0;
            }
        }
    }
}

/// Hint the CPU to fetch the cache lines of `items` (rerank rows, the next list's codes
/// and ids) into L1 ahead of use.
#[inline]
pub(crate) fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    prefetch_lines::<_MM_HINT_T0, T>(items);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}

/// [`prefetch`] into L2 rather than L1: a stream of codes a few lists ahead has more
/// lines in flight than L1 can track (measured at 1M rows, nprobe 200: medians about
/// 5,700 queries per second into L2 against 4,650 into L1 and 3,600 without;
/// docs/HISTORY.md, index stop 14).
#[inline]
fn prefetch_l2(items: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    prefetch_lines::<_MM_HINT_T1, u8>(items);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}

/// One prefetch with hint `HINT` per 64-byte line of `items`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn prefetch_lines<const HINT: i32, T>(items: &[T]) {
    let (p, len) = (items.as_ptr() as *const u8, std::mem::size_of_val(items));
    let mut i = 0;
    while i < len {
        // SAFETY: a prefetch never faults and reads nothing; the address is inside
        // `items`. SSE is part of the x86_64 baseline.
        unsafe { _mm_prefetch::<HINT>(p.add(i) as *const i8) };
        i += 64;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fs4_scan_avx2(
    blocks: *const u8,
    lut: *const u8,
    bb: usize,
    out: &mut [u16],
    ahead: &mut Ahead,
) {
    let nb = out.len() / 32;
    let low4 = _mm256_set1_epi8(0x0F);
    for b in 0..nb {
        ahead.advance(bb);
        let base = blocks.add(b * bb);
        // u16 accumulators over byte pairs: `a*` adds the shuffled bytes as u16 (even row
        // in the low byte, odd row ×256 in the high byte), `o*` adds the odd rows alone;
        // the even-row sums are `a − (o << 8)` (mod 2^16, exact as every sum < 2^16).
        let (mut a0, mut o0, mut a1, mut o1) = (
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
        );
        let mut j = 0;
        while j < bb {
            let v = _mm256_loadu_si256(base.add(j) as *const __m256i);
            let t = _mm256_loadu_si256(lut.add(j) as *const __m256i);
            let lo = _mm256_and_si256(v, low4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            // Lane 0: dimension d, lane 1: dimension d + 1; rows 0-15 / 16-31.
            let r0 = _mm256_shuffle_epi8(t, lo);
            let r1 = _mm256_shuffle_epi8(t, hi);
            a0 = _mm256_add_epi16(a0, r0);
            o0 = _mm256_add_epi16(o0, _mm256_srli_epi16(r0, 8));
            a1 = _mm256_add_epi16(a1, r1);
            o1 = _mm256_add_epi16(o1, _mm256_srli_epi16(r1, 8));
            j += 32;
        }
        let e0 = _mm256_sub_epi16(a0, _mm256_slli_epi16(o0, 8));
        let e1 = _mm256_sub_epi16(a1, _mm256_slli_epi16(o1, 8));
        // Add the two lanes (the two dimensions of each pair), then interleave even and
        // odd rows back into row order.
        let (ev0, od0, ev1, od1) = (fold16(e0), fold16(o0), fold16(e1), fold16(o1));
        let p = out.as_mut_ptr().add(b * 32) as *mut __m128i;
        _mm_storeu_si128(p, _mm_unpacklo_epi16(ev0, od0));
        _mm_storeu_si128(p.add(1), _mm_unpackhi_epi16(ev0, od0));
        _mm_storeu_si128(p.add(2), _mm_unpacklo_epi16(ev1, od1));
        _mm_storeu_si128(p.add(3), _mm_unpackhi_epi16(ev1, od1));
    }
}

/// The sum of the two 128-bit lanes as eight u16.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn fold16(x: __m256i) -> __m128i {
    _mm_add_epi16(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1))
}

/// Bit `i` set when `s[i] > t`, for 32 u16 scores.
pub(crate) fn mask_gt_u16(s: &[u16; 32], t: u16) -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: AVX2 detected; `s` is 32 u16 = two unaligned 32-byte loads.
        return Some(unsafe { mask_gt_u16_avx2(s.as_ptr(), t) });
    }
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn mask_gt_u16_avx2(s: *const u16, t: u16) -> u32 {
    // Unsigned compare as signed after flipping the top bit.
    let flip = _mm256_set1_epi16(i16::MIN);
    let tv = _mm256_xor_si256(_mm256_set1_epi16(t as i16), flip);
    let a = _mm256_xor_si256(_mm256_loadu_si256(s as *const __m256i), flip);
    let b = _mm256_xor_si256(_mm256_loadu_si256(s.add(16) as *const __m256i), flip);
    let ma = _mm256_cmpgt_epi16(a, tv);
    let mb = _mm256_cmpgt_epi16(b, tv);
    // Pack to bytes (per 128-bit lane: a.lo, b.lo, a.hi, b.hi), restore row order.
    let p = _mm256_permute4x64_epi64(_mm256_packs_epi16(ma, mb), 0b11_01_10_00);
    _mm256_movemask_epi8(p) as u32
}
