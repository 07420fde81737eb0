//! The tuner on tight clusters of near-duplicates (the hard case of the rerank): it
//! reaches the target below every list by reranking deeper, a build that cannot reach
//! it says so, and the rerank depth is an option (validated, remembered for rebuilds).

use std::collections::HashSet;

use recdb::testkit::near_duplicate_clusters;
use recdb::{Db, Error, IndexOptions, RowSpace, SearchOptions};

const ROWS: usize = 20_000;
const DIM: usize = 16;
/// One list per cluster of ~500 rows, as `--lists 2000` on 1M rows.
const LISTS: usize = ROWS / 500;

/// Table `t` of tight clusters, and 200 fresh queries from the same clusters.
fn setup() -> (Db, Vec<Vec<f32>>) {
    let db = Db::temporary().unwrap();
    let mut rows = near_duplicate_clusters(ROWS + 200, DIM, 0.05, 7);
    let qs = rows.split_off(ROWS * DIM);
    db.put_table("t", RowSpace::Other, DIM, &rows, vec![])
        .unwrap();
    (db, qs.chunks_exact(DIM).map(<[f32]>::to_vec).collect())
}

fn opts(rerank: Option<usize>) -> IndexOptions {
    IndexOptions {
        lists: Some(LISTS),
        rerank,
        ..IndexOptions::default()
    }
}

/// Recall@10 of the served index against exact search on `qs`.
fn recall(db: &Db, qs: &[Vec<f32>]) -> f64 {
    let s = db.searcher("t").unwrap();
    let o = SearchOptions::default();
    let exact = SearchOptions {
        exact: true,
        ..o.clone()
    };
    let (mut hit, mut all) = (0, 0);
    for q in qs {
        let truth: HashSet<u32> = s.search(q, &exact).unwrap().iter().map(|h| h.0).collect();
        hit += s
            .search(q, &o)
            .unwrap()
            .iter()
            .filter(|h| truth.contains(&h.0))
            .count();
        all += truth.len();
    }
    hit as f64 / all as f64
}

#[test]
fn near_duplicates_reach_the_target_below_every_list() {
    let (db, qs) = setup();
    let info = db.build_index("t", &opts(None)).unwrap();
    eprintln!("{info:?}");
    assert!(!info.exhaustive, "{info:?}");
    assert!(info.nprobe < LISTS as u64 / 4, "{info:?}");
    assert!(info.rerank > 65, "{info:?}");
    assert!(info.recall >= 0.95, "{info:?}");
    let r = recall(&db, &qs);
    assert!(r >= 0.93, "recall on fresh queries {r}");
}

#[test]
fn a_build_that_must_probe_every_list_says_so() {
    let (db, _) = setup();
    // The old fixed depth cannot tell the near-duplicates apart.
    let info = db.build_index("t", &opts(Some(65))).unwrap();
    assert!(info.exhaustive, "{info:?}");
    assert_eq!((info.nprobe, info.rerank), (LISTS as u64, 65));
    let jobs = db.jobs().unwrap();
    let msg = &jobs.last().unwrap().message;
    assert!(
        msg.contains("target recall 0.95 not reached") && msg.contains("queries scan every row"),
        "{msg}"
    );
}

#[test]
fn the_rerank_depth_is_validated_and_remembered() {
    let (db, _) = setup();
    for bad in [0, 9, 10_001, usize::MAX] {
        match db.build_index("t", &opts(Some(bad))) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "rerank"),
            other => panic!("rerank {bad}: {other:?}"),
        }
    }
    assert!(
        db.jobs().unwrap().len() <= 1,
        "a refused build leaves no record"
    );
    let info = db
        .build_index(
            "t",
            &IndexOptions {
                rebuild_on_publish: true,
                ..opts(Some(1000))
            },
        )
        .unwrap();
    assert_eq!(info.rerank, 1000);
    // A new version is rebuilt in the background with the remembered depth.
    let rows = near_duplicate_clusters(ROWS / 2, DIM, 0.05, 8);
    let v2 = db
        .put_table("t", RowSpace::Other, DIM, &rows, vec![])
        .unwrap();
    let ended = db.wait_maintenance();
    assert_eq!(ended.len(), 1);
    let info = db.index_info("t").unwrap().unwrap();
    assert_eq!((info.version, info.rerank), (v2, 1000));
}

#[test]
fn index_thread_counts_are_bounded() {
    let (db, _) = setup();
    for bad in [0, recdb::MAX_THREADS + 1, 10_000] {
        let o = IndexOptions {
            threads: Some(bad),
            ..opts(None)
        };
        match db.build_index("t", &o) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "threads"),
            other => panic!("build threads {bad}: {other:?}"),
        }
    }
    db.build_index("t", &opts(None)).unwrap();
    let queries = vec![0.5f32; DIM];
    for bad in [0, recdb::MAX_THREADS + 1, 10_000] {
        let o = recdb::IndexBenchOptions {
            threads: bad,
            ..Default::default()
        };
        match db.bench_index("t", &queries, &o) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "threads"),
            other => panic!("bench threads {bad}: {other:?}"),
        }
    }
}
