//! External string ids to dense u32 and back. The dense→string direction is stored in
//! blocks of 4096 names (never a key per id); the string→dense map is rebuilt in memory
//! at open.

use compact_str::CompactString;
use rkyv::{Archive, Deserialize, Serialize};
use rustc_hash::FxHashMap;

use std::collections::HashMap;

use super::backend::{Backend, WriteBatch};
use super::codec::{self, Tag};
use super::keys;
use crate::{Error, Result};

const BLOCK: usize = 4096;

#[derive(Archive, Serialize, Deserialize, Debug, Default)]
pub(crate) struct IdBlock {
    pub first: u32,
    pub names: Vec<String>,
}

/// Which id space: users, items or groups (sessions/baskets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    Users,
    Items,
    Groups,
}

impl Space {
    fn prefix(self) -> u8 {
        match self {
            Space::Users => b'U',
            Space::Items => b'I',
            Space::Groups => b'G',
        }
    }
    fn name(self) -> &'static str {
        match self {
            Space::Users => "user",
            Space::Items => "item",
            Space::Groups => "group",
        }
    }
}

/// One id space in memory.
#[derive(Debug)]
pub(crate) struct IdMap {
    space: Space,
    names: Vec<String>,
    // Short ids are stored inline, so a lookup compares without a second cache miss.
    index: HashMap<CompactString, u32, foldhash::fast::RandomState>,
}

impl IdMap {
    pub fn load(b: &dyn Backend, space: Space, expected: u32) -> Result<IdMap> {
        let mut names = Vec::with_capacity(expected as usize);
        for (k, v) in b.scan_prefix(&[space.prefix()])? {
            let block_no = keys::be_u32(&k[1..]).unwrap_or(u32::MAX);
            let what = || format!("{} id block {block_no}", space.name());
            let block: IdBlock = codec::decode(Tag::IdBlock, &v, &what)?;
            if block.first as usize != names.len()
                || block.first as usize != block_no as usize * BLOCK
            {
                return Err(Error::corrupted(format!("{} (out of sequence)", what())));
            }
            names.extend(block.names);
        }
        if names.len() != expected as usize {
            return Err(Error::corrupted(format!(
                "{} id map ({} ids stored, header says {expected})",
                space.name(),
                names.len()
            )));
        }
        let mut index = HashMap::with_capacity_and_hasher(names.len(), Default::default());
        for (i, n) in names.iter().enumerate() {
            if index
                .insert(CompactString::from(n.as_str()), i as u32)
                .is_some()
            {
                return Err(Error::corrupted(format!(
                    "{} id map (duplicate id `{n}`)",
                    space.name()
                )));
            }
        }
        Ok(IdMap {
            space,
            names,
            index,
        })
    }

    pub fn len(&self) -> u32 {
        self.names.len() as u32
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Write the blocks touched by appending `new` names (not yet installed).
    pub fn write_appended(&self, new: &[String], batch: &mut WriteBatch) {
        if new.is_empty() {
            return;
        }
        let old = self.names.len();
        let total = old + new.len();
        let name_at = |i: usize| {
            if i < old {
                &self.names[i]
            } else {
                &new[i - old]
            }
        };
        for block_no in old / BLOCK..total.div_ceil(BLOCK) {
            let first = block_no * BLOCK;
            let end = (first + BLOCK).min(total);
            let block = IdBlock {
                first: first as u32,
                names: (first..end).map(|i| name_at(i).clone()).collect(),
            };
            batch.put(
                keys::id_block(self.space.prefix(), block_no as u32),
                codec::encode(Tag::IdBlock, &block),
            );
        }
    }

    /// Install names whose blocks were committed.
    pub fn install(&mut self, new: Vec<String>) {
        for n in new {
            self.index
                .insert(CompactString::from(n.as_str()), self.names.len() as u32);
            self.names.push(n);
        }
    }
}

/// Ids assigned by a batch that is not committed yet.
pub(crate) struct PendingIds<'a> {
    map: &'a IdMap,
    pub new: Vec<String>,
    new_index: FxHashMap<String, u32>,
}

impl<'a> PendingIds<'a> {
    pub fn new(map: &'a IdMap) -> Self {
        PendingIds {
            map,
            new: Vec::new(),
            new_index: FxHashMap::default(),
        }
    }

    pub fn resolve(&mut self, name: &str) -> Result<u32> {
        if let Some(id) = self.map.get(name) {
            return Ok(id);
        }
        if let Some(&id) = self.new_index.get(name) {
            return Ok(id);
        }
        let id = self.map.len() as usize + self.new.len();
        if id >= u32::MAX as usize {
            return Err(Error::InvalidInput(format!(
                "too many {} ids",
                self.map.space.name()
            )));
        }
        self.new.push(name.to_owned());
        self.new_index.insert(name.to_owned(), id as u32);
        Ok(id as u32)
    }

    pub fn total(&self) -> u32 {
        (self.map.len() as usize + self.new.len()) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::backend::MemBackend;

    #[test]
    fn ids_roundtrip_across_blocks() {
        let b = MemBackend::default();
        let mut map = IdMap::load(&b, Space::Items, 0).unwrap();
        for round in 0..3 {
            let mut p = PendingIds::new(&map);
            for i in 0..3000 {
                p.resolve(&format!("item-{}", i + round * 2500)).unwrap();
            }
            let new = std::mem::take(&mut p.new);
            let mut batch = WriteBatch::default();
            map.write_appended(&new, &mut batch);
            b.apply(batch).unwrap();
            map.install(new);
        }
        let again = IdMap::load(&b, Space::Items, map.len()).unwrap();
        assert_eq!(again.len(), 3000 + 2500 * 2);
        assert_eq!(again.get("item-5999"), map.get("item-5999"));
        assert_eq!(again.name(0), Some("item-0"));
        assert!(IdMap::load(&b, Space::Items, 1).is_err());
    }
}
