//! `recdb serve` from the outside: a server process on an ephemeral port and a real HTTP
//! client (ureq). Queries during publishes, SIGKILL during ingest, bad requests, the
//! token, `--connect`, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A server process; killed when dropped.
struct Server {
    child: Child,
    url: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Server {
    fn start(db: &Path, extra: &[&str]) -> Server {
        Server::try_start(db, extra).expect("server starts")
    }

    fn try_start(db: &Path, extra: &[&str]) -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_recdb"))
            .args(["serve", "--db"])
            .arg(db)
            .args(["--threads", "2"])
            .args(if extra.contains(&"--addr") {
                &[][..]
            } else {
                &["--addr", "127.0.0.1:0"][..]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let Some(url) = first.trim().strip_prefix("listening on ") else {
            let out = child.wait_with_output().unwrap();
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        };
        let token = extra.iter().position(|a| *a == "--token-file").map(|i| {
            std::fs::read_to_string(extra[i + 1])
                .unwrap()
                .trim()
                .to_owned()
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Server {
            child,
            url: url.to_owned(),
            token,
            agent,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut resp = match body {
            None => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                assert_eq!(method, "GET");
                r.call()
            }
            Some(b) => {
                let mut r = self.agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(b)
            }
        }
        .unwrap();
        let status = resp.status().as_u16();
        let v = resp.body_mut().read_json().unwrap_or(Value::Null);
        (status, v)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.call("POST", path, Some(body))
    }

    /// Start a job and wait for it to end; its final record.
    fn train(&self, body: Value) -> Value {
        let (st, v) = self.post("/v1/jobs", &body.to_string());
        assert_eq!(st, 202, "{v}");
        let id = v["job"].as_u64().unwrap();
        self.wait_job(id)
    }

    fn wait_job(&self, id: u64) -> Value {
        let t0 = Instant::now();
        loop {
            let (st, j) = self.get(&format!("/v1/jobs/{id}"));
            assert_eq!(st, 200, "{j}");
            if !matches!(j["state"].as_str(), Some("running" | "queued")) {
                return j;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "job {id} hangs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JSON lines of a small log: user u interacts with items of its cluster.
fn log_lines(users: usize, items: usize) -> String {
    let mut s = String::new();
    for u in 0..users {
        for j in 0..8 {
            let i = (u * 7 + j * 13) % items;
            let i = (i / 10) * 10 + (u % 10); // cluster by u % 10
            s.push_str(
                &json!({"user": format!("u{u}"), "item": format!("i{}", i % items), "timestamp": j})
                    .to_string(),
            );
            s.push('\n');
        }
    }
    s
}

fn loaded(dir: &Path, extra: &[&str]) -> Server {
    let srv = Server::start(&dir.join("db"), extra);
    let (st, v) = srv.post("/v1/events", &log_lines(300, 200));
    assert_eq!(st, 200, "{v}");
    srv
}

#[test]
fn bad_requests_get_4xx_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let srv = loaded(dir.path(), &[]);
    // A bad line: 400 naming the line and the field; nothing written.
    let body =
        "{\"user\":\"a\",\"item\":\"b\"}\n{\"user\":\"a\",\"item\":\"b\",\"value\":\"high\"}\n";
    let (st, v) = srv.post("/v1/events", body);
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["kind"], "Parse");
    assert_eq!(v["error"]["line"], 2);
    assert_eq!(v["error"]["field"], "value");
    let (_, stats) = srv.get("/v1/stats");
    assert_eq!(stats["events"], 2400, "the bad batch wrote nothing");
    let (st, v) = srv.post("/v1/events", r#"[{"user":"a"}]"#);
    assert_eq!((st, &v["error"]["field"]), (400, &json!("item")), "{v}");
    // A body past the limit: refused from its Content-Length, before it is read (a raw
    // request, as a client sending 17 MiB could see the connection closed mid-send).
    let mut tcp = std::net::TcpStream::connect(srv.url.trim_start_matches("http://")).unwrap();
    use std::io::{Read, Write};
    write!(
        tcp,
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        17 << 20
    )
    .unwrap();
    // The server answers without reading the body and may keep the connection open:
    // read until the answer is in, not to the end.
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut answer, mut buf) = (String::new(), [0u8; 4096]);
    while !answer.contains("BodyTooLarge") {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("BodyTooLarge"), "{answer}");
    let (st, v) = srv.post("/v1/events", r#"{"user":"u1","item":"i1","query":"q"}"#);
    assert_eq!((st, &v["error"]["field"]), (400, &json!("query")), "{v}");
    let (st, v) = srv.post("/v1/events", "{\"user\": ");
    assert_eq!((st, &v["error"]["kind"]), (400, &json!("Parse")), "{v}");

    // Queries: unknown ids and models are 404; a k past the limit is 400.
    srv.train(json!({"model": "popular"}));
    let (st, v) = srv.get("/v1/recommend?user=nobody&model=popular");
    assert_eq!(
        (st, &v["error"]["kind"], &v["error"]["id"]),
        (404, &json!("UnknownUser"), &json!("nobody"))
    );
    let (st, v) = srv.get("/v1/similar?item=i1&model=nosuch");
    assert_eq!(st, 404, "{v}");
    let (st, v) = srv.get("/v1/recommend?user=u1&model=popular&k=100000");
    assert_eq!((st, &v["error"]["param"]), (400, &json!("k")), "{v}");
    let (st, v) = srv.get("/v1/recommend?user=u1&k=many");
    assert_eq!(st, 400, "{v}");
    let (st, v) = srv.get("/v1/predict?user=u1");
    assert_eq!(st, 400, "{v}");
    // Two stages: candidates re-ranked; a count without a ranker is refused.
    let (st, v) = srv.get("/v1/recommend?user=u1&model=popular&rank=popular&candidates=20&k=5");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["hits"].as_array().map(Vec::len), Some(5), "{v}");
    let (st, v) = srv.get("/v1/recommend?user=u1&model=popular&candidates=20");
    assert_eq!(
        (st, &v["error"]["param"]),
        (400, &json!("candidates")),
        "{v}"
    );

    // Jobs: unknown model and job 404; a second job of a running model 409; cancelling
    // an ended job 409.
    let (st, v) = srv.post("/v1/jobs", r#"{"model":"alss"}"#);
    assert_eq!(
        (st, &v["error"]["kind"]),
        (404, &json!("UnknownModel")),
        "{v}"
    );
    assert_eq!(v["error"]["suggestion"], "als");
    let (st, v) = srv.get("/v1/jobs/999");
    assert_eq!(
        (st, &v["error"]["kind"]),
        (404, &json!("UnknownJob")),
        "{v}"
    );
    let long =
        json!({"model": "als", "params": {"iterations": 10000, "factors": 32}, "threads": 1});
    let (st, v) = srv.post("/v1/jobs", &long.to_string());
    assert_eq!(st, 202, "{v}");
    let id = v["job"].as_u64().unwrap();
    let (st, v) = srv.post("/v1/jobs", &long.to_string());
    assert_eq!(
        (st, &v["error"]["kind"]),
        (409, &json!("JobConflict")),
        "{v}"
    );
    assert_eq!(v["error"]["job"], id);
    let (st, _) = srv.post(&format!("/v1/jobs/{id}/cancel"), "");
    assert_eq!(st, 200);
    assert_eq!(srv.wait_job(id)["state"], "cancelled");
    let (st, v) = srv.post(&format!("/v1/jobs/{id}/cancel"), "");
    assert_eq!(
        (st, &v["error"]["kind"]),
        (409, &json!("JobFinished")),
        "{v}"
    );

    // The shell endpoint: an error keeps its kind and status.
    let (st, v) = srv.post("/v1/shell", r#"{"line":"history nobody"}"#);
    assert_eq!(
        (st, &v["error"]["kind"]),
        (404, &json!("UnknownUser")),
        "{v}"
    );
    let (st, v) = srv.post("/v1/shell", r#"{"line":"recomend u1"}"#);
    assert_eq!(st, 400, "{v}");
    let (st, v) = srv.get("/v1/nothing");
    assert_eq!(st, 404, "{v}");
}

#[test]
fn the_token_is_required_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let tok = token.to_str().unwrap();
    // No token: a non-loopback address is refused.
    let err = Server::try_start(&dir.path().join("db"), &["--addr", "0.0.0.0:0"])
        .err()
        .expect("refused");
    assert!(err.contains("--token-file"), "{err}");

    let srv = Server::start(&dir.path().join("db"), &["--token-file", tok]);
    let (st, v) = srv.get("/v1/stats");
    assert_eq!(st, 200, "{v}");
    let bare = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build();
    let bare: ureq::Agent = bare.into();
    let status = |req: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
        req.call().unwrap().status().as_u16()
    };
    let stats = format!("{}/v1/stats", srv.url);
    assert_eq!(status(bare.get(&stats)), 401);
    assert_eq!(
        status(
            bare.get(&stats)
                .header("Authorization", "Bearer s3cret-tokeN")
        ),
        401
    );
    assert_eq!(
        status(bare.get(&stats).header("Authorization", "Bearer s3cret")),
        401
    );
    let r = bare
        .post(format!("{}/v1/events", srv.url))
        .send(r#"[{"user":"a","item":"b"}]"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Health stays open (it says only that the server runs).
    assert_eq!(status(bare.get(format!("{}/v1/health", srv.url))), 200);

    // --connect with and without the token file.
    let out = Command::new(env!("CARGO_BIN_EXE_recdb"))
        .args(["--connect", &srv.url, "--token-file", tok, "-c", "stats"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_recdb"))
        .args(["--connect", &srv.url, "-c", "stats"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Bearer"));
}

/// Ids and scores (to 1e-4) of a recommendation answer.
fn answer(v: &Value) -> Vec<(String, i64)> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_owned(),
                (h["score"].as_f64().unwrap() * 1e4).round() as i64,
            )
        })
        .collect()
}

#[test]
fn queries_during_publishes_see_one_version_and_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Arc::new(loaded(dir.path(), &[]));
    let job = |seed: u64| json!({"model": "als", "seed": seed, "threads": 1, "params": {"factors": 16, "iterations": 15}});
    let q = "/v1/recommend?user=u7&k=10";
    // The two versions' answers (a single-threaded job is deterministic for its seed).
    srv.train(job(1));
    let a = answer(&srv.get(q).1);
    srv.train(job(2));
    let b = answer(&srv.get(q).1);
    assert_ne!(a, b, "the seeds give different models");

    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (srv, stop, queries) = (srv.clone(), stop.clone(), queries.clone());
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (st, v) = srv.get(q);
                    assert_eq!(st, 200, "a query failed during a publish: {v}");
                    let got = answer(&v);
                    assert!(
                        got == a || got == b,
                        "an answer of neither version: {got:?}"
                    );
                    queries.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Publish the two versions in turn while the clients query.
    for seed in [1, 2, 1, 2, 1, 2] {
        assert_eq!(srv.train(job(seed))["state"], "done");
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("a client saw a failure or a mixed answer");
    }
    assert!(queries.load(Ordering::Relaxed) > 10);
}

#[test]
fn a_server_killed_mid_ingest_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut srv = Server::start(&db, &[]);
    const BATCH: u64 = 200;
    let acked = Arc::new(AtomicU64::new(0));
    let srv_url = srv.url.clone();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (acked, url) = (acked.clone(), srv_url.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                for n in 0.. {
                    let body: String = (0..BATCH)
                        .map(|e| format!("{{\"user\":\"w{w}u{}\",\"item\":\"i{e}\"}}\n", n % 50))
                        .collect();
                    match agent.post(format!("{url}/v1/events")).send(&body) {
                        Ok(r) if r.status().as_u16() == 200 => {
                            acked.fetch_add(BATCH, Ordering::SeqCst);
                        }
                        // The server is gone: what it acknowledged is all that counts.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    while acked.load(Ordering::SeqCst) < 20 * BATCH && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    srv.child.kill().unwrap(); // SIGKILL
    srv.child.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.load(Ordering::SeqCst);
    assert!(
        acked >= 20 * BATCH,
        "the writers got {acked} events acknowledged"
    );
    let db = recdb::Db::open(&db).unwrap();
    let events = db.stats().unwrap().events;
    // Every acknowledged batch is there; at most the two in flight are there unacknowledged.
    assert!(
        events >= acked,
        "{events} events after the kill, {acked} acknowledged"
    );
    assert!(
        events <= acked + 2 * BATCH && events.is_multiple_of(BATCH),
        "{events} vs {acked}"
    );
}

#[test]
fn connect_runs_shell_commands_and_shutdown_is_graceful() {
    let dir = tempfile::tempdir().unwrap();
    let srv = loaded(dir.path(), &[]);
    let connect = |cmds: &str| {
        Command::new(env!("CARGO_BIN_EXE_recdb"))
            .args(["--connect", &srv.url, "-c", cmds])
            .output()
            .unwrap()
    };
    let out = connect("train popular; recommend u3 --model popular -k 3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("popular") && text.lines().count() >= 4,
        "{text}"
    );
    let out = connect("recommend nobody --model popular");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown user `nobody`"));
    // Piped stdin: one command a line, in JSON.
    let mut child = Command::new(env!("CARGO_BIN_EXE_recdb"))
        .args(["--connect", &srv.url, "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"# a comment\njobs\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let jobs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs[0]["model"], "popular");

    // `jobs` from another process while a job trains; then SIGTERM stops the server
    // cleanly, the running job cancelled.
    let (st, v) = srv.post(
        "/v1/jobs",
        &json!({"model": "als", "params": {"iterations": 10000, "factors": 32}, "threads": 1})
            .to_string(),
    );
    assert_eq!(st, 202, "{v}");
    let id = v["job"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let out = connect("jobs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("als") && l.contains("running")),
        "{text}"
    );
    let t0 = Instant::now();
    let mut srv = srv;
    let st = Command::new("kill")
        .args(["-TERM", &srv.pid()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = srv.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    let db = recdb::Db::open(dir.path().join("db")).unwrap();
    assert_eq!(db.job(id).unwrap().state.to_string(), "cancelled");
    assert_eq!(db.stats().unwrap().events, 2400);
}

/// A raw HTTP/1.1 request on its own connection (for what a well-behaved client does
/// not do: stall mid-body).
fn raw(srv: &Server, text: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(srv.url.trim_start_matches("http://")).unwrap();
    tcp.write_all(text.as_bytes()).unwrap();
    tcp
}

/// What the server answered on `tcp`, read until `until` is in it (or `limit` passed).
fn answer_on(tcp: &mut std::net::TcpStream, until: &str, limit: Duration) -> String {
    use std::io::Read;
    tcp.set_read_timeout(Some(limit)).unwrap();
    let (mut answer, mut buf) = (String::new(), [0u8; 4096]);
    while !answer.contains(until) {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    answer
}

#[test]
fn an_ingest_past_the_record_limit_is_refused_whole() {
    const LIMIT: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let srv = loaded(dir.path(), &[]);
    let lines = |n: usize| -> String {
        (0..n)
            .map(|i| format!("{{\"user\":\"x{}\",\"item\":\"y{}\"}}\n", i % 97, i % 89))
            .collect()
    };
    let refused = |path: &str, body: &str, got: usize| {
        let (st, v) = srv.post(path, body);
        assert_eq!(st, 413, "{v}");
        assert_eq!(v["error"]["kind"], "TooManyRecords", "{v}");
        assert_eq!(
            (&v["error"]["limit"], &v["error"]["got"]),
            (&json!(LIMIT), &json!(got))
        );
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("limit is {LIMIT}")), "{msg}");
    };
    refused("/v1/events", &lines(LIMIT + 1), LIMIT + 1);
    // As a JSON array too: past the limit the elements are only counted.
    let array = format!("[{}]", lines(LIMIT + 5).trim_end().replace('\n', ","));
    refused("/v1/events", &array, LIMIT + 5);
    let items: String = (0..=LIMIT)
        .map(|i| format!("{{\"id\":\"n{i}\"}}\n"))
        .collect();
    refused("/v1/items", &items, LIMIT + 1);
    let (_, stats) = srv.get("/v1/stats");
    assert_eq!(
        stats["events"], 2400,
        "a refused ingest wrote something: {stats}"
    );
    assert_eq!(stats["items"], 200, "{stats}");
    // At the limit: one commit.
    let (st, v) = srv.post("/v1/events", &lines(LIMIT));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["events"], LIMIT);
}

/// The peak resident memory of a process, in bytes (Linux).
#[cfg(target_os = "linux")]
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb << 10
}

#[cfg(target_os = "linux")]
#[test]
fn batch_lists_are_read_only_up_to_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let srv = loaded(dir.path(), &[]);
    let (st, v) = srv.post("/v1/recommend", r#"{"users": ["u1"], "k": 3}"#);
    assert_eq!(st, 404, "no model yet: {v}");
    let before = peak_rss(srv.child.id());
    // 4,000,000 one-letter ids in a 16 MB body: kept as strings they would take
    // ~250 MB; read up to the limit and counted past it, ~2 body copies.
    const N: usize = 4_000_000;
    let mut body = String::with_capacity(N * 4 + 32);
    body.push_str(r#"{"k": 3, "users": ["#);
    for i in 0..N {
        body.push_str(if i == 0 { "\"a\"" } else { ",\"a\"" });
    }
    body.push_str("]}");
    let (st, v) = srv.post("/v1/recommend", &body);
    assert_eq!((st, &v["error"]["param"]), (400, &json!("users")), "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("1 to 1000 users, got {N}")), "{msg}");
    let grew = peak_rss(srv.child.id()).saturating_sub(before);
    assert!(
        grew < 120 << 20,
        "the server's peak memory grew by {} MiB reading a 16 MB list",
        grew >> 20
    );
    // `rank`'s items: the same limit and message.
    let items: Vec<String> = (0..1001).map(|i| format!("i{i}")).collect();
    let (st, v) = srv.post(
        "/v1/rank",
        &json!({"user": "u1", "items": items, "model": "popular"}).to_string(),
    );
    assert_eq!((st, &v["error"]["param"]), (400, &json!("items")), "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1 to 1000 items, got 1001"));
}

#[test]
fn the_limits_are_flags_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for (flag, value) in [
        ("--max-requests", "0"),
        ("--max-requests", "100000"),
        ("--query-timeout", "0"),
        ("--body-timeout", "-1"),
        ("--shutdown-timeout", "NaN"),
        ("--max-jobs", "0"),
    ] {
        let arg = format!("{flag}={value}");
        let err = Server::try_start(&db, &[&arg])
            .err()
            .unwrap_or_else(|| panic!("{flag} {value} accepted"));
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

#[test]
fn requests_past_the_limit_get_503_and_a_stalled_body_408() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        &dir.path().join("db"),
        &["--max-requests", "1", "--body-timeout", "4"],
    );
    // A client that sends half a body holds the one request slot...
    let mut stalled = raw(
        &srv,
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"user\"",
    );
    std::thread::sleep(Duration::from_millis(300));
    // ... so another request waits (1 s at most), then gets 503.
    let t0 = Instant::now();
    let (st, v) = srv.get("/v1/stats");
    assert_eq!(
        (st, &v["error"]["kind"]),
        (503, &json!("Overloaded")),
        "{v}"
    );
    assert_eq!(v["error"]["limit"], 1);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // Health answers whatever the load.
    assert_eq!(srv.get("/v1/health").0, 200);
    // The stalled body is cut at --body-timeout, and the slot is free again.
    let answer = answer_on(&mut stalled, "BodyTimeout", Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--body-timeout"), "{answer}");
    let (st, v) = srv.get("/v1/stats");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["events"], 0, "the cut request wrote nothing");
}

#[test]
fn a_query_past_the_timeout_is_answered_503() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("db"), &["--query-timeout", "0.2"]);
    // 1000 users over 3000 items: a batch of every user with k = 1000 is a million
    // hits to score, sort and write (over a second); one user's top 10 is well under.
    let mut body = String::new();
    for u in 0..1000 {
        for j in 0..20 {
            let item = (u * 131 + j * 977) % 3000;
            body.push_str(&format!("{{\"user\":\"u{u}\",\"item\":\"i{item}\"}}\n"));
        }
    }
    let (st, v) = srv.post("/v1/events", &body);
    assert_eq!(st, 200, "{v}");
    let job = srv.train(json!({"model": "als", "params": {"factors": 64, "iterations": 1}}));
    assert_eq!(job["state"], "done", "{job}");
    let users: Vec<String> = (0..1000).map(|u| format!("u{u}")).collect();
    let (st, v) = srv.post(
        "/v1/recommend",
        &json!({"users": users, "k": 1000}).to_string(),
    );
    assert_eq!((st, &v["error"]["kind"]), (503, &json!("Timeout")), "{v}");
    assert_eq!(v["error"]["limit_seconds"], 0.2);
    let (st, v) = srv.get("/v1/recommend?user=u1&k=10");
    assert_eq!(st, 200, "{v}");
    // Writes are not cut by the query timeout.
    let (st, v) = srv.post("/v1/events", &body);
    assert_eq!(st, 200, "{v}");
}

#[test]
fn shell_commands_do_not_hold_a_request_for_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Arc::new(loaded(dir.path(), &["--query-timeout", "1"]));
    // A long `train` without --background: answered after the wait, the job going on.
    let (tx, rx) = std::sync::mpsc::channel();
    let s = srv.clone();
    std::thread::spawn(move || {
        let line = "train als --factors 32 --iterations 10000 --threads 1";
        let _ = tx.send(s.post(
            "/v1/shell",
            &json!({"line": line, "format": "json"}).to_string(),
        ));
    });
    let (st, v) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a long foreground train held its request");
    assert_eq!(st, 200, "{v}");
    let out: Value = serde_json::from_str(v["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(out["background"], true, "{out}");
    let id = out["job"].as_u64().unwrap();
    let (_, job) = srv.get(&format!("/v1/jobs/{id}"));
    assert_eq!(job["state"], "running", "{job}");
    let (st, _) = srv.post(&format!("/v1/jobs/{id}/cancel"), "");
    assert_eq!(st, 200);
    assert_eq!(srv.wait_job(id)["state"], "cancelled");
    // A quick one still answers with its job, as in a local shell.
    let (st, v) = srv.post(
        "/v1/shell",
        r#"{"line": "train popular", "format": "json"}"#,
    );
    assert_eq!(st, 200, "{v}");
    let out: Value = serde_json::from_str(v["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(out["state"], "done", "{out}");
    // Commands that work for minutes with no job to run in the background: refused.
    for line in ["eval --protocol loo --model popular --data nowhere", "demo"] {
        let (st, v) = srv.post("/v1/shell", &json!({ "line": line }).to_string());
        assert_eq!(st, 400, "{line}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("does not run over a server"), "{msg}");
    }
}

#[test]
fn jobs_past_the_cap_are_503_busy() {
    let dir = tempfile::tempdir().unwrap();
    let srv = loaded(dir.path(), &["--max-jobs", "1"]);
    let long =
        json!({"model": "als", "params": {"iterations": 10000, "factors": 32}, "threads": 1});
    let (st, v) = srv.post("/v1/jobs", &long.to_string());
    assert_eq!(st, 202, "{v}");
    let id = v["job"].as_u64().unwrap();
    let (st, v) = srv.post("/v1/jobs", r#"{"model": "popular"}"#);
    assert_eq!((st, &v["error"]["kind"]), (503, &json!("Busy")), "{v}");
    assert_eq!(v["error"]["limit"], 1);
    let (st, v) = srv.post("/v1/shell", r#"{"line": "train popular --background"}"#);
    assert_eq!((st, &v["error"]["kind"]), (503, &json!("Busy")), "{v}");
    let (_, jobs) = srv.get("/v1/jobs");
    assert_eq!(
        jobs.as_array().unwrap().len(),
        1,
        "a refused job left a record: {jobs}"
    );
    let (st, _) = srv.post(&format!("/v1/jobs/{id}/cancel"), "");
    assert_eq!(st, 200);
    assert_eq!(srv.wait_job(id)["state"], "cancelled");
    assert_eq!(srv.train(json!({"model": "popular"}))["state"], "done");
}

#[cfg(unix)]
#[test]
fn shutdown_does_not_wait_for_a_stuck_request_past_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = loaded(dir.path(), &["--shutdown-timeout", "1"]);
    // `import events FIFO` blocks in open() until a writer comes: none will.
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (url, line) = (srv.url.clone(), format!("import events {}", fifo.display()));
    let stuck = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        // Ends when the server exits and the connection drops.
        let _ = agent
            .post(format!("{url}/v1/shell"))
            .send(json!({ "line": line }).to_string());
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(Command::new("kill")
        .args(["-TERM", &srv.pid()])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server still runs {:?} after SIGTERM",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    stuck.join().unwrap();
    let db = recdb::Db::open(dir.path().join("db")).unwrap();
    assert_eq!(db.stats().unwrap().events, 2400);
}
