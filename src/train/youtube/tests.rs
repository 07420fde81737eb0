//! The youtube job's own tests: parameters, examples without leakage, gradients of
//! the whole network against f64 finite differences (full and sampled softmax, and
//! the two against each other), determinism on 1 and 2 threads, the stored network.

// why: the f64 reference is written index by index, as the formulas read, and the
// small net's rows are a literal table.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

use std::sync::atomic::AtomicBool;

use super::examples::{AgeScale, Examples};
use super::net::{Grads, Inputs, Loss, Net, Shape};
use super::*;
use crate::event::{Event, EventKind, SearchEvent};
use crate::features::{Encoded, Encoder, Schema};
use crate::jobs::{JobContext, NoProgress, Snapshot};
use crate::train::nn::gradcheck::{assert_close, numeric_gradient};
use crate::train::nn::optim::RowGrad;
use crate::train::nn::sampled_softmax::{Proposal, SampledSoftmax};

fn ev(user: u32, item: u32, ts: i64, seq: u64) -> Event {
    Event {
        user,
        item,
        kind: EventKind::Interaction,
        value: 1.0,
        timestamp: ts,
        group: u32::MAX,
        seq,
    }
}

/// `users` users of `per_user` events each; user u's items follow u's taste group.
fn snapshot(users: u32, items: u32, per_user: u32) -> Snapshot {
    let mut events = Vec::new();
    for u in 0..users {
        for t in 0..per_user {
            let item = (u % 4 + 4 * ((u * 7 + t * 3) % (items / 4))) % items;
            let seq = events.len() as u64;
            events.push(ev(u, item, i64::from(t) * 10 + i64::from(u), seq));
        }
    }
    Snapshot::of_events(users as usize, items as usize, events)
}

fn params(kv: &[(&str, &str)]) -> Result<YtParams> {
    let mut p = Params::new();
    for (k, v) in kv {
        p.insert(k, v);
    }
    let y = YtParams::from_params(&p)?;
    p.finish(MODEL)?;
    Ok(y)
}

#[test]
fn every_bad_parameter_is_named() {
    for (k, v) in [
        ("dim", "0"),
        ("feature_dim", "0"),
        ("layers", "64,0"),
        ("layers", "a"),
        ("layers", "1,1,1,1,1,1,1,1,1"),
        ("history", "0"),
        ("skip_last", "100001"),
        ("negatives", "0"),
        ("epochs", "0"),
        ("batch", "0"),
        ("learning_rate", "0"),
        ("learning_rate", "nan"),
        ("reg", "-1"),
        ("softmax", "partial"),
        ("proposal", "zipf"),
        ("serve_age", "old"),
        ("example_age", "maybe"),
        ("recency", "2"),
        ("last", "11"),
        ("nonsense", "1"),
    ] {
        match params(&[(k, v)]) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, k, "{k}={v}"),
            other => panic!("{k}={v}: {other:?}"),
        }
    }
    assert_eq!(params(&[]).unwrap(), YtParams::default());
}

#[test]
fn auto_softmax_is_full_up_to_eight_times_the_negatives() {
    use super::{Softmax, SoftmaxChoice};
    let p = params(&[]).unwrap();
    assert_eq!(p.softmax, SoftmaxChoice::Auto);
    assert_eq!(p.softmax.resolve(1_682, 512), Softmax::Full);
    assert_eq!(p.softmax.resolve(4_096, 512), Softmax::Full);
    assert_eq!(p.softmax.resolve(4_097, 512), Softmax::Sampled);
    assert_eq!(p.softmax.resolve(2_000, 128), Softmax::Sampled);
    let sampled = params(&[("softmax", "sampled")]).unwrap();
    assert_eq!(sampled.softmax.resolve(10, 512), Softmax::Sampled);
    let full = params(&[("softmax", "full")]).unwrap();
    assert_eq!(full.softmax.resolve(1 << 20, 512), Softmax::Full);
}

#[test]
fn examples_see_only_the_past() {
    let mut snap = snapshot(3, 20, 6);
    snap.searches = vec![SearchEvent {
        user: 1,
        tokens: vec![0, 1],
        timestamp: 31,
        seq: 1000,
    }];
    snap.n_tokens = 2;
    let enc = Encoder::fit(&Schema::default(), &[]).unwrap();
    let p = params(&[("history", "3")]).unwrap();
    let ex = Examples::build(&snap, &enc, &p).unwrap();
    assert_eq!(ex.len(), 18);
    let with_search = (0..ex.len())
        .filter(|&k| {
            let (_, _, user, when) = ex.get(k, 3);
            !ex.searches.before(user, when, 3).is_empty()
        })
        .count();
    // User 1's events at 41 and 51 come after the search at 31.
    assert_eq!(with_search, 2);
    for k in 0..ex.len() {
        let (label, hist, user, when) = ex.get(k, 3);
        let [t, start] = ex.pairs[k];
        assert_eq!(label, snap.events[t as usize].item);
        assert_eq!(user, snap.events[t as usize].user);
        assert!(hist.len() <= 3 && hist.len() == (t - start).min(3) as usize);
        assert_eq!(hist, &ex.items[t as usize - hist.len()..t as usize]);
        for s in ex.searches.before(user, when, 3) {
            assert!(user == 1 && when > (31, 1000), "{s:?}");
        }
        assert!(ex.age(k) >= 0.0 && ex.age(k) <= 1.0);
    }
    let p = params(&[("max_examples", "2")]).unwrap();
    let ex = Examples::build(&snap, &enc, &p).unwrap();
    assert_eq!(ex.len(), 6);
    // The latest positions are kept.
    assert!(ex.pairs.iter().all(|[t, s]| t - s >= 4));
    // Each user's last 2 events are left out: positions 0..4 of 6 remain.
    let p = params(&[("skip_last", "2")]).unwrap();
    let ex = Examples::build(&snap, &enc, &p).unwrap();
    assert_eq!(ex.len(), 12);
    assert!(ex.pairs.iter().all(|[t, s]| t - s < 4));
    // Both: the latest 2 of the 4 that remain.
    let p = params(&[("skip_last", "2"), ("max_examples", "2")]).unwrap();
    let ex = Examples::build(&snap, &enc, &p).unwrap();
    assert_eq!(ex.len(), 6);
    assert!(ex.pairs.iter().all(|[t, s]| (2..4).contains(&(t - s))));
}

/// A small network with every input kind: 2 feature slots, 2 numeric features, age,
/// searches, recency weights (or not).
fn small_net(recency: bool, seed: u64) -> (Net, Inputs, Vec<u32>) {
    let p = YtParams {
        dim: 3,
        feature_dim: 2,
        layers: vec![5, 4],
        history: 4,
        last: 2,
        recency,
        ..YtParams::default()
    };
    let enc = Encoder::fit(&Schema::default(), &[]).unwrap();
    let mut shape = Shape::new(&p, 9, 5, &enc);
    shape.slot_vocab = vec![3, 4];
    shape.n_numeric = 2;
    let mut net = Net::new(
        shape,
        enc,
        AgeScale {
            end: 0.0,
            span: 1.0,
        },
        seed,
    );
    for (i, w) in net.tower.pos_w.iter_mut().enumerate() {
        *w = 0.3 * i as f32 - 0.4;
    }
    for (i, b) in net.out_b.iter_mut().enumerate() {
        *b = (i as f32 * 0.7).sin() * 0.5;
    }
    // Embeddings larger than their init, so the inputs move the loss.
    net.item_in.iter_mut().for_each(|v| *v *= 8.0);
    net.tower.tokens.iter_mut().for_each(|v| *v *= 8.0);
    net.tower
        .slots
        .iter_mut()
        .for_each(|s| s.iter_mut().for_each(|v| *v *= 8.0));
    let mut inp = Inputs::default();
    let rows: [(&[u32], &[&[u32]], Vec<Vec<u32>>, f32); 4] = [
        (
            &[1, 2, 3, 2, 8],
            &[&[0, 1], &[4]],
            vec![vec![1], vec![0, 3]],
            0.3,
        ),
        (&[], &[], vec![vec![2], vec![1]], 0.0),
        (&[5], &[&[2]], vec![vec![0], vec![2, 3]], 0.9),
        (&[7, 6], &[], vec![vec![1], vec![1]], 0.5),
    ];
    for (r, (hist, searches, ids, age)) in rows.iter().enumerate() {
        let f = Encoded {
            ids: ids.clone(),
            numeric: vec![0.5 - r as f32 * 0.3, 1.0],
        };
        net.tower.push(&mut inp, hist, searches, &f, *age);
    }
    (net, inp, vec![4, 0, 8, 6])
}

fn rows_to_dense(g: &RowGrad, len: usize) -> Vec<f32> {
    let mut out = vec![0f32; len];
    for (r, v) in g.iter() {
        let at = r as usize * g.dim();
        out[at..at + g.dim()]
            .iter_mut()
            .zip(v)
            .for_each(|(o, v)| *o += v);
    }
    out
}

/// Forward, loss and backward of `net` on `inp`; the summed loss and the gradients.
fn run(
    net: &Net,
    inp: &Inputs,
    labels: &[u32],
    sampled: Option<(&Proposal, &[u32])>,
) -> (f64, Grads) {
    let d = net.tower.shape.dim;
    let mut acts = vec![Vec::new()];
    net.tower.input(
        inp,
        |i, a, out| {
            let e = &net.item_in[i as usize * d..(i as usize + 1) * d];
            out.iter_mut().zip(e).for_each(|(x, e)| *x += a * e);
        },
        &mut acts[0],
    );
    net.tower.forward(inp.rows, &mut acts);
    let mut g = Grads::new(net);
    let (mut logits, mut row_loss, mut sm) = (Vec::new(), Vec::new(), SampledSoftmax::default());
    let loss = match sampled {
        None => Loss::Full {
            logits: &mut logits,
            row_loss: &mut row_loss,
        },
        Some((q, negs)) => Loss::Sampled {
            softmax: &mut sm,
            proposal: q,
            negatives: negs,
        },
    };
    let u = acts.last().unwrap().clone();
    let total = net.loss(&u, labels, loss, &mut g).unwrap();
    net.backward(inp, &acts, &mut Vec::new(), &mut g);
    (total, g)
}

/// Every parameter of the network in f64, for the reference.
#[derive(Clone)]
struct P64 {
    item_in: Vec<f64>,
    tokens: Vec<f64>,
    slots: Vec<Vec<f64>>,
    pos_w: Vec<f64>,
    layers: Vec<(Vec<f64>, Vec<f64>)>,
    out: Vec<f64>,
    out_b: Vec<f64>,
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

impl P64 {
    fn of(net: &Net) -> P64 {
        P64 {
            item_in: to64(&net.item_in),
            tokens: to64(&net.tower.tokens),
            slots: net.tower.slots.iter().map(|s| to64(s)).collect(),
            pos_w: to64(&net.tower.pos_w),
            layers: net
                .tower
                .layers
                .iter()
                .map(|l| (to64(&l.w), to64(&l.b)))
                .collect(),
            out: to64(&net.out),
            out_b: to64(&net.out_b),
        }
    }
}

/// The mean loss in f64, written per example from the definitions: the history's
/// weighted mean (softmax of the recency weights over its positions, or 1/n), the
/// token mean, each slot's mean, the dense columns, the ReLU layers, then the softmax
/// over all items (`sampled`: over the true item and the negatives, log Q subtracted,
/// accidental hits left out).
fn reference(
    net: &Net,
    inp: &Inputs,
    labels: &[u32],
    p: &P64,
    sampled: Option<(&Proposal, &[u32])>,
) -> f64 {
    let s = &net.tower.shape;
    let (d, f, n, dd) = (s.dim, s.feature_dim, s.n_items, s.out_dim());
    let mut total = 0.0;
    for r in 0..inp.rows {
        let mut x = vec![0f64; s.input_width()];
        let (items, _) = inp.hist.row(r);
        let pos = &inp.hist_pos[inp.hist.offsets[r]..inp.hist.offsets[r + 1]];
        let w: Vec<f64> = if s.recency {
            let e: Vec<f64> = pos.iter().map(|&q| p.pos_w[q as usize].exp()).collect();
            let z: f64 = e.iter().sum();
            e.iter().map(|v| v / z).collect()
        } else {
            vec![1.0 / items.len().max(1) as f64; items.len()]
        };
        for (&i, a) in items.iter().zip(&w) {
            for k in 0..d {
                x[k] += a * p.item_in[i as usize * d + k];
            }
        }
        // The last items, most recent first, each on its own.
        for (j, &i) in items.iter().rev().take(s.last).enumerate() {
            for k in 0..d {
                x[d * (1 + j) + k] += p.item_in[i as usize * d + k];
            }
        }
        let (toks, _) = inp.search.row(r);
        for &t in toks {
            for k in 0..d {
                x[s.search_at() + k] += p.tokens[t as usize * d + k] / toks.len() as f64;
            }
        }
        for (j, rows) in inp.slots.iter().enumerate() {
            let (ids, _) = rows.row(r);
            for &id in ids {
                for k in 0..f {
                    x[s.search_at() + s.search_width() + j * f + k] +=
                        p.slots[j][id as usize * f + k] / ids.len() as f64;
                }
            }
        }
        let dw = s.dense_width();
        let wd = s.input_width();
        for k in 0..dw {
            x[wd - dw + k] = f64::from(inp.dense[r * dw + k]);
        }
        for (l, layer) in net.tower.layers.iter().enumerate() {
            let (w, b) = &p.layers[l];
            x = (0..layer.n_out)
                .map(|o| {
                    let z: f64 = b[o]
                        + (0..layer.n_in)
                            .map(|i| x[i] * w[i * layer.n_out + o])
                            .sum::<f64>();
                    z.max(0.0)
                })
                .collect();
        }
        let logit = |j: usize| p.out_b[j] + (0..dd).map(|k| x[k] * p.out[j * dd + k]).sum::<f64>();
        let y = labels[r] as usize;
        let (cands, lq): (Vec<usize>, Box<dyn Fn(usize) -> f64>) = match sampled {
            None => ((0..n).collect(), Box::new(|_| 0.0)),
            Some((q, negs)) => {
                let mut c = vec![y];
                c.extend(negs.iter().map(|&j| j as usize).filter(|&j| j != y));
                (c, Box::new(move |j| f64::from(q.log_q(j as u32))))
            }
        };
        let zs: Vec<f64> = cands.iter().map(|&j| logit(j) - lq(j)).collect();
        let m = zs.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let lse = m + zs.iter().map(|z| (z - m).exp()).sum::<f64>().ln();
        total += lse - (logit(y) - lq(y));
    }
    total / inp.rows as f64
}

/// Check every gradient of `net` against central differences of the reference.
fn check_gradients(
    net: &Net,
    inp: &Inputs,
    labels: &[u32],
    sampled: Option<(&Proposal, &[u32])>,
    what: &str,
) {
    let (total, g) = run(net, inp, labels, sampled);
    let p = P64::of(net);
    let want = reference(net, inp, labels, &p, sampled);
    let got = total / inp.rows as f64;
    assert!(
        (got - want).abs() < 1e-4 * want.abs().max(1.0),
        "{what} loss {got} vs {want}"
    );
    let h = 1e-5;
    let tol = 2e-3;
    let num = |set: &dyn Fn(&mut P64, &[f64]), x: &[f64]| {
        numeric_gradient(x, h, |v| {
            let mut q = p.clone();
            set(&mut q, v);
            reference(net, inp, labels, &q, sampled)
        })
    };
    let s = &net.tower.shape;
    assert_close(
        &format!("{what} item_in"),
        &rows_to_dense(&g.item_in, net.item_in.len()),
        &num(&|q, v| q.item_in = v.to_vec(), &p.item_in),
        tol,
    );
    assert_close(
        &format!("{what} tokens"),
        &rows_to_dense(&g.tokens, net.tower.tokens.len()),
        &num(&|q, v| q.tokens = v.to_vec(), &p.tokens),
        tol,
    );
    for j in 0..s.slot_vocab.len() {
        assert_close(
            &format!("{what} slot {j}"),
            &rows_to_dense(&g.slots[j], net.tower.slots[j].len()),
            &num(&|q, v| q.slots[j] = v.to_vec(), &p.slots[j]),
            tol,
        );
    }
    if s.recency {
        assert_close(
            &format!("{what} recency"),
            &g.pos_w,
            &num(&|q, v| q.pos_w = v.to_vec(), &p.pos_w),
            tol,
        );
    }
    for l in 0..net.tower.layers.len() {
        assert_close(
            &format!("{what} layer {l} W"),
            &g.layers[l].0,
            &num(&|q, v| q.layers[l].0 = v.to_vec(), &p.layers[l].0),
            tol,
        );
        assert_close(
            &format!("{what} layer {l} b"),
            &g.layers[l].1,
            &num(&|q, v| q.layers[l].1 = v.to_vec(), &p.layers[l].1),
            tol,
        );
    }
    let (out, out_b) = match sampled {
        None => (g.out.clone(), g.out_b.clone()),
        Some(_) => (
            rows_to_dense(&g.out_rows, net.out.len()),
            rows_to_dense(&g.out_b_rows, net.out_b.len()),
        ),
    };
    assert_close(
        &format!("{what} out"),
        &out,
        &num(&|q, v| q.out = v.to_vec(), &p.out),
        tol,
    );
    assert_close(
        &format!("{what} out_b"),
        &out_b,
        &num(&|q, v| q.out_b = v.to_vec(), &p.out_b),
        tol,
    );
}

#[test]
fn full_softmax_gradients_match_finite_differences() {
    for recency in [false, true] {
        let (net, inp, labels) = small_net(recency, 3);
        check_gradients(
            &net,
            &inp,
            &labels,
            None,
            &format!("full, recency {recency}"),
        );
    }
}

#[test]
fn sampled_softmax_gradients_match_finite_differences() {
    let (net, inp, labels) = small_net(true, 4);
    let weights: Vec<f64> = (0..9).map(|i| 1.0 + f64::from(i)).collect();
    let q = Proposal::from_weights(&weights).unwrap();
    // Item 8 twice, item 4 (a label) among them: an accidental hit.
    let negs = [8, 2, 4, 8, 1];
    check_gradients(&net, &inp, &labels, Some((&q, &negs)), "sampled");
}

#[test]
fn sampled_softmax_over_every_item_is_the_full_softmax() {
    let (net, inp, labels) = small_net(false, 5);
    let q = Proposal::uniform(9).unwrap();
    let all: Vec<u32> = (0..9).collect();
    let (full, gf) = run(&net, &inp, &labels, None);
    let (sampled, gs) = run(&net, &inp, &labels, Some((&q, &all)));
    assert!((full - sampled).abs() < 1e-4, "{full} vs {sampled}");
    let close = |a: &[f32], b: &[f32], what: &str| {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{what}: {x} vs {y}");
        }
    };
    close(&gf.du, &gs.du, "du");
    close(&gf.out, &rows_to_dense(&gs.out_rows, net.out.len()), "out");
    close(
        &gf.out_b,
        &rows_to_dense(&gs.out_b_rows, net.out_b.len()),
        "out_b",
    );
    close(&gf.layers[0].0, &gs.layers[0].0, "first layer");
}

fn train(
    snap: &Snapshot,
    kv: &[(&str, &str)],
    threads: usize,
    seed: u64,
) -> Result<Vec<TableOutput>> {
    let mut p = Params::new();
    for (k, v) in kv {
        p.insert(k, v);
    }
    let job = Youtube::from_params(&p)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let cancel = AtomicBool::new(false);
    let ctx = JobContext::new(seed, &cancel, &NoProgress, &pool);
    job.run(snap, &ctx)
}

#[test]
fn one_and_two_threads_train_the_same_bits() {
    // Large enough that the products are cut into several blocks.
    let snap = snapshot(60, 300, 12);
    for softmax in ["full", "sampled"] {
        let kv = [
            ("epochs", "2"),
            ("batch", "200"),
            ("layers", "160,32"),
            ("softmax", softmax),
            ("negatives", "50"),
            ("recency", "on"),
        ];
        let one = train(&snap, &kv, 1, 9).unwrap();
        let two = train(&snap, &kv, 2, 9).unwrap();
        for (a, b) in one.iter().zip(&two) {
            assert!(a.rows == b.rows, "{softmax}: {} differs", a.name);
        }
        let other = train(&snap, &kv, 1, 10).unwrap();
        assert!(one[0].rows != other[0].rows, "another seed, another model");
    }
}

#[test]
fn cancel_stops_training() {
    // Learning the tastes is tested end to end (tests/youtube.rs).
    let snap = snapshot(80, 40, 20);
    let mut p = Params::new();
    p.insert("epochs", "5");
    let job = Youtube::from_params(&p).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let cancel = AtomicBool::new(true);
    let ctx = JobContext::new(1, &cancel, &NoProgress, &pool);
    assert!(matches!(job.run(&snap, &ctx), Err(Error::Cancelled)));
}

#[test]
fn too_little_memory_is_refused_naming_a_parameter() {
    let snap = snapshot(10, 40, 5);
    let job = Youtube::from_params(&Params::new()).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let cancel = AtomicBool::new(false);
    let ctx = JobContext::new(1, &cancel, &NoProgress, &pool).with_memory_limit(Some(100_000));
    assert!(matches!(
        job.run(&snap, &ctx),
        Err(Error::OutOfMemory { .. })
    ));
    let empty = Snapshot::of_events(0, 0, Vec::new());
    let ctx = JobContext::new(1, &cancel, &NoProgress, &pool);
    assert!(matches!(job.run(&empty, &ctx), Err(Error::NoEvents { .. })));
}

#[test]
fn a_damaged_tower_is_corrupted_never_a_panic() {
    let snap = snapshot(20, 16, 6);
    let t = train(
        &snap,
        &[
            ("epochs", "1"),
            ("layers", "6,3"),
            ("dim", "4"),
            ("recency", "on"),
        ],
        1,
        2,
    )
    .unwrap();
    let (inputs, items) = (("y.inputs", 16, t[1].dim), ("y.items", 16, t[0].dim));
    let v = &t[2].rows;
    let ok = stored::parse(v, "y.tower", inputs, items).unwrap();
    assert_eq!(ok.shape.layers, vec![6, 3]);
    assert!(stored::fuzz_parse(v));
    let corrupted = |v: &[f32], inputs, items| {
        matches!(
            stored::parse(v, "y.tower", inputs, items),
            Err(Error::Corrupted { .. })
        )
    };
    for n in 0..v.len() {
        assert!(corrupted(&v[..n], inputs, items), "truncated to {n}");
    }
    let mut longer = v.clone();
    longer.push(0.0);
    assert!(corrupted(&longer, inputs, items));
    for at in 0..30.min(v.len()) {
        for bad in [-1.0, 0.5, 1e9, f32::NAN, 3.0, 0.0] {
            let mut w = v.clone();
            w[at] = bad;
            let _ = stored::parse(&w, "y.tower", inputs, items);
            let _ = stored::fuzz_parse(&w);
        }
    }
    assert!(corrupted(v, ("y.inputs", 17, 4), items));
    assert!(corrupted(v, inputs, ("y.items", 16, 5)));
}
