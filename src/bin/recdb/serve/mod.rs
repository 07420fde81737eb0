//! `recdb serve`: the database over HTTP/JSON (axum on tokio), so that several processes
//! (a web app, an importer, a person at `recdb --connect`) share one database that one
//! process owns. Every handler runs its blocking database call on tokio's blocking pool
//! (`spawn_blocking`), never on the executor. See docs/SERVER.md.

mod auth;
mod errors;
mod events;
mod limits;
mod routes;

use std::future::{Future, IntoFuture};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;

use recdb::{Config, Db};

use crate::session::open_config;

/// The largest request body accepted (16 MiB).
pub const MAX_BODY: usize = 16 << 20;
/// The most records (events, items or users) of one ingest request: what one atomic
/// commit of a request may hold, and what its parsed records cost in memory (a 16 MiB
/// body of short events would be ~700,000 of them).
pub const MAX_RECORDS_PER_REQUEST: usize = 100_000;
/// The largest `k` of a query.
pub const MAX_K: usize = 1000;
/// The most users of one batched `recommend` and items of one `rank`.
pub const MAX_BATCH: usize = 1000;
/// The most bytes of output one `/v1/shell` command returns (the rest is cut).
pub const MAX_SHELL_OUTPUT: usize = 8 << 20;
/// The most `--max-requests` (each may hold a 16 MiB body and a blocking thread).
const MAX_REQUESTS_LIMIT: usize = 1024;
/// The longest timeout a flag takes, in seconds (a day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// `recdb serve`: answer HTTP/JSON requests on one database.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The database directory.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Address to listen on (port 0: any free port; the bound address is the first line
    /// printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub addr: String,
    /// A file holding the bearer token every request must carry (required for an
    /// address other than loopback).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Threads of the database's pool (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Requests handled at once (1 to 1024); one more waits up to 1 s for one to end,
    /// then gets 503 `Overloaded`.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_requests: usize,
    /// Seconds a query may run before its answer is 503 `Timeout`; also how long a
    /// `/v1/shell` `train`, `index build` or `table compact` waits for its job before
    /// answering that it goes on in the background. Writes are not cut.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub query_timeout: f64,
    /// Seconds a request's body may take to arrive (then 408 `BodyTimeout`).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub body_timeout: f64,
    /// Jobs (training, index builds, compactions) running at once; one more is 503
    /// `Busy`.
    #[arg(long, value_name = "N", default_value_t = recdb::MAX_JOBS)]
    pub max_jobs: usize,
    /// Seconds shutdown waits for the requests under way and the cancelled jobs before
    /// it flushes the database and exits.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub shutdown_timeout: f64,
}

/// The validated limits of `recdb serve`'s flags.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_requests: usize,
    pub query_timeout: Duration,
    pub body_timeout: Duration,
    pub max_jobs: usize,
    pub shutdown_timeout: Duration,
}

/// A timeout flag's seconds, or an error naming the flag.
fn timeout_flag(flag: &str, secs: f64) -> Result<Duration> {
    if !(secs > 0.0 && secs <= MAX_TIMEOUT_SECS) {
        bail!("--{flag} {secs}: must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds");
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Limits {
    pub fn from_args(a: &ServeArgs) -> Result<Limits> {
        if !(1..=MAX_REQUESTS_LIMIT).contains(&a.max_requests) {
            bail!(
                "--max-requests {}: must be 1 to {MAX_REQUESTS_LIMIT}",
                a.max_requests
            );
        }
        if a.max_jobs == 0 {
            bail!("--max-jobs 0: must be at least 1");
        }
        Ok(Limits {
            max_requests: a.max_requests,
            query_timeout: timeout_flag("query-timeout", a.query_timeout)?,
            body_timeout: timeout_flag("body-timeout", a.body_timeout)?,
            max_jobs: a.max_jobs,
            shutdown_timeout: timeout_flag("shutdown-timeout", a.shutdown_timeout)?,
        })
    }
}

/// What every handler shares.
pub struct AppState {
    pub db: Db,
    pub db_path: PathBuf,
    /// The bearer token, when one is set.
    pub token: Option<Vec<u8>>,
    /// Set when shutdown starts: new requests get 503.
    pub stopping: AtomicBool,
    /// When shutdown started: every wait of the shutdown ends `--shutdown-timeout` after.
    pub stopped_at: OnceLock<Instant>,
    pub limits: Limits,
    /// One permit per request in flight (`--max-requests`).
    pub slots: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// What is left of the shutdown's time (all of it before shutdown starts).
    fn shutdown_left(&self) -> Duration {
        let spent = self
            .stopped_at
            .get()
            .map_or(Duration::ZERO, Instant::elapsed);
        self.limits.shutdown_timeout.saturating_sub(spent)
    }
}

pub type State = Arc<AppState>;

/// Read a token file: its first line, trimmed; empty is refused.
pub fn read_token(path: &std::path::Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        bail!("token file {} is empty", path.display());
    }
    Ok(token)
}

/// Resolve `addr`; refuse a non-loopback one without a token.
fn resolve(addr: &str, has_token: bool) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("--addr {addr}"))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| anyhow!("--addr {addr} resolves to no address"))?;
    if !has_token && !addrs.iter().all(|a| a.ip().is_loopback()) {
        bail!(
            "--addr {addr} is not a loopback address: anyone who can reach it could read and \
             change the database; pass --token-file FILE (requests then need \
             `Authorization: Bearer TOKEN`)"
        );
    }
    Ok(first)
}

/// Run the server until SIGINT or SIGTERM; then stop accepting, cancel running jobs,
/// flush, and return.
pub fn run(a: ServeArgs) -> Result<()> {
    let path =
        a.db.clone()
            .ok_or_else(|| anyhow!("serve needs --db PATH"))?;
    let limits = Limits::from_args(&a)?;
    let token = a.token_file.as_deref().map(read_token).transpose()?;
    let addr = resolve(&a.addr, token.is_some())?;
    let db = open_config(Config {
        path: Some(path.clone()),
        threads: a.threads.unwrap_or(0),
        max_jobs: limits.max_jobs,
        ..Config::default()
    })?;
    let state = Arc::new(AppState {
        db,
        db_path: path,
        token: token.map(String::into_bytes),
        stopping: AtomicBool::new(false),
        stopped_at: OnceLock::new(),
        slots: Arc::new(tokio::sync::Semaphore::new(limits.max_requests)),
        limits,
    });
    // Async work is only parsing and shipping bytes: two workers are plenty on a small
    // machine, at most four on a big one (the database's pool does the heavy work).
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    // A request runs one blocking call at a time and its slot is held until that call
    // ends (even past a timeout): the blocking pool never queues.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(state.limits.max_requests)
        .enable_io()
        .enable_time()
        .thread_name("recdb-serve")
        .build()
        .context("starting the async runtime")?;
    let served = rt.block_on(serve(state.clone(), addr));
    // A blocking call still running (a request cut at the deadline, a command stuck
    // on a file) must not hold the exit: it is abandoned after the time left.
    rt.shutdown_timeout(state.shutdown_left());
    served?;
    shut_down(&state)
}

async fn serve(state: State, addr: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr().context("the bound address")?;
    // The first line on stdout: scripts and tests started with port 0 read it.
    println!("listening on http://{bound}");
    eprintln!(
        "recdb serve: database {} on http://{bound}{}; Ctrl-C or SIGTERM stops",
        state.db_path.display(),
        if state.token.is_some() {
            " (bearer token required)"
        } else {
            ""
        }
    );
    let app = routes::router(state.clone());
    let stop = Arc::new(tokio::sync::Notify::new());
    spawn_signal_watchers(stop.clone())?;
    let (stopped_tx, mut stopped_rx) = tokio::sync::watch::channel(false);
    let on_stop = {
        let state = state.clone();
        async move {
            stop.notified().await;
            eprintln!("recdb serve: stopping (no new requests; cancelling running jobs)");
            let _ = state.stopped_at.set(Instant::now());
            state.stopping.store(true, Ordering::SeqCst);
            // A request waiting on a `train` over `/v1/shell` ends once its job stops.
            cancel_running(&state.db);
            let _ = stopped_tx.send(true);
        }
    };
    let serving = axum::serve(listener, app).with_graceful_shutdown(on_stop);
    // The graceful shutdown waits for every request under way; one that never ends
    // (a client stalling, a command stuck on a file) is cut at the deadline.
    let deadline = async {
        if stopped_rx.wait_for(|s| *s).await.is_ok() {
            tokio::time::sleep(state.shutdown_left()).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let mut serving = std::pin::pin!(serving.into_future());
    let mut deadline = std::pin::pin!(deadline);
    let served = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = serving.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        deadline.as_mut().poll(cx).map(|()| None)
    })
    .await;
    match served {
        Some(r) => r.context("serving")?,
        None => eprintln!(
            "recdb serve: requests still under way after {} s; closing their connections",
            state.limits.shutdown_timeout.as_secs_f64()
        ),
    }
    Ok(())
}

/// SIGINT and SIGTERM both start the graceful shutdown.
fn spawn_signal_watchers(stop: Arc<tokio::sync::Notify>) -> Result<()> {
    let s = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            s.notify_one();
        }
    });
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
        tokio::spawn(async move {
            if term.recv().await.is_some() {
                stop.notify_one();
            }
        });
    }
    Ok(())
}

/// Ask every running job (training and maintenance) to stop.
fn cancel_running(db: &Db) {
    match db.jobs() {
        Ok(jobs) => {
            for j in jobs.iter().filter(|j| !j.state.is_finished()) {
                // A job that ended meanwhile is `UnknownJob` here: nothing to stop.
                let _ = db.cancel_job(j.id);
            }
        }
        Err(e) => eprintln!("recdb serve: cannot list jobs to cancel them: {e}"),
    }
}

/// After the last request: wait (until the shutdown's deadline) for the cancelled jobs,
/// join maintenance, flush.
fn shut_down(state: &AppState) -> Result<()> {
    let db = &state.db;
    cancel_running(db);
    let left = state.shutdown_left();
    let t0 = Instant::now();
    loop {
        let running = db
            .jobs()
            .map(|j| j.iter().filter(|j| !j.state.is_finished()).count())
            .unwrap_or(0);
        if running == 0 {
            break;
        }
        if t0.elapsed() > left {
            eprintln!(
                "recdb serve: {running} job(s) still stopping after {} s; the next open marks them interrupted",
                state.limits.shutdown_timeout.as_secs_f64()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if t0.elapsed() <= left {
        for r in db.wait_maintenance() {
            if let Err(e) = r {
                eprintln!("recdb serve: maintenance job ended: {e}");
            }
        }
    }
    db.flush().context("flushing the database")?;
    eprintln!("recdb serve: stopped");
    Ok(())
}
