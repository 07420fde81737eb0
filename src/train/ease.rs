//! EASE (Steck, WWW 2019): the closed-form item-item model. X is the binarised user ×
//! item matrix of the snapshot, G = XᵀX + λI, P = G⁻¹, B = I − P·diagMat(1 ⊘ diag(P)):
//! B's diagonal is zero and user u's score for item j is Xᵤ·B[:, j]. With `dropout`
//! p > 0 the penalty is Steck's (NeurIPS 2020) full-rank DLAE instead: λI + p/(1−p)·
//! diagMat(diag(XᵀX)), the closed form of training B with input dropout p; p = 0 (the
//! default) is EASE exactly.
//!
//! Publishes `<model>.items` (row j = column j of B, the weights into item j, so
//! `similar` is cosine over B's columns) and `<model>.item_item`, the marker that makes
//! `recommend` fold the user's current history through B (src/query/item_item.rs): one
//! row, `positive_min`, so that queries binarise the log as training did.
//!
//! Memory: G (then its Cholesky factor L, then P) and L⁻¹ are two dense I × I matrices
//! of the fit's floats (f32, [`FIT_PRECISION`]); B is written as f32 once L⁻¹ is
//! freed. Peak: 8 bytes per item² (16 in f64).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::params::{check_real, Real};
use crate::jobs::memory;
use crate::jobs::{Job, JobContext, Snapshot, TableOutput};
use crate::storage::tables::RowSpace;
use crate::{Error, Params, Result};

pub(crate) const MODEL: &str = "ease";

/// Suffix of the table that marks an item-to-item model and holds its query settings.
pub(crate) const MARKER: &str = "item_item";

/// Row id, in the marker table, of the threshold that makes an event positive.
pub(crate) const POSITIVE_MIN: &str = "positive_min";

/// λ chosen on protocol STRONG's validation users of MovieLens 1M (docs/EASE.md).
pub(crate) const DEFAULT_LAMBDA: f64 = 1000.0;

/// Every event with a value ≥ 1 counts: implicit events (weight 1) and every rating.
/// For 1-5 star ratings, `positive_min=4` keeps the liked ones.
pub(crate) const DEFAULT_POSITIVE_MIN: f32 = 1.0;

/// The float type of the fit. Measured on MovieLens 1M (3,475 items, docs/EASE.md):
/// f32 keeps B within 3e-7 of NumPy's f64 B at λ = 1000 (1.3e-5 at λ = 1, max |B| 0.66),
/// far below what moves a ranking, in 1.6 s where f64 takes 2.6 s and twice the memory.
const FIT_PRECISION: Precision = Precision::F32;

/// The float type G, its factor and its inverse are computed in.
// why: f64 is reached only from the bench and the NumPy comparison (testkit).
#[cfg_attr(not(any(test, feature = "testkit")), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    fn bytes(self) -> u128 {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 8,
        }
    }
}

/// The penalty on B: λ on every weight, plus, with input dropout p, p/(1−p) times each
/// item's count on its own column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Penalty {
    pub lambda: f64,
    pub dropout: f64,
}

impl Penalty {
    fn validate(&self) -> Result<()> {
        check_real("lambda", self.lambda, Real::above(0.0, 1e12))?;
        check_real("dropout", self.dropout, Real::closed(0.0, 0.99))
    }
}

pub(crate) struct Ease {
    penalty: Penalty,
    positive_min: f32,
}

impl Ease {
    pub fn from_params(p: &Params) -> Result<Self> {
        let penalty = Penalty {
            lambda: p.get("lambda", DEFAULT_LAMBDA)?,
            dropout: p.get("dropout", 0.0)?,
        };
        penalty.validate()?;
        let positive_min: f32 = p.get("positive_min", DEFAULT_POSITIVE_MIN)?;
        check_real(
            "positive_min",
            f64::from(positive_min),
            Real::closed(f64::from(f32::MIN), f64::from(f32::MAX)),
        )?;
        p.finish(MODEL)?;
        Ok(Ease {
            penalty,
            positive_min,
        })
    }
}

/// Each user's positive items (value ≥ `positive_min`), sorted, each once; users without
/// any are left out (they add nothing to XᵀX).
fn positive_rows(snap: &Snapshot, positive_min: f32) -> Vec<Vec<u32>> {
    let mut rows = Vec::new();
    let mut cur: Option<u32> = None;
    let mut items: Vec<u32> = Vec::new();
    let flush = |items: &mut Vec<u32>, rows: &mut Vec<Vec<u32>>| {
        items.sort_unstable();
        items.dedup();
        if !items.is_empty() {
            rows.push(std::mem::take(items));
        }
    };
    for e in &snap.events {
        if cur != Some(e.user) {
            flush(&mut items, &mut rows);
            cur = Some(e.user);
        }
        if e.value >= positive_min {
            items.push(e.item);
        }
    }
    flush(&mut items, &mut rows);
    rows
}

/// Bytes the fit holds at its peak for `n_items` items.
pub(crate) fn fit_bytes(n_items: usize, precision: Precision) -> u128 {
    let n2 = memory::bytes_of::<u8>(n_items, n_items);
    // Two I × I matrices of the fit's floats; then P and B (f32) together.
    (2 * precision.bytes() * n2).max((precision.bytes() + 4) * n2)
}

/// The float types the fit runs in.
trait Float: faer::traits::RealField + Copy + Send + Sync + 'static {
    fn of(x: f64) -> Self;
    fn to_f32(self) -> f32;
}

impl Float for f32 {
    fn of(x: f64) -> Self {
        // why: counts and λ in f32 round by 6e-8 relative at most; measured in docs.
        #[allow(clippy::cast_possible_truncation)]
        let v = x as f32;
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl Float for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn to_f32(self) -> f32 {
        // why: the published table is f32.
        #[allow(clippy::cast_possible_truncation)]
        let v = self as f32;
        v
    }
}

/// A zeroed n × n buffer, or an error naming `items` when it cannot be had.
fn square<T: Float>(n: usize) -> Result<Vec<T>> {
    memory::filled(n * n, T::of(0.0), "items")
}

/// The lower triangle of G = XᵀX + the penalty, column-major. Columns are filled in
/// parallel, each task scanning every user for its columns (user rows are short and
/// sorted).
fn gram<T: Float>(n: usize, users: &[Vec<u32>], penalty: Penalty) -> Result<Vec<T>> {
    let mut g = square::<T>(n)?;
    if n == 0 {
        return Ok(g);
    }
    // Small tasks: the lower triangle's first columns are the longest.
    let cols_per_task = 32;
    let (lambda, counted) = (
        T::of(penalty.lambda),
        T::of(penalty.dropout / (1.0 - penalty.dropout)),
    );
    g.par_chunks_mut(n * cols_per_task)
        .enumerate()
        .for_each(|(t, chunk)| {
            let (first, last) = (t * cols_per_task, (t * cols_per_task + chunk.len() / n));
            // why: item ids are < n, which fits u32 (they are u32 dense ids).
            #[allow(clippy::cast_possible_truncation)]
            let (lo, hi) = (first as u32, last as u32);
            let one = T::of(1.0);
            for row in users {
                let start = row.partition_point(|&i| i < lo);
                for (p, &j) in row[start..].iter().enumerate() {
                    if j >= hi {
                        break;
                    }
                    let col = &mut chunk[(j - lo) as usize * n..][..n];
                    for &i in &row[start + p..] {
                        col[i as usize] += one;
                    }
                }
            }
            for j in first..last {
                let d = &mut chunk[(j - first) * n + j];
                *d = *d + *d * counted + lambda;
            }
        });
    Ok(g)
}

/// The published table of EASE: row j = column j of B (`n × n`, row-major f32), from
/// each user's sorted distinct positive items. Runs on the current rayon pool; checks
/// `ctx`'s cancel flag between phases and reports progress.
fn fit<T: Float>(
    n: usize,
    users: &[Vec<u32>],
    penalty: Penalty,
    ctx: &JobContext<'_>,
) -> Result<Vec<f32>> {
    let threads = rayon::current_num_threads();
    let par = if threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    };
    let mut g = gram::<T>(n, users, penalty)?;
    ctx.check_cancel()?;
    ctx.progress(0.1, "XᵀX done; factoring");
    {
        let scratch = cholesky_in_place_scratch::<T>(n, par, Default::default());
        let mut buf = MemBuffer::try_new(scratch).map_err(|_| oom(n))?;
        let a = MatMut::from_column_major_slice_mut(&mut g, n, n);
        cholesky_in_place(
            a,
            Default::default(),
            par,
            MemStack::new(&mut buf),
            Default::default(),
        )
        .map_err(|e| {
            Error::JobFailed(format!(
                "EASE: XᵀX + λI is not positive definite in floating point ({e:?}); raise `lambda`"
            ))
        })?;
    }
    ctx.check_cancel()?;
    ctx.progress(0.4, "Cholesky done; inverting");
    {
        let mut linv = square::<T>(n)?;
        let l = MatRef::from_column_major_slice(&g, n, n);
        invert_lower_triangular(MatMut::from_column_major_slice_mut(&mut linv, n, n), l, par);
        ctx.check_cancel()?;
        // P = L⁻ᵀ L⁻¹ (lower triangle), written over L, which is no longer needed.
        let linv = MatRef::from_column_major_slice(&linv, n, n);
        matmul(
            MatMut::from_column_major_slice_mut(&mut g, n, n),
            BlockStructure::TriangularLower,
            Accum::Replace,
            linv.transpose(),
            BlockStructure::TriangularUpper,
            linv,
            BlockStructure::TriangularLower,
            T::of(1.0),
            par,
        );
    }
    ctx.check_cancel()?;
    ctx.progress(0.9, "inverse done; writing B");
    // P is symmetric and only its lower triangle is written: P[i][j] for i ≥ j is at
    // g[j·n + i].
    let p = |i: usize, j: usize| {
        if i >= j {
            g[j * n + i]
        } else {
            g[i * n + j]
        }
    };
    let mut out = memory::filled(n * n, 0f32, "items")?;
    if n > 0 {
        out.par_chunks_mut(n).enumerate().for_each(|(j, row)| {
            let d = p(j, j);
            for (i, b) in row.iter_mut().enumerate() {
                if i != j {
                    // B[i][j] = −P[i][j] / P[j][j].
                    *b = (-p(i, j) / d).to_f32();
                }
            }
        });
    }
    ctx.progress(1.0, "done");
    Ok(out)
}

fn oom(n: usize) -> Error {
    Error::OutOfMemory {
        param: "items".into(),
        needed: u64::try_from(fit_bytes(n, FIT_PRECISION)).unwrap_or(u64::MAX),
        available: memory::available().unwrap_or(0),
    }
}

/// EASE's published weights for `n_items` items from each user's sorted distinct
/// positive items: row j = column j of B, `n_items × n_items` row-major. Runs on
/// `ctx`'s pool; the job's fit, open to the bench and the NumPy comparison.
pub fn fit_table(
    n_items: usize,
    users: &[Vec<u32>],
    penalty: Penalty,
    precision: Precision,
    ctx: &JobContext<'_>,
) -> Result<Vec<f32>> {
    penalty.validate()?;
    if users.iter().flatten().any(|&i| i as usize >= n_items) {
        return Err(Error::InvalidInput(
            "an item id is not below n_items".into(),
        ));
    }
    ctx.check_memory("items", fit_bytes(n_items, precision))?;
    ctx.pool().install(|| match precision {
        Precision::F32 => fit::<f32>(n_items, users, penalty, ctx),
        Precision::F64 => fit::<f64>(n_items, users, penalty, ctx),
    })
}

impl Job for Ease {
    fn model(&self) -> &str {
        MODEL
    }

    fn params_json(&self) -> String {
        serde_json::json!({
            "lambda": self.penalty.lambda,
            "dropout": self.penalty.dropout,
            "positive_min": self.positive_min,
        })
        .to_string()
    }

    fn run(&self, snap: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>> {
        // Refuse before reading anything: the I × I matrices are the whole cost.
        ctx.check_memory("items", fit_bytes(snap.n_items, FIT_PRECISION))?;
        let users = positive_rows(snap, self.positive_min);
        if users.is_empty() {
            return Err(Error::NoEvents {
                what: "positive events (value >= positive_min)",
            });
        }
        let rows = fit_table(snap.n_items, &users, self.penalty, FIT_PRECISION, ctx)?;
        Ok(vec![
            TableOutput {
                name: format!("{MODEL}.items"),
                space: RowSpace::Items,
                dim: snap.n_items,
                rows,
                offset: 0.0,
                row_ids: vec![],
            },
            TableOutput {
                name: format!("{MODEL}.{MARKER}"),
                space: RowSpace::Other,
                dim: 1,
                rows: vec![self.positive_min],
                offset: 0.0,
                row_ids: vec![POSITIVE_MIN.into()],
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_and_positive_min_are_validated_by_name() {
        for bad in ["0", "-1", "nan", "inf"] {
            let e = Ease::from_params(&Params::new().set("lambda", bad))
                .err()
                .expect("refused");
            assert!(e.to_string().contains("`lambda`"), "{bad}: {e}");
        }
        let e = Ease::from_params(&Params::new().set("positive_min", "nan"))
            .err()
            .expect("refused");
        assert!(e.to_string().contains("`positive_min`"), "{e}");
        for bad in ["-0.1", "1", "nan"] {
            let e = Ease::from_params(&Params::new().set("dropout", bad))
                .err()
                .expect("refused");
            assert!(e.to_string().contains("`dropout`"), "{bad}: {e}");
        }
        assert!(Ease::from_params(&Params::new().set("lambda", 0.5)).is_ok());
    }

    #[test]
    fn positives_are_thresholded_sorted_and_once() {
        let ev = |user, item, value| crate::event::Event {
            user,
            item,
            kind: crate::EventKind::Rating,
            value,
            timestamp: 0,
            group: u32::MAX,
            seq: 0,
        };
        let snap = Snapshot::of_events(
            3,
            5,
            vec![
                ev(0, 3, 5.0),
                ev(0, 1, 4.0),
                ev(0, 3, 4.5),
                ev(0, 2, 2.0),
                ev(1, 2, 1.0),
                ev(2, 4, 4.0),
            ],
        );
        assert_eq!(positive_rows(&snap, 4.0), vec![vec![1, 3], vec![4]]);
    }

    #[test]
    fn memory_is_eight_bytes_per_item_squared_in_f32() {
        assert_eq!(fit_bytes(1000, Precision::F64), 16_000_000);
        assert_eq!(fit_bytes(1000, Precision::F32), 8_000_000);
    }
}
