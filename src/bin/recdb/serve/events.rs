//! Request bodies of the ingest endpoints: a JSON array of objects or JSON lines (one
//! object a line), at most [`MAX_RECORDS_PER_REQUEST`] of them. Each object is read by
//! the library's [`recdb::parse_json_record`] as a JSON-lines file's row is (with
//! [`JsonSource::Request`]: the default timestamp is the server's `now`, `group` and an
//! object `attrs` are read too). A bad record is `Error::Parse` naming its line (for an
//! array: its element, counted from 1) and field, a body with too many is 413
//! `TooManyRecords`, and nothing is written.

use axum::http::StatusCode;
use serde::de::DeserializeSeed;

/// One ingest record: an interaction, or a search (`query` and no item).
pub use recdb::EventRow as Row;
use recdb::{parse_json_record, Error, ItemRecord, JsonObject, JsonRecord, JsonSource, UserRecord};

use super::errors::ApiError;
use super::limits::{Capped, CappedSeed};
use super::MAX_RECORDS_PER_REQUEST;

const FILE: &str = "request body";

/// The records of a request: parsed, or an error to answer.
type Records<T> = std::result::Result<Vec<T>, ApiError>;

fn parse_err(line: u64, msg: impl Into<String>) -> Error {
    Error::Parse {
        file: FILE.into(),
        line,
        field: String::new(),
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

/// The objects of a body with their line numbers, at most
/// [`MAX_RECORDS_PER_REQUEST`] (`noun` names them in the error).
fn objects(body: &[u8], noun: &str) -> Records<(u64, JsonObject)> {
    objects_up_to(body, MAX_RECORDS_PER_REQUEST, noun)
}

/// [`objects`] with the limit `limit`: past it the rest is counted, never parsed into
/// objects, so a request's memory is bounded by the limit, not by its length.
fn objects_up_to(body: &[u8], limit: usize, noun: &str) -> Records<(u64, JsonObject)> {
    let text = std::str::from_utf8(body).map_err(|e| parse_err(1, format!("not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    let mut out = Vec::new();
    if trimmed.starts_with('[') {
        let bad =
            |e: serde_json::Error| parse_err(e.line() as u64, format!("not a JSON array: {e}"));
        let mut d = serde_json::Deserializer::from_str(text);
        let objects = CappedSeed::<JsonObject>::new(limit)
            .deserialize(&mut d)
            .map_err(bad)?;
        d.end().map_err(bad)?;
        match objects {
            Capped::List(v) => out.extend((1..).zip(v)),
            Capped::Over(n) => return Err(too_many(n, limit, noun)),
        }
    } else {
        let mut lines = (1..).zip(text.lines());
        for (line_no, line) in lines.by_ref() {
            if line.trim().is_empty() {
                continue;
            }
            if out.len() == limit {
                let rest = lines.filter(|(_, l)| !l.trim().is_empty()).count();
                return Err(too_many(limit + 1 + rest, limit, noun));
            }
            out.push((line_no, JsonObject::parse(FILE, line_no, line)?));
        }
    }
    if out.is_empty() {
        return Err(Error::Empty("the request body has no records".into()).into());
    }
    Ok(out)
}

/// The records of a body: its objects read by [`parse_json_record`] from `source`.
fn records<T: JsonRecord>(body: &[u8], noun: &str, source: JsonSource) -> Records<T> {
    let mut out = Vec::new();
    for (line, o) in objects(body, noun)? {
        out.push(parse_json_record(FILE, line, &o, source)?);
    }
    Ok(out)
}

/// Events: an interaction (`user`, `item`, ...) or a search (`query` and no item); an
/// event without a timestamp gets `now`.
pub fn event_rows(body: &[u8], now: i64) -> Records<Row> {
    records(body, "events", JsonSource::Request { now })
}

/// Items: `id`, `title`, `genres` (an array, or `a|b`), `text`; any other field (or
/// the object `attrs`) is an attribute.
pub fn item_records(body: &[u8]) -> Records<ItemRecord> {
    records(body, "items", JsonSource::Request { now: 0 })
}

/// Users: `id`; any other field (or the object `attrs`) is an attribute.
pub fn user_records(body: &[u8]) -> Records<UserRecord> {
    records(body, "users", JsonSource::Request { now: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use recdb::EventKind;

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
            let e = objects_up_to(body, 2, "events").err().unwrap();
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
        assert_eq!(objects_up_to(b"[{},{}]", 2, "events").unwrap().len(), 2);
        assert_eq!(objects_up_to(b"{}\n\n{}\n", 2, "events").unwrap().len(), 2);
        // A bad array is a parse error, past the limit too.
        let e = objects_up_to(b"[{},{},{}", 2, "events").err().unwrap();
        assert_eq!(e.body["kind"], "Parse");
        let e = objects_up_to(b"[{},{}] x", 2, "events").err().unwrap();
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

    fn event(body: &[u8]) -> recdb::RawEvent {
        match event_rows(body, 99).unwrap().remove(0) {
            Row::Event(e) => e,
            Row::Search(_) => panic!("a search"),
        }
    }

    fn error(r: Records<impl Sized>) -> (u64, String, String) {
        let e = r.err().unwrap();
        let msg = e.body["msg"].as_str().unwrap_or_default().to_owned();
        let (line, field) = line_field(e);
        (line, field, msg)
    }

    #[test]
    fn requests_keep_now_group_and_attrs() {
        // Without a timestamp an event gets the server's `now` (a file row: its index).
        assert_eq!(event(br#"{"user":"u","item":"i"}"#).timestamp, 99);
        assert_eq!(
            event(br#"{"user":"u","item":"i","timestamp":null}"#).timestamp,
            99
        );
        let rows = event_rows(br#"[{"user":"u","query":"space films"}]"#, 99).unwrap();
        assert!(matches!(&rows[0], Row::Search(s) if s.timestamp == 99));
        // `group` is the group key in a request, as `session` is.
        let e = event(br#"{"user":"u","item":"i","group":"g1"}"#);
        assert_eq!(e.group.as_deref(), Some("g1"));
        let e = event(br#"{"user":"u","item":"i","session":"s1"}"#);
        assert_eq!(e.group.as_deref(), Some("s1"));
        let (line, field, _) = error(event_rows(
            b"{\"user\":\"u\",\"item\":\"i\",\"group\":\"g\",\"session\":\"s\"}",
            0,
        ));
        assert_eq!((line, field.as_str()), (1, "session"));
        // An object `attrs` holds attributes, its values read as other attributes'.
        let us = user_records(
            br#"[{"id":"u1","city":" Oslo ","attrs":{"age":24,"vip":true,"tags":["a"],"gone":null}}]"#,
        )
        .unwrap();
        let attrs: Vec<(&str, &str)> = us[0]
            .attrs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            attrs,
            [
                ("age", "24"),
                ("tags", "[\"a\"]"),
                ("vip", "true"),
                ("city", "Oslo")
            ]
        );
        assert!(user_records(br#"{"id":"u1","attrs":null}"#).unwrap()[0]
            .attrs
            .is_empty());
        let (_, field, msg) = error(item_records(br#"{"id":"m","attrs":[1]}"#));
        assert_eq!(field, "attrs");
        assert!(msg.contains("expected an object of attributes"), "{msg}");
    }

    #[test]
    fn records_are_read_as_the_library_reads_json_lines() {
        // Key aliases, any case: `rating` is the value and makes the kind `rating`.
        let e = event(br#"{"User_Id":"u","item_id":7,"rating":"4.5","ts":1700000000.9}"#);
        assert_eq!(
            (
                e.user.as_str(),
                e.item.as_str(),
                e.kind,
                e.value,
                e.timestamp
            ),
            ("u", "7", EventKind::Rating, 4.5, 1700000000)
        );
        let e = event(br#"{"user":" u ","item":"i","type":" View ","timestamp":"17"}"#);
        assert_eq!(
            (e.user.as_str(), e.kind, e.timestamp),
            ("u", EventKind::View, 17)
        );
        let it = item_records(
            br#"{"item_id":"m1","name":"Alien","tags":"Horror,Sci-Fi","overview":" x ","year":1979}"#,
        )
        .unwrap();
        assert_eq!(it[0].id, "m1");
        assert_eq!(it[0].title.as_deref(), Some("Alien"));
        assert_eq!(it[0].genres, ["Horror", "Sci-Fi"]);
        assert_eq!(it[0].text.as_deref(), Some("x"));
        assert_eq!(it[0].attrs, [("year".to_owned(), "1979".to_owned())]);
        assert_eq!(user_records(br#"{"uid":5}"#).unwrap()[0].id, "5");
        // An empty item with a query is a search.
        let rows = event_rows(br#"{"user":"u","item":"","query":"space films"}"#, 0).unwrap();
        assert!(matches!(&rows[0], Row::Search(_)));
    }

    #[test]
    fn bad_records_are_the_library_errors() {
        let lines = |body: &[u8]| error(event_rows(body, 0));
        let (line, field, msg) = lines(b"\n{\"user\":\"u\",\"item\":\"i\",\"user\":\"v\"}");
        assert_eq!((line, field.as_str()), (2, "user"));
        assert!(msg.contains("duplicate key"), "{msg}");
        // In an array too: a repeated key is not silently the last value.
        let (line, field, _) = error(event_rows(
            br#"[{"user":"u","item":"i"},{"user":"u","item":"i","item":"j"}]"#,
            0,
        ));
        assert_eq!((line, field.as_str()), (2, "item"));
        assert_eq!(lines(b"{\"user\":").1, "(json)");
        assert_eq!(
            error(event_rows(b"[{\"user\":\"u\",\"item\":\"i\"}, 3]", 0)),
            (
                2,
                "(json)".into(),
                "expected a JSON object, found a number".into()
            )
        );
        let (_, field, msg) = lines(br#"{"user":"u","item":"i","value":null}"#);
        assert_eq!(field, "value");
        assert!(msg.contains("found null"), "{msg}");
        assert_eq!(lines(br#"{"user":"","item":"i"}"#).1, "user");
        assert_eq!(
            lines(br#"{"user":"u","item":"i","user_id":"v"}"#).1,
            "user_id"
        );
        assert_eq!(lines(br#"{"user":"u","query":"!!"}"#).1, "query");
        assert_eq!(
            lines(br#"{"user":"u","query":"space","kind":"view"}"#).1,
            "kind"
        );
        assert_eq!(
            lines(br#"{"user":"u","item":"i","kind":"search"}"#).1,
            "kind"
        );
        let (_, field, msg) = lines(br#"{"user":"u","item":"i","value":"high"}"#);
        assert_eq!(
            (field.as_str(), msg.as_str()),
            ("value", "`high` is not a number")
        );
        assert_eq!(error(item_records(br#"{"title":"x"}"#)).1, "item");
        assert_eq!(error(user_records(br#"{"age":3}"#)).1, "user");
    }
}
