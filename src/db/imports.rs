//! Remembering which event files were imported: a log appends, so importing a file
//! twice doubles its events; the shell says so before it happens.

use std::path::Path;

use super::Db;
use crate::storage::backend::WriteBatch;
use crate::storage::imports::{self, PriorImport};
use crate::storage::meta;
use crate::Result;

impl Db {
    /// When a file with the same bytes as `path` was last imported with
    /// [`Db::import_events`] (`None`: never).
    pub fn prior_import(&self, path: &Path) -> Result<Option<PriorImport>> {
        let (_, bytes) = crate::ingest::read_file(path)?;
        imports::get(self.backend(), &imports::fingerprint(&bytes))
    }

    /// Record that `bytes` were imported now as `events` events.
    pub(crate) fn note_import(&self, bytes: &[u8], events: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        let mark = PriorImport {
            unix: meta::now_unix(),
            events,
        };
        imports::put(&mut batch, imports::fingerprint(bytes), mark);
        self.backend().apply(batch)?;
        self.backend().flush()
    }
}
