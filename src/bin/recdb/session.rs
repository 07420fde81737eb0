//! The session: what the commands of one process share (the database, opened on first
//! use; the output mode; the background jobs to report and join).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde_json::json;

use recdb::{Config, Db, JobHandle, JobInfo};

use crate::output::{Mode, Output};

/// How the commands are being run; decides what `--background` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// One command, or `-c`: the process ends after the commands.
    OneShot,
    /// The interactive shell or piped stdin: jobs may outlive a command.
    Shell,
    /// A `/v1/shell` request of `recdb serve`, on one of the server's request slots: a
    /// command that runs a job in the foreground runs it in the background and waits
    /// for it at most `wait`, and commands that take minutes are refused.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // only `serve` makes one
    Served { wait: Duration },
}

/// State shared by the commands of one process.
pub struct Session {
    pub db_path: Option<PathBuf>,
    pub threads: Option<usize>,
    pub mode: Mode,
    pub run_mode: RunMode,
    db: Option<Db>,
    background: Vec<JobHandle>,
}

impl Session {
    pub fn new(
        db_path: Option<PathBuf>,
        threads: Option<usize>,
        mode: Mode,
        run_mode: RunMode,
    ) -> Session {
        Session {
            db_path,
            threads,
            mode,
            run_mode,
            db: None,
            background: Vec::new(),
        }
    }

    /// A session on a database opened elsewhere: each `/v1/shell` request of the server
    /// runs in one, sharing the server's `Db` (jobs it starts in the background outlive it).
    #[allow(dead_code)] // only `serve` (a cargo feature) calls it
    pub fn with_db(db: Db, path: PathBuf, mode: Mode, wait: Duration) -> Session {
        Session {
            db_path: Some(path),
            threads: None,
            mode,
            run_mode: RunMode::Served { wait },
            db: Some(db),
            background: Vec::new(),
        }
    }

    /// The database, opened on first use.
    pub fn db(&mut self) -> Result<&Db> {
        if self.db.is_none() {
            let path = self.db_path.clone().ok_or_else(|| {
                anyhow!("no database: pass --db PATH (only `demo` and `eval` run without one)")
            })?;
            self.db = Some(open_db(&path, self.threads)?);
        }
        Ok(self.db.as_ref().expect("opened above"))
    }

    /// Close the database (jobs joined first); the next command opens it again.
    pub fn close(&mut self) {
        self.finish_background();
        self.db = None;
    }

    /// Switch to another database (the shell's `.open`).
    pub fn open(&mut self, path: PathBuf) -> Result<()> {
        self.finish_background();
        let db = open_db(&path, self.threads)?;
        self.db = Some(db);
        self.db_path = Some(path);
        Ok(())
    }

    /// Print a command's result in the session's output mode.
    pub fn print(&self, out: &Output) {
        out.print(self.mode);
    }

    /// Report and join background jobs that have ended (called before each prompt).
    pub fn reap(&mut self) {
        let Some(db) = self.db.clone() else { return };
        let mut still = Vec::new();
        for h in self.background.drain(..) {
            let done = db.job(h.id).map(|j| j.state.is_finished()).unwrap_or(true);
            if done {
                wait_and_report(h);
            } else {
                still.push(h);
            }
        }
        self.background = still;
    }

    /// Keep a background job to report when it ends.
    pub fn keep_background(&mut self, h: JobHandle) {
        self.background.push(h);
    }

    /// In one-shot mode, wait for the maintenance jobs a publish started (index builds):
    /// the process is about to end and would interrupt them.
    pub fn wait_maintenance_if_one_shot(&self) {
        if self.run_mode == RunMode::OneShot {
            self.wait_maintenance();
        }
    }

    fn wait_maintenance(&self) {
        let Some(db) = &self.db else { return };
        let n = db.maintenance_pending();
        if n == 0 {
            return;
        }
        eprintln!(
            "waiting for {n} maintenance job(s) (index builds after a publish; `jobs` lists them)"
        );
        for r in db.wait_maintenance() {
            match r {
                Ok(info) => eprintln!(
                    "[job {} {} {} in {:.2} s: {}]",
                    info.id, info.model, info.state, info.seconds, info.message
                ),
                Err(e) => eprintln!("[maintenance job ended: {e}]"),
            }
        }
    }

    /// Wait for background jobs before the process ends (it would interrupt them).
    pub fn finish_background(&mut self) {
        self.wait_maintenance();
        if self.background.is_empty() {
            return;
        }
        eprintln!(
            "waiting for {} background job(s) to finish (ending the process would interrupt them)",
            self.background.len()
        );
        for h in self.background.drain(..) {
            wait_and_report(h);
        }
    }
}

pub fn open_db(path: &Path, threads: Option<usize>) -> Result<Db> {
    open_config(Config {
        path: Some(path.to_path_buf()),
        threads: threads.unwrap_or(0),
        ..Config::default()
    })
}

/// Open the database of `config` (which has a path), warning of an incomplete restore.
pub fn open_config(config: Config) -> Result<Db> {
    let path = config.path.clone().unwrap_or_default();
    let db = Db::open_with(config).map_err(|e| anyhow!("cannot open {}: {e}", path.display()))?;
    if let Some(dump) = db.incomplete_restore()? {
        eprintln!(
            "warning: {} holds an incomplete restore of `{dump}`; run `restore` again to finish it",
            path.display()
        );
    }
    Ok(db)
}

/// How a job started for a foreground command of a served session ended.
pub enum Waited {
    Ended(recdb::Result<JobInfo>),
    /// Still running after the wait: it goes on in the background.
    Running(JobHandle),
}

/// Wait for the job of `h` at most `wait` (its record says when it has ended).
pub fn wait_at_most(db: &Db, h: JobHandle, wait: Duration) -> Waited {
    let t0 = Instant::now();
    loop {
        // A record that cannot be read: the join says how the job ended.
        let ended = db.job(h.id).map_or(true, |j| j.state.is_finished());
        if ended {
            return Waited::Ended(h.wait());
        }
        let left = wait.saturating_sub(t0.elapsed());
        if left.is_zero() {
            return Waited::Running(h);
        }
        std::thread::sleep(left.min(Duration::from_millis(10)));
    }
}

/// What a served session answers for a job that outlived its wait.
pub fn still_running(id: u64, what: &str, wait: Duration) -> Output {
    Output::text(
        format!(
            "job {id} ({what}) goes on in the background: a server waits {} s for a command's job              (`jobs` follows it, `jobs cancel {id}` stops it)",
            wait.as_secs_f64()
        ),
        json!({"job": id, "model": what, "background": true}),
    )
}

/// Join a background job and say on stderr how it ended.
fn wait_and_report(h: recdb::JobHandle) {
    let id = h.id;
    match h.wait() {
        Ok(info) => eprintln!(
            "[job {id} {} {} in {:.2} s]",
            info.model, info.state, info.seconds
        ),
        Err(e) => eprintln!("[job {id} ended: {e}]"),
    }
}
