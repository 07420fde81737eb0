//! Request bodies of the ingest endpoints: a JSON array of objects or JSON lines (one
//! object a line), at most [`MAX_RECORDS_PER_REQUEST`] of them. A bad record is
//! `Error::Parse` naming its line (for an array: its element, counted from 1) and
//! field, a body with too many is 413 `TooManyRecords`, and nothing is written.

use axum::http::StatusCode;
use serde::de::DeserializeSeed;
use serde_json::{Map, Value};

use recdb::{Error, EventKind, ItemRecord, RawEvent, RawSearch, Result, UserRecord};

use super::errors::ApiError;
use super::limits::{Capped, CappedSeed};
use super::MAX_RECORDS_PER_REQUEST;

const FILE: &str = "request body";

/// The records of a request: parsed, or an error to answer.
type Records<T> = std::result::Result<Vec<T>, ApiError>;

fn parse_err(line: u64, field: &str, msg: impl Into<String>) -> Error {
    Error::Parse {
        file: FILE.into(),
        line,
        field: field.into(),
        msg: msg.into(),
    }
}

/// 413: more than `limit` records (`got`), refused before anything is written.
fn too_many(got: usize, limit: usize, noun: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "TooManyRecords",
        format!(
            "the request holds {got} {noun}; the limit is {limit} a request \
             (send more in several requests: each is one atomic commit)"
        ),
    )
    .with("limit", limit)
    .with("got", got)
}

/// The records of a body with their line numbers, at most
/// [`MAX_RECORDS_PER_REQUEST`] (`noun` names them in the error).
pub fn records(body: &[u8], noun: &str) -> Records<(u64, Map<String, Value>)> {
    records_up_to(body, MAX_RECORDS_PER_REQUEST, noun)
}

/// [`records`] with the limit `limit`: past it the rest is counted, never parsed into
/// records, so a request's memory is bounded by the limit, not by its length.
fn records_up_to(body: &[u8], limit: usize, noun: &str) -> Records<(u64, Map<String, Value>)> {
    let text =
        std::str::from_utf8(body).map_err(|e| parse_err(1, "", format!("not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    let mut out = Vec::new();
    if trimmed.starts_with('[') {
        let bad =
            |e: serde_json::Error| parse_err(e.line() as u64, "", format!("not a JSON array: {e}"));
        let mut d = serde_json::Deserializer::from_str(text);
        let values = CappedSeed::<Value>::new(limit)
            .deserialize(&mut d)
            .map_err(bad)?;
        d.end().map_err(bad)?;
        let values = match values {
            Capped::List(v) => v,
            Capped::Over(n) => return Err(too_many(n, limit, noun)),
        };
        for (n, v) in values.into_iter().enumerate() {
            out.push((n as u64 + 1, object(v, n as u64 + 1)?));
        }
    } else {
        let mut lines = text.lines().enumerate();
        for (n, line) in lines.by_ref() {
            let line_no = n as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            if out.len() == limit {
                let rest = lines.filter(|(_, l)| !l.trim().is_empty()).count();
                return Err(too_many(limit + 1 + rest, limit, noun));
            }
            let v: Value = serde_json::from_str(line)
                .map_err(|e| parse_err(line_no, "", format!("not JSON: {e}")))?;
            out.push((line_no, object(v, line_no)?));
        }
    }
    if out.is_empty() {
        return Err(Error::Empty("the request body has no records".into()).into());
    }
    Ok(out)
}

fn object(v: Value, line: u64) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(parse_err(
            line,
            "",
            format!("expected a JSON object, got {}", type_name(&other)),
        )),
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

/// An id or text field: a string, or a number written as text (`42`).
fn text(m: &Map<String, Value>, line: u64, field: &str) -> Result<Option<String>> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(parse_err(
            line,
            field,
            format!("expected a string, got {}", type_name(other)),
        )),
    }
}

fn required(m: &Map<String, Value>, line: u64, field: &str) -> Result<String> {
    text(m, line, field)?.ok_or_else(|| parse_err(line, field, "missing"))
}

/// One ingest record: an interaction, or a search (`query` and no `item`).
pub enum Row {
    Event(RawEvent),
    Search(RawSearch),
}

/// Events: `user`, `item` (or `query` for a search), optional `kind` (default
/// `interaction`), `value` (default 1), `timestamp` (seconds; default `now`), `group`.
pub fn event_rows(body: &[u8], now: i64) -> Records<Row> {
    let mut rows = Vec::new();
    for (line, m) in records(body, "events")? {
        let user = required(&m, line, "user")?;
        let timestamp = match m.get("timestamp") {
            None | Some(Value::Null) => now,
            Some(v) => v.as_i64().ok_or_else(|| {
                parse_err(line, "timestamp", format!("expected an integer, got {v}"))
            })?,
        };
        let item = match (text(&m, line, "item")?, text(&m, line, "query")?) {
            (Some(item), None) => item,
            (None, Some(q)) => {
                rows.push(Row::Search(RawSearch {
                    user,
                    text: q,
                    timestamp,
                }));
                continue;
            }
            // As the importers: a row is an event or a search, never both.
            (Some(_), Some(_)) => {
                return Err(parse_err(line, "query", "an event with an item has no query").into())
            }
            (None, None) => return Err(parse_err(line, "item", "missing (or give `query`)").into()),
        };
        let kind = match text(&m, line, "kind")? {
            None => EventKind::Interaction,
            Some(k) => k
                .parse::<EventKind>()
                .map_err(|e| parse_err(line, "kind", e.to_string()))?,
        };
        let value = match m.get("value") {
            None | Some(Value::Null) => 1.0,
            Some(v) => match v.as_f64() {
                #[allow(clippy::cast_possible_truncation)] // a rating or weight: f32 by design
                Some(x) if x.is_finite() && (x as f32).is_finite() => x as f32,
                _ => {
                    return Err(parse_err(
                        line,
                        "value",
                        format!("expected a finite number, got {v}"),
                    )
                    .into())
                }
            },
        };
        let group = text(&m, line, "group")?;
        rows.push(Row::Event(RawEvent {
            user,
            item,
            kind,
            value,
            timestamp,
            group,
        }));
    }
    Ok(rows)
}

/// Any other fields of a record, as attributes (`"age": 24` → `age` = `24`).
fn attrs(m: &Map<String, Value>, line: u64, skip: &[&str]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (k, v) in m {
        if skip.contains(&k.as_str()) {
            continue;
        }
        if k == "attrs" {
            let Value::Object(inner) = v else {
                return Err(parse_err(line, "attrs", "expected an object"));
            };
            for k2 in inner.keys() {
                if let Some(s) = text(inner, line, k2)? {
                    out.push((k2.clone(), s));
                }
            }
            continue;
        }
        let value = match v {
            Value::Bool(b) => Some(b.to_string()),
            _ => text(m, line, k)?,
        };
        if let Some(s) = value {
            out.push((k.clone(), s));
        }
    }
    Ok(out)
}

/// Items: `id`, optional `title`, `genres` (an array, or `a|b`), `text`; any other field
/// (or the object `attrs`) is an attribute.
pub fn item_records(body: &[u8]) -> Records<ItemRecord> {
    let mut out = Vec::new();
    for (line, m) in records(body, "items")? {
        let genres = match m.get("genres") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s
                .split('|')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|g| {
                    g.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| parse_err(line, "genres", "expected an array of strings"))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(parse_err(line, "genres", "expected an array or `a|b`").into()),
        };
        out.push(ItemRecord {
            id: required(&m, line, "id")?,
            title: text(&m, line, "title")?,
            genres,
            text: text(&m, line, "text")?,
            attrs: attrs(&m, line, &["id", "title", "genres", "text"])?,
        });
    }
    Ok(out)
}

/// Users: `id`; any other field (or the object `attrs`) is an attribute.
pub fn user_records(body: &[u8]) -> Records<UserRecord> {
    records(body, "users")?
        .into_iter()
        .map(|(line, m)| {
            Ok(UserRecord {
                id: required(&m, line, "id")?,
                attrs: attrs(&m, line, &["id"])?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_field(e: ApiError) -> (u64, String) {
        assert_eq!(e.body["kind"], "Parse", "{:?}", e.body);
        (
            e.body["line"].as_u64().unwrap(),
            e.body["field"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn records_past_the_limit_are_refused_whole() {
        let over = |body: &[u8]| {
            let e = records_up_to(body, 2, "events").err().unwrap();
            assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(e.body["kind"], "TooManyRecords");
            assert_eq!(e.body["limit"], 2);
            assert!(e.body["message"].as_str().unwrap().contains("limit is 2"));
            e.body["got"].as_u64().unwrap()
        };
        assert_eq!(over(b"[{},{},{}]"), 3);
        assert_eq!(over(b"{}\n{}\n\n{}\n{}\n"), 4);
        // Past the limit, lines are counted, not parsed.
        assert_eq!(over(b"{}\n{}\nnot json\n"), 3);
        assert_eq!(records_up_to(b"[{},{}]", 2, "events").unwrap().len(), 2);
        assert_eq!(records_up_to(b"{}\n\n{}\n", 2, "events").unwrap().len(), 2);
        // A bad array is a parse error, past the limit too.
        let e = records_up_to(b"[{},{},{}", 2, "events").err().unwrap();
        assert_eq!(e.body["kind"], "Parse");
        let e = records_up_to(b"[{},{}] x", 2, "events").err().unwrap();
        assert_eq!(e.body["kind"], "Parse");
    }

    #[test]
    fn array_and_lines() {
        let a = br#"[{"user":"u","item":"i","kind":"rating","value":4,"timestamp":7}]"#;
        let rows = event_rows(a, 0).unwrap();
        let Row::Event(e) = &rows[0] else { panic!() };
        assert_eq!((e.kind, e.value, e.timestamp), (EventKind::Rating, 4.0, 7));
        let l = b"{\"user\":1,\"item\":2}\n\n{\"user\":\"u\",\"query\":\"space films\"}\n";
        let rows = event_rows(l, 99).unwrap();
        assert_eq!(rows.len(), 2);
        let Row::Event(e) = &rows[0] else { panic!() };
        assert_eq!(
            (e.user.as_str(), e.item.as_str(), e.timestamp),
            ("1", "2", 99)
        );
        assert!(matches!(&rows[1], Row::Search(s) if s.text == "space films"));
    }

    #[test]
    fn errors_name_line_and_field() {
        let l = b"{\"user\":\"u\",\"item\":\"i\"}\n{\"user\":\"u\",\"item\":\"i\",\"value\":\"x\"}";
        assert_eq!(
            line_field(event_rows(l, 0).err().unwrap()),
            (2, "value".into())
        );
        let a = br#"[{"user":"u","item":"i"},{"item":"i"}]"#;
        assert_eq!(
            line_field(event_rows(a, 0).err().unwrap()),
            (2, "user".into())
        );
        let l = b"{\"user\":\"u\",\"item\":\"i\",\"kind\":\"poke\"}";
        assert_eq!(
            line_field(event_rows(l, 0).err().unwrap()),
            (1, "kind".into())
        );
        assert!(event_rows(b"  ", 0).is_err());
    }

    #[test]
    fn items_and_users() {
        let it =
            item_records(br#"[{"id":"m1","title":"Alien","genres":"Horror|Sci-Fi","year":1979}]"#)
                .unwrap();
        assert_eq!(it[0].genres, vec!["Horror", "Sci-Fi"]);
        assert_eq!(it[0].attrs, vec![("year".to_owned(), "1979".to_owned())]);
        let us = user_records(b"{\"id\":\"u1\",\"attrs\":{\"age\":24}}").unwrap();
        assert_eq!(us[0].attrs, vec![("age".to_owned(), "24".to_owned())]);
    }
}
