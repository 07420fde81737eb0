//! Models parsed once per published version, not once per query: a network stored as a
//! table (an autoencoder's `<model>.net`, a tower) is decoded by the first query that
//! reads that version and shared by the next ones. An entry is keyed by the names of
//! the tables it was parsed from (and the parsed type) and holds their versions;
//! versions come from one counter of the database, so a republish (or a drop and a new
//! table of the same name) never matches an old entry. A reader that started before a
//! publish keeps its own `Arc` of the version it read.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::Source;
use crate::error::OrPoisoned;
use crate::storage::tables::TableView;
use crate::Result;

/// At most this many models are kept parsed (one entry per model and type); the least
/// recently used goes first. Bounds memory when many models are queried in turn.
const MAX_ENTRIES: usize = 32;

type Key = (TypeId, Vec<String>);

struct Entry {
    versions: Vec<u64>,
    value: Arc<dyn Any + Send + Sync>,
    last_used: u64,
}

/// The parsed models of a database (see the module docs). Thread-safe: the lock is
/// held for lookups only, never while parsing.
#[derive(Default)]
pub(crate) struct ParsedCache {
    entries: Mutex<HashMap<Key, Entry>>,
    tick: AtomicU64,
    /// Parses run through the cache (misses), for tests.
    parses: AtomicU64,
}

impl ParsedCache {
    /// The value parsed from `views` (one publish, as [`Source::tables_consistent`]
    /// returns them): cached if these versions were parsed before, else `parse()`d and
    /// kept unless a newer version of the same tables is cached already. A parse error
    /// is returned and not kept.
    pub(crate) fn get_or_parse<T: Any + Send + Sync>(
        &self,
        views: &[Arc<TableView>],
        parse: impl FnOnce() -> Result<T>,
    ) -> Result<Arc<T>> {
        let key: Key = (
            TypeId::of::<T>(),
            views.iter().map(|v| v.name().to_owned()).collect(),
        );
        let versions: Vec<u64> = views.iter().map(|v| v.version()).collect();
        {
            let mut map = self.entries.lock().or_poisoned("parsed model cache")?;
            if let Some(e) = map.get_mut(&key) {
                if e.versions == versions {
                    if let Ok(v) = e.value.clone().downcast::<T>() {
                        e.last_used = self.tick.fetch_add(1, Ordering::Relaxed);
                        return Ok(v);
                    }
                }
            }
        }
        self.parses.fetch_add(1, Ordering::Relaxed);
        let value = Arc::new(parse()?);
        let mut map = self.entries.lock().or_poisoned("parsed model cache")?;
        // An older version (a reader that started before a publish) does not evict the
        // current one; versions only grow, so the larger maximum is the later publish.
        let newest = versions.iter().max();
        if map
            .get(&key)
            .is_none_or(|e| e.versions.iter().max() < newest)
        {
            if !map.contains_key(&key) && map.len() >= MAX_ENTRIES {
                if let Some(old) = map
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&old);
                }
            }
            map.insert(
                key,
                Entry {
                    versions,
                    value: value.clone(),
                    last_used: self.tick.fetch_add(1, Ordering::Relaxed),
                },
            );
        }
        Ok(value)
    }

    /// Drop every entry parsed from table `name` (dropped, or just republished: the next
    /// query parses the new version; until then the old one would only hold memory).
    pub(crate) fn forget_table(&self, name: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|(_, names), _| !names.iter().any(|n| n == name));
        }
    }

    /// Drop every entry (a restore replaced the tables).
    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }

    /// How many parses ran through the cache.
    #[cfg(test)]
    pub(crate) fn parses(&self) -> u64 {
        self.parses.load(Ordering::Relaxed)
    }

    /// How many models are kept parsed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }
}

/// [`ParsedCache::get_or_parse`] on `db`'s cache.
pub(crate) fn parsed<S: Source + ?Sized, T: Any + Send + Sync>(
    db: &S,
    views: &[Arc<TableView>],
    parse: impl FnOnce() -> Result<T>,
) -> Result<Arc<T>> {
    db.parsed_cache().get_or_parse(views, parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::backend::MemBackend;
    use crate::storage::tables::VersionInfo;
    use crate::Error;

    /// An empty table version (only its name and version matter here).
    fn view(name: &str, version: u64) -> Arc<TableView> {
        let info = VersionInfo {
            version,
            rows: 0,
            dim: 1,
            rows_per_block: 1,
            blocks: 0,
            space: 1,
            created_unix: 0,
            job: 0,
            watermark: 0,
            offset: 0.0,
            row_ids: vec![],
        };
        TableView::load(&MemBackend::default(), name, &info).unwrap()
    }

    #[test]
    fn a_version_parses_once_and_a_new_version_misses() {
        let c = ParsedCache::default();
        let v1 = [view("m.net", 3), view("m.items", 3)];
        let a = c.get_or_parse(&v1, || Ok(1u32)).unwrap();
        let b = c.get_or_parse(&v1, || Ok(2u32)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(c.parses(), 1);
        let v2 = [view("m.net", 5), view("m.items", 5)];
        assert_eq!(*c.get_or_parse(&v2, || Ok(9u32)).unwrap(), 9);
        // A reader still on the old version parses it again but does not evict the new.
        assert_eq!(*c.get_or_parse(&v1, || Ok(1u32)).unwrap(), 1);
        assert_eq!(*c.get_or_parse(&v2, || Ok(0u32)).unwrap(), 9);
        assert_eq!(c.parses(), 3);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn models_and_types_do_not_collide() {
        let c = ParsedCache::default();
        let a = [view("a.net", 1)];
        let b = [view("b.net", 1)];
        assert_eq!(*c.get_or_parse(&a, || Ok(1u32)).unwrap(), 1);
        assert_eq!(*c.get_or_parse(&b, || Ok(2u32)).unwrap(), 2);
        assert_eq!(*c.get_or_parse(&a, || Ok(0u64)).unwrap(), 0);
        assert_eq!(*c.get_or_parse(&a, || Ok(7u32)).unwrap(), 1);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn an_error_is_not_cached_and_a_forgotten_table_misses() {
        let c = ParsedCache::default();
        let a = [view("a.net", 1), view("a.items", 1)];
        let e = c.get_or_parse::<u32>(&a, || Err(Error::corrupted("bad net")));
        assert!(e.is_err());
        assert_eq!(*c.get_or_parse(&a, || Ok(4u32)).unwrap(), 4);
        c.forget_table("a.items");
        assert_eq!(c.len(), 0);
        assert_eq!(*c.get_or_parse(&a, || Ok(5u32)).unwrap(), 5);
        c.clear();
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn entries_are_bounded() {
        let c = ParsedCache::default();
        for i in 0..(MAX_ENTRIES + 10) {
            c.get_or_parse(&[view(&format!("m{i}.net"), 1)], || Ok(i))
                .unwrap();
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        // The most recent ones stayed.
        let last = [view(&format!("m{}.net", MAX_ENTRIES + 9), 1)];
        assert_eq!(
            *c.get_or_parse(&last, || Ok(0usize)).unwrap(),
            MAX_ENTRIES + 9
        );
    }
}
