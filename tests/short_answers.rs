//! A query for k rows answers k rows whenever k rows pass its filter, with or without
//! an index, one at a time or batched, with rows put or deleted since publish; and a k
//! far beyond the table (`usize::MAX`) is cut to the rows served instead of being
//! allocated.

mod common;

use common::*;
use recdb::testkit::clustered_vectors;
use recdb::{
    Db, IndexOptions, Metric, Params, QueryOptions, RowSpace, SearchOptions, SequenceQuery,
    SequenceScoring, TableSearcher, TrainOptions,
};

const ROWS: usize = 600;
const DIM: usize = 16;

/// A `metric` index of `table` with `lists` lists, tuned to a low target so that a few
/// lists are probed.
fn build(db: &Db, table: &str, metric: Metric, lists: u64) {
    let opts = IndexOptions {
        metric,
        lists: Some(lists as usize),
        target_recall: 0.8,
        ..IndexOptions::default()
    };
    let info = db.build_index(table, &opts).unwrap();
    assert!(info.nprobe < lists, "{info:?}");
}

/// Table `t` of `ROWS` clustered rows with a `metric` index of 40 lists, and a few
/// queries from the same distribution.
fn indexed(metric: Metric) -> (Db, Vec<Vec<f32>>) {
    let db = Db::temporary().unwrap();
    let mut all = clustered_vectors(ROWS + 3, DIM, 9);
    let qs = all.split_off(ROWS * DIM);
    db.put_table("t", RowSpace::Other, DIM, &all, vec![])
        .unwrap();
    build(&db, "t", metric, 40);
    (db, qs.chunks_exact(DIM).map(<[f32]>::to_vec).collect())
}

/// For every k from 1 past the rows: the index answers as many rows as the exact scan
/// (which answers every passing row up to k), one query at a time and batched.
fn answers_k_rows(s: &TableSearcher, metric: Metric, qs: &[Vec<f32>], allow: &dyn Fn(u32) -> bool) {
    let refs: Vec<&[f32]> = qs.iter().map(|q| &q[..]).collect();
    for k in 1..=s.rows() + 2 {
        let opts = SearchOptions {
            k,
            metric,
            ..SearchOptions::default()
        };
        let exact = SearchOptions {
            exact: true,
            ..opts.clone()
        };
        let batch = s
            .search_batch_filtered(&refs, &opts, &|_, r| allow(r))
            .unwrap();
        for (q, got_batch) in qs.iter().zip(&batch) {
            let want = s.search_filtered(q, &exact, allow).unwrap().len();
            let got = s.search_filtered(q, &opts, allow).unwrap();
            assert_eq!(got.len(), want, "{metric:?} k {k}: single");
            assert_eq!(got_batch.len(), want, "{metric:?} k {k}: batched");
            assert!(got.iter().all(|h| allow(h.0)), "a row the filter rejects");
            let mut ids: Vec<u32> = got.iter().map(|h| h.0).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), got.len(), "a row twice");
        }
    }
}

#[test]
fn an_indexed_table_answers_k_rows_whenever_k_pass() {
    for metric in [Metric::Cosine, Metric::Dot] {
        let (db, qs) = indexed(metric);
        let s = db.searcher("t").unwrap();
        assert_eq!(s.index_metric(), Some(metric));
        answers_k_rows(&s, metric, &qs, &|_| true);
        // A mild filter (two thirds pass) and a selective one (a tenth).
        answers_k_rows(&s, metric, &qs, &|r| r % 3 != 0);
        answers_k_rows(&s, metric, &qs, &|r| r % 10 == 0);
        // Rows put (new and replaced) and deleted since publish: the delta's rows.
        let put: Vec<(String, Vec<f32>)> = (0..30)
            .map(|i| {
                let id = if i % 2 == 0 { ROWS + i } else { i };
                (id.to_string(), qs[i % qs.len()].clone())
            })
            .collect();
        db.upsert_rows("t", &put).unwrap();
        let gone: Vec<String> = (100..160).map(|i| i.to_string()).collect();
        db.delete_rows("t", &gone).unwrap();
        let s = db.searcher("t").unwrap();
        assert!(s.delta_ops() > 0);
        answers_k_rows(&s, metric, &qs, &|_| true);
        answers_k_rows(&s, metric, &qs, &|r| r % 3 != 0);
    }
}

/// An ALS model with a dot index on its items (and then a cosine one): `recommend`,
/// `recommend_batch` (seen items left out, with and without a genre) and `similar`
/// answer as many rows as with `exact`, for every k.
#[test]
fn recommend_and_similar_answer_k_rows_with_an_index() {
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 40, 200, 10, 3);
    put_genres(&db, 200);
    train_als(&db, 5);
    let users: Vec<String> = (0..5).map(user).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    for metric in [Metric::Dot, Metric::Cosine] {
        build(&db, "als.items", metric, 20);
        for genre in [None, Some("Drama".to_string())] {
            for k in 1..=205 {
                let opts = QueryOptions {
                    genre: genre.clone(),
                    ..QueryOptions::model("als").k(k)
                };
                let exact = QueryOptions {
                    exact: true,
                    ..opts.clone()
                };
                if metric == Metric::Dot {
                    let batch = db.recommend_batch(&refs, &opts).unwrap();
                    for (u, got_batch) in refs.iter().zip(&batch) {
                        let want = db.recommend(u, &exact).unwrap().len();
                        assert_eq!(db.recommend(u, &opts).unwrap().len(), want, "{u} k {k}");
                        assert_eq!(got_batch.len(), want, "{u} k {k}: batched");
                    }
                } else {
                    for it in ["i0", "i1", "i2"] {
                        let want = db.similar(it, &exact).unwrap().len();
                        assert_eq!(db.similar(it, &opts).unwrap().len(), want, "{it} k {k}");
                    }
                }
            }
        }
    }
}

/// `k = usize::MAX` (or 1e9) is cut to the rows served on every entry point, indexed or
/// exact, instead of sizing buffers by it (which aborted the process).
#[test]
fn a_huge_k_answers_every_row_without_allocating_it() {
    for metric in [Metric::Cosine, Metric::Dot] {
        let (db, qs) = indexed(metric);
        let s = db.searcher("t").unwrap();
        let refs: Vec<&[f32]> = qs.iter().map(|q| &q[..]).collect();
        for k in [usize::MAX, 1_000_000_000] {
            for exact in [false, true] {
                let opts = SearchOptions {
                    k,
                    metric,
                    exact,
                    nprobe: None,
                };
                assert_eq!(s.search(&qs[0], &opts).unwrap().len(), ROWS);
                for hits in s.search_batch(&refs, &opts).unwrap() {
                    assert_eq!(hits.len(), ROWS);
                }
                let probe = SearchOptions {
                    nprobe: Some(usize::MAX),
                    ..opts.clone()
                };
                assert_eq!(s.search(&qs[0], &probe).unwrap().len(), ROWS);
            }
        }
    }
    let db = Db::temporary().unwrap();
    load_synthetic(&db, 40, 200, 10, 3);
    train_als(&db, 5);
    build(&db, "als.items", Metric::Dot, 20);
    for k in [usize::MAX, 1_000_000_000] {
        let opts = QueryOptions::model("als").k(k);
        let seen = db
            .recommend("u1", &QueryOptions::model("als").k(200))
            .unwrap();
        assert_eq!(db.recommend("u1", &opts).unwrap().len(), seen.len());
        assert_eq!(
            db.recommend_batch(&["u1", "u2"], &opts).unwrap()[0].len(),
            seen.len()
        );
        let all = QueryOptions {
            exact: true,
            ..QueryOptions::model("als").k(200)
        };
        let want = db.similar("i1", &all).unwrap().len();
        assert_eq!(db.similar("i1", &opts).unwrap().len(), want);
    }
    // A sequence model's queries (no user table; the query is built from recent items),
    // with an index on both tables it answers from.
    let p = Params::new()
        .set("dim", 8)
        .set("epochs", 2)
        .set("sample", 0);
    let one = TrainOptions {
        seed: 1,
        threads: Some(1),
        ..Default::default()
    };
    db.train("item2vec", &p, &one).unwrap();
    build(&db, "item2vec.out", Metric::Dot, 20);
    build(&db, "item2vec.items", Metric::Cosine, 20);
    for scoring in [SequenceScoring::InputOutput, SequenceScoring::InputInput] {
        let sq = SequenceQuery {
            scoring,
            ..SequenceQuery::default()
        };
        let all = QueryOptions {
            exact: true,
            ..QueryOptions::model("item2vec").k(200)
        };
        let want = db.recommend_sequence("u1", &all, &sq).unwrap().len();
        for k in [usize::MAX, 1_000_000_000] {
            let opts = QueryOptions::model("item2vec").k(k);
            let got = db.recommend_sequence("u1", &opts, &sq).unwrap();
            assert_eq!(got.len(), want, "{scoring:?}");
        }
    }
}
