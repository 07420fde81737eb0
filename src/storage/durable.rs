//! Making a sled flush reach the disk. sled's `flush` writes its log with
//! `sync_file_range`, which starts and waits for the page writes but neither records a
//! grown file size nor empties the device's write cache, and it never syncs blob files
//! (values over a quarter segment). So a flushed write survived a process crash but not
//! necessarily a power loss. After each flush recdb `fdatasync`s the log file and
//! `fsync`s every blob file it has not synced before (and then their directory).

use crate::error::OrPoisoned;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Error, Result};

pub(crate) struct DiskSync {
    /// Off: a flush is sled's alone (survives a process crash, maybe not a power loss).
    pub enabled: bool,
    log: File,
    blobs: PathBuf,
    /// Blob files synced so far (names present at the last sync).
    synced: Mutex<HashSet<OsString>>,
}

impl DiskSync {
    /// `dir` is an open sled directory: its log file `db` exists.
    pub fn new(dir: &Path) -> Result<DiskSync> {
        let log_path = dir.join("db");
        let log = File::open(&log_path).map_err(|e| Error::io(&log_path, e))?;
        // The directory entries of a database just created.
        sync_dir(dir)?;
        Ok(DiskSync {
            enabled: true,
            log,
            blobs: dir.join("blobs"),
            synced: Mutex::new(HashSet::new()),
        })
    }

    pub fn sync(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        self.log
            .sync_data()
            .map_err(|e| Error::io(self.blobs.with_file_name("db"), e))?;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.blobs, e)),
        };
        let mut synced = self.synced.lock().or_poisoned("synced blobs")?;
        let mut present = HashSet::new();
        let mut new = false;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.blobs, e))?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                let path = entry.path();
                match File::open(&path) {
                    Ok(f) => f.sync_all().map_err(|e| Error::io(&path, e))?,
                    // Removed by sled since the listing: nothing to keep.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(&path, e)),
                }
                new = true;
            }
            present.insert(name);
        }
        *synced = present;
        if new {
            sync_dir(&self.blobs)?;
        }
        Ok(())
    }
}

/// Make the entries of a directory (files created, renamed or removed in it) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}
