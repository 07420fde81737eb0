//! The dump format: a portable JSON-lines copy of everything a database holds (ids,
//! attributes, the log in arrival order, tables as queries see them, policies), since
//! sled has no repair tool of its own. `Db::dump` writes it line by line with
//! [`write_line`]; [`read_dump`] reads one back and checks it whole before `Db::restore`
//! writes anything.
//!
//! One JSON object per line, `"t"` says what it is: `recdb-dump` (header), `user`,
//! `item` (dense-id order, so tables stay aligned), `event` and `search` (arrival
//! order, interleaved; a search's `q` is its stored words), `table`
//! followed by its `row`s, `policy`, and an `end` trailer with counts that catches a
//! truncated file. A table's rows are its current version with the rows put or deleted
//! since (the version's delta) applied: a row of an `other` table carries its id, and a
//! deleted row of a users or items table (whose rows are dense ids, so keep their
//! place) has no values. No line is longer than [`MAX_DUMP_LINE`].

mod read;

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub(crate) use read::read_dump;

/// The dump's own format (lines of JSON), independent of the database's on-disk format.
pub(crate) const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub(crate) enum Line {
    RecdbDump {
        format: u32,
    },
    User {
        id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attrs: Vec<(String, String)>,
    },
    Item {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        genres: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attrs: Vec<(String, String)>,
    },
    Doc {
        tag: String,
        text: String,
    },
    Event {
        user: String,
        item: String,
        kind: String,
        value: f32,
        ts: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    Search {
        user: String,
        q: String,
        ts: i64,
    },
    Table {
        name: String,
        space: String,
        dim: usize,
        rows: usize,
        offset: f32,
        /// Ids of an `other` table's rows (dumps now put them on the rows).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        row_ids: Vec<String>,
        /// The job that trained the table: `infer` and `similar-text` read their
        /// hyperparameters and default seed from it (absent in older dumps).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<DumpedJob>,
    },
    /// One row: no values for a deleted row of a users or items table.
    Row {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        v: Vec<f32>,
    },
    Policy {
        model: String,
        params: String,
        every: u64,
    },
    End {
        users: u64,
        items: u64,
        events: u64,
        tables: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        docs: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        searches: u64,
    },
}

/// What a restored table keeps of the job record that produced it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct DumpedJob {
    pub model: String,
    pub params: String,
    pub seed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a dump or restore moved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DumpReport {
    pub users: u64,
    pub items: u64,
    pub events: u64,
    pub tables: u64,
    /// Imported documents (`import docs`).
    pub docs: u64,
    pub searches: u64,
}

/// The longest line a dump has (and `restore` reads), newline excluded.
pub const MAX_DUMP_LINE: usize = 64 << 20;

/// Write one line; one longer than [`MAX_DUMP_LINE`] (an attribute or a document of
/// tens of megabytes) is refused, so a dump never holds a line `restore` rejects.
pub(crate) fn write_line(w: &mut dyn Write, buf: &mut Vec<u8>, line: &Line) -> Result<()> {
    buf.clear();
    serde_json::to_writer(&mut *buf, line).map_err(|e| Error::io("<dump>", e.into()))?;
    if buf.len() > MAX_DUMP_LINE {
        let head = String::from_utf8_lossy(&buf[..buf.len().min(80)]).into_owned();
        return Err(Error::InvalidInput(format!(
            "a dump line of {} bytes is past the limit of {MAX_DUMP_LINE}: {head}…",
            buf.len()
        )));
    }
    buf.push(b'\n');
    w.write_all(buf).map_err(|e| Error::io("<dump>", e))
}
