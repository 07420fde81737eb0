//! Finding items by what people know of them: a title, a genre, an attribute. Scans of
//! every item's attributes (meant for the shell, not for a hot path).

use crate::event::ItemRecord;
use crate::storage::attrs::ItemAttrs;
use crate::{Error, Result};

/// How many candidates an ambiguous title lists.
const CANDIDATES_SHOWN: usize = 10;

/// The records whose id, title, genres or attribute values contain `text` (ignoring
/// case), in order, at most `limit` of them.
pub(crate) fn find_items(records: Vec<ItemRecord>, text: &str, limit: usize) -> Vec<ItemRecord> {
    let needle = text.to_lowercase();
    let mut out = Vec::new();
    if limit == 0 {
        return out;
    }
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
    out
}

/// The one record whose title is `text`, or `title (year)` for a record with a
/// `*year*` attribute (ignoring case); several are [`Error::AmbiguousItem`], none
/// [`Error::UnknownItem`].
pub(crate) fn resolve_title(records: Vec<ItemRecord>, text: &str) -> Result<String> {
    let wanted = text.to_lowercase();
    let mut matches: Vec<ItemRecord> = records
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

/// Every item of `all` (attributes by dense id) with its external id from `names`
/// (read after `all`, so every id in it has a name), in dense id order.
pub(crate) fn item_records(all: Vec<(u32, ItemAttrs)>, names: &[String]) -> Vec<ItemRecord> {
    all.into_iter()
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
        .collect()
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
