//! Item and user attributes, one small value per entity.

use rkyv::{Archive, Deserialize, Serialize};

use super::backend::{Backend, WriteBatch};
use super::codec::{self, Tag};
use super::keys;
use crate::event::{ItemRecord, UserRecord};
use crate::Result;

#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct Field {
    pub name: String,
    pub value: String,
}

#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct ItemAttrs {
    pub title: Option<String>,
    pub genres: Vec<String>,
    pub text: Option<String>,
    pub fields: Vec<Field>,
}

#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct UserAttrs {
    pub fields: Vec<Field>,
}

fn fields(pairs: &[(String, String)]) -> Vec<Field> {
    pairs
        .iter()
        .map(|(n, v)| Field {
            name: n.clone(),
            value: v.clone(),
        })
        .collect()
}

fn pairs(fields: Vec<Field>) -> Vec<(String, String)> {
    fields.into_iter().map(|f| (f.name, f.value)).collect()
}

pub(crate) fn put_item(batch: &mut WriteBatch, item: u32, rec: &ItemRecord) {
    let attrs = ItemAttrs {
        title: rec.title.clone(),
        genres: rec.genres.clone(),
        text: rec.text.clone(),
        fields: fields(&rec.attrs),
    };
    batch.put(
        keys::item_attrs(item),
        codec::encode(Tag::ItemAttrs, &attrs),
    );
}

pub(crate) fn put_user(batch: &mut WriteBatch, user: u32, rec: &UserRecord) {
    let attrs = UserAttrs {
        fields: fields(&rec.attrs),
    };
    batch.put(
        keys::user_attrs(user),
        codec::encode(Tag::UserAttrs, &attrs),
    );
}

pub(crate) fn get_item(b: &dyn Backend, item: u32, id: &str) -> Result<Option<ItemRecord>> {
    let Some(v) = b.get(&keys::item_attrs(item))? else {
        return Ok(None);
    };
    let a: ItemAttrs = codec::decode(Tag::ItemAttrs, &v, &|| format!("attributes of item `{id}`"))?;
    Ok(Some(ItemRecord {
        id: id.to_owned(),
        title: a.title,
        genres: a.genres,
        text: a.text,
        attrs: pairs(a.fields),
    }))
}

pub(crate) fn get_user(b: &dyn Backend, user: u32, id: &str) -> Result<Option<UserRecord>> {
    let Some(v) = b.get(&keys::user_attrs(user))? else {
        return Ok(None);
    };
    let a: UserAttrs = codec::decode(Tag::UserAttrs, &v, &|| format!("attributes of user `{id}`"))?;
    Ok(Some(UserRecord {
        id: id.to_owned(),
        attrs: pairs(a.fields),
    }))
}

/// Every item's attributes, by dense id (for genre filters and text jobs).
pub(crate) fn all_items(b: &dyn Backend) -> Result<Vec<(u32, ItemAttrs)>> {
    b.scan_prefix(b"b")?
        .into_iter()
        .map(|(k, v)| {
            let item = keys::be_u32(&k[1..]).unwrap_or(u32::MAX);
            let a = codec::decode(Tag::ItemAttrs, &v, &|| {
                format!("attributes of item #{item}")
            })?;
            Ok((item, a))
        })
        .collect()
}

/// Every user's attributes, by dense id (for jobs that read demographics).
pub(crate) fn all_users(b: &dyn Backend) -> Result<Vec<(u32, UserAttrs)>> {
    b.scan_prefix(b"a")?
        .into_iter()
        .map(|(k, v)| {
            let user = keys::be_u32(&k[1..]).unwrap_or(u32::MAX);
            let a = codec::decode(Tag::UserAttrs, &v, &|| {
                format!("attributes of user #{user}")
            })?;
            Ok((user, a))
        })
        .collect()
}

impl UserAttrs {
    /// The stored attributes as (name, value) pairs.
    pub(crate) fn into_pairs(self) -> Vec<(String, String)> {
        pairs(self.fields)
    }
}

impl ItemAttrs {
    /// The stored attributes as the record they were put from (without its id).
    pub(crate) fn into_record(self) -> ItemRecord {
        ItemRecord {
            id: String::new(),
            title: self.title,
            genres: self.genres,
            text: self.text,
            attrs: pairs(self.fields),
        }
    }
}

/// Number of users with attributes, and a validation pass over them.
pub(crate) fn verify_users(b: &dyn Backend) -> Result<u64> {
    let mut n = 0;
    for (k, v) in b.scan_prefix(b"a")? {
        let user = keys::be_u32(&k[1..]).unwrap_or(u32::MAX);
        codec::decode::<UserAttrs>(Tag::UserAttrs, &v, &|| {
            format!("attributes of user #{user}")
        })?;
        n += 1;
    }
    Ok(n)
}
