//! `recdb serve`: the database over HTTP/JSON (axum on tokio), so that several processes
//! (a web app, an importer, a person at `recdb --connect`) share one database that one
//! process owns. Every handler runs its blocking database call on tokio's blocking pool
//! (`spawn_blocking`), never on the executor. See docs/SERVER.md.

mod auth;
mod errors;
mod events;
mod routes;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;

use recdb::Db;

use crate::session::open_db;

/// The largest request body accepted (16 MiB): an ingest of ~200,000 events a request.
pub const MAX_BODY: usize = 16 << 20;
/// The largest `k` of a query.
pub const MAX_K: usize = 1000;
/// The most users of one batched `recommend` and items of one `rank`.
pub const MAX_BATCH: usize = 1000;
/// The most bytes of output one `/v1/shell` command returns (the rest is cut).
pub const MAX_SHELL_OUTPUT: usize = 8 << 20;
/// Threads of tokio's blocking pool, where the database calls run (the database's own
/// rayon pool does their parallel work).
const BLOCKING_THREADS: usize = 64;
/// How long shutdown waits for cancelled jobs to stop before flushing anyway.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

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
}

/// What every handler shares.
pub struct AppState {
    pub db: Db,
    pub db_path: PathBuf,
    /// The bearer token, when one is set.
    pub token: Option<Vec<u8>>,
    /// Set when shutdown starts: new requests get 503.
    pub stopping: AtomicBool,
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
    let token = a.token_file.as_deref().map(read_token).transpose()?;
    let addr = resolve(&a.addr, token.is_some())?;
    let db = open_db(&path, a.threads)?;
    let state = Arc::new(AppState {
        db,
        db_path: path,
        token: token.map(String::into_bytes),
        stopping: AtomicBool::new(false),
    });
    // Async work is only parsing and shipping bytes: two workers are plenty on a small
    // machine, at most four on a big one (the database's pool does the heavy work).
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_io()
        .enable_time()
        .thread_name("recdb-serve")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(state.clone(), addr))?;
    drop(rt);
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
    let on_stop = {
        let state = state.clone();
        async move {
            stop.notified().await;
            eprintln!("recdb serve: stopping (no new requests; cancelling running jobs)");
            state.stopping.store(true, Ordering::SeqCst);
            // A request waiting on a foreground `train` ends once its job stops.
            cancel_running(&state.db);
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(on_stop)
        .await
        .context("serving")?;
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

/// After the last request: wait (bounded) for the cancelled jobs, join maintenance,
/// flush.
fn shut_down(state: &AppState) -> Result<()> {
    let db = &state.db;
    cancel_running(db);
    let t0 = Instant::now();
    loop {
        let running = db
            .jobs()
            .map(|j| j.iter().filter(|j| !j.state.is_finished()).count())
            .unwrap_or(0);
        if running == 0 {
            break;
        }
        if t0.elapsed() > SHUTDOWN_WAIT {
            eprintln!(
                "recdb serve: {running} job(s) still stopping after {} s; the next open marks them interrupted",
                SHUTDOWN_WAIT.as_secs()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if t0.elapsed() <= SHUTDOWN_WAIT {
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
