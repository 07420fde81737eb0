//! sled's snapshot files (`snap.*`) are a summary of its log that sled rebuilds from the
//! log when none is there. A corrupt one makes sled refuse the whole directory, so open
//! moves the snapshot files aside (renamed, never deleted) and tries again; if that
//! fails too they go back and the first error stands.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// What a snapshot file set aside is renamed to: `recdb.bad-snap.…`, which sled skips.
const ASIDE_PREFIX: &str = "recdb.bad-";

pub(crate) fn reopen_without<T>(
    dir: &Path,
    first: sled::Error,
    open: impl Fn() -> sled::Result<T>,
) -> Result<T> {
    let snaps = snapshot_files(dir)?;
    if snaps.is_empty() {
        return Err(first.into());
    }
    let mut moved = Vec::with_capacity(snaps.len());
    for snap in &snaps {
        let aside = aside_name(snap);
        std::fs::rename(snap, &aside).map_err(|e| Error::io(snap, e))?;
        moved.push((snap.clone(), aside));
    }
    match open() {
        Ok(db) => Ok(db),
        Err(_) => {
            for (snap, aside) in moved {
                std::fs::rename(&aside, &snap).map_err(|e| Error::io(&aside, e))?;
            }
            Err(first.into())
        }
    }
}

/// `snap.*` files of a sled directory (not the half-written `*.in___motion` ones).
fn snapshot_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("snap.") && !name.ends_with(".in___motion") {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn aside_name(snap: &Path) -> PathBuf {
    let name = snap.file_name().unwrap_or_default().to_string_lossy();
    snap.with_file_name(format!("{ASIDE_PREFIX}{name}"))
}
