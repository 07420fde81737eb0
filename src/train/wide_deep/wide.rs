//! The wide part's features: named fields and their crosses, hashed into a fixed number
//! of buckets. A spec is a comma-separated list of terms, each a field or `a*b`:
//! `user,item,gender,genres,gender*genres,age*release_year`. A field is `user` or
//! `item` (the dense id), or an attribute of the user or the item by name (a `|`-joined
//! value such as genres is one key per part). A term's keys are the hashes of its
//! values, or of every pair of values for a cross; each goes to bucket
//! `1 + hash % buckets`, and bucket 0 is the bias, present in every example.

use crate::features::hash_value;
use crate::storage::id_hash::splitmix64;
use crate::{Error, Result};

/// At most this many buckets: a bucket index must be exact in an f32 (2²⁴) where the
/// network is stored.
pub(crate) const MAX_BUCKETS: usize = (1 << 24) - 2;

/// A parsed wide spec.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WideSpec {
    /// Distinct fields the terms name, in first-use order.
    pub fields: Vec<String>,
    /// Each term as indices into `fields` (one, or two for a cross).
    pub terms: Vec<Vec<usize>>,
    pub buckets: u32,
}

impl WideSpec {
    pub fn parse(spec: &str, buckets: usize) -> Result<WideSpec> {
        let bad = |msg: String| Error::param("wide", msg);
        let buckets =
            u32::try_from(buckets).map_err(|_| Error::param("wide_buckets", "too many"))?;
        let mut fields: Vec<String> = Vec::new();
        let mut terms = Vec::new();
        for term in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let names: Vec<&str> = term.split('*').map(str::trim).collect();
            if names.len() > 2 || names.iter().any(|n| n.is_empty()) {
                return Err(bad(format!(
                    "`{term}`: a term is a field or a cross of two (`gender*genres`)"
                )));
            }
            let mut t = Vec::with_capacity(2);
            for n in names {
                let at = match fields.iter().position(|f| f == n) {
                    Some(k) => k,
                    None => {
                        fields.push(n.to_string());
                        fields.len() - 1
                    }
                };
                t.push(at);
            }
            if terms.contains(&t) {
                return Err(bad(format!("`{term}` is named twice")));
            }
            terms.push(t);
        }
        if terms.len() > 256 {
            return Err(bad("at most 256 terms".into()));
        }
        Ok(WideSpec {
            fields,
            terms,
            buckets,
        })
    }

    /// The spec as it parses back.
    pub fn to_spec(&self) -> String {
        self.terms
            .iter()
            .map(|t| {
                t.iter()
                    .map(|&f| self.fields[f].as_str())
                    .collect::<Vec<_>>()
                    .join("*")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One side's keys per field: `id_field` (`user` or `item`) is the dense id when
    /// known, an attribute its values. A field absent on this side has no keys.
    pub fn keys(
        &self,
        id_field: &str,
        id: Option<u32>,
        attrs: &[(String, String)],
    ) -> Vec<Vec<u64>> {
        self.fields
            .iter()
            .map(|f| {
                if f == id_field {
                    return id.map_or_else(Vec::new, |id| {
                        vec![splitmix64(u64::from(id) ^ hash_value(id_field))]
                    });
                }
                let mut out = Vec::new();
                for (_, v) in attrs.iter().filter(|(k, _)| k == f) {
                    for part in v.split('|').map(str::trim).filter(|p| !p.is_empty()) {
                        out.push(hash_value(f) ^ hash_value(part).rotate_left(1));
                    }
                }
                out
            })
            .collect()
    }

    /// The buckets an example holds: the bias, then every term's keys, given both sides'
    /// keys (as [`WideSpec::keys`] made them).
    pub fn buckets_of(&self, user: &[Vec<u64>], item: &[Vec<u64>], out: &mut Vec<u32>) {
        out.push(0);
        let n = u64::from(self.buckets.max(1));
        // why: the remainder is below `buckets`, a u32.
        #[allow(clippy::cast_possible_truncation)]
        let bucket = |h: u64| 1 + (h % n) as u32;
        let values = |f: usize| user[f].iter().chain(&item[f]);
        for (t, term) in self.terms.iter().enumerate() {
            let salt = splitmix64(t as u64 + 1);
            match term[..] {
                [a] => {
                    for &k in values(a) {
                        out.push(bucket(splitmix64(k ^ salt)));
                    }
                }
                [a, b] => {
                    for &ka in values(a) {
                        for &kb in values(b) {
                            out.push(bucket(splitmix64(ka ^ splitmix64(kb ^ salt))));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
