//! `recommend` end to end at 1M items (target: p99 ≤ 2 ms, docs/INDEX.md): the user's
//! history lookup, the seen-items filter, the dot-product index of `m.items` and the
//! rerank, through the public `Db::recommend`.
//!
//! Fixture: 1M items × 64 dims (`recdb::testkit::clustered_vectors`, unit norm) published with
//! `put_table` as `m.items`, 2000 users (their own clustered vectors) as `m.users`,
//! 50 viewed items per user (excluded from the answers), index built with
//! `build_index` (metric dot, 2000 lists, target recall 0.95).
//!
//! `cargo bench --bench recommend` (RECDB_REC_ITEMS, default 1000000; RECDB_REC_LISTS,
//! default 2000: half the default 4·√N, which halves the k-means build and keeps the
//! bench to a few minutes at about the same rows scanned per query). Prints per-query wall-clock p50/p99/max over 4000 queries and
//! the mean CPU time per query, then a criterion measurement of the same call.
//!
//! `youtube` (target: p99 ≤ 1 ms, the tower included): the same catalogue and users,
//! each user also with 3 searches and 3 attributes (`put_users`) so every input of the
//! tower is exercised; the users' views come from a popular head of 5000 items, and
//! `youtube` is trained through `Db::train` for 3 epochs (sampled softmax, the default
//! tower), which trains the head and the tower. Training every one of 1M items is out
//! of a bench's reach, and untrained output vectors stay at their random start (no
//! clusters: an index over them scans a large share of the rows, which a trained
//! catalogue does not), so `youtube.items` is then replaced by clustered vectors
//! (`clustered_vectors`, D + 1 columns: the last is the bias) the way a trained model's
//! are: the tower is trained, the item table is synthetic. The index is built on it
//! (metric dot). Times `Db::recommend(user, model youtube)` and `recommend_batch` as
//! above, and prints recall@10 of the indexed answers against the exact ones for the
//! same users.
//! `cargo bench --bench recommend -- youtube` runs only this case, `-- recommend_1m`
//! only the factor model.
//!
//! `two_stage` (target: p99 ≤ 5 ms): the factor fixture's `m` proposes 200 candidates
//! through its index (seen items left out) and a `wide-deep` ranker re-scores them, one
//! batched forward pass, top 10 returned: `Db::recommend` with
//! `QueryOptions::model("m").candidates(200).rank("wide-deep")`. The ranker is trained
//! on the fixture's log with the cheapest parameters that publish a full network (1
//! epoch, implicit labels, 1 negative; ids only: the fixture has no attributes), with
//! the inputs that read the user's log as two-stage NEXT's ranker has them (the latest
//! 10 items as a field, `recent=10`, and their cosines with each candidate through
//! `m.items`, `history=m.items`) and its three networks (`ensemble=3`, as the two-stage
//! evaluation trains; RECDB_REC_ENSEMBLE sets another count). Also
//! timed with `m` itself as the ranker (dot products): the candidates' own cost.
//! `cargo bench --bench recommend -- two_stage` runs only this case.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use recdb::testkit::clustered_vectors;
use recdb::{
    Config, Db, EventKind, IndexOptions, Metric, Params, QueryOptions, RowSpace, SearchOptions,
    TrainOptions, UserRecord,
};

mod common;
use common::{env, thread_cpu};

const DIM: usize = 64;
const USERS: usize = 2000;
const SEEN: usize = 50;
/// Seeds the users' vectors (the fixture's table and the index-alone timing).
const USER_SEED: u64 = 43;

/// A database holding the catalogue (items dense 0..n) and the users' views, drawn
/// uniformly from the first `head` items.
fn logged(n: usize, head: usize) -> Db {
    let db = Db::open_with(Config {
        auto_index_rows: 0,
        ..Config::default()
    })
    .expect("db");
    // One catalog user viewing every item gives the items dense ids 0..n in order.
    let mut b = db.batch();
    for i in 0..n {
        b.push("catalog", &format!("i{i}"), EventKind::View, 1.0, i as i64)
            .expect("push");
    }
    let mut x = 12345u64;
    for u in 0..USERS {
        for s in 0..SEEN {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) as usize % head.clamp(1, n);
            b.push(
                &format!("u{u}"),
                &format!("i{i}"),
                EventKind::View,
                1.0,
                s as i64,
            )
            .expect("push");
        }
    }
    b.commit().expect("commit");
    db
}

fn fixture() -> Db {
    let n = env("RECDB_REC_ITEMS", 1_000_000);
    let t = Instant::now();
    let db = logged(n, n);
    let items = clustered_vectors(n, DIM, 42);
    let mut users = vec![0f32; (USERS + 1) * DIM];
    users[DIM..].copy_from_slice(&clustered_vectors(USERS, DIM, USER_SEED));
    users[..DIM].fill(0.125);
    db.put_table("m.users", RowSpace::Users, DIM, &users, vec![])
        .expect("users");
    db.put_table("m.items", RowSpace::Items, DIM, &items, vec![])
        .expect("items");
    drop(items);
    println!(
        "fixture: {n} items x {DIM}, {USERS} users x {SEEN} seen, {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let lists = Some(env("RECDB_REC_LISTS", 2000));
    let info = db
        .build_index(
            "m.items",
            &IndexOptions {
                metric: Metric::Dot,
                lists,
                ..IndexOptions::default()
            },
        )
        .expect("build_index");
    println!(
        "index: {} lists, nprobe {}, recall@10 {:.3} on held-out rows, build {:.1} s, {:.1} bytes/vector",
        info.lists,
        info.nprobe,
        info.recall,
        info.build_seconds,
        info.bytes as f64 / info.rows as f64
    );
    db
}

/// The `q` quantile of sorted latencies.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// The criterion filter (the first argument that is not a flag), to skip a fixture
/// whose group will not run: building one takes minutes.
fn selected(group: &str) -> bool {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    filter.is_none_or(|f| group.contains(&f) || f.contains(group))
}

/// Per-query wall-clock percentiles and mean CPU of `recommend` over 2·USERS queries.
fn latencies(db: &Db, opts: &QueryOptions, label: &str) {
    for u in 0..200 {
        db.recommend(&format!("u{u}"), opts).expect("warm-up");
    }
    let mut lat = Vec::with_capacity(2 * USERS);
    let c0 = thread_cpu();
    let t0 = Instant::now();
    for round in 0..2 {
        for u in 0..USERS {
            let user = format!("u{}", (u * 7 + round) % USERS);
            let t = Instant::now();
            let hits = db.recommend(&user, opts).expect("recommend");
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(hits.len(), 10);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = c0.zip(thread_cpu()).map_or(f64::NAN, |(a, b)| b - a);
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| percentile(&lat, q);
    println!(
        "{label} (index, k 10, 1 thread), {} queries: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (wall); mean {:.3} ms CPU, {:.3} ms wall",
        lat.len(),
        p(0.5),
        p(0.99),
        lat[lat.len() - 1],
        cpu * 1e3 / lat.len() as f64,
        wall * 1e3 / lat.len() as f64
    );
}

/// `recommend_batch` over every user: CPU and wall time per user, and the same answers
/// as one at a time.
fn batch(db: &Db, opts: &QueryOptions) {
    let names: Vec<String> = (0..USERS).map(|u| format!("u{u}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let c0 = thread_cpu();
    let t0 = Instant::now();
    let batch = db.recommend_batch(&refs, opts).expect("recommend_batch");
    let wall = t0.elapsed().as_secs_f64();
    let cpu = c0.zip(thread_cpu()).map_or(f64::NAN, |(a, b)| b - a);
    for (u, got) in refs.iter().zip(&batch).step_by(97) {
        assert_eq!(got, &db.recommend(u, opts).expect("recommend"), "user {u}");
    }
    println!(
        "recommend_batch, all {USERS} users: {:.3} ms/user CPU, {:.3} ms/user wall",
        cpu * 1e3 / USERS as f64,
        wall * 1e3 / USERS as f64
    );
}

/// Recall@10 of the indexed answers against the exact scan's, over 200 users.
fn recall(db: &Db, opts: &QueryOptions) {
    let exact = QueryOptions {
        exact: true,
        ..opts.clone()
    };
    let (mut found, mut wanted) = (0usize, 0usize);
    let mut tops = std::collections::HashSet::new();
    for u in 0..200 {
        let user = format!("u{}", u * 7 % USERS);
        let got = db.recommend(&user, opts).expect("recommend");
        let want = db.recommend(&user, &exact).expect("exact");
        wanted += want.len();
        tops.extend(want.first().map(|h| h.id.clone()));
        found += want
            .iter()
            .filter(|w| got.iter().any(|g| g.id == w.id))
            .count();
    }
    println!(
        "recall@10 of the index against the exact scan, 200 users: {:.3} ({} distinct exact top items: how different the users' queries are)",
        found as f64 / wanted.max(1) as f64,
        tops.len()
    );
}

fn percentiles(db: &Db) {
    let opts = QueryOptions::model("m").k(10);
    latencies(db, &opts, "recommend");
    batch(db, &opts);
    // The same users' vectors through the index alone (no history, no filter): tells
    // the index's share of the tail from the rest of `recommend`.
    let users = clustered_vectors(USERS, DIM, USER_SEED);
    let s = db.searcher("m.items").expect("searcher");
    let so = SearchOptions {
        k: 10,
        metric: Metric::Dot,
        ..SearchOptions::default()
    };
    let mut alone = Vec::with_capacity(2 * USERS);
    for round in 0..2 {
        for u in 0..USERS {
            let q = &users[((u * 7 + round) % USERS) * DIM..][..DIM];
            let t = Instant::now();
            std::hint::black_box(s.search(q, &so).expect("search"));
            alone.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    alone.sort_by(f64::total_cmp);
    let pa = |q: f64| percentile(&alone, q);
    println!(
        "index search alone, same user vectors: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms (wall)",
        pa(0.5),
        pa(0.9),
        pa(0.99),
        alone[alone.len() - 1]
    );
    let exact = QueryOptions {
        exact: true,
        ..opts.clone()
    };
    let t = Instant::now();
    for u in 0..20 {
        db.recommend(&format!("u{u}"), &exact).expect("exact");
    }
    println!(
        "recommend --exact: {:.2} ms/query (wall, 20 queries)",
        t.elapsed().as_secs_f64() * 50.0
    );
}

fn recommend(c: &mut Criterion) {
    if !selected("recommend_1m") {
        return;
    }
    let db = fixture();
    percentiles(&db);
    let opts = QueryOptions::model("m").k(10);
    let mut g = c.benchmark_group("recommend_1m");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let mut u = 0usize;
    g.bench_function("index_k10", |b| {
        b.iter(|| {
            u = (u + 13) % USERS;
            db.recommend(&format!("u{u}"), &opts).expect("recommend")
        })
    });
    g.finish();
}

/// The youtube fixture's users view only this popular head of the catalogue, so the
/// few epochs the bench can afford train the head's input embeddings and the tower
/// (with views spread over 1M items no embedding moves and every user's `u` is alike).
const YT_HEAD: usize = 5000;
const YT_EPOCHS: usize = 3;

/// The youtube fixture: `logged` plus searches and attributes, trained, indexed.
fn youtube_fixture() -> Db {
    let n = env("RECDB_REC_ITEMS", 1_000_000);
    let t = Instant::now();
    let db = logged(n, YT_HEAD);
    const WORDS: [&str; 8] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let mut b = db.batch();
    for u in 0..USERS {
        for s in 0..3 {
            let text = format!("{} {}", WORDS[(u + s) % 8], WORDS[(u * 3 + s) % 8]);
            // Between the views (timestamps 0..SEEN), so they are recent inputs.
            b.push_search(&format!("u{u}"), &text, (s * 20 + 5) as i64)
                .expect("push_search");
        }
    }
    b.commit().expect("commit searches");
    let users: Vec<UserRecord> = (0..USERS)
        .map(|u| UserRecord {
            id: format!("u{u}"),
            attrs: vec![
                ("gender".into(), if u % 2 == 0 { "M" } else { "F" }.into()),
                ("age".into(), (18 + u % 50).to_string()),
                ("occupation".into(), (u % 21).to_string()),
            ],
        })
        .collect();
    db.put_users(&users).expect("put_users");
    let logged_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let params = Params::new()
        .set("epochs", YT_EPOCHS)
        .set("softmax", "sampled")
        .set("features", "gender:cat,age:num,occupation:cat");
    db.train("youtube", &params, &TrainOptions::default())
        .expect("train youtube");
    let train_s = t.elapsed().as_secs_f64();
    let dim = db
        .tables()
        .expect("tables")
        .into_iter()
        .find(|t| t.name == "youtube.items")
        .expect("youtube.items")
        .dim as usize;
    let items = clustered_vectors(n, dim, 42);
    db.put_table("youtube.items", RowSpace::Items, dim, &items, vec![])
        .expect("clustered youtube.items");
    drop(items);
    let info = db
        .build_index(
            "youtube.items",
            &IndexOptions {
                metric: Metric::Dot,
                lists: Some(env("RECDB_REC_LISTS", 2000)),
                ..IndexOptions::default()
            },
        )
        .expect("build_index");
    println!(
        "youtube fixture: {n} items, {USERS} users x {SEEN} seen + 3 searches + 3 attributes; log {logged_s:.1} s, train {train_s:.1} s ({YT_EPOCHS} epochs, sampled softmax, views from the first {YT_HEAD} items), index {:.1} s ({} lists, nprobe {}, recall@10 {:.3})",
        info.build_seconds, info.lists, info.nprobe, info.recall
    );
    db
}

fn youtube(c: &mut Criterion) {
    if !selected("youtube_1m") {
        return;
    }
    let db = youtube_fixture();
    let opts = QueryOptions::model("youtube").k(10);
    latencies(&db, &opts, "recommend youtube");
    batch(&db, &opts);
    recall(&db, &opts);
    let mut g = c.benchmark_group("youtube_1m");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let mut u = 0usize;
    g.bench_function("index_k10", |b| {
        b.iter(|| {
            u = (u + 13) % USERS;
            db.recommend(&format!("u{u}"), &opts).expect("recommend")
        })
    });
    g.finish();
}

fn two_stage(c: &mut Criterion) {
    if !selected("two_stage_1m") {
        return;
    }
    let db = fixture();
    let t = Instant::now();
    let params = Params::new()
        .set("epochs", 1)
        .set("labels", "implicit")
        .set("negatives", 1)
        .set("validation", "off")
        .set("wide", "user,item")
        .set("recent", 10)
        .set("history", "m.items")
        .set("ensemble", env("RECDB_REC_ENSEMBLE", 3));
    db.train("wide-deep", &params, &TrainOptions::default())
        .expect("train wide-deep");
    println!(
        "wide-deep ranker: trained in {:.1} s ({} networks of 1 epoch, implicit labels, 1 negative, recent=10, history=m.items)",
        t.elapsed().as_secs_f64(),
        env("RECDB_REC_ENSEMBLE", 3)
    );
    let by_m = QueryOptions::model("m").k(10).candidates(200).rank("m");
    latencies(&db, &by_m, "two-stage, 200 candidates ranked by m (dot)");
    let opts = QueryOptions::model("m")
        .k(10)
        .candidates(200)
        .rank("wide-deep");
    latencies(&db, &opts, "two-stage, 200 candidates ranked by wide-deep");
    batch(&db, &opts);
    let mut g = c.benchmark_group("two_stage_1m");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let mut u = 0usize;
    g.bench_function("candidates200_wide_deep_k10", |b| {
        b.iter(|| {
            u = (u + 13) % USERS;
            db.recommend(&format!("u{u}"), &opts).expect("recommend")
        })
    });
    g.finish();
}

criterion_group!(benches, recommend, youtube, two_stage);
criterion_main!(benches);
