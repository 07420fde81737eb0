//! Features from attributes: a declared schema turns user and item attributes into
//! embedding ids and normalised numbers, the same way when a model trains and when it
//! answers a query. The deep models (the candidate generator, Wide & Deep) read them.
//!
//! SCAFFOLD (lead): the API below is what the models code against; the FEATURES
//! branch implements it (and may extend it) and removes this note.
#![allow(dead_code, unused_variables)]

use crate::{Error, Result};

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
}

/// One field of a schema: which attribute, and how it becomes a feature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldSpec {
    pub name: String,
    pub kind: FieldKind,
}

/// A declared schema, e.g. `gender:cat,age:cat,occupation:cat,zip_code:hash=1000`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Schema {
    pub fields: Vec<FieldSpec>,
}

impl std::str::FromStr for Schema {
    type Err = Error;
    fn from_str(s: &str) -> Result<Schema> {
        Err(Error::param("features", "scaffold: not implemented yet"))
    }
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

/// A schema fitted to data: vocabularies and numeric statistics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Encoder {}

impl Encoder {
    /// A schema guessed from the rows when the user declared none.
    pub fn infer(rows: &[Vec<(String, String)>]) -> Schema {
        Schema::default()
    }
    /// Fit `schema` on `rows` (attributes by dense id).
    pub fn fit(schema: &Schema, rows: &[Vec<(String, String)>]) -> Result<Encoder> {
        Ok(Encoder {})
    }
    pub fn slots(&self) -> Vec<Slot> {
        Vec::new()
    }
    pub fn numeric_width(&self) -> usize {
        0
    }
    pub fn encode(&self, attrs: &[(String, String)]) -> Encoded {
        Encoded::default()
    }
    /// The encoder as bytes, to publish with a model.
    pub fn to_bytes(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Damage is [`Error::Corrupted`], never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Encoder> {
        Ok(Encoder {})
    }
}

/// An item's record as attribute pairs: its fields, `genres` joined by `|`, and
/// `title` / `text` when present.
pub(crate) fn item_fields(rec: &crate::ItemRecord) -> Vec<(String, String)> {
    let mut out = rec.attrs.clone();
    if !rec.genres.is_empty() {
        out.push(("genres".to_string(), rec.genres.join("|")));
    }
    out
}
