use std::sync::atomic::AtomicBool;

use ndarray::{Array1, Array2};

use super::hogwild::{Local, Rows, Shared};
use super::sigmoid::Sigmoid;
use super::trainer::{mean_update, ns_step, pair_update};
use super::*;
use crate::jobs::{JobContext, NoProgress};

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

/// Negative-sampling step against the dense gradient of
/// L = -log σ(o_t·h) - Σ_n log σ(-o_n·h), with fixed negatives.
#[test]
fn ns_step_matches_dense_gradient() {
    let dim = 4;
    let out0: Vec<f32> = (0..3 * dim)
        .map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.1)
        .collect();
    let h = vec![0.3f32, -0.2, 0.1, 0.4];
    let lr = 0.5;
    let (target, negs) = (0u32, vec![1u32, 2]);
    let o = Array2::from_shape_vec((3, dim), out0.clone()).unwrap();
    let hv = Array1::from(h.clone());
    let table = Sigmoid::new();
    let sig = |x: f32| table.get(x);
    let mut dh = Array1::<f32>::zeros(dim);
    let mut dout = Array2::<f32>::zeros((3, dim));
    for (j, label) in [(0usize, 1.0f32), (1, 0.0), (2, 0.0)] {
        let g = label - sig(o.row(j).dot(&hv));
        dh += &(o.row(j).to_owned() * g);
        dout.row_mut(j).assign(&(&hv * g));
    }
    // The plain table of one worker and the atomic accessors of a shared one.
    for atomic in [false, true] {
        let mut neu1e = vec![0.0; dim];
        let out1 = if atomic {
            let shared = Shared::from_vec(dim, out0.clone());
            ns_step(&mut &shared, &table, &h, target, &negs, lr, &mut neu1e);
            shared.into_vec()
        } else {
            let mut out1 = out0.clone();
            let mut local = Local::new(dim, &mut out1);
            ns_step(&mut local, &table, &h, target, &negs, lr, &mut neu1e);
            out1
        };
        for k in 0..dim {
            assert!((neu1e[k] - lr * dh[k]).abs() < 1e-6, "atomic {atomic}");
        }
        for j in 0..3 {
            for k in 0..dim {
                let want = out0[j * dim + k] + lr * dout[[j, k]];
                assert!((out1[j * dim + k] - want).abs() < 1e-6, "atomic {atomic}");
            }
        }
    }
}

/// One update of `rows` predicting `target` on tables of type `T` (`pair_update` for one
/// row, `mean_update` for several).
#[allow(clippy::too_many_arguments)]
fn update<T: Rows>(
    input: &mut T,
    output: &mut T,
    sig: &Sigmoid,
    rows: &[usize],
    target: usize,
    negs: &[usize],
    lr: f32,
    dim: usize,
) {
    let negs32: Vec<u32> = negs.iter().map(|&n| n as u32).collect();
    let (mut h, mut e) = (vec![0.0; dim], vec![0.0; dim]);
    let t = target as u32;
    if rows.len() == 1 {
        pair_update(input, output, sig, rows[0], t, &negs32, lr, &mut h, &mut e);
    } else {
        mean_update(input, output, sig, rows, t, &negs32, lr, &mut h, &mut e);
    }
}

/// Dense reference of one update: the mean of input `rows` predicts `target` (label 1)
/// against `negs` (label 0, distinct); returns the tables after one SGD step of size `lr`
/// on L = -log σ(o_t·h) - Σ_n log σ(-o_n·h), h = mean of the rows.
fn dense_update(
    input: &Array2<f32>,
    output: &Array2<f32>,
    rows: &[usize],
    target: usize,
    negs: &[usize],
    lr: f32,
    sig: &Sigmoid,
) -> (Array2<f32>, Array2<f32>) {
    let dim = input.ncols();
    let mut h = Array1::<f32>::zeros(dim);
    for &r in rows {
        h += &input.row(r);
    }
    h /= rows.len() as f32;
    let (mut inp, mut out) = (input.clone(), output.clone());
    let mut dh = Array1::<f32>::zeros(dim);
    for (j, label) in std::iter::once((target, 1.0f32)).chain(negs.iter().map(|&n| (n, 0.0))) {
        let g = label - sig.get(output.row(j).dot(&h));
        dh.scaled_add(g, &output.row(j));
        out.row_mut(j).scaled_add(lr * g, &h);
    }
    for &r in rows {
        inp.row_mut(r).scaled_add(lr / rows.len() as f32, &dh);
    }
    (inp, out)
}

fn tiny_tables(rows: usize, out_rows: usize, dim: usize) -> (Vec<f32>, Vec<f32>) {
    let f = |i: usize, k: usize| ((i * k + 3 * i + 1) % 9) as f32 * 0.07 - 0.3;
    let input = (0..rows * dim).map(|i| f(i, 5)).collect();
    let output = (0..out_rows * dim).map(|i| f(i, 7)).collect();
    (input, output)
}

fn assert_tables(got: &[f32], want: &Array2<f32>, what: &str) {
    for (k, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!((g - w).abs() < 1e-6, "{what}[{k}]: {g} vs {w}");
    }
}

/// CBOW and PV-DM (context words plus the document row, averaged) and PV-DBOW (the
/// document row alone predicts a word) against the dense gradient. Rows 0..4 are words,
/// 4..6 documents; the output table has a row per word.
#[test]
fn cbow_pv_dm_pv_dbow_match_dense_gradient() {
    let (dim, lr) = (5, 0.3);
    let sig = Sigmoid::new();
    let (in0, out0) = tiny_tables(6, 4, dim);
    let cases: [(&str, Vec<usize>, usize, Vec<usize>); 3] = [
        ("cbow", vec![0, 2, 3], 1, vec![0, 3]),
        ("pv-dm", vec![1, 3, 5], 2, vec![0, 1]),
        ("pv-dbow", vec![4], 3, vec![0, 1, 2]),
    ];
    for (name, rows, target, negs) in cases {
        let a_in = Array2::from_shape_vec((6, dim), in0.clone()).unwrap();
        let a_out = Array2::from_shape_vec((4, dim), out0.clone()).unwrap();
        let (want_in, want_out) = dense_update(&a_in, &a_out, &rows, target, &negs, lr, &sig);
        // The plain tables of one worker, then the atomic accessors of shared ones.
        let (mut got_in, mut got_out) = (in0.clone(), out0.clone());
        let (mut i, mut o) = (Local::new(dim, &mut got_in), Local::new(dim, &mut got_out));
        update(&mut i, &mut o, &sig, &rows, target, &negs, lr, dim);
        let (si, so) = (
            Shared::from_vec(dim, in0.clone()),
            Shared::from_vec(dim, out0.clone()),
        );
        update(&mut &si, &mut &so, &sig, &rows, target, &negs, lr, dim);
        for (kind, got_in, got_out) in [
            ("plain", got_in, got_out),
            ("atomic", si.into_vec(), so.into_vec()),
        ] {
            assert_tables(&got_in, &want_in, &format!("{name} {kind} input"));
            assert_tables(&got_out, &want_out, &format!("{name} {kind} output"));
            // Rows outside the step are untouched, and the step did move the ones inside.
            for r in 0..6 {
                let same = got_in[r * dim..(r + 1) * dim] == in0[r * dim..(r + 1) * dim];
                assert_eq!(same, !rows.contains(&r), "{name} {kind}: input row {r}");
            }
        }
    }
}

/// Two topics: tokens 0..50 co-occur, 50..100 co-occur.
fn topics(n_sent: usize) -> (Sentences, Vec<u64>) {
    let mut s = Sentences::new();
    let mut counts = vec![0u64; 100];
    let mut x = 12345u64;
    for i in 0..n_sent {
        let base = if i % 2 == 0 { 0 } else { 50 };
        let sent: Vec<u32> = (0..10)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                base + ((x >> 33) % 50) as u32
            })
            .collect();
        for &t in &sent {
            counts[t as usize] += 1;
        }
        s.push(&sent);
    }
    (s, counts)
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    d / (n(a) * n(b)).max(1e-12)
}

fn ctx_run<T>(threads: usize, seed: u64, f: impl FnOnce(&JobContext<'_>) -> T) -> T {
    let p = pool(threads);
    let c = AtomicBool::new(false);
    f(&JobContext::new(seed, &c, &NoProgress, &p))
}

#[test]
fn one_thread_is_deterministic() {
    let (s, counts) = topics(200);
    let cfg = SgnsConfig {
        dim: 16,
        epochs: 2,
        ..Default::default()
    };
    for arch in [Arch::SkipGram, Arch::Cbow] {
        let cfg = SgnsConfig {
            arch,
            ..cfg.clone()
        };
        let a = ctx_run(1, 7, |c| train(&s, &counts, &cfg, c).unwrap());
        let b = ctx_run(1, 7, |c| train(&s, &counts, &cfg, c).unwrap());
        assert_eq!(a.input, b.input);
        assert_eq!(a.output, b.output);
    }
}

/// Every task on a tiny corpus with one worker (plain tables) and with two (Hogwild
/// handles; the relaxed atomic accessors where AVX2 is not detected, as under Miri, which
/// then checks the racing workers too). Small enough for Miri (see docs/W2V.md).
#[test]
fn tiny_corpus_trains_on_both_paths() {
    let (s, counts) = topics(12);
    let tags: Vec<u32> = (0..s.len() as u32).map(|i| i % 3).collect();
    let cfg = SgnsConfig {
        dim: 6,
        epochs: 2,
        negative: 2,
        window: 2,
        sample: 0.0,
        ..Default::default()
    };
    for threads in [1, 2] {
        for arch in [Arch::SkipGram, Arch::Cbow] {
            let cfg = SgnsConfig {
                arch,
                ..cfg.clone()
            };
            let a = ctx_run(threads, 4, |c| train(&s, &counts, &cfg, c).unwrap());
            assert_eq!((a.input.len(), a.output.len()), (100 * 6, 100 * 6));
            assert!(a.input.iter().chain(&a.output).all(|x| x.is_finite()));
            assert!(
                a.output.iter().any(|&x| x != 0.0),
                "{arch:?}: output trained"
            );
            if threads == 1 {
                let b = ctx_run(threads, 4, |c| train(&s, &counts, &cfg, c).unwrap());
                assert_eq!((a.input, a.output), (b.input, b.output));
            }
        }
        for mode in [PvMode::Dm, PvMode::Dbow { train_words: true }] {
            let (emb, docs) = ctx_run(threads, 4, |c| {
                train_docs(&s, &tags, 3, &counts, &cfg, mode, c).unwrap()
            });
            assert_eq!(docs.len(), 3 * 6);
            assert!(docs.iter().chain(&emb.input).all(|x| x.is_finite()));
        }
    }
}

#[test]
fn topics_stay_apart() {
    let (s, counts) = topics(2000);
    for arch in [Arch::SkipGram, Arch::Cbow] {
        let cfg = SgnsConfig {
            arch,
            dim: 20,
            epochs: 5,
            sample: 0.0,
            alpha: 0.05,
            ..Default::default()
        };
        let e = ctx_run(2, 3, |c| train(&s, &counts, &cfg, c).unwrap());
        let mut ok = 0;
        for i in 0..100 {
            let best = (0..100)
                .filter(|&j| j != i)
                .max_by(|&a, &b| {
                    cos(e.input_row(i), e.input_row(a))
                        .total_cmp(&cos(e.input_row(i), e.input_row(b)))
                })
                .unwrap();
            ok += usize::from((best < 50) == (i < 50));
        }
        assert!(ok >= 98, "{arch:?}: {ok}/100 neighbours in topic");
    }
}

#[test]
fn paragraph_vectors_and_infer() {
    let (s, counts) = topics(400);
    let tags: Vec<u32> = (0..s.len() as u32).map(|i| i % 20).collect();
    for mode in [
        PvMode::Dm,
        PvMode::Dbow { train_words: false },
        PvMode::Dbow { train_words: true },
    ] {
        let cfg = SgnsConfig {
            dim: 16,
            epochs: 5,
            sample: 0.0,
            alpha: 0.05,
            ..Default::default()
        };
        let (emb, docs) = ctx_run(1, 5, |c| {
            train_docs(&s, &tags, 20, &counts, &cfg, mode, c).unwrap()
        });
        assert_eq!(docs.len(), 20 * 16);
        assert!(docs.iter().all(|x| x.is_finite()));
        let text: Vec<u32> = s.get(0).to_vec();
        let a = infer(&emb, &counts, &text, &cfg, mode, 50, 1).unwrap();
        let b = infer(&emb, &counts, &text, &cfg, mode, 50, 2).unwrap();
        let a2 = infer(&emb, &counts, &text, &cfg, mode, 50, 1).unwrap();
        assert_eq!(a, a2);
        assert!(cos(&a, &b) >= 0.95, "{mode:?}: cos {}", cos(&a, &b));
    }
}

#[test]
fn bad_input_gives_errors() {
    let (s, counts) = topics(10);
    let ok = SgnsConfig::default();
    let name = |r: crate::Result<Embeddings>| match r {
        Err(crate::Error::InvalidParameter { name, .. }) => name,
        other => panic!("expected a parameter error, got {:?}", other.map(|_| ())),
    };
    for (cfg, want) in [
        (
            SgnsConfig {
                dim: 0,
                ..ok.clone()
            },
            "dim",
        ),
        (
            SgnsConfig {
                window: 0,
                ..ok.clone()
            },
            "window",
        ),
        (
            SgnsConfig {
                negative: 0,
                ..ok.clone()
            },
            "negative",
        ),
        (
            SgnsConfig {
                epochs: 0,
                ..ok.clone()
            },
            "epochs",
        ),
        (
            SgnsConfig {
                alpha: f32::NAN,
                ..ok.clone()
            },
            "alpha",
        ),
        (
            SgnsConfig {
                alpha: -1.0,
                ..ok.clone()
            },
            "alpha",
        ),
        (
            SgnsConfig {
                dim: 1 << 30,
                ..ok.clone()
            },
            "dim",
        ),
    ] {
        assert_eq!(ctx_run(1, 1, |c| name(train(&s, &counts, &cfg, c))), want);
    }
    let empty = Sentences::new();
    assert_eq!(
        ctx_run(1, 1, |c| name(train(&empty, &counts, &ok, c))),
        "sentences"
    );
    let r = ctx_run(1, 1, |c| {
        train_docs(&s, &[0], 1, &counts, &ok, PvMode::Dm, c).map(|x| x.0)
    });
    assert_eq!(name(r), "tags");
    let tags = vec![5u32; s.len()];
    let r = ctx_run(1, 1, |c| {
        train_docs(&s, &tags, 2, &counts, &ok, PvMode::Dm, c).map(|x| x.0)
    });
    assert_eq!(name(r), "tags");
}

#[test]
fn prune_keeps_frequent() {
    let (map, kept) = prune_vocab(&[5, 1, 3], 3);
    assert_eq!(map, vec![Some(0), None, Some(1)]);
    assert_eq!(kept, vec![5, 3]);
}
