//! Writing events and attributes: validated in full first, then one atomic, durable batch.

use crate::error::OrPoisoned;
use std::path::Path;

use std::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

use super::{Db, State};
use crate::event::{EventRow, ItemRecord, RawEvent, UserRecord};
use crate::ingest::{
    check_event, check_id, check_query, CommitReceipt, ImportReport, IngestBatch, Writer,
    IMPORT_BATCH,
};
use crate::storage::attrs;
use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::ids::PendingIds;
use crate::{Error, Result};

/// What an [`IngestBatch`] writes through.
impl Writer for Db {
    fn backend(&self) -> &dyn Backend {
        Db::backend(self)
    }
    fn lock_write(&self) -> MutexGuard<'_, ()> {
        Db::lock_write(self)
    }
    fn state(&self) -> Result<RwLockReadGuard<'_, State>> {
        Db::state(self)
    }
    fn state_mut(&self) -> Result<RwLockWriteGuard<'_, State>> {
        Db::state_mut(self)
    }
    fn pool(&self) -> &rayon::ThreadPool {
        &self.inner.pool
    }
    fn after_commit(&self) -> Result<()> {
        Db::after_commit(self).map(drop)
    }
}

impl Db {
    /// Start a batch of events; nothing is written until [`IngestBatch::commit`].
    pub fn batch(&self) -> IngestBatch<'_> {
        IngestBatch::new(self)
    }

    /// Log events atomically and durably.
    pub fn log_events(&self, events: &[RawEvent]) -> Result<CommitReceipt> {
        let mut b = self.batch();
        for e in events {
            b.push_raw(e)?;
        }
        b.commit()
    }

    /// Import an events file (TSV, CSV, JSON lines or ML-100K atomic; detected from the
    /// header unless `format` is given); with a `query` column, rows with a query and no
    /// item are searches (see `docs/SEARCH.md`). The whole file is validated before anything is
    /// written, so bad input leaves the database as it was. A file of at most
    /// 1,048,576 events is then one atomic, durable commit; a bigger one is
    /// written in commits of that many events, each atomic and durable (a crash during
    /// them leaves the first few whole commits; the receipt is returned after the last).
    /// Memory: the file's bytes plus two batches, not the parsed file. The file's
    /// fingerprint is recorded, for [`Db::prior_import`].
    pub fn import_events(
        &self,
        path: &Path,
        format: Option<crate::Format>,
    ) -> Result<CommitReceipt> {
        let (file, bytes) = crate::ingest::read_file(path)?;
        let receipt = self.import_event_bytes(&file, &bytes, format, IMPORT_BATCH)?;
        self.note_import(&bytes, receipt.events)?;
        Ok(receipt)
    }

    /// Two passes over the parsed bytes: validate everything (nothing kept), then write
    /// in commits of `per_commit` events.
    pub(crate) fn import_event_bytes(
        &self,
        file: &str,
        bytes: &[u8],
        format: Option<crate::Format>,
        per_commit: usize,
    ) -> Result<CommitReceipt> {
        let mut index = 0usize;
        crate::ingest::each_event(file, bytes, format, &mut |row| {
            match &row {
                EventRow::Event(e) => {
                    check_event(&e.user, &e.item, e.value, e.group.as_deref(), index)
                }
                EventRow::Search(s) => {
                    check_id("user", &s.user, index).and_then(|()| check_query(&s.text, index))
                }
            }
            .map_err(|err| match err {
                Error::InvalidEvent { index, reason, .. } => Error::InvalidEvent {
                    file: Some(file.to_owned()),
                    index,
                    reason,
                },
                other => other,
            })?;
            index += 1;
            Ok(())
        })?;
        let mut total = CommitReceipt {
            events: 0,
            new_users: 0,
            new_items: 0,
            total_events: 0,
            searches: 0,
        };
        let mut add = |r: CommitReceipt| {
            total.events += r.events;
            total.searches += r.searches;
            total.new_users += r.new_users;
            total.new_items += r.new_items;
            total.total_events = r.total_events;
        };
        // Pipelined: a thread parses batch N+1 while this one commits batch N (a
        // rendezvous channel, so at most two batches are in memory).
        let (tx, rx) = std::sync::mpsc::sync_channel::<IngestBatch<'_>>(0);
        std::thread::scope(|scope| -> Result<()> {
            let parser = scope.spawn(move || -> Result<()> {
                let mut batch = self.batch();
                // A closed channel means the committer failed; it reports its own error.
                let stopped = || Error::InvalidInput("import stopped".into());
                crate::ingest::each_event(file, bytes, format, &mut |row| {
                    match &row {
                        EventRow::Event(e) => batch.push_raw(e)?,
                        EventRow::Search(s) => batch.push_search(&s.user, &s.text, s.timestamp)?,
                    }
                    if batch.len() >= per_commit {
                        tx.send(std::mem::replace(&mut batch, self.batch()))
                            .map_err(|_| stopped())?;
                    }
                    Ok(())
                })?;
                if !batch.is_empty() {
                    tx.send(batch).map_err(|_| stopped())?;
                }
                Ok(())
            });
            let mut committed = Ok(());
            for batch in rx {
                match batch.commit() {
                    Ok(r) => add(r),
                    Err(e) => {
                        committed = Err(e);
                        break;
                    }
                }
            }
            // With `rx` dropped the parser stops at its next send.
            let parsed = parser
                .join()
                .unwrap_or_else(|_| Err(Error::InvalidInput("import parser panicked".into())));
            committed?;
            parsed
        })?;
        Ok(total)
    }

    /// Import item attributes (creates ids for items not seen yet). Atomic and durable.
    pub fn import_items(&self, path: &Path, format: Option<crate::Format>) -> Result<ImportReport> {
        let items = crate::ingest::read_items(path, format)?;
        self.put_items(&items)
    }

    /// Import user attributes (creates ids for users not seen yet). Atomic and durable.
    pub fn import_users(&self, path: &Path, format: Option<crate::Format>) -> Result<ImportReport> {
        let users = crate::ingest::read_users(path, format)?;
        self.put_users(&users)
    }

    /// Store item attributes, replacing earlier ones. Atomic and durable.
    pub fn put_items(&self, items: &[ItemRecord]) -> Result<ImportReport> {
        for (n, it) in items.iter().enumerate() {
            check_id("item", &it.id, n)?;
        }
        let report = self.put_records(true, items.len(), |pending, batch| {
            for it in items {
                attrs::put_item(batch, pending.resolve(&it.id)?, it);
            }
            Ok(())
        })?;
        *self.inner.genres.write().or_poisoned("genre index")? = None;
        Ok(report)
    }

    /// Store user attributes, replacing earlier ones. Atomic and durable.
    pub fn put_users(&self, users: &[UserRecord]) -> Result<ImportReport> {
        for (n, u) in users.iter().enumerate() {
            check_id("user", &u.id, n)?;
        }
        self.put_records(false, users.len(), |pending, batch| {
            for u in users {
                attrs::put_user(batch, pending.resolve(&u.id)?, u);
            }
            Ok(())
        })
    }

    fn put_records(
        &self,
        items: bool,
        records: usize,
        write: impl FnOnce(&mut PendingIds<'_>, &mut WriteBatch) -> Result<()>,
    ) -> Result<ImportReport> {
        if records == 0 {
            return Err(Error::Empty("no records".into()));
        }
        let _w = self.lock_write();
        let b = self.backend();
        let mut batch = WriteBatch::default();
        let (new, new_ids, meta) = {
            let st = self.state()?;
            let map = if items { &st.items } else { &st.users };
            let mut pending = PendingIds::new(map, b);
            write(&mut pending, &mut batch)?;
            let new = pending.write(&mut batch)?;
            let mut meta = st.meta.clone();
            if items {
                meta.items = new.len();
            } else {
                meta.users = new.len();
            }
            meta.put(&mut batch);
            let added = new.added();
            (new, added, meta)
        };
        let report = ImportReport {
            records: records as u64,
            new_ids: new_ids as u64,
        };
        {
            let mut st = self.state_mut()?;
            b.apply(batch)?;
            if items {
                st.items.install(new);
            } else {
                st.users.install(new);
            }
            st.meta = meta;
        }
        b.flush()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tsv(rows: usize) -> String {
        let mut s = String::from("user\titem\trating\ttimestamp\n");
        for i in 0..rows {
            s += &format!("u{}\ti{}\t{}\t{i}\n", i % 5, i % 7, i % 5 + 1);
        }
        s
    }

    fn state(db: &Db) -> (u64, u64, u64, Vec<Vec<HistoryRow>>) {
        let st = db.stats().unwrap();
        let hist = db
            .user_ids()
            .unwrap()
            .iter()
            .map(|u| {
                db.history(u)
                    .unwrap()
                    .into_iter()
                    .map(|h| (h.item, h.value.to_bits(), h.timestamp))
                    .collect()
            })
            .collect();
        (st.users, st.items, st.events, hist)
    }
    type HistoryRow = (String, u32, i64);

    #[test]
    fn a_bad_last_line_leaves_the_database_as_it_was() {
        let db = Db::temporary().unwrap();
        db.import_event_bytes("first.tsv", tsv(10).as_bytes(), None, 4)
            .unwrap();
        let before = state(&db);
        // Written in commits of 4 if it were valid, so an error found while writing
        // would leave 6 of its 7 commits behind.
        let long = "x".repeat(1025);
        for (last, want) in [
            ("u1\ti1\tfive\t99\n", "bad.tsv:27"),
            (format!("{long}\ti1\t5\t99\n").as_str(), "event 25"),
            ("u1\t\t5\t99\n", "bad.tsv:27"),
        ] {
            let text = tsv(25) + last;
            let err = db
                .import_event_bytes("bad.tsv", text.as_bytes(), None, 4)
                .unwrap_err()
                .to_string();
            assert!(err.contains("bad.tsv") && err.contains(want), "{err}");
            assert_eq!(state(&db), before, "after {err}");
        }
        db.check().unwrap();
    }

    #[test]
    fn many_commits_write_what_one_commit_writes() {
        let text = tsv(1000);
        let one = Db::temporary().unwrap();
        let r1 = one
            .import_event_bytes("a.tsv", text.as_bytes(), None, usize::MAX)
            .unwrap();
        let many = Db::temporary().unwrap();
        let r2 = many
            .import_event_bytes("a.tsv", text.as_bytes(), None, 64)
            .unwrap();
        assert_eq!(r1, r2);
        assert_eq!((r1.events, r1.new_users, r1.new_items), (1000, 5, 7));
        assert_eq!(state(&one), state(&many));
        many.check().unwrap();
    }
}
