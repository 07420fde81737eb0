//! What an interaction is.

use crate::{Error, Result};

/// The kind of an interaction. Stored as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum EventKind {
    /// An implicit interaction of no particular kind (the default).
    #[default]
    Interaction = 0,
    /// An explicit rating; the value is the rating.
    Rating = 1,
    View = 2,
    Click = 3,
    Cart = 4,
    Purchase = 5,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Interaction,
        EventKind::Rating,
        EventKind::View,
        EventKind::Click,
        EventKind::Cart,
        EventKind::Purchase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Interaction => "interaction",
            EventKind::Rating => "rating",
            EventKind::View => "view",
            EventKind::Click => "click",
            EventKind::Cart => "cart",
            EventKind::Purchase => "purchase",
        }
    }

    pub fn from_u8(b: u8) -> Option<Self> {
        Self::ALL.get(b as usize).copied()
    }
}

impl std::str::FromStr for EventKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == lower)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown event kind `{s}` (expected one of interaction, rating, view, click, cart, purchase)"
                ))
            })
    }
}

impl serde::Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One interaction with external (string) ids, as read from a file or given by an application.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub user: String,
    pub item: String,
    pub kind: EventKind,
    /// The rating for [`EventKind::Rating`], else a weight (1.0 when not given).
    pub value: f32,
    /// Seconds (or any monotone unit) since an epoch.
    pub timestamp: i64,
    /// A session or basket id, when the data has one.
    pub group: Option<String>,
}

/// One search with an external user id, as read from a file or given by an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSearch {
    pub user: String,
    /// The query as typed; stored as its tokens.
    pub text: String,
    pub timestamp: i64,
}

/// One data row of an events file: an interaction, or a search (a row with a query and
/// no item).
#[derive(Debug, Clone, PartialEq)]
pub enum EventRow {
    Event(RawEvent),
    Search(RawSearch),
}

/// One interaction with dense ids, as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub user: u32,
    pub item: u32,
    pub kind: EventKind,
    pub value: f32,
    pub timestamp: i64,
    /// Dense session/basket id; `u32::MAX` when there is none.
    pub group: u32,
    /// Global sequence number: the order in which the database accepted the event.
    pub seq: u64,
}

/// A search a user made, with dense ids, as stored: the query's tokens (the text
/// tokenizer's tokens, as ids into the search vocabulary) and when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchEvent {
    pub user: u32,
    pub tokens: Vec<u32>,
    pub timestamp: i64,
    /// Global sequence number, shared with the interaction log.
    pub seq: u64,
}

/// Attributes of an item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemRecord {
    pub id: String,
    pub title: Option<String>,
    pub genres: Vec<String>,
    pub text: Option<String>,
    /// Any other named fields (e.g. `release_year`).
    pub attrs: Vec<(String, String)>,
}

/// Attributes of a user (e.g. ML-100K: age, gender, occupation, zip_code).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRecord {
    pub id: String,
    pub attrs: Vec<(String, String)>,
}
