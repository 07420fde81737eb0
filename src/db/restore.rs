//! `restore`: load a dump (see `crate::backup`) into an empty database, all or nothing.
//!
//! The dump is read (under the line cap) and checked whole before anything is written.
//! Its writes then go in several durable batches (ids, events in chunks, tables,
//! policies): one batch for a dump of millions of events would have to sit in memory
//! twice and in sled's log at once. So a restore first writes a marker naming the dump,
//! and its last batch clears it. A process that dies in between leaves the marker:
//! `open` still works (the database must stay open to be restored into), `stats` shows
//! the marker, `check` fails with [`Error::IncompleteRestore`], and restoring again
//! wipes the partial data and starts over. Restoring into a sibling directory and
//! renaming would not fit an embedded library whose `Db` is already open on the path.

use crate::error::OrPoisoned;
use std::io::BufRead;

use super::{Db, State};
use crate::backup::{read_dump, DumpReport, DumpedJob};
use crate::event::ItemRecord;
use crate::index::delta::{self as delta_store, StoredDelta};
use crate::jobs::record::{self as job_store, JobRecord, JobState};
use crate::jobs::TableOutput;
use crate::storage::backend::WriteBatch;
use crate::storage::ids::PendingIds;
use crate::storage::meta::{self, Meta, FORMAT_KEY};
use crate::storage::tables;
use crate::storage::{attrs, keys};
use crate::{Error, Result};

/// Keys deleted per batch when a restore wipes an incomplete one.
pub(super) const WIPE_KEYS: usize = 4096;

impl Db {
    /// The dump of a restore that stopped before it finished, if one did.
    pub fn incomplete_restore(&self) -> Result<Option<String>> {
        Ok(self
            .backend()
            .get(keys::RESTORE)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub(crate) fn refuse_incomplete_restore(&self) -> Result<()> {
        match self.incomplete_restore()? {
            Some(dump) => Err(Error::IncompleteRestore { dump }),
            None => Ok(()),
        }
    }

    /// Load a dump into this database, which must be empty or hold an incomplete
    /// restore (which is wiped first). The whole dump is read and checked before
    /// anything is written; all or nothing: a crash midway leaves a database that
    /// [`Db::check`] reports as an incomplete restore until a restore finishes. Durable
    /// on return.
    pub fn restore(&self, r: &mut dyn BufRead, source: &str) -> Result<DumpReport> {
        let partial = self.incomplete_restore()?.is_some();
        if !partial {
            let st = self.state()?;
            if st.meta.events > 0
                || st.users.len() > 0
                || st.items.len() > 0
                || !tables::load_catalog(self.backend())?.is_empty()
                || crate::storage::docs::count(self.backend())? > 0
            {
                return Err(Error::InvalidInput(
                    "restore needs an empty database".into(),
                ));
            }
        }
        let p = read_dump(r, source)?;
        let report = p.report();
        self.begin_restore(source, partial)?;
        self.restore_ids(&p.users, &p.items)?;
        if !p.docs.is_empty() {
            self.put_docs(&p.docs)?;
        }
        for chunk in p.events.chunks(1 << 20) {
            let mut b = self.batch();
            for row in chunk {
                match row {
                    crate::EventRow::Event(e) => b.push_raw(e)?,
                    crate::EventRow::Search(s) => b.push_search(&s.user, &s.text, s.timestamp)?,
                }
            }
            b.commit()?;
        }
        // One restored job record per producing job of the dump (tables in dump order);
        // the tables move into their group (a table's values are never copied).
        type Group = (Option<DumpedJob>, Vec<TableOutput>, Vec<Vec<u32>>);
        let mut groups: Vec<Group> = Vec::new();
        for t in p.tables {
            let i = match groups.iter().position(|g| g.0 == t.job) {
                Some(i) => i,
                None => {
                    groups.push((t.job, Vec::new(), Vec::new()));
                    groups.len() - 1
                }
            };
            groups[i].1.push(t.out);
            groups[i].2.push(t.dead);
        }
        for (job, outs, dead) in groups {
            let mut rec = self.restore_record(job.as_ref())?;
            // Deleted rows of users and items tables stay deleted: tombstones in the
            // new version's delta, as a compaction leaves them.
            self.publish_with(&outs, &mut rec, &mut |_, versions, batch| {
                for ((name, version), dead) in versions.iter().zip(&dead) {
                    if !dead.is_empty() {
                        let d = StoredDelta {
                            next_seq: 0,
                            tombstones: dead.clone(),
                            ops: Vec::new(),
                        };
                        delta_store::put(batch, name, *version, 0, &d);
                    }
                }
                Ok(())
            })?;
        }
        let _w = self.lock_write();
        let mut batch = WriteBatch::default();
        for pol in &p.policies {
            job_store::put_policy(&mut batch, pol);
        }
        batch.delete(keys::RESTORE.to_vec());
        self.backend().apply(batch)?;
        self.backend().flush()?;
        Ok(report)
    }

    /// Write the marker (durably) before the first write of a restore; after an
    /// incomplete one, wipe its partial data in the same batch.
    ///
    /// The wipe resets the header with the marker, then deletes the rest in batches of
    /// [`WIPE_KEYS`] keys (a database of any size is wiped in bounded memory); a crash
    /// in between leaves the marker, and the next restore wipes again.
    pub(super) fn begin_restore(&self, source: &str, wipe: bool) -> Result<()> {
        let _w = self.lock_write();
        let b = self.backend();
        let mut st = self.state_mut()?;
        let mut batch = WriteBatch::default();
        if wipe {
            let old = &st.meta;
            // Job ids and versions keep counting up: caches never see one reused.
            Meta {
                created_unix: old.created_unix,
                next_job: old.next_job,
                next_version: old.next_version,
                ..Meta::default()
            }
            .put(&mut batch);
        }
        batch.put(keys::RESTORE.to_vec(), source.as_bytes().to_vec());
        b.apply(batch)?;
        b.flush()?;
        if wipe {
            let mut from = Vec::new();
            loop {
                let ks = b.keys_from(&from, WIPE_KEYS)?;
                let Some(last) = ks.last() else { break };
                from = last.to_vec();
                from.push(0);
                let mut batch = WriteBatch::default();
                for k in ks {
                    if ![FORMAT_KEY, keys::META, keys::RESTORE].contains(&k.as_ref()) {
                        batch.delete(k.to_vec());
                    }
                }
                b.apply(batch)?;
            }
            b.flush()?;
            *st = State::load(b)?;
            drop(st);
            self.forget_cached_tables();
        }
        Ok(())
    }

    fn forget_cached_tables(&self) {
        let i = &self.inner;
        i.views.lock().recover().clear();
        i.indexes.lock().recover().clear();
        i.deltas.lock().recover().clear();
        i.tails.lock().recover().clear();
        *i.genres.write().recover() = None;
    }

    /// Users and items in dump order, so dense ids (and so table rows) match.
    fn restore_ids(&self, users: &[crate::UserRecord], items: &[ItemRecord]) -> Result<()> {
        let _w = self.lock_write();
        let b = self.backend();
        let mut batch = WriteBatch::default();
        let (new_u, new_i, meta) = {
            let st = self.state()?;
            let mut pu = PendingIds::new(&st.users, b);
            let mut pi = PendingIds::new(&st.items, b);
            for u in users {
                let id = pu.resolve(&u.id)?;
                if !u.attrs.is_empty() {
                    attrs::put_user(&mut batch, id, u);
                }
            }
            for it in items {
                let id = pi.resolve(&it.id)?;
                if it.title.is_some()
                    || it.text.is_some()
                    || !it.genres.is_empty()
                    || !it.attrs.is_empty()
                {
                    attrs::put_item(&mut batch, id, it);
                }
            }
            let new_u = pu.write(&mut batch)?;
            let new_i = pi.write(&mut batch)?;
            let mut meta = st.meta.clone();
            meta.users = new_u.len();
            meta.items = new_i.len();
            meta.put(&mut batch);
            (new_u, new_i, meta)
        };
        {
            let mut st = self.state_mut()?;
            b.apply(batch)?;
            st.users.install(new_u);
            st.items.install(new_i);
            st.meta = meta;
        }
        *self.inner.genres.write().or_poisoned("genre index")? = None;
        b.flush()
    }

    /// A finished job record for restored tables: the dumped job's model, parameters and
    /// seed when the dump has them, else a `restore` record.
    fn restore_record(&self, job: Option<&DumpedJob>) -> Result<JobRecord> {
        let _w = self.lock_write();
        let mut st = self.state_mut()?;
        let id = st.meta.next_job;
        st.meta.next_job += 1;
        Ok(JobRecord {
            id,
            model: job.map_or("restore".into(), |j| j.model.clone()),
            params: job.map_or("{}".into(), |j| j.params.clone()),
            seed: job.map_or(0, |j| j.seed),
            state: JobState::Done as u8,
            created_unix: meta::now_unix(),
            watermark: st.meta.events,
            progress: 1.0,
            message: "restored from a dump".into(),
            ..JobRecord::default()
        })
    }
}
