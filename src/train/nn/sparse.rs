//! The input layer for sparse rows: a user's history is a bag of a few items among
//! many, so the product touches only the rows of W named by the non-zeros (never a
//! dense I-wide input), forward and backward.

use rayon::prelude::*;

/// A batch of sparse rows in CSR form: row `r` holds `cols[offsets[r]..offsets[r+1]]`
/// with their `values`. Buffers are kept across batches (`clear` keeps capacity).
#[derive(Debug, Clone)]
pub(crate) struct SparseRows {
    pub offsets: Vec<usize>,
    pub cols: Vec<u32>,
    pub values: Vec<f32>,
}

impl Default for SparseRows {
    fn default() -> Self {
        SparseRows {
            offsets: vec![0],
            cols: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl SparseRows {
    pub fn clear(&mut self) {
        self.offsets.clear();
        self.offsets.push(0);
        self.cols.clear();
        self.values.clear();
    }

    /// Append `other`'s rows after these.
    pub fn append(&mut self, other: &SparseRows) {
        let base = self.cols.len();
        self.cols.extend_from_slice(&other.cols);
        self.values.extend_from_slice(&other.values);
        self.offsets
            .extend(other.offsets.iter().skip(1).map(|o| o + base));
    }

    /// Append a row of `cols` all with value `value`.
    pub fn push_uniform(&mut self, cols: &[u32], value: f32) {
        self.cols.extend_from_slice(cols);
        self.values.extend(std::iter::repeat_n(value, cols.len()));
        self.offsets.push(self.cols.len());
    }

    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[r], self.offsets[r + 1]);
        (&self.cols[a..b], &self.values[a..b])
    }

    /// Scale every row to unit Euclidean norm (an empty row stays empty).
    pub fn l2_normalize(&mut self) {
        for r in 0..self.rows() {
            let (a, b) = (self.offsets[r], self.offsets[r + 1]);
            let v = &mut self.values[a..b];
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n > 0.0 {
                v.iter_mut().for_each(|x| *x /= n);
            }
        }
    }
}

/// The transpose of a batch (column → (row, value) entries), rebuilt per batch into
/// kept buffers: the backward pass walks W's touched rows, each on one thread, so dW
/// is written without sharing and in an order that does not depend on the threads.
#[derive(Debug, Default)]
pub(crate) struct Transposed {
    starts: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl Transposed {
    fn build(&mut self, x: &SparseRows, n_cols: usize) {
        self.starts.clear();
        self.starts.resize(n_cols + 1, 0);
        for &c in &x.cols {
            self.starts[c as usize + 1] += 1;
        }
        for c in 0..n_cols {
            self.starts[c + 1] += self.starts[c];
        }
        self.entries.clear();
        self.entries.resize(x.nnz(), (0, 0.0));
        let mut next = self.starts.clone();
        for r in 0..x.rows() {
            let (cols, vals) = x.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let slot = &mut next[c as usize];
                // why: a batch has far fewer than 2^32 rows.
                #[allow(clippy::cast_possible_truncation)]
                let r = r as u32;
                self.entries[*slot] = (r, v);
                *slot += 1;
            }
        }
    }
}

/// `y = x·W + b` for sparse `x` (rows × n_in); W is n_in × n_out, row-major, so the
/// row of an input column is contiguous.
#[derive(Debug, Clone)]
pub(crate) struct SparseLinear {
    pub n_in: usize,
    pub n_out: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

/// Rows of W per parallel block in the backward pass.
const W_ROWS_PER_BLOCK: usize = 64;

impl SparseLinear {
    /// Forward: `y` (rows × n_out) = x·W + b. Column ids must be below `n_in`.
    pub fn forward(&self, x: &SparseRows, y: &mut [f32]) {
        let n = self.n_out;
        assert_eq!(y.len(), x.rows() * n, "sparse forward: output size");
        y.par_chunks_mut(n).enumerate().for_each(|(r, yr)| {
            yr.copy_from_slice(&self.b);
            let (cols, vals) = x.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let wr = &self.w[c as usize * n..(c as usize + 1) * n];
                yr.iter_mut().zip(wr).for_each(|(y, w)| *y += v * w);
            }
        });
    }

    /// Backward: `dw` += xᵀ·dy on the rows of W that `x` touches (the others are left
    /// as they are), `db` += Σ_rows dy. No dX: the input is data.
    pub fn backward(
        &self,
        x: &SparseRows,
        dy: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        scratch: &mut Transposed,
    ) {
        let n = self.n_out;
        assert_eq!(dy.len(), x.rows() * n, "sparse backward: gradient size");
        assert_eq!(dw.len(), self.w.len(), "sparse backward: dW size");
        scratch.build(x, self.n_in);
        let t = &*scratch;
        dw.par_chunks_mut(W_ROWS_PER_BLOCK * n)
            .enumerate()
            .for_each(|(blk, dw_blk)| {
                let c0 = blk * W_ROWS_PER_BLOCK;
                for (i, dw_row) in dw_blk.chunks_mut(n).enumerate() {
                    let c = c0 + i;
                    for &(r, v) in &t.entries[t.starts[c]..t.starts[c + 1]] {
                        let g = &dy[r as usize * n..(r as usize + 1) * n];
                        dw_row.iter_mut().zip(g).for_each(|(d, g)| *d += v * g);
                    }
                }
            });
        for g in dy.chunks(n) {
            db.iter_mut().zip(g).for_each(|(d, g)| *d += g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nn::gradcheck::{assert_close, numeric_gradient};

    fn batch() -> SparseRows {
        SparseRows {
            cols: vec![0, 3, 1, 3, 4, 2],
            values: vec![0.5, -1.0, 2.0, 0.25, 1.5, -0.75],
            offsets: vec![0, 2, 2, 5, 6],
        }
    }

    /// Loss Σ y ⊙ c for a fixed c: dL/dy = c, so the layer's gradients are checked alone.
    #[test]
    fn gradients_match_finite_differences() {
        let (n_in, n_out) = (5, 3);
        let x = batch();
        let layer = SparseLinear {
            n_in,
            n_out,
            w: (0..n_in * n_out).map(|i| (i as f32 * 0.37).sin()).collect(),
            b: vec![0.1, -0.2, 0.3],
        };
        let c: Vec<f32> = (0..x.rows() * n_out)
            .map(|i| (i as f32 * 0.91).cos())
            .collect();
        let f = |w: &[f64], b: &[f64]| {
            let mut s = 0.0;
            for r in 0..x.rows() {
                let (cols, vals) = x.row(r);
                for j in 0..n_out {
                    let mut y = b[j];
                    for (&col, &v) in cols.iter().zip(vals) {
                        y += f64::from(v) * w[col as usize * n_out + j];
                    }
                    s += y * f64::from(c[r * n_out + j]);
                }
            }
            s
        };
        let w64: Vec<f64> = layer.w.iter().map(|&v| v.into()).collect();
        let b64: Vec<f64> = layer.b.iter().map(|&v| v.into()).collect();
        let mut y = vec![0f32; x.rows() * n_out];
        layer.forward(&x, &mut y);
        let mut dw = vec![0f32; n_in * n_out];
        let mut db = vec![0f32; n_out];
        layer.backward(&x, &c, &mut dw, &mut db, &mut Transposed::default());
        assert_close(
            "dW",
            &dw,
            &numeric_gradient(&w64, 1e-4, |w| f(w, &b64)),
            1e-4,
        );
        assert_close(
            "db",
            &db,
            &numeric_gradient(&b64, 1e-4, |b| f(&w64, b)),
            1e-4,
        );
        // Row 1 is empty: its output is the bias.
        assert_eq!(&y[n_out..2 * n_out], &layer.b[..]);
    }

    #[test]
    fn l2_normalize_gives_unit_rows() {
        let mut x = batch();
        x.l2_normalize();
        for r in [0, 2, 3] {
            let n: f32 = x.row(r).1.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-6);
        }
    }
}
