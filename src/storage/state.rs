//! The database's in-memory state: the header, the id maps (their counts and caches)
//! and the log's manifests, loaded at open and replaced by each commit under the
//! writer lock.

use super::backend::Backend;
use super::ids::{IdMap, Space};
use super::log::{Log, SearchHeader};
use super::meta::Meta;
use crate::event::SearchEvent;
use crate::{Error, Result};

pub(crate) struct State {
    pub meta: Meta,
    pub users: IdMap,
    pub items: IdMap,
    pub groups: IdMap,
    pub log: Log,
    /// The search log: the same runs, merges and watermarks as `log`, its own keys.
    pub searches: Log<SearchEvent>,
    /// The search-token vocabulary (token string <-> dense id).
    pub tokens: IdMap,
    pub search: SearchHeader,
}

impl State {
    /// Interactions logged: the header's sequence numbers, less those searches took.
    pub(crate) fn events(&self) -> u64 {
        self.meta.events.saturating_sub(self.search.searches)
    }
}

impl State {
    /// What the stored header, id maps and log say.
    pub(crate) fn load(b: &dyn Backend) -> Result<State> {
        let meta = Meta::load(b)?.ok_or_else(|| Error::corrupted("database header (missing)"))?;
        let search = SearchHeader::load(b)?;
        Ok(State {
            // The id maps stay on disk: loading reads their counts from the header only.
            users: IdMap::open(Space::Users, meta.users),
            items: IdMap::open(Space::Items, meta.items),
            groups: IdMap::open(Space::Groups, meta.groups),
            log: Log::load(b)?,
            searches: Log::load(b)?,
            tokens: IdMap::open(Space::Tokens, search.tokens),
            search,
            meta,
        })
    }
}
