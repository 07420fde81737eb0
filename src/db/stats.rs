//! What `recdb stats` and `recdb check` report: counts and sizes, and a full read of
//! every stored value.

use super::{tables, Db, TableInfo};
use crate::jobs::record as job_store;
use crate::storage::attrs;
use crate::storage::meta;
use crate::{Error, Result};

/// Counts and sizes, as `recdb stats` shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    pub users: u64,
    pub items: u64,
    /// Interactions logged (searches not included).
    pub events: u64,
    /// Searches logged.
    pub searches: u64,
    /// Words in the search vocabulary.
    pub search_tokens: u64,
    pub groups: u64,
    /// Imported documents (`import docs`).
    pub docs: u64,
    pub log_segments: u64,
    pub tables: Vec<TableInfo>,
    pub jobs: u64,
    pub size_on_disk: u64,
    pub format: u32,
    /// The source of a restore that stopped before it finished (see [`Db::restore`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_restore: Option<String>,
}

/// The result of [`Db::check`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub events: u64,
    pub searches: u64,
    pub segments: u64,
    pub users: u64,
    pub items: u64,
    pub item_attrs: u64,
    pub user_attrs: u64,
    pub docs: u64,
    pub table_versions: u64,
    pub table_rows: u64,
    /// Stored indexes validated (header, every posting block, every row once).
    pub indexes: u64,
    pub indexed_rows: u64,
    /// Operations in the deltas of all versions (rows put or deleted since publish).
    pub delta_ops: u64,
    pub jobs: u64,
}

impl Db {
    pub fn stats(&self) -> Result<Stats> {
        let (users, items, events, groups, segments, searches, search_tokens) = {
            let st = self.state()?;
            (
                st.users.len() as u64,
                st.items.len() as u64,
                st.events(),
                st.groups.len() as u64,
                (st.log.runs() + st.searches.runs()) as u64,
                st.search.searches,
                u64::from(st.tokens.len()),
            )
        };
        Ok(Stats {
            users,
            items,
            events,
            searches,
            search_tokens,
            groups,
            docs: crate::storage::docs::count(self.backend())?,
            log_segments: segments,
            tables: self.tables()?,
            jobs: job_store::all(self.backend())?.len() as u64,
            size_on_disk: self.backend().size_on_disk()?,
            format: meta::FORMAT,
            incomplete_restore: self.incomplete_restore()?,
        })
    }

    /// Read and validate every stored value: log segments, id maps, attributes, every
    /// block of every table version, job records, records of imported files. A restore
    /// that stopped before it finished is [`Error::IncompleteRestore`].
    pub fn check(&self) -> Result<CheckReport> {
        self.refuse_incomplete_restore()?;
        let b = self.backend();
        let st = self.state()?;
        let events = st.log.verify(b)?;
        if let Some(k) = st.log.orphans(b)?.first() {
            use crate::storage::keys::{be_u32, be_u64};
            let what = match (be_u64(&k[1..]), k.get(9..).and_then(be_u32)) {
                (Some(run), Some(bucket)) => format!("log segment (bucket {bucket}, run {run})"),
                _ => format!("log segment key {k:?}"),
            };
            return Err(Error::corrupted(format!("{what} (named by no manifest)")));
        }
        if events != st.events() {
            return Err(Error::corrupted(format!(
                "interaction log ({events} events stored, header says {})",
                st.events()
            )));
        }
        let searches = verify_searches(b, &st)?;
        st.users.verify(b)?;
        st.items.verify(b)?;
        st.groups.verify(b)?;
        let item_attrs = attrs::all_items(b)?.len() as u64;
        let user_attrs = attrs::verify_users(b)?;
        let docs = crate::storage::docs::all(b)?.len() as u64;
        let segments = (st.log.runs() + st.searches.runs()) as u64;
        drop(st);
        let tables::Verified {
            versions: table_versions,
            rows: table_rows,
            indexes,
            indexed_rows,
            delta_ops,
        } = tables::verify_all(b)?;
        let jobs = job_store::all(b)?.len() as u64;
        job_store::policies(b)?;
        crate::storage::imports::verify(b)?;
        let st = self.state()?;
        Ok(CheckReport {
            events,
            searches,
            segments,
            users: st.users.len() as u64,
            items: st.items.len() as u64,
            item_attrs,
            user_attrs,
            docs,
            table_versions,
            table_rows,
            indexes,
            indexed_rows,
            delta_ops,
            jobs,
        })
    }
}

/// Every search segment decoded, no orphan run, the count the search header says,
/// every token id inside the vocabulary, and the vocabulary itself.
fn verify_searches(b: &dyn crate::storage::backend::Backend, st: &super::State) -> Result<u64> {
    let n = st.searches.verify(b)?;
    if let Some(k) = st.searches.orphans(b)?.first() {
        return Err(Error::corrupted(format!(
            "search segment key {k:?} (named by no manifest)"
        )));
    }
    if n != st.search.searches || st.search.searches > st.meta.events {
        return Err(Error::corrupted(format!(
            "search log ({n} searches stored, search header says {} of {} sequence numbers)",
            st.search.searches, st.meta.events
        )));
    }
    let vocab = st.tokens.len();
    for s in st.searches.snapshot(b, u64::MAX)? {
        if let Some(t) = s.tokens.iter().find(|&&t| t >= vocab) {
            return Err(Error::corrupted(format!(
                "search {} (token {t} of {vocab})",
                s.seq
            )));
        }
    }
    st.tokens.verify(b)?;
    Ok(n)
}
