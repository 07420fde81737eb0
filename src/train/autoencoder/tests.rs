//! The models' gradient checks (an f64 reference of the whole network), determinism
//! and convergence.

use std::sync::atomic::AtomicBool;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::net::{Kind, Net, StepParams, Trainer};
use super::*;
use crate::jobs::NoProgress;
use crate::train::nn::gradcheck::{act64, assert_close, numeric_gradient};
use crate::train::nn::sparse::SparseRows;

/// Every parameter of `net` in one vector: per chain layer, W then b.
fn flatten(net: &Net) -> Vec<f64> {
    let mut v: Vec<f64> = net
        .first
        .w
        .iter()
        .chain(&net.first.b)
        .map(|&x| x.into())
        .collect();
    for l in net.mid.iter().chain([&net.last]) {
        v.extend(l.w.iter().chain(&l.b).map(|&x| f64::from(x)));
    }
    v
}

/// The loss of `net` with parameters `theta`, in f64, for the trainer's dropped-out
/// input `x_in`, targets `rows` and latent noise `eps`.
fn loss64(
    net: &Net,
    theta: &[f64],
    x_in: &SparseRows,
    rows: &[Vec<u32>],
    eps: &[f32],
    beta: f64,
) -> f64 {
    let m = rows.len();
    let mut at = 0;
    let mut take = |n: usize| {
        at += n;
        theta[at - n..at].to_vec()
    };
    let (w0, b0) = (take(net.first.w.len()), take(net.first.b.len()));
    let d1 = net.first.n_out;
    let mut h: Vec<Vec<f64>> = (0..m)
        .map(|r| {
            let (cols, vals) = x_in.row(r);
            (0..d1)
                .map(|j| {
                    let s = b0[j]
                        + cols
                            .iter()
                            .zip(vals)
                            .map(|(&c, &v)| f64::from(v) * w0[c as usize * d1 + j])
                            .sum::<f64>();
                    act64(net.first_act, s)
                })
                .collect()
        })
        .collect();
    let mut kl = 0.0;
    let latent = |h: &mut Vec<Vec<f64>>, kl: &mut f64| {
        let l = h[0].len() / 2;
        for (r, row) in h.iter_mut().enumerate() {
            let z: Vec<f64> = (0..l)
                .map(|t| {
                    let (mu, lv) = (row[t], row[l + t]);
                    *kl += 0.5 * (-lv + lv.exp() + mu * mu - 1.0);
                    mu + f64::from(eps[r * l + t]) * (0.5 * lv).exp()
                })
                .collect();
            *row = z;
        }
    };
    if net.split == Some(0) {
        latent(&mut h, &mut kl);
    }
    for (j, l) in net.mid.iter().chain([&net.last]).enumerate() {
        let (w, b) = (take(l.w.len()), take(l.b.len()));
        h = h
            .iter()
            .map(|x| {
                (0..l.n_out)
                    .map(|o| {
                        let s = b[o] + (0..l.n_in).map(|i| x[i] * w[i * l.n_out + o]).sum::<f64>();
                        act64(l.act, s)
                    })
                    .collect()
            })
            .collect();
        if net.split == Some(j + 1) {
            latent(&mut h, &mut kl);
        }
    }
    let mut nll = 0.0;
    for (r, z) in h.iter().enumerate() {
        let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        nll -= rows[r].iter().map(|&i| z[i as usize] - lse).sum::<f64>();
    }
    (nll + beta * kl) / m as f64
}

fn check_model(kind: Kind, hidden: &[usize]) {
    let n_items = 9;
    let mut rng = SmallRng::seed_from_u64(5);
    let net = Net::new(kind, n_items, hidden, &mut rng);
    let rows: Vec<Vec<u32>> = vec![vec![0, 3, 4, 8], vec![1, 2], vec![5, 6, 7, 3, 0]];
    let theta = flatten(&net);
    let mut t = Trainer::new(net.clone(), 3, 1e-3, 0.0);
    let beta = 0.3;
    let sp = StepParams {
        dropout: 0.25,
        beta,
    };
    let loss = t.gradients(
        rows.iter().map(|r| &r[..]),
        &sp,
        &mut SmallRng::seed_from_u64(9),
    );
    let (x_in, eps) = (t.x_in_for_tests(), t.eps_for_tests());
    let f = |th: &[f64]| loss64(&net, th, &x_in, &rows, &eps, f64::from(beta));
    assert!(
        (loss - f(&theta)).abs() < 1e-4,
        "{kind:?}: loss {loss} vs {}",
        f(&theta)
    );
    let analytic = t.gradients_for_tests();
    assert_close(
        &format!("{kind:?} {hidden:?}"),
        &analytic,
        &numeric_gradient(&theta, 1e-5, f),
        2e-3,
    );
}

#[test]
fn dae_gradients_match_an_f64_reference() {
    check_model(Kind::Dae, &[4]);
    check_model(Kind::Dae, &[5, 3]);
}

#[test]
fn vae_gradients_match_an_f64_reference() {
    check_model(Kind::Vae, &[5, 3]);
    check_model(Kind::Vae, &[3]);
}

/// 8 items, each user holding one of 4 pairs: the model must learn to put the other
/// item of the pair first.
fn pairs() -> (Histories, usize) {
    let mut h = Histories {
        users: vec![],
        offsets: vec![0],
        items: vec![],
    };
    for u in 0..200u32 {
        let g = u % 4;
        h.users.push(u);
        h.items.extend([2 * g, 2 * g + 1]);
        h.offsets.push(h.items.len());
    }
    (h, 8)
}

fn train(model: &str, params: Params, seed: u64, threads: usize) -> Net {
    let (h, n) = pairs();
    let job = Autoencoder::from_params(model, &params).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let cancel = AtomicBool::new(false);
    let ctx = JobContext::new(seed, &cancel, &NoProgress, &pool);
    job.train(&h, n, &ctx, |_, _| {}).unwrap()
}

#[test]
fn a_tiny_problem_converges() {
    for model in [DAE, VAE] {
        let p = Params::new()
            .set("hidden", "8,4")
            .set("epochs", 150)
            .set("batch", 50)
            .set("learning_rate", 0.01);
        let net = train(model, p, 3, 1);
        for g in 0..4u32 {
            let mut x = SparseRows::default();
            x.push_uniform(&[2 * g], 1.0);
            let s = net.scores(&x);
            let best = (0..8)
                .filter(|&i| i != 2 * g as usize)
                .max_by(|&a, &b| s[a].total_cmp(&s[b]))
                .unwrap();
            assert_eq!(best, 2 * g as usize + 1, "{model}: scores {s:?}");
        }
    }
}

#[test]
fn one_thread_is_bit_for_bit_deterministic() {
    for model in [DAE, VAE] {
        let p = || {
            Params::new()
                .set("hidden", "16,8")
                .set("epochs", 3)
                .set("batch", 64)
        };
        let a = train(model, p(), 11, 1);
        let b = train(model, p(), 11, 1);
        let c = train(model, p(), 12, 1);
        assert_eq!(a.last.w, b.last.w, "{model}");
        assert_eq!(a.first.w, b.first.w, "{model}");
        assert_ne!(a.last.w, c.last.w, "{model}: the seed must matter");
        // Products are split by rows into independent blocks: threads do not matter.
        assert_eq!(train(model, p(), 11, 2).last.w, a.last.w, "{model}");
    }
}

#[test]
fn parameters_are_validated() {
    for (k, v) in [
        ("hidden", "0"),
        ("hidden", "a,b"),
        ("epochs", "0"),
        ("dropout", "1"),
        ("batch", "0"),
        ("learning_rate", "-1"),
    ] {
        let e = Autoencoder::from_params(VAE, &Params::new().set(k, v))
            .err()
            .unwrap();
        assert!(
            matches!(&e, Error::InvalidParameter { name, .. } if name == k),
            "{k}={v}: {e}"
        );
    }
    assert!(Autoencoder::from_params(DAE, &Params::new().set("beta_cap", 1)).is_err());
}
