//! The database header: format check and the counters that every commit advances.

use rkyv::{Archive, Deserialize, Serialize};

use super::backend::{Backend, WriteBatch};
use super::codec::{self, Tag};
use super::ids::{IdMap, Space};
use super::keys;
use crate::{Error, Result};

/// The on-disk format this build writes and reads.
pub(crate) const FORMAT: u32 = 2;
/// The format before the id buckets (external → dense on disk): upgraded at open.
const FORMAT_WITHOUT_ID_BUCKETS: u32 = 1;
pub(crate) const FORMAT_KEY: &[u8] = b"F";
const MAGIC: &[u8; 5] = b"recdb";

/// Counters advanced atomically with the writes they describe.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub(crate) struct Meta {
    /// Events accepted so far; also the next event sequence number.
    pub events: u64,
    pub users: u32,
    pub items: u32,
    pub groups: u32,
    pub next_run: u64,
    pub next_job: u64,
    pub next_version: u64,
    pub created_unix: i64,
}

impl Meta {
    pub fn load(b: &dyn Backend) -> Result<Option<Meta>> {
        match b.get(keys::META)? {
            None => Ok(None),
            Some(v) => codec::decode(Tag::Meta, &v, &|| "database header (meta)".into()).map(Some),
        }
    }

    pub fn put(&self, batch: &mut WriteBatch) {
        batch.put(keys::META.to_vec(), codec::encode(Tag::Meta, self));
    }
}

/// Check the format marker of an existing database, or write it for a new one.
/// Returns true when the database is new.
pub(crate) fn check_or_init_format(b: &dyn Backend) -> Result<bool> {
    match b.get(FORMAT_KEY)? {
        Some(v) => {
            if v.len() != 9 || &v[..5] != MAGIC {
                return Err(Error::UnsupportedFormat {
                    found: "not a recdb database (bad format marker)".into(),
                    supported: FORMAT,
                });
            }
            let found = u32::from_le_bytes([v[5], v[6], v[7], v[8]]);
            if found == FORMAT_WITHOUT_ID_BUCKETS {
                upgrade_id_buckets(b)?;
                return Ok(false);
            }
            if found != FORMAT {
                return Err(Error::UnsupportedFormat {
                    found: format!("format {found}"),
                    supported: FORMAT,
                });
            }
            Ok(false)
        }
        None => {
            if !b.keys_from(b"", 1)?.is_empty() {
                return Err(Error::UnsupportedFormat {
                    found: "not a recdb database (keys without a format marker)".into(),
                    supported: FORMAT,
                });
            }
            let meta = Meta {
                created_unix: now_unix(),
                next_version: 1,
                next_job: 1,
                ..Meta::default()
            };
            let mut batch = WriteBatch::default();
            put_format(&mut batch, FORMAT);
            meta.put(&mut batch);
            b.apply(batch)?;
            b.flush()?;
            Ok(true)
        }
    }
}

fn put_format(batch: &mut WriteBatch, format: u32) {
    let mut marker = MAGIC.to_vec();
    marker.extend_from_slice(&format.to_le_bytes());
    batch.put(FORMAT_KEY.to_vec(), marker);
}

/// Format 1 → 2: write the id buckets from the id blocks, with the new marker in the
/// same atomic batch (a crash leaves format 1, and the next open upgrades again). Reads
/// every id once.
fn upgrade_id_buckets(b: &dyn Backend) -> Result<()> {
    let meta = Meta::load(b)?.ok_or_else(|| Error::corrupted("database header (missing)"))?;
    let mut batch = WriteBatch::default();
    for (space, len) in [
        (Space::Users, meta.users),
        (Space::Items, meta.items),
        (Space::Groups, meta.groups),
    ] {
        IdMap::open(space, len).write_lookup(b, &mut batch)?;
    }
    put_format(&mut batch, FORMAT);
    b.apply(batch)?;
    b.flush()
}

/// Overwrite the format marker (tests of the format errors and upgrades use it).
#[cfg(test)]
pub(crate) fn write_format(b: &dyn Backend, format: u32) -> Result<()> {
    let mut batch = WriteBatch::default();
    put_format(&mut batch, format);
    b.apply(batch)
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
