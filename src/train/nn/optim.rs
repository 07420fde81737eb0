//! Optimizers: each owns the state of one parameter tensor and updates it in place
//! from that tensor's gradient — the whole tensor (`step`) or only the rows a batch
//! touched (`step_rows`, for embedding tables where a batch meets few rows).

use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Updates one parameter tensor from its gradient.
pub(crate) trait Optimizer: Send {
    /// One step: `w` and `g` have the tensor's length.
    fn step(&mut self, w: &mut [f32], g: &[f32]);

    /// One step on the rows of `w` (a table of `g.dim`-wide rows) that `g` holds; the
    /// other rows and their state are left as they are ("lazy" updates: a row's state
    /// moves only when the row has a gradient).
    // why: for the next deep models (candidate generation, Wide & Deep); tested here.
    #[allow(dead_code)]
    fn step_rows(&mut self, w: &mut [f32], g: &RowGrad);
}

/// A sparse gradient of a table: a few rows, each `dim` wide, in the order first touched.
/// Adding into a row that is already there sums (an item sampled twice in a batch).
#[derive(Debug, Clone)]
pub(crate) struct RowGrad {
    dim: usize,
    rows: Vec<u32>,
    values: Vec<f32>,
    slot: FxHashMap<u32, usize>,
}

// why: for the next deep models (candidate generation, Wide & Deep); tested here.

#[allow(dead_code)]
impl RowGrad {
    pub fn new(dim: usize) -> Self {
        RowGrad {
            dim,
            rows: Vec::new(),
            values: Vec::new(),
            slot: FxHashMap::default(),
        }
    }

    /// Empty it, keeping the allocations for the next batch.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.values.clear();
        self.slot.clear();
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The gradient of row `r`, zeros when `r` is new.
    pub fn row_mut(&mut self, r: u32) -> &mut [f32] {
        let dim = self.dim;
        let i = *self.slot.entry(r).or_insert_with(|| {
            self.rows.push(r);
            self.values.resize(self.values.len() + dim, 0.0);
            self.rows.len() - 1
        });
        &mut self.values[i * dim..(i + 1) * dim]
    }

    /// `row(r) += scale · x`.
    pub fn add(&mut self, r: u32, scale: f32, x: &[f32]) {
        assert_eq!(x.len(), self.dim, "RowGrad: row width");
        for (g, v) in self.row_mut(r).iter_mut().zip(x) {
            *g += scale * v;
        }
    }

    /// Multiply every row's gradient by `s` (a summed loss turned into a mean).
    pub fn scale(&mut self, s: f32) {
        self.values.iter_mut().for_each(|v| *v *= s);
    }

    /// `row(r) += l2 · w[row r]` for every row present: an L2 penalty `½·l2·‖w_r‖²` on
    /// the rows a batch touched (lazy, as sparse embeddings are regularised).
    pub fn add_l2(&mut self, w: &[f32], l2: f32) {
        let dim = self.dim;
        for (k, &r) in self.rows.iter().enumerate() {
            let at = row_range(w.len(), dim, r);
            for (g, x) in self.values[k * dim..(k + 1) * dim].iter_mut().zip(&w[at]) {
                *g += l2 * x;
            }
        }
    }

    /// The rows and their gradients, in the order first touched.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[f32])> {
        self.rows
            .iter()
            .copied()
            .zip(self.values.chunks_exact(self.dim.max(1)))
    }
}

/// The slice of row `r` in a table of `dim`-wide rows; panics on a row outside the table
/// (the model maps its ids to rows and validates them before a gradient exists).
pub(crate) fn row_range(len: usize, dim: usize, r: u32) -> std::ops::Range<usize> {
    let start = r as usize * dim;
    assert!(
        start + dim <= len,
        "row {r} outside a table of {} rows",
        len / dim.max(1)
    );
    start..start + dim
}

/// Adam (Kingma & Ba 2015), with bias correction, as PyTorch's default.
pub(crate) struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// L2 weight decay added to the gradient (PyTorch's `weight_decay`).
    pub weight_decay: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
    /// Scratch of `step_rows`: the gradient's rows in table order.
    order: Vec<u32>,
}

impl Adam {
    pub fn new(len: usize, lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: 0,
            order: Vec::new(),
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, w: &mut [f32], g: &[f32]) {
        assert_eq!(w.len(), self.m.len(), "Adam: tensor length changed");
        assert_eq!(g.len(), w.len(), "Adam: gradient length");
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta1, self.beta2);
        let step = self.lr * (1.0 - b2.powi(self.t)).sqrt() / (1.0 - b1.powi(self.t));
        let (eps, wd) = (self.eps * (1.0 - b2.powi(self.t)).sqrt(), self.weight_decay);
        let upd = AdamUpdate {
            b1,
            b2,
            step,
            eps,
            wd,
        };
        // Element-wise: parallel chunks give the same bits on any number of threads.
        w.par_chunks_mut(PAR_CHUNK)
            .zip(g.par_chunks(PAR_CHUNK))
            .zip(self.m.par_chunks_mut(PAR_CHUNK))
            .zip(self.v.par_chunks_mut(PAR_CHUNK))
            .for_each(|(((w, g), m), v)| upd.apply(w, g, m, v));
    }

    /// Lazy Adam (TensorFlow's `LazyAdam`): the moments of the given rows only; the bias
    /// correction counts steps of the whole tensor.
    // why: row ids are u32 (tables hold fewer than u32::MAX rows), and so are the
    // positions in `g.rows` (one batch's distinct rows).
    #[allow(clippy::cast_possible_truncation)]
    fn step_rows(&mut self, w: &mut [f32], g: &RowGrad) {
        assert_eq!(w.len(), self.m.len(), "Adam: tensor length changed");
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta1, self.beta2);
        let step = self.lr * (1.0 - b2.powi(self.t)).sqrt() / (1.0 - b1.powi(self.t));
        let (eps, wd) = (self.eps * (1.0 - b2.powi(self.t)).sqrt(), self.weight_decay);
        let upd = AdamUpdate {
            b1,
            b2,
            step,
            eps,
            wd,
        };
        let dim = g.dim();
        if dim == 0 {
            return;
        }
        for &r in &g.rows {
            // The check the serial loop made per row: a row outside the table panics.
            row_range(w.len(), dim, r);
        }
        // Rows are distinct: cut the table into fixed blocks of rows and update each
        // block's touched rows in parallel (per-element updates: the same bits on any
        // number of threads).
        self.order.clear();
        self.order.extend(0..g.rows.len() as u32);
        self.order.sort_unstable_by_key(|&k| g.rows[k as usize]);
        let (order, rows) = (&self.order, &g.rows);
        let block = ROWS_PER_BLOCK * dim;
        w.par_chunks_mut(block)
            .zip(self.m.par_chunks_mut(block))
            .zip(self.v.par_chunks_mut(block))
            .enumerate()
            .for_each(|(blk, ((w, m), v))| {
                let lo = (blk * ROWS_PER_BLOCK) as u32;
                let hi = lo.saturating_add(ROWS_PER_BLOCK as u32);
                let from = order.partition_point(|&k| rows[k as usize] < lo);
                let to = order.partition_point(|&k| rows[k as usize] < hi);
                for &k in &order[from..to] {
                    let at = (rows[k as usize] - lo) as usize * dim;
                    let gr = &g.values[k as usize * dim..(k as usize + 1) * dim];
                    upd.apply(
                        &mut w[at..at + dim],
                        gr,
                        &mut m[at..at + dim],
                        &mut v[at..at + dim],
                    );
                }
            });
    }
}

/// Elements per parallel task of a dense step.
const PAR_CHUNK: usize = 1 << 14;

/// Table rows per parallel task of a row step.
const ROWS_PER_BLOCK: usize = 256;

/// One step's constants, applied element-wise.
#[derive(Clone, Copy)]
struct AdamUpdate {
    b1: f32,
    b2: f32,
    step: f32,
    eps: f32,
    wd: f32,
}

impl AdamUpdate {
    fn apply(self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let Self {
            b1,
            b2,
            step,
            eps,
            wd,
        } = self;
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
            let g = g + wd * *w;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *w -= step * *m / (v.sqrt() + eps);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Run `opt` for `steps` on f(w) = Σ (w_i − i)² from w = 0 and check it reached the
    /// minimum within `tol`: the convergence test every optimizer shares.
    pub(crate) fn assert_minimises_a_quadratic(opt: &mut dyn Optimizer, steps: usize, tol: f32) {
        let mut w = vec![0f32; 4];
        for _ in 0..steps {
            let g: Vec<f32> = w
                .iter()
                .enumerate()
                .map(|(i, x)| 2.0 * (x - i as f32))
                .collect();
            opt.step(&mut w, &g);
        }
        for (i, x) in w.iter().enumerate() {
            assert!((x - i as f32).abs() < tol, "w[{i}] = {x}");
        }
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        assert_minimises_a_quadratic(&mut Adam::new(4, 0.1), 2000, 1e-2);
    }

    #[test]
    fn add_l2_decays_only_the_rows_present() {
        let w = [1f32, -2.0, 0.5, 3.0, 4.0, 4.0];
        let mut rg = RowGrad::new(2);
        rg.add(2, 1.0, &[0.25, 0.0]);
        rg.add(0, 1.0, &[0.0, 1.0]);
        rg.add_l2(&w, 0.5);
        let got: Vec<(u32, Vec<f32>)> = rg.iter().map(|(r, g)| (r, g.to_vec())).collect();
        assert_eq!(got, [(2, vec![2.25, 2.0]), (0, vec![0.5, 0.0])]);
    }

    #[test]
    fn lazy_adam_moves_only_the_given_rows() {
        // All rows given: the same as a dense step. Then one row: the others keep
        // their weights (a dense step with a zero gradient would still move them).
        let mut dense_w = vec![1f32, -2.0, 0.5, 3.0];
        let mut lazy_w = dense_w.clone();
        let (mut dense, mut lazy) = (Adam::new(4, 0.1), Adam::new(4, 0.1));
        let mut rg = RowGrad::new(2);
        rg.add(1, 1.0, &[0.3, -0.1]);
        rg.add(0, 1.0, &[1.0, 2.0]);
        dense.step(&mut dense_w, &[1.0, 2.0, 0.3, -0.1]);
        lazy.step_rows(&mut lazy_w, &rg);
        assert_eq!(dense_w, lazy_w);
        let before = lazy_w.clone();
        let mut rg = RowGrad::new(2);
        rg.add(0, 1.0, &[1.0, 1.0]);
        lazy.step_rows(&mut lazy_w, &rg);
        assert_eq!(&lazy_w[2..], &before[2..]);
        assert_ne!(&lazy_w[..2], &before[..2]);
    }
}
