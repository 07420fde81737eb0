//! What the CPU can run, detected once: the AVX2+FMA kernels of the index and the
//! word2vec core run only where this says so. `RECDB_NO_SIMD` forces the portable twins
//! (for comparisons and for the tests of the twins).

/// Whether AVX2 and FMA are available and not switched off by `RECDB_NO_SIMD`.
pub(crate) fn avx2_fma() -> bool {
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
