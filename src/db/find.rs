//! The facade of item lookups by text (the logic is in `query::find`).

use crate::event::ItemRecord;
use crate::query::find;
use crate::storage::attrs;
use crate::{Db, Result};

impl Db {
    /// Items whose id, title, genres or attribute values contain `text` (ignoring
    /// case), in id order, at most `limit` of them. Loads every item's attributes and
    /// all item names per call (a scan, meant for the shell, not for a hot path).
    pub fn find_items(&self, text: &str, limit: usize) -> Result<Vec<ItemRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(find::find_items(self.item_records()?, text, limit))
    }

    /// The item `text` names: an item id (which always wins), else the one item whose
    /// title is `text`, or `title (year)` for an item with a `*year*` attribute (ignoring
    /// case: `Star Wars (1977)`). Several such titles are
    /// [`crate::Error::AmbiguousItem`]; none is [`crate::Error::UnknownItem`]. A title
    /// scans every item's attributes, as [`Db::find_items`] does.
    pub fn resolve_item(&self, text: &str) -> Result<String> {
        if self.item_id(text).is_ok() {
            return Ok(text.to_owned());
        }
        find::resolve_title(self.item_records()?, text)
    }

    /// How many events of the log name `item`: reads every log segment (one at a time,
    /// counting in place), so it costs a scan of the log per call.
    pub fn item_event_count(&self, item: &str) -> Result<u64> {
        let iid = self.item_id(item)?;
        let st = self.state()?;
        st.log.count_item(self.backend(), iid, st.meta.events)
    }

    fn item_records(&self) -> Result<Vec<ItemRecord>> {
        let all = attrs::all_items(self.backend())?;
        let names = self.state()?.items.all_names(self.backend())?;
        Ok(find::item_records(all, &names))
    }
}
