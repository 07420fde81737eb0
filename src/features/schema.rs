//! The schema string: `name:kind` specs separated by commas, parsed into a [`Schema`].
//!
//! Grammar (whitespace around names and kinds is ignored):
//! - `name:cat` — one value, embedded;
//! - `name:multi` (values separated by `|`) or `name:multi=C` (any one character `C`,
//!   a comma included: `genres:multi=,,age:cat`) — several values, averaged;
//! - `name:num` — a number, standardised;
//! - `name:hash=N` — a value hashed into `N` buckets (1 ≤ N ≤ [`MAX_BUCKETS`]);
//! - `name:prefix=N` — categorical over the first `N` characters (zip code areas).
//!
//! `cat`, `multi` and `prefix` take an optional `:min=K`: values seen in fewer than `K`
//! fitted rows go to the unknown bucket (so a rare value gets no embedding trained on
//! a handful of examples).

use std::str::FromStr;

use super::{FieldKind, FieldSpec, Schema};
use crate::{Error, Result};

/// The largest `hash=N`: an embedding table of 16M rows per field is far past useful.
pub(crate) const MAX_BUCKETS: u32 = 1 << 24;
/// The largest `prefix=N`.
pub(crate) const MAX_PREFIX: u32 = 1 << 16;

fn bad(field: &str, msg: impl std::fmt::Display) -> Error {
    Error::param("features", format!("field `{field}`: {msg}"))
}

fn number(field: &str, what: &str, text: &str, max: u32) -> Result<u32> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad(
            field,
            format!("{what} must be a whole number from 1 to {max}, not `{text}`"),
        )),
    }
}

/// Split the schema into specs at commas, except the one character after `multi=`
/// (which may itself be a comma).
fn split_specs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == ',' {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
        if cur.ends_with(":multi=") || cur.ends_with(": multi=") {
            if let Some(sep) = chars.next() {
                cur.push(sep);
            }
        }
    }
    out.push(cur);
    out
}

fn parse_kind(name: &str, kind: &str) -> Result<FieldKind> {
    let (word, arg) = match kind.split_once('=') {
        Some((w, a)) => (w.trim(), Some(a)),
        None => (kind.trim(), None),
    };
    match (word, arg) {
        ("cat", None) => Ok(FieldKind::Categorical),
        ("num", None) => Ok(FieldKind::Numeric),
        ("multi", None) => Ok(FieldKind::Multi { sep: '|' }),
        ("multi", Some(a)) => {
            let mut cs = a.chars();
            match (cs.next(), cs.next()) {
                (Some(sep), None) => Ok(FieldKind::Multi { sep }),
                _ => Err(bad(
                    name,
                    format!("`multi=` takes one separator character, not `{a}`"),
                )),
            }
        }
        ("hash", Some(a)) => Ok(FieldKind::Hashed {
            buckets: number(name, "`hash=` buckets", a, MAX_BUCKETS)?,
        }),
        ("prefix", Some(a)) => Ok(FieldKind::Prefix {
            chars: number(name, "`prefix=` length", a, MAX_PREFIX)?,
        }),
        ("cat" | "num", Some(_)) => Err(bad(name, format!("`{word}` takes no `=` argument"))),
        ("hash", None) => Err(bad(
            name,
            "`hash` needs a number of buckets, e.g. `hash=1000`",
        )),
        ("prefix", None) => Err(bad(name, "`prefix` needs a length, e.g. `prefix=2`")),
        _ => Err(bad(
            name,
            format!("unknown kind `{kind}` (cat, multi, multi=C, num, hash=N, prefix=N)"),
        )),
    }
}

fn parse_spec(spec: &str) -> Result<FieldSpec> {
    let Some((name, rest)) = spec.split_once(':') else {
        return Err(Error::param(
            "features",
            format!(
                "`{}`: a field is `name:kind`, e.g. `gender:cat`",
                spec.trim()
            ),
        ));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::param(
            "features",
            format!("`{}`: the field name is empty", spec.trim()),
        ));
    }
    // `:min=K` follows the kind; a `multi=:` separator is the one colon that is not it.
    let (kind, min) = match rest.strip_prefix("multi=:") {
        Some(tail) if tail.is_empty() || tail.starts_with(':') => {
            ("multi=:", tail.strip_prefix(':'))
        }
        Some(tail) => {
            return Err(bad(
                name,
                format!("`multi=` takes one separator character, not `:{tail}`"),
            ))
        }
        None => match rest.split_once(':') {
            Some((k, m)) => (k, Some(m)),
            None => (rest, None),
        },
    };
    let kind = parse_kind(name, kind)?;
    let mut min_count = 1;
    if let Some(m) = min {
        let Some(k) = m.trim().strip_prefix("min=") else {
            return Err(bad(name, format!("unknown option `{m}` (only `min=K`)")));
        };
        if matches!(kind, FieldKind::Numeric | FieldKind::Hashed { .. }) {
            return Err(bad(
                name,
                "`min=` applies to cat, multi and prefix fields (a vocabulary)",
            ));
        }
        min_count = number(name, "`min=`", k, u32::MAX)?;
    }
    Ok(FieldSpec {
        name: name.to_owned(),
        kind,
        min_count,
    })
}

impl FromStr for Schema {
    type Err = Error;

    /// Parse `name:kind,...`; a bad spec is [`Error::InvalidParameter`] `features`
    /// naming the field and the problem. An empty string is the empty schema.
    fn from_str(s: &str) -> Result<Schema> {
        if s.trim().is_empty() {
            return Ok(Schema::default());
        }
        let mut fields: Vec<FieldSpec> = Vec::new();
        for spec in split_specs(s) {
            if spec.trim().is_empty() {
                return Err(Error::param(
                    "features",
                    format!("empty field spec in `{s}` (a stray comma?)"),
                ));
            }
            let f = parse_spec(&spec)?;
            if fields.iter().any(|g| g.name == f.name) {
                return Err(bad(&f.name, "declared twice"));
            }
            fields.push(f);
        }
        Ok(Schema { fields })
    }
}

impl std::fmt::Display for Schema {
    /// The schema string, parsed back to the same schema.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:", s.name)?;
            match s.kind {
                FieldKind::Categorical => f.write_str("cat")?,
                FieldKind::Multi { sep } => write!(f, "multi={sep}")?,
                FieldKind::Numeric => f.write_str("num")?,
                FieldKind::Hashed { buckets } => write!(f, "hash={buckets}")?,
                FieldKind::Prefix { chars } => write!(f, "prefix={chars}")?,
            }
            if s.min_count > 1 {
                write!(f, ":min={}", s.min_count)?;
            }
        }
        Ok(())
    }
}
