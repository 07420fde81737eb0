//! External string ids to dense u32 and back, both directions on disk and read on
//! demand (opening a database reads no id): dense → external in blocks of 4096 names,
//! external → dense in the hash buckets of [`id_hash`](super::id_hash). Never a key per
//! id. What a process reads is kept in two bounded caches per id space.

use crate::error::OrPoisoned;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use rkyv::{Archive, Deserialize, Serialize};
use rustc_hash::FxHashMap;

use super::backend::{Backend, WriteBatch};
use super::codec::{self, Tag};
use super::id_cache::Cache;
use super::id_hash::{self, IdBucket};
use super::keys;
use crate::{Error, Result};

const BLOCK_IDS: u32 = 4096;
const BLOCK: usize = BLOCK_IDS as usize;

#[derive(Archive, Serialize, Deserialize, Debug, Default)]
pub(crate) struct IdBlock {
    pub first: u32,
    pub names: Vec<String>,
}

/// A block's names as the cache keeps them: one buffer and the end of each name.
/// Two allocations where the decoded [`IdBlock`] takes one a name: a query that names
/// a few hundred items scattered over a large map reads that many blocks, and making
/// 4,096 `String`s for each was most of its time (two-stage `recommend` at 1M items).
#[derive(Debug, Default)]
pub(crate) struct Names {
    first: u32,
    text: String,
    ends: Vec<u32>,
}

impl Names {
    fn of<'a>(first: u32, names: impl ExactSizeIterator<Item = &'a str> + Clone) -> Names {
        let bytes = names.clone().map(str::len).sum();
        let mut out = Names {
            first,
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(names.len()),
        };
        for n in names {
            out.text.push_str(n);
            // why: a block's names are below the 4 GiB of a stored value.
            #[allow(clippy::cast_possible_truncation)]
            out.ends.push(out.text.len() as u32);
        }
        out
    }

    fn from_archived(a: &ArchivedIdBlock) -> Names {
        Names::of(a.first.to_native(), a.names.iter().map(|n| n.as_str()))
    }

    fn from_block(b: &IdBlock) -> Names {
        Names::of(b.first, b.names.iter().map(String::as_str))
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, k: usize) -> Option<&str> {
        let end = *self.ends.get(k)? as usize;
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        self.text.get(start..end)
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|k| self.get(k))
    }

    /// The cache's weight: the bytes held.
    fn bytes(&self) -> usize {
        self.text.len() + 4 * self.ends.len()
    }
}

/// Which id space: users, items or groups (sessions/baskets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    Users,
    Items,
    Groups,
    /// Search tokens (the words of queries).
    Tokens,
}

impl Space {
    fn prefix(self) -> u8 {
        match self {
            Space::Users => b'U',
            Space::Items => b'I',
            Space::Groups => b'G',
            Space::Tokens => b'W',
        }
    }
    fn name(self) -> &'static str {
        match self {
            Space::Users => "user",
            Space::Items => "item",
            Space::Groups => "group",
            Space::Tokens => "search token",
        }
    }
}

/// Names the bucket cache of an id map holds before dropping the oldest: about 15 MB
/// of short ids, whatever the size of the map.
const CACHE_NAMES: usize = 1 << 18;
/// Bytes the block cache of an id map holds (packed names): all the blocks of a
/// million short ids.
const CACHE_BLOCK_BYTES: usize = 16 << 20;

/// One id space: its length (from the header), the rest read on demand and cached.
pub(crate) struct IdMap {
    space: Space,
    len: u32,
    blocks: Mutex<Cache<Names>>,
    buckets: Mutex<Cache<IdBucket>>,
}

impl std::fmt::Debug for IdMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdMap")
            .field("space", &self.space)
            .field("len", &self.len)
            .finish()
    }
}

/// The blocks and buckets a commit wrote, to install once it is applied.
pub(crate) struct IdUpdate {
    len: u32,
    added: u32,
    blocks: Vec<(u32, Arc<Names>)>,
    buckets: Vec<(u32, Arc<IdBucket>)>,
}

impl IdUpdate {
    /// The map's length once installed.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// The ids the commit adds.
    pub fn added(&self) -> u32 {
        self.added
    }
}

impl IdMap {
    /// The map of `space` with `len` ids (the header's count). Reads nothing.
    pub fn open(space: Space, len: u32) -> IdMap {
        IdMap {
            space,
            len,
            blocks: Mutex::new(Cache::new(CACHE_BLOCK_BYTES)),
            buckets: Mutex::new(Cache::new(CACHE_NAMES)),
        }
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    fn block(&self, b: &dyn Backend, block_no: u32) -> Result<Arc<Names>> {
        if let Some(hit) = lock(&self.blocks).get(block_no) {
            return Ok(hit);
        }
        let what = || format!("{} id block {block_no}", self.space.name());
        let v = b
            .get(&keys::id_block(self.space.prefix(), block_no))?
            .ok_or_else(|| Error::corrupted(format!("{} (missing)", what())))?;
        let block = Names::from_archived(codec::access(Tag::IdBlock, &v, &what)?);
        let first = block_no as usize * BLOCK;
        let want = (self.len as usize - first).min(BLOCK);
        if block.first as usize != first || block.len() != want {
            return Err(Error::corrupted(format!("{} (out of sequence)", what())));
        }
        let block = Arc::new(block);
        lock(&self.blocks).insert(block_no, block.clone(), block.bytes());
        Ok(block)
    }

    fn bucket(&self, b: &dyn Backend, bucket: u32) -> Result<Arc<IdBucket>> {
        if let Some(hit) = lock(&self.buckets).get(bucket) {
            return Ok(hit);
        }
        let got = Arc::new(id_hash::load(
            b,
            self.space.prefix(),
            self.space.name(),
            bucket,
        )?);
        lock(&self.buckets).insert(bucket, got.clone(), got.ids.len() + 1);
        Ok(got)
    }

    /// An id found in `bucket` must be one of the map's.
    fn checked(&self, bucket: u32, found: Option<u32>) -> Result<Option<u32>> {
        match found {
            Some(id) if id >= self.len => Err(Error::corrupted(format!(
                "{} (id {id} of {})",
                id_hash::what(self.space.name(), bucket)(),
                self.len
            ))),
            other => Ok(other),
        }
    }

    /// The dense id of external id `name`.
    pub fn get(&self, b: &dyn Backend, name: &str) -> Result<Option<u32>> {
        let bucket = id_hash::address(id_hash::hash(name), id_hash::bucket_count(self.len));
        let found = self.bucket(b, bucket)?.find(name);
        self.checked(bucket, found)
    }

    /// [`IdMap::get`] for `n` names at once, in parallel (call inside a pool): each
    /// bucket is read once, and kept in `loaded` for the commit that may rewrite it.
    pub fn get_many<'n>(
        &self,
        b: &dyn Backend,
        n: usize,
        name_at: impl Fn(usize) -> &'n str + Sync,
        loaded: &mut HashMap<u32, Arc<IdBucket>>,
    ) -> Result<Vec<Option<u32>>> {
        let buckets = id_hash::bucket_count(self.len);
        let addr: Vec<u32> = (0..n)
            .into_par_iter()
            .map(|i| id_hash::address(id_hash::hash(name_at(i)), buckets))
            .collect();
        let mut wanted = addr.clone();
        wanted.par_sort_unstable();
        wanted.dedup();
        wanted.retain(|k| !loaded.contains_key(k));
        let read: Vec<(u32, Arc<IdBucket>)> = wanted
            .into_par_iter()
            .map(|k| Ok((k, self.bucket(b, k)?)))
            .collect::<Result<_>>()?;
        loaded.extend(read);
        (0..n)
            .into_par_iter()
            .map(|i| self.checked(addr[i], loaded[&addr[i]].find(name_at(i))))
            .collect()
    }

    /// The external id of dense id `id`.
    pub fn name(&self, b: &dyn Backend, id: u32) -> Result<Option<String>> {
        if id >= self.len {
            return Ok(None);
        }
        let block = self.block(b, id / BLOCK_IDS)?;
        Ok(block.get(id as usize % BLOCK).map(str::to_owned))
    }

    /// Every external id, by dense id: O(ids), for dumps and jobs that need them all.
    pub fn all_names(&self, b: &dyn Backend) -> Result<Vec<String>> {
        let mut names = Vec::new();
        names
            .try_reserve_exact(self.len as usize)
            .map_err(|_| Error::corrupted(format!("{} id map header", self.space.name())))?;
        for (k, v) in b.scan_prefix(&[self.space.prefix()])? {
            let block_no = keys::be_u32(&k[1..]).unwrap_or(u32::MAX);
            let what = || format!("{} id block {block_no}", self.space.name());
            let block: IdBlock = codec::decode(Tag::IdBlock, &v, &what)?;
            if block.first as usize != names.len()
                || block.first as usize != block_no as usize * BLOCK
            {
                return Err(Error::corrupted(format!("{} (out of sequence)", what())));
            }
            names.extend(block.names);
        }
        if names.len() != self.len as usize {
            return Err(Error::corrupted(format!(
                "{} id map ({} ids stored, header says {})",
                self.space.name(),
                names.len(),
                self.len
            )));
        }
        Ok(names)
    }

    /// Read both directions whole and check that they agree (`check`).
    pub fn verify(&self, b: &dyn Backend) -> Result<()> {
        let names = self.all_names(b)?;
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(Error::corrupted(format!(
                "{} id map (duplicate id `{dup}`)",
                self.space.name()
            )));
        }
        id_hash::verify(b, self.space.prefix(), self.space.name(), &names)
    }

    /// Write the buckets of a map that has blocks only (a database of format 1).
    pub fn write_lookup(&self, b: &dyn Backend, batch: &mut WriteBatch) -> Result<()> {
        let names = self.all_names(b)?;
        for (k, bucket) in id_hash::grow(0, names, &mut |_| Ok(IdBucket::default()))? {
            id_hash::put(batch, self.space.prefix(), k, &bucket);
        }
        Ok(())
    }

    /// Write the blocks and buckets touched by appending `new` names (not yet
    /// installed): the last block, and the buckets the names land in or split.
    /// `loaded`: buckets already read for this commit, consumed: a bucket no cache
    /// shares is moved into the rewrite, not copied (a commit that adds more ids than
    /// there are buckets touches every bucket).
    // why: every count, block number and id below is <= `total`, checked to fit u32.
    #[allow(clippy::cast_possible_truncation)]
    pub fn write_appended(
        &self,
        b: &dyn Backend,
        new: Vec<String>,
        mut loaded: HashMap<u32, Arc<IdBucket>>,
        batch: &mut WriteBatch,
    ) -> Result<IdUpdate> {
        let old = self.len as usize;
        let total = old + new.len();
        let mut update = IdUpdate {
            len: crate::error::to_u32(total, self.space.name())?,
            added: new.len() as u32,
            blocks: Vec::new(),
            buckets: Vec::new(),
        };
        if new.is_empty() {
            return Ok(update);
        }
        for block_no in old / BLOCK..total.div_ceil(BLOCK) {
            let first = block_no * BLOCK;
            let end = (first + BLOCK).min(total);
            let mut names = Vec::with_capacity(end - first);
            if first < old {
                names.extend(self.block(b, block_no as u32)?.iter().map(str::to_owned));
            }
            names.extend(new[names.len() + first - old..end - old].iter().cloned());
            let block = IdBlock {
                first: first as u32,
                names,
            };
            batch.put(
                keys::id_block(self.space.prefix(), block_no as u32),
                codec::encode(Tag::IdBlock, &block),
            );
            update
                .blocks
                .push((block_no as u32, Arc::new(Names::from_block(&block))));
        }
        let read = &mut |k: u32| -> Result<IdBucket> {
            let shared = match loaded.remove(&k) {
                Some(bucket) => bucket,
                None => match lock(&self.buckets).get(k) {
                    Some(hit) => hit,
                    // Read for this rewrite only: not worth a place in the cache.
                    None => return id_hash::load(b, self.space.prefix(), self.space.name(), k),
                },
            };
            Ok(Arc::try_unwrap(shared).unwrap_or_else(|s| IdBucket::clone(&s)))
        };
        for (k, bucket) in id_hash::grow(self.len, new, read)? {
            id_hash::put(batch, self.space.prefix(), k, &bucket);
            update.buckets.push((k, Arc::new(bucket)));
        }
        Ok(update)
    }

    /// Install what [`IdMap::write_appended`] wrote, once its batch is applied.
    pub fn install(&mut self, update: IdUpdate) {
        self.len = update.len;
        let blocks = self.blocks.get_mut().recover();
        for (k, block) in update.blocks {
            let weight = block.bytes();
            blocks.insert(k, block, weight);
        }
        let buckets = self.buckets.get_mut().recover();
        for (k, bucket) in update.buckets {
            let weight = bucket.ids.len() + 1;
            buckets.insert(k, bucket, weight);
        }
    }
}

fn lock<V>(m: &Mutex<Cache<V>>) -> std::sync::MutexGuard<'_, Cache<V>> {
    m.lock().recover()
}

/// Ids assigned by a batch that is not committed yet.
pub(crate) struct PendingIds<'a> {
    map: &'a IdMap,
    backend: &'a dyn Backend,
    pub new: Vec<String>,
    /// The new names by hash: the position in `new` of the last one with that hash;
    /// `chain[i]` is the previous one with the same hash (`u32::MAX`: none). The names
    /// themselves are held once, in `new`.
    new_index: FxHashMap<u64, u32>,
    chain: Vec<u32>,
    /// Buckets read by [`PendingIds::lookup_many`], reused when the commit rewrites them.
    loaded: HashMap<u32, Arc<IdBucket>>,
}

impl<'a> PendingIds<'a> {
    pub fn new(map: &'a IdMap, backend: &'a dyn Backend) -> Self {
        PendingIds {
            map,
            backend,
            new: Vec::new(),
            new_index: FxHashMap::default(),
            chain: Vec::new(),
            loaded: HashMap::new(),
        }
    }

    /// The committed dense ids of `n` names (see [`IdMap::get_many`]).
    pub fn lookup_many<'n>(
        &mut self,
        n: usize,
        name_at: impl Fn(usize) -> &'n str + Sync,
    ) -> Result<Vec<Option<u32>>> {
        self.map
            .get_many(self.backend, n, name_at, &mut self.loaded)
    }

    /// The dense id of `name`, known or assigned now.
    pub fn resolve(&mut self, name: &str) -> Result<u32> {
        if let Some(id) = self.map.get(self.backend, name)? {
            return Ok(id);
        }
        self.assign(name)
    }

    /// The dense id of a name known to be absent from the committed map.
    // why: `assign` refuses an id past u32::MAX - 1, so the total fits.
    #[allow(clippy::cast_possible_truncation)]
    pub fn assign(&mut self, name: &str) -> Result<u32> {
        let base = self.map.len();
        let h = rustc_hash::FxBuildHasher.hash_one(name);
        let head = self.new_index.get(&h).copied();
        let mut at = head;
        while let Some(i) = at {
            if self.new[i as usize] == name {
                return Ok(base + i);
            }
            at = Some(self.chain[i as usize]).filter(|&p| p != u32::MAX);
        }
        let id = base as usize + self.new.len();
        if id >= u32::MAX as usize {
            return Err(Error::InvalidInput(format!(
                "too many {} ids",
                self.map.space.name()
            )));
        }
        let i = self.new.len() as u32;
        self.new.push(name.to_owned());
        self.chain.push(head.unwrap_or(u32::MAX));
        self.new_index.insert(h, i);
        Ok(id as u32)
    }

    // why: `assign` refuses an id past u32::MAX - 1, so the total fits.
    #[allow(clippy::cast_possible_truncation)]
    pub fn total(&self) -> u32 {
        (self.map.len() as usize + self.new.len()) as u32
    }

    /// Write the new names' blocks and buckets (see [`IdMap::write_appended`]). The
    /// names and the buckets read by lookups move into the rewrite, and the index of the
    /// new names is freed before it.
    pub fn write(self, batch: &mut WriteBatch) -> Result<IdUpdate> {
        let PendingIds {
            map,
            backend,
            new,
            new_index,
            chain,
            loaded,
        } = self;
        drop((new_index, chain));
        map.write_appended(backend, new, loaded, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::backend::MemBackend;

    #[test]
    fn packed_names_give_back_every_name() {
        let names: Vec<String> = ["", "a", "", "é文", "zz"].map(String::from).to_vec();
        let block = IdBlock { first: 8192, names };
        let packed = Names::from_block(&block);
        assert_eq!(packed.first, 8192);
        assert_eq!(packed.len(), 5);
        let got: Vec<&str> = packed.iter().collect();
        assert_eq!(got, ["", "a", "", "é文", "zz"]);
        assert_eq!(packed.get(5), None);
        let bytes = codec::encode(Tag::IdBlock, &block);
        let archived = codec::access::<ArchivedIdBlock>(Tag::IdBlock, &bytes, &|| "t".into());
        let again = Names::from_archived(archived.unwrap());
        assert_eq!(again.iter().collect::<Vec<_>>(), got);
        assert_eq!(again.bytes(), "aé文zz".len() + 4 * 5);
    }

    #[test]
    fn ids_roundtrip_across_blocks() {
        let b = MemBackend::default();
        let mut map = IdMap::open(Space::Items, 0);
        for round in 0..3 {
            let mut p = PendingIds::new(&map, &b);
            for i in 0..3000 {
                p.resolve(&format!("item-{}", i + round * 2500)).unwrap();
            }
            let mut batch = WriteBatch::default();
            let update = p.write(&mut batch).unwrap();
            b.apply(batch).unwrap();
            map.install(update);
        }
        let again = IdMap::open(Space::Items, map.len());
        assert_eq!(again.len(), 3000 + 2500 * 2);
        assert_eq!(
            again.get(&b, "item-5999").unwrap(),
            map.get(&b, "item-5999").unwrap()
        );
        assert_eq!(again.get(&b, "item-8000").unwrap(), None);
        assert_eq!(again.name(&b, 0).unwrap().as_deref(), Some("item-0"));
        assert_eq!(again.name(&b, 8000).unwrap(), None);
        let names = again.all_names(&b).unwrap();
        let got = PendingIds::new(&again, &b)
            .lookup_many(names.len(), |i| &names[i])
            .unwrap();
        assert!(got.iter().enumerate().all(|(i, id)| *id == Some(i as u32)));
        again.verify(&b).unwrap();
        assert!(IdMap::open(Space::Items, 1).all_names(&b).is_err());
    }
}
