//! Writing events: a batch validated as it is filled, its ids resolved in parallel at
//! commit, then one atomic, durable write.

use std::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

use crate::event::{Event, EventKind, RawEvent, SearchEvent};
use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::ids::PendingIds;
use crate::storage::state::State;
use crate::{Error, Result};

/// What a batch writes through: the database's backend, writer lock, in-memory state
/// and pool, and what it starts after a commit (retrain policies). The `Db` facade
/// implements it, so this module never names the facade.
pub(crate) trait Writer: Sync {
    fn backend(&self) -> &dyn Backend;
    /// The one writer lock.
    fn lock_write(&self) -> MutexGuard<'_, ()>;
    fn state(&self) -> Result<RwLockReadGuard<'_, State>>;
    fn state_mut(&self) -> Result<RwLockWriteGuard<'_, State>>;
    fn pool(&self) -> &rayon::ThreadPool;
    /// Run once a commit is durable (the facade starts due retrain policies).
    fn after_commit(&self) -> Result<()>;
}

/// The ids of a batch, appended as they come (no hashing on `push`); they are
/// resolved to dense ids in parallel at commit.
#[derive(Default)]
struct Arena {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Arena {
    // why: the arena lives in memory; 4G strings would need 32 GiB of `ends` alone, so a batch never reaches u32::MAX entries.
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
    db: &'a dyn Writer,
    users: Arena,
    items: Arena,
    groups: Arena,
    /// (kind, value, timestamp, group index or NO_GROUP); user and item are the arenas'.
    events: Vec<(EventKind, f32, i64, u32)>,
    /// Users of the searches, one per search.
    search_users: Arena,
    /// The tokens of all searches, one after the other.
    tokens: Arena,
    /// Per search: (timestamp, end of its tokens in `tokens`, events pushed before it),
    /// the last so that sequence numbers follow the order of the pushes.
    searches: Vec<(i64, usize, usize)>,
}

/// The longest query text accepted, in bytes.
pub const MAX_QUERY: usize = 4096;

/// What a commit wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitReceipt {
    pub events: u64,
    pub new_users: u64,
    pub new_items: u64,
    /// Events in the database after the commit (the new watermark: sequence numbers
    /// handed out, searches included).
    pub total_events: u64,
    /// Searches the commit logged.
    pub searches: u64,
}

fn invalid_event(index: usize, reason: String) -> Error {
    Error::InvalidEvent {
        file: None,
        index,
        reason,
    }
}

pub(crate) fn check_id(what: &str, id: &str, index: usize) -> Result<()> {
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
pub(crate) fn check_event(
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

/// What `push_search` rejects before tokenizing: an over-long text.
pub(crate) fn check_query(text: &str, index: usize) -> Result<()> {
    if text.len() > MAX_QUERY {
        return Err(invalid_event(
            index,
            format!("query longer than {MAX_QUERY} bytes"),
        ));
    }
    Ok(())
}

/// Events per commit of a file import: files up to this size are one atomic commit;
/// bigger ones are validated whole first, then written in commits of this size, so
/// memory is bounded by the file's bytes plus one batch instead of growing per event.
pub(crate) const IMPORT_BATCH: usize = 1 << 20;

impl<'a> IngestBatch<'a> {
    /// Events and searches pushed.
    pub fn len(&self) -> usize {
        self.events.len() + self.searches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add a search: `user` searched for `text` at `timestamp`. The text is split into
    /// tokens by the text tokenizer (words of 2-15 ASCII letters, lowercased); a text
    /// with no token, or longer than [`MAX_QUERY`] bytes, is rejected. A user who only
    /// searched gets a user id like one who interacted.
    pub fn push_search(&mut self, user: &str, text: &str, timestamp: i64) -> Result<()> {
        let index = self.len();
        check_id("user", user, index)?;
        check_query(text, index)?;
        let tokens = crate::train::text::tokenize(text);
        if tokens.is_empty() {
            return Err(invalid_event(
                index,
                format!("query {text:?} has no word (a word is 2-15 ASCII letters)"),
            ));
        }
        self.search_users.push(user);
        for t in &tokens {
            self.tokens.push(t);
        }
        self.searches
            .push((timestamp, self.tokens.len(), self.events.len()));
        Ok(())
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
        if self.is_empty() {
            return Err(Error::Empty("batch has no events".into()));
        }
        let _w = db.lock_write();
        let b = db.backend();
        let mut batch = WriteBatch::default();
        let (
            update,
            search_update,
            (new_users, new_items, new_groups, new_tokens),
            receipt,
            meta,
            search,
        ) = {
            let st = db.state()?;
            let mut pu = PendingIds::new(&st.users, b);
            let mut pi = PendingIds::new(&st.items, b);
            let mut pg = PendingIds::new(&st.groups, b);
            let mut pt = PendingIds::new(&st.tokens, b);
            // Users of events first, then of searches: ids in order of first appearance.
            let (umap, imap, gmap, smap, tmap) = db.pool().install(|| -> Result<_> {
                Ok((
                    self.users.resolve(&mut pu)?,
                    self.items.resolve(&mut pi)?,
                    self.groups.resolve(&mut pg)?,
                    self.search_users.resolve(&mut pu)?,
                    self.tokens.resolve(&mut pt)?,
                ))
            })?;
            let mut meta = st.meta.clone();
            let base = meta.events;
            // Event k's seq counts the searches pushed before it, search j's the events.
            let mut searches_before = vec![0u64; self.events.len() + 1];
            for &(_, _, before) in &self.searches {
                searches_before[before] += 1;
            }
            for k in 1..searches_before.len() {
                searches_before[k] += searches_before[k - 1];
            }
            let searches: Vec<SearchEvent> = self
                .searches
                .iter()
                .enumerate()
                .map(|(j, &(ts, end, before))| {
                    let start = if j == 0 { 0 } else { self.searches[j - 1].1 };
                    SearchEvent {
                        user: smap[j],
                        tokens: tmap[start..end].to_vec(),
                        timestamp: ts,
                        seq: base + before as u64 + j as u64,
                    }
                })
                .collect();
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
                    seq: base + k as u64 + searches_before[k],
                })
                .collect();
            meta.events += (events.len() + searches.len()) as u64;
            meta.users = pu.total();
            meta.items = pi.total();
            meta.groups = pg.total();
            let mut search = st.search.clone();
            search.searches += searches.len() as u64;
            search.tokens = pt.total();
            let (update, search_update) = db.pool().install(|| -> Result<_> {
                let u = st
                    .log
                    .plan_append(b, events, &mut meta.next_run, &mut batch)?;
                let s = st
                    .searches
                    .plan_append(b, searches, &mut meta.next_run, &mut batch)?;
                Ok((u, s))
            })?;
            let ids = (
                pu.write(&mut batch)?,
                pi.write(&mut batch)?,
                pg.write(&mut batch)?,
                pt.write(&mut batch)?,
            );
            meta.put(&mut batch);
            if !self.searches.is_empty() {
                search.put(&mut batch);
            }
            let receipt = CommitReceipt {
                events: self.events.len() as u64,
                new_users: ids.0.added() as u64,
                new_items: ids.1.added() as u64,
                total_events: meta.events,
                searches: self.searches.len() as u64,
            };
            (update, search_update, ids, receipt, meta, search)
        };
        {
            // Readers never see a manifest whose runs a merge has just deleted.
            let mut st = db.state_mut()?;
            b.apply(batch)?;
            st.users.install(new_users);
            st.items.install(new_items);
            st.groups.install(new_groups);
            st.tokens.install(new_tokens);
            st.log.install(update);
            st.searches.install(search_update);
            st.meta = meta;
            st.search = search;
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

impl<'a> IngestBatch<'a> {
    /// An empty batch writing through `db`.
    pub(crate) fn new(db: &'a dyn Writer) -> Self {
        IngestBatch {
            db,
            users: Arena::default(),
            items: Arena::default(),
            groups: Arena::default(),
            events: Vec::new(),
            search_users: Arena::default(),
            tokens: Arena::default(),
            searches: Vec::new(),
        }
    }
}
