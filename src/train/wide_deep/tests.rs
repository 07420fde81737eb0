//! The wide-deep job's own tests: parameters, wide hashing, the gradients of every
//! part against an f64 reference by finite differences, training (it learns, L1 makes
//! the wide part sparse, 1 and 2 threads give the same bits, cancel, memory), the
//! stored network (round trip, damage is an error).

// why: the f64 reference is written index by index, as the formulas read.
#![allow(clippy::needless_range_loop, clippy::cast_possible_truncation)]

use std::sync::atomic::AtomicBool;

use super::deep::{Acts, Grads, Net, Shape};
use super::examples::Example;
use super::inputs::{Batch, Side, Spec, TableRows};
use super::*;
use crate::event::{Event, EventKind};
use crate::jobs::{JobContext, NoProgress, Snapshot};
use crate::train::nn::gradcheck::{assert_close, numeric_gradient};
use crate::train::nn::optim::RowGrad;

fn params(kv: &[(&str, &str)]) -> Result<WdParams> {
    let mut p = Params::new();
    for (k, v) in kv {
        p.insert(k, v);
    }
    let w = WdParams::from_params(&p)?;
    p.finish(MODEL)?;
    Ok(w)
}

#[test]
fn every_bad_parameter_is_named() {
    for (k, v) in [
        ("parts", "tall"),
        ("parts", ""),
        ("labels", "clicks"),
        ("positive", "nan"),
        ("weight", "heavy"),
        ("dim", "0"),
        ("layers", "64,0"),
        ("layers", "a"),
        ("wide", "a*b*c"),
        ("wide", "a,a"),
        ("wide_buckets", "0"),
        ("user_features", "age:sideways"),
        ("epochs", "0"),
        ("batch", "0"),
        ("learning_rate", "0"),
        ("emb_l2", "-1"),
        ("emb_l2", "inf"),
        ("optimizer", "sgd"),
        ("alpha", "0"),
        ("l1", "-1"),
        ("validation", "maybe"),
        ("history_len", "0"),
        ("history_len", "1001"),
        ("recent", "1001"),
        ("loss", "hinge"),
        ("loss", "list"),
        ("nonsense", "1"),
    ] {
        match params(&[(k, v)]) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, k, "{k}={v}"),
            other => panic!("{k}={v}: {other:?}"),
        }
    }
    let p = params(&[]).unwrap();
    assert_eq!(p, WdParams::default());
    // The recorded parameters parse back to the same job.
    let json: serde_json::Value =
        serde_json::from_str(&WideDeep::with_params(p.clone()).params_json()).unwrap();
    let mut again = Params::new();
    for (k, v) in json.as_object().unwrap() {
        again.insert(k, v.as_str().map_or_else(|| v.to_string(), str::to_string));
    }
    assert_eq!(WdParams::from_params(&again).unwrap(), p);
}

#[test]
fn wide_terms_hash_fields_and_crosses_into_buckets() {
    let spec = wide::WideSpec::parse("user,genres,gender*genres", 1000).unwrap();
    assert_eq!(spec.to_spec(), "user,genres,gender*genres");
    let attrs_u = vec![("gender".to_string(), "F".to_string())];
    let attrs_i = vec![("genres".to_string(), "Comedy|Drama".to_string())];
    let u = spec.keys("user", Some(7), &attrs_u);
    let i = spec.keys("item", Some(3), &attrs_i);
    let mut b = Vec::new();
    spec.buckets_of(&u, &i, &mut b);
    // bias, user id, two genres, two gender×genre crosses.
    assert_eq!(b.len(), 6, "{b:?}");
    assert_eq!(b[0], 0);
    assert!(b[1..].iter().all(|&k| (1..=1000).contains(&k)));
    let mut again = Vec::new();
    spec.buckets_of(&u, &i, &mut again);
    assert_eq!(b, again, "hashing is deterministic");
    // Another gender changes only the crosses.
    let u2 = spec.keys("user", Some(7), &[("gender".to_string(), "M".to_string())]);
    let mut c = Vec::new();
    spec.buckets_of(&u2, &i, &mut c);
    assert_eq!(b[..4], c[..4]);
    assert_ne!(b[4..], c[4..]);
}

fn ev(user: u32, item: u32, value: f32, seq: u64) -> Event {
    Event {
        user,
        item,
        kind: EventKind::Interaction,
        value,
        timestamp: seq as i64,
        group: u32::MAX,
        seq,
    }
}

/// Users with a gender and an age, items with genres and a year; a user likes (rates
/// 5) items of the genre their gender prefers, else rates 2.
fn snapshot(users: u32, items: u32, per_user: u32) -> Snapshot {
    let mut events = Vec::new();
    for u in 0..users {
        for t in 0..per_user {
            let item = (u * 13 + t * 7) % items;
            let likes = (u % 2) == (item % 2);
            let seq = events.len() as u64;
            events.push(ev(u, item, if likes { 5.0 } else { 2.0 }, seq));
        }
    }
    let mut s = Snapshot::of_events(users as usize, items as usize, events);
    s.user_attrs = (0..users)
        .map(|u| {
            vec![
                (
                    "gender".to_string(),
                    if u % 2 == 0 { "F" } else { "M" }.to_string(),
                ),
                ("age".to_string(), (18 + 7 * (u % 3)).to_string()),
            ]
        })
        .collect();
    s.item_attrs = (0..items)
        .map(|i| {
            vec![
                ("release_year".to_string(), (1990 + i % 11).to_string()),
                (
                    "genres".to_string(),
                    if i % 2 == 0 { "Drama|War" } else { "Comedy" }.to_string(),
                ),
            ]
        })
        .collect();
    s
}

fn ctx_run<T>(threads: usize, seed: u64, f: impl FnOnce(&JobContext<'_>) -> T) -> T {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let cancel = AtomicBool::new(false);
    let ctx = JobContext::new(seed, &cancel, &NoProgress, &pool);
    f(&ctx)
}

/// A small network with every part, random wide weights and biases, and a batch.
fn small() -> (Net, Batch) {
    let snap = snapshot(6, 8, 4);
    let p = params(&[
        ("parts", "wide,deep,fm"),
        ("dim", "3"),
        ("layers", "5,4"),
        ("wide_buckets", "31"),
        ("recent", "2"),
    ])
    .unwrap();
    let job = WideDeep::with_params(p.clone());
    let spec = job.spec(&snap).unwrap();
    let shape = Shape::new(&p, 6, 8, &spec);
    let mut net = Net::new(shape, 9);
    for (k, w) in net.wide.iter_mut().enumerate() {
        *w = ((k as f32) * 0.71).sin() * 0.3;
    }
    for l in &mut net.layers {
        for (k, b) in l.b.iter_mut().enumerate() {
            *b = 0.05 + 0.1 * ((k as f32) * 1.3).cos();
        }
    }
    for t in &mut net.emb {
        for (k, v) in t.iter_mut().enumerate() {
            *v = ((k as f32) * 0.37 + 0.2).sin() * 0.5;
        }
    }
    let rows = TableRows::new(&[], Vec::new());
    let mut batch = Batch::default();
    batch.clear();
    for (r, (u, i)) in [(0u32, 1u32), (1, 2), (2, 2), (5, 7), (3, 0)]
        .iter()
        .enumerate()
    {
        let us: Side = spec.user_side(Some(*u), &snap.user_attrs[*u as usize]);
        let is: Side = spec.item_side(Some(*i), &snap.item_attrs[*i as usize]);
        let e = Example {
            user: *u,
            item: *i,
            label: 1.0,
            weight: 1.0,
            score: 0.3 * r as f32 - 0.4,
            list: [0.0; 2],
            history: [0.0; 3],
            at: 0,
        };
        // The recent items' field: none, one, two (of three given).
        let recent = [(*i + 3) % 8, *u, 5];
        batch.push(&spec, (&us, &is), &rows, &e, &recent[..r % 4]);
    }
    (net, batch)
}

/// The parameters as f64 tensors, in the order the reference reads them.
struct P64 {
    wide: Vec<f64>,
    emb: Vec<Vec<f64>>,
    w: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn p64(net: &Net) -> P64 {
    P64 {
        wide: to64(&net.wide),
        emb: net.emb.iter().map(|t| to64(t)).collect(),
        w: net.layers.iter().map(|l| to64(&l.w)).collect(),
        b: net.layers.iter().map(|l| to64(&l.b)).collect(),
    }
}

/// `Σ_r c_r · logit_r` written from the formulas, in f64.
fn reference(net: &Net, b: &Batch, p: &P64, c: &[f64]) -> f64 {
    let s = &net.shape;
    let (d, nf) = (s.dim, s.n_fields());
    let mut total = 0.0;
    for r in 0..b.n {
        let mut z = 0.0;
        for &k in b.buckets(r) {
            z += p.wide[k as usize];
        }
        let mut x = vec![0.0f64; s.input_width()];
        for f in 0..nf {
            let ids = b.field(nf, r, f);
            for &id in ids {
                for j in 0..d {
                    x[f * d + j] += p.emb[f][id as usize * d + j] / ids.len() as f64;
                }
            }
        }
        for j in 0..s.n_dense {
            x[nf * d + j] = f64::from(b.dense[r * s.n_dense + j]);
        }
        let mut h = x.clone();
        for (k, l) in net.layers.iter().enumerate() {
            let mut out = vec![0.0; l.n_out];
            for o in 0..l.n_out {
                let mut v = p.b[k][o];
                for i in 0..l.n_in {
                    v += h[i] * p.w[k][i * l.n_out + o];
                }
                out[o] = if k + 1 < net.layers.len() {
                    v.max(0.0)
                } else {
                    v
                };
            }
            h = out;
        }
        z += h[0];
        for f in 0..nf {
            for g in f + 1..nf {
                for j in 0..d {
                    z += x[f * d + j] * x[g * d + j];
                }
            }
        }
        total += c[r] * z;
    }
    total
}

fn dense_of(g: &RowGrad, len: usize) -> Vec<f32> {
    let mut out = vec![0f32; len];
    for (r, v) in g.iter() {
        let at = r as usize * g.dim();
        out[at..at + g.dim()].copy_from_slice(v);
    }
    out
}

#[test]
fn every_part_matches_finite_differences_in_f64() {
    let (net, batch) = small();
    let c: Vec<f32> = (0..batch.n).map(|r| 0.5 - 0.3 * r as f32).collect();
    let c64 = to64(&c);
    let mut acts = Acts::default();
    net.forward(&batch, &mut acts);
    let base = p64(&net);
    // The forward pass agrees with the reference.
    let fwd: f64 = acts
        .logits
        .iter()
        .zip(&c64)
        .map(|(z, c)| f64::from(*z) * c)
        .sum();
    let want = reference(&net, &batch, &base, &c64);
    assert!(
        (fwd - want).abs() < 1e-4 * want.abs().max(1.0),
        "{fwd} vs {want}"
    );
    let mut g = Grads::default();
    net.backward(&batch, &mut acts, &c, &mut g);
    let h = 1e-5;
    let num = numeric_gradient(&base.wide, h, |w| {
        reference(
            &net,
            &batch,
            &P64 {
                wide: w.to_vec(),
                ..p64(&net)
            },
            &c64,
        )
    });
    assert_close(
        "wide",
        &dense_of(g.wide.as_ref().unwrap(), net.wide.len()),
        &num,
        1e-4,
    );
    for f in 0..net.emb.len() {
        let num = numeric_gradient(&base.emb[f], h, |e| {
            let mut p = p64(&net);
            p.emb[f] = e.to_vec();
            reference(&net, &batch, &p, &c64)
        });
        assert_close(
            &format!("embedding {f}"),
            &dense_of(&g.emb[f], net.emb[f].len()),
            &num,
            1e-4,
        );
    }
    for k in 0..net.layers.len() {
        let num = numeric_gradient(&base.w[k], h, |w| {
            let mut p = p64(&net);
            p.w[k] = w.to_vec();
            reference(&net, &batch, &p, &c64)
        });
        assert_close(&format!("layer {k} W"), &g.dw[k], &num, 1e-4);
        let num = numeric_gradient(&base.b[k], h, |b| {
            let mut p = p64(&net);
            p.b[k] = b.to_vec();
            reference(&net, &batch, &p, &c64)
        });
        assert_close(&format!("layer {k} b"), &g.db[k], &num, 1e-4);
    }
}

/// A batch of (user, item) pairs of `train`'s snapshot, inputs built by `spec`.
fn pairs_batch(spec: &Spec, pairs: impl IntoIterator<Item = (u32, u32)>) -> Batch {
    let snap = snapshot(60, 40, 12);
    let rows = TableRows::new(&[], Vec::new());
    let mut b = Batch::default();
    b.clear();
    for (u, i) in pairs {
        let us = spec.user_side(Some(u), &snap.user_attrs[u as usize]);
        let is = spec.item_side(Some(i), &snap.item_attrs[i as usize]);
        let e = Example {
            user: u,
            item: i,
            label: 0.0,
            weight: 1.0,
            score: 0.0,
            list: [0.0; 2],
            history: [0.0; 3],
            at: 0,
        };
        b.push(spec, (&us, &is), &rows, &e, &[]);
    }
    b
}

fn train(threads: usize, kv: &[(&str, &str)]) -> (Net, Spec, TrainReport) {
    let (mut nets, spec, r) = train_all(threads, kv);
    (nets.swap_remove(0), spec, r)
}

/// Every network of an ensemble.
fn train_all(threads: usize, kv: &[(&str, &str)]) -> (Vec<Net>, Spec, TrainReport) {
    let snap = snapshot(60, 40, 12);
    let job = WideDeep::with_params(params(kv).unwrap());
    ctx_run(threads, 5, |ctx| job.train(&snap, ctx).unwrap())
}

#[test]
fn each_part_learns_the_taste_and_wide_is_sparse() {
    for parts in ["wide", "deep", "fm", "wide,deep"] {
        let (net, spec, r) = train(
            2,
            &[
                ("parts", parts),
                ("epochs", "30"),
                ("layers", "16"),
                ("batch", "32"),
                ("wide_buckets", "4096"),
            ],
        );
        // Scores on the pairs: liked ones above the others.
        let b = pairs_batch(
            &spec,
            (0..6u32).flat_map(|u| (0..6u32).map(move |i| (u, i))),
        );
        let mut acts = Acts::default();
        net.forward(&b, &mut acts);
        let scored: Vec<(f32, bool)> = (0..36)
            .map(|k| (acts.logits[k], (k / 6) % 2 == (k % 6) % 2))
            .collect();
        let auc = pairwise_auc(&scored);
        assert!(auc > 0.9, "{parts}: AUC {auc} ({r:?})");
        if parts.contains("wide") {
            assert!(
                r.wide_nonzero > 0 && r.wide_nonzero < r.wide_total / 10,
                "{r:?}"
            );
        }
    }
}

#[test]
fn emb_l2_shrinks_the_embeddings() {
    let norm = |l2: &str| -> f64 {
        let kv = [
            ("parts", "fm"),
            ("epochs", "10"),
            ("batch", "32"),
            ("emb_l2", l2),
        ];
        let (net, _, _) = train(1, &kv);
        net.emb.iter().flatten().map(|&v| f64::from(v * v)).sum()
    };
    let (free, decayed) = (norm("0"), norm("0.05"));
    assert!(decayed < 0.8 * free, "{decayed} vs {free}");
}

/// The fraction of (positive, negative) pairs ordered right.
fn pairwise_auc(v: &[(f32, bool)]) -> f64 {
    let (mut right, mut all) = (0.0, 0.0);
    for a in v.iter().filter(|x| x.1) {
        for b in v.iter().filter(|x| !x.1) {
            all += 1.0;
            right += if a.0 > b.0 {
                1.0
            } else if a.0 == b.0 {
                0.5
            } else {
                0.0
            };
        }
    }
    right / f64::max(all, 1.0)
}

#[test]
fn one_and_two_threads_train_the_same_bits() {
    let kv = [
        ("parts", "wide,deep,fm"),
        ("epochs", "2"),
        ("layers", "150,20"),
        ("batch", "300"),
    ];
    let (a, sa, _) = train(1, &kv);
    let (b, sb, _) = train(2, &kv);
    assert_eq!(
        stored::to_values(std::slice::from_ref(&a), &sa),
        stored::to_values(std::slice::from_ref(&b), &sb)
    );
}

#[test]
fn the_stored_network_round_trips_and_damage_is_an_error() {
    let (net, spec, _) = train(
        1,
        &[("parts", "wide,deep,fm"), ("epochs", "2"), ("layers", "8")],
    );
    let v = stored::to_values(std::slice::from_ref(&net), &spec);
    let (back, bspec) = stored::parse(&v, "t.ranker").unwrap();
    assert_eq!(stored::to_values(&back, &bspec), v);
    for cut in [0, 1, 5, 14, v.len() / 2, v.len() - 1] {
        assert!(stored::parse(&v[..cut], "t").is_err(), "cut at {cut}");
    }
    let mut extra = v.clone();
    extra.push(0.0);
    assert!(stored::parse(&extra, "t").is_err());
    for at in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 20] {
        for bad in [-1.0, 0.5, 1e9, f32::NAN, 3.0] {
            let mut w = v.clone();
            if w[at] == bad {
                continue;
            }
            w[at] = bad;
            // Either an error, or (a value that changes nothing structural) a network.
            let _ = stored::parse(&w, "t");
        }
    }
    assert!(matches!(
        stored::parse(&v[..3], "t"),
        Err(Error::Corrupted { .. })
    ));
}

#[test]
fn cancel_and_memory_limits_stop_training() {
    let snap = snapshot(20, 10, 5);
    let job = WideDeep::with_params(params(&[]).unwrap());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let cancel = AtomicBool::new(true);
    let ctx = JobContext::new(1, &cancel, &NoProgress, &pool);
    assert!(matches!(job.train(&snap, &ctx), Err(Error::Cancelled)));
    let cancel = AtomicBool::new(false);
    let ctx = JobContext::new(1, &cancel, &NoProgress, &pool).with_memory_limit(Some(100_000));
    match job.train(&snap, &ctx) {
        Err(Error::OutOfMemory { .. }) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    // One network of 2^20 wide buckets fits 40 MB; sixteen held at once do not, and the
    // error names `ensemble` before anything is allocated.
    let ctx = JobContext::new(1, &cancel, &NoProgress, &pool).with_memory_limit(Some(40 << 20));
    let one = WideDeep::with_params(params(&[("epochs", "1")]).unwrap());
    assert!(one.train(&snap, &ctx).is_ok());
    let many = WideDeep::with_params(params(&[("epochs", "1"), ("ensemble", "16")]).unwrap());
    match many.train(&snap, &ctx) {
        Err(Error::OutOfMemory { param, .. }) => assert_eq!(param, "ensemble"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn implicit_labels_draw_unseen_negatives_and_weights_follow_values() {
    let snap = snapshot(10, 20, 4);
    let p = params(&[
        ("labels", "implicit"),
        ("negatives", "3"),
        ("weight", "value"),
    ])
    .unwrap();
    let ex = examples::build(&snap, &p, None, 1).unwrap();
    let pos = ex.iter().filter(|e| e.label == 1.0).count();
    assert_eq!(pos, snap.events.len());
    assert_eq!(ex.len(), 4 * snap.events.len());
    for e in &ex {
        let seen = snap
            .events
            .iter()
            .any(|x| x.user == e.user && x.item == e.item);
        assert_eq!(seen, e.label == 1.0, "{e:?}");
        if e.label == 0.0 {
            assert_eq!(e.weight, 1.0);
        } else {
            assert!(e.weight == 5.0 || e.weight == 2.0);
        }
    }
    let p = params(&[("positive", "4")]).unwrap();
    let ex = examples::build(&snap, &p, None, 1).unwrap();
    assert!(ex.iter().all(|e| (e.label == 1.0)
        == (snap
            .events
            .iter()
            .any(|x| x.user == e.user && x.item == e.item && x.value >= 4.0))));
}

/// The history table of the tests: item i's row, 3 wide; item 5's is zero (no
/// direction, skipped).
fn history_rows(items: usize) -> Vec<f32> {
    (0..items * 3)
        .map(|k| {
            if k / 3 == 5 {
                0.0
            } else {
                ((k * 37 + 11) % 17) as f32 / 4.0 - 2.0
            }
        })
        .collect()
}

/// The history inputs in f64 by hand: the cosines of `item` with the latest `len` of
/// `latest` that have a row of non-zero norm.
fn naive_history(rows: &[f32], latest: &[u32], len: usize, item: u32) -> [f64; 3] {
    let row = |i: u32| -> Option<Vec<f64>> {
        let r = rows.get(i as usize * 3..i as usize * 3 + 3)?;
        let v: Vec<f64> = r.iter().map(|&x| f64::from(x)).collect();
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        (n > 0.0).then(|| v.iter().map(|x| x / n).collect())
    };
    let Some(c) = row(item) else {
        return [0.0; 3];
    };
    let cos: Vec<f64> = latest
        .iter()
        .filter_map(|&i| row(i))
        .take(len)
        .map(|r| r.iter().zip(&c).map(|(a, b)| a * b).sum())
        .collect();
    if cos.is_empty() {
        return [0.0; 3];
    }
    let max = cos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    [cos[0], max, cos.iter().sum::<f64>() / cos.len() as f64]
}

fn assert_history(got: [f32; 3], want: [f64; 3], what: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (f64::from(*g) - w).abs() < 1e-5,
            "{what}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn history_inputs_are_the_cosines_with_the_latest_items() {
    use crate::storage::tables::{view_for_test, RowSpace};
    let rows = history_rows(8);
    let view = view_for_test(RowSpace::Items, 3, &rows);
    // 5 has a zero row and 9 none: both skipped; len 3 keeps 3, 1, 0.
    let latest = [3, 5, 9, 1, 0, 2];
    let r = inputs::Recent::new(&view, latest, 3);
    for item in 0..8 {
        let want = naive_history(&rows, &latest, 3, item);
        assert_history(r.inputs(&view, item), want, &format!("item {item}"));
    }
    assert!(naive_history(&rows, &latest, 3, 4)[0] != 0.0);
    // A candidate without a row, or a user without items: zeros.
    assert_eq!(r.inputs(&view, 9), [0.0; 3]);
    assert_eq!(r.inputs(&view, 5), [0.0; 3]);
    assert_eq!(inputs::Recent::new(&view, [], 3).inputs(&view, 4), [0.0; 3]);
    assert_eq!(
        inputs::Recent::new(&view, [5, 9], 3).inputs(&view, 4),
        [0.0; 3]
    );
}

/// Every example's history inputs come from its user's items logged before its event:
/// per event for rating labels, per list's target event for next-item labels (the
/// negatives drawn for it too).
#[test]
fn examples_carry_the_history_before_their_event() {
    use crate::jobs::NextList;
    use crate::storage::tables::{view_for_test, RowSpace};
    let mut snap = snapshot(6, 8, 5);
    let rows = history_rows(8);
    let view = view_for_test(RowSpace::Items, 3, &rows);
    let before = |k: usize| -> Vec<u32> {
        let u = snap.events[k].user;
        snap.events[..k]
            .iter()
            .rev()
            .take_while(|e| e.user == u)
            .map(|e| e.item)
            .collect()
    };
    let p = params(&[("history", "t"), ("history_len", "2")]).unwrap();
    let ex = examples::build(&snap, &p, Some(&view), 1).unwrap();
    assert_eq!(ex.len(), snap.events.len());
    let mut non_zero = 0;
    for (k, e) in ex.iter().enumerate() {
        assert_eq!(e.at, k);
        assert_eq!(
            examples::items_before(&snap.events, k).collect::<Vec<_>>(),
            before(k)
        );
        let want = naive_history(&rows, &before(k), 2, e.item);
        non_zero += usize::from(want != [0.0; 3]);
        assert_history(e.history, want, &format!("event {k}"));
    }
    assert!(non_zero > ex.len() / 2, "{non_zero}");
    // Next-item labels from lists made before an event: the list's target event.
    let lists: Vec<NextList> = [3usize, 9, 14, 27]
        .iter()
        .map(|&at| NextList {
            user: snap.events[at].user,
            target: snap.events[at].item,
            at,
            list: (0..8u32)
                .map(|i| (i, 1.0 - f32::from(i as u8) / 8.0))
                .collect(),
        })
        .collect();
    snap.next_lists = lists.clone();
    let p = params(&[
        ("labels", "next"),
        ("candidates", "m:8"),
        ("last", "2"),
        ("history", "t"),
        ("history_len", "4"),
        ("negatives", "2"),
    ])
    .unwrap();
    let ex = examples::build(&snap, &p, Some(&view), 1).unwrap();
    let mut at = None;
    let mut checked = 0;
    for e in &ex {
        if e.label == 1.0 {
            at = lists.iter().find(|l| l.user == e.user).map(|l| l.at);
        }
        let k = at.expect("a positive first");
        assert_history(
            e.history,
            naive_history(&rows, &before(k), 4, e.item),
            "next",
        );
        checked += 1;
    }
    assert!(checked >= lists.len() * 2, "{checked}");
    // Without a history table: zeros.
    let ex = examples::build(&snap, &p, None, 1).unwrap();
    assert!(ex.iter().all(|e| e.history == [0.0; 3]));
}

#[test]
fn a_ranker_with_history_inputs_stores_them_and_format_1_still_reads() {
    use crate::storage::tables::{view_for_test, RowSpace};
    let mut snap = snapshot(20, 10, 5);
    snap.tables = vec![view_for_test(RowSpace::Items, 3, &history_rows(10))];
    let p = params(&[
        ("history", "t"),
        ("history_len", "7"),
        ("recent", "3"),
        ("epochs", "1"),
        ("layers", "8"),
    ])
    .unwrap();
    let job = WideDeep::with_params(p);
    let (nets, spec, _) = ctx_run(1, 3, |ctx| job.train(&snap, ctx)).unwrap();
    let net = &nets[0];
    let h = spec.history.clone().expect("a history input");
    assert_eq!((h.len, h.table.name.as_str(), h.table.dim), (7, "t", 3));
    assert_eq!(net.shape.n_dense, spec.dims().n_dense);
    // The recent items' field: the item ids' rows again, last.
    assert_eq!(spec.recent, 3);
    assert_eq!(net.shape.vocab.last(), Some(&net.shape.vocab[1]));
    assert_eq!(net.shape.n_fields(), spec.dims().n_fields);
    let v = stored::to_values(std::slice::from_ref(net), &spec);
    let (back, bspec) = stored::parse(&v, "t.ranker").unwrap();
    assert_eq!((&bspec.history, bspec.recent), (&spec.history, 3));
    assert_eq!(stored::to_values(&back, &bspec), v);
    let mut w = v.clone();
    w[15] = 1001.0;
    assert!(stored::parse(&w, "t").is_err(), "recent out of bounds");
    w[15] = 0.0;
    assert!(stored::parse(&w, "t").is_err(), "the fields do not fit");
    // A history length without the table, or the table's mark not last: damage.
    let mut w = v.clone();
    w[9] -= 1.0;
    assert!(stored::parse(&w, "t").is_err());
    // Format 1 (no history length in the header) of a network without history.
    let (net, spec, _) = train(1, &[("epochs", "1"), ("layers", "8")]);
    let v2 = stored::to_values(std::slice::from_ref(&net), &spec);
    assert_eq!(v2[14..16], [0.0, 0.0], "no history, no recent items");
    let mut v1 = v2.clone();
    v1.drain(14..16);
    v1[1] = 1.0;
    let (back, bspec) = stored::parse(&v1, "t.ranker").unwrap();
    assert_eq!(stored::to_values(&back, &bspec), v2);
    // An items table only.
    let mut snap = snapshot(20, 10, 5);
    snap.tables = vec![view_for_test(RowSpace::Users, 3, &history_rows(20))];
    let job = WideDeep::with_params(params(&[("history", "t")]).unwrap());
    match ctx_run(1, 3, |ctx| job.train(&snap, ctx)) {
        Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "history"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn an_ensemble_is_its_networks_mean_logit_and_stores_them_all() {
    let kv = [("parts", "wide,deep,fm"), ("epochs", "2"), ("layers", "8")];
    let (single, _, _) = train(1, &kv);
    let mut kv3 = kv.to_vec();
    kv3.push(("ensemble", "3"));
    let (nets, spec, r) = train_all(1, &kv3);
    assert_eq!(nets.len(), 3);
    assert_eq!((r.best_epochs.len(), r.member_valid_loss.len()), (3, 3));
    assert!((3..=6).contains(&r.epochs_run), "{r:?}");
    // The first network draws what a single one draws; the others their own seeds.
    assert_eq!(
        stored::to_values(std::slice::from_ref(&single), &spec),
        stored::to_values(&nets[..1], &spec)
    );
    assert_ne!(nets[0].emb, nets[1].emb);
    assert_ne!(nets[1].layers[0].w, nets[2].layers[0].w);
    // The model's logit is the networks' mean.
    let b = pairs_batch(&spec, [(0u32, 1u32), (3, 7), (59, 39), (10, 2)]);
    let mut acts = Acts::default();
    let mut sum = vec![0f64; b.n];
    for net in &nets {
        net.forward(&b, &mut acts);
        for (s, z) in sum.iter_mut().zip(&acts.logits) {
            *s += f64::from(*z) / 3.0;
        }
    }
    deep::forward_mean(&nets, &b, &mut acts);
    for (m, z) in sum.iter().zip(&acts.logits) {
        assert!((m - f64::from(*z)).abs() < 1e-5, "{m} vs {z}");
    }
    // The log-loss is convex in the logit: the mean logit's validation loss is at most
    // the networks' mean (Jensen).
    let alone = r.member_valid_loss.iter().sum::<f64>() / 3.0;
    let together = r.best_valid_loss.expect("a validation loss");
    assert!(together <= alone + 1e-9, "{together} > {alone}");
    // Stored: format 3 with the count; round trip; damage is an error.
    let v = stored::to_values(&nets, &spec);
    assert_eq!((v[1], v[16]), (3.0, 3.0));
    let (back, bspec) = stored::parse(&v, "t.ranker").unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(stored::to_values(&back, &bspec), v);
    for cut in [16, 17, v.len() / 3, v.len() / 2, v.len() - 1] {
        assert!(stored::parse(&v[..cut], "t").is_err(), "cut at {cut}");
    }
    for count in [0.0, 2.0, 4.0, 17.0, 0.5] {
        let mut w = v.clone();
        w[16] = count;
        assert!(stored::parse(&w, "t").is_err(), "{count} networks");
    }
    // One network keeps format 2.
    assert_eq!(stored::to_values(&nets[..1], &spec)[1], 2.0);
    for bad in ["0", "17", "x"] {
        match params(&[("ensemble", bad)]) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "ensemble"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}
