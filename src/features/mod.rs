//! Features from attributes: a declared schema turns user and item attributes into
//! embedding ids and normalised numbers, the same way when a model trains and when it
//! answers a query. The deep models (the candidate generator, Wide & Deep) read them.
//!
//! - [`Schema`]: which attribute becomes which kind of feature, parsed from
//!   `gender:cat,age:cat,zip_code:prefix=2,genres:multi` (grammar in `schema.rs`), or
//!   guessed from the data by [`Encoder::infer`].
//! - [`Encoder`]: the schema fitted to rows (vocabularies, numeric mean and spread);
//!   [`Encoder::encode`] turns one record into an [`Encoded`] row; the encoder is
//!   published with a model as bytes ([`Encoder::to_bytes`]) so serving encodes with
//!   the vocabulary the model was trained on.
//!
//! Id 0 of every embedded slot is the unknown bucket: a missing value, a value not seen
//! at fit time and a value rarer than the field's `min=` all map to it, so a model
//! always has a row to look up.
// why: the models that read this module (the deep candidate generator, Wide & Deep)
// land on other branches; until then parts of the API have no caller.
#![allow(dead_code)]

mod encoder;
mod schema;
mod stored;
#[cfg(test)]
mod tests;

// why: the API of the models on other branches (see the module's allow above).
#[allow(unused_imports)]
pub(crate) use encoder::hash_value;
pub(crate) use schema::{MAX_BUCKETS, MAX_PREFIX};

/// How one attribute becomes a feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldKind {
    /// One value, embedded; a value not seen when the schema was fitted (or missing)
    /// goes to the unknown bucket, id 0.
    Categorical,
    /// Several values separated by `sep` (genres: `Comedy|Drama`), their embeddings
    /// averaged.
    Multi { sep: char },
    /// A number, standardised over the fitted rows; missing → 0.
    Numeric,
    /// A high-cardinality value hashed into `buckets` ids (plus unknown).
    Hashed { buckets: u32 },
    /// Categorical over the first `chars` characters of the value (a zip code's area).
    Prefix { chars: u32 },
}

/// One field of a schema: which attribute, and how it becomes a feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldSpec {
    pub name: String,
    pub kind: FieldKind,
    /// Vocabulary fields (cat, multi, prefix): values seen in fewer fitted rows go to
    /// the unknown bucket. 1 keeps every value.
    pub min_count: u32,
}

impl FieldSpec {
    /// A field keeping every value it sees.
    pub fn new(name: impl Into<String>, kind: FieldKind) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind,
            min_count: 1,
        }
    }
}

/// A declared schema, e.g. `gender:cat,age:cat,occupation:cat,zip_code:hash=1000`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Schema {
    pub fields: Vec<FieldSpec>,
}

/// One embedded slot of an encoder: its field and vocabulary size (unknown included).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slot {
    pub field: String,
    pub vocab: usize,
}

/// A row's features: per embedded slot the ids to average (never empty: the unknown
/// bucket stands for a missing value), then the numeric features.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Encoded {
    pub ids: Vec<Vec<u32>>,
    pub numeric: Vec<f32>,
}

#[allow(unused_imports)] // why: as `hash_value` above
pub(crate) use encoder::Encoder;

/// An item's record as attribute pairs: its fields, and `genres` joined by `|`. The
/// title and free text are left out: unique per item, they carry nothing the item's
/// own id does not.
pub(crate) fn item_fields(rec: &crate::ItemRecord) -> Vec<(String, String)> {
    let mut out = rec.attrs.clone();
    if !rec.genres.is_empty() {
        out.push(("genres".to_string(), rec.genres.join("|")));
    }
    out
}
