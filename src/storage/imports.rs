//! Fingerprints of imported event files, so that importing one twice is noticed.
//!
//! Key `E` + size u64 + crc32 u32 of the file's bytes; value: unix time u64, events u64
//! and a crc32 of those 16 bytes.

use super::backend::{Backend, WriteBatch};
use crate::{Error, Result};

const PREFIX: u8 = b'E';

/// When a file with these bytes was last imported, and how many events it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PriorImport {
    pub unix: i64,
    pub events: u64,
}

/// The key of a file's content.
pub(crate) fn fingerprint(bytes: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(PREFIX);
    k.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    k.extend_from_slice(&crc32fast::hash(bytes).to_be_bytes());
    k
}

pub(crate) fn put(batch: &mut WriteBatch, key: Vec<u8>, p: PriorImport) {
    let mut v = Vec::with_capacity(20);
    v.extend_from_slice(&p.unix.to_be_bytes());
    v.extend_from_slice(&p.events.to_be_bytes());
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_be_bytes());
    batch.put(key, v);
}

pub(crate) fn get(b: &dyn Backend, key: &[u8]) -> Result<Option<PriorImport>> {
    b.get(key)?.map(|v| decode(&v)).transpose()
}

/// Validate every record (for `check`); returns how many there are.
pub(crate) fn verify(b: &dyn Backend) -> Result<u64> {
    let all = b.scan_prefix(&[PREFIX])?;
    for (_, v) in &all {
        decode(v)?;
    }
    Ok(all.len() as u64)
}

fn decode(v: &[u8]) -> Result<PriorImport> {
    let bad = || Error::corrupted("record of an imported file");
    if v.len() != 20 || crc32fast::hash(&v[..16]).to_be_bytes() != v[16..20] {
        return Err(bad());
    }
    let word =
        |r: std::ops::Range<usize>| -> Result<[u8; 8]> { v[r].try_into().map_err(|_| bad()) };
    Ok(PriorImport {
        unix: i64::from_be_bytes(word(0..8)?),
        events: u64::from_be_bytes(word(8..16)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_bit_is_reported() {
        let mut batch = WriteBatch::default();
        let mark = PriorImport {
            unix: 1_700_000_000,
            events: 42,
        };
        put(&mut batch, fingerprint(b"abc"), mark);
        let (_, v) = &batch.ops[0];
        let v = v.clone().unwrap().to_vec();
        assert_eq!(decode(&v).unwrap(), mark);
        for bit in 0..v.len() * 8 {
            let mut bad = v.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "bit {bit}");
        }
        assert!(decode(&v[..19]).is_err());
    }
}
