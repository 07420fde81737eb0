//! An encoder as bytes, published with a model so serving encodes exactly as training
//! did.
//!
//! Layout (little-endian): magic `RDBFEATS`, version u32, field count u32, then per
//! field: name (u32 length + UTF-8), kind tag u8 and its argument u32 (separator char,
//! buckets, prefix length; 0 when none), `min_count` u32, then its state — vocabulary:
//! count u32 and the values (u32 length + UTF-8) in id order; numeric: mean f64, sd
//! f64, missing flag u8. Last, a u64 checksum of everything before it, so a flipped
//! bit anywhere is caught rather than decoded into a different vocabulary.

use std::collections::HashSet;

use super::encoder::{hash_value, Encoder, Fitted, State};
use super::{FieldKind, FieldSpec, MAX_BUCKETS, MAX_PREFIX};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"RDBFEATS";
const VERSION: u32 = 1;

const CAT: u8 = 0;
const MULTI: u8 = 1;
const NUM: u8 = 2;
const HASH: u8 = 3;
const PREFIX: u8 = 4;

fn put_u32(out: &mut Vec<u8>, x: u32) {
    out.extend_from_slice(&x.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names and values come from attribute strings far under 4 GB; saturate anyway so
    // a length never wraps (the reader then reports the mismatch).
    put_u32(out, u32::try_from(s.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(s.as_bytes());
}

/// A checksum of the bytes: [`hash_value`]'s mix over 8-byte words.
fn checksum(bytes: &[u8]) -> u64 {
    let mut h = hash_value("") ^ bytes.len() as u64;
    for c in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(29);
    }
    h ^ (h >> 31)
}

pub(super) fn to_bytes(enc: &Encoder) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    put_u32(
        &mut out,
        u32::try_from(enc.fields.len()).unwrap_or(u32::MAX),
    );
    for f in &enc.fields {
        put_str(&mut out, &f.spec.name);
        let (tag, arg) = match f.spec.kind {
            FieldKind::Categorical => (CAT, 0),
            FieldKind::Multi { sep } => (MULTI, u32::from(sep)),
            FieldKind::Numeric => (NUM, 0),
            FieldKind::Hashed { buckets } => (HASH, buckets),
            FieldKind::Prefix { chars } => (PREFIX, chars),
        };
        out.push(tag);
        put_u32(&mut out, arg);
        put_u32(&mut out, f.spec.min_count);
        match &f.state {
            State::Vocab { values, .. } => {
                put_u32(&mut out, u32::try_from(values.len()).unwrap_or(u32::MAX));
                for v in values {
                    put_str(&mut out, v);
                }
            }
            State::Hashed => {}
            State::Numeric { mean, sd, flag } => {
                out.extend_from_slice(&mean.to_le_bytes());
                out.extend_from_slice(&sd.to_le_bytes());
                out.push(u8::from(*flag));
            }
        }
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fn damaged(msg: impl std::fmt::Display) -> Error {
    Error::corrupted(format!("features encoder: {msg}"))
}

/// A cursor over the bytes: every read checks the length first.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| damaged(format!("truncated at byte {}", self.pos)))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| damaged("a string is not UTF-8"))
    }
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

fn field(r: &mut Reader<'_>) -> Result<Fitted> {
    let name = r.string()?;
    if name.trim().is_empty() || name.trim() != name {
        return Err(damaged("a field name is empty or padded"));
    }
    let (tag, arg, min_count) = (r.u8()?, r.u32()?, r.u32()?);
    let bad_arg = || damaged(format!("field `{name}`: kind {tag} with argument {arg}"));
    let kind = match tag {
        CAT if arg == 0 => FieldKind::Categorical,
        MULTI => FieldKind::Multi {
            sep: char::from_u32(arg).ok_or_else(bad_arg)?,
        },
        NUM if arg == 0 => FieldKind::Numeric,
        HASH if (1..=MAX_BUCKETS).contains(&arg) => FieldKind::Hashed { buckets: arg },
        PREFIX if (1..=MAX_PREFIX).contains(&arg) => FieldKind::Prefix { chars: arg },
        _ => return Err(bad_arg()),
    };
    let vocab_kind = matches!(tag, CAT | MULTI | PREFIX);
    if min_count == 0 || (!vocab_kind && min_count != 1) {
        return Err(damaged(format!("field `{name}`: min count {min_count}")));
    }
    let state = match tag {
        NUM => {
            let (mean, sd, flag) = (r.f64()?, r.f64()?, r.u8()?);
            if !mean.is_finite() || !sd.is_finite() || sd <= 0.0 || flag > 1 {
                return Err(damaged(format!(
                    "field `{name}`: mean {mean}, sd {sd}, flag {flag}"
                )));
            }
            State::Numeric {
                mean,
                sd,
                flag: flag == 1,
            }
        }
        HASH => State::Hashed,
        _ => {
            let n = r.u32()? as usize;
            // Each value takes at least its 4-byte length: a count past that is damage,
            // refused before it sizes an allocation.
            if n > r.left() / 4 {
                return Err(damaged(format!("field `{name}`: {n} values")));
            }
            let mut values = Vec::with_capacity(n);
            let mut seen = HashSet::with_capacity(n);
            for _ in 0..n {
                let v = r.string()?;
                if v.is_empty() || !seen.insert(v.clone()) {
                    return Err(damaged(format!(
                        "field `{name}`: an empty or repeated value"
                    )));
                }
                values.push(v);
            }
            State::vocab(values)
        }
    };
    Ok(Fitted {
        spec: FieldSpec {
            name,
            kind,
            min_count,
        },
        state,
    })
}

pub(super) fn from_bytes(bytes: &[u8]) -> Result<Encoder> {
    let header = MAGIC.len() + 8;
    if bytes.len() < header + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(damaged("not an encoder (no header)"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut s = [0u8; 8];
    s.copy_from_slice(sum);
    if checksum(body) != u64::from_le_bytes(s) {
        return Err(damaged("checksum mismatch"));
    }
    let mut r = Reader {
        bytes: body,
        pos: MAGIC.len(),
    };
    let version = r.u32()?;
    if version != VERSION {
        return Err(damaged(format!(
            "format version {version} (this build reads {VERSION})"
        )));
    }
    let n = r.u32()? as usize;
    // A field takes at least 14 bytes (a hashed one: name length, a 1-byte name, tag,
    // argument, min count): bound the count before it sizes an allocation.
    if n > r.left() / 14 {
        return Err(damaged(format!("{n} fields in {} bytes", r.left())));
    }
    let mut fields = Vec::with_capacity(n);
    let mut names = HashSet::new();
    for _ in 0..n {
        let f = field(&mut r)?;
        if !names.insert(f.spec.name.clone()) {
            return Err(damaged(format!("field `{}` twice", f.spec.name)));
        }
        fields.push(f);
    }
    if r.left() != 0 {
        return Err(damaged(format!("{} bytes after the last field", r.left())));
    }
    Ok(Encoder { fields })
}

impl Encoder {
    /// The encoder as bytes, to publish with a model.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_bytes(self)
    }

    /// Damage is [`Error::Corrupted`], never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Encoder> {
        from_bytes(bytes)
    }
}
