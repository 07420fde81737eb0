//! Key layout. One sled tree; the first byte says what a key holds. Integers are
//! big-endian so that key order is numeric order.
//!
//! | prefix | rest | value |
//! |---|---|---|
//! | `M` | — | [`Meta`](super::meta::Meta) |
//! | `L` | run u64, bucket u32 | log segment (events of 64 users, columnar) |
//! | `h` | bucket u32 | manifest: the runs of a bucket |
//! | `Q` | run u64, bucket u32 | search segment (searches of 64 users, columnar) |
//! | `q` | bucket u32 | search manifest: the search runs of a bucket |
//! | `w` | — | search header: searches logged, search tokens |
//! | `W` | block u32 | search token block: dense → token, 4096 tokens |
//! | `U` / `I` / `G` | block u32 | user / item / group id block: dense → external, 4096 ids |
//! | `N` | `U` / `I` / `G` / `W`, bucket u32 | id bucket: external → dense, about 128 ids hashed there |
//! | `a` / `b` | user / item u32 | user / item attributes |
//! | `C` | table name | catalog entry: the versions of a table |
//! | `T` | name, 0, version u64, block u32 | a block of table rows |
//! | `X` | name, 0, version u64, block u32 | vector index of a table version: block 0 header, then postings |
//! | `Y` | name, 0, version u64, 0 u32 | delta of a table version: rows put/deleted since publish |
//! | `J` | job id u64 | job record |
//! | `P` | model name | retrain policy |
//! | `D` | document tag (UTF-8) | document text (`import docs`) |
//! | `E` | size u64, crc32 u32 | when an events file with these bytes was imported (unframed: 16 bytes + crc32) |
//! | `R` | — | a restore under way: the dump's name (cleared by its last write) |

pub(crate) const META: &[u8] = b"M";
pub(crate) const RESTORE: &[u8] = b"R";

pub(crate) const SEARCH_HEADER: &[u8] = b"w";

#[cfg(any(test, feature = "testkit"))] // the test kit's seed writer
pub(crate) fn segment(bucket: u32, run: u64) -> Vec<u8> {
    segment_in(b'L', bucket, run)
}

/// A run's key in the key space `prefix` (`L` interactions, `Q` searches).
pub(crate) fn segment_in(prefix: u8, bucket: u32, run: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(prefix);
    // Run first: run ids only grow, so new segments append at the right edge of the
    // tree and sled never rewrites leaves full of older segments.
    k.extend_from_slice(&run.to_be_bytes());
    k.extend_from_slice(&bucket.to_be_bytes());
    k
}

#[cfg(any(test, feature = "testkit"))] // the test kit's seed writer
pub(crate) fn manifest(bucket: u32) -> Vec<u8> {
    manifest_in(b'h', bucket)
}

/// A bucket manifest's key in the key space `prefix` (`h` interactions, `q` searches).
pub(crate) fn manifest_in(prefix: u8, bucket: u32) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(&bucket.to_be_bytes());
    k
}

pub(crate) fn id_block(space: u8, block: u32) -> Vec<u8> {
    let mut k = vec![space];
    k.extend_from_slice(&block.to_be_bytes());
    k
}

pub(crate) fn id_bucket_prefix(space: u8) -> Vec<u8> {
    vec![b'N', space]
}

pub(crate) fn id_bucket(space: u8, bucket: u32) -> Vec<u8> {
    let mut k = id_bucket_prefix(space);
    k.extend_from_slice(&bucket.to_be_bytes());
    k
}

pub(crate) fn user_attrs(user: u32) -> Vec<u8> {
    let mut k = vec![b'a'];
    k.extend_from_slice(&user.to_be_bytes());
    k
}

pub(crate) fn item_attrs(item: u32) -> Vec<u8> {
    let mut k = vec![b'b'];
    k.extend_from_slice(&item.to_be_bytes());
    k
}

pub(crate) fn catalog(name: &str) -> Vec<u8> {
    let mut k = vec![b'C'];
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn table_prefix(name: &str, version: u64) -> Vec<u8> {
    let mut k = vec![b'T'];
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub(crate) fn table_block(name: &str, version: u64, block: u32) -> Vec<u8> {
    let mut k = table_prefix(name, version);
    k.extend_from_slice(&block.to_be_bytes());
    k
}

/// Split a table block key back into (name, version, block).
pub(crate) fn parse_table_block(key: &[u8]) -> Option<(&str, u64, u32)> {
    let rest = key.strip_prefix(b"T")?;
    let zero = rest.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&rest[..zero]).ok()?;
    let tail = &rest[zero + 1..];
    if tail.len() != 12 {
        return None;
    }
    let version = u64::from_be_bytes(tail[..8].try_into().ok()?);
    let block = u32::from_be_bytes(tail[8..].try_into().ok()?);
    Some((name, version, block))
}

pub(crate) fn index_prefix(name: &str, version: u64) -> Vec<u8> {
    let mut k = table_prefix(name, version);
    k[0] = b'X';
    k
}

/// `Y` name 0 version u64: the prefix of the segments of a version's row updates.
pub(crate) fn delta_prefix(name: &str, version: u64) -> Vec<u8> {
    let mut k = table_prefix(name, version);
    k[0] = b'Y';
    k
}

/// (name, version) of a delta key ([`delta_prefix`] plus a segment number).
pub(crate) fn parse_delta_key(k: &[u8]) -> Option<(String, u64)> {
    let rest = k.strip_prefix(b"Y")?;
    let mut t = vec![b'T'];
    t.extend_from_slice(rest);
    let (name, version, _) = parse_table_block(&t)?;
    Some((name.to_owned(), version))
}

pub(crate) fn index_block(name: &str, version: u64, block: u32) -> Vec<u8> {
    let mut k = index_prefix(name, version);
    k.extend_from_slice(&block.to_be_bytes());
    k
}

/// Split a table or index block key (`T`/`X`) back into (name, version, block).
pub(crate) fn parse_versioned_block(key: &[u8]) -> Option<(&str, u64, u32)> {
    let mut k = key.to_vec();
    if k.first() != Some(&b'X') && k.first() != Some(&b'T') {
        return None;
    }
    k[0] = b'T';
    let (name, v, b) = parse_table_block(&k)?;
    let name = std::str::from_utf8(&key[1..1 + name.len()]).ok()?;
    Some((name, v, b))
}

pub(crate) fn job(id: u64) -> Vec<u8> {
    let mut k = vec![b'J'];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn policy(model: &str) -> Vec<u8> {
    let mut k = vec![b'P'];
    k.extend_from_slice(model.as_bytes());
    k
}

pub(crate) const DOC_PREFIX: &[u8] = b"D";

pub(crate) fn doc(tag: &str) -> Vec<u8> {
    let mut k = DOC_PREFIX.to_vec();
    k.extend_from_slice(tag.as_bytes());
    k
}

pub(crate) fn be_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

pub(crate) fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_parse_back() {
        assert!(segment(1, 255) < segment(1, 256));
        assert!(segment(7, 1) < segment(0, 2));
        let k = table_block("als.items", 7, 3);
        assert_eq!(parse_table_block(&k), Some(("als.items", 7, 3)));
        assert!(table_block("a", 1, 0).starts_with(&table_prefix("a", 1)));
        // A name that extends another never shares its version prefix.
        assert!(!table_block("ab", 1, 0).starts_with(&table_prefix("a", 1)));
        let x = index_block("als.items", 7, 2);
        assert_eq!(parse_versioned_block(&x), Some(("als.items", 7, 2)));
        assert!(x.starts_with(&index_prefix("als.items", 7)));
        assert!(!index_block("ab", 1, 0).starts_with(&index_prefix("a", 1)));
    }
}
