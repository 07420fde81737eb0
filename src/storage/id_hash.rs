//! The external → dense direction of an id map, on disk: a linear hash table.
//!
//! An id's bucket comes from a stable hash of its bytes; each bucket is one value, its
//! (name, dense id) pairs sorted by name. The number of buckets is a function of the
//! number of ids (about [`PER_BUCKET`] a bucket), so it needs no stored state: when ids
//! are added, linear hashing splits one bucket per new bucket, and the commit that adds
//! the ids writes the split and the extended buckets in its own atomic batch. A lookup
//! reads one bucket; a commit rewrites only the buckets its new ids land in.

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use super::backend::{Backend, WriteBatch};
use super::codec::{self, Tag};
use super::keys;
use crate::{Error, Result};

/// Names per bucket on average: a bucket is a few KB, so a commit that adds one id
/// rewrites little, and 10M ids are under 100k keys.
pub(crate) const PER_BUCKET: u32 = 128;

/// One bucket: names sorted (by bytes), `ids[k]` the dense id of `names[k]`.
#[derive(Archive, Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub(crate) struct IdBucket {
    pub names: Vec<String>,
    pub ids: Vec<u32>,
}

impl IdBucket {
    pub fn find(&self, name: &str) -> Option<u32> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .map(|k| self.ids[k])
    }

    /// A bucket of `pairs`, already sorted by name.
    fn from_sorted(pairs: Vec<(String, u32)>) -> IdBucket {
        debug_assert!(pairs.is_sorted_by(|a, b| a.0 < b.0));
        let (names, ids) = pairs.into_iter().unzip();
        IdBucket { names, ids }
    }

    fn into_pairs(self) -> Vec<(String, u32)> {
        self.names.into_iter().zip(self.ids).collect()
    }
}

/// A stable hash (FNV-1a, then a finaliser so that the low bits, which address
/// buckets, depend on every byte).
pub(crate) fn hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    splitmix64(h)
}

/// Buckets of a map with `len` ids.
pub(crate) fn bucket_count(len: u32) -> u32 {
    len.div_ceil(PER_BUCKET).max(1)
}

/// The bucket of `hash` in a table of `buckets` buckets (linear hashing: buckets below
/// the split point use one more bit).
pub(crate) fn address(hash: u64, buckets: u32) -> u32 {
    let low = 1u64 << (31 - buckets.max(1).leading_zeros());
    let split = buckets as u64 - low;
    let b = hash & (low - 1);
    let b = if b < split { hash & (2 * low - 1) } else { b };
    // why: b < 2 * low <= 2 * 2^31, and it is below `buckets` (a u32) by construction.
    #[allow(clippy::cast_possible_truncation)]
    let b = b as u32;
    b
}

pub(crate) fn what(space: &'static str, bucket: u32) -> impl Fn() -> String {
    move || format!("{space} id bucket {bucket}")
}

/// Read and validate bucket `bucket` (an absent bucket is empty).
pub(crate) fn load(
    b: &dyn Backend,
    prefix: u8,
    space: &'static str,
    bucket: u32,
) -> Result<IdBucket> {
    let Some(v) = b.get(&keys::id_bucket(prefix, bucket))? else {
        return Ok(IdBucket::default());
    };
    let what = what(space, bucket);
    let got: IdBucket = codec::decode(Tag::IdBucket, &v, &what)?;
    if got.names.len() != got.ids.len() || !got.names.is_sorted() {
        return Err(Error::corrupted(format!("{} (not sorted)", what())));
    }
    Ok(got)
}

/// Plan the buckets of a map growing from `old_len` ids by `new` (dense ids from
/// `old_len` on): the splits the growth causes, then the new names in their buckets.
/// `read` gives a stored bucket of the old table. Returns every bucket it changed (the
/// new names move into them).
// why: old_len + k < new_len, checked to fit u32 by the caller.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn grow(
    old_len: u32,
    new: Vec<String>,
    read: &mut dyn FnMut(u32) -> Result<IdBucket>,
) -> Result<Vec<(u32, IdBucket)>> {
    let old_buckets = bucket_count(old_len);
    let new_len = crate::error::to_u32(old_len as usize + new.len(), "id map")?;
    let new_buckets = bucket_count(new_len);
    let mut changed: Pairs = Default::default();
    for n in old_buckets..new_buckets {
        let bit = 31 - n.leading_zeros();
        let from = n - (1 << bit);
        let pairs = std::mem::take(entry(&mut changed, from, old_buckets, read)?);
        let (stay, go): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(name, _)| hash(name) >> bit & 1 == 0);
        changed.insert(from, stay);
        changed.insert(n, go);
    }
    // Stored buckets are sorted and a split keeps their order, so only the new names
    // are sorted (per bucket), then merged in.
    let mut added: Pairs = Default::default();
    for (k, name) in new.into_iter().enumerate() {
        let bucket = address(hash(&name), new_buckets);
        entry(&mut changed, bucket, old_buckets, read)?;
        added
            .entry(bucket)
            .or_default()
            .push((name, old_len + k as u32));
    }
    for (bucket, mut add) in added {
        add.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let old = changed.entry(bucket).or_default();
        *old = merge_sorted(std::mem::take(old), add);
    }
    Ok(changed
        .into_iter()
        .map(|(k, pairs)| (k, IdBucket::from_sorted(pairs)))
        .collect())
}

/// Two lists sorted by name (no name in both) as one.
fn merge_sorted(a: Vec<(String, u32)>, b: Vec<(String, u32)>) -> Vec<(String, u32)> {
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        let next = if x.0 < y.0 { a.next() } else { b.next() };
        out.extend(next);
    }
    out.extend(a);
    out.extend(b);
    out
}

type Pairs = BTreeMap<u32, Vec<(String, u32)>>;

/// The pairs of `bucket` being changed, read from the old table on first touch (a
/// bucket at or past the old count is new).
fn entry<'c>(
    changed: &'c mut Pairs,
    bucket: u32,
    old_buckets: u32,
    read: &mut dyn FnMut(u32) -> Result<IdBucket>,
) -> Result<&'c mut Vec<(String, u32)>> {
    if !changed.contains_key(&bucket) && bucket < old_buckets {
        changed.insert(bucket, read(bucket)?.into_pairs());
    }
    Ok(changed.entry(bucket).or_default())
}

pub(crate) fn put(batch: &mut WriteBatch, prefix: u8, bucket: u32, value: &IdBucket) {
    batch.put(
        keys::id_bucket(prefix, bucket),
        codec::encode(Tag::IdBucket, value),
    );
}

/// Check every stored bucket against `names` (dense → external, already validated):
/// each name in its own bucket with its own id, each id exactly once, no stray bucket.
pub(crate) fn verify(
    b: &dyn Backend,
    prefix: u8,
    space: &'static str,
    names: &[String],
) -> Result<()> {
    let buckets = bucket_count(crate::error::to_u32(names.len(), space)?);
    let mut seen = 0usize;
    for (k, _) in b.scan_prefix(&keys::id_bucket_prefix(prefix))? {
        let bucket = keys::be_u32(&k[2..]).unwrap_or(u32::MAX);
        if bucket >= buckets {
            return Err(Error::corrupted(format!(
                "{} (beyond the {buckets} buckets of {} ids)",
                what(space, bucket)(),
                names.len()
            )));
        }
        let got = load(b, prefix, space, bucket)?;
        for (name, &id) in got.names.iter().zip(&got.ids) {
            if names.get(id as usize) != Some(name) || address(hash(name), buckets) != bucket {
                return Err(Error::corrupted(format!(
                    "{} (id `{name}` → {id} disagrees with the {space} id blocks)",
                    what(space, bucket)()
                )));
            }
        }
        seen += got.ids.len();
    }
    if seen != names.len() {
        return Err(Error::corrupted(format!(
            "{space} id buckets ({seen} ids, the id blocks hold {})",
            names.len()
        )));
    }
    Ok(())
}

/// The SplitMix64 finaliser: a good 64-bit mix for deriving seeds.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_one_by_one_or_at_once_gives_the_same_buckets() {
        let names: Vec<String> = (0..2000).map(|i| format!("id-{i}")).collect();
        let at_once = grow(0, names.clone(), &mut |_| Ok(IdBucket::default())).unwrap();
        let mut store: BTreeMap<u32, IdBucket> = Default::default();
        for (k, name) in names.iter().enumerate() {
            let read = &mut |b: u32| Ok(store.get(&b).cloned().unwrap_or_default());
            for (b, v) in grow(k as u32, vec![name.clone()], read).unwrap() {
                store.insert(b, v);
            }
        }
        let at_once: BTreeMap<u32, IdBucket> = at_once.into_iter().collect();
        assert_eq!(store, at_once);
        assert_eq!(store.len() as u32, bucket_count(2000));
        let buckets = bucket_count(2000);
        for (k, name) in names.iter().enumerate() {
            let b = &store[&address(hash(name), buckets)];
            assert_eq!(b.find(name), Some(k as u32));
        }
        // Buckets stay near their average size.
        assert!(store
            .values()
            .all(|b| b.ids.len() < 4 * PER_BUCKET as usize));
    }

    #[test]
    fn addresses_stay_below_the_bucket_count() {
        for buckets in 1..300 {
            for h in 0..1000u64 {
                assert!(address(splitmix64(h), buckets) < buckets);
            }
        }
    }
}
