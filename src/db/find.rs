//! Finding items by what people know of them: a title, a genre, an attribute.

use crate::event::ItemRecord;
use crate::storage::attrs;
use crate::{Db, Error, Result};

/// How many candidates an ambiguous title lists.
const CANDIDATES_SHOWN: usize = 10;

impl Db {
    /// Items whose id, title, genres or attribute values contain `text` (ignoring
    /// case), in id order, at most `limit` of them. Loads every item's attributes and
    /// all item names per call (a scan, meant for the shell, not for a hot path).
    pub fn find_items(&self, text: &str, limit: usize) -> Result<Vec<ItemRecord>> {
        let needle = text.to_lowercase();
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let records = self.item_records()?;
        for rec in records {
            let hit = std::iter::once(&rec.id)
                .chain(rec.title.iter())
                .chain(rec.genres.iter())
                .chain(rec.attrs.iter().map(|(_, v)| v))
                .any(|s| s.to_lowercase().contains(&needle));
            if hit {
                out.push(rec);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The item `text` names: an item id (which always wins), else the one item whose
    /// title is `text`, or `title (year)` for an item with a `*year*` attribute (ignoring
    /// case: `Star Wars (1977)`). Several such titles are
    /// [`Error::AmbiguousItem`]; none is [`Error::UnknownItem`]. A title scans every
    /// item's attributes, as [`Db::find_items`] does.
    pub fn resolve_item(&self, text: &str) -> Result<String> {
        if self.item_id(text).is_ok() {
            return Ok(text.to_owned());
        }
        let wanted = text.to_lowercase();
        let mut matches: Vec<ItemRecord> = self
            .item_records()?
            .into_iter()
            .filter(|r| titles(r).any(|t| t.to_lowercase() == wanted))
            .collect();
        match matches.len() {
            0 => Err(Error::UnknownItem(text.to_owned())),
            1 => Ok(matches.remove(0).id),
            n => Err(Error::AmbiguousItem {
                text: text.to_owned(),
                matches: n,
                candidates: matches
                    .into_iter()
                    .take(CANDIDATES_SHOWN)
                    .map(|r| r.id)
                    .collect(),
            }),
        }
    }

    /// How many events of the log name `item`: reads every log segment (one at a time,
    /// counting in place), so it costs a scan of the log per call.
    pub fn item_event_count(&self, item: &str) -> Result<u64> {
        let iid = self.item_id(item)?;
        let st = self.state()?;
        st.log.count_item(self.backend(), iid, st.meta.events)
    }

    /// Every item with attributes, with its external id, in dense id order.
    fn item_records(&self) -> Result<Vec<ItemRecord>> {
        let all = attrs::all_items(self.backend())?;
        let names = self.state()?.items.all_names(self.backend())?;
        Ok(all
            .into_iter()
            .filter_map(|(iid, a)| {
                let id = names.get(iid as usize)?.clone();
                Some(ItemRecord {
                    id,
                    title: a.title,
                    genres: a.genres,
                    text: a.text,
                    attrs: a.fields.into_iter().map(|f| (f.name, f.value)).collect(),
                })
            })
            .collect())
    }
}

/// The names an item's title goes by: the title, and `title (year)` for each attribute
/// whose name contains `year` (data sets keep the year apart from the title).
fn titles(r: &ItemRecord) -> impl Iterator<Item = String> + '_ {
    let title = r.title.as_deref();
    let with_year = r
        .attrs
        .iter()
        .filter(|(k, _)| k.to_lowercase().contains("year"))
        .filter_map(move |(_, y)| Some(format!("{} ({y})", title?)));
    title.map(str::to_owned).into_iter().chain(with_year)
}
