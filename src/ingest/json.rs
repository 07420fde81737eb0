//! JSON lines: one object per line, keys named like the delimited formats' columns.
//! [`parse_json_record`] is the one reader of a JSON record: file rows (`recdb load`,
//! `Db::load_*`) and the server's ingest requests both go through it, their few
//! differences named by [`JsonSource`].

use serde_json::{Map, Value};

use super::text::{self, strip_bom, Sink};
use super::{perr, role_names, role_of, split_genres, Role, Target};
use crate::{Error, EventKind, EventRow, ItemRecord, RawEvent, RawSearch, Result, UserRecord};

type Obj = Map<String, Value>;

/// Turns one object into a record (arguments: file, line, 0-based record index, object).
pub(crate) type JsonRow<T> = fn(&str, u64, u64, &Obj) -> Result<T>;

/// Reads every non-blank line as one object and turns it into a record with `f`
/// (arguments: file, line, 0-based record index, object).
/// Returns the number of records given to `sink`.
pub(crate) fn each_json_line<T>(
    file: &str,
    bytes: &[u8],
    f: JsonRow<T>,
    sink: Sink<'_, T>,
) -> Result<u64> {
    let bytes = strip_bom(bytes);
    let mut n = 0u64;
    for l in super::lines(file, bytes) {
        let (line_no, line) = l?;
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let s = std::str::from_utf8(line).map_err(|e| {
            perr(
                file,
                line_no,
                "(line)",
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        let obj = JsonObject::parse(file, line_no, s)?;
        sink(f(file, line_no, n, obj.object(file, line_no)?)?)?;
        n += 1;
    }
    if n == 0 {
        return Err(Error::Empty(format!("{file}: no JSON objects")));
    }
    Ok(n)
}

/// Where a JSON record comes from: what file rows and the server's request records
/// read differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonSource {
    /// Row `index` (0-based) of a JSON-lines file, as `recdb load` and `Db::load_*`
    /// read it: an event or search without a timestamp gets the index, so file order
    /// is kept.
    File { index: u64 },
    /// A record of an ingest request of `recdb serve`: an event or search without a
    /// timestamp gets `now`; an event's `group` key is its group (as `session`, ...);
    /// an item's or user's object `attrs` holds attributes, one a key (null leaves
    /// nothing, anything else is an error).
    Request { now: i64 },
}

impl JsonSource {
    // why: a row index is far below i64::MAX.
    #[allow(clippy::cast_possible_wrap)]
    fn default_timestamp(self) -> i64 {
        match self {
            JsonSource::File { index } => index as i64,
            JsonSource::Request { now } => now,
        }
    }

    fn is_request(self) -> bool {
        matches!(self, JsonSource::Request { .. })
    }
}

/// One JSON value to read as a record: an object with its keys, or what keeps it from
/// being one (a repeated key, another type), which [`parse_json_record`] names. Read
/// it from text with [`JsonObject::parse`], or deserialize it (an element of a JSON
/// array).
#[derive(Debug, Clone)]
pub struct JsonObject(Keys);

/// A JSON value read whole: an object, the first key it repeats (`serde_json` alone
/// would keep the last value of a repeated key, silently), or the type it is instead.
#[derive(Debug, Clone)]
enum Keys {
    Unique(Obj),
    Repeated(String),
    Not(&'static str),
}

impl JsonObject {
    /// Reads `text`, one JSON value (surrounding spaces are fine); invalid JSON is an
    /// [`Error::Parse`] naming `file`, `line` and the field `(json)`.
    pub fn parse(file: &str, line: u64, text: &str) -> Result<JsonObject> {
        let text = text.trim_ascii();
        let invalid =
            |e: serde_json::Error| perr(file, line, "(json)", format!("invalid JSON: {e}"));
        if text.starts_with('{') {
            serde_json::from_str(text).map_err(invalid)
        } else {
            let v: Value = serde_json::from_str(text).map_err(invalid)?;
            Ok(JsonObject(Keys::Not(type_name(&v))))
        }
    }

    /// The object, or the error naming what it is instead.
    fn object(&self, file: &str, line: u64) -> Result<&Obj> {
        match &self.0 {
            Keys::Unique(obj) => Ok(obj),
            Keys::Repeated(k) => Err(perr(file, line, k, format!("duplicate key `{k}`"))),
            Keys::Not(t) => Err(perr(
                file,
                line,
                "(json)",
                format!("expected a JSON object, found {t}"),
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for JsonObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess};
        type R<E> = std::result::Result<JsonObject, E>;
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> R<A::Error> {
                let (mut obj, mut repeated) = (Obj::new(), None);
                while let Some(k) = m.next_key::<String>()? {
                    if repeated.is_some() || obj.contains_key(&k) {
                        m.next_value::<IgnoredAny>()?;
                        repeated.get_or_insert(k);
                    } else {
                        let v = m.next_value()?;
                        obj.insert(k, v);
                    }
                }
                Ok(JsonObject(
                    repeated.map_or(Keys::Unique(obj), Keys::Repeated),
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> R<A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(JsonObject(Keys::Not("an array")))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> R<E> {
                Ok(JsonObject(Keys::Not("a boolean")))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> R<E> {
                Ok(JsonObject(Keys::Not("a number")))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> R<E> {
                Ok(JsonObject(Keys::Not("a number")))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> R<E> {
                Ok(JsonObject(Keys::Not("a number")))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> R<E> {
                Ok(JsonObject(Keys::Not("a string")))
            }
            fn visit_unit<E: serde::de::Error>(self) -> R<E> {
                Ok(JsonObject(Keys::Not("null")))
            }
        }
        d.deserialize_any(V)
    }
}

mod sealed {
    /// How a record type is read from an object (sealed: the library's three only).
    pub trait Sealed: Sized {
        fn from_json(
            file: &str,
            line: u64,
            obj: &super::Obj,
            source: super::JsonSource,
        ) -> crate::Result<Self>;
    }
}

/// A record [`parse_json_record`] reads: [`EventRow`], [`ItemRecord`] or [`UserRecord`].
pub trait JsonRecord: sealed::Sealed {}

impl JsonRecord for EventRow {}
impl JsonRecord for ItemRecord {}
impl JsonRecord for UserRecord {}

impl sealed::Sealed for EventRow {
    fn from_json(file: &str, line: u64, obj: &Obj, source: JsonSource) -> Result<Self> {
        event_from(file, line, obj, source)
    }
}

impl sealed::Sealed for ItemRecord {
    fn from_json(file: &str, line: u64, obj: &Obj, source: JsonSource) -> Result<Self> {
        item_from(file, line, obj, source)
    }
}

impl sealed::Sealed for UserRecord {
    fn from_json(file: &str, line: u64, obj: &Obj, source: JsonSource) -> Result<Self> {
        user_from(file, line, obj, source)
    }
}

/// Reads one JSON object as a record: an [`EventRow`] (an interaction, or a search: a
/// `query` and no item), an [`ItemRecord`] or a [`UserRecord`]. Keys are found as a
/// JSON-lines file's (case-insensitive; `user`/`user_id`/`uid`, `item`/`item_id`/...,
/// `rating`/`value`/..., `timestamp`/`ts`/`time`, `kind`/`event`/`type`,
/// `session`/`basket`/`order`, `query`/`q`; items' and users' `id`, `title`/`name`,
/// `genres`/`tags`/..., `text`/`description`; every other key of an item or user is an
/// attribute); `source` says what differs between file rows and server requests.
///
/// A bad record (not an object, a repeated key, a missing id, a bad value, ...) is an
/// [`Error::Parse`] naming `file`, `line` and the field.
pub fn parse_json_record<T: JsonRecord>(
    file: &str,
    line: u64,
    object: &JsonObject,
    source: JsonSource,
) -> Result<T> {
    T::from_json(file, line, object.object(file, line)?, source)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const N_ROLES: usize = 10;

fn slot(r: Role) -> usize {
    match r {
        Role::User => 0,
        Role::Item => 1,
        Role::Value => 2,
        Role::Timestamp => 3,
        Role::Kind => 4,
        Role::Group => 5,
        Role::Title => 6,
        Role::Genres => 7,
        Role::Text => 8,
        Role::Query => 9,
    }
}

type Keyed<'a> = Option<(&'a str, &'a Value)>;

/// The object's keys by role, and the keys without one. A request's event also takes
/// `group` as its group key.
#[allow(clippy::type_complexity)]
fn split<'a>(
    file: &str,
    line: u64,
    target: Target,
    obj: &'a Obj,
    source: JsonSource,
) -> Result<([Keyed<'a>; N_ROLES], Vec<(&'a str, &'a Value)>)> {
    let mut by_role: [Keyed<'a>; N_ROLES] = [None; N_ROLES];
    let mut rest = Vec::new();
    let group_key = source.is_request() && target == Target::Events;
    for (k, v) in obj {
        let norm = k.trim().to_ascii_lowercase();
        let role = role_of(target, &norm)
            .or_else(|| (group_key && norm == "group").then_some(Role::Group));
        match role {
            Some(r) => {
                if let Some((other, _)) = by_role[slot(r)] {
                    return Err(perr(
                        file,
                        line,
                        k,
                        format!(
                            "keys `{other}` and `{k}` are both a `{}` key; keep one",
                            role_names(r)[0]
                        ),
                    ));
                }
                by_role[slot(r)] = Some((k.as_str(), v));
            }
            None => rest.push((k.as_str(), v)),
        }
    }
    Ok((by_role, rest))
}

fn required<'a>(
    file: &str,
    line: u64,
    by_role: &[Keyed<'a>; N_ROLES],
    role: Role,
) -> Result<(&'a str, &'a Value)> {
    by_role[slot(role)].ok_or_else(|| {
        let field = role_names(role)[0];
        perr(
            file,
            line,
            field,
            format!(
                "missing {field} key (expected one of {})",
                role_names(role).join(", ")
            ),
        )
    })
}

fn id(file: &str, line: u64, (k, v): (&str, &Value)) -> Result<String> {
    match v {
        Value::String(s) => text::id(file, line, k, s.as_bytes()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(perr(
            file,
            line,
            k,
            format!("expected a string or number id, found {}", type_name(other)),
        )),
    }
}

/// A string, number or boolean as text; null as None.
fn opt_text(file: &str, line: u64, (k, v): (&str, &Value)) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(perr(
            file,
            line,
            k,
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

/// An attribute value: scalars as text, arrays and objects as JSON, null left out.
fn attr(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// The attributes of an item or user: its keys without a role; in a request, the keys
/// of an object `attrs` too.
fn attrs(
    file: &str,
    line: u64,
    rest: &[(&str, &Value)],
    source: JsonSource,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(rest.len());
    for &(k, v) in rest {
        if source.is_request() && k == "attrs" {
            match v {
                Value::Null => {}
                Value::Object(inner) => out.extend(
                    inner
                        .iter()
                        .filter_map(|(k, v)| attr(v).map(|a| (k.clone(), a))),
                ),
                other => {
                    return Err(perr(
                        file,
                        line,
                        k,
                        format!(
                            "expected an object of attributes, found {}",
                            type_name(other)
                        ),
                    ))
                }
            }
        } else if let Some(a) = attr(v) {
            out.push((k.to_string(), a));
        }
    }
    Ok(out)
}

/// The timestamp of an event or search object (`default` when absent).
// why: the timestamp is range-checked against i64 before the cast.
#[allow(clippy::cast_possible_truncation)]
fn timestamp(file: &str, line: u64, default: i64, r: &[Keyed<'_>; N_ROLES]) -> Result<i64> {
    Ok(match r[slot(Role::Timestamp)] {
        None | Some((_, Value::Null)) => default,
        Some((k, v)) => match v {
            Value::Number(n) => match n.as_i64() {
                Some(t) => t,
                None => {
                    let f = n.as_f64().unwrap_or(f64::NAN).floor();
                    if f.is_finite() && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                        f as i64
                    } else {
                        return Err(perr(
                            file,
                            line,
                            k,
                            format!("timestamp {n} is out of range"),
                        ));
                    }
                }
            },
            Value::String(s) => text::timestamp(file, line, k, s.as_bytes())?,
            other => {
                return Err(perr(
                    file,
                    line,
                    k,
                    format!(
                        "expected a timestamp (integer or decimal seconds), found {}",
                        type_name(other)
                    ),
                ))
            }
        },
    })
}

pub(crate) fn event(file: &str, line: u64, index: u64, obj: &Obj) -> Result<EventRow> {
    event_from(file, line, obj, JsonSource::File { index })
}

fn event_from(file: &str, line: u64, obj: &Obj, source: JsonSource) -> Result<EventRow> {
    let (r, _) = split(file, line, Target::Events, obj, source)?;
    let user = id(file, line, required(file, line, &r, Role::User)?)?;
    let query = match r[slot(Role::Query)] {
        None => None,
        Some(kv) => opt_text(file, line, kv)?.map(|q| (kv.0, q)),
    };
    let has_item = match r[slot(Role::Item)] {
        None | Some((_, Value::Null)) => false,
        Some((_, Value::String(s))) => !s.trim().is_empty(),
        Some(_) => true,
    };
    if let Some((qk, q)) = query {
        if has_item {
            return Err(perr(
                file,
                line,
                qk,
                "a row has an item or a query, not both",
            ));
        }
        super::check_query_field(file, line, qk, &q)?;
        match r[slot(Role::Kind)] {
            None | Some((_, Value::Null)) => {}
            Some((k, Value::String(s))) => super::check_search_kind(file, line, k, s)?,
            Some((k, other)) => {
                return Err(perr(
                    file,
                    line,
                    k,
                    format!("expected an event kind string, found {}", type_name(other)),
                ))
            }
        }
        return Ok(EventRow::Search(RawSearch {
            user,
            text: q,
            timestamp: timestamp(file, line, source.default_timestamp(), &r)?,
        }));
    }
    if r[slot(Role::Query)].is_some() && !has_item {
        let k = r[slot(Role::Item)].map_or("item", |kv| kv.0);
        return Err(perr(
            file,
            line,
            k,
            "a row needs an item or a query (both are empty)",
        ));
    }
    let item = id(file, line, required(file, line, &r, Role::Item)?)?;
    let mut default_kind = EventKind::Interaction;
    let value = match r[slot(Role::Value)] {
        None => 1.0,
        Some((k, v)) => {
            if k.trim().eq_ignore_ascii_case("rating") {
                default_kind = EventKind::Rating;
            }
            match v {
                Value::Number(n) => {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    super::check_value(file, line, k, &n.to_string(), f)?
                }
                Value::String(s) => text::value(file, line, k, s.as_bytes())?,
                other => {
                    return Err(perr(
                        file,
                        line,
                        k,
                        format!("expected a number, found {}", type_name(other)),
                    ))
                }
            }
        }
    };
    let timestamp = timestamp(file, line, source.default_timestamp(), &r)?;
    let kind = match r[slot(Role::Kind)] {
        None | Some((_, Value::Null)) => default_kind,
        Some((k, Value::String(s))) => super::parse_kind(file, line, k, s, default_kind)?,
        Some((k, other)) => {
            return Err(perr(
                file,
                line,
                k,
                format!("expected an event kind string, found {}", type_name(other)),
            ))
        }
    };
    let group = match r[slot(Role::Group)] {
        None => None,
        Some(kv) => opt_text(file, line, kv)?,
    };
    Ok(EventRow::Event(RawEvent {
        user,
        item,
        kind,
        value,
        timestamp,
        group,
    }))
}

pub(crate) fn item(file: &str, line: u64, index: u64, obj: &Obj) -> Result<ItemRecord> {
    item_from(file, line, obj, JsonSource::File { index })
}

fn item_from(file: &str, line: u64, obj: &Obj, source: JsonSource) -> Result<ItemRecord> {
    let (r, rest) = split(file, line, Target::Items, obj, source)?;
    let opt = |role: Role| match r[slot(role)] {
        None => Ok(None),
        Some(kv) => opt_text(file, line, kv),
    };
    let genres = match r[slot(Role::Genres)] {
        None | Some((_, Value::Null)) => Vec::new(),
        Some((_, Value::String(s))) => split_genres(s, false),
        Some((k, Value::Array(a))) => {
            let mut g = Vec::with_capacity(a.len());
            for v in a {
                if let Some(s) = opt_text(file, line, (k, v))? {
                    g.push(s);
                }
            }
            g
        }
        Some((k, other)) => {
            return Err(perr(
                file,
                line,
                k,
                format!(
                    "expected genres as a string or an array of strings, found {}",
                    type_name(other)
                ),
            ))
        }
    };
    Ok(ItemRecord {
        id: id(file, line, required(file, line, &r, Role::Item)?)?,
        title: opt(Role::Title)?,
        genres,
        text: opt(Role::Text)?,
        attrs: attrs(file, line, &rest, source)?,
    })
}

pub(crate) fn user(file: &str, line: u64, index: u64, obj: &Obj) -> Result<UserRecord> {
    user_from(file, line, obj, JsonSource::File { index })
}

fn user_from(file: &str, line: u64, obj: &Obj, source: JsonSource) -> Result<UserRecord> {
    let (r, rest) = split(file, line, Target::Users, obj, source)?;
    Ok(UserRecord {
        id: id(file, line, required(file, line, &r, Role::User)?)?,
        attrs: attrs(file, line, &rest, source)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<T: JsonRecord>(text: &str, source: JsonSource) -> Result<T> {
        parse_json_record("f", 3, &JsonObject::parse("f", 3, text)?, source)
    }

    fn ev(text: &str, source: JsonSource) -> RawEvent {
        match rec(text, source).unwrap() {
            EventRow::Event(e) => e,
            EventRow::Search(_) => panic!("a search"),
        }
    }

    const FILE: JsonSource = JsonSource::File { index: 7 };
    const REQUEST: JsonSource = JsonSource::Request { now: 1000 };

    #[test]
    fn the_source_decides_the_default_timestamp_group_and_attrs() {
        let e = r#"{"user":"u","item":"i","group":"g"}"#;
        let (f, r) = (ev(e, FILE), ev(e, REQUEST));
        assert_eq!((f.timestamp, f.group.as_deref()), (7, None));
        assert_eq!((r.timestamp, r.group.as_deref()), (1000, Some("g")));
        let u = r#"{"id":"u","attrs":{"age":24}}"#;
        let f: UserRecord = rec(u, FILE).unwrap();
        assert_eq!(f.attrs, [("attrs".to_owned(), "{\"age\":24}".to_owned())]);
        let r: UserRecord = rec(u, REQUEST).unwrap();
        assert_eq!(r.attrs, [("age".to_owned(), "24".to_owned())]);
        // Items take no `group` key.
        let i: ItemRecord = rec(r#"{"id":"m","group":"g"}"#, REQUEST).unwrap();
        assert_eq!(i.attrs, [("group".to_owned(), "g".to_owned())]);
    }

    #[test]
    fn a_record_is_read_as_a_file_row() {
        let line = r#"{"uid":"u","item_id":"i","rating":"4","ts":5.5,"session":"s"}"#;
        let bytes = format!("{{\"user\":\"a\",\"item\":\"b\"}}\n{line}\n");
        let rows = super::super::parse_event_rows("f", bytes.as_bytes(), None).unwrap();
        let mut e = ev(line, JsonSource::File { index: 1 });
        assert_eq!(rows[1], EventRow::Event(e.clone()));
        e.timestamp = 5;
        assert_eq!(ev(line, REQUEST), e);
    }

    #[test]
    fn what_is_not_an_object_is_named() {
        let err = |r: Result<UserRecord>| match r.err().unwrap() {
            Error::Parse {
                line, field, msg, ..
            } => (line, field, msg),
            other => panic!("{other}"),
        };
        let (line, field, msg) = err(rec("  [1, 2]", REQUEST));
        assert_eq!((line, field.as_str()), (3, "(json)"));
        assert_eq!(msg, "expected a JSON object, found an array");
        let (_, field, _) = err(rec(r#"{"id":"u","id":"v"}"#, REQUEST));
        assert_eq!(field, "id");
        let (_, field, msg) = err(rec("{\"id\":", REQUEST));
        assert_eq!(field, "(json)");
        assert!(msg.starts_with("invalid JSON"), "{msg}");
        // Deserialized (an array's elements), the same.
        let all: Vec<JsonObject> =
            serde_json::from_str(r#"[{"id":"u"}, {"id":"u","id":"v"}, 1, "x", null, true, [{}]]"#)
                .unwrap();
        assert_eq!(rec_of(&all[0]).unwrap().id, "u");
        let names: Vec<String> = all[1..].iter().map(|o| err(rec_of(o)).2).collect();
        assert_eq!(
            names,
            [
                "duplicate key `id`",
                "expected a JSON object, found a number",
                "expected a JSON object, found a string",
                "expected a JSON object, found null",
                "expected a JSON object, found a boolean",
                "expected a JSON object, found an array",
            ]
        );
    }

    fn rec_of(o: &JsonObject) -> Result<UserRecord> {
        parse_json_record("f", 1, o, REQUEST)
    }
}
