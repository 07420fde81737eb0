//! The owner file: which process holds a database directory and what it is doing, so
//! that another process that cannot open the directory (sled locks it) can say why.
//!
//! The file is advisory: failing to write it never fails the holder's work, and a file
//! left by a process that died (its pid is gone) is ignored.

use crate::error::OrPoisoned;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name of the owner file inside the database directory.
pub(crate) const FILE: &str = "recdb.owner";
/// Progress is written at most this often (a job reports far more often).
const REFRESH: Duration = Duration::from_secs(1);
/// An owner file is a few hundred bytes; anything longer is not ours.
const MAX_BYTES: u64 = 4096;
/// The command line recorded is cut to this many characters.
const MAX_COMMAND: usize = 200;

/// What the owner file says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct OwnerInfo {
    pub pid: u32,
    /// The program's file name (e.g. `recdb`).
    pub program: String,
    /// Its command line, cut to a bounded length.
    pub command: String,
    /// The running job and its progress, or empty when idle.
    pub activity: String,
}

/// The holder's side: writes the file when the database is opened, refreshes the
/// activity, removes the file when dropped.
pub(crate) struct Owner {
    dir: PathBuf,
    /// What the process is doing, when the file was last written, and whether `info`
    /// has changed since.
    info: Mutex<(OwnerInfo, Option<Instant>, bool)>,
}

impl Owner {
    pub fn claim(dir: &Path) -> Owner {
        let mut args = std::env::args();
        let program = args
            .next()
            .and_then(|a| {
                Path::new(&a)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "a process".into());
        let command: String = args.collect::<Vec<_>>().join(" ");
        let info = OwnerInfo {
            pid: std::process::id(),
            program,
            command: command.chars().take(MAX_COMMAND).collect(),
            activity: String::new(),
        };
        write(dir, &info);
        Owner {
            dir: dir.to_owned(),
            info: Mutex::new((info, Some(Instant::now()), false)),
        }
    }

    /// Record what the process is doing; written at most once per `REFRESH` unless
    /// `now` (a job's start and end are always written). An activity kept in memory
    /// (reported within `REFRESH` of the last write) is written by the next report
    /// after it, even one that repeats it.
    pub fn note(&self, activity: &str, now: bool) {
        let mut guard = self.info.lock().recover();
        let (info, last, unwritten) = &mut *guard;
        if info.activity != activity {
            info.activity = activity.to_owned();
            *unwritten = true;
        }
        if *unwritten && (now || last.is_none_or(|t| t.elapsed() >= REFRESH)) {
            write(&self.dir, info);
            *last = Some(Instant::now());
            *unwritten = false;
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Only our own file: a holder that came after us keeps its file.
        if read(&self.dir).is_some_and(|i| i.pid == std::process::id()) {
            let _ = std::fs::remove_file(self.dir.join(FILE));
        }
    }
}

/// The live process named by the owner file of `dir`, if there is one.
pub(crate) fn holder(dir: &Path) -> Option<OwnerInfo> {
    read(dir).filter(|i| alive(i.pid))
}

fn read(dir: &Path) -> Option<OwnerInfo> {
    use std::io::Read;
    let f = std::fs::File::open(dir.join(FILE)).ok()?;
    let mut text = String::new();
    f.take(MAX_BYTES).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Write through a temporary file and a rename, so a reader never sees half a file.
fn write(dir: &Path, info: &OwnerInfo) {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let Ok(text) = serde_json::to_string(info) else {
        return;
    };
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join(FILE));
    }
}

#[cfg(target_os = "linux")]
fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Without /proc the file is believed (a stale one then names a dead pid).
#[cfg(not(target_os = "linux"))]
fn alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_holder_is_ignored_and_a_live_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = OwnerInfo {
            pid: dead,
            program: "recdb".into(),
            command: "train als".into(),
            activity: "train als 10 %".into(),
        };
        write(dir.path(), &stale);
        assert_eq!(holder(dir.path()), None);
        let owner = Owner::claim(dir.path());
        owner.note("train als 30 %", true);
        let got = holder(dir.path()).unwrap();
        assert_eq!(got.pid, std::process::id());
        assert_eq!(got.activity, "train als 30 %");
        // Within the refresh interval a report is kept in memory, not written.
        owner.note("train als 31 %", false);
        assert_eq!(holder(dir.path()).unwrap().activity, "train als 30 %");
        // A later report of the same activity writes it (jobs repeat a percentage).
        std::thread::sleep(REFRESH);
        owner.note("train als 31 %", false);
        assert_eq!(holder(dir.path()).unwrap().activity, "train als 31 %");
        drop(owner);
        assert!(!dir.path().join(FILE).exists());
    }
}
