//! JSON lines: one object per line, keys named like the delimited formats' columns.

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
        let invalid =
            |e: serde_json::Error| perr(file, line_no, "(json)", format!("invalid JSON: {e}"));
        let obj = if s.starts_with('{') {
            match serde_json::from_str(s).map_err(invalid)? {
                Keys::Unique(obj) => obj,
                Keys::Repeated(k) => {
                    return Err(perr(file, line_no, &k, format!("duplicate key `{k}`")))
                }
            }
        } else {
            let v: Value = serde_json::from_str(s).map_err(invalid)?;
            return Err(perr(
                file,
                line_no,
                "(json)",
                format!("expected a JSON object, found {}", type_name(&v)),
            ));
        };
        sink(f(file, line_no, n, &obj)?)?;
        n += 1;
    }
    if n == 0 {
        return Err(Error::Empty(format!("{file}: no JSON objects")));
    }
    Ok(n)
}

/// A JSON object read whole, or the first key it repeats (`serde_json` alone would keep
/// the last value of a repeated key, silently).
enum Keys {
    Unique(Obj),
    Repeated(String),
}

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Keys, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Keys, A::Error> {
                let (mut obj, mut repeated) = (Obj::new(), None);
                while let Some(k) = m.next_key::<String>()? {
                    if repeated.is_some() || obj.contains_key(&k) {
                        m.next_value::<serde::de::IgnoredAny>()?;
                        repeated.get_or_insert(k);
                    } else {
                        let v = m.next_value()?;
                        obj.insert(k, v);
                    }
                }
                Ok(repeated.map_or(Keys::Unique(obj), Keys::Repeated))
            }
        }
        d.deserialize_map(V)
    }
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

/// The object's keys by role, and the keys without one.
#[allow(clippy::type_complexity)]
fn split<'a>(
    file: &str,
    line: u64,
    target: Target,
    obj: &'a Obj,
) -> Result<([Keyed<'a>; N_ROLES], Vec<(&'a str, &'a Value)>)> {
    let mut by_role: [Keyed<'a>; N_ROLES] = [None; N_ROLES];
    let mut rest = Vec::new();
    for (k, v) in obj {
        let norm = k.trim().to_ascii_lowercase();
        match role_of(target, &norm) {
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

fn attrs(rest: &[(&str, &Value)]) -> Vec<(String, String)> {
    rest.iter()
        .filter_map(|&(k, v)| attr(v).map(|a| (k.to_string(), a)))
        .collect()
}

/// The timestamp of an event or search object (the row index when absent).
// why: the timestamp is range-checked against i64 before the cast.
#[allow(clippy::cast_possible_truncation)]
fn timestamp(file: &str, line: u64, index: u64, r: &[Keyed<'_>; N_ROLES]) -> Result<i64> {
    Ok(match r[slot(Role::Timestamp)] {
        None | Some((_, Value::Null)) => index as i64,
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
    let (r, _) = split(file, line, Target::Events, obj)?;
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
            timestamp: timestamp(file, line, index, &r)?,
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
    let timestamp = timestamp(file, line, index, &r)?;
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

pub(crate) fn item(file: &str, line: u64, _: u64, obj: &Obj) -> Result<ItemRecord> {
    let (r, rest) = split(file, line, Target::Items, obj)?;
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
        attrs: attrs(&rest),
    })
}

pub(crate) fn user(file: &str, line: u64, _: u64, obj: &Obj) -> Result<UserRecord> {
    let (r, rest) = split(file, line, Target::Users, obj)?;
    Ok(UserRecord {
        id: id(file, line, required(file, line, &r, Role::User)?)?,
        attrs: attrs(&rest),
    })
}
