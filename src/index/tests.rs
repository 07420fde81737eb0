//! The index against exact search, through the public database API.

use std::collections::HashSet;

use super::VectorSearch;
use crate::storage::backend::WriteBatch;
use crate::storage::keys;
use crate::testkit::clustered_vectors;
use crate::{Db, Error, IndexOptions, Metric, RowSpace, SearchOptions};

const N: usize = 20_000;
const DIM: usize = 32;
const Q: usize = 100;

/// A database holding `N` clustered rows as table `t`, and `Q` queries.
fn setup(db: &Db, scale_norms: bool) -> Vec<Vec<f32>> {
    let mut all = clustered_vectors(N + Q, DIM, 5);
    if scale_norms {
        // Unnormalised rows (like MF factors): norms between 0.3 and 3.
        for (i, row) in all.chunks_exact_mut(DIM).enumerate() {
            let f = 0.3 + 2.7 * (((i * 7919) % 1000) as f32 / 1000.0);
            row.iter_mut().for_each(|x| *x *= f);
        }
    }
    let queries = all.split_off(N * DIM);
    db.put_table("t", RowSpace::Other, DIM, &all, vec![])
        .unwrap();
    queries.chunks_exact(DIM).map(<[f32]>::to_vec).collect()
}

fn recall(db: &Db, queries: &[Vec<f32>], metric: Metric, allow: &dyn Fn(u32) -> bool) -> f64 {
    let s = db.searcher("t").unwrap();
    let opts = SearchOptions {
        k: 10,
        metric,
        ..SearchOptions::default()
    };
    let exact = SearchOptions {
        exact: true,
        ..opts.clone()
    };
    let (mut hit, mut want) = (0, 0);
    for q in queries {
        let truth: HashSet<u32> = s
            .search_filtered(q, &exact, allow)
            .unwrap()
            .iter()
            .map(|h| h.0)
            .collect();
        let got = s.search_filtered(q, &opts, allow).unwrap();
        assert!(
            got.iter().all(|h| allow(h.0)),
            "a result the filter rejects"
        );
        assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "not sorted");
        hit += got.iter().filter(|h| truth.contains(&h.0)).count();
        want += truth.len();
    }
    let r = hit as f64 / want as f64;
    eprintln!("recall@10 {r:.4}");
    r
}

#[test]
fn cosine_recall_against_brute_force() {
    let db = Db::temporary().unwrap();
    let qs = setup(&db, false);
    let info = db.build_index("t", &IndexOptions::default()).unwrap();
    assert_eq!(info.lists, 566); // 4·√20000
    assert!(info.recall >= 0.95, "{info:?}");
    let r = recall(&db, &qs, Metric::Cosine, &|_| true);
    assert!(r >= 0.9, "recall {r} with {info:?}");
}

#[test]
fn filters_inside_the_scan_and_selective_fallback() {
    let db = Db::temporary().unwrap();
    let qs = setup(&db, false);
    db.build_index("t", &IndexOptions::default()).unwrap();
    // Mild filter (20 %): answered by the index with a wider probe.
    let r = recall(&db, &qs, Metric::Cosine, &|r| r % 5 == 0);
    assert!(r >= 0.9, "recall {r} under a 20 % filter");
    // Selective filter (0.5 %): exact over the allowed rows, so equal to brute force.
    let s = db.searcher("t").unwrap();
    let allow = |r: u32| r % 200 == 3;
    let opts = SearchOptions::default();
    let exact = SearchOptions {
        exact: true,
        ..SearchOptions::default()
    };
    for q in &qs[..20] {
        let got = s.search_filtered(q, &opts, &allow).unwrap();
        assert_eq!(got, s.search_filtered(q, &exact, &allow).unwrap());
        assert_eq!(got.len(), 10);
    }
    // Nothing allowed: nothing found.
    assert!(s
        .search_filtered(&qs[0], &opts, &|_| false)
        .unwrap()
        .is_empty());
}

#[test]
fn mips_recall_on_unnormalised_rows() {
    let db = Db::temporary().unwrap();
    let qs = setup(&db, true);
    let opts = IndexOptions {
        metric: Metric::Dot,
        ..IndexOptions::default()
    };
    let info = db.build_index("t", &opts).unwrap();
    let r = recall(&db, &qs, Metric::Dot, &|_| true);
    assert!(r >= 0.9, "recall {r} with {info:?}");
    // A cosine query on a dot index is answered exactly (the index is not used).
    let s = db.searcher("t").unwrap();
    let o = SearchOptions {
        metric: Metric::Cosine,
        ..SearchOptions::default()
    };
    let e = SearchOptions {
        exact: true,
        ..o.clone()
    };
    assert_eq!(s.search(&qs[0], &o).unwrap(), s.search(&qs[0], &e).unwrap());
}

#[test]
fn reopen_gives_the_same_answers_and_a_flipped_byte_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (qs, before, info) = {
        let db = Db::open(&path).unwrap();
        let qs = setup(&db, false);
        let info = db.build_index("t", &IndexOptions::default()).unwrap();
        let s = db.searcher("t").unwrap();
        let before: Vec<_> = qs
            .iter()
            .map(|q| s.search(q, &SearchOptions::default()).unwrap())
            .collect();
        (qs, before, info)
    };
    let version = {
        let db = Db::open(&path).unwrap();
        let got = db.index_info("t").unwrap().unwrap();
        assert_eq!(
            (got.nprobe, got.lists, got.rows),
            (info.nprobe, info.lists, info.rows)
        );
        let s = db.searcher("t").unwrap();
        assert_eq!(s.index_metric(), Some(Metric::Cosine));
        for (q, want) in qs.iter().zip(&before) {
            assert_eq!(&s.search(q, &SearchOptions::default()).unwrap(), want);
        }
        db.check().unwrap();
        // Flip one byte in the middle of a posting block.
        let key = keys::index_block("t", got.version, 1);
        let mut v = db.backend().get(&key).unwrap().unwrap().to_vec();
        let mid = v.len() / 2;
        v[mid] ^= 0x10;
        let mut batch = WriteBatch::default();
        batch.put(key, v);
        db.backend().apply(batch).unwrap();
        db.flush().unwrap();
        got.version
    };
    let db = Db::open(&path).unwrap();
    assert!(matches!(db.searcher("t"), Err(Error::Corrupted { .. })));
    assert!(matches!(db.check(), Err(Error::Corrupted { .. })));
    // A rebuild replaces the damaged index.
    db.build_index("t", &IndexOptions::default()).unwrap();
    assert_eq!(db.searcher("t").unwrap().view().version(), version);
}

#[test]
fn the_index_lives_and_dies_with_its_version() {
    let db = Db::temporary().unwrap();
    let rows = clustered_vectors(3000, 8, 1);
    let v1 = db
        .put_table("t", RowSpace::Other, 8, &rows, vec![])
        .unwrap();
    db.build_index("t", &IndexOptions::default()).unwrap();
    assert!(!db
        .backend()
        .keys_with_prefix(&keys::index_prefix("t", v1))
        .unwrap()
        .is_empty());
    // A new version has no index until one is built; queries fall back to exact.
    let v2 = db
        .put_table("t", RowSpace::Other, 8, &rows, vec![])
        .unwrap();
    assert!(db.index_info("t").unwrap().is_none());
    assert_eq!(db.searcher("t").unwrap().index_metric(), None);
    // keep_versions = 2: a third version collects v1 and its index.
    db.put_table("t", RowSpace::Other, 8, &rows, vec![])
        .unwrap();
    assert!(db
        .backend()
        .keys_with_prefix(&keys::index_prefix("t", v1))
        .unwrap()
        .is_empty());
    assert!(v2 > v1);
    assert_eq!(
        db.job(db.jobs().unwrap().last().unwrap().id).unwrap().model,
        "import"
    );
    db.drop_table("t").unwrap();
    assert!(db.backend().keys_with_prefix(b"X").unwrap().is_empty());
}

/// Table `t`: 5000 clustered rows of 16 dims.
fn small_clustered_db() -> Db {
    let db = Db::temporary().unwrap();
    db.put_table(
        "t",
        RowSpace::Other,
        16,
        &clustered_vectors(5000, 16, 2),
        vec![],
    )
    .unwrap();
    db
}

/// More lists than indexable rows (all rows for dot, the non-zero ones for cosine) is a
/// parameter error before the build is recorded, in the foreground and the background.
#[test]
fn too_many_lists_is_refused_before_a_job_exists() {
    let db = Db::temporary().unwrap();
    let mut rows = clustered_vectors(50, 4, 2);
    rows[..8].fill(0.0);
    db.put_table("t", RowSpace::Other, 4, &rows, vec![])
        .unwrap();
    let jobs = db.jobs().unwrap().len();
    let opts = |metric, lists| IndexOptions {
        metric,
        lists: Some(lists),
        ..IndexOptions::default()
    };
    for (metric, lists) in [(Metric::Dot, 51), (Metric::Cosine, 49)] {
        let o = opts(metric, lists);
        for r in [
            db.build_index("t", &o).map(|_| ()),
            db.spawn_build_index("t", &o).map(|_| ()),
        ] {
            match r {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "lists"),
                other => panic!("{metric:?} {lists} lists: {other:?}"),
            }
        }
    }
    assert_eq!(db.jobs().unwrap().len(), jobs, "no job was recorded");
    db.build_index("t", &opts(Metric::Cosine, 48)).unwrap();
}

#[test]
fn builds_are_deterministic_for_a_seed() {
    let db = small_clustered_db();
    let view = db.table("t").unwrap();
    let build = || {
        super::IvfIndex::build(
            &view,
            Metric::Cosine,
            None,
            4,
            super::spill::SPILL,
            9,
            &super::NoHooks,
        )
        .unwrap()
    };
    let (a, b) = (build(), build());
    let (ha, ia, ca) = a.to_stored();
    let (hb, ib, cb) = b.to_stored();
    assert_eq!((ha.centroids, ia, ca), (hb.centroids, ib, cb));
}

#[test]
fn put_table_rejects_bad_input() {
    let db = Db::temporary().unwrap();
    assert!(db
        .put_table("t", RowSpace::Other, 0, &[1.0], vec![])
        .is_err());
    assert!(db
        .put_table("t", RowSpace::Other, 2, &[1.0, 2.0, 3.0], vec![])
        .is_err());
    assert!(db
        .put_table("t", RowSpace::Other, 1, &[f32::NAN], vec![])
        .is_err());
    assert!(db
        .put_table("t", RowSpace::Items, 1, &[1.0], vec!["a".into()])
        .is_err());
    assert!(matches!(
        db.put_table("t", RowSpace::Other, 1, &[], vec![]),
        Err(Error::EmptyTable { what: "rows", .. })
    ));
    db.put_table(
        "t",
        RowSpace::Other,
        1,
        &[1.0, 2.0],
        vec!["a".into(), "b".into()],
    )
    .unwrap();
    let s = db.searcher("t").unwrap();
    assert!(matches!(
        s.search(&[1.0, 2.0], &SearchOptions::default()),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        s.search(&[0.0], &SearchOptions::default()),
        Err(Error::ZeroVector(_))
    ));
}

#[test]
fn similar_and_recommend_use_the_index() {
    let db = Db::temporary().unwrap();
    let synth = crate::testkit::generate(&crate::testkit::SynthConfig::default());
    db.log_events(&synth.events).unwrap();
    db.train(
        "als",
        &crate::Params::new().set("factors", 16),
        &crate::TrainOptions::default(),
    )
    .unwrap();
    let item = db.item_ids().unwrap()[3].clone();
    let user = db.user_ids().unwrap()[5].clone();
    let q = crate::QueryOptions::model("als");
    let qe = crate::QueryOptions {
        exact: true,
        ..q.clone()
    };
    let full = |m| IndexOptions {
        metric: m,
        target_recall: 1.0,
        ..IndexOptions::default()
    };
    db.build_index("als.items", &full(Metric::Cosine)).unwrap();
    assert!(db.index_info("als.items").unwrap().is_some());
    let a = db.similar(&item, &q).unwrap();
    let b = db.similar(&item, &qe).unwrap();
    assert_eq!(a.len(), 10);
    assert!(a.iter().filter(|h| b.contains(h)).count() >= 8);
    db.build_index("als.items", &full(Metric::Dot)).unwrap();
    let a = db.recommend(&user, &q).unwrap();
    let b = db.recommend(&user, &qe).unwrap();
    assert!(a.iter().filter(|h| b.contains(h)).count() >= 8);
    // Many users at once: the same answers as one at a time, indexed and exact, with
    // the seen items left out per user; an unknown user fails the call by name.
    let users = db.user_ids().unwrap();
    let some: Vec<&str> = users.iter().take(40).map(String::as_str).collect();
    for opts in [&q, &qe] {
        let batch = db.recommend_batch(&some, opts).unwrap();
        assert_eq!(batch.len(), some.len());
        for (u, got) in some.iter().zip(&batch) {
            assert_eq!(got, &db.recommend(u, opts).unwrap(), "user {u}");
        }
    }
    let err = db.recommend_batch(&[some[0], "nobody"], &q).unwrap_err();
    assert!(err.to_string().contains("nobody"), "{err}");
}

/// MF-like factors: clustered directions with log-normal norms (a few long rows, as
/// popular items get in MF), for the inner-product tests and measurement.
fn mf_like(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rows = clustered_vectors(n, dim, seed);
    let mut rng = super::kmeans::SplitMix(seed ^ 0x6D66);
    for row in rows.chunks_exact_mut(dim) {
        // Sum of 4 uniforms ≈ normal; norm = exp(0.5·z).
        let z: f32 = (0..4)
            .map(|_| rng.below(1 << 20) as f32 / (1 << 20) as f32 - 0.5)
            .sum::<f32>()
            * 1.73;
        let f = (0.5 * z).exp();
        row.iter_mut().for_each(|x| *x *= f);
    }
    rows
}

#[test]
fn norm_pruned_exact_equals_exact() {
    let db = Db::temporary().unwrap();
    let rows = mf_like(5000 + 20, 16, 3);
    db.put_table("t", RowSpace::Other, 16, &rows[..5000 * 16], vec![])
        .unwrap();
    let view = db.table("t").unwrap();
    let pruned = super::NormOrdered::build(&view);
    for (i, q) in rows[5000 * 16..].chunks_exact(16).enumerate() {
        let allow = |r: u32| i.is_multiple_of(2) || !r.is_multiple_of(7);
        let want = super::ExactSearch.search(&view, q, Metric::Dot, 10, &allow);
        assert_eq!(pruned.search(&view, q, 10, &allow), want);
    }
}

#[test]
fn batched_exact_equals_exact() {
    let db = Db::temporary().unwrap();
    // Over one 512-row chunk and with a zero row, in both metrics.
    let mut rows = mf_like(1300 + 40, 16, 4);
    rows[7 * 16..8 * 16].iter_mut().for_each(|x| *x = 0.0);
    db.put_table("t", RowSpace::Other, 16, &rows[..1300 * 16], vec![])
        .unwrap();
    let view = db.table("t").unwrap();
    let mut queries: Vec<&[f32]> = rows[1300 * 16..].chunks_exact(16).collect();
    queries.push(&rows[7 * 16..8 * 16]);
    queries.push(&rows[3 * 16..4 * 16]);
    let skip: Vec<Option<u32>> = (0..queries.len())
        .map(|i| (i % 3 == 0).then_some((i * 37 % 1300) as u32))
        .collect();
    for metric in [Metric::Cosine, Metric::Dot] {
        let got = super::exact::exact_batch(&view, &queries, &skip, metric, 10);
        for ((q, sk), g) in queries.iter().zip(&skip).zip(&got) {
            let allow = |r: u32| Some(r) != *sk;
            assert_eq!(g, &super::ExactSearch.search(&view, q, metric, 10, &allow));
        }
        // One group on one thread, of every size the multi-query kernel splits (three
        // at a time and the remainders), the zero query first and among the others.
        let allow = |i: usize, r: u32| !(r as usize * 7 + i).is_multiple_of(5);
        let zero_first: Vec<&[f32]> = queries.iter().rev().skip(1).copied().collect();
        for qs in [&queries[..], &zero_first[..]] {
            for size in [1, 2, 3, 4, 5, 6, qs.len()] {
                let got = super::exact_group(&view, &qs[..size], metric, 10, &allow);
                for (i, q) in qs[..size].iter().enumerate() {
                    let one = |r: u32| allow(i, r);
                    assert_eq!(
                        got[i],
                        super::ExactSearch.search(&view, q, metric, 10, &one)
                    );
                }
            }
        }
    }
}

/// The inner-product index against the norm-pruned exact scan on MF-like factors
/// (`cargo test --release --lib mips_against_pruned_exact -- --ignored --nocapture`;
/// RECDB_MIPS_N rows, default 100000): recall@10 and CPU µs per query of both. A
/// measurement, not a check.
#[test]
#[ignore]
fn mips_against_pruned_exact() {
    let n: usize = std::env::var("RECDB_MIPS_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let (dim, nq) = (64, 500);
    let rows = mf_like(n + nq, dim, 11);
    let db = Db::temporary().unwrap();
    db.put_table("t", RowSpace::Other, dim, &rows[..n * dim], vec![])
        .unwrap();
    let view = db.table("t").unwrap();
    let queries: Vec<&[f32]> = rows[n * dim..].chunks_exact(dim).collect();
    let cpu = || {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        s.split_whitespace()
            .next()
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1e3
    };
    let all = |_: u32| true;
    let t = cpu();
    let truth: Vec<Vec<(u32, f32)>> = queries
        .iter()
        .map(|q| super::ExactSearch.search(&view, q, Metric::Dot, 10, &all))
        .collect();
    let exact_us = (cpu() - t) / nq as f64;
    let pruned = super::NormOrdered::build(&view);
    let t = cpu();
    for (q, want) in queries.iter().zip(&truth) {
        assert_eq!(&pruned.search(&view, q, 10, &all), want);
    }
    let pruned_us = (cpu() - t) / nq as f64;
    let mut ix = super::IvfIndex::build(
        &view,
        Metric::Dot,
        None,
        4,
        super::spill::SPILL,
        42,
        &super::NoHooks,
    )
    .unwrap();
    ix.tune(&view, 0.95, None, &super::NoHooks).unwrap();
    println!(
        "MIPS {n} x {dim}: exact {exact_us:.0} us/query, norm-pruned exact {pruned_us:.0} us/query (CPU); index {} lists, tuned nprobe {}",
        ix.lists, ix.nprobe
    );
    for np in [ix.nprobe / 2, ix.nprobe, ix.nprobe * 2]
        .into_iter()
        .filter(|&p| p >= 1)
    {
        let t = cpu();
        let mut hits = 0;
        for (q, want) in queries.iter().zip(&truth) {
            let got = ix.search_with(&view, q, 10, &all, np.min(ix.lists));
            hits += got
                .iter()
                .filter(|h| want.iter().any(|w| w.0 == h.0))
                .count();
        }
        let us = (cpu() - t) / nq as f64;
        println!(
            "  nprobe {np}: recall@10 {:.4}, {us:.0} us/query (CPU)",
            hits as f64 / (10 * nq) as f64
        );
    }
}

/// Records what a build reports and cancels once it has been asked `after` times.
struct CancelAfter {
    after: usize,
    asked: std::cell::Cell<usize>,
    seen: std::cell::RefCell<Vec<(f64, String)>>,
}

impl super::BuildHooks for CancelAfter {
    fn report(&self, fraction: f64, message: &str) {
        self.seen.borrow_mut().push((fraction, message.to_owned()));
    }
    fn cancelled(&self) -> bool {
        self.asked.set(self.asked.get() + 1);
        self.asked.get() > self.after
    }
}

fn cancel_after(after: usize) -> CancelAfter {
    CancelAfter {
        after,
        asked: 0.into(),
        seen: Vec::new().into(),
    }
}

/// A build is asked whether to stop before every k-means iteration and tuning probe,
/// stops at the first yes wherever that falls, and reports rising progress meanwhile.
#[test]
fn builds_report_progress_and_stop_inside_kmeans_and_tuning() {
    let db = small_clustered_db();
    let view = db.table("t").unwrap();
    // Uncancelled: count the questions.
    let all = cancel_after(usize::MAX);
    let mut ix =
        super::IvfIndex::build(&view, Metric::Cosine, None, 4, super::spill::SPILL, 9, &all)
            .unwrap();
    let build_asks = all.asked.get();
    assert!(
        build_asks >= 10,
        "once per k-means iteration at least: {build_asks}"
    );
    ix.tune(&view, 0.95, None, &all).unwrap();
    assert!(all.asked.get() > build_asks, "tuning asks too");
    let seen = all.seen.borrow();
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    assert!(seen
        .iter()
        .any(|s| s.1.starts_with("k-means iteration 10/10")));
    assert!(seen.iter().all(|s| s.0 < super::TUNED) && seen.last().unwrap().0 > super::BUILT);
    // Cancelled at every point of the build and of the tuning in turn.
    for after in [0, 3, 9, build_asks - 1] {
        let h = cancel_after(after);
        let r = super::IvfIndex::build(&view, Metric::Cosine, None, 4, super::spill::SPILL, 9, &h);
        assert!(matches!(r, Err(Error::Cancelled)), "after {after}");
        assert_eq!(h.asked.get(), after + 1, "stops at the first yes");
    }
    // A depth the tuner never tries first, so a probe that changed it shows.
    ix.rerank = 777;
    let before = (ix.nprobe, ix.rerank, ix.recall);
    let h = cancel_after(1);
    assert!(matches!(
        ix.tune(&view, 0.99, None, &h),
        Err(Error::Cancelled)
    ));
    assert_eq!(
        (ix.nprobe, ix.rerank, ix.recall),
        before,
        "a cancelled tuning leaves the index as it was"
    );
}

/// New rows are placed in the list the build would have put them in: re-placing the
/// table's own rows reproduces the build's assignment (cosine, and dot with the MIPS
/// coordinate).
#[test]
fn placing_a_row_agrees_with_the_build() {
    for (metric, scale) in [(Metric::Cosine, false), (Metric::Dot, true)] {
        let db = Db::temporary().unwrap();
        setup(&db, scale);
        let view = db.table("t").unwrap();
        let ix = super::IvfIndex::build(
            &view,
            metric,
            None,
            4,
            super::spill::SPILL,
            3,
            &super::NoHooks,
        )
        .unwrap();
        let built = ix.lists_of_rows();
        assert_eq!(built.len(), N);
        let spilled = built.values().filter(|l| l.len() == 2).count();
        assert_eq!(
            (spilled, ix.spilled()),
            ((N as f32 * super::SPILL) as usize, spilled)
        );
        assert!(built
            .values()
            .all(|l| l.len() == 1 || (l.len() == 2 && l[0] != l[1])));
        // A row's first list is its nearest centroid, which placing finds again.
        let same = (0..N as u32)
            .step_by(7)
            .filter(|&r| built[&r].contains(&ix.place(&view.row(r as usize).to_vec()).unwrap()))
            .count();
        let total = N.div_ceil(7);
        assert!(
            same * 1000 >= total * 995,
            "{metric:?}: {same} of {total} placed as built"
        );
    }
}

/// A tail (delta rows placed in the lists) updated one small batch at a time equals one
/// placed from scratch, and the index searched with it answers like exact search over
/// the table's live rows plus the tail's rows.
#[test]
fn tail_updates_match_a_fresh_tail_and_brute_force() {
    let db = Db::temporary().unwrap();
    let queries = setup(&db, false);
    let view = db.table("t").unwrap();
    let mut ix = super::IvfIndex::build(
        &view,
        Metric::Cosine,
        None,
        4,
        super::spill::SPILL,
        3,
        &super::NoHooks,
    )
    .unwrap();
    ix.tune(&view, 0.95, None, &super::NoHooks).unwrap();
    let fresh = clustered_vectors(800, DIM, 99);
    let row_of = |i: usize| fresh[i * DIM..(i + 1) * DIM].to_vec();
    // Ops: 500 appended rows, 150 base rows replaced, 150 base rows deleted, then 100
    // appended rows replaced and 100 deleted.
    let mut ops: Vec<(u32, Option<Vec<f32>>)> = Vec::new();
    for i in 0..500 {
        ops.push(((N + i) as u32, Some(row_of(i))));
    }
    for i in 0..150 {
        ops.push(((i * 97) as u32, Some(row_of(500 + i))));
        ops.push(((i * 97 + 13) as u32, None));
    }
    for i in 0..100 {
        ops.push(((N + 2 * i) as u32, Some(row_of(650 + i % 150))));
        ops.push(((N + 2 * i + 1) as u32, None));
    }
    let mut tail = super::Tail::default();
    let mut at = 0;
    while at < ops.len() {
        let n = 1 + at % 7;
        let chunk: Vec<(u32, Option<&[f32]>)> = ops[at..(at + n).min(ops.len())]
            .iter()
            .map(|(r, v)| (*r, v.as_deref()))
            .collect();
        tail = tail.apply(&ix, &chunk);
        at += n;
    }
    // The final state, as a delta replay would give it.
    let mut live: std::collections::BTreeMap<u32, Option<Vec<f32>>> = Default::default();
    for (r, v) in &ops {
        live.insert(*r, v.clone());
    }
    let puts: Vec<(u32, Option<&[f32]>)> = live
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(r, v)| (*r, v.as_deref()))
        .collect();
    let scratch = super::Tail::default().apply(&ix, &puts);
    assert_eq!(tail.len(), puts.len());
    assert_eq!(scratch.len(), puts.len());
    for l in 0..ix.lists {
        let ids = |t: &super::Tail| {
            let mut v = t.list_rows(l);
            v.sort_unstable();
            v
        };
        assert_eq!(ids(&tail), ids(&scratch), "list {l}");
    }
    for (r, v) in &puts {
        assert_eq!(tail.row(*r), *v);
    }
    // Base rows that the ops replaced or deleted are hidden from the base scan.
    let hidden: HashSet<u32> = live.keys().copied().filter(|&r| (r as usize) < N).collect();
    let base_allow = |r: u32| !hidden.contains(&r);
    let all = |_: u32| true;
    let score = |v: &[f32], q: &[f32]| {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        dot(v, q) / (dot(v, v).sqrt() * dot(q, q).sqrt())
    };
    let mut hits = 0;
    for q in &queries {
        let mut truth: Vec<(u32, f32)> = (0..N as u32)
            .filter(|r| base_allow(*r))
            .map(|r| (r, score(&view.row(r as usize).to_vec(), q)))
            .chain(puts.iter().map(|(r, v)| (*r, score(v.unwrap(), q))))
            .collect();
        truth.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        truth.truncate(10);
        let got = ix.search_in(&view, Some((&tail, &all)), q, 10, &base_allow, ix.nprobe);
        assert!(got.iter().all(|h| base_allow(h.0) || live[&h.0].is_some()));
        assert!(got
            .iter()
            .all(|h| !live.get(&h.0).is_some_and(Option::is_none)));
        hits += got
            .iter()
            .filter(|h| truth.iter().any(|t| t.0 == h.0))
            .count();
        // Every list probed is the exact fallback: the same rows as brute force.
        let full = ix.search_in(&view, Some((&tail, &all)), q, 10, &base_allow, ix.lists);
        let ids = |v: &[(u32, f32)]| v.iter().map(|h| h.0).collect::<HashSet<_>>();
        assert!(ids(&full).intersection(&ids(&truth)).count() >= 9);
    }
    let recall = hits as f64 / (10 * queries.len()) as f64;
    assert!(recall >= 0.9, "recall with the tail {recall}");
    // Each placed row finds itself (it sits in the list its own query probes first).
    let found = puts
        .iter()
        .filter(|(r, v)| {
            let got = ix.search_in(
                &view,
                Some((&tail, &all)),
                v.unwrap(),
                1,
                &base_allow,
                ix.nprobe,
            );
            got.first().is_some_and(|h| h.0 == *r)
        })
        .count();
    assert!(
        found * 100 >= puts.len() * 98,
        "{found} of {} tail rows find themselves",
        puts.len()
    );
}

#[test]
fn batched_queries_equal_single_ones() {
    // Both metrics, with and without a tail, across a group boundary, with per-query
    // filters (none, mild, selective: the exact fallback), a zero query and every list
    // probed (the exact fallback again).
    let db = Db::temporary().unwrap();
    let base = setup(&db, true);
    let view = db.table("t").unwrap();
    let extra = clustered_vectors(1100, DIM, 17);
    let mut queries: Vec<&[f32]> = base.iter().map(|q| &q[..]).collect();
    queries.extend(extra.chunks_exact(DIM));
    let zero = vec![0f32; DIM];
    queries[5] = &zero;
    let allow = |i: usize, r: u32| match i % 5 {
        0 => true,
        1 => !r.is_multiple_of(3),
        2 => r < 150,
        _ => r % 7 != i as u32 % 7,
    };
    for metric in [Metric::Cosine, Metric::Dot] {
        let mut ix = super::IvfIndex::build(
            &view,
            metric,
            Some(120),
            4,
            super::spill::SPILL,
            3,
            &super::NoHooks,
        )
        .unwrap();
        ix.tune(&view, 0.95, None, &super::NoHooks).unwrap();
        let ops: Vec<(u32, Option<&[f32]>)> = (0..300)
            .map(|i| ((N + i) as u32, Some(&extra[i * DIM..(i + 1) * DIM])))
            .chain((0..100).map(|i| ((i * 13) as u32, None)))
            .collect();
        let tail = super::Tail::default().apply(&ix, &ops);
        let tail_allow = |i: usize, r: u32| r.is_multiple_of(2) || i.is_multiple_of(2);
        for nprobe in [ix.nprobe, ix.lists] {
            let got = ix.search_batch(&view, None, &queries, 10, &allow, nprobe);
            let with_tail = ix.search_batch(
                &view,
                Some((&tail, &tail_allow)),
                &queries,
                10,
                &allow,
                nprobe,
            );
            assert_eq!(got.len(), queries.len());
            for (i, q) in queries.iter().enumerate() {
                let one = |r: u32| allow(i, r);
                assert_eq!(
                    got[i],
                    ix.search_in(&view, None, q, 10, &one, nprobe),
                    "query {i}"
                );
                let t_one = |r: u32| tail_allow(i, r);
                let want = ix.search_in(&view, Some((&tail, &t_one)), q, 10, &one, nprobe);
                assert_eq!(with_tail[i], want, "query {i} with the tail");
            }
            assert!(got[5].is_empty() || metric == Metric::Dot);
        }
    }
}

#[test]
fn batched_search_through_the_searcher() {
    // The public batch API equals one query at a time for an index, the exact scan and a
    // table with a delta, and checks its queries.
    let db = Db::temporary().unwrap();
    let qv = setup(&db, false);
    let qs: Vec<&[f32]> = qv.iter().map(|q| &q[..]).collect();
    let allow = |i: usize, r: u32| !(r as usize + i).is_multiple_of(4);
    let check = |db: &Db| {
        let s = db.searcher("t").unwrap();
        for exact in [false, true] {
            let opts = SearchOptions {
                exact,
                ..SearchOptions::default()
            };
            let got = s.search_batch_filtered(&qs, &opts, &allow).unwrap();
            for (i, q) in qs.iter().enumerate() {
                let one = s.search_filtered(q, &opts, &|r| allow(i, r)).unwrap();
                assert_eq!(got[i], one, "query {i}, exact {exact}");
            }
        }
    };
    check(&db);
    db.build_index("t", &IndexOptions::default()).unwrap();
    check(&db);
    db.upsert_rows("t", &[("5".into(), qv[0].clone())]).unwrap();
    check(&db);
    let s = db.searcher("t").unwrap();
    let bad = vec![0f32; DIM - 1];
    let err = s
        .search_batch(&[qs[0], &bad], &SearchOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("query 2"), "{err}");
}

/// 8-bit codes (two 4-bit stages) score closer to the exact order than 4-bit ones: with
/// no rerank beyond k the answer is the codes' own top 10, and it finds more of the
/// true top 10, for both metrics.
#[test]
fn eight_bit_codes_rank_closer_to_the_exact_order() {
    for (metric, scale) in [(Metric::Cosine, false), (Metric::Dot, true)] {
        let db = Db::temporary().unwrap();
        let qs = setup(&db, scale);
        let view = db.table("t").unwrap();
        let code_recall = |bits: u8| {
            // No spill: a spilled row's two entries would take two of the k candidates.
            let mut ix =
                super::IvfIndex::build(&view, metric, Some(100), bits, 0.0, 3, &super::NoHooks)
                    .unwrap();
            assert_eq!(ix.bits(), bits);
            ix.rerank = 10;
            let (mut hit, mut all) = (0, 0);
            for q in &qs {
                let truth: Vec<u32> = super::ExactSearch
                    .search(&view, q, metric, 10, &|_| true)
                    .iter()
                    .map(|h| h.0)
                    .collect();
                // Every list but one: the rows scanned are (almost) all rows.
                let got = ix.search_with(&view, q, 10, &|_| true, 99);
                hit += got.iter().filter(|h| truth.contains(&h.0)).count();
                all += truth.len();
            }
            hit as f64 / all as f64
        };
        let (r4, r8) = (code_recall(4), code_recall(8));
        eprintln!("{metric:?}: recall@10 of the codes alone: 4 bits {r4:.3}, 8 bits {r8:.3}");
        assert!(
            r8 >= 0.88 && r8 > r4 + 0.1,
            "{metric:?}: 4 bits {r4}, 8 bits {r8}"
        );
    }
}

/// An 8-bit index is stored, reloaded and checked like a 4-bit one, and answers the
/// same after a reopen; a header whose level count fits neither width is corruption.
#[test]
fn eight_bit_indexes_persist_and_bad_levels_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let opts = IndexOptions {
        bits: 8,
        ..IndexOptions::default()
    };
    let (qs, before) = {
        let db = Db::open(&path).unwrap();
        let qs = setup(&db, false);
        let info = db.build_index("t", &opts).unwrap();
        assert_eq!(info.bits, 8);
        let r = recall(&db, &qs, Metric::Cosine, &|_| true);
        assert!(r >= 0.9, "recall {r} with {info:?}");
        let s = db.searcher("t").unwrap();
        let before: Vec<_> = qs
            .iter()
            .map(|q| s.search(q, &SearchOptions::default()).unwrap())
            .collect();
        (qs, before)
    };
    let db = Db::open(&path).unwrap();
    let info = db.index_info("t").unwrap().unwrap();
    assert_eq!(info.bits, 8);
    let s = db.searcher("t").unwrap();
    for (q, want) in qs.iter().zip(&before) {
        assert_eq!(&s.search(q, &SearchOptions::default()).unwrap(), want);
    }
    db.check().unwrap();
    // Three stages' worth of levels: rejected on load.
    let mut h = crate::index::stored::load(db.backend(), "t", info.version, N, DIM)
        .unwrap()
        .unwrap()
        .header;
    let extra: Vec<f32> = h.levels[..16 * DIM].to_vec();
    h.levels.extend(extra);
    let mut batch = WriteBatch::default();
    batch.put(
        keys::index_block("t", info.version, 0),
        crate::storage::codec::encode(crate::storage::codec::Tag::IndexHeader, &h),
    );
    db.backend().apply(batch).unwrap();
    drop(s);
    drop(db);
    let db = Db::open(&path).unwrap();
    match db.check() {
        Err(Error::Corrupted { what }) => assert!(what.contains("code levels"), "{what}"),
        other => panic!("{other:?}"),
    }
}

/// A stored index may hold a row in two lists (spilled) but not in three, nor twice in
/// one list: the load (so `check`, and the first query) rejects both, naming the row.
#[test]
fn a_row_in_three_lists_or_twice_in_one_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let version = {
        let db = Db::open(&path).unwrap();
        setup(&db, false);
        let info = db.build_index("t", &IndexOptions::default()).unwrap();
        assert_eq!(info.spilled as usize, (N as f32 * super::SPILL) as usize);
        db.check().unwrap();
        info.version
    };
    let tamper = |edit: &dyn Fn(&[u32], &mut Vec<u32>) -> u32| {
        let db = Db::open(&path).unwrap();
        let mut l = crate::index::stored::load(db.backend(), "t", version, N, DIM)
            .unwrap()
            .unwrap();
        let row = edit(&l.header.offsets, &mut l.ids);
        crate::index::stored::write(db.backend(), "t", version, &l.header, &l.ids, &l.codes)
            .unwrap();
        db.flush().unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        match db.check() {
            Err(Error::Corrupted { what }) => (row, what),
            other => panic!("{other:?}"),
        }
    };
    let count = |ids: &[u32], r: u32| ids.iter().filter(|&&x| x == r).count();
    // A spilled row written over the first entry of a list that does not hold it.
    let (row, what) = tamper(&|offsets, ids| {
        let r = *ids.iter().find(|&&r| count(ids, r) == 2).unwrap();
        let l = (0..offsets.len() - 1)
            .find(|&l| !ids[offsets[l] as usize..offsets[l + 1] as usize].contains(&r))
            .unwrap();
        ids[offsets[l] as usize] = r;
        r
    });
    assert!(
        what.contains(&format!("row {row} in more than two lists")),
        "{what}"
    );
    // Rebuilt, then a row that is in one list written over its neighbour in that list.
    {
        let db = Db::open(&path).unwrap();
        db.build_index("t", &IndexOptions::default()).unwrap();
    }
    let (row, what) = tamper(&|offsets, ids| {
        // An entry of a row in one list only, followed by another in the same list.
        let at = (0..offsets.len() - 1)
            .flat_map(|l| offsets[l] as usize..(offsets[l + 1] as usize).saturating_sub(1))
            .find(|&at| count(ids, ids[at]) == 1)
            .unwrap();
        let r = ids[at];
        ids[at + 1] = r;
        r
    });
    assert!(what.contains(&format!("row {row} twice in list")), "{what}");
}
