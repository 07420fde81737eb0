//! Fitting a schema to rows (vocabularies, numeric statistics), encoding a record, and
//! guessing a schema when none is declared.

use std::collections::{HashMap, HashSet};

use super::{Encoded, FieldKind, FieldSpec, Schema, Slot};
use crate::{Error, Result};

/// A schema fitted to data: vocabularies and numeric statistics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoder {
    pub(super) fields: Vec<Fitted>,
}

/// One field of a fitted encoder.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fitted {
    pub spec: FieldSpec,
    pub state: State,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum State {
    /// cat, multi, prefix: `values[k]` has id `k + 1` (0 is unknown).
    Vocab {
        values: Vec<String>,
        index: HashMap<String, u32>,
    },
    /// hash: nothing to fit.
    Hashed,
    /// num: `(x - mean) / sd`; `flag` adds a column that is 1 when the value is
    /// missing (only when fitted rows lacked it, so a complete field stays one column).
    Numeric { mean: f64, sd: f64, flag: bool },
}

impl State {
    pub(super) fn vocab(values: Vec<String>) -> State {
        let index = values
            .iter()
            .enumerate()
            // Below u32::MAX: `fit` and the stored count both bound a vocabulary.
            .map(|(k, v)| (v.clone(), u32::try_from(k + 1).unwrap_or(u32::MAX)))
            .collect();
        State::Vocab { values, index }
    }
}

/// A stable 64-bit hash of a value (FNV-1a, then the SplitMix64 finaliser so every bit
/// depends on every byte): the same on every run and platform, unlike std's hasher.
/// The hashed buckets (and Wide & Deep's crosses) are built on it.
pub(crate) fn hash_value(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The value of `name` in a record: the first pair so named, trimmed; empty is missing.
fn lookup<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The vocabulary tokens of a value: itself, its prefix, or its parts (deduplicated,
/// first occurrence first).
fn tokens<'a>(kind: &FieldKind, v: &'a str) -> Vec<&'a str> {
    match *kind {
        FieldKind::Multi { sep } => {
            let mut out: Vec<&str> = Vec::new();
            for t in v.split(sep).map(str::trim).filter(|t| !t.is_empty()) {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            out
        }
        FieldKind::Prefix { chars } => {
            let end = v
                .char_indices()
                .nth(chars as usize)
                .map_or(v.len(), |(i, _)| i);
            vec![&v[..end]]
        }
        _ => vec![v],
    }
}

/// A number, or None when missing, unparsable or not finite (never NaN into a model).
fn number(v: Option<&str>) -> Option<f64> {
    v.and_then(|v| v.parse::<f64>().ok())
        .filter(|x| x.is_finite())
}

/// Mean and population standard deviation (Welford); sd 0 (or no values) → 1 so a
/// constant field standardises to 0 instead of dividing by zero.
fn moments(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut n, mut mean, mut m2) = (0f64, 0f64, 0f64);
    for x in xs {
        n += 1.0;
        let d = x - mean;
        mean += d / n;
        m2 += d * (x - mean);
    }
    let sd = if n > 0.0 { (m2 / n).sqrt() } else { 0.0 };
    let mean = if mean.is_finite() { mean } else { 0.0 };
    let sd = if sd.is_finite() && sd > 0.0 { sd } else { 1.0 };
    (mean, sd)
}

/// Numeric fields with at most this many distinct values are inferred categorical
/// (codes such as an age bracket or an occupation number).
pub(crate) const INFER_MAX_NUMERIC_CODES: usize = 32;
/// String fields with at most this many distinct values are inferred categorical;
/// more are hashed.
pub(crate) const INFER_MAX_VOCAB: usize = 1000;
/// The most buckets an inferred hashed field gets.
pub(crate) const INFER_MAX_BUCKETS: u32 = 1 << 16;

impl Encoder {
    /// A schema guessed from the rows when the user declared none. Fields in order of
    /// first appearance; for each, over its non-empty values:
    /// 1. named `genres`, or a value contains `|` → `multi` (separator `|`);
    /// 2. fewer than 2 distinct values → left out (a constant tells nothing);
    /// 3. every value a finite number → `cat` when at most
    ///    [`INFER_MAX_NUMERIC_CODES`] distinct values (codes: MovieLens 1M's age
    ///    bracket and occupation), else `num`;
    /// 4. strings: a different value in every row (more than 32 rows) → left out (an
    ///    identifier or a title: nothing beyond the entity's own id); at most
    ///    [`INFER_MAX_VOCAB`] distinct → `cat`; more → `hash=B`, B the distinct count
    ///    rounded up to a power of two, at most [`INFER_MAX_BUCKETS`].
    pub fn infer(rows: &[Vec<(String, String)>]) -> Schema {
        struct Stats<'a> {
            name: &'a str,
            values: usize,
            distinct: HashSet<&'a str>,
            numeric: bool,
            pipe: bool,
        }
        let mut order: Vec<Stats<'_>> = Vec::new();
        let mut at: HashMap<&str, usize> = HashMap::new();
        for row in rows {
            let mut seen_in_row: Vec<&str> = Vec::new();
            for (n, v) in row {
                // The first pair of a name is its value (as `encode` reads it).
                if seen_in_row.contains(&n.as_str()) {
                    continue;
                }
                seen_in_row.push(n);
                let k = *at.entry(n).or_insert_with(|| {
                    order.push(Stats {
                        name: n,
                        values: 0,
                        distinct: HashSet::new(),
                        numeric: true,
                        pipe: false,
                    });
                    order.len() - 1
                });
                let v = v.trim();
                if v.is_empty() {
                    continue;
                }
                let s = &mut order[k];
                s.values += 1;
                s.distinct.insert(v);
                s.numeric &= number(Some(v)).is_some();
                s.pipe |= v.contains('|');
            }
        }
        let mut fields = Vec::new();
        for s in order {
            let distinct = s.distinct.len();
            let kind = if s.name.eq_ignore_ascii_case("genres") || s.pipe {
                FieldKind::Multi { sep: '|' }
            } else if distinct < 2 {
                continue;
            } else if s.numeric {
                if distinct <= INFER_MAX_NUMERIC_CODES {
                    FieldKind::Categorical
                } else {
                    FieldKind::Numeric
                }
            } else if distinct == s.values && s.values > 32 {
                continue;
            } else if distinct <= INFER_MAX_VOCAB {
                FieldKind::Categorical
            } else {
                let b = u32::try_from(distinct.next_power_of_two()).unwrap_or(u32::MAX);
                FieldKind::Hashed {
                    buckets: b.min(INFER_MAX_BUCKETS),
                }
            };
            fields.push(FieldSpec::new(s.name, kind));
        }
        Schema { fields }
    }

    /// Fit `schema` on `rows` (attributes by dense id): vocabularies ordered by the
    /// number of rows holding a value (most frequent first, ties by value), so ids are
    /// the same for the same rows in any order; numeric mean and sd over the rows
    /// holding a finite number.
    pub fn fit(schema: &Schema, rows: &[Vec<(String, String)>]) -> Result<Encoder> {
        let mut fields = Vec::with_capacity(schema.fields.len());
        for spec in &schema.fields {
            let state = match spec.kind {
                FieldKind::Categorical | FieldKind::Multi { .. } | FieldKind::Prefix { .. } => {
                    let mut counts: HashMap<&str, u32> = HashMap::new();
                    for row in rows {
                        if let Some(v) = lookup(row, &spec.name) {
                            for t in tokens(&spec.kind, v) {
                                *counts.entry(t).or_insert(0) += 1;
                            }
                        }
                    }
                    let mut kept: Vec<(&str, u32)> = counts
                        .into_iter()
                        .filter(|&(_, c)| c >= spec.min_count)
                        .collect();
                    kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    if kept.len() >= u32::MAX as usize {
                        return Err(Error::param(
                            "features",
                            format!("field `{}`: too many distinct values", spec.name),
                        ));
                    }
                    State::vocab(kept.into_iter().map(|(v, _)| v.to_owned()).collect())
                }
                FieldKind::Hashed { .. } => State::Hashed,
                FieldKind::Numeric => {
                    let values = rows.iter().map(|r| number(lookup(r, &spec.name)));
                    let (mean, sd) = moments(values.clone().flatten());
                    let flag = values.clone().any(|x| x.is_none());
                    State::Numeric { mean, sd, flag }
                }
            };
            fields.push(Fitted {
                spec: spec.clone(),
                state,
            });
        }
        Ok(Encoder { fields })
    }

    /// The schema this encoder was fitted with.
    pub fn schema(&self) -> Schema {
        Schema {
            fields: self.fields.iter().map(|f| f.spec.clone()).collect(),
        }
    }

    /// The embedded slots, in schema order (numeric fields have none).
    pub fn slots(&self) -> Vec<Slot> {
        self.fields
            .iter()
            .filter_map(|f| {
                let vocab = match (&f.state, &f.spec.kind) {
                    (State::Vocab { values, .. }, _) => values.len() + 1,
                    (State::Hashed, FieldKind::Hashed { buckets }) => *buckets as usize + 1,
                    _ => return None,
                };
                Some(Slot {
                    field: f.spec.name.clone(),
                    vocab,
                })
            })
            .collect()
    }

    /// Number of numeric features of an encoded row: one per numeric field, plus its
    /// missing flag when the field was missing in some fitted row.
    pub fn numeric_width(&self) -> usize {
        self.fields
            .iter()
            .map(|f| match f.state {
                State::Numeric { flag, .. } => 1 + usize::from(flag),
                _ => 0,
            })
            .sum()
    }

    /// One record's features. Never fails: whatever a value is, it maps to an id (0
    /// when unknown) or a finite number (0 when missing).
    // why: a standardised value is a model input, f32 like every weight.
    #[allow(clippy::cast_possible_truncation)]
    pub fn encode(&self, attrs: &[(String, String)]) -> Encoded {
        let mut out = Encoded {
            ids: Vec::with_capacity(self.fields.len()),
            numeric: Vec::with_capacity(self.numeric_width()),
        };
        for f in &self.fields {
            let v = lookup(attrs, &f.spec.name);
            match &f.state {
                State::Vocab { index, .. } => {
                    let mut ids: Vec<u32> = v
                        .map(|v| tokens(&f.spec.kind, v))
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|t| index.get(t).copied())
                        .collect();
                    if ids.is_empty() {
                        ids.push(0);
                    }
                    out.ids.push(ids);
                }
                State::Hashed => {
                    let id = match (v, &f.spec.kind) {
                        (Some(v), FieldKind::Hashed { buckets }) => {
                            let b = u64::from((*buckets).max(1));
                            1 + u32::try_from(hash_value(v) % b).unwrap_or(0)
                        }
                        _ => 0,
                    };
                    out.ids.push(vec![id]);
                }
                State::Numeric { mean, sd, flag } => {
                    let x = number(v)
                        .map(|x| ((x - mean) / sd) as f32)
                        .filter(|x| x.is_finite());
                    out.numeric.push(x.unwrap_or(0.0));
                    if *flag {
                        out.numeric.push(if x.is_none() { 1.0 } else { 0.0 });
                    }
                }
            }
        }
        out
    }

    /// The id of `value` in a vocabulary field (0 when unknown), e.g. to name the
    /// embedding row of a genre.
    pub fn id_of(&self, field: &str, value: &str) -> Option<u32> {
        let f = self.fields.iter().find(|f| f.spec.name == field)?;
        match &f.state {
            State::Vocab { index, .. } => Some(index.get(value).copied().unwrap_or(0)),
            _ => None,
        }
    }
}
