//! `dump`: writes the dump format (see `crate::backup`) from the database: ids,
//! attributes, the log in arrival order, tables as queries see them, policies.

use std::io::Write;

use super::Db;
use crate::backup::{write_line, DumpReport, DumpedJob, Line, FORMAT};
use crate::jobs::record as job_store;
use crate::storage::attrs;
use crate::storage::tables;
use crate::{Error, Result};

/// The whole log as one read (not a lookup per user or per event), with the names its
/// dense ids stand for.
pub(crate) struct LoggedEvents {
    pub users: Vec<String>,
    pub items: Vec<String>,
    pub groups: Vec<String>,
    /// Grouped by user, in (timestamp, seq) order within a user.
    pub events: Vec<crate::event::Event>,
    /// Grouped by user, in (timestamp, seq) order within a user.
    pub searches: Vec<crate::event::SearchEvent>,
    /// The search vocabulary, by token id.
    pub tokens: Vec<String>,
}

impl Db {
    /// Every event of the log and the names of users, items and groups, read at once
    /// under one state lock (so ids and events agree).
    pub(crate) fn logged_events(&self) -> Result<LoggedEvents> {
        let b = self.backend();
        let st = self.state()?;
        Ok(LoggedEvents {
            events: st.log.snapshot(b, u64::MAX)?,
            searches: st.searches.snapshot(b, u64::MAX)?,
            tokens: st.tokens.all_names(b)?,
            users: st.users.all_names(b)?,
            items: st.items.all_names(b)?,
            groups: st.groups.all_names(b)?,
        })
    }

    /// Write a portable copy of the database to `w`.
    // why: `users` and `items` are the id maps, whose dense ids are u32.
    #[allow(clippy::cast_possible_truncation)]
    pub fn dump(&self, w: &mut dyn Write) -> Result<DumpReport> {
        let b = self.backend();
        let mut buf = Vec::new();
        write_line(w, &mut buf, &Line::RecdbDump { format: FORMAT })?;
        let LoggedEvents {
            users,
            items,
            groups,
            mut events,
            mut searches,
            tokens,
        } = self.logged_events()?;
        for (i, id) in users.iter().enumerate() {
            let attrs = attrs::get_user(b, i as u32, id)?
                .map(|u| u.attrs)
                .unwrap_or_default();
            write_line(
                w,
                &mut buf,
                &Line::User {
                    id: id.clone(),
                    attrs,
                },
            )?;
        }
        for (i, id) in items.iter().enumerate() {
            let it = attrs::get_item(b, i as u32, id)?.unwrap_or_default();
            write_line(
                w,
                &mut buf,
                &Line::Item {
                    id: id.clone(),
                    title: it.title,
                    genres: it.genres,
                    text: it.text,
                    attrs: it.attrs,
                },
            )?;
        }
        let docs = crate::storage::docs::all(b)?;
        for (tag, text) in &docs {
            write_line(
                w,
                &mut buf,
                &Line::Doc {
                    tag: tag.clone(),
                    text: text.clone(),
                },
            )?;
        }
        events.sort_unstable_by_key(|e| e.seq);
        searches.sort_unstable_by_key(|s| s.seq);
        // Events and searches merged back into arrival order.
        let mut next_search = searches.iter().peekable();
        for e in &events {
            while let Some(s) = next_search.next_if(|s| s.seq < e.seq) {
                write_search(w, &mut buf, s, &users, &tokens)?;
            }
            let name = |v: &[String], i: u32| {
                v.get(i as usize).cloned().ok_or_else(|| {
                    Error::corrupted(format!("event {} (id {i} out of range)", e.seq))
                })
            };
            write_line(
                w,
                &mut buf,
                &Line::Event {
                    user: name(&users, e.user)?,
                    item: name(&items, e.item)?,
                    kind: e.kind.as_str().into(),
                    value: e.value,
                    ts: e.timestamp,
                    group: if e.group == u32::MAX {
                        None
                    } else {
                        Some(name(&groups, e.group)?)
                    },
                },
            )?;
        }
        for s in next_search {
            write_search(w, &mut buf, s, &users, &tokens)?;
        }
        let catalog = tables::load_catalog(b)?;
        for entry in &catalog {
            let table = self.served_rows(&entry.name)?;
            let view = &table.view;
            let job = match entry.current() {
                Some(v) => job_store::get(b, v.job)?.map(|r| DumpedJob {
                    model: r.model,
                    params: r.params,
                    seed: r.seed,
                }),
                None => None,
            };
            let keeps = table.keeps_positions();
            write_line(
                w,
                &mut buf,
                &Line::Table {
                    name: entry.name.clone(),
                    space: view.space().as_str().into(),
                    dim: view.dim(),
                    rows: if keeps {
                        table.rows()
                    } else {
                        table.live_rows()
                    },
                    offset: view.offset(),
                    row_ids: Vec::new(),
                    job,
                },
            )?;
            for r in 0..table.rows() {
                let v = match table.row(r) {
                    Some(v) => v,
                    None if keeps => Vec::new(),
                    None => continue,
                };
                let id = (!keeps).then(|| self.served_row_id(&table, r));
                write_line(w, &mut buf, &Line::Row { id, v })?;
            }
        }
        for p in job_store::policies(b)? {
            write_line(
                w,
                &mut buf,
                &Line::Policy {
                    model: p.model,
                    params: p.params,
                    every: p.every_events,
                },
            )?;
        }
        let report = DumpReport {
            users: users.len() as u64,
            items: items.len() as u64,
            events: events.len() as u64,
            tables: catalog.len() as u64,
            docs: docs.len() as u64,
            searches: searches.len() as u64,
        };
        write_line(
            w,
            &mut buf,
            &Line::End {
                users: report.users,
                items: report.items,
                events: report.events,
                tables: report.tables,
                docs: report.docs,
                searches: report.searches,
            },
        )?;
        w.flush().map_err(|e| Error::io("<dump>", e))?;
        Ok(report)
    }
}

/// One search line: its user's name and its words (what re-tokenizes to the same tokens).
fn write_search(
    w: &mut dyn Write,
    buf: &mut Vec<u8>,
    s: &crate::event::SearchEvent,
    users: &[String],
    tokens: &[String],
) -> Result<()> {
    let bad = |what: &str, i: u32| {
        Error::corrupted(format!("search {} ({what} {i} out of range)", s.seq))
    };
    let user = users
        .get(s.user as usize)
        .ok_or_else(|| bad("user", s.user))?;
    let words = s
        .tokens
        .iter()
        .map(|&t| {
            tokens
                .get(t as usize)
                .map(String::as_str)
                .ok_or_else(|| bad("token", t))
        })
        .collect::<Result<Vec<_>>>()?;
    write_line(
        w,
        buf,
        &Line::Search {
            user: user.clone(),
            q: words.join(" "),
            ts: s.timestamp,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tables::RowSpace;
    use crate::{EventKind, ItemRecord, Params, QueryOptions};

    fn sample() -> Db {
        let db = Db::temporary().unwrap();
        let mut b = db.batch();
        for u in 0..80 {
            for i in 0..6 {
                let group = format!("s{}", u % 3);
                b.push_in_group(
                    &format!("u{u}"),
                    &format!("i{}", (u * 7 + i) % 23),
                    EventKind::Rating,
                    1.0 + (i % 5) as f32,
                    (100 - i) as i64,
                    Some(&group),
                )
                .unwrap();
                if u % 4 == 0 && i == 2 {
                    let part = ["one", "two"][u % 8 / 4];
                    b.push_search(&format!("u{u}"), &format!("Space opera, part {part}"), 97)
                        .unwrap();
                }
            }
        }
        b.commit().unwrap();
        db.put_items(&[ItemRecord {
            id: "i3".into(),
            title: Some("Three".into()),
            genres: vec!["g".into()],
            ..Default::default()
        }])
        .unwrap();
        db.train(
            "als",
            &Params::new().set("factors", 4).set("iterations", 2),
            &Default::default(),
        )
        .unwrap();
        db.set_retrain_policy("popular", &Params::new(), 1000)
            .unwrap();
        db
    }

    /// A fresh database restored from `dump`, checked to dump it again byte for byte.
    fn restored(dump: &[u8]) -> Db {
        let b = Db::temporary().unwrap();
        b.restore(&mut &dump[..], "dump.jsonl").unwrap();
        let mut again = Vec::new();
        b.dump(&mut again).unwrap();
        assert_eq!(
            String::from_utf8_lossy(dump),
            String::from_utf8_lossy(&again)
        );
        b
    }

    #[test]
    fn dump_restore_dump_is_identical_and_answers_match() {
        let a = sample();
        let mut first = Vec::new();
        let report = a.dump(&mut first).unwrap();
        assert_eq!(
            report,
            DumpReport {
                users: 80,
                items: 23,
                events: 480,
                tables: 2,
                docs: 0,
                searches: 20,
            }
        );
        let b = restored(&first);
        let q = QueryOptions::model("als").k(5);
        assert_eq!(
            a.recommend("u7", &q).unwrap(),
            b.recommend("u7", &q).unwrap()
        );
        assert_eq!(a.history("u9").unwrap(), b.history("u9").unwrap());
        assert_eq!(a.searches("u4").unwrap(), b.searches("u4").unwrap());
        assert_eq!(b.searches("u4").unwrap()[0].text, "space opera part two");
        assert_eq!(b.stats().unwrap().searches, 20);
        b.check().unwrap();
    }

    #[test]
    fn truncated_or_foreign_dumps_change_nothing() {
        let mut full = Vec::new();
        sample().dump(&mut full).unwrap();
        let text = String::from_utf8(full).unwrap();
        let cut: String = text
            .lines()
            .take(text.lines().count() - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        let b = Db::temporary().unwrap();
        assert!(b.restore(&mut cut.as_bytes(), "cut.jsonl").is_err());
        assert!(b
            .restore(&mut "{\"t\":\"user\",\"id\":\"x\"}\n".as_bytes(), "x.jsonl")
            .is_err());
        assert!(b.restore(&mut "not json\n".as_bytes(), "x.jsonl").is_err());
        let s = b.stats().unwrap();
        assert_eq!((s.users, s.items, s.events, s.tables.len()), (0, 0, 0, 0));
        // And a database that is not empty is refused.
        assert!(sample()
            .restore(&mut text.as_bytes(), "full.jsonl")
            .is_err());
    }

    /// Every table written out as TSV (`export table`), by name.
    fn exports(db: &Db) -> Vec<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        db.tables()
            .unwrap()
            .into_iter()
            .map(|t| {
                let p = dir.path().join(&t.name);
                db.export_table(&t.name, crate::TableFormat::Tsv, &p)
                    .unwrap();
                (t.name, std::fs::read_to_string(p).unwrap())
            })
            .collect()
    }

    #[test]
    fn dump_and_export_hold_rows_put_and_deleted_since_publish() {
        let a = sample();
        let rows: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let ids = ["a", "b", "c", "d"].map(String::from).to_vec();
        a.put_table("emb", RowSpace::Other, 3, &rows, ids).unwrap();
        a.upsert_rows(
            "emb",
            &[
                ("a".into(), vec![9.0, 9.0, 9.0]),
                ("z".into(), vec![1.0, 2.0, 3.0]),
            ],
        )
        .unwrap();
        a.delete_rows("emb", &["b".into()]).unwrap();
        a.upsert_rows("als.items", &[("i3".into(), vec![5.0, -1.0, 2.0, 0.5])])
            .unwrap();
        a.delete_rows("als.items", &["i5".into()]).unwrap();
        a.delete_rows("als.users", &["u2".into()]).unwrap();

        let emb = exports(&a).into_iter().find(|(n, _)| n == "emb").unwrap().1;
        assert_eq!(emb, "a\t9\t9\t9\nc\t6\t7\t8\nd\t9\t10\t11\nz\t1\t2\t3\n");
        let items = &exports(&a)
            .into_iter()
            .find(|(n, _)| n == "als.items")
            .unwrap()
            .1;
        assert!(items.contains("i3\t5\t-1\t2\t0.5\n"), "{items}");
        assert!(!items.contains("i5\t"), "{items}");

        let mut first = Vec::new();
        a.dump(&mut first).unwrap();
        let b = restored(&first);
        assert_eq!(exports(&a), exports(&b));
        let q = QueryOptions {
            exact: true,
            ..QueryOptions::model("als").k(10)
        };
        for u in ["u1", "u2", "u7", "u40"] {
            assert_eq!(
                format!("{:?}", a.recommend(u, &q)),
                format!("{:?}", b.recommend(u, &q)),
                "{u}"
            );
        }
        for i in ["i3", "i5", "i8"] {
            assert_eq!(
                format!("{:?}", a.similar(i, &q)),
                format!("{:?}", b.similar(i, &q)),
                "{i}"
            );
        }
        b.check().unwrap();
    }

    #[test]
    fn a_retried_restore_replaces_an_incomplete_one() {
        let mut full = Vec::new();
        sample().dump(&mut full).unwrap();
        let b = Db::temporary().unwrap();
        // What a process killed after the ids and some events leaves behind.
        b.begin_restore("dump.jsonl", false).unwrap();
        let mut batch = b.batch();
        batch.push("u1", "stray", EventKind::View, 1.0, 5).unwrap();
        batch.commit().unwrap();
        // More keys than one wipe batch deletes.
        let mut w = crate::storage::backend::WriteBatch::default();
        for i in 0..3 * super::super::restore::WIPE_KEYS {
            w.put(format!("Zstray{i:06}").into_bytes(), b"x".to_vec());
        }
        b.backend().apply(w).unwrap();
        assert_eq!(
            b.incomplete_restore().unwrap().as_deref(),
            Some("dump.jsonl")
        );
        assert!(matches!(b.check(), Err(Error::IncompleteRestore { .. })));
        assert_eq!(
            b.stats().unwrap().incomplete_restore.as_deref(),
            Some("dump.jsonl")
        );
        b.restore(&mut &full[..], "dump.jsonl").unwrap();
        assert_eq!(b.incomplete_restore().unwrap(), None);
        assert!(b.backend().keys_with_prefix(b"Zstray").unwrap().is_empty());
        b.check().unwrap();
        let mut again = Vec::new();
        b.dump(&mut again).unwrap();
        assert_eq!(
            String::from_utf8(full).unwrap(),
            String::from_utf8(again).unwrap()
        );
    }

    #[test]
    fn dump_lines_are_capped_and_counts_allocate_nothing() {
        // An endless line: an error at line 1 after the cap, not an allocation.
        struct Zeros;
        impl std::io::Read for Zeros {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(0);
                Ok(buf.len())
            }
        }
        let b = Db::temporary().unwrap();
        let e = b
            .restore(&mut std::io::BufReader::new(Zeros), "/dev/zero")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("/dev/zero:1: field `(line)`"),
            "{e}"
        );
        // A table that claims more values than an address space holds is refused at its
        // line.
        let dump = "{\"t\":\"recdb-dump\",\"format\":1}\n{\"t\":\"table\",\"name\":\"x\",\"space\":\"other\",\"dim\":1000000000,\"rows\":1000000000000,\"offset\":0.0}\n{\"t\":\"end\",\"users\":0,\"items\":0,\"events\":0,\"tables\":1}\n";
        let e = b
            .restore(&mut dump.as_bytes(), "d")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d:2: field `rows`"), "{e}");
        assert!(e.contains("does not fit in memory"), "{e}");
        // 2^40 rows × 1 value (4 TiB) fits an address space: nothing is allocated for
        // the claim (allocating it up front aborts), and the table is short of rows.
        let dump = dump
            .replace("1000000000,", "1,")
            .replace("1000000000000", "1099511627776");
        let e = b
            .restore(&mut dump.as_bytes(), "d")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "d:2: field `rows`: table `x` has 0 of its 1099511627776 rows (truncated?)"
        );
        assert_eq!(b.incomplete_restore().unwrap(), None);
    }

    #[test]
    fn row_ids_are_on_every_row_or_on_none() {
        let head = "{\"t\":\"recdb-dump\",\"format\":1}\n{\"t\":\"table\",\"name\":\"x\",\"space\":\"other\",\"dim\":1,\"rows\":2,\"offset\":0.0}\n";
        let end = "{\"t\":\"end\",\"users\":0,\"items\":0,\"events\":0,\"tables\":1}\n";
        let b = Db::temporary().unwrap();
        for rows in [
            "{\"t\":\"row\",\"id\":\"a\",\"v\":[1.0]}\n{\"t\":\"row\",\"v\":[2.0]}\n",
            "{\"t\":\"row\",\"v\":[1.0]}\n{\"t\":\"row\",\"id\":\"b\",\"v\":[2.0]}\n",
        ] {
            let e = b
                .restore(&mut format!("{head}{rows}{end}").as_bytes(), "d")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("d:4: field `id`"), "{e}");
        }
        assert_eq!(b.tables().unwrap().len(), 0);
        let rows =
            "{\"t\":\"row\",\"id\":\"a\",\"v\":[1.0]}\n{\"t\":\"row\",\"id\":\"b\",\"v\":[2.0]}\n";
        b.restore(&mut format!("{head}{rows}{end}").as_bytes(), "d")
            .unwrap();
        assert_eq!(b.tables().unwrap().len(), 1);
    }
}
