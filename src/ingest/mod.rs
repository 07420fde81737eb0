//! Import readers: events, items and users from TSV, CSV, JSON lines and the RecBole-style
//! "atomic files" (ML-100K's `.inter`, `.item`, `.user`).
//!
//! These functions only parse; they never touch storage. Every entry point comes in two
//! forms: `read_*` takes a path, `parse_*` takes a file name (used in error messages) and
//! the bytes (what the fuzz targets call).
//!
//! # Columns
//!
//! Columns are found by header name, case-insensitively, after stripping an atomic type
//! suffix (`user_id:token` → `user_id`):
//!
//! | role | names |
//! |---|---|
//! | user | `user`, `user_id`, `userid`, `uid` (user files also `id`) |
//! | item | `item`, `item_id`, `itemid`, `iid`, `movie_id`, `product_id` (item files also `id`) |
//! | value | `rating`, `value`, `weight`, `score` |
//! | timestamp | `timestamp`, `ts`, `time` |
//! | kind | `kind`, `event`, `event_type`, `type` |
//! | group | `session`, `session_id`, `basket`, `basket_id`, `order`, `order_id` |
//! | query | `query`, `search_query`, `q` |
//! | item title | `title`, `name`, `movie_title` |
//! | item genres | `genres`, `genre`, `class`, `tags`, `categories` |
//! | item text | `text`, `description`, `overview` |
//!
//! Events: user and item are required; other columns are ignored. Without a value column
//! every value is 1.0 and the kind is [`EventKind::Interaction`]; a value column named
//! `rating` makes the kind [`EventKind::Rating`]; a kind column overrides both per row (an
//! empty kind field keeps the default). Without a timestamp column (or, in JSON lines,
//! when an object has no timestamp key) the timestamp is the 0-based index of the data row
//! in the file (0, 1, 2, ...), so file order is kept. Timestamps are integers or decimal
//! seconds (`881250949.0`, `1.5e9`), floored. An empty group field means no group.
//!
//! Searches: with a query column the item column is optional, and a row with a
//! non-empty query and no item (empty or absent) is a search of kind `search` (a kind
//! field, if any, is empty or `search`; value and group are ignored). A row with both an
//! item and a query, or neither, is an error naming the line and field; so is a query
//! with no word once tokenized (a word is 2-15 ASCII letters) or longer than
//! [`MAX_QUERY`] bytes. [`read_events`] and [`parse_events`] leave searches out;
//! [`parse_event_rows`] and the database's import keep them.
//!
//! Items and users: the id is required; every column that has no role becomes an
//! attribute (`release_year`, `age`, ...) under its header name; empty attribute values
//! are left out. Genres are split on `|` and `,`; in atomic files (a `token_seq` field)
//! also on whitespace, so ML-100K's `Animation Children's Comedy` is three genres.
//! In JSON lines genres may also be an array of strings.
//!
//! # Formats
//!
//! * TSV: tab-separated, no quoting (a field cannot contain a tab or a newline).
//! * Atomic: TSV with a typed header (`name:token`, `name:float`, `name:token_seq`).
//! * CSV: RFC 4180 with double-quote quoting (the `csv` crate).
//! * JSON lines: one object per line with the same key names; ids may be strings or
//!   numbers; values and timestamps numbers (or numeric strings). A key given twice in
//!   one object is an error naming it.
//!
//! All formats accept a UTF-8 byte order mark, CRLF line endings and blank lines (skipped).
//! Surrounding spaces of fields are trimmed.
//!
//! # Errors
//!
//! A line longer than [`MAX_LINE`] bytes is rejected before it is split (a file is read
//! under that cap, so an endless line such as `/dev/zero` ends with an error too).
//! A rejected input is an [`Error::Parse`] naming the file, the 1-based line (the header is
//! line 1), the field and what is wrong; an empty file or a file with a header and no rows
//! is [`Error::Empty`]. The first error stops the read: nothing is returned partially, so a
//! caller that parses before it writes leaves the database as it was.
//!
//! # Cost
//!
//! `read_*` reads the whole file into memory, then parses it (about 5M TSV event lines/s on
//! one core; the only per-line allocations are the id and group strings).

use std::path::Path;

use crate::{Error, EventKind, EventRow, ItemRecord, RawEvent, Result, UserRecord};

mod batch;
mod json;
mod lines;
#[cfg(feature = "parquet")]
mod parquet;
mod schema;
mod table;
mod text;

pub(crate) use batch::{check_event, check_id, check_query, Writer, IMPORT_BATCH};
pub use batch::{CommitReceipt, ImportReport, IngestBatch, MAX_QUERY};
pub use json::{parse_json_record, JsonObject, JsonRecord, JsonSource};
pub(crate) use lines::{check_lines, lines, read_file, read_line};
pub use lines::{read_binary_file, read_text_file, MAX_LINE};
#[cfg(all(feature = "parquet", test))]
pub(crate) use parquet::part_files as parquet_parts;
#[cfg(all(feature = "parquet", any(test, feature = "testkit")))]
pub use parquet::spark_factors_bytes;
#[cfg(feature = "parquet")]
pub use parquet::{parse_parquet_factors, ParquetFactors};
#[cfg(feature = "parquet")]
pub(crate) use parquet::{read_factors, LogRow, LogWriter};
#[cfg(any(test, feature = "testkit"))]
pub use table::parse_ids;
pub(crate) use table::{ids_of, read_f32_rows, tsv_vectors_of};
pub use table::{parse_f32_rows, parse_tsv_vectors, ParsedVectors};

#[cfg(test)]
mod tests;

/// The format of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Tab-separated values with a header line, no quoting.
    Tsv,
    /// Comma-separated values with a header line and double-quote quoting.
    Csv,
    /// One JSON object per line.
    JsonLines,
    /// Tab-separated with a typed header (`user_id:token ...`), as ML-100K's atomic files.
    Atomic,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tsv" | "tab" => Ok(Format::Tsv),
            "csv" => Ok(Format::Csv),
            "jsonl" | "json" | "ndjson" => Ok(Format::JsonLines),
            "atomic" => Ok(Format::Atomic),
            _ => Err(Error::param(
                "format",
                format!("unknown format `{s}` (expected tsv, csv, jsonl, json or atomic)"),
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Tsv => "tsv",
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Atomic => "atomic",
        })
    }
}

/// Guesses the format from the first non-blank line of `head`, then from the extension of
/// `name`: a typed header (`:token`, `:float`, ...) is [`Format::Atomic`], a line starting
/// with `{` is [`Format::JsonLines`], a tab means [`Format::Tsv`], a comma [`Format::Csv`].
/// When the line decides nothing, `.csv` / `.jsonl` / `.json` / `.inter` / ... decide;
/// the fallback is TSV.
pub fn detect(name: &str, head: &[u8]) -> Format {
    let head = text::strip_bom(head);
    let first = head
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty())
        .unwrap_or(&[]);
    if first.first() == Some(&b'{') {
        return Format::JsonLines;
    }
    let typed = [
        b":token".as_slice(),
        b":float",
        b":token_seq",
        b":float_seq",
    ]
    .iter()
    .any(|t| contains(first, t));
    if typed {
        return Format::Atomic;
    }
    if first.contains(&b'\t') {
        return Format::Tsv;
    }
    if first.contains(&b',') {
        return Format::Csv;
    }
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => Format::Csv,
        "jsonl" | "json" | "ndjson" => Format::JsonLines,
        "inter" | "item" | "user" => Format::Atomic,
        _ => Format::Tsv,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// How the line cap of `bytes` is known to hold.
#[derive(Clone, Copy, PartialEq)]
enum Capped {
    /// Read by [`read_file`], which metered every line as it came.
    Metered,
    /// Bytes from a caller: checked whole first, so a line past the cap is the error
    /// even when an earlier line is bad too.
    Unchecked,
}

fn each_with<S: schema::Schema>(
    file: &str,
    bytes: &[u8],
    format: Option<Format>,
    capped: Capped,
    json_row: json::JsonRow<S::Out>,
    sink: text::Sink<'_, S::Out>,
) -> Result<u64> {
    if capped == Capped::Unchecked {
        check_lines(file, bytes)?;
    }
    let format = format.unwrap_or_else(|| detect(file, &bytes[..bytes.len().min(4096)]));
    match format {
        Format::Tsv => text::each_tsv::<S>(file, bytes, false, sink),
        Format::Atomic => text::each_tsv::<S>(file, bytes, true, sink),
        Format::Csv => text::each_csv::<S>(file, bytes, sink),
        Format::JsonLines => json::each_json_line(file, bytes, json_row, sink),
    }
}

fn parse_with<S: schema::Schema>(
    file: &str,
    bytes: &[u8],
    format: Option<Format>,
    capped: Capped,
    json_row: json::JsonRow<S::Out>,
) -> Result<Vec<S::Out>> {
    text::collect(bytes, |sink| {
        each_with::<S>(file, bytes, format, capped, json_row, sink)
    })
}

/// Streams the events of `bytes` to `sink` in file order without collecting them (what
/// a bounded-memory import parses with); returns how many there were. An error from
/// the sink stops the read and is returned. `bytes` come from [`read_file`], which
/// metered their lines (a line past the cap is still refused where it is split).
pub(crate) fn each_event(
    file_name: &str,
    bytes: &[u8],
    format: Option<Format>,
    sink: &mut dyn FnMut(EventRow) -> Result<()>,
) -> Result<u64> {
    each_with::<schema::EventSchema>(file_name, bytes, format, Capped::Metered, json::event, sink)
}

/// Reads interaction events from a file; `format: None` detects it (see [`detect`]).
/// Searches (rows with a query) are validated and left out.
pub fn read_events(path: impl AsRef<Path>, format: Option<Format>) -> Result<Vec<RawEvent>> {
    let (file, bytes) = read_file(path.as_ref())?;
    let rows =
        parse_with::<schema::EventSchema>(&file, &bytes, format, Capped::Metered, json::event)?;
    Ok(only_events(rows))
}

fn only_events(rows: Vec<EventRow>) -> Vec<RawEvent> {
    rows.into_iter()
        .filter_map(|r| match r {
            EventRow::Event(e) => Some(e),
            EventRow::Search(_) => None,
        })
        .collect()
}

#[cfg(any(test, feature = "testkit"))]
/// Parses interaction events from bytes; `file_name` names the input in errors.
/// Searches (rows with a query) are validated and left out.
pub fn parse_events(
    file_name: &str,
    bytes: &[u8],
    format: Option<Format>,
) -> Result<Vec<RawEvent>> {
    parse_event_rows(file_name, bytes, format).map(only_events)
}

#[cfg(any(test, feature = "testkit"))]
/// Parses the rows of an events file, interactions and searches, in file order.
pub fn parse_event_rows(
    file_name: &str,
    bytes: &[u8],
    format: Option<Format>,
) -> Result<Vec<EventRow>> {
    parse_with::<schema::EventSchema>(file_name, bytes, format, Capped::Unchecked, json::event)
}

/// Reads item records (title, genres, text, attributes) from a file.
pub fn read_items(path: impl AsRef<Path>, format: Option<Format>) -> Result<Vec<ItemRecord>> {
    let (file, bytes) = read_file(path.as_ref())?;
    parse_with::<schema::ItemSchema>(&file, &bytes, format, Capped::Metered, json::item)
}

#[cfg(any(test, feature = "testkit"))]
/// Parses item records from bytes; `file_name` names the input in errors.
pub fn parse_items(
    file_name: &str,
    bytes: &[u8],
    format: Option<Format>,
) -> Result<Vec<ItemRecord>> {
    parse_with::<schema::ItemSchema>(file_name, bytes, format, Capped::Unchecked, json::item)
}

/// Reads user records (id and attributes) from a file.
pub fn read_users(path: impl AsRef<Path>, format: Option<Format>) -> Result<Vec<UserRecord>> {
    let (file, bytes) = read_file(path.as_ref())?;
    parse_with::<schema::UserSchema>(&file, &bytes, format, Capped::Metered, json::user)
}

#[cfg(any(test, feature = "testkit"))]
/// Parses user records from bytes; `file_name` names the input in errors.
pub fn parse_users(
    file_name: &str,
    bytes: &[u8],
    format: Option<Format>,
) -> Result<Vec<UserRecord>> {
    parse_with::<schema::UserSchema>(file_name, bytes, format, Capped::Unchecked, json::user)
}

/// A parse error at `line` of `file` in `field`.
pub(crate) fn perr(file: &str, line: u64, field: &str, msg: impl Into<String>) -> Error {
    Error::Parse {
        file: file.to_string(),
        line,
        field: field.to_string(),
        msg: msg.into(),
    }
}

/// Which column an event file's header name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    User,
    Item,
    Value,
    Timestamp,
    Kind,
    Group,
    Query,
    Title,
    Genres,
    Text,
}

const USER: &[&str] = &["user", "user_id", "userid", "uid"];
const ITEM: &[&str] = &["item", "item_id", "itemid", "iid", "movie_id", "product_id"];
const VALUE: &[&str] = &["rating", "value", "weight", "score"];
const TIMESTAMP: &[&str] = &["timestamp", "ts", "time"];
const KIND: &[&str] = &["kind", "event", "event_type", "type"];
const GROUP: &[&str] = &[
    "session",
    "session_id",
    "basket",
    "basket_id",
    "order",
    "order_id",
];
const QUERY: &[&str] = &["query", "search_query", "q"];
const TITLE: &[&str] = &["title", "name", "movie_title"];
const GENRES: &[&str] = &["genres", "genre", "class", "tags", "categories"];
const TEXT: &[&str] = &["text", "description", "overview"];

/// The names a role accepts, for error messages.
pub(crate) fn role_names(role: Role) -> &'static [&'static str] {
    match role {
        Role::User => USER,
        Role::Item => ITEM,
        Role::Value => VALUE,
        Role::Timestamp => TIMESTAMP,
        Role::Kind => KIND,
        Role::Group => GROUP,
        Role::Query => QUERY,
        Role::Title => TITLE,
        Role::Genres => GENRES,
        Role::Text => TEXT,
    }
}

/// What kind of record a file holds; decides which roles its columns can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Events,
    Items,
    Users,
}

/// The role of a normalised (lowercase, untyped) column name in a file of `target` records.
pub(crate) fn role_of(target: Target, norm: &str) -> Option<Role> {
    let is = |names: &[&str]| names.contains(&norm);
    match target {
        Target::Events => [
            Role::User,
            Role::Item,
            Role::Value,
            Role::Timestamp,
            Role::Kind,
            Role::Group,
            Role::Query,
        ]
        .into_iter()
        .find(|&r| is(role_names(r))),
        Target::Items => {
            if is(ITEM) || norm == "id" {
                Some(Role::Item)
            } else {
                [Role::Title, Role::Genres, Role::Text]
                    .into_iter()
                    .find(|&r| is(role_names(r)))
            }
        }
        Target::Users => (is(USER) || norm == "id").then_some(Role::User),
    }
}

/// Strips an atomic type suffix (`:token`, `:float`, `:token_seq`, `:float_seq`) and spaces.
pub(crate) fn strip_type(name: &str) -> &str {
    let name = name.trim();
    match name.rsplit_once(':') {
        Some((base, ty))
            if matches!(
                ty.trim().to_ascii_lowercase().as_str(),
                "token" | "float" | "token_seq" | "float_seq"
            ) =>
        {
            base.trim()
        }
        _ => name,
    }
}

/// Splits a genre field: on `|` and `,`, and in atomic files also on whitespace.
pub(crate) fn split_genres(s: &str, atomic: bool) -> Vec<String> {
    s.split(|c: char| c == '|' || c == ',' || (atomic && c.is_whitespace()))
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses an event kind field; an empty field keeps `default`.
pub(crate) fn parse_kind(
    file: &str,
    line: u64,
    field: &str,
    s: &str,
    default: EventKind,
) -> Result<EventKind> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(default);
    }
    if s.eq_ignore_ascii_case("search") {
        return Err(perr(
            file,
            line,
            field,
            "kind `search` is for a row with a query and no item",
        ));
    }
    s.parse::<EventKind>().map_err(|_| {
        perr(
            file,
            line,
            field,
            format!(
                "unknown event kind `{s}` (expected one of interaction, rating, view, click, cart, purchase)"
            ),
        )
    })
}

/// The query of a search row: at most [`MAX_QUERY`] bytes and at least one word once
/// tokenized; an error names the line and field.
pub(crate) fn check_query_field(file: &str, line: u64, field: &str, q: &str) -> Result<()> {
    if q.len() > MAX_QUERY {
        return Err(perr(
            file,
            line,
            field,
            format!("query longer than {MAX_QUERY} bytes"),
        ));
    }
    if crate::train::text::tokenize(q).is_empty() {
        return Err(perr(
            file,
            line,
            field,
            format!("query `{q}` has no word (a word is 2-15 ASCII letters)"),
        ));
    }
    Ok(())
}

/// The kind field of a search row: empty or `search`.
pub(crate) fn check_search_kind(file: &str, line: u64, field: &str, s: &str) -> Result<()> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("search") {
        Ok(())
    } else {
        Err(perr(
            file,
            line,
            field,
            format!(
                "kind `{s}` on a row with a query and no item (a search: kind `search` or empty)"
            ),
        ))
    }
}

/// Checks a parsed value: finite, else an error saying what it is.
// why: range-checked against f32 before the cast.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn check_value(file: &str, line: u64, field: &str, raw: &str, v: f64) -> Result<f32> {
    let what = if v.is_nan() {
        "is NaN"
    } else if v.is_infinite() {
        "is infinite"
    } else if v.abs() > f32::MAX as f64 {
        "is out of range for a 32-bit float"
    } else {
        return Ok(v as f32);
    };
    Err(perr(file, line, field, format!("value `{raw}` {what}")))
}
