use super::*;

fn ev(s: &str) -> Result<Vec<RawEvent>> {
    parse_events("t.tsv", s.as_bytes(), None)
}

/// Asserts a Parse error at `line` in `field` whose message contains `msg`.
#[track_caller]
fn parse_err<T: std::fmt::Debug>(r: Result<T>, want_line: u64, want_field: &str, want_msg: &str) {
    match r {
        Err(Error::Parse {
            file,
            line,
            field,
            msg,
        }) => {
            assert!(!file.is_empty());
            assert_eq!(line, want_line, "line; msg = {msg}");
            assert_eq!(field, want_field, "field; msg = {msg}");
            assert!(
                msg.contains(want_msg),
                "message `{msg}` does not contain `{want_msg}`"
            );
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn formats_detect_and_roundtrip_names() {
    assert_eq!(
        detect("x", b"user_id:token\titem_id:token\n"),
        Format::Atomic
    );
    assert_eq!(detect("x", b"\xEF\xBB\xBF{\"user\":1}"), Format::JsonLines);
    assert_eq!(detect("x", b"\n\nuser\titem\n"), Format::Tsv);
    assert_eq!(detect("x", b"user,item\n"), Format::Csv);
    assert_eq!(detect("a.csv", b"user\n"), Format::Csv);
    assert_eq!(detect("a.jsonl", b""), Format::JsonLines);
    assert_eq!(detect("a.inter", b"x"), Format::Atomic);
    assert_eq!(detect("a", b"x"), Format::Tsv);
    for f in [Format::Tsv, Format::Csv, Format::JsonLines, Format::Atomic] {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
    }
    assert_eq!("JSON".parse::<Format>().unwrap(), Format::JsonLines);
    assert!("xml".parse::<Format>().is_err());
}

#[test]
fn inline_samples_in_every_format() {
    let want = vec![
        RawEvent {
            user: "u1".into(),
            item: "i1".into(),
            kind: EventKind::Rating,
            value: 4.5,
            timestamp: 100,
            group: None,
        },
        RawEvent {
            user: "u2".into(),
            item: "i,2".into(),
            kind: EventKind::Rating,
            value: 3.0,
            timestamp: 200,
            group: None,
        },
    ];
    let tsv = "user\titem\trating\ttimestamp\nu1\ti1\t4.5\t100\nu2\ti,2\t3\t200\n";
    assert_eq!(parse_events("a.tsv", tsv.as_bytes(), None).unwrap(), want);
    let csv = "User_ID,Item_ID,Rating,TS\nu1,i1,4.5,100\nu2,\"i,2\",3,200.0\n";
    assert_eq!(parse_events("a.csv", csv.as_bytes(), None).unwrap(), want);
    let atomic = "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\ti1\t4.5\t100.0\nu2\ti,2\t3\t200\n";
    assert_eq!(
        parse_events("a.inter", atomic.as_bytes(), None).unwrap(),
        want
    );
    let jsonl = "{\"user\":\"u1\",\"item\":\"i1\",\"rating\":4.5,\"timestamp\":100}\n{\"user_id\":\"u2\",\"iid\":\"i,2\",\"rating\":\"3\",\"ts\":200.7}\n";
    assert_eq!(
        parse_events("a.jsonl", jsonl.as_bytes(), None).unwrap(),
        want
    );
    // Forced format.
    assert_eq!(
        parse_events("noext", csv.as_bytes(), Some(Format::Csv)).unwrap(),
        want
    );

    // Items and users in each format.
    let items_tsv = "item_id\ttitle\tgenres\tyear\n1\tToy Story\tAnimation|Comedy\t1995\n";
    let items_json = "{\"item_id\": 1, \"title\": \"Toy Story\", \"genres\": [\"Animation\", \"Comedy\"], \"year\": 1995}\n";
    let items_csv = "id,name,tags,year\n1,Toy Story,\"Animation,Comedy\",1995\n";
    let items_atomic = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n1\tToy Story\t1995\tAnimation Comedy\n";
    let want_item = ItemRecord {
        id: "1".into(),
        title: Some("Toy Story".into()),
        genres: vec!["Animation".into(), "Comedy".into()],
        text: None,
        attrs: vec![("year".into(), "1995".into())],
    };
    for (name, s) in [
        ("i.tsv", items_tsv),
        ("i.jsonl", items_json),
        ("i.csv", items_csv),
    ] {
        assert_eq!(
            parse_items(name, s.as_bytes(), None).unwrap(),
            vec![want_item.clone()],
            "{name}"
        );
    }
    let atomic_item = parse_items("x.item", items_atomic.as_bytes(), None).unwrap();
    assert_eq!(atomic_item[0].genres, want_item.genres);
    assert_eq!(
        atomic_item[0].attrs,
        vec![("release_year".into(), "1995".into())]
    );

    let users = "user_id:token\tage:token\tgender:token\n7\t24\tM\n";
    let u = parse_users("x.user", users.as_bytes(), None).unwrap();
    assert_eq!(u[0].id, "7");
    assert_eq!(
        u[0].attrs,
        vec![("age".into(), "24".into()), ("gender".into(), "M".into())]
    );
    let u = parse_users("u.jsonl", b"{\"uid\": 7, \"age\": 24}\n", None).unwrap();
    assert_eq!(u[0].id, "7");
    assert_eq!(u[0].attrs, vec![("age".into(), "24".into())]);
}

#[test]
fn defaults_kind_group_and_missing_timestamp() {
    // No value column: 1.0, Interaction; no timestamp column: row order.
    let e = ev("item\tuser\n\na\tx\nb\ty\n").unwrap();
    assert_eq!(e[0].user, "x");
    assert_eq!(e[0].item, "a");
    assert_eq!(
        (e[0].value, e[0].kind, e[0].timestamp),
        (1.0, EventKind::Interaction, 0)
    );
    assert_eq!(e[1].timestamp, 1);
    // weight → Interaction; kind column overrides; group column; unknown columns ignored.
    let e = ev("user\titem\tweight\tevent_type\tsession\textra\nx\ta\t2.5\tpurchase\ts1\tz\nx\tb\t1\t\t\tz\n")
        .unwrap();
    assert_eq!((e[0].value, e[0].kind), (2.5, EventKind::Purchase));
    assert_eq!(e[0].group.as_deref(), Some("s1"));
    assert_eq!(
        (e[1].kind, e[1].group.as_deref()),
        (EventKind::Interaction, None)
    );
    // Negative fractional timestamps floor, exponents parse.
    let e = ev("user\titem\ttime\nx\ta\t-1.5\nx\ta\t1.5e3\n").unwrap();
    assert_eq!((e[0].timestamp, e[1].timestamp), (-2, 1500));
}

#[test]
fn bom_crlf_and_blank_lines_are_accepted() {
    let s = "\u{feff}user\titem\trating\r\n\r\nu1\ti1\t5\r\n   \r\nu2\ti2\t4\r\n\r\n";
    let e = ev(s).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[1].user.as_str(), e[1].item.as_str(), e[1].value),
        ("u2", "i2", 4.0)
    );
    let c = "\u{feff}user,item\r\n\r\nu1,i1\r\n\r\nu2,i2\r\n";
    let e = parse_events("a.csv", c.as_bytes(), None).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].user, "u1");
    let j = "\u{feff}{\"user\":1,\"item\":2}\r\n\r\n{\"user\":3,\"item\":4}\r\n";
    let e = parse_events("a.jsonl", j.as_bytes(), None).unwrap();
    assert_eq!((e[1].user.as_str(), e[1].item.as_str()), ("3", "4"));
    // Line numbers count blank lines: the bad row is physical line 4.
    parse_err(
        ev("user\titem\trating\n\nu1\ti1\t5\nu2\ti2\tx\n"),
        4,
        "rating",
        "not a number",
    );
    parse_err(
        parse_events(
            "a.csv",
            b"user,item,rating\r\n\r\nu1,i1,5\r\nu2,i2,x\r\n",
            None,
        ),
        4,
        "rating",
        "not a number",
    );
}

#[test]
fn empty_file_and_header_only() {
    for (name, s) in [
        ("e.tsv", ""),
        ("e.csv", ""),
        ("e.jsonl", ""),
        ("e.tsv", "\u{feff}\n\n"),
    ] {
        match parse_events(name, s.as_bytes(), None) {
            Err(Error::Empty(m)) => assert!(m.contains(name), "{m}"),
            other => panic!("{name}: expected Empty, got {other:?}"),
        }
    }
    for (name, s) in [("h.tsv", "user\titem\n"), ("h.csv", "user,item\r\n\r\n")] {
        match parse_events(name, s.as_bytes(), None) {
            Err(Error::Empty(m)) => assert!(m.contains(name) && m.contains("header"), "{m}"),
            other => panic!("{name}: expected Empty, got {other:?}"),
        }
    }
    assert!(matches!(
        parse_items("h.item", b"item_id:token\n", None),
        Err(Error::Empty(_))
    ));
}

#[test]
fn missing_and_duplicate_columns() {
    parse_err(ev("user\trating\nu\t1\n"), 1, "item", "no item column");
    parse_err(ev("item\trating\ni\t1\n"), 1, "user", "no user column");
    parse_err(
        parse_events("a.csv", b"uid,item,uid\n1,2,3\n", None),
        1,
        "uid",
        "duplicate column",
    );
    parse_err(
        ev("user\titem\tUSER\nx\ty\tz\n"),
        1,
        "USER",
        "duplicate column",
    );
    parse_err(
        ev("user\tuser_id\titem\nx\ty\tz\n"),
        1,
        "user_id",
        "both a `user` column",
    );
    parse_err(
        parse_items("i.tsv", b"title\nx\n", None),
        1,
        "item",
        "no item column",
    );
    parse_err(
        parse_users("u.tsv", b"age\n3\n", None),
        1,
        "user",
        "no user column",
    );
}

#[test]
fn bad_rows() {
    parse_err(
        ev("user\titem\trating\nu\ti\n"),
        2,
        "rating",
        "too few fields",
    );
    parse_err(
        ev("user\titem\trating\nu\ti\t1\t2\n"),
        2,
        "(row)",
        "too many fields",
    );
    parse_err(
        parse_events("a.csv", b"user,item\n1,2\n1\n", None),
        3,
        "item",
        "too few",
    );
    parse_err(ev("user\titem\n\ti\n"), 2, "user", "empty id");
    parse_err(ev("user\titem\nu\t  \n"), 2, "item", "empty id");
    parse_err(ev("user\titem\trating\nu\ti\tNaN\n"), 2, "rating", "NaN");
    parse_err(
        ev("user\titem\trating\nu\ti\tinf\n"),
        2,
        "rating",
        "infinite",
    );
    parse_err(
        ev("user\titem\tweight\nu\ti\t-infinity\n"),
        2,
        "weight",
        "infinite",
    );
    parse_err(
        ev("user\titem\tweight\nu\ti\t1e300\n"),
        2,
        "weight",
        "out of range",
    );
    parse_err(
        ev("user\titem\tweight\nu\ti\tfive\n"),
        2,
        "weight",
        "not a number",
    );
    parse_err(
        ev("user\titem\tweight\nu\ti\t\n"),
        2,
        "weight",
        "empty value",
    );
    parse_err(
        ev("user\titem\ttimestamp\nu\ti\tyesterday\n"),
        2,
        "timestamp",
        "not a timestamp",
    );
    parse_err(
        ev("user\titem\ttimestamp\nu\ti\tnan\n"),
        2,
        "timestamp",
        "not a timestamp",
    );
    parse_err(ev("user\titem\tts\nu\ti\t\n"), 2, "ts", "empty timestamp");
    parse_err(
        ev("user\titem\tkind\nu\ti\tlike\n"),
        2,
        "kind",
        "unknown event kind `like`",
    );
    // Atomic integer-valued float timestamps.
    let e = parse_events(
        "a.inter",
        b"user_id:token\titem_id:token\ttimestamp:float\n1\t2\t881250949.0\n",
        None,
    )
    .unwrap();
    assert_eq!(e[0].timestamp, 881250949);
}

#[test]
fn invalid_utf8_names_the_line() {
    parse_err(
        parse_events("a.tsv", b"user\titem\nu1\ti1\nu\xff\ti\n", None),
        3,
        "user",
        "invalid UTF-8",
    );
    parse_err(
        parse_events("a.csv", b"user,item\nu1,i\xc3\n", None),
        2,
        "item",
        "invalid UTF-8",
    );
    parse_err(
        parse_events("a.tsv", b"us\xffer\titem\nu\ti\n", None),
        1,
        "(header)",
        "invalid UTF-8",
    );
    parse_err(
        parse_events(
            "a.jsonl",
            b"{\"user\":1,\"item\":2}\n{\"user\":\"\xff\",\"item\":2}\n",
            None,
        ),
        2,
        "(line)",
        "invalid UTF-8",
    );
    parse_err(
        parse_items("a.tsv", b"item\ttitle\n1\tT\xffx\n", None),
        2,
        "title",
        "invalid UTF-8",
    );
}

#[test]
fn bad_json() {
    let j = |s: &str| parse_events("a.jsonl", s.as_bytes(), Some(Format::JsonLines));
    parse_err(
        j("{\"user\":1,\"item\":2}\n{\"user\":1,\n"),
        2,
        "(json)",
        "invalid JSON",
    );
    parse_err(
        j("{\"user\":1,\"item\":2}\n[1,2]\n"),
        2,
        "(json)",
        "found an array",
    );
    parse_err(
        j("{\"user\":1,\"item\":2}\n\"x\"\n"),
        2,
        "(json)",
        "found a string",
    );
    parse_err(j("{\"user\":1}\n"), 1, "item", "missing item key");
    parse_err(j("{\"user\":\"\",\"item\":2}\n"), 1, "user", "empty id");
    parse_err(
        j("{\"user\":[1],\"item\":2}\n"),
        1,
        "user",
        "string or number id",
    );
    parse_err(
        j("{\"user\":1,\"item\":2,\"rating\":\"NaN\"}\n"),
        1,
        "rating",
        "NaN",
    );
    parse_err(
        j("{\"user\":1,\"item\":2,\"weight\":true}\n"),
        1,
        "weight",
        "expected a number",
    );
    parse_err(
        j("{\"user\":1,\"item\":2,\"ts\":\"noon\"}\n"),
        1,
        "ts",
        "not a timestamp",
    );
    parse_err(
        j("{\"user\":1,\"item\":2,\"ts\":[1]}\n"),
        1,
        "ts",
        "expected a timestamp",
    );
    parse_err(
        j("{\"user\":1,\"item\":2,\"kind\":\"like\"}\n"),
        1,
        "kind",
        "unknown event kind",
    );
    parse_err(
        j("{\"user\":1,\"uid\":3,\"item\":2}\n"),
        1,
        "user",
        "both a `user` key",
    );
    // Float timestamps floor; missing timestamp = record index; kind + value.
    let e = j("{\"user\":1,\"item\":2,\"timestamp\":881250949.9,\"kind\":\"click\",\"value\":2}\n{\"user\":1,\"item\":3}\n").unwrap();
    assert_eq!(
        (e[0].timestamp, e[0].kind, e[0].value),
        (881250949, EventKind::Click, 2.0)
    );
    assert_eq!((e[1].timestamp, e[1].kind), (1, EventKind::Interaction));
}

#[test]
fn genres_are_split_by_format() {
    let tsv = parse_items("i.tsv", b"item\tgenres\n1\tFilm Noir|Drama, War\n", None).unwrap();
    assert_eq!(tsv[0].genres, vec!["Film Noir", "Drama", "War"]);
    let atomic = parse_items(
        "i.item",
        b"item_id:token\tclass:token_seq\n1\tAnimation Children's  Comedy\n",
        None,
    )
    .unwrap();
    assert_eq!(atomic[0].genres, vec!["Animation", "Children's", "Comedy"]);
    let json = parse_items(
        "i.jsonl",
        b"{\"id\":\"a\",\"genre\":\"X|Y\",\"overview\":\"t\"}\n",
        None,
    )
    .unwrap();
    assert_eq!(json[0].genres, vec!["X", "Y"]);
    assert_eq!(json[0].text.as_deref(), Some("t"));
}

#[test]
fn read_from_path_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ev.csv");
    std::fs::write(&p, "user,item\n1,2\n").unwrap();
    assert_eq!(read_events(&p, None).unwrap().len(), 1);
    match read_events(dir.path().join("nope.tsv"), None) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("nope.tsv")),
        other => panic!("expected Io, got {other:?}"),
    }
    let p = dir.path().join("bad.tsv");
    std::fs::write(&p, "user\titem\n1\t\n").unwrap();
    let msg = read_events(&p, None).unwrap_err().to_string();
    assert!(msg.contains("bad.tsv:2: field `item`: empty id"), "{msg}");
}

#[test]
#[ignore = "needs ML-100K in $RECDB_DATA (default ../shared/data)"]
fn ml100k_files_parse() {
    // Where CI keeps the data sets: $RECDB_DATA, else ../shared/data beside the crate.
    let dir = std::env::var_os("RECDB_DATA")
        .map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
            std::path::PathBuf::from,
        )
        .join("ml-100k");
    let file = |n: &str| {
        let p = dir.join(n);
        assert!(
            p.exists(),
            "ML-100K data missing: {} not found (expected the atomic files in $RECDB_DATA/ml-100k)",
            p.display()
        );
        p
    };
    let events = read_events(file("ml-100k.inter"), None).unwrap();
    assert_eq!(events.len(), 100_000);
    assert!(events
        .iter()
        .all(|e| e.kind == EventKind::Rating && (1.0..=5.0).contains(&e.value)));
    assert_eq!(
        (
            events[0].user.as_str(),
            events[0].item.as_str(),
            events[0].timestamp
        ),
        ("196", "242", 881250949)
    );
    let items = read_items(file("ml-100k.item"), None).unwrap();
    assert_eq!(items.len(), 1682);
    assert_eq!(items[0].title.as_deref(), Some("Toy Story"));
    assert_eq!(items[0].genres, vec!["Animation", "Children's", "Comedy"]);
    assert!(items[0]
        .attrs
        .iter()
        .any(|(k, v)| k == "release_year" && v == "1995"));
    let users = read_users(file("ml-100k.user"), None).unwrap();
    assert_eq!(users.len(), 943);
    assert!(users.iter().all(|u| u.attrs.len() == 4));
    let names: Vec<&str> = users[0].attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["age", "gender", "occupation", "zip_code"]);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = RawEvent> {
        (
            "[a-zA-Z0-9_]{1,8}",
            // Surrounding spaces are trimmed by the readers, so ids here have none.
            "[a-zA-Z0-9]([a-zA-Z0-9_,\"' ]{0,5}[a-zA-Z0-9])?",
            0u32..=50,
            -1_000_000_000i64..=4_000_000_000,
            prop::option::of("s[0-9]{1,3}"),
        )
            .prop_map(|(user, item, v, timestamp, group)| RawEvent {
                user,
                item,
                kind: EventKind::Rating,
                value: v as f32 / 10.0,
                timestamp,
                group,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn csv_and_jsonl_round_trip(events in prop::collection::vec(event(), 1..40)) {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["user", "item", "rating", "timestamp", "session"]).unwrap();
            let mut jsonl = String::new();
            for e in &events {
                let (v, t) = (e.value.to_string(), e.timestamp.to_string());
                let g = e.group.clone().unwrap_or_default();
                w.write_record([e.user.as_str(), &e.item, &v, &t, &g]).unwrap();
                let mut obj = serde_json::json!({
                    "user": e.user, "item": e.item, "rating": e.value, "timestamp": e.timestamp,
                });
                if let Some(g) = &e.group {
                    obj["session"] = serde_json::Value::from(g.clone());
                }
                jsonl.push_str(&obj.to_string());
                jsonl.push('\n');
            }
            let csv_bytes = w.into_inner().unwrap();
            prop_assert_eq!(&parse_events("p.csv", &csv_bytes, None).unwrap(), &events);
            prop_assert_eq!(&parse_events("p.jsonl", jsonl.as_bytes(), None).unwrap(), &events);
            // TSV: ids without tabs are written as they are.
            let mut tsv = String::from("user\titem\trating\ttimestamp\tsession\n");
            for e in &events {
                tsv.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    e.user, e.item, e.value, e.timestamp, e.group.as_deref().unwrap_or("")
                ));
            }
            prop_assert_eq!(&parse_events("p.tsv", tsv.as_bytes(), None).unwrap(), &events);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            header in prop::sample::select(vec![
                "", "user\titem\trating\ttimestamp\n", "user,item,weight,kind,session\n",
                "item_id:token\tclass:token_seq\ttitle:token_seq\n", "{\"user\":1,\"item\":2}\n",
            ]),
            body in prop::collection::vec(
                prop::sample::select(b"ab1.9\t,\n\r\"{}:[]- e\xff\xc3".to_vec()), 0..120),
        ) {
            let mut bytes = header.as_bytes().to_vec();
            bytes.extend(body);
            for f in [None, Some(Format::Tsv), Some(Format::Csv), Some(Format::JsonLines), Some(Format::Atomic)] {
                let _ = parse_events("fuzz", &bytes, f);
                let _ = parse_items("fuzz", &bytes, f);
                let _ = parse_users("fuzz", &bytes, f);
            }
        }
    }
}

#[test]
fn duplicate_json_keys_are_named() {
    let j = |s: &str| parse_events("a.jsonl", s.as_bytes(), Some(Format::JsonLines));
    parse_err(
        j("{\"user\":1,\"item\":2}\n{\"user\":1,\"item\":2,\"user\":3}\n"),
        2,
        "user",
        "duplicate key `user`",
    );
    parse_err(
        parse_items(
            "i.jsonl",
            b"{\"id\":\"a\",\"year\":1,\"year\":2}\n",
            Some(Format::JsonLines),
        ),
        1,
        "year",
        "duplicate key `year`",
    );
    parse_err(
        parse_users(
            "u.jsonl",
            b"{\"id\":\"a\",\"id\":\"b\"}\n",
            Some(Format::JsonLines),
        ),
        1,
        "id",
        "duplicate key `id`",
    );
    // Keys that differ only in case are distinct keys (a role conflict, reported as such).
    assert!(j("{\"user\":1,\"item\":2,\"x\":1,\"X\":2}\n").is_ok());
}

/// A line past `MAX_LINE` is rejected by its length, whatever the format: a line of
/// tabs twice the cap gives the line error, not a field split of millions of fields.
#[test]
fn lines_past_the_cap_are_rejected_with_file_and_line() {
    let tabs = "\t".repeat(2 * MAX_LINE);
    for format in [Format::Tsv, Format::Atomic, Format::Csv, Format::JsonLines] {
        let text = format!("{{\"user\":1,\"item\":2}}\n{tabs}\n");
        let r = parse_events("big", text.as_bytes(), Some(format));
        parse_err(r, 2, "(line)", "line longer than 1048576 bytes");
        let text = format!("id\ttitle\n{tabs}\n");
        parse_err(
            parse_items("big", text.as_bytes(), Some(format)),
            2,
            "(line)",
            "longer",
        );
        parse_err(
            parse_users("big", text.as_bytes(), Some(format)),
            2,
            "(line)",
            "longer",
        );
    }
    // The cap is exact: a line of MAX_LINE bytes is read, one more byte is not.
    let line = |n: usize| format!("user\titem\nu1\t{}\n", "x".repeat(n - 3));
    assert!(ev(&line(MAX_LINE)).is_ok());
    parse_err(ev(&line(MAX_LINE + 1)), 2, "(line)", "longer");
    parse_err(
        parse_tsv_vectors("v.tsv", line(MAX_LINE + 1).as_bytes()),
        2,
        "(line)",
        "longer",
    );
    parse_err(
        parse_ids("v.ids", line(MAX_LINE + 1).as_bytes(), 2),
        2,
        "(line)",
        "longer",
    );
}

#[cfg(unix)]
#[test]
fn endless_inputs_end_with_an_error() {
    let e = read_events("/dev/zero", None).unwrap_err().to_string();
    assert!(e.starts_with("/dev/zero:1: field `(line)`"), "{e}");
    let e = read_items("/dev/zero", Some(Format::Csv))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/dev/zero:1: field `(line)`"), "{e}");
}
