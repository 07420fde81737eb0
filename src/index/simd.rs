//! x86_64 AVX2/FMA versions of the index kernels: the crate's one module with `unsafe`
//! (intrinsics). Each public function returns `None` when the CPU lacks AVX2+FMA (checked
//! once at run time), and the callers in [`super::kernels`] then use the portable twin;
//! the tests compare every kernel here with that twin.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Whether the AVX2+FMA kernels may run (detected once).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::env::var_os("RECDB_NO_SIMD").is_none()
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
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

/// `out[i] = codes[i·dim..(i+1)·dim] · q` in i32 for every row of a block of u8 codes.
/// The caller bounds `q` so the sums cannot overflow (see `kernels::quantize_query`).
pub(crate) fn scan_u8_i16(codes: &[u8], q: &[i16], out: &mut [i32]) -> Option<()> {
    let dim = q.len();
    assert_eq!(codes.len(), dim * out.len());
    #[cfg(target_arch = "x86_64")]
    if available() {
        for (c, o) in codes.chunks_exact(dim.max(1)).zip(out.iter_mut()) {
            // SAFETY: AVX2 detected; `c` and `q` both hold `dim` elements.
            *o = unsafe { dot_u8_i16_avx2(c.as_ptr(), q.as_ptr(), dim) };
        }
        return Some(());
    }
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[cfg(target_arch = "x86_64")]
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_u8_i16_avx2(c: *const u8, q: *const i16, n: usize) -> i32 {
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    // 16 codes widened to i16, multiplied with 16 query values, pairs summed to 8 i32
    // (each pair ≤ 2·255·32767 < 2^31).
    while i + 16 <= n {
        let cv = _mm256_cvtepu8_epi16(_mm_loadu_si128(c.add(i) as *const __m128i));
        let qv = _mm256_loadu_si256(q.add(i) as *const __m256i);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(cv, qv));
        i += 16;
    }
    let s = _mm_add_epi32(
        _mm256_castsi256_si128(acc),
        _mm256_extracti128_si256(acc, 1),
    );
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    let mut total = _mm_cvtsi128_si32(s);
    while i < n {
        total += *c.add(i) as i32 * *q.add(i) as i32;
        i += 1;
    }
    total
}
