//! Implicit feedback: ALS with confidence weights (Hu, Koren & Volinsky 2008), each row
//! solved approximately by a few conjugate-gradient steps (Takács, Pilászy & Tikk 2011).
//!
//! Every stored entry is a positive (preference 1) with confidence `c = 1 + alpha * w`,
//! `w = 1` when `binarize`, else the stored value; absent entries have preference 0 and
//! confidence 1. Row `u` minimises `sum_i c_ui (p_ui - x_u.y_i)^2 + reg |x_u|^2`, whose
//! normal equations are `(YtY + reg I + sum_{i in u} (c_ui - 1) y_i y_i^T) x_u =
//! sum_{i in u} c_ui y_i`. YtY is shared by all rows, so CG only touches the row's own
//! items; it starts from the previous x_u, which is why 2-3 steps per sweep suffice.

use rayon::prelude::*;

use super::{
    check_count, check_f32, dot_slice, normal_matrix, MfModel, CG_STEPS, EPOCHS, FACTORS, INIT_STD,
    WEIGHT,
};
use crate::jobs::JobContext;
use crate::train::interactions::Interactions;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlsParams {
    pub factors: usize,
    /// Sweeps; each solves all users, then all items.
    pub iterations: usize,
    /// L2 weight on every factor row.
    pub reg: f32,
    /// Confidence slope: `c = 1 + alpha * w`.
    pub alpha: f32,
    /// Conjugate-gradient steps per row and sweep.
    pub cg_steps: usize,
    /// Treat every entry as weight 1 (ratings say little about "will interact next").
    pub binarize: bool,
    /// Factors start as N(0, init_std^2).
    pub init_std: f32,
}

impl Default for AlsParams {
    /// Tuned on the NEXT protocol of ML-100K (see `eval::metrics::ml100k::ml100k_targets`).
    fn default() -> Self {
        AlsParams {
            factors: 32,
            iterations: 30,
            reg: 1.0,
            alpha: 5.0,
            cg_steps: 3,
            binarize: true,
            init_std: 0.01,
        }
    }
}

impl AlsParams {
    pub fn validate(&self) -> Result<()> {
        check_count("factors", self.factors, FACTORS)?;
        check_count("iterations", self.iterations, EPOCHS)?;
        check_count("cg_steps", self.cg_steps, CG_STEPS)?;
        check_f32("reg", self.reg, WEIGHT)?;
        check_f32("alpha", self.alpha, WEIGHT)?;
        check_f32("init_std", self.init_std, INIT_STD)?;
        Ok(())
    }
}

/// Trains on `data` (CSR by user; values are weights, e.g. ratings or counts, >= 0).
pub(crate) fn train(data: &Interactions, params: &AlsParams, ctx: &JobContext) -> Result<MfModel> {
    params.validate()?;
    if data.nnz() == 0 {
        return Err(Error::NoEvents {
            what: "interactions",
        });
    }
    if let Some(v) = data.values.iter().find(|v| **v < 0.0) {
        return Err(Error::InvalidInput(format!(
            "ALS needs non-negative weights, found {v}"
        )));
    }
    let f = params.factors;
    let by_item = data.transpose();
    let mut x = normal_matrix(data.n_users, f, params.init_std, ctx.sub_seed(0))?;
    let mut y = normal_matrix(data.n_items, f, params.init_std, ctx.sub_seed(1))?;
    for it in 0..params.iterations {
        ctx.check_cancel()?;
        ctx.pool().install(|| {
            sweep(data, &mut x, &y, params);
            sweep(&by_item, &mut y, &x, params);
        });
        if !x.iter().chain(y.iter()).all(|v| v.is_finite()) {
            return Err(Error::JobFailed(format!("ALS diverged in iteration {it}")));
        }
        ctx.progress(
            (it + 1) as f64 / params.iterations as f64,
            &format!("iteration {}/{}", it + 1, params.iterations),
        );
    }
    Ok(MfModel {
        user_factors: x,
        item_factors: y,
        user_bias: Vec::new(),
        item_bias: Vec::new(),
        global_bias: 0.0,
    })
}

/// Updates every row of `x` (the side `rows` is indexed by) with `y` fixed. Each row is
/// independent, so the result does not depend on the number of threads.
fn sweep(
    rows: &Interactions,
    x: &mut ndarray::Array2<f32>,
    y: &ndarray::Array2<f32>,
    p: &AlsParams,
) {
    let f = p.factors;
    let mut yty = y.t().dot(y);
    yty.diag_mut().mapv_inplace(|d| d + p.reg);
    let yty = yty.as_standard_layout(); // (a view: `dot` already returns that layout)
    let (yty, ys) = (
        yty.as_slice().expect("standard layout"),
        y.as_slice().expect("standard layout"),
    );
    x.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(f)
        .enumerate()
        .for_each_init(
            || vec![0f32; 3 * f],
            |scratch, (u, xu)| {
                let (items, vals) = rows.row(u);
                cg_solve_row(
                    xu, items, vals, ys, yty, p.alpha, p.binarize, p.cg_steps, scratch,
                );
            },
        );
}

/// A few CG steps on one row's normal equations, starting from `xu` (see module docs).
/// `yty` already includes `reg` on its diagonal; `scratch` holds at least `3 * f` floats.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cg_solve_row(
    xu: &mut [f32],
    items: &[u32],
    vals: &[f32],
    ys: &[f32],
    yty: &[f32],
    alpha: f32,
    binarize: bool,
    steps: usize,
    scratch: &mut [f32],
) {
    let f = xu.len();
    let conf = |v: f32| 1.0 + alpha * if binarize { 1.0 } else { v };
    let (r, rest) = scratch.split_at_mut(f);
    let (dir, rest) = rest.split_at_mut(f);
    let ap = &mut rest[..f];
    // r = b - A x
    for (a, ra) in r.iter_mut().enumerate() {
        *ra = -dot_slice(&yty[a * f..(a + 1) * f], xu);
    }
    for (&i, &v) in items.iter().zip(vals) {
        let yi = &ys[i as usize * f..(i as usize + 1) * f];
        let c = conf(v);
        let w = c - (c - 1.0) * dot_slice(yi, xu);
        r.iter_mut().zip(yi).for_each(|(ra, yv)| *ra += w * yv);
    }
    dir.copy_from_slice(r);
    let mut rs_old = dot_slice(r, r);
    for _ in 0..steps {
        if rs_old < 1e-20 {
            break;
        }
        // ap = A dir
        for (a, apa) in ap.iter_mut().enumerate() {
            *apa = dot_slice(&yty[a * f..(a + 1) * f], dir);
        }
        for (&i, &v) in items.iter().zip(vals) {
            let yi = &ys[i as usize * f..(i as usize + 1) * f];
            let w = (conf(v) - 1.0) * dot_slice(yi, dir);
            ap.iter_mut().zip(yi).for_each(|(a, yv)| *a += w * yv);
        }
        let step = rs_old / dot_slice(dir, ap);
        xu.iter_mut()
            .zip(dir.iter())
            .for_each(|(xa, d)| *xa += step * d);
        r.iter_mut()
            .zip(ap.iter())
            .for_each(|(ra, a)| *ra -= step * a);
        let rs_new = dot_slice(r, r);
        let beta = rs_new / rs_old;
        dir.iter_mut()
            .zip(r.iter())
            .for_each(|(d, ra)| *d = ra + beta * *d);
        rs_old = rs_new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::mf::test_util::with_ctx;
    use ndarray::Array2;

    /// Dense Gaussian elimination with partial pivoting (f64), the reference solver.
    fn dense_solve(mut a: Array2<f64>, mut b: Vec<f64>) -> Vec<f64> {
        let n = b.len();
        for c in 0..n {
            let piv = (c..n)
                .max_by(|&i, &j| a[[i, c]].abs().total_cmp(&a[[j, c]].abs()))
                .unwrap();
            for k in 0..n {
                a.swap([c, k], [piv, k]);
            }
            b.swap(c, piv);
            for r in c + 1..n {
                let m = a[[r, c]] / a[[c, c]];
                for k in c..n {
                    a[[r, k]] -= m * a[[c, k]];
                }
                b[r] -= m * b[c];
            }
        }
        let mut x = vec![0.0; n];
        for r in (0..n).rev() {
            let s: f64 = (r + 1..n).map(|k| a[[r, k]] * x[k]).sum();
            x[r] = (b[r] - s) / a[[r, r]];
        }
        x
    }

    #[test]
    fn cg_matches_direct_solve_of_normal_equations() {
        let (n, f, reg, alpha) = (12usize, 5usize, 0.3f32, 2.0f32);
        let y = normal_matrix(n, f, 1.0, 3).unwrap();
        let items = [1u32, 4, 5, 9];
        let vals = [1.0f32, 3.0, 0.5, 5.0];
        // Naive normal equations, built entry by entry in f64.
        let mut a = Array2::<f64>::zeros((f, f));
        let mut b = vec![0f64; f];
        for i in 0..n {
            let c = items
                .iter()
                .position(|&it| it as usize == i)
                .map_or(1.0, |k| 1.0 + (alpha * vals[k]) as f64);
            let pref = if c > 1.0 { 1.0 } else { 0.0 };
            for r in 0..f {
                b[r] += c * pref * y[[i, r]] as f64;
                for s in 0..f {
                    a[[r, s]] += c * (y[[i, r]] * y[[i, s]]) as f64;
                }
            }
        }
        for r in 0..f {
            a[[r, r]] += reg as f64;
        }
        let exact = dense_solve(a, b);
        let mut yty = y.t().dot(&y);
        yty.diag_mut().mapv_inplace(|d| d + reg);
        let mut xu = vec![0f32; f];
        let mut scratch = vec![0f32; 3 * f];
        let (ys, ytys) = (y.as_slice().unwrap(), yty.as_slice().unwrap());
        cg_solve_row(
            &mut xu,
            &items,
            &vals,
            ys,
            ytys,
            alpha,
            false,
            3 * f,
            &mut scratch,
        );
        for (got, want) in xu.iter().zip(&exact) {
            assert!((*got as f64 - want).abs() < 1e-3, "{xu:?} vs {exact:?}");
        }
        // Warm-started from the answer, CG stays there.
        let mut again = xu.clone();
        cg_solve_row(
            &mut again,
            &items,
            &vals,
            ys,
            ytys,
            alpha,
            false,
            2,
            &mut scratch,
        );
        for (a, b) in again.iter().zip(&xu) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    fn toy() -> Interactions {
        // Two blocks of users/items plus noise: a clear rank-2 structure.
        let mut t = Vec::new();
        for u in 0..20u32 {
            for i in 0..16u32 {
                if (u < 10) == (i < 8) && (u + i) % 3 != 0 {
                    t.push((u, i, 1.0 + (u % 4) as f32));
                }
            }
        }
        Interactions::from_triples(20, 16, &t).unwrap()
    }

    /// The full weighted objective of the model on `data`.
    fn objective(data: &Interactions, m: &MfModel, p: &AlsParams) -> f64 {
        let mut loss = 0f64;
        for u in 0..data.n_users {
            let (items, vals) = data.row(u);
            for i in 0..data.n_items {
                let (c, pref) = match items.iter().position(|&it| it as usize == i) {
                    Some(k) => (1.0 + p.alpha * if p.binarize { 1.0 } else { vals[k] }, 1.0),
                    None => (1.0, 0.0),
                };
                loss += (c * (pref - m.predict(u, i)).powi(2)) as f64;
            }
        }
        let sq = |a: &Array2<f32>| a.iter().map(|v| (v * v) as f64).sum::<f64>();
        loss + p.reg as f64 * (sq(&m.user_factors) + sq(&m.item_factors))
    }

    #[test]
    fn objective_decreases_and_runs_are_deterministic() {
        let data = toy();
        let mut losses = Vec::new();
        for iterations in 1..=4 {
            let p = AlsParams {
                factors: 4,
                iterations,
                reg: 0.1,
                alpha: 2.0,
                binarize: false,
                init_std: 0.1,
                ..Default::default()
            };
            let m = with_ctx(9, 2, |ctx| train(&data, &p, ctx)).unwrap();
            losses.push(objective(&data, &m, &p));
        }
        assert!(
            losses.windows(2).all(|w| w[1] <= w[0] * 1.0001),
            "{losses:?}"
        );
        let p = AlsParams {
            factors: 4,
            iterations: 3,
            ..Default::default()
        };
        let a = with_ctx(4, 1, |ctx| train(&data, &p, ctx)).unwrap();
        let b = with_ctx(4, 2, |ctx| train(&data, &p, ctx)).unwrap();
        assert_eq!(a, b, "thread count must not change the result");
        let c = with_ctx(5, 2, |ctx| train(&data, &p, ctx)).unwrap();
        assert_ne!(a, c);
        // Positives of a user score above that user's other-block items.
        assert!(a.predict(0, 1) > a.predict(0, 12));
    }

    #[test]
    fn invalid_params_rejected() {
        let bad = [
            (
                "factors",
                AlsParams {
                    factors: 0,
                    ..Default::default()
                },
            ),
            (
                "iterations",
                AlsParams {
                    iterations: 0,
                    ..Default::default()
                },
            ),
            (
                "cg_steps",
                AlsParams {
                    cg_steps: 0,
                    ..Default::default()
                },
            ),
            (
                "reg",
                AlsParams {
                    reg: f32::NAN,
                    ..Default::default()
                },
            ),
            (
                "alpha",
                AlsParams {
                    alpha: -1.0,
                    ..Default::default()
                },
            ),
        ];
        for (name, p) in bad {
            match p.validate() {
                Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        let neg = Interactions::from_triples(1, 1, &[(0, 0, -1.0)]).unwrap();
        let r = with_ctx(0, 1, |ctx| train(&neg, &AlsParams::default(), ctx));
        assert!(matches!(r, Err(Error::InvalidInput(_))));
    }
}
