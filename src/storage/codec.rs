//! Framing of every stored value: a type tag, a CRC-32 of the payload, then an rkyv archive.
//!
//! rkyv is built with `unaligned`, so archived values can be read in place from any
//! byte offset (sled promises no alignment). The checksum catches flipped bits that
//! structural validation (bytecheck) cannot see, such as a changed float.

use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::de::Pool;
use rkyv::rancor::{self, Strategy};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Portable, Serialize};

use crate::{Error, Result};

const HEADER: usize = 5;

/// One byte that says what a stored value is, so that a value read under the wrong key
/// is reported instead of misread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    Meta = 1,
    Segment = 2,
    Manifest = 3,
    IdBlock = 4,
    ItemAttrs = 5,
    UserAttrs = 6,
    Catalog = 7,
    TableBlock = 8,
    Job = 9,
    Policy = 10,
    /// The index header of formats 1-2 (recognised to be ignored, never written).
    IndexHeaderV2 = 11,
    Postings = 12,
    Doc = 13,
    Delta = 14,
    IndexHeader = 15,
    IdBucket = 16,
    SearchSegment = 17,
    SearchHeader = 18,
}

/// Serialise `value` into a framed byte vector.
pub(crate) fn encode<T>(tag: Tag, value: &T) -> Vec<u8>
where
    T: for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    // Serialising plain owned data into memory cannot fail; the error type is only
    // there for custom serialisers.
    let payload = rkyv::to_bytes::<rancor::Error>(value).expect("in-memory rkyv serialisation");
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(tag as u8);
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Check the frame of `bytes` and return the payload.
pub(crate) fn payload<'a>(
    tag: Tag,
    bytes: &'a [u8],
    what: &dyn Fn() -> String,
) -> Result<&'a [u8]> {
    let (stored, body) = frame(tag, bytes, what)?;
    if crc32fast::hash(body) != stored {
        return Err(Error::corrupted(format!("{} (checksum mismatch)", what())));
    }
    Ok(body)
}

/// The stored checksum and the payload of a value whose length and tag are right.
fn frame<'a>(tag: Tag, bytes: &'a [u8], what: &dyn Fn() -> String) -> Result<(u32, &'a [u8])> {
    if bytes.len() < HEADER {
        return Err(Error::corrupted(format!(
            "{} (value truncated to {} bytes)",
            what(),
            bytes.len()
        )));
    }
    if bytes[0] != tag as u8 {
        return Err(Error::corrupted(format!(
            "{} (type tag {} where {} was expected)",
            what(),
            bytes[0],
            tag as u8
        )));
    }
    let stored = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((stored, &bytes[HEADER..]))
}

/// The archive of a checked payload, its structure validated (bytecheck).
fn view<'a, A>(body: &'a [u8], what: &dyn Fn() -> String) -> Result<&'a A>
where
    A: Portable + for<'b> CheckBytes<HighValidator<'b, rancor::Error>>,
{
    rkyv::access::<A, rancor::Error>(body)
        .map_err(|e| Error::corrupted(format!("{} (invalid structure: {e})", what())))
}

/// Validate and view a framed value in place (zero-copy).
pub(crate) fn access<'a, A>(tag: Tag, bytes: &'a [u8], what: &dyn Fn() -> String) -> Result<&'a A>
where
    A: Portable + for<'b> CheckBytes<HighValidator<'b, rancor::Error>>,
{
    view(payload(tag, bytes, what)?, what)
}

/// [`access`] for bytes whose checksum [`access`] has already accepted and that are held
/// unchanged since (the same immutable buffer): the structure is still validated, the
/// checksum pass over the whole value is skipped.
pub(crate) fn access_checked_before<'a, A>(
    tag: Tag,
    bytes: &'a [u8],
    what: &dyn Fn() -> String,
) -> Result<&'a A>
where
    A: Portable + for<'b> CheckBytes<HighValidator<'b, rancor::Error>>,
{
    view(frame(tag, bytes, what)?.1, what)
}

/// [`access_checked_before`] when `checked_before`, else [`access`].
pub(crate) fn access_maybe_checked<'a, A>(
    tag: Tag,
    bytes: &'a [u8],
    checked_before: bool,
    what: &dyn Fn() -> String,
) -> Result<&'a A>
where
    A: Portable + for<'b> CheckBytes<HighValidator<'b, rancor::Error>>,
{
    if checked_before {
        access_checked_before(tag, bytes, what)
    } else {
        access(tag, bytes, what)
    }
}

/// Validate and deserialise a framed value into an owned one.
pub(crate) fn decode<T>(tag: Tag, bytes: &[u8], what: &dyn Fn() -> String) -> Result<T>
where
    T: Archive,
    T::Archived: for<'b> CheckBytes<HighValidator<'b, rancor::Error>>
        + Deserialize<T, Strategy<Pool, rancor::Error>>,
{
    let body = payload(tag, bytes, what)?;
    rkyv::from_bytes::<T, rancor::Error>(body)
        .map_err(|e| Error::corrupted(format!("{} (invalid structure: {e})", what())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Archive, Serialize, Deserialize, Debug, PartialEq)]
    struct Sample {
        name: String,
        values: Vec<f32>,
    }

    fn what() -> String {
        "sample".into()
    }

    #[test]
    fn roundtrip_at_every_alignment() {
        let s = Sample {
            name: "x".repeat(7),
            values: vec![1.5, -2.0, 3.25],
        };
        let bytes = encode(Tag::Meta, &s);
        for shift in 0..8 {
            let mut buf = vec![0u8; shift];
            buf.extend_from_slice(&bytes);
            let a: &ArchivedSample = access(Tag::Meta, &buf[shift..], &what).unwrap();
            assert_eq!(a.name, "x".repeat(7));
            assert_eq!(a.values[1].to_native(), -2.0);
            let back: Sample = decode(Tag::Meta, &buf[shift..], &what).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn every_flipped_bit_and_truncation_is_detected() {
        let s = Sample {
            name: "abc".into(),
            values: vec![0.5; 4],
        };
        let bytes = encode(Tag::Meta, &s);
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode::<Sample>(Tag::Meta, &b, &what).is_err(), "bit {i}");
        }
        for len in 0..bytes.len() {
            let err = decode::<Sample>(Tag::Meta, &bytes[..len], &what).unwrap_err();
            assert!(matches!(err, Error::Corrupted { .. }));
        }
        assert!(decode::<Sample>(Tag::Job, &bytes, &what).is_err());
    }
}
