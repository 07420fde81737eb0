//! Tagged text documents (`import docs`): one small value per document, keyed by tag.

use rkyv::{Archive, Deserialize, Serialize};

use super::backend::{Backend, WriteBatch};
use super::codec::{self, Tag};
use super::keys;
use crate::Result;

#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct StoredDoc {
    pub text: String,
}

pub(crate) fn put(batch: &mut WriteBatch, tag: &str, text: &str) {
    let doc = StoredDoc {
        text: text.to_owned(),
    };
    batch.put(keys::doc(tag), codec::encode(Tag::Doc, &doc));
}

/// Whether document `tag` is stored (its key only: the text is not read).
pub(crate) fn exists(b: &dyn Backend, tag: &str) -> Result<bool> {
    let key = keys::doc(tag);
    Ok(b.keys_from(&key, 1)?
        .first()
        .is_some_and(|k| k[..] == key[..]))
}

pub(crate) fn get(b: &dyn Backend, tag: &str) -> Result<Option<String>> {
    let Some(v) = b.get(&keys::doc(tag))? else {
        return Ok(None);
    };
    let d: StoredDoc = codec::decode(Tag::Doc, &v, &|| format!("document `{tag}`"))?;
    Ok(Some(d.text))
}

/// Every document as (tag, text), in tag order (byte order of the tags).
pub(crate) fn all(b: &dyn Backend) -> Result<Vec<(String, String)>> {
    b.scan_prefix(keys::DOC_PREFIX)?
        .into_iter()
        .map(|(k, v)| {
            let tag = String::from_utf8_lossy(&k[1..]).into_owned();
            let d: StoredDoc = codec::decode(Tag::Doc, &v, &|| format!("document `{tag}`"))?;
            Ok((tag, d.text))
        })
        .collect()
}

/// Number of stored documents (keys only: no value is read).
pub(crate) fn count(b: &dyn Backend) -> Result<u64> {
    b.count_prefix(keys::DOC_PREFIX)
}
