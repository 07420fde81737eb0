//! The tables a training step reads and writes, behind one trait ([`Rows`]) with three
//! implementations:
//!
//! - [`Local`]: a plain `&mut [f32]`, for a single worker. Safe code, the AVX2 kernels
//!   through safe slice wrappers; deterministic for a seed; what Miri checks.
//! - [`Shared`]: the table shared by Hogwild workers (Recht et al. 2011, as word2vec.c and
//!   finalfrontier), stored as `AtomicU32` bit patterns of the floats. Its safe accessors
//!   use `Relaxed` atomic loads and stores: sound in Rust's memory model (a lost update or
//!   a row mixed from before and after another worker's step is a legal outcome, never
//!   undefined behaviour), portable, and checkable by Miri with several threads. It needs
//!   no `unsafe impl Sync`: `AtomicU32` is `Sync`.
//! - [`Hogwild`]: a worker's handle on a `Shared` table that runs the AVX2+FMA kernels on
//!   raw pointers, the speed path (relaxed atomics cannot be vectorised: an all-atomic
//!   core ran several times slower, docs/W2V.md). Those kernels' plain vector
//!   loads and stores race with the other workers' (a data race in Rust's abstract
//!   machine, whatever the hardware does), so the handle can only be made by
//!   [`Hogwild::new`], an `unsafe fn` whose contract states the trade: no safe code can
//!   race on a table.
//!
//! The race model. Two workers may touch the same row at once (frequent words, shared
//! negatives): a write can then be lost, or a worker can compute with a row half from
//! before and half from after another's update. SGD on sparse updates tolerates both
//! (that is the Hogwild result), and the trainer does not depend on any value read being
//! consistent. What must never happen is an access out of a table's bounds or to freed
//! memory: every row index is checked against the table here, and the tables outlive the
//! workers (scoped rayon calls borrow them). Each f32 is 4-byte aligned, so the hardware
//! never tears one (x86-64 loads and stores of aligned words, also as vector lanes, are
//! single-copy atomic per element); the values a worker sees are always floats some worker
//! wrote. With one worker there is no race: the trainer then uses [`Local`] tables.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::simd;

/// The table operations of a training step on rows of `dim` floats. `&mut self` because a
/// [`Local`] table writes through it; a shared table's handles are per worker.
pub(super) trait Rows {
    /// Copy row `r` into `out` (`dim` long).
    fn read(&mut self, r: usize, out: &mut [f32]);
    /// `row r · h` (`h` is `dim` long).
    fn dot(&mut self, r: usize, h: &[f32]) -> f32;
    /// `out += a · row r`.
    fn add_scaled_to(&mut self, r: usize, a: f32, out: &mut [f32]);
    /// `row r += a · x`.
    fn axpy(&mut self, r: usize, a: f32, x: &[f32]);
    /// The output-row update of a negative-sampling step: `e += g · row r`, then
    /// `row r += g · h`.
    fn step(&mut self, r: usize, g: f32, h: &[f32], e: &mut [f32]);
}

/// A table owned by one worker: `rows × dim` plain floats, row-major.
pub(super) struct Local<'a> {
    dim: usize,
    data: &'a mut [f32],
}

impl<'a> Local<'a> {
    pub fn new(dim: usize, data: &'a mut [f32]) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "table of {} floats, dim {dim}",
            data.len()
        );
        Local { dim, data }
    }

    /// Row `r` (panics if `r` is out of range: a bug, not bad data).
    #[inline]
    fn row(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.dim..(r + 1) * self.dim]
    }
}

impl Rows for Local<'_> {
    #[inline]
    fn read(&mut self, r: usize, out: &mut [f32]) {
        out.copy_from_slice(self.row(r));
    }

    #[inline]
    fn dot(&mut self, r: usize, h: &[f32]) -> f32 {
        simd::dot_slices(self.row(r), h)
    }

    #[inline]
    fn add_scaled_to(&mut self, r: usize, a: f32, out: &mut [f32]) {
        simd::axpy_slices(out, a, self.row(r));
    }

    #[inline]
    fn axpy(&mut self, r: usize, a: f32, x: &[f32]) {
        simd::axpy_slices(self.row(r), a, x);
    }

    #[inline]
    fn step(&mut self, r: usize, g: f32, h: &[f32], e: &mut [f32]) {
        simd::step_slices(self.row(r), e, h, g);
    }
}

/// A table shared by Hogwild workers: `rows × dim` floats as `AtomicU32` bits, row-major.
pub(crate) struct Shared {
    pub dim: usize,
    rows: usize,
    data: Box<[AtomicU32]>,
}

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
            // Same size and alignment: collected in place, no second table.
            data: v.into_iter().map(|x| AtomicU32::new(x.to_bits())).collect(),
        }
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.data
            .into_vec()
            .into_iter()
            .map(|x| f32::from_bits(x.into_inner()))
            .collect()
    }

    /// Row `r` (panics if `r` is out of range: a bug, not bad data).
    #[inline]
    fn row(&self, r: usize) -> &[AtomicU32] {
        assert!(r < self.rows, "row {r} of a table of {} rows", self.rows);
        &self.data[r * self.dim..(r + 1) * self.dim]
    }

    /// The first float of row `r`, for the vector kernels: derived from the whole table,
    /// so it may address the `dim` floats of the row; writable because an `AtomicU32` is
    /// an `UnsafeCell<u32>` (same layout as `f32`).
    #[inline]
    fn row_ptr(&self, r: usize) -> *mut f32 {
        assert!(r < self.rows, "row {r} of a table of {} rows", self.rows);
        self.data
            .as_ptr()
            .wrapping_add(r * self.dim)
            .cast::<f32>()
            .cast_mut()
    }
}

#[inline]
fn load(x: &AtomicU32) -> f32 {
    f32::from_bits(x.load(Relaxed))
}

#[inline]
fn store(x: &AtomicU32, v: f32) {
    x.store(v.to_bits(), Relaxed)
}

/// The portable, sound accessors: relaxed atomic loads and stores, the arithmetic of
/// `simd::portable` (a load and a store, not an atomic read-modify-write: an update can be
/// lost, as in the race model).
impl Rows for &Shared {
    #[inline]
    fn read(&mut self, r: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim);
        for (o, x) in out.iter_mut().zip(self.row(r)) {
            *o = load(x);
        }
    }

    #[inline]
    fn dot(&mut self, r: usize, h: &[f32]) -> f32 {
        assert_eq!(h.len(), self.dim);
        let row = self.row(r);
        let mut acc = [0f32; 8];
        let mut rc = row.chunks_exact(8);
        let mut hc = h.chunks_exact(8);
        for (a, b) in (&mut rc).zip(&mut hc) {
            for k in 0..8 {
                acc[k] += load(&a[k]) * b[k];
            }
        }
        let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (a, b) in rc.remainder().iter().zip(hc.remainder()) {
            s += load(a) * b;
        }
        s
    }

    #[inline]
    fn add_scaled_to(&mut self, r: usize, a: f32, out: &mut [f32]) {
        assert_eq!(out.len(), self.dim);
        for (o, x) in out.iter_mut().zip(self.row(r)) {
            *o += a * load(x);
        }
    }

    #[inline]
    fn axpy(&mut self, r: usize, a: f32, x: &[f32]) {
        assert_eq!(x.len(), self.dim);
        for (y, x) in self.row(r).iter().zip(x) {
            store(y, load(y) + a * x);
        }
    }

    #[inline]
    fn step(&mut self, r: usize, g: f32, h: &[f32], e: &mut [f32]) {
        assert!(h.len() == self.dim && e.len() == self.dim);
        for ((y, e), h) in self.row(r).iter().zip(e.iter_mut()).zip(h) {
            let v = load(y);
            *e += g * v;
            store(y, v + g * h);
        }
    }
}

/// A Hogwild worker's handle on a [`Shared`] table: the AVX2+FMA kernels on the table's
/// rows where the CPU has them (plain vector loads and stores, racing with the other
/// workers'), the relaxed atomic accessors elsewhere (and under Miri, where no AVX2 is
/// detected).
pub(super) struct Hogwild<'a> {
    table: &'a Shared,
    simd: bool,
}

impl<'a> Hogwild<'a> {
    /// # Safety
    /// The caller accepts the race model of this module: while handles on `table` live,
    /// several threads may read and write the same floats of it through them (and through
    /// `&Shared`'s atomic accessors) at once. With AVX2 those are unsynchronised accesses,
    /// a data race in Rust's abstract machine; it is accepted only because the values are
    /// plain floats that the hardware never tears (aligned words, single-copy atomic per
    /// lane), every access is bounds-checked, and Hogwild SGD tolerates lost and mixed
    /// updates — word2vec.c's trade. Only the Hogwild trainer may make handles; anything
    /// that needs consistent values must use `Shared`'s atomics with no handle alive, or
    /// own the table (`into_vec`, [`Local`]).
    pub unsafe fn new(table: &'a Shared) -> Self {
        Hogwild {
            table,
            simd: simd::available(),
        }
    }
}

impl Rows for Hogwild<'_> {
    #[inline]
    fn read(&mut self, r: usize, out: &mut [f32]) {
        let t = self.table;
        assert_eq!(out.len(), t.dim);
        if !self.simd {
            return (&mut &*t).read(r, out);
        }
        // SAFETY: the row pointer addresses `dim` floats of the table (bounds-checked in
        // `row_ptr`); `out` is a distinct local buffer of `dim` floats. Races: the contract
        // of `Hogwild::new`.
        unsafe { std::ptr::copy_nonoverlapping(t.row_ptr(r), out.as_mut_ptr(), t.dim) }
    }

    #[inline]
    fn dot(&mut self, r: usize, h: &[f32]) -> f32 {
        let t = self.table;
        assert_eq!(h.len(), t.dim);
        if !self.simd {
            return (&mut &*t).dot(r, h);
        }
        // SAFETY: as in `read`; the row is only read.
        unsafe { simd::dot(t.row_ptr(r), h.as_ptr(), t.dim) }
    }

    #[inline]
    fn add_scaled_to(&mut self, r: usize, a: f32, out: &mut [f32]) {
        let t = self.table;
        assert_eq!(out.len(), t.dim);
        if !self.simd {
            return (&mut &*t).add_scaled_to(r, a, out);
        }
        // SAFETY: as in `read`; the row is only read, `out` is a local buffer.
        unsafe { simd::axpy(out.as_mut_ptr(), a, t.row_ptr(r), t.dim) }
    }

    #[inline]
    fn axpy(&mut self, r: usize, a: f32, x: &[f32]) {
        let t = self.table;
        assert_eq!(x.len(), t.dim);
        if !self.simd {
            return (&mut &*t).axpy(r, a, x);
        }
        // SAFETY: as in `read`; `x` is a local buffer, so it does not overlap the row.
        unsafe { simd::axpy(t.row_ptr(r), a, x.as_ptr(), t.dim) }
    }

    #[inline]
    fn step(&mut self, r: usize, g: f32, h: &[f32], e: &mut [f32]) {
        let t = self.table;
        assert!(h.len() == t.dim && e.len() == t.dim);
        if !self.simd {
            return (&mut &*t).step(r, g, h, e);
        }
        // SAFETY: as in `read`; `h` and `e` are distinct local buffers (`&mut e`).
        unsafe { simd::step(t.row_ptr(r), e.as_mut_ptr(), h.as_ptr(), g, t.dim) }
    }
}
