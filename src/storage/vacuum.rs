//! Rewriting a database compactly. sled reclaims the space of deleted and replaced
//! values only in its background cleaner, which runs while a process keeps the
//! database open; a database used through short commands (each `recdb train` its own
//! process) keeps the space of every old table version. `vacuum` copies every key
//! into a sibling directory and swaps it in.
//!
//! The swap, for a database at `P`:
//! 1. copy into `P.vacuum-new`, flush (to disk), close it;
//! 2. write the marker `P.vacuum-new/recdb.vacuum-complete` (synced);
//! 3. rename `P` to `P.vacuum-old`; 4. rename `P.vacuum-new` to `P` (parent synced);
//! 5. remove the marker and `P.vacuum-old`.
//!
//! The source stays open (locked) until the renames are done, so no other process
//! writes to it meanwhile. After a crash, [`before_open`] completes a swap whose copy
//! is marked complete or rolls it back, and [`after_open`] (the lock now held) removes
//! what is left over.

use std::path::{Path, PathBuf};

use super::backend::SledBackend;
use super::durable::sync_dir;
use super::meta::Meta;
use crate::{Error, Result};

/// Says that the copy in `P.vacuum-new` is whole.
pub(crate) const MARKER: &str = "recdb.vacuum-complete";
/// The directory size after the last vacuum (or at the first open), for [`auto`].
const BASELINE: &str = "recdb.compact-bytes";
/// [`auto`] vacuums a directory grown past both this factor and this many bytes over
/// its baseline: the copy then costs at most what was written since the last one.
const AUTO_FACTOR: u64 = 4;
const AUTO_BYTES: u64 = 64 << 20;
/// Page cache of the two handles of a vacuum: it streams, it needs little.
const CACHE_BYTES: u64 = 64 << 20;

/// What a vacuum did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VacuumReport {
    /// Bytes of the database directory before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Keys copied and the bytes of their keys and values (the live data).
    pub keys: u64,
    pub live_bytes: u64,
}

/// The steps of a vacuum, in order; a test stops after one to stand for a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    Copied,
    Marked,
    MovedOld,
    Swapped,
    Done,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

pub(crate) fn new_dir(path: &Path) -> PathBuf {
    sibling(path, ".vacuum-new")
}

pub(crate) fn old_dir(path: &Path) -> PathBuf {
    sibling(path, ".vacuum-old")
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io(from, e))
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let meta = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Before opening `path`: if a vacuum stopped between its two renames (no `path`),
/// finish the swap when the copy is marked complete, else put the original back.
pub(crate) fn before_open(path: &Path) -> Result<()> {
    let (new, old) = (new_dir(path), old_dir(path));
    if path.exists() || !old.is_dir() {
        return Ok(());
    }
    if new.join(MARKER).exists() {
        rename(&new, path)?;
    } else {
        rename(&old, path)?;
    }
    sync_dir(parent(path))
}

/// Once `path` is open (and locked, so no vacuum of it is running): remove what an
/// interrupted vacuum left: an unfinished copy, the replaced original, the marker.
pub(crate) fn after_open(path: &Path) -> Result<()> {
    remove_dir(&new_dir(path))?;
    remove_dir(&old_dir(path))?;
    match std::fs::remove_file(path.join(MARKER)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// Vacuum `path` if it has grown past its baseline (recording one if it has none).
/// Best effort: a vacuum that cannot run now (the database is held, the disk is full)
/// leaves the database as it was, and the open that follows reports what matters.
pub(crate) fn auto(path: &Path) {
    if !path.join("conf").is_file() {
        return;
    }
    let Ok(now) = dir_bytes(path) else { return };
    match read_baseline(path) {
        None => write_baseline(path, now),
        Some(base) if now > (base.saturating_mul(AUTO_FACTOR)).max(base + AUTO_BYTES) => {
            let _ = vacuum_until(path, Step::Done);
        }
        Some(_) => {}
    }
}

fn read_baseline(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path.join(BASELINE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Advisory: a lost baseline is recorded again at the next open.
fn write_baseline(path: &Path, bytes: u64) {
    let _ = std::fs::write(path.join(BASELINE), bytes.to_string());
}

pub(crate) fn vacuum_until(path: &Path, stop: Step) -> Result<VacuumReport> {
    before_open(path)?;
    if !path.join("conf").is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is not a recdb database",
            path.display()
        )));
    }
    let bytes_before = dir_bytes(path)?;
    let src = SledBackend::open(path, CACHE_BYTES)?;
    after_open(path)?;
    if Meta::load(&src)?.is_none() {
        return Err(Error::InvalidInput(format!(
            "{} is not a recdb database",
            path.display()
        )));
    }
    let new = new_dir(path);
    let copy = || -> Result<(u64, u64)> {
        let dst = SledBackend::open(&new, CACHE_BYTES)?;
        let copied = src.copy_to(&dst)?;
        super::backend::Backend::flush(&dst)?;
        Ok(copied)
    };
    // A copy that failed (e.g. the disk is full) is removed now, not at the next open.
    let (keys, live_bytes) = copy().inspect_err(|_| {
        let _ = remove_dir(&new);
    })?;
    if stop == Step::Copied {
        return Err(stopped(stop));
    }
    let marker = new.join(MARKER);
    std::fs::File::create(&marker)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&marker, e))?;
    sync_dir(&new)?;
    if stop == Step::Marked {
        return Err(stopped(stop));
    }
    let old = old_dir(path);
    rename(path, &old)?;
    if stop == Step::MovedOld {
        return Err(stopped(stop));
    }
    rename(&new, path)?;
    sync_dir(parent(path))?;
    if stop == Step::Swapped {
        return Err(stopped(stop));
    }
    drop(src);
    after_open(path)?;
    let bytes_after = dir_bytes(path)?;
    write_baseline(path, bytes_after);
    Ok(VacuumReport {
        bytes_before,
        bytes_after,
        keys,
        live_bytes,
    })
}

fn stopped(step: Step) -> Error {
    Error::InvalidInput(format!("vacuum stopped after {step:?} (test)"))
}
