//! Hogwild shared weights (Recht et al. 2011, as word2vec.c and finalfrontier): every
//! worker reads and writes the rows of the input and output tables without locks.
//!
//! The race model. Two workers may touch the same row at once (frequent words, shared
//! negatives): a write can then be lost, or a worker can compute with a row half from
//! before and half from after another's update. SGD on sparse updates tolerates both
//! (that is the Hogwild result), and the trainer does not depend on any value read being
//! consistent. What must never happen is an access out of a table's bounds or to freed
//! memory: every row index is checked against the table here, and the tables outlive the
//! workers (scoped rayon calls borrow them). Each f32 is 4-byte aligned, so the hardware
//! never tears one (x86-64 and AArch64 loads and stores of aligned words, also as vector
//! lanes, are single-copy atomic per element); the values a worker sees are always floats
//! some worker wrote. In the Rust abstract machine these unsynchronised accesses are data
//! races; the module confines them to raw-pointer kernels on `UnsafeCell` memory, where
//! no reference asserts exclusivity, the same trade word2vec.c and finalfrontier make for
//! a several-fold speed-up over relaxed atomics (which cannot be vectorised; measured in
//! docs/BENCHMARKS.md). With one worker there is no race and training is deterministic.

use std::cell::UnsafeCell;

use super::simd;

pub(crate) struct Shared {
    pub dim: usize,
    rows: usize,
    data: Box<[UnsafeCell<f32>]>,
}

// SAFETY: see the race model above: concurrent access goes through raw pointers to
// `UnsafeCell` floats, bounds-checked per row; lost or mixed updates are accepted.
unsafe impl Sync for Shared {}

impl Shared {
    pub fn from_vec(dim: usize, v: Vec<f32>) -> Self {
        assert!(
            dim > 0 && v.len().is_multiple_of(dim),
            "table of {} floats, dim {dim}",
            v.len()
        );
        Shared {
            dim,
            rows: v.len() / dim,
            data: v.into_iter().map(UnsafeCell::new).collect(),
        }
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.data
            .into_vec()
            .into_iter()
            .map(UnsafeCell::into_inner)
            .collect()
    }

    /// The first float of row `r` (panics if `r` is out of range: a bug, not bad data).
    #[inline]
    fn row(&self, r: usize) -> *mut f32 {
        assert!(r < self.rows, "row {r} of a table of {} rows", self.rows);
        // `UnsafeCell<f32>` has the layout of `f32`; the pointer is derived from the whole
        // slice, so it may address the `dim` floats of the row.
        UnsafeCell::raw_get(self.data.as_ptr().wrapping_add(r * self.dim))
    }

    /// Copy row `r` into `out` (`dim` long).
    #[inline]
    pub fn read(&self, r: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim);
        let p = self.row(r);
        // SAFETY: `p` addresses `dim` floats of the table (checked in `row`); `out` is a
        // distinct local buffer of `dim` floats. Races: see the module comment.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), self.dim) }
    }

    /// `row r · h` (`h` is `dim` long).
    #[inline]
    pub fn dot(&self, r: usize, h: &[f32]) -> f32 {
        assert_eq!(h.len(), self.dim);
        // SAFETY: as in `read`; only reads.
        unsafe { simd::dot(self.row(r), h.as_ptr(), self.dim) }
    }

    /// `out += a · row r`.
    #[inline]
    pub fn add_scaled_to(&self, r: usize, a: f32, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim);
        // SAFETY: as in `read`; the table is only read.
        unsafe { simd::axpy(out.as_mut_ptr(), a, self.row(r), self.dim) }
    }

    /// `row r += a · x`.
    #[inline]
    pub fn axpy(&self, r: usize, a: f32, x: &[f32]) {
        assert_eq!(x.len(), self.dim);
        // SAFETY: as in `read`; `x` is a local buffer, so it does not overlap the row.
        unsafe { simd::axpy(self.row(r), a, x.as_ptr(), self.dim) }
    }

    /// The output-row update of a negative-sampling step: `e += g · row r`, then
    /// `row r += g · h`.
    #[inline]
    pub fn step(&self, r: usize, g: f32, h: &[f32], e: &mut [f32]) {
        assert!(h.len() == self.dim && e.len() == self.dim);
        // SAFETY: as in `read`; `h` and `e` are distinct local buffers (`&mut e`).
        unsafe { simd::step(self.row(r), e.as_mut_ptr(), h.as_ptr(), g, self.dim) }
    }
}
