//! Writing events and attributes: validated in full first, then one atomic, durable batch.

use crate::error::OrPoisoned;
use std::path::Path;

use super::Db;
use crate::event::{Event, EventKind, ItemRecord, RawEvent, UserRecord};
use crate::storage::attrs;
use crate::storage::backend::WriteBatch;
use crate::storage::ids::PendingIds;
use crate::{Error, Result};

/// The ids of a batch, appended as they come (no hashing on `push`); they are
/// resolved to dense ids in parallel at commit.
#[derive(Default)]
struct Arena {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Arena {
    // why: the arena lives in memory; 4G strings would need 32 GiB of `ends` alone,
    // and the ids they become are checked to fit u32 when assigned.
    #[allow(clippy::cast_possible_truncation)]
    fn push(&mut self, s: &str) -> u32 {
        self.bytes.extend_from_slice(s.as_bytes());
        self.ends.push(self.bytes.len());
        (self.ends.len() - 1) as u32
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // Only whole `&str`s are appended, so every slice boundary is a char boundary.
        std::str::from_utf8(&self.bytes[start..self.ends[i]]).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Dense ids for every entry: known ids looked up in parallel, new ones assigned
    /// in order of first appearance (so ids do not depend on the thread count).
    fn resolve(&self, pending: &mut PendingIds<'_>) -> Result<Vec<u32>> {
        let found = pending.lookup_many(self.len(), |i| self.get(i))?;
        let mut ids = Vec::with_capacity(found.len());
        for (i, id) in found.into_iter().enumerate() {
            ids.push(match id {
                Some(id) => id,
                None => pending.assign(self.get(i))?,
            });
        }
        Ok(ids)
    }
}

const NO_GROUP: u32 = u32::MAX;

/// Events collected for one atomic commit.
///
/// ```
/// # fn main() -> recdb::Result<()> {
/// let db = recdb::Db::temporary()?;
/// let mut batch = db.batch();
/// batch.push("alice", "matrix", recdb::EventKind::Rating, 5.0, 1_700_000_000)?;
/// batch.push("bob", "matrix", recdb::EventKind::View, 1.0, 1_700_000_100)?;
/// let receipt = batch.commit()?; // atomic and durable on return
/// assert_eq!(receipt.events, 2);
/// # Ok(()) }
/// ```
pub struct IngestBatch<'a> {
    db: &'a Db,
    users: Arena,
    items: Arena,
    groups: Arena,
    /// (kind, value, timestamp, group index or NO_GROUP); user and item are the arenas'.
    events: Vec<(EventKind, f32, i64, u32)>,
}

/// What a commit wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitReceipt {
    pub events: u64,
    pub new_users: u64,
    pub new_items: u64,
    /// Events in the database after the commit (the new watermark).
    pub total_events: u64,
}

fn invalid_event(index: usize, reason: String) -> Error {
    Error::InvalidEvent {
        file: None,
        index,
        reason,
    }
}

fn check_id(what: &str, id: &str, index: usize) -> Result<()> {
    if id.is_empty() {
        return Err(invalid_event(index, format!("empty {what} id")));
    }
    if id.len() > 1024 {
        return Err(invalid_event(
            index,
            format!("{what} id longer than 1024 bytes"),
        ));
    }
    Ok(())
}

/// What `push` rejects: empty or over-long ids, a non-finite value.
fn check_event(
    user: &str,
    item: &str,
    value: f32,
    group: Option<&str>,
    index: usize,
) -> Result<()> {
    check_id("user", user, index)?;
    check_id("item", item, index)?;
    if !value.is_finite() {
        return Err(invalid_event(index, format!("value {value} is not finite")));
    }
    if let Some(g) = group {
        check_id("group", g, index)?;
    }
    Ok(())
}

/// Events per commit of a file import: files up to this size are one atomic commit;
/// bigger ones are validated whole first, then written in commits of this size, so
/// memory is bounded by the file's bytes plus one batch instead of growing per event.
pub(crate) const IMPORT_BATCH: usize = 1 << 20;

impl<'a> IngestBatch<'a> {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Add one event. Rejects empty ids and non-finite values.
    pub fn push(
        &mut self,
        user: &str,
        item: &str,
        kind: EventKind,
        value: f32,
        timestamp: i64,
    ) -> Result<()> {
        self.push_in_group(user, item, kind, value, timestamp, None)
    }

    /// Add one event that belongs to a session or basket.
    pub fn push_in_group(
        &mut self,
        user: &str,
        item: &str,
        kind: EventKind,
        value: f32,
        timestamp: i64,
        group: Option<&str>,
    ) -> Result<()> {
        check_event(user, item, value, group, self.events.len())?;
        let g = match group {
            Some(g) => self.groups.push(g),
            None => NO_GROUP,
        };
        self.users.push(user);
        self.items.push(item);
        self.events.push((kind, value, timestamp, g));
        Ok(())
    }

    pub fn push_raw(&mut self, e: &RawEvent) -> Result<()> {
        self.push_in_group(
            &e.user,
            &e.item,
            e.kind,
            e.value,
            e.timestamp,
            e.group.as_deref(),
        )
    }

    /// Write every event atomically and durably: after a crash either all of them are
    /// there or none.
    pub fn commit(self) -> Result<CommitReceipt> {
        let db = self.db;
        if self.events.is_empty() {
            return Err(Error::Empty("batch has no events".into()));
        }
        let _w = db.lock_write();
        let b = db.backend();
        let mut batch = WriteBatch::default();
        let (update, (new_users, new_items, new_groups), receipt, meta) = {
            let st = db.state()?;
            let mut pu = PendingIds::new(&st.users, b);
            let mut pi = PendingIds::new(&st.items, b);
            let mut pg = PendingIds::new(&st.groups, b);
            let (umap, imap, gmap) = db.inner.pool.install(|| -> Result<_> {
                Ok((
                    self.users.resolve(&mut pu)?,
                    self.items.resolve(&mut pi)?,
                    self.groups.resolve(&mut pg)?,
                ))
            })?;
            let mut meta = st.meta.clone();
            let base = meta.events;
            let events: Vec<Event> = self
                .events
                .iter()
                .enumerate()
                .map(|(k, &(kind, value, ts, g))| Event {
                    user: umap[k],
                    item: imap[k],
                    kind,
                    value,
                    timestamp: ts,
                    group: if g == NO_GROUP {
                        NO_GROUP
                    } else {
                        gmap[g as usize]
                    },
                    seq: base + k as u64,
                })
                .collect();
            meta.events += events.len() as u64;
            meta.users = pu.total();
            meta.items = pi.total();
            meta.groups = pg.total();
            let update = db.inner.pool.install(|| {
                st.log
                    .plan_append(b, events, &mut meta.next_run, &mut batch)
            })?;
            let ids = (
                pu.write(&mut batch)?,
                pi.write(&mut batch)?,
                pg.write(&mut batch)?,
            );
            meta.put(&mut batch);
            let receipt = CommitReceipt {
                events: self.events.len() as u64,
                new_users: ids.0.added() as u64,
                new_items: ids.1.added() as u64,
                total_events: meta.events,
            };
            (update, ids, receipt, meta)
        };
        {
            // Readers never see a manifest whose runs a merge has just deleted.
            let mut st = db.state_mut()?;
            b.apply(batch)?;
            st.users.install(new_users);
            st.items.install(new_items);
            st.groups.install(new_groups);
            st.log.install(update);
            st.meta = meta;
        }
        b.flush()?;
        drop(_w);
        db.after_commit()?;
        Ok(receipt)
    }
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub records: u64,
    pub new_ids: u64,
}

impl Db {
    /// Start a batch of events; nothing is written until [`IngestBatch::commit`].
    pub fn batch(&self) -> IngestBatch<'_> {
        IngestBatch {
            db: self,
            users: Arena::default(),
            items: Arena::default(),
            groups: Arena::default(),
            events: Vec::new(),
        }
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
    /// header unless `format` is given). The whole file is validated before anything is
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
        crate::ingest::each_event(file, bytes, format, &mut |e| {
            check_event(&e.user, &e.item, e.value, e.group.as_deref(), index).map_err(|err| {
                match err {
                    Error::InvalidEvent { index, reason, .. } => Error::InvalidEvent {
                        file: Some(file.to_owned()),
                        index,
                        reason,
                    },
                    other => other,
                }
            })?;
            index += 1;
            Ok(())
        })?;
        let mut total = CommitReceipt {
            events: 0,
            new_users: 0,
            new_items: 0,
            total_events: 0,
        };
        let mut add = |r: CommitReceipt| {
            total.events += r.events;
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
                crate::ingest::each_event(file, bytes, format, &mut |e| {
                    batch.push_raw(&e)?;
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
