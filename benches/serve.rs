//! `recommend` over HTTP (`recdb serve`) against the same call in process: the cost of
//! the HTTP layer (parsing, JSON, the hop to the blocking pool, the loopback socket).
//!
//! Fixture (as the `recommend` bench's): RECDB_SERVE_ITEMS items (default 100,000; the
//! documented figures use 1,000,000) × 64 dims published as `m.items`, 2000 users with
//! 50 viewed items each (left out of the answers) as `m.users`, a dot-product index
//! (RECDB_SERVE_LISTS lists, default 2000 at 1M items and the library's default below).
//! Then, for 1, 2, 4 and 8 concurrent clients (threads, each with its own keep-alive
//! connection), RECDB_SERVE_QUERIES queries in all (default 4000) of
//! `GET /v1/recommend?user=U&model=m&k=10`, and the same number of `Db::recommend` calls
//! from as many threads in process: throughput and per-query p50/p99.
//!
//! `cargo bench --bench serve` (`RECDB_SERVE_ITEMS=1000000` for the documented figures).
//! The server is this build's `recdb serve` in its own process, started on the
//! fixture's directory after the bench closes it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use recdb::testkit::clustered_vectors;
use recdb::{Config, Db, EventKind, IndexOptions, Metric, QueryOptions, RowSpace};

mod common;
use common::env;

const DIM: usize = 64;
const USERS: usize = 2000;
const SEEN: usize = 50;
const CLIENTS: [usize; 4] = [1, 2, 4, 8];

fn fixture(path: &std::path::Path, n: usize) {
    let t = Instant::now();
    let db = Db::open_with(Config {
        path: Some(path.to_path_buf()),
        auto_index_rows: 0,
        ..Config::default()
    })
    .expect("db");
    let mut b = db.batch();
    // One catalog user viewing every item gives the items dense ids 0..n in order.
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
            let i = (x >> 33) as usize % n;
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
    let items = clustered_vectors(n, DIM, 42);
    let mut users = vec![0f32; (USERS + 1) * DIM];
    users[DIM..].copy_from_slice(&clustered_vectors(USERS, DIM, 43));
    users[..DIM].fill(0.125);
    db.put_table("m.users", RowSpace::Users, DIM, &users, vec![])
        .expect("users");
    db.put_table("m.items", RowSpace::Items, DIM, &items, vec![])
        .expect("items");
    let lists = match env("RECDB_SERVE_LISTS", 0) {
        0 if n >= 1_000_000 => Some(2000),
        0 => None,
        l => Some(l),
    };
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
    db.flush().expect("flush");
    // The same queries on the handle that built the index, before the reopen the runs
    // below do: tells a cost of reopening apart from the HTTP layer's.
    let opts = QueryOptions::model("m").k(10);
    let me = std::process::id();
    let (cpu0, t0) = (process_cpu(me), Instant::now());
    let mut lat: Vec<f64> = (0..USERS)
        .map(|u| {
            let t = Instant::now();
            db.recommend(&format!("u{u}"), &opts).expect("recommend");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "on the building handle: {USERS} queries, p50 {:.3} ms, CPU {:.3} ms/query, {:.1} s",
        lat[lat.len() / 2],
        (process_cpu(me) - cpu0) * 1e3 / USERS as f64,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "fixture: {n} items x {DIM}, {USERS} users x {SEEN} seen, index {} lists (recall@10 {:.3}), {:.1} s",
        info.lists,
        info.recall,
        t.elapsed().as_secs_f64()
    );
}

/// Throughput and per-query latencies of `queries` calls of `call(user)` spread over
/// `clients` threads.
fn run<F>(clients: usize, queries: usize, call: F) -> (f64, f64, f64)
where
    F: Fn(usize, &str) + Send + Sync + 'static,
{
    let call = Arc::new(call);
    let per = queries / clients;
    let t0 = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let call = call.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(per);
                for q in 0..per {
                    let user = format!("u{}", (q * clients + c) * 7 % USERS);
                    let t = Instant::now();
                    call(c, &user);
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .collect();
    let wall = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    (lat.len() as f64 / wall, p(0.5), p(0.99))
}

/// User plus system CPU seconds of process `pid` so far, its ended threads included
/// (/proc/PID/stat; Linux, 100 ticks a second).
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with the last `)`): utime is the 12th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// One measurement: throughput, p50, p99 (ms) and CPU ms per query.
type Figures = (f64, f64, f64, f64);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median of each figure over the rounds.
fn medians(runs: &[Figures]) -> Figures {
    (
        median(runs.iter().map(|r| r.0).collect()),
        median(runs.iter().map(|r| r.1).collect()),
        median(runs.iter().map(|r| r.2).collect()),
        median(runs.iter().map(|r| r.3).collect()),
    )
}

fn in_process(path: &std::path::Path, queries: usize) -> Vec<Figures> {
    let db = Db::open(path).expect("open");
    let opts = QueryOptions::model("m").k(10);
    for u in 0..USERS {
        db.recommend(&format!("u{u}"), &opts).expect("warm-up");
    }
    let me = std::process::id();
    CLIENTS
        .iter()
        .map(|&c| {
            let (db2, opts) = (db.clone(), opts.clone());
            let cpu0 = process_cpu(me);
            let (q, p50, p99) = run(c, queries, move |_, user| {
                let hits = db2.recommend(user, &opts).expect("recommend");
                assert_eq!(hits.len(), 10);
            });
            let cpu = (process_cpu(me) - cpu0) * 1e3 / queries as f64;
            (q, p50, p99, cpu)
        })
        .collect()
}

fn over_http(path: &std::path::Path, queries: usize) -> Vec<Figures> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recdb"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("recdb serve");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the server's address");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("listening on URL")
        .to_owned();
    let agents: Arc<Vec<ureq::Agent>> = Arc::new(
        (0..CLIENTS[CLIENTS.len() - 1])
            .map(|_| ureq::Agent::new_with_defaults())
            .collect(),
    );
    let get = move |c: usize, user: &str| {
        let body = agents[c]
            .get(format!("{url}/v1/recommend?model=m&k=10&user={user}"))
            .call()
            .expect("GET /v1/recommend")
            .body_mut()
            .read_to_string()
            .expect("body");
        assert!(body.starts_with("{\"hits\":[{"), "{body}");
    };
    for u in 0..USERS {
        get(u % CLIENTS[CLIENTS.len() - 1], &format!("u{u}"));
    }
    let (me, server) = (std::process::id(), child.id());
    let out = CLIENTS
        .iter()
        .map(|&c| {
            let g = get.clone();
            let cpu0 = process_cpu(me) + process_cpu(server);
            let (q, p50, p99) = run(c, queries, move |c, u| g(c, u));
            let cpu = (process_cpu(me) + process_cpu(server) - cpu0) * 1e3 / queries as f64;
            (q, p50, p99, cpu)
        })
        .collect();
    // SIGKILL is safe: the bench wrote nothing through the server.
    let _ = child.kill();
    let _ = child.wait();
    out
}

fn main() {
    // `cargo bench` passes flags (`--bench`); this harness takes none.
    let n = env("RECDB_SERVE_ITEMS", 100_000);
    let queries = env("RECDB_SERVE_QUERIES", 2000);
    let rounds = env("RECDB_SERVE_ROUNDS", 3).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    fixture(&path, n);
    // Alternate the two so the machine's other load falls on both alike.
    let (mut inproc, mut http) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        inproc.push(in_process(&path, queries));
        http.push(over_http(&path, queries));
    }
    println!(
        "recommend k=10 at {n} items; {queries} queries a row, medians of {rounds} alternating rounds; CPU: client and server processes together; shared 2-core machine"
    );
    println!("| clients | in process: q/s, p50, p99, CPU/query | HTTP: q/s, p50, p99, CPU/query | HTTP/in-process CPU per query |");
    println!("|---|---|---|---|");
    for (i, c) in CLIENTS.into_iter().enumerate() {
        let (iq, i50, i99, icpu) = medians(&inproc.iter().map(|r| r[i]).collect::<Vec<_>>());
        let (hq, h50, h99, hcpu) = medians(&http.iter().map(|r| r[i]).collect::<Vec<_>>());
        println!(
            "| {c} | {iq:.0} q/s, {i50:.3} ms, {i99:.3} ms, {icpu:.3} ms | {hq:.0} q/s, {h50:.3} ms, {h99:.3} ms, {hcpu:.3} ms | {:.2}x |",
            hcpu / icpu
        );
    }
}
