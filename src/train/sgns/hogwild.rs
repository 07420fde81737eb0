//! Hogwild shared weights: f32 stored as `AtomicU32` bit patterns, read and written with
//! `Relaxed` ordering. Lost updates between threads are the Hogwild premise; atomics make
//! the races sound (no UB) at the cost of no read-modify-write atomicity, which SGD tolerates.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

pub(crate) struct Shared {
    pub dim: usize,
    data: Vec<AtomicU32>,
}

impl Shared {
    pub fn from_vec(dim: usize, v: Vec<f32>) -> Self {
        Shared {
            dim,
            data: v.into_iter().map(|x| AtomicU32::new(x.to_bits())).collect(),
        }
    }
    pub fn into_vec(self) -> Vec<f32> {
        self.data
            .into_iter()
            .map(|a| f32::from_bits(a.into_inner()))
            .collect()
    }
    fn row(&self, r: usize) -> &[AtomicU32] {
        &self.data[r * self.dim..(r + 1) * self.dim]
    }
    /// Copy row `r` into `out`.
    pub fn load(&self, r: usize, out: &mut [f32]) {
        for (o, a) in out.iter_mut().zip(self.row(r)) {
            *o = f32::from_bits(a.load(Relaxed));
        }
    }
    /// out += row r
    pub fn add_to(&self, r: usize, out: &mut [f32]) {
        for (o, a) in out.iter_mut().zip(self.row(r)) {
            *o += f32::from_bits(a.load(Relaxed));
        }
    }
    pub fn dot(&self, r: usize, h: &[f32]) -> f32 {
        self.row(r)
            .iter()
            .zip(h)
            .map(|(a, x)| f32::from_bits(a.load(Relaxed)) * x)
            .sum()
    }
    /// row r += s * v
    pub fn axpy(&self, r: usize, s: f32, v: &[f32]) {
        for (a, x) in self.row(r).iter().zip(v) {
            let y = f32::from_bits(a.load(Relaxed)) + s * x;
            a.store(y.to_bits(), Relaxed);
        }
    }
}

impl Shared {
    /// out += s * row r
    pub fn add_scaled_to(&self, r: usize, s: f32, out: &mut [f32]) {
        for (o, a) in out.iter_mut().zip(self.row(r)) {
            *o += s * f32::from_bits(a.load(Relaxed));
        }
    }
}
